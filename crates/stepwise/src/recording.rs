//! Documents that production runs keep for the console (a process's `record` and
//! `retention_days`): a recorder collects what entered each step in memory while the run goes;
//! at its end, when the process keeps them (`all`, or `errors` and the run did not complete
//! cleanly: `COMPLETE_WARN`, `ERROR`, `ABORTED`), with the error documents each step made,
//! they are scrubbed of secrets and saved in the run store in one transaction, to expire
//! `retention_days` after the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use compiler::Plan;
use engine::{Document, Properties, Recorder, Redactor};
use spec::RecordMode;
use store::{DocumentChunks, Store};

/// The most document data one run keeps; past it, later documents are not kept (the run's
/// log says so).
pub const MAX_RECORDED_BYTES: usize = 256 << 20;

/// What one run recorded so far.
#[derive(Default)]
struct State {
    /// Step names, interned: documents point into it.
    steps: Vec<String>,
    step_index: HashMap<String, usize>,
    /// The step of the last document: documents come in batches, one step at a time.
    last_step: Option<usize>,
    /// Documents entered per step (kept or not), by step index.
    entered: Vec<u64>,
    data: Arena,
    documents: Vec<Kept>,
    truncated: bool,
}

/// A kept document: its step, its number there, where its data lies in the arena, and its
/// properties (shared with the run's other documents until one writes).
struct Kept {
    step: usize,
    seq: u64,
    data: Slot,
    properties: Properties,
}

/// The kept documents' data, one after the other in blocks of a few MiB: one allocation per
/// block rather than per document, and nothing copied again as it grows.
#[derive(Default)]
struct Arena {
    blocks: Vec<Vec<u8>>,
    bytes: usize,
}

/// Where a document's data lies in the [`Arena`].
#[derive(Clone)]
struct Slot {
    block: usize,
    range: std::ops::Range<usize>,
}

/// Arena blocks of ended runs, kept for the next runs (at most [`Arena::POOLED`]): memory the
/// process has already touched, so a run's recording does not pay the kernel's page faults for
/// every new block.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

impl Arena {
    const BLOCK: usize = 4 << 20;
    /// At most 64 MiB of blocks wait in the pool.
    const POOLED: usize = 16;

    fn new_block(size: usize) -> Vec<u8> {
        if size <= Arena::BLOCK
            && let Some(block) = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop()
        {
            return block;
        }
        Vec::with_capacity(Arena::BLOCK.max(size))
    }

    fn push(&mut self, data: &[u8]) -> Slot {
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= data.len());
        if !fits {
            self.blocks.push(Arena::new_block(data.len()));
        }
        let block = self.blocks.len() - 1;
        let buffer = &mut self.blocks[block];
        let start = buffer.len();
        buffer.extend_from_slice(data);
        self.bytes += data.len();
        Slot { block, range: start..buffer.len() }
    }

    fn get(&self, slot: &Slot) -> &[u8] {
        self.blocks.get(slot.block).and_then(|b| b.get(slot.range.clone())).unwrap_or_default()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        for mut block in self.blocks.drain(..) {
            if pool.len() >= Arena::POOLED {
                break;
            }
            if block.capacity() != Arena::BLOCK {
                continue;
            }
            block.clear();
            pool.push(block);
        }
    }
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

impl State {
    fn step(&mut self, step: &str) -> usize {
        if let Some(i) = self.last_step.filter(|&i| self.steps[i] == step) {
            return i;
        }
        let i = match self.step_index.get(step) {
            Some(i) => *i,
            None => {
                let i = self.steps.len();
                self.steps.push(step.to_owned());
                self.step_index.insert(step.to_owned(), i);
                self.entered.push(0);
                i
            }
        };
        self.last_step = Some(i);
        i
    }
}

impl State {
    fn keep(&mut self, index: usize, document: &Document) {
        self.entered[index] += 1;
        let seq = self.entered[index];
        if self.truncated || self.data.bytes + document.data.len() > MAX_RECORDED_BYTES {
            self.truncated = true;
            return;
        }
        let data = self.data.push(&document.data);
        self.documents.push(Kept { step: index, seq, data, properties: document.properties.clone() });
    }
}

impl Recorder for DocumentRecorder {
    fn source(&self, step: &str, document: &Document) {
        self.sources(step, std::slice::from_ref(document));
    }

    fn sources(&self, step: &str, documents: &[Document]) {
        let mut state = self.lock();
        let index = state.step(step);
        state.documents.reserve(documents.len());
        for document in documents {
            state.keep(index, document);
        }
    }

    fn error_document(&self, step: &str, document: &Document) {
        self.sources(&store::error_documents_key(step), std::slice::from_ref(document));
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
        RecordMode::Errors => status != engine::RunStatus::Complete,
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
    let truncated = state.truncated;
    let scrub = engine::dump::Scrubber::new(redactor.clone());
    // Scrubbing and compressing is CPU work: off the runtime's threads, on up to 8 cores.
    let Ok(documents) = tokio::task::spawn_blocking(move || encode(&state, &scrub)).await else {
        return Ok(Some("the run's documents were not kept: encoding them failed".to_owned()));
    };
    let count = documents.documents();
    let expires_at = Utc::now() + chrono::Duration::days(i64::from(plan.retention_days));
    store.save_documents(run_id, documents, expires_at).await?;
    Ok(truncated.then(|| {
        format!(
            "kept {count} documents; later ones were not kept (a run keeps at most {} MiB of documents)",
            MAX_RECORDED_BYTES >> 20
        )
    }))
}

/// Fewer documents than this are encoded on one thread.
const DOCUMENTS_PER_THREAD: usize = 2048;

/// The kept documents scrubbed of secrets and encoded for the store, in parts on as many
/// threads as there are cores (at most 8, each with at least [`DOCUMENTS_PER_THREAD`]
/// documents); each part's chunks follow the previous part's.
fn encode(state: &State, scrub: &engine::dump::Scrubber) -> DocumentChunks {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let per_thread = state.documents.len().div_ceil(threads).max(DOCUMENTS_PER_THREAD);
    if state.documents.len() <= per_thread {
        return encode_part(state, &state.documents, scrub);
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = state
            .documents
            .chunks(per_thread)
            .map(|part| scope.spawn(move || encode_part(state, part, scrub)))
            .collect();
        let mut out = DocumentChunks::new();
        for part in parts {
            match part.join() {
                Ok(encoded) => out.append(encoded),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

fn encode_part(state: &State, part: &[Kept], scrub: &engine::dump::Scrubber) -> DocumentChunks {
    // Documents read from one source share one property map: it is scrubbed and encoded once.
    let mut shared: Option<(&Properties, Vec<u8>)> = None;
    let mut out = DocumentChunks::new();
    for kept in part {
        if !shared.as_ref().is_some_and(|(seen, _)| seen.same_as(&kept.properties)) {
            let scrubbed = scrub.property_map(&kept.properties);
            let json = serde_json::to_vec(&scrubbed).unwrap_or_else(|_| b"{}".to_vec());
            shared = Some((&kept.properties, json));
        }
        let properties = shared.as_ref().map(|(_, json)| json.as_slice()).unwrap_or(b"{}");
        let data = scrub.bytes(state.data.get(&kept.data));
        out.push(&state.steps[kept.step], kept.seq, properties, &data);
    }
    out
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
        use engine::RunStatus::{Aborted, Complete, CompleteWarn, Error};
        assert!(!keeps(RecordMode::None, Error));
        assert!(keeps(RecordMode::All, Complete));
        assert!(!keeps(RecordMode::Errors, Complete));
        assert!(keeps(RecordMode::Errors, CompleteWarn));
        assert!(keeps(RecordMode::Errors, Error));
        assert!(keeps(RecordMode::Errors, Aborted));
    }

    /// Enough documents to be encoded on several threads: every one comes back, in order, under
    /// its own number, with the secret scrubbed from its data and its properties.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_documents_are_kept_in_order_and_scrubbed() {
        let registry = engine::Registry::with_builtins();
        let yaml = "name: p\nrecord: all\nstart:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n";
        let plan = compiler::compile(yaml.as_bytes(), &registry).plan.expect("a valid plan");
        let dir = tempfile::tempdir().unwrap();
        let store = store::SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let start = store::RunStart {
            run_id: "r".into(),
            process: "p".into(),
            trigger: store::Trigger::Manual,
            scheduled_for: None,
            started_at: Utc::now(),
            node: "n".into(),
            lease: None,
            overrides: Vec::new(),
        };
        store.record_start(&start).await.unwrap();
        let redactor = Redactor::default();
        redactor.add("s3cret-value");
        let recorder = DocumentRecorder::for_plan(&plan).unwrap();
        let total = 3 * DOCUMENTS_PER_THREAD as u64;
        let shared =
            engine::Document::new("").with_property("token", "s3cret-value").with_property("k", "v").properties;
        for i in 1..=total {
            // The first step's documents run past the middle, where the parts split.
            let step = if i <= 2 * total / 3 { "first" } else { "second" };
            let mut document = engine::Document::new(format!("doc {i} holds s3cret-value"));
            document.properties = shared.clone();
            recorder.source(step, &document);
        }
        let note = finish(&store, "r", &plan, &recorder, engine::RunStatus::Complete, &redactor).await.unwrap();
        assert_eq!(note, None);
        let (first, second): (Vec<u64>, Vec<u64>) = (1..=total).partition(|i| *i <= 2 * total / 3);
        for (step, expected) in [("first", first), ("second", second)] {
            let kept = store.documents("r", step, 0, total).await.unwrap();
            assert_eq!(kept.len(), expected.len());
            for (n, (document, i)) in kept.iter().zip(&expected).enumerate() {
                assert_eq!(document.seq, n as u64 + 1);
                assert_eq!(document.data, format!("doc {i} holds ***").into_bytes());
                assert_eq!(document.properties.get("token").map(String::as_str), Some("***"));
                assert_eq!(document.properties.get("k").map(String::as_str), Some("v"));
            }
        }
    }
}
