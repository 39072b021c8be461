//! The HTTP server: the shared state, the handle and the simulator-only endpoints, served by
//! `sim_net`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use sim_net::{Fault, FaultPicker, FaultScript, Running, SimError};

use crate::config::SimConfig;
use crate::limits::Limiter;
use crate::model::Db;
use crate::reply::{ApiError, json_response};
use crate::stats::Stats;
use crate::{api, seed};

/// The faults boomi-sim injects: all but malformed bodies.
const FAULTS: &[Fault] = &[Fault::InternalError, Fault::Unavailable, Fault::Slow, Fault::Drop];

/// State shared by every request.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub db: Mutex<Db>,
    pub stats: Stats,
    pub limiter: Limiter,
    pub faults: FaultPicker,
    pub script: FaultScript,
}

impl Shared {
    pub fn lock_db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats_json(&self) -> Value {
        let db = self.lock_db();
        self.stats.to_json(&db)
    }
}

pub(crate) type AppState = Arc<Shared>;

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

    /// `http://127.0.0.1:PORT`; the API is under `base_url() + "/api/rest/v1/{accountId}/"`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The same JSON as `GET /__sim/stats`.
    pub fn stats(&self) -> Value {
        self.shared.stats_json()
    }

    /// A full dump of the account for tests (the same JSON as `GET /__sim/state`): users with
    /// their global and group roles, roles, account groups, invitation and removal counters.
    pub fn state(&self) -> Value {
        self.shared.lock_db().state_json()
    }

    /// Marks a user as having logged in (as if they accepted their invitation), so that they
    /// can be given group roles. False when the account has no such user.
    pub fn mark_logged_in(&self, user_id: &str) -> bool {
        self.shared.lock_db().mark_logged_in(user_id)
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
        limiter: Limiter::new(config.rate_per_second),
        faults: FaultPicker::new(config.seed, config.fault_rate, FAULTS),
        script: FaultScript::new(config.fault_script.clone()),
        stats: Stats::default(),
        db: Mutex::new(db),
        config,
    });
    let app = router(Arc::clone(&shared));
    let server = bound.serve("boomi-sim", app);
    tracing::debug!(addr = %server.addr(), config = ?shared.config, "boomi-sim started");
    Ok(SimHandle { server, shared })
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/rest/v1/{*rest}", any(api::handle))
        .route("/__sim/stats", get(sim_stats))
        .route("/__sim/state", get(sim_state))
        .route("/__sim/users/{user_id}/login", post(sim_login))
        .fallback(not_found)
        .with_state(state)
}

async fn sim_stats(State(app): State<AppState>) -> Response {
    json_response(StatusCode::OK, &app.stats_json())
}

async fn sim_state(State(app): State<AppState>) -> Response {
    json_response(StatusCode::OK, &app.lock_db().state_json())
}

async fn sim_login(State(app): State<AppState>, Path(user_id): Path<String>) -> Response {
    if app.lock_db().mark_logged_in(&user_id) {
        json_response(StatusCode::OK, &json!({ "userId": user_id, "loggedIn": true }))
    } else {
        ApiError::not_found(format!("No such user: {user_id}")).into_response()
    }
}

async fn not_found(State(app): State<AppState>, req: axum::extract::Request) -> Response {
    let started = Instant::now();
    app.stats.gate.request(["unmatched"]);
    let resp = ApiError::not_found("Not Found: the API lives under /api/rest/v1/{accountId}/").into_response();
    log_request(req.method().as_str(), req.uri().path(), "unmatched", resp.status(), started);
    resp
}

/// One log line per request: never a header, so never a credential.
pub(crate) fn log_request(method: &str, path: &str, operation: &str, status: StatusCode, started: Instant) {
    tracing::info!(
        method,
        path,
        operation,
        status = status.as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "boomi-sim request"
    );
}
