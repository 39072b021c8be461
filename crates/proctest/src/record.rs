//! `stepwise test --record DUMP_DIR`: a test-mode run's dumps (`run --test`) turned into a test
//! case. The start documents (a disk start: what entered the step after it), every exchange of a
//! network connection as a mock answer (`order: once`, so that repeated requests get their
//! answers in order), and as expectations the run's status, each step's counts, the documents
//! that entered each step, the requests per connection and the notifications. Only the method,
//! path and body of requests are read from the dumps (which never hold headers or tokens), so
//! no credential can reach the test file.

use std::path::{Path, PathBuf};

use compiler::{ConnectionSpec, Plan, StepKind};
use engine::Registry;
use serde_json::{Map, Value, json};

use crate::mock::graphql_operation;

/// Why a dump cannot be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("'{0}': no such directory")]
    Missing(PathBuf),
    #[error(
        "'{0}' is not a test-mode dump directory (no readable run.json; make one with `stepwise run FILE --test --dump DIR`)"
    )]
    NotADump(PathBuf),
    #[error("'{dir}': {message}")]
    Unusable { dir: PathBuf, message: String },
    #[error("'{file}': {message}")]
    Process { file: PathBuf, message: String },
}

/// The dump directory, read.
struct Dump {
    dir: PathBuf,
    run: Value,
}

impl Dump {
    fn open(dir: &Path) -> Result<Dump, RecordError> {
        if !dir.is_dir() {
            return Err(RecordError::Missing(dir.to_owned()));
        }
        let run: Value = std::fs::read(dir.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|v: &Value| v.get("format").is_some() && v.get("steps").is_some_and(Value::is_array))
            .ok_or_else(|| RecordError::NotADump(dir.to_owned()))?;
        let dump = Dump { dir: dir.to_owned(), run };
        if dump.run["status"] == "RUNNING" {
            return Err(dump.unusable("the run did not finish (run.json says RUNNING)"));
        }
        if dump.run["dump"]["complete"] != Value::Bool(true) {
            return Err(dump.unusable(
                "the dump is incomplete (limits or a write failure left documents out); record a run dumped whole",
            ));
        }
        Ok(dump)
    }

    fn unusable(&self, message: impl Into<String>) -> RecordError {
        RecordError::Unusable { dir: self.dir.clone(), message: message.into() }
    }

    fn steps(&self) -> &[Value] {
        self.run["steps"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    fn step(&self, id: &str) -> Option<&Value> {
        self.steps().iter().find(|s| s["step"] == id)
    }

    /// A file the dump lists (relative to the dump directory).
    fn read(&self, relative: &str) -> Result<Vec<u8>, RecordError> {
        std::fs::read(self.dir.join(relative)).map_err(|e| self.unusable(format!("cannot read '{relative}': {e}")))
    }

    /// The documents that entered `step`, as a test writes them (JSON, or the text).
    fn entered(&self, step: &Value) -> Result<Vec<Value>, RecordError> {
        let files = step["source"]["files"].as_array().map(Vec::as_slice).unwrap_or_default();
        files.iter().map(|f| self.read(f["data"].as_str().unwrap_or_default()).map(|b| document_value(&b))).collect()
    }

    /// The exchanges of `step`, in order.
    fn exchanges(&self, step: &Value) -> Result<Vec<Value>, RecordError> {
        let files = step["connection"]["files"].as_array().map(Vec::as_slice).unwrap_or_default();
        files
            .iter()
            .map(|f| {
                let name = f.as_str().unwrap_or_default();
                serde_json::from_slice(&self.read(name)?)
                    .map_err(|e| self.unusable(format!("'{name}' is not JSON: {e}")))
            })
            .collect()
    }
}

/// A document as a test writes it: its JSON, or its text.
pub fn document_value(data: &[u8]) -> Value {
    serde_json::from_slice(data).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}

/// The test file (YAML) recorded from `dump_dir`; its `process` is written relative to `out_dir`
/// (the directory the test file goes to).
pub fn record(dump_dir: &Path, out_dir: &Path, registry: &Registry) -> Result<String, RecordError> {
    let dump = Dump::open(dump_dir)?;
    let process_file = dump.run["process_file"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| dump.unusable("run.json names no process_file (dumped by an older stepwise)"))?;
    let plan = compile(&process_file, registry)?;
    let mut case = Map::new();
    let name = format!("recorded run {}", dump.run["run_id"].as_str().unwrap_or("?"));
    case.insert("name".into(), Value::String(name));
    if let Some(props) = dump.run["properties"].as_object().filter(|p| !p.is_empty()) {
        case.insert("properties".into(), Value::Object(props.clone()));
    }
    if let Some(start) = start_documents(&dump, &plan)? {
        case.insert("start".into(), Value::Array(start));
    }
    let files = input_files(&dump, &plan, process_file.parent().unwrap_or(Path::new(".")))?;
    if !files.is_empty() {
        case.insert("files".into(), Value::Object(files));
    }
    let (mocks, requests) = mocks(&dump, &plan)?;
    case.insert("mocks".into(), Value::Object(mocks));
    case.insert("expect".into(), expect(&dump, &plan, requests)?);
    let file = json!({ "process": relative_to(&process_file, out_dir), "cases": [Value::Object(case)] });
    let yaml = serde_yaml::to_string(&file).map_err(|e| dump.unusable(e.to_string()))?;
    Ok(format!(
        "# yaml-language-server: $schema=https://stepwise.example/schemas/process-test.schema.json\n# Recorded by `stepwise test --record {}`\n{yaml}",
        dump_dir.display()
    ))
}

fn compile(file: &Path, registry: &Registry) -> Result<Plan, RecordError> {
    let fail = |message: String| RecordError::Process { file: file.to_owned(), message };
    let bytes = std::fs::read(file).map_err(|e| fail(format!("cannot read the process that ran: {e}")))?;
    let compiled = compiler::compile(&bytes, registry);
    let errors: Vec<String> = compiled.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render("")).collect();
    compiled
        .plan
        .filter(|_| errors.is_empty())
        .ok_or_else(|| fail(format!("the process is invalid now: {}", errors.join("; "))))
}

/// `path` relative to `dir` when both are absolute and share a prefix, else `path` itself.
fn relative_to(path: &Path, dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let (a, b): (Vec<_>, Vec<_>) = (path.components().collect(), dir.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return path.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c);
    }
    out.display().to_string()
}

/// A disk start's documents: what entered the step after the start. A network start is mocked.
fn start_documents(dump: &Dump, plan: &Plan) -> Result<Option<Vec<Value>>, RecordError> {
    let StepKind::StartConnector { call, next } = &plan.graph[plan.start].kind else { return Ok(None) };
    if !matches!(plan.connections.get(&call.connection), Some(ConnectionSpec::Disk { .. })) {
        return Ok(None);
    }
    let next = &plan.graph[*next].id;
    let step = dump.step(next).ok_or_else(|| dump.unusable(format!("run.json has no step '{next}'")))?;
    dump.entered(step).map(Some)
}

/// The files a disk `get` read after the start (their content now, as the dumps hold only what
/// came out of them), by their path relative to the process's directory.
fn input_files(dump: &Dump, plan: &Plan, process_dir: &Path) -> Result<Map<String, Value>, RecordError> {
    let mut out = Map::new();
    for step in dump.steps() {
        let id = step["step"].as_str().unwrap_or_default();
        if id == plan.graph[plan.start].id {
            continue;
        }
        let Some(connection) = connection_of(plan, id) else { continue };
        let Some(ConnectionSpec::Disk { directory }) = plan.connections.get(&connection) else { continue };
        for exchange in dump.exchanges(step)? {
            if exchange["request"]["action"] != "get" {
                continue;
            }
            let read = exchange["response"]["files"].as_array().cloned().unwrap_or_default();
            for name in read.iter().filter_map(|f| f["file"].as_str()) {
                let relative = Path::new(directory).join(name);
                let content = std::fs::read_to_string(process_dir.join(&relative)).map_err(|e| {
                    dump.unusable(format!(
                        "step '{id}' read '{}', which cannot be read as text now: {e}",
                        relative.display()
                    ))
                })?;
                out.insert(relative.display().to_string(), Value::String(content));
            }
        }
    }
    Ok(out)
}

/// Per mocked connection, `{count: N}`.
type Requests = Map<String, Value>;

/// Each network connection's exchanges as mock answers, and how many requests each got.
fn mocks(dump: &Dump, plan: &Plan) -> Result<(Map<String, Value>, Requests), RecordError> {
    let mut answers: Map<String, Value> = Map::new();
    for (name, spec) in &plan.connections {
        if !matches!(spec, ConnectionSpec::Disk { .. }) {
            answers.insert(name.clone(), Value::Array(Vec::new()));
        }
    }
    for step in dump.steps() {
        let Some(connection) = connection_of(plan, step["step"].as_str().unwrap_or_default()) else { continue };
        let Some(Value::Array(list)) = answers.get_mut(&connection) else { continue };
        let spec = &plan.connections[&connection];
        for exchange in dump.exchanges(step)? {
            list.push(answer(&exchange, spec));
        }
    }
    let requests =
        answers.iter().map(|(k, v)| (k.clone(), json!({ "count": v.as_array().map_or(0, Vec::len) }))).collect();
    let mocks = answers.into_iter().map(|(k, v)| (k, json!({ "order": "once", "answers": v }))).collect();
    Ok((mocks, requests))
}

fn connection_of(plan: &Plan, step: &str) -> Option<String> {
    plan.graph.node_weights().find(|s| s.id == step).and_then(|s| match &s.kind {
        StepKind::StartConnector { call, .. } | StepKind::Connector { call, .. } => Some(call.connection.clone()),
        _ => None,
    })
}

/// One exchange as a mock answer: `when` the request's method, path and body (GraphQL: the
/// operation and its variables), `reply` the response (a body, an HTTP error, or a fault).
fn answer(exchange: &Value, spec: &ConnectionSpec) -> Value {
    let request = &exchange["request"];
    let url = request["url"].as_str().and_then(|u| connector_http::reqwest::Url::parse(u).ok());
    let full_path = url.as_ref().map(|u| u.path().to_owned()).unwrap_or_default();
    let (path, account) = boomi_relative(&full_path);
    let mut when = Map::new();
    when.insert("method".into(), request["method"].clone());
    when.insert("path".into(), Value::String(path));
    let mut body = request["body"].clone();
    if let (Some(recorded), ConnectionSpec::BoomiPlatform { account_id, .. }) = (account, spec) {
        replace_strings(&mut body, &recorded, account_id);
    }
    match body.get("query").and_then(Value::as_str).and_then(graphql_operation) {
        Some(operation) => {
            when.insert("operation".into(), Value::String(operation));
            when.insert("body".into(), json!({ "variables": body.get("variables").cloned().unwrap_or(json!({})) }));
        }
        None => {
            when.insert("body".into(), body);
        }
    }
    json!({ "when": when, "reply": reply(&exchange["response"]) })
}

fn reply(response: &Value) -> Value {
    let status = response["status"].as_u64();
    match (status, response.get("body")) {
        (None, _) => json!({ "fault": response["error"].as_str().unwrap_or("no answer") }),
        (Some(200), Some(body)) => json!({ "body": body }),
        (Some(s), Some(body)) if !body.is_null() || response.get("error").is_none() => {
            json!({ "status": s, "body": body })
        }
        (Some(s), _) => json!({ "status": s, "message": response["error"].as_str().unwrap_or_default() }),
    }
}

/// A Boomi Platform path without its `/api/rest/v1/<account>/` prefix (so that the test runs
/// with the process's own account id), and the account id recorded.
fn boomi_relative(path: &str) -> (String, Option<String>) {
    let Some(rest) = path.strip_prefix("/api/rest/v1/") else { return (path.to_owned(), None) };
    match rest.split_once('/') {
        Some((account, tail)) => (tail.to_owned(), Some(account.to_owned())),
        None => (path.to_owned(), None),
    }
}

fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

/// The run's status, each step's counts, what entered each step (the start aside), the
/// requests per mocked connection and the notifications.
fn expect(dump: &Dump, plan: &Plan, requests: Map<String, Value>) -> Result<Value, RecordError> {
    let start = &plan.graph[plan.start].id;
    let mut steps = Map::new();
    let mut entered = Map::new();
    for step in dump.steps() {
        let id = step["step"].as_str().unwrap_or_default().to_owned();
        let counts =
            json!({ "in": step["documents_in"], "out": step["documents_out"], "errors": step["documents_error"] });
        steps.insert(id.clone(), counts);
        if &id != start && step["source"]["recorded"].as_u64().unwrap_or(0) > 0 {
            entered.insert(id, json!({ "documents": dump.entered(step)? }));
        }
    }
    let mut expect = Map::new();
    expect.insert("status".into(), dump.run["status"].clone());
    expect.insert("steps".into(), Value::Object(steps));
    expect.insert("entered".into(), Value::Object(entered));
    expect.insert("requests".into(), Value::Object(requests));
    expect.insert("notifications".into(), json!({ "exactly": notifications(dump) }));
    Ok(Value::Object(expect))
}

/// The notifications; a message that holds the run id (a file name, say) is matched by step
/// and level only, since a test's run has another id.
fn notifications(dump: &Dump) -> Vec<Value> {
    let run_id = dump.run["run_id"].as_str().unwrap_or("\u{0}");
    let list = dump.run["notifications"].as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .map(|n| {
            let message = n["message"].as_str().unwrap_or_default();
            let mut m = json!({ "step": n["step"], "level": n["level"] });
            if !message.contains(run_id) {
                m["message"] = Value::String(message.to_owned());
            }
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boomi_paths_lose_their_account_and_others_stay_whole() {
        assert_eq!(
            boomi_relative("/api/rest/v1/acme-1/Role/query"),
            ("Role/query".to_owned(), Some("acme-1".to_owned()))
        );
        assert_eq!(boomi_relative("/graphql"), ("/graphql".to_owned(), None));
    }

    #[test]
    fn replies_are_bodies_errors_or_faults() {
        assert_eq!(reply(&json!({"status": 200, "body": {"a": 1}})), json!({"body": {"a": 1}}));
        assert_eq!(reply(&json!({"status": 200, "body": null})), json!({"body": null}));
        assert_eq!(
            reply(&json!({"status": 400, "error": "HTTP 400: no", "body": {"message": "no"}})),
            json!({"status": 400, "body": {"message": "no"}})
        );
        assert_eq!(
            reply(&json!({"status": 403, "error": "HTTP 403", "body": null})),
            json!({"status": 403, "message": "HTTP 403"})
        );
        assert_eq!(
            reply(&json!({"status": null, "error": "connection reset", "body": null})),
            json!({"fault": "connection reset"})
        );
    }

    #[test]
    fn paths_are_written_relative_to_the_test_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(base.join("tests")).unwrap();
        assert_eq!(relative_to(&base.join("p.yaml"), &base.join("tests")), "../p.yaml");
        assert_eq!(relative_to(&base.join("p.yaml"), &base), "p.yaml");
    }
}
