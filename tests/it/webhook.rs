//! Webhook starts (issue 18, process format section 11) through the real binary: `POST
//! /hooks/<name>` on `serve --listen` with a bearer secret or an HMAC signature, refusals that
//! record nothing, the body cap, headers as document properties, `respond: sync`, `stepwise run
//! --input`, `validate`'s checks, and the secret never in a log line, the history or an answer.
//! (The cluster case is in `cluster.rs`.) Checks compare statuses and counts, never durations.

use std::process::Command;

use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::support::{Dir, LoggedProcess, free_port, http_full, stepwise};

const SECRET: &str = "hook-secret-6f1c2a9e";
const FILE_SECRET: &str = "file-secret-0b7d44";

/// `respond: sync`: answers with the body and the `X-Request-Id` header it got.
const ECHO: &str = r#"name: echo
start:
  type: webhook
  secret: { env: HOOK_SECRET }
  headers: [X-Request-Id]
  respond: sync
  max_body_bytes: 1000
  next: reply
steps:
  reply:
    type: message
    template: "'{\"got\": '{1}', \"request\": \"'{2}'\"}'"
    parameters:
      - { current_data: true }
      - { document_property: X-Request-Id, default: "" }
    next: answer
  answer:
    type: stop
    respond: true
"#;

/// Answered 202 at once; its secret is in a file next to it.
const HOOKED: &str = r#"name: hooked
start:
  type: webhook
  secret: { file: hooked.secret }
  next: note
steps:
  note:
    type: notify
    template: "got {1}"
    parameters: [{ current_data: true }]
    next: done
  done:
    type: stop
"#;

const PLAIN: &str = "name: plain\nstart:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n";

fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn setup() -> Dir {
    let dir = Dir::new();
    dir.write("procs/echo.yaml", ECHO);
    dir.write("procs/hooked.yaml", HOOKED);
    dir.write("procs/hooked.secret", format!("{FILE_SECRET}\n"));
    dir.write("procs/plain.yaml", PLAIN);
    dir
}

/// `stepwise serve procs --listen 127.0.0.1:PORT` with `HOOK_SECRET` set; killed when dropped.
struct Serve {
    process: LoggedProcess,
    port: u16,
}

impl Serve {
    fn start(dir: &Dir) -> Serve {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        command
            .current_dir(dir.path())
            .args(["--log", "debug", "serve", "procs", "--state", "state.db", "--reload-ms", "200", "--listen", &addr])
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env_remove("STEPWISE_STORE")
            .env("NO_COLOR", "1")
            .env("HOOK_SECRET", SECRET);
        let serve = Serve { process: LoggedProcess::spawn(command), port };
        serve.until("/health", || serve.post_raw("GET", "/health", &[], "").filter(|(s, _, _)| *s == 200));
        serve
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn until<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        self.process.until(what, probe)
    }

    fn post_raw(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> Option<(u16, String, String)> {
        let host = format!("127.0.0.1:{}", self.port);
        let mut headers: Vec<(&str, &str)> = vec![("Host", &host)];
        headers.extend_from_slice(extra);
        http_full(self.port, method, path, &headers, body)
    }

    /// A POST that must answer: status, head, body.
    fn post(&self, path: &str, extra: &[(&str, &str)], body: &str) -> (u16, String, String) {
        self.post_raw("POST", path, extra, body).unwrap_or_else(|| panic!("POST {path}: no answer"))
    }

    fn get(&self, path: &str, token: &str) -> (u16, String) {
        let auth = format!("Bearer {token}");
        let (status, _, body) =
            self.post_raw("GET", path, &[("Authorization", &auth)], "").unwrap_or_else(|| panic!("GET {path}"));
        (status, body)
    }
}

fn history(dir: &Dir) -> Vec<Value> {
    let out = stepwise(dir.path(), &["history", "--json", "--state", "state.db", "--limit", "1000"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.json().as_array().expect("an array").clone()
}

fn ended(run: &Value) -> bool {
    matches!(run["status"].as_str(), Some("COMPLETE" | "COMPLETE_WARN" | "ERROR" | "ABORTED" | "DISCARDED"))
}

#[test]
fn a_bearer_or_signed_webhook_runs_with_its_body_and_headers() {
    let dir = setup();
    let viewer = stepwise(dir.path(), &["token", "create", "view", "--role", "viewer", "--state", "state.db"]);
    assert_eq!(viewer.code, 0, "{viewer:?}");
    let viewer = viewer.stdout.trim().to_owned();
    let serve = Serve::start(&dir);
    let bearer = format!("Bearer {SECRET}");
    let mut answers = Vec::new();

    // respond: sync, with the bearer secret: the answer is the document at the responding stop.
    let (status, head, body) = serve.post(
        "/hooks/echo",
        &[("Authorization", &bearer), ("X-Request-Id", "req-17"), ("Content-Type", "application/json")],
        r#"{"name": "Ada"}"#,
    );
    assert_eq!(status, 200, "{head}\n{body}\n{}", serve.log());
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(answer, serde_json::json!({"got": {"name": "Ada"}, "request": "req-17"}));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let echo_run = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-stepwise-run-id: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no run id header: {head}"));
    answers.push(body);

    // 202 at once, signed with the secret from a file; the body is plain text.
    let text = "a plain text body";
    let signed = signature(FILE_SECRET, text);
    let (status, _, body) =
        serve.post("/hooks/hooked", &[("X-Stepwise-Signature", &signed), ("Content-Type", "text/plain")], text);
    assert_eq!(status, 202, "{body}\n{}", serve.log());
    let hooked_run = serde_json::from_str::<Value>(&body).unwrap()["run_id"].as_str().expect("run_id").to_owned();
    answers.push(body);

    let runs = serve.until("both runs to end", || {
        let runs = history(&dir);
        (runs.len() == 2 && runs.iter().all(ended)).then_some(runs)
    });
    for run in &runs {
        assert_eq!(run["trigger"], "webhook", "{run}");
        assert_eq!(run["status"], "COMPLETE", "{run}");
        assert_eq!(run["documents_in"], 1, "{run}");
    }
    let ids: Vec<&str> = runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&echo_run.as_str()) && ids.contains(&hooked_run.as_str()), "{ids:?}");
    let (status, detail) = serve.get(&format!("/api/v1/runs/{hooked_run}"), &viewer);
    assert_eq!(status, 200, "{detail}");
    answers.push(detail);
    for path in ["/api/v1/runs?trigger=webhook", "/api/v1/processes", &format!("/api/v1/runs/{echo_run}")] {
        let (status, body) = serve.get(path, &viewer);
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body);
    }
    let filtered: Value = serde_json::from_str(&answers[3]).unwrap();
    assert_eq!(filtered.as_array().map(Vec::len), Some(2), "{filtered}");

    // The secrets are nowhere: not in the log, the history, or any answer.
    let printed = stepwise(dir.path(), &["history", "--state", "state.db"]).stdout;
    let everything =
        format!("{}\n{printed}\n{}\n{}", serve.log(), serde_json::to_string(&runs).unwrap(), answers.join("\n"));
    for secret in [SECRET, FILE_SECRET] {
        assert!(!everything.contains(secret), "the secret {secret} leaked:\n{everything}");
    }
}

#[test]
fn webhooks_without_a_valid_secret_are_refused_and_record_nothing() {
    let dir = setup();
    let viewer = stepwise(dir.path(), &["token", "create", "view", "--role", "viewer", "--state", "state.db"]);
    assert_eq!(viewer.code, 0, "{viewer:?}");
    let console_token = format!("Bearer {}", viewer.stdout.trim());
    let serve = Serve::start(&dir);
    let body = r#"{"name": "Mallory"}"#;
    let wrong_key = signature("not-the-secret", body);
    let other_body = signature(SECRET, "another body");
    let bearer = format!("Bearer {SECRET}");
    let right = signature(SECRET, body);
    let mut answers = Vec::new();
    let refused: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no credentials", vec![]),
        ("a wrong bearer", vec![("Authorization", "Bearer hook-secret-6f1c2a9")]),
        ("the secret as Basic", vec![("Authorization", "Basic aG9vay1zZWNyZXQ=")]),
        ("a console token", vec![("Authorization", &console_token)]),
        ("a signature with another key", vec![("X-Stepwise-Signature", &wrong_key)]),
        ("a signature of another body", vec![("X-Stepwise-Signature", &other_body)]),
        ("a signature that is not hex", vec![("X-Stepwise-Signature", "sha256=zz")]),
        ("a signature without its scheme", vec![("X-Stepwise-Signature", right.trim_start_matches("sha256="))]),
    ];
    for (what, headers) in &refused {
        let (status, _, answer) = serve.post("/hooks/echo", headers, body);
        assert_eq!(status, 401, "{what}: {answer}");
        answers.push(answer);
    }
    // Unknown and not a webhook: the same 404, whatever the credentials.
    let (unknown, _, unknown_body) = serve.post("/hooks/nope", &[("Authorization", &bearer)], body);
    let (plain, _, plain_body) = serve.post("/hooks/plain", &[("Authorization", &bearer)], body);
    assert_eq!((unknown, plain), (404, 404));
    assert_eq!(unknown_body, plain_body);
    // Over the cap (1000 bytes): 413, with the bearer or a signature.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1000));
    let big_signature = signature(SECRET, &big);
    for headers in [vec![("Authorization", bearer.as_str())], vec![("X-Stepwise-Signature", big_signature.as_str())]] {
        let (status, _, answer) = serve.post("/hooks/echo", &headers, &big);
        assert_eq!(status, 413, "{answer}");
        answers.push(answer);
    }
    // A refusal is not a run: none recorded, queued or run.
    assert_eq!(history(&dir), Vec::<Value>::new());
    // The same request, signed right, is taken.
    let (status, _, answer) = serve.post("/hooks/echo", &[("X-Stepwise-Signature", &right)], body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(history(&dir).len(), 1);
    let everything = format!("{}\n{}", serve.log(), answers.join("\n"));
    assert!(!everything.contains(SECRET), "the secret leaked:\n{everything}");
}

#[test]
fn stepwise_run_takes_a_webhook_body_from_input() {
    let dir = setup();
    dir.write("body.json", r#"{"name": "Grace"}"#);
    let run = crate::support::stepwise_env(
        dir.path(),
        &[
            "run",
            "procs/echo.yaml",
            "--input",
            "body.json",
            "--header",
            "x-request-id=local-1",
            "--json",
            "--no-history",
        ],
        &[("HOOK_SECRET", SECRET)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["status"], "COMPLETE");
    assert_eq!(report["documents_in"], 1);
    // Without --input there is no request body: a usage error, nothing run.
    let run = stepwise(dir.path(), &["run", "procs/echo.yaml", "--no-history"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--input"), "{run:?}");
    // --input is only for webhook processes.
    let run = stepwise(dir.path(), &["run", "procs/plain.yaml", "--input", "body.json", "--no-history"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn validate_checks_webhook_starts() {
    let dir = Dir::new();
    let cases = [
        ("secret: hunter2", "a literal secret is not allowed"),
        ("secret: { env: S }\n  headers: [Authorization]", "carries the webhook's secret"),
        ("secret: { env: S }\n  headers: [X-A, x-a]", "listed twice"),
        ("secret: { env: S }\n  respond: sync", "needs a 'stop' step with 'respond: true'"),
        ("secret: { env: S }\n  respond: later", "'respond'"),
        ("secret: { env: S }\n  max_body_bytes: 99999999999", "max_body_bytes"),
        ("secret: { env: S }\n  sign: sha1", "sign"),
    ];
    for (i, (start, expected)) in cases.iter().enumerate() {
        let file = format!("case{i}.yaml");
        dir.write(
            &file,
            format!("name: c{i}\nstart:\n  type: webhook\n  {start}\n  next: done\nsteps:\n  done:\n    type: stop\n"),
        );
        let out = stepwise(dir.path(), &["validate", &file]);
        assert_eq!(out.code, 1, "{start}: {out:?}");
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(expected), "{start}: expected '{expected}' in:\n{all}");
        assert!(
            all.contains(&format!("{file}:4:"))
                || all.contains(&format!("{file}:5:"))
                || all.contains(&format!("{file}:6:")),
            "{start}: no line and column:\n{all}"
        );
        assert!(!all.contains("hunter2"), "{all}");
    }
    // Schedules on a webhook process are refused.
    dir.write(
        "scheduled.yaml",
        "name: s\nschedules:\n  - cron: \"0 6 * * *\"\nstart:\n  type: webhook\n  secret: { env: S }\n  next: done\nsteps:\n  done:\n    type: stop\n",
    );
    let out = stepwise(dir.path(), &["validate", "scheduled.yaml"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(format!("{}{}", out.stdout, out.stderr).contains("cannot have schedules"), "{out:?}");
    // The shipped webhook process is valid.
    let shipped = crate::support::repo().join("processes/onboard-new-hire-webhook.yaml");
    let out = stepwise(dir.path(), &["validate", shipped.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn the_shipped_hr_webhook_onboards_one_new_hire_in_the_sandbox() {
    let dir = crate::processes::copy_processes();
    let report = crate::processes::run_sandbox(&dir, "onboard-new-hire-webhook");
    assert_eq!(report["status"], "COMPLETE", "{report:#}");
    let step = |id: &str| crate::processes::step(&report, id)["documents_in"].clone();
    assert_eq!(step("create_user"), 1);
    assert_eq!(step("add_to_group"), 1);
    assert_eq!(step("answer"), 1);
    assert_eq!(step("refused"), 0);
}
