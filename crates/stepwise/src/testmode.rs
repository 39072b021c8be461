//! `--test`: wires the engine's dump recorder into a run (see `engine::dump`).

use std::path::PathBuf;
use std::sync::Arc;

use compiler::Plan;
use engine::{Recorder, Redactor, RunReport};

/// One test-mode run's dumps.
pub struct TestRun {
    dir: PathBuf,
}

impl TestRun {
    pub fn start(_plan: &Plan, run_id: &str, dump: Option<PathBuf>, _redactor: Redactor) -> anyhow::Result<TestRun> {
        let dir = dump.unwrap_or_else(|| PathBuf::from(".stepwise/test-runs").join(run_id));
        Ok(TestRun { dir })
    }

    pub fn recorder(&self) -> Arc<dyn Recorder> {
        unimplemented!("test mode recorder")
    }

    pub fn finish(self, _report: &RunReport) -> anyhow::Result<PathBuf> {
        Ok(self.dir)
    }
}
