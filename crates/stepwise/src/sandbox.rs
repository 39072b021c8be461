//! `--sandbox`: in-process simulators on free loopback ports, and every simulated connection
//! type pointed at them.

use std::collections::HashMap;

use engine::SandboxTarget;

/// The simulators started for one run.
pub struct Sandbox {
    targets: HashMap<String, SandboxTarget>,
}

impl Sandbox {
    pub async fn start() -> anyhow::Result<Sandbox> {
        Ok(Sandbox { targets: HashMap::new() })
    }

    pub fn targets(&self) -> HashMap<String, SandboxTarget> {
        self.targets.clone()
    }

    pub async fn shutdown(self) {}
}
