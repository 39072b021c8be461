//! The KnowBe4 connector: every object/action pair of the reference
//! (`../shared/knowbe4-api.md`) over the KSAT GraphQL API, and the Partner API's `accounts`.
//!
//! - Inputs are validated against `schemas/knowbe4/<object>.<action>.json` before any request.
//! - Writes take the document as the GraphQL operation's arguments (camelCase); `get`, `list`
//!   and `delete` take the step's `parameters`. Outputs are the GraphQL nodes as JSON.
//! - Calls go through one pacer per API key (KnowBe4's 4/s and 50/min by default), with
//!   retries for transient faults; creates are never blindly re-sent after an unknown outcome.
//! - Membership adds/removes (and archive/unarchive) are batched, 50 ids per call.
//!
//! See `docs/knowbe4.md` for the user-facing description.

mod bulk;
mod connector;
mod error;
mod graphql;
mod ops;
mod schemas;
mod settings;

#[cfg(test)]
mod docs;

use std::sync::Arc;

use compiler::{ConnectionSpec, Operation};
use connector_http::{Caller, shared_budget};
use engine::{ConnectEnv, Connector, ConnectorError, ConnectorFactory, Secret};

pub use error::KnowBe4Error;
pub use settings::{DEFAULT_RATE, RATE_ENV, REGIONS, Rate, Region};

/// The `--sandbox` target key of the partner token (the KSAT token's key is `knowbe4`).
pub const PARTNER_SANDBOX: &str = "knowbe4-partner";

/// The safe number of user ids per bulk membership call.
pub const BULK_SIZE: usize = ops::BULK_SIZE;

/// Makes KnowBe4 connectors (`type: knowbe4`).
#[derive(Debug, Default)]
pub struct KnowBe4Factory;

/// The key of the rate budget shared by every user of one API key at one URL (the token is
/// hashed, never stored in the key).
fn pacer_key(url: &connector_http::reqwest::Url, token: &Secret) -> String {
    connector_http::budget_key(&format!("knowbe4 {url}"), token.expose())
}

impl ConnectorFactory for KnowBe4Factory {
    fn connection_type(&self) -> &'static str {
        "knowbe4"
    }

    fn operations(&self) -> &'static [Operation] {
        ops::OPERATIONS
    }

    fn check_call(&self, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        schemas::SCHEMAS.check_call(call, schemas::parameters_json)
    }

    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config = |message: String| ConnectorError::Config { connection: name.to_owned(), message };
        let ConnectionSpec::Knowbe4 { region, token, base_url } = spec else {
            return Err(config("not a knowbe4 connection".to_owned()));
        };
        let sandbox = env.sandbox_for("knowbe4");
        let (url, token, partner) = match &sandbox {
            Some(target) => {
                let url = settings::graphql_url(region, Some(&target.base_url)).map_err(|e| config(e.to_string()))?;
                let partner = env.sandbox_for(PARTNER_SANDBOX).map(|t| Secret::new(t.token));
                (url, Secret::new(target.token.clone()), partner)
            }
            None => {
                let url = settings::graphql_url(region, base_url.as_deref()).map_err(|e| config(e.to_string()))?;
                (url, env.secret(name, token)?, None)
            }
        };
        let rate = Rate::from_env().map_err(|e| config(e.to_string()))?;
        let policy = settings::retry_policy().map_err(|e| config(e.to_string()))?;
        let client = connector_http::shared_client().map_err(|e| config(e.to_string()))?;
        let caller_for = |t: &Secret| {
            let pacer = shared_budget(&pacer_key(&url, t), || rate.pacer());
            let caller = Caller::new(client.clone(), pacer, policy.clone());
            match env.transports.get::<Arc<dyn connector_http::Transport>>(name) {
                Some(t) => caller.with_transport(t),
                None => caller,
            }
        };
        let caller = caller_for(&token);
        let partner = partner.map(|t| {
            let c = caller_for(&t);
            (t, c)
        });
        tracing::debug!(connection = name, url = %url, sandbox = sandbox.is_some(), per_second = ?rate.per_second, per_minute = ?rate.per_minute, "KnowBe4 connection ready.");
        Ok(Arc::new(connector::KnowBe4 { connection: name.to_owned(), url, token, caller, partner }))
    }
}
