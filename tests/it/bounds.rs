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
