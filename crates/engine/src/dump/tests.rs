//! Tests for test-mode dumps: layout, numbering, modes, limits, secrets, the report's escaping
//! and the graph layout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compiler::{ConnectionSpec, Operation, Plan};
use serde_json::{Value, json};

use super::{Dump, DumpConfig, DumpLimits, ShallowPretty, report};
use crate::connector::{
    ConnectEnv, Connector, ConnectorError, ConnectorFactory, FieldError, Input, OperationRef, Output, Redactor,
    Registry,
};
use crate::document::Document;
use crate::report::{RunReport, RunStatus};
use crate::run::{RunOptions, run};

const TOKEN: &str = "kb4-SECRET-token-0123456789abcdef";

fn plan(yaml: &str, registry: &Registry) -> Plan {
    let compiled = compiler::compile(yaml.as_bytes(), registry);
    match compiled.plan {
        Some(p) => p,
        None => panic!("invalid test process: {:?}", compiled.diagnostics),
    }
}

fn simple_plan() -> Plan {
    plan(
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '.', next: b}\n  b: {type: stop}\n",
        &Registry::with_builtins(),
    )
}

fn report_for(plan: &Plan) -> RunReport {
    let steps = plan
        .graph
        .node_indices()
        .map(|i| crate::report::StepStats {
            step: plan.graph[i].id.clone(),
            step_type: plan.graph[i].kind.type_name().to_owned(),
            executions: 1,
            ..Default::default()
        })
        .collect();
    RunReport {
        run_id: "r1".to_owned(),
        process: plan.name.clone(),
        status: RunStatus::Complete,
        started_at: "2025-01-01T00:00:00.000Z".to_owned(),
        ended_at: "2025-01-01T00:00:01.000Z".to_owned(),
        millis: 1000,
        documents_in: 0,
        documents_out: 0,
        documents_error: 0,
        steps,
        error: None,
        errors: Vec::new(),
        notifications: Vec::new(),
        response: None,
    }
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn writes_the_layout_numbered_across_batches_with_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/run");
    let plan = simple_plan();
    let dump = Dump::create(&plan, "r1", DumpConfig::new(dir.clone()), Redactor::default()).unwrap();
    let rec = dump.recorder();
    // Two batches arrive at `a`: numbering continues.
    rec.source("a", &Document::new(r#"{"n":1}"#).with_property("file_name", "x.json"));
    rec.source("a", &Document::new(r#"{"n":2}"#));
    rec.source("a", &Document::new(vec![0xff, 0xfe, 0x00]));
    rec.exchange("a", &json!({"request": {"n": 1}, "response": {"ok": true}}));
    let summary = dump.finish(&report_for(&plan)).unwrap();
    assert!(summary.complete);
    assert!(summary.notes.is_empty());
    assert_eq!(std::fs::read(dir.join("steps/a/source/000001.data")).unwrap(), br#"{"n":1}"#);
    assert_eq!(std::fs::read(dir.join("steps/a/source/000002.data")).unwrap(), br#"{"n":2}"#);
    assert_eq!(std::fs::read(dir.join("steps/a/source/000003.data")).unwrap(), vec![0xff, 0xfe, 0x00]);
    let props: Value =
        serde_json::from_slice(&std::fs::read(dir.join("steps/a/source/000001.properties.json")).unwrap()).unwrap();
    assert_eq!(props, json!({"file_name": "x.json"}));
    let call: Value =
        serde_json::from_slice(&std::fs::read(dir.join("steps/a/connection/000001.json")).unwrap()).unwrap();
    assert_eq!(call, json!({"request": {"n": 1}, "response": {"ok": true}}));
    let run: Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "COMPLETE");
    let a = &run["steps"][1];
    assert_eq!(a["step"], "a");
    assert_eq!(a["source"]["recorded"], 3);
    assert_eq!(a["source"]["files"][2]["data"], "steps/a/source/000003.data");
    assert_eq!(a["connection"]["files"][0], "steps/a/connection/000001.json");
    assert_eq!(run["dump"]["complete"], true);
    assert_eq!(run["files"]["report"], "report.html");
    assert!(dir.join("report.html").is_file());
    for f in files(&dir) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    for d in [dir.clone(), dir.join("steps"), dir.join("steps/a"), dir.join("steps/a/source"), dir.join("nested")]
        .iter()
        .filter(|d| d.is_dir())
    {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    assert_eq!(mode(&tmp.path().join("nested")), 0o700);
}

#[test]
fn refuses_a_directory_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("old.txt"), "x").unwrap();
    let err =
        Dump::create(&simple_plan(), "r1", DumpConfig::new(tmp.path().to_owned()), Redactor::default()).err().unwrap();
    assert!(err.to_string().contains("is not empty"), "{err}");
}

#[test]
fn limits_keep_a_prefix_and_say_what_was_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = simple_plan();
    let mut config = DumpConfig::new(tmp.path().join("d"));
    config.limits = DumpLimits { max_documents_per_step: Some(2), max_bytes: None };
    let dump = Dump::create(&plan, "r1", config, Redactor::default()).unwrap();
    let rec = dump.recorder();
    for i in 0..5 {
        rec.source("a", &Document::new(format!("{i}")));
    }
    let summary = dump.finish(&report_for(&plan)).unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.notes.len(), 1, "{:?}", summary.notes);
    assert!(summary.notes[0].contains("step 'a': 3 of 5 documents were not recorded"), "{:?}", summary.notes);
    assert!(summary.notes[0].contains("limit 2 per step"), "{:?}", summary.notes);
    assert!(tmp.path().join("d/steps/a/source/000002.data").is_file());
    assert!(!tmp.path().join("d/steps/a/source/000003.data").exists());
    let run: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("d/run.json")).unwrap()).unwrap();
    assert_eq!(run["dump"]["complete"], false);
    assert_eq!(run["dump"]["documents_not_recorded"], 3);
    assert_eq!(run["steps"][1]["source"]["not_recorded"], 3);

    // Bytes: recording stops for good at the first document that does not fit.
    let mut config = DumpConfig::new(tmp.path().join("e"));
    config.limits = DumpLimits { max_documents_per_step: None, max_bytes: Some(30) };
    let dump = Dump::create(&plan, "r1", config, Redactor::default()).unwrap();
    let rec = dump.recorder();
    rec.source("a", &Document::new("0123456789")); // 10 bytes + "{}\n" (3)
    rec.source("a", &Document::new("0123456789"));
    rec.source("a", &Document::new("0123456789")); // would make 39
    rec.source("b", &Document::new("x"));
    let summary = dump.finish(&report_for(&plan)).unwrap();
    assert!(!summary.complete);
    assert!(summary.notes[0].contains("byte limit was reached (30 bytes per run"), "{:?}", summary.notes);
    assert!(summary.notes.iter().any(|n| n.contains("step 'b': 1 of 1 documents")), "{:?}", summary.notes);
    assert!(tmp.path().join("e/steps/a/source/000002.data").is_file());
    assert!(!tmp.path().join("e/steps/a/source/000003.data").exists());
    assert!(!tmp.path().join("e/steps/b").exists());
}

#[test]
fn a_failing_write_stops_recording_and_is_noted() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = simple_plan();
    let dir = tmp.path().join("d");
    let dump = Dump::create(&plan, "r1", DumpConfig::new(dir.clone()), Redactor::default()).unwrap();
    // A file where the `steps` directory should go.
    std::fs::write(dir.join("steps"), "in the way").unwrap();
    let rec = dump.recorder();
    rec.source("a", &Document::new("x"));
    rec.source("a", &Document::new("y"));
    let summary = dump.finish(&report_for(&plan)).unwrap();
    assert!(!summary.complete);
    assert!(
        summary.notes[0].starts_with("recording stopped: writing the dump of step 'a' failed"),
        "{:?}",
        summary.notes
    );
}

#[test]
fn secrets_never_reach_a_dumped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = simple_plan();
    let dir = tmp.path().join("d");
    let redactor = Redactor::default();
    redactor.add(TOKEN);
    let dump = Dump::create(&plan, "r1", DumpConfig::new(dir.clone()), redactor).unwrap();
    let rec = dump.recorder();
    rec.source("a", &Document::new(format!(r#"{{"token":"{TOKEN}","x":1}}"#)).with_property("t", TOKEN));
    let mut binary = vec![0xff, 0x00];
    binary.extend_from_slice(TOKEN.as_bytes());
    binary.push(0xc3);
    rec.source("a", &Document::new(binary));
    rec.source("a", &Document::new("GET / HTTP/1.1\r\nAuthorization: Bearer unregistered-abcdef123456\r\n\r\n"));
    rec.source("a", &Document::new("x").with_property("Authorization", "Basic dXNlcjpwYXNz"));
    rec.exchange(
        "a",
        &json!({
            "request": {"headers": {"Authorization": format!("Bearer {TOKEN}"), "X-Api-Key": "other-key-42"},
                        "header_list": [["authorization", "Basic dXNlcjpwYXNz"]],
                        "body": format!("token={TOKEN}")},
            "response": {"status": 200, "body": {"echo": TOKEN}}
        }),
    );
    let mut report = report_for(&plan);
    report.error = Some(crate::report::RunError {
        step: "a".to_owned(),
        document: Some(1),
        message: format!("bad token {TOKEN}"),
    });
    report.status = RunStatus::Error;
    dump.finish(&report).unwrap();
    for f in files(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        for secret in [TOKEN, "unregistered-abcdef123456", "dXNlcjpwYXNz", "other-key-42"] {
            assert!(!contains(&bytes, secret.as_bytes()), "{secret} in {}", f.display());
        }
    }
    let doc = std::fs::read(dir.join("steps/a/source/000001.data")).unwrap();
    assert_eq!(doc, br#"{"token":"***","x":1}"#);
    let bin = std::fs::read(dir.join("steps/a/source/000002.data")).unwrap();
    assert_eq!(bin, [&[0xff, 0x00][..], b"***", &[0xc3]].concat());
    let call: Value =
        serde_json::from_slice(&std::fs::read(dir.join("steps/a/connection/000001.json")).unwrap()).unwrap();
    assert_eq!(call["request"]["headers"]["Authorization"], "***");
    assert_eq!(call["response"]["status"], 200);
    let run: Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["error"]["message"], "bad token ***");
    assert_eq!(run["error"]["file"], "steps/a/source/000001.data");
}

/// A `knowbe4` stand-in that reads its token like a real connector (so the engine registers it
/// as a secret), echoes it in responses, and records exchanges with an `Authorization` header.
struct EchoFactory;

static ECHO_OPERATIONS: &[Operation] = &[Operation { object: "user", action: "create" }];

impl ConnectorFactory for EchoFactory {
    fn connection_type(&self) -> &'static str {
        "knowbe4"
    }

    fn operations(&self) -> &'static [Operation] {
        ECHO_OPERATIONS
    }

    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let ConnectionSpec::Knowbe4 { token, .. } = spec else {
            return Err(ConnectorError::Failed("not knowbe4".to_owned()));
        };
        let token = env.secret(name, token)?;
        Ok(Arc::new(Echo { token: token.expose().to_owned() }))
    }
}

struct Echo {
    token: String,
}

#[async_trait::async_trait]
impl Connector for Echo {
    fn validate(&self, _op: &OperationRef<'_>, _input: &Input) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    async fn execute(&self, _op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        for (i, input) in inputs.iter().enumerate() {
            let body = format!(r#"{{"created":{},"seen_token":"{}"}}"#, input.document.text(), self.token);
            out.exchange(
                i,
                json!({
                    "request": {"method": "POST", "url": "http://127.0.0.1:1/graphql",
                                "headers": {"Authorization": format!("Bearer {}", self.token)},
                                "body": input.document.text()},
                    "response": {"status": 200, "body": body},
                }),
            );
            out.ok(i, Document::new(body).with_property("token_echo", self.token.clone()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_real_run_with_a_token_connector_dumps_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("token.txt"), format!("{TOKEN}\n")).unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    std::fs::write(tmp.path().join("in/users.jsonl"), "{\"email\":\"a@x\"}\n{\"email\":\"b@x\"}\n").unwrap();
    let mut registry = Registry::with_builtins();
    registry.register(Arc::new(EchoFactory));
    let plan = plan(
        r#"name: echo
connections:
  kb4: {type: knowbe4, token: {file: token.txt}}
  hr: {type: disk, directory: in}
start: {type: connector, connection: hr, action: get, format: jsonl, pattern: "*.jsonl", next: create}
steps:
  create: {type: connector, connection: kb4, object: user, action: create, next: check}
  check: {type: notify, template: "made {1}", parameters: [{current_data: true}], next: done}
  done: {type: stop}
"#,
        &registry,
    );
    let redactor = Redactor::default();
    let dir = tmp.path().join("dump");
    let dump = Dump::create(&plan, "run-1", DumpConfig::new(dir.clone()), redactor.clone()).unwrap();
    let env = ConnectEnv { base_dir: tmp.path().to_owned(), redactor, ..ConnectEnv::default() };
    let options = RunOptions {
        run_id: "run-1".to_owned(),
        overrides: Vec::new(),
        env,
        recorder: Some(dump.recorder()),
        abort: None,
        start_document: None,
        progress: None,
    };
    let report = run(&plan, &registry, options).await;
    assert_eq!(report.status, RunStatus::Complete, "{:?}", report.error);
    let summary = dump.finish(&report).unwrap();
    assert!(summary.complete);
    let all = files(&dir);
    assert!(all.contains(&dir.join("steps/create/connection/000002.json")), "{all:?}");
    assert!(all.contains(&dir.join("steps/check/source/000002.data")), "{all:?}");
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        assert!(!contains(&bytes, TOKEN.as_bytes()), "the token is in {}", f.display());
    }
    let call: Value =
        serde_json::from_slice(&std::fs::read(dir.join("steps/create/connection/000001.json")).unwrap()).unwrap();
    assert_eq!(call["request"]["headers"]["Authorization"], "***");
    assert_eq!(call["request"]["body"], r#"{"email":"a@x"}"#);
    let props: Value =
        serde_json::from_slice(&std::fs::read(dir.join("steps/check/source/000001.properties.json")).unwrap()).unwrap();
    assert_eq!(props["token_echo"], "***");
    assert_eq!(props["file_name"], "users.jsonl");
}

#[test]
fn script_json_cannot_break_out_of_its_block() {
    let v = json!({"text": "</script><script>alert(1)</script><!-- & \u{2028}"});
    let s = report::script_json(&v);
    assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'), "{s}");
    assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
}

#[test]
fn layout_layers_steps_and_routes_long_edges_between_them() {
    let graph = json!({
        "name": "p",
        "nodes": [{"id": "start", "type": "start"}, {"id": "d", "type": "decision"}, {"id": "a", "type": "map"},
                  {"id": "b", "type": "map"}, {"id": "join", "type": "stop"}],
        "edges": [{"from": "start", "to": "d", "label": ""}, {"from": "d", "to": "a", "label": "true"},
                  {"from": "d", "to": "join", "label": "false"}, {"from": "a", "to": "b", "label": ""},
                  {"from": "b", "to": "join", "label": ""}],
    });
    let layout = report::layout(&graph, 140.0);
    let layer = |id: &str| layout.nodes.iter().find(|n| n.id == id).unwrap().layer;
    assert_eq!([layer("start"), layer("d"), layer("a"), layer("b"), layer("join")], [0, 1, 2, 3, 4]);
    // d -> join skips two layers: two bend points between its ends.
    let long = layout.edges.iter().find(|e| e.from == "d" && e.to == "join").unwrap();
    assert_eq!(long.points.len(), 4);
    // No two steps overlap.
    for (i, p) in layout.nodes.iter().enumerate() {
        for q in &layout.nodes[i + 1..] {
            assert!((p.x - q.x).abs() >= 140.0 || (p.y - q.y).abs() >= 48.0, "{p:?} {q:?}");
        }
    }
    let svg = report::svg(&layout, &json!({"steps": {"a": {"outcome": "error"}}}));
    assert!(svg.contains(r#"<g class="step error type-map" data-step="a""#), "{svg}");
    assert!(svg.contains(r#"class="step not-reached type-map" data-step="b""#), "{svg}");
}

#[test]
fn the_report_embeds_documents_and_says_when_it_shows_only_some() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = simple_plan();
    let dir = tmp.path().join("d");
    let mut config = DumpConfig::new(dir.clone());
    config.report_documents_per_step = 2;
    let dump = Dump::create(&plan, "r1", config, Redactor::default()).unwrap();
    let rec = dump.recorder();
    rec.source("a", &Document::new(r#"{"x":"</script><script>window.pwned=1</script>"}"#));
    rec.source("a", &Document::new("plain"));
    rec.source("a", &Document::new("third"));
    dump.finish(&report_for(&plan)).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("</script>").count(), 3, "only the three script blocks end");
    assert!(html.contains(r#"\u003c/script\u003e\u003cscript\u003ewindow.pwned=1"#));
    assert!(html.contains("\"report_documents_per_step\":2"));
    assert!(!html.contains("third"));
    // The only URL is the SVG namespace, which is a name, not a request.
    assert_eq!(html.matches("http://").count(), html.matches("http://www.w3.org/2000/svg").count());
    assert!(!html.contains("https://") && !html.contains("//cdn"));
    for forbidden in ["<link", "src=\"http", "href=\"http", "@import"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
}

#[test]
fn run_json_is_pretty_down_to_its_file_lists() {
    let v = json!({"a": [{"b": [{"n": 1, "f": "x"}, {"n": 2, "f": "y"}], "e": []}], "z": {}});
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, ShallowPretty::new(3));
    serde::Serialize::serialize(&v, &mut ser).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "{\n  \"a\": [\n    {\n      \"b\": [{\"n\":1,\"f\":\"x\"},{\"n\":2,\"f\":\"y\"}],\n      \"e\": []\n    }\n  ],\n  \"z\": {}\n}"
    );
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
}
