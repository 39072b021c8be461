//! `stepwise run` end to end: real process files, real input files, the real binary. Documents
//! are observed where they leave the process, through disk `send` steps: without a `file_name`,
//! a send names its files `<run-id>-000001.dat`, `-000002.dat`, ... in the order it writes them,
//! so the sorted file list of a directory is the order in which documents reached it.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Dir, Run, stepwise};

/// Writes `p.yaml` and runs it with `--json` and `extra` arguments.
fn run_json(dir: &Dir, yaml: &str, extra: &[&str]) -> (Run, Value) {
    dir.write("p.yaml", yaml);
    let mut args = vec!["run", "p.yaml", "--json"];
    args.extend_from_slice(extra);
    let run = stepwise(dir.path(), &args);
    let summary = run.json();
    (run, summary)
}

/// Runs `yaml` and expects exit 0 and status COMPLETE.
fn run_ok(dir: &Dir, yaml: &str) -> Value {
    let (run, summary) = run_json(dir, yaml, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(summary["status"], "COMPLETE", "{run:?}");
    summary
}

/// One step's entry of the summary.
fn step<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["step"] == id))
        .unwrap_or_else(|| panic!("no step '{id}' in {summary:#}"))
}

/// `(documents_in, documents_out, documents_error, executions)` of a step.
fn counts(summary: &Value, id: &str) -> (u64, u64, u64, u64) {
    let s = step(summary, id);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} of {s}"));
    (n("documents_in"), n("documents_out"), n("documents_error"), n("executions"))
}

/// The files of a directory under `dir`, sorted by name, with their contents.
fn files(dir: &Dir, sub: &str) -> Vec<(String, String)> {
    let path = dir.join(sub);
    let Ok(entries) = std::fs::read_dir(&path) else { return Vec::new() };
    let mut out: Vec<(String, String)> = entries
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    out.sort();
    out
}

/// Just the contents, in file name order.
fn contents(dir: &Dir, sub: &str) -> Vec<String> {
    files(dir, sub).into_iter().map(|(_, c)| c).collect()
}

fn notifications(summary: &Value) -> Vec<(String, String, String)> {
    summary["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap().to_owned();
            (s("step"), s("level"), s("message"))
        })
        .collect()
}

fn exists(p: &Path) -> bool {
    p.exists()
}

const IO: &str = "connections:
  in: {type: disk, directory: in}
  out: {type: disk, directory: out}
";

#[test]
fn message_renders_message_format_templates_and_combine_joins_a_batch() {
    let dir = Dir::new();
    dir.write(
        "in/users.jsonl",
        "{\"email\": \"a@x.org\", \"name\": \"Ann\"}\n{\"email\": \"b@x.org\", \"name\": \"Bo\"}\n",
    );
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: messages
{IO}  all: {{type: disk, directory: all}}
start: {{type: connector, connection: in, action: get, format: jsonl, pattern: "*.jsonl", next: render}}
steps:
  render:
    type: message
    template: >-
      '{{"email": "'{{1}}'", "name": "'{{2}}'"}}' it''s '{{'{{3}}'}}'
    parameters: [{{json: /email}}, {{json: /name}}, {{static: "{{x}}'q"}}]
    next: fan
  fan: {{type: branch, paths: [each, joined]}}
  each: {{type: connector, connection: out, action: send, next: done}}
  joined: {{type: message, template: "<{{1}}>", parameters: [{{json: /email, default: "?"}}], combine: true, next: save_all}}
  save_all: {{type: connector, connection: all, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(
        contents(&dir, "out"),
        vec![
            r#"{"email": "a@x.org", "name": "Ann"} it's {{x}'q}"#,
            r#"{"email": "b@x.org", "name": "Bo"} it's {{x}'q}"#
        ]
    );
    // The rendered data is what later steps see (here it is no longer JSON, so the default).
    // One line per document, the last ending with a newline too.
    assert_eq!(contents(&dir, "all"), vec!["<?>\n<?>\n"]);
    assert_eq!(counts(&summary, "joined"), (2, 1, 0, 1));
    assert_eq!(counts(&summary, "save_all"), (1, 1, 0, 1));
}

#[test]
fn map_yields_zero_to_many_documents_and_keeps_properties() {
    let dir = Dir::new();
    dir.write(
        "in/orders.jsonl",
        concat!(
            "{\"id\": 1, \"items\": [{\"n\": \"a\"}, {\"n\": \"b\"}, {\"n\": \"c\"}]}\n",
            "{\"id\": 2, \"items\": []}\n",
            "{\"id\": 3, \"items\": [{\"n\": \"d\"}]}\n",
        ),
    );
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: maps
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: tag}}
steps:
  tag: {{type: set_properties, document: {{origin: [{{static: "order-"}}, {{json: /id}}]}}, next: explode}}
  explode: {{type: map, jq: '.items[] | {{item: .n, twice: (.n + .n)}}', next: render}}
  render: {{type: message, template: "{{1}} {{2}} {{3}}", parameters: [{{document_property: origin}}, {{current_data: true}}, {{document_property: file_name}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(
        contents(&dir, "out"),
        vec![
            r#"order-1 {"item":"a","twice":"aa"} orders.jsonl"#,
            r#"order-1 {"item":"b","twice":"bb"} orders.jsonl"#,
            r#"order-1 {"item":"c","twice":"cc"} orders.jsonl"#,
            r#"order-3 {"item":"d","twice":"dd"} orders.jsonl"#,
        ]
    );
    assert_eq!(counts(&summary, "explode"), (3, 4, 0, 1));
}

#[test]
fn map_fails_a_document_that_is_not_json_or_that_jq_rejects() {
    let dir = Dir::new();
    dir.write("in/a.txt", "not json");
    dir.write("in/b.txt", "{\"n\": \"x\"}");
    dir.write("in/c.txt", "{\"n\": 5}");
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: maps
{IO}start: {{type: connector, connection: in, action: get, next: upper}}
steps:
  upper: {{type: map, jq: '{{n: (.n | ascii_upcase)}}', next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(contents(&dir, "out"), vec![r#"{"n":"X"}"#]);
    let errors = summary["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{summary:#}");
    assert_eq!(errors[0]["step"], "upper");
    assert_eq!(errors[0]["document"], 1);
    assert!(errors[0]["message"].as_str().unwrap().contains("not JSON"), "{summary:#}");
    assert_eq!(errors[1]["document"], 3);
    assert!(errors[1]["message"].as_str().unwrap().contains("jq error"), "{summary:#}");
    assert_eq!(counts(&summary, "upper"), (3, 1, 2, 1));
}

#[test]
fn set_properties_sets_in_order_and_process_properties_last_write_wins() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"n\": 1}\n{\"n\": 2}\n");
    run_ok(
        &dir,
        &format!(
            r#"name: props
{IO}properties: {{base: "-base", last: none}}
start: {{type: connector, connection: in, action: get, format: jsonl, next: props}}
steps:
  props:
    type: set_properties
    document:
      first: [{{static: A}}, {{json: /n}}]
      second: [{{document_property: first}}, {{static: B}}]
    process:
      total: [{{document_property: second}}, {{process_property: base}}]
      seen_before: [{{process_property: last}}]
      last: [{{json: /n}}]
    next: render
  render:
    type: message
    template: "{{1}} {{2}} {{3}} {{4}} {{5}}"
    parameters:
      - {{document_property: first}}
      - {{document_property: second}}
      - {{process_property: total}}
      - {{process_property: seen_before}}
      - {{process_property: last}}
    next: save
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    // Each value sees the ones set before it; a process property is one per run, so both
    // documents see the last write.
    assert_eq!(contents(&dir, "out"), vec!["A1 A1B A2B-base 1 2", "A2 A2B A2B-base 1 2"]);
}

#[test]
fn every_parameter_kind_and_default() {
    let dir = Dir::new();
    dir.write(
        "in/d.jsonl",
        concat!(
            "{\"user\": {\"email\": \"a@x.org\", \"tags\": [\"x\", \"y\"]}, \"n\": 5, \"nothing\": null}\n",
            "{\"user\": {\"email\": \"b@x.org\", \"tags\": []}, \"n\": 6.5}\n",
        ),
    );
    let yaml = format!(
        r#"name: params-demo
{IO}properties: {{region: eu}}
start: {{type: connector, connection: in, action: get, format: jsonl, next: tag}}
steps:
  tag: {{type: set_properties, document: {{colour: [{{static: blue}}]}}, next: render}}
  render:
    type: message
    template: "{{1}}|{{2}}|{{3}}|{{4}}|{{5}}|{{6}}|{{7}}|{{8}}|{{9}}|{{10}}|{{11}}|{{12}}|{{13}}|{{14}}|{{15}}|{{16}}|{{17}}|{{18}}|{{19}}|{{20}}"
    parameters:
      - {{static: hello}}
      - {{current_data: true}}
      - {{json: /user/email}}
      - {{jq: '.user.tags | join("+")'}}
      - {{document_property: colour}}
      - {{process_property: region}}
      - {{execution: run_id}}
      - {{execution: process_name}}
      - {{execution: document_count}}
      - {{json: /user/tags}}
      - {{json: /n}}
      - {{json: /missing, default: d1}}
      - {{json: /nothing, default: d2}}
      - {{jq: '.missing', default: d3}}
      - {{document_property: nope, default: d4}}
      - {{process_property: nope, default: d5}}
      - {{date: {{format: "%s"}}}}
      - {{date: {{format: "%s", offset: -1d}}}}
      - {{date: {{format: "%Y-%m-%d"}}}}
      - {{static: 7, default: ignored}}
    next: save
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
    );
    let summary = run_ok(&dir, &yaml);
    let run_id = summary["run_id"].as_str().unwrap();
    let out = contents(&dir, "out");
    assert_eq!(out.len(), 2);
    let first: Vec<&str> = out[0].split('|').collect();
    let second: Vec<&str> = out[1].split('|').collect();
    let expected_first = [
        "hello",
        r#"{"user": {"email": "a@x.org", "tags": ["x", "y"]}, "n": 5, "nothing": null}"#,
        "a@x.org",
        "x+y",
        "blue",
        "eu",
        run_id,
        "params-demo",
        "2",
        r#"["x","y"]"#,
        "5",
        "d1",
        "d2",
        "d3",
        "d4",
        "d5",
    ];
    assert_eq!(&first[..16], &expected_first[..], "{out:?}");
    assert_eq!(&second[2..4], &["b@x.org", ""]);
    assert_eq!(second[10], "6.5");
    let now: i64 = first[16].parse().unwrap();
    let yesterday: i64 = first[17].parse().unwrap();
    assert!((86_399..=86_401).contains(&(now - yesterday)), "{now} {yesterday}");
    let date = first[18];
    assert!(
        date.len() == 10
            && date.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() }),
        "{date}"
    );
    assert_eq!(first[19], "7");

    // `--set` overrides a property's default.
    let (run, _) = run_json(&dir, &yaml, &["--set", "region=us"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = contents(&dir, "out");
    assert_eq!(out.len(), 4);
    assert_eq!(out.iter().filter(|c| c.split('|').nth(5) == Some("us")).count(), 2, "{out:?}");
}

#[test]
fn a_lookup_that_finds_nothing_is_a_document_error_naming_step_and_parameter() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"email\": \"a@x.org\"}\n{\"name\": \"no email\"}\n");
    let yaml = format!(
        r#"name: misses
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: render}}
steps:
  render: {{type: message, template: "to {{1}}", parameters: [{{json: /email}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
    );
    let (run, summary) = run_json(&dir, &yaml, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(
        summary["error"],
        json!({"step": "render", "document": 2, "message": "parameter 1 (json) found nothing and has no default"})
    );
    assert_eq!(summary["documents_error"], 1);
    assert_eq!(counts(&summary, "render"), (2, 1, 1, 1));
    // The other document went on.
    assert_eq!(contents(&dir, "out"), vec!["to a@x.org"]);

    // The human summary says the same.
    let text = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.contains("status ERROR"), "{text:?}");
    assert!(
        text.stdout.contains("error: step 'render': document 2: parameter 1 (json) found nothing and has no default"),
        "{text:?}"
    );

    // The same for every other kind of lookup.
    for (param, label) in [
        ("{jq: '.name | select(. == \"zzz\")'}", "parameter 1 (jq)"),
        ("{document_property: nope}", "parameter 1 (document_property)"),
        ("{json: /nothing/here}", "parameter 1 (json)"),
    ] {
        let dir = Dir::new();
        dir.write("in/d.jsonl", "{\"name\": \"x\"}\n");
        let (run, summary) = run_json(
            &dir,
            &format!(
                r#"name: misses
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: render}}
steps:
  render: {{type: notify, template: "{{1}}", parameters: [{param}], next: done}}
  done: {{type: stop}}
"#
            ),
            &[],
        );
        assert_eq!(run.code, 1, "{param}: {run:?}");
        assert_eq!(summary["error"]["step"], "render");
        assert_eq!(summary["error"]["message"], format!("{label} found nothing and has no default"));
    }
}

/// Runs one decision over `cases` of `(left, right, expected)`; returns the ids that went `true`
/// and those expected to.
fn decide(op: &str, cases: &[(&str, &str, bool)]) {
    let dir = Dir::new();
    let mut lines = String::new();
    for (i, (l, r, _)) in cases.iter().enumerate() {
        lines.push_str(&json!({"id": format!("c{i:02}"), "l": l, "r": r}).to_string());
        lines.push('\n');
    }
    dir.write("in/cases.jsonl", lines);
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: decide
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{json: /l}}, op: {op}, right: {{json: /r}}, "true": "yes", "false": "no"}}
  "yes": {{type: connector, connection: out, action: send, file_name: [{{json: /id}}], next: done}}
  "no": {{type: stop}}
  done: {{type: stop}}
"#
        ),
    );
    let went: Vec<String> = files(&dir, "out").into_iter().map(|(name, _)| name).collect();
    let expected: Vec<String> =
        cases.iter().enumerate().filter(|(_, c)| c.2).map(|(i, _)| format!("c{i:02}")).collect();
    let described: Vec<String> = cases.iter().map(|(l, r, e)| format!("{l:?} {op} {r:?} = {e}")).collect();
    assert_eq!(went, expected, "{op}: {described:#?}");
    let n = cases.len() as u64;
    assert_eq!(counts(&summary, "d").0, n);
}

#[test]
fn decision_compares_text_and_numbers() {
    decide("eq", &[("a", "a", true), ("a", "A", false), ("1.0", "1", false), ("", "", true), ("a ", "a", false)]);
    decide("ne", &[("a", "a", false), ("a", "A", true), ("1.0", "1", true)]);
    decide(
        "gt",
        &[
            ("10", "9", true),
            ("b", "a", true),
            ("abc", "abd", false),
            ("10", "9a", false),
            ("-1", "-2", true),
            ("2.5", "2.50", false),
            ("1e3", "999", true),
            ("a", "a", false),
        ],
    );
    decide("ge", &[("1.0", "1", true), ("9", "10", false), ("b", "b", true), ("a", "b", false)]);
    decide("lt", &[("9", "10", true), ("a", "b", true), ("B", "a", true), ("10", "9", false), ("x", "x", false)]);
    decide("le", &[("10", "10.0", true), ("b", "a", false), ("a", "a", true), ("-3", "2", true)]);
}

#[test]
fn decision_regex_matches_the_whole_text_and_wildcard_takes_star_and_question_mark() {
    decide(
        "regex",
        &[
            ("abc", "a.c", true),
            ("xabcx", "abc", false),
            ("abc", "a|abc", true),
            ("abcd", "a|abc", false),
            ("2024-01-05", r"\d{4}-\d{2}-\d{2}", true),
            ("ABC", "abc", false),
            ("ABC", "(?i)abc", true),
            ("a\nb", "a.b", false),
            ("", ".*", true),
        ],
    );
    decide(
        "wildcard",
        &[
            ("report.csv", "*.csv", true),
            ("report.csv.bak", "*.csv", false),
            ("a1", "a?", true),
            ("a12", "a?", false),
            ("a.c", "a.c", true),
            ("abc", "a.c", false),
            ("", "*", true),
            ("x(1)+", "x(?)+", true),
            ("Report.CSV", "*.csv", false),
        ],
    );
}

#[test]
fn a_regex_that_does_not_compile_fails_the_document() {
    // A pattern written in the file is checked by `validate`; one that comes from the data can
    // only fail at run time.
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"pattern\": \"a)|(b\"}\n");
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: badregex
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{static: "ab"}}, op: regex, right: {{json: /pattern}}, "true": y, "false": n}}
  y: {{type: stop}}
  n: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["error"]["step"], "d");
    let message = summary["error"]["message"].as_str().unwrap();
    assert!(message.contains("'right' is not a valid regular expression: unopened group (at character 2)"), "{run:?}");
    assert_eq!(counts(&summary, "y").0 + counts(&summary, "n").0, 0);
}

#[test]
fn decision_in_tests_exact_membership_of_a_json_array() {
    decide(
        "in",
        &[
            ("john+sales@example.com", r#"["a@example.com", "john+sales@example.com"]"#, true),
            ("johnsales@example.com", r#"["john+sales@example.com"]"#, false),
            ("johnnnsales@example.com", r#"["john+sales@example.com"]"#, false),
            ("abc", r#"["a.c"]"#, false),
            ("x", r#"["*"]"#, false),
            ("A", r#"["a"]"#, false),
            ("a", r#"["a ", " a"]"#, false),
            ("o\"neil", r#"["o\"neil"]"#, true),
            ("Zoë", r#"["Zo\u00eb"]"#, true),
            ("2002", "[2001, 2002]", true),
            ("2002.0", "[2002]", false),
            ("true", "[true]", true),
            ("null", "[null]", false),
            ("", r#"[""]"#, true),
            ("", "[]", false),
            ("a", r#"["a", null]"#, true),
        ],
    );
}

#[test]
fn decision_in_fails_a_document_whose_list_is_not_a_json_array() {
    for (right, expected) in [
        ("a,b", "'right' of op 'in': the list is not a JSON array"),
        (r#"{"a": 1}"#, "'right' of op 'in': the list is not a JSON array"),
        ("[[1]]", "'right' of op 'in': element 1 is an array or an object"),
    ] {
        let dir = Dir::new();
        dir.write("in/d.jsonl", format!("{}\n", json!({"list": right})));
        let (run, summary) = run_json(
            &dir,
            &format!(
                r#"name: badlist
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{static: "a"}}, op: in, right: {{json: /list}}, "true": y, "false": n}}
  y: {{type: stop}}
  n: {{type: stop}}
"#
            ),
            &[],
        );
        assert_eq!(run.code, 1, "{right}: {run:?}");
        assert_eq!(summary["error"]["step"], "d");
        let message = summary["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{right}: {message}");
        assert_eq!(counts(&summary, "y").0 + counts(&summary, "n").0, 0);
    }
}

#[test]
fn escape_json_keeps_any_value_one_json_string() {
    let values = [
        "o\"neil",
        "back\\slash",
        "new\nline\r\ttab",
        "plus+tag",
        "Zoë 日本",
        "'{1}' {2}",
        "\", \"x\": \"",
        "\u{1b}[0m",
    ];
    let dir = Dir::new();
    let lines: Vec<String> = values.iter().map(|v| json!({"v": v}).to_string()).collect();
    dir.write("in/d.jsonl", lines.join("\n") + "\n");
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: escaping
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: remember}}
steps:
  remember:
    type: set_properties
    document: {{v: [{{json: /v}}]}}
    next: render
  render:
    type: message
    template: >-
      '{{"v": "'{{1}}'", "d": "'{{2}}'", "p": "'{{3}}'", "raw": '{{4}}'}}'
    parameters:
      - {{ json: /v, escape: json }}
      - {{ json: /missing, default: "say \"hi\"", escape: json }}
      - {{ document_property: v, escape: json }}
      - {{ static: "1" }}
    combine: true
    next: save
  save: {{type: connector, connection: out, action: send, file_name: [{{static: all.jsonl}}], next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(counts(&summary, "render").0, values.len() as u64);
    let text = dir.read("out/all.jsonl");
    let got: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(got.len(), values.len(), "{text}");
    for (line, v) in got.iter().zip(values) {
        assert_eq!(line, &json!({"v": v, "d": "say \"hi\"", "p": v, "raw": 1}));
    }
}

#[test]
fn without_escape_values_are_spliced_as_they_are() {
    // Boomi's rule stays the default: the value's quote ends the JSON string.
    let dir = Dir::new();
    dir.write("in/d.jsonl", format!("{}\n", json!({"v": "o\"neil"})));
    run_ok(
        &dir,
        &format!(
            r#"name: raw
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: render}}
steps:
  render: {{type: message, template: "'{{\"v\": \"'{{1}}'\"}}'", parameters: [{{json: /v}}], next: save}}
  save: {{type: connector, connection: out, action: send, file_name: [{{static: raw.json}}], next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(dir.read("out/raw.json"), r#"{"v": "o"neil"}"#);
}

#[test]
fn branch_paths_run_in_order_each_to_completion_with_properties_scoped() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: branches
{IO}properties: {{seen: none}}
start: {{type: connector, connection: in, action: get, format: jsonl, next: fan}}
steps:
  fan: {{type: branch, paths: [first, second, third]}}
  first:
    type: set_properties
    document: {{dp: [{{static: from-first}}]}}
    process: {{seen: [{{static: first-ran}}]}}
    next: first_note
  first_note: {{type: notify, template: "first {{1}}", parameters: [{{json: /id}}], next: first_msg}}
  first_msg: {{type: message, template: "first {{1}} dp={{2}}", parameters: [{{json: /id}}, {{document_property: dp}}], next: save}}
  second: {{type: notify, template: "second {{1}} seen={{2}}", parameters: [{{json: /id}}, {{process_property: seen}}], next: second_msg}}
  second_msg:
    type: message
    template: "second {{1}} dp={{2}} seen={{3}}"
    parameters: [{{json: /id}}, {{document_property: dp, default: unset}}, {{process_property: seen}}]
    next: save
  third: {{type: message, template: "third {{1}}", parameters: [{{json: /id}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    // Path 1 runs to its end (both documents written) before path 2 starts; path 2 sees the
    // process property path 1 wrote but not its document property.
    assert_eq!(
        contents(&dir, "out"),
        vec![
            "first 1 dp=from-first",
            "first 2 dp=from-first",
            "second 1 dp=unset seen=first-ran",
            "second 2 dp=unset seen=first-ran",
            "third 1",
            "third 2",
        ]
    );
    let notes: Vec<String> = notifications(&summary).into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(notes, vec!["first 1", "first 2", "second 1 seen=first-ran", "second 2 seen=first-ran"]);
    // `save` is reached by three paths: it runs once per arriving batch.
    assert_eq!(counts(&summary, "save"), (6, 6, 0, 3));
    assert_eq!(counts(&summary, "done"), (6, 6, 0, 3));
    assert_eq!(counts(&summary, "fan"), (2, 6, 0, 1));
    assert_eq!(summary["documents_in"], 2);
    assert_eq!(summary["documents_out"], 6);
}

#[test]
fn decision_true_path_runs_before_false_path() {
    let dir = Dir::new();
    dir.write(
        "in/d.jsonl",
        "{\"id\": 1, \"flag\": \"t\"}\n{\"id\": 2, \"flag\": \"f\"}\n{\"id\": 3, \"flag\": \"t\"}\n{\"id\": 4, \"flag\": \"f\"}\n",
    );
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: decisions
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{json: /flag}}, op: eq, right: {{static: t}}, "true": on_true, "false": on_false}}
  on_true: {{type: set_properties, process: {{last_true: [{{json: /id}}]}}, next: true_msg}}
  true_msg: {{type: message, template: "true {{1}}", parameters: [{{json: /id}}], next: save}}
  on_false: {{type: message, template: "false {{1}} after {{2}}", parameters: [{{json: /id}}, {{process_property: last_true}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(contents(&dir, "out"), vec!["true 1", "true 3", "false 2 after 3", "false 4 after 3"]);
    assert_eq!(counts(&summary, "d"), (4, 4, 0, 1));
    assert_eq!(counts(&summary, "on_true"), (2, 2, 0, 1));
    assert_eq!(counts(&summary, "on_false"), (2, 2, 0, 1));
    assert_eq!(counts(&summary, "save"), (4, 4, 0, 2));
}

#[test]
fn a_step_that_receives_no_documents_is_skipped() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"s\": \"ok\"}\n{\"s\": \"ok\"}\n");
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: skips
{IO}  never: {{type: disk, directory: never}}
start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{json: /s}}, op: eq, right: {{static: ok}}, "true": save, "false": warn_note}}
  warn_note: {{type: notify, level: warn, template: "should not run", next: no_save}}
  no_save: {{type: connector, connection: never, action: send, next: done}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(counts(&summary, "warn_note"), (0, 0, 0, 0));
    assert_eq!(counts(&summary, "no_save"), (0, 0, 0, 0));
    assert_eq!(counts(&summary, "save"), (2, 2, 0, 1));
    // `done` ran once: only the true path brought it documents.
    assert_eq!(counts(&summary, "done"), (2, 2, 0, 1));
    assert!(notifications(&summary).is_empty());
    assert!(!exists(&dir.join("never")));
    assert_eq!(contents(&dir, "out").len(), 2);
}

#[test]
fn try_catch_sends_failed_documents_to_catch_with_the_message() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"id\": 1, \"ok\": true}\n{\"id\": 2, \"ok\": false}\n{\"id\": 3, \"ok\": true}\n");
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: catches
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: guard}}
steps:
  guard: {{type: try_catch, try: check, catch: report}}
  check: {{type: decision, left: {{json: /ok}}, op: eq, right: {{static: "true"}}, "true": good, "false": bad}}
  good: {{type: message, template: "good {{1}}", parameters: [{{json: /id}}], next: save}}
  bad: {{type: exception, template: "document {{1}} is not ok", parameters: [{{json: /id}}]}}
  report: {{type: message, template: "caught {{1}}: {{2}}", parameters: [{{json: /id}}, {{document_property: try_catch_message}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(summary["status"], "COMPLETE_WARN");
    // The try path runs to its end before the catch path.
    assert_eq!(contents(&dir, "out"), vec!["good 1", "good 3", "caught 2: step 'bad': document 2 is not ok"]);
    assert_eq!(counts(&summary, "bad"), (1, 0, 1, 1));
    assert_eq!(counts(&summary, "report"), (1, 1, 0, 1));
    assert!(summary["errors"].as_array().unwrap().is_empty());
}

#[test]
fn try_catch_retries_the_documents_that_failed() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: retries
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: guard}}
steps:
  guard: {{type: try_catch, try: attempt, catch: caught, retries: 2}}
  attempt: {{type: notify, template: "attempt {{1}}", parameters: [{{json: /id}}], next: boom}}
  boom: {{type: exception, template: "boom {{1}}", parameters: [{{json: /id}}]}}
  caught: {{type: message, template: "{{1}}", parameters: [{{document_property: try_catch_message}}], next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(summary["status"], "COMPLETE_WARN");
    // One try and two retries, each with both documents.
    assert_eq!(counts(&summary, "attempt"), (6, 6, 0, 3));
    assert_eq!(counts(&summary, "boom"), (6, 0, 6, 3));
    assert_eq!(notifications(&summary).len(), 6);
    assert_eq!(contents(&dir, "out"), vec!["step 'boom': boom 1", "step 'boom': boom 2"]);

    // A retry that succeeds: the try path counts its attempts in a process property.
    let dir = Dir::new();
    let summary = run_ok(
        &dir,
        &format!(
            r#"name: retries
{IO}properties: {{tries: ""}}
start: {{type: no_data, next: guard}}
steps:
  guard: {{type: try_catch, try: count, catch: caught, retries: 3}}
  count: {{type: set_properties, process: {{tries: [{{process_property: tries}}, {{static: x}}]}}, next: third}}
  third: {{type: decision, left: {{process_property: tries}}, op: eq, right: {{static: xxx}}, "true": good, "false": boom}}
  good: {{type: message, template: "good after {{1}}", parameters: [{{process_property: tries}}], next: save}}
  boom: {{type: exception, template: "not yet"}}
  caught: {{type: message, template: "caught", next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
    );
    assert_eq!(contents(&dir, "out"), vec!["good after xxx"]);
    assert_eq!(counts(&summary, "count"), (3, 3, 0, 3));
    assert_eq!(counts(&summary, "caught").0, 0);
}

const FATAL_IN_TRY: &str = r#"name: fatal
connections:
  out: {type: disk, directory: out}
start: {type: no_data, next: guard}
steps:
  guard: {type: try_catch, try: fatal, catch: caught, catch_errors: CATCH}
  fatal: {type: exception, template: "fatal {1}", parameters: [{execution: process_name}], stop_process: true}
  caught: {type: message, template: "caught: {1}", parameters: [{document_property: try_catch_message}], next: save}
  save: {type: connector, connection: out, action: send, next: done}
  done: {type: stop}
"#;

#[test]
fn catch_errors_document_lets_a_process_error_end_the_run() {
    let dir = Dir::new();
    let (run, summary) = run_json(&dir, &FATAL_IN_TRY.replace("CATCH", "document"), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(summary["error"]["step"], "fatal");
    assert_eq!(summary["error"]["message"], "fatal fatal");
    assert_eq!(counts(&summary, "caught").0, 0);
    assert!(contents(&dir, "out").is_empty());
}

#[test]
fn catch_errors_all_catches_a_process_error() {
    let dir = Dir::new();
    let (run, summary) = run_json(&dir, &FATAL_IN_TRY.replace("CATCH", "all"), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(summary["status"], "COMPLETE_WARN");
    assert_eq!(contents(&dir, "out"), vec!["caught: step 'fatal': fatal fatal"]);
}

#[test]
fn exception_fails_its_document_or_with_stop_process_the_run() {
    let dir = Dir::new();
    dir.write("in/d.jsonl", "{\"id\": 1, \"bad\": \"no\"}\n{\"id\": 2, \"bad\": \"yes\"}\n");
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: exceptions
{IO}start: {{type: connector, connection: in, action: get, format: jsonl, next: d}}
steps:
  d: {{type: decision, left: {{json: /bad}}, op: eq, right: {{static: "yes"}}, "true": fail, "false": save}}
  fail: {{type: exception, template: "id {{1}} is bad", parameters: [{{json: /id}}]}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(summary["error"], json!({"step": "fail", "document": 1, "message": "id 2 is bad"}));
    // The false path still ran: a document error fails one document.
    assert_eq!(contents(&dir, "out").len(), 1);

    let dir = Dir::new();
    let (run, summary) = run_json(
        &dir,
        &format!(
            r#"name: exceptions
{IO}start: {{type: no_data, next: fan}}
steps:
  fan: {{type: branch, paths: [first, second]}}
  first: {{type: exception, template: "stopped {{1}}", parameters: [{{execution: process_name}}], stop_process: true}}
  second: {{type: message, template: "second", next: save}}
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(summary["error"], json!({"step": "first", "document": 1, "message": "stopped exceptions"}));
    assert_eq!(counts(&summary, "first"), (1, 0, 1, 1));
    assert_eq!(counts(&summary, "second"), (0, 0, 0, 0));
    assert!(!exists(&dir.join("out")));
}

#[test]
fn notify_logs_each_level_and_passes_documents_through() {
    let dir = Dir::new();
    let summary = run_ok(
        &dir,
        r#"name: notes
start: {type: no_data, next: n1}
steps:
  n1: {type: notify, template: "hello {1}", parameters: [{static: world}], next: n2}
  n2: {type: notify, level: warn, template: "careful", next: n3}
  n3: {type: notify, level: error, template: "bad news", next: done}
  done: {type: stop}
"#,
    );
    assert_eq!(
        notifications(&summary),
        vec![
            ("n1".to_owned(), "info".to_owned(), "hello world".to_owned()),
            ("n2".to_owned(), "warn".to_owned(), "careful".to_owned()),
            ("n3".to_owned(), "error".to_owned(), "bad news".to_owned()),
        ]
    );
    assert_eq!(counts(&summary, "n3"), (1, 1, 0, 1));
    let text = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("notify n1 [info]: hello world"), "{text:?}");
    assert!(text.stdout.contains("notify n2 [warn]: careful"), "{text:?}");
    assert!(text.stdout.contains("notify n3 [error]: bad news"), "{text:?}");
    // Warnings and errors also go to the log on stderr.
    assert!(text.stderr.contains("bad news"), "{text:?}");
}

#[test]
fn stop_continue_false_ends_the_run_successfully() {
    let yaml = |keep_going: bool| {
        format!(
            r#"name: stops
{IO}start: {{type: no_data, next: fan}}
steps:
  fan: {{type: branch, paths: [first, second]}}
  first: {{type: message, template: "first", next: save_first}}
  save_first: {{type: connector, connection: out, action: send, next: halt}}
  halt: {{type: stop, continue: {keep_going}}}
  second: {{type: message, template: "second", next: save_second}}
  save_second: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
        )
    };
    let dir = Dir::new();
    let summary = run_ok(&dir, &yaml(false));
    assert_eq!(contents(&dir, "out"), vec!["first"]);
    assert_eq!(counts(&summary, "second"), (0, 0, 0, 0));

    let dir = Dir::new();
    run_ok(&dir, &yaml(true));
    assert_eq!(contents(&dir, "out"), vec!["first", "second"]);
}

#[test]
fn a_stop_does_not_hide_document_errors_from_earlier_paths() {
    let dir = Dir::new();
    let (run, summary) = run_json(
        &dir,
        r#"name: stops
start: {type: no_data, next: fan}
steps:
  fan: {type: branch, paths: [first, second]}
  first: {type: exception, template: "first failed"}
  second: {type: stop, continue: false}
"#,
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(summary["status"], "ERROR");
    assert_eq!(summary["error"]["message"], "first failed");
}

#[test]
fn disk_get_reads_json_jsonl_csv_and_raw_files_matching_the_pattern() {
    let dir = Dir::new();
    dir.write("in/a.json", "{\"k\": \"json-a\"}");
    dir.write("in/b.json", "[1, 2]");
    dir.write("in/lines.jsonl", "{\"n\": 1}\r\n\n  \n{\"n\": 2}");
    dir.write("in/people.csv", "\u{feff}Email, First \na@x.org,Ann\nb@x.org,\"Bo, Jr\"\n");
    dir.write("in/raw.bin", b"not json \x00\xff at all\n");
    dir.write("in/skip.txt", "never read");
    dir.write("in/.hidden.json", "{}");
    let summary = run_ok(
        &dir,
        r#"name: formats
connections:
  in: {type: disk, directory: in}
  out: {type: disk, directory: out}
start: {type: no_data, next: fan}
steps:
  fan: {type: branch, paths: [json, jsonl, csv, raw]}
  json: {type: connector, connection: in, action: get, format: json, pattern: "*.json", next: save}
  jsonl: {type: connector, connection: in, action: get, format: jsonl, pattern: "*.jsonl", next: save}
  csv: {type: connector, connection: in, action: get, format: csv, pattern: "*.csv", next: save}
  raw: {type: connector, connection: in, action: get, pattern: "*.bin", next: save}
  save:
    type: connector
    connection: out
    action: send
    file_name: [{document_property: file_name}, {static: "-"}, {execution: document_count}, {static: "-"}, {jq: 'if type == "object" then (.n // .k // .Email) else length end', default: raw}]
    next: done
  done: {type: stop}
"#,
    );
    let out = files(&dir, "out");
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "a.json-2-json-a",
            "b.json-2-2",
            "lines.jsonl-2-1",
            "lines.jsonl-2-2",
            "people.csv-2-a@x.org",
            "people.csv-2-b@x.org",
            "raw.bin-1-raw",
        ]
    );
    assert_eq!(out[0].1, "{\"k\": \"json-a\"}");
    assert_eq!(out[2].1, "{\"n\": 1}");
    let person: Value = serde_json::from_str(&out[5].1).unwrap();
    assert_eq!(person, json!({"Email": "b@x.org", "First": "Bo, Jr"}));
    assert_eq!(std::fs::read(dir.join("out/raw.bin-1-raw")).unwrap(), b"not json \x00\xff at all\n");
    assert_eq!(counts(&summary, "csv"), (1, 2, 0, 1));
    assert_eq!(counts(&summary, "save"), (7, 7, 0, 4));
}

#[test]
fn disk_get_fails_the_run_on_a_bad_file_or_a_missing_directory() {
    for (file, contents, format, expected) in [
        ("bad.json", "{", "json", "'bad.json' is not JSON"),
        ("bad.jsonl", "{\"a\": 1}\nnope\n", "jsonl", "'bad.jsonl' line 2: not JSON"),
        ("bad.csv", "a,b\n1,2,3\n", "csv", "'bad.csv' row 2"),
    ] {
        let dir = Dir::new();
        dir.write(&format!("in/{file}"), contents);
        let (run, summary) = run_json(
            &dir,
            &format!(
                r#"name: bad
{IO}start: {{type: connector, connection: in, action: get, format: {format}, next: save}}
steps:
  save: {{type: connector, connection: out, action: send, next: done}}
  done: {{type: stop}}
"#
            ),
            &[],
        );
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(summary["error"]["step"], "start");
        assert!(summary["error"]["message"].as_str().unwrap().contains(expected), "{expected}: {run:?}");
        assert!(!exists(&dir.join("out")), "nothing of a bad file is used");
    }
    let dir = Dir::new();
    let (run, summary) = run_json(
        &dir,
        &format!(
            "name: missing\n{IO}start: {{type: connector, connection: in, action: get, next: done}}\nsteps:\n  done: {{type: stop}}\n"
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(summary["error"]["message"].as_str().unwrap().contains("does not exist"), "{run:?}");
}

#[test]
fn disk_send_never_overwrites_a_file() {
    let yaml = |error_response: bool| {
        format!(
            r#"name: sends
{IO}start: {{type: no_data, next: render}}
steps:
  render: {{type: message, template: "hello {{1}}", parameters: [{{execution: run_id}}], next: save}}
  save: {{type: connector, connection: out, action: send, file_name: [{{static: fixed.txt}}], error_response: {error_response}, next: report}}
  report: {{type: notify, template: "code={{1}} message={{2}}", parameters: [{{document_property: application_status_code}}, {{document_property: application_status_message}}], next: done}}
  done: {{type: stop}}
"#
        )
    };
    let dir = Dir::new();
    let first = run_ok(&dir, &yaml(false));
    let written = dir.read("out/fixed.txt");
    assert_eq!(written, format!("hello {}", first["run_id"].as_str().unwrap()));
    assert_eq!(notifications(&first)[0].2, "code= message=");

    // A second run would overwrite: that document fails, and so does the run.
    let (run, second) = run_json(&dir, &yaml(false), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(second["status"], "ERROR");
    assert_eq!(second["error"]["step"], "save");
    assert!(second["error"]["message"].as_str().unwrap().contains("already exists"), "{run:?}");
    assert_eq!(dir.read("out/fixed.txt"), written);
    assert_eq!(counts(&second, "report").0, 0);

    // With `error_response: true` it becomes an error document instead.
    let (run, third) = run_json(&dir, &yaml(true), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(third["status"], "COMPLETE_WARN");
    assert_eq!(third["documents_error"], 1);
    let note = &notifications(&third)[0].2;
    assert!(note.starts_with("code=validation message="), "{note}");
    assert_eq!(dir.read("out/fixed.txt"), written);
}

#[test]
fn the_json_summary_has_a_stable_shape_and_the_text_summary_a_table() {
    let dir = Dir::new();
    let summary = run_ok(
        &dir,
        r#"name: shape
start: {type: no_data, next: done}
steps:
  done: {type: stop}
"#,
    );
    let keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "run_id",
            "process",
            "status",
            "started_at",
            "ended_at",
            "millis",
            "documents_in",
            "documents_out",
            "documents_error",
            "steps",
            "error",
            "errors",
            "notifications"
        ]
    );
    assert_eq!(summary["process"], "shape");
    assert!(summary["error"].is_null());
    let step_keys: Vec<&str> = step(&summary, "done").as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        step_keys,
        vec![
            "step",
            "type",
            "documents_in",
            "documents_out",
            "documents_error",
            "error_documents",
            "millis",
            "executions"
        ]
    );
    assert_eq!(step(&summary, "start")["type"], "start");
    assert_eq!(step(&summary, "done")["type"], "stop");

    let text = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_eq!(text.code, 0, "{text:?}");
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("run ") && lines[0].contains("process shape  status COMPLETE"), "{text:?}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(header, vec!["step", "type", "in", "out", "errors", "ms"]);
    let done: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&done[..5], &["done", "stop", "1", "1", "0"]);
}

#[test]
fn exit_code_2_for_an_invalid_process_or_usage_and_nothing_runs() {
    let dir = Dir::new();
    dir.write(
        "p.yaml",
        format!(
            r#"name: invalid
{IO}start: {{type: no_data, next: save}}
steps:
  save: {{type: connector, connection: out, action: send, next: render}}
  render: {{type: message, template: "{{2}}", parameters: [{{static: x}}], next: done}}
  done: {{type: stop}}
"#
        ),
    );
    let run = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("step 'render'"), "{run:?}");
    assert!(run.stderr.contains("nothing was run"), "{run:?}");
    assert!(!exists(&dir.join("out")));

    for args in
        [&["run"][..], &["run", "p.yaml", "--set", "novalue"], &["run", "missing.yaml"], &["run", "p.yaml", "--nope"]]
    {
        let run = stepwise(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    assert!(!exists(&dir.join("out")));
}
