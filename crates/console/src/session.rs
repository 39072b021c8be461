//! Browser sessions: a token traded at `/login` for a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie. Sessions are kept in the run store (only the SHA-256 of their id),
//! so every node of a cluster knows them and a restart signs nobody out; each one stands for
//! its token, so revoking the token ends its sessions.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use chrono::Utc;
use store::{Store, StoreError, TokenRecord};

/// The cookie's name.
pub const COOKIE: &str = "stepwise_session";

/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A new session for the token `name`; its id (for the cookie).
pub(crate) async fn open(store: &dyn Store, name: &str) -> Result<String, StoreError> {
    let id = crate::token::generate_with(crate::token::SESSION_PREFIX);
    let expires = Utc::now() + chrono::Duration::from_std(LIFETIME).unwrap_or_default();
    store.open_session(&crate::token::hash(&id), name, expires).await?;
    Ok(id)
}

/// The token of a live session.
pub(crate) async fn token(store: &dyn Store, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    store.session(&crate::token::hash(id), Utc::now()).await
}

/// Ends a session (and forgets expired ones).
pub(crate) async fn close(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    store.close_session(&crate::token::hash(id), Utc::now()).await
}

/// The session id of the request's cookie.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

/// The `Set-Cookie` value for session `id`.
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", LIFETIME.as_secs())
}

/// Whether a reverse proxy says the browser came over HTTPS (`X-Forwarded-Proto: https`): the
/// cookie is then `Secure` too. Trusting the header only makes the cookie stricter: a client
/// that lies about it over plain HTTP only keeps its own browser from sending the cookie back.
pub(crate) fn behind_https_proxy(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that ends the session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; stepwise_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "stepwise_session=".parse().unwrap());
        assert_eq!(cookie(&headers), None);
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("x", true).ends_with("; Secure") && !set_cookie("x", false).contains("Secure"));
        let mut headers = axum::http::HeaderMap::new();
        assert!(!behind_https_proxy(&headers));
        headers.insert("x-forwarded-proto", "HTTPS, http".parse().unwrap());
        assert!(behind_https_proxy(&headers));
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert!(!behind_https_proxy(&headers));
    }
}
