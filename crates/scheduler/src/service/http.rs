//! `/health` and `/metrics` of the service, and the metrics they show.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ServiceError;
use store::RunStatus;

const DURATION_BUCKETS: [f64; 14] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
const LAG_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Clone)]
pub(super) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    pub(super) fn observe(&mut self, value: f64) {
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

pub(super) struct Metrics {
    pub(super) runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    pub(super) durations: Mutex<BTreeMap<String, Histogram>>,
    pub(super) lag: Mutex<Histogram>,
    pub(super) in_progress: AtomicUsize,
    pub(super) processes: AtomicUsize,
    pub(super) schedules: AtomicUsize,
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
    pub(super) fn set_invalid(&self, path: &Path, why: Option<String>) {
        let mut invalid = self.invalid.lock().unwrap_or_else(|e| e.into_inner());
        match why {
            Some(why) => invalid.insert(path.to_path_buf(), why),
            None => invalid.remove(path),
        };
    }

    /// The `/health` body: `status` is `degraded` while some process file is invalid.
    pub(super) fn health(&self, node: &str) -> serde_json::Value {
        let invalid = self.invalid.lock().unwrap_or_else(|e| e.into_inner());
        let files: Vec<serde_json::Value> = invalid
            .iter()
            .map(|(path, error)| serde_json::json!({"path": path.display().to_string(), "error": error}))
            .collect();
        serde_json::json!({
            "status": if files.is_empty() { "ok" } else { "degraded" },
            "node": node,
            "processes": self.processes.load(Ordering::Relaxed),
            "schedules": self.schedules.load(Ordering::Relaxed),
            "runs_in_progress": self.in_progress.load(Ordering::Relaxed),
            "invalid_files": files,
        })
    }

    pub(super) fn count_run(&self, process: &str, status: RunStatus) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        *runs.entry((process.to_owned(), status.as_str())).or_default() += 1;
    }

    pub(super) fn observe_duration(&self, process: &str, secs: f64) {
        let mut durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        durations.entry(process.to_owned()).or_insert_with(|| Histogram::new(&DURATION_BUCKETS)).observe(secs);
    }

    pub(super) fn render(&self) -> String {
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
            (
                "stepwise_schedules_active",
                "Valid schedules of the served processes that are not paused.",
                &self.schedules,
            ),
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

pub(super) type HttpHandle = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

pub(super) async fn start_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    node: String,
) -> Result<HttpHandle, ServiceError> {
    use axum::http::header;
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServiceError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let app = axum::Router::new()
        .route(
            "/health",
            get(move |axum::extract::State(m): axum::extract::State<Arc<Metrics>>| {
                let body = m.health(&node).to_string();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
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
