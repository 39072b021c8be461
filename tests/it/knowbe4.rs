//! The KnowBe4 connector end to end: process files run by the real binary against the KnowBe4
//! simulator (`stepwise knowbe4-sim`, a separate process) over real HTTP, or `--sandbox`.
//!
//! Most tests switch the simulator's limits off and the connector's pacing off
//! (`STEPWISE_KNOWBE4_RATE=off`) to stay fast; the pacing tests use limits.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Dir, Run, SimProcess, stepwise_env};

const TOKEN: &str = "sandbox-token";
const PARTNER: &str = "sandbox-partner-token";

/// A start with one document (the `seed` step makes its data the JSON `null`, for jq).
const NO_DATA: &str = "  type: no_data\n  next: seed\n";
/// `save` joins the documents into one (one JSON per line) and writes it with `out`: the disk
/// connector syncs every file, which is slow for thousands of documents.
const JOIN: &str = "  save:\n    type: message\n    template: \"{1}\"\n    parameters: [{ current_data: true }]\n    combine: true\n    next: write\n  write:\n    type: connector\n    connection: out\n    action: send\n    next: done\n";
const SEED: &str = "  seed:\n    type: message\n    template: \"null\"\n    next: docs\n";

/// The KnowBe4 simulator: `stepwise knowbe4-sim --port 0 ARGS`.
struct Sim;

impl Sim {
    fn start(args: &[&str]) -> SimProcess {
        SimProcess::start(&[&["knowbe4-sim", "--port", "0"], args].concat())
    }
}

/// A process file with a `kb4` connection to `sim` (token from `KB4_TOKEN`), a `partner`
/// connection (token from `KB4_PARTNER`), a disk connection `out`, and the given steps.
fn process(url: &str, start: &str, steps: &str) -> String {
    format!(
        "name: kb4-test\nconnections:\n  kb4:\n    type: knowbe4\n    region: us\n    token: {{ env: KB4_TOKEN }}\n    base_url: {url}\n  partner:\n    type: knowbe4\n    token: {{ env: KB4_PARTNER }}\n    base_url: {url}\n  out:\n    type: disk\n    directory: out\nstart:\n{start}\nsteps:\n{steps}"
    )
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The YAML of a step's `parameters` (static values).
fn parameters(params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let mut out = String::from("    parameters:\n");
    for (k, v) in params {
        out.push_str(&format!("      {k}: {{ static: {} }}\n", yaml_string(v)));
    }
    out
}

/// Every document written under `sub` (in order; a file may hold many, one per line).
fn outputs(dir: &Dir, sub: &str) -> Vec<Value> {
    let path = dir.join(sub);
    let Ok(entries) = std::fs::read_dir(&path) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut docs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            docs.push(serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())));
        }
    }
    docs
}

fn run_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("KB4_TOKEN", TOKEN), ("KB4_PARTNER", PARTNER), ("STEPWISE_KNOWBE4_RATE", "off")];
    for (k, v) in extra {
        env.retain(|(x, _)| x != k);
        env.push((k, v));
    }
    env
}

fn run_file(dir: &Dir, yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let p = dir.write("p.yaml", yaml);
    let mut all = vec!["run", "--json", p.to_str().unwrap()];
    all.extend_from_slice(args);
    stepwise_env(dir.path(), &all, &run_env(env))
}

/// Runs one operation: `docs` as input documents (none: a start with one empty document),
/// `params` as static parameters; returns the run and what the step sent on, in order.
fn op_with(
    sim: &SimProcess,
    connection: &str,
    object: &str,
    action: &str,
    docs: &[Value],
    params: &[(&str, &str)],
    error_response: bool,
) -> (Run, Vec<Value>) {
    let dir = Dir::new();
    let call = format!(
        "    type: connector\n    connection: {connection}\n    object: {object}\n    action: {action}\n    error_response: {error_response}\n{}    next: save\n",
        parameters(params)
    );
    let (start, first) = if docs.is_empty() {
        (format!("  {}", call.trim_start()), String::new())
    } else {
        let jq = format!("{} | .[]", Value::Array(docs.to_vec()));
        (
            NO_DATA.to_owned(),
            format!("{SEED}  docs:\n    type: map\n    jq: {}\n    next: call\n  call:\n{call}", yaml_string(&jq)),
        )
    };
    let start = if docs.is_empty() { start.replace("\n    ", "\n  ") } else { start };
    let steps = format!("{first}{JOIN}  done:\n    type: stop\n");
    let yaml = process(&sim.url(), &start, &steps);
    let run = run_file(&dir, &yaml, &[], &[]);
    let docs = outputs(&dir, "out");
    (run, docs)
}

fn op(sim: &SimProcess, object: &str, action: &str, docs: &[Value], params: &[(&str, &str)]) -> Vec<Value> {
    let (run, out) = op_with(sim, "kb4", object, action, docs, params, false);
    assert_eq!(run.code, 0, "{object}.{action}: {run:?}");
    assert_eq!(run.json()["status"], "COMPLETE", "{object}.{action}: {run:?}");
    out
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

#[test]
fn every_object_action_pair() {
    let sim = Sim::start(&["--no-limits"]);
    // user
    let users = op(&sim, "user", "list", &[], &[("status", "ALL")]);
    assert_eq!(users.len(), 50);
    let first = &users[0];
    let got = op(&sim, "user", "get", &[], &[("id", &id(first).to_string())]);
    assert_eq!(got[0]["email"], first["email"]);
    let got = op(&sim, "user", "get", &[], &[("email", first["email"].as_str().unwrap())]);
    assert_eq!(id(&got[0]), id(first));
    let created = op(
        &sim,
        "user",
        "create",
        &[json!({"email": "e2e.one@example.com", "firstName": "Ee", "lastName": "One"})],
        &[],
    );
    assert_eq!(created[0]["email"], "e2e.one@example.com");
    let uid = id(&created[0]);
    let updated = op(&sim, "user", "update", &[json!({"userId": uid, "attributes": {"jobTitle": "Tester"}})], &[]);
    assert_eq!(updated[0]["jobTitle"], "Tester");
    let archived = op(&sim, "user", "archive", &[json!({"userIds": [uid]})], &[]);
    assert_eq!(archived[0]["archived"], true);
    let unarchived = op(&sim, "user", "unarchive", &[json!({"userIds": [uid]})], &[]);
    assert_eq!(unarchived[0]["archived"], false);
    // group and membership
    let groups = op(&sim, "group", "list", &[], &[("status", "ALL")]);
    assert!(groups.len() >= 5);
    let console = groups
        .iter()
        .find(|g| g["groupType"] == "CONSOLE" && g["status"] == "ACTIVE")
        .map(id)
        .expect("a console group");
    let group = op(&sim, "group", "create", &[json!({"attributes": {"name": "E2E Group"}})], &[]);
    let gid = id(&group[0]);
    assert_eq!(op(&sim, "group", "get", &[], &[("id", &gid.to_string())])[0]["name"], "E2E Group");
    let added = op(&sim, "group_membership", "add", &[json!({"userIds": [uid], "groupIds": [gid]})], &[]);
    assert!(added[0]["groupIds"].as_array().unwrap().contains(&json!(gid)), "{added:?}");
    let removed = op(&sim, "group_membership", "remove", &[json!({"userIds": [uid], "groupId": gid})], &[]);
    assert!(!removed[0]["groupIds"].as_array().unwrap().contains(&json!(gid)), "{removed:?}");
    assert_eq!(op(&sim, "group", "archive", &[json!({"ids": [gid]})], &[])[0]["status"], "ARCHIVED");
    assert_eq!(op(&sim, "group", "unarchive", &[json!({"ids": [gid]})], &[])[0]["status"], "ACTIVE");
    assert_eq!(id(&op(&sim, "group", "delete", &[], &[("ids", &gid.to_string())])[0]), gid);
    // training
    let purchases = op(&sim, "store_purchase", "list", &[], &[]);
    let content = purchases[0]["purchasedCourse"]["polymorphicId"].as_str().unwrap().to_owned();
    let tc = op(
        &sim,
        "training_campaign",
        "create",
        &[json!({"attributes": {"name": "E2E Training", "selectedContent": [content], "selectedGroups": [console]},
                 "endCampaignOption": "NO_END_DATE"})],
        &[],
    );
    let tid = id(&tc[0]);
    let tc =
        op(&sim, "training_campaign", "update", &[json!({"id": tid, "attributes": {"name": "E2E Training 2"}})], &[]);
    assert_eq!(tc[0]["name"], "E2E Training 2");
    assert_eq!(id(&op(&sim, "training_campaign", "get", &[], &[("id", &tid.to_string())])[0]), tid);
    let listed = op(&sim, "training_campaign", "list", &[], &[("filter", "ALL")]);
    assert!(listed.iter().any(|c| id(c) == tid));
    let enrolled = op(&sim, "training_campaign_user", "add", &[json!({"trainingCampaignId": tid, "userId": uid})], &[]);
    assert_eq!(enrolled[0], json!({"trainingCampaignId": tid, "userId": uid, "added": true}));
    let enrollments =
        op(&sim, "enrollment", "list", &[], &[("trainingCampaignId", &tid.to_string()), ("userId", &uid.to_string())]);
    assert!(!enrollments.is_empty());
    let eid = id(&enrollments[0]);
    assert_eq!(id(&op(&sim, "enrollment", "get", &[], &[("id", &eid.to_string())])[0]), eid);
    let out = op(&sim, "training_campaign_user", "remove", &[json!({"trainingCampaignId": tid, "userId": uid})], &[]);
    assert_eq!(out[0]["removed"], true);
    let closed = op(&sim, "close_training_campaign", "update", &[json!({"id": tid})], &[]);
    assert_eq!(closed[0]["status"], "CLOSED");
    let deleted = op(&sim, "training_campaign", "delete", &[], &[("ids", &tid.to_string())]);
    assert_eq!(deleted[0], json!({"id": tid, "deleted": true}));
    // phishing
    let topics = op(&sim, "template_topic", "list", &[], &[]);
    let topic = id(&topics[0]);
    let pc = op(
        &sim,
        "phishing_campaign",
        "create",
        &[json!({"attributes": {"name": "E2E Phish", "frequencyPeriod": "ONETIME", "selectedGroups": [console],
                                "selectedTemplateTopics": [topic]}})],
        &[],
    );
    let pid = id(&pc[0]);
    let pc = op(&sim, "phishing_campaign", "update", &[json!({"id": pid, "attributes": {"name": "E2E Phish 2"}})], &[]);
    assert_eq!(pc[0]["name"], "E2E Phish 2");
    assert_eq!(id(&op(&sim, "phishing_campaign", "get", &[], &[("id", &pid.to_string())])[0]), pid);
    let campaigns = op(&sim, "phishing_campaign", "list", &[], &[]);
    assert!(campaigns.iter().any(|c| id(c) == pid));
    let off = op(&sim, "phishing_campaign_activation", "update", &[json!({"id": pid, "deactivate": true})], &[]);
    assert_eq!(off[0]["active"], false);
    let seeded = id(&campaigns[0]);
    let runs = op(&sim, "phishing_campaign_run", "list", &[], &[("campaignId", &seeded.to_string())]);
    let run = runs.iter().find(|r| r["status"] == "TRACKING").expect("a running run");
    let rid = id(run);
    assert_eq!(id(&op(&sim, "phishing_campaign_run", "get", &[], &[("id", &rid.to_string())])[0]), rid);
    let recipients = op(&sim, "phishing_campaign_recipient", "list", &[], &[("campaignRunId", &rid.to_string())]);
    assert!(!recipients.is_empty());
    let stopped = op(&sim, "phishing_campaign_run", "update", &[json!({"campaignId": seeded, "runId": rid})], &[]);
    assert_eq!(stopped[0]["status"], "STOPPED");
    let gone = op(
        &sim,
        "phishing_campaign_run",
        "delete",
        &[],
        &[("campaignId", &seeded.to_string()), ("runId", &rid.to_string())],
    );
    assert_eq!(id(&gone[0]), rid);
    // partner accounts
    let (run, accounts) = op_with(&sim, "partner", "account", "list", &[], &[("status", "ALL")], false);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(accounts.len(), 5);
    assert!(accounts[0]["userCount"].is_number());
    assert_eq!(sim.stats()["throttled"], 0);
}

#[test]
fn an_invalid_document_fails_the_run_with_no_request_at_all() {
    let sim = Sim::start(&["--no-limits"]);
    let docs = [
        json!({"email": "good.one@example.com", "firstName": "Good"}),
        json!({"email": "not-an-email", "firstName": "Bad"}),
        json!({"email": "good.two@example.com", "firstName": "Good"}),
    ];
    let before = sim.requests();
    let (run, out) = op_with(&sim, "kb4", "user", "create", &docs, &[], false);
    assert_eq!(run.code, 1, "{run:?}");
    let report = run.json();
    assert_eq!(report["status"], "ERROR");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("email: format") && message.contains("no request was made"), "{message}");
    assert_eq!(report["error"]["step"], "call");
    assert_eq!(report["error"]["document"], 2);
    assert!(out.is_empty());
    assert_eq!(sim.requests(), before, "a request was made: {}", sim.stats());
    // Overlong group names and wrong types are caught the same way.
    for doc in [json!({"attributes": {"name": "g".repeat(129)}}), json!({"attributes": {"name": 42}})] {
        let (run, _) = op_with(&sim, "kb4", "group", "create", &[doc], &[], false);
        assert_eq!(run.code, 1, "{run:?}");
    }
    assert_eq!(sim.requests(), before);
}

#[test]
fn error_documents_carry_the_error_and_the_run_goes_on() {
    let sim = Sim::start(&[
        "--no-limits",
        "--token",
        TOKEN,
        "--partner-token",
        PARTNER,
        "--token-read-only",
        "read-only-token",
    ]);
    let dir = Dir::new();
    let start = NO_DATA;
    let docs = json!([
        {"email": "fresh@example.com", "firstName": "Fresh"},
        {"email": "nope", "firstName": "Bad"},
        {"email": "fresh@example.com", "firstName": "Again"},
        {"firstName": "NoEmail"}
    ]);
    let steps = format!(
        "{SEED}  docs:\n    type: map\n    jq: {}\n    next: create\n  create:\n    type: connector\n    connection: kb4\n    object: user\n    action: create\n    error_response: true\n    next: both\n  both:\n    type: branch\n    paths: [save, props]\n  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  props:\n    type: message\n    template: \"{{1}}|{{2}}\"\n    parameters:\n      - {{ document_property: application_status_code }}\n      - {{ document_property: application_status_message }}\n    next: write_props\n  write_props:\n    type: connector\n    connection: props\n    action: send\n    next: done\n  done:\n    type: stop\n",
        yaml_string(&format!("{docs} | .[]"))
    );
    let yaml = process(&sim.url(), start, &steps).replace(
        "  out:\n    type: disk\n    directory: out\n",
        "  out:\n    type: disk\n    directory: out\n  props:\n    type: disk\n    directory: props\n",
    );
    let run = run_file(&dir, &yaml, &[], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
    let out = outputs(&dir, "out");
    let props: Vec<String> =
        outputs(&dir, "props").into_iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(out.len(), 4, "{out:?}");
    // Each error document takes its input's place: the order of the inputs is kept, although
    // the invalid ones were refused before any call was made.
    let first_names: Vec<&Value> =
        out.iter().map(|d| d.pointer("/error/input/firstName").or_else(|| d.get("firstName")).unwrap()).collect();
    assert_eq!(first_names, [&json!("Fresh"), &json!("Bad"), &json!("Again"), &json!("NoEmail")], "{out:?}");
    let by_input = |email: Value| {
        out.iter().position(|d| d.pointer("/error/input/email") == Some(&email) || d.get("email") == Some(&email))
    };
    let bad = &out[by_input(json!("nope")).unwrap()];
    assert_eq!(bad["error"]["kind"], "validation");
    assert_eq!(bad["error"]["step"], "create");
    assert_eq!(bad["error"]["connection"], "kb4");
    assert_eq!(bad["error"]["object"], "user");
    assert_eq!(bad["error"]["action"], "create");
    assert_eq!(bad["error"]["status"], Value::Null);
    assert_eq!(bad["error"]["details"], json!([{"field": "email", "reason": "format"}]));
    assert_eq!(bad["error"]["input"], json!({"email": "nope", "firstName": "Bad"}));
    let missing = out.iter().find(|d| d.pointer("/error/input/firstName") == Some(&json!("NoEmail"))).unwrap();
    assert_eq!(missing["error"]["details"], json!([{"field": "email", "reason": "required"}]));
    let ok = out.iter().find(|d| d.get("email") == Some(&json!("fresh@example.com"))).expect("the created user");
    assert!(ok["id"].is_number());
    let taken = out.iter().find(|d| d.pointer("/error/input/firstName") == Some(&json!("Again"))).unwrap();
    assert_eq!(taken["error"]["kind"], "api");
    assert_eq!(taken["error"]["status"], 200);
    assert_eq!(taken["error"]["details"], json!([{"field": "email", "reason": "taken"}]));
    assert!(taken["error"]["message"].as_str().unwrap().contains("taken"));
    // Properties: "" for the success, the status (or kind) and the message for errors.
    assert_eq!(props.len(), 4, "{props:?}");
    assert!(props.iter().any(|p| p == "|"), "{props:?}");
    assert!(props.iter().any(|p| p.starts_with("validation|")), "{props:?}");
    assert!(props.iter().any(|p| p.starts_with("200|KnowBe4 refused userCreate")), "{props:?}");

    // GraphQL errors that arrive with HTTP 200: a KSAT token asking for the partner accounts,
    // and a read-only token trying a mutation.
    let (run, out) = op_with(&sim, "kb4", "account", "list", &[], &[], true);
    assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
    assert_eq!(out[0]["error"]["kind"], "api");
    assert_eq!(out[0]["error"]["status"], 200);
    assert_eq!(out[0]["error"]["details"], json!([{"field": "accounts", "reason": "forbidden"}]));
    let dir = Dir::new();
    let yaml = process(
        &sim.url(),
        NO_DATA,
        &format!(
            "{SEED}  docs:\n    type: map\n    jq: {}\n    next: call\n  call:\n    type: connector\n    connection: kb4\n    object: group\n    action: create\n    error_response: true\n    next: save\n  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  done:\n    type: stop\n",
            yaml_string(r#"{"attributes": {"name": "Read only"}}"#)
        ),
    );
    let run = run_file(&dir, &yaml, &[], &[("KB4_TOKEN", "read-only-token")]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = outputs(&dir, "out");
    assert_eq!(out[0]["error"]["kind"], "api", "{out:?}");
    assert!(out[0]["error"]["message"].as_str().unwrap().contains("Read Only"), "{out:?}");
}

#[test]
fn an_api_error_fails_the_run_and_a_bad_token_is_not_retried() {
    let sim = Sim::start(&["--no-limits"]);
    let (run, _) = op_with(&sim, "kb4", "group", "get", &[], &[("id", "999999")], false);
    assert_eq!(run.code, 1, "{run:?}");
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("no group with id 999999"), "{message}");
    // A wrong token: HTTP 401, one request, not retried, reported as an API error.
    let before = sim.stats();
    let dir = Dir::new();
    let yaml = process(
        &sim.url(),
        "  type: connector\n  connection: kb4\n  object: user\n  action: list\n  error_response: true\n  next: save\n",
        "  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  done:\n    type: stop\n",
    );
    let run = run_file(&dir, &yaml, &[], &[("KB4_TOKEN", "wrong-token-1234")]);
    assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
    let out = outputs(&dir, "out");
    assert_eq!(out[0]["error"]["kind"], "api");
    assert_eq!(out[0]["error"]["status"], 401);
    let after = sim.stats();
    assert_eq!(after["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap(), 1);
    assert_eq!(after["unauthorized"].as_u64().unwrap() - before["unauthorized"].as_u64().unwrap(), 1);
}

#[test]
fn lists_2600_users_across_pages() {
    let sim = Sim::start(&["--no-limits", "--seed-users", "2600"]);
    let users = op(&sim, "user", "list", &[], &[("status", "ALL")]);
    assert_eq!(users.len(), 2600);
    let ids: std::collections::HashSet<i64> = users.iter().map(id).collect();
    assert_eq!(ids.len(), 2600, "duplicates across pages");
    assert_eq!(sim.calls_of("users"), 3, "{}", sim.stats());
    let active = op(&sim, "user", "list", &[], &[("status", "ACTIVE")]);
    assert!(active.len() < 2600 && active.iter().all(|u| u["archived"] == false));
}

#[test]
fn membership_changes_are_batched() {
    let sim = Sim::start(&["--no-limits", "--seed-users", "160"]);
    let dir = Dir::new();
    let steps = "  to_add:\n    type: map\n    jq: '{userIds: [.id], groupIds: [2001]}'\n    next: add\n  add:\n    type: connector\n    connection: kb4\n    object: group_membership\n    action: add\n    next: to_remove\n  to_remove:\n    type: map\n    jq: '{userIds: [.id], groupId: 2001}'\n    next: remove\n  remove:\n    type: connector\n    connection: kb4\n    object: group_membership\n    action: remove\n    next: done\n  done:\n    type: stop\n";
    let start = "  type: connector\n  connection: kb4\n  object: user\n  action: list\n  next: to_add\n";
    let run = run_file(&dir, &process(&sim.url(), start, steps), &[], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    let active = report["steps"][0]["documents_out"].as_u64().unwrap();
    assert!(active > 100, "{active}");
    let calls = active.div_ceil(50);
    assert_eq!(sim.calls_of("userAddToGroups"), calls, "{}", sim.stats());
    assert_eq!(sim.calls_of("userDeleteMemberships"), calls);
    let add = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "add").unwrap();
    assert_eq!(add["documents_out"].as_u64().unwrap(), active);
    assert_eq!(sim.stats()["gateway_timeouts"], 0);
}

#[test]
fn retries_injected_faults_without_duplicate_creates() {
    let sim = Sim::start(&["--no-limits", "--fault-rate", "0.25", "--seed", "7", "--slow-ms", "200"]);
    let dir = Dir::new();
    let users: Vec<Value> =
        (0..40).map(|i| json!({"email": format!("fault.user{i}@example.com"), "firstName": "Fault"})).collect();
    let groups: Vec<Value> = (0..10).map(|i| json!({"attributes": {"name": format!("Fault Group {i}")}})).collect();
    let phish: Vec<Value> = (0..10)
        .map(|i| json!({"attributes": {"name": format!("Fault Phish {i}"), "frequencyPeriod": "ONETIME", "allUsers": true}}))
        .collect();
    let create = |name: &str, object: &str, docs: Vec<Value>| {
        format!(
            "  {name}:\n    type: map\n    jq: {}\n    next: create_{name}\n  create_{name}:\n    type: connector\n    connection: kb4\n    object: {object}\n    action: create\n",
            yaml_string(&format!("{} | .[]", Value::Array(docs)))
        )
    };
    let steps = format!(
        "  seed:\n    type: message\n    template: \"null\"\n    next: paths\n  paths:\n    type: branch\n    paths: [users, groups, phish, list]\n{}{}{}  list:\n    type: connector\n    connection: kb4\n    object: user\n    action: list\n    parameters:\n      status: {{ static: ALL }}\n",
        create("users", "user", users),
        create("groups", "group", groups),
        create("phish", "phishing_campaign", phish),
    );
    let yaml = process(&sim.url(), NO_DATA, &steps);
    // A create surely not made is looked for 2 s (not the default 15) before it is sent again.
    let run = run_file(&dir, &yaml, &["--log", "info"], &[("STEPWISE_KNOWBE4_RECOVERY_SECS", "2")]);
    assert_eq!(run.code, 0, "{run:?}");
    let stats = sim.stats();
    assert!(stats["faults"].as_u64().unwrap() >= 10, "{stats}");
    // Exactly one object per create: 50 seeded users + 40, 5 groups + 10, 3 campaigns + 10.
    assert_eq!(stats["objects"]["users"], 90, "{stats}");
    assert_eq!(stats["objects"]["groups"], 15, "{stats}");
    assert_eq!(stats["objects"]["phishing_campaigns"], 13, "{stats}");
    let report = run.json();
    let list = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "list").unwrap();
    assert_eq!(list["documents_out"], 90, "{report}");
    assert!(run.stderr.contains("outcome was unknown"), "no ambiguous create was exercised:\n{}", run.stderr);
}

#[test]
fn honours_429_and_retry_after() {
    // The simulator allows 2 per second; the connector is told nothing (pacing off), so it
    // draws 429s and must wait them out.
    let sim = Sim::start(&["--rate-per-second", "2", "--rate-per-minute", "1000"]);
    let docs: Vec<Value> = (0..8).map(|_| json!({})).collect();
    let dir = Dir::new();
    let steps = format!(
        "{SEED}  docs:\n    type: map\n    jq: {}\n    next: get\n  get:\n    type: connector\n    connection: kb4\n    object: user\n    action: get\n    parameters:\n      id: {{ static: \"10001\" }}\n    next: done\n  done:\n    type: stop\n",
        yaml_string(&format!("{} | .[]", Value::Array(docs)))
    );
    let run = run_file(&dir, &process(&sim.url(), NO_DATA, &steps), &[], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let stats = sim.stats();
    assert!(stats["throttled"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["by_operation"]["user"].as_u64().unwrap() - stats["throttled"].as_u64().unwrap(), 8, "{stats}");
}

#[test]
fn paces_under_knowbe4_limits_with_no_429_across_a_minute() {
    // KnowBe4's real limits on both sides: 4/s and 50/min. 55 calls: 50 at 4 per second, then
    // the burst window makes the 51st wait for the minute to roll.
    let sim = Sim::start(&[]);
    let docs: Vec<Value> = (0..55).map(|_| json!({})).collect();
    let dir = Dir::new();
    let steps = format!(
        "{SEED}  docs:\n    type: map\n    jq: {}\n    next: get\n  get:\n    type: connector\n    connection: kb4\n    object: user\n    action: get\n    parameters:\n      id: {{ static: \"10001\" }}\n    next: done\n  done:\n    type: stop\n",
        yaml_string(&format!("{} | .[]", Value::Array(docs)))
    );
    let run = run_file(&dir, &process(&sim.url(), NO_DATA, &steps), &[], &[("STEPWISE_KNOWBE4_RATE", "")]);
    assert_eq!(run.code, 0, "{run:?}");
    // The simulator enforces both limits and answers 429 beyond them: none sent means the
    // connector waited for the minute window itself. (How close to the floor it stays is the
    // sync benchmark's business, not a test's.)
    let stats = sim.stats();
    assert_eq!(stats["throttled"], 0, "{stats}");
    assert_eq!(stats["requests"], 55, "{stats}");
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

#[test]
fn tokens_never_appear_in_logs_or_dumps() {
    let secret = "s3cr3t-kb4-token-Zq9";
    let partner = "s3cr3t-partner-token-Xy7";
    let sim = Sim::start(&["--no-limits", "--token", secret, "--partner-token", partner]);
    let dir = Dir::new();
    let steps = "  create:\n    type: connector\n    connection: kb4\n    object: user\n    action: create\n    error_response: true\n    next: accounts\n  accounts:\n    type: connector\n    connection: partner\n    object: account\n    action: list\n    next: done\n  done:\n    type: stop\n";
    let start = "  type: connector\n  connection: kb4\n  object: user\n  action: list\n  next: pick\n";
    let steps = format!(
        "  pick:\n    type: map\n    jq: 'select(.id == 10001) | {{email: .email, firstName: \"Dup\"}}'\n    next: create\n{steps}"
    );
    let yaml = process(&sim.url(), start, &steps);
    let dump = dir.join("dump");
    for level in ["debug", "trace"] {
        let _ = std::fs::remove_dir_all(&dump);
        let run = run_file(
            &dir,
            &yaml,
            &["--log", level, "--test", "--dump", dump.to_str().unwrap()],
            &[("KB4_TOKEN", secret), ("KB4_PARTNER", partner)],
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
        for t in [secret, partner] {
            assert!(!run.stdout.contains(t), "token in stdout ({level})");
            assert!(!run.stderr.contains(t), "token in stderr ({level})");
        }
        assert!(run.stderr.contains("HTTP call succeeded"), "no connector log at {level}");
        let mut files = Vec::new();
        files_under(&dump, &mut files);
        assert!(files.iter().any(|f| f.to_string_lossy().contains("connection")), "no exchange dumped: {files:?}");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for t in [secret, partner] {
                assert!(!text.contains(t), "token in {}", f.display());
            }
            if f.to_string_lossy().contains("connection") {
                assert!(
                    !text.to_ascii_lowercase().contains("authorization"),
                    "an Authorization header in {}",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn sandbox_needs_no_credentials() {
    let dir = Dir::new();
    let yaml = "name: sandboxed\nconnections:\n  kb4:\n    type: knowbe4\n    region: eu\n    token: { env: KB4_UNSET_TOKEN }\n  out:\n    type: disk\n    directory: out\nstart:\n  type: connector\n  connection: kb4\n  object: group\n  action: list\n  next: accounts\nsteps:\n  accounts:\n    type: connector\n    connection: kb4\n    object: account\n    action: list\n    next: save\n  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  done:\n    type: stop\n";
    let p = dir.write("p.yaml", yaml);
    let run = stepwise_env(dir.path(), &["run", "--json", "--sandbox", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["status"], "COMPLETE", "{run:?}");
    // One account list per group document: the partner token was used for `account`.
    let out = outputs(&dir, "out");
    assert!(!out.is_empty() && out.iter().all(|a| a["companyName"].is_string()), "{out:?}");
    // Without --sandbox the same file needs its token.
    let run = stepwise_env(dir.path(), &["run", "--json", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("KB4_UNSET_TOKEN"), "{run:?}");
}
