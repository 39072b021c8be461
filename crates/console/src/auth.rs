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

/// Whether a browser sent the request from a page of another origin: `Sec-Fetch-Site` other
/// than `same-origin` or `none`, or an `Origin` whose host is not the request's `Host`.
pub(crate) fn cross_origin(headers: &HeaderMap) -> bool {
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
    match (authority, text(header::HOST)) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        _ => true,
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every route but `/health`: a known token (401 otherwise), and state changes only from the
/// console's own origin (403 otherwise). The caller goes into the request's extensions.
pub(crate) async fn authenticate(State(console): State<Shared>, mut request: Request, next: Next) -> Response {
    let Some(token) = bearer(request.headers()) else {
        return ApiError::unauthorized("a token is required: send 'Authorization: Bearer TOKEN'").into_response();
    };
    let record = match console.store.authenticate(&crate::token::hash(token), chrono::Utc::now()).await {
        Ok(Some(record)) => record,
        Ok(None) => return ApiError::unauthorized("unknown or revoked token").into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    if !is_safe(request.method()) && cross_origin(request.headers()) {
        tracing::warn!(message = "Cross-origin state change refused.", caller = %record.name, path = %request.uri().path());
        return ApiError::forbidden("cross-origin requests may not change state").into_response();
    }
    request.extensions_mut().insert(Caller { name: record.name, role: record.role, view_data: record.view_data });
    next.run(request).await
}

/// 403 unless the caller's role is at least `role`.
pub(crate) async fn require(role: Role, request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.role >= role => next.run(request).await,
        Some(caller) => {
            ApiError::forbidden(&format!("this needs the {role} role; token '{}' is {}", caller.name, caller.role))
                .into_response()
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

    #[test]
    fn tells_cross_origin_requests() {
        assert!(!cross_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!cross_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(cross_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_origin(&headers(&[("sec-fetch-site", "same-site")])));
    }
}
