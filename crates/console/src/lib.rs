//! The console of `stepwise serve --listen ADDR` (process format section 9): one axum router
//! with `/health` (open), `/login` (open: a token traded for a session cookie), the pages
//! (`pages.rs`), `/metrics` and the HTTP API under `/api/v1/`, every other route behind a
//! bearer token or a session whose role must allow it.
//!
//! * Reads come from the run store ([`store::Store`]): runs, steps, logs, tokens, the audit
//!   trail. Actions go to the store (a run now is a queued manual run, as `stepwise trigger`
//!   queues; pause and resume are kept there) and to the serve loop through its narrow
//!   [`scheduler::Control`] (the processes it holds, cancelling a run, re-reading pauses).
//! * Every action is written to the audit trail before it happens.
//! * State changes never happen on GET, and are refused (403) when a browser sends them from
//!   another origin.
//! * Tokens are random, shown once and stored as their SHA-256 ([`token`]).
//!
//! **API Boundary:** the routes and their roles are [`routes`]; `openapi.json` describes
//! exactly these (a test keeps them in step).

mod actions;
mod api;
mod auth;
mod documents;
mod error;
mod hooks;
mod pages;
mod session;
mod signin;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, post};
use store::{Role, Store};

pub use auth::Caller;
pub use signin::{CODE_LIFETIME, FirstSignIn, OneTimeCode, first_sign_in};

/// The OpenAPI document of the routes, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the handlers share.
pub(crate) struct Console {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) control: scheduler::Control,
    pub(crate) options: Options,
    /// The unused one-time sign-in code, if any.
    pub(crate) codes: signin::Codes,
}

pub(crate) type Shared = Arc<Console>;

/// A route of the console and the weakest role that may use it (`None`: open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: Method,
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// Who may use it.
    pub role: Option<Role>,
    /// Not behind tokens, but behind the secret of the process's webhook (`/hooks/{name}`).
    pub webhook_secret: bool,
}

/// The routes behind a token: method, path, weakest role, handler.
fn protected() -> Vec<(Method, &'static str, Role, MethodRouter<Shared>)> {
    use Role::{Admin, Operator, Viewer};
    vec![
        (Method::GET, "/", Viewer, get(pages::processes)),
        (Method::GET, "/processes/{name}", Viewer, get(pages::process)),
        (Method::POST, "/processes/{name}/run", Operator, post(pages::run_now)),
        (Method::POST, "/processes/{name}/pause", Operator, post(pages::pause)),
        (Method::POST, "/processes/{name}/resume", Operator, post(pages::resume)),
        (Method::GET, "/runs", Viewer, get(pages::runs)),
        (Method::GET, "/runs/{run_id}", Viewer, get(pages::run)),
        (Method::POST, "/runs/{run_id}/cancel", Operator, post(pages::cancel)),
        (Method::POST, "/runs/{run_id}/rerun", Operator, post(pages::rerun)),
        (Method::GET, "/runs/{run_id}/steps/{step}", Viewer, get(pages::step_documents)),
        (Method::GET, "/tokens", Admin, get(pages::tokens)),
        (Method::POST, "/tokens", Admin, post(pages::create_token)),
        (Method::POST, "/tokens/{name}/revoke", Admin, post(pages::revoke_token)),
        (Method::GET, "/audit", Admin, get(pages::audit)),
        (Method::POST, "/logout", Viewer, post(pages::logout)),
        (Method::GET, "/metrics", Viewer, get(metrics)),
        (Method::GET, "/api/v1/openapi.json", Viewer, get(openapi)),
        (Method::GET, "/api/v1/processes", Viewer, get(api::processes)),
        (Method::POST, "/api/v1/processes/{name}/runs", Operator, post(api::run_now)),
        (Method::POST, "/api/v1/processes/{name}/pause", Operator, post(api::pause)),
        (Method::POST, "/api/v1/processes/{name}/resume", Operator, post(api::resume)),
        (Method::GET, "/api/v1/runs", Viewer, get(api::runs)),
        (Method::GET, "/api/v1/runs/{run_id}", Viewer, get(api::run)),
        (Method::POST, "/api/v1/runs/{run_id}/cancel", Operator, post(api::cancel)),
        (Method::POST, "/api/v1/runs/{run_id}/rerun", Operator, post(api::rerun)),
        (Method::GET, "/api/v1/runs/{run_id}/steps/{step}/documents", Viewer, get(documents::page)),
        (Method::GET, "/api/v1/runs/{run_id}/steps/{step}/documents/download", Viewer, get(documents::download)),
        (Method::GET, "/api/v1/audit", Admin, get(api::audit_trail)),
        (Method::GET, "/api/v1/tokens", Admin, get(api::tokens)),
        (Method::POST, "/api/v1/tokens", Admin, post(api::create_token)),
        (Method::DELETE, "/api/v1/tokens/{name}", Admin, delete(api::revoke_token)),
    ]
}

/// Every route of the console with its role.
pub fn routes() -> Vec<RouteInfo> {
    let open = |method, path| RouteInfo { method, path, role: None, webhook_secret: false };
    let mut routes = vec![
        open(Method::GET, "/health"),
        open(Method::GET, "/login"),
        open(Method::POST, "/login"),
        open(Method::GET, "/console.css"),
    ];
    routes.push(RouteInfo { method: Method::POST, path: hooks::PATH, role: None, webhook_secret: true });
    routes.extend(protected().into_iter().map(|(method, path, role, _)| RouteInfo {
        method,
        path,
        role: Some(role),
        webhook_secret: false,
    }));
    routes
}

/// The methods the routes of `path` take (a path of the routes with its `{name}` parameters
/// filled in), for a 405's `Allow`.
pub(crate) fn allowed(path: &str) -> Vec<Method> {
    let matches = |pattern: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
        a.len() == b.len() && a.iter().zip(&b).all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
    };
    let mut methods: Vec<Method> = routes().into_iter().filter(|r| matches(r.path)).map(|r| r.method).collect();
    // axum answers HEAD wherever it answers GET.
    if methods.contains(&Method::GET) {
        methods.push(Method::HEAD);
    }
    methods.dedup();
    methods
}

/// The console's router on `store`, steering the serve loop through `control`.
pub fn router(store: Arc<dyn Store>, control: scheduler::Control) -> Router {
    router_with(store, control, Options::default())
}

/// How the console is served.
#[derive(Debug, Default)]
pub struct Options {
    /// Served over HTTPS: session cookies are `Secure`, so a browser never sends them over plain
    /// HTTP (cookies are not scoped by port).
    pub https: bool,
    /// The one-time sign-in code of the address `serve` printed ([`first_sign_in`]).
    pub sign_in: Option<OneTimeCode>,
}

/// [`router`] with `options`.
pub fn router_with(store: Arc<dyn Store>, control: scheduler::Control, options: Options) -> Router {
    let codes = signin::Codes::new(options.sign_in);
    let options = Options { https: options.https, sign_in: None };
    let console: Shared = Arc::new(Console { store, control, options, codes });
    let mut api = Router::new();
    for (_, path, role, handler) in protected() {
        let check = axum::middleware::from_fn(move |request, next| auth::require(role, request, next));
        api = api.route(path, handler.route_layer(check));
    }
    let api = api.fallback(no_route).layer(axum::middleware::from_fn_with_state(console.clone(), auth::authenticate));
    let login = get(pages::login_page).post(pages::login).route_layer(axum::middleware::from_fn(auth::same_origin));
    Router::new()
        .route("/health", get(health))
        .route("/login", login)
        .route("/console.css", get(pages::stylesheet))
        .route(hooks::PATH, hooks::route())
        .merge(api)
        .with_state(console)
        .layer(axum::middleware::from_fn(error::uniform))
}

/// A path behind the token wall that is no route: 404, as JSON under `/api/`, else a page.
async fn no_route(
    axum::Extension(caller): axum::Extension<Caller>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let what = format!("{} {}", request.method(), request.uri().path());
    if auth::from_browser(&request) {
        return pages::error_page(&caller, error::ApiError::not_found(format!("no page {what}")));
    }
    let hint = if request.uri().path().starts_with("/api/") { "; the routes are in /api/v1/openapi.json" } else { "" };
    error::ApiError::not_found(format!("no route {what}{hint}")).into_response()
}

async fn health(axum::extract::State(console): axum::extract::State<Shared>) -> impl IntoResponse {
    axum::Json(console.control.health())
}

async fn metrics(axum::extract::State(console): axum::extract::State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], console.control.metrics())
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests;
