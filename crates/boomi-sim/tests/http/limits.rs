//! The rate limit, seeded fault injection and the stats counters.

use boomi_sim::{STANDARD_USER_ROLE_ID, SimConfig};
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use crate::common::{Sim, sim, sim_with};

#[tokio::test]
async fn over_the_rate_limit_answers_503_and_counts_throttled() {
    let s = sim_with(SimConfig { rate_per_second: Some(3), seed_users: 3, ..SimConfig::default() }).await;
    let mut set = JoinSet::new();
    for _ in 0..30 {
        let req = s
            .authed(s.http.post(s.url("Role/query")))
            .header("Content-Type", "application/json")
            .json(&json!({ "QueryFilter": {} }));
        set.spawn(async move {
            let resp = req.send().await.expect("answered");
            let status = resp.status();
            let reason = resp.headers().get("x-sim-reason").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, reason, body)
        });
    }
    let mut ok = 0;
    let mut throttled = 0;
    while let Some(done) = set.join_next().await {
        let (status, reason, body) = done.expect("task");
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                throttled += 1;
                assert_eq!(reason.as_deref(), Some("throttled"));
                assert!(body["message"].as_str().unwrap_or_default().contains("rate limits"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 3, "{ok} admitted");
    assert!(throttled > 0, "30 requests at once exceed 3 per second");
    assert_eq!(s.stat("throttled"), throttled);
    assert_eq!(s.stat("requests"), 30);
    assert_eq!(s.op_count("Role.query"), 30);
}

/// What a client saw: a status, or "dropped" when the connection closed without an answer.
async fn outcomes(seed: u64) -> (Vec<String>, u64) {
    let config =
        SimConfig { seed, seed_users: 5, rate_per_second: None, fault_rate: 0.4, slow_ms: 5, ..SimConfig::default() };
    let mut s = sim_with(config).await;
    // No pooled connections: a dropped connection never affects the next request.
    s.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let mut seen = Vec::new();
    for _ in 0..40 {
        let req = s
            .authed(s.http.post(s.url("Role/query")))
            .header("Content-Type", "application/json")
            .json(&json!({ "QueryFilter": {} }));
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    assert!(body["error"]["message"].is_string());
                }
                seen.push(status.as_u16().to_string());
            }
            Err(_) => seen.push("dropped".to_string()),
        }
    }
    let faults = s.stat("faults");
    (seen, faults)
}

#[tokio::test]
async fn faults_are_deterministic_under_a_seed() {
    let (a, faults_a) = outcomes(7).await;
    let (b, faults_b) = outcomes(7).await;
    assert_eq!(a, b);
    assert_eq!(faults_a, faults_b);
    assert!(faults_a > 0);
    for kind in ["500", "503"] {
        assert!(a.iter().any(|o| o == kind), "{kind} in {a:?}");
    }
    assert!(a.iter().any(|o| o == "dropped"), "{a:?}");
    assert!(a.iter().any(|o| o == "200"), "{a:?}");
    let failures = a.iter().filter(|o| *o != "200").count() as u64;
    assert!(failures <= faults_a, "slow answers are faults that still succeed");
    let (c, _) = outcomes(8).await;
    assert_ne!(a, c, "another seed, another sequence");
}

#[tokio::test]
async fn stats_count_operations_and_effects() {
    let s: Sim = sim(4).await;
    let q = s.query("AccountUserRole", None).await;
    assert_eq!(q.status, StatusCode::OK);
    s.query("Role", None).await;
    let a = s.grant("x1@example.com", STANDARD_USER_ROLE_ID).await;
    let id = a.body["id"].as_str().unwrap_or_default().to_string();
    s.delete(&format!("AccountUserRole/{id}")).await;
    s.post_text("AccountUserRole/queryMore", "nope").await;
    let stats = s.handle.stats();
    assert_eq!(stats["requests"], 5);
    assert_eq!(stats["by_operation"]["AccountUserRole.query"], 1);
    assert_eq!(stats["by_operation"]["Role.query"], 1);
    assert_eq!(stats["by_operation"]["AccountUserRole.create"], 1);
    assert_eq!(stats["by_operation"]["AccountUserRole.delete"], 1);
    assert_eq!(stats["by_operation"]["AccountUserRole.queryMore"], 1);
    assert_eq!(stats["invitations"], 1);
    assert_eq!(stats["users_removed"], 1);
    assert_eq!(stats["users"], 4);
    assert_eq!(stats["throttled"], 0);
    assert_eq!(stats["faults"], 0);
}
