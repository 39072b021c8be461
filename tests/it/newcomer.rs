//! What a new user hit in their first hour (issue 14): each rough edge, through the binary.

use serde_json::Value;

use crate::support::{Dir, stepwise};

/// A process with one no-data start, a property and a stop.
const ONE_PROPERTY: &str =
    "name: p\nproperties: {group: '1'}\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\n";

#[test]
fn set_of_an_undeclared_property_is_a_usage_error_listing_the_declared_ones() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "gruop=7"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--set: the process declares no property 'gruop' (its properties are 'group')"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing ran: {run:?}");

    let ok = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "group=7"]);
    assert_eq!(ok.code, 0, "{ok:?}");
}

#[test]
fn run_json_in_test_mode_says_where_the_dumps_and_the_report_are() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let dump = dir.join("dumps");
    let run = stepwise(
        dir.path(),
        &["run", p.to_str().unwrap(), "--no-history", "--json", "--test", "--dump", dump.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    let test_mode = &json["test_mode"];
    assert_eq!(test_mode["dump_dir"], dump.display().to_string(), "{run:?}");
    let report = test_mode["report"].as_str().expect("a report path");
    assert!(std::path::Path::new(report).is_file(), "{report} is not a file: {run:?}");
    assert_eq!(test_mode["not_recorded"], serde_json::json!([]), "{run:?}");
    assert_eq!(json["status"], "COMPLETE", "{run:?}");
}

#[test]
fn schedule_of_a_valid_process_without_schedules_exits_0_and_says_so() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["schedule", p.to_str().unwrap(), "--next", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("the process has no schedules"), "{run:?}");

    // An invalid process is still exit 1.
    let bad = dir.write("bad.yaml", "name: p\nstart: {type: no_data, next: nowhere}\nsteps: {}\n");
    assert_eq!(stepwise(dir.path(), &["schedule", bad.to_str().unwrap()]).code, 1);
}

#[test]
fn a_cron_that_never_fires_is_caught_by_validate_as_schedules_md_says() {
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        "name: p\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\nschedules:\n  - cron: '0 0 30 2 *'\n",
    );
    for command in ["validate", "schedule"] {
        let run = stepwise(dir.path(), &[command, p.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        assert!(run.stderr.contains(":6:5: error: cron expression '0 0 30 2 *' never fires"), "{command}: {run:?}");
    }
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/schedules.md")).unwrap();
    assert!(!doc.contains("does not catch this case yet"), "docs/schedules.md still has the stale note");
}

#[test]
fn validate_dir_checks_exactly_the_files_serve_dir_loads() {
    let dir = Dir::new();
    dir.write("procs/a.yaml", ONE_PROPERTY.replace("name: p", "name: a"));
    dir.write("procs/b.yml", ONE_PROPERTY.replace("name: p", "name: b"));
    // Not process files for either command: a hidden file, a file in a subfolder, another extension.
    dir.write("procs/.draft.yaml", "not: [a process");
    dir.write("procs/old/c.yaml", "not: [a process");
    dir.write("procs/.hidden/d.yaml", "not: [a process");
    dir.write("procs/notes.txt", "not: [a process");
    let run = stepwise(dir.path(), &["validate", "procs"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "procs/a.yaml: ok\nprocs/b.yml: ok\n", "{run:?}");
}

/// `stepwise serve` with `--listen` on a free port, its stderr in a file; killed when dropped.
struct Served {
    child: std::process::Child,
    log: std::path::PathBuf,
    port: u16,
}

impl Served {
    fn start(dir: &Dir, procs: &str) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("serve.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .current_dir(dir.path())
            .args([
                "serve",
                procs,
                "--state",
                "state.db",
                "--reload-ms",
                "100",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting stepwise serve");
        Served { child, log, port }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/health`, once it answers with `pred` true (gives up after a minute).
    fn health_until(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some((200, body)) = crate::support::http_get(self.port, "/health")
                && let Ok(v) = serde_json::from_str::<Value>(&body)
                && pred(&v)
            {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "no such /health; log:\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_warns_about_an_empty_directory_and_health_lists_invalid_files() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.join("procs")).unwrap();
    let served = Served::start(&dir, "procs");
    let health = served.health_until(|_| true);
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["invalid_files"], serde_json::json!([]), "{health}");
    assert!(served.log().contains("No process files"), "{}", served.log());

    dir.write("procs/good.yaml", ONE_PROPERTY);
    dir.write("procs/bad.yaml", "name: bad\nstart: {type: no_data, next: nowhere}\nsteps: {}\n");
    let health = served.health_until(|h| h["processes"] == 1 && h["status"] == "degraded");
    let invalid = health["invalid_files"].as_array().expect("a list");
    assert_eq!(invalid.len(), 1, "{health}");
    assert!(invalid[0]["path"].as_str().unwrap().ends_with("bad.yaml"), "{health}");
    assert!(invalid[0]["error"].as_str().unwrap().contains("'next' names unknown step 'nowhere'"), "{health}");

    // Fixed: healthy again.
    dir.write("procs/bad.yaml", ONE_PROPERTY.replace("name: p", "name: bad"));
    let health = served.health_until(|h| h["processes"] == 2);
    assert_eq!((health["status"].as_str(), health["invalid_files"].as_array().map(Vec::len)), (Some("ok"), Some(0)));
}

#[test]
fn history_with_filters_that_match_nothing_says_so() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--state", "state.db"]);
    assert_eq!(run.code, 0, "{run:?}");
    let none = stepwise(dir.path(), &["history", "--state", "state.db", "--process", "nope", "--status", "error"]);
    assert_eq!(none.code, 0, "{none:?}");
    assert_eq!(none.stdout, "no runs match --process 'nope' --status ERROR\n", "{none:?}");
    let all = stepwise(dir.path(), &["history", "--state", "state.db", "--process", "p"]);
    assert!(all.stdout.contains("COMPLETE"), "{all:?}");
}

#[test]
fn combined_jsonl_written_to_disk_ends_with_a_newline() {
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        r#"name: p
connections:
  out: {type: disk, directory: out}
start: {type: no_data, next: rows}
steps:
  rows: {type: map, jq: '{"id": 1}, {"id": 2}, {"id": 3}', next: join}
  join:
    type: message
    combine: true
    template: "{1}"
    parameters: [{ current_data: true }]
    next: write
  write:
    type: connector
    connection: out
    action: send
    file_name: [{ static: rows.jsonl }]
    next: done
  done: {type: stop}
"#,
    );
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history"]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = dir.read("out/rows.jsonl");
    assert_eq!(text, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n", "{run:?}");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
}

/// Copies the shipped processes and their sample data into `dir/processes` (outputs not).
fn copy_shipped(dir: &Dir) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            if path.is_dir() && name != "out" {
                copy(&path, &to.join(name));
            } else if path.is_file() {
                std::fs::copy(&path, to.join(name)).unwrap();
            }
        }
    }
    copy(&crate::support::repo().join("processes"), &dir.join("processes"));
}

#[test]
fn the_summary_and_the_report_say_which_step_made_error_documents() {
    let dir = Dir::new();
    copy_shipped(&dir);
    let args = ["run", "processes/onboard-new-hires.yaml", "--sandbox", "--no-history"];
    let text = stepwise(dir.path(), &args);
    assert_eq!(text.code, 0, "{text:?}");
    // Two of the five sample rows are refused by KnowBe4 (a bad email, an existing user).
    assert!(
        text.stdout.contains("step 'create_user' made 2 error documents of refused inputs (error_response)\n"),
        "{text:?}"
    );

    let json = stepwise(dir.path(), &[&args[..], &["--json", "--test", "--dump", "dump"]].concat());
    assert_eq!(json.code, 0, "{json:?}");
    let report = json.json();
    let step = |id: &str| report["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap().clone();
    assert_eq!(step("create_user")["error_documents"], 2, "{report:#}");
    assert_eq!(step("to_user")["error_documents"], 0, "{report:#}");
    // Every error of the header is accounted for by some step.
    let steps = report["steps"].as_array().unwrap();
    let by_steps: u64 =
        steps.iter().map(|s| s["error_documents"].as_u64().unwrap() + s["documents_error"].as_u64().unwrap()).sum();
    assert_eq!(report["documents_error"].as_u64(), Some(by_steps), "{report:#}");
    let run_json: Value = serde_json::from_str(&dir.read("dump/run.json")).unwrap();
    let recorded = run_json["steps"].as_array().unwrap().iter().find(|s| s["step"] == "create_user").unwrap();
    assert_eq!(recorded["error_documents"], 2, "{run_json:#}");
}

#[test]
fn bearer_text_is_masked_in_the_terminal_as_in_the_dumps() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0";
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        format!(
            "name: p\nstart: {{type: no_data, next: say}}\nsteps:\n  say:\n    type: notify\n    level: warn\n    template: \"retrying with Bearer {TOKEN} and Authorization: Basic {TOKEN}\"\n    next: done\n  done: {{type: stop}}\n"
        ),
    );
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--test", "--dump", "dump"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN), "{run:?}");
    let line = "retrying with Bearer *** and Authorization: ***";
    assert!(run.stdout.contains(&format!("notify say [warn]: {line}")), "{run:?}");
    assert!(run.stderr.contains(line), "the log line: {run:?}");
    let recorded = dir.read("dump/run.json");
    assert!(recorded.contains(line) && !recorded.contains(TOKEN), "{recorded}");
}

#[test]
fn errors_name_their_kind_and_their_connection() {
    let dir = Dir::new();
    dir.write("in/x.csv", "a,b\n1,2,3\n");
    dir.write("in/y.json", "{bad");
    let disk = |pattern: &str, format: &str| {
        format!(
            "name: p\nconnections:\n  inbox: {{type: disk, directory: in}}\nstart: {{type: connector, connection: inbox, action: get, pattern: '{pattern}', format: {format}, next: done}}\nsteps:\n  done: {{type: stop}}\n"
        )
    };
    let csv = dir.write("csv.yaml", disk("*.csv", "csv"));
    let run = stepwise(dir.path(), &["run", csv.to_str().unwrap(), "--no-history"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("error: step 'start': document 1: connection 'inbox': data error: 'x.csv' row 2: "),
        "{run:?}"
    );
    let json = dir.write("json.yaml", disk("*.json", "json"));
    let run = stepwise(dir.path(), &["run", json.to_str().unwrap(), "--no-history"]);
    assert!(run.stdout.contains("connection 'inbox': data error: 'y.json' is not JSON"), "{run:?}");
    assert!(!run.stdout.contains("transport"), "{run:?}");

    let text = dir.write(
        "text.yaml",
        "name: t\nconnections:\n  kb4: {type: knowbe4, token: {env: KB4}}\nstart: {type: no_data, next: txt}\nsteps:\n  txt: {type: message, template: not json, next: call}\n  call: {type: connector, connection: kb4, object: user, action: create, next: done}\n  done: {type: stop}\n",
    );
    let run = stepwise(dir.path(), &["run", text.to_str().unwrap(), "--no-history", "--sandbox"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "error: step 'call': document 1: connection 'kb4': invalid document: the document is not JSON, and this action takes a JSON document; no request was made"
        ),
        "{run:?}"
    );
}

#[test]
fn validate_checks_connector_parameters_and_disk_paths_at_their_lines() {
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        r#"name: bad-params
connections:
  kb: {type: knowbe4, token: {env: KB_TOKEN}}
  boomi: {type: boomi_platform, account_id: acme-AB12CD, email: a@example.com, token: {env: BOOMI_TOKEN}}
  files: {type: disk, directory: out}
start: {type: no_data, next: list}
steps:
  list:
    type: connector
    connection: kb
    object: user
    action: list
    parameters:
      status: {static: RETIRED}
      group: {static: "abc"}
      colour: {process_property: colour}
      search: {process_property: who}
    next: create
  create:
    type: connector
    connection: kb
    object: user
    action: create
    parameters:
      email: {current_data: true}
    next: grants
  grants:
    type: connector
    connection: boomi
    object: account_user_role
    action: list
    parameters:
      email: {static: a@example.com}
      userId: {static: a@example.com}
    next: read
  read:
    type: connector
    connection: files
    action: get
    pattern: ../secrets/*.json
    next: write
  write:
    type: connector
    connection: files
    action: send
    file_name: [{static: "../"}, {static: "x.json"}]
"#,
    );
    let out = stepwise(dir.path(), &["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let expected = [
        "p.yaml:14:7: error: step 'list': parameter 'status': value 'RETIRED' is not one of ACTIVE, ARCHIVED, ALL",
        "p.yaml:15:7: error: step 'list': parameter 'group': value 'abc' is not of type integer",
        "p.yaml:16:7: error: step 'list': 'user.list' has no parameter 'colour'; known: status, type, group",
        "p.yaml:25:7: error: step 'create': 'user.create' takes no parameters: its input is the document",
        "p.yaml:33:7: error: step 'grants': 'account_user_role.list' has no parameter 'email'; known: userId, roleId",
        "p.yaml:40:5: error: step 'read': pattern '../secrets/*.json' must stay inside the connection's directory",
        "p.yaml:46:5: error: step 'write': file name '../x.json' must be a plain file name inside the connection's",
    ];
    for line in expected {
        assert!(out.stdout.contains(line) || out.stderr.contains(line), "missing {line:?} in {out:?}");
    }
    let errors = out.stdout.lines().chain(out.stderr.lines()).filter(|l| l.contains(": error: ")).count();
    assert_eq!(errors, expected.len(), "a dynamic value ('search') is not judged before the run: {out:?}");
    // `run` refuses the process before any step (exit 2).
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn trigger_refuses_undeclared_properties_and_a_node_fails_a_run_queued_by_name_with_one() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.join("procs")).unwrap();
    dir.write("procs/p.yaml", ONE_PROPERTY);
    let by_file = stepwise(dir.path(), &["trigger", "procs/p.yaml", "--set", "gruop=7", "--state", "state.db"]);
    assert_ne!(by_file.code, 0, "{by_file:?}");
    assert!(by_file.stderr.contains("declares no property 'gruop' (its properties are 'group')"), "{by_file:?}");
    assert!(by_file.stdout.is_empty(), "nothing was queued: {by_file:?}");

    // By name, the file is not read: the node that holds it refuses the run.
    let by_name = stepwise(dir.path(), &["trigger", "p", "--set", "gruop=7", "--state", "state.db"]);
    assert_eq!(by_name.code, 0, "{by_name:?}");
    let run_id = by_name.stdout.trim().to_owned();
    let served = Served::start(&dir, "procs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run = loop {
        let history = stepwise(dir.path(), &["history", "--json", "--state", "state.db"]);
        let runs: Value = serde_json::from_str(&history.stdout).unwrap_or(Value::Null);
        let run = runs.as_array().and_then(|r| r.iter().find(|r| r["run_id"] == run_id.as_str())).cloned();
        if let Some(run) = run.filter(|r| r["status"] != "QUEUED" && r["status"] != "INPROCESS") {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "the run never ended; log:\n{}", served.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(run["status"], "ERROR", "{run}");
    assert!(run["error"].as_str().unwrap().contains("declares no property 'gruop'"), "{run}");
}

#[test]
fn an_error_document_of_a_document_without_data_has_input_null() {
    let dir = Dir::new();
    dir.write("out/taken.txt", "already here");
    let p = dir.write(
        "p.yaml",
        r#"name: p
connections:
  files: {type: disk, directory: out}
start: {type: no_data, next: write}
steps:
  write:
    type: connector
    connection: files
    action: send
    file_name: [{static: taken.txt}]
    error_response: true
    next: keep
  keep:
    type: connector
    connection: files
    action: send
    file_name: [{static: error.json}]
"#,
    );
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history"]);
    assert_eq!(run.code, 0, "{run:?}");
    let error: Value = serde_json::from_str(&dir.read("out/error.json")).unwrap();
    assert_eq!(error["error"]["input"], Value::Null, "{error}");
    assert_eq!(error["error"]["step"], "write", "{error}");
}
