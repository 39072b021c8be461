//! Test-mode dumps (`stepwise run --test`): what entered every step, every connector call's
//! request and response, `run.json` and a self-contained `report.html`, in the layout of
//! section 7 of the process format:
//!
//! ```text
//! DIR/run.json
//! DIR/steps/<step-id>/source/000001.data
//! DIR/steps/<step-id>/source/000001.properties.json
//! DIR/steps/<step-id>/connection/000001.json
//! DIR/report.html
//! ```
//!
//! Documents are numbered per step in arrival order across all batches. Files are written as the
//! run goes (only counters are held), files are created with mode 0600 and directories with
//! 0700, and everything written is scrubbed of secrets: every value the `Redactor` knows,
//! `Authorization` (and similar) headers, and `Bearer` tokens. Recording never changes what the
//! run does: when a write fails, recording stops, the reason is noted in `run.json`, and the run
//! goes on. Limits (documents per step, bytes per run) keep a prefix of what arrived and say
//! what was not recorded.

mod report;

use std::borrow::Cow;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use compiler::Plan;
use indexmap::IndexMap;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;

use crate::connector::Redactor;
use crate::document::{Document, Properties};
use crate::report::RunReport;
use crate::run::Recorder;

/// How many documents per step `report.html` embeds unless told otherwise.
pub const DEFAULT_REPORT_DOCUMENTS_PER_STEP: usize = 200;
/// At most this many bytes of one document (or connection file) are embedded in the report.
const REPORT_BYTES_PER_DOCUMENT: u64 = 256 * 1024;
/// At most this many bytes of document data in all are embedded in the report.
const REPORT_BYTES_TOTAL: u64 = 24 * 1024 * 1024;
/// The version of the `run.json` layout.
const RUN_JSON_FORMAT: u32 = 1;

/// What test mode may leave out. `None` means no limit; the default records everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DumpLimits {
    /// Documents recorded per step (the first N that arrive); also caps connection files per step.
    pub max_documents_per_step: Option<u64>,
    /// Bytes written for documents, properties and connection data in the whole run; recording
    /// stops at the first item that would go over.
    pub max_bytes: Option<u64>,
}

/// Where and how to dump one run.
#[derive(Clone, Debug)]
pub struct DumpConfig {
    /// The dump directory; created (mode 0700) if missing, refused if not empty.
    pub dir: PathBuf,
    pub limits: DumpLimits,
    /// How many documents per step `report.html` embeds.
    pub report_documents_per_step: usize,
    /// The process file that ran (written into `run.json` as `process_file`, so that
    /// `stepwise test --record` finds it).
    pub process_file: Option<PathBuf>,
    /// The process property values the run was given (`--set`), written into `run.json` (scrubbed).
    pub overrides: Vec<(String, String)>,
}

impl DumpConfig {
    /// Records everything into `dir`; the report embeds the default number of documents.
    pub fn new(dir: PathBuf) -> DumpConfig {
        DumpConfig {
            dir,
            limits: DumpLimits::default(),
            report_documents_per_step: DEFAULT_REPORT_DOCUMENTS_PER_STEP,
            process_file: None,
            overrides: Vec::new(),
        }
    }
}

/// Errors that stop a dump from starting or finishing. (Errors while recording documents only
/// stop the recording; they are noted, never raised.)
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("the dump directory '{0}' is not empty; choose a new directory for each test run")]
    NotEmpty(PathBuf),
    #[error("the dump directory '{0}' is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot create '{path}': {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write '{path}': {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a finished dump produced.
#[derive(Clone, Debug)]
pub struct DumpSummary {
    pub dir: PathBuf,
    pub run_json: PathBuf,
    pub report_html: PathBuf,
    /// True when every document and connector call was recorded.
    pub complete: bool,
    /// Why something was not recorded, one sentence each (also in `run.json`).
    pub notes: Vec<String>,
}

/// One run's dump. `recorder()` goes into `RunOptions`; `finish` writes `run.json` and the report.
pub struct Dump {
    shared: Arc<Shared>,
}

impl Dump {
    /// Prepares `config.dir` (mode 0700; it must be missing or empty) and writes a first
    /// `run.json` with status `RUNNING`.
    pub fn create(plan: &Plan, run_id: &str, config: DumpConfig, redactor: Redactor) -> Result<Dump, DumpError> {
        prepare_dir(&config.dir)?;
        let graph = compiler::render::json(plan);
        let mut steps = IndexMap::new();
        for id in plan.step_ids() {
            steps.insert(id.to_owned(), StepState::default());
        }
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            config,
            scrub: Scrubber::new(redactor),
            graph,
            run_id: run_id.to_owned(),
            state: Mutex::new(State { steps, bytes: 0, stopped: None }),
        });
        let running = serde_json::json!({
            "format": RUN_JSON_FORMAT,
            "run_id": run_id,
            "process": plan.name,
            "status": "RUNNING",
        });
        let path = shared.dir.join("run.json");
        write_replace(&path, &pretty(&running)).map_err(|source| DumpError::Write { path, source })?;
        tracing::info!(run_id, dir = %shared.dir.display(), "Test mode: recording dumps.");
        Ok(Dump { shared })
    }

    /// The recorder to hand to the engine.
    pub fn recorder(&self) -> Arc<dyn Recorder> {
        self.shared.clone()
    }

    /// The dump directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Writes `run.json` and `report.html` for the finished run.
    pub fn finish(self, report: &RunReport) -> Result<DumpSummary, DumpError> {
        let shared = &self.shared;
        let (steps, stopped, bytes) = {
            let state = shared.lock();
            (state.steps.clone(), state.stopped.clone(), state.bytes)
        };
        let notes = notes(&steps, stopped.as_ref(), &shared.config.limits, bytes);
        let complete = steps.values().all(|s| s.recorded == s.arrived && s.calls_recorded == s.calls);
        let run_json = shared.dir.join("run.json");
        let doc = RunJson::new(shared, report, &steps, complete, &notes, bytes);
        write_json_streaming(&run_json, &doc).map_err(|source| DumpError::Write { path: run_json.clone(), source })?;
        let report_html = shared.dir.join("report.html");
        let data = shared.report_data(report, &steps, &notes);
        report::write(&report_html, &shared.graph, &data)
            .map_err(|source| DumpError::Write { path: report_html.clone(), source })?;
        tracing::info!(run_id = %shared.run_id, dir = %shared.dir.display(), complete, "Test mode: dumps written.");
        Ok(DumpSummary { dir: shared.dir.clone(), run_json, report_html, complete, notes })
    }
}

/// Why recording stopped before the run ended.
#[derive(Clone, Debug)]
enum Stopped {
    ByteLimit { limit: u64 },
    Failed(String),
}

/// Counters for one step.
#[derive(Clone, Debug, Default)]
struct StepState {
    /// Documents that entered the step (all batches).
    arrived: u64,
    /// Documents written: always documents 1..=recorded.
    recorded: u64,
    /// Connector calls (exchanges) seen.
    calls: u64,
    /// Connection files written: always 1..=calls_recorded.
    calls_recorded: u64,
    source_dir: bool,
    connection_dir: bool,
}

struct State {
    steps: IndexMap<String, StepState>,
    bytes: u64,
    stopped: Option<Stopped>,
}

struct Shared {
    dir: PathBuf,
    config: DumpConfig,
    scrub: Scrubber,
    graph: Value,
    run_id: String,
    state: Mutex<State>,
}

impl Recorder for Shared {
    fn source(&self, step: &str, document: &Document) {
        let mut guard = self.lock();
        let State { steps, bytes, stopped } = &mut *guard;
        let st = step_state(steps, step);
        st.arrived += 1;
        let number = st.arrived;
        if stopped.is_some()
            || st.recorded + 1 != number
            || over(self.config.limits.max_documents_per_step, st.recorded)
        {
            return;
        }
        let data = self.scrub.bytes(&document.data);
        let props = self.scrub.properties(&document.properties);
        let size = (data.len() + props.len()) as u64;
        if !fits(self.config.limits.max_bytes, *bytes, size, stopped) {
            return;
        }
        let dir = self.dir.join(step_path(step, "source"));
        let result = ensure_dir(&dir, &mut st.source_dir)
            .and_then(|()| write_new(&dir.join(format!("{number:06}.data")), &data))
            .and_then(|()| write_new(&dir.join(format!("{number:06}.properties.json")), &props));
        match result {
            Ok(()) => {
                st.recorded = number;
                *bytes += size;
            }
            Err(error) => fail(stopped, step, &error),
        }
    }

    fn exchange(&self, step: &str, exchange: &Value) {
        let mut guard = self.lock();
        let State { steps, bytes, stopped } = &mut *guard;
        let st = step_state(steps, step);
        st.calls += 1;
        let number = st.calls;
        if stopped.is_some()
            || st.calls_recorded + 1 != number
            || over(self.config.limits.max_documents_per_step, st.calls_recorded)
        {
            return;
        }
        let mut value = exchange.clone();
        self.scrub.json(&mut value);
        let text = self.scrub.text(&pretty(&value)).into_owned().into_bytes();
        let size = text.len() as u64;
        if !fits(self.config.limits.max_bytes, *bytes, size, stopped) {
            return;
        }
        let dir = self.dir.join(step_path(step, "connection"));
        let result = ensure_dir(&dir, &mut st.connection_dir)
            .and_then(|()| write_new(&dir.join(format!("{number:06}.json")), &text));
        match result {
            Ok(()) => {
                st.calls_recorded = number;
                *bytes += size;
            }
            Err(error) => fail(stopped, step, &error),
        }
    }
}

/// The counters of `step` (allocating its name only the first time).
fn step_state<'a>(steps: &'a mut IndexMap<String, StepState>, step: &str) -> &'a mut StepState {
    match steps.get_index_of(step) {
        Some(i) => &mut steps[i],
        None => steps.entry(step.to_owned()).or_default(),
    }
}

fn over(limit: Option<u64>, recorded: u64) -> bool {
    limit.is_some_and(|max| recorded >= max)
}

/// Whether `size` more bytes fit under the byte limit; when not, recording stops for good.
fn fits(limit: Option<u64>, bytes: u64, size: u64, stopped: &mut Option<Stopped>) -> bool {
    match limit {
        Some(limit) if bytes.saturating_add(size) > limit => {
            tracing::warn!(limit, "Test mode: the byte limit is reached; recording stops.");
            *stopped = Some(Stopped::ByteLimit { limit });
            false
        }
        _ => true,
    }
}

fn fail(stopped: &mut Option<Stopped>, step: &str, error: &io::Error) {
    let message = format!("writing the dump of step '{step}' failed: {error}");
    tracing::error!(step, %error, "Test mode: writing a dump failed; recording stops, the run goes on.");
    *stopped = Some(Stopped::Failed(message));
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The data `report.html` embeds: the run, each step's stats and its first documents.
    fn report_data(&self, report: &RunReport, steps: &IndexMap<String, StepState>, notes: &[String]) -> Value {
        let mut budget = REPORT_BYTES_TOTAL;
        let per_step = self.config.report_documents_per_step;
        let mut out = serde_json::Map::new();
        for stats in &report.steps {
            let st = steps.get(&stats.step).cloned().unwrap_or_default();
            let source_dir = step_path(&stats.step, "source");
            let connection_dir = step_path(&stats.step, "connection");
            let mut documents = Vec::new();
            for n in 1..=st.recorded.min(per_step as u64) {
                let data_path = format!("{source_dir}/{n:06}.data");
                let props_path = format!("{source_dir}/{n:06}.properties.json");
                let properties = std::fs::read(self.dir.join(&props_path))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .unwrap_or(Value::Null);
                let mut doc = self.embed(&data_path, &mut budget);
                doc.insert("n".to_owned(), n.into());
                doc.insert("properties".to_owned(), properties);
                documents.push(Value::Object(doc));
            }
            let mut calls = Vec::new();
            for n in 1..=st.calls_recorded.min(per_step as u64) {
                let path = format!("{connection_dir}/{n:06}.json");
                let mut call = self.embed(&path, &mut budget);
                call.insert("n".to_owned(), n.into());
                calls.push(Value::Object(call));
            }
            out.insert(
                stats.step.clone(),
                serde_json::json!({
                    "type": stats.step_type,
                    "outcome": outcome(report, &stats.step),
                    "documents_in": stats.documents_in,
                    "documents_out": stats.documents_out,
                    "documents_error": stats.documents_error,
                    "error_documents": stats.error_documents,
                    "executions": stats.executions,
                    "millis": stats.millis,
                    "arrived": st.arrived,
                    "recorded": st.recorded,
                    "calls": st.calls,
                    "calls_recorded": st.calls_recorded,
                    "source_dir": source_dir,
                    "connection_dir": connection_dir,
                    "documents": documents,
                    "exchanges": calls,
                }),
            );
        }
        let mut run = serde_json::json!({
            "run_id": report.run_id,
            "process": report.process,
            "status": report.status.as_str(),
            "started_at": report.started_at,
            "ended_at": report.ended_at,
            "millis": report.millis,
            "documents_in": report.documents_in,
            "documents_out": report.documents_out,
            "documents_error": report.documents_error,
            "error": report.error,
            "errors": report.errors.iter().take(100).collect::<Vec<_>>(),
            "more_errors": report.errors.len().saturating_sub(100),
            "notifications": report.notifications.iter().take(100).collect::<Vec<_>>(),
            "more_notifications": report.notifications.len().saturating_sub(100),
        });
        self.scrub.json(&mut run);
        serde_json::json!({
            "run": run,
            "steps": out,
            "notes": notes,
            "report_documents_per_step": per_step,
        })
    }

    /// One dumped file for the report: its text (or hex for binary data), up to the per-file and
    /// total budgets. The files were scrubbed when written.
    fn embed(&self, rel: &str, budget: &mut u64) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("file".to_owned(), rel.into());
        let path = self.dir.join(rel);
        let size = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
        m.insert("size".to_owned(), size.into());
        if *budget == 0 {
            m.insert("omitted".to_owned(), "the report's size limit is reached; open the file instead".into());
            return m;
        }
        let cap = REPORT_BYTES_PER_DOCUMENT.min(*budget);
        let mut bytes = Vec::new();
        let read = File::open(&path).and_then(|f| f.take(cap).read_to_end(&mut bytes));
        if let Err(error) = read {
            m.insert("omitted".to_owned(), format!("cannot read the file: {error}").into());
            return m;
        }
        *budget = budget.saturating_sub(bytes.len() as u64);
        let truncated = (bytes.len() as u64) < size;
        match std::str::from_utf8(&bytes) {
            Ok(text) => {
                m.insert("text".to_owned(), text.into());
            }
            Err(e) if e.error_len().is_none() && truncated => {
                // A character cut in two by the size cap: keep the text before it.
                let text = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
                m.insert("text".to_owned(), text.into());
            }
            Err(_) => {
                let shown = &bytes[..bytes.len().min(4096)];
                m.insert("hex".to_owned(), hex_dump(shown).into());
            }
        }
        m.insert("truncated".to_owned(), truncated.into());
        m
    }
}

/// ok, error or not_reached, as the report colours a step.
fn outcome(report: &RunReport, step: &str) -> &'static str {
    let Some(stats) = report.steps.iter().find(|s| s.step == step) else { return "not_reached" };
    let failed_here =
        report.errors.iter().any(|e| e.step == step) || report.error.as_ref().is_some_and(|e| e.step == step);
    if stats.documents_error > 0 || failed_here {
        "error"
    } else if stats.executions == 0 {
        "not_reached"
    } else {
        "ok"
    }
}

fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x} ", i * 16));
        for b in chunk {
            out.push_str(&format!(" {b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// One sentence for each thing that was not recorded.
fn notes(
    steps: &IndexMap<String, StepState>,
    stopped: Option<&Stopped>,
    limits: &DumpLimits,
    bytes: u64,
) -> Vec<String> {
    let mut notes = Vec::new();
    match stopped {
        Some(Stopped::ByteLimit { limit }) => notes.push(format!(
            "recording stopped when the byte limit was reached ({limit} bytes per run, --dump-max-bytes); {bytes} bytes were written"
        )),
        Some(Stopped::Failed(message)) => notes.push(format!("recording stopped: {message}")),
        None => {}
    }
    for (step, st) in steps {
        let by_count = |recorded: u64| {
            limits
                .max_documents_per_step
                .filter(|max| recorded >= *max)
                .map(|max| format!(" (limit {max} per step, --dump-max-documents-per-step)"))
        };
        if st.recorded < st.arrived {
            let why = by_count(st.recorded).unwrap_or_default();
            notes.push(format!(
                "step '{step}': {} of {} documents were not recorded; documents 1 to {} were{why}",
                st.arrived - st.recorded,
                st.arrived,
                st.recorded
            ));
        }
        if st.calls_recorded < st.calls {
            let why = by_count(st.calls_recorded).unwrap_or_default();
            notes.push(format!(
                "step '{step}': {} of {} connector calls were not recorded; calls 1 to {} were{why}",
                st.calls - st.calls_recorded,
                st.calls,
                st.calls_recorded
            ));
        }
    }
    notes
}

/// `steps/<dir>/<kind>`, with a step id that is not a plain name hex-encoded.
fn step_path(step: &str, kind: &str) -> String {
    let plain = !step.is_empty()
        && step != "."
        && step != ".."
        && step.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let dir: Cow<'_, str> = if plain {
        Cow::Borrowed(step)
    } else {
        Cow::Owned(format!("x-{}", step.bytes().map(|b| format!("{b:02x}")).collect::<String>()))
    };
    format!("steps/{dir}/{kind}")
}

// ----- run.json ------------------------------------------------------------------------------

#[derive(Serialize)]
struct RunJson<'a> {
    format: u32,
    run_id: &'a str,
    process: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_file: Option<String>,
    properties: Value,
    status: &'static str,
    started_at: &'a str,
    ended_at: &'a str,
    millis: u64,
    documents_in: u64,
    documents_out: u64,
    documents_error: u64,
    steps: Vec<StepJson<'a>>,
    /// The error that ended the run: step, document, message, and the document's dump file.
    error: Value,
    errors: Value,
    notifications: Value,
    dump: DumpJson<'a>,
    files: FilesJson,
}

#[derive(Serialize)]
struct StepJson<'a> {
    step: &'a str,
    #[serde(rename = "type")]
    step_type: &'a str,
    outcome: &'static str,
    documents_in: u64,
    documents_out: u64,
    documents_error: u64,
    error_documents: u64,
    executions: u64,
    millis: u64,
    source: SourceJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<ConnectionJson>,
}

#[derive(Serialize)]
struct SourceJson {
    directory: String,
    arrived: u64,
    recorded: u64,
    not_recorded: u64,
    files: SourceFiles,
}

#[derive(Serialize)]
struct ConnectionJson {
    directory: String,
    calls: u64,
    recorded: u64,
    not_recorded: u64,
    files: ConnectionFiles,
}

#[derive(Serialize)]
struct DumpJson<'a> {
    directory: String,
    complete: bool,
    limits: DumpLimits,
    bytes_written: u64,
    documents_not_recorded: u64,
    calls_not_recorded: u64,
    report_documents_per_step: usize,
    notes: &'a [String],
}

#[derive(Serialize)]
struct FilesJson {
    run: &'static str,
    report: &'static str,
}

/// Every document file of a step, generated as it is serialized (a step may have millions).
struct SourceFiles {
    dir: String,
    count: u64,
}

impl Serialize for SourceFiles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.count as usize))?;
        for n in 1..=self.count {
            seq.serialize_element(&SourceFile { dir: &self.dir, number: n })?;
        }
        seq.end()
    }
}

struct SourceFile<'a> {
    dir: &'a str,
    number: u64,
}

impl Serialize for SourceFile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("number", &self.number)?;
        m.serialize_entry("data", &format!("{}/{:06}.data", self.dir, self.number))?;
        m.serialize_entry("properties", &format!("{}/{:06}.properties.json", self.dir, self.number))?;
        m.end()
    }
}

struct ConnectionFiles {
    dir: String,
    count: u64,
}

impl Serialize for ConnectionFiles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.count as usize))?;
        for n in 1..=self.count {
            seq.serialize_element(&format!("{}/{n:06}.json", self.dir))?;
        }
        seq.end()
    }
}

impl<'a> RunJson<'a> {
    fn new(
        shared: &'a Shared,
        report: &'a RunReport,
        steps: &IndexMap<String, StepState>,
        complete: bool,
        notes: &'a [String],
        bytes: u64,
    ) -> RunJson<'a> {
        let mut step_json = Vec::with_capacity(report.steps.len());
        for stats in &report.steps {
            let st = steps.get(&stats.step).cloned().unwrap_or_default();
            let source_dir = step_path(&stats.step, "source");
            let connection_dir = step_path(&stats.step, "connection");
            let is_connector = st.calls > 0 || stats.step_type == "connector";
            step_json.push(StepJson {
                step: &stats.step,
                step_type: &stats.step_type,
                outcome: outcome(report, &stats.step),
                documents_in: stats.documents_in,
                documents_out: stats.documents_out,
                documents_error: stats.documents_error,
                error_documents: stats.error_documents,
                executions: stats.executions,
                millis: stats.millis,
                source: SourceJson {
                    directory: source_dir.clone(),
                    arrived: st.arrived,
                    recorded: st.recorded,
                    not_recorded: st.arrived - st.recorded,
                    files: SourceFiles { dir: source_dir, count: st.recorded },
                },
                connection: is_connector.then(|| ConnectionJson {
                    directory: connection_dir.clone(),
                    calls: st.calls,
                    recorded: st.calls_recorded,
                    not_recorded: st.calls - st.calls_recorded,
                    files: ConnectionFiles { dir: connection_dir, count: st.calls_recorded },
                }),
            });
        }
        let error = match &report.error {
            Some(e) => {
                let recorded = steps.get(&e.step).map(|s| s.recorded).unwrap_or(0);
                let file = e
                    .document
                    .filter(|d| *d >= 1 && *d <= recorded)
                    .map(|d| format!("{}/{d:06}.data", step_path(&e.step, "source")));
                let mut v = serde_json::json!({
                    "step": e.step,
                    "document": e.document,
                    "message": e.message,
                    "file": file,
                });
                shared.scrub.json(&mut v);
                v
            }
            None => Value::Null,
        };
        let mut errors = serde_json::to_value(&report.errors).unwrap_or(Value::Null);
        shared.scrub.json(&mut errors);
        let mut notifications = serde_json::to_value(&report.notifications).unwrap_or(Value::Null);
        shared.scrub.json(&mut notifications);
        let documents_not_recorded = steps.values().map(|s| s.arrived - s.recorded).sum();
        let calls_not_recorded = steps.values().map(|s| s.calls - s.calls_recorded).sum();
        let mut properties =
            Value::Object(shared.config.overrides.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
        shared.scrub.json(&mut properties);
        RunJson {
            format: RUN_JSON_FORMAT,
            run_id: &report.run_id,
            process: &report.process,
            process_file: shared.config.process_file.as_ref().map(|p| p.display().to_string()),
            properties,
            status: report.status.as_str(),
            started_at: &report.started_at,
            ended_at: &report.ended_at,
            millis: report.millis,
            documents_in: report.documents_in,
            documents_out: report.documents_out,
            documents_error: report.documents_error,
            steps: step_json,
            error,
            errors,
            notifications,
            dump: DumpJson {
                directory: shared.dir.display().to_string(),
                complete,
                limits: shared.config.limits,
                bytes_written: bytes,
                documents_not_recorded,
                calls_not_recorded,
                report_documents_per_step: shared.config.report_documents_per_step,
                notes,
            },
            files: FilesJson { run: "run.json", report: "report.html" },
        }
    }
}

// ----- Secrets -------------------------------------------------------------------------------

/// Header and field names whose values are credentials, whatever they hold.
const SENSITIVE_NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "apikey",
    "api_key",
    "x-auth-token",
    "cookie",
    "set-cookie",
    "access_token",
    "refresh_token",
    "client_secret",
    "password",
];

/// Removes secrets from everything test mode writes (and the documents `serve` keeps).
pub struct Scrubber {
    redactor: Redactor,
}

impl Scrubber {
    pub fn new(redactor: Redactor) -> Scrubber {
        Scrubber { redactor }
    }

    /// Bytes with known secrets and credential headers replaced by `***` (`Redactor::redact`,
    /// as everything else a run prints or records). Non-UTF-8 data is scrubbed piece by piece:
    /// a secret is text, so it lies inside one valid piece.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.redactor.may_change(data) {
            return Cow::Borrowed(data);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            return match self.redactor.redact_cow(text) {
                Cow::Borrowed(_) => Cow::Borrowed(data),
                Cow::Owned(text) => Cow::Owned(text.into_bytes()),
            };
        }
        let mut redacted = Vec::with_capacity(data.len());
        for chunk in data.utf8_chunks() {
            redacted.extend_from_slice(self.redactor.redact(chunk.valid()).as_bytes());
            redacted.extend_from_slice(chunk.invalid());
        }
        if redacted == data { Cow::Borrowed(data) } else { Cow::Owned(redacted) }
    }

    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redactor.redact_cow(text)
    }

    /// Every key and string scrubbed; the values of credential fields replaced whole.
    fn json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(t) = self.text(s) {
                    *s = t;
                }
            }
            Value::Array(items) => {
                // A header as a `[name, value]` pair.
                if let [Value::String(name), Value::String(v)] = items.as_mut_slice()
                    && is_sensitive(name)
                {
                    *v = "***".to_owned();
                }
                for item in items {
                    self.json(item);
                }
            }
            Value::Object(map) => {
                // A header as `{"name": "Authorization", "value": "..."}`.
                let named_sensitive = map.get("name").and_then(Value::as_str).is_some_and(is_sensitive);
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    if is_sensitive(&k) || (named_sensitive && k == "value") {
                        v = Value::String("***".to_owned());
                    } else {
                        self.json(&mut v);
                    }
                    map.insert(self.text(&k).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A document's properties as the pretty JSON of `.properties.json`.
    fn properties(&self, props: &Properties) -> Vec<u8> {
        let map = self.property_map(props).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        self.text(&pretty(&Value::Object(map))).into_owned().into_bytes()
    }

    /// A document's properties, scrubbed: the values of credential names replaced whole.
    pub fn property_map(&self, props: &Properties) -> std::collections::BTreeMap<String, String> {
        props
            .into_iter()
            .map(|(k, v)| {
                let value = if is_sensitive(k) { "***".to_owned() } else { self.text(v).into_owned() };
                (self.text(k).into_owned(), value)
            })
            .collect()
    }
}

fn is_sensitive(name: &str) -> bool {
    SENSITIVE_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name.trim()))
}

// ----- Files ---------------------------------------------------------------------------------

fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    s.push('\n');
    s
}

/// Creates the dump directory (mode 0700, with missing parents) or checks that it is empty.
fn prepare_dir(dir: &Path) -> Result<(), DumpError> {
    match std::fs::metadata(dir) {
        Ok(md) if !md.is_dir() => return Err(DumpError::NotADirectory(dir.to_owned())),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(dir).map_err(|source| DumpError::Create { path: dir.to_owned(), source })?;
            if entries.next().is_some() {
                return Err(DumpError::NotEmpty(dir.to_owned()));
            }
        }
        Err(_) => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| DumpError::Create { path: dir.to_owned(), source })?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|source| DumpError::Create { path: dir.to_owned(), source })
}

fn ensure_dir(dir: &Path, ready: &mut bool) -> io::Result<()> {
    if !*ready {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        *ready = true;
    }
    Ok(())
}

/// A new file, mode 0600; never overwrites.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

fn open_replacement(path: &Path) -> io::Result<(PathBuf, File)> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    Ok((tmp, f))
}

/// Writes `path` whole (through a temporary file and a rename), mode 0600.
fn write_replace(path: &Path, text: &str) -> io::Result<()> {
    let (tmp, mut f) = open_replacement(path)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Serializes `value` straight into `path` (never whole in memory), mode 0600.
fn write_json_streaming<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let (tmp, f) = open_replacement(path)?;
    let mut w = BufWriter::new(f);
    let mut ser = serde_json::Serializer::with_formatter(&mut w, ShallowPretty::new(RUN_JSON_PRETTY_DEPTH));
    value.serialize(&mut ser).map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `run.json` is indented down to the lists of files; each file entry is one line.
const RUN_JSON_PRETTY_DEPTH: usize = 5;

/// Pretty JSON down to `max` levels of nesting, compact below (one line per list entry there).
struct ShallowPretty {
    depth: usize,
    max: usize,
    has_value: bool,
}

impl ShallowPretty {
    fn new(max: usize) -> ShallowPretty {
        ShallowPretty { depth: 0, max, has_value: false }
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        let pretty = self.depth <= self.max;
        self.depth -= 1;
        if pretty && self.has_value {
            self.newline(w)?;
        }
        w.write_all(close)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.depth <= self.max { self.newline(w) } else { Ok(()) }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for ShallowPretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.depth <= self.max { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
