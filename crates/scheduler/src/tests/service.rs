//! Service tests with a fake loader and runner, on real time with every-second schedules.
//!
//! The assertions compare the instants the runner recorded (a fire's scheduled instant, a run's
//! start) with each other, never a measured duration against a limit: they check behaviour, not
//! latency (the `fire_lag` benchmark measures that).

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use store::{ListFilter, RunStart, RunStatus, SqliteStore, Store, Trigger};

use crate::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec};
use crate::service::{
    CancelSignal, LoadedProcess, ProcessLoader, ProcessRunner, RunOutcome, RunRequest, ServiceConfig, ServiceError,
    missed_fires, serve,
};

/// Loads a tiny line format: `name: NAME`, then `schedule: CRON; TZ; OVERLAP; CATCH_UP[; off]`
/// lines. Anything else is a diagnostic.
struct FakeLoader {
    loads: AtomicUsize,
}

impl ProcessLoader for FakeLoader {
    fn load(&self, path: &Path) -> Result<LoadedProcess, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut name = None;
        let mut schedules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("name: ") {
                name = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("schedule: ") {
                let parts: Vec<&str> = rest.split(';').map(str::trim).collect();
                let [cron, tz, overlap, catch_up, rest @ ..] = parts.as_slice() else {
                    return Err(format!("{}:{}:1: error: bad schedule line", path.display(), n + 1));
                };
                schedules.push(ScheduleSpec {
                    cron: (*cron).to_owned(),
                    timezone: (*tz).to_owned(),
                    overlap: overlap.parse().map_err(|e| format!("{e}"))?,
                    catch_up: catch_up.parse().map_err(|e| format!("{e}"))?,
                    enabled: rest.first() != Some(&"off"),
                });
            } else if !line.trim().is_empty() {
                return Err(format!("{}:{}:1: error: unexpected line '{line}'", path.display(), n + 1));
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        Ok(LoadedProcess {
            path: path.to_path_buf(),
            name: name.ok_or_else(|| format!("{}: error: no name", path.display()))?,
            schedules,
            fingerprint: hasher.finish(),
            content_hash: format!("{:016x}", hasher.finish()),
            payload: None,
            outline: Default::default(),
            webhook: None,
        })
    }
}

#[derive(Debug, Clone)]
struct Call {
    process: String,
    scheduled_for: DateTime<Utc>,
    started: DateTime<Utc>,
}

/// Records calls; each run sleeps `delay` (or until cancelled); process names starting with
/// `boom` panic.
struct FakeRunner {
    delay: Duration,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    finished: AtomicUsize,
}

impl FakeRunner {
    fn new(delay: Duration) -> Arc<FakeRunner> {
        Arc::new(FakeRunner::with_delay(delay))
    }

    fn with_delay(delay: Duration) -> FakeRunner {
        FakeRunner {
            delay,
            calls: Mutex::default(),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        }
    }

    fn calls(&self, process: &str) -> Vec<Call> {
        self.calls.lock().unwrap().iter().filter(|c| c.process == process).cloned().collect()
    }
}

#[async_trait::async_trait]
impl ProcessRunner for FakeRunner {
    async fn run(&self, process: &LoadedProcess, request: RunRequest, mut cancel: CancelSignal) -> RunOutcome {
        assert_eq!(request.trigger, Trigger::Schedule);
        let started = Utc::now();
        let scheduled_for = request.scheduled_for.expect("a scheduled run");
        self.calls.lock().unwrap().push(Call { process: process.name.clone(), scheduled_for, started });
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if process.name.starts_with("boom") {
            self.running.fetch_sub(1, Ordering::SeqCst);
            panic!("the fake runner panics for '{}'", process.name);
        }
        let cancelled = tokio::select! {
            () = tokio::time::sleep(self.delay) => None,
            reason = cancel.wait_for(Option::is_some) => reason.ok().and_then(|r| r.clone()),
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        if let Some(reason) = cancelled {
            let mut outcome = RunOutcome::new(RunStatus::Aborted);
            outcome.error = Some(reason);
            return outcome;
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
        let mut outcome = RunOutcome::new(RunStatus::Complete);
        outcome.documents_in = 1;
        outcome.documents_out = 1;
        outcome
    }
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// Requests shutdown and waits for `serve` to return (a minute at most, so that a hang
    /// fails the test instead of stalling it).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(60), &mut self.handle).await;
        result.expect("serve returns after shutdown").expect("serve task").expect("serve ok");
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    state: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("processes");
        std::fs::create_dir(&dir).unwrap();
        let state = tmp.path().join(".stepwise");
        Env { _tmp: tmp, dir, state }
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join(file), text).unwrap();
    }

    fn history(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&store::db_path(&self.state)).unwrap())
    }

    fn config(&self, grace: Duration, listen: Option<std::net::SocketAddr>) -> ServiceConfig {
        ServiceConfig {
            dir: self.dir.clone(),
            store: self.history(),
            node: "test-node".to_owned(),
            workers: 16,
            lease: Duration::from_secs(30),
            grace,
            reload_interval: Duration::from_millis(200),
            claim_interval: Duration::from_millis(50),
            run_stack_bytes: None,
            listen,
        }
    }

    fn start(&self, runner: Arc<FakeRunner>) -> Running {
        self.start_with(self.config(Duration::from_secs(10), None), runner)
    }

    fn start_with(&self, config: ServiceConfig, runner: Arc<FakeRunner>) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let loader = Arc::new(FakeLoader { loads: AtomicUsize::new(0) });
        let handle = tokio::spawn(serve(config, loader, runner, async move {
            let _ = stopped.await;
        }));
        Running { stop: Some(stop), handle }
    }

    async fn runs(&self, process: &str, status: &str) -> usize {
        let filter = ListFilter { process: Some(process.into()), status: Some(status.into()), ..Default::default() };
        self.history().list(&filter).await.unwrap().len()
    }
}

fn every_second(name: &str, overlap: &str, catch_up: &str) -> String {
    format!("name: {name}\nschedule: */1 * * * * *; UTC; {overlap}; {catch_up}\n")
}

/// Logs to the test output (shown for failing tests); `RUST_LOG=scheduler=debug` for more.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("scheduler=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn seconds(calls: &[Call]) -> Vec<i64> {
    calls.iter().map(|c| c.scheduled_for.timestamp()).collect::<BTreeSet<_>>().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_on_time_and_skips_invalid_files() {
    init_tracing();
    let env = Env::new();
    env.write("good.yaml", &every_second("good", "skip", "none"));
    env.write("bad.yml", "name: bad\nthis is not valid\n");
    env.write("bad-cron.yaml", "name: bad-cron\nschedule: 99 * * * * *; UTC; skip; none\n");
    env.write("notes.txt", &every_second("ignored", "skip", "none"));
    env.write(".hidden.yaml", &every_second("hidden", "skip", "none"));
    let runner = FakeRunner::new(Duration::from_millis(10));
    let service = env.start(runner.clone());
    sleep_ms(3600).await;
    service.stop().await;

    let calls = runner.calls("good");
    assert!((3..=5).contains(&calls.len()), "{calls:?}");
    for call in &calls {
        assert_eq!(call.scheduled_for.timestamp_subsec_nanos(), 0);
        assert!(call.started >= call.scheduled_for, "never early: {call:?}");
    }
    let secs = seconds(&calls);
    assert!(secs.windows(2).all(|w| w[1] - w[0] == 1), "one fire per second: {secs:?}");
    for other in ["bad", "bad-cron", "ignored", "hidden"] {
        assert!(runner.calls(other).is_empty(), "{other} must not run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_discards_while_running() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "skip", "none"));
    let runner = FakeRunner::new(Duration::from_millis(2500));
    let service = env.start(runner.clone());
    sleep_ms(4500).await;
    service.stop().await;
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 1);
    let calls = runner.calls("p");
    assert!((1..=2).contains(&calls.len()), "{calls:?}");
    // A run starts only for a fire that came after the previous run ended (each run takes at
    // least the runner's delay): fires during a run are discarded, never delayed.
    for pair in calls.windows(2) {
        let previous_end = pair[0].started + chrono::Duration::from_std(runner.delay).unwrap();
        assert!(pair[1].scheduled_for >= previous_end, "skip never delays: {calls:?}");
    }
    let discarded = env.runs("p", "DISCARDED").await;
    assert!(discarded >= 2, "discarded {discarded}");
    let rows =
        env.history().list(&ListFilter { status: Some("DISCARDED".into()), ..Default::default() }).await.unwrap();
    assert!(rows.iter().all(|r| r.trigger == Trigger::Schedule && r.scheduled_for.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_queue_keeps_one_waiting_run() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "queue", "none"));
    let runner = FakeRunner::new(Duration::from_millis(2500));
    let service = env.start(runner.clone());
    sleep_ms(5800).await;
    service.stop().await;
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 1, "queue never runs concurrently");
    let calls = runner.calls("p");
    assert!(calls.len() >= 2, "{calls:?}");
    // The second run waited for the first: its fire came during the first run, and it started
    // only once the first had ended (each run takes at least the runner's delay).
    let first_end = calls[0].started + chrono::Duration::from_std(runner.delay).unwrap();
    assert!(calls[1].scheduled_for < first_end, "{calls:?}");
    assert!(calls[1].started >= first_end, "{calls:?}");
    assert_eq!(
        calls[1].scheduled_for - calls[0].scheduled_for,
        chrono::Duration::seconds(1),
        "the first queued fire is kept"
    );
    assert!(env.runs("p", "DISCARDED").await >= 1, "fires while one already waits are discarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_allow_runs_concurrently() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "allow", "none"));
    let runner = FakeRunner::new(Duration::from_millis(2500));
    let service = env.start(runner.clone());
    sleep_ms(4200).await;
    service.stop().await;
    assert!(runner.max_running.load(Ordering::SeqCst) >= 2);
    assert!(runner.calls("p").len() >= 3);
    assert_eq!(env.runs("p", "DISCARDED").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_after_a_restart() {
    init_tracing();
    let env = Env::new();
    // `allow`, so that a regular fire right after the catch-up runs is never discarded.
    env.write("none.yaml", &every_second("none", "allow", "none"));
    env.write("last.yaml", &every_second("last", "allow", "last"));
    env.write("all.yaml", &every_second("all", "allow", "all"));
    let runner = FakeRunner::new(Duration::from_millis(10));
    let service = env.start(runner.clone());
    sleep_ms(2500).await;
    service.stop().await;
    let first: std::collections::HashMap<&str, i64> = ["none", "last", "all"]
        .into_iter()
        .map(|p| (p, *seconds(&runner.calls(p)).last().expect("fired before the stop")))
        .collect();

    // Down for a while: about three fires are missed.
    sleep_ms(3500).await;
    let restart = Utc::now();
    let service = env.start(runner.clone());
    sleep_ms(1800).await;
    service.stop().await;

    let gaps = |p: &str| -> Vec<(i64, i64)> {
        seconds(&runner.calls(p)).windows(2).filter(|w| w[1] - w[0] > 1).map(|w| (w[0], w[1])).collect()
    };
    let after_restart = |p: &str| -> Vec<Call> {
        let last_before = first[p];
        runner.calls(p).into_iter().filter(|c| c.scheduled_for.timestamp() > last_before).collect()
    };

    // all: every second is covered, across the downtime too.
    assert!(gaps("all").is_empty(), "all: {:?}", seconds(&runner.calls("all")));
    let caught = after_restart("all").iter().filter(|c| c.scheduled_for <= restart).count();
    assert!(caught >= 3, "all caught up {caught}");

    // none: one gap, and nothing older than the restart runs.
    assert_eq!(gaps("none").len(), 1, "none: {:?}", seconds(&runner.calls("none")));
    assert!(after_restart("none").iter().all(|c| c.scheduled_for > restart));
    let none_resumed = after_restart("none").first().expect("none fires after the restart").scheduled_for;

    // last: one gap, closed by a single catch-up fire: the latest instant missed before the
    // service came back, so earlier than the first fire of `none`, planned at the same start.
    let last_gaps = gaps("last");
    assert_eq!(last_gaps.len(), 1, "last: {:?}", seconds(&runner.calls("last")));
    let resumed = after_restart("last")[0].scheduled_for;
    assert!(resumed < none_resumed, "last resumed at {resumed}, none at {none_resumed}");
    let missed_and_run = after_restart("last").iter().filter(|c| c.scheduled_for < none_resumed).count();
    assert_eq!(missed_and_run, 1, "one catch-up fire: {:?}", seconds(&runner.calls("last")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_changed_new_and_deleted_files() {
    init_tracing();
    let env = Env::new();
    env.write("changed.yaml", &every_second("changed", "skip", "none"));
    env.write("broken.yaml", &every_second("broken", "skip", "none"));
    let runner = FakeRunner::new(Duration::from_millis(10));
    let service = env.start(runner.clone());
    sleep_ms(1500).await;
    assert!(!runner.calls("changed").is_empty());

    // Change the schedule to one that never comes soon, add a file, break a file.
    env.write("changed.yaml", "name: changed\nschedule: 0 0 0 1 1 *; UTC; skip; none\n");
    env.write("added.yaml", &every_second("added", "skip", "none"));
    env.write("broken.yaml", "name: broken\nnot valid any more\n");
    let changed_at = Utc::now();
    sleep_ms(2500).await;
    let late = |p: &str, since: DateTime<Utc>| {
        runner.calls(p).iter().filter(|c| c.scheduled_for > since + chrono::Duration::milliseconds(500)).count()
    };
    assert_eq!(late("changed", changed_at), 0, "the old schedule stopped");
    assert!(late("added", changed_at) >= 1, "the new file runs");
    assert!(late("broken", changed_at) >= 1, "the previous version of an invalid file keeps running");

    // Delete the added file; re-enable a schedule by changing it back.
    std::fs::remove_file(env.dir.join("added.yaml")).unwrap();
    env.write("changed.yaml", &every_second("changed", "skip", "none"));
    let deleted_at = Utc::now();
    sleep_ms(2000).await;
    service.stop().await;
    assert_eq!(late("added", deleted_at), 0, "a deleted file stops");
    assert!(late("changed", deleted_at) >= 1, "the changed schedule was planned again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_runs_within_grace() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "skip", "none"));
    let runner = Arc::new(FakeRunner::with_delay(Duration::from_millis(3000)));
    let service = env.start(runner.clone());
    while runner.running.load(Ordering::SeqCst) == 0 {
        sleep_ms(20).await;
    }
    assert_eq!(runner.finished.load(Ordering::SeqCst), 0, "the run is still going when shutdown is asked");
    service.stop().await;
    assert_eq!(runner.finished.load(Ordering::SeqCst), 1, "serve returned only once the running run finished");
    assert_eq!(runner.calls("p").len(), 1, "no run starts after shutdown is requested");
    assert_eq!(env.runs("p", "COMPLETE").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_after_grace_and_records_runs_aborted() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "skip", "none"));
    let runner = Arc::new(FakeRunner::with_delay(Duration::from_secs(20)));
    let service = env.start_with(env.config(Duration::from_millis(300), None), runner.clone());
    while runner.running.load(Ordering::SeqCst) == 0 {
        sleep_ms(20).await;
    }
    service.stop().await;
    // The run takes 20 s, so serve returning with it unfinished means the grace period ended it.
    assert_eq!(runner.finished.load(Ordering::SeqCst), 0, "serve returned after the grace period");
    assert_eq!(env.runs("p", "INPROCESS").await, 0);
    let aborted =
        env.history().list(&ListFilter { status: Some("ABORTED".into()), ..Default::default() }).await.unwrap();
    assert_eq!(aborted.len(), 1, "{aborted:#?}");
    assert!(aborted[0].error.as_deref().unwrap().contains("shut down"), "{aborted:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_and_metrics_and_survives_a_panicking_runner() {
    init_tracing();
    let env = Env::new();
    env.write("p.yaml", &every_second("p", "skip", "none"));
    env.write("boom.yaml", &every_second("boom", "skip", "none"));
    // A run left behind by an earlier service is aborted at start.
    env.history()
        .record_start(&RunStart {
            run_id: "left-over".into(),
            process: "p".into(),
            trigger: Trigger::Schedule,
            scheduled_for: None,
            started_at: Utc::now(),
            node: "gone".into(),
            lease: None,
            overrides: Vec::new(),
        })
        .await
        .unwrap();
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let runner = Arc::new(FakeRunner::with_delay(Duration::from_millis(10)));
    let service = env.start_with(env.config(Duration::from_secs(5), Some(addr)), runner.clone());
    sleep_ms(2600).await;

    let (status, body) = http_get(addr, "/health").await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["processes"], 2);

    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE stepwise_runs_total counter"), "{metrics}");
    assert!(metrics.contains("stepwise_runs_total{process=\"p\",status=\"COMPLETE\"} "), "{metrics}");
    assert!(metrics.contains("stepwise_runs_total{process=\"boom\",status=\"ABORTED\"} "), "{metrics}");
    assert!(metrics.contains("stepwise_run_duration_seconds_bucket{process=\"p\",le=\"+Inf\"} "), "{metrics}");
    assert!(metrics.contains("# TYPE stepwise_schedule_lag_seconds histogram"), "{metrics}");
    let lag_count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stepwise_schedule_lag_seconds_count "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(lag_count >= 2, "{metrics}");
    let (status, _) = http_get(addr, "/nope").await;
    assert_eq!(status, 404);

    service.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "HTTP stops with the service");
    assert_eq!(env.history().get("left-over").await.unwrap().unwrap().0.status, "ABORTED");
    // The panicking runner's runs are recorded ABORTED by the service; others still ran.
    assert!(runner.calls("boom").len() >= 2, "the service keeps firing after a panic");
    assert!(env.runs("boom", "ABORTED").await >= 2);
    assert!(env.runs("p", "COMPLETE").await >= 2);
}

#[tokio::test]
async fn refuses_a_missing_directory_and_a_busy_port() {
    init_tracing();
    let env = Env::new();
    let mut config = env.config(Duration::from_secs(1), None);
    config.dir = env.dir.join("missing");
    let loader = Arc::new(FakeLoader { loads: AtomicUsize::new(0) });
    let err = serve(config, loader.clone(), FakeRunner::new(Duration::ZERO), std::future::pending()).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot read process directory"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = env.config(Duration::from_secs(1), Some(busy.local_addr().unwrap()));
    let err = serve(config, loader, FakeRunner::new(Duration::ZERO), std::future::pending()).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot listen on 127.0.0.1:"), "{err}");
}

#[test]
fn missed_fires_caps_to_the_latest() {
    let every_second = Schedule::parse("* * * * * *", "UTC").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let day_ago = now - chrono::Duration::days(1);
    let (fires, more) = missed_fires(&every_second, day_ago, now, 1000);
    assert_eq!(fires.len(), 1000);
    assert!(more);
    assert_eq!(fires.last(), Some(&now));
    assert_eq!(fires[0], now - chrono::Duration::seconds(999));
    let (fires, more) = missed_fires(&every_second, now - chrono::Duration::seconds(3), now, 1000);
    assert_eq!(fires.len(), 3);
    assert!(!more);
    let (fires, more) = missed_fires(&every_second, now - chrono::Duration::seconds(3), now, 1);
    assert_eq!((fires, more), (vec![now], true));
    assert_eq!(missed_fires(&every_second, now, now, 10), (vec![], false));

    // A rare schedule far back in time is still found.
    let yearly = Schedule::parse("0 0 1 1 *", "Europe/London").unwrap();
    let (fires, more) = missed_fires(&yearly, now - chrono::Duration::days(800), now, 1000);
    assert_eq!(fires.len(), 2);
    assert!(!more);
    let (fires, more) = missed_fires(&yearly, now - chrono::Duration::days(800), now, 1);
    assert_eq!(fires, vec![Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()]);
    assert!(more);
}

#[test]
fn spec_helpers() {
    let spec = ScheduleSpec {
        cron: "0 9 * * MON-FRI".into(),
        timezone: "Europe/London".into(),
        overlap: Overlap::Queue,
        catch_up: CatchUp::All,
        enabled: true,
    };
    assert_eq!(spec.compile().unwrap().timezone(), chrono_tz::Europe::London);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
