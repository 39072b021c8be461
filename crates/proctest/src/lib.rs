//! Process tests (`stepwise test`): test files that name a process and hold cases; each case
//! runs the real engine on the compiled plan with given properties and start documents, every
//! network connection answered by a mock transport under the real connector code
//! (`connector_http::Transport`), the disk connector rooted in a temporary directory, and its
//! expectations checked. The engine knows nothing of tests: it gets a registry, a recorder
//! and transports like any caller.

pub mod assert;
pub mod format;
pub mod junit;
pub mod load;
pub mod mock;
pub mod run;

use std::path::PathBuf;

use engine::Registry;

pub use assert::Failure;
pub use load::{Invalid, Loaded, TEST_SCHEMA, discover, load};

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub case: String,
    pub failures: Vec<Failure>,
    pub millis: u64,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every case of a loaded test file, one after another.
pub async fn run_file(loaded: &Loaded, registry: &Registry) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for case in &loaded.file.cases {
        let started = std::time::Instant::now();
        let failures = match run::run_case(&loaded.plan, registry, case).await {
            Ok(outcome) => assert::check(&case.expect, &outcome),
            Err(e) => vec![Failure { at: "case".to_owned(), message: e, diff: None }],
        };
        out.push(CaseResult {
            file: loaded.path.clone(),
            case: case.name.clone(),
            failures,
            millis: started.elapsed().as_millis() as u64,
        });
    }
    out
}
