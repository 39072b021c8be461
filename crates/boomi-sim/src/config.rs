//! Plain-data configuration of a simulator instance: address, account, credentials, seed data,
//! limits and faults.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The default account id of the sandbox.
pub const SANDBOX_ACCOUNT_ID: &str = "stepwise-sandbox-AB12CD";
/// The default API user's email.
pub const SANDBOX_EMAIL: &str = "admin@example.com";
/// The default API token.
pub const SANDBOX_TOKEN: &str = "sandbox-boomi-token";

/// Everything a simulator instance needs; cheap to build in tests with struct update syntax
/// (`SimConfig { seed_users: 5, ..SimConfig::default() }`).
///
/// `Debug` is written by hand so that the token never reaches a log.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to bind, 127.0.0.1 by default.
    pub bind: IpAddr,
    /// Port to bind; 0 (the default) picks any free port (read it back with `SimHandle::addr`).
    pub port: u16,
    /// The Boomi account id served under `/api/rest/v1/{accountId}/`.
    pub account_id: String,
    /// The API user's email; the Basic auth user name is `BOOMI_TOKEN.<email>`.
    pub email: String,
    /// The API token, the Basic auth password.
    pub token: String,
    /// Seed of the generated data and of the fault sequence.
    pub seed: u64,
    /// Number of seeded users (all have logged in), default 30.
    pub seed_users: usize,
    /// A primary account (has account groups); `false` = no account groups at all.
    pub primary: bool,
    /// Requests per second for the account; `None` = unlimited. Boomi: 10.
    pub rate_per_second: Option<u32>,
    /// Share of admitted requests that get a fault (500, 503, dropped connection, slow answer).
    pub fault_rate: f64,
    /// Delay of a "slow answer" fault, in milliseconds.
    pub slow_ms: u64,
    /// Also seed users whose data needs exact comparison and escaping (a plus-addressed email,
    /// an apostrophe, quotes, a backslash, a newline and non-ASCII letters), with Standard User.
    /// Off by default; `--sandbox` turns it on.
    pub seed_edge_cases: bool,
    /// Faults for chosen requests of chosen operations (`AccountUserRole.create`, ...).
    pub fault_script: Vec<sim_net::ScriptedFault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            account_id: SANDBOX_ACCOUNT_ID.to_string(),
            email: SANDBOX_EMAIL.to_string(),
            token: SANDBOX_TOKEN.to_string(),
            seed: 1,
            seed_users: 30,
            primary: true,
            rate_per_second: Some(10),
            fault_rate: 0.0,
            slow_ms: 1500,
            seed_edge_cases: false,
            fault_script: Vec::new(),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("token", &"[redacted]")
            .field("seed", &self.seed)
            .field("seed_users", &self.seed_users)
            .field("primary", &self.primary)
            .field("rate_per_second", &self.rate_per_second)
            .field("fault_rate", &self.fault_rate)
            .field("slow_ms", &self.slow_ms)
            .field("seed_edge_cases", &self.seed_edge_cases)
            .field("fault_script", &self.fault_script)
            .finish()
    }
}

impl SimConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.fault_rate.is_nan() || !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(format!("fault_rate must be within 0.0..=1.0, got {}", self.fault_rate));
        }
        if self.account_id.trim().is_empty() || self.account_id.contains('/') {
            return Err("account_id must be non-empty and must not contain '/'".to_string());
        }
        if self.email.trim().is_empty() {
            return Err("email must not be empty".to_string());
        }
        if self.token.trim().is_empty() {
            return Err("token must not be empty".to_string());
        }
        if self.rate_per_second == Some(0) {
            return Err("a rate limit of 0 would refuse everything; use None for unlimited".to_string());
        }
        Ok(())
    }
}
