//! `stepwise schedule`, `stepwise serve` and `stepwise history`, and recording runs in the
//! history database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use compiler::Plan;
use engine::{Registry, RunReport};
use scheduler::{History, ListFilter, LoadedProcess, RunEnd, RunStart, StepRecord, Trigger};

use crate::load::{compile_file, registry};

/// Where run history lives unless `--state` says otherwise.
pub const DEFAULT_STATE: &str = ".stepwise/state.db";

/// The schedules of a plan, as the scheduler crate takes them.
pub fn schedule_specs(plan: &Plan) -> Vec<scheduler::ScheduleSpec> {
    plan.schedules
        .iter()
        .map(|s| scheduler::ScheduleSpec {
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            overlap: match s.overlap {
                spec::Overlap::Skip => scheduler::Overlap::Skip,
                spec::Overlap::Queue => scheduler::Overlap::Queue,
                spec::Overlap::Allow => scheduler::Overlap::Allow,
            },
            catch_up: match s.catch_up {
                spec::CatchUp::None => scheduler::CatchUp::None,
                spec::CatchUp::Last => scheduler::CatchUp::Last,
                spec::CatchUp::All => scheduler::CatchUp::All,
            },
            enabled: s.enabled,
        })
        .collect()
}

/// Records the start of a run; failures to record are logged, never fatal.
pub fn record_start(history: Option<&History>, start: &RunStart) {
    if let Some(h) = history
        && let Err(error) = h.record_start(start)
    {
        tracing::warn!(%error, "Cannot record the run in the history.");
    }
}

/// Records the end of a run from its report.
pub fn record_end(history: Option<&History>, report: &RunReport) {
    let Some(h) = history else { return };
    let ended_at = Utc::now();
    let end = RunEnd {
        run_id: report.run_id.clone(),
        ended_at,
        status: report.status.as_str().to_owned(),
        documents_in: report.documents_in,
        documents_out: report.documents_out,
        documents_error: report.documents_error,
        error: report.error.as_ref().map(|e| match e.document {
            Some(d) => format!("step '{}': document {d}: {}", e.step, e.message),
            None => format!("step '{}': {}", e.step, e.message),
        }),
        steps: report
            .steps
            .iter()
            .map(|s| StepRecord {
                step: s.step.clone(),
                documents_in: s.documents_in,
                documents_out: s.documents_out,
                documents_error: s.documents_error,
                millis: s.millis,
            })
            .collect(),
    };
    if let Err(error) = h.record_end(&end) {
        tracing::warn!(%error, "Cannot record the end of the run in the history.");
    }
}

/// Opens the history database, logging (not failing) when it cannot be opened.
pub fn open_history(state: &Path) -> Option<History> {
    match History::open(&scheduler::db_path(state)) {
        Ok(h) => Some(h),
        Err(error) => {
            tracing::warn!(%error, "Run history is not available; this run is not recorded.");
            None
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {
    file: PathBuf,
    /// How many fire times to print per schedule.
    #[arg(long, default_value_t = 5)]
    next: usize,
    /// Start from this instant (RFC 3339) instead of now.
    #[arg(long)]
    from: Option<String>,
}

pub fn schedule(args: ScheduleArgs) -> anyhow::Result<u8> {
    let name = args.file.display().to_string();
    let Some(compiled) = crate::commands::compile_or_report(&args.file, &name) else { return Ok(1) };
    for d in &compiled.diagnostics {
        eprintln!("{}", d.render(&name));
    }
    let Some(plan) = compiled.plan else { return Ok(1) };
    let from = match &args.from {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| anyhow::anyhow!("--from '{t}' is not an RFC 3339 timestamp: {e}"))?,
        None => Utc::now(),
    };
    if plan.schedules.is_empty() {
        // Valid, just nothing to preview: exit 1 is kept for invalid processes.
        eprintln!("{name}: the process has no schedules; nothing fires it but `stepwise run`");
        return Ok(0);
    }
    // Compile every schedule before printing any, so an invalid one prints nothing but errors.
    // The compiler already rejects what the scheduler would (`compiler::schedule` is shared);
    // this keeps the two from drifting apart silently.
    let specs = schedule_specs(&plan);
    let mut compiled = Vec::with_capacity(specs.len());
    let mut invalid = false;
    for (i, spec) in specs.iter().enumerate() {
        match scheduler::Schedule::parse(&spec.cron, &spec.timezone) {
            Ok(schedule) => compiled.push(schedule),
            Err(e) => {
                eprintln!("{name}: error: schedule {}: {e}", i + 1);
                invalid = true;
            }
        }
    }
    if invalid {
        return Ok(1);
    }
    // stdout carries nothing but timestamps, so that every line parses; which schedule a block
    // of lines belongs to goes to stderr when there are several. A disabled schedule never
    // fires, so it has no fire times to print.
    let mut out = std::io::stdout().lock();
    let several = specs.len() > 1;
    for (i, (spec, schedule)) in specs.iter().zip(&compiled).enumerate() {
        if !spec.enabled {
            eprintln!("# schedule {}: {} ({}) is disabled: no fire times", i + 1, spec.cron, spec.timezone);
            continue;
        }
        if several {
            out.flush()?;
            eprintln!("# schedule {}: {} ({})", i + 1, spec.cron, spec.timezone);
        }
        for t in schedule.iter_after(from).take(args.next) {
            writeln!(out, "{}", scheduler::format_rfc3339(&t))?;
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The directory of process files.
    dir: PathBuf,
    /// The history database (or a directory for it).
    #[arg(long, default_value = DEFAULT_STATE)]
    state: PathBuf,
    /// Serve /health and /metrics on this address (e.g. 127.0.0.1:9464).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Seconds running runs may take to finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    grace_secs: u64,
    /// How often to look for changed process files, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    reload_ms: u64,
    /// Point every simulated connection at in-process simulators (demos).
    #[arg(long)]
    sandbox: bool,
}

struct Loader {
    registry: Registry,
}

impl scheduler::ProcessLoader for Loader {
    fn load(&self, path: &Path) -> Result<LoadedProcess, String> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: error: cannot read: {e}"))?;
        let compiled = compile_file(path, &self.registry).map_err(|e| format!("{name}: error: {e:#}"))?;
        let Some(plan) = compiled.plan else {
            let lines: Vec<String> =
                compiled.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(&name)).collect();
            return Err(lines.join("\n"));
        };
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        Ok(LoadedProcess {
            path: path.to_path_buf(),
            name: plan.name.clone(),
            schedules: schedule_specs(&plan),
            fingerprint: hasher.finish(),
            payload: Some(Arc::new(plan)),
        })
    }
}

struct Runner {
    registry: Registry,
    /// One connection for every run; its calls block, so they go through `spawn_blocking`.
    history: Option<Arc<History>>,
    sandbox: std::collections::HashMap<String, engine::SandboxTarget>,
    /// Cancelled when the service's shutdown grace is over: runs still going stop there, even
    /// in CPU-bound work, and end ABORTED.
    shutdown: engine::Cancel,
}

#[scheduler::async_trait]
impl scheduler::ProcessRunner for Runner {
    async fn run(
        &self,
        process: &LoadedProcess,
        trigger: Trigger,
        scheduled_for: DateTime<Utc>,
        run_id: String,
    ) -> scheduler::RunOutcome {
        let Some(plan) = process.payload.as_ref().and_then(|p| p.clone().downcast::<Plan>().ok()) else {
            return scheduler::RunOutcome {
                status: scheduler::RunStatus::Error,
                error: Some("the process was not loaded".to_owned()),
            };
        };
        let start = RunStart {
            run_id: run_id.clone(),
            process: plan.name.clone(),
            trigger,
            scheduled_for: Some(scheduled_for),
            started_at: Utc::now(),
        };
        // Recorded before the run starts, so a crash leaves it INPROCESS (then ABORTED on the
        // next start). SQLite calls block (up to the busy timeout while `stepwise run` writes),
        // so they stay off the runtime's worker threads.
        if let Some(h) = self.history.clone() {
            let _ = tokio::task::spawn_blocking(move || record_start(Some(&h), &start)).await;
        }
        let base_dir = process.path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let env = engine::ConnectEnv { base_dir, sandbox: self.sandbox.clone(), ..engine::ConnectEnv::default() };
        let options = engine::RunOptions {
            run_id,
            overrides: Vec::new(),
            env,
            recorder: None,
            abort: Some(self.shutdown.clone()),
        };
        let report = engine::run(&plan, &self.registry, options).await;
        let status = match report.status {
            engine::RunStatus::Complete => scheduler::RunStatus::Complete,
            engine::RunStatus::CompleteWarn => scheduler::RunStatus::CompleteWarn,
            engine::RunStatus::Error => scheduler::RunStatus::Error,
            engine::RunStatus::Aborted => scheduler::RunStatus::Aborted,
        };
        let error = report.error.as_ref().map(|e| format!("step '{}': {}", e.step, e.message));
        if let Some(h) = self.history.clone() {
            let _ = tokio::task::spawn_blocking(move || record_end(Some(&h), &report)).await;
        }
        scheduler::RunOutcome { status, error }
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    // Runs go on the worker threads: their stacks hold the deepest plan the compiler accepts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(engine::RUN_STACK_BYTES)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let signal = shutdown_signal()?;
        let cancel = engine::Cancel::new();
        let on_grace = cancel.clone();
        let grace = Duration::from_secs(args.grace_secs);
        let shutdown = async move {
            let signal = signal.await;
            tracing::info!(signal, "Shutdown requested; no new runs start.");
            // The same path as a signal to `stepwise run` and as the time limit: runs still going
            // when the grace is over are cancelled, CPU-bound ones included.
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                on_grace.cancel(format!(
                    "the service shut down ({signal}) and the grace period of {} s is over",
                    grace.as_secs()
                ));
            });
        };
        warn_if_no_process_files(&args.dir);
        let sandbox = if args.sandbox { Some(crate::sandbox::Sandbox::start().await?) } else { None };
        let registry = registry();
        let config = scheduler::ServiceConfig {
            dir: args.dir.clone(),
            state: args.state.clone(),
            grace: Duration::from_secs(args.grace_secs),
            reload_interval: Duration::from_millis(args.reload_ms),
            listen: args.listen,
        };
        let loader = Arc::new(Loader { registry: registry.clone() });
        let state = args.state.clone();
        let history = tokio::task::spawn_blocking(move || open_history(&state)).await.ok().flatten().map(Arc::new);
        let runner = Arc::new(Runner {
            registry,
            history,
            sandbox: sandbox.as_ref().map(|s| s.targets()).unwrap_or_default(),
            shutdown: cancel,
        });
        let result = scheduler::serve(config, loader, runner, shutdown).await;
        // Runs still going after the grace period were cancelled: close them in the history.
        if let Some(h) = open_history(&args.state) {
            match h.mark_abandoned_as_aborted() {
                Ok(0) => {}
                Ok(n) => tracing::warn!(count = n, "Runs cut off by the shutdown were marked ABORTED."),
                Err(error) => tracing::error!(%error, "Cannot mark the runs cut off by the shutdown as ABORTED."),
            }
        }
        if let Some(s) = sandbox {
            s.shutdown().await;
        }
        // The service's errors already include their cause; `{:#}` would print it twice.
        result.map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    Ok(0)
}

/// `--process 'NAME' --status STATUS`, for saying that nothing matched.
fn describe_filter(filter: &ListFilter) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &filter.process {
        parts.push(format!("--process '{p}'"));
    }
    if let Some(s) = &filter.status {
        parts.push(format!("--status {s}"));
    }
    parts.join(" ")
}

/// A directory with no process file is served (files added later are loaded on reload), but
/// it is most likely the wrong directory: say so.
fn warn_if_no_process_files(dir: &Path) {
    if let Ok(files) = scheduler::service::process_files(dir)
        && files.is_empty()
    {
        tracing::warn!(
            dir = %dir.display(),
            "No process files (*.yaml, *.yml directly in the directory, not hidden) to serve; \
             files added later are loaded on reload."
        );
    }
}

/// A future that completes with the signal's name on SIGTERM or SIGINT (ctrl-c). The handlers
/// are installed now, not when the future is first polled: the service polls it only after
/// loading every process file, and a signal arriving before that must stop the service
/// gracefully, not kill it.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Show one run with its per-step detail.
    run_id: Option<String>,
    /// Only runs of this process.
    #[arg(long)]
    process: Option<String>,
    /// Only runs with this status (COMPLETE, COMPLETE_WARN, ERROR, ABORTED, DISCARDED, INPROCESS).
    #[arg(long)]
    status: Option<String>,
    /// At most this many runs (newest first).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The history database (or a directory for it).
    #[arg(long, default_value = DEFAULT_STATE)]
    state: PathBuf,
}

pub fn history(args: HistoryArgs) -> anyhow::Result<u8> {
    let path = scheduler::db_path(&args.state);
    if !path.exists() {
        eprintln!(
            "no run history at '{}' (runs are recorded there by `stepwise run` and `stepwise serve`)",
            path.display()
        );
        return Ok(1);
    }
    let history = History::open(&path).with_context(|| format!("cannot open the run history '{}'", path.display()))?;
    let mut out = std::io::stdout().lock();
    if let Some(id) = &args.run_id {
        let Some((run, steps)) = history.get(id)? else {
            eprintln!("no run with id '{id}'");
            return Ok(1);
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::json!({"run": run, "steps": steps}))?)?;
        } else {
            write!(out, "{}", scheduler::render_run_detail(&run, &steps))?;
        }
        return Ok(0);
    }
    // An unknown status would silently match nothing.
    let status = match args.status.map(|s| s.trim().to_uppercase().parse::<scheduler::RunStatus>()) {
        Some(Ok(status)) => Some(status.as_str().to_owned()),
        Some(Err(message)) => {
            eprintln!("error: --status: {message}");
            return Ok(2);
        }
        None => None,
    };
    let filter = ListFilter { process: args.process, status, limit: Some(args.limit) };
    let runs = history.list(&filter)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&runs)?)?;
    } else if runs.is_empty() && (filter.process.is_some() || filter.status.is_some()) {
        // "no runs recorded" would be wrong: runs are recorded, none matches.
        writeln!(out, "no runs match {}", describe_filter(&filter))?;
    } else {
        write!(out, "{}", scheduler::render_runs_table(&runs))?;
    }
    Ok(0)
}
