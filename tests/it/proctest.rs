//! `stepwise test`: process tests with mocked connections, through the binary.

use crate::support::{Dir, SimProcess, repo, stepwise, stepwise_env};

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

/// A process with a KnowBe4 connection, a disk start and a disk output, for tests of the runner.
const PROCESS: &str = r#"
name: users-out
connections:
  kb4: { type: knowbe4, token: { env: KNOWBE4_TOKEN } }
  src: { type: disk, directory: in }
  out: { type: disk, directory: out }
start:
  type: connector
  connection: src
  action: get
  format: json
  pattern: "*.json"
  next: create
steps:
  create:
    type: connector
    connection: kb4
    object: user
    action: create
    error_response: true
    next: write
  write:
    type: connector
    connection: out
    action: send
    file_name: [{ static: "created.json" }]
    next: done
  done: { type: stop }
"#;

#[test]
fn shipped_tests_pass_with_the_readme_command() {
    let run = stepwise(&repo(), &["test", "processes"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(last_line(&run.stdout).ends_with(" passed, 0 failed"), "{run:?}");
    assert!(
        run.stdout.contains("ok   processes/tests/offboard-leavers.test.yaml: a known leaver is archived"),
        "{run:?}"
    );
}

#[test]
fn invalid_documents_are_refused_by_the_real_connector_without_a_request() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write(
        "p.test.yaml",
        r#"
process: p.yaml
cases:
  - name: a user without an email is refused before any request
    start: [{ firstName: Ann }]
    mocks:
      kb4: { answers: [] }
    expect:
      status: COMPLETE_WARN
      steps:
        create: { in: 1, out: 1 }
      entered:
        write:
          all: '.error.kind == "validation" and .error.step == "create"'
      requests:
        kb4: { count: 0 }
"#,
    );
    let run = stepwise(dir.path(), &["test", "p.test.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(last_line(&run.stdout), "1 passed, 0 failed", "{run:?}");
}

#[test]
fn a_failed_expectation_names_the_step_and_shows_a_diff() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write(
        "p.test.yaml",
        r#"
process: p.yaml
cases:
  - name: created
    start: [{ email: ann@example.com, firstName: Ann }]
    mocks:
      kb4:
        answers:
          - when: { operation: userCreate }
            reply: { body: { data: { userCreate: { node: { id: 7, email: ann@example.com }, errors: [] } } } }
    expect:
      status: COMPLETE
      entered:
        write:
          documents: [{ id: 8, email: ann@example.com }]
      files:
        "out/created.json": "{}"
"#,
    );
    let run = stepwise(dir.path(), &["test", "p.test.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("FAIL p.test.yaml: created"), "{run:?}");
    assert!(run.stdout.contains("step 'write': the documents that entered differ"), "{run:?}");
    assert!(run.stdout.contains("-    \"id\": 8,") && run.stdout.contains("+    \"id\": 7,"), "{run:?}");
    assert!(run.stdout.contains("file 'out/created.json': the content differs"), "{run:?}");
    assert_eq!(last_line(&run.stdout), "0 passed, 1 failed", "{run:?}");
}

#[test]
fn api_errors_faults_and_paging_go_through_the_real_connector() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write(
        "p.test.yaml",
        r#"
process: p.yaml
cases:
  - name: an API error becomes an error document with its status
    start: [{ email: ann@example.com, firstName: Ann }]
    mocks:
      kb4: { answers: [{ reply: { status: 403, message: "forbidden here" } }] }
    expect:
      status: COMPLETE_WARN
      entered:
        write:
          subset: [{ error: { kind: api, status: 403, input: { email: ann@example.com } } }]
          all: '.error.message | test("forbidden here")'
  - name: a transport fault becomes a transport error document
    start: [{ email: ann@example.com, firstName: Ann }]
    mocks:
      kb4: { answers: [{ reply: { fault: "connection reset" } }] }
    expect:
      entered:
        write:
          all: '.error.kind == "transport" and .error.status == null'
"#,
    );
    dir.write(
        "list.yaml",
        r#"
name: list-users
connections:
  kb4: { type: knowbe4, token: { env: KNOWBE4_TOKEN } }
start: { type: no_data, next: users }
steps:
  users: { type: connector, connection: kb4, object: user, action: list, next: done }
  done: { type: stop }
"#,
    );
    dir.write(
        "list.test.yaml",
        r#"
process: list.yaml
cases:
  - name: every page of a list is read
    mocks:
      kb4:
        order: sequence
        answers:
          - when: { operation: users, body: { variables: { page: 1 } } }
            reply: { body: { data: { users: { nodes: [{ id: 1 }, { id: 2 }], pagination: { page: 1, pages: 2, per: 500, totalCount: 3 } } } } }
          - when: { operation: users, body: { variables: { page: 2 } } }
            reply: { body: { data: { users: { nodes: [{ id: 3 }], pagination: { page: 2, pages: 2, per: 500, totalCount: 3 } } } } }
    expect:
      status: COMPLETE
      steps:
        users: { in: 1, out: 3 }
      entered:
        done: { documents: [{ id: 1 }, { id: 2 }, { id: 3 }] }
      requests:
        kb4: { count: 2 }
"#,
    );
    let run = stepwise(dir.path(), &["test", "."]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(last_line(&run.stdout), "3 passed, 0 failed", "{run:?}");
}

#[test]
fn a_connection_without_a_mock_fails_the_case() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write("p.test.yaml", "process: p.yaml\ncases:\n  - name: no mock\n    start: [{ email: a@b.co }]\n");
    let run = stepwise(dir.path(), &["test", "p.test.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("connection 'kb4' (knowbe4) has no mock in this case"), "{run:?}");
}

#[test]
fn an_invalid_test_file_is_a_usage_error_with_its_location() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write("bad.test.yaml", "process: p.yaml\ncases:\n  - name: x\n    expct: {}\n");
    dir.write(
        "names.test.yaml",
        "process: p.yaml\ncases:\n  - name: x\n    expect:\n      steps:\n        wirte: { in: 1 }\n",
    );
    let run = stepwise(dir.path(), &["test", "."]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("bad.test.yaml:4:5: error:"), "{run:?}");
    assert!(run.stderr.contains("expct"), "{run:?}");
    assert!(
        run.stderr.contains("names.test.yaml:6:9: error: step 'wirte': the process has no step 'wirte'"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing runs: {run:?}");
}

#[test]
fn changing_a_shipped_mapping_makes_its_test_fail() {
    let dir = Dir::new();
    let process = std::fs::read_to_string(repo().join("processes/offboard-leavers.yaml")).unwrap();
    let changed =
        process.replace(r#"template: "'{\"userIds\": ['{1}']}'""#, r#"template: "'{\"userIds\": ['{1}', 0]}'""#);
    assert_ne!(changed, process, "the mapping to change is in the shipped process");
    dir.write("offboard-leavers.yaml", changed);
    let test = std::fs::read_to_string(repo().join("processes/tests/offboard-leavers.test.yaml")).unwrap();
    dir.write("tests/offboard-leavers.test.yaml", test);
    let run = stepwise(dir.path(), &["test"]);
    assert_eq!(run.code, 2, "no processes/ here: {run:?}");
    let run = stepwise(dir.path(), &["test", "tests"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("FAIL tests/offboard-leavers.test.yaml: a known leaver is archived"), "{run:?}");
    assert!(run.stdout.contains("step 'archive': the documents that entered differ"), "{run:?}");
}

/// The attributes of every element named `name`, in order.
fn elements(xml: &str, name: &str) -> Vec<std::collections::HashMap<String, String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == name.as_bytes() => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let value = a.unescape_value().expect("value").into_owned();
                        (String::from_utf8_lossy(a.key.as_ref()).into_owned(), value)
                    })
                    .collect();
                out.push(attrs);
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

#[test]
fn junit_xml_reads_back_with_one_testcase_per_case() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS);
    dir.write(
        "p.test.yaml",
        r#"
process: p.yaml
cases:
  - name: refused <before> any request & counted
    start: [{ firstName: Ann }]
    mocks: { kb4: { answers: [] } }
    expect: { requests: { kb4: { count: 0 } } }
  - name: expects the wrong status
    start: [{ firstName: Ann }]
    mocks: { kb4: { answers: [] } }
    expect: { status: ERROR }
"#,
    );
    let run = stepwise(dir.path(), &["test", "p.test.yaml", "--junit", "report.xml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let xml = dir.read("report.xml");
    let suites = elements(&xml, "testsuites");
    assert_eq!((suites[0]["tests"].as_str(), suites[0]["failures"].as_str()), ("2", "1"), "{xml}");
    let suite = elements(&xml, "testsuite");
    assert_eq!(suite.len(), 1, "{xml}");
    assert_eq!(suite[0]["name"], "p.test.yaml");
    let cases = elements(&xml, "testcase");
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["refused <before> any request & counted", "expects the wrong status"], "{xml}");
    let failures = elements(&xml, "failure");
    assert_eq!(failures.len(), 1, "{xml}");
    assert_eq!(failures[0]["message"], "status: expected ERROR, got COMPLETE_WARN", "{xml}");
}

#[test]
fn every_shipped_process_has_a_test_file_with_a_refusal_case() {
    let processes = repo().join("processes");
    let mut names: Vec<String> = std::fs::read_dir(&processes)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        let test = processes.join("tests").join(name.replace(".yaml", ".test.yaml"));
        let text = std::fs::read_to_string(&test).unwrap_or_else(|e| panic!("{}: {e}", test.display()));
        assert!(text.contains(&format!("process: ../{name}")), "{} tests {name}", test.display());
        assert!(
            text.contains("status: ERROR") || text.contains("status: COMPLETE_WARN"),
            "{} has a refusal or failure case",
            test.display()
        );
    }
}

#[test]
fn notifications_and_document_properties_are_asserted_with_a_readable_diff() {
    let dir = Dir::new();
    dir.write("p.yaml", PROCESS.replace("next: write\n  write:", "next: tell\n  tell:\n    type: notify\n    level: warn\n    template: \"made {1}\"\n    parameters: [{ json: /email, default: none }]\n    next: write\n  write:"));
    dir.write(
        "p.test.yaml",
        r#"
process: p.yaml
cases:
  - name: what the notify step said, and the status properties
    start: [{ firstName: Ann }]
    mocks: { kb4: { answers: [] } }
    expect:
      entered:
        tell:
          properties: [{ application_status_code: validation }]
      notifications:
        count: 1
        exactly: [{ step: tell, level: warn, message: "made none" }]
        includes: [{ contains: "made" }]
  - name: wrong on purpose
    start: [{ firstName: Ann }]
    mocks: { kb4: { answers: [] } }
    expect:
      entered:
        tell:
          properties: [{ application_status_code: "" }]
      notifications:
        exactly: [{ step: tell, level: info, message: "made Ann" }]
"#,
    );
    let run = stepwise(dir.path(), &["test", "p.test.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("ok   p.test.yaml: what the notify step said"), "{run:?}");
    assert!(run.stdout.contains("FAIL p.test.yaml: wrong on purpose"), "{run:?}");
    assert!(run.stdout.contains("step 'tell': the properties of the documents that entered differ"), "{run:?}");
    assert!(
        run.stdout.contains("-    \"application_status_code\": \"\"")
            && run.stdout.contains("+    \"application_status_code\": \"validation\""),
        "{run:?}"
    );
    assert!(run.stdout.contains("notifications: the notifications differ"), "{run:?}");
    assert!(run.stdout.contains("-tell [info]: made Ann") && run.stdout.contains("+tell [warn]: made none"), "{run:?}");
    assert_eq!(last_line(&run.stdout), "1 passed, 1 failed", "{run:?}");
}

#[test]
fn output_is_in_file_order_whatever_the_jobs() {
    let one = stepwise(&repo(), &["test", "processes", "--jobs", "1"]);
    let many = stepwise(&repo(), &["test", "processes", "--jobs", "4"]);
    assert_eq!(one.code, 0, "{one:?}");
    assert_eq!(one.stdout, many.stdout);
    let zero = stepwise(&repo(), &["test", "processes", "--jobs", "0"]);
    assert_eq!(zero.code, 2, "{zero:?}");
}

/// A shipped process and its input data copied into `dir`, so that runs write nothing in the repo.
fn copy_onboarding(dir: &Dir) {
    let process = std::fs::read_to_string(repo().join("processes/onboard-new-hires.yaml")).unwrap();
    dir.write("onboard-new-hires.yaml", process);
    let hr = std::fs::read_to_string(repo().join("processes/data/knowbe4/hr/new-hires.csv")).unwrap();
    dir.write("data/knowbe4/hr/new-hires.csv", hr);
}

#[test]
fn a_sandbox_run_recorded_becomes_a_passing_test_that_a_changed_mapping_fails() {
    let dir = Dir::new();
    copy_onboarding(&dir);
    let run = stepwise(dir.path(), &["run", "onboard-new-hires.yaml", "--test", "--sandbox", "--dump", "dump"]);
    assert!(run.code == 0, "{run:?}");
    let recorded = stepwise(dir.path(), &["test", "--record", "dump", "--out", "tests/onboard.test.yaml"]);
    assert_eq!(recorded.code, 0, "{recorded:?}");
    let test = dir.read("tests/onboard.test.yaml");
    assert!(test.contains("process: ../onboard-new-hires.yaml"), "{test}");
    for secret in ["sandbox-token", "Authorization", "authorization", "Bearer"] {
        assert!(!test.contains(secret), "{secret} in the recorded test: {test}");
    }
    let passed = stepwise(dir.path(), &["test", "tests"]);
    assert_eq!(passed.code, 0, "{passed:?}");
    assert_eq!(last_line(&passed.stdout), "1 passed, 0 failed", "{passed:?}");

    // The same test against a copy whose mapping puts the department in the job title.
    let process = dir.read("onboard-new-hires.yaml");
    let changed = process.replace("jobTitle: .Title", "jobTitle: .Department");
    assert_ne!(changed, process);
    dir.write("changed/onboard-new-hires.yaml", changed);
    dir.write("changed/data/knowbe4/hr/new-hires.csv", dir.read("data/knowbe4/hr/new-hires.csv"));
    dir.write("changed/tests/onboard.test.yaml", &test);
    let failed = stepwise(&dir.join("changed"), &["test", "tests"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stdout.contains("step 'create_user': the documents that entered differ"), "{failed:?}");
    assert!(failed.stdout.contains("-    \"jobTitle\": \"Engineer\","), "{failed:?}");

    // Printed without --out.
    let printed = stepwise(dir.path(), &["test", "--record", "dump"]);
    assert_eq!(printed.code, 0, "{printed:?}");
    assert!(printed.stdout.contains("process: onboard-new-hires.yaml"), "{printed:?}");
}

#[test]
fn record_refuses_a_missing_or_foreign_directory() {
    let dir = Dir::new();
    let missing = stepwise(dir.path(), &["test", "--record", "nowhere"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("cannot record: 'nowhere': no such directory"), "{missing:?}");
    dir.write("other/notes.txt", "hello");
    let foreign = stepwise(dir.path(), &["test", "--record", "other"]);
    assert_eq!(foreign.code, 2, "{foreign:?}");
    assert!(foreign.stderr.contains("'other' is not a test-mode dump directory"), "{foreign:?}");
    dir.write("bad/run.json", "{not json");
    let bad = stepwise(dir.path(), &["test", "--record", "bad"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let out_alone = stepwise(dir.path(), &["test", "--out", "x.yaml"]);
    assert_eq!(out_alone.code, 2, "{out_alone:?}");
}

/// Every file under `dir`, with its content (lossy).
fn all_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push((path.clone(), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()));
        }
    }
}

#[test]
fn a_recorded_run_against_a_tenant_keeps_its_token_out_of_the_dumps_and_the_test() {
    let token = "s3cret-t0ken-for-record";
    let sim = SimProcess::start(&["knowbe4-sim", "--port", "0", "--no-limits", "--token", token]);
    let dir = Dir::new();
    copy_onboarding(&dir);
    let process = dir.read("onboard-new-hires.yaml");
    let pointed = process.replace("    region: us\n", &format!("    region: us\n    base_url: {}\n", sim.url()));
    assert_ne!(pointed, process);
    dir.write("onboard-new-hires.yaml", pointed);
    let env = [("KNOWBE4_TOKEN", token)];
    let run = stepwise_env(dir.path(), &["run", "onboard-new-hires.yaml", "--test", "--dump", "dump"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    let recorded = stepwise(dir.path(), &["test", "--record", "dump", "--out", "onboard.test.yaml"]);
    assert_eq!(recorded.code, 0, "{recorded:?}");
    let mut files = Vec::new();
    all_files(&dir.join("dump"), &mut files);
    files.push((dir.join("onboard.test.yaml"), dir.read("onboard.test.yaml")));
    assert!(files.len() > 10, "{files:?}");
    for (path, text) in &files {
        assert!(!text.contains(token), "the token is in {}", path.display());
        assert!(!text.to_lowercase().contains("authorization"), "an Authorization header in {}", path.display());
    }
    let passed = stepwise(dir.path(), &["test", "onboard.test.yaml"]);
    assert_eq!(passed.code, 0, "{passed:?}");
}
