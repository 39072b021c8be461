//! The HTTP server: binding, the shared state, the handle, the simulator-only endpoints, and a
//! listener whose connections a "dropped connection" fault can cut.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::serve::IncomingStream;
use serde_json::{Value, json};
use sim_net::KillableListener;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::faults::FaultPicker;
use crate::limits::Limiter;
use crate::model::Db;
use crate::reply::{ApiError, json_response};
use crate::stats::Stats;
use crate::{api, seed};

/// State shared by every request.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub db: Mutex<Db>,
    pub stats: Stats,
    pub limiter: Limiter,
    pub faults: FaultPicker,
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
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`; the API is under `base_url() + "/api/rest/v1/{accountId}/"`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds, seeds the data, and spawns the server on the current tokio runtime; returns at once.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config.validate().map_err(SimError::Config)?;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(SimError::Serve)?;
    let db = seed::build(&config);
    let shared = Arc::new(Shared {
        limiter: Limiter::new(config.rate_per_second),
        faults: FaultPicker::new(config.seed, config.fault_rate),
        stats: Stats::default(),
        db: Mutex::new(db),
        config,
    });
    let app = router(Arc::clone(&shared));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(KillableListener(listener), app.into_make_service_with_connect_info::<Conn>())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "boomi-sim server stopped");
        }
    });
    tracing::debug!(addr = %local, config = ?shared.config, "boomi-sim started");
    Ok(SimHandle { addr: local, shared, shutdown: Some(tx), task: Some(task) })
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
    app.stats.request("unmatched");
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

/// Per-connection info: the switch a "dropped connection" fault flips.
#[derive(Clone)]
pub(crate) struct Conn {
    pub kill: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Conn { kill: stream.io().kill_switch() }
    }
}
