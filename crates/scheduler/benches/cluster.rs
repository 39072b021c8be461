//! Cluster benchmark on PostgreSQL (`cargo bench -p scheduler --bench cluster`): nodes are
//! services in this one process, each with a pool of its own, sharing one database created for
//! the run (server `STEPWISE_TEST_POSTGRES`, default
//! `postgres://stepwise:stepwise@127.0.0.1:5432/postgres`).
//!
//! 1. Runs per second with 1, 2 and 3 nodes: 600 manual runs queued at once, each waiting 200 ms
//!    on I/O (a sleep, as a call to a service with latency), `--workers 16` per node.
//! 2. Fire lag (fire instant to run start) of 1,000 every-second schedules across 3 nodes, and
//!    the same on one node with SQLite as the baseline.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a short smoke version.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use scheduler::{
    CancelSignal, CatchUp, LoadedProcess, Overlap, ProcessLoader, ProcessRunner, RunOutcome, RunRequest, ScheduleSpec,
    ServiceConfig, serve,
};
use store::{NewRun, RunStatus, Store, Trigger};

#[path = "../../store/tests/support/postgres.rs"]
mod pg;

/// Reads `name: N` and `cron: C` lines.
struct Loader;

impl ProcessLoader for Loader {
    fn load(&self, path: &Path) -> Result<LoadedProcess, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::to_owned);
        let cron = field("cron: ").ok_or("no cron")?;
        Ok(LoadedProcess {
            path: path.to_path_buf(),
            name: field("name: ").ok_or("no name")?,
            schedules: vec![ScheduleSpec {
                cron,
                timezone: "UTC".into(),
                overlap: Overlap::Allow,
                catch_up: CatchUp::None,
                enabled: true,
            }],
            fingerprint: text.len() as u64,
            content_hash: format!("{:x}", text.len()),
            payload: None,
            outline: Default::default(),
            webhook: None,
        })
    }
}

/// Notes how late scheduled runs started; manual runs wait `io` (I/O, not CPU).
struct Runner {
    io: Duration,
    lags: Mutex<Vec<f64>>,
    done: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ProcessRunner for Runner {
    async fn run(&self, _: &LoadedProcess, request: RunRequest, _: CancelSignal) -> RunOutcome {
        if let Some(at) = request.scheduled_for {
            let lag = (Utc::now() - at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            self.lags.lock().unwrap_or_else(|e| e.into_inner()).push(lag);
        } else {
            tokio::time::sleep(self.io).await;
        }
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RunOutcome::new(RunStatus::Complete)
    }
}

struct Cluster {
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    handles: Vec<tokio::task::JoinHandle<Result<(), scheduler::ServiceError>>>,
}

impl Cluster {
    async fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

async fn start(dir: &Path, stores: Vec<Arc<dyn Store>>, runner: Arc<Runner>, workers: usize) -> Cluster {
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        let config = ServiceConfig {
            dir: dir.to_path_buf(),
            store,
            node: format!("n{i}"),
            workers,
            lease: Duration::from_secs(30),
            grace: Duration::from_secs(5),
            reload_interval: Duration::from_secs(5),
            claim_interval: scheduler::service::DEFAULT_CLAIM_INTERVAL,
            run_stack_bytes: None,
            listen: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        handles.push(tokio::spawn(serve(config, Arc::new(Loader), runner.clone(), async move {
            let _ = stopped.await;
        })));
    }
    Cluster { stops, handles }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

async fn pg_stores(url: &str, n: usize) -> Vec<Arc<dyn Store>> {
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..n {
        stores.push(Arc::new(store::PgStore::connect(url).await.expect("connect")));
    }
    stores
}

async fn throughput(nodes: usize, runs: usize) -> f64 {
    let Some(db) = pg::TestDb::create("bench_tp").await else { return f64::NAN };
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("io.yaml"), "name: io\ncron: 0 0 3 1 1 *\n").expect("write");
    let stores = pg_stores(&db.url, nodes).await;
    let queue = stores[0].clone();
    for _ in 0..runs {
        let run = NewRun {
            run_id: uuid::Uuid::now_v7().to_string(),
            process: "io".into(),
            trigger: Trigger::Manual,
            overrides: Vec::new(),
            content_hash: None,
            queued_at: Utc::now(),
            start_document: None,
            rerun_of: None,
        };
        queue.enqueue(&run).await.expect("enqueue");
    }
    let runner = Arc::new(Runner { io: Duration::from_millis(200), lags: Mutex::default(), done: Default::default() });
    let started = Instant::now();
    let cluster = start(tmp.path(), stores, runner.clone(), 16).await;
    while runner.done.load(std::sync::atomic::Ordering::Relaxed) < runs {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = runs as f64 / started.elapsed().as_secs_f64();
    cluster.stop().await;
    rate
}

async fn fire_lag(stores: Vec<Arc<dyn Store>>, schedules: usize, seconds: u64) -> (f64, f64, usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    for i in 0..schedules {
        std::fs::write(tmp.path().join(format!("p{i:04}.yaml")), format!("name: p{i:04}\ncron: * * * * * *\n"))
            .expect("write");
    }
    let runner = Arc::new(Runner { io: Duration::ZERO, lags: Mutex::default(), done: Default::default() });
    let cluster = start(tmp.path(), stores, runner.clone(), schedules + 16).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    runner.lags.lock().unwrap_or_else(|e| e.into_inner()).clear();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut lags = std::mem::take(&mut *runner.lags.lock().unwrap_or_else(|e| e.into_inner()));
    cluster.stop().await;
    lags.sort_by(f64::total_cmp);
    (percentile(&lags, 0.5), percentile(&lags, 0.99), lags.len())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, schedules, seconds) = if full { (600, 1000, 10) } else { (30, 20, 2) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("cluster: {runs} queued runs, each waiting 200 ms on I/O, --workers 16 per node");
        let one = throughput(1, runs).await;
        for nodes in 1..=3 {
            let rate = if nodes == 1 { one } else { throughput(nodes, runs).await };
            println!("  {nodes} node(s): {rate:.1} runs/s ({:.2}x one node)", rate / one);
        }
        let sqlite_dir = tempfile::tempdir().expect("tmp");
        let sqlite: Arc<dyn Store> =
            Arc::new(store::SqliteStore::open(&sqlite_dir.path().join("state.db")).expect("sqlite"));
        let (p50, p99, n) = fire_lag(vec![sqlite], schedules, seconds).await;
        println!(
            "fire lag, {schedules} every-second schedules, 1 node on SQLite: p50 {:.1} ms, p99 {:.1} ms ({n} runs)",
            p50 * 1e3,
            p99 * 1e3
        );
        if let Some(db) = pg::TestDb::create("bench_lag").await {
            let stores = pg_stores(&db.url, 3).await;
            let (p50, p99, n) = fire_lag(stores, schedules, seconds).await;
            println!(
                "fire lag, {schedules} every-second schedules, 3 nodes on PostgreSQL: p50 {:.1} ms, p99 {:.1} ms ({n} runs)",
                p50 * 1e3,
                p99 * 1e3
            );
        }
    });
}
