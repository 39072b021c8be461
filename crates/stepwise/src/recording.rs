//! Documents that production runs keep for the console (a process's `record` and
//! `retention_days`): a recorder collects what entered each step in memory while the run goes;
//! at its end, when the process keeps them (`all`, or `errors` and the run did not complete),
//! they are scrubbed of secrets and saved in the run store in one transaction, to expire
//! `retention_days` after the run.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use compiler::Plan;
use engine::{Document, Properties, Recorder, Redactor};
use spec::RecordMode;
use store::{RecordedDocument, Store};

/// The most document data one run keeps; past it, later documents are not kept (the run's
/// log says so).
pub const MAX_RECORDED_BYTES: usize = 256 << 20;

/// What one run recorded so far.
#[derive(Default)]
struct State {
    /// Step names, interned: documents point into it.
    steps: Vec<String>,
    step_index: HashMap<String, usize>,
    /// Documents entered per step (kept or not), by step index.
    entered: Vec<u64>,
    documents: Vec<(usize, u64, Vec<u8>, Properties)>,
    bytes: usize,
    truncated: bool,
}

/// Collects the documents entering each step of one run.
pub struct DocumentRecorder {
    mode: RecordMode,
    state: Mutex<State>,
}

impl DocumentRecorder {
    /// A recorder for a run of `plan`; `None` when the process keeps nothing.
    pub fn for_plan(plan: &Plan) -> Option<Arc<DocumentRecorder>> {
        (plan.record != RecordMode::None)
            .then(|| Arc::new(DocumentRecorder { mode: plan.record, state: Mutex::new(State::default()) }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Recorder for DocumentRecorder {
    fn source(&self, step: &str, document: &Document) {
        let mut state = self.lock();
        let index = match state.step_index.get(step) {
            Some(i) => *i,
            None => {
                let i = state.steps.len();
                state.steps.push(step.to_owned());
                state.step_index.insert(step.to_owned(), i);
                state.entered.push(0);
                i
            }
        };
        state.entered[index] += 1;
        let seq = state.entered[index];
        let size = document.data.len() + document.properties.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if state.truncated || state.bytes + size > MAX_RECORDED_BYTES {
            state.truncated = true;
            return;
        }
        state.bytes += size;
        state.documents.push((index, seq, document.data.clone(), document.properties.clone()));
    }

    fn exchange(&self, _step: &str, _exchange: &serde_json::Value) {}

    fn wants_exchanges(&self) -> bool {
        false
    }
}

/// Whether a run that ended with `status` keeps its documents under `mode`.
pub fn keeps(mode: RecordMode, status: engine::RunStatus) -> bool {
    match mode {
        RecordMode::None => false,
        RecordMode::All => true,
        RecordMode::Errors => !matches!(status, engine::RunStatus::Complete | engine::RunStatus::CompleteWarn),
    }
}

/// At the end of run `run_id` of `plan`: saves what `recorder` collected when the process keeps
/// it, scrubbed with `redactor`. Returns a line for the run's log when not everything was kept.
pub async fn finish(
    store: &dyn Store,
    run_id: &str,
    plan: &Plan,
    recorder: &DocumentRecorder,
    status: engine::RunStatus,
    redactor: &Redactor,
) -> Result<Option<String>, store::StoreError> {
    if !keeps(recorder.mode, status) {
        return Ok(None);
    }
    let state = std::mem::take(&mut *recorder.lock());
    let scrub = engine::dump::Scrubber::new(redactor.clone());
    // Documents read from one source share one property map: it is scrubbed once.
    let mut shared: Option<(Properties, BTreeMap<String, String>)> = None;
    let mut documents = Vec::with_capacity(state.documents.len());
    for (step, seq, data, properties) in state.documents {
        let properties = match &shared {
            Some((seen, scrubbed)) if seen.same_as(&properties) => scrubbed.clone(),
            _ => {
                let scrubbed = scrub.property_map(&properties);
                shared = Some((properties, scrubbed.clone()));
                scrubbed
            }
        };
        let data = match scrub.bytes(&data) {
            Cow::Borrowed(_) => data,
            Cow::Owned(scrubbed) => scrubbed,
        };
        documents.push(RecordedDocument { step: state.steps[step].clone(), seq, properties, data });
    }
    let expires_at = Utc::now() + chrono::Duration::days(i64::from(plan.retention_days));
    store.save_documents(run_id, &documents, expires_at).await?;
    Ok(state.truncated.then(|| {
        format!(
            "kept {} documents; later ones were not kept (a run keeps at most {} MiB of documents)",
            documents.len(),
            MAX_RECORDED_BYTES >> 20
        )
    }))
}

/// How often `serve` deletes kept documents past their expiry.
pub const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes expired documents now and every [`PRUNE_INTERVAL`] while `serve` runs.
pub fn spawn_pruner(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            every.tick().await;
            match store.prune_documents(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(documents = n, "Deleted kept documents past their retention."),
                Err(error) => tracing::warn!(%error, "Cannot delete kept documents past their retention."),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_by_mode_and_status() {
        use engine::RunStatus::{Aborted, Complete, Error};
        assert!(!keeps(RecordMode::None, Error));
        assert!(keeps(RecordMode::All, Complete));
        assert!(!keeps(RecordMode::Errors, Complete));
        assert!(keeps(RecordMode::Errors, Error));
        assert!(keeps(RecordMode::Errors, Aborted));
    }
}
