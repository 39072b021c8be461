//! The `stepwise knowbe4-sim` subcommand: clap arguments and a serve-until-ctrl-c loop.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{SimConfig, TokenKind, daily_quota};
use crate::server::start;
use sim_net::SimError;

/// Arguments of `stepwise knowbe4-sim`. With no token option, the sandbox tokens
/// (`sandbox-token` read/write, `sandbox-partner-token` partner) are accepted.
/// `Debug` leaves the tokens out.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Seed of the generated data and of the fault sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of seeded users.
    #[arg(long, default_value_t = 50)]
    pub seed_users: usize,
    /// Number of seeded groups.
    #[arg(long, default_value_t = 5)]
    pub seed_groups: usize,
    /// Number of seeded training and phishing campaigns.
    #[arg(long, default_value_t = 3)]
    pub seed_campaigns: usize,
    /// Number of partner-managed accounts.
    #[arg(long, default_value_t = 5)]
    pub seed_accounts: usize,
    /// Requests per second per token (KnowBe4: 4).
    #[arg(long, default_value_t = 4)]
    pub rate_per_second: u32,
    /// Requests per minute per token (KnowBe4 burst limit: 50).
    #[arg(long, default_value_t = 50)]
    pub rate_per_minute: u32,
    /// Requests per rolling day per token (KnowBe4: 2000 + licensed users).
    #[arg(long)]
    pub rate_per_day: Option<u32>,
    /// Switch every rate limit off.
    #[arg(long)]
    pub no_limits: bool,
    /// Share of requests that get a fault (500, 503, slow, dropped, malformed), 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Delay of a slow-response fault, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub slow_ms: u64,
    /// A KSAT read/write token to accept (repeatable).
    #[arg(long = "token", value_name = "TOKEN")]
    pub tokens: Vec<String>,
    /// A KSAT read-only token to accept (repeatable).
    #[arg(long = "token-read-only", value_name = "TOKEN")]
    pub read_only_tokens: Vec<String>,
    /// A partner token to accept (repeatable).
    #[arg(long = "partner-token", value_name = "TOKEN")]
    pub partner_tokens: Vec<String>,
    /// Bulk membership calls with more user ids than this answer 504.
    #[arg(long, default_value_t = 95)]
    pub bulk_timeout_size: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Also seed users with a plus-addressed email and names with quotes, a backslash, a newline
    /// and non-ASCII letters (members of Sales).
    #[arg(long)]
    pub seed_edge_cases: bool,
    /// A fault for chosen requests (repeatable): `OPERATION:FROM[-[TO]]:[after-|late-]KIND`,
    /// counting the requests of OPERATION (a GraphQL root field) from 1; KIND is 500, 503,
    /// 504, slow, drop or malformed; `after-` executes the request first, `late-` answers at once
    /// and executes it `--slow-ms` later. Example: `users:2-:500`, `groupCreate:1:after-504`.
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<sim_net::ScriptedFault>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("seed", &self.seed)
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_per_minute", &self.rate_per_minute)
            .field("rate_per_day", &self.rate_per_day)
            .field("no_limits", &self.no_limits)
            .field("fault_rate", &self.fault_rate)
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("read_only_tokens", &format_args!("[{} redacted]", self.read_only_tokens.len()))
            .field("partner_tokens", &format_args!("[{} redacted]", self.partner_tokens.len()))
            .finish_non_exhaustive()
    }
}

impl Args {
    /// The simulator configuration these arguments describe.
    pub fn to_config(&self) -> SimConfig {
        let mut tokens: Vec<(String, TokenKind)> = Vec::new();
        tokens.extend(self.tokens.iter().map(|t| (t.clone(), TokenKind::ReadWrite)));
        tokens.extend(self.read_only_tokens.iter().map(|t| (t.clone(), TokenKind::ReadOnly)));
        tokens.extend(self.partner_tokens.iter().map(|t| (t.clone(), TokenKind::Partner)));
        let defaults = SimConfig::default();
        let config = SimConfig {
            bind: self.bind,
            port: self.port,
            seed: self.seed,
            seed_users: self.seed_users,
            seed_groups: self.seed_groups,
            seed_campaigns: self.seed_campaigns,
            seed_accounts: self.seed_accounts,
            tokens: if tokens.is_empty() { defaults.tokens } else { tokens },
            rate_per_second: Some(self.rate_per_second),
            rate_per_minute: Some(self.rate_per_minute),
            rate_per_day: Some(self.rate_per_day.unwrap_or_else(|| daily_quota(self.seed_users))),
            bulk_timeout_size: self.bulk_timeout_size,
            fault_rate: self.fault_rate,
            slow_ms: self.slow_ms,
            latency_ms: self.latency_ms,
            seed_edge_cases: self.seed_edge_cases,
            fault_script: self.faults.clone(),
        };
        if self.no_limits { config.without_limits() } else { config }
    }
}

/// Starts the simulator, prints `knowbe4-sim listening on http://127.0.0.1:PORT` to stdout, and
/// serves until ctrl-c.
pub async fn serve_forever(args: Args) -> Result<(), SimError> {
    let config = args.to_config();
    let kinds: Vec<&str> = config.tokens.iter().map(|(_, k)| k.as_str()).collect();
    let handle = start(config.clone()).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "knowbe4-sim listening on {}", handle.base_url()).map_err(SimError::Serve)?;
        out.flush().map_err(SimError::Serve)?;
    }
    tracing::info!(
        url = %handle.base_url(),
        graphql = %format!("{}/graphql", handle.base_url()),
        tokens = %kinds.join(","),
        users = config.seed_users,
        rate_per_second = ?config.rate_per_second,
        rate_per_minute = ?config.rate_per_minute,
        rate_per_day = ?config.rate_per_day,
        fault_rate = config.fault_rate,
        "knowbe4-sim listening on {}",
        handle.addr()
    );
    tokio::signal::ctrl_c().await.map_err(SimError::Serve)?;
    tracing::info!("knowbe4-sim shutting down");
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn debug_leaves_the_tokens_out() {
        let cli = Cli::try_parse_from([
            "knowbe4-sim",
            "--token",
            "s3cret-rw",
            "--token-read-only",
            "s3cret-ro",
            "--partner-token",
            "s3cret-partner",
        ])
        .unwrap();
        let config = cli.args.to_config();
        let printed = format!("{:?} {:#?} {config:?} {config:#?}", cli.args, cli.args);
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("read_only"), "{printed}");
    }
}
