//! Safe to leave running: jq programs stay inside the document, secrets never print, every run
//! is bounded (time, documents, bytes, graph depth) and can be cancelled, try/catch retries wait.

use serde_json::Value;

use crate::support::{Dir, Run, stepwise, stepwise_env};

/// Writes `p.yaml` and runs it with `--json --no-history`.
fn run_json(dir: &Dir, yaml: &str) -> (Run, Value) {
    dir.write("p.yaml", yaml);
    let run = stepwise(dir.path(), &["run", "p.yaml", "--json", "--no-history"]);
    let summary = run.json();
    (run, summary)
}

/// Every jq filter with effects outside the document is rejected where it is written, by
/// `validate` and by `run` (which runs nothing), in a map step and in a `{jq: ...}` parameter.
#[test]
fn jq_cannot_end_the_binary_or_read_the_environment() {
    let dir = Dir::new();
    let forbidden = [
        "halt",
        "halt_error",
        "halt_error(1)",
        "env.SOME_TOKEN",
        "$ENV.SOME_TOKEN",
        "input",
        "inputs",
        "debug",
        "debug(\"x\")",
        "stderr",
        "input_filename",
    ];
    for f in forbidden {
        let yaml = format!(
            "name: p\nstart: {{type: no_data, next: a}}\nsteps:\n  a:\n    type: map\n    jq: '{{a: 1}} | {f}'\n    next: b\n  b:\n    type: message\n    template: \"{{1}}\"\n    parameters: [{{jq: '{f}'}}]\n    next: c\n  c: {{type: stop}}\n"
        );
        let p = dir.write("p.yaml", &yaml);
        let file = p.display().to_string();
        let name = f.split(['.', '(']).next().unwrap();
        let validate = stepwise_env(dir.path(), &["validate", &file], &[("SOME_TOKEN", "tok-123")]);
        assert_eq!(validate.code, 1, "{f}: {validate:?}");
        let map =
            format!("{file}:6:5: error: step 'a': jq program uses '{name}' (at character 10), which is not allowed");
        assert!(validate.stderr.contains(&map), "{f}: {validate:?}");
        let param = format!("{file}:11:19: error: step 'b': parameter 1: jq program uses '{name}' (at character 1)");
        assert!(validate.stderr.contains(&param), "{f}: {validate:?}");
        let run = stepwise_env(dir.path(), &["run", "p.yaml", "--no-history"], &[("SOME_TOKEN", "tok-123")]);
        assert_eq!(run.code, 2, "{f}: {run:?}");
        assert!(!run.stdout.contains("tok-123") && run.stderr.contains("nothing was run"), "{f}: {run:?}");
    }
    // What stays allowed: the clock and ordinary filters.
    let (run, summary) = run_json(
        &dir,
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '{t: (now | type), x: ([1, 2] | add)}', next: b}\n  b: {type: stop}\n",
    );
    assert_eq!(summary["status"], "COMPLETE", "{run:?}");
}

/// A `no_data` start, then a map step `a` running `jq`, then a stop; `limits` as given.
fn map_process(jq: &str, limits: &str) -> String {
    format!(
        "name: p\n{limits}start: {{type: no_data, next: a}}\nsteps:\n  a:\n    type: map\n    jq: '{jq}'\n    next: b\n  b: {{type: stop}}\n"
    )
}

/// `(status, error step, error message)` of a summary.
fn outcome(summary: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (s(&summary["status"]), s(&summary["error"]["step"]), s(&summary["error"]["message"]))
}

/// An endless jq program fails its step at the documents or the bytes limit, with a clear
/// error, instead of filling memory; the limits are the process's own or the defaults.
#[test]
fn a_step_fails_past_its_document_or_byte_limit() {
    let dir = Dir::new();
    let (run, summary) = run_json(&dir, &map_process("repeat(1)", "limits: {max_documents_per_step: 1000}\n"));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        outcome(&summary),
        (
            "ERROR".to_owned(),
            "a".to_owned(),
            "the step produced more than 1000 documents (limits.max_documents_per_step)".to_owned()
        ),
        "{run:?}"
    );
    let (run, summary) = run_json(&dir, &map_process("repeat(\"xxxxxxxxxx\")", "limits: {max_bytes: 100000}\n"));
    assert_eq!(
        outcome(&summary),
        (
            "ERROR".to_owned(),
            "a".to_owned(),
            "the step produced more than 100000 bytes of documents (limits.max_bytes)".to_owned()
        ),
        "{run:?}"
    );
    // Any step's output counts, not only jq's: a branch copies its batch to each path.
    let (run, summary) = run_json(
        &dir,
        "name: p\nlimits: {max_documents_per_step: 2}\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '1, 2, 3', next: b}\n  b: {type: stop}\n",
    );
    assert_eq!(
        outcome(&summary).2,
        "the step produced more than 2 documents (limits.max_documents_per_step)",
        "{run:?}"
    );
    // At the limit is fine.
    let (run, summary) =
        run_json(&dir, &map_process("limit(1000; repeat(1))", "limits: {max_documents_per_step: 1000}\n"));
    assert_eq!(summary["status"], "COMPLETE", "{run:?}");
    // Zero, negative and unknown limits are refused where they are written.
    let p = dir.write("bad.yaml", map_process(".", "limits: {timeout_secs: 0, max_bytes: -1, max_docs: 5}\n"));
    let validate = stepwise(dir.path(), &["validate", p.to_str().unwrap()]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert!(validate.stderr.contains(":2:"), "{validate:?}");
    assert!(validate.stderr.contains("max_docs"), "{validate:?}");
}

/// A CPU-bound step that never yields a document stops at the run's time limit: the run ends
/// ERROR, naming the step and the limit.
#[test]
fn a_run_stops_at_its_time_limit() {
    let dir = Dir::new();
    for jq in ["last(range(1e12))", "[limit(1; repeat(1) | select(false))]", "last(0 | while(true; . + 1))"] {
        let (run, summary) = run_json(&dir, &map_process(jq, "limits: {timeout_secs: 1}\n"));
        assert_eq!(run.code, 1, "{jq}: {run:?}");
        assert_eq!(
            outcome(&summary),
            (
                "ERROR".to_owned(),
                "a".to_owned(),
                "the run took longer than its time limit of 1 s (limits.timeout_secs)".to_owned()
            ),
            "{jq}: {run:?}"
        );
    }
}

/// How long to wait for the binary to do what it should before calling it stuck.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

/// Waits for `child` to exit by itself; kills it and fails if it does not within [`PATIENCE`].
fn exit_of(mut child: std::process::Child, what: &str) -> std::process::Output {
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().expect("waiting").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{what} did not end by itself: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// The runs in the history at `dir/state.db` with `status`.
fn runs_with_status(dir: &Dir, status: &str) -> Vec<Value> {
    let out = stepwise(dir.path(), &["history", "--json", "--state", "state.db", "--status", status]);
    if out.code != 0 {
        return Vec::new();
    }
    out.json().as_array().cloned().unwrap_or_default()
}

/// Waits until a run shows as INPROCESS in the history.
fn wait_in_process(dir: &Dir) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(run) = runs_with_status(dir, "INPROCESS").into_iter().next() {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "no run showed as INPROCESS");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args([name, &pid]).status().expect("kill").success());
}

/// SIGINT while a step burns CPU (`last(range(1e12))` yields nothing for hours) ends the run
/// ABORTED at that step, recorded so in the history.
#[test]
fn sigint_stops_cpu_bound_work() {
    let dir = Dir::new();
    dir.write("p.yaml", map_process("last(range(1e12))", ""));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir.path())
        .args(["run", "p.yaml", "--json", "--state", "state.db"])
        .env_remove("STEPWISE_LOG")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting stepwise run");
    let started = wait_in_process(&dir);
    signal(&child, "-INT");
    let out = exit_of(child, "stepwise run");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the summary is JSON");
    assert_eq!(
        outcome(&summary),
        ("ABORTED".to_owned(), "a".to_owned(), "aborted: interrupted by SIGINT".to_owned()),
        "{summary:#}"
    );
    let aborted = runs_with_status(&dir, "ABORTED");
    assert_eq!(aborted.len(), 1, "{aborted:#?}");
    assert_eq!(aborted[0]["run_id"], started["run_id"], "{aborted:#?}");
}

/// `serve`'s shutdown takes the same path: SIGTERM with `--grace-secs 1` while a run burns CPU;
/// after the grace period the run is cancelled, the service exits 0 and the run is ABORTED.
#[test]
fn serve_shutdown_stops_cpu_bound_work() {
    let dir = Dir::new();
    let process = map_process("last(range(1e12))", "schedules: [{cron: '* * * * * *'}]\n");
    dir.write("procs/p.yaml", process);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir.path())
        .args(["serve", "procs", "--state", "state.db", "--grace-secs", "1"])
        .env_remove("STEPWISE_LOG")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting stepwise serve");
    let started = wait_in_process(&dir);
    signal(&child, "-TERM");
    let out = exit_of(child, "stepwise serve");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let aborted = runs_with_status(&dir, "ABORTED");
    assert!(aborted.iter().any(|r| r["run_id"] == started["run_id"]), "{aborted:#?}");
    assert!(runs_with_status(&dir, "INPROCESS").is_empty());
}

fn started_at(run: &Value) -> chrono::DateTime<chrono::Utc> {
    run["started_at"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no started_at: {run}"))
}

/// Runs that burn CPU do not hold every thread of `serve`'s runs: with as many burning runs as
/// the machine has cores (two here, and on CI), a quick process on its schedule still runs.
#[test]
fn cpu_bound_runs_leave_room_for_other_processes() {
    let dir = Dir::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    for i in 0..cores {
        let burn = map_process("last(range(1e12))", "schedules: [{cron: '* * * * * *'}]\n");
        dir.write(&format!("procs/burn{i}.yaml"), burn.replace("name: p", &format!("name: burn{i}")));
    }
    let quick = map_process("1", "schedules: [{cron: '* * * * * *'}]\n").replace("name: p", "name: quick");
    dir.write("procs/quick.yaml", quick);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir.path())
        .args(["serve", "procs", "--state", "state.db", "--grace-secs", "0"])
        .env_remove("STEPWISE_LOG")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting stepwise serve");
    // Every burning process has a run going; then the quick one completes three runs that
    // started after all of them.
    let deadline = std::time::Instant::now() + PATIENCE;
    let burning_since = loop {
        let going = runs_with_status(&dir, "INPROCESS");
        let burning: Vec<&Value> = going.iter().filter(|r| r["process"] != "quick").collect();
        if burning.len() == cores {
            break burning.iter().map(|r| started_at(r)).max().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "the burning runs never all started: {going:#?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let quick_after = loop {
        let done = runs_with_status(&dir, "COMPLETE");
        let after: Vec<Value> =
            done.into_iter().filter(|r| r["process"] == "quick" && started_at(r) > burning_since).collect();
        if after.len() >= 3 {
            break after;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the quick process did not run while {cores} runs burned CPU");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let still_burning = runs_with_status(&dir, "INPROCESS").iter().filter(|r| r["process"] != "quick").count();
    signal(&child, "-TERM");
    let _ = child.wait();
    assert_eq!(still_burning, cores, "the burning runs went on meanwhile; quick runs: {quick_after:#?}");
}

/// A chain of `n` map steps after start.
fn chain(n: usize) -> String {
    let mut s = String::from("name: chain\nstart: {type: no_data, next: s0}\nsteps:\n");
    for i in 0..n {
        s.push_str(&format!("  s{i}: {{type: map, jq: '.', next: s{}}}\n", i + 1));
    }
    s.push_str(&format!("  s{n}: {{type: stop}}\n"));
    s
}

/// `n` try/catch steps, each the try path of the one before.
fn nested_tries(n: usize) -> String {
    let mut s = String::from("name: tries\nstart: {type: no_data, next: t0}\nsteps:\n");
    for i in 0..n {
        s.push_str(&format!("  t{i}: {{type: try_catch, try: t{}, catch: c{i}}}\n  c{i}: {{type: stop}}\n", i + 1));
    }
    s.push_str(&format!("  t{n}: {{type: exception, template: deep}}\n"));
    s
}

/// Deep graphs run (the executor's stack is sized for the deepest plan `validate` accepts), and
/// a deeper one is refused by `validate` with the limit stated; never a stack overflow.
#[test]
fn deep_graphs_run_or_are_refused_with_a_stated_limit() {
    let dir = Dir::new();
    let (run, summary) = run_json(&dir, &chain(5000));
    assert_eq!(summary["status"], "COMPLETE", "{}", run.stderr);
    assert_eq!(summary["steps"].as_array().map(Vec::len), Some(5002), "{}", run.stderr);
    // The innermost try path fails its document: it is caught by the innermost try/catch.
    let (run, summary) = run_json(&dir, &nested_tries(3000));
    assert_eq!(summary["status"], "COMPLETE_WARN", "{}", run.stderr);
    let caught: Vec<&Value> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"].as_str().is_some_and(|id| id.starts_with('c')) && s["documents_in"] == 1)
        .collect();
    assert_eq!(caught.len(), 1, "{summary}");
    assert_eq!(caught[0]["step"], "c2999");
    // One step too deep.
    let p = dir.write("deep.yaml", chain(10_000));
    let validate = stepwise(dir.path(), &["validate", p.to_str().unwrap()]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert!(
        validate.stderr.contains(
            "error: step 's9999': the process is too deep: this step is 10001 steps from 'start' (a try_catch counts twice); the most is 10000"
        ),
        "{validate:?}"
    );
    let run = stepwise(dir.path(), &["run", "deep.yaml", "--no-history"]);
    assert_eq!(run.code, 2, "{run:?}");
}

/// `(step, message)` of each notification, in order.
fn notes(summary: &Value) -> Vec<(String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    summary["notifications"].as_array().unwrap().iter().map(|n| (s(&n["step"]), s(&n["message"]))).collect()
}

/// Try/catch retries wait between attempts (1 s, then 2 s, ...): each attempt's notification
/// records the instant it ran, and each retry ran at least the schedule's wait after the one
/// before. Only the documents that failed go down the try path again.
#[test]
fn try_catch_retries_wait_and_resend_only_failed_documents() {
    let dir = Dir::new();
    let (run, summary) = run_json(
        &dir,
        "name: p\nconnections:\n  out: {type: disk, directory: out}\nstart: {type: no_data, next: split}\nsteps:\n  split: {type: map, jq: '1, 2, 3', next: guard}\n  guard: {type: try_catch, try: attempt, catch: caught, retries: 2}\n  attempt:\n    type: notify\n    template: '{1} {2}'\n    parameters: [{current_data: true}, {date: {format: '%Y-%m-%dT%H:%M:%S%.3fZ'}}]\n    next: check\n  check: {type: decision, left: {current_data: true}, op: eq, right: {static: '2'}, 'true': boom, 'false': save}\n  boom: {type: exception, template: 'boom'}\n  save: {type: connector, connection: out, action: send, next: done}\n  caught: {type: stop}\n  done: {type: stop}\n",
    );
    assert_eq!(summary["status"], "COMPLETE_WARN", "{run:?}");
    let attempts: Vec<(String, chrono::DateTime<chrono::Utc>)> = notes(&summary)
        .into_iter()
        .map(|(_, m)| {
            let (doc, at) = m.split_once(' ').unwrap();
            (doc.to_owned(), at.parse().unwrap())
        })
        .collect();
    let docs: Vec<&str> = attempts.iter().map(|(d, _)| d.as_str()).collect();
    // Documents 1 and 3 went through once; only document 2 was retried, twice.
    assert_eq!(docs, ["1", "2", "3", "2", "2"], "{summary:#}");
    assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 2);
    let gap = |a: usize, b: usize| (attempts[b].1 - attempts[a].1).num_milliseconds();
    assert!(gap(2, 3) >= 1000, "the first retry waited {} ms: {attempts:?}", gap(2, 3));
    assert!(gap(3, 4) >= 2000, "the second retry waited {} ms: {attempts:?}", gap(3, 4));
}

/// With `catch_errors: all`, a process error sends only the documents it left unfinished down
/// the try path again (and then to catch): documents that had gone all the way through are not
/// sent again. Here the decision's `true` path (documents 1 and 3, written) runs before its `false`
/// path (document 2), which ends in a process error.
#[test]
fn catch_all_retries_only_the_documents_a_process_error_left_unfinished() {
    let dir = Dir::new();
    let (run, summary) = run_json(
        &dir,
        "name: p\nconnections:\n  out: {type: disk, directory: out}\nstart: {type: no_data, next: split}\nsteps:\n  split: {type: map, jq: '1, 2, 3', next: guard}\n  guard: {type: try_catch, try: check, catch: caught, retries: 1, catch_errors: all}\n  check: {type: decision, left: {current_data: true}, op: ne, right: {static: '2'}, 'true': save, 'false': fatal}\n  save: {type: connector, connection: out, action: send, next: done}\n  fatal: {type: exception, template: 'fatal', stop_process: true}\n  caught: {type: notify, template: 'caught {1}', parameters: [{current_data: true}], next: done}\n  done: {type: stop}\n",
    );
    assert_eq!(summary["status"], "COMPLETE_WARN", "{run:?}");
    // Documents 1 and 3 were written once; document 2 was tried twice and caught.
    assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 2, "{summary:#}");
    let s = |id: &str| summary["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap().clone();
    assert_eq!(s("check")["documents_in"], 4, "{summary:#}");
    assert_eq!(s("fatal")["documents_in"], 2, "{summary:#}");
    assert_eq!(notes(&summary), [("caught".to_owned(), "caught 2".to_owned())]);
}
