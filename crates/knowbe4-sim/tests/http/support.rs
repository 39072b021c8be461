//! Test support: start a simulator, send GraphQL and REST requests, read stats.

use knowbe4_sim::{SimConfig, SimHandle, TokenKind, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const TOKEN: &str = "sandbox-token";
pub const PARTNER: &str = "sandbox-partner-token";
pub const READ_ONLY: &str = "read-only-token";

/// A running simulator and a client for it.
pub struct Sim {
    pub handle: SimHandle,
    pub client: reqwest::Client,
}

/// A test configuration: loopback, any port, no limits, the three kinds of tokens.
pub fn config() -> SimConfig {
    SimConfig {
        port: 0,
        tokens: vec![
            (TOKEN.to_string(), TokenKind::ReadWrite),
            (PARTNER.to_string(), TokenKind::Partner),
            (READ_ONLY.to_string(), TokenKind::ReadOnly),
        ],
        ..SimConfig::default()
    }
    .without_limits()
}

impl Sim {
    pub async fn start(config: SimConfig) -> Sim {
        let handle = start(config).await.expect("simulator starts");
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        Sim { handle, client }
    }

    pub async fn default() -> Sim {
        Sim::start(config()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// Posts a GraphQL request with `token` (or none) and returns the raw response.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> reqwest::Result<reqwest::Response> {
        let mut req = self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await
    }

    /// GraphQL with `token`: asserts HTTP 200 and returns the JSON body.
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let resp = self.post(Some(token), query, variables).await.expect("request sent");
        assert_eq!(resp.status(), StatusCode::OK, "GraphQL answers 200");
        resp.json().await.expect("JSON body")
    }

    /// GraphQL with the read/write token: asserts HTTP 200 and no top-level errors; returns `data`.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let body = self.gql_as(TOKEN, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected GraphQL errors: {body}");
        body["data"].clone()
    }

    /// A REST GET with the read/write token.
    pub async fn rest(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.client.get(self.url(path)).bearer_auth(TOKEN).send().await.expect("request sent");
        let status = resp.status();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// `GET /__sim/stats` over HTTP.
    pub async fn stats(&self) -> Value {
        let resp = self.client.get(self.url("/__sim/stats")).send().await.expect("stats");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("stats JSON")
    }
}

/// The payload `errors[*].reason` values.
pub fn reasons(payload: &Value) -> Vec<String> {
    payload["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["reason"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The first top-level GraphQL error message.
pub fn error_message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_string()
}

/// Ids of all users with a status filter (ACTIVE / ARCHIVED / ALL).
pub async fn user_ids(sim: &Sim, status: &str) -> Vec<i64> {
    let data = sim
        .gql("query($s: UserStatusFilters) { users(per: 1000, status: $s) { nodes { id } } }", json!({ "s": status }))
        .await;
    data["users"]["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_i64()).collect()
}

/// Groups as `(id, name, groupType, status)`.
pub async fn groups(sim: &Sim) -> Vec<(i64, String, String, String)> {
    let data = sim.gql("{ groups(per: 1000, status: ALL) { nodes { id name groupType status } } }", json!({})).await;
    data["groups"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|g| {
            (
                g["id"].as_i64().unwrap_or_default(),
                g["name"].as_str().unwrap_or_default().to_string(),
                g["groupType"].as_str().unwrap_or_default().to_string(),
                g["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The id of the first active group of a type.
pub async fn group_of_type(sim: &Sim, ty: &str) -> i64 {
    groups(sim).await.into_iter().find(|g| g.2 == ty && g.3 == "ACTIVE").map(|g| g.0).expect("a group of that type")
}

/// A user's group ids.
pub async fn group_ids_of(sim: &Sim, user: i64) -> Vec<i64> {
    let data = sim.gql("query($id: Int!) { user(id: $id) { groupIds } }", json!({ "id": user })).await;
    data["user"]["groupIds"].as_array().expect("groupIds").iter().filter_map(Value::as_i64).collect()
}
