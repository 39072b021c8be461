//! Live counts of a run going, step by step, for whoever watches it (a console): the engine
//! updates a step's counts each time the step finishes a batch; a watcher copies them when it
//! wants, and learns from a version number whether anything changed since it last looked.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::report::StepStats;

/// The per-step counts of one run so far. Cheap to update (a lock and a few numbers per
/// batch); the engine never waits on a watcher for longer than a copy takes.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    version: u64,
    steps: Vec<StepStats>,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// A number that grows with each change, and every step of the process in order (those
    /// not reached yet with zeros), as the run's report will list them.
    pub fn snapshot(&self) -> (u64, Vec<StepStats>) {
        let state = self.lock();
        (state.version, state.steps.clone())
    }

    /// The version alone: whether a snapshot would differ from one taken at `version`.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    pub(crate) fn start(&self, steps: &[StepStats]) {
        let mut state = self.lock();
        state.steps = steps.to_vec();
        state.version += 1;
    }

    /// Step `index` has these counts, and has spent `micros` in all.
    pub(crate) fn update(&self, index: usize, stats: &StepStats, micros: u128) {
        let mut state = self.lock();
        if let Some(step) = state.steps.get_mut(index) {
            step.documents_in = stats.documents_in;
            step.documents_out = stats.documents_out;
            step.documents_error = stats.documents_error;
            step.error_documents = stats.error_documents;
            step.executions = stats.executions;
            step.millis = u64::try_from(micros / 1000).unwrap_or(u64::MAX);
            state.version += 1;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
