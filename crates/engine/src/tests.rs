//! Engine tests with test connectors registered through the real `Registry`, for what the
//! end-to-end tests cannot reach: panics inside a step, and how connector results are merged.

use std::sync::Arc;

use compiler::{ConnectionSpec, Operation, Plan};

use crate::{
    ApiError, ConnectEnv, Connector, ConnectorError, ConnectorFactory, Document, ErrorKind, FieldError, Input,
    OperationRef, Output, Registry, RunOptions, RunReport, RunStatus, run,
};

/// A connector registered as `disk` whose behaviour is its action.
struct Scripted;

const OPERATIONS: &[Operation] = &[
    Operation { object: "", action: "emit" },
    Operation { object: "", action: "panic" },
    Operation { object: "", action: "panic_in_validate" },
    Operation { object: "", action: "fail_second" },
];

struct ScriptedFactory {
    panic_on_connect: bool,
}

impl ConnectorFactory for ScriptedFactory {
    fn connection_type(&self) -> &'static str {
        "disk"
    }

    fn operations(&self) -> &'static [Operation] {
        OPERATIONS
    }

    fn connect(
        &self,
        _name: &str,
        _spec: &ConnectionSpec,
        _env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        if self.panic_on_connect {
            panic!("cannot connect today");
        }
        Ok(Arc::new(Scripted))
    }
}

#[async_trait::async_trait]
impl Connector for Scripted {
    fn validate(&self, op: &OperationRef<'_>, _input: &Input) -> Result<(), Vec<FieldError>> {
        if op.action == "panic_in_validate" {
            panic!("validation blew up");
        }
        Ok(())
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        match op.action {
            "panic" => {
                let index: Vec<u8> = Vec::new();
                // A bug in a connector: an index out of bounds.
                let _ = index[inputs.len()];
                Ok(())
            }
            "emit" => {
                for (i, input) in inputs.iter().enumerate() {
                    for n in 0..2 {
                        let data = format!("{}-{n}", input.document.text());
                        out.ok(
                            i,
                            Document::new(data).with_property("from", "connector").with_property("n", n.to_string()),
                        );
                    }
                }
                Ok(())
            }
            "fail_second" => {
                for (i, input) in inputs.iter().enumerate() {
                    if i == 1 {
                        let error = ApiError {
                            body: None,
                            kind: ErrorKind::Api,
                            status: Some(409),
                            message: "conflict".to_owned(),
                            details: Vec::new(),
                        };
                        if out.fail(i, error) {
                            return Ok(());
                        }
                    } else {
                        out.ok(i, input.document.clone());
                    }
                }
                Ok(())
            }
            other => Err(ConnectorError::Failed(format!("no action {other}"))),
        }
    }
}

fn registry(panic_on_connect: bool) -> Registry {
    let mut r = Registry::with_builtins();
    r.register(Arc::new(ScriptedFactory { panic_on_connect }));
    r
}

fn plan(yaml: &str, registry: &Registry) -> Plan {
    let compiled = compiler::compile(yaml.as_bytes(), registry);
    compiled.plan.unwrap_or_else(|| panic!("invalid test process: {:?}", compiled.diagnostics))
}

fn execute(yaml: &str, registry: &Registry) -> RunReport {
    let plan = plan(yaml, registry);
    let options = RunOptions {
        run_id: "test-run".to_owned(),
        overrides: Vec::new(),
        env: ConnectEnv::default(),
        recorder: None,
        abort: None,
        start_document: None,
        progress: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(run(&plan, registry, options))
}

fn calling(action: &str, error_response: bool) -> String {
    format!(
        "name: t
connections:
  c: {{type: disk, directory: .}}
start: {{type: no_data, next: seed}}
steps:
  seed: {{type: map, jq: '\"a\", \"b\", \"c\"', next: call}}
  call: {{type: connector, connection: c, action: {action}, error_response: {error_response}, next: done}}
  done: {{type: stop}}
"
    )
}

fn stats<'a>(report: &'a RunReport, step: &str) -> &'a crate::StepStats {
    report.steps.iter().find(|s| s.step == step).unwrap()
}

#[test]
fn a_panic_in_a_connector_is_a_step_failure_not_a_crash() {
    for action in ["panic", "panic_in_validate"] {
        let report = execute(&calling(action, false), &registry(false));
        assert_eq!(report.status, RunStatus::Error, "{action}");
        let error = report.error.as_ref().unwrap();
        assert_eq!(error.step, "call", "{action}");
        assert!(error.message.starts_with("the step failed unexpectedly (panic: "), "{action}: {}", error.message);
        assert_eq!(stats(&report, "call").documents_error, 1);
        assert_eq!(stats(&report, "done").documents_in, 0);
        assert!(report.render().contains("error: step 'call': the step failed unexpectedly"));
    }
    let report = execute(&calling("emit", false), &registry(true));
    assert_eq!(report.status, RunStatus::Error);
    let error = report.error.unwrap();
    assert_eq!(error.step, "call");
    assert!(error.message.contains("cannot connect today"), "{}", error.message);
}

#[test]
fn a_panic_inside_a_try_is_a_process_error_that_catch_all_catches() {
    let yaml = |catch_errors: &str| {
        format!(
            "name: t
connections:
  c: {{type: disk, directory: .}}
start: {{type: no_data, next: guard}}
steps:
  guard: {{type: try_catch, try: call, catch: caught, catch_errors: {catch_errors}}}
  call: {{type: connector, connection: c, action: panic, next: done}}
  caught: {{type: notify, template: '{{1}}', parameters: [{{document_property: try_catch_message}}], next: done}}
  done: {{type: stop}}
"
        )
    };
    let report = execute(&yaml("all"), &registry(false));
    assert_eq!(report.status, RunStatus::CompleteWarn);
    assert!(report.notifications[0].message.starts_with("step 'call': the step failed unexpectedly (panic: "));
    let report = execute(&yaml("document"), &registry(false));
    assert_eq!(report.status, RunStatus::Error);
    assert_eq!(stats(&report, "caught").documents_in, 0);
}

#[test]
fn connector_results_keep_input_properties_and_order() {
    let report = execute(
        "name: t
connections:
  c: {type: disk, directory: .}
start: {type: no_data, next: seed}
steps:
  seed: {type: map, jq: '\"a\", \"b\"', next: tag}
  tag: {type: set_properties, document: {origin: [{current_data: true}], n: [{static: input}]}, next: call}
  call: {type: connector, connection: c, action: emit, next: show}
  show: {type: notify, template: '{1} {2} {3} {4} [{5}]', parameters: [{current_data: true}, {document_property: origin}, {document_property: from}, {document_property: n}, {document_property: application_status_code}], next: done}
  done: {type: stop}
",
        &registry(false),
    );
    assert_eq!(report.status, RunStatus::Complete, "{}", report.render());
    let shown: Vec<&str> = report.notifications.iter().map(|n| n.message.as_str()).collect();
    // Response properties win over the input's; the input's others are kept.
    assert_eq!(
        shown,
        vec![
            "\"a\"-0 \"a\" connector 0 []",
            "\"a\"-1 \"a\" connector 1 []",
            "\"b\"-0 \"b\" connector 0 []",
            "\"b\"-1 \"b\" connector 1 []"
        ]
    );
    assert_eq!(stats(&report, "call").documents_out, 4);
}

#[test]
fn an_api_error_fails_the_run_or_becomes_an_error_document() {
    let report = execute(&calling("fail_second", false), &registry(false));
    assert_eq!(report.status, RunStatus::Error);
    let error = report.error.unwrap();
    assert_eq!((error.step.as_str(), error.document), ("call", Some(2)));
    assert_eq!(
        error.message,
        "connection 'c': api error (HTTP 409): conflict; 1 other document had completed at this \
         step before it stopped (their changes were made): \"a\""
    );

    let report = execute(&calling("fail_second", true), &registry(false));
    assert_eq!(report.status, RunStatus::CompleteWarn);
    assert_eq!(report.documents_error, 1);
    assert_eq!(stats(&report, "call").documents_out, 3);
    assert_eq!(stats(&report, "done").documents_in, 3);
}

#[test]
fn documents_stay_small() {
    // A million documents in a batch cost their data plus this much each.
    assert!(std::mem::size_of::<Document>() <= 40, "{}", std::mem::size_of::<Document>());
}

#[test]
fn no_debug_or_display_of_a_type_holding_secrets_prints_them() {
    use crate::{ConnectEnv, Redactor, SandboxTarget, Secret};
    let redactor = Redactor::default();
    redactor.add("s3cret-redactor");
    let target = SandboxTarget {
        base_url: "http://127.0.0.1:1".to_owned(),
        token: "s3cret-sandbox".to_owned(),
        extra: [("email".to_owned(), "a@example.com".to_owned())].into_iter().collect(),
    };
    let env = ConnectEnv {
        sandbox: [("knowbe4".to_owned(), target.clone())].into_iter().collect(),
        redactor: redactor.clone(),
        ..ConnectEnv::default()
    };
    let secret = Secret::new("s3cret-value");
    let printed = [
        format!("{redactor:?}"),
        format!("{redactor:#?}"),
        format!("{target:?}"),
        format!("{target:#?}"),
        format!("{env:?}"),
        format!("{env:#?}"),
        format!("{secret:?}"),
        format!("{secret}"),
    ];
    for p in &printed {
        assert!(!p.contains("s3cret"), "{p}");
    }
    assert!(printed[0].contains("secrets: 1") && printed[2].contains("127.0.0.1:1"), "{printed:?}");
}

#[test]
fn the_redactor_masks_a_secret_written_escaped() {
    let redactor = crate::Redactor::default();
    let secret = "pa\"ss\\w0rd\n";
    redactor.add(secret);
    let json = serde_json::json!({ "password": secret }).to_string();
    for written in [secret.to_owned(), format!("{secret:?}"), json] {
        let masked = redactor.redact(&written);
        assert!(!masked.contains("w0rd") && masked.contains("***"), "{written} -> {masked}");
    }
    assert!(format!("{redactor:?}").contains("secrets: 2"), "the raw and the escaped form (JSON's is Debug's)");
}

#[test]
fn the_redactor_masks_whatever_the_case_and_borrows_clean_text() {
    use crate::Redactor;
    use std::borrow::Cow;
    let redactor = Redactor::default();
    redactor.add("s3cret-known");
    let masked = [
        ("AUTHORIZATION: Basic dXNlcjpwYXNz", "AUTHORIZATION: ***"),
        // A word inside another's first letters is still found.
        ("x-AuThOrIzAtIoN: Basic dXNlcjpwYXNz", "x-AuThOrIzAtIoN: ***"),
        ("aut-authorization=abc", "aut-authorization=***"),
        ("bebearer abcdefgh12", "bebearer abcdefgh12"),
        ("a bEaReR abcdefgh12", "a bEaReR ***"),
        (r#"{"X-Api-Key": "abc123def"}"#, r#"{"X-Api-Key": "***"}"#),
        ("proxy-authorization=Negotiate xyz", "proxy-authorization=***"),
        ("sent BeArEr eyJhbGciOiJIUzI1NiJ9.e30 then", "sent BeArEr *** then"),
        ("token s3cret-known in José's note", "token *** in José's note"),
        // The Kelvin sign folds onto `k`: a header spelt with it is still a header.
        ("x-api-\u{212A}ey: abcdefgh", "x-api-\u{212A}ey: ***"),
    ];
    for (text, expected) in masked {
        assert_eq!(redactor.redact(text), expected, "{text}");
    }
    for clean in [r#"{"email":"user@example.com","name":"José"}"#, "authorization", "a bearer of news", ""] {
        assert!(matches!(redactor.redact_cow(clean), Cow::Borrowed(t) if t == clean), "{clean}");
    }
}
