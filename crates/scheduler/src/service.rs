//! The `stepwise serve DIR` loop: fires process schedules and runs them.
//!
//! [`serve`] loads every `*.yaml`/`*.yml` file of a directory through a [`ProcessLoader`],
//! fires their schedules on time and runs each fire through a [`ProcessRunner`], until the
//! shutdown future completes.
//!
//! # Behaviour
//!
//! * **Loading.** Invalid files are reported (tracing `ERROR` with the loader's message) and
//!   skipped; the valid ones run. Hidden files (`.name.yaml`) are ignored. Two files declaring
//!   the same process name: the first in path order wins, the other is reported.
//! * **Firing.** Each schedule keeps its next fire instant; the loop sleeps until the earliest
//!   (tokio time, at most [`MAX_SLEEP`] at once so wall-clock jumps are noticed).
//! * **Overlap** (per process): a fire while a run of the same process is going is, per the
//!   firing schedule's `overlap`, discarded and recorded as `DISCARDED` (`skip`), kept as the
//!   one waiting run (`queue`; a fire while one already waits is discarded), or started
//!   (`allow`).
//! * **Catch-up.** The last fired instant of every process schedule is kept in the history
//!   database (table `schedule_state`). When a process is loaded, fires between that instant and
//!   now were missed while the service was down: `none` skips them, `last` runs the most recent
//!   one, `all` runs each (at most [`MAX_CATCH_UP`], the latest ones, with a warning), one after
//!   another, before the process's regular fires. A schedule seen for the first time records
//!   "now" and catches nothing up. If the service itself falls behind while running (machine
//!   suspended, overload), the most recent due fire runs; older ones run only with `all`.
//!   The instant is saved right after the run starts, so a crash in between can repeat a run on
//!   restart but never lose one.
//! * **Reload.** Every `reload_interval` the directory is listed; files whose modification time
//!   or size changed are loaded again. A changed fingerprint replaces the process (changed
//!   schedules are planned again; unchanged ones keep their next fire), a new file starts, a
//!   deleted file stops (its running runs finish; its waiting run is dropped). A file that
//!   becomes invalid is reported and its previous version keeps running.
//! * **Shutdown.** When `shutdown` completes, no run starts any more (waiting runs are dropped);
//!   running ones get up to `grace` to finish. Runs still going after that are cancelled (their
//!   futures are dropped) and **left `INPROCESS` in the history for the caller to mark
//!   `ABORTED`**, e.g. with [`History::mark_abandoned_as_aborted`] after [`serve`] returns.
//! * On start the service calls [`History::mark_abandoned_as_aborted`] for runs a previous
//!   service left behind.
//! * **HTTP** (when `listen` is set): `GET /health` (200, JSON; `status` is `degraded` and
//!   `invalid_files` lists each rejected file with why while any is invalid) and `GET /metrics` (Prometheus
//!   text: `stepwise_runs_total{process,status}`, `stepwise_run_duration_seconds{process}`
//!   histogram, `stepwise_schedule_lag_seconds` histogram of how late on-time fires started,
//!   `stepwise_runs_in_progress`, `stepwise_processes_loaded`, `stepwise_schedules_active`).

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::task::{JoinError, JoinSet};

use crate::history::{History, HistoryError, RunEnd, RunStart, RunStatus, Trigger, db_path};
use crate::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec};

/// At most this many missed fires of one schedule are run by `catch_up: all`.
pub const MAX_CATCH_UP: usize = 1000;

/// The loop never sleeps longer than this, so it notices wall-clock changes.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The smallest reload interval; shorter ones are raised to it.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(50);

/// The largest reload interval; longer ones are lowered to it.
pub const MAX_RELOAD_INTERVAL: Duration = Duration::from_secs(24 * 3600);

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
    /// Anything the loader wants the runner to have (e.g. the compiled plan); the runner
    /// downcasts it. The service never looks inside.
    pub payload: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for LoadedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedProcess")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("schedules", &self.schedules)
            .field("fingerprint", &self.fingerprint)
            .field("payload", &self.payload.as_ref().map(|_| ".."))
            .finish()
    }
}

/// Loads (parses, validates, compiles) one process file.
pub trait ProcessLoader: Send + Sync + 'static {
    /// Loads `path`; the error is a printable diagnostic (all problems of the file).
    fn load(&self, path: &Path) -> Result<LoadedProcess, String>;
}

/// Runs a process once.
#[async_trait::async_trait]
pub trait ProcessRunner: Send + Sync + 'static {
    /// Runs the process file once; the runner records history itself
    /// ([`History::record_start`] / [`History::record_end`]) using the run id given.
    async fn run(
        &self,
        process: &LoadedProcess,
        trigger: Trigger,
        scheduled_for: DateTime<Utc>,
        run_id: String,
    ) -> RunOutcome;
}

/// How a run ended, for logs and metrics (the runner has recorded the details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Final status (`Complete`, `CompleteWarn`, `Error` or `Aborted`).
    pub status: RunStatus,
    /// The run's error, if any.
    pub error: Option<String>,
}

impl RunOutcome {
    /// An outcome with no error.
    pub fn new(status: RunStatus) -> RunOutcome {
        RunOutcome { status, error: None }
    }
}

/// Settings of [`serve`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The directory of process files.
    pub dir: PathBuf,
    /// The state directory (the history database is `state/history.db`), or the database file
    /// itself if it ends in `.db`, `.sqlite` or `.sqlite3`; see [`db_path`].
    pub state: PathBuf,
    /// How long running runs may take to finish after shutdown is requested.
    pub grace: Duration,
    /// How often the directory is checked for changed files (clamped to
    /// [`MIN_RELOAD_INTERVAL`]..=[`MAX_RELOAD_INTERVAL`]).
    pub reload_interval: Duration,
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
    /// The history database cannot be opened.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The HTTP address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the service until `shutdown` completes; see the module documentation.
pub async fn serve(
    config: ServiceConfig,
    loader: Arc<dyn ProcessLoader>,
    runner: Arc<dyn ProcessRunner>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    if let Err(source) = std::fs::read_dir(&config.dir) {
        return Err(ServiceError::ReadDir { path: config.dir.clone(), source });
    }
    let path = db_path(&config.state);
    let history = Arc::new(blocking(move || History::open(&path)).await?);
    let h = history.clone();
    let aborted = blocking(move || h.mark_abandoned_as_aborted()).await?;
    if aborted > 0 {
        tracing::warn!(message = "Marked runs abandoned by a previous service as ABORTED.", count = aborted);
    }
    let metrics = Arc::new(Metrics::default());
    let http = match config.listen {
        Some(addr) => Some(start_http(addr, metrics.clone()).await?),
        None => None,
    };
    tracing::info!(
        message = "Service started.",
        dir = %config.dir.display(),
        history = %history.path().display(),
        listen = ?config.listen,
    );
    let mut service = Service {
        reload_interval: config.reload_interval.clamp(MIN_RELOAD_INTERVAL, MAX_RELOAD_INTERVAL),
        config,
        loader,
        runner,
        history,
        metrics,
        files: HashMap::new(),
        processes: BTreeMap::new(),
        by_name: HashMap::new(),
        runs: HashMap::new(),
        tasks: JoinSet::new(),
        task_info: HashMap::new(),
        dirty: Vec::new(),
        shutting_down: false,
    };
    service.run(shutdown).await;
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Modification time and size: a change means "load again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
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

#[derive(Default)]
struct ProcessRuns {
    running: usize,
    /// Runs waiting to start, oldest first (catch-up runs, or the one queued run).
    waiting: VecDeque<DateTime<Utc>>,
}

struct TaskInfo {
    process: String,
    run_id: String,
}

struct RunDone {
    outcome: RunOutcome,
    elapsed: Duration,
}

/// What one due schedule does.
struct Fire {
    process: Arc<LoadedProcess>,
    overlap: Overlap,
    at: DateTime<Utc>,
    /// Catch-up fires wait their turn instead of following `overlap`.
    catch_up: bool,
}

struct Service {
    config: ServiceConfig,
    reload_interval: Duration,
    loader: Arc<dyn ProcessLoader>,
    runner: Arc<dyn ProcessRunner>,
    history: Arc<History>,
    metrics: Arc<Metrics>,
    /// Every process file seen, valid or not, with the stamp it was last loaded at.
    files: HashMap<PathBuf, Stamp>,
    /// Loaded processes by file.
    processes: BTreeMap<PathBuf, ProcessEntry>,
    by_name: HashMap<String, PathBuf>,
    runs: HashMap<String, ProcessRuns>,
    tasks: JoinSet<RunDone>,
    task_info: HashMap<tokio::task::Id, TaskInfo>,
    /// Watermarks to save: `(process, schedule key, instant)`.
    dirty: Vec<(String, String, DateTime<Utc>)>,
    shutting_down: bool,
}

impl Service {
    async fn run(&mut self, shutdown: impl Future<Output = ()> + Send) {
        self.scan().await;
        let mut shutdown = std::pin::pin!(shutdown);
        let start = tokio::time::Instant::now() + self.reload_interval;
        let mut reload = tokio::time::interval_at(start, self.reload_interval);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.fire_due(Utc::now()).await;
            self.save_watermarks().await;
            let sleep = match self.earliest_next() {
                Some(next) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_done(done).await;
                }
                _ = reload.tick() => self.scan().await,
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        self.shutting_down = true;
        let dropped: usize = self.runs.values_mut().map(|r| std::mem::take(&mut r.waiting).len()).sum();
        tracing::info!(
            message = "Shutting down.",
            running = self.tasks.len(),
            dropped_waiting = dropped,
            grace_secs = self.config.grace.as_secs_f64(),
        );
        // A huge grace (e.g. `Duration::MAX` for "wait forever") must not overflow.
        let grace = self.config.grace.min(Duration::from_secs(100 * 365 * 24 * 3600));
        let deadline = tokio::time::Instant::now() + grace;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.on_done(done).await,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !self.tasks.is_empty() {
            let runs: Vec<&str> = self.task_info.values().map(|t| t.run_id.as_str()).collect();
            tracing::warn!(
                message = "Grace period over; cancelling runs, left INPROCESS for the caller to mark ABORTED.",
                count = runs.len(),
                runs = ?runs,
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
            self.task_info.clear();
        }
        self.save_watermarks().await;
    }

    fn earliest_next(&self) -> Option<DateTime<Utc>> {
        self.processes.values().flat_map(|p| p.schedules.iter()).filter_map(|s| s.next).min()
    }

    /// Fires every schedule that is due at `now`; plans the next fires after starting the runs.
    async fn fire_due(&mut self, now: DateTime<Utc>) {
        let mut fires = Vec::new();
        let mut lags = Vec::new();
        let mut replan = false;
        for entry in self.processes.values_mut() {
            let name = &entry.process.name;
            let process = &entry.process;
            for sched in &mut entry.schedules {
                let Some(next) = sched.next.filter(|next| *next <= now) else {
                    continue;
                };
                if now < next + chrono::Duration::seconds(1) {
                    // The usual case. Fires are whole seconds apart, so only `next` is due: start
                    // it first and compute the one after it once every due run has started.
                    fires.push(Fire { process: process.clone(), overlap: sched.overlap, at: next, catch_up: false });
                    lags.push((now - next).to_std().unwrap_or(Duration::ZERO).as_secs_f64());
                    sched.watermark = next;
                    sched.replan = true;
                    replan = true;
                    self.dirty.push((name.clone(), sched.key.clone(), next));
                    continue;
                }
                let cap = if sched.catch_up == CatchUp::All { MAX_CATCH_UP } else { 1 };
                let (due, more) = missed_fires(&sched.schedule, sched.watermark, now, cap);
                let Some(&latest) = due.last() else {
                    sched.next = sched.schedule.next_after(sched.watermark).map(|t| t.with_timezone(&Utc));
                    continue;
                };
                if due.len() > 1 || more {
                    tracing::warn!(
                        message = "Service fell behind; several fires of a schedule are due at once.",
                        process = %name,
                        cron = %sched.schedule.cron(),
                        running = if sched.catch_up == CatchUp::All { due.len() } else { 1 },
                        catch_up = %sched.catch_up,
                    );
                }
                if sched.catch_up == CatchUp::All && due.len() > 1 {
                    for &at in &due {
                        fires.push(Fire { process: process.clone(), overlap: sched.overlap, at, catch_up: true });
                    }
                } else {
                    fires.push(Fire { process: process.clone(), overlap: sched.overlap, at: latest, catch_up: false });
                }
                sched.watermark = latest;
                sched.next = sched.schedule.next_after(latest).map(|t| t.with_timezone(&Utc));
                self.dirty.push((name.clone(), sched.key.clone(), latest));
            }
        }
        fires.sort_by_key(|f| f.at);
        let fired = !fires.is_empty();
        for fire in fires {
            self.fire(fire);
        }
        if fired {
            // Let this worker thread start the new runs before planning the next fires.
            tokio::task::yield_now().await;
        }
        if !lags.is_empty() {
            let mut histogram = self.metrics.lag.lock().unwrap_or_else(|e| e.into_inner());
            for lag in lags {
                histogram.observe(lag);
            }
        }
        if replan {
            for sched in self.processes.values_mut().flat_map(|p| p.schedules.iter_mut()) {
                if std::mem::take(&mut sched.replan) {
                    sched.next = sched.schedule.next_after(sched.watermark).map(|t| t.with_timezone(&Utc));
                }
            }
        }
    }

    fn fire(&mut self, fire: Fire) {
        if self.shutting_down {
            return;
        }
        enum Action {
            Start,
            Queue,
            Discard,
            Pump,
        }
        let name = fire.process.name.as_str();
        if !self.runs.contains_key(name) {
            self.runs.insert(name.to_owned(), ProcessRuns::default());
        }
        let Some(runs) = self.runs.get_mut(name) else {
            return;
        };
        let action = if fire.catch_up {
            Action::Pump
        } else if runs.running == 0 && runs.waiting.is_empty() {
            Action::Start
        } else {
            match fire.overlap {
                Overlap::Allow => Action::Start,
                Overlap::Queue if runs.waiting.is_empty() => Action::Queue,
                Overlap::Queue | Overlap::Skip => Action::Discard,
            }
        };
        match action {
            Action::Start => self.start_run(fire.process.clone(), fire.at),
            Action::Queue => {
                tracing::info!(message = "Run queued behind the running one.", process = %name, scheduled_for = %fire.at);
                runs.waiting.push_back(fire.at);
            }
            Action::Pump => {
                runs.waiting.push_back(fire.at);
                self.pump(name);
            }
            Action::Discard => self.discard(name, fire.at),
        }
    }

    /// Starts the oldest waiting run of `process` if none is running.
    fn pump(&mut self, process: &str) {
        if self.shutting_down {
            return;
        }
        let Some(runs) = self.runs.get_mut(process) else {
            return;
        };
        if runs.running > 0 {
            return;
        }
        let Some(at) = runs.waiting.pop_front() else {
            return;
        };
        if let Some(entry) = self.by_name.get(process).and_then(|path| self.processes.get(path)) {
            self.start_run(entry.process.clone(), at);
        }
    }

    fn start_run(&mut self, process: Arc<LoadedProcess>, scheduled_for: DateTime<Utc>) {
        let name = process.name.clone();
        let run_id = uuid::Uuid::now_v7().to_string();
        tracing::info!(message = "Run starting.", process = %name, run_id = %run_id, scheduled_for = %scheduled_for);
        let runner = self.runner.clone();
        let id = run_id.clone();
        let handle = self.tasks.spawn(async move {
            let started = Instant::now();
            let outcome = runner.run(&process, Trigger::Schedule, scheduled_for, id).await;
            RunDone { outcome, elapsed: started.elapsed() }
        });
        self.runs.entry(name.clone()).or_default().running += 1;
        self.task_info.insert(handle.id(), TaskInfo { process: name, run_id });
        self.metrics.in_progress.fetch_add(1, Ordering::Relaxed);
    }

    fn discard(&mut self, name: &str, scheduled_for: DateTime<Utc>) {
        let run = RunStart {
            run_id: uuid::Uuid::now_v7().to_string(),
            process: name.to_owned(),
            trigger: Trigger::Schedule,
            scheduled_for: Some(scheduled_for),
            started_at: Utc::now(),
        };
        tracing::info!(
            message = "Run discarded: the previous run is still going.",
            process = %name,
            run_id = %run.run_id,
            scheduled_for = %scheduled_for,
        );
        self.metrics.count_run(name, RunStatus::Discarded);
        let history = self.history.clone();
        // Fire-and-forget: the write must not delay the next fires.
        tokio::task::spawn_blocking(move || {
            if let Err(error) = history.record_discarded(&run) {
                tracing::error!(message = "Cannot record a discarded run.", run_id = %run.run_id, %error);
            }
        });
    }

    async fn on_done(&mut self, done: Result<(tokio::task::Id, RunDone), JoinError>) {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let Some(info) = self.task_info.remove(&id) else {
            return;
        };
        self.metrics.in_progress.fetch_sub(1, Ordering::Relaxed);
        if let Some(runs) = self.runs.get_mut(&info.process) {
            runs.running = runs.running.saturating_sub(1);
        }
        match done {
            Ok((_, RunDone { outcome, elapsed })) => {
                tracing::info!(
                    message = "Run ended.",
                    process = %info.process,
                    run_id = %info.run_id,
                    status = %outcome.status,
                    millis = elapsed.as_millis() as u64,
                    error = outcome.error.as_deref().unwrap_or(""),
                );
                self.metrics.count_run(&info.process, outcome.status);
                self.metrics.observe_duration(&info.process, elapsed.as_secs_f64());
            }
            Err(error) => {
                tracing::error!(message = "Run panicked; recording it as ABORTED.", process = %info.process, run_id = %info.run_id, %error);
                self.metrics.count_run(&info.process, RunStatus::Aborted);
                let history = self.history.clone();
                let end = RunEnd {
                    run_id: info.run_id.clone(),
                    ended_at: Utc::now(),
                    status: RunStatus::Aborted.as_str().to_owned(),
                    documents_in: 0,
                    documents_out: 0,
                    documents_error: 0,
                    error: Some(format!("the run panicked: {error}")),
                    steps: Vec::new(),
                };
                match blocking(move || history.record_end(&end)).await {
                    Ok(()) | Err(HistoryError::UnknownRun(_)) => {}
                    Err(error) => tracing::error!(message = "Cannot record an aborted run.", %error),
                }
            }
        }
        self.pump(&info.process);
    }

    async fn save_watermarks(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.dirty);
        let history = self.history.clone();
        if let Err(error) = blocking(move || history.save_last_fired(&entries)).await {
            tracing::error!(message = "Cannot save last fired instants; a restart may repeat fires.", %error);
        }
    }

    /// Lists the directory and loads new and changed files; stops deleted ones.
    async fn scan(&mut self) {
        let dir = self.config.dir.clone();
        let listing = blocking(move || -> std::io::Result<Vec<(PathBuf, Stamp)>> {
            let mut out = Vec::new();
            for path in process_files(&dir)? {
                // A file may vanish between listing and stat; it is then simply not there.
                if let Ok(meta) = std::fs::metadata(&path) {
                    out.push((path, Stamp { modified: meta.modified().ok(), len: meta.len() }));
                }
            }
            Ok(out)
        })
        .await;
        let listing = match listing {
            Ok(listing) => listing,
            Err(error) => {
                tracing::error!(message = "Cannot list the process directory.", dir = %self.config.dir.display(), %error);
                return;
            }
        };
        let present: std::collections::HashSet<&PathBuf> = listing.iter().map(|(p, _)| p).collect();
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !present.contains(p)).cloned().collect();
        if !gone.is_empty() {
            for path in &gone {
                self.metrics.set_invalid(path, None);
                self.files.remove(path);
                self.remove_process(path, "Process file removed; its schedules stopped.");
            }
            // Files rejected for a duplicate name may be valid now.
            let processes = &self.processes;
            self.files.retain(|path, _| processes.contains_key(path));
        }
        for (path, stamp) in listing {
            if self.files.get(&path) == Some(&stamp) {
                continue;
            }
            self.files.insert(path.clone(), stamp);
            let loader = self.loader.clone();
            let file = path.clone();
            let loaded = tokio::task::spawn_blocking(move || loader.load(&file)).await;
            match loaded {
                Ok(Ok(mut process)) => {
                    self.metrics.set_invalid(&path, None);
                    process.path = path.clone();
                    self.install(path, process).await;
                }
                Ok(Err(diagnostic)) => {
                    self.metrics.set_invalid(&path, Some(diagnostic.clone()));
                    let keeping = self.processes.contains_key(&path);
                    tracing::error!(
                        message = if keeping {
                            "Invalid process file; the previously loaded version keeps running."
                        } else {
                            "Invalid process file; it does not run."
                        },
                        path = %path.display(),
                        error = %diagnostic,
                    );
                }
                Err(error) => {
                    tracing::error!(message = "Process loader panicked.", path = %path.display(), %error);
                }
            }
        }
        self.metrics.processes.store(self.processes.len(), Ordering::Relaxed);
        let schedules = self.processes.values().map(|p| p.schedules.len()).sum();
        self.metrics.schedules.store(schedules, Ordering::Relaxed);
    }

    fn remove_process(&mut self, path: &Path, message: &'static str) {
        let Some(entry) = self.processes.remove(path) else {
            return;
        };
        let name = entry.process.name.clone();
        self.by_name.remove(&name);
        if let Some(runs) = self.runs.get_mut(&name) {
            runs.waiting.clear();
        }
        tracing::info!(message, process = %name, path = %path.display());
        let history = self.history.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = history.retain_schedules(&name, &[]) {
                tracing::warn!(message = "Cannot forget schedule state.", process = %name, %error);
            }
        });
    }

    /// Installs a freshly loaded process: new, or a new version of a loaded file.
    async fn install(&mut self, path: PathBuf, process: LoadedProcess) {
        if let Some(owner) = self.by_name.get(&process.name).filter(|owner| **owner != path) {
            tracing::error!(
                message = "Duplicate process name; this file does not run.",
                process = %process.name,
                path = %path.display(),
                first = %owner.display(),
            );
            return;
        }
        let mut old = None;
        if let Some(existing) = self.processes.get(&path) {
            if existing.process.fingerprint == process.fingerprint && existing.process.name == process.name {
                return;
            }
            if existing.process.name == process.name {
                old = self.processes.remove(&path);
            } else {
                self.remove_process(&path, "Process renamed; the old name stopped.");
            }
        }
        let name = process.name.clone();
        let now = Utc::now();
        let stored = if old.is_none() {
            let history = self.history.clone();
            let n = name.clone();
            match blocking(move || history.last_fired(&n)).await {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::error!(message = "Cannot read last fired instants; nothing is caught up.", process = %name, %error);
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        let mut previous: HashMap<String, ScheduleEntry> =
            old.map(|o| o.schedules.into_iter().map(|s| (s.key.clone(), s)).collect()).unwrap_or_default();
        let mut schedules = Vec::new();
        let mut catch_up = Vec::new();
        for (idx, spec) in process.schedules.iter().enumerate() {
            if !spec.enabled {
                continue;
            }
            let schedule = match spec.compile() {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::error!(message = "Invalid schedule; it does not fire.", process = %name, schedule = idx, %error);
                    continue;
                }
            };
            let mut key = format!("{}|{}", schedule.cron(), schedule.timezone().name());
            if schedules.iter().any(|s: &ScheduleEntry| s.key == key) {
                key = format!("{key}#{idx}");
            }
            if let Some(mut kept) = previous.remove(&key) {
                kept.overlap = spec.overlap;
                kept.catch_up = spec.catch_up;
                schedules.push(kept);
                continue;
            }
            let watermark = match stored.get(&key) {
                Some(&last) => {
                    let cap = match spec.catch_up {
                        CatchUp::All => MAX_CATCH_UP,
                        CatchUp::Last | CatchUp::None => 1,
                    };
                    let (missed, more) = missed_fires(&schedule, last, now, cap);
                    if let Some(&latest) = missed.last() {
                        match spec.catch_up {
                            CatchUp::None => {
                                tracing::info!(message = "Skipping fires missed while the service was down.", process = %name, cron = %schedule.cron(), since = %last);
                            }
                            CatchUp::Last | CatchUp::All => {
                                if more && spec.catch_up == CatchUp::All {
                                    tracing::warn!(
                                        message = "Too many missed fires; catching up only the latest ones.",
                                        process = %name,
                                        cron = %schedule.cron(),
                                        cap = MAX_CATCH_UP,
                                    );
                                }
                                tracing::info!(message = "Catching up fires missed while the service was down.", process = %name, cron = %schedule.cron(), count = missed.len(), catch_up = %spec.catch_up);
                                catch_up.extend(missed.iter().copied());
                            }
                        }
                        self.dirty.push((name.clone(), key.clone(), latest));
                        latest
                    } else {
                        last
                    }
                }
                None => {
                    self.dirty.push((name.clone(), key.clone(), now));
                    now
                }
            };
            let next = schedule.next_after(watermark).map(|t| t.with_timezone(&Utc));
            schedules.push(ScheduleEntry {
                key,
                schedule,
                overlap: spec.overlap,
                catch_up: spec.catch_up,
                watermark,
                next,
                replan: false,
            });
        }
        let keep: Vec<String> = schedules.iter().map(|s| s.key.clone()).collect();
        let history = self.history.clone();
        let n = name.clone();
        if let Err(error) = blocking(move || history.retain_schedules(&n, &keep)).await {
            tracing::warn!(message = "Cannot forget old schedule state.", process = %name, %error);
        }
        tracing::info!(
            message = "Process loaded.",
            process = %name,
            path = %path.display(),
            schedules = schedules.len(),
        );
        self.by_name.insert(name.clone(), path.clone());
        catch_up.sort();
        catch_up.dedup();
        let process = Arc::new(process);
        self.processes.insert(path, ProcessEntry { process: process.clone(), schedules });
        for at in catch_up {
            self.fire(Fire { process: process.clone(), overlap: Overlap::Queue, at, catch_up: true });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics and HTTP.

const DURATION_BUCKETS: [f64; 14] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
const LAG_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

struct Metrics {
    runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    lag: Mutex<Histogram>,
    in_progress: AtomicUsize,
    processes: AtomicUsize,
    schedules: AtomicUsize,
    /// Process files the loader rejected, with why (for `/health`).
    invalid: Mutex<BTreeMap<PathBuf, String>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            runs: Mutex::default(),
            durations: Mutex::default(),
            lag: Mutex::new(Histogram::new(&LAG_BUCKETS)),
            in_progress: AtomicUsize::new(0),
            processes: AtomicUsize::new(0),
            schedules: AtomicUsize::new(0),
            invalid: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Records that `path` is invalid (`Some(why)`) or no longer is.
    fn set_invalid(&self, path: &Path, why: Option<String>) {
        let mut invalid = self.invalid.lock().unwrap_or_else(|e| e.into_inner());
        match why {
            Some(why) => invalid.insert(path.to_path_buf(), why),
            None => invalid.remove(path),
        };
    }

    /// The `/health` body: `status` is `degraded` while some process file is invalid.
    fn health(&self) -> serde_json::Value {
        let invalid = self.invalid.lock().unwrap_or_else(|e| e.into_inner());
        let files: Vec<serde_json::Value> = invalid
            .iter()
            .map(|(path, error)| serde_json::json!({"path": path.display().to_string(), "error": error}))
            .collect();
        serde_json::json!({
            "status": if files.is_empty() { "ok" } else { "degraded" },
            "processes": self.processes.load(Ordering::Relaxed),
            "schedules": self.schedules.load(Ordering::Relaxed),
            "runs_in_progress": self.in_progress.load(Ordering::Relaxed),
            "invalid_files": files,
        })
    }

    fn count_run(&self, process: &str, status: RunStatus) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        *runs.entry((process.to_owned(), status.as_str())).or_default() += 1;
    }

    fn observe_duration(&self, process: &str, secs: f64) {
        let mut durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        durations.entry(process.to_owned()).or_insert_with(|| Histogram::new(&DURATION_BUCKETS)).observe(secs);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP stepwise_runs_total Runs ended (or discarded) by the service, by process and status.\n");
        out.push_str("# TYPE stepwise_runs_total counter\n");
        for ((process, status), count) in self.runs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "stepwise_runs_total{{process=\"{}\",status=\"{status}\"}} {count}", escape(process));
        }
        out.push_str("# HELP stepwise_run_duration_seconds Duration of runs started by the service.\n");
        out.push_str("# TYPE stepwise_run_duration_seconds histogram\n");
        for (process, histogram) in self.durations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            histogram.render(&mut out, "stepwise_run_duration_seconds", &format!("process=\"{}\"", escape(process)));
        }
        out.push_str("# HELP stepwise_schedule_lag_seconds How late on-time schedule fires were handled.\n");
        out.push_str("# TYPE stepwise_schedule_lag_seconds histogram\n");
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).render(&mut out, "stepwise_schedule_lag_seconds", "");
        for (name, help, value) in [
            ("stepwise_runs_in_progress", "Runs currently going.", &self.in_progress),
            ("stepwise_processes_loaded", "Valid process files loaded.", &self.processes),
            ("stepwise_schedules_active", "Enabled, valid schedules.", &self.schedules),
        ] {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

type HttpHandle = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

async fn start_http(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<HttpHandle, ServiceError> {
    use axum::http::header;
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServiceError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let app = axum::Router::new()
        .route(
            "/health",
            get(|axum::extract::State(m): axum::extract::State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "application/json")], m.health().to_string())
            }),
        )
        .route(
            "/metrics",
            get(|axum::extract::State(m): axum::extract::State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render())
            }),
        )
        .with_state(metrics);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = server.await {
            tracing::error!(message = "HTTP server failed.", %error);
        }
    });
    tracing::info!(message = "HTTP endpoint listening.", addr = %bound);
    Ok((stop, handle))
}
