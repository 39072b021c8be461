//! The `stepwise serve DIR` loop: fires process schedules into the run store and runs what it
//! takes from the store's queue.
//!
//! [`serve`] loads every `*.yaml`/`*.yml` file of a directory through a [`ProcessLoader`],
//! offers each fire of their schedules to the [`store::Store`], takes queued runs from it and
//! runs them through a [`ProcessRunner`], until the shutdown future completes. Several
//! services (nodes) may share one store (PostgreSQL): every node fires every schedule, the
//! store records each fire once, and any node holding the process takes the run.
//!
//! # Behaviour
//!
//! * **Loading.** Invalid files are reported (tracing `ERROR` with the loader's message) and
//!   skipped; the valid ones run. Hidden files (`.name.yaml`) are ignored. Two files declaring
//!   the same process name: the first in path order wins, the other is reported.
//! * **Firing.** Each schedule keeps its next fire instant; the loop sleeps until the earliest
//!   (tokio time, at most [`MAX_SLEEP`] at once so wall-clock jumps are noticed). A due fire is
//!   offered to the store ([`store::Store::fire`]), which records it once cluster-wide and
//!   decides **overlap** against every node's runs of the process: `skip` records it
//!   `DISCARDED` while a run goes, `queue` keeps one waiting run, `allow` queues it anyway. A
//!   fire the store cannot take (database unreachable) is kept and offered again.
//! * **Running.** Whenever it has a free worker (`workers`), the node claims queued runs of the
//!   processes it holds at the same content hash ([`store::Store::claim`]) and runs them on a
//!   runtime of their own, so that CPU-bound steps never delay the loop, fire timing or
//!   `/health`. Each run holds a lease the node renews every third of `lease`; a run whose
//!   lease another node closed (node lost) is cancelled, and its late end is discarded. Every
//!   node closes the runs of nodes that stopped renewing ([`store::Store::expire_leases`]).
//! * **Catch-up.** The last fired instant of every process schedule is kept in the store.
//!   When a process is loaded, fires between that instant and now were missed while no node
//!   was up: `none` skips them, `last` offers the most recent one, `all` offers each (at most
//!   [`MAX_CATCH_UP`], the latest ones, with a warning); catch-up runs wait their turn, one
//!   after another. A schedule seen for the first time records "now" and catches nothing up.
//!   If the service itself falls behind while running (machine suspended, overload), the
//!   most recent due fire is offered; older ones only with `all`.
//! * **Reload.** Every `reload_interval` the directory is listed; files whose modification time
//!   or size changed are loaded again. A changed fingerprint replaces the process (changed
//!   schedules are planned again; unchanged ones keep their next fire), a new file starts, a
//!   deleted file stops (its running runs finish; alone on its store, the node discards its
//!   queued runs with the reason). A file that becomes invalid is reported and its previous
//!   version keeps running.
//! * **Shutdown.** When `shutdown` completes, no fire is offered and no run is taken any more;
//!   queued runs stay queued in the store for the next start (or another node). Running runs
//!   get up to `grace` to finish; then they are cancelled and recorded `ABORTED`.
//! * On start, alone on its store, the service closes runs a previous service left
//!   `INPROCESS` ([`store::Store::mark_abandoned_as_aborted`]) and discards queued runs of
//!   processes it does not hold, with the reason.
//! * **Pause.** The store keeps paused processes ([`store::Store::paused`]); a paused process's
//!   fires pass unrecorded (resuming catches none of them up). The node reads them at start, at
//!   every reload and when its [`Control`] says they changed.
//! * **Control** ([`serve_with`]): a [`Control`] handle lists the processes held, renders
//!   `/health` and `/metrics` for whoever serves HTTP (the console) and cancels runs going on
//!   this node.
//! * **HTTP** (when `listen` is set): `GET /health` (200, JSON; `status` is `degraded` and
//!   `invalid_files` lists each rejected file with why while any is invalid) and `GET /metrics` (Prometheus
//!   text: `stepwise_runs_total{process,status}`, `stepwise_run_duration_seconds{process}`
//!   histogram, `stepwise_schedule_lag_seconds` histogram of how late on-time fires were
//!   offered, `stepwise_runs_in_progress`, `stepwise_processes_loaded`,
//!   `stepwise_schedules_active`).

mod control;
mod files;
mod http;
mod runs;
mod webhook;

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use store::{RunEnd, RunStatus, StepRecord, Store, StoreError, Trigger};
use tokio::task::JoinSet;

pub use control::{Control, ControlHook, Outline, ProcessView, PropertyView, ScheduleView, StepView, Stopped, control};
pub use webhook::{Webhook, WebhookSecret};

use crate::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec};

/// At most this many missed fires of one schedule are run by `catch_up: all`.
pub const MAX_CATCH_UP: usize = 1000;

/// The loop never sleeps longer than this, so it notices wall-clock changes.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The most threads the runs' runtime has (one per worker up to this).
pub const MAX_RUN_THREADS: usize = 64;

/// The smallest reload interval; shorter ones are raised to it.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(50);

/// The largest reload interval; longer ones are lowered to it.
pub const MAX_RELOAD_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How often a node looks for queued runs by default (it also looks right after a fire and
/// after a run ends).
pub const DEFAULT_CLAIM_INTERVAL: Duration = Duration::from_millis(250);

/// Concurrent runs of a node by default (`--workers`).
pub const DEFAULT_WORKERS: usize = 16;

/// A process file as the service sees it.
#[derive(Clone)]
pub struct LoadedProcess {
    /// The file.
    pub path: PathBuf,
    /// The process name (history and metrics use it; unique within the directory).
    pub name: String,
    /// Its schedules.
    pub schedules: Vec<ScheduleSpec>,
    /// A hash of the file's content; a reload with the same fingerprint changes nothing.
    pub fingerprint: u64,
    /// A stable hash of the file's content (SHA-256, hex) that every node computes alike: a
    /// node takes only runs queued for the version it holds.
    pub content_hash: String,
    /// Anything the loader wants the runner to have (e.g. the compiled plan); the runner
    /// downcasts it. The service never looks inside.
    pub payload: Option<Arc<dyn Any + Send + Sync>>,
    /// What the console shows of it.
    pub outline: Outline,
    /// The webhook start of the process, if it has one.
    pub webhook: Option<Arc<Webhook>>,
}

impl fmt::Debug for LoadedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedProcess")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("schedules", &self.schedules)
            .field("fingerprint", &self.fingerprint)
            .field("content_hash", &self.content_hash)
            .field("payload", &self.payload.as_ref().map(|_| ".."))
            .field("webhook", &self.webhook)
            .finish()
    }
}

/// Loads (parses, validates, compiles) one process file.
pub trait ProcessLoader: Send + Sync + 'static {
    /// Loads `path`; the error is a printable diagnostic (all problems of the file).
    fn load(&self, path: &Path) -> Result<LoadedProcess, String>;
}

/// One run the service asks a [`ProcessRunner`] for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The run id (already recorded `INPROCESS` in the store).
    pub run_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// The schedule's fire instant, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Property overrides (`stepwise trigger --set`).
    pub overrides: Vec<(String, String)>,
    /// The start document of a webhook run.
    pub start_document: Option<store::StartDocument>,
}

/// Set to `Some(reason)` when the run must stop (its lease was lost, or the service shuts
/// down after its grace period); the runner then ends the run `ABORTED`.
pub type CancelSignal = tokio::sync::watch::Receiver<Option<String>>;

/// Runs a process once. The service records the run in the store; the runner does not.
#[async_trait::async_trait]
pub trait ProcessRunner: Send + Sync + 'static {
    /// Runs the process once.
    async fn run(&self, process: &LoadedProcess, request: RunRequest, cancel: CancelSignal) -> RunOutcome;
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Final status (`Complete`, `CompleteWarn`, `Error` or `Aborted`).
    pub status: RunStatus,
    /// The run's error, if any.
    pub error: Option<String>,
    /// Documents that entered the process.
    pub documents_in: u64,
    /// Documents that left it.
    pub documents_out: u64,
    /// Error documents.
    pub documents_error: u64,
    /// Per-step counters, in step order.
    pub steps: Vec<StepRecord>,
    /// The answer of a `respond: sync` webhook run (see [`store::RunEnd::response`]).
    pub response: Option<Vec<u8>>,
}

impl RunOutcome {
    /// An outcome with no error and no documents.
    pub fn new(status: RunStatus) -> RunOutcome {
        RunOutcome {
            status,
            error: None,
            documents_in: 0,
            documents_out: 0,
            documents_error: 0,
            steps: Vec::new(),
            response: None,
        }
    }

    fn into_end(self, run_id: String) -> RunEnd {
        RunEnd {
            run_id,
            ended_at: Utc::now(),
            status: if self.status.is_final() { self.status } else { RunStatus::Error },
            documents_in: self.documents_in,
            documents_out: self.documents_out,
            documents_error: self.documents_error,
            error: self.error,
            steps: self.steps,
            response: self.response,
        }
    }
}

/// Settings of [`serve`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The directory of process files.
    pub dir: PathBuf,
    /// The run store (history, queue, fires, leases).
    pub store: Arc<dyn Store>,
    /// This node's name in the store (`--node`).
    pub node: String,
    /// At most this many runs at once on this node (`--workers`, at least 1).
    pub workers: usize,
    /// How long a run's lease lasts without renewal (`--lease-secs`).
    pub lease: Duration,
    /// How long running runs may take to finish after shutdown is requested.
    pub grace: Duration,
    /// How often the directory is checked for changed files (clamped to
    /// [`MIN_RELOAD_INTERVAL`]..=[`MAX_RELOAD_INTERVAL`]).
    pub reload_interval: Duration,
    /// How often to look for queued runs ([`DEFAULT_CLAIM_INTERVAL`]).
    pub claim_interval: Duration,
    /// The stack size of the threads runs execute on (`None`: tokio's default).
    pub run_stack_bytes: Option<usize>,
    /// Where to serve `/health` and `/metrics`, if anywhere.
    pub listen: Option<SocketAddr>,
}

/// Errors that stop [`serve`] before it starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The process directory cannot be read.
    #[error("cannot read process directory '{}': {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime of the runs cannot be started.
    #[error("cannot start the runtime of the runs: {0}")]
    Runtime(std::io::Error),
}

/// Runs the service until `shutdown` completes; see the module documentation.
pub async fn serve(
    config: ServiceConfig,
    loader: Arc<dyn ProcessLoader>,
    runner: Arc<dyn ProcessRunner>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    let (_, hook) = control(&config.node);
    serve_with(config, loader, runner, shutdown, hook).await
}

/// [`serve`], steered through the [`Control`] that `hook` belongs to.
pub async fn serve_with(
    config: ServiceConfig,
    loader: Arc<dyn ProcessLoader>,
    runner: Arc<dyn ProcessRunner>,
    shutdown: impl Future<Output = ()> + Send,
    hook: ControlHook,
) -> Result<(), ServiceError> {
    if let Err(source) = std::fs::read_dir(&config.dir) {
        return Err(ServiceError::ReadDir { path: config.dir.clone(), source });
    }
    let store = config.store.clone();
    let aborted = store.mark_abandoned_as_aborted().await?;
    if aborted > 0 {
        tracing::warn!(message = "Marked runs abandoned by a previous service as ABORTED.", count = aborted);
    }
    let metrics = hook.metrics.clone();
    let http = match config.listen {
        Some(addr) => Some(http::start_http(addr, metrics.clone(), config.node.clone()).await?),
        None => None,
    };
    // Runs get a runtime of their own: a step that burns CPU occupies its threads, never the
    // ones that fire schedules, renew leases and answer /health. One thread per worker (up to
    // MAX_RUN_THREADS), not per core: runs that burn CPU then share the cores with the others
    // (the operating system's scheduler is fair), instead of holding every thread while the
    // runs of other processes wait.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = config.workers.max(cores).clamp(2, MAX_RUN_THREADS);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(bytes) = config.run_stack_bytes {
        builder.thread_stack_size(bytes);
    }
    let runs_runtime = builder
        .worker_threads(threads)
        .thread_name("stepwise-run")
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    tracing::info!(
        message = "Service started.",
        dir = %config.dir.display(),
        store = %store.describe(),
        node = %config.node,
        workers = config.workers,
        lease_secs = config.lease.as_secs_f64(),
    );
    let mut service = Service {
        reload_interval: config.reload_interval.clamp(MIN_RELOAD_INTERVAL, MAX_RELOAD_INTERVAL),
        runs_runtime: runs_runtime.handle().clone(),
        config,
        loader,
        runner,
        store,
        metrics,
        files: HashMap::new(),
        processes: BTreeMap::new(),
        by_name: HashMap::new(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        pending_fires: Vec::new(),
        completions: JoinSet::new(),
        pending_ends: Vec::new(),
        claim_wanted: true,
        dirty: Vec::new(),
        last_renewed: Instant::now(),
        other_version_logged: HashSet::new(),
        shutting_down: false,
        commands: hook.commands,
        paused: HashSet::new(),
    };
    service.run(shutdown).await;
    runs_runtime.shutdown_background();
    if let Some((stop, handle)) = http {
        let _ = stop.send(());
        if tokio::time::timeout(Duration::from_secs(5), handle).await.is_err() {
            tracing::warn!(message = "HTTP server did not stop in time.");
        }
    }
    tracing::info!(message = "Service stopped.");
    Ok(())
}

/// The `*.yaml` and `*.yml` files directly in `dir` (not hidden), sorted.
pub fn process_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_yaml && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Fires of `schedule` in `(after, now]`: at most the `cap` latest ones, oldest first, and
/// whether there were more.
pub fn missed_fires(
    schedule: &Schedule,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    cap: usize,
) -> (Vec<DateTime<Utc>>, bool) {
    if cap == 0 || after >= now {
        return (Vec::new(), false);
    }
    // Look back from `now` over a doubling window, so a long downtime with a frequent schedule
    // does not enumerate millions of fires.
    let mut window = chrono::Duration::minutes(1);
    loop {
        let from = now.checked_sub_signed(window).filter(|f| *f > after).unwrap_or(after);
        let mut latest = VecDeque::with_capacity(cap.min(1024));
        let mut count = 0usize;
        for fire in schedule.iter_after(from) {
            let fire = fire.with_timezone(&Utc);
            if fire > now {
                break;
            }
            if latest.len() == cap {
                latest.pop_front();
            }
            latest.push_back(fire);
            count += 1;
        }
        if from == after {
            return (latest.into(), count > cap);
        }
        if latest.len() == cap {
            // At least `cap` fires in the window; `(after, from]` may hold more.
            let more = count > cap || schedule.next_after(after).is_some_and(|f| f.with_timezone(&Utc) <= from);
            return (latest.into(), more);
        }
        window = window.checked_mul(2).unwrap_or(chrono::Duration::MAX);
    }
}

/// Modification time and size: a change means "load again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

struct ScheduleEntry {
    key: String,
    schedule: Schedule,
    overlap: Overlap,
    catch_up: CatchUp,
    /// Every fire at or before this instant has been handled.
    watermark: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    /// Fired; `next` is to be computed from `watermark`.
    replan: bool,
}

struct ProcessEntry {
    process: Arc<LoadedProcess>,
    schedules: Vec<ScheduleEntry>,
}

/// A fire to offer to the store.
struct PendingFire {
    process: Arc<LoadedProcess>,
    schedule: String,
    overlap: Overlap,
    at: DateTime<Utc>,
    /// Catch-up fires wait their turn instead of following `overlap`.
    catch_up: bool,
}

/// A run going on this node.
struct RunningRun {
    process: String,
    run_id: String,
    cancel: tokio::sync::watch::Sender<Option<String>>,
}

struct RunDone {
    outcome: RunOutcome,
    elapsed: Duration,
}

struct Service {
    config: ServiceConfig,
    reload_interval: Duration,
    runs_runtime: tokio::runtime::Handle,
    loader: Arc<dyn ProcessLoader>,
    runner: Arc<dyn ProcessRunner>,
    store: Arc<dyn Store>,
    metrics: Arc<http::Metrics>,
    /// Every process file seen, valid or not, with the stamp it was last loaded at.
    files: HashMap<PathBuf, Stamp>,
    /// Loaded processes by file.
    processes: BTreeMap<PathBuf, ProcessEntry>,
    by_name: HashMap<String, PathBuf>,
    tasks: JoinSet<RunDone>,
    running: HashMap<tokio::task::Id, RunningRun>,
    /// Fires not yet taken by the store (offered again until it takes them).
    pending_fires: Vec<PendingFire>,
    /// Batches of run ends being written to the store.
    completions: JoinSet<()>,
    /// Run ends not yet handed to a writer (written together once per loop iteration).
    pending_ends: Vec<RunEnd>,
    /// Whether the queue may hold a run this node can take: set by queued fires, recorded ends
    /// and the claim interval (other nodes, `stepwise trigger`), so that the loop asks the store
    /// only then, not on every wake-up.
    claim_wanted: bool,
    /// Watermarks to save: `(process, schedule key, instant)`.
    dirty: Vec<(String, String, DateTime<Utc>)>,
    /// When the leases of this node's runs were last renewed.
    last_renewed: Instant,
    /// Queued runs of another version of a process, already logged.
    other_version_logged: HashSet<String>,
    shutting_down: bool,
    /// Commands of the [`Control`] (the console).
    commands: tokio::sync::mpsc::Receiver<control::Command>,
    /// Processes whose schedules are paused (from the store).
    paused: HashSet<String>,
}
