//! Rate limits: per-second, per-minute and per-day windows per token, answered 429 with
//! `Retry-After`; `POST /__sim/reset-limits` clears them. No timing assertions: each test sends
//! until the window it configured refuses.

use knowbe4_sim::{SimConfig, TokenKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const QUERY: &str = "{ users(per: 25) { pagination { totalCount } } }";

fn limited(second: Option<u32>, minute: Option<u32>, day: Option<u32>) -> SimConfig {
    let mut c = config();
    c.tokens.push(("second-token".to_string(), TokenKind::ReadWrite));
    SimConfig { rate_per_second: second, rate_per_minute: minute, rate_per_day: day, ..c }
}

/// Sends until a 429 comes back (at most `max` requests); returns (admitted, the 429).
async fn until_throttled(sim: &Sim, token: &str, max: usize) -> (usize, reqwest::Response) {
    for admitted in 0..max {
        let resp = sim.post(Some(token), QUERY, json!({})).await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            return (admitted, resp);
        }
        assert_eq!(resp.status(), StatusCode::OK);
    }
    panic!("no 429 within {max} requests");
}

/// The `Retry-After` of a 429 (absent for the daily quota, as KnowBe4's) and checks its body.
async fn check_429(resp: reqwest::Response, window: &str) -> Option<u64> {
    assert_eq!(resp.headers()["x-sim-rate-limit"], window);
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "message": "Too many requests" }));
    retry
}

#[test]
fn defaults_are_knowbe4_limits() {
    let c = SimConfig::default();
    assert_eq!(c.rate_per_second, Some(4));
    assert_eq!(c.rate_per_minute, Some(50));
    assert_eq!(c.rate_per_day, Some(2000 + 50));
    assert_eq!(c.bulk_timeout_size, 95);
    assert_eq!(c.bind.to_string(), "127.0.0.1");
}

#[tokio::test]
async fn per_second_limit() {
    let sim = Sim::start(limited(Some(1), None, None)).await;
    let (admitted, resp) = until_throttled(&sim, TOKEN, 50).await;
    assert!(admitted >= 1);
    assert_eq!(check_429(resp, "second").await, Some(1));
    assert!(sim.stats().await["throttled"].as_u64().unwrap() >= 1);
    let reset = sim.client.post(sim.url("/__sim/reset-limits")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let after = sim.post(Some(TOKEN), QUERY, json!({})).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK, "reset-limits clears the windows");
}

#[tokio::test]
async fn per_minute_limit_is_per_token() {
    let sim = Sim::start(limited(None, Some(3), None)).await;
    let (admitted, resp) = until_throttled(&sim, TOKEN, 10).await;
    assert_eq!(admitted, 3);
    let retry = check_429(resp, "minute").await.expect("a burst 429 says when to retry");
    assert!((1..=60).contains(&retry), "{retry}");
    let other = sim.post(Some("second-token"), QUERY, json!({})).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK, "another token has its own windows");
    let rest = sim.client.get(sim.url("/v1/users")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(rest.status(), StatusCode::TOO_MANY_REQUESTS, "REST and GraphQL share the windows");
    let stats = sim.client.get(sim.url("/__sim/stats")).send().await.unwrap();
    assert_eq!(stats.status(), StatusCode::OK, "stats are never limited");
}

#[tokio::test]
async fn per_day_limit() {
    let sim = Sim::start(limited(None, None, Some(2))).await;
    let (admitted, resp) = until_throttled(&sim, TOKEN, 10).await;
    assert_eq!(admitted, 2);
    assert_eq!(check_429(resp, "day").await, None, "the daily quota's 429 has no Retry-After");
    let stats = sim.stats().await;
    assert_eq!(stats["throttled"], json!(1));
    assert_eq!(stats["requests"], json!(3));
}
