//! A 5,000-user membership sync against the KnowBe4 simulator with KnowBe4's real limits
//! (4 requests per second, 50 per rolling minute), through the whole stack: compiler, engine,
//! connector, real HTTP on loopback.
//!
//! Scenario: list the ACTIVE users (5 pages of 1,000), map each to
//! `{"userIds": [id], "groupIds": [2001]}`, and add them to the group with
//! `group_membership add`, which batches 50 users per call (100 calls). The minimum is
//! `ceil(5000/1000) + ceil(5000/50) = 105` calls; the floor is the earliest time the limits let
//! the 105th call start (a request log where call k starts at
//! `max(t[k-4] + 1 s, t[k-50] + 60 s)`), 121 s. Reported: wall time / floor, calls made /
//! minimum, and 429s drawn.
//!
//! Run: `cargo bench -p knowbe4 --bench sync` (about 2 minutes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use knowbe4_sim::{SimConfig, TokenKind};
use serde_json::{Value, json};

const USERS: usize = 5000;
const BENCH_TOKEN: &str = "bench-token";
const SETUP_TOKEN: &str = "bench-setup-token";

/// Earliest start of the last of `calls` calls under `per_second` and `per_minute` windows.
fn floor(calls: usize, per_second: usize, per_minute: usize) -> Duration {
    let mut t: Vec<f64> = Vec::with_capacity(calls);
    for k in 0..calls {
        let mut at: f64 = 0.0;
        if k >= per_second {
            at = at.max(t[k - per_second] + 1.0);
        }
        if k >= per_minute {
            at = at.max(t[k - per_minute] + 60.0);
        }
        t.push(at);
    }
    Duration::from_secs_f64(t.last().copied().unwrap_or(0.0))
}

/// The ids of the ACTIVE users, read with the setup token (its own limit budget).
async fn active_ids(url: &str) -> Vec<i64> {
    let client = connector_http::shared_client().expect("client");
    let mut ids = Vec::new();
    for page in 1.. {
        let body = json!({
            "query": "query($page: Int!) { users(page: $page, per: 1000, status: ACTIVE) { nodes { id } pagination { pages } } }",
            "variables": { "page": page },
        });
        let resp: Value = loop {
            let r = client
                .post(format!("{url}/graphql"))
                .bearer_auth(SETUP_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("setup query");
            if r.status().as_u16() == 429 {
                // The setup token has its own budget; wait it out.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break r.json().await.expect("setup answer");
        };
        let nodes = resp.pointer("/data/users/nodes").and_then(Value::as_array).cloned().unwrap_or_default();
        ids.extend(nodes.iter().filter_map(|n| n.get("id").and_then(Value::as_i64)));
        let pages = resp.pointer("/data/users/pagination/pages").and_then(Value::as_i64).unwrap_or(0);
        if page >= pages {
            break;
        }
    }
    ids
}

fn config(seed_users: usize) -> SimConfig {
    let mut c = SimConfig { seed_users, ..SimConfig::default() };
    c.tokens = vec![(BENCH_TOKEN.to_owned(), TokenKind::ReadWrite), (SETUP_TOKEN.to_owned(), TokenKind::ReadOnly)];
    c
}

fn count(stats: &Value, op: &str) -> u64 {
    stats["by_operation"][op].as_u64().unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os(knowbe4::RATE_ENV).is_some() {
        eprintln!("unset {} to measure KnowBe4's real limits", knowbe4::RATE_ENV);
        std::process::exit(2);
    }
    // Seeded users are a prefix-stable sequence (about 10% archived): find the seed size that
    // gives exactly USERS active users.
    let probe = knowbe4_sim::start(config(USERS * 12 / 10).without_limits()).await.expect("simulator");
    let ids = active_ids(&probe.base_url()).await;
    probe.shutdown().await;
    let last = *ids.get(USERS - 1).expect("enough active users");
    let seed_users = usize::try_from(last - 10_000).expect("seeded ids start at 10001");

    let sim = knowbe4_sim::start(config(seed_users)).await.expect("simulator");
    let url = sim.base_url();
    assert_eq!(active_ids(&url).await.len(), USERS);

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), BENCH_TOKEN).expect("token file");
    let yaml = format!(
        "name: membership-sync
connections:
  kb4:
    type: knowbe4
    region: us
    token: {{ file: token }}
    base_url: {url}
start:
  type: connector
  connection: kb4
  object: user
  action: list
  parameters:
    status: {{ static: ACTIVE }}
  next: to_membership
steps:
  to_membership:
    type: map
    jq: '{{userIds: [.id], groupIds: [2001]}}'
    next: add
  add:
    type: connector
    connection: kb4
    object: group_membership
    action: add
"
    );
    let mut registry = engine::Registry::with_builtins();
    registry.register(Arc::new(knowbe4::KnowBe4Factory));
    let compiled = compiler::compile(yaml.as_bytes(), &registry);
    let Some(plan) = compiled.plan else {
        panic!("bench process is invalid: {:?}", compiled.diagnostics);
    };
    let before = sim.stats();
    let options = engine::RunOptions {
        run_id: "bench-sync".to_owned(),
        overrides: Vec::new(),
        env: engine::ConnectEnv { base_dir: dir.path().to_owned(), ..engine::ConnectEnv::default() },
        recorder: None,
        abort: None,
        start_document: None,
        progress: None,
    };
    let started = Instant::now();
    let report = engine::run(&plan, &registry, options).await;
    let wall = started.elapsed();
    let after = sim.stats();
    sim.shutdown().await;

    assert_eq!(report.status, engine::RunStatus::Complete, "{:?}", report.error);
    let listed = report.steps.first().map(|s| s.documents_out).unwrap_or(0);
    assert_eq!(listed, USERS as u64);
    let pages = count(&after, "users") - count(&before, "users");
    let bulk = count(&after, "userAddToGroups") - count(&before, "userAddToGroups");
    let calls = after["requests"].as_u64().unwrap_or(0) - before["requests"].as_u64().unwrap_or(0);
    let throttled = after["throttled"].as_u64().unwrap_or(0) - before["throttled"].as_u64().unwrap_or(0);
    let min_calls = USERS.div_ceil(1000) + USERS.div_ceil(knowbe4::BULK_SIZE);
    let floor = floor(min_calls, 4, 50);
    println!("KnowBe4 membership sync of {USERS} active users (seed {seed_users} users), limits 4/s and 50/min");
    println!(
        "calls: {calls} made ({pages} list pages + {bulk} bulk adds) / {min_calls} minimum = {:.3}",
        calls as f64 / min_calls as f64
    );
    println!("429s: {throttled}");
    println!(
        "wall: {:.2} s / floor {:.2} s = {:.4}",
        wall.as_secs_f64(),
        floor.as_secs_f64(),
        wall.as_secs_f64() / floor.as_secs_f64()
    );
}
