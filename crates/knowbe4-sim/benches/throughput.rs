//! Throughput of the simulator with every limit off: two concurrent clients send a mix of small
//! GraphQL queries, a mutation, and REST reads for a few seconds over loopback, then the
//! requests per second are printed. Run with `cargo bench -p knowbe4-sim`; set
//! `KNOWBE4_SIM_BENCH_SECS` to change the duration (default 5, at most 60).

use std::time::{Duration, Instant};

use knowbe4_sim::{SimConfig, start};
use serde_json::json;

const CLIENTS: usize = 2;
const MAX_REQUESTS: u64 = 2_000_000;

fn main() {
    let secs: u64 = std::env::var("KNOWBE4_SIM_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).clamp(1, 60);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(Duration::from_secs(secs)));
}

async fn run(duration: Duration) {
    let config = SimConfig { port: 0, ..SimConfig::default() }.without_limits();
    let sim = start(config).await.expect("simulator starts");
    let base = sim.base_url();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_no in 0..CLIENTS {
        let base = base.clone();
        tasks.push(tokio::spawn(async move { client(client_no, &base, deadline).await }));
    }
    let mut total = 0u64;
    let mut failures = 0u64;
    for t in tasks {
        let (ok, failed) = t.await.expect("client task");
        total += ok;
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rps = total as f64 / elapsed;
    println!(
        "knowbe4-sim throughput: {rps:.0} requests/s ({total} requests, {CLIENTS} concurrent clients, {elapsed:.1} s, limits off, {failures} failures)"
    );
    let stats = sim.stats();
    println!("by operation: {}", stats["by_operation"]);
    sim.shutdown().await;
}

/// One client: sends requests back to back until the deadline; returns (answered 200, other).
async fn client(client_no: usize, base: &str, deadline: Instant) -> (u64, u64) {
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let graphql = format!("{base}/graphql");
    let queries = [
        json!({ "query": "query($page: Int) { users(per: 25, page: $page) { nodes { id email firstName lastName archived groupIds } pagination { page pages totalCount } } }", "variables": { "page": 1 } }),
        json!({ "query": "query($id: Int!) { user(id: $id) { id email firstName lastName jobTitle archived groups { id name } } }", "variables": { "id": 10_002 } }),
        json!({ "query": "{ groups(per: 25) { nodes { id name groupType memberCount } } }" }),
        json!({ "query": "mutation($id: Int!, $a: UserAttributes!) { userEdit(userId: $id, attributes: $a) { node { id } errors { reason } } }", "variables": { "id": 10_003, "a": { "customField1": format!("client {client_no}") } } }),
    ];
    let rest = format!("{base}/v1/users?per_page=25");
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut i = 0usize;
    while Instant::now() < deadline && ok + failed < MAX_REQUESTS {
        let req = if i % 5 == 4 {
            http.get(&rest).bearer_auth("sandbox-token")
        } else {
            http.post(&graphql).bearer_auth("sandbox-token").json(&queries[i % 5])
        };
        i += 1;
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                let _ = resp.bytes().await;
                ok += 1;
            }
            _ => failed += 1,
        }
    }
    (ok, failed)
}
