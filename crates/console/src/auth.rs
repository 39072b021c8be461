//! Who is calling (a bearer token looked up by its hash), what their role lets them do, and
//! refusing state changes that a browser sends from another origin.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::Role;

use crate::Shared;
use crate::error::ApiError;

/// The caller of a request, known from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Whether it may see document contents.
    pub view_data: bool,
}

/// The token of `Authorization: Bearer TOKEN`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The authority the request was sent to: its `Host` header (HTTP/1.1), or its URI's
/// authority (HTTP/2 carries it as `:authority`, with no `Host` header).
fn authority(request: &Request) -> Option<&str> {
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    host.or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Whether a browser sent the request from a page of another origin: `Sec-Fetch-Site` other
/// than `same-origin` or `none`, or an `Origin` whose host is not the authority the request
/// was sent to.
pub(crate) fn cross_origin(request: &Request) -> bool {
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    let Some(origin) = text(header::ORIGIN) else {
        return false;
    };
    let authority = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    match (authority, self::authority(request)) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        _ => true,
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Who calls: a bearer token, or a browser session (which stands for its token while the
/// token exists).
async fn caller(console: &Shared, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if let Some(token) = bearer(headers) {
        let record = console.store.authenticate(&crate::token::hash(token), chrono::Utc::now()).await?;
        return record.map(Caller::from).ok_or_else(|| ApiError::unauthorized("unknown or revoked token"));
    }
    let Some(id) = crate::session::cookie(headers) else {
        return Err(ApiError::unauthorized(
            "a token is required: send 'Authorization: Bearer TOKEN' or sign in at /login",
        ));
    };
    let record = crate::session::token(&*console.store, id).await?;
    record
        .map(Caller::from)
        .ok_or_else(|| ApiError::unauthorized("session expired or its token was revoked; sign in again at /login"))
}

impl From<store::TokenRecord> for Caller {
    fn from(record: store::TokenRecord) -> Caller {
        Caller { name: record.name, role: record.role, view_data: record.view_data }
    }
}

/// Whether a browser sent the request, for a page or a page's form (not the API): refusals are
/// answered as pages.
pub(crate) fn from_browser(request: &Request) -> bool {
    let accepts_html =
        request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    accepts_html && !request.uri().path().starts_with("/api/")
}

/// The refusal of a state change from another origin, saying what did not match.
fn cross_origin_refusal(request: &Request) -> ApiError {
    let text = |name| request.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    let here = authority(request).unwrap_or("-");
    let came = match (text(header::ORIGIN), text(header::HeaderName::from_static("sec-fetch-site"))) {
        (Some(origin), _) => {
            format!("the request came from origin '{origin}', not from '{here}', the address it was sent to")
        }
        (None, Some(site)) => format!("the browser says the request came from another site (Sec-Fetch-Site: {site})"),
        (None, None) => format!("the request's origin is not '{here}', the address it was sent to"),
    };
    ApiError::forbidden(&format!(
        "cross-origin requests may not change state: {came}; behind a reverse proxy, pass the Host header \
         through unchanged"
    ))
}

/// `error` as the client wants it: a page for a browser (with the caller's navigation when the
/// caller is known), JSON otherwise.
fn refuse(request: &Request, caller: Option<&Caller>, error: ApiError) -> Response {
    if from_browser(request) { crate::pages::refusal_page(caller, error) } else { error.into_response() }
}

/// Every route but `/health` and `/login`: a known token or session (401 otherwise), and state
/// changes only from the console's own origin (403 otherwise). The caller goes into the
/// request's extensions.
pub(crate) async fn authenticate(State(console): State<Shared>, mut request: Request, next: Next) -> Response {
    let caller = match caller(&console, request.headers()).await {
        Ok(caller) => caller,
        // A browser without a session (or whose token was revoked) signs in again; a form it
        // posted is not carried out. (A form posted from another site comes without the
        // `SameSite=Strict` cookie: it is refused as cross-origin.)
        Err(error) if error.is_unauthorized() && from_browser(&request) => {
            if !is_safe(request.method()) && cross_origin(&request) {
                let refusal = cross_origin_refusal(&request);
                return refuse(&request, None, refusal);
            }
            return axum::response::Redirect::to("/login").into_response();
        }
        Err(error) => return error.into_response(),
    };
    if !is_safe(request.method()) && cross_origin(&request) {
        tracing::warn!(message = "Cross-origin state change refused.", caller = %caller.name, path = %request.uri().path());
        let refusal = cross_origin_refusal(&request);
        return refuse(&request, Some(&caller), refusal);
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// 403 for a state change a browser sends from another origin (the open `POST /login`).
pub(crate) async fn same_origin(request: Request, next: Next) -> Response {
    if !is_safe(request.method()) && cross_origin(&request) {
        tracing::warn!(message = "Cross-origin state change refused.", caller = "-", path = %request.uri().path());
        let refusal = cross_origin_refusal(&request);
        return refuse(&request, None, refusal);
    }
    next.run(request).await
}

/// 403 unless the caller's role is at least `role`.
pub(crate) async fn require(role: Role, request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.role >= role => next.run(request).await,
        Some(caller) => {
            let error =
                ApiError::forbidden(&format!("this needs the {role} role; token '{}' is {}", caller.name, caller.role));
            refuse(&request, Some(caller), error)
        }
        None => ApiError::unauthorized("a token is required").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn reads_bearer_tokens() {
        assert_eq!(bearer(&headers(&[("authorization", "Bearer abc")])), Some("abc"));
        assert_eq!(bearer(&headers(&[("authorization", "bearer  abc ")])), Some("abc"));
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    /// A request to `uri` with `pairs` as headers.
    fn request(uri: &str, pairs: &[(&'static str, &'static str)]) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        *request.uri_mut() = uri.parse().unwrap();
        *request.headers_mut() = headers(pairs);
        request
    }

    #[test]
    fn tells_cross_origin_requests() {
        let same = |pairs: &[(&'static str, &'static str)]| !cross_origin(&request("/login", pairs));
        assert!(same(&[("host", "127.0.0.1:8080")]));
        assert!(same(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]));
        assert!(same(&[("sec-fetch-site", "same-origin")]));
        assert!(!same(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")]));
        assert!(!same(&[("host", "127.0.0.1:8080"), ("origin", "null")]));
        assert!(!same(&[("origin", "http://127.0.0.1:8080")]));
        assert!(!same(&[("sec-fetch-site", "cross-site")]));
        assert!(!same(&[("sec-fetch-site", "same-site")]));
        // HTTP/2: the authority is in the URI, not in a `Host` header.
        let h2 = |origin: &'static str| cross_origin(&request("https://127.0.0.1:8080/login", &[("origin", origin)]));
        assert!(!h2("https://127.0.0.1:8080"));
        assert!(h2("https://evil.example"));
    }
}
