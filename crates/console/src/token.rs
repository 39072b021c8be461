//! API tokens: 32 random bytes, shown once; the store keeps only their SHA-256.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::Digest as _;
use store::{NewToken, Role};

/// Every token starts with this, so that secret scanners recognise a leaked one.
pub const PREFIX: &str = "stw_";

/// What a one-time sign-in code starts with.
pub const CODE_PREFIX: &str = "stwc_";

/// What a session id (the cookie) starts with: not a token, and never accepted as one.
pub const SESSION_PREFIX: &str = "stws_";

/// A new random token (from the operating system's seeded CSPRNG).
pub fn generate() -> String {
    generate_with(PREFIX)
}

/// 32 random bytes (from the operating system's seeded CSPRNG) after `prefix`.
pub(crate) fn generate_with(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of `token`, lower-case hex: what the store keeps and looks tokens up by.
pub fn hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token named `name`, and the record to store for it.
pub fn issue(name: &str, role: Role, view_data: bool) -> (String, NewToken) {
    let token = generate();
    let record =
        NewToken { name: name.to_owned(), hash: hash(&token), role, view_data, created_at: chrono::Utc::now() };
    (token, record)
}

/// Checks a token name: 1 to 64 letters, digits, `.`, `_` or `-`, not `.` or `..` (which a
/// URL path cannot carry: `/api/v1/tokens/..` is `/api/v1/`).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !matches!(name, "." | "..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid token name '{name}': use 1 to 64 letters, digits, '.', '_' or '-' (not '.' or '..')"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let (token, record) = issue("ci", Role::Operator, false);
        assert_eq!(record.hash, hash(&token));
        assert!(!format!("{record:?}").contains(&token));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ci-bot.1_x").is_ok());
        assert!(check_name("...").is_ok());
        for bad in ["", "a b", "ü", ".", "..", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
