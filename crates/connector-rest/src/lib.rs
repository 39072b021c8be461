//! The `http` connector: any REST API (process format section 11).
//!
//! A step gives `method`, a `path` template whose `{name}` parameters are percent-encoded,
//! `query` parameters, the document as a JSON (or text) body, `records` (a JSON pointer to the
//! array of records of the answer), `paginate` (link_header, next_url, cursor, page, offset)
//! and an optional `schema` file checked before any request. Everything below HTTP is the
//! shared layer of `connector-http`: the pacer (`rate_per_second` / `rate_per_minute`, shared
//! per base URL and credential), retries (GET, PUT and DELETE after any transient fault; POST
//! and PATCH only when the step says `idempotent: true`, else only when the server surely did
//! not act: a 503, a 429, a refused connection), the transport seam of process tests.
//!
//! **Architecture Invariant:** credentials come from env or file through
//! `engine::ConnectEnv::secret` (so the redactor knows them), OAuth2 access tokens are added to
//! the redactor when fetched, and no credential is ever logged.

mod auth;
mod connector;
pub mod options;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use compiler::{ConnectionSpec, HttpAuthSpec, HttpConnectionSpec, Operation};
use connector_http::reqwest::Url;
use connector_http::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use connector_http::{Caller, ClientConfig, Pacer, RetryPolicy, Window, shared_budget};
use engine::{ConnectEnv, Connector, ConnectorError, ConnectorFactory, SandboxTarget, Secret};

use crate::auth::OAuth2;
use crate::connector::{Bearer, Rest};

/// The connection type.
pub const CONNECTION_TYPE: &str = "http";

/// The `--sandbox` target of an http connection whose base URL is on `host`: its base URL is
/// replaced by the target's, and its auth by the target's (extra `auth`: `bearer`, or
/// `oauth2_client_credentials` with extra `token_url` and `client_id`, the target's token
/// being the client secret).
pub fn sandbox_key(host: &str) -> String {
    format!("{CONNECTION_TYPE} {host}")
}

/// The connector's operations: one per method, with no objects.
const OPERATIONS: &[Operation] = &[
    Operation { object: "", action: "get" },
    Operation { object: "", action: "post" },
    Operation { object: "", action: "put" },
    Operation { object: "", action: "patch" },
    Operation { object: "", action: "delete" },
];

/// Makes `http` connectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpFactory;

impl ConnectorFactory for HttpFactory {
    fn connection_type(&self) -> &'static str {
        CONNECTION_TYPE
    }

    fn operations(&self) -> &'static [Operation] {
        OPERATIONS
    }

    fn check_call(&self, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        options::check(call)
    }

    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config = |message: String| ConnectorError::Config { connection: name.to_owned(), message };
        let ConnectionSpec::Http(spec) = spec else {
            return Err(config("not an http connection".to_owned()));
        };
        let base = connector_http::check_base_url(spec.base_url.trim()).map_err(|e| config(e.to_string()))?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(config(format!("base_url '{}' must not carry a query or a fragment", spec.base_url)));
        }
        let sandbox = sandbox_target(env, &base);
        let (base, auth) = match &sandbox {
            Some(t) => {
                let base = connector_http::check_base_url(&t.base_url).map_err(|e| config(e.to_string()))?;
                (with_path(base, &spec.base_url), sandbox_auth(name, t)?)
            }
            None => (base, connection_auth(name, &spec.auth, env)?),
        };
        let (fixed, bearer, credential) = auth;
        let client = client_config(spec).map_err(config)?;
        let mut headers = default_headers(spec).map_err(config)?;
        headers.extend(fixed);
        let client = client.build_with_headers(headers).map_err(|e| config(e.to_string()))?;
        let pacer = pacer(spec).map_err(config)?;
        let budget = shared_budget(&connector_http::budget_key(&format!("http {base}"), &credential), || pacer);
        let mut caller = Caller::new(client.clone(), budget, RetryPolicy::default());
        let transport = env.transports.get::<Arc<dyn connector_http::Transport>>(name);
        if let Some(t) = &transport {
            caller = caller.with_transport(t.clone());
        }
        let bearer = match bearer {
            BearerSpec::None => Bearer::None,
            BearerSpec::Token(t) => Bearer::Token(t),
            BearerSpec::OAuth2(client_spec) => {
                let mut token_caller = Caller::new(client, Arc::new(Pacer::unlimited()), RetryPolicy::default());
                if let Some(t) = transport {
                    token_caller = token_caller.with_transport(t);
                }
                Bearer::OAuth2 { cache: auth::token_cache(client_spec), token_caller }
            }
        };
        tracing::debug!(connection = name, base_url = %base, sandbox = sandbox.is_some(), "http connection ready.");
        Ok(Arc::new(Rest {
            connection: name.to_owned(),
            base,
            caller,
            bearer,
            redactor: env.redactor.clone(),
            base_dir: env.base_dir.clone(),
            schemas: Mutex::new(Default::default()),
        }))
    }
}

/// The sandbox target of a connection: the one for its host, or the one for every http
/// connection (process tests).
fn sandbox_target(env: &ConnectEnv, base: &Url) -> Option<SandboxTarget> {
    let host = base.host_str().unwrap_or("");
    env.sandbox_for(&sandbox_key(host)).or_else(|| env.sandbox_for(CONNECTION_TYPE))
}

/// The sandbox's base URL with the connection's own path kept (`/api` of
/// `https://host/api`).
fn with_path(mut sandbox: Url, own: &str) -> Url {
    if let Ok(own) = Url::parse(own.trim()) {
        let path = format!("{}{}", sandbox.path().trim_end_matches('/'), own.path());
        sandbox.set_path(&path);
    }
    sandbox
}

enum BearerSpec {
    None,
    Token(Secret),
    OAuth2(OAuth2),
}

/// Fixed credential headers, how requests carry a bearer token, and the credential that keys
/// the rate budget.
type Auth = (HeaderMap, BearerSpec, String);

fn connection_auth(name: &str, spec: &HttpAuthSpec, env: &ConnectEnv) -> Result<Auth, ConnectorError> {
    let config = |message: String| ConnectorError::Config { connection: name.to_owned(), message };
    let mut headers = HeaderMap::new();
    Ok(match spec {
        HttpAuthSpec::None => (headers, BearerSpec::None, String::new()),
        HttpAuthSpec::Bearer { token } => {
            let token = env.secret(name, token)?;
            let key = token.expose().to_owned();
            (headers, BearerSpec::Token(token), key)
        }
        HttpAuthSpec::Basic { username, password } => {
            let password = env.secret(name, password)?;
            let (k, v) = auth::basic(username, &password).map_err(config)?;
            headers.insert(k, v);
            (headers, BearerSpec::None, format!("{username}:{}", password.expose()))
        }
        HttpAuthSpec::Header { name: header, value } => {
            let value = env.secret(name, value)?;
            let (k, v) = auth::sensitive(header, value.expose()).map_err(config)?;
            headers.insert(k, v);
            (headers, BearerSpec::None, value.expose().to_owned())
        }
        HttpAuthSpec::Oauth2ClientCredentials { token_url, client_id, client_secret, scope } => {
            let token_url =
                connector_http::check_base_url(token_url.trim()).map_err(|e| config(format!("token_url: {e}")))?;
            let client_secret = env.secret(name, client_secret)?;
            let key = format!("{client_id}:{}", client_secret.expose());
            let client = OAuth2 { token_url, client_id: client_id.clone(), client_secret, scope: scope.clone() };
            (headers, BearerSpec::OAuth2(client), key)
        }
    })
}

/// The auth of a sandbox target: its token as a bearer token, or as the client secret of its
/// OAuth2 token URL.
fn sandbox_auth(name: &str, t: &SandboxTarget) -> Result<Auth, ConnectorError> {
    let config = |message: String| ConnectorError::Config { connection: name.to_owned(), message };
    let token = Secret::new(t.token.clone());
    match t.extra.get("auth").map(String::as_str) {
        Some("oauth2_client_credentials") => {
            let extra = |k: &str| t.extra.get(k).cloned().ok_or_else(|| config(format!("the sandbox gives no {k}")));
            let token_url = connector_http::check_base_url(&extra("token_url")?).map_err(|e| config(e.to_string()))?;
            let client = OAuth2 { token_url, client_id: extra("client_id")?, client_secret: token, scope: None };
            Ok((HeaderMap::new(), BearerSpec::OAuth2(client), t.token.clone()))
        }
        _ => Ok((HeaderMap::new(), BearerSpec::Token(token), t.token.clone())),
    }
}

fn default_headers(spec: &HttpConnectionSpec) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (k, v) in &spec.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("'{k}' is not an HTTP header name"))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| format!("the value of header '{k}' is not a valid header value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn seconds(key: &str, value: Option<f64>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(format!("{key} must be above 0 and at most 86400 seconds, got {s}")),
    }
}

fn client_config(spec: &HttpConnectionSpec) -> Result<ClientConfig, String> {
    let d = ClientConfig::default();
    Ok(ClientConfig {
        request_timeout: seconds("timeout_secs", spec.timeout_secs, d.request_timeout)?,
        connect_timeout: seconds("connect_timeout_secs", spec.connect_timeout_secs, d.connect_timeout)?,
        ..d
    })
}

/// The pacer of `rate_per_second` and `rate_per_minute` (unlimited without either).
fn pacer(spec: &HttpConnectionSpec) -> Result<Pacer, String> {
    let check = |key: &str, r: f64| {
        if r.is_finite() && r > 0.0 && r <= 100_000.0 {
            Ok(r)
        } else {
            Err(format!("{key} must be above 0 (and at most 100000), got {r}"))
        }
    };
    let mut windows = Vec::new();
    let mut interval = Duration::ZERO;
    if let Some(r) = spec.rate_per_second {
        let r = check("rate_per_second", r)?;
        interval = Duration::from_secs_f64(1.0 / r);
        windows.push(if r >= 1.0 { Window::per_second(r.floor() as u32) } else { Window { limit: 1, per: interval } });
    }
    if let Some(r) = spec.rate_per_minute {
        let r = check("rate_per_minute", r)?;
        windows.push(Window::per_minute((r.floor() as u32).max(1)));
    }
    if windows.is_empty() {
        return Ok(Pacer::unlimited());
    }
    Ok(Pacer::new(windows).with_min_interval(interval))
}
