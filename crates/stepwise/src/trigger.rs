//! `stepwise trigger PROCESS`: queues a manual run in the run store for any node that serves
//! the process (process format section 8).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use store::{NewRun, RunStatus, Store, Trigger};

use crate::scheduling::StoreArgs;

/// How often `--wait` looks at the run.
const POLL: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug)]
pub struct TriggerArgs {
    /// A process file (its nodes must hold this exact version), or the name of a process the
    /// nodes serve.
    process: String,
    /// Override a process property (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = crate::commands::parse_set)]
    set: Vec<(String, String)>,
    /// Wait for the run to end, print its summary and exit as `stepwise run` does.
    #[arg(long)]
    wait: bool,
    /// With --wait, print the run as JSON.
    #[arg(long, requires = "wait")]
    json: bool,
    /// With --wait, stop waiting after SECS seconds (exit 124); the run goes on in the store.
    #[arg(long, requires = "wait", value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    store: StoreArgs,
}

/// The process name and the version a file stands for; `None` when `process` is no file.
fn from_file(process: &str, set: &[(String, String)]) -> anyhow::Result<Option<(String, String)>> {
    let path = PathBuf::from(process);
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if !path.is_file() {
        if is_yaml || process.contains('/') {
            anyhow::bail!("{process}: no such process file");
        }
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("{process}: cannot read"))?;
    let Some(compiled) = crate::commands::compile_or_report(Path::new(&path), process) else {
        anyhow::bail!("{process}: the process is invalid; nothing was queued");
    };
    for d in &compiled.diagnostics {
        eprintln!("{}", d.render(process));
    }
    let Some(plan) = compiled.plan else {
        anyhow::bail!("{process}: the process is invalid; nothing was queued");
    };
    if let Some(message) = plan.undeclared_overrides(set) {
        anyhow::bail!("{process}: {message}; nothing was queued");
    }
    Ok(Some((plan.name.clone(), crate::scheduling::content_hash(&bytes))))
}

pub fn trigger(args: TriggerArgs) -> anyhow::Result<u8> {
    let url = args.store.url()?;
    let (process, content_hash) = match from_file(&args.process, &args.set)? {
        Some((name, hash)) => (name, Some(hash)),
        None => (args.process.clone(), None),
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        let store = crate::scheduling::open_store(&url).await?;
        let run = NewRun {
            run_id: uuid::Uuid::now_v7().to_string(),
            process,
            trigger: Trigger::Manual,
            overrides: args.set.clone(),
            content_hash,
            queued_at: Utc::now(),
            start_document: None,
            rerun_of: None,
        };
        store.enqueue(&run).await?;
        // With `--wait --json` stdout is one JSON document (the run holds its id), for `jq`.
        if !(args.wait && args.json) {
            writeln!(std::io::stdout(), "{}", run.run_id)?;
            std::io::stdout().flush()?;
        }
        if !args.wait {
            return Ok(0);
        }
        let patience = args.timeout.map(Duration::from_secs);
        wait(store.as_ref(), &run.run_id, args.json, patience).await
    })
}

/// The exit code of `trigger --wait --timeout` when the run has not ended in time (as
/// coreutils' `timeout`).
pub const TIMED_OUT: u8 = 124;

/// Waits for the run to end; prints it; exits 0 for COMPLETE and COMPLETE_WARN, 1 otherwise,
/// [`TIMED_OUT`] when `patience` runs out first.
async fn wait(store: &dyn Store, run_id: &str, json: bool, patience: Option<Duration>) -> anyhow::Result<u8> {
    let signal = crate::scheduling::shutdown_signal()?;
    let mut signal = std::pin::pin!(signal);
    let deadline = patience.map(|p| tokio::time::Instant::now() + p);
    loop {
        let (run, steps) =
            store.get(run_id).await?.with_context(|| format!("run '{run_id}' vanished from the store"))?;
        let status: RunStatus = run.status.parse().map_err(anyhow::Error::msg)?;
        if status.is_final() || status == RunStatus::Discarded {
            let mut out = std::io::stdout().lock();
            if json {
                let logs = store.logs(run_id).await?;
                let detail = store::RunDetail { run, steps, logs };
                writeln!(out, "{}", serde_json::to_string_pretty(&detail)?)?;
            } else {
                write!(out, "{}", store::render_run_detail(&run, &steps))?;
            }
            return Ok(if matches!(status, RunStatus::Complete | RunStatus::CompleteWarn) { 0 } else { 1 });
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            let secs = patience.map_or(0, |p| p.as_secs());
            eprintln!("stopped waiting after {secs} s; run {run_id} is {status} and goes on in the store");
            if status == RunStatus::Queued {
                eprintln!(
                    "no node has taken it: is a `stepwise serve` holding process '{}' running on this store?",
                    run.process
                );
            }
            return Ok(TIMED_OUT);
        }
        tokio::select! {
            signal = &mut signal => {
                eprintln!("stopped waiting ({signal}); run {run_id} is {status} and goes on in the store");
                return Ok(130);
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}
