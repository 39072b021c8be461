//! The HTTP server: routes, the request gate (stats, bearer auth, rate limits, latency, faults),
//! the GraphQL endpoint and the inspection endpoints, served by `sim_net`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::{EmptySubscription, Schema};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sim_net::stats::bump;
use sim_net::{Conn, Fault, FaultPicker, FaultScript, Moment, Running, SimError, Strike};

use crate::config::{SimConfig, TokenKind};
use crate::inspect::inspect;
use crate::limits::Limiter;
use crate::model::Db;
use crate::mutation::{Mutation, RequestFlags};
use crate::query::Query;
use crate::stats::Stats;
use crate::{rest, seed};

/// The most complexity points a query may have (KnowBe4's cap).
pub const MAX_COMPLEXITY: usize = 150;

/// The faults knowbe4-sim injects: all of them.
const FAULTS: &[Fault] = &[Fault::InternalError, Fault::Unavailable, Fault::Slow, Fault::Drop, Fault::Malformed];

pub(crate) type SimSchema = Schema<Query, Mutation, EmptySubscription>;

/// State shared by every request and every resolver.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub db: Mutex<Db>,
    pub stats: Stats,
    pub limiter: Limiter,
    pub faults: FaultPicker,
    pub script: FaultScript,
    tokens: HashMap<String, TokenKind>,
    request_ids: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn lock_db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats_json(&self) -> Value {
        let db = self.lock_db();
        self.stats.to_json(&db)
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    schema: SimSchema,
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    server: Running,
    shared: Arc<Shared>,
}

impl SimHandle {
    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://IP:PORT`; GraphQL is at `base_url() + "/graphql"`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The same JSON as `GET /__sim/stats`.
    pub fn stats(&self) -> Value {
        self.shared.stats_json()
    }

    /// Stops accepting requests and waits (up to 5 s) for the server to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Binds, seeds the data, and spawns the server on the current tokio runtime; returns at once.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config.validate().map_err(SimError::Config)?;
    let addr = SocketAddr::new(config.bind, config.port);
    let bound = sim_net::bind(addr).await?;
    let db = seed::build(&config);
    let shared = Arc::new(Shared {
        tokens: config.tokens.iter().cloned().collect(),
        limiter: Limiter::new(config.rate_per_second, config.rate_per_minute, config.rate_per_day),
        faults: FaultPicker::new(config.seed, config.fault_rate, FAULTS),
        script: FaultScript::new(config.fault_script.clone()),
        stats: Stats::default(),
        request_ids: std::sync::atomic::AtomicU64::new(1),
        db: Mutex::new(db),
        config,
    });
    // KnowBe4 refuses a query above 150 complexity points (the reference, section 3.3); every
    // field counts one point here.
    let schema = Schema::build(Query, Mutation, EmptySubscription)
        .data(Arc::clone(&shared))
        .limit_complexity(MAX_COMPLEXITY)
        .finish();
    let app = router(AppState { shared: Arc::clone(&shared), schema });
    let server = bound.serve("knowbe4-sim", app);
    tracing::debug!(addr = %server.addr(), "knowbe4-sim started");
    Ok(SimHandle { server, shared })
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", post(graphql))
        .route("/v1/account", get(rest::account))
        .route("/v1/users", get(rest::users))
        .route("/v1/users/{id}", get(rest::user))
        .route("/v1/groups", get(rest::groups))
        .route("/v1/groups/{id}", get(rest::group))
        .route("/v1/groups/{id}/members", get(rest::members))
        .route("/__sim/stats", get(sim_stats))
        .route("/__sim/reset-limits", post(sim_reset_limits))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(state.clone(), add_request_id))
        .with_state(state)
}

/// Every answer carries an `X-Request-Id`, as KnowBe4's do.
async fn add_request_id(State(app): State<AppState>, mut resp: Response) -> Response {
    let n = app.shared.request_ids.fetch_add(1, Ordering::Relaxed);
    if let Ok(v) = HeaderValue::from_str(&format!("sim-{n:08}")) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// A JSON response with a status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(status, bytes)
}

fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// What a request may do after the gate.
pub(crate) struct Admitted {
    pub kind: TokenKind,
    /// Truncate the body of the answer (malformed-body fault).
    pub malformed: bool,
    /// A scripted fault that strikes after (or while) the request is executed.
    pub later: Option<Strike>,
}

/// Counts the request, then checks token, limits, latency and faults, in that order.
pub(crate) async fn gate(
    shared: &Shared,
    headers: &HeaderMap,
    conn: &Conn,
    ops: &[String],
) -> Result<Admitted, Response> {
    shared.stats.gate.request(ops.iter().map(String::as_str));
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some((token, kind)) = token.and_then(|t| shared.tokens.get_key_value(t)) else {
        bump(&shared.stats.gate.unauthorized);
        let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({ "message": "Unauthorized" }));
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(resp);
    };
    if let Err(throttled) = shared.limiter.check(token) {
        bump(&shared.stats.gate.throttled);
        let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &json!({ "message": "Too many requests" }));
        let h = resp.headers_mut();
        // The daily quota's 429 says not when to come back (as KnowBe4's).
        if throttled.window != crate::limits::Window::Day {
            h.insert(header::RETRY_AFTER, HeaderValue::from(throttled.retry_after_secs));
        }
        h.insert("x-sim-rate-limit", HeaderValue::from_static(throttled.window.as_str()));
        return Err(resp);
    }
    if shared.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.config.latency_ms)).await;
    }
    // The random draw is always made, so the random sequence does not depend on the script.
    let drawn = shared.faults.draw();
    let (fault, later) = match shared.script.check(ops.iter().map(String::as_str)) {
        Some(Strike { fault, moment: Moment::Before }) => (Some(fault), None),
        Some(strike) => (None, Some(strike)),
        None => (drawn, None),
    };
    let malformed = match fault {
        Some(fault) => fault_before(shared, conn, fault).await?,
        None => false,
    };
    Ok(Admitted { kind: *kind, malformed, later })
}

/// Answers a fault that strikes before the request is executed; `Ok(true)` for a malformed
/// body (the request is executed, its answer cut), `Ok(false)` for a slow one.
async fn fault_before(shared: &Shared, conn: &Conn, fault: Fault) -> Result<bool, Response> {
    shared.stats.gate.fault(fault.as_str());
    tracing::debug!(fault = fault.as_str(), "injecting fault");
    fault_answer(shared, conn, fault).await
}

/// What a fault does to a request (not counted: the caller counts it once).
async fn fault_answer(shared: &Shared, conn: &Conn, fault: Fault) -> Result<bool, Response> {
    match fault {
        Fault::InternalError => {
            Err(json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "message": "Internal server error" })))
        }
        Fault::Unavailable => {
            Err(json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "message": "Service unavailable" })))
        }
        Fault::GatewayTimeout => Err(gateway_timeout()),
        Fault::Slow => {
            tokio::time::sleep(Duration::from_millis(shared.config.slow_ms)).await;
            Ok(false)
        }
        Fault::Drop => {
            conn.drop_connection();
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Fault::Malformed => Ok(true),
    }
}

/// The answer to a request that was executed (and committed) but whose answer a scripted
/// fault replaces.
async fn fault_after(shared: &Shared, conn: &Conn, fault: Fault, resp: Response, bytes: Vec<u8>) -> Response {
    shared.stats.gate.fault(fault.as_str());
    tracing::debug!(fault = fault.as_str(), "injecting fault after executing the request");
    match fault {
        Fault::Slow => {
            tokio::time::sleep(Duration::from_millis(shared.config.slow_ms)).await;
            resp
        }
        Fault::Malformed => truncate(resp, bytes),
        other => match fault_answer(shared, conn, other).await {
            Err(answer) => answer,
            Ok(_) => resp,
        },
    }
}

/// Cuts a body in half, so it is no longer valid JSON.
pub(crate) fn truncate(resp: Response, bytes: Vec<u8>) -> Response {
    let mut bytes = bytes;
    bytes.truncate((bytes.len() / 2).max(1));
    let (parts, _) = resp.into_parts();
    let mut out = Response::from_parts(parts, Body::from(bytes));
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out
}

/// Logs one API request: method, path, operations, status, time and peer (never the token).
pub(crate) fn log_request(
    method: &str,
    path: &str,
    ops: &[String],
    status: StatusCode,
    started: Instant,
    peer: Option<SocketAddr>,
) {
    tracing::info!(
        method,
        path,
        peer = ?peer,
        operation = %ops.join(","),
        status = status.as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "knowbe4-sim request"
    );
}

fn gateway_timeout() -> Response {
    let body = "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>";
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

async fn graphql(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let (request, ops, bulk) = match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(mut req) => {
            let op_name = req.operation_name.clone();
            let vars = req.variables.clone();
            let found = req.parsed_query().ok().map(|doc| inspect(doc, op_name.as_deref(), &vars));
            let (ops, bulk) = found.map(|f| (f.root_fields, f.largest_bulk)).unwrap_or_default();
            (Ok(req), ops, bulk)
        }
        Err(e) => (Err(e), Vec::new(), 0),
    };
    let resp = match gate(&app.shared, &headers, &conn, &ops).await {
        Err(resp) => resp,
        Ok(admitted) => execute(&app, &conn, admitted, request, bulk).await,
    };
    log_request("POST", "/graphql", &ops, resp.status(), started, Some(conn.remote));
    resp
}

async fn execute(
    app: &AppState,
    conn: &Conn,
    admitted: Admitted,
    request: Result<async_graphql::Request, serde_json::Error>,
    bulk: usize,
) -> Response {
    let req = match request {
        Ok(req) => req,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "errors": [{ "message": format!("invalid GraphQL request body: {e}") }] }),
            );
        }
    };
    // The gateway times out on large bulk calls before the application answers; a read-only
    // token's mutation is refused by the application first.
    if admitted.kind == TokenKind::ReadWrite && bulk > app.shared.config.bulk_timeout_size {
        bump(&app.shared.stats.gateway_timeouts);
        return gateway_timeout();
    }
    let flags = Arc::new(RequestFlags::default());
    let req = req.data(admitted.kind).data(Arc::clone(&flags));
    if let Some(Strike { fault, moment: Moment::Late }) = admitted.later {
        // The answer is lost now; the change lands later, as a slow commit does.
        let (schema, delay) = (app.schema.clone(), Duration::from_millis(app.shared.config.slow_ms));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = schema.execute(req).await;
        });
        return match fault_before(&app.shared, conn, fault).await {
            Err(answer) => answer,
            Ok(_) => gateway_timeout(),
        };
    }
    let result = app.schema.execute(req).await;
    if flags.gateway_timeout.load(Ordering::SeqCst) {
        bump(&app.shared.stats.gateway_timeouts);
        return gateway_timeout();
    }
    let bytes = serde_json::to_vec(&result).unwrap_or_default();
    if admitted.malformed {
        let resp = bytes_response(StatusCode::OK, Vec::new());
        return truncate(resp, bytes);
    }
    if let Some(Strike { fault, .. }) = admitted.later {
        let resp = bytes_response(StatusCode::OK, bytes.clone());
        return fault_after(&app.shared, conn, fault, resp, bytes).await;
    }
    bytes_response(StatusCode::OK, bytes)
}

async fn sim_stats(State(app): State<AppState>) -> Response {
    json_response(StatusCode::OK, &app.shared.stats_json())
}

async fn sim_reset_limits(State(app): State<AppState>) -> Response {
    app.shared.limiter.reset();
    json_response(StatusCode::OK, &json!({ "reset": true }))
}

async fn not_found(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let ops = vec!["unmatched".to_string()];
    app.shared.stats.gate.request(ops.iter().map(String::as_str));
    let resp = json_response(StatusCode::NOT_FOUND, &json!({ "message": "Not Found" }));
    log_request(req.method().as_str(), req.uri().path(), &ops, resp.status(), started, Some(conn.remote));
    resp
}
