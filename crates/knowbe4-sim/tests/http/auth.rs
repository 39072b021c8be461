//! Bearer-token auth: missing or wrong tokens get 401, read-only tokens cannot mutate, partner
//! and KSAT tokens each reach only their own API; GraphQL-level errors keep HTTP 200.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const USERS: &str = "{ users { nodes { id } } }";

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let sim = Sim::default().await;
    let none = sim.post(None, USERS, json!({})).await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert!(none.headers()["x-request-id"].to_str().unwrap().starts_with("sim-"));
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["message"], json!("Unauthorized"));
    let wrong = sim.post(Some("not-a-token"), USERS, json!({})).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = sim
        .client
        .post(sim.url("/graphql"))
        .header("authorization", format!("Basic {TOKEN}"))
        .json(&json!({ "query": USERS }))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED, "only the Bearer scheme is accepted");
    let rest = sim.client.get(sim.url("/v1/users")).send().await.unwrap();
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED);
    let lower = sim
        .client
        .post(sim.url("/graphql"))
        .header("authorization", format!("bearer {TOKEN}"))
        .json(&json!({ "query": USERS }))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK, "the scheme is case-insensitive");
    assert_eq!(sim.stats().await["unauthorized"], json!(4));
}

#[tokio::test]
async fn read_only_token_reads_but_cannot_mutate() {
    let sim = Sim::default().await;
    let read = sim.gql_as(READ_ONLY, USERS, json!({})).await;
    assert!(read.get("errors").is_none());
    let body = sim
        .gql_as(
            READ_ONLY,
            "mutation { groupCreate(attributes: { name: \"Nope\" }) { node { id } errors { reason } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"], json!(null));
    assert_eq!(body["errors"][0]["extensions"]["code"], json!("FORBIDDEN"));
    assert!(error_message(&body).contains("Read Only"));
    assert!(groups(&sim).await.iter().all(|g| g.1 != "Nope"), "nothing was created");
    let (status, _) = {
        let resp = sim.client.get(sim.url("/v1/users")).bearer_auth(READ_ONLY).send().await.unwrap();
        (resp.status(), ())
    };
    assert_eq!(status, StatusCode::OK, "read-only tokens read the Reporting API");
}

#[tokio::test]
async fn partner_and_ksat_tokens_stay_in_their_api() {
    let sim = Sim::default().await;
    let ksat_accounts = sim.gql_as(TOKEN, "{ accounts(per: 25, page: 1) { nodes { id } } }", json!({})).await;
    assert_eq!(ksat_accounts["errors"][0]["extensions"]["code"], json!("FORBIDDEN"));
    assert!(error_message(&ksat_accounts).contains("partner"));
    let partner_users = sim.gql_as(PARTNER, USERS, json!({})).await;
    assert_eq!(partner_users["errors"][0]["extensions"]["code"], json!("FORBIDDEN"));
    let partner_mutation =
        sim.gql_as(PARTNER, "mutation { userArchive(userIds: [1]) { errors { reason } } }", json!({})).await;
    assert_eq!(partner_mutation["errors"][0]["extensions"]["code"], json!("FORBIDDEN"));
    let rest = sim.client.get(sim.url("/v1/users")).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(rest.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn graphql_errors_answer_200_and_bad_bodies_400() {
    let sim = Sim::default().await;
    let unknown_field = sim.gql_as(TOKEN, "{ users { nodes { noSuchField } } }", json!({})).await;
    assert!(error_message(&unknown_field).contains("noSuchField"));
    let syntax = sim.gql_as(TOKEN, "{ users { nodes { id }", json!({})).await;
    assert!(syntax["errors"].is_array());
    let bad_enum = sim.gql_as(TOKEN, "{ users(status: SLEEPING) { nodes { id } } }", json!({})).await;
    assert!(bad_enum["errors"].is_array());
    let not_json = sim
        .client
        .post(sim.url("/graphql"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_json.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn queries_over_the_complexity_cap_are_refused() {
    let sim = Sim::default().await;
    // One aliased block: enrollments, nodes, id, pagination, totalCount = 5 points.
    let block = |i: usize| format!("a{i}: enrollments(per: 25) {{ nodes {{ id }} pagination {{ totalCount }} }}");
    let query = |n: usize| format!("{{ {} }}", (0..n).map(block).collect::<Vec<_>>().join(" "));
    let within = sim.gql(&query(30), json!({})).await;
    assert!(within["errors"].is_null(), "150 points are allowed: {within}");
    let over = sim.gql_as(TOKEN, &query(31), json!({})).await;
    assert!(error_message(&over).contains("complex"), "{over}");
    assert!(over["data"].is_null(), "{over}");
}

/// A writer into a shared buffer, for capturing logs.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn requests_are_logged_without_tokens() {
    // The global subscriber (this is the only test that sets one) also sees the other tests'
    // requests, which makes the no-token check stronger.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    let sim = Sim::default().await;
    sim.gql(USERS, json!({})).await;
    let _ = sim.post(Some("wrong-secret-token"), USERS, json!({})).await.unwrap();
    sim.rest("/v1/groups").await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("path=\"/graphql\"") || logs.contains("path=/graphql"), "{logs}");
    assert!(logs.contains("operation=users"), "{logs}");
    assert!(logs.contains("GET /v1/groups"), "{logs}");
    assert!(logs.contains("status=401"), "{logs}");
    for secret in [TOKEN, "wrong-secret-token"] {
        assert!(!logs.contains(secret), "a token leaked into the logs: {logs}");
    }
}
