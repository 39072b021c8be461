//! `stepwise run --test`: the dump layout of the process format's section 7, the content of every
//! step's dumps against the documents that really flowed, limits, modes, streaming 100,000
//! documents, shipped processes, and `report.html` in a real headless Chromium.

pub(crate) mod browser;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Dir, Run, repo, stepwise, stepwise_env};

/// People in, routed by kind through two set_properties steps into one shared map step (so it is
/// reached by two paths), then written out by the disk connector.
const ROUTED: &str = r#"name: tm-routed
connections:
  inbox: {type: disk, directory: in}
  outbox: {type: disk, directory: out}
start: {type: connector, connection: inbox, action: get, format: jsonl, pattern: "*.jsonl", next: route}
steps:
  route:
    type: decision
    left: {json: /kind}
    op: eq
    right: {static: a}
    "true": tag_a
    "false": tag_b
  tag_a: {type: set_properties, document: {route: [{static: a}]}, next: shape}
  tag_b: {type: set_properties, document: {route: [{static: b}]}, next: shape}
  shape: {type: map, jq: '{id: .id, name: .name, route: "x", tags: [1, {}, []]}', next: write}
  write:
    type: connector
    connection: outbox
    action: send
    file_name: [{static: "person-"}, {json: /id}, {static: ".json"}]
    next: done
  done: {type: stop}
"#;

const PEOPLE: [&str; 4] = [
    r#"{"id":1,"kind":"a","name":"Ann"}"#,
    r#"{"id":2,"kind":"b","name":"Bob"}"#,
    r#"{"id":3,"kind":"a","name":"Cy </script><script>window.pwned=1</script><img src=x onerror=window.pwned=2>"}"#,
    r#"{"id":4,"kind":"b","name":"Dee \u00e9\u2028"}"#,
];

fn routed_dir() -> Dir {
    let dir = Dir::new();
    dir.write("p.yaml", ROUTED);
    dir.write("in/people.jsonl", PEOPLE.join("\n") + "\n");
    dir
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file and directory under `root`, relative, sorted.
fn tree(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut files = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                dirs.insert(rel);
                stack.push(p);
            } else {
                files.insert(rel);
            }
        }
    }
    (files, dirs)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The `data` bytes of documents 1..=n of a step.
fn sources(dump: &Path, step: &str) -> Vec<Vec<u8>> {
    let dir = dump.join("steps").join(step).join("source");
    let mut out = Vec::new();
    for n in 1.. {
        match std::fs::read(dir.join(format!("{n:06}.data"))) {
            Ok(b) => out.push(b),
            Err(_) => break,
        }
    }
    out
}

fn props(dump: &Path, step: &str, n: u64) -> Value {
    read_json(&dump.join(format!("steps/{step}/source/{n:06}.properties.json")))
}

fn run_id(run: &Run) -> String {
    run.stdout.split_whitespace().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn test_mode_dumps_the_exact_layout() {
    let dir = routed_dir();
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("test mode: dumps in dump, report dump/report.html"), "{run:?}");
    let dump = dir.join("dump");
    let (files, dirs) = tree(&dump);
    let mut expected = BTreeSet::from(["run.json".to_owned(), "report.html".to_owned()]);
    for (step, n) in [("start", 1), ("route", 4), ("tag_a", 2), ("tag_b", 2), ("shape", 4), ("write", 4), ("done", 4)] {
        for i in 1..=n {
            expected.insert(format!("steps/{step}/source/{i:06}.data"));
            expected.insert(format!("steps/{step}/source/{i:06}.properties.json"));
        }
    }
    // Connector steps, disk ones too: what was asked and what came back, one file per call.
    for (step, n) in [("start", 1), ("write", 4)] {
        for i in 1..=n {
            expected.insert(format!("steps/{step}/connection/{i:06}.json"));
        }
    }
    assert_eq!(files, expected);
    let read_call = read_json(&dump.join("steps/start/connection/000001.json"));
    assert_eq!(read_call["request"]["action"], "get");
    assert_eq!(read_call["request"]["pattern"], "*.jsonl");
    assert_eq!(read_call["request"]["format"], "jsonl");
    assert_eq!(read_call["response"], json!({"files": [{"file": "people.jsonl", "documents": 4}], "documents": 4}));
    let write_call = read_json(&dump.join("steps/write/connection/000001.json"));
    assert_eq!(write_call["request"]["action"], "send");
    assert_eq!(write_call["request"]["file_name"], "person-1.json");
    assert_eq!(write_call["response"], json!({"written": true}));
    // Files readable by the owner only, directories too.
    for f in &files {
        assert_eq!(mode(&dump.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&dump), 0o700);
    for d in &dirs {
        assert_eq!(mode(&dump.join(d)), 0o700, "{d}");
    }

    let rj = read_json(&dump.join("run.json"));
    assert_eq!(rj["run_id"], run_id(&run));
    assert_eq!(rj["process"], "tm-routed");
    assert_eq!(rj["status"], "COMPLETE");
    assert!(rj["error"].is_null());
    assert_eq!(rj["files"], json!({"run": "run.json", "report": "report.html"}));
    assert_eq!(rj["dump"]["complete"], true);
    assert_eq!(rj["dump"]["notes"], json!([]));
    let shape = rj["steps"].as_array().unwrap().iter().find(|s| s["step"] == "shape").unwrap();
    assert_eq!(shape["type"], "map");
    assert_eq!(shape["outcome"], "ok");
    assert_eq!(shape["executions"], 2, "one execution per arriving batch");
    assert_eq!(shape["documents_in"], 4);
    assert!(shape["millis"].is_u64());
    assert_eq!(shape["source"]["recorded"], 4);
    assert_eq!(
        shape["source"]["files"][3],
        json!({"number": 4, "data": "steps/shape/source/000004.data", "properties": "steps/shape/source/000004.properties.json"})
    );
    // Every path run.json names exists, and every dumped document is named.
    let mut named = BTreeSet::new();
    for s in rj["steps"].as_array().unwrap() {
        for f in s["source"]["files"].as_array().unwrap() {
            named.insert(f["data"].as_str().unwrap().to_owned());
            named.insert(f["properties"].as_str().unwrap().to_owned());
        }
        for f in s.get("connection").and_then(|c| c["files"].as_array()).into_iter().flatten() {
            named.insert(f.as_str().map(str::to_owned).unwrap_or_else(|| f["file"].as_str().unwrap().to_owned()));
        }
    }
    named.extend(["run.json".to_owned(), "report.html".to_owned()]);
    assert_eq!(named, files);
    // The file lists are one entry per line.
    let text = std::fs::read_to_string(dump.join("run.json")).unwrap();
    assert!(text.contains(
        "\n          {\"number\":1,\"data\":\"steps/route/source/000001.data\",\"properties\":\"steps/route/source/000001.properties.json\"},\n"
    ));
}

#[test]
fn dumps_hold_the_documents_that_really_flowed() {
    let dir = routed_dir();
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let summary = run.json();
    let dump = dir.join("dump");
    let people: Vec<Vec<u8>> = PEOPLE.iter().map(|p| p.as_bytes().to_vec()).collect();

    // The start step's source is the one empty trigger document; what it read enters `route`.
    assert_eq!(sources(&dump, "start"), vec![Vec::<u8>::new()]);
    assert_eq!(props(&dump, "start", 1), json!({}));
    assert_eq!(sources(&dump, "route"), people);
    assert_eq!(props(&dump, "route", 2)["file_name"], "people.jsonl");
    assert_eq!(sources(&dump, "tag_a"), vec![people[0].clone(), people[2].clone()]);
    assert_eq!(sources(&dump, "tag_b"), vec![people[1].clone(), people[3].clone()]);
    // `shape` is reached by two paths: the `true` batch first, then the `false` batch, numbered on.
    assert_eq!(
        sources(&dump, "shape"),
        vec![people[0].clone(), people[2].clone(), people[1].clone(), people[3].clone()]
    );
    assert_eq!(props(&dump, "shape", 1)["route"], "a");
    assert_eq!(props(&dump, "shape", 3)["route"], "b");
    assert_eq!(props(&dump, "shape", 3)["file_name"], "people.jsonl");
    // What entered `write` is exactly what the disk connector wrote out.
    let written = sources(&dump, "write");
    for (i, id) in [1, 3, 2, 4].iter().enumerate() {
        let out = std::fs::read(dir.join(&format!("out/person-{id}.json"))).unwrap();
        assert_eq!(written[i], out, "document {}", i + 1);
    }
    // After `write`, documents carry the connector's properties.
    assert_eq!(props(&dump, "done", 1)["file_name"], "person-1.json");
    assert_eq!(props(&dump, "done", 1)["application_status_code"], "");

    // run.json agrees with the run's own summary.
    let rj = read_json(&dump.join("run.json"));
    for key in ["run_id", "process", "status", "started_at", "ended_at", "millis", "documents_in", "documents_out"] {
        assert_eq!(rj[key], summary[key], "{key}");
    }
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(rj["steps"].as_array().unwrap().len(), steps.len());
    for (a, b) in rj["steps"].as_array().unwrap().iter().zip(steps) {
        for key in ["step", "type", "documents_in", "documents_out", "documents_error", "millis", "executions"] {
            assert_eq!(a[key], b[key], "{} {key}", b["step"]);
        }
        assert_eq!(a["source"]["arrived"], b["documents_in"], "{}", b["step"]);
    }
}

#[test]
fn a_failed_run_records_the_error_and_the_failing_document() {
    let dir = Dir::new();
    dir.write("in/people.jsonl", PEOPLE.join("\n") + "\n");
    dir.write(
        "p.yaml",
        r#"name: tm-fails
connections:
  inbox: {type: disk, directory: in}
start: {type: connector, connection: inbox, action: get, format: jsonl, next: check}
steps:
  check:
    type: decision
    left: {json: /id}
    op: eq
    right: {static: "3"}
    "true": boom
    "false": fine
  boom: {type: exception, template: "person {1} is not allowed", parameters: [{json: /id}], stop_process: true}
  fine: {type: stop}
"#,
    );
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump"]);
    assert_eq!(run.code, 1, "{run:?}");
    let dump = dir.join("dump");
    let rj = read_json(&dump.join("run.json"));
    assert_eq!(rj["status"], "ERROR");
    assert_eq!(
        rj["error"],
        json!({"step": "boom", "document": 1, "message": "person 3 is not allowed", "file": "steps/boom/source/000001.data"})
    );
    assert_eq!(std::fs::read(dump.join("steps/boom/source/000001.data")).unwrap(), PEOPLE[2].as_bytes());
    let outcome =
        |id: &str| rj["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap()["outcome"].clone();
    assert_eq!(outcome("boom"), "error");
    assert_eq!(outcome("check"), "ok");
    assert_eq!(outcome("fine"), "not_reached");
    assert!(!dump.join("steps/fine").exists());
}

#[test]
fn without_test_a_run_writes_no_dumps_and_with_it_the_default_directory_is_used() {
    let dir = routed_dir();
    let plain = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(!plain.stdout.contains("test mode"), "{plain:?}");
    let (files, _) = tree(dir.path());
    // (A run may record its history in `.stepwise/`; test-mode dumps are something else.)
    assert!(
        files.iter().all(|f| !f.starts_with(".stepwise/test-runs")
            && !f.starts_with("steps/")
            && !f.ends_with("run.json")
            && !f.ends_with("report.html")),
        "{files:?}"
    );
    std::fs::remove_dir_all(dir.join("out")).unwrap();

    let test = stepwise(dir.path(), &["run", "p.yaml", "--test"]);
    assert_eq!(test.code, 0, "{test:?}");
    let id = run_id(&test);
    let dump = dir.join(".stepwise/test-runs").join(&id);
    assert_eq!(read_json(&dump.join("run.json"))["run_id"], id.as_str());
    assert!(dump.join("report.html").is_file());
    assert!(test.stdout.contains(&format!("test mode: dumps in .stepwise/test-runs/{id}")), "{test:?}");

    // A dump directory is never reused.
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let again = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", dump.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("is not empty"), "{again:?}");
    assert!(!dir.join("out").exists(), "the process must not run when its dumps cannot be written");
    // The limits need --test.
    let usage = stepwise(dir.path(), &["run", "p.yaml", "--dump-max-bytes", "10"]);
    assert_eq!(usage.code, 2, "{usage:?}");
}

#[test]
fn limits_are_noted_in_run_json_and_in_the_summary() {
    let dir = routed_dir();
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "d1", "--dump-max-documents-per-step", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "test mode: not recorded: step 'shape': 3 of 4 documents were not recorded; documents 1 to 1 were (limit 1 per step, --dump-max-documents-per-step)"
        ),
        "{run:?}"
    );
    let rj = read_json(&dir.join("d1/run.json"));
    assert_eq!(rj["dump"]["complete"], false);
    assert_eq!(rj["dump"]["limits"], json!({"max_documents_per_step": 1, "max_bytes": null}));
    assert_eq!(rj["dump"]["documents_not_recorded"], 3 + 1 + 1 + 3 + 3 + 3);
    // One note per step cut short, and one for the disk connector's calls of `write`.
    let notes = rj["dump"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 7, "{notes:?}");
    assert!(notes.contains(&json!(
        "step 'write': 3 of 4 connector calls were not recorded; calls 1 to 1 were (limit 1 per step, --dump-max-documents-per-step)"
    )));
    assert_eq!(sources(&dir.join("d1"), "shape").len(), 1);
    // The run itself is unchanged: every document was still written out.
    assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 4);

    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "d2", "--dump-max-bytes", "1K", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["status"], "COMPLETE");
    assert!(
        run.stderr
            .contains("test mode: not recorded: recording stopped when the byte limit was reached (1024 bytes per run"),
        "{run:?}"
    );
    let rj = read_json(&dir.join("d2/run.json"));
    assert_eq!(rj["dump"]["complete"], false);
    assert!(rj["dump"]["bytes_written"].as_u64().unwrap() <= 1024);
    let (files, _) = tree(&dir.join("d2"));
    let dumped: u64 = files
        .iter()
        .filter(|f| f.starts_with("steps/"))
        .map(|f| std::fs::metadata(dir.join("d2").join(f)).unwrap().len())
        .sum();
    assert_eq!(dumped, rj["dump"]["bytes_written"].as_u64().unwrap());
    assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 4);
}

/// Peak resident memory of a `stepwise` run, in KiB, sampled from /proc while it runs.
fn run_measured(cwd: &Path, args: &[&str]) -> (i32, String, u64, Duration) {
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(cwd)
        .args(args)
        .env_remove("STEPWISE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1))
        {
            peak = peak.max(kb.parse().unwrap_or(0));
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), peak, started.elapsed())
}

#[test]
fn a_hundred_thousand_documents_stream_to_disk() {
    const N: usize = 100_000;
    let dir = Dir::new();
    let mut lines = String::with_capacity(N * 64);
    for i in 1..=N {
        lines.push_str(&format!(
            "{{\"id\":{i},\"email\":\"user{i}@example.com\",\"pad\":\"{}\"}}\n",
            "x".repeat(i % 50)
        ));
    }
    dir.write("in/users.jsonl", &lines);
    dir.write(
        "p.yaml",
        r#"name: tm-many
connections:
  inbox: {type: disk, directory: in}
start: {type: connector, connection: inbox, action: get, format: jsonl, next: done}
steps:
  done: {type: stop}
"#,
    );
    let (code, _, plain_peak, plain_time) = run_measured(dir.path(), &["run", "p.yaml"]);
    assert_eq!(code, 0);
    let (code, stdout, test_peak, test_time) = run_measured(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump"]);
    assert_eq!(code, 0, "{stdout}");
    eprintln!(
        "100,000 documents: plain run {plain_time:?}, peak {plain_peak} KiB; test-mode run {test_time:?}, peak {test_peak} KiB"
    );
    let dump = dir.join("dump");
    let rj = read_json(&dump.join("run.json"));
    assert_eq!(rj["dump"]["complete"], true);
    let done = rj["steps"].as_array().unwrap().iter().find(|s| s["step"] == "done").unwrap();
    assert_eq!(done["documents_in"], N as u64);
    assert_eq!(done["source"]["recorded"], N as u64);
    assert_eq!(done["source"]["files"].as_array().unwrap().len(), N);
    let files = std::fs::read_dir(dump.join("steps/done/source")).unwrap().count();
    assert_eq!(files, 2 * N);
    for i in [1, 54_321, N] {
        let data = std::fs::read(dump.join(format!("steps/done/source/{i:06}.data"))).unwrap();
        let expected = format!("{{\"id\":{i},\"email\":\"user{i}@example.com\",\"pad\":\"{}\"}}", "x".repeat(i % 50));
        assert_eq!(String::from_utf8(data).unwrap(), expected);
        assert_eq!(props(&dump, "done", i as u64)["file_name"], "users.jsonl");
    }
    // The report embeds the first documents only, and says so.
    let html = std::fs::read_to_string(dump.join("report.html")).unwrap();
    assert!(html.contains("\"report_documents_per_step\":200"));
    assert!(html.len() < 2_000_000, "{}", html.len());
    // Recording holds no documents: the run's own memory (its 100,000-document batches) dominates.
    assert!(
        test_peak < plain_peak + plain_peak / 2 + 32 * 1024,
        "test mode peaked at {test_peak} KiB, a plain run at {plain_peak} KiB"
    );
}

/// Runs every shipped process (in a copy of `processes/`, with the simulators) in test mode and
/// checks each dump against the run's own summary.
#[test]
fn shipped_processes_run_in_test_mode() {
    let dir = Dir::new();
    let copy = dir.join("processes");
    copy_tree(&repo().join("processes"), &copy);
    let mut ran = 0;
    for entry in std::fs::read_dir(&copy).unwrap() {
        let file = entry.unwrap().path();
        if !file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let dump = dir.join(&format!("dumps/{name}"));
        let mut args =
            vec!["run", file.to_str().unwrap(), "--sandbox", "--test", "--dump", dump.to_str().unwrap(), "--json"];
        // A webhook process runs on its sample request body.
        let sample = copy.join(format!("data/webhooks/{name}.json"));
        if sample.exists() {
            args.extend(["--input", sample.to_str().unwrap()]);
        }
        let run = stepwise_env(&copy, &args, &[]);
        assert!(run.code == 0 || run.code == 1, "{name}: {run:?}");
        let summary = run.json();
        let rj = read_json(&dump.join("run.json"));
        assert_eq!(rj["status"], summary["status"], "{name}");
        assert_eq!(rj["dump"]["complete"], true, "{name}");
        for (s, b) in rj["steps"].as_array().unwrap().iter().zip(summary["steps"].as_array().unwrap()) {
            let step = s["step"].as_str().unwrap();
            assert_eq!(s["source"]["arrived"], b["documents_in"], "{name} {step}");
            let n = b["documents_in"].as_u64().unwrap() as usize;
            let source = dump.join("steps").join(step).join("source");
            let on_disk = std::fs::read_dir(&source).map(|d| d.count()).unwrap_or(0);
            assert_eq!(on_disk, 2 * n, "{name} {step}");
            for i in 1..=n {
                let p = read_json(&source.join(format!("{i:06}.properties.json")));
                assert!(p.as_object().unwrap().values().all(Value::is_string), "{name} {step} {i}");
            }
            if let Some(c) = s.get("connection") {
                let calls = c["recorded"].as_u64().unwrap() as usize;
                let conn = dump.join("steps").join(step).join("connection");
                assert_eq!(std::fs::read_dir(&conn).map(|d| d.count()).unwrap_or(0), calls, "{name} {step}");
                for i in 1..=calls {
                    read_json(&conn.join(format!("{i:06}.json")));
                }
            }
        }
        assert_no_credentials(&dump, &name);
        ran += 1;
    }
    eprintln!("ran {ran} shipped processes in test mode");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let Ok(entries) = std::fs::read_dir(from) else { return };
    for entry in entries {
        let p = entry.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// No simulator token (the ones `--sandbox` uses), and no `Authorization` header or bearer token
/// with a value other than `***`, in any dumped byte.
fn assert_no_credentials(dump: &Path, name: &str) {
    let (files, _) = tree(dump);
    let tokens = [knowbe4_sim::SANDBOX_TOKEN, knowbe4_sim::SANDBOX_PARTNER_TOKEN, boomi_sim::SANDBOX_TOKEN];
    for f in files {
        let bytes = std::fs::read(dump.join(&f)).unwrap();
        for token in tokens {
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{name}: {token} in {f}");
        }
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for (i, _) in text.match_indices("bearer ") {
            assert!(text[i + 7..].starts_with("***"), "{name}: {f}: {}", &text[i..(i + 40).min(text.len())]);
        }
        for (i, _) in text.match_indices("\"authorization\": ") {
            assert!(text[i + 17..].starts_with("\"***\""), "{name}: {f}");
        }
    }
}

/// A process whose report shows all three outcomes: ran ok, had errors (a caught exception) and
/// not reached.
const OUTCOMES: &str = r#"name: tm-report
connections:
  inbox: {type: disk, directory: in}
start: {type: connector, connection: inbox, action: get, format: jsonl, next: guard}
steps:
  guard: {type: try_catch, try: route, catch: caught}
  route:
    type: decision
    left: {json: /kind}
    op: eq
    right: {static: a}
    "true": shape
    "false": reject
  reject: {type: exception, template: "kind {1} is refused", parameters: [{json: /kind}]}
  shape: {type: map, jq: '{id: .id, name: .name, tags: ["x", {"deep": [1, 2]}], empty: {}}', next: check}
  check:
    type: decision
    left: {json: /id}
    op: gt
    right: {static: "100"}
    "true": never
    "false": done
  never: {type: stop}
  done: {type: stop}
  caught: {type: notify, template: "caught {1}", parameters: [{document_property: try_catch_message}], next: end}
  end: {type: stop}
"#;

#[test]
fn the_report_works_in_a_real_browser() {
    if !browser::required("the browser test") {
        return;
    }
    let dir = Dir::new();
    dir.write("p.yaml", OUTCOMES);
    dir.write("in/people.jsonl", PEOPLE.join("\n") + "\n");
    let run = stepwise(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = dir.join("dump/report.html");
    let url = format!("file://{}", report.display());

    let mut b = browser::Browser::launch(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    b.open(&url, "document.documentElement.getAttribute('data-ready') === 'true'")
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log()));
    assert_eq!(b.eval("document.getElementById('step-view').hidden").unwrap(), true);

    // Steps are coloured by outcome.
    let fill = |b: &mut browser::Browser, step: &str| {
        b.eval(&format!("getComputedStyle(document.querySelector('[data-step=\"{step}\"] rect')).fill")).unwrap()
    };
    let (ok, error, not_reached) = (fill(&mut b, "shape"), fill(&mut b, "reject"), fill(&mut b, "never"));
    assert!(ok != error && error != not_reached && ok != not_reached, "{ok} {error} {not_reached}");
    assert_eq!(fill(&mut b, "done"), ok);
    assert_eq!(
        b.eval("document.querySelector('[data-step=\"reject\"]').getAttribute('class')").unwrap(),
        "step error type-exception"
    );
    assert_eq!(b.eval("document.querySelectorAll('#graph .step').length").unwrap(), 10);
    assert_eq!(b.eval("document.querySelectorAll('#graph .edge').length").unwrap(), 9);

    // Click the `shape` step, then its second document, with the mouse.
    b.click("[data-step=\"shape\"]").unwrap();
    b.wait_for("!document.getElementById('step-view').hidden").unwrap();
    let title = b.eval("document.getElementById('step-title').textContent").unwrap();
    assert_eq!(title, "shape (map) \u{2014} ran ok");
    assert_eq!(b.eval("document.querySelectorAll('#doc-list button[data-doc]').length").unwrap(), 2);
    b.click("#doc-list button[data-doc=\"2\"]").unwrap();
    b.wait_for("!document.getElementById('doc-view').hidden").unwrap();
    let shown = b.eval("document.getElementById('doc-data').textContent").unwrap();
    // The second document that entered `shape` is person 3, pretty-printed, and its markup is
    // text: nothing of it ran.
    let expected = serde_json::to_string_pretty(&serde_json::from_str::<Value>(PEOPLE[2]).unwrap()).unwrap();
    assert_eq!(shown.as_str().unwrap(), expected);
    assert!(expected.contains("</script><script>window.pwned=1</script>"));
    assert_eq!(b.eval("typeof window.pwned").unwrap(), "undefined");
    assert_eq!(b.eval("document.querySelectorAll('img').length").unwrap(), 0);
    let props = b.eval("document.getElementById('doc-props').textContent").unwrap();
    assert!(props.as_str().unwrap().contains("file_namepeople.jsonl"), "{props}");
    assert_eq!(b.eval("location.hash").unwrap(), "#step=shape&doc=2");

    // A step that had errors lists what entered it; one not reached lists nothing.
    b.click("[data-step=\"reject\"]").unwrap();
    b.wait_for("document.getElementById('step-title').textContent.startsWith('reject')").unwrap();
    assert_eq!(b.eval("document.querySelectorAll('#doc-list button[data-doc]').length").unwrap(), 2);
    b.click("[data-step=\"never\"]").unwrap();
    b.wait_for("document.getElementById('step-title').textContent.startsWith('never')").unwrap();
    assert_eq!(b.eval("document.getElementById('doc-list').textContent").unwrap(), "No document entered this step.");

    // Back to the document, for the screenshot.
    b.click("[data-step=\"shape\"]").unwrap();
    b.click("#doc-list button[data-doc=\"2\"]").unwrap();
    b.wait_for("!document.getElementById('doc-view').hidden").unwrap();
    let png = b.screenshot().unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} bytes", png.len());
    let shot = dir.join("report.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());
    // Keep it when asked (CI artifacts, reviews): STEPWISE_REPORT_SCREENSHOT=path/to/file.png.
    if let Some(keep) = std::env::var_os("STEPWISE_REPORT_SCREENSHOT") {
        std::fs::write(&keep, &png).unwrap();
    }

    assert!(b.exceptions.is_empty(), "JavaScript exceptions: {:?}", b.exceptions);
    assert!(
        b.requests.iter().all(|u| u.starts_with("file://") || u.starts_with("data:") || u == "about:blank"),
        "the report made network requests: {:?}",
        b.requests
    );
    drop(b);

    // A link to a step and document opens in that state (`#step=...&doc=...`), read from the DOM
    // that the browser's own --dump-dom prints.
    let profile = dir.join("profile-dump-dom");
    let out = std::process::Command::new(browser::binary())
        .args(browser::flags(&profile))
        .arg("--dump-dom")
        .arg(format!("{url}#step=shape&doc=1"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<pre id=\"doc-data\">{\n  \"id\": 1,\n  \"kind\": \"a\",\n  \"name\": \"Ann\"\n}</pre>"),
        "{dom}"
    );
}
