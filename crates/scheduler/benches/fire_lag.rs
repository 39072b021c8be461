//! Fire-lag benchmark for the `serve` loop (`cargo bench -p scheduler --bench fire_lag`).
//!
//! Loads 1,000 process files, each with one schedule firing every second, into the service
//! with a no-op runner for about 10 s, and prints how late runs started after their scheduled
//! instant (p50, p99, max) and the CPU time the process used. Then it loads 1,000 schedules
//! that do not fire during the measurement (daily) and prints the CPU time used while idle.
//! CPU time is `utime + stime` from `/proc/self/stat`. Last it measures the fire lag again with
//! two more processes whose every run burns a core for 3 s (issue 13 item 11: runs execute off
//! the scheduler's threads, so fire timing does not wait for them).
//!
//! The store is SQLite in a temporary directory (the default of one node).
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a short smoke version.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use scheduler::{
    CancelSignal, CatchUp, LoadedProcess, Overlap, ProcessLoader, ProcessRunner, RunOutcome, RunRequest, ScheduleSpec,
    ServiceConfig, serve,
};
use store::RunStatus;

/// Reads `name: N` and `cron: C` lines.
struct Loader;

impl ProcessLoader for Loader {
    fn load(&self, path: &Path) -> Result<LoadedProcess, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let mut name = None;
        let mut cron = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("name: ") {
                name = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("cron: ") {
                cron = Some(v.to_owned());
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        Ok(LoadedProcess {
            path: path.to_path_buf(),
            name: name.ok_or("no name")?,
            schedules: vec![ScheduleSpec {
                cron: cron.ok_or("no cron")?,
                timezone: "UTC".into(),
                overlap: Overlap::Skip,
                catch_up: CatchUp::None,
                enabled: true,
            }],
            fingerprint: hasher.finish(),
            content_hash: format!("{:016x}", hasher.finish()),
            payload: None,
            outline: Default::default(),
            webhook: None,
        })
    }
}

/// Does nothing but note how late it was called.
#[derive(Default)]
struct Runner {
    lags: Mutex<Vec<(i64, f64)>>,
}

#[async_trait::async_trait]
impl ProcessRunner for Runner {
    async fn run(&self, process: &LoadedProcess, request: RunRequest, _: CancelSignal) -> RunOutcome {
        let scheduled_for: DateTime<Utc> = request.scheduled_for.unwrap_or_else(Utc::now);
        if process.name.starts_with("heavy") {
            // A CPU-bound step: burns this thread for 3 s without yielding.
            let until = Instant::now() + Duration::from_secs(3);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            return RunOutcome::new(RunStatus::Complete);
        }
        let lag = (Utc::now() - scheduled_for).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        self.lags.lock().unwrap_or_else(|e| e.into_inner()).push((scheduled_for.timestamp(), lag));
        RunOutcome::new(RunStatus::Complete)
    }
}

fn cpu_seconds() -> f64 {
    let ticks_per_sec = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(close) = stat.rfind(')') else {
        return f64::NAN;
    };
    // Fields 14 and 15 (utime, stime); fields after `(comm)` start at 3.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).into_iter().flatten().filter_map(|v| v.parse::<f64>().ok()).sum();
    ticks / ticks_per_sec
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Outcome {
    lags: Vec<(i64, f64)>,
    cpu: f64,
    wall: Duration,
}

async fn measure(n: usize, cron: &str, seconds: u64, heavy: usize) -> Outcome {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("processes");
    std::fs::create_dir(&dir).expect("processes dir");
    for i in 0..n {
        std::fs::write(dir.join(format!("p{i:04}.yaml")), format!("name: p{i:04}\ncron: {cron}\n")).expect("write");
    }
    for i in 0..heavy {
        std::fs::write(dir.join(format!("heavy{i}.yaml")), format!("name: heavy{i}\ncron: */1 * * * * *\n"))
            .expect("write");
    }
    let store = store::SqliteStore::open(&tmp.path().join("state.db")).expect("store");
    let config = ServiceConfig {
        dir,
        store: Arc::new(store),
        node: "bench".to_owned(),
        workers: n + heavy + 16,
        lease: Duration::from_secs(30),
        grace: Duration::from_secs(5),
        reload_interval: Duration::from_secs(2),
        claim_interval: scheduler::service::DEFAULT_CLAIM_INTERVAL,
        run_stack_bytes: None,
        listen: None,
    };
    let runner = Arc::new(Runner::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(serve(config, Arc::new(Loader), runner.clone(), async move {
        let _ = stopped.await;
    }));
    // Let loading finish and the first fires settle, then measure.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    runner.lags.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let cpu_before = cpu_seconds();
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = cpu_seconds() - cpu_before;
    let wall = wall.elapsed();
    let lags = std::mem::take(&mut *runner.lags.lock().unwrap_or_else(|e| e.into_inner()));
    let _ = stop.send(());
    match service.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("serve failed: {error}"),
        Err(error) => eprintln!("serve panicked: {error}"),
    }
    Outcome { lags, cpu, wall }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, busy_secs, idle_secs) = if full { (1000, 10, 10) } else { (50, 2, 1) };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let busy = measure(n, "*/1 * * * * *", busy_secs, 0).await;
        report_lags(n, &busy, "no-op runner");
        let heavy = measure(n, "*/1 * * * * *", busy_secs, 2).await;
        report_lags(n, &heavy, "no-op runner, plus two processes whose runs burn a core for 3 s each");
        let idle = measure(n, "0 0 3 * * *", idle_secs, 0).await;
        println!("fire_lag: {n} schedules not due (daily), {:.1} s idle", idle.wall.as_secs_f64());
        println!(
            "  CPU while idle: {:.3} s ({:.2}% of one core; includes a directory re-scan every 2 s)",
            idle.cpu,
            idle.cpu / idle.wall.as_secs_f64() * 100.0
        );
    });
}

fn report_lags(n: usize, outcome: &Outcome, what: &str) {
    // The earliest start of each second's batch: how late the loop woke up.
    let mut first_of_batch = std::collections::BTreeMap::<i64, f64>::new();
    for &(second, lag) in &outcome.lags {
        let min = first_of_batch.entry(second).or_insert(lag);
        *min = min.min(lag);
    }
    let mut wake: Vec<f64> = first_of_batch.into_values().collect();
    wake.sort_by(f64::total_cmp);
    let mut lags: Vec<f64> = outcome.lags.iter().copied().map(|(_, lag)| lag).collect();
    lags.sort_by(f64::total_cmp);
    let expected = n as f64 * outcome.wall.as_secs_f64();
    println!("fire_lag: {n} schedules firing every second, {what}, {:.1} s", outcome.wall.as_secs_f64());
    println!("  runs started: {} (expected about {expected:.0})", lags.len());
    println!(
        "  fire lag: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lags, 0.5) * 1e3,
        percentile(&lags, 0.99) * 1e3,
        lags.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    println!(
        "  of which wake-up (first run of each second): p50 {:.2} ms, max {:.2} ms",
        percentile(&wake, 0.5) * 1e3,
        wake.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    println!(
        "  CPU: {:.2} s over {:.1} s ({:.1}% of one core)",
        outcome.cpu,
        outcome.wall.as_secs_f64(),
        outcome.cpu / outcome.wall.as_secs_f64() * 100.0
    );
}
