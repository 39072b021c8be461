//! One process-wide HTTP client: a connection pool shared by every connector and every run,
//! rustls for TLS, with connect and request timeouts.

use std::sync::OnceLock;
use std::time::Duration;

use crate::error::HttpError;

/// Timeouts and identity of the shared client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from sending to the last byte of the body.
    pub request_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(50),
            user_agent: format!("stepwise/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl ClientConfig {
    /// Builds a client of this configuration (use [`shared_client`] unless a test needs its own).
    pub fn build(&self) -> Result<reqwest::Client, HttpError> {
        reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .user_agent(self.user_agent.clone())
            // Redirects could carry the Authorization header to another host; APIs do not need them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))
    }

    /// Builds a client of this configuration that sends `headers` with every request, for APIs
    /// that authenticate otherwise than with a bearer token (mark an `Authorization` value
    /// sensitive so that it never shows in `Debug`). One such client per credential.
    pub fn build_with_headers(&self, headers: reqwest::header::HeaderMap) -> Result<reqwest::Client, HttpError> {
        reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .user_agent(self.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))
    }
}

static SHARED: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();

/// The process-wide client with the default [`ClientConfig`]. Cloning a `reqwest::Client` is
/// cheap and shares its pool; per-request timeouts can still be set on a request.
pub fn shared_client() -> Result<reqwest::Client, HttpError> {
    SHARED.get_or_init(|| ClientConfig::default().build().map_err(|e| e.to_string())).clone().map_err(HttpError::Client)
}
