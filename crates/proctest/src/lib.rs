//! Process tests (`stepwise test`): test files that name a process and hold cases; each case
//! runs the real engine on the compiled plan with given properties and start documents, every
//! network connection answered by a mock transport under the real connector code
//! (`connector_http::Transport`), the disk connector rooted in a temporary directory, and its
//! expectations checked. Cases run in parallel, each on its own thread's runtime. The engine knows nothing of tests: it gets a registry, a recorder
//! and transports like any caller.

pub mod assert;
pub mod format;
pub mod junit;
pub mod load;
pub mod mock;
pub mod record;
pub mod run;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use engine::Registry;

pub use assert::Failure;
pub use format::Case;
pub use load::{Invalid, Loaded, TEST_SCHEMA, discover, load};

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub case: String,
    pub failures: Vec<Failure>,
    pub millis: u64,
    /// When the case began and ended running (to compare cases with each other).
    pub started: Instant,
    pub ended: Instant,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs one case of a loaded test file.
pub async fn run_case(loaded: &Loaded, case: &Case, registry: &Registry) -> CaseResult {
    let started = Instant::now();
    let failures = match run::run_case(&loaded.plan, registry, case).await {
        Ok(outcome) => assert::check(&case.expect, &outcome),
        Err(e) => vec![Failure { at: "case".to_owned(), message: e, diff: None }],
    };
    let ended = Instant::now();
    CaseResult {
        file: loaded.path.clone(),
        case: case.name.clone(),
        failures,
        millis: ended.duration_since(started).as_millis() as u64,
        started,
        ended,
    }
}

/// Why the cases could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunAllError {
    #[error("cannot start a test thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot start a test runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("a test thread panicked")]
    Panicked,
}

/// Runs every case of `files`, at most `jobs` at once (cases are independent: each has its own
/// directory and mocks), and returns the results in file order, each file's cases in order.
pub fn run_all(files: &[Loaded], registry: &Registry, jobs: usize) -> Result<Vec<CaseResult>, RunAllError> {
    let cases: Vec<(&Loaded, &Case)> = files.iter().flat_map(|l| l.file.cases.iter().map(move |c| (l, c))).collect();
    let slots: Vec<Mutex<Option<CaseResult>>> = cases.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let worker = || -> Result<(), RunAllError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RunAllError::Runtime)?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((loaded, case)) = cases.get(i) else { return Ok(()) };
            let result = runtime.block_on(run_case(loaded, case, registry));
            *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..jobs.clamp(1, cases.len().max(1)))
            .map(|_| std::thread::Builder::new().stack_size(engine::RUN_STACK_BYTES).spawn_scoped(scope, worker))
            .collect::<Result<_, _>>()
            .map_err(RunAllError::Thread)?;
        for t in threads {
            t.join().map_err(|_| RunAllError::Panicked)??;
        }
        Ok(())
    })?;
    Ok(slots.into_iter().filter_map(|s| s.into_inner().unwrap_or_else(|p| p.into_inner())).collect())
}
