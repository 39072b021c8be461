//! The `stepwise boomi-sim` subcommand: clap arguments and a serve-until-ctrl-c loop.

use std::fmt;
use std::io::Write;

use crate::config::{SANDBOX_ACCOUNT_ID, SANDBOX_EMAIL, SANDBOX_TOKEN, SimConfig};
use crate::server::start;
use sim_net::SimError;

/// Arguments of `stepwise boomi-sim`. The simulator always binds 127.0.0.1.
///
/// `Debug` is written by hand so that the token never reaches a log.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8788)]
    pub port: u16,
    /// The Boomi account id served under /api/rest/v1/{accountId}/.
    #[arg(long, default_value = SANDBOX_ACCOUNT_ID)]
    pub account_id: String,
    /// The API user's email (Basic auth user name `BOOMI_TOKEN.<email>`).
    #[arg(long, default_value = SANDBOX_EMAIL)]
    pub email: String,
    /// The API token (Basic auth password).
    #[arg(long, env = "BOOMI_SIM_TOKEN", default_value = SANDBOX_TOKEN, hide_env_values = true, hide_default_value = true)]
    pub token: String,
    /// Number of seeded users (all have logged in).
    #[arg(long, default_value_t = 30)]
    pub seed_users: usize,
    /// Serve a non-primary account: no account groups.
    #[arg(long)]
    pub non_primary: bool,
    /// Requests per second for the account, 503 beyond (Boomi: 10); 0 = unlimited.
    #[arg(long, default_value_t = 10)]
    pub rate_per_second: u32,
    /// Share of requests that get a fault (500, 503, dropped connection, slow answer), 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Delay of a slow-answer fault, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub slow_ms: u64,
    /// Seed of the generated data and of the fault sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also seed users with a plus-addressed email and names with quotes, a backslash, a newline
    /// and non-ASCII letters.
    #[arg(long)]
    pub seed_edge_cases: bool,
    /// A fault for chosen requests (repeatable): `OPERATION:FROM[-[TO]]:[after-|late-]KIND`,
    /// counting the requests of OPERATION (`AccountUserRole.create`, `Role.queryMore`, ...)
    /// from 1; KIND is 500, 503, 504, slow or drop; `after-` executes the request first,
    /// `late-` answers at once and executes it `--slow-ms` later.
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<sim_net::ScriptedFault>,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("port", &self.port)
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("token", &"[redacted]")
            .field("seed_users", &self.seed_users)
            .field("non_primary", &self.non_primary)
            .field("rate_per_second", &self.rate_per_second)
            .field("fault_rate", &self.fault_rate)
            .field("slow_ms", &self.slow_ms)
            .field("seed", &self.seed)
            .field("seed_edge_cases", &self.seed_edge_cases)
            .field("faults", &self.faults)
            .finish()
    }
}

impl Args {
    /// The simulator configuration these arguments describe.
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            port: self.port,
            account_id: self.account_id.clone(),
            email: self.email.clone(),
            token: self.token.clone(),
            seed: self.seed,
            seed_users: self.seed_users,
            primary: !self.non_primary,
            rate_per_second: (self.rate_per_second > 0).then_some(self.rate_per_second),
            fault_rate: self.fault_rate,
            slow_ms: self.slow_ms,
            seed_edge_cases: self.seed_edge_cases,
            fault_script: self.faults.clone(),
            ..SimConfig::default()
        }
    }
}

/// Starts the simulator, prints `boomi-sim listening on http://127.0.0.1:PORT` to stdout, and
/// serves until ctrl-c.
pub async fn serve_forever(args: Args) -> Result<(), SimError> {
    let config = args.to_config();
    let handle = start(config.clone()).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "boomi-sim listening on {}", handle.base_url()).map_err(SimError::Serve)?;
        out.flush().map_err(SimError::Serve)?;
    }
    tracing::info!(
        url = %handle.base_url(),
        api = %format!("{}/api/rest/v1/{}/", handle.base_url(), config.account_id),
        email = %config.email,
        users = config.seed_users,
        primary = config.primary,
        rate_per_second = ?config.rate_per_second,
        fault_rate = config.fault_rate,
        "boomi-sim started (token redacted)"
    );
    tokio::signal::ctrl_c().await.map_err(SimError::Serve)?;
    tracing::info!("boomi-sim shutting down");
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
    fn flags_map_to_the_config_and_the_token_is_redacted() {
        let cli = Cli::try_parse_from([
            "boomi-sim",
            "--port",
            "0",
            "--account-id",
            "acme-X1",
            "--email",
            "ops@acme.example",
            "--token",
            "s3cr3t-token",
            "--seed-users",
            "7",
            "--non-primary",
            "--rate-per-second",
            "0",
            "--fault-rate",
            "0.25",
            "--seed",
            "9",
        ])
        .map_err(|e| e.to_string());
        let args = cli.map(|c| c.args).unwrap_or_else(|e| panic!("{e}"));
        let config = args.to_config();
        assert_eq!(config.port, 0);
        assert_eq!(config.account_id, "acme-X1");
        assert_eq!(config.email, "ops@acme.example");
        assert_eq!(config.token, "s3cr3t-token");
        assert_eq!(config.seed_users, 7);
        assert!(!config.primary);
        assert_eq!(config.rate_per_second, None);
        assert!((config.fault_rate - 0.25).abs() < f64::EPSILON);
        assert_eq!(config.seed, 9);
        assert_eq!(config.bind.to_string(), "127.0.0.1");
        assert!(!format!("{args:?}").contains("s3cr3t"));
        assert!(!format!("{config:?}").contains("s3cr3t"));

        let defaults = Cli::try_parse_from(["boomi-sim"]).map(|c| c.args.to_config()).map_err(|e| e.to_string());
        let defaults = defaults.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(defaults.rate_per_second, Some(10));
        assert!(defaults.primary);
        assert_eq!(defaults.seed_users, 30);
    }
}
