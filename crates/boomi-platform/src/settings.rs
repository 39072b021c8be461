//! Connection settings: the API root of an account (`{base}/api/rest/v1/{accountId}/`), the
//! Basic credentials (`BOOMI_TOKEN.<email>` and the token), and the request rate as a pacer.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connector_http::reqwest::Url;
use connector_http::reqwest::header::HeaderValue;
use connector_http::{Pacer, Window};
use engine::Secret;

use crate::error::BoomiError;

/// Boomi's API host; a connection's `base_url` replaces it.
pub const DEFAULT_BASE_URL: &str = "https://api.boomi.com";

/// Boomi's documented limit: 10 requests per second per account.
pub const DEFAULT_RATE: f64 = 10.0;

/// The account's API root, `{base}/api/rest/v1/{accountId}/`, ending with a slash. `base` must
/// be https, or plain http to a loopback host.
pub fn api_root(base_url: Option<&str>, account_id: &str) -> Result<Url, BoomiError> {
    let account = account_id.trim();
    if account.is_empty() || account != account_id || account.contains(['/', '?', '#']) {
        return Err(BoomiError::Setting(format!(
            "account_id '{account_id}' is not a Boomi account id (no spaces, slashes, '?' or '#')"
        )));
    }
    let base = base_url.unwrap_or(DEFAULT_BASE_URL).trim().trim_end_matches('/');
    let mut url = connector_http::check_base_url(base)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BoomiError::Setting(format!("base_url '{base}' must not carry a query or a fragment")));
    }
    {
        let Ok(mut path) = url.path_segments_mut() else {
            return Err(BoomiError::Setting(format!("base_url '{base}' cannot take a path")));
        };
        path.pop_if_empty().extend(["api", "rest", "v1", account, ""]);
    }
    Ok(url)
}

/// `Authorization: Basic base64("BOOMI_TOKEN.<email>:<token>")`, marked sensitive so that it
/// never shows in `Debug` output.
pub fn basic_auth(email: &str, token: &Secret) -> Result<HeaderValue, BoomiError> {
    let email = email.trim();
    let looks_like_email = email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !looks_like_email || email.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err(BoomiError::Setting(format!("email '{email}' is not the API user's email address")));
    }
    let encoded = STANDARD.encode(format!("BOOMI_TOKEN.{email}:{}", token.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| BoomiError::Setting("the token cannot be sent in an HTTP header".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The requests per second a connection allows itself (`rate_per_second`, default 10).
pub fn rate(rate_per_second: Option<f64>) -> Result<f64, BoomiError> {
    let rate = rate_per_second.unwrap_or(DEFAULT_RATE);
    if !rate.is_finite() || rate <= 0.0 || rate > 10_000.0 {
        return Err(BoomiError::Setting(format!("rate_per_second must be above 0 (and at most 10000), got {rate}")));
    }
    Ok(rate)
}

/// A pacer that never starts more than `rate` requests in any second and spreads them evenly:
/// at most `floor(rate)` per rolling second (one per `1/rate` seconds below 1 per second), and
/// `1/rate` seconds between two starts.
pub fn pacer(rate: f64) -> Pacer {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let window = if rate >= 1.0 { Window::per_second(rate.floor() as u32) } else { Window { limit: 1, per: interval } };
    Pacer::new(vec![window]).with_min_interval(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_roots() {
        let root = api_root(None, "acme-AB12CD").unwrap();
        assert_eq!(root.as_str(), "https://api.boomi.com/api/rest/v1/acme-AB12CD/");
        assert_eq!(
            root.join("Role/query").unwrap().as_str(),
            "https://api.boomi.com/api/rest/v1/acme-AB12CD/Role/query"
        );
        let sim = api_root(Some("http://127.0.0.1:8788/"), "x").unwrap();
        assert_eq!(sim.as_str(), "http://127.0.0.1:8788/api/rest/v1/x/");
        let proxied = api_root(Some("https://proxy.example/boomi"), "x").unwrap();
        assert_eq!(proxied.as_str(), "https://proxy.example/boomi/api/rest/v1/x/");
        assert!(api_root(Some("http://api.boomi.com"), "x").is_err(), "plain http to a remote host");
        assert!(api_root(Some("https://u:p@api.boomi.com"), "x").is_err(), "credentials in the URL");
        assert!(api_root(None, "").is_err());
        assert!(api_root(None, "a/b").is_err());
        assert!(api_root(None, " a").is_err());
    }

    #[test]
    fn basic_auth_is_the_token_user_and_is_sensitive() {
        let v = basic_auth("admin@example.com", &Secret::new("t0ken")).unwrap();
        assert!(v.is_sensitive());
        let text = v.to_str().unwrap();
        let decoded = STANDARD.decode(text.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "BOOMI_TOKEN.admin@example.com:t0ken");
        assert!(!format!("{v:?}").contains(text));
        assert!(basic_auth("not an email", &Secret::new("t")).is_err());
        assert!(basic_auth("a:b@example.com", &Secret::new("t")).is_err());
    }

    #[test]
    fn rates_and_pacers() {
        assert_eq!(rate(None).unwrap(), 10.0);
        assert_eq!(rate(Some(2.5)).unwrap(), 2.5);
        assert!(rate(Some(0.0)).is_err());
        assert!(rate(Some(f64::NAN)).is_err());
        assert_eq!(pacer(10.0).windows(), &[Window::per_second(10)]);
        assert_eq!(pacer(2.5).windows(), &[Window::per_second(2)]);
        assert_eq!(pacer(0.5).windows(), &[Window { limit: 1, per: Duration::from_secs(2) }]);
    }
}
