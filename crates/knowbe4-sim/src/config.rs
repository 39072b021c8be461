//! Plain-data configuration of a simulator instance: address, seed data sizes, tokens, limits, faults.

use std::net::{IpAddr, Ipv4Addr};

/// The scope of a bearer token, fixed when the simulator starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// KSAT Product API token with Read/Write scope: queries and mutations.
    ReadWrite,
    /// KSAT Product API token with Read Only scope: queries only; mutations get a GraphQL error.
    ReadOnly,
    /// Partner API token: only the partner queries (`accounts`, `account(id:)`).
    Partner,
}

impl TokenKind {
    /// A short name for logs and stats (never the token itself).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::ReadWrite => "read_write",
            TokenKind::ReadOnly => "read_only",
            TokenKind::Partner => "partner",
        }
    }
}

/// Everything a simulator instance needs; cheap to build in tests with struct update syntax
/// (`SimConfig { port: 0, ..SimConfig::default() }`).
/// `Debug` leaves the tokens out.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to bind, 127.0.0.1 by default.
    pub bind: IpAddr,
    /// Port to bind; 0 picks any free port (read it back with `SimHandle::addr`).
    pub port: u16,
    /// Seed of the generated data and of the fault sequence.
    pub seed: u64,
    /// Number of seeded users (some of them archived), default 50.
    pub seed_users: usize,
    /// Number of seeded groups, mostly CONSOLE with at least one SMART, default 5.
    pub seed_groups: usize,
    /// Number of seeded training campaigns and of seeded phishing campaigns (with runs), default 3.
    pub seed_campaigns: usize,
    /// Number of partner-managed accounts, default 5 (the first is this tenant).
    pub seed_accounts: usize,
    /// Accepted bearer tokens and their scope.
    pub tokens: Vec<(String, TokenKind)>,
    /// Requests per second per token; `None` = unlimited. KnowBe4: 4.
    pub rate_per_second: Option<u32>,
    /// Requests per minute per token (burst limit); `None` = unlimited. KnowBe4: 50.
    pub rate_per_minute: Option<u32>,
    /// Requests per rolling day per token; `None` = unlimited. KnowBe4: 2000 + licensed users.
    pub rate_per_day: Option<u32>,
    /// Bulk membership calls (`userAddToGroups`, `userDeleteMemberships`) with more user ids than
    /// this answer HTTP 504 and change nothing. KnowBe4: 95 completed, about 100 timed out.
    pub bulk_timeout_size: usize,
    /// Share of admitted requests that get a fault, 0.0..=1.0.
    pub fault_rate: f64,
    /// Delay of a "slow response" fault, in milliseconds.
    pub slow_ms: u64,
    /// Fixed latency added to every API request, in milliseconds.
    pub latency_ms: u64,
    /// Also seed users whose data needs exact comparison and escaping (a plus-addressed email,
    /// an apostrophe, quotes, a backslash, a newline and non-ASCII letters), members of Sales.
    /// Off by default; `--sandbox` turns it on.
    pub seed_edge_cases: bool,
    /// Faults for chosen requests of chosen operations (GraphQL root fields, REST paths).
    pub fault_script: Vec<sim_net::ScriptedFault>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.tokens.iter().map(|(_, kind)| kind.as_str()).collect();
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("seed", &self.seed)
            .field("tokens", &format_args!("{kinds:?} (values redacted)"))
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_per_minute", &self.rate_per_minute)
            .field("rate_per_day", &self.rate_per_day)
            .field("fault_rate", &self.fault_rate)
            .finish_non_exhaustive()
    }
}

/// The default sandbox token, with Read/Write scope.
pub const SANDBOX_TOKEN: &str = "sandbox-token";
/// The default partner token.
pub const SANDBOX_PARTNER_TOKEN: &str = "sandbox-partner-token";

impl Default for SimConfig {
    fn default() -> Self {
        let seed_users = 50;
        SimConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: 1,
            seed_users,
            seed_groups: 5,
            seed_campaigns: 3,
            seed_accounts: 5,
            tokens: vec![
                (SANDBOX_TOKEN.to_string(), TokenKind::ReadWrite),
                (SANDBOX_PARTNER_TOKEN.to_string(), TokenKind::Partner),
            ],
            rate_per_second: Some(4),
            rate_per_minute: Some(50),
            rate_per_day: Some(daily_quota(seed_users)),
            bulk_timeout_size: 95,
            fault_rate: 0.0,
            slow_ms: 1500,
            latency_ms: 0,
            seed_edge_cases: false,
            fault_script: Vec::new(),
        }
    }
}

/// KnowBe4's daily quota: 2,000 requests plus the number of licensed users.
pub fn daily_quota(users: usize) -> u32 {
    2000u32.saturating_add(u32::try_from(users).unwrap_or(u32::MAX))
}

impl SimConfig {
    /// The same configuration with every rate limit switched off.
    pub fn without_limits(mut self) -> Self {
        self.rate_per_second = None;
        self.rate_per_minute = None;
        self.rate_per_day = None;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.fault_rate) || self.fault_rate.is_nan() {
            return Err(format!("fault_rate must be within 0.0..=1.0, got {}", self.fault_rate));
        }
        if self.tokens.is_empty() {
            return Err("at least one token is needed".to_string());
        }
        if self.tokens.iter().any(|(t, _)| t.trim().is_empty()) {
            return Err("tokens must not be empty".to_string());
        }
        for limit in [self.rate_per_second, self.rate_per_minute, self.rate_per_day].into_iter().flatten() {
            if limit == 0 {
                return Err("a rate limit of 0 would refuse everything; use None for unlimited".into());
            }
        }
        Ok(())
    }
}
