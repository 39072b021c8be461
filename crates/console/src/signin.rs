//! The one-time sign-in address `serve` prints when it made the store's first token (as
//! Jupyter prints its login address): `/login?code=CODE` opens a session for that token once,
//! within [`CODE_LIFETIME`], so that the long-lived token itself never travels in a URL, a
//! browser's history, a proxy's access log or the service's log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::{Role, Store, StoreError};

/// How long the printed address works (once).
pub const CODE_LIFETIME: Duration = Duration::from_secs(3600);

/// A one-time sign-in code for one token; only its hash is kept, and the token's hash, so that
/// the code signs in as that token and no other (not a later token of the same name).
#[derive(Debug)]
pub struct OneTimeCode {
    hash: String,
    token: String,
    token_hash: String,
    expires: Instant,
}

/// The first token `serve` made: its one-time sign-in code (printed in the address), and the
/// code's record for [`crate::Options::sign_in`].
#[derive(Debug)]
pub struct FirstSignIn {
    /// The code of the address, shown only once.
    pub code: String,
    /// What the console keeps of it.
    pub record: OneTimeCode,
}

/// When the store holds no token: makes an admin token named `admin` (its value is never
/// shown) and a one-time code that signs in as it. `None` when the store already holds a
/// token.
pub async fn first_sign_in(store: &dyn Store) -> Result<Option<FirstSignIn>, StoreError> {
    let (_token, record) = crate::token::issue("admin", Role::Admin, true);
    let token_hash = record.hash.clone();
    if !store.create_first_token(&record).await? {
        return Ok(None);
    }
    let detail = "role admin, view data; made by serve for its one-time sign-in address, never shown";
    let entry = store::AuditEntry {
        at: chrono::Utc::now(),
        actor: "serve".to_owned(),
        action: "token_create".to_owned(),
        target: "admin".to_owned(),
        detail: Some(detail.to_owned()),
    };
    // An action that cannot be recorded does not happen: without its audit line, the token goes.
    if let Err(error) = store.record_audit(&entry).await {
        let _ = store.revoke_token("admin", false).await;
        return Err(error);
    }
    let code = crate::token::generate_with(crate::token::CODE_PREFIX);
    let record =
        OneTimeCode { hash: crate::token::hash(&code), token: "admin".to_owned(), token_hash, expires: deadline() };
    Ok(Some(FirstSignIn { code, record }))
}

fn deadline() -> Instant {
    Instant::now() + CODE_LIFETIME
}

/// The console's unused code, if any.
#[derive(Debug, Default)]
pub(crate) struct Codes(Mutex<Option<OneTimeCode>>);

impl Codes {
    pub(crate) fn new(code: Option<OneTimeCode>) -> Codes {
        Codes(Mutex::new(code))
    }

    /// The name and hash of the token `code` signs in as, if it is the unused, unexpired code
    /// (without using it).
    pub(crate) fn peek(&self, code: &str) -> Option<(String, String)> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref().filter(|h| h.matches(code)).map(|h| (h.token.clone(), h.token_hash.clone()))
    }

    /// Uses `code`: whether it was the unused, unexpired code (true once).
    pub(crate) fn take(&self, code: &str) -> bool {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if held.as_ref().is_some_and(|h| h.matches(code)) { held.take().is_some() } else { false }
    }
}

impl OneTimeCode {
    fn matches(&self, code: &str) -> bool {
        Instant::now() < self.expires && crate::token::hash(code.trim()) == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(expires: Instant) -> (String, Codes) {
        let code = crate::token::generate();
        let record =
            OneTimeCode { hash: crate::token::hash(&code), token: "admin".into(), token_hash: "h".into(), expires };
        (code, Codes::new(Some(record)))
    }

    #[test]
    fn a_code_signs_in_once() {
        let (code, codes) = code(deadline());
        assert_eq!(codes.peek("stw_wrong"), None);
        assert!(!codes.take("stw_wrong"));
        assert_eq!(codes.peek(&code), Some(("admin".to_owned(), "h".to_owned())));
        assert!(codes.take(&code));
        assert_eq!(codes.peek(&code), None);
        assert!(!codes.take(&code));
    }

    #[test]
    fn an_expired_code_signs_in_nobody() {
        let (code, codes) = code(Instant::now());
        assert!(!codes.take(&code));
    }
}
