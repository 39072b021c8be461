//! How an http connection authenticates: headers fixed for the connection (basic, header),
//! a bearer token, or an OAuth2 client-credentials access token fetched from the token URL,
//! cached until shortly before it expires, refreshed, and never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connector_http::reqwest::header::{HeaderName, HeaderValue};
use connector_http::reqwest::{Method, Url};
use connector_http::{Caller, JsonRequest, Safety, SendError};
use engine::{Redactor, Secret};
use tokio::time::Instant;

/// The form content type of an OAuth2 token request (RFC 6749 section 4.4.2).
const FORM: &str = "application/x-www-form-urlencoded";

/// A token with no `expires_in` is kept this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A header holding a credential, marked sensitive so that it never shows in `Debug`.
pub fn sensitive(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("'{name}' is not an HTTP header name"))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header '{name}' holds characters an HTTP header cannot carry"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// `Authorization: Basic base64(username:password)`.
pub fn basic(username: &str, password: &Secret) -> Result<(HeaderName, HeaderValue), String> {
    if username.contains(':') {
        return Err("the basic auth username must not contain ':'".to_owned());
    }
    let encoded = STANDARD.encode(format!("{username}:{}", password.expose()));
    sensitive("authorization", &format!("Basic {encoded}"))
}

/// An OAuth2 client of one token URL and client id.
#[derive(Debug)]
pub struct OAuth2 {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
}

/// The access token of one OAuth2 client, shared by every connection and run of the OS process
/// with the same token URL, client id and secret.
#[derive(Debug)]
pub struct TokenCache {
    client: OAuth2,
    current: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

/// The cache of `client`, made the first time.
pub fn token_cache(client: OAuth2) -> Arc<TokenCache> {
    static CACHES: OnceLock<Mutex<HashMap<String, Arc<TokenCache>>>> = OnceLock::new();
    let key = connector_http::budget_key(
        &format!("oauth2 {} {}", client.token_url, client.client_id),
        client.client_secret.expose(),
    );
    let mut map = CACHES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_insert_with(|| Arc::new(TokenCache { client, current: tokio::sync::Mutex::new(None) })).clone()
}

impl TokenCache {
    /// The cached token if it is still good; otherwise a new one from the token URL. `stale`
    /// is a token the API refused (401): it is not given again.
    pub async fn token(
        &self,
        caller: &Caller,
        redactor: &Redactor,
        stale: Option<&Secret>,
    ) -> Result<Secret, SendError> {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = current.as_ref() {
            let refused = stale.is_some_and(|s| s.expose() == token.expose());
            if !refused && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.fetch(caller).await?;
        redactor.add(token.expose());
        // Renewed a little before it expires, so a token is never sent in its last seconds.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *current = Some((token.clone(), Instant::now() + lifetime - margin));
        tracing::debug!(token_url = %self.client.token_url, lifetime_s = lifetime.as_secs(), "OAuth2 access token fetched.");
        Ok(token)
    }

    async fn fetch(&self, caller: &Caller) -> Result<(Secret, Duration), SendError> {
        let c = &self.client;
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &c.client_id)
                .append_pair("client_secret", c.client_secret.expose());
            if let Some(scope) = &c.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let req = JsonRequest {
            method: Method::POST,
            url: &c.token_url,
            bearer: None,
            body: None,
            label: "oauth2 token",
            timeout: None,
        };
        let answer = caller.send_text(&req, &form, FORM, Safety::Idempotent).await?;
        let invalid = |why: &str| SendError::Status {
            status: answer.status,
            message: format!("the token URL's answer {why}"),
            body: None,
            attempts: answer.attempts,
        };
        let token = answer.body.get("access_token").and_then(|t| t.as_str()).filter(|t| !t.is_empty());
        let token = token.ok_or_else(|| invalid("has no access_token"))?;
        if let Some(kind) = answer.body.get("token_type").and_then(|t| t.as_str())
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(invalid("is not a bearer token"));
        }
        let lifetime = match answer.body.get("expires_in") {
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map(Duration::from_secs)
                .ok_or_else(|| invalid("has an expires_in that is not a number of seconds"))?,
            None => DEFAULT_LIFETIME,
        };
        Ok((Secret::new(token), lifetime))
    }
}
