//! `GET /__sim/stats`: request counters by operation, object counts, and the in-process view.

use clap::Parser;
use knowbe4_sim::{Args, TokenKind};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn stats_count_operations_and_objects() {
    let sim = Sim::default().await;
    let empty = sim.stats().await;
    assert_eq!(empty["requests"], json!(0));
    assert_eq!(empty["objects"]["users"], json!(50));
    assert_eq!(empty["objects"]["groups"], json!(5));
    assert_eq!(empty["objects"]["training_campaigns"], json!(3));
    assert_eq!(empty["objects"]["phishing_campaigns"], json!(3));
    assert_eq!(empty["objects"]["accounts"], json!(5));

    sim.gql("{ users { nodes { id } } a: groups { nodes { id } } b: groups { nodes { id } } }", json!({})).await;
    sim.gql(
        "mutation Make($e: String!) { userCreate(email: $e) { node { id } } }",
        json!({ "e": "counted@example.com" }),
    )
    .await;
    sim.gql("query Named { ...Root } fragment Root on Query { account { id } }", json!({})).await;
    sim.rest("/v1/users").await;
    sim.rest("/v1/groups/2001/members").await;
    let _ = sim.post(None, "{ users { nodes { id } } }", json!({})).await.unwrap();

    let stats = sim.stats().await;
    assert_eq!(stats["requests"], json!(6), "stats requests themselves are not counted");
    let by_op = &stats["by_operation"];
    assert_eq!(by_op["users"], json!(2), "the unauthorized one counts too");
    assert_eq!(by_op["groups"], json!(2), "each root field occurrence counts");
    assert_eq!(by_op["userCreate"], json!(1));
    assert_eq!(by_op["account"], json!(1), "fragments are followed");
    assert_eq!(by_op["GET /v1/users"], json!(1));
    assert_eq!(by_op["GET /v1/groups/{id}/members"], json!(1));
    assert_eq!(by_op.get("userArchive"), None, "what was not sent is absent");
    assert_eq!(stats["unauthorized"], json!(1));
    assert_eq!(stats["throttled"], json!(0));
    assert_eq!(stats["objects"]["users"], json!(51));
    assert_eq!(sim.handle.stats(), stats, "the in-process view is the same JSON");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = Sim::default().await;
    let url = sim.url("/__sim/stats");
    let client = sim.client.clone();
    assert!(client.get(&url).send().await.is_ok());
    sim.handle.shutdown().await;
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(fresh.get(&url).send().await.is_err(), "nothing listens after shutdown");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

#[test]
fn cli_arguments_build_the_config() {
    let cli = Cli::try_parse_from([
        "knowbe4-sim",
        "--port",
        "0",
        "--seed",
        "9",
        "--seed-users",
        "12",
        "--rate-per-second",
        "2",
        "--rate-per-minute",
        "20",
        "--fault-rate",
        "0.25",
        "--token",
        "rw",
        "--token-read-only",
        "ro",
        "--partner-token",
        "pt",
        "--bulk-timeout-size",
        "50",
        "--latency-ms",
        "3",
    ])
    .unwrap();
    let c = cli.args.to_config();
    assert_eq!(c.port, 0);
    assert_eq!(c.seed, 9);
    assert_eq!(c.seed_users, 12);
    assert_eq!((c.rate_per_second, c.rate_per_minute, c.rate_per_day), (Some(2), Some(20), Some(2012)));
    assert_eq!(c.fault_rate, 0.25);
    assert_eq!(c.bulk_timeout_size, 50);
    assert_eq!(c.latency_ms, 3);
    assert_eq!(
        c.tokens,
        vec![
            ("rw".to_string(), TokenKind::ReadWrite),
            ("ro".to_string(), TokenKind::ReadOnly),
            ("pt".to_string(), TokenKind::Partner)
        ]
    );
    let defaults = Cli::try_parse_from(["knowbe4-sim", "--no-limits"]).unwrap().args.to_config();
    assert_eq!(defaults.port, 8787);
    assert_eq!(defaults.bind.to_string(), "127.0.0.1");
    assert_eq!((defaults.rate_per_second, defaults.rate_per_minute, defaults.rate_per_day), (None, None, None));
    assert_eq!(defaults.tokens.len(), 2, "the sandbox tokens");
}
