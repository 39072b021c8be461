//! Fault injection: 500, 503, slow, dropped connections and truncated bodies, chosen by a seeded
//! RNG so the same seed and request sequence give the same faults.

use knowbe4_sim::SimConfig;
use serde_json::{Value, json};

use crate::support::*;

/// What one request saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    Status(u16),
    Dropped,
    Malformed,
}

async fn outcome(sim: &Sim) -> Outcome {
    match sim.post(Some(TOKEN), "{ users(per: 25) { nodes { id } } }", json!({})).await {
        Err(_) => Outcome::Dropped,
        Ok(resp) if resp.status() != 200 => Outcome::Status(resp.status().as_u16()),
        Ok(resp) => {
            let bytes = resp.bytes().await.unwrap_or_default();
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if v["data"]["users"]["nodes"].is_array() => Outcome::Ok,
                _ => Outcome::Malformed,
            }
        }
    }
}

async fn run(seed: u64, rate: f64, n: usize) -> (Vec<Outcome>, Value) {
    let sim = Sim::start(SimConfig { seed, fault_rate: rate, slow_ms: 5, ..config() }).await;
    let mut outcomes = Vec::new();
    for _ in 0..n {
        outcomes.push(outcome(&sim).await);
    }
    (outcomes, sim.stats().await)
}

#[tokio::test]
async fn every_fault_kind_is_injected() {
    let (outcomes, stats) = run(7, 1.0, 40).await;
    for expected in [Outcome::Status(500), Outcome::Status(503), Outcome::Dropped, Outcome::Malformed] {
        assert!(outcomes.contains(&expected), "{expected:?} missing from {outcomes:?}");
    }
    let kinds = &stats["faults_by_kind"];
    assert!(kinds["slow"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["faults"], json!(40), "every request was faulted");
    // A slow fault answers normally after the delay.
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Ok).count() as u64, kinds["slow"].as_u64().unwrap());
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Dropped).count() as u64, kinds["drop"].as_u64().unwrap());
    assert_eq!(stats["requests"], json!(40), "dropped requests count too");
}

#[tokio::test]
async fn faults_are_deterministic_under_a_seed() {
    let (a, stats_a) = run(42, 0.5, 30).await;
    let (b, stats_b) = run(42, 0.5, 30).await;
    assert_eq!(a, b, "same seed, same faults");
    assert_eq!(stats_a["faults_by_kind"], stats_b["faults_by_kind"]);
    let faulted = a.iter().filter(|o| **o != Outcome::Ok).count();
    assert!(faulted > 0 && faulted < 30, "{a:?}");
    let (c, _) = run(43, 0.5, 30).await;
    assert_ne!(a, c, "another seed, other faults");
}

#[tokio::test]
async fn no_faults_at_rate_zero() {
    let (outcomes, stats) = run(7, 0.0, 10).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Ok));
    assert_eq!(stats["faults"], json!(0));
}

#[tokio::test]
async fn invalid_fault_rate_is_refused() {
    let err = knowbe4_sim::start(SimConfig { fault_rate: 1.5, ..config() }).await.err();
    assert!(matches!(err, Some(knowbe4_sim::SimError::Config(_))));
}

#[tokio::test]
async fn a_scripted_fault_after_the_commit_is_counted_once() {
    let rule: sim_net::ScriptedFault = "users:1:after-503".parse().unwrap();
    let sim = Sim::start(SimConfig { fault_script: vec![rule], ..config() }).await;
    assert_eq!(outcome(&sim).await, Outcome::Status(503));
    assert_eq!(outcome(&sim).await, Outcome::Ok);
    let stats = sim.stats().await;
    assert_eq!(stats["faults"], json!(1), "{stats}");
    assert_eq!(stats["faults_by_kind"], json!({"503": 1}), "{stats}");
}
