//! The Platform API under `/api/rest/v1/{accountId}/`: routing to an `Object.operation`, the
//! gate every request passes (auth, account, rate limit, faults, JSON headers), and the
//! operations themselves.
//!
//! Gate order: the request is counted (`requests`, `by_operation`); bad Basic credentials
//! answer 401; another account id answers 403; an unknown path answers 404 (405 for a known
//! object without that operation); over the rate limit answers 503 (`throttled`); then a seeded
//! fault may strike (`faults`); a request without `Accept: application/json` answers 406, and a
//! JSON operation without `Content-Type: application/json` answers 415 (the real service
//! would answer XML; the simulator only speaks JSON). `queryMore` takes any content type: its
//! body is the bare token (a JSON string is unquoted too).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sim_net::stats::bump;
use sim_net::{Conn, Fault, Moment, Strike};

use crate::model::Object;
use crate::reply::{ApiError, Shape, empty_ok, json_response};
use crate::server::{AppState, Shared, log_request};

const PREFIX: &str = "/api/rest/v1/";
/// Boomi's 503 text, for the rate limit and for injected unavailability alike.
const UNAVAILABLE: &str =
    "The Boomi server is currently unavailable or your account's rate limits have been exceeded. Retry later.";

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Operation {
    Create(Object),
    Delete(Object, String),
    Get(Object, String),
    Query(Object),
    QueryMore(Object),
    Bulk(Object),
}

impl Operation {
    fn name(&self) -> String {
        let (object, op) = match self {
            Operation::Create(o) => (o, "create"),
            Operation::Delete(o, _) => (o, "delete"),
            Operation::Get(o, _) => (o, "get"),
            Operation::Query(o) => (o, "query"),
            Operation::QueryMore(o) => (o, "queryMore"),
            Operation::Bulk(o) => (o, "bulk"),
        };
        format!("{}.{op}", object.name())
    }

    /// Whether the body must be JSON.
    fn json_body(&self) -> bool {
        matches!(self, Operation::Create(_) | Operation::Query(_) | Operation::Bulk(_))
    }
}

/// Why a path does not name an operation.
enum Unrouted {
    NotFound,
    MethodNotAllowed(Object),
}

fn supports(object: Object, op: &Operation) -> bool {
    use Object::*;
    match op {
        Operation::Create(_) | Operation::Delete(..) => matches!(object, AccountUserRole | AccountGroupUserRole),
        Operation::Get(..) => matches!(object, Role | AccountGroup),
        Operation::Query(_) | Operation::QueryMore(_) => true,
        Operation::Bulk(_) => object == Role,
    }
}

fn route(method: &Method, segments: &[String]) -> Result<Operation, Unrouted> {
    let Some(object) = segments.first().and_then(|s| Object::parse(s)) else {
        return Err(Unrouted::NotFound);
    };
    let op = match (segments.len(), segments.get(1).map(String::as_str)) {
        (1, _) if method == Method::POST => Operation::Create(object),
        (2, Some("query")) if method == Method::POST => Operation::Query(object),
        (2, Some("queryMore")) if method == Method::POST => Operation::QueryMore(object),
        (2, Some("bulk")) if method == Method::POST && object == Object::Role => Operation::Bulk(object),
        (2, Some(id)) if method == Method::GET && !id.is_empty() => Operation::Get(object, id.to_string()),
        (2, Some(id)) if method == Method::DELETE && !id.is_empty() => Operation::Delete(object, id.to_string()),
        (1 | 2, _) => return Err(Unrouted::MethodNotAllowed(object)),
        _ => return Err(Unrouted::NotFound),
    };
    if supports(object, &op) { Ok(op) } else { Err(Unrouted::MethodNotAllowed(object)) }
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes one path segment; `None` when it is not valid UTF-8 or a bad escape.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Splits `/api/rest/v1/{account}/{rest...}` into the account and the decoded rest.
fn split_path(path: &str) -> Option<(String, Vec<String>)> {
    let rest = path.strip_prefix(PREFIX)?;
    let mut parts = rest.split('/').map(percent_decode);
    let account = parts.next()??;
    let segments = parts.collect::<Option<Vec<_>>>()?;
    Some((account, segments))
}

/// Checks `Authorization: Basic base64("BOOMI_TOKEN.<email>:<token>")`.
fn authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return false;
    };
    let Some(email) = user.strip_prefix("BOOMI_TOKEN.") else {
        return false;
    };
    email.eq_ignore_ascii_case(&shared.config.email) && password == shared.config.token
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, wanted: &str) -> bool {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| v.to_ascii_lowercase().contains(wanted))
}

/// The axum handler of every `/api/rest/v1/...` request.
pub(crate) async fn handle(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let path = uri.path().to_string();
    let parsed = split_path(&path);
    let routed = match &parsed {
        Some((_, segments)) => route(&method, segments),
        None => Err(Unrouted::NotFound),
    };
    let op_name = routed.as_ref().map_or_else(|_| "unmatched".to_string(), Operation::name);
    app.stats.gate.request([op_name.as_str()]);
    let resp = respond(&app, &conn, &method, parsed, routed, &headers, &body).await;
    log_request(method.as_str(), &path, &op_name, resp.status(), started);
    resp
}

async fn respond(
    app: &AppState,
    conn: &Conn,
    method: &Method,
    parsed: Option<(String, Vec<String>)>,
    routed: Result<Operation, Unrouted>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if !authenticated(app, headers) {
        bump(&app.stats.gate.unauthorized);
        let mut resp =
            ApiError::new(StatusCode::UNAUTHORIZED, Shape::Message, "Unauthorized: bad or missing credentials")
                .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Boomi Platform API\""));
        return resp;
    }
    let account = parsed.as_ref().map(|(a, _)| a.as_str()).unwrap_or_default();
    if account != app.config.account_id {
        bump(&app.stats.forbidden);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Shape::Message,
            format!("You are not authorized to access account {account}"),
        )
        .into_response();
    }
    let op = match routed {
        Ok(op) => op,
        Err(Unrouted::NotFound) => return ApiError::not_found("Not Found").into_response(),
        Err(Unrouted::MethodNotAllowed(object)) => {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Shape::Typed,
                format!("The {} object does not support {method} on this path", object.name()),
            )
            .into_response();
        }
    };
    if !app.limiter.admit() {
        bump(&app.stats.gate.throttled);
        let mut resp = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Shape::Message, UNAVAILABLE).into_response();
        resp.headers_mut().insert("x-sim-reason", HeaderValue::from_static("throttled"));
        return resp;
    }
    // The random draw is always made, so the random sequence does not depend on the script.
    let drawn = app.faults.draw();
    let (fault, later) = match app.script.check([op.name().as_str()]) {
        Some(Strike { fault, moment: Moment::Before }) => (Some(fault), None),
        Some(strike) => (None, Some(strike)),
        None => (drawn, None),
    };
    if let Some(fault) = fault
        && let Some(answer) = fault_before(app, conn, fault).await
    {
        return answer;
    }
    if !header_has(headers, header::ACCEPT, "application/json") {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            Shape::Typed,
            "This simulator answers JSON only: send Accept: application/json",
        )
        .into_response();
    }
    if op.json_body() && !header_has(headers, header::CONTENT_TYPE, "application/json") {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Shape::Typed,
            "This simulator reads JSON only: send Content-Type: application/json",
        )
        .into_response();
    }
    if let Some(Strike { fault, moment: Moment::Late }) = later {
        // The answer is lost now; the change lands later, as a slow commit does.
        let (app, body) = (Arc::clone(app), body.clone());
        let delay = Duration::from_millis(app.config.slow_ms);
        let answer = fault_before(&app, conn, fault).await;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = execute(&app, &op, &body);
        });
        return answer.unwrap_or_else(gateway_timeout);
    }
    let resp = match execute(app, &op, body) {
        Ok(Some(value)) => json_response(StatusCode::OK, &value),
        Ok(None) => empty_ok(),
        Err(e) => e.into_response(),
    };
    match later {
        // The request was executed (and committed); its answer is replaced.
        Some(Strike { fault, .. }) => fault_before(app, conn, fault).await.unwrap_or(resp),
        None => resp,
    }
}

fn gateway_timeout() -> Response {
    ApiError::new(StatusCode::GATEWAY_TIMEOUT, Shape::Message, "Gateway Timeout").into_response()
}

/// The answer of a fault, or `None` when the request goes on (a slow answer).
async fn fault_before(app: &Shared, conn: &Conn, fault: Fault) -> Option<Response> {
    app.stats.gate.fault(fault.as_str());
    tracing::debug!(fault = fault.as_str(), "boomi-sim: injecting fault");
    match fault {
        Fault::InternalError => Some(
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Shape::Nested, "Internal server error").into_response(),
        ),
        Fault::Unavailable => {
            let mut resp = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Shape::Message, UNAVAILABLE).into_response();
            resp.headers_mut().insert("x-sim-reason", HeaderValue::from_static("fault"));
            Some(resp)
        }
        Fault::GatewayTimeout => Some(gateway_timeout()),
        Fault::Slow => {
            tokio::time::sleep(Duration::from_millis(app.config.slow_ms)).await;
            None
        }
        Fault::Drop => {
            conn.drop_connection();
            Some(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Shape::Nested, "dropped").into_response())
        }
        // Boomi answers JSON or nothing; a malformed body is not among its faults.
        Fault::Malformed => None,
    }
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("The request body is not valid JSON: {e}")))
}

fn token_body(body: &Bytes) -> Result<String, ApiError> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let token = if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|e| ApiError::malformed(format!("Bad queryToken: {e}")))?
    } else {
        text.to_string()
    };
    if token.is_empty() {
        return Err(ApiError::rule("queryMore needs the queryToken as its body"));
    }
    Ok(token)
}

/// Runs an admitted operation. `Ok(None)` is a 200 with an empty body (deletes).
fn execute(app: &Shared, op: &Operation, body: &Bytes) -> Result<Option<Value>, ApiError> {
    match op {
        Operation::Create(object) => {
            let body = json_body(body)?;
            let mut db = app.lock_db();
            match object {
                Object::AccountUserRole => db.create_user_role(&body).map(Some),
                _ => db.create_group_role(&body).map(Some),
            }
        }
        Operation::Delete(object, id) => {
            let mut db = app.lock_db();
            match object {
                Object::AccountUserRole => db.delete_user_role(id).map(|_| None),
                _ => db.delete_group_role(id).map(|()| None),
            }
        }
        Operation::Get(object, id) => {
            let db = app.lock_db();
            match object {
                Object::Role => db.get_role(id).map(Some),
                _ => db.get_group(id).map(Some),
            }
        }
        Operation::Query(object) => {
            let body = json_body(body)?;
            app.lock_db().query(*object, &body).map(Some)
        }
        Operation::QueryMore(object) => {
            let token = token_body(body)?;
            app.lock_db().query_more(*object, &token).map(Some)
        }
        Operation::Bulk(_) => {
            let body = json_body(body)?;
            app.lock_db().bulk_roles(&body).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        split_path(path).map(|(_, s)| s).unwrap_or_default()
    }

    #[test]
    fn routes() {
        let r = |m: Method, p: &str| route(&m, &segs(p)).ok().map(|o| o.name());
        assert_eq!(r(Method::POST, "/api/rest/v1/a/AccountUserRole").as_deref(), Some("AccountUserRole.create"));
        assert_eq!(r(Method::DELETE, "/api/rest/v1/a/AccountUserRole/x").as_deref(), Some("AccountUserRole.delete"));
        assert_eq!(r(Method::GET, "/api/rest/v1/a/AccountUserRole/x"), None);
        assert_eq!(r(Method::POST, "/api/rest/v1/a/Role/bulk").as_deref(), Some("Role.bulk"));
        assert_eq!(r(Method::POST, "/api/rest/v1/a/AccountGroup/bulk"), None);
        assert_eq!(r(Method::GET, "/api/rest/v1/a/Role/x%7Cy").as_deref(), Some("Role.get"));
        assert_eq!(r(Method::POST, "/api/rest/v1/a/Nope/query"), None);
    }

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%40b.c").as_deref(), Some("a@b.c"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
