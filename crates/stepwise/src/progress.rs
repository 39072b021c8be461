//! Live progress of the runs `serve` makes: while a run goes, the per-step counts it publishes
//! (`engine::Progress`) are written to the run store every [`EVERY`] when they changed, so that
//! the console of any node shows them (the run's page reloads itself); the run's end replaces
//! them with the final counts.

use std::sync::Arc;
use std::time::Duration;

use store::{StepRecord, Store};

/// How often a going run's counts are written (when they changed).
pub const EVERY: Duration = Duration::from_secs(1);

/// The step rows of the run's counts. A step's errors are the documents that failed in it and
/// the error documents it made of refused inputs (`error_response: true`), as the run's
/// `documents_error` counts both.
pub fn step_records(steps: &[engine::StepStats]) -> Vec<StepRecord> {
    steps
        .iter()
        .map(|s| StepRecord {
            step: s.step.clone(),
            documents_in: s.documents_in,
            documents_out: s.documents_out,
            documents_error: s.documents_error + s.error_documents,
            millis: s.millis,
        })
        .collect()
}

/// Writes the progress of run `run_id` of `node` until aborted, or until the store says the
/// run is no longer going there. Runs on `on` (the service's runtime, never the runs' threads).
pub fn spawn(
    store: Arc<dyn Store>,
    node: String,
    run_id: String,
    progress: Arc<engine::Progress>,
    on: &tokio::runtime::Handle,
) -> tokio::task::JoinHandle<()> {
    on.spawn(async move {
        let mut written = 0;
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if progress.version() == written {
                continue;
            }
            let (version, steps) = progress.snapshot();
            match store.save_progress(&node, &run_id, &step_records(&steps)).await {
                Ok(true) => written = version,
                Ok(false) => return,
                Err(error) => tracing::debug!(%error, run_id, "Cannot write the run's progress."),
            }
        }
    })
}
