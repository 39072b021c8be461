//! What a node needs to answer a process's hook (`POST /hooks/<name>`, process format
//! section 11): where the secret is read from (never the secret itself: it is read again on
//! each request, so a rotated secret needs no reload), the headers copied into the start
//! document, and how the request is answered.

use std::path::PathBuf;
use std::time::Duration;

/// The webhook start of a process, as the service holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where the shared secret is read from.
    pub secret: WebhookSecret,
    /// Request headers copied into document properties (named as written here).
    pub headers: Vec<String>,
    /// `respond: sync`: the answer waits for the run's response document.
    pub respond_sync: bool,
    /// How long a `respond: sync` request waits.
    pub respond_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: u64,
}

/// Where a webhook secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSecret {
    /// An environment variable of the node.
    Env(String),
    /// A file (relative paths already resolved against the process file's directory).
    File(PathBuf),
}

impl WebhookSecret {
    /// The secret, trimmed; the error says where it was looked for, never a value.
    pub fn read(&self) -> Result<String, String> {
        let value = match self {
            WebhookSecret::Env(name) => {
                std::env::var(name).map_err(|_| format!("the environment variable '{name}' is not set"))?
            }
            WebhookSecret::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the secret file '{}': {}", path.display(), e.kind()))?
                .trim()
                .to_owned(),
        };
        if value.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        Ok(value)
    }
}
