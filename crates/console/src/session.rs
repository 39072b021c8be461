//! Browser sessions: a token traded at `/login` for a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie. Sessions live in this node's memory (a restart signs everyone
//! out); each one stands for its token, so revoking the token ends its sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

/// The cookie's name.
pub const COOKIE: &str = "stepwise_session";

/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The sessions of this node: session id → (token name, expiry).
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session for the token `name`; its id.
    pub(crate) fn open(&self, name: &str) -> String {
        let id = crate::token::generate();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, expires)| *expires > now);
        map.insert(id.clone(), (name.to_owned(), now + LIFETIME));
        id
    }

    /// The token name of a live session.
    pub(crate) fn token_name(&self, id: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|(_, expires)| *expires > Instant::now()).map(|(name, _)| name.clone())
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
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
pub(crate) fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", LIFETIME.as_secs())
}

/// The `Set-Cookie` value that ends the session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_stand_for_tokens() {
        let sessions = Sessions::default();
        let id = sessions.open("ci");
        assert_eq!(sessions.token_name(&id).as_deref(), Some("ci"));
        assert_eq!(sessions.token_name("other"), None);
        sessions.close(&id);
        assert_eq!(sessions.token_name(&id), None);
    }

    #[test]
    fn reads_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; stepwise_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "stepwise_session=".parse().unwrap());
        assert_eq!(cookie(&headers), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
