//! `stepwise schedule`, `stepwise serve`, `stepwise history` and `stepwise trigger`, and
//! recording runs in the run store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use compiler::Plan;
use engine::{Registry, RunReport};
use scheduler::LoadedProcess;
use store::{ListFilter, RunEnd, RunStart, StepRecord, Store, StoreUrl, Trigger};
use tracing::Instrument as _;

use crate::load::{compile_file, registry};

/// Where the run store is: `--store URL`, or `--state PATH` (a synonym for a SQLite path), or
/// the environment's `STEPWISE_STORE`, or `.stepwise/state.db`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The run store: `sqlite:PATH`, a plain path (SQLite), or `postgres://USER@HOST:PORT/DB`
    /// [env: STEPWISE_STORE] [default: .stepwise/state.db].
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The SQLite run store (or a directory for it); a synonym of `--store PATH`.
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,
}

impl StoreArgs {
    /// The store URL these arguments name.
    pub fn url(&self) -> anyhow::Result<StoreUrl> {
        let text = match (&self.store, &self.state) {
            (Some(_), Some(_)) => anyhow::bail!("give either --store or --state, not both"),
            (Some(url), None) => url.clone(),
            (None, Some(path)) => return Ok(StoreUrl::Sqlite(store::db_path(path))),
            (None, None) => std::env::var("STEPWISE_STORE")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| store::DEFAULT_STORE.to_owned()),
        };
        Ok(StoreUrl::parse(&text)?)
    }
}

/// The message of a report's error, as the history records it.
pub fn report_error(report: &RunReport) -> Option<String> {
    report.error.as_ref().map(|e| match e.document {
        Some(d) => format!("step '{}': document {d}: {}", e.step, e.message),
        None => format!("step '{}': {}", e.step, e.message),
    })
}

fn report_steps(report: &RunReport) -> Vec<StepRecord> {
    crate::progress::step_records(&report.steps)
}

fn store_status(status: engine::RunStatus) -> store::RunStatus {
    match status {
        engine::RunStatus::Complete => store::RunStatus::Complete,
        engine::RunStatus::CompleteWarn => store::RunStatus::CompleteWarn,
        engine::RunStatus::Error => store::RunStatus::Error,
        engine::RunStatus::Aborted => store::RunStatus::Aborted,
    }
}

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

/// Records a run of `stepwise run` in the store: its start, a lease renewed while it goes (in
/// a shared store, so that a `stepwise run` killed mid-run is closed as ABORTED by the nodes),
/// and its end. Failures to record are logged, never fatal.
pub struct RunRecorder {
    store: Arc<dyn Store>,
    node: String,
    lease: Option<tokio::task::JoinHandle<()>>,
}

impl RunRecorder {
    /// Opens the store, logging (not failing) when it cannot be opened.
    pub async fn open(args: &StoreArgs) -> anyhow::Result<Option<RunRecorder>> {
        let url = args.url()?;
        let store = match store::open(&url).await {
            Ok(store) => store,
            Err(error) => {
                tracing::warn!(%error, "Run store is not available; this run is not recorded.");
                return Ok(None);
            }
        };
        // A run on a cluster's store shares the nodes' rate budgets.
        crate::budgets::install(&store);
        // Runs left INPROCESS by a stepwise that died (its OS process is gone) are closed as
        // ABORTED; runs of live processes are left alone.
        if let Err(error) = store.mark_abandoned_as_aborted().await {
            tracing::warn!(%error, "Cannot mark abandoned runs as ABORTED.");
        }
        Ok(Some(RunRecorder { store, node: store::default_node_name(), lease: None }))
    }

    /// Records the start of a run. On a cluster's store the run is leased and the lease renewed
    /// while it goes; a cancel asked for from a console cancels `cancel`.
    pub async fn start(
        &mut self,
        run_id: &str,
        process: &str,
        trigger: Trigger,
        overrides: &[(String, String)],
        cancel: &engine::Cancel,
    ) {
        let lease = self.store.is_shared().then_some(store::DEFAULT_LEASE);
        let start = RunStart {
            run_id: run_id.to_owned(),
            process: process.to_owned(),
            trigger,
            scheduled_for: None,
            started_at: Utc::now(),
            node: self.node.clone(),
            lease,
            overrides: overrides.to_vec(),
        };
        if let Err(error) = self.store.record_start(&start).await {
            tracing::warn!(%error, "Cannot record the run in the history.");
            return;
        }
        if let Some(lease) = lease {
            let (store, node, run_id) = (self.store.clone(), self.node.clone(), run_id.to_owned());
            let cancel = cancel.clone();
            self.lease = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store.renew(&node, std::slice::from_ref(&run_id), lease).await {
                        Ok(renewed) => {
                            if let Some((_, reason)) = renewed.cancel.into_iter().next() {
                                cancel.cancel(reason);
                            }
                        }
                        Err(error) => tracing::warn!(%error, "Cannot renew the run's lease."),
                    }
                }
            }));
        }
    }

    /// Saves what the run logged into its log in the store ([`crate::run_log`]).
    pub async fn save_log(&self, capture: crate::run_log::Capture, redactor: &engine::Redactor) {
        capture.save(self.store.as_ref(), &self.node, redactor).await;
    }

    /// Records the end of a run from its report.
    pub async fn end(&mut self, report: &RunReport) {
        if let Some(lease) = self.lease.take() {
            lease.abort();
        }
        let end = RunEnd {
            run_id: report.run_id.clone(),
            ended_at: Utc::now(),
            status: store_status(report.status),
            documents_in: report.documents_in,
            documents_out: report.documents_out,
            documents_error: report.documents_error,
            error: report_error(report),
            steps: report_steps(report),
            response: report.response.clone(),
        };
        let result = if self.store.is_shared() {
            self.store.complete(&self.node, &end).await.map(|completion| {
                if completion == store::Completion::Discarded {
                    tracing::warn!(
                        "The run's lease was lost (the run was recorded ABORTED); its result is not recorded."
                    );
                }
            })
        } else {
            self.store.record_end(&end).await
        };
        if let Err(error) = result {
            tracing::warn!(%error, "Cannot record the end of the run in the history.");
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
    #[command(flatten)]
    store: StoreArgs,
    /// This node's name in the run store (default: host name and process id).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// At most this many runs at once on this node.
    #[arg(long, value_name = "N", default_value_t = scheduler::service::DEFAULT_WORKERS as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    workers: u64,
    /// Seconds a run's lease lasts without renewal; a node that stops renewing has its runs
    /// recorded ABORTED (node lost) within this plus 10 seconds.
    #[arg(long, value_name = "S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease_secs: u64,
    /// Serve the console (HTTP API under /api/v1/, /health, /metrics) on this address, HOST:PORT
    /// (e.g. 127.0.0.1:9464, localhost:9464, [::1]:9464); every route but /health needs a token
    /// (`stepwise token create`).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Allow --listen on a non-loopback address without TLS (tokens cross the network in clear).
    #[arg(long, requires = "listen")]
    insecure_http: bool,
    /// Serve the console over HTTPS with this PEM certificate chain (server certificate first);
    /// needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["listen", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["listen", "tls_cert"])]
    tls_key: Option<PathBuf>,
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

/// The SHA-256 of a process file, hex: the version of a process every node agrees on.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
            content_hash: content_hash(&bytes),
            outline: outline(&plan),
            webhook: plan.webhook.as_ref().map(|w| Arc::new(webhook(w, path))),
            payload: Some(Arc::new(plan)),
        })
    }
}

/// What the console shows of a process: description, properties, steps and their edges.
fn outline(plan: &Plan) -> scheduler::Outline {
    use petgraph::visit::EdgeRef;
    let properties = plan
        .properties
        .iter()
        .map(|(name, default)| scheduler::PropertyView { name: name.clone(), default: default.clone() })
        .collect();
    let steps = plan
        .graph
        .node_indices()
        .map(|idx| {
            let step = &plan.graph[idx];
            let mut next: Vec<(String, String)> =
                plan.graph.edges(idx).map(|e| (plan.graph[e.target()].id.clone(), e.weight().label())).collect();
            // petgraph lists a node's edges newest first.
            next.reverse();
            scheduler::StepView { id: step.id.clone(), kind: step.kind.type_name().to_owned(), next }
        })
        .collect();
    scheduler::Outline { description: plan.description.clone(), properties, steps }
}

/// The webhook start as the service holds it: a secret file is found next to the process file.
fn webhook(spec: &compiler::WebhookSpec, path: &Path) -> scheduler::Webhook {
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    scheduler::Webhook {
        secret: match &spec.secret {
            compiler::SecretSpec::Env(name) => scheduler::WebhookSecret::Env(name.clone()),
            compiler::SecretSpec::File(file) => scheduler::WebhookSecret::File(base_dir.join(file)),
        },
        headers: spec.headers.clone(),
        respond_sync: spec.respond == Some(compiler::Respond::Sync),
        respond_timeout: std::time::Duration::from_secs(spec.respond_timeout_secs),
        max_body_bytes: spec.max_body_bytes,
    }
}

struct Runner {
    registry: Registry,
    /// Where kept documents go.
    store: Arc<dyn Store>,
    node: String,
    sandbox: std::collections::HashMap<String, engine::SandboxTarget>,
    /// The service's runtime: the task that passes a cancel signal on to the engine runs there,
    /// never on the runs' threads, which a CPU-bound step may hold.
    service: tokio::runtime::Handle,
}

#[scheduler::async_trait]
impl scheduler::ProcessRunner for Runner {
    async fn run(
        &self,
        process: &LoadedProcess,
        request: scheduler::RunRequest,
        cancel: scheduler::CancelSignal,
    ) -> scheduler::RunOutcome {
        let Some(plan) = process.payload.as_ref().and_then(|p| p.clone().downcast::<Plan>().ok()) else {
            let mut outcome = scheduler::RunOutcome::new(store::RunStatus::Error);
            outcome.error = Some("the process was not loaded".to_owned());
            return outcome;
        };
        // A manual run queued by name (`trigger NAME --set ...`) is checked here, by the node
        // that holds the file: a misspelt property never runs with the default.
        if let Some(message) = plan.undeclared_overrides(&request.overrides) {
            let mut outcome = scheduler::RunOutcome::new(store::RunStatus::Error);
            outcome.error = Some(message);
            return outcome;
        }
        let base_dir = process.path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let env = engine::ConnectEnv { base_dir, sandbox: self.sandbox.clone(), ..engine::ConnectEnv::default() };
        // The service's cancel signal (lease lost, or the grace period over at shutdown) reaches
        // the engine's cancellation, CPU-bound work included.
        let abort = engine::Cancel::new();
        // Both helper tasks end with the run, however it ends (a panic or a dropped future too).
        let bridge = tokio_util::task::AbortOnDropHandle::new({
            let abort = abort.clone();
            let mut cancel = cancel;
            self.service.spawn(async move {
                if let Ok(reason) = cancel.wait_for(Option::is_some).await {
                    let reason = reason.clone().unwrap_or_default();
                    abort.cancel(reason);
                }
            })
        });
        let recorder = crate::recording::DocumentRecorder::for_plan(&plan);
        let redactor = env.redactor.clone();
        let run_id = request.run_id.clone();
        let capture = crate::run_log::Capture::start(&run_id);
        let progress = engine::Progress::new();
        let watch = tokio_util::task::AbortOnDropHandle::new(crate::progress::spawn(
            self.store.clone(),
            self.node.clone(),
            run_id.clone(),
            progress.clone(),
            &self.service,
        ));
        let options = engine::RunOptions {
            run_id: request.run_id,
            overrides: request.overrides,
            env,
            recorder: recorder.clone().map(|r| r as Arc<dyn engine::Recorder>),
            abort: Some(abort.clone()),
            start_document: request.start_document.map(|start| {
                let mut doc = engine::Document::new(start.data);
                for (name, value) in start.properties {
                    doc.properties.insert(name, value);
                }
                doc
            }),
            progress: Some(progress),
        };
        let report = engine::run(&plan, &self.registry, options).instrument(capture.span()).await;
        drop((bridge, watch));
        capture.save(self.store.as_ref(), &self.node, &redactor).await;
        if let Some(recorder) = recorder {
            self.keep_documents(&run_id, &plan, &recorder, report.status, &redactor).await;
        }
        scheduler::RunOutcome {
            status: store_status(report.status),
            error: report_error(&report),
            documents_in: report.documents_in,
            documents_out: report.documents_out,
            documents_error: report.documents_error,
            steps: report_steps(&report),
            response: report.response,
        }
    }
}

impl Runner {
    /// Saves the run's documents when its process keeps them; a failure is logged, never the
    /// run's.
    async fn keep_documents(
        &self,
        run_id: &str,
        plan: &Plan,
        recorder: &crate::recording::DocumentRecorder,
        status: engine::RunStatus,
        redactor: &engine::Redactor,
    ) {
        let note = match crate::recording::finish(&*self.store, run_id, plan, recorder, status, redactor).await {
            Ok(None) => return,
            Ok(Some(note)) => note,
            Err(error) => {
                tracing::warn!(%error, run_id, "Cannot keep the run's documents.");
                format!("the run's documents were not kept: {error}")
            }
        };
        let line = store::LogLine { at: Utc::now(), level: "warn".to_owned(), node: self.node.clone(), message: note };
        if let Err(error) = self.store.append_logs(run_id, std::slice::from_ref(&line)).await {
            tracing::warn!(%error, run_id, "Cannot write the run's log.");
        }
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let url = args.store.url()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        let signal = shutdown_signal()?;
        // The service cancels runs still going when the grace period is over (through the
        // runner's cancel signal: the engine's cancellation, CPU-bound work included).
        let shutdown = async move {
            let signal = signal.await;
            tracing::info!(signal, "Shutdown requested; no new runs start.");
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let files = crate::listen::TlsFiles { cert: cert.clone(), key: key.clone() };
                Some(crate::listen::load_tls(&files)?)
            }
            _ => None,
        };
        let listen = args.listen.as_deref().map(crate::listen::resolve).transpose()?;
        if let Some(addr) = listen {
            crate::listen::check_address(addr, args.insecure_http, tls.is_some())?;
        }
        warn_if_no_process_files(&args.dir);
        let store = store::open(&url).await?;
        // A cluster's nodes share rate budgets through the store.
        crate::budgets::install(&store);
        let sandbox = if args.sandbox { Some(crate::sandbox::Sandbox::start().await?) } else { None };
        let registry = registry();
        let node = args.node.clone().unwrap_or_else(store::default_node_name);
        let (control, hook) = scheduler::control(&node);
        let console = match listen {
            Some(addr) => Some(crate::listen::start(addr, tls, store.clone(), control).await?),
            None => None,
        };
        let config = scheduler::ServiceConfig {
            dir: args.dir.clone(),
            store: store.clone(),
            node,
            workers: usize::try_from(args.workers).unwrap_or(1),
            lease: Duration::from_secs(args.lease_secs),
            grace: Duration::from_secs(args.grace_secs),
            reload_interval: Duration::from_millis(args.reload_ms),
            claim_interval: scheduler::service::DEFAULT_CLAIM_INTERVAL,
            // Runs go on the runs' threads: their stacks hold the deepest plan the compiler accepts.
            run_stack_bytes: Some(engine::RUN_STACK_BYTES),
            // The console serves /health and /metrics (through the control) with the API.
            listen: None,
        };
        let loader = Arc::new(Loader { registry: registry.clone() });
        let runner = Arc::new(Runner {
            registry,
            store: store.clone(),
            node: config.node.clone(),
            sandbox: sandbox.as_ref().map(|s| s.targets()).unwrap_or_default(),
            service: tokio::runtime::Handle::current(),
        });
        let pruner = crate::recording::spawn_pruner(store.clone());
        let result = scheduler::serve_with(config, loader, runner, shutdown, hook).await;
        pruner.abort();
        if let Some(console) = console {
            console.stop().await;
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
    /// Only runs with this status (QUEUED, INPROCESS, COMPLETE, COMPLETE_WARN, ERROR, ABORTED, DISCARDED).
    #[arg(long)]
    status: Option<String>,
    /// At most this many runs (newest first).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn history(args: HistoryArgs) -> anyhow::Result<u8> {
    let url = args.store.url()?;
    if let StoreUrl::Sqlite(path) = &url
        && !path.exists()
    {
        eprintln!(
            "no run history at '{}' (runs are recorded there by `stepwise run` and `stepwise serve`)",
            path.display()
        );
        return Ok(1);
    }
    // An unknown status would silently match nothing.
    let status = match args.status.as_ref().map(|s| s.trim().to_uppercase().parse::<store::RunStatus>()) {
        Some(Ok(status)) => Some(status.as_str().to_owned()),
        Some(Err(message)) => {
            eprintln!("error: --status: {message}");
            return Ok(2);
        }
        None => None,
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        let store = crate::scheduling::open_store(&url).await?;
        let mut out = std::io::stdout().lock();
        if let Some(id) = &args.run_id {
            let Some(detail) = store.detail(id).await? else {
                eprintln!("no run with id '{id}'");
                return Ok(1);
            };
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&detail)?)?;
            } else {
                write!(out, "{}", store::render_run_detail(&detail.run, &detail.steps))?;
            }
            return Ok(0);
        }
        let filter =
            ListFilter { process: args.process.clone(), status, limit: Some(args.limit), ..Default::default() };
        let runs = store.list(&filter).await?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&runs)?)?;
        } else if runs.is_empty() && (filter.process.is_some() || filter.status.is_some()) {
            // "no runs recorded" would be wrong: runs are recorded, none matches.
            writeln!(out, "no runs match {}", describe_filter(&filter))?;
        } else {
            write!(out, "{}", store::render_runs_table(&runs))?;
        }
        Ok(0)
    })
}

/// Opens the run store at `url`; an error that does not name the store yet is given its name.
pub async fn open_store(url: &store::StoreUrl) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    match store::open(url).await {
        Ok(store) => Ok(store),
        Err(e @ (store::StoreError::Open { .. } | store::StoreError::Connect { .. })) => Err(e.into()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("cannot open the run store '{}'", url.describe()))),
    }
}
