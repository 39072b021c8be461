//! The Boomi Platform connector end to end: process files run by the real binary against the
//! Boomi simulator (`stepwise boomi-sim`, a separate process) over real HTTP, checked against
//! the simulator's state (`/__sim/state`) and counters (`/__sim/stats`); and the shipped Boomi
//! processes run with `--sandbox`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Dir, Run, SimProcess, repo, stepwise_env};

const TOKEN: &str = "e2e-boomi-token-Qw7";
const ACCOUNT: &str = "acme-E2E42";
const EMAIL: &str = "api.user@acme.example";
const STANDARD_USER: &str = "fcb6e2d0-0ca8-11e2-a477-1231381987a5";
const SUPPORT: &str = "fcb6e474-0ca8-11e2-a477-1231381987a5";
const PRODUCTION_SUPPORT: &str = "fcb6e3b6-0ca8-11e2-a477-1231381987a5";
const ADMINISTRATOR: &str = "fcb6dd44-0ca8-11e2-a477-1231381987a5";
const LEGACY_ROLE: &str = "7c1e6a0b-39d2-4f8e-b5a1-0d4f2c9e8b7a61";

/// The Boomi simulator: `stepwise boomi-sim --port 0 --account-id ACCOUNT --email EMAIL
/// --token TOKEN ARGS`.
struct Sim;

impl Sim {
    fn start(args: &[&str]) -> SimProcess {
        let fixed = ["boomi-sim", "--port", "0", "--account-id", ACCOUNT, "--email", EMAIL, "--token", TOKEN];
        SimProcess::start(&[&fixed[..], args].concat())
    }
}

/// What only the Boomi simulator answers.
impl SimProcess {
    /// `GET /__sim/state`: every user with their roles.
    fn state(&self) -> Value {
        self.json("GET", "/__sim/state")
    }

    fn login(&self, user: &str) {
        self.json("POST", &format!("/__sim/users/{user}/login"));
    }

    /// Role ids of a user's global roles (None: no such user).
    fn global_roles(&self, user: &str) -> Option<Vec<String>> {
        let state = self.state();
        let users = state["users"].as_array().unwrap();
        let found = users.iter().find(|u| u["userId"].as_str().unwrap().eq_ignore_ascii_case(user))?;
        Some(
            found["globalRoles"].as_array().unwrap().iter().map(|g| g["roleId"].as_str().unwrap().to_owned()).collect(),
        )
    }
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A process with a `boomi` connection to the simulator (token from `BOOMI_E2E_TOKEN`), a disk
/// connection `out`, and the given start and steps.
fn process(url: &str, extra: &str, start: &str, steps: &str) -> String {
    format!(
        "name: boomi-e2e\nconnections:\n  boomi:\n    type: boomi_platform\n    account_id: {ACCOUNT}\n    email: {EMAIL}\n    token: {{ env: BOOMI_E2E_TOKEN }}\n    base_url: {url}\n{extra}  out:\n    type: disk\n    directory: out\nstart:\n{start}\nsteps:\n{steps}"
    )
}

/// Everything `out` wrote, in order.
fn outputs(dir: &Dir) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir.join("out")) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
}

fn run_yaml(dir: &Dir, yaml: &str, args: &[&str], token: &str) -> Run {
    let p = dir.write("p.yaml", yaml);
    let mut all = vec!["run", "--json", p.to_str().unwrap()];
    all.extend_from_slice(args);
    stepwise_env(dir.path(), &all, &[("BOOMI_E2E_TOKEN", token)])
}

/// What one call step sent on: its document, `boomi_outcome` and `application_status_code`.
#[derive(Debug)]
struct Out {
    doc: Value,
    outcome: String,
    status: String,
}

/// Options of [`call`].
#[derive(Default)]
struct Call<'a> {
    docs: &'a [Value],
    params: &'a [(&'a str, &'a str)],
    error_response: bool,
    /// Extra connection keys (`    rate_per_second: 5\n`).
    connection: &'a str,
}

/// Runs one operation: `docs` as input documents (none: a start with one empty document) and
/// `params` as static parameters. Returns the run and what the step sent on.
fn call(sim: &SimProcess, object: &str, action: &str, c: Call<'_>) -> (Run, Vec<Out>) {
    let dir = Dir::new();
    let mut params = String::new();
    if !c.params.is_empty() {
        params.push_str("    parameters:\n");
        for (k, v) in c.params {
            params.push_str(&format!("      {k}: {{ static: {} }}\n", yaml_string(v)));
        }
    }
    let step = format!(
        "    type: connector\n    connection: boomi\n    object: {object}\n    action: {action}\n    error_response: {}\n{params}    next: wrap\n",
        c.error_response
    );
    let tail = "  wrap:\n    type: message\n    template: |-\n      '{\"doc\": '{1}', \"outcome\": \"'{2}'\", \"status\": \"'{3}'\"}'\n    parameters:\n      - { current_data: true }\n      - { document_property: boomi_outcome, default: \"\" }\n      - { document_property: application_status_code, default: \"\" }\n    next: save\n  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  done:\n    type: stop\n";
    let (start, steps) = if c.docs.is_empty() {
        (step.replace("\n    ", "\n  ").replacen("    type", "  type", 1), tail.to_owned())
    } else {
        let jq = format!("{} | .[]", Value::Array(c.docs.to_vec()));
        (
            "  type: no_data\n  next: seed\n".to_owned(),
            format!(
                "  seed:\n    type: message\n    template: \"null\"\n    next: docs\n  docs:\n    type: map\n    jq: {}\n    next: call\n  call:\n{step}{tail}",
                yaml_string(&jq)
            ),
        )
    };
    let yaml = process(&sim.url(), c.connection, &start, &steps);
    let run = run_yaml(&dir, &yaml, &["--log", "info"], TOKEN);
    let outs = outputs(&dir)
        .into_iter()
        .map(|v| Out {
            doc: v["doc"].clone(),
            outcome: v["outcome"].as_str().unwrap_or_default().to_owned(),
            status: v["status"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    (run, outs)
}

/// Runs an operation that must complete; returns its output documents.
fn ok(sim: &SimProcess, object: &str, action: &str, docs: &[Value], params: &[(&str, &str)]) -> Vec<Out> {
    let (run, out) = call(sim, object, action, Call { docs, params, ..Call::default() });
    assert_eq!(run.code, 0, "{object}.{action}: {run:?}");
    assert_eq!(run.json()["status"], "COMPLETE", "{object}.{action}: {run:?}");
    out
}

fn docs(out: &[Out]) -> Vec<&Value> {
    out.iter().map(|o| &o.doc).collect()
}

/// A seeded user whose global roles are exactly `roles` (in any order), if there is one.
fn user_with(sim: &SimProcess, pick: impl Fn(&[String]) -> bool) -> String {
    let state = sim.state();
    for u in state["users"].as_array().unwrap() {
        let roles: Vec<String> =
            u["globalRoles"].as_array().unwrap().iter().map(|g| g["roleId"].as_str().unwrap().to_owned()).collect();
        if pick(&roles) {
            return u["userId"].as_str().unwrap().to_owned();
        }
    }
    panic!("no seeded user fits");
}

#[test]
fn every_object_action_pair() {
    let sim = Sim::start(&[]);
    // role: list (with assignable) and get, by parameter and from the document.
    let roles = ok(&sim, "role", "list", &[], &[]);
    assert_eq!(roles.len(), 8);
    let legacy = roles.iter().find(|r| r.doc["id"] == LEGACY_ROLE).expect("the legacy role");
    assert_eq!(legacy.doc["assignable"], false);
    assert!(roles.iter().filter(|r| r.doc["id"] != LEGACY_ROLE).all(|r| r.doc["assignable"] == true));
    let named = ok(&sim, "role", "list", &[], &[("name", "Standard User")]);
    assert_eq!(docs(&named), vec![&roles.iter().find(|r| r.doc["id"] == STANDARD_USER).unwrap().doc]);
    let got = ok(&sim, "role", "get", &[], &[("id", SUPPORT)]);
    assert_eq!(got[0].doc["name"], "Support");
    let got = ok(&sim, "role", "get", &[json!({"@type": "Role", "id": ADMINISTRATOR, "name": "x"})], &[]);
    assert_eq!(got[0].doc["name"], "Administrator");
    assert_eq!(got[0].doc["assignable"], true);
    // account_group: list (with filters) and get.
    let groups = ok(&sim, "account_group", "list", &[], &[]);
    assert_eq!(groups.len(), 3);
    let emea = ok(&sim, "account_group", "list", &[], &[("name", "EMEA Subsidiaries"), ("defaultGroup", "false")]);
    assert_eq!(emea.len(), 1);
    let emea_id = emea[0].doc["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(&sim, "account_group", "get", &[], &[("id", &emea_id)])[0].doc["name"], "EMEA Subsidiaries");
    assert_eq!(ok(&sim, "account_group", "get", &[json!({"id": emea_id})], &[])[0].doc["id"], emea_id.as_str());
    // account_user_role: create (a new user), list, create again, delete.
    let user = "e2e.new@example.com";
    let created = ok(
        &sim,
        "account_user_role",
        "create",
        &[json!({"userId": user, "roleId": SUPPORT, "firstName": "Ee", "lastName": "New", "notifyUser": false})],
        &[],
    );
    assert_eq!(created[0].outcome, "created");
    assert_eq!(created[0].doc["userId"], user);
    assert!(created[0].doc["id"].is_string());
    let listed = ok(&sim, "account_user_role", "list", &[], &[("userId", user)]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].doc["roleId"], SUPPORT);
    let again = ok(&sim, "account_user_role", "create", &[json!({"userId": user, "roleId": SUPPORT})], &[]);
    assert_eq!(again[0].outcome, "already_existed");
    assert_eq!(again[0].doc["id"], created[0].doc["id"]);
    let both = ok(&sim, "account_user_role", "list", &[], &[("userId", user), ("roleId", SUPPORT)]);
    assert_eq!(both.len(), 1);
    ok(&sim, "account_user_role", "create", &[json!({"userId": user, "roleId": PRODUCTION_SUPPORT})], &[]);
    let deleted = ok(&sim, "account_user_role", "delete", &[json!({"userId": user, "roleId": SUPPORT})], &[]);
    assert_eq!(deleted[0].outcome, "deleted");
    assert_eq!(deleted[0].doc["deleted"], true);
    // Rule 2 under concurrency: a revoke first makes sure the user holds Standard User.
    assert_eq!(deleted[0].doc["standardUserAssigned"], true);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let roles = |sim: &SimProcess| sorted(sim.global_roles(user).unwrap());
    assert_eq!(roles(&sim), sorted(vec![PRODUCTION_SUPPORT.to_owned(), STANDARD_USER.to_owned()]));
    // A delete by id, with the record as listed; then the same again: already gone.
    let listed = ok(&sim, "account_user_role", "list", &[], &[("userId", user), ("roleId", PRODUCTION_SUPPORT)]);
    ok(&sim, "account_user_role", "create", &[json!({"userId": user, "roleId": SUPPORT})], &[]);
    let by_id = ok(&sim, "account_user_role", "delete", &[listed[0].doc.clone()], &[]);
    assert_eq!(by_id[0].outcome, "deleted");
    let gone = ok(&sim, "account_user_role", "delete", &[json!({"id": listed[0].doc["id"]})], &[]);
    assert_eq!(gone[0].outcome, "already_gone");
    assert_eq!(roles(&sim), sorted(vec![SUPPORT.to_owned(), STANDARD_USER.to_owned()]));
    // account_group_user_role: create (the user must have logged in), list, delete by fields and by id.
    sim.login(user);
    let grant = json!({"accountGroupId": emea_id, "userId": user, "roleId": PRODUCTION_SUPPORT});
    let made = ok(&sim, "account_group_user_role", "create", std::slice::from_ref(&grant), &[]);
    assert_eq!(made[0].outcome, "created");
    let again = ok(&sim, "account_group_user_role", "create", std::slice::from_ref(&grant), &[]);
    assert_eq!(again[0].outcome, "already_existed");
    let in_group = ok(&sim, "account_group_user_role", "list", &[], &[("accountGroupId", &emea_id), ("userId", user)]);
    assert_eq!(in_group.len(), 1);
    let all = ok(&sim, "account_group_user_role", "list", &[], &[]);
    assert!(all.len() > 1);
    let removed = ok(&sim, "account_group_user_role", "delete", std::slice::from_ref(&grant), &[]);
    assert_eq!(removed[0].outcome, "deleted");
    let again = ok(&sim, "account_group_user_role", "delete", std::slice::from_ref(&grant), &[]);
    assert_eq!(again[0].outcome, "already_gone");
    let made = ok(&sim, "account_group_user_role", "create", std::slice::from_ref(&grant), &[]);
    let by_id = ok(&sim, "account_group_user_role", "delete", &[made[0].doc.clone()], &[]);
    assert_eq!(by_id[0].outcome, "deleted");
    assert!(ok(&sim, "account_group_user_role", "list", &[], &[("userId", user)]).is_empty());
    // Each `ok` is a `stepwise run` of its own, and separate processes share no rate budget, so
    // back-to-back runs may be throttled (the connector waits and retries: every run above is ok).
    let stats = sim.stats();
    assert_eq!(stats["users_removed"], 0, "{stats}");
}

#[test]
fn invalid_documents_fail_the_run_before_any_request() {
    let sim = Sim::start(&[]);
    let before = sim.stats()["requests"].as_u64().unwrap();
    let docs = [
        json!({"userId": "good@example.com", "roleId": SUPPORT}),
        json!({"userId": "not-an-email", "roleId": SUPPORT}),
        json!({"userId": "good@example.com", "roleId": SUPPORT, "accountId": "other"}),
    ];
    let (run, out) = call(&sim, "account_user_role", "create", Call { docs: &docs, ..Call::default() });
    assert_eq!(run.code, 1, "{run:?}");
    let report = run.json();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("userId: format") && message.contains("no request was made"), "{message}");
    assert!(out.is_empty());
    // Lists refuse unknown filters (known from the file alone: the process is invalid, exit 2),
    // gets need an id, deletes need a grant.
    let (run, _) = call(&sim, "role", "list", Call { params: &[("id", "x")], ..Call::default() });
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("'role.list' has no parameter 'id'"), "{run:?}");
    let (run, _) = call(&sim, "account_group", "get", Call::default());
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("id: required"), "{run:?}");
    let (run, _) = call(
        &sim,
        "account_user_role",
        "delete",
        Call { docs: &[json!({"userId": "a@example.com"})], ..Call::default() },
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sim.stats()["requests"].as_u64().unwrap(), before, "a request was made: {}", sim.stats());
    // With error_response the invalid documents become error documents and the others go on.
    let (run, out) =
        call(&sim, "account_user_role", "create", Call { docs: &docs, error_response: true, ..Call::default() });
    assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
    assert_eq!(out.len(), 3);
    let bad: Vec<&Out> = out.iter().filter(|o| o.status == "validation").collect();
    assert_eq!(bad.len(), 2, "{out:?}");
    assert!(bad.iter().any(|o| o.doc["error"]["details"] == json!([{"field": "userId", "reason": "format"}])));
    assert!(
        bad.iter()
            .any(|o| o.doc["error"]["details"] == json!([{"field": "accountId", "reason": "additionalProperties"}]))
    );
    assert!(bad.iter().all(|o| o.doc["error"]["kind"] == "validation" && o.doc["error"]["step"] == "call"));
    assert_eq!(sim.calls_of("AccountUserRole.create"), 1);
}

#[test]
fn unassignable_roles_are_marked_and_never_requested() {
    let sim = Sim::start(&[]);
    let got = ok(&sim, "role", "get", &[], &[("id", LEGACY_ROLE)]);
    assert_eq!(got[0].doc["assignable"], false);
    let user = user_with(&sim, |r| r.len() == 1 && r[0] == STANDARD_USER);
    let docs = [json!({"userId": user, "roleId": LEGACY_ROLE})];
    let (run, _) = call(&sim, "account_user_role", "create", Call { docs: &docs, ..Call::default() });
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("roleId: not_assignable"), "{run:?}");
    let (run, out) =
        call(&sim, "account_user_role", "create", Call { docs: &docs, error_response: true, ..Call::default() });
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(out[0].doc["error"]["details"], json!([{"field": "roleId", "reason": "not_assignable"}]));
    let groups = ok(&sim, "account_group", "list", &[], &[]);
    let group_grant = [json!({"accountGroupId": groups[0].doc["id"], "userId": user, "roleId": LEGACY_ROLE})];
    let (run, out) = call(
        &sim,
        "account_group_user_role",
        "create",
        Call { docs: &group_grant, error_response: true, ..Call::default() },
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(out[0].status, "validation");
    let stats = sim.stats();
    assert_eq!(stats["by_operation"]["AccountUserRole.create"], Value::Null, "{stats}");
    assert_eq!(stats["by_operation"]["AccountGroupUserRole.create"], Value::Null, "{stats}");
    assert_eq!(sim.global_roles(&user), Some(vec![STANDARD_USER.to_owned()]));
}

#[test]
fn revoking_last_roles_never_removes_a_user() {
    let sim = Sim::start(&[]);
    // A user whose only global role is not Standard User: Standard User is assigned first.
    let lone = user_with(&sim, |r| r.len() == 1 && r[0] != STANDARD_USER && r[0] != LEGACY_ROLE);
    let role = sim.global_roles(&lone).unwrap()[0].clone();
    let out = ok(&sim, "account_user_role", "delete", &[json!({"userId": lone, "roleId": role})], &[]);
    assert_eq!(out[0].outcome, "deleted");
    assert_eq!(out[0].doc["standardUserAssigned"], true);
    assert_eq!(sim.global_roles(&lone), Some(vec![STANDARD_USER.to_owned()]));
    // Now Standard User is their only role: removing it is refused, naming the user, and no
    // delete is sent.
    let deletes = sim.calls_of("AccountUserRole.delete");
    let revoke = [json!({"userId": lone, "roleId": STANDARD_USER})];
    let (run, _) = call(&sim, "account_user_role", "delete", Call { docs: &revoke, ..Call::default() });
    assert_eq!(run.code, 1, "{run:?}");
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(&lone) && message.contains("validation error"), "{message}");
    let (run, out) =
        call(&sim, "account_user_role", "delete", Call { docs: &revoke, error_response: true, ..Call::default() });
    assert_eq!(run.json()["status"], "COMPLETE_WARN", "{run:?}");
    assert_eq!(out[0].doc["error"]["kind"], "validation");
    assert_eq!(out[0].doc["error"]["details"], json!([{"field": "roleId", "reason": "last_role"}]));
    assert!(out[0].doc["error"]["message"].as_str().unwrap().contains(&lone));
    assert_eq!(sim.calls_of("AccountUserRole.delete"), deletes);

    // Two roles revoked in one batch, the other role and then Standard User: with
    // error_response false the refusal is found before any change at all.
    let pair = user_with(&sim, |r| {
        r.len() == 2 && r.contains(&STANDARD_USER.to_owned()) && !r.contains(&LEGACY_ROLE.to_owned())
    });
    let other = sim.global_roles(&pair).unwrap().into_iter().find(|r| r != STANDARD_USER).unwrap();
    let batch = [json!({"userId": pair, "roleId": other}), json!({"userId": pair, "roleId": STANDARD_USER})];
    let (run, _) = call(&sim, "account_user_role", "delete", Call { docs: &batch, ..Call::default() });
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sim.calls_of("AccountUserRole.delete"), deletes, "a delete was sent before the refusal");
    assert_eq!(sim.global_roles(&pair).unwrap().len(), 2);
    // With error_response true the first is made and the second refused.
    let (run, out) =
        call(&sim, "account_user_role", "delete", Call { docs: &batch, error_response: true, ..Call::default() });
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(out[0].outcome, "deleted");
    assert_eq!(out[1].status, "validation");
    assert_eq!(sim.global_roles(&pair), Some(vec![STANDARD_USER.to_owned()]));

    // "Revoke everything": a user's grants as listed, piped into delete.
    let many = user_with(&sim, |r| r.len() == 3 && r.contains(&STANDARD_USER.to_owned()));
    let dir = Dir::new();
    let start = "  type: connector\n  connection: boomi\n  object: account_user_role\n  action: list\n  parameters:\n    userId: { static: USER }\n  next: revoke\n".replace("USER", &many);
    let steps = "  revoke:\n    type: connector\n    connection: boomi\n    object: account_user_role\n    action: delete\n    error_response: true\n    next: save\n  save:\n    type: connector\n    connection: out\n    action: send\n    next: done\n  done:\n    type: stop\n";
    let run = run_yaml(&dir, &process(&sim.url(), "", &start, steps), &[], TOKEN);
    assert_eq!(run.json()["status"], "COMPLETE", "{run:?}");
    let out = outputs(&dir);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out.iter().all(|d| d["deleted"] == true), "{out:?}");
    assert_eq!(out.iter().filter(|d| d["standardUserAssigned"] == true).count(), 1, "{out:?}");
    assert_eq!(sim.global_roles(&many), Some(vec![STANDARD_USER.to_owned()]));

    let stats = sim.stats();
    assert_eq!(stats["users_removed"], 0, "a user was removed: {stats}");
    assert_eq!(stats["users"], 30, "{stats}");
}

#[test]
fn a_non_primary_account_lists_no_groups_and_says_why() {
    let sim = Sim::start(&["--non-primary"]);
    for object in ["account_group", "account_group_user_role"] {
        let (run, out) = call(&sim, object, "list", Call::default());
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.json()["status"], "COMPLETE", "{run:?}");
        assert!(out.is_empty());
        assert!(run.stderr.contains("is not a primary account"), "{}", run.stderr);
    }
    assert_eq!(
        ok(&sim, "account_user_role", "list", &[], &[]).len() as u64,
        sim.stats()["account_user_roles"].as_u64().unwrap()
    );
}

#[test]
fn lists_read_every_page() {
    let sim = Sim::start(&["--seed-users", "200", "--rate-per-second", "0"]);
    let expected = sim.stats()["account_user_roles"].as_u64().unwrap();
    assert!(expected >= 250, "{expected}");
    let grants = ok(&sim, "account_user_role", "list", &[], &[]);
    assert_eq!(grants.len() as u64, expected);
    let ids: HashSet<&str> = grants.iter().map(|g| g.doc["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as u64, expected, "duplicates across pages");
    assert_eq!(sim.calls_of("AccountUserRole.queryMore"), expected.div_ceil(100) - 1, "{}", sim.stats());
}

#[test]
fn a_hundred_grants_at_the_default_limit_draw_no_503() {
    // The simulator enforces Boomi's 10 requests per second; the connection keeps its default.
    let sim = Sim::start(&[]);
    let grants = sim.stats()["account_user_roles"].as_u64().unwrap();
    let docs: Vec<Value> =
        (0..100).map(|i| json!({"userId": format!("bulk.user{i}@example.com"), "roleId": STANDARD_USER})).collect();
    let out = ok(&sim, "account_user_role", "create", &docs, &[]);
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|o| o.outcome == "created"));
    // Results come out in input order.
    assert_eq!(out[42].doc["userId"], "bulk.user42@example.com");
    let stats = sim.stats();
    assert_eq!(stats["throttled"], 0, "{stats}");
    assert_eq!(stats["by_operation"]["AccountUserRole.create"], 100, "{stats}");
    assert_eq!(stats["account_user_roles"].as_u64().unwrap(), grants + 100, "{stats}");
}

#[test]
fn a_slower_limit_is_kept_and_503_is_retried() {
    // The connection is told 4 per second and keeps it against a simulator allowing 4.
    let sim = Sim::start(&["--rate-per-second", "4"]);
    let docs: Vec<Value> =
        (0..12).map(|i| json!({"userId": format!("slow.user{i}@example.com"), "roleId": SUPPORT})).collect();
    let (run, out) = call(
        &sim,
        "account_user_role",
        "create",
        Call { docs: &docs, connection: "    rate_per_second: 4\n", ..Call::default() },
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(out.len(), 12);
    assert_eq!(sim.stats()["throttled"], 0, "{}", sim.stats());
    // Told 10 per second against 3 allowed, it draws 503s, backs off, and still makes every
    // grant once (one user's grants go one after another).
    let sim = Sim::start(&["--rate-per-second", "3"]);
    let user = "busy.user@example.com";
    let roles = [STANDARD_USER, SUPPORT, PRODUCTION_SUPPORT, ADMINISTRATOR];
    let docs: Vec<Value> = roles.iter().map(|r| json!({"userId": user, "roleId": r})).collect();
    let (run, out) = call(&sim, "account_user_role", "create", Call { docs: &docs, ..Call::default() });
    assert_eq!(run.code, 0, "{run:?}");
    assert!(out.iter().all(|o| o.outcome == "created"), "{out:?}");
    let stats = sim.stats();
    assert!(stats["throttled"].as_u64().unwrap() > 0, "{stats}");
    let creates = stats["by_operation"]["AccountUserRole.create"].as_u64().unwrap();
    assert_eq!(creates - stats["throttled"].as_u64().unwrap(), 4, "{stats}");
    assert_eq!(sim.global_roles(user).map(|r| r.len()), Some(4));
}

#[test]
fn injected_faults_make_no_duplicate_and_fail_no_sync_that_succeeded() {
    let sim = Sim::start(&["--fault-rate", "0.3", "--seed", "11", "--slow-ms", "300", "--rate-per-second", "0"]);
    // 30 grants to new users, 20 that exist already, 15 revokes of seeded grants.
    let mut creates: Vec<Value> =
        (0..30).map(|i| json!({"userId": format!("fault.user{i}@example.com"), "roleId": SUPPORT})).collect();
    let state = sim.state();
    let users = state["users"].as_array().unwrap();
    for u in users.iter().take(20) {
        let held = u["globalRoles"].as_array().unwrap().iter().find(|g| g["roleId"] != LEGACY_ROLE).unwrap();
        creates.push(json!({"userId": u["userId"], "roleId": held["roleId"]}));
    }
    let revokes: Vec<Value> = users
        .iter()
        .filter(|u| u["globalRoles"].as_array().unwrap().len() >= 2)
        .take(15)
        .map(|u| {
            let role = u["globalRoles"].as_array().unwrap().iter().find(|g| g["roleId"] != STANDARD_USER).unwrap();
            json!({"userId": u["userId"], "roleId": role["roleId"]})
        })
        .collect();
    assert_eq!(revokes.len(), 15);
    let grants_before = sim.stats()["account_user_roles"].as_u64().unwrap();
    // A sync is run until it reports no error (5 tries per call; a call can fail 5 times in a row).
    let mut made: HashMap<String, String> = HashMap::new();
    let mut runs = 0;
    for (object, action, docs) in [("account_user_role", "create", &creates), ("account_user_role", "delete", &revokes)]
    {
        loop {
            runs += 1;
            assert!(runs <= 8, "the sync never completed");
            let (run, out) = call(&sim, object, action, Call { docs, error_response: true, ..Call::default() });
            assert_eq!(run.code, 0, "{run:?}");
            assert_eq!(out.len(), docs.len());
            let mut failed = false;
            for o in &out {
                if o.status.is_empty() {
                    made.entry(format!("{} {}", o.doc["userId"], o.doc["roleId"])).or_insert_with(|| o.outcome.clone());
                } else {
                    let message = o.doc["error"]["message"].as_str().unwrap_or_default();
                    assert!(
                        !message.contains("already exists") && !o.status.starts_with('4'),
                        "a false failure: {o:?}"
                    );
                    failed = true;
                }
            }
            if !failed {
                break;
            }
        }
    }
    let stats = sim.stats();
    assert!(stats["faults"].as_u64().unwrap() >= 10, "{stats}");
    assert_eq!(made.values().filter(|o| *o == "already_existed").count(), 20, "{made:?}");
    // Exactly the grants asked for, each once.
    assert_eq!(stats["account_user_roles"].as_u64().unwrap(), grants_before + 30 - 15, "{stats}");
    let state = sim.state();
    for u in state["users"].as_array().unwrap() {
        let roles: Vec<&str> =
            u["globalRoles"].as_array().unwrap().iter().map(|g| g["roleId"].as_str().unwrap()).collect();
        let unique: HashSet<&&str> = roles.iter().collect();
        assert_eq!(unique.len(), roles.len(), "a duplicate grant: {u}");
    }
    for r in &revokes {
        let roles = sim.global_roles(r["userId"].as_str().unwrap()).unwrap();
        assert!(!roles.contains(&r["roleId"].as_str().unwrap().to_owned()));
    }
    assert_eq!(stats["users_removed"], 0, "{stats}");
}

#[test]
fn bad_credentials_fail_once_and_tokens_never_appear() {
    let sim = Sim::start(&[]);
    // A wrong token: HTTP 401, one request, not retried.
    let (run, _) = call(&sim, "role", "list", Call::default());
    assert_eq!(run.code, 0, "{run:?}");
    let dir = Dir::new();
    let start = "  type: connector\n  connection: boomi\n  object: role\n  action: list\n  next: done\n";
    let yaml = process(&sim.url(), "", start, "  done:\n    type: stop\n");
    let before = sim.stats();
    let wrong = "wrong-token-Zx81";
    let run = run_yaml(&dir, &yaml, &[], wrong);
    assert_eq!(run.code, 1, "{run:?}");
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("HTTP 401") && message.contains("account_id, email and token"), "{message}");
    assert!(!run.stdout.contains(wrong) && !run.stderr.contains(wrong));
    let after = sim.stats();
    assert_eq!(after["unauthorized"].as_u64().unwrap() - before["unauthorized"].as_u64().unwrap(), 1, "{after}");

    // The token, and the Basic credentials made from it, appear in no output, log or dump.
    assert_eq!(
        (base64(b"Man"), base64(b"Ma"), base64(b"BOOMI_TOKEN.a@b.co:tok")),
        ("TWFu".into(), "TWE=".into(), "Qk9PTUlfVE9LRU4uYUBiLmNvOnRvaw==".into())
    );
    let basic = base64(format!("BOOMI_TOKEN.{EMAIL}:{TOKEN}").as_bytes());
    let steps = "  create:\n    type: connector\n    connection: boomi\n    object: account_user_role\n    action: create\n    error_response: true\n    next: done\n  done:\n    type: stop\n";
    let start = "  type: connector\n  connection: boomi\n  object: account_user_role\n  action: list\n  next: pick\n";
    let steps = format!("  pick:\n    type: map\n    jq: '{{userId, roleId}}'\n    next: create\n{steps}");
    let yaml = process(&sim.url(), "", start, &steps);
    let dump = dir.join("dump");
    for level in ["debug", "trace"] {
        let _ = std::fs::remove_dir_all(&dump);
        let run = run_yaml(&dir, &yaml, &["--log", level, "--test", "--dump", dump.to_str().unwrap()], TOKEN);
        assert_eq!(run.code, 0, "{run:?}");
        for secret in [TOKEN, basic.as_str()] {
            assert!(!run.stdout.contains(secret), "a secret in stdout ({level})");
            assert!(!run.stderr.contains(secret), "a secret in stderr ({level})");
        }
        assert!(run.stderr.contains("HTTP call succeeded"), "no connector log at {level}");
        let mut files = Vec::new();
        files_under(&dump, &mut files);
        assert!(files.iter().any(|f| f.to_string_lossy().contains("connection")), "no exchange dumped: {files:?}");
        for f in &files {
            let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            for secret in [TOKEN, basic.as_str()] {
                assert!(!text.contains(secret), "a secret in {}", f.display());
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

/// Standard base64 with padding (what HTTP Basic credentials look like on the wire).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let target = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// The files a shipped process wrote under `data/boomi/<sub>` (not `.gitignore`).
fn written(root: &Path, sub: &str) -> Vec<String> {
    let dir = root.join("processes/data/boomi").join(sub);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "csv")).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
}

#[test]
fn shipped_processes_validate_and_run_in_the_sandbox() {
    let repo = repo();
    let dir = Dir::new();
    let root = dir.path();
    std::fs::create_dir_all(root.join("processes")).unwrap();
    for name in ["boomi-access-review.yaml", "boomi-access-requests.yaml", "boomi-security-training.yaml"] {
        std::fs::copy(repo.join("processes").join(name), root.join("processes").join(name)).unwrap();
    }
    copy_tree(&repo.join("processes/data/boomi"), &root.join("processes/data/boomi"));
    let files = [
        "processes/boomi-access-review.yaml",
        "processes/boomi-access-requests.yaml",
        "processes/boomi-security-training.yaml",
    ];
    let mut args = vec!["validate", "--deny-warnings"];
    args.extend(files);
    let run = stepwise_env(root, &args, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let sandbox = |file: &str| {
        let run = stepwise_env(root, &["run", "--json", "--sandbox", file], &[]);
        assert_eq!(run.code, 0, "{file}: {run:?}");
        run.json()
    };

    // 1. The access review: one CSV with every global and group grant, names resolved.
    let report = sandbox(files[0]);
    assert_eq!(report["status"], "COMPLETE", "{report}");
    let csv = written(root, "access-review");
    assert_eq!(csv.len(), 1);
    let lines: Vec<&str> = csv[0].lines().collect();
    assert_eq!(lines[0], r#""email","first name","last name","scope","group","role""#);
    // The sandbox account is seeded like a simulator with default settings and the edge cases.
    let stats = Sim::start(&["--seed-edge-cases"]).stats();
    let seeded = stats["account_user_roles"].as_u64().unwrap() + stats["account_group_user_roles"].as_u64().unwrap();
    // Records, not lines: a name may hold a newline.
    let records = csv::Reader::from_reader(csv[0].as_bytes()).records().count();
    assert_eq!(records as u64, seeded, "{}", csv[0]);
    assert!(lines.iter().any(|l| l.contains(r#""group","EMEA Subsidiaries","#)), "{}", csv[0]);
    assert!(lines.iter().any(|l| l.ends_with(r#""global","","Standard User""#)), "{}", csv[0]);
    assert!(!csv[0].contains("fcb6e2d0"), "a role id was not resolved:\n{}", csv[0]);

    // 2. Requests: applied rows, and the refused ones in a report with their reasons.
    let report = sandbox(files[1]);
    assert_eq!(report["status"], "COMPLETE_WARN", "{report}");
    let notes: Vec<&str> =
        report["notifications"].as_array().unwrap().iter().map(|n| n["message"].as_str().unwrap()).collect();
    assert_eq!(notes.iter().filter(|n| n.starts_with("applied ")).count(), 7, "{notes:?}");
    assert!(notes.contains(&"applied revoke zach.patel7@example.com Support: already_gone"), "{notes:?}");
    let refused = written(root, "request-reports");
    assert_eq!(refused.len(), 1);
    let lines: Vec<&str> = refused[0].lines().collect();
    assert_eq!(lines[0], "action,email,role,group,reason");
    assert_eq!(lines.len(), 5, "{}", refused[0]);
    assert!(refused[0].contains("no Boomi role is named 'Release Manager'"));
    assert!(refused[0].contains("roleId: not_assignable"));
    assert!(refused[0].contains("yvonne.ito9@example.com holds no global role but Standard User"));
    assert!(refused[0].contains("has not logged in yet"));

    // 3. Security training: every Boomi user exists in KnowBe4 afterwards.
    let report = sandbox(files[2]);
    assert_eq!(report["status"], "COMPLETE", "{report}");
    let step = |id: &str| report["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap().clone();
    assert_eq!(step("users")["documents_out"], 32, "{report}");
    assert_eq!(step("add_to_group")["documents_in"], 32, "{report}");
    assert_eq!(step("create_user")["documents_in"], step("log_created")["documents_in"], "{report}");
}
