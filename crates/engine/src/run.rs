//! The executor: Boomi's execution order over the plan graph.
//!
//! A batch of documents enters a step; every document passes through the step before any moves
//! on; then each outgoing path runs to completion in order (branch paths as listed, decision
//! `true` before `false`, try before catch). A step reached by two paths runs once per arriving
//! batch; a step that receives no documents is skipped.
//!
//! Steps rewrite their batch in place where they can (one document in, at most one out), and
//! documents share their property maps until written, so a large batch costs little more than
//! its data.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use compiler::jq::{Guard, JqFilter};
use compiler::{CatchErrors, ConnectorCall, DecisionOp, NotifyLevel, Plan, StepKind};
use futures::FutureExt;
use indexmap::IndexMap;
use petgraph::graph::NodeIndex;

use crate::cancel::Cancel;
use crate::connector::{ApiError, ConnectEnv, Connector, ErrorKind, FieldError, Input, OperationRef, Output, Registry};
use crate::document::{Document, Lineage, Properties};
use crate::params::{DocView, FastJq, FastState, ParamEnv, eval, eval_all_into, eval_concat, parse_val, run_jq};
use crate::progress::Progress;
use crate::report::{Notification, RunError, RunReport, RunStatus, StepStats};

/// Receives what test mode records. Implementations write as they go (nothing is held).
pub trait Recorder: Send + Sync {
    /// A document entered `step` (its source data).
    fn source(&self, step: &str, document: &Document);
    /// A batch of documents entered `step`, in order ([`Recorder::source`] for each unless the
    /// recorder takes a batch at once).
    fn sources(&self, step: &str, documents: &[Document]) {
        for document in documents {
            self.source(step, document);
        }
    }
    /// An error document `step` made (a connector's `error_response`: the failed call as JSON),
    /// as it leaves the step. Recorders that do not keep them ignore it.
    fn error_document(&self, _step: &str, _document: &Document) {}
    /// A connector step's request and response for one call.
    fn exchange(&self, step: &str, exchange: &serde_json::Value);
    /// Whether [`Recorder::exchange`] is wanted (connectors keep them only then).
    fn wants_exchanges(&self) -> bool {
        true
    }
}

/// How to run.
pub struct RunOptions {
    pub run_id: String,
    /// `--set NAME=VALUE` process property overrides.
    pub overrides: Vec<(String, String)>,
    pub env: ConnectEnv,
    pub recorder: Option<Arc<dyn Recorder>>,
    /// Cancel it to stop the run: the step that is going stops (an HTTP call in flight is
    /// dropped, a jq loop ends), nothing more starts, and the run ends `ABORTED`.
    pub abort: Option<Cancel>,
    /// The document a webhook start emits (the request's body and named headers); `None`: one
    /// empty document.
    pub start_document: Option<Document>,
    /// Where the run publishes its per-step counts while it goes (`serve`'s console).
    pub progress: Option<Arc<Progress>>,
}

/// A document that failed, on its way up to a try/catch or to the run's result.
#[derive(Debug)]
struct DocFail {
    step: String,
    number: u64,
    message: String,
    lineage: Lineage,
}

/// Why a run stops early. Each carries the document failures that had already escaped the
/// paths run before, so that none is lost.
enum Halt {
    /// A process error: the run ends with ERROR.
    Error(RunError, Vec<DocFail>),
    /// A `stop` with `continue: false`: the run ends without running anything more.
    Stop(Vec<DocFail>),
    /// Stopped from outside ([`RunOptions::abort`]): the run ends ABORTED; never caught.
    Aborted(RunError, Vec<DocFail>),
    /// Past the run's time limit: the run ends ERROR; never caught.
    OutOfTime(RunError, Vec<DocFail>),
}

impl Halt {
    /// Puts failures that happened before this halt in front of the ones it carries.
    fn after(mut self, mut earlier: Vec<DocFail>) -> Halt {
        let fails = match &mut self {
            Halt::Error(_, f) | Halt::Stop(f) | Halt::Aborted(_, f) | Halt::OutOfTime(_, f) => f,
        };
        earlier.append(fails);
        *fails = earlier;
        self
    }

    fn error(step: &str, document: Option<u64>, message: String) -> Halt {
        Halt::Error(RunError { step: step.to_owned(), document, message }, Vec::new())
    }
}

struct Exec<'p> {
    plan: &'p Plan,
    registry: &'p Registry,
    env: ConnectEnv,
    recorder: Option<Arc<dyn Recorder>>,
    progress: Option<Arc<Progress>>,
    cancel: Cancel,
    /// When the run's time limit is up.
    deadline: Instant,
    /// What jq's loops look at: the cancel flag and the deadline.
    guard: Guard,
    process_props: HashMap<String, String>,
    stats: Vec<StepStats>,
    micros: Vec<u128>,
    connectors: HashMap<String, Arc<dyn Connector>>,
    jq_cache: HashMap<String, JqFilter>,
    /// Map programs that run without the jq interpreter (`None`: this one cannot).
    fast_jq: HashMap<String, Option<FastJq>>,
    regex_cache: HashMap<String, regex::Regex>,
    /// The last `in` list read, by its text: documents of a batch usually share it.
    value_set: Option<(String, HashSet<String>)>,
    warned: bool,
    notifications: Vec<Notification>,
    next_tag: u64,
    documents_out: u64,
    error_documents: u64,
    /// How many `catch_errors: all` try/catches are running their try path: while any is, a
    /// process error notes which documents had not finished (below), so that the documents that
    /// had are not sent down the try path again.
    catch_all_depth: usize,
    /// The lineages of the documents a process error left unfinished: those at the failing step
    /// and those waiting for a path that had not run yet.
    unfinished: Vec<Lineage>,
    /// Reused buffers for parameter values and rendered text.
    values: Vec<String>,
    scratch: String,
    /// The last document that reached a `stop` with `respond: true`.
    response: Option<Document>,
}

/// The stack a thread that runs [`run`] needs for the deepest plan the compiler accepts
/// ([`compiler::MAX_DEPTH`]): the executor goes one level deeper per step on a path. Only the
/// part a run touches is ever backed by memory.
pub const RUN_STACK_BYTES: usize = 512 << 20;

const MAX_NOTIFICATIONS: usize = 10_000;

/// A connector's objections to an input, for people: `field: reason; ...`, except that a
/// document that is not JSON (`("", "json")`) says so plainly.
fn describe_invalid(details: &[crate::FieldError]) -> String {
    let parts: Vec<String> = details
        .iter()
        .map(|d| match (d.field.as_str(), d.reason.as_str()) {
            ("", "json") => "the document is not JSON, and this action takes a JSON document".to_owned(),
            ("", reason) => reason.to_owned(),
            (field, reason) => format!("{field}: {reason}"),
        })
        .collect();
    parts.join("; ")
}
const MAX_CACHED_REGEXES: usize = 256;

/// Runs a plan once. Never panics: a panic inside a step becomes that step's failure. Needs a
/// tokio runtime with time enabled (for the run's time limit).
pub async fn run(plan: &Plan, registry: &Registry, options: RunOptions) -> RunReport {
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let mut process_props: HashMap<String, String> =
        plan.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in &options.overrides {
        process_props.insert(k.clone(), v.clone());
    }
    let stats = plan
        .graph
        .node_indices()
        .map(|i| StepStats {
            step: plan.graph[i].id.clone(),
            step_type: plan.graph[i].kind.type_name().to_owned(),
            ..StepStats::default()
        })
        .collect();
    let mut env = options.env;
    env.run_id = options.run_id.clone();
    // Register every configured token with the redactor before any document moves, so nothing
    // recorded early (test-mode dumps of the start step, say) can carry one.
    for (name, connection) in &plan.connections {
        for secret in connection.secrets() {
            let _ = env.secret(name, secret);
        }
    }
    if let Some(webhook) = &plan.webhook {
        let _ = env.secret("webhook", &webhook.secret);
    }
    let cancel = options.abort.unwrap_or_default();
    // A limit too far out to represent is no limit.
    let deadline = clock
        .checked_add(std::time::Duration::from_secs(plan.limits.timeout_secs))
        .unwrap_or_else(|| clock + std::time::Duration::from_secs(100 * 365 * 24 * 3600));
    let guard = Guard { stop: cancel.flag(), deadline: Some(deadline) };
    let mut exec = Exec {
        plan,
        registry,
        env,
        recorder: options.recorder,
        progress: options.progress,
        cancel,
        deadline,
        guard,
        process_props,
        stats,
        micros: vec![0; plan.graph.node_count()],
        connectors: HashMap::new(),
        jq_cache: HashMap::new(),
        fast_jq: HashMap::new(),
        regex_cache: HashMap::new(),
        value_set: None,
        warned: false,
        notifications: Vec::new(),
        next_tag: 1,
        documents_out: 0,
        error_documents: 0,
        catch_all_depth: 0,
        unfinished: Vec::new(),
        values: Vec::new(),
        scratch: String::new(),
        response: None,
    };
    if let Some(progress) = &exec.progress {
        progress.start(&exec.stats);
    }
    tracing::info!(run_id = %options.run_id, process = %plan.name, "Run started.");
    let start_doc = vec![options.start_document.unwrap_or_default()];
    let outcome = exec.exec(plan.start, start_doc).await;
    let redact = |f: DocFail, exec: &Exec<'_>| RunError {
        step: f.step,
        document: Some(f.number),
        message: exec.env.redactor.redact(&f.message),
    };
    let (fails, halt_error) = match outcome {
        Ok(fails) | Err(Halt::Stop(fails)) => (fails, None),
        Err(Halt::Error(e, fails)) => (fails, Some((RunStatus::Error, e))),
        Err(Halt::Aborted(e, fails)) => (fails, Some((RunStatus::Aborted, e))),
        Err(Halt::OutOfTime(e, fails)) => (fails, Some((RunStatus::Error, e))),
    };
    let mut errors: Vec<RunError> = fails.into_iter().map(|f| redact(f, &exec)).collect();
    let (status, error) = match halt_error {
        Some((status, mut e)) => {
            e.message = exec.env.redactor.redact(&e.message);
            errors.push(e.clone());
            (status, Some(e))
        }
        None if !errors.is_empty() => (RunStatus::Error, errors.first().cloned()),
        None if exec.warned => (RunStatus::CompleteWarn, None),
        None => (RunStatus::Complete, None),
    };
    let ended = chrono::Utc::now();
    let mut steps = std::mem::take(&mut exec.stats);
    for (s, us) in steps.iter_mut().zip(&exec.micros) {
        s.millis = (*us / 1000) as u64;
    }
    let documents_in = steps.first().map(|s| s.documents_out).unwrap_or(0);
    let documents_error = errors.iter().filter(|e| e.document.is_some()).count() as u64 + exec.error_documents;
    let steps_map: IndexMap<String, StepStats> = steps.into_iter().map(|s| (s.step.clone(), s)).collect();
    let report = RunReport {
        run_id: options.run_id,
        process: plan.name.clone(),
        status,
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: ended.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        millis: clock.elapsed().as_millis() as u64,
        documents_in,
        documents_out: exec.documents_out,
        documents_error,
        steps: RunReport::stats_from(steps_map),
        error,
        errors,
        notifications: exec.notifications,
        response: exec.response.map(|d| d.data),
    };
    tracing::info!(run_id = %report.run_id, status = report.status.as_str(), millis = report.millis, "Run ended.");
    report
}

/// How long a try/catch waits before retry `attempt` (1-based): 1 s, 2 s, 4 s, 8 s, 16 s.
/// Shorter than Boomi's (none, 10 s, 30 s, 60 s, 120 s): the connectors already retry transient
/// HTTP faults with backoff and `Retry-After` below the try/catch.
pub(crate) fn retry_wait(attempt: u8) -> std::time::Duration {
    match attempt {
        0 => std::time::Duration::ZERO,
        n => std::time::Duration::from_secs(1 << (n.min(5) - 1)),
    }
}

/// Why the run must stop now: cancelled (`Some(true)`, the reason) or out of time (`false`).
enum Interrupt {
    Cancelled(String),
    OutOfTime,
}

/// Resolves once the run is cancelled or its time is up.
async fn interrupted(cancel: Cancel, deadline: Instant) -> Interrupt {
    tokio::select! {
        reason = cancel.cancelled() => Interrupt::Cancelled(reason),
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Interrupt::OutOfTime,
    }
}

/// What one step produced: documents for each outgoing path, in order, and failed documents.
struct Routed {
    outputs: Vec<(NodeIndex, Vec<Document>)>,
    fails: Vec<DocFail>,
}

impl Routed {
    fn to(next: Option<NodeIndex>, docs: Vec<Document>, fails: Vec<DocFail>) -> Routed {
        Routed { outputs: next.map(|n| vec![(n, docs)]).unwrap_or_default(), fails }
    }
}

/// Rewrites a batch in place: documents are taken out in order, and what replaces them (none,
/// one or several each) is written back behind the reading position; replacements that do not
/// fit there wait in `spill`, so order is kept.
struct InPlace {
    batch: Vec<Document>,
    read: usize,
    write: usize,
    spill: Vec<Document>,
}

impl InPlace {
    fn new(batch: Vec<Document>) -> InPlace {
        InPlace { batch, read: 0, write: 0, spill: Vec::new() }
    }

    /// The next document and its 0-based index in the batch.
    fn next(&mut self) -> Option<(usize, Document)> {
        let i = self.read;
        let doc = std::mem::take(self.batch.get_mut(i)?);
        self.read += 1;
        Some((i, doc))
    }

    fn push(&mut self, doc: Document) {
        if self.spill.is_empty() && self.write < self.read {
            self.batch[self.write] = doc;
            self.write += 1;
        } else {
            self.spill.push(doc);
        }
    }

    fn finish(mut self) -> Vec<Document> {
        self.batch.truncate(self.write);
        self.batch.append(&mut self.spill);
        self.batch
    }
}

/// Replaces a document's data, reusing its buffer unless that would keep much unused memory.
fn set_data(doc: &mut Document, bytes: &[u8]) {
    if doc.data.capacity() >= bytes.len() && doc.data.capacity() <= 2 * bytes.len() + 64 {
        doc.data.clear();
        doc.data.extend_from_slice(bytes);
    } else {
        doc.data = bytes.to_vec();
    }
}

fn wildcard_to_regex(pattern: &str) -> String {
    let mut re = String::from("^(?s:");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => {
                let mut buf = [0u8; 4];
                re.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            }
        }
    }
    re.push_str(")$");
    re
}

/// A decision operand as a number: decimal notation only (no `inf`, `NaN` or hex), finite.
fn as_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')) {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `eq` and `ne` compare text exactly; the orderings compare numerically when both sides are
/// numbers and as text (by Unicode code point) otherwise.
fn compare(op: DecisionOp, left: &str, right: &str) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = || match (as_number(left), as_number(right)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => left.cmp(right),
    };
    Some(match op {
        DecisionOp::Eq => left == right,
        DecisionOp::Ne => left != right,
        DecisionOp::Gt => ord() == Ordering::Greater,
        DecisionOp::Ge => ord() != Ordering::Less,
        DecisionOp::Lt => ord() == Ordering::Less,
        DecisionOp::Le => ord() != Ordering::Greater,
        DecisionOp::Regex | DecisionOp::Wildcard | DecisionOp::In => return None,
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

impl<'p> Exec<'p> {
    fn fail(&self, idx: NodeIndex, number: u64, doc: &Document, message: String) -> DocFail {
        DocFail { step: self.plan.graph[idx].id.clone(), number, message, lineage: doc.lineage.clone() }
    }

    fn param_env(&mut self, batch_len: usize) -> ParamEnv<'_> {
        ParamEnv {
            run_id: &self.env.run_id,
            process_name: &self.plan.name,
            process_properties: &self.process_props,
            batch_len,
            jq_cache: &mut self.jq_cache,
            guard: &self.guard,
        }
    }

    fn panicked(&mut self, idx: NodeIndex, what: String) -> Halt {
        let step = self.plan.graph[idx].id.clone();
        tracing::error!(step = %step, error = %what, "Step panicked.");
        self.stats[idx.index()].documents_error += 1;
        Halt::error(&step, None, format!("the step failed unexpectedly (panic: {what})"))
    }

    /// Runs `idx` on `batch`, then every path below it; returns the documents that failed and
    /// were not caught on the way.
    fn exec(
        &mut self,
        idx: NodeIndex,
        batch: Vec<Document>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<DocFail>, Halt>> {
        Box::pin(async move {
            let kind = &self.plan.graph[idx].kind;
            if let StepKind::TryCatch { try_path, catch, retries, catch_errors } = kind {
                let entered = std::panic::catch_unwind(AssertUnwindSafe(|| self.enter(idx, &batch)));
                if let Err(panic) = entered {
                    return Err(self.panicked(idx, panic_text(&*panic)));
                }
                self.stats[idx.index()].documents_out += batch.len() as u64;
                if let Some(progress) = &self.progress {
                    progress.update(idx.index(), &self.stats[idx.index()], self.micros[idx.index()]);
                }
                return self.try_catch(idx, *try_path, *catch, *retries, *catch_errors, batch).await;
            }
            let clock = Instant::now();
            if let Some(halt) = self.interruption(idx) {
                return Err(halt);
            }
            let stop = interrupted(self.cancel.clone(), self.deadline);
            let at_step: Vec<Lineage> =
                if self.catch_all_depth > 0 { batch.iter().map(|d| d.lineage.clone()).collect() } else { Vec::new() };
            let work = AssertUnwindSafe(async {
                let first = self.enter(idx, &batch);
                self.step(idx, batch, first).await
            })
            .catch_unwind();
            let result = tokio::select! {
                biased;
                why = stop => Err(why),
                result = work => Ok(result),
            };
            let result = match result {
                Ok(result) => result,
                Err(why) => return Err(self.halt_for(idx, why)),
            };
            self.micros[idx.index()] += clock.elapsed().as_micros();
            // A step that CPU-bound work kept from noticing (jq stops its loops with an error).
            if let Some(halt) = self.interruption(idx) {
                return Err(halt);
            }
            let routed = match result {
                Ok(Ok(r)) => r,
                Ok(Err(halt)) => {
                    if matches!(&halt, Halt::Error(e, _) if e.step == self.plan.graph[idx].id) {
                        self.stats[idx.index()].documents_error += 1;
                    }
                    self.unfinished.extend(at_step);
                    return Err(halt);
                }
                Err(panic) => {
                    self.unfinished.extend(at_step);
                    return Err(self.panicked(idx, panic_text(&*panic)));
                }
            };
            for (_, docs) in &routed.outputs {
                if let Err(halt) = self.check_output(idx, docs) {
                    self.stats[idx.index()].documents_error += 1;
                    self.unfinished.extend(at_step);
                    return Err(halt.after(routed.fails));
                }
            }
            let mut fails = routed.fails;
            self.stats[idx.index()].documents_error += fails.len() as u64;
            for (_, docs) in &routed.outputs {
                self.stats[idx.index()].documents_out += docs.len() as u64;
            }
            if let Some(progress) = &self.progress {
                progress.update(idx.index(), &self.stats[idx.index()], self.micros[idx.index()]);
            }
            let mut outputs = routed.outputs.into_iter();
            while let Some((next, docs)) = outputs.next() {
                if docs.is_empty() {
                    continue;
                }
                match self.exec(next, docs).await {
                    Ok(mut below) => fails.append(&mut below),
                    Err(halt) => {
                        if self.catch_all_depth > 0 {
                            // The paths that have not run yet leave their documents unfinished.
                            self.unfinished.extend(outputs.flat_map(|(_, docs)| docs).map(|d| d.lineage));
                        }
                        return Err(halt.after(fails));
                    }
                }
            }
            Ok(fails)
        })
    }

    /// Whether the run must stop before or after step `idx`, and how.
    fn interruption(&self, idx: NodeIndex) -> Option<Halt> {
        if let Some(reason) = self.cancel.reason() {
            return Some(self.halt_for(idx, Interrupt::Cancelled(reason)));
        }
        (Instant::now() >= self.deadline).then(|| self.halt_for(idx, Interrupt::OutOfTime))
    }

    fn halt_for(&self, idx: NodeIndex, why: Interrupt) -> Halt {
        let step = self.plan.graph[idx].id.clone();
        match why {
            Interrupt::Cancelled(reason) => {
                tracing::warn!(step = %step, reason = %reason, "Run aborted.");
                Halt::Aborted(RunError { step, document: None, message: format!("aborted: {reason}") }, Vec::new())
            }
            Interrupt::OutOfTime => {
                let secs = self.plan.limits.timeout_secs;
                tracing::warn!(step = %step, timeout_secs = secs, "Run out of time.");
                let message = format!("the run took longer than its time limit of {secs} s (limits.timeout_secs)");
                Halt::OutOfTime(RunError { step, document: None, message }, Vec::new())
            }
        }
    }

    /// Fails step `idx` when one of its output batches is over the documents or bytes limit.
    fn check_output(&self, idx: NodeIndex, docs: &[Document]) -> Result<(), Halt> {
        let limits = &self.plan.limits;
        if docs.len() as u64 > limits.max_documents_per_step {
            return Err(self.over_documents(idx, None));
        }
        let bytes: u64 = docs.iter().map(|d| d.data.len() as u64).sum();
        if bytes > limits.max_bytes {
            return Err(self.over_bytes(idx, None));
        }
        Ok(())
    }

    fn over_documents(&self, idx: NodeIndex, document: Option<u64>) -> Halt {
        let max = self.plan.limits.max_documents_per_step;
        let message = format!("the step produced more than {max} documents (limits.max_documents_per_step)");
        Halt::Error(RunError { step: self.plan.graph[idx].id.clone(), document, message }, Vec::new())
    }

    fn over_bytes(&self, idx: NodeIndex, document: Option<u64>) -> Halt {
        let max = self.plan.limits.max_bytes;
        let message = format!("the step produced more than {max} bytes of documents (limits.max_bytes)");
        Halt::Error(RunError { step: self.plan.graph[idx].id.clone(), document, message }, Vec::new())
    }

    /// Counts and records documents entering a step; returns the number of the first one.
    fn enter(&mut self, idx: NodeIndex, batch: &[Document]) -> u64 {
        let stats = &mut self.stats[idx.index()];
        let first = stats.documents_in + 1;
        stats.documents_in += batch.len() as u64;
        stats.executions += 1;
        if let Some(progress) = &self.progress {
            progress.update(idx.index(), stats, self.micros[idx.index()]);
        }
        if let Some(rec) = &self.recorder {
            rec.sources(&self.plan.graph[idx].id, batch);
        }
        first
    }

    async fn try_catch(
        &mut self,
        idx: NodeIndex,
        try_path: NodeIndex,
        catch: NodeIndex,
        retries: u8,
        catch_errors: CatchErrors,
        batch: Vec<Document>,
    ) -> Result<Vec<DocFail>, Halt> {
        let tag = self.next_tag;
        self.next_tag += 1;
        let mut passed_up = Vec::new();
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        let mut messages: HashMap<usize, String> = HashMap::new();
        // Sorts failures: ours (a document of this batch failed on the try path) or not.
        let classify = |fails: Vec<DocFail>,
                        failed: &mut Vec<usize>,
                        messages: &mut HashMap<usize, String>,
                        passed_up: &mut Vec<DocFail>| {
            for f in fails {
                match f.lineage.marks().iter().rev().find(|l| *l >> 32 == tag) {
                    Some(l) => {
                        let i = (l & 0xffff_ffff) as usize;
                        if let Entry::Vacant(e) = messages.entry(i) {
                            failed.push(i);
                            e.insert(format!("step '{}': {}", f.step, f.message));
                        }
                    }
                    None => passed_up.push(f),
                }
            }
        };
        for attempt in 0..=retries {
            if attempt > 0 {
                let wait = retry_wait(attempt);
                tracing::info!(step = %self.plan.graph[idx].id, attempt, documents = pending.len(), wait_secs = wait.as_secs(), "Retrying the try path.");
                self.wait(idx, wait).await.map_err(|halt| halt.after(std::mem::take(&mut passed_up)))?;
            }
            let docs: Vec<Document> = pending
                .iter()
                .map(|&i| {
                    let mut d = batch[i].clone();
                    d.lineage.push((tag << 32) | i as u64);
                    d
                })
                .collect();
            let mut failed = Vec::new();
            messages.clear();
            let catch_all = catch_errors == CatchErrors::All;
            self.catch_all_depth += usize::from(catch_all);
            let unfinished_before = self.unfinished.len();
            let attempt_result = self.exec(try_path, docs).await;
            self.catch_all_depth -= usize::from(catch_all);
            match attempt_result {
                Ok(fails) => classify(fails, &mut failed, &mut messages, &mut passed_up),
                Err(Halt::Error(e, fails)) if catch_all => {
                    classify(fails, &mut failed, &mut messages, &mut passed_up);
                    let message = format!("step '{}': {}", e.step, e.message);
                    // Only the documents the error left unfinished failed; the others went
                    // through the whole try path and are not sent down it again.
                    let ours = |l: &Lineage| {
                        l.marks().iter().rev().find(|m| *m >> 32 == tag).map(|m| (m & 0xffff_ffff) as usize)
                    };
                    let unfinished: std::collections::HashSet<usize> =
                        self.unfinished.drain(unfinished_before..).filter_map(|l| ours(&l)).collect();
                    for &i in &pending {
                        if unfinished.contains(&i)
                            && let Entry::Vacant(e) = messages.entry(i)
                        {
                            failed.push(i);
                            e.insert(message.clone());
                        }
                    }
                }
                Err(halt) => return Err(halt.after(passed_up)),
            }
            failed.sort_unstable();
            pending = failed;
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            self.warned = true;
            let docs: Vec<Document> = pending
                .iter()
                .map(|&i| {
                    let mut d = batch[i].clone();
                    d.properties.insert("try_catch_message".to_owned(), messages.remove(&i).unwrap_or_default());
                    d
                })
                .collect();
            drop(batch);
            match self.exec(catch, docs).await {
                Ok(mut below) => passed_up.append(&mut below),
                Err(halt) => return Err(halt.after(passed_up)),
            }
        }
        Ok(passed_up)
    }

    /// Waits `wait` unless the run is cancelled or out of time first.
    async fn wait(&self, idx: NodeIndex, wait: std::time::Duration) -> Result<(), Halt> {
        tokio::select! {
            why = interrupted(self.cancel.clone(), self.deadline) => Err(self.halt_for(idx, why)),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }

    async fn connector_for(&mut self, idx: NodeIndex, call: &ConnectorCall) -> Result<Arc<dyn Connector>, Halt> {
        if let Some(c) = self.connectors.get(&call.connection) {
            return Ok(c.clone());
        }
        let step = self.plan.graph[idx].id.clone();
        let halt = |message: String| Halt::error(&step, None, message);
        let spec = self
            .plan
            .connections
            .get(&call.connection)
            .ok_or_else(|| halt(format!("unknown connection '{}'", call.connection)))?;
        let factory = self
            .registry
            .get(spec.type_name())
            .ok_or_else(|| halt(format!("no connector is registered for connection type '{}'", spec.type_name())))?;
        let c = factory.connect(&call.connection, spec, &self.env).map_err(|e| halt(e.to_string()))?;
        self.connectors.insert(call.connection.clone(), c.clone());
        Ok(c)
    }

    /// The parameters (query parameters, disk `file_name`) of a connector call for `doc`, as an
    /// input without its document, or the field whose lookup failed and why.
    fn connector_parameters(
        &mut self,
        call: &ConnectorCall,
        doc: &Document,
        n: usize,
    ) -> Result<Input, (String, String)> {
        let view = DocView::new(doc);
        let mut env = self.param_env(n);
        let mut parameters = IndexMap::new();
        for (name, p) in &call.parameters {
            let value = eval(p, &view, &mut env).map_err(|e| (name.clone(), e))?;
            parameters.insert(name.clone(), value);
        }
        let mut query = IndexMap::new();
        for (name, p) in &call.query {
            let value = eval(p, &view, &mut env).map_err(|e| (format!("query/{name}"), e))?;
            query.insert(name.clone(), value);
        }
        let file_name = if call.file_name.is_empty() {
            None
        } else {
            Some(eval_concat(&call.file_name, &view, &mut env).map_err(|e| ("file_name".to_owned(), e))?)
        };
        Ok(Input { document: Document::default(), parameters, file_name, query })
    }

    async fn connector_step(
        &mut self,
        idx: NodeIndex,
        call: &ConnectorCall,
        batch: Vec<Document>,
        first: u64,
    ) -> Result<(Vec<Document>, Vec<DocFail>), Halt> {
        let connector = self.connector_for(idx, call).await?;
        let step = self.plan.graph[idx].id.clone();
        let op = OperationRef {
            step: &step,
            connection: &call.connection,
            object: call.object.as_deref(),
            action: &call.action,
            error_response: call.error_response,
            format: call.format,
            pattern: call.pattern.as_deref(),
            options: &call.options,
        };
        let fails = Vec::new();
        // Parameters for each document; a lookup that fails makes its input invalid, like a
        // document that fails the connector's validation.
        let n = batch.len();
        let mut inputs: Vec<(u64, Input)> = Vec::with_capacity(n);
        let mut invalid: Vec<(u64, Input, Vec<FieldError>, Option<String>)> = Vec::new();
        for (i, doc) in batch.into_iter().enumerate() {
            let number = first + i as u64;
            match self.connector_parameters(call, &doc, n) {
                Ok(input) => inputs.push((number, Input { document: doc, ..input })),
                Err((field, message)) => {
                    let details = vec![FieldError { field, reason: "lookup_failed".to_owned() }];
                    let input =
                        Input { document: doc, parameters: IndexMap::new(), file_name: None, query: IndexMap::new() };
                    invalid.push((number, input, details, Some(message)));
                }
            }
        }
        // Validation of the whole batch before any request.
        let mut valid: Vec<(u64, Input)> = Vec::with_capacity(inputs.len());
        let mut out_docs = Vec::new();
        for (number, input) in inputs {
            match connector.validate(&op, &input) {
                Ok(()) => valid.push((number, input)),
                Err(details) => invalid.push((number, input, details, None)),
            }
        }
        invalid.sort_by_key(|(number, ..)| *number);
        let describe = |details: &[FieldError], lookup: &Option<String>| match lookup {
            Some(message) => format!("parameter lookup failed: {message}"),
            None => format!("invalid document: {}", describe_invalid(details)),
        };
        if !invalid.is_empty() && !call.error_response {
            let (number, _, details, lookup) = &invalid[0];
            let more = if invalid.len() > 1 {
                format!(" ({} invalid documents in all)", invalid.len())
            } else {
                String::new()
            };
            return Err(Halt::error(
                &step,
                Some(*number),
                format!("connection '{}': {}{more}; no request was made", call.connection, describe(details, lookup)),
            ));
        }
        // Error documents for invalid inputs take their input's place among the responses.
        let mut refused: VecDeque<(u64, Document)> = VecDeque::new();
        for (number, input, details, lookup) in invalid {
            let message = match &lookup {
                Some(_) => describe(&details, &lookup),
                None => format!("invalid input: {}", describe_invalid(&details)),
            };
            let err = ApiError { body: None, kind: ErrorKind::Validation, status: None, message, details };
            refused.push_back((number, self.error_document(&op, &call.connection, &input.document, &err)));
        }
        if valid.is_empty() {
            out_docs.extend(refused.into_iter().map(|(_, doc)| doc));
            return Ok((out_docs, fails));
        }
        let numbers: Vec<u64> = valid.iter().map(|(n, _)| *n).collect();
        let inputs: Vec<Input> = valid.into_iter().map(|(_, i)| i).collect();
        let mut out = Output::new(!call.error_response, self.recorder.as_ref().is_some_and(|r| r.wants_exchanges()));
        connector.execute(&op, &inputs, &mut out).await.map_err(|e| Halt::error(&step, None, e.to_string()))?;
        if let Some(rec) = &self.recorder {
            for (_, ex) in &out.exchanges {
                let text = self.env.redactor.redact(&ex.to_string());
                let ex = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
                rec.exchange(&step, &ex);
            }
        }
        // Results in order. They are taken from the back of a reversed list that shrinks as it
        // goes, so a large result set is never held twice.
        let mut results = std::mem::take(&mut out.results);
        results.reverse();
        out_docs.reserve(results.len());
        let empty = Document::default();
        // Documents answering one input usually share one property map: merge it once.
        let mut merged: Option<(usize, Properties, Properties)> = None;
        while let Some((i, result)) = results.pop() {
            if results.capacity() - results.len() >= 65_536 {
                results.shrink_to_fit();
            }
            let input = inputs.get(i).map(|x| &x.document);
            let number = numbers.get(i).copied().unwrap_or(u64::MAX);
            while refused.front().is_some_and(|(n, _)| *n < number) {
                out_docs.extend(refused.pop_front().map(|(_, doc)| doc));
            }
            match result {
                Ok(mut doc) => {
                    let props = match &merged {
                        Some((at, from, to)) if *at == i && from.same_as(&doc.properties) => to.clone(),
                        _ => {
                            let mut props = input.map(|d| d.properties.clone()).unwrap_or_default();
                            props.extend(doc.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
                            props.insert("application_status_code".to_owned(), String::new());
                            props.insert("application_status_message".to_owned(), String::new());
                            merged = Some((i, doc.properties.clone(), props.clone()));
                            props
                        }
                    };
                    doc.properties = props;
                    if let Some(input) = input {
                        doc.lineage = input.lineage.clone();
                    }
                    out_docs.push(doc);
                }
                Err(err) => {
                    if !call.error_response {
                        let status = err.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                        let message = format!(
                            "connection '{}': {} error{status}: {}",
                            call.connection,
                            err.kind.as_str(),
                            err.message
                        );
                        // What completed for other inputs (changes made) is reported, not dropped.
                        let reads = matches!(call.action.as_str(), "get" | "list" | "query");
                        if !reads {
                            out_docs.extend(results.into_iter().rev().filter_map(|(_, r)| r.ok()));
                            let message = self.completed_before_stop(idx, &step, message, &out_docs);
                            return Err(Halt::error(&step, numbers.get(i).copied(), message));
                        }
                        return Err(Halt::error(&step, numbers.get(i).copied(), message));
                    }
                    out_docs.push(self.error_document(&op, &call.connection, input.unwrap_or(&empty), &err));
                }
            }
        }
        out_docs.extend(refused.into_iter().map(|(_, doc)| doc));
        Ok((out_docs, fails))
    }

    /// A connector step that changes things stops the run, but `completed` were done for other
    /// inputs (a change made is a change to report): each is logged, counted as the step's output, and listed
    /// (the first few) in the run's error, which history keeps.
    fn completed_before_stop(&mut self, idx: NodeIndex, step: &str, message: String, completed: &[Document]) -> String {
        if completed.is_empty() {
            return message;
        }
        const LISTED: usize = 10;
        self.stats[idx.index()].documents_out += completed.len() as u64;
        let mut listed = Vec::new();
        for (n, doc) in completed.iter().enumerate() {
            let text = self.env.redactor.redact(&doc.text());
            tracing::warn!(step, document = %text, "Completed before the step stopped the run.");
            if n < LISTED {
                listed.push(text);
            }
        }
        let more = completed.len().saturating_sub(LISTED);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!(
            "{message}; {} other document{} had completed at this step before it stopped (their changes were made): {}{more}",
            completed.len(),
            if completed.len() == 1 { "" } else { "s" },
            listed.join(", ")
        )
    }

    fn error_document(
        &mut self,
        op: &OperationRef<'_>,
        connection: &str,
        input: &Document,
        err: &ApiError,
    ) -> Document {
        self.warned = true;
        self.error_documents += 1;
        if let Some(stats) = self.stats.iter_mut().find(|s| s.step == op.step) {
            stats.error_documents += 1;
        }
        // No data reads as JSON `null`, as everywhere else (the document of a `no_data` start).
        let input_json = if crate::params::is_blank(&input.data) {
            serde_json::Value::Null
        } else {
            input.json().unwrap_or_else(|_| serde_json::Value::String(input.text().into_owned()))
        };
        let message = self.env.redactor.redact(&err.message);
        let mut body = serde_json::json!({
            "error": {
                "kind": err.kind.document_kind(),
                "step": op.step,
                "connection": connection,
                "object": op.object,
                "action": op.action,
                "message": message,
                "status": err.status,
                "details": err.details,
                "input": input_json,
            }
        });
        if let Some(answer) = &err.body {
            let text = self.env.redactor.redact(&answer.to_string());
            body["error"]["body"] = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        }
        let mut doc = input.derive(serde_json::to_vec(&body).unwrap_or_default());
        let code = err.status.map(|s| s.to_string()).unwrap_or_else(|| err.kind.document_kind().to_owned());
        doc.properties.insert("application_status_code".to_owned(), code);
        doc.properties.insert("application_status_message".to_owned(), message);
        if let Some(recorder) = &self.recorder {
            recorder.error_document(op.step, &doc);
        }
        doc
    }

    /// Evaluates `params` for `doc` into `self.values`.
    fn eval_values(&mut self, params: &[compiler::Param], doc: &Document, n: usize) -> Result<(), String> {
        let mut values = std::mem::take(&mut self.values);
        let result = {
            let view = DocView::new(doc);
            let mut env = self.param_env(n);
            eval_all_into(params, &view, &mut env, &mut values)
        };
        self.values = values;
        result
    }

    /// One step's own work on a batch.
    async fn step(&mut self, idx: NodeIndex, batch: Vec<Document>, first: u64) -> Result<Routed, Halt> {
        let plan = self.plan;
        let kind = &plan.graph[idx].kind;
        let n = batch.len();
        let number = |i: usize| first + i as u64;
        match kind {
            StepKind::StartNoData { next } | StepKind::StartWebhook { next } => {
                Ok(Routed::to(Some(*next), batch, Vec::new()))
            }
            StepKind::StartConnector { call, next } => {
                let (docs, fails) = self.connector_step(idx, call, batch, first).await?;
                Ok(Routed::to(Some(*next), docs, fails))
            }
            StepKind::Connector { call, next } => {
                let (docs, fails) = self.connector_step(idx, call, batch, first).await?;
                if next.is_none() {
                    self.documents_out += docs.len() as u64;
                    self.stats[idx.index()].documents_out += docs.len() as u64;
                }
                Ok(Routed::to(*next, docs, fails))
            }
            StepKind::Message { template, params, combine: true, next } => {
                let mut fails = Vec::new();
                let mut combined = String::new();
                let mut head: Option<Document> = None;
                for (i, doc) in batch.into_iter().enumerate() {
                    match self.eval_values(params, &doc, n) {
                        Ok(()) => {
                            head.get_or_insert(doc);
                            // One line per document, each ending with a newline (JSONL, CSV).
                            template.render_into(&self.values, &mut combined);
                            if !combined.ends_with('\n') {
                                combined.push('\n');
                            }
                        }
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                }
                let out = head
                    .map(|mut d| {
                        d.data = combined.into_bytes();
                        vec![d]
                    })
                    .unwrap_or_default();
                Ok(Routed::to(Some(*next), out, fails))
            }
            StepKind::Message { template, params, combine: false, next } => {
                let mut fails = Vec::new();
                let mut docs = InPlace::new(batch);
                let mut text = std::mem::take(&mut self.scratch);
                while let Some((i, mut doc)) = docs.next() {
                    match self.eval_values(params, &doc, n) {
                        Ok(()) => {
                            text.clear();
                            template.render_into(&self.values, &mut text);
                            set_data(&mut doc, text.as_bytes());
                            docs.push(doc);
                        }
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                }
                self.scratch = text;
                Ok(Routed::to(Some(*next), docs.finish(), fails))
            }
            StepKind::Map { jq: code, next } => {
                if !self.jq_cache.contains_key(code) {
                    let f = compiler::jq::compile(code).map_err(|e| Halt::error(&plan.graph[idx].id, None, e))?;
                    self.jq_cache.insert(code.clone(), f);
                    self.fast_jq.insert(code.clone(), FastJq::parse(code));
                }
                let mut fails = Vec::new();
                let mut docs = InPlace::new(batch);
                let mut text = std::mem::take(&mut self.scratch);
                let filter = &self.jq_cache[code];
                let fast = self.fast_jq.get(code).and_then(Option::as_ref);
                let mut state = FastState::default();
                let limits = &plan.limits;
                // What this execution has produced so far, against the limits.
                let (mut produced, mut bytes) = (0u64, 0u64);
                while let Some((i, mut doc)) = docs.next() {
                    text.clear();
                    if fast.is_some_and(|f| f.run(&mut state, &doc.data, &mut text)) {
                        produced += 1;
                        bytes += text.len() as u64;
                        set_data(&mut doc, text.as_bytes());
                        docs.push(doc);
                        continue;
                    }
                    // Outputs are written as they come, so an endless program stops at a limit.
                    // Each output but the last becomes a new document; the last reuses `doc`.
                    let mut held: Option<Vec<u8>> = None;
                    let mut over: Option<bool> = None;
                    let ran = parse_val(&doc.data).and_then(|v| {
                        run_jq(filter, v, &self.guard, |v| {
                            text.clear();
                            let _ = write!(text, "{v}");
                            produced += 1;
                            bytes += text.len() as u64;
                            if produced > limits.max_documents_per_step || bytes > limits.max_bytes {
                                over = Some(produced > limits.max_documents_per_step);
                                return false;
                            }
                            if let Some(prev) = held.replace(text.as_bytes().to_vec()) {
                                docs.push(doc.derive(prev));
                            }
                            true
                        })
                    });
                    if let Some(documents) = over {
                        self.scratch = text;
                        let halt = if documents {
                            self.over_documents(idx, Some(number(i)))
                        } else {
                            self.over_bytes(idx, Some(number(i)))
                        };
                        return Err(halt.after(fails));
                    }
                    match ran {
                        Ok(()) => {
                            if let Some(last) = held {
                                doc.data = last;
                                docs.push(doc);
                            }
                        }
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                    if self.cancel.is_cancelled() {
                        break;
                    }
                }
                self.scratch = text;
                Ok(Routed::to(Some(*next), docs.finish(), fails))
            }
            StepKind::SetProperties { document, process, next } => {
                let mut fails = Vec::new();
                let mut docs = InPlace::new(batch);
                while let Some((i, mut doc)) = docs.next() {
                    // In order, each value seeing the ones set before it; all or nothing.
                    let evaluated = {
                        let mut view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        let mut error = None;
                        for (name, ps) in document {
                            match eval_concat(ps, &view, &mut env) {
                                Ok(v) => view.document_sets.push((name.clone(), v)),
                                Err(e) => {
                                    error = Some(format!("document property '{name}': {e}"));
                                    break;
                                }
                            }
                        }
                        if error.is_none() {
                            for (name, ps) in process {
                                match eval_concat(ps, &view, &mut env) {
                                    Ok(v) => view.process_sets.push((name.clone(), v)),
                                    Err(e) => {
                                        error = Some(format!("process property '{name}': {e}"));
                                        break;
                                    }
                                }
                            }
                        }
                        match error {
                            Some(e) => Err(e),
                            None => {
                                Ok((std::mem::take(&mut view.document_sets), std::mem::take(&mut view.process_sets)))
                            }
                        }
                    };
                    match evaluated {
                        Ok((doc_sets, proc_sets)) => {
                            doc.properties.extend(doc_sets);
                            self.process_props.extend(proc_sets);
                            docs.push(doc);
                        }
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                }
                Ok(Routed::to(Some(*next), docs.finish(), fails))
            }
            StepKind::Decision { left, op, right, if_true, if_false } => {
                let mut yes = InPlace::new(batch);
                let mut no = Vec::new();
                let mut fails = Vec::new();
                while let Some((i, doc)) = yes.next() {
                    let outcome = {
                        let view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        eval(left, &view, &mut env).and_then(|l| eval(right, &view, &mut env).map(|r| (l, r)))
                    };
                    let decided = outcome.and_then(|(l, r)| match compare(*op, &l, &r) {
                        Some(b) => Ok(b),
                        None if *op == DecisionOp::In => self.is_listed(&l, &r),
                        None => self.pattern_matches(*op, &l, &r),
                    });
                    match decided {
                        Ok(true) => yes.push(doc),
                        Ok(false) => no.push(doc),
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                }
                Ok(Routed { outputs: vec![(*if_true, yes.finish()), (*if_false, no)], fails })
            }
            StepKind::Branch { paths } => {
                let mut outputs = Vec::with_capacity(paths.len());
                let mut batch = Some(batch);
                for (i, p) in paths.iter().enumerate() {
                    let docs = if i + 1 == paths.len() { batch.take() } else { batch.clone() };
                    outputs.push((*p, docs.unwrap_or_default()));
                }
                Ok(Routed { outputs, fails: Vec::new() })
            }
            StepKind::TryCatch { .. } => Ok(Routed { outputs: Vec::new(), fails: Vec::new() }),
            StepKind::Exception { template, params, stop_process } => {
                let mut fails = Vec::new();
                for (i, doc) in batch.into_iter().enumerate() {
                    let message = match self.eval_values(params, &doc, n) {
                        Ok(()) => template.render(&self.values),
                        Err(e) => e,
                    };
                    if *stop_process {
                        return Err(Halt::error(&plan.graph[idx].id, Some(number(i)), message));
                    }
                    fails.push(self.fail(idx, number(i), &doc, message));
                }
                Ok(Routed { outputs: Vec::new(), fails })
            }
            StepKind::Notify { template, params, level, next } => {
                let mut fails = Vec::new();
                let mut docs = InPlace::new(batch);
                let id = &plan.graph[idx].id;
                while let Some((i, doc)) = docs.next() {
                    match self.eval_values(params, &doc, n) {
                        Ok(()) => {
                            let message = self.env.redactor.redact(&template.render(&self.values));
                            let level_name = match level {
                                NotifyLevel::Info => {
                                    tracing::info!(step = %id, "{message}");
                                    "info"
                                }
                                NotifyLevel::Warn => {
                                    tracing::warn!(step = %id, "{message}");
                                    "warn"
                                }
                                NotifyLevel::Error => {
                                    tracing::error!(step = %id, "{message}");
                                    "error"
                                }
                            };
                            if self.notifications.len() < MAX_NOTIFICATIONS {
                                self.notifications.push(Notification {
                                    step: id.clone(),
                                    level: level_name.to_owned(),
                                    message,
                                });
                            }
                            docs.push(doc);
                        }
                        Err(e) => fails.push(self.fail(idx, number(i), &doc, e)),
                    }
                }
                Ok(Routed::to(Some(*next), docs.finish(), fails))
            }
            StepKind::Stop { keep_going, respond } => {
                self.documents_out += n as u64;
                self.stats[idx.index()].documents_out += n as u64;
                if *respond && let Some(last) = batch.into_iter().last() {
                    self.response = Some(last);
                }
                if *keep_going {
                    Ok(Routed { outputs: Vec::new(), fails: Vec::new() })
                } else {
                    Err(Halt::Stop(Vec::new()))
                }
            }
        }
    }

    /// `in`: whether `left` is exactly one of the values of the JSON array `right`.
    fn is_listed(&mut self, left: &str, right: &str) -> Result<bool, String> {
        match &self.value_set {
            Some((text, set)) if text == right => Ok(set.contains(left)),
            _ => {
                let set = compiler::value_set(right).map_err(|e| format!("'right' of op 'in': {e}"))?;
                let listed = set.contains(left);
                self.value_set = Some((right.to_owned(), set));
                Ok(listed)
            }
        }
    }

    /// `regex` (the whole of `left` must match, as Java's `String.matches`) and `wildcard` (`*`
    /// any text, `?` one character, the whole of `left`).
    fn pattern_matches(&mut self, op: DecisionOp, left: &str, right: &str) -> Result<bool, String> {
        let pattern = if op == DecisionOp::Wildcard {
            wildcard_to_regex(right)
        } else {
            // Checked alone first, so that `a)|(b` cannot escape the anchors.
            compiler::check_regex(right).map_err(|e| format!("'right' is not a valid regular expression: {e}"))?;
            format!("^(?:{right})$")
        };
        if !self.regex_cache.contains_key(&pattern) {
            let re = regex::Regex::new(&pattern).map_err(|e| format!("'right' is not a valid pattern: {e}"))?;
            if self.regex_cache.len() >= MAX_CACHED_REGEXES {
                self.regex_cache.clear();
            }
            self.regex_cache.insert(pattern.clone(), re);
        }
        Ok(self.regex_cache.get(&pattern).is_some_and(|re| re.is_match(left)))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn compares_numbers_numerically_and_text_by_code_point() {
        assert_eq!(compare(DecisionOp::Gt, "10", "9"), Some(true));
        assert_eq!(compare(DecisionOp::Gt, "10", "9a"), Some(false));
        assert_eq!(compare(DecisionOp::Lt, " 2.5 ", "1e1"), Some(true));
        assert_eq!(compare(DecisionOp::Ge, "1.0", "1"), Some(true));
        assert_eq!(compare(DecisionOp::Eq, "1.0", "1"), Some(false));
        assert_eq!(compare(DecisionOp::Gt, "NaN", "5"), Some(true));
        assert_eq!(compare(DecisionOp::Gt, "inf", "5"), Some(true));
        assert_eq!(compare(DecisionOp::Le, "b", "a"), Some(false));
        assert_eq!(compare(DecisionOp::Regex, "b", "a"), None);
    }

    #[test]
    fn in_place_rewrites_keep_order() {
        let batch: Vec<Document> = (0..4).map(|i| Document::new(vec![i])).collect();
        let mut docs = InPlace::new(batch);
        while let Some((i, doc)) = docs.next() {
            // 0 -> none, 1 -> three, 2 -> one, 3 -> two.
            let copies = [0, 3, 1, 2][i];
            for k in 0..copies {
                docs.push(doc.derive(vec![i as u8 * 10 + k]));
            }
        }
        let data: Vec<u8> = docs.finish().into_iter().map(|d| d.data[0]).collect();
        assert_eq!(data, vec![10, 11, 12, 20, 30, 31]);
    }
}
