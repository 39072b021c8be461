//! A Microsoft Graph simulator for tests, `--sandbox` and demos, speaking Graph as Microsoft
//! documents it:
//!
//! - `POST /{tenant}/oauth2/v2.0/token` (form-encoded `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope`): `{"token_type": "Bearer", "expires_in": ...,
//!   "ext_expires_in": ..., "access_token": ...}`, or 400/401 `{"error": "invalid_client",
//!   "error_description": "AADSTS7000215: ..."}`.
//! - `GET /v1.0/users` and `GET /v1.0/groups/{id}/members` with `$select` and `$top` (1 to
//!   999, default 100), paged with `@odata.nextLink` (a `$skiptoken`); 404
//!   `Request_ResourceNotFound` for an unknown group.
//! - 401 `InvalidAuthenticationToken` for a missing, unknown or expired token; 429
//!   `TooManyRequests` with `Retry-After` every `throttle_every` API requests.
//! - `GET /__sim/stats`: request counters.
//!
//! Data is seeded (`sim_net::seed`), so runs are reproducible.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

pub use sim_net::SimError;

/// One seeded user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub mail: String,
    pub given_name: String,
    pub surname: String,
}

impl User {
    fn json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.user",
            "id": self.id,
            "businessPhones": [],
            "displayName": format!("{} {}", self.given_name, self.surname),
            "givenName": self.given_name,
            "jobTitle": null,
            "mail": if self.mail.is_empty() { Value::Null } else { Value::String(self.mail.clone()) },
            "mobilePhone": null,
            "officeLocation": null,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "userPrincipalName": self.mail,
        })
    }
}

/// What the simulator holds and accepts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub addr: SocketAddr,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// Seconds an access token lives (Graph: about an hour).
    pub token_lifetime: u64,
    pub users: Vec<User>,
    /// Group id -> member user ids.
    pub groups: HashMap<String, Vec<String>>,
    /// Every this many API requests, one is answered 429 with `Retry-After: 1`.
    pub throttle_every: Option<u64>,
}

/// The seeded group of [`SimConfig::default`]: 24 of the 250 users (every tenth), and one
/// member without a mail.
pub const SEEDED_GROUP: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

impl Default for SimConfig {
    fn default() -> Self {
        let mut rng = SmallRng::seed_from_u64(7);
        let users: Vec<User> = (0..250)
            .map(|n| {
                let p = sim_net::seed::person(&mut rng, n);
                User {
                    id: format!("{:08x}-0000-4000-8000-{:012x}", n + 1, n + 1),
                    mail: p.email,
                    given_name: p.first.to_owned(),
                    surname: p.last.to_owned(),
                }
            })
            .collect();
        let mut users = users;
        users[0].mail = String::new();
        let members = users.iter().step_by(10).take(24);
        let groups = HashMap::from([(SEEDED_GROUP.to_owned(), members.map(|u| u.id.clone()).collect())]);
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant: "contoso.onmicrosoft.com".to_owned(),
            client_id: "11111111-2222-3333-4444-555555555555".to_owned(),
            client_secret: "graph-sim-client-secret".to_owned(),
            token_lifetime: 3599,
            users,
            groups,
            throttle_every: None,
        }
    }
}

#[derive(Default)]
struct Stats {
    tokens: AtomicU64,
    requests: AtomicU64,
    throttled: AtomicU64,
    unauthorized: AtomicU64,
}

struct Sim {
    config: SimConfig,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    stats: Stats,
}

type Shared = Arc<Sim>;

/// A running simulator.
pub struct SimHandle {
    running: sim_net::server::Running,
}

impl SimHandle {
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Starts the simulator on `config.addr`.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let bound = sim_net::server::bind(config.addr).await?;
    let sim = Arc::new(Sim { config, tokens: Mutex::default(), issued: AtomicU64::new(0), stats: Stats::default() });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users", get(users))
        .route("/v1.0/groups/{id}/members", get(members))
        .route("/__sim/stats", get(stats))
        .with_state(sim);
    Ok(SimHandle { running: bound.serve("graph-sim", app) })
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-01-01T00:00:00", "request-id": "00000000-0000-0000-0000-000000000000"}}});
    (status, Json(body)).into_response()
}

async fn token(
    State(sim): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    sim.stats.tokens.fetch_add(1, Ordering::Relaxed);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let refuse = |status: StatusCode, error: &str, description: &str| {
        (status, Json(json!({"error": error, "error_description": description, "error_codes": [7000215]})))
            .into_response()
    };
    if tenant != sim.config.tenant {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS90002: Tenant not found.");
    }
    if field("grant_type") != "client_credentials" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if field("client_id") != sim.config.client_id || field("client_secret") != sim.config.client_secret {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    }
    let n = sim.issued.fetch_add(1, Ordering::Relaxed) + 1;
    let token = format!("eyJ0eXAiOiJKV1Qi.graph-sim-{n:08}.sig");
    let lifetime = sim.config.token_lifetime;
    sim.tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), Instant::now() + Duration::from_secs(lifetime));
    Json(json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}))
        .into_response()
}

/// `Err` with Graph's answer when the request is not authorized or is throttled.
fn admit(sim: &Sim, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let n = sim.stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer else {
        sim.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        return Err(Box::new(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        )));
    };
    let expiry = sim.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(token).copied();
    match expiry {
        Some(until) if Instant::now() < until => {}
        Some(_) => {
            sim.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )));
        }
        None => {
            sim.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed.",
            )));
        }
    }
    if sim.config.throttle_every.is_some_and(|every| every > 0 && n.is_multiple_of(every)) {
        sim.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let mut r = graph_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.");
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Err(Box::new(r));
    }
    Ok(())
}

/// One page of `items` as Graph answers it: `$select`, `$top`, `$skiptoken`.
fn page(
    sim: &Sim,
    headers: &HeaderMap,
    path: &str,
    context: &str,
    items: Vec<&User>,
    q: &HashMap<String, String>,
) -> Response {
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(t)) if (1..=999).contains(&t) => t,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
            );
        }
    };
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.strip_prefix("X'"))
        .and_then(|s| s.trim_end_matches('\'').parse().ok())
        .unwrap_or(0);
    let select: Option<Vec<&str>> =
        q.get("$select").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
    let value: Vec<Value> = items
        .iter()
        .skip(skip)
        .take(top)
        .map(|u| {
            let full = u.json();
            match &select {
                None => full,
                Some(fields) => {
                    let mut m = serde_json::Map::new();
                    m.insert("@odata.type".to_owned(), full["@odata.type"].clone());
                    for f in fields {
                        if let Some(v) = full.get(*f) {
                            m.insert((*f).to_owned(), v.clone());
                        }
                    }
                    Value::Object(m)
                }
            }
        })
        .collect();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let mut body = json!({"@odata.context": format!("http://{host}/v1.0/$metadata#{context}"), "value": value});
    if skip + top < items.len() {
        let mut next = format!("http://{host}{path}?");
        let mut pairs = Vec::new();
        if let Some(s) = q.get("$select") {
            pairs.push(format!("$select={s}"));
        }
        if q.contains_key("$top") {
            pairs.push(format!("$top={top}"));
        }
        pairs.push(format!("$skiptoken=X'{}'", skip + top));
        next.push_str(&pairs.join("&"));
        body["@odata.nextLink"] = Value::String(next);
    }
    let _ = sim;
    Json(body).into_response()
}

async fn users(State(sim): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(r) = admit(&sim, &headers) {
        return *r;
    }
    let items: Vec<&User> = sim.config.users.iter().collect();
    page(&sim, &headers, "/v1.0/users", "users", items, &q)
}

async fn members(
    State(sim): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&sim, &headers) {
        return *r;
    }
    let Some(ids) = sim.config.groups.get(&id) else {
        let message =
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.");
        return graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &message);
    };
    let items: Vec<&User> = ids.iter().filter_map(|i| sim.config.users.iter().find(|u| &u.id == i)).collect();
    page(&sim, &headers, &format!("/v1.0/groups/{id}/members"), "directoryObjects", items, &q)
}

async fn stats(State(sim): State<Shared>) -> Response {
    let s = &sim.stats;
    Json(json!({
        "tokens": s.tokens.load(Ordering::Relaxed),
        "requests": s.requests.load(Ordering::Relaxed),
        "throttled": s.throttled.load(Ordering::Relaxed),
        "unauthorized": s.unauthorized.load(Ordering::Relaxed),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sim(config: SimConfig) -> (SimHandle, reqwest::Client, String) {
        let handle = start(config).await.unwrap();
        let base = handle.base_url();
        (handle, reqwest::Client::new(), base)
    }

    async fn token(client: &reqwest::Client, base: &str, secret: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "11111111-2222-3333-4444-555555555555"),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        client.post(format!("{base}/contoso.onmicrosoft.com/oauth2/v2.0/token")).form(&form).send().await.unwrap()
    }

    #[tokio::test]
    async fn tokens_select_top_and_next_links_as_graph() {
        let (h, client, base) = sim(SimConfig::default()).await;
        let refused = token(&client, &base, "wrong").await;
        assert_eq!(refused.status(), 401);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        let t: Value = token(&client, &base, "graph-sim-client-secret").await.json().await.unwrap();
        assert_eq!((t["token_type"].as_str(), t["expires_in"].as_u64()), (Some("Bearer"), Some(3599)));
        let access = t["access_token"].as_str().unwrap();
        let url = format!("{base}/v1.0/groups/{SEEDED_GROUP}/members?$select=id,mail&$top=10");
        let mut next = Some(url);
        let (mut pages, mut members) = (0, 0);
        while let Some(url) = next {
            let page: Value = client.get(&url).bearer_auth(access).send().await.unwrap().json().await.unwrap();
            pages += 1;
            let value = page["value"].as_array().unwrap();
            members += value.len();
            let keys: Vec<&String> = value[0].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["@odata.type", "id", "mail"]);
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        assert_eq!((pages, members), (3, 24));
        let users: Value =
            client.get(format!("{base}/v1.0/users")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        assert_eq!(users["value"].as_array().unwrap().len(), 100, "Graph's default page size");
        let missing = client.get(format!("{base}/v1.0/groups/nope/members")).bearer_auth(access).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        h.shutdown().await;
    }

    #[tokio::test]
    async fn missing_unknown_and_expired_tokens_are_401_and_throttling_429() {
        let config = SimConfig { token_lifetime: 0, throttle_every: Some(2), ..SimConfig::default() };
        let (h, client, base) = sim(config).await;
        let users = format!("{base}/v1.0/users");
        let r = client.get(&users).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
        assert_eq!(client.get(&users).bearer_auth("made-up").send().await.unwrap().status(), 401);
        let t: Value = token(&client, &base, "graph-sim-client-secret").await.json().await.unwrap();
        let expired = client.get(&users).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(expired.status(), 401, "a token of lifetime 0 has expired");
        h.shutdown().await;
        let config = SimConfig { throttle_every: Some(2), ..SimConfig::default() };
        let (h, client, base) = sim(config).await;
        let t: Value = token(&client, &base, "graph-sim-client-secret").await.json().await.unwrap();
        let access = t["access_token"].as_str().unwrap();
        let users = format!("{base}/v1.0/users");
        assert_eq!(client.get(&users).bearer_auth(access).send().await.unwrap().status(), 200);
        let throttled = client.get(&users).bearer_auth(access).send().await.unwrap();
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.headers()["retry-after"], "1");
        h.shutdown().await;
    }
}
