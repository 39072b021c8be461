//! `stepwise validate` and `stepwise graph` on real files.

use crate::support::{Dir, repo, stepwise, stepwise_env};

#[test]
fn validates_every_shipped_process() {
    let root = repo();
    let run = stepwise(&root, &["validate", "--deny-warnings", "processes"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn reports_every_problem_with_file_line_and_column() {
    let dir = Dir::new();
    let p = dir.write(
        "bad.yaml",
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '.', nxt: b}\n  b: {type: message, template: \"{2}\", parameters: [{static: x}], next: c}\n  c: {type: stop}\n",
    );
    let run = stepwise(dir.path(), &["validate", p.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    let file = p.display().to_string();
    assert!(
        run.stderr.contains(&format!("{file}:4:27: error: step 'a': unknown key 'nxt' (did you mean 'next'?)")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{file}:5:22: error: step 'b': template names parameter {{2}} but only 1 parameter is given"
        )),
        "{run:?}"
    );
}

#[test]
fn walks_every_invalid_compiler_fixture() {
    // Each file of the compiler's err fixtures must fail with exit 1 and name the file.
    let dir = repo().join("crates/compiler/test_data/err");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let run = stepwise(&dir, &["validate", path.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{}: {run:?}", path.display());
        let expected = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        for line in expected.lines() {
            let rest = line.split_once(": ").map(|(_, r)| r).unwrap();
            // The fixtures use a small test catalog; the binary knows every operation.
            let rest = rest.split("; known: ").next().unwrap();
            assert!(run.stderr.contains(rest), "{}: missing {line:?} in {run:?}", path.display());
        }
        n += 1;
    }
    assert!(n >= 30, "{n}");
}

#[test]
fn bad_input_never_panics() {
    let dir = Dir::new();
    let huge = dir.write("huge.yaml", vec![b'#'; 50 * 1024 * 1024]);
    let run = stepwise(dir.path(), &["validate", huge.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("limited to"), "{run:?}");
    let usage = stepwise(dir.path(), &["validate"]);
    assert_eq!(usage.code, 2, "{usage:?}");
}

/// A file that cannot be read is an invalid input (exit 1) for the commands that check files,
/// reported as `FILE: error: ...`; `validate` still checks the other files it was given.
#[test]
fn unreadable_files_are_invalid_not_usage_errors() {
    let dir = Dir::new();
    dir.write("ok.yaml", "name: ok\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\n");
    let validate = stepwise(dir.path(), &["validate", "nope.yaml", "ok.yaml"]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert!(validate.stderr.starts_with("nope.yaml: error: cannot read 'nope.yaml'"), "{validate:?}");
    assert_eq!(validate.stdout, "ok.yaml: ok\n", "the other file is still checked: {validate:?}");
    for args in [&["graph", "nope.yaml"][..], &["schedule", "nope.yaml", "--next", "1"]] {
        let out = stepwise(dir.path(), args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("nope.yaml: error: cannot read"), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    // `run` keeps 2 for a process it cannot run at all.
    let run = stepwise(dir.path(), &["run", "nope.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        "name: p\nstart: {type: no_data, next: d}\nsteps:\n  d: {type: decision, left: {static: a}, op: eq, right: {static: a}, \"true\": y, \"false\": n}\n  y: {type: stop}\n  n: {type: stop}\n",
    );
    let run = stepwise(dir.path(), &["graph", p.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("flowchart TD\n"));
    assert!(run.stdout.contains("s_d -->|true| s_y"));
    let dot = stepwise(dir.path(), &["graph", p.to_str().unwrap(), "--format", "dot"]);
    assert!(dot.stdout.contains("\"d\" -> \"n\" [label=\"false\"];"), "{dot:?}");
}

/// `trigger --wait --timeout SECS` gives up when no node takes the run: exit 124, a line saying
/// why; the run stays queued in the store.
#[test]
fn trigger_wait_gives_up_after_its_timeout() {
    let dir = Dir::new();
    let run = |args: &[&str]| {
        let args = [args, &["--state", "state.db"]].concat();
        stepwise_env(dir.path(), &args, &[("STEPWISE_STORE", "")])
    };
    let out = run(&["trigger", "nobody", "--wait", "--timeout", "1"]);
    assert_eq!(out.code, 124, "{out:?}");
    let run_id = out.stdout.trim();
    assert!(out.stderr.contains(&format!("stopped waiting after 1 s; run {run_id} is QUEUED")), "{out:?}");
    assert!(out.stderr.contains("holding process 'nobody'"), "{out:?}");
    let history = run(&["history", run_id, "--json"]);
    assert_eq!(history.json()["status"], "QUEUED", "{history:?}");
    let usage = run(&["trigger", "nobody", "--timeout", "1"]);
    assert_eq!(usage.code, 2, "{usage:?}");
}
