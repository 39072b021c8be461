//! Failure paths that must never act on wrong data or lose a record of what was done (issue
//! 13): partial lists, unknown create outcomes, concurrent revokes, partial batches, parameter
//! lookups that fail, and rate budgets shared across runs. Each test drives the real binary
//! against a simulator process whose faults are scripted (`--fault OPERATION:FROM-TO:KIND`).

use serde_json::{Value, json};

use crate::support::{Dir, Run, SimProcess, stepwise_env};

const KB4_TOKEN: &str = "sandbox-token";
const BOOMI_TOKEN: &str = "safe-data-boomi-token";
const ACCOUNT: &str = "acme-SAFE1";
const EMAIL: &str = "api.user@acme.example";
const STANDARD_USER: &str = "fcb6e2d0-0ca8-11e2-a477-1231381987a5";

fn kb4_sim(args: &[&str]) -> SimProcess {
    SimProcess::start(&[&["knowbe4-sim", "--port", "0"], args].concat())
}

fn boomi_sim(args: &[&str]) -> SimProcess {
    let fixed = ["boomi-sim", "--port", "0", "--account-id", ACCOUNT, "--email", EMAIL, "--token", BOOMI_TOKEN];
    SimProcess::start(&[&fixed[..], args].concat())
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A process named `name` with a `kb4` and a `boomi` connection (either simulator may be
/// absent), a disk connection `out`, and the given start and steps.
fn process(name: &str, kb4: Option<&SimProcess>, boomi: Option<&SimProcess>, start: &str, steps: &str) -> String {
    let mut y = format!("name: {name}\nconnections:\n");
    if let Some(s) = kb4 {
        y.push_str(&format!("  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {}\n", s.url()));
    }
    if let Some(s) = boomi {
        y.push_str(&format!(
            "  boomi:\n    type: boomi_platform\n    account_id: {ACCOUNT}\n    email: {EMAIL}\n    token: {{ env: BOOMI_TOKEN }}\n    base_url: {}\n",
            s.url()
        ));
    }
    y.push_str(&format!("  out:\n    type: disk\n    directory: out\nstart:\n{start}\nsteps:\n{steps}"));
    y
}

/// Runs `yaml` with `--json` and the simulators' tokens in the environment (`env` adds or
/// replaces variables; KnowBe4 pacing is off unless `env` sets `STEPWISE_KNOWBE4_RATE`).
fn run(dir: &Dir, yaml: &str, env: &[(&str, &str)]) -> Run {
    let p = dir.write("p.yaml", yaml);
    let mut all_env = vec![("KB4_TOKEN", KB4_TOKEN), ("BOOMI_TOKEN", BOOMI_TOKEN), ("STEPWISE_KNOWBE4_RATE", "off")];
    for (k, v) in env {
        all_env.retain(|(x, _)| x != k);
        all_env.push((k, v));
    }
    stepwise_env(dir.path(), &["run", "--json", p.to_str().unwrap(), "--log", "info"], &all_env)
}

/// Every document written under `out` (one JSON per line, files in order).
fn outputs(dir: &Dir) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir.join("out")) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut docs = Vec::new();
    for f in &files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            docs.push(serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())));
        }
    }
    docs
}

/// Steps that join every document into one file (one JSON per line) under `out`.
const SAVE: &str = "  save:\n    type: message\n    template: \"{1}\"\n    parameters: [{ current_data: true }]\n    combine: true\n    next: write\n  write:\n    type: connector\n    connection: out\n    action: send\n";

/// A start that is one connector call, going to `save`.
fn call_start(connection: &str, object: &str, action: &str, params: &str, error_response: bool) -> String {
    format!(
        "  type: connector\n  connection: {connection}\n  object: {object}\n  action: {action}\n  error_response: {error_response}\n{params}  next: save\n"
    )
}

/// Starts with the documents `docs` and sends them to the step `first` (which the caller
/// defines in `steps`).
fn docs_start(docs: &[Value], first: &str) -> (String, String) {
    let jq = format!("{} | .[]", Value::Array(docs.to_vec()));
    (
        "  type: no_data\n  next: seed\n".to_owned(),
        format!(
            "  seed:\n    type: message\n    template: \"null\"\n    next: docs\n  docs:\n    type: map\n    jq: {}\n    next: {first}\n",
            yaml_string(&jq)
        ),
    )
}

fn step_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap_or_else(|| panic!("no step {id}"))
}

// Item 1: a list whose later page fails is all or nothing.

fn assert_list_all_or_nothing(sim_with_fault: impl Fn() -> SimProcess, connection: &str, object: &str, params: &str) {
    // error_response on: one error document for the input, no record at all.
    let sim = sim_with_fault();
    let dir = Dir::new();
    let (kb4, boomi) = if connection == "kb4" { (Some(&sim), None) } else { (None, Some(&sim)) };
    let yaml = process("partial-list", kb4, boomi, &call_start(connection, object, "list", params, true), SAVE);
    let r = run(&dir, &yaml, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], "COMPLETE_WARN", "{r:?}");
    let out = outputs(&dir);
    assert_eq!(out.len(), 1, "only the error document, no record of the pages read: {} documents", out.len());
    assert_eq!(out[0]["error"]["kind"], "api", "{}", out[0]);
    assert_eq!(out[0]["error"]["status"], 500, "{}", out[0]);
    // error_response off: the run fails and nothing goes downstream.
    let sim = sim_with_fault();
    let dir = Dir::new();
    let (kb4, boomi) = if connection == "kb4" { (Some(&sim), None) } else { (None, Some(&sim)) };
    let yaml = process("partial-list", kb4, boomi, &call_start(connection, object, "list", params, false), SAVE);
    let r = run(&dir, &yaml, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["status"], "ERROR", "{r:?}");
    assert!(outputs(&dir).is_empty(), "a failed list sent documents downstream");
}

#[test]
fn a_knowbe4_list_whose_second_page_fails_sends_no_records() {
    // 1,200 users: two pages of 1,000; every request for page 2 (and its retries) answers 500.
    let sim = || kb4_sim(&["--no-limits", "--seed-users", "1200", "--fault", "users:2-:500"]);
    assert_list_all_or_nothing(sim, "kb4", "user", "  parameters:\n    status: { static: ALL }\n");
}

#[test]
fn a_boomi_list_whose_second_page_fails_sends_no_records() {
    // 150 users with one or two global roles: more than one page of 100 grants.
    let sim =
        || boomi_sim(&["--seed-users", "150", "--rate-per-second", "0", "--fault", "AccountUserRole.queryMore:1-:500"]);
    assert_list_all_or_nothing(sim, "boomi", "account_user_role", "");
}

// Item 7: a parameter lookup that fails follows error_response.

#[test]
fn a_failed_parameter_lookup_follows_error_response() {
    let sim = kb4_sim(&["--no-limits"]);
    let docs = [json!({"uid": 10001}), json!({"other": 1}), json!({"uid": 10002})];
    let steps = |error_response: bool| {
        let (start, first) = docs_start(&docs, "get");
        let steps = format!(
            "{first}  get:\n    type: connector\n    connection: kb4\n    object: user\n    action: get\n    error_response: {error_response}\n    parameters:\n      id: {{ json: /uid }}\n    next: save\n{SAVE}"
        );
        process("lookup", Some(&sim), None, &start, &steps)
    };
    // On: the document whose lookup failed becomes an error document, in its place.
    let dir = Dir::new();
    let r = run(&dir, &steps(true), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], "COMPLETE_WARN", "{r:?}");
    let out = outputs(&dir);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["id"], 10001);
    assert_eq!(out[1]["error"]["kind"], "validation", "{}", out[1]);
    assert_eq!(out[1]["error"]["details"], json!([{"field": "id", "reason": "lookup_failed"}]));
    assert_eq!(out[1]["error"]["input"], json!({"other": 1}));
    assert!(out[1]["error"]["message"].as_str().unwrap().contains("parameter lookup failed"), "{}", out[1]);
    assert_eq!(out[2]["id"], 10002);
    assert_eq!(sim.calls_of("user"), 2);
    // Off: the run fails at the step and no request at all is made for the batch.
    let dir = Dir::new();
    let r = run(&dir, &steps(false), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let report = r.json();
    assert_eq!(report["status"], "ERROR", "{r:?}");
    let message = report["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("parameter lookup failed") && message.contains("no request was made"), "{report}");
    assert_eq!(sim.calls_of("user"), 2, "a request was made for a batch with a failed lookup");
    assert!(outputs(&dir).is_empty());
}

// Item 6: Boomi grants that completed for other users after one failed are reported.

#[test]
fn boomi_grants_completed_after_a_failure_are_reported() {
    const SUPPORT: &str = "fcb6e474-0ca8-11e2-a477-1231381987a5";
    let sim = boomi_sim(&["--rate-per-second", "0"]);
    // The first grant names a role the account does not have: Boomi refuses it. The grants of
    // the other users are made at the same time (a few users at once).
    let mut docs = vec![json!({"userId": "audit.fail@example.com", "roleId": "00000000-0000-4000-8000-000000000000"})];
    docs.extend((1..=4).map(|i| json!({"userId": format!("audit.user{i}@example.com"), "roleId": SUPPORT})));
    let (start, first) = docs_start(&docs, "grant");
    let steps = format!(
        "{first}  grant:\n    type: connector\n    connection: boomi\n    object: account_user_role\n    action: create\n    next: save\n{SAVE}"
    );
    let dir = Dir::new();
    let r = run(&dir, &process("grants", None, Some(&sim), &start, &steps), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let report = r.json();
    assert_eq!(report["status"], "ERROR", "{r:?}");
    // Which grants were made, according to Boomi.
    let state = sim.json("GET", "/__sim/state");
    let made: Vec<String> = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["userId"].as_str().unwrap().starts_with("audit.user"))
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect();
    assert!(!made.is_empty(), "no grant was made concurrently with the failed one: {state}");
    // Each of them is in the run's error (kept by history) and in the log.
    let message = report["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains(&format!("{} other document", made.len())),
        "the error does not count the {} grants made: {message}",
        made.len()
    );
    for user in &made {
        assert!(message.contains(user.as_str()), "{user} is not reported: {message}");
        assert!(
            r.stderr.lines().any(|l| l.contains("Completed before the step stopped") && l.contains(user.as_str())),
            "{user} is not in the log:\n{}",
            r.stderr
        );
    }
    assert_eq!(step_of(&report, "grant")["documents_out"], made.len() as u64, "{report}");
}

// Item 2: Boomi rule 2 holds whatever runs at the same time.

#[test]
fn concurrent_revokes_never_remove_a_boomi_user() {
    const SUPPORT: &str = "fcb6e474-0ca8-11e2-a477-1231381987a5";
    const PRODUCTION_SUPPORT: &str = "fcb6e3b6-0ca8-11e2-a477-1231381987a5";
    let sim = boomi_sim(&["--rate-per-second", "0"]);
    let users: Vec<String> = (0..12).map(|i| format!("race.user{i}@example.com")).collect();
    // Each user holds exactly two global roles.
    let grants: Vec<Value> = users
        .iter()
        .flat_map(|u| [json!({"userId": u, "roleId": SUPPORT}), json!({"userId": u, "roleId": PRODUCTION_SUPPORT})])
        .collect();
    let step = |action: &str, docs: &[Value]| {
        let (start, first) = docs_start(docs, "call");
        let steps = format!(
            "{first}  call:\n    type: connector\n    connection: boomi\n    object: account_user_role\n    action: {action}\n    next: save\n{SAVE}"
        );
        process("race", None, Some(&sim), &start, &steps)
    };
    let dir = Dir::new();
    let r = run(&dir, &step("create", &grants), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    // Four runs at once, two revoking each role of every user.
    let revokes: Vec<String> = [SUPPORT, PRODUCTION_SUPPORT, SUPPORT, PRODUCTION_SUPPORT]
        .iter()
        .map(|role| step("delete", &users.iter().map(|u| json!({"userId": u, "roleId": role})).collect::<Vec<_>>()))
        .collect();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = revokes
            .iter()
            .map(|yaml| {
                s.spawn(move || {
                    let dir = Dir::new();
                    run(&dir, yaml, &[])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        assert_eq!(r.code, 0, "{r:?}");
    }
    let stats = sim.stats();
    assert_eq!(stats["users_removed"], 0, "concurrent revokes removed users: {stats}");
    // Every user is still in the account, holding Standard User.
    let state = sim.json("GET", "/__sim/state");
    for u in &users {
        let found = state["users"].as_array().unwrap().iter().find(|x| x["userId"] == u.as_str());
        let roles: Vec<&str> = found.unwrap_or_else(|| panic!("{u} was removed"))["globalRoles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["roleId"].as_str().unwrap())
            .collect();
        assert_eq!(roles, [STANDARD_USER], "{u}");
    }
}

// Item 5: a create whose outcome is unknown never creates twice, nor takes an older object
// for its own.

/// Runs one KnowBe4 create of `doc` with `error_response: true`; returns the run and outputs.
fn kb4_create(sim: &SimProcess, object: &str, doc: Value, env: &[(&str, &str)]) -> (Run, Vec<Value>) {
    let (start, first) = docs_start(&[doc], "create");
    let steps = format!(
        "{first}  create:\n    type: connector\n    connection: kb4\n    object: {object}\n    action: create\n    error_response: true\n    next: save\n{SAVE}"
    );
    let dir = Dir::new();
    let r = run(&dir, &process("create", Some(sim), None, &start, &steps), env);
    let out = outputs(&dir);
    (r, out)
}

#[test]
fn a_create_committed_late_is_found_not_made_twice() {
    // The first phishingCampaignCreate answers 504 at once and commits 3 s later.
    let sim = kb4_sim(&["--no-limits", "--slow-ms", "3000", "--fault", "phishingCampaignCreate:1:late-504"]);
    let doc = json!({"attributes": {"name": "Late Commit Phish", "frequencyPeriod": "ONETIME", "allUsers": true}});
    let (r, out) = kb4_create(&sim, "phishing_campaign", doc, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].get("error").is_none(), "{}", out[0]);
    assert_eq!(out[0]["name"], "Late Commit Phish");
    // Wait for any late commit to land, then count the campaigns of that name.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let stats = sim.stats();
    assert_eq!(stats["objects"]["phishing_campaigns"], 4, "created twice: {stats}");
}

#[test]
fn a_create_committed_then_lost_is_found_once() {
    // The first userCreate is committed, then its answer is lost (a dropped connection).
    let sim = kb4_sim(&["--no-limits", "--fault", "userCreate:1:after-drop"]);
    let (r, out) = kb4_create(&sim, "user", json!({"email": "after.drop@example.com", "firstName": "Ann"}), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["email"], "after.drop@example.com", "{}", out[0]);
    assert_eq!(sim.stats()["objects"]["users"], 51);
    assert_eq!(sim.calls_of("userCreate"), 1, "sent twice");
}

#[test]
fn an_unknown_create_outcome_never_matches_an_older_object() {
    // "Legacy Contractors" is a seeded group archived long ago. The create's connection drops
    // before KnowBe4 acts on it; the lookup must not take the old group for the new one.
    let sim = kb4_sim(&["--no-limits", "--fault", "groupCreate:1:drop"]);
    let (r, out) = kb4_create(
        &sim,
        "group",
        json!({"attributes": {"name": "Legacy Contractors"}}),
        &[("STEPWISE_KNOWBE4_RECOVERY_SECS", "1")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    // Sent again, KnowBe4 refuses the name (it is taken): the truth, not the old group.
    assert_eq!(out[0]["error"]["kind"], "api", "the old group was reported as created: {}", out[0]);
    assert!(out[0]["error"]["message"].as_str().unwrap().contains("taken"), "{}", out[0]);
    assert_eq!(sim.calls_of("groupCreate"), 2);
}

// Item 15: rate budgets; a used-up quota fails fast.

#[test]
fn a_used_up_daily_quota_fails_fast_with_a_clear_error() {
    // A daily quota of 3 requests; its 429 carries no Retry-After (as KnowBe4's).
    let sim = kb4_sim(&["--rate-per-day", "3", "--rate-per-second", "100", "--rate-per-minute", "1000"]);
    let docs: Vec<Value> = (0..10).map(|_| json!({})).collect();
    let (start, first) = docs_start(&docs, "get");
    let steps = format!(
        "{first}  get:\n    type: connector\n    connection: kb4\n    object: user\n    action: get\n    error_response: true\n    parameters:\n      id: {{ static: \"10001\" }}\n    next: save\n{SAVE}"
    );
    let dir = Dir::new();
    let r = run(&dir, &process("quota", Some(&sim), None, &start, &steps), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = outputs(&dir);
    assert_eq!(out.len(), 10);
    assert_eq!(out.iter().filter(|d| d["id"] == 10001).count(), 3, "{out:?}");
    let errors: Vec<&Value> = out.iter().filter(|d| d.get("error").is_some()).collect();
    assert_eq!(errors.len(), 7);
    for e in &errors {
        assert_eq!(e["error"]["status"], 429, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("quota"), "{e}");
    }
    // The quota was asked twice (once after a wait); every other document failed unsent.
    assert_eq!(sim.calls_of("user"), 5, "{}", sim.stats());
}
