//! The Boomi Platform connector (`type: boomi_platform`): who holds which role in a Boomi
//! account, and granting and revoking that access, over Boomi's Platform REST API
//! (`../shared/boomi-platform-api.md`).
//!
//! - Objects: `account_user_role` (a user's global role: create, delete, list), `role` (get,
//!   list), `account_group` (get, list), `account_group_user_role` (a user's role within an
//!   account group: create, delete, list).
//! - Inputs are validated against `schemas/boomi_platform/<object>.<action>.json` before any
//!   request; creates and deletes take documents, lists take filters from the step's
//!   parameters, gets take `id` from the parameters or the document.
//! - The identity-governance safety rules are kept here, not left to process authors (see
//!   `src/connector.rs` and `docs/boomi-platform.md`).
//! - Calls go through one pacer per account (10 requests per second by default) with retries
//!   of 503, 429, 502, 504, 500 and transport faults (5 tries, backoff with jitter); every
//!   call is safe to repeat.
//!
//! `--sandbox` points connections at the Boomi simulator: its base URL and token, and the
//! account id and email from the sandbox target's `extra` (`account_id`, `email`).

mod api;
mod connector;
mod error;
mod ops;
mod schemas;
mod settings;

#[cfg(test)]
mod docs;

use std::sync::Arc;

use compiler::{ConnectionSpec, Operation};
use connector_http::reqwest::header::{AUTHORIZATION, HeaderMap};
use connector_http::{Caller, ClientConfig, RetryPolicy, shared_budget};
use engine::{ConnectEnv, Connector, ConnectorError, ConnectorFactory, Secret};
use tokio::sync::OnceCell;

pub use connector::{OUTCOME, STANDARD_USER, is_uuid};
pub use error::BoomiError;
pub use settings::{DEFAULT_BASE_URL, DEFAULT_RATE};

/// The connection type, and the `--sandbox` target key.
pub const CONNECTION_TYPE: &str = "boomi_platform";

/// Tries of one call for transient faults (Boomi's own connectors retry up to 5 times).
pub const MAX_TRIES: u32 = 5;

/// Makes Boomi Platform connectors (`type: boomi_platform`).
#[derive(Debug, Default)]
pub struct BoomiPlatformFactory;

impl ConnectorFactory for BoomiPlatformFactory {
    fn connection_type(&self) -> &'static str {
        CONNECTION_TYPE
    }

    fn operations(&self) -> &'static [Operation] {
        ops::OPERATIONS
    }

    fn check_call(&self, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        schemas::SCHEMAS
            .check_call(call, |_, parameters| serde_json::Value::Object(schemas::parameters_json(parameters)))
    }

    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config = |message: String| ConnectorError::Config { connection: name.to_owned(), message };
        let ConnectionSpec::BoomiPlatform { account_id, email, token, base_url, rate_per_second } = spec else {
            return Err(config("not a boomi_platform connection".to_owned()));
        };
        let sandbox = env.sandbox_for(CONNECTION_TYPE);
        let (root, account, email, token) = match &sandbox {
            Some(target) => {
                let extra = |key: &str| {
                    target.extra.get(key).cloned().ok_or_else(|| config(format!("the Boomi sandbox gives no {key}")))
                };
                let account = extra("account_id")?;
                let root = settings::api_root(Some(&target.base_url), &account).map_err(|e| config(e.to_string()))?;
                (root, account, extra("email")?, Secret::new(target.token.clone()))
            }
            None => {
                let root = settings::api_root(base_url.as_deref(), account_id).map_err(|e| config(e.to_string()))?;
                (root, account_id.clone(), email.clone(), env.secret(name, token)?)
            }
        };
        let rate = settings::rate(*rate_per_second).map_err(|e| config(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, settings::basic_auth(&email, &token).map_err(|e| config(e.to_string()))?);
        let client = ClientConfig::default().build_with_headers(headers).map_err(|e| config(e.to_string()))?;
        // Boomi limits requests per account: every connection to one account shares one budget.
        let pacer = shared_budget(&format!("boomi_platform {root}"), || settings::pacer(rate));
        let caller = Caller::new(
            client,
            pacer,
            RetryPolicy { max_attempts: MAX_TRIES, throttle_as_transient: true, ..RetryPolicy::default() },
        );
        let caller = match env.transports.get::<Arc<dyn connector_http::Transport>>(name) {
            Some(t) => caller.with_transport(t),
            None => caller,
        };
        tracing::debug!(connection = name, api = %root, sandbox = sandbox.is_some(), rate_per_second = rate, "Boomi Platform connection ready.");
        Ok(Arc::new(connector::Boomi {
            connection: name.to_owned(),
            account_id: account,
            api: api::Api::new(caller, root),
            primary: OnceCell::new(),
            standard_user: OnceCell::new(),
        }))
    }
}
