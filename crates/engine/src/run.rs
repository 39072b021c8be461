//! The executor: Boomi's execution order over the plan graph.
//!
//! A batch of documents enters a step; every document passes through the step before any moves
//! on; then each outgoing path runs to completion in order (branch paths as listed, decision
//! `true` before `false`, try before catch). A step reached by two paths runs once per arriving
//! batch; a step that receives no documents is skipped.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use compiler::jq::{self, JqFilter};
use compiler::{CatchErrors, ConnectorCall, DecisionOp, NotifyLevel, Plan, StepKind};
use futures::FutureExt;
use indexmap::IndexMap;
use petgraph::graph::NodeIndex;

use crate::connector::{ApiError, ConnectEnv, Connector, Input, OperationRef, Output, Registry};
use crate::document::Document;
use crate::params::{DocView, ParamEnv, eval, eval_all};
use crate::report::{Notification, RunError, RunReport, RunStatus, StepStats};

/// Receives what test mode records. Implementations write as they go (nothing is held).
pub trait Recorder: Send + Sync {
    /// A document entered `step` (its source data).
    fn source(&self, step: &str, document: &Document);
    /// A connector step's request and response for one call.
    fn exchange(&self, step: &str, exchange: &serde_json::Value);
}

/// How to run.
pub struct RunOptions {
    pub run_id: String,
    /// `--set NAME=VALUE` process property overrides.
    pub overrides: Vec<(String, String)>,
    pub env: ConnectEnv,
    pub recorder: Option<Arc<dyn Recorder>>,
}

/// A document that failed, on its way up to a try/catch or to the run's result.
#[derive(Debug)]
struct DocFail {
    step: String,
    number: u64,
    message: String,
    lineage: Vec<u64>,
}

/// Why a run stops early.
enum Halt {
    /// A process error: the run ends with ERROR.
    Error(RunError),
    /// A `stop` with `continue: false`: the run ends successfully.
    Stop,
}

struct Exec<'p> {
    plan: &'p Plan,
    registry: &'p Registry,
    env: ConnectEnv,
    recorder: Option<Arc<dyn Recorder>>,
    process_props: HashMap<String, String>,
    stats: Vec<StepStats>,
    micros: Vec<u128>,
    connectors: HashMap<String, Arc<dyn Connector>>,
    jq_cache: HashMap<String, JqFilter>,
    regex_cache: HashMap<String, regex::Regex>,
    warned: bool,
    notifications: Vec<Notification>,
    next_tag: u64,
    documents_out: u64,
    error_documents: u64,
}

const MAX_NOTIFICATIONS: usize = 10_000;

/// Runs a plan once. Never panics: a panic inside a step becomes that step's failure.
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
    let mut exec = Exec {
        plan,
        registry,
        env,
        recorder: options.recorder,
        process_props,
        stats,
        micros: vec![0; plan.graph.node_count()],
        connectors: HashMap::new(),
        jq_cache: HashMap::new(),
        regex_cache: HashMap::new(),
        warned: false,
        notifications: Vec::new(),
        next_tag: 1,
        documents_out: 0,
        error_documents: 0,
    };
    tracing::info!(run_id = %options.run_id, process = %plan.name, "Run started.");
    let start_doc = vec![Document::default()];
    let outcome = exec.exec(plan.start, start_doc).await;
    let mut errors = Vec::new();
    let (status, error) = match outcome {
        Ok(fails) if fails.is_empty() => {
            (if exec.warned { RunStatus::CompleteWarn } else { RunStatus::Complete }, None)
        }
        Ok(fails) => {
            for f in fails {
                errors.push(RunError {
                    step: f.step,
                    document: Some(f.number),
                    message: exec.env.redactor.redact(&f.message),
                });
            }
            (RunStatus::Error, errors.first().cloned())
        }
        Err(Halt::Stop) => (if exec.warned { RunStatus::CompleteWarn } else { RunStatus::Complete }, None),
        Err(Halt::Error(mut e)) => {
            e.message = exec.env.redactor.redact(&e.message);
            errors.push(e.clone());
            (RunStatus::Error, Some(e))
        }
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
    };
    tracing::info!(run_id = %report.run_id, status = report.status.as_str(), millis = report.millis, "Run ended.");
    report
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

fn wildcard_to_regex(pattern: &str) -> String {
    let mut re = String::from("^(?s:");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push_str(")$");
    re
}

fn compare(op: DecisionOp, left: &str, right: &str) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = || match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => left.cmp(right),
    };
    Some(match op {
        DecisionOp::Eq => left == right,
        DecisionOp::Ne => left != right,
        DecisionOp::Gt => ord() == Ordering::Greater,
        DecisionOp::Ge => ord() != Ordering::Less,
        DecisionOp::Lt => ord() == Ordering::Less,
        DecisionOp::Le => ord() != Ordering::Greater,
        DecisionOp::Regex | DecisionOp::Wildcard => return None,
    })
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
        }
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
                let first = self.enter(idx, &batch);
                let n = batch.len() as u64;
                self.stats[idx.index()].documents_out += n;
                let _ = first;
                return self.try_catch(idx, *try_path, *catch, *retries, *catch_errors, batch).await;
            }
            let first = self.enter(idx, &batch);
            let clock = Instant::now();
            let step_id = self.plan.graph[idx].id.clone();
            let result = AssertUnwindSafe(self.step(idx, batch, first)).catch_unwind().await;
            self.micros[idx.index()] += clock.elapsed().as_micros();
            let routed = match result {
                Ok(r) => r?,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    tracing::error!(step = %step_id, error = %what, "Step panicked.");
                    self.stats[idx.index()].documents_error += 1;
                    return Err(Halt::Error(RunError {
                        step: step_id,
                        document: None,
                        message: format!("the step failed unexpectedly (panic: {what})"),
                    }));
                }
            };
            let mut fails = routed.fails;
            self.stats[idx.index()].documents_error += fails.len() as u64;
            for (_, docs) in &routed.outputs {
                self.stats[idx.index()].documents_out += docs.len() as u64;
            }
            if routed.outputs.is_empty()
                && matches!(self.plan.graph[idx].kind, StepKind::Stop { .. } | StepKind::Connector { next: None, .. })
            {
                // Documents end their path here.
            }
            for (next, docs) in routed.outputs {
                if docs.is_empty() {
                    continue;
                }
                let mut below = self.exec(next, docs).await?;
                fails.append(&mut below);
            }
            Ok(fails)
        })
    }

    /// Counts and records documents entering a step; returns the number of the first one.
    fn enter(&mut self, idx: NodeIndex, batch: &[Document]) -> u64 {
        let stats = &mut self.stats[idx.index()];
        let first = stats.documents_in + 1;
        stats.documents_in += batch.len() as u64;
        stats.executions += 1;
        if let Some(rec) = &self.recorder {
            let id = &self.plan.graph[idx].id;
            for d in batch {
                rec.source(id, d);
            }
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
        for attempt in 0..=retries {
            if attempt > 0 {
                tracing::info!(step = %self.plan.graph[idx].id, attempt, documents = pending.len(), "Retrying the try path.");
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
            match self.exec(try_path, docs).await {
                Ok(fails) => {
                    for f in fails {
                        match f.lineage.iter().rev().find(|l| *l >> 32 == tag) {
                            Some(l) => {
                                let i = (l & 0xffff_ffff) as usize;
                                if !messages.contains_key(&i) {
                                    failed.push(i);
                                    messages.insert(i, format!("step '{}': {}", f.step, f.message));
                                }
                            }
                            None => passed_up.push(f),
                        }
                    }
                }
                Err(Halt::Error(e)) if catch_errors == CatchErrors::All => {
                    for &i in &pending {
                        failed.push(i);
                        messages.insert(i, format!("step '{}': {}", e.step, e.message));
                    }
                }
                Err(h) => return Err(h),
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
            let mut below = self.exec(catch, docs).await?;
            passed_up.append(&mut below);
        }
        Ok(passed_up)
    }

    async fn connector_for(&mut self, idx: NodeIndex, call: &ConnectorCall) -> Result<Arc<dyn Connector>, Halt> {
        if let Some(c) = self.connectors.get(&call.connection) {
            return Ok(c.clone());
        }
        let step = self.plan.graph[idx].id.clone();
        let halt = |message: String| Halt::Error(RunError { step: step.clone(), document: None, message });
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
        };
        let mut fails = Vec::new();
        // Parameters for each document.
        let n = batch.len();
        let mut inputs: Vec<(u64, Input)> = Vec::with_capacity(n);
        for (i, doc) in batch.into_iter().enumerate() {
            let number = first + i as u64;
            let view = DocView::new(&doc);
            let mut env = self.param_env(n);
            let mut parameters = IndexMap::new();
            let mut failed = None;
            for (name, p) in &call.parameters {
                match eval(p, &view, &mut env) {
                    Ok(v) => {
                        parameters.insert(name.clone(), v);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let file_name = if failed.is_none() && !call.file_name.is_empty() {
                match eval_all(&call.file_name, &view, &mut env) {
                    Ok(parts) => Some(parts.concat()),
                    Err(e) => {
                        failed = Some(e);
                        None
                    }
                }
            } else {
                None
            };
            drop(view);
            match failed {
                Some(e) => fails.push(self.fail(idx, number, &doc, e)),
                None => inputs.push((number, Input { document: doc, parameters, file_name })),
            }
        }
        // Validation of the whole batch before any request.
        let mut valid: Vec<(u64, Input)> = Vec::with_capacity(inputs.len());
        let mut out_docs = Vec::new();
        let mut invalid = Vec::new();
        for (number, input) in inputs {
            match connector.validate(&op, &input) {
                Ok(()) => valid.push((number, input)),
                Err(details) => invalid.push((number, input, details)),
            }
        }
        if !invalid.is_empty() && !call.error_response {
            let (number, _, details) = &invalid[0];
            let fields: Vec<String> = details.iter().map(|d| format!("{}: {}", d.field, d.reason)).collect();
            let more = if invalid.len() > 1 {
                format!(" ({} invalid documents in all)", invalid.len())
            } else {
                String::new()
            };
            return Err(Halt::Error(RunError {
                step,
                document: Some(*number),
                message: format!("invalid document: {}{more}; no request was made", fields.join("; ")),
            }));
        }
        for (_, input, details) in invalid {
            let err = ApiError {
                kind: crate::connector::ErrorKind::Validation,
                status: None,
                message: "the document is not valid input for this action".to_owned(),
                details,
            };
            out_docs.push(self.error_document(&op, &call.connection, &input.document, &err));
        }
        if !valid.is_empty() {
            let numbers: Vec<u64> = valid.iter().map(|(n, _)| *n).collect();
            let inputs: Vec<Input> = valid.into_iter().map(|(_, i)| i).collect();
            let mut out = Output::new(!call.error_response);
            connector
                .execute(&op, &inputs, &mut out)
                .await
                .map_err(|e| Halt::Error(RunError { step: step.clone(), document: None, message: e.to_string() }))?;
            if let Some(rec) = &self.recorder {
                for (_, ex) in &out.exchanges {
                    let text = self.env.redactor.redact(&ex.to_string());
                    let ex = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
                    rec.exchange(&step, &ex);
                }
            }
            for (i, result) in out.results {
                let input = inputs.get(i).map(|x| &x.document);
                match result {
                    Ok(mut doc) => {
                        if let Some(input) = input {
                            let mut props = input.properties.clone();
                            props.append(&mut doc.properties);
                            doc.properties = props;
                            doc.lineage = input.lineage.clone();
                        }
                        doc.properties.insert("application_status_code".to_owned(), String::new());
                        doc.properties.insert("application_status_message".to_owned(), String::new());
                        out_docs.push(doc);
                    }
                    Err(err) => {
                        if !call.error_response {
                            let status = err.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                            return Err(Halt::Error(RunError {
                                step,
                                document: numbers.get(i).copied(),
                                message: format!("{} error{status}: {}", err.kind.as_str(), err.message),
                            }));
                        }
                        let empty = Document::default();
                        out_docs.push(self.error_document(&op, &call.connection, input.unwrap_or(&empty), &err));
                    }
                }
            }
        }
        Ok((out_docs, fails))
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
        let input_json = input.json().unwrap_or_else(|_| serde_json::Value::String(input.text().into_owned()));
        let message = self.env.redactor.redact(&err.message);
        let body = serde_json::json!({
            "error": {
                "kind": err.kind.as_str(),
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
        let mut doc = input.derive(serde_json::to_vec(&body).unwrap_or_default());
        let code = err.status.map(|s| s.to_string()).unwrap_or_else(|| err.kind.as_str().to_owned());
        doc.properties.insert("application_status_code".to_owned(), code);
        doc.properties.insert("application_status_message".to_owned(), message);
        doc
    }

    /// One step's own work on a batch.
    async fn step(&mut self, idx: NodeIndex, batch: Vec<Document>, first: u64) -> Result<Routed, Halt> {
        let plan = self.plan;
        let kind = &plan.graph[idx].kind;
        let n = batch.len();
        match kind {
            StepKind::StartNoData { next } => Ok(Routed::to(Some(*next), batch, Vec::new())),
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
            StepKind::Message { template, params, combine, next } => {
                let mut out = Vec::with_capacity(if *combine { 1 } else { n });
                let mut fails = Vec::new();
                let mut combined = String::new();
                let mut combined_props = None;
                for (i, doc) in batch.into_iter().enumerate() {
                    let view = DocView::new(&doc);
                    let mut env = self.param_env(n);
                    match eval_all(params, &view, &mut env) {
                        Ok(values) => {
                            drop(view);
                            if *combine {
                                if combined_props.is_none() {
                                    combined_props = Some(doc);
                                } else {
                                    combined.push('\n');
                                }
                                template.render_into(&values, &mut combined);
                            } else {
                                let mut d = doc;
                                d.data = template.render(&values).into_bytes();
                                out.push(d);
                            }
                        }
                        Err(e) => {
                            drop(view);
                            fails.push(self.fail(idx, first + i as u64, &doc, e));
                        }
                    }
                }
                if let Some(mut d) = combined_props {
                    d.data = combined.into_bytes();
                    out.push(d);
                }
                Ok(Routed::to(Some(*next), out, fails))
            }
            StepKind::Map { jq: code, next } => {
                if !self.jq_cache.contains_key(code) {
                    let f = jq::compile(code).map_err(|e| {
                        Halt::Error(RunError { step: plan.graph[idx].id.clone(), document: None, message: e })
                    })?;
                    self.jq_cache.insert(code.clone(), f);
                }
                let mut out = Vec::with_capacity(n);
                let mut fails = Vec::new();
                for (i, doc) in batch.into_iter().enumerate() {
                    let filter = &self.jq_cache[code];
                    let result = doc.json().and_then(|v| jq::run(filter, v));
                    match result {
                        Ok(values) => {
                            for v in values {
                                out.push(doc.derive(serde_json::to_vec(&v).unwrap_or_default()));
                            }
                        }
                        Err(e) => fails.push(self.fail(idx, first + i as u64, &doc, e)),
                    }
                }
                Ok(Routed::to(Some(*next), out, fails))
            }
            StepKind::SetProperties { document, process, next } => {
                let mut out = Vec::with_capacity(n);
                let mut fails = Vec::new();
                for (i, mut doc) in batch.into_iter().enumerate() {
                    let mut error = None;
                    let mut doc_sets = Vec::new();
                    let mut proc_sets = Vec::new();
                    {
                        let view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        for (name, ps) in document {
                            match eval_all(ps, &view, &mut env) {
                                Ok(v) => doc_sets.push((name.clone(), v.concat())),
                                Err(e) => {
                                    error = Some(format!("document property '{name}': {e}"));
                                    break;
                                }
                            }
                        }
                        if error.is_none() {
                            for (name, ps) in process {
                                match eval_all(ps, &view, &mut env) {
                                    Ok(v) => proc_sets.push((name.clone(), v.concat())),
                                    Err(e) => {
                                        error = Some(format!("process property '{name}': {e}"));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    match error {
                        Some(e) => fails.push(self.fail(idx, first + i as u64, &doc, e)),
                        None => {
                            doc.properties.extend(doc_sets);
                            self.process_props.extend(proc_sets);
                            out.push(doc);
                        }
                    }
                }
                Ok(Routed::to(Some(*next), out, fails))
            }
            StepKind::Decision { left, op, right, if_true, if_false } => {
                let mut yes = Vec::new();
                let mut no = Vec::new();
                let mut fails = Vec::new();
                for (i, doc) in batch.into_iter().enumerate() {
                    let outcome = {
                        let view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        eval(left, &view, &mut env).and_then(|l| eval(right, &view, &mut env).map(|r| (l, r)))
                    };
                    let decided = outcome.and_then(|(l, r)| match compare(*op, &l, &r) {
                        Some(b) => Ok(b),
                        None => {
                            let pattern =
                                if *op == DecisionOp::Wildcard { wildcard_to_regex(&r) } else { format!("^(?:{r})$") };
                            if !self.regex_cache.contains_key(&pattern) {
                                let re = regex::Regex::new(&pattern)
                                    .map_err(|e| format!("'right' is not a valid pattern: {e}"))?;
                                self.regex_cache.insert(pattern.clone(), re);
                            }
                            Ok(self.regex_cache[&pattern].is_match(&l))
                        }
                    });
                    match decided {
                        Ok(true) => yes.push(doc),
                        Ok(false) => no.push(doc),
                        Err(e) => fails.push(self.fail(idx, first + i as u64, &doc, e)),
                    }
                }
                Ok(Routed { outputs: vec![(*if_true, yes), (*if_false, no)], fails })
            }
            StepKind::Branch { paths } => {
                let mut outputs = Vec::with_capacity(paths.len());
                for (i, p) in paths.iter().enumerate() {
                    if i + 1 == paths.len() {
                        outputs.push((*p, batch));
                        break;
                    }
                    outputs.push((*p, batch.clone()));
                }
                Ok(Routed { outputs, fails: Vec::new() })
            }
            StepKind::TryCatch { .. } => Ok(Routed { outputs: Vec::new(), fails: Vec::new() }),
            StepKind::Exception { template, params, stop_process } => {
                let mut fails = Vec::new();
                for (i, doc) in batch.into_iter().enumerate() {
                    let message = {
                        let view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        match eval_all(params, &view, &mut env) {
                            Ok(values) => template.render(&values),
                            Err(e) => e,
                        }
                    };
                    if *stop_process {
                        return Err(Halt::Error(RunError {
                            step: plan.graph[idx].id.clone(),
                            document: Some(first + i as u64),
                            message,
                        }));
                    }
                    fails.push(self.fail(idx, first + i as u64, &doc, message));
                }
                Ok(Routed { outputs: Vec::new(), fails })
            }
            StepKind::Notify { template, params, level, next } => {
                let mut fails = Vec::new();
                let mut out = Vec::with_capacity(n);
                let id = plan.graph[idx].id.clone();
                for (i, doc) in batch.into_iter().enumerate() {
                    let rendered = {
                        let view = DocView::new(&doc);
                        let mut env = self.param_env(n);
                        eval_all(params, &view, &mut env).map(|v| template.render(&v))
                    };
                    match rendered {
                        Ok(message) => {
                            let message = self.env.redactor.redact(&message);
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
                            out.push(doc);
                        }
                        Err(e) => fails.push(self.fail(idx, first + i as u64, &doc, e)),
                    }
                }
                Ok(Routed::to(Some(*next), out, fails))
            }
            StepKind::Stop { keep_going } => {
                self.documents_out += n as u64;
                if *keep_going { Ok(Routed { outputs: Vec::new(), fails: Vec::new() }) } else { Err(Halt::Stop) }
            }
        }
    }
}
