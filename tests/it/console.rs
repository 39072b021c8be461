//! The console of `stepwise serve --listen` (issue 16, process format section 9) through the
//! real binary: every route against every role, cross-origin state changes refused, tokens
//! never in an answer or the log, run now followed to its end, pause and resume of schedules,
//! the first admin token, and plain HTTP refused off loopback. Checks compare statuses,
//! counts and recorded instants, never durations.

use std::collections::BTreeSet;
use std::process::Command;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::support::{Dir, LoggedProcess, SimProcess, free_port, http_full, stepwise};

/// A process that does nothing, with `schedules` (a YAML block, or empty).
pub(crate) fn fast(name: &str, schedules: &str) -> String {
    format!("name: {name}\n{schedules}start:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n")
}

pub(crate) const EVERY_SECOND: &str = "schedules:\n  - cron: \"* * * * * *\"\n";

/// `stepwise token create NAME --role ROLE` on the directory's store: the token.
fn create_token(dir: &Dir, name: &str, role: &str) -> String {
    create_token_with(dir, name, role, &[])
}

/// [`create_token`] with more options (`--view-data`).
pub(crate) fn create_token_with(dir: &Dir, name: &str, role: &str, more: &[&str]) -> String {
    let mut args = vec!["token", "create", name, "--role", role, "--state", "state.db"];
    args.extend_from_slice(more);
    let out = stepwise(dir.path(), &args);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_owned()
}

/// A `stepwise serve procs --listen 127.0.0.1:PORT` in a directory; killed when dropped.
pub(crate) struct Console {
    process: LoggedProcess,
    pub(crate) port: u16,
}

impl Console {
    pub(crate) fn start(dir: &Dir) -> Console {
        Console::start_env(dir, &[])
    }

    fn start_env(dir: &Dir, env: &[(&str, &str)]) -> Console {
        Console::start_with(dir, env, &[])
    }

    /// `serve` with environment `env` and extra arguments `args`.
    fn start_with(dir: &Dir, env: &[(&str, &str)], args: &[&str]) -> Console {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        command
            .current_dir(dir.path())
            .args(["--log", "info", "serve", "procs", "--state", "state.db", "--reload-ms", "200", "--listen", &addr])
            .args(args)
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("STEPWISE_KNOWBE4_RATE", "off")
            .envs(env.iter().copied());
        let console = Console { process: LoggedProcess::spawn(command), port };
        console.until("/health", || console.call("GET", "/health", None, &[], "").filter(|(s, _)| *s == 200));
        console
    }

    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until `probe` gives a value; panics with the log after a while.
    pub(crate) fn until<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        self.process.until(what, probe)
    }

    /// A request with an optional bearer token and extra headers.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Option<(u16, String)> {
        let host = format!("127.0.0.1:{}", self.port);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("Host", &host)];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        if !body.is_empty() && !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type", "application/json"));
        }
        headers.extend_from_slice(extra);
        http_full(self.port, method, path, &headers, body).map(|(status, _, body)| (status, body))
    }

    /// A request with headers only (a browser's): status, head and body.
    fn browse(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> (u16, String, String) {
        let host = format!("127.0.0.1:{}", self.port);
        let mut headers: Vec<(&str, &str)> = vec![("Host", &host)];
        headers.extend_from_slice(extra);
        http_full(self.port, method, path, &headers, body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
    }

    /// A request that must answer: status and body.
    fn ask(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
        self.call(method, path, Some(token), &[], body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
    }

    /// A GET that must answer 200 with JSON.
    pub(crate) fn json(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.ask("GET", path, token, "");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    fn terminate(&mut self) -> i32 {
        self.process.terminate()
    }
}

/// Who calls: no token, an unknown one, or a role's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Unknown,
    Viewer,
    Operator,
    Admin,
}

const EVERYONE: [Who; 5] = [Who::Nobody, Who::Unknown, Who::Viewer, Who::Operator, Who::Admin];

/// The expected status of each route for each caller: `[nobody, unknown, viewer, operator,
/// admin]`. The role's answers follow what its request does (a finished run cannot be
/// cancelled: 409; a token name is made once: 201 then, for nobody else, 403).
fn table(run_id: &str) -> Vec<(&'static str, String, &'static str, [u16; 5])> {
    let run = |suffix: &str| format!("/api/v1/runs/{run_id}{suffix}");
    let open = [200; 5];
    let read = [401, 401, 200, 200, 200];
    vec![
        ("GET", "/health".into(), "", open),
        ("GET", "/login".into(), "", open),
        ("POST", "/login".into(), "token=stw_wrong", [401; 5]),
        ("GET", "/console.css".into(), "", open),
        // Behind the process's own webhook secret, not tokens: `manual` has no webhook start,
        // so every caller, whatever its token, gets the same 404.
        ("POST", "/hooks/manual".into(), "{}", [404; 5]),
        ("GET", "/".into(), "", read),
        ("GET", "/processes/manual".into(), "", read),
        ("POST", "/processes/manual/run".into(), "go=1", [401, 401, 403, 303, 303]),
        ("POST", "/processes/manual/pause".into(), "", [401, 401, 403, 303, 303]),
        ("POST", "/processes/manual/resume".into(), "", [401, 401, 403, 303, 303]),
        ("POST", format!("/runs/{run_id}/cancel"), "", [401, 401, 403, 409, 409]),
        ("POST", format!("/runs/{run_id}/rerun"), "", [401, 401, 403, 303, 303]),
        ("GET", format!("/runs/{run_id}/steps/done"), "", [401, 401, 403, 403, 200]),
        ("GET", "/runs?process=manual&status=".into(), "", read),
        ("GET", format!("/runs/{run_id}"), "", read),
        ("GET", "/tokens".into(), "", [401, 401, 403, 403, 200]),
        ("POST", "/tokens".into(), "name=formmade&role=viewer&view_data=on", [401, 401, 403, 403, 201]),
        ("POST", "/tokens/gone/revoke".into(), "", [401, 401, 403, 403, 303]),
        ("GET", "/audit?limit=5".into(), "", [401, 401, 403, 403, 200]),
        ("POST", "/logout".into(), "", [401, 401, 303, 303, 303]),
        ("GET", "/metrics".into(), "", read),
        ("GET", "/api/v1/openapi.json".into(), "", read),
        ("GET", "/api/v1/processes".into(), "", read),
        ("GET", "/api/v1/runs?process=manual&limit=5".into(), "", read),
        ("GET", run(""), "", read),
        ("POST", "/api/v1/processes/manual/runs".into(), r#"{"properties": {}}"#, [401, 401, 403, 202, 202]),
        ("POST", "/api/v1/processes/manual/pause".into(), "", [401, 401, 403, 200, 200]),
        ("POST", "/api/v1/processes/manual/resume".into(), "", [401, 401, 403, 200, 200]),
        ("POST", run("/cancel"), "", [401, 401, 403, 409, 409]),
        ("POST", run("/rerun"), "", [401, 401, 403, 202, 202]),
        // Document contents need --view-data, which only the admin's token has here.
        ("GET", run("/steps/done/documents?limit=5"), "", [401, 401, 403, 403, 200]),
        ("GET", run("/steps/done/documents/download"), "", [401, 401, 403, 403, 200]),
        ("GET", "/api/v1/audit".into(), "", [401, 401, 403, 403, 200]),
        ("GET", "/api/v1/tokens".into(), "", [401, 401, 403, 403, 200]),
        ("POST", "/api/v1/tokens".into(), r#"{"name": "made", "role": "viewer"}"#, [401, 401, 403, 403, 201]),
        ("DELETE", "/api/v1/tokens/victim".into(), "", [401, 401, 403, 403, 204]),
    ]
}

/// The table's routes, as `openapi.json` spells them.
fn templated(path: &str, run_id: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let path = if path.ends_with("/manual") { path.replace("/manual", "/{name}") } else { path.to_owned() };
    let path = if path.ends_with("/steps/done") { path.replace("/steps/done", "/steps/{step}") } else { path };
    path.replace(run_id, "{run_id}")
        .replace("/manual/", "/{name}/")
        .replace("/victim", "/{name}")
        .replace("/gone/", "/{name}/")
        .replace("/steps/done/", "/steps/{step}/")
        .replace("/hooks/manual", "/hooks/{name}")
}

struct Tokens {
    viewer: String,
    operator: String,
    admin: String,
}

impl Tokens {
    fn make(dir: &Dir) -> Tokens {
        let tokens = Tokens {
            viewer: create_token(dir, "view", "viewer"),
            operator: create_token(dir, "ops", "operator"),
            admin: create_token_with(dir, "boss", "admin", &["--view-data"]),
        };
        create_token(dir, "victim", "viewer");
        create_token(dir, "gone", "viewer");
        tokens
    }

    fn of(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Unknown => Some("stw_not-a-token-anyone-was-given"),
            Who::Viewer => Some(&self.viewer),
            Who::Operator => Some(&self.operator),
            Who::Admin => Some(&self.admin),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.viewer, &self.operator, &self.admin]
    }
}

/// Runs a manual run through the API and waits for it to end; its record.
pub(crate) fn run_to_end(console: &Console, token: &str, process: &str, body: &str) -> Value {
    let (status, answer) = console.ask("POST", &format!("/api/v1/processes/{process}/runs"), token, body);
    assert_eq!(status, 202, "{answer}");
    let run_id = serde_json::from_str::<Value>(&answer).unwrap()["run_id"].as_str().expect("run_id").to_owned();
    console.until("the run to end", || {
        let detail = console.json(&format!("/api/v1/runs/{run_id}"), token);
        let status = detail["status"].as_str().unwrap_or_default().to_owned();
        matches!(status.as_str(), "COMPLETE" | "COMPLETE_WARN" | "ERROR" | "ABORTED" | "DISCARDED").then_some(detail)
    })
}

#[test]
fn every_route_answers_every_role_as_documented() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", ""));
    let tokens = Tokens::make(&dir);
    let mut console = Console::start(&dir);
    let done = run_to_end(&console, &tokens.operator, "manual", "");
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    let mut bodies = Vec::new();
    let mut wrong = Vec::new();
    let mut answered = BTreeSet::new();
    for (method, path, body, expected) in table(&run_id) {
        for (who, want) in EVERYONE.into_iter().zip(expected) {
            let form = [("Content-Type", "application/x-www-form-urlencoded")];
            let is_form = !body.is_empty() && !body.starts_with('{');
            let extra: &[(&str, &str)] = if is_form { &form } else { &[] };
            let (got, answer) = console
                .call(method, &path, tokens.of(who), extra, body)
                .unwrap_or_else(|| panic!("{method} {path}: no answer"));
            if got != want {
                wrong.push(format!("{method} {path} as {who:?}: {got}, expected {want}: {answer}"));
            }
            answered.insert((method.to_lowercase(), templated(&path, &run_id), got.to_string()));
            bodies.push(answer);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The table covers every documented route, and only those.
    let doc = console.json("/api/v1/openapi.json", &tokens.viewer);
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| format!("{} {path}", m.to_uppercase())))
        .collect();
    let tested: BTreeSet<String> =
        table(&run_id).iter().map(|(m, p, _, _)| format!("{m} {}", templated(p, &run_id))).collect();
    assert_eq!(tested, documented);
    // Every status a route answered is among its documented responses.
    let undocumented: Vec<_> = answered
        .iter()
        .filter(|(method, path, status)| doc["paths"][path][method]["responses"].get(status).is_none())
        .collect();
    assert!(undocumented.is_empty(), "statuses answered but not in openapi.json: {undocumented:?}");
    // An unknown path behind the token wall: 401 without a token, 404 with one.
    assert_eq!(console.call("GET", "/nope", None, &[], "").map(|r| r.0), Some(401));
    assert_eq!(console.call("GET", "/nope", Some(&tokens.viewer), &[], "").map(|r| r.0), Some(404));
    // No answer and no log line carries a token, not even the token list.
    let listed = stepwise(dir.path(), &["token", "list", "--state", "state.db"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(!listed.stdout.contains("victim") && listed.stdout.contains("made"), "{listed:?}");
    // Columns line up: each row's data access sits under DATA.
    let data_at = listed.stdout.lines().next().and_then(|h| h.find("DATA")).unwrap();
    for row in listed.stdout.lines().skip(1) {
        assert!(row.get(data_at..).is_some_and(|r| r.starts_with("no ") || r.starts_with("yes ")), "{}", listed.stdout);
    }
    assert_eq!(console.terminate(), 0, "{}", console.log());
    let log = console.log();
    for token in tokens.all() {
        assert!(!log.contains(token), "a token in the log:\n{log}");
        assert!(!listed.stdout.contains(token), "a token in `token list`");
        for body in &bodies {
            assert!(!body.contains(token), "a token in an answer: {body}");
        }
    }
}

#[test]
fn cross_origin_state_changes_are_refused() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", ""));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    let own = format!("http://127.0.0.1:{}", console.port);
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Origin", own.as_str()), ("Sec-Fetch-Site", "same-site")],
    ] {
        let answer = console.call("POST", "/api/v1/processes/manual/pause", Some(&tokens.admin), &headers, "");
        assert_eq!(answer.as_ref().map(|r| r.0), Some(403), "{headers:?}: {answer:?}");
        let answer = console.call("POST", "/api/v1/processes/manual/runs", Some(&tokens.admin), &headers, "");
        assert_eq!(answer.as_ref().map(|r| r.0), Some(403), "{headers:?}: {answer:?}");
    }
    // Nothing changed: not paused, no run, nothing audited.
    let processes = console.json("/api/v1/processes", &tokens.viewer);
    assert_eq!(processes[0]["paused"], false, "{processes}");
    assert_eq!(console.json("/api/v1/runs", &tokens.viewer), Value::Array(Vec::new()));
    let audit = console.json("/api/v1/audit", &tokens.admin);
    assert!(audit.as_array().unwrap().iter().all(|e| e["action"] == "token_create"), "{audit}");
    // The console's own origin may.
    let same = [("Origin", own.as_str()), ("Sec-Fetch-Site", "same-origin")];
    let answer = console.call("POST", "/api/v1/processes/manual/pause", Some(&tokens.operator), &same, "");
    assert_eq!(answer.as_ref().map(|r| r.0), Some(200), "{answer:?}");
    // GET never changes state: a GET of an action's path is no route.
    let answer = console.call("GET", "/api/v1/processes/manual/resume", Some(&tokens.admin), &[], "");
    assert_eq!(answer.as_ref().map(|r| r.0), Some(405), "{answer:?}");
    assert_eq!(console.json("/api/v1/processes", &tokens.viewer)[0]["paused"], true);
}

#[test]
fn run_now_runs_and_is_audited() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", "properties:\n  region: us\n  n: \"1\"\n"));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    let detail = run_to_end(&console, &tokens.operator, "manual", r#"{"properties": {"region": "eu", "n": 3}}"#);
    // The run's fields are those of `history --json`, at the top level, with its steps and log.
    let run = &detail;
    assert_eq!((run["status"].as_str(), run["trigger"].as_str()), (Some("COMPLETE"), Some("manual")), "{detail}");
    assert!(detail["steps"].as_array().is_some_and(|s| !s.is_empty()), "{detail}");
    // The run as `history --json` shows it.
    let run_id = run["run_id"].as_str().unwrap();
    let history = stepwise(dir.path(), &["history", run_id, "--json", "--state", "state.db"]);
    let history = history.json();
    for field in [
        "run_id",
        "process",
        "trigger",
        "scheduled_for",
        "node",
        "started_at",
        "ended_at",
        "status",
        "documents_in",
        "documents_out",
        "documents_error",
        "error",
    ] {
        assert!(run.get(field).is_some(), "no '{field}' in {run}");
        assert_eq!(history[field], run[field], "{field}");
    }
    assert!(run["logs"].is_array() && history["steps"] == run["steps"], "{run}");
    // Filters; empty ones are no filter, and spellings are not case-sensitive.
    let listed = console.json("/api/v1/runs?process=manual&status=COMPLETE&trigger=manual&limit=1", &tokens.viewer);
    assert_eq!(listed[0]["run_id"], run["run_id"], "{listed}");
    let loose =
        console.json("/api/v1/runs?process=&status=complete&trigger=Manual&since=&until=&limit=", &tokens.viewer);
    assert_eq!(loose[0]["run_id"], run["run_id"], "{loose}");
    let since = run["started_at"].as_str().unwrap().replace('+', "%2B");
    assert_eq!(console.json(&format!("/api/v1/runs?until={since}"), &tokens.viewer), Value::Array(Vec::new()));
    assert_eq!(console.json(&format!("/api/v1/runs?since={since}"), &tokens.viewer).as_array().map(Vec::len), Some(1));
    for bad in ["status=NOPE", "trigger=cron", "since=yesterday", "limit=0", "colour=red"] {
        let (status, body) = console.ask("GET", &format!("/api/v1/runs?{bad}"), &tokens.viewer, "");
        assert_eq!(status, 400, "{bad}: {body}");
        // The page says why, as a page of the console (with its security headers).
        let auth = format!("Bearer {}", tokens.viewer);
        let (status, head, page) = console.browse("GET", &format!("/runs?{bad}"), &[("Authorization", &auth)], "");
        assert_eq!(status, 400, "{bad}: {page}");
        assert!(
            header(&head, "content-security-policy").is_some() && page.contains("role=\"alert\""),
            "{head}\n{page}"
        );
    }
    let (status, body) = console.ask("POST", "/api/v1/processes/nope/runs", &tokens.operator, "");
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        console.ask("POST", "/api/v1/processes/manual/runs", &tokens.operator, r#"{"properties": {"x": [1]}}"#);
    assert!(status == 400 && body.contains("property 'x'"), "{status} {body}");
    // A property the process does not declare is refused before anything is queued.
    let queued_before = console.json("/api/v1/runs?process=manual", &tokens.viewer).as_array().map(Vec::len);
    let (status, body) =
        console.ask("POST", "/api/v1/processes/manual/runs", &tokens.operator, r#"{"properties": {"regoin": "eu"}}"#);
    assert!(status == 400 && body.contains("declares no property 'regoin'"), "{status} {body}");
    assert!(body.contains("its properties are 'region', 'n'"), "{body}");
    assert_eq!(console.json("/api/v1/runs?process=manual", &tokens.viewer).as_array().map(Vec::len), queued_before);
    let (status, _) = console.ask("GET", "/api/v1/runs/no-such-run", &tokens.viewer, "");
    assert_eq!(status, 404);
    // The audit trail names who, what, on what; property values stay out of it.
    let audit = console.json("/api/v1/audit", &tokens.admin);
    let entry = &audit[0];
    assert_eq!(
        (entry["actor"].as_str(), entry["action"].as_str(), entry["target"].as_str()),
        (Some("ops"), Some("run_now"), Some("manual")),
        "{audit}"
    );
    let detail = entry["detail"].as_str().unwrap();
    assert!(detail.contains(run_id) && detail.contains("region") && !detail.contains("eu"), "{detail}");
}

/// A process that keeps every document: `who` goes into one document, which becomes seven.
pub(crate) const KEPT: &str = r#"name: kept
record: all
retention_days: 3
properties:
  who: nobody
start: {type: no_data, next: seed}
steps:
  seed:
    type: message
    template: |-
      '{"who": "'{1}'"}'
    parameters:
      - { process_property: who }
    next: docs
  docs:
    type: map
    jq: 'range(1; 8) as $n | {n: $n, who: .who}'
    next: done
  done: {type: stop}
"#;

/// A process that fails, keeping (by default) the documents of its failed runs only.
const BOOM: &str = "name: boom\nstart: {type: no_data, next: seed}\nsteps:\n  seed: {type: message, template: \"[1]\", next: fail}\n  fail: {type: map, jq: 'error(\"boom\")', next: done}\n  done: {type: stop}\n";

fn kept_documents(console: &Console, token: &str, run_id: &str, step: &str, query: &str) -> Value {
    console.json(&format!("/api/v1/runs/{run_id}/steps/{step}/documents{query}"), token)
}

#[test]
fn runs_keep_documents_as_their_process_says_and_rerun_keeps_properties() {
    let dir = Dir::new();
    dir.write("procs/kept.yaml", KEPT);
    dir.write("procs/boom.yaml", BOOM);
    dir.write("procs/manual.yaml", fast("manual", ""));
    let tokens = Tokens::make(&dir);
    let data = create_token_with(&dir, "auditor", "viewer", &["--view-data"]);
    let console = Console::start(&dir);
    let done = run_to_end(&console, &tokens.operator, "kept", r#"{"properties": {"who": "ada"}}"#);
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    // A page of what entered `done`: seven documents, properties included.
    let page = kept_documents(&console, &data, &run_id, "done", "?offset=2&limit=3");
    assert_eq!((page["total"].as_u64(), page["offset"].as_u64()), (Some(7), Some(2)), "{page}");
    let seqs: Vec<u64> = page["documents"].as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 4, 5]);
    let third: Value = serde_json::from_str(page["documents"][0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(third, serde_json::json!({"n": 3, "who": "ada"}));
    // Without --view-data: 403, whatever the role.
    let (status, body) =
        console.ask("GET", &format!("/api/v1/runs/{run_id}/steps/done/documents"), &tokens.operator, "");
    assert!(status == 403 && body.contains("--view-data"), "{status} {body}");
    // The download: every document, one JSON per line.
    let url = format!("http://127.0.0.1:{}/api/v1/runs/{run_id}/steps/done/documents/download", console.port);
    let answer = reqwest::blocking::Client::new().get(&url).bearer_auth(&data).send().expect("the download");
    assert_eq!(answer.status().as_u16(), 200);
    let disposition = answer.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let body = answer.text().expect("the download's body");
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7, "{body}");
    assert_eq!(lines[6]["seq"], 7);
    // `errors` (the default) keeps a failed run's documents and nothing of a complete run.
    let failed = run_to_end(&console, &tokens.operator, "boom", "");
    assert_eq!(failed["status"], "ERROR", "{failed}");
    let failed_id = failed["run_id"].as_str().unwrap();
    assert_eq!(kept_documents(&console, &data, failed_id, "fail", "")["total"], 1);
    let fine = run_to_end(&console, &tokens.operator, "manual", "");
    assert_eq!(kept_documents(&console, &data, fine["run_id"].as_str().unwrap(), "done", "")["total"], 0);
    // Rerun: a new run with the same property values.
    let (status, body) = console.ask("POST", &format!("/api/v1/runs/{run_id}/rerun"), &tokens.operator, "");
    assert_eq!(status, 202, "{body}");
    let again = serde_json::from_str::<Value>(&body).unwrap()["run_id"].as_str().unwrap().to_owned();
    assert_ne!(again, run_id);
    let ended = console.until("the rerun to end", || {
        let detail = console.json(&format!("/api/v1/runs/{again}"), &tokens.viewer);
        (detail["status"] == "COMPLETE").then_some(detail)
    });
    assert_eq!((ended["trigger"].as_str(), ended["rerun_of"].as_str()), (Some("rerun"), Some(run_id.as_str())));
    // The runs list says which run it repeats, and its page links it; other runs say nothing.
    let listed = console.json("/api/v1/runs?trigger=rerun", &tokens.viewer);
    assert_eq!(listed[0]["rerun_of"].as_str(), Some(run_id.as_str()), "{listed}");
    assert!(console.json(&format!("/api/v1/runs/{run_id}"), &tokens.viewer).get("rerun_of").is_none());
    let (_, page) = console.ask("GET", &format!("/runs/{again}"), &tokens.viewer, "");
    assert!(page.contains(&format!(r#"rerun of <a href="/runs/{run_id}">"#)), "{page}");
    let rerun_docs = kept_documents(&console, &data, &again, "done", "?limit=1");
    let first: Value = serde_json::from_str(rerun_docs["documents"][0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(first["who"], "ada", "{rerun_docs}");
    // Every view and download, and the rerun, are in the audit trail.
    let audit = console.json("/api/v1/audit", &tokens.admin);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["view_documents", "download_documents", "rerun"] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
    let (status, _) = console.ask("POST", "/api/v1/runs/no-such-run/rerun", &tokens.operator, "");
    assert_eq!(status, 404);
    let (status, _) = console.ask("GET", "/api/v1/runs/x/steps/done/documents?limit=0", &data, "");
    assert_eq!(status, 400);
}

/// The `scheduled_for` instants of `process`'s scheduled runs.
fn fires(console: &Console, token: &str, process: &str) -> Vec<DateTime<Utc>> {
    let runs = console.json(&format!("/api/v1/runs?process={process}&trigger=schedule&limit=1000"), token);
    runs.as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["scheduled_for"].as_str())
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
        .collect()
}

#[test]
fn pause_stops_fires_and_resume_restarts_them() {
    let dir = Dir::new();
    dir.write("procs/paused.yaml", fast("paused", EVERY_SECOND));
    dir.write("procs/clock.yaml", fast("clock", EVERY_SECOND));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    console.until("a fire of 'paused'", || (!fires(&console, &tokens.viewer, "paused").is_empty()).then_some(()));
    let (status, body) = console.ask("POST", "/api/v1/processes/paused/pause", &tokens.operator, "");
    assert_eq!(status, 200, "{body}");
    let paused_at = Utc::now();
    let processes = console.json("/api/v1/processes", &tokens.viewer);
    let view = processes.as_array().unwrap().iter().find(|p| p["name"] == "paused").unwrap().clone();
    assert_eq!(view["paused"], true, "{processes}");
    let active = || {
        let (_, metrics) = console.ask("GET", "/metrics", &tokens.viewer, "");
        metrics.lines().find_map(|l| l.strip_prefix("stepwise_schedules_active ")).map(str::to_owned)
    };
    assert_eq!(active().as_deref(), Some("1"), "the paused process's schedule is not active");
    // The other process keeps firing: wait for three of its fires after the pause.
    console.until("three fires of 'clock' after the pause", || {
        (fires(&console, &tokens.viewer, "clock").iter().filter(|t| **t > paused_at).count() >= 3).then_some(())
    });
    // A fire offered while the pause was being answered may land; none a second later.
    let late: Vec<_> = fires(&console, &tokens.viewer, "paused")
        .into_iter()
        .filter(|t| *t > paused_at + chrono::Duration::seconds(1))
        .collect();
    assert!(late.is_empty(), "fires while paused: {late:?}");
    let (status, body) = console.ask("POST", "/api/v1/processes/paused/resume", &tokens.operator, "");
    assert_eq!(status, 200, "{body}");
    let resumed_at = Utc::now();
    assert_eq!(active().as_deref(), Some("2"));
    console.until("a fire of 'paused' after resume", || {
        fires(&console, &tokens.viewer, "paused").iter().any(|t| *t > resumed_at).then_some(())
    });
    let actions = audit_lines(&console, &tokens.admin, 100, ["action", "actor"]);
    assert_eq!(
        actions,
        [
            "resume ops",
            "pause ops",
            "token_create cli",
            "token_create cli",
            "token_create cli",
            "token_create cli",
            "token_create cli"
        ]
    );
}

/// `serve` on a store without tokens: the console, its log once it printed the one-time
/// sign-in address, and the address's code.
fn first_start(dir: &Dir) -> (Console, String, String) {
    dir.write("procs/manual.yaml", fast("manual", ""));
    let console = Console::start(dir);
    let log = console.until("the sign-in address", || {
        let log = console.log();
        log.contains("/login?code=").then_some(log)
    });
    let code = log.split("/login?code=").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().to_owned();
    (console, log, code)
}

#[test]
fn first_start_makes_an_admin_token_and_a_one_time_sign_in_address() {
    let dir = Dir::new();
    let (mut console, log, code) = first_start(&dir);
    assert!(code.starts_with("stwc_"), "{log}");
    // The token itself is never shown: the log holds the code only.
    assert!(!log.contains("stw_"), "{log}");
    // The address's page signs in with one button; a GET uses nothing.
    let html = [("Accept", "text/html")];
    for _ in 0..2 {
        let (status, _, page) = console.browse("GET", &format!("/login?code={code}"), &html, "");
        assert!(status == 200 && page.contains("Sign in as admin"), "{status} {page}");
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = console.browse("POST", "/login", &form, &format!("code={code}"));
    let cookie = header(&head, "set-cookie").and_then(|c| c.split(';').next()).map(str::to_owned);
    let cookie = cookie.unwrap_or_else(|| panic!("no session cookie: {status} {head}"));
    assert_eq!(status, 303, "{head}");
    // A session id is no token, and does not look like one.
    assert!(cookie.starts_with("stepwise_session=stws_"), "{cookie}");
    // The session is the admin's.
    let with_cookie = [("Cookie", cookie.as_str())];
    let (status, _, tokens) = console.browse("GET", "/api/v1/tokens", &with_cookie, "");
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    assert_eq!((status, tokens[0]["name"].as_str(), tokens[0]["role"].as_str()), (200, Some("admin"), Some("admin")));
    let (_, _, audit) = console.browse("GET", "/api/v1/audit", &with_cookie, "");
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!((audit[0]["actor"].as_str(), audit[0]["action"].as_str()), (Some("serve"), Some("token_create")));
    // Once only.
    let (status, _, page) = console.browse("POST", "/login", &form, &format!("code={code}"));
    assert!(status == 401 && page.contains("used already or has expired"), "{status} {page}");
    let (status, _, page) = console.browse("GET", &format!("/login?code={code}"), &html, "");
    assert!(status == 200 && page.contains("used already or has expired"), "{status} {page}");
    assert!(!page.contains(&code), "{page}");
    assert_eq!(console.terminate(), 0);
    // The store holds a token now: a second start makes none.
    let console = Console::start(&dir);
    let tokens = stepwise(dir.path(), &["token", "list", "--json", "--state", "state.db"]);
    assert_eq!(tokens.json().as_array().map(Vec::len), Some(1), "{tokens:?}");
    assert!(!console.log().contains("/login?code="), "{}", console.log());
    assert!(console.log().contains("sign in with a token of the run store"), "{}", console.log());
}

#[test]
fn a_sign_in_address_signs_in_as_its_own_token_only() {
    let dir = Dir::new();
    let (mut console, _, code) = first_start(&dir);
    // The printed address leaked: its token is revoked, and a new token takes the same name.
    let revoked = stepwise(dir.path(), &["token", "revoke", "admin", "--state", "state.db"]);
    assert_eq!(revoked.code, 0, "{revoked:?}");
    // The address's page no longer offers to sign in.
    let (status, _, page) = console.browse("GET", &format!("/login?code={code}"), &[("Accept", "text/html")], "");
    assert!(status == 200 && page.contains("was revoked") && !page.contains("Sign in as admin"), "{status} {page}");
    create_token(&dir, "admin", "viewer");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, page) = console.browse("POST", "/login", &form, &format!("code={code}"));
    assert!(status == 401 && page.contains("was revoked"), "{status} {head} {page}");
    assert!(header(&head, "set-cookie").is_none(), "{head}");
    // Behind a proxy that terminates TLS, the session cookie is Secure too.
    let admin = create_token(&dir, "second-admin", "admin");
    let proxied = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-Proto", "https")];
    let (status, head, _) = console.browse("POST", "/login", &proxied, &format!("token={admin}"));
    let cookie = header(&head, "set-cookie").unwrap_or_default();
    assert!(status == 303 && cookie.ends_with("; Secure") && cookie.contains("HttpOnly"), "{status} {head}");
    let (_, head, _) = console.browse("POST", "/login", &form, &format!("token={admin}"));
    assert!(!header(&head, "set-cookie").unwrap_or_default().contains("Secure"), "{head}");
    assert_eq!(console.terminate(), 0);
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", ""));
    let out = stepwise(dir.path(), &["serve", "procs", "--state", "state.db", "--listen", "0.0.0.0:1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--insecure-http") && out.stderr.contains("0.0.0.0:1"), "{out:?}");
    // A port taken: said so, with what to do.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = stepwise(dir.path(), &["serve", "procs", "--state", "state.db", "--listen", &addr]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!("cannot listen on {addr}")) && out.stderr.contains("pick another port"),
        "{out:?}"
    );
    // An address that is no HOST:PORT is named.
    for bad in ["9464", "no-such-host.invalid:9464", "http://127.0.0.1:9464"] {
        let out = stepwise(dir.path(), &["serve", "procs", "--state", "state.db", "--listen", bad]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains(&format!("--listen '{bad}'")) && out.stderr.contains("HOST:PORT"), "{out:?}");
    }
}

#[test]
fn token_commands_refuse_bad_input() {
    let dir = Dir::new();
    let made = create_token(&dir, "ci", "operator");
    assert!(made.starts_with("stw_"));
    let again = stepwise(dir.path(), &["token", "create", "ci", "--role", "viewer", "--state", "state.db"]);
    assert!(again.code == 1 && again.stderr.contains("already exists") && again.stdout.is_empty(), "{again:?}");
    let bad_role = stepwise(dir.path(), &["token", "create", "x", "--role", "root", "--state", "state.db"]);
    assert!(bad_role.code == 2 && bad_role.stderr.contains("unknown role 'root'"), "{bad_role:?}");
    let bad_name = stepwise(dir.path(), &["token", "create", "a b", "--role", "viewer", "--state", "state.db"]);
    assert!(bad_name.code == 2 && bad_name.stderr.contains("invalid token name 'a b'"), "{bad_name:?}");
    let list = stepwise(dir.path(), &["token", "list", "--json", "--state", "state.db"]);
    let listed = list.json();
    assert_eq!((listed[0]["name"].as_str(), listed[0]["role"].as_str()), (Some("ci"), Some("operator")), "{list:?}");
    assert!(!list.stdout.contains(&made));
    let revoked = stepwise(dir.path(), &["token", "revoke", "ci", "--state", "state.db"]);
    assert_eq!(revoked.code, 0, "{revoked:?}");
    let again = stepwise(dir.path(), &["token", "revoke", "ci", "--state", "state.db"]);
    assert!(again.code == 1 && again.stderr.contains("no token named 'ci'"), "{again:?}");
}

#[test]
fn cancel_stops_a_running_run_and_discards_a_queued_one() {
    // Each KnowBe4 call takes a minute: the run is certainly still going when cancelled.
    let sim = SimProcess::start(&["knowbe4-sim", "--port", "0", "--no-limits", "--latency-ms", "60000"]);
    let dir = Dir::new();
    let process = format!(
        "name: slow\nconnections:\n  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {}\nstart:\n  type: connector\n  connection: kb4\n  object: user\n  action: list\n  next: done\nsteps:\n  done:\n    type: stop\n",
        sim.url()
    );
    dir.write("procs/slow.yaml", process);
    dir.write("procs/aaa.yaml", fast("aaa", ""));
    let tokens = Tokens::make(&dir);
    // One worker: while the first run goes, the second waits in the queue.
    let console = Console::start_with(&dir, &[("KB4_TOKEN", "sandbox-token")], &["--workers", "1"]);
    let run_now = || {
        let (status, answer) = console.ask("POST", "/api/v1/processes/slow/runs", &tokens.operator, "");
        assert_eq!(status, 202, "{answer}");
        serde_json::from_str::<Value>(&answer).unwrap()["run_id"].as_str().unwrap().to_owned()
    };
    let (first, second) = (run_now(), run_now());
    let (path, queued) = (format!("/api/v1/runs/{first}"), format!("/api/v1/runs/{second}"));
    let status_of = |path: &str| console.json(path, &tokens.viewer)["status"].as_str().map(str::to_owned);
    console.until("the first run to start", || (status_of(&path).as_deref() == Some("INPROCESS")).then_some(()));
    assert_eq!(status_of(&queued).as_deref(), Some("QUEUED"));
    // The queued run is discarded at once: it never starts.
    let (status, answer) = console.ask("POST", &format!("{queued}/cancel"), &tokens.viewer, "");
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = console.ask("POST", &format!("{queued}/cancel"), &tokens.operator, "");
    assert_eq!((status, serde_json::from_str::<Value>(&answer).unwrap()["status"].as_str()), (202, Some("DISCARDED")));
    let run = console.json(&queued, &tokens.viewer).clone();
    assert_eq!(run["status"], "DISCARDED", "{run}");
    assert!(run["error"].as_str().is_some_and(|e| e.contains("cancelled by 'ops' from the console")), "{run}");
    // The running one stops at once on this node.
    let cancel = format!("{path}/cancel");
    let (status, answer) = console.ask("POST", &cancel, &tokens.operator, "");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (status, answer["status"].as_str(), answer["on_this_node"].as_bool()),
        (202, Some("cancelling"), Some(true))
    );
    let run = console.until("the run to end", || {
        let run = console.json(&path, &tokens.viewer).clone();
        (run["status"] != "INPROCESS").then_some(run)
    });
    assert_eq!(run["status"], "ABORTED", "{run}");
    assert!(run["error"].as_str().is_some_and(|e| e.contains("cancelled by 'ops' from the console")), "{run}");
    // A process whose last run was aborted is listed with the failing ones, first.
    let (_, page) = console.ask("GET", "/", &tokens.viewer, "");
    let place = |name: &str| page.find(&format!(r#"href="/processes/{name}""#)).unwrap_or_else(|| panic!("{page}"));
    assert!(place("slow") < place("aaa"), "{page}");
    // Both are counted where the service counts the runs it ends or discards.
    let (status, metrics) = console.ask("GET", "/metrics", &tokens.viewer, "");
    assert_eq!(status, 200, "{metrics}");
    for counted in ["status=\"DISCARDED\"} 1", "status=\"ABORTED\"} 1"] {
        assert!(metrics.contains(&format!("stepwise_runs_total{{process=\"slow\",{counted}")), "{counted}: {metrics}");
    }
    for ended in [&cancel, &format!("{queued}/cancel")] {
        let (status, answer) = console.ask("POST", ended, &tokens.operator, "");
        assert!(status == 409 && answer.contains("only a queued or running run can be cancelled"), "{status} {answer}");
    }
    // A `stepwise run` on the same store holds no lease: no service can stop it.
    let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    command
        .current_dir(dir.path())
        .args(["run", "procs/slow.yaml", "--state", "state.db"])
        .env("KB4_TOKEN", "sandbox-token");
    let local = LoggedProcess::spawn(command);
    let local_run = local.until("the `stepwise run` to start", || {
        let runs = console.json("/api/v1/runs?status=INPROCESS", &tokens.viewer);
        runs.as_array()?.iter().find(|r| r["queued_at"].is_null()).map(|r| r["run_id"].as_str().unwrap().to_owned())
    });
    let (status, answer) = console.ask("POST", &format!("/api/v1/runs/{local_run}/cancel"), &tokens.operator, "");
    assert!(status == 409 && answer.contains("stop it where it runs"), "{status} {answer}");
    // The trail holds the two cancels that happened, and none of the three refused.
    let audit = console.json("/api/v1/audit?limit=2", &tokens.admin);
    let targets: Vec<_> =
        audit.as_array().unwrap().iter().map(|a| (a["action"].clone(), a["target"].clone())).collect();
    assert_eq!(targets, [(json!("cancel"), json!(first)), (json!("cancel"), json!(second))]);
}

#[test]
fn a_going_runs_step_counts_show_while_it_runs() {
    let sim = SimProcess::start(&["knowbe4-sim", "--port", "0", "--no-limits", "--latency-ms", "60000"]);
    let dir = Dir::new();
    // Three documents made at once, then a call that takes a minute for the first of them.
    let process = format!(
        "name: slow\nconnections:\n  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {}\nstart:\n  type: no_data\n  next: make\nsteps:\n  make:\n    type: map\n    jq: 'range(3) | {{n: .}}'\n    next: fetch\n  fetch:\n    type: connector\n    connection: kb4\n    object: user\n    action: list\n    next: done\n  done:\n    type: stop\n",
        sim.url()
    );
    dir.write("procs/slow.yaml", process);
    let tokens = Tokens::make(&dir);
    let console = Console::start_env(&dir, &[("KB4_TOKEN", "sandbox-token")]);
    let (status, answer) = console.ask("POST", "/api/v1/processes/slow/runs", &tokens.operator, "");
    assert_eq!(status, 202, "{answer}");
    let run_id = serde_json::from_str::<Value>(&answer).unwrap()["run_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/runs/{run_id}");
    let counts = |detail: &Value, step: &str| {
        let steps = detail["steps"].as_array().cloned().unwrap_or_default();
        steps.iter().find(|s| s["step"] == step).map(|s| (s["documents_in"].clone(), s["documents_out"].clone()))
    };
    let detail = console.until("the counts so far", || {
        let detail = console.json(&path, &tokens.viewer);
        (counts(&detail, "fetch").is_some_and(|(i, _)| i == 3)).then_some(detail)
    });
    assert_eq!(detail["status"], "INPROCESS", "{detail}");
    assert_eq!(counts(&detail, "make"), Some((json!(1), json!(3))), "{detail}");
    assert_eq!(counts(&detail, "fetch"), Some((json!(3), json!(0))), "{detail}");
    assert_eq!(counts(&detail, "done"), Some((json!(0), json!(0))), "{detail}");
    let (status, page) = console.ask("GET", &format!("/runs/{run_id}"), &tokens.viewer, "");
    assert!(status == 200 && page.contains("Steps so far") && page.contains("reloads until it ends"), "{page}");
    // The end replaces them.
    let (status, answer) = console.ask("POST", &format!("{path}/cancel"), &tokens.operator, "");
    assert_eq!(status, 202, "{answer}");
    let detail = console.until("the run to end", || {
        let detail = console.json(&path, &tokens.viewer);
        (detail["status"] == "ABORTED").then_some(detail)
    });
    assert_eq!(counts(&detail, "make"), Some((json!(1), json!(3))), "{detail}");
}

/// The newest `limit` lines of the audit trail, each as two of its fields joined by a space.
fn audit_lines(console: &Console, admin: &str, limit: usize, [a, b]: [&str; 2]) -> Vec<String> {
    let trail = console.json(&format!("/api/v1/audit?limit={limit}"), admin);
    let lines = trail.as_array().unwrap().iter();
    lines.map(|e| format!("{} {}", e[a].as_str().unwrap(), e[b].as_str().unwrap())).collect()
}

/// The value of header `name` in an answer's head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn a_browser_signs_in_and_reads_pages() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", ""));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    let done = run_to_end(&console, &tokens.operator, "manual", "");
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    let html = ("Accept", "text/html");
    // Without a session a browser is sent to the sign-in page.
    let (status, head, _) = console.browse("GET", "/", &[html], "");
    assert_eq!((status, header(&head, "location")), (303, Some("/login")), "{head}");
    let (status, head, body) = console.browse("GET", "/login", &[html], "");
    assert_eq!(status, 200, "{body}");
    assert!(header(&head, "content-security-policy").is_some_and(|csp| csp.contains("default-src 'none'")), "{head}");
    assert!(!body.contains("<script") && !body.contains(" style="), "{body}");
    // Signing in from another origin is refused; from the console's own, a cookie.
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let sign_in = format!("token={}", tokens.viewer);
    let (status, _, _) = console.browse("POST", "/login", &[form, ("Origin", "http://evil.example")], &sign_in);
    assert_eq!(status, 403);
    let (status, _, _) = console.browse("POST", "/login", &[form], "token=stw_wrong");
    assert_eq!(status, 401);
    let (status, head, body) = console.browse("POST", "/login", &[form], &sign_in);
    assert_eq!((status, header(&head, "location")), (303, Some("/")), "{head}\n{body}");
    let set_cookie = header(&head, "set-cookie").unwrap_or_else(|| panic!("{head}"));
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains(&tokens.viewer), "the cookie is a session id, not the token");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = [html, ("Cookie", cookie.as_str())];
    // The pages, with filters in the URL.
    let (status, head, body) = console.browse("GET", "/", &with_cookie, "");
    assert!(status == 200 && body.contains("manual") && body.contains("view (viewer)"), "{status} {body}");
    assert!(header(&head, "content-security-policy").is_some(), "{head}");
    let (status, _, body) =
        console.browse("GET", "/runs?process=manual&status=COMPLETE&trigger=&since=", &with_cookie, "");
    assert!(status == 200 && body.contains(&run_id), "{status} {body}");
    let (status, _, body) = console.browse("GET", "/runs?process=manual&status=ERROR", &with_cookie, "");
    assert!(status == 200 && !body.contains(&run_id) && body.contains("No run matches."), "{status} {body}");
    let (status, _, body) = console.browse("GET", &format!("/runs/{run_id}"), &with_cookie, "");
    assert!(status == 200 && body.contains("COMPLETE") && body.contains("done"), "{status} {body}");
    // A viewer's session may not act; a session's state change needs the console's origin.
    let (status, _, _) = console.browse("POST", "/api/v1/processes/manual/pause", &with_cookie, "");
    assert_eq!(status, 403);
    let (status, _, _) =
        console.browse("POST", "/logout", &[("Cookie", cookie.as_str()), ("Sec-Fetch-Site", "cross-site")], "");
    assert_eq!(status, 403);
    // Signing out ends the session; so does revoking its token.
    let (status, head, _) = console.browse("POST", "/logout", &[("Cookie", cookie.as_str())], "");
    assert_eq!((status, header(&head, "location")), (303, Some("/login")), "{head}");
    assert_eq!(console.browse("GET", "/api/v1/runs", &[("Cookie", cookie.as_str())], "").0, 401);
    let (_, head, _) = console.browse("POST", "/login", &[form], &sign_in);
    let cookie = header(&head, "set-cookie").unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(console.browse("GET", "/api/v1/runs", &[("Cookie", cookie.as_str())], "").0, 200);
    // Sessions live in the run store: another node on the same store knows them.
    let other = Console::start(&dir);
    assert_eq!(other.browse("GET", "/api/v1/runs", &[("Cookie", cookie.as_str())], "").0, 200);
    assert_eq!(stepwise(dir.path(), &["token", "revoke", "view", "--state", "state.db"]).code, 0);
    assert_eq!(console.browse("GET", "/api/v1/runs", &[("Cookie", cookie.as_str())], "").0, 401);
}

#[test]
fn admins_make_and_revoke_tokens_and_read_the_audit_on_pages() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", fast("manual", ""));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    let admin = format!("Bearer {}", tokens.admin);
    let as_admin = |method: &str, path: &str, body: &str| {
        let headers = [("Authorization", admin.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        console.browse(method, path, &headers, body)
    };
    // The nav links admins to the pages; others do not see them.
    let (_, _, home) = as_admin("GET", "/", "");
    assert!(home.contains(r#"href="/tokens""#) && home.contains(r#"href="/audit""#), "{home}");
    let (_, operator_home) = console.ask("GET", "/", &tokens.operator, "");
    assert!(!operator_home.contains(r#"href="/tokens""#), "{operator_home}");
    // Make a token with the form: shown once, on the answer, and it works.
    let (status, _, made) = as_admin("POST", "/tokens", "name=from-page&role=operator&view_data=on");
    assert_eq!(status, 201, "{made}");
    let token = made.split("value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
    assert!(token.starts_with("stw_"), "{made}");
    assert_eq!(console.ask("GET", "/api/v1/runs", &token, "").0, 200);
    let (_, _, listed) = as_admin("GET", "/tokens", "");
    assert!(listed.contains("from-page") && !listed.contains(&token), "{listed}");
    // Bad input says why.
    let (status, _, page) = as_admin("POST", "/tokens", "name=from-page&role=operator");
    assert!(status == 409 && page.contains("already exists"), "{status} {page}");
    let (status, _, page) = as_admin("POST", "/tokens", "name=bad%20name&role=operator");
    assert!(status == 400 && page.contains("invalid token name"), "{status} {page}");
    let (status, _, page) = as_admin("POST", "/tokens", "name=x&role=boss");
    assert_eq!(status, 400, "{page}");
    // Revoke it with its button: it stops working.
    let (status, head, _) = as_admin("POST", "/tokens/from-page/revoke", "");
    assert_eq!((status, header(&head, "location")), (303, Some("/tokens")));
    assert_eq!(console.ask("GET", "/api/v1/runs", &token, "").0, 401);
    let (status, _, _) = as_admin("POST", "/tokens/from-page/revoke", "");
    assert_eq!(status, 404);
    let (status, _, page) = as_admin("POST", "/tokens", "name=no-role");
    assert!(status == 400 && page.contains("role"), "{status} {page}");
    // The last admin token stays.
    let (status, body) = console.ask("DELETE", "/api/v1/tokens/boss", &tokens.admin, "");
    assert!(status == 409 && body.contains("last admin token"), "{status} {body}");
    // The audit page shows what happened, newest first: the make and the revoke, not the
    // refusals; the token's value never.
    let (status, _, audit) = as_admin("GET", "/audit", "");
    assert_eq!(status, 200);
    let revoke = audit.find("token_revoke").expect("the revoke in the audit");
    let create = audit.find("token_create").expect("the create in the audit");
    assert!(revoke < create && audit.contains("from-page") && !audit.contains(&token), "{audit}");
    assert_eq!(audit.matches("token_revoke").count(), 1, "{audit}");
    assert_eq!(audit.matches("from-page").count(), 2, "{audit}");
    // A browser without the role gets a page saying why; a script gets JSON.
    let operator = format!("Bearer {}", tokens.operator);
    let (status, head, page) =
        console.browse("GET", "/tokens", &[("Authorization", &operator), ("Accept", "text/html")], "");
    assert!(status == 403 && header(&head, "content-type").is_some_and(|c| c.starts_with("text/html")), "{head}");
    assert!(page.contains("this needs the admin role"), "{page}");
    let (status, body) = console.ask("GET", "/api/v1/tokens", &tokens.operator, "");
    assert!(status == 403 && body.starts_with("{\"error\""), "{body}");
    // No such route: JSON under /api/, a page otherwise.
    let (status, body) = console.ask("GET", "/api/v1/nothing", &tokens.viewer, "");
    assert!(status == 404 && body.contains("openapi.json"), "{body}");
    let viewer = format!("Bearer {}", tokens.viewer);
    let (status, _, page) =
        console.browse("GET", "/nothing", &[("Authorization", &viewer), ("Accept", "text/html")], "");
    assert!(status == 404 && page.contains("no page GET /nothing"), "{page}");
}

/// Two documents into a KnowBe4 create with `error_response: true`: one email is no address and
/// the other document has none, so the connector refuses both before any call and sends error
/// documents on instead. Default `record: errors`.
const WARNS: &str = r#"name: warns
connections:
  kb4:
    type: knowbe4
    token: { env: KB4_TOKEN }
    base_url: http://127.0.0.1:9/
start: {type: no_data, next: people}
steps:
  people:
    type: map
    jq: '{"email": "nope", "firstName": "Ada"}, {"firstName": "NoEmail"}'
    next: create
  create:
    type: connector
    connection: kb4
    object: user
    action: create
    error_response: true
    next: tell
  tell:
    type: notify
    level: warn
    template: "refused: {1}"
    parameters:
      - { document_property: application_status_code }
    next: done
  done:
    type: stop
"#;

#[test]
fn a_run_with_error_documents_keeps_them_and_its_page_links_them() {
    let dir = Dir::new();
    dir.write("procs/warns.yaml", WARNS);
    let tokens = Tokens::make(&dir);
    let console = Console::start_env(&dir, &[("KB4_TOKEN", "sandbox-token")]);
    let done = run_to_end(&console, &tokens.operator, "warns", "");
    assert_eq!(done["status"], "COMPLETE_WARN", "{done}");
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    // The step that made the error documents counts them as its errors, and the steps' errors
    // add up to the run's, as the run page's table shows them.
    let errors_of = |step: &str| {
        done["steps"].as_array().unwrap().iter().find(|s| s["step"] == step).unwrap()["documents_error"].clone()
    };
    assert_eq!((errors_of("create"), errors_of("tell")), (json!(2), json!(0)), "{done}");
    let by_steps: u64 = done["steps"].as_array().unwrap().iter().map(|s| s["documents_error"].as_u64().unwrap()).sum();
    assert_eq!(done["documents_error"].as_u64(), Some(by_steps), "{done}");
    // `record: errors` keeps a run that made error documents: what entered each step, and the
    // error documents under `STEP:errors`.
    let errors = kept_documents(&console, &tokens.admin, &run_id, "create:errors", "");
    assert_eq!(errors["total"], 2, "{errors}");
    let refused: Value = serde_json::from_str(errors["documents"][1]["data"].as_str().unwrap()).unwrap();
    assert_eq!(refused["error"]["input"]["firstName"], "NoEmail", "{refused}");
    assert_eq!(refused["error"]["step"], "create", "{refused}");
    assert!(errors["documents"][1]["properties"]["application_status_code"].is_string(), "{errors}");
    assert_eq!(kept_documents(&console, &tokens.admin, &run_id, "create", "")["total"], 2);
    // The run's page lists them, with a link; the link's page names them.
    let (status, page) = console.ask("GET", &format!("/runs/{run_id}"), &tokens.admin, "");
    assert_eq!(status, 200);
    let link = format!(r#"href="/runs/{run_id}/steps/create:errors""#);
    assert!(
        page.contains("Error documents") && page.contains(&format!("create: <a {link}>2 error documents")),
        "{page}"
    );
    let (status, errors_page) = console.ask("GET", &format!("/runs/{run_id}/steps/create:errors"), &tokens.admin, "");
    assert!(status == 200 && errors_page.contains("Error documents of step create"), "{errors_page}");
    assert!(errors_page.contains("NoEmail"), "{errors_page}");
    // The run's log holds what the run logged: its start and end, and its notify step's
    // warnings; the page filters it by level.
    let logs: Vec<(String, String)> = done["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_str().unwrap().to_owned(), l["message"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(logs.first().map(|l| l.1.as_str()), Some("Run started."), "{logs:?}");
    let warnings: Vec<&(String, String)> = logs.iter().filter(|l| l.0 == "warn").collect();
    assert_eq!(warnings.len(), 2, "{logs:?}");
    assert!(warnings.iter().all(|w| w.1.starts_with("refused: ") && w.1.ends_with("step=tell")), "{logs:?}");
    assert!(logs.iter().any(|l| l.1.starts_with("Run ended. status=COMPLETE_WARN")), "{logs:?}");
    let (_, warn_page) = console.ask("GET", &format!("/runs/{run_id}?level=warn"), &tokens.viewer, "");
    assert!(warn_page.contains("refused: ") && !warn_page.contains("Run started."), "{warn_page}");
    let (_, info_page) = console.ask("GET", &format!("/runs/{run_id}"), &tokens.viewer, "");
    assert!(info_page.contains("refused: ") && info_page.contains("Run started."), "{info_page}");
}

fn bearer_of(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every refusal in the console's own form: JSON `{"error"}` for scripts, a page for a browser,
/// also where axum refuses before a handler runs; request bodies that are no object refused;
/// documents of a step the run does not have are 404, and a view's audit line says what it
/// showed; a page's query out of range is 400.
#[test]
fn refusals_are_answered_in_the_consoles_own_form() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", format!("record: all\n{}", fast("manual", "")));
    let tokens = Tokens::make(&dir);
    let console = Console::start(&dir);
    let error_of = |status: u16, body: &str| {
        let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body}"));
        (status, value["error"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned())
    };
    // A method the path does not take (axum's 405, empty before).
    let (status, head, body) = console.browse(
        "GET",
        "/api/v1/processes/manual/pause",
        &[("Authorization", &format!("Bearer {}", tokens.operator))],
        "",
    );
    let (status, error) = error_of(status, &body);
    assert!(status == 405 && error.contains("this path takes POST"), "{error}");
    assert_eq!(header(&head, "allow"), Some("POST"), "{head}");
    let (status, head, _) =
        console.browse("DELETE", "/api/v1/runs", &[("Authorization", &bearer_of(&tokens.viewer))], "");
    assert_eq!((status, header(&head, "allow")), (405, Some("GET, HEAD")), "{head}");
    // A page's form without a form body (axum's 415, plain text before): a page.
    let html = ("Accept", "text/html");
    let bearer = format!("Bearer {}", tokens.operator);
    let (status, head, body) = console.browse("POST", "/processes/manual/run", &[html, ("Authorization", &bearer)], "");
    assert_eq!(status, 415, "{body}");
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("text/html")), "{head}");
    assert!(body.contains("Not done") && body.contains("Content-Type"), "{body}");
    // Bodies that are JSON but no object.
    for body in ["[]", r#"[{"who": "x"}]"#] {
        let (status, answer) = console.ask("POST", "/api/v1/processes/manual/runs", &tokens.operator, body);
        let (status, error) = error_of(status, &answer);
        assert!(status == 400 && error.contains("expected a JSON object"), "{body}: {error}");
    }
    let (status, answer) = console.ask("POST", "/api/v1/tokens", &tokens.admin, r#"["ci", "admin", false]"#);
    assert_eq!(error_of(status, &answer).0, 400, "{answer}");
    assert!(console.json("/api/v1/tokens", &tokens.admin).as_array().unwrap().iter().all(|t| t["name"] != "ci"));
    // The one answer that carries a token is kept by no cache.
    let (status, head, body) = console.browse(
        "POST",
        "/api/v1/tokens",
        &[("Authorization", &format!("Bearer {}", tokens.admin))],
        r#"{"name": "ci", "role": "viewer"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"), "{head}");
    // A browser whose session is gone is sent to sign in, also when it posts a form, and
    // nothing is done; a sign-in posted from another origin is refused with a page.
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let (status, head, _) =
        console.browse("POST", "/processes/manual/pause", &[html, form, ("Cookie", "stepwise_session=stws_gone")], "");
    assert_eq!((status, header(&head, "location")), (303, Some("/login")), "{head}");
    // From another site the form comes without the SameSite=Strict cookie: refused as such.
    let (status, _, body) =
        console.browse("POST", "/processes/manual/pause", &[html, form, ("Origin", "http://evil.example")], "");
    assert!(status == 403 && body.contains("origin 'http://evil.example'"), "{status} {body}");
    assert_eq!(console.json("/api/v1/processes", &tokens.viewer)[0]["paused"], false);
    let (status, head, body) =
        console.browse("POST", "/login", &[html, form, ("Origin", "http://evil.example")], "token=x");
    assert!(status == 403 && body.contains("origin 'http://evil.example'"), "{status} {body}");
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("text/html")), "{head}");
    let (status, _, body) =
        console.browse("POST", "/login", &[html, form, ("Sec-Fetch-Site", "cross-site")], "token=x");
    assert!(status == 403 && body.contains("Sec-Fetch-Site: cross-site"), "{status} {body}");
    // Documents: a step the run does not have is 404 (and no view is audited); a page past the
    // end is audited as showing none.
    let done = run_to_end(&console, &tokens.operator, "manual", "");
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    let documents = format!("/api/v1/runs/{run_id}/steps");
    for step in ["nosuch", "nosuch:errors", "..%2F..%2Fx"] {
        let (status, answer) = console.ask("GET", &format!("{documents}/{step}/documents"), &tokens.admin, "");
        let (status, error) = error_of(status, &answer);
        assert!(status == 404 && error.contains("has no step"), "{step}: {error}");
    }
    let (status, answer) = console.ask("GET", &format!("{documents}/done/documents?offset=5"), &tokens.admin, "");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = console.ask("GET", &format!("{documents}/done/documents"), &tokens.admin, "");
    assert_eq!(status, 200, "{answer}");
    let views = audit_lines(&console, &tokens.admin, 2, ["action", "detail"]);
    assert_eq!(
        views,
        ["view_documents step done, documents 1 to 1 of 1", "view_documents step done, none (from document 6 of 1)"]
    );
    // Pages' queries out of range.
    for path in [format!("/runs/{run_id}?level=bogus"), "/audit?limit=0".into(), "/audit?limit=5000".into()] {
        let (status, _, body) =
            console.browse("GET", &path, &[html, ("Authorization", &format!("Bearer {}", tokens.admin))], "");
        assert!(status == 400 && body.contains("Not done"), "{path}: {status} {body}");
    }
}

/// `stepwise token list | head -1`, `validate DIR | head -1`, `token create`: the reader going
/// away ends the command quietly with 141, as a tool SIGPIPE stopped, not with "error: Broken
/// pipe" (or a panic of `println!`).
#[test]
fn listings_into_a_closed_pipe_end_quietly() {
    let dir = Dir::new();
    create_token(&dir, "a", "viewer");
    let commands = [
        vec!["token", "list", "--state", "state.db"],
        vec!["validate", "processes"],
        vec!["token", "create", "b", "--role", "viewer", "--state", "state.db"],
    ];
    for args in commands {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .current_dir(if args[0] == "validate" { crate::support::repo() } else { dir.path().to_owned() })
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting stepwise");
        // The reader is gone before anything is written: every write fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waiting for stepwise");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(141) && !stderr.contains("Broken pipe"),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
