//! The `stepwise` command line. Thin: parses arguments, reads files, calls the library crates,
//! prints, and maps outcomes to exit codes.

mod budgets;
mod commands;
mod listen;
mod load;
mod proctests;
mod progress;
mod recording;
mod run_log;
mod sandbox;
mod scheduling;
mod testmode;
mod tokens;
mod trigger;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Stepwise: integration processes (Boomi-style) for KnowBe4 and Boomi Platform admins.
#[derive(Parser, Debug)]
#[command(name = "stepwise", version, about, long_about = None)]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "STEPWISE_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check process files (format, schema, graph, templates, connections, schedules).
    Validate(commands::ValidateArgs),
    /// Print a process graph as Mermaid or Graphviz dot.
    Graph(commands::GraphArgs),
    /// Run a process once and print a run summary.
    Run(commands::RunArgs),
    /// Print the next fire times of a process's schedules (RFC 3339, one per line).
    Schedule(scheduling::ScheduleArgs),
    /// Run every process in a directory on its schedules until SIGTERM, recording history.
    Serve(scheduling::ServeArgs),
    /// List past runs, or show one run's per-step detail.
    History(scheduling::HistoryArgs),
    /// Queue a manual run for any node serving the process; prints its run id.
    Trigger(trigger::TriggerArgs),
    /// Run process tests (`*.test.yaml`) with mocked connections; prints `N passed, N failed`.
    Test(proctests::TestArgs),
    /// Create, list and revoke the console's API tokens.
    Token(tokens::TokenArgs),
    /// The KnowBe4 simulator (GraphQL at /graphql), for tests, demos and benchmarks.
    #[command(name = "knowbe4-sim")]
    KnowBe4Sim(knowbe4_sim::Args),
    /// The Boomi Platform simulator (REST under /api/rest/v1/{accountId}/), for tests, demos and benchmarks.
    #[command(name = "boomi-sim")]
    BoomiSim(boomi_sim::Args),
}

/// The exit status of a command whose output's reader went away: 128 + SIGPIPE, as a shell
/// reports a tool that signal stopped.
const BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // PostgreSQL's notices (each node after the first hears "relation \"_sqlx_migrations\" already
    // exists, skipping") are the server's chatter, not the service's: warnings and up only,
    // unless `--log` names sqlx itself.
    let filter = match "sqlx::postgres::notice=warn".parse() {
        Ok(directive) if !cli.log.contains("sqlx") => filter.add_directive(directive),
        _ => filter,
    };
    // Two layers, each with its own filter: the log on stderr (`--log`), and the run log, which
    // keeps the `info` and above of each run whatever `--log` says.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter);
    let run_log = run_log::Layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry().with(stderr).with(run_log).init();
    let code = match cli.command {
        Command::Validate(args) => commands::validate(args),
        Command::Graph(args) => commands::graph(args),
        Command::Run(args) => commands::run(args),
        Command::Schedule(args) => scheduling::schedule(args),
        Command::Serve(args) => scheduling::serve(args),
        Command::History(args) => scheduling::history(args),
        Command::Trigger(args) => trigger::trigger(args),
        Command::Test(args) => proctests::test(args),
        Command::Token(args) => tokens::token(args),
        Command::KnowBe4Sim(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(knowbe4_sim::serve_forever(args)).map_err(anyhow::Error::from))
            .map(|()| 0),
        Command::BoomiSim(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(boomi_sim::serve_forever(args)).map_err(anyhow::Error::from))
            .map(|()| 0),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        // The reader of our output went away (`stepwise token list | head -1`): stop quietly
        // with 141, the status of a command-line tool a SIGPIPE stopped (so `set -o pipefail`
        // still sees that not all was written). Only a write error of our own output is an
        // `io::Error` at the top; the store's and connectors' errors are their own.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::from(BROKEN_PIPE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
