//! `stepwise serve`, `stepwise schedule`, `stepwise history` end to end (issue 7).
//!
//! The real binary serves a temporary directory of process files with second-level schedules;
//! what happened is read back with `stepwise history --json --state <tmp>/state.db`.
//!
//! * Service scenarios ([`serve_scenarios`]): runs fire on time; overlap `skip`, `queue` and
//!   `allow` with a slow process; catch-up after a restart (`none`, `last`, `all`); reload of
//!   added, changed, invalid and removed files; graceful SIGTERM, and a grace period that runs
//!   out; crash recovery (`kill -9` mid-run, restart, the run is `ABORTED`); `/health` and
//!   `/metrics`; invalid files reported on stderr while the valid ones run; tokens never stored
//!   in the history.
//! * Without a service: the daylight-saving rule through `stepwise schedule` (Europe/London,
//!   America/New_York and Australia/Sydney in 2026), and `stepwise run` recording manual and test
//!   runs that `stepwise history` lists and filters.
//!
//! The slow process lists KnowBe4 users from the simulator (`stepwise knowbe4-sim`, a separate
//! process) started with `--latency-ms 3000`, so each of its runs takes about 3 s whatever the
//! machine's load.
//!
//! Each service scenario takes several seconds of wall-clock time, nearly all of it waiting, so
//! [`serve_scenarios`] runs them all at once, each on its own thread with its own directory,
//! simulator and service, and reports every failure by name. `STEPWISE_SERVE_SCENARIOS=a,b`
//! runs only the named ones. No duration is asserted: the machine may be loaded; the checks
//! compare recorded instants and statuses.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

use crate::support::{Dir, Run, SimProcess, http_get, http_with, stepwise, stepwise_env};

/// A token the simulator accepts.
const TOKEN: &str = "sandbox-token";
/// How long each call to the slow simulator takes.
const SLOW_MS: u64 = 3000;
/// Every wait for something the service should do gives up after this long.
const PATIENCE: Duration = Duration::from_secs(90);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// The scenarios, run in parallel.

type Scenario = (&'static str, fn());

/// How many scenarios run at once.
const PARALLEL: usize = 7;

/// Gives a scenario's slot back, even when it panics.
struct Release<'a>(&'a (Mutex<usize>, std::sync::Condvar));

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let (free, changed) = self.0;
        *free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        changed.notify_one();
    }
}

/// The longest first.
const SCENARIOS: &[Scenario] = &[
    ("catch_up_none", || catch_up_after_restart("none")),
    ("catch_up_last", || catch_up_after_restart("last")),
    ("catch_up_all", || catch_up_after_restart("all")),
    ("reload_on_file_change", reload_on_file_change),
    ("fires_on_time", fires_on_time),
    ("overlap_skip_records_discarded_runs", overlap_skip_records_discarded_runs),
    ("overlap_queue_keeps_one_waiting_run", overlap_queue_keeps_one_waiting_run),
    ("overlap_allow_runs_concurrently", overlap_allow_runs_concurrently),
    ("sigterm_lets_the_running_run_finish", sigterm_lets_the_running_run_finish),
    ("sigterm_grace_period_runs_out", sigterm_grace_period_runs_out),
    ("kill_9_mid_run_is_aborted_on_restart", kill_9_mid_run_is_aborted_on_restart),
    ("run_stopped_by_sigterm_is_aborted", run_stopped_by_sigterm_is_aborted),
    ("invalid_files_reported_valid_ones_run", invalid_files_reported_valid_ones_run),
    ("health_and_metrics", health_and_metrics),
    ("tokens_never_stored", tokens_never_stored),
];

#[test]
fn serve_scenarios() {
    let only = std::env::var("STEPWISE_SERVE_SCENARIOS").ok();
    let selected: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|(name, _)| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == *name)))
        .collect();
    assert!(!selected.is_empty(), "STEPWISE_SERVE_SCENARIOS={only:?} names no scenario");
    // At most this many at once: each service spends its first second or so of CPU compiling,
    // and the machine has 2 cores.
    let slots = Arc::new((Mutex::new(PARALLEL), std::sync::Condvar::new()));
    let mut running = Vec::new();
    for (name, scenario) in selected {
        let scenario = *scenario;
        let slots = slots.clone();
        let handle = std::thread::Builder::new()
            .name((*name).to_owned())
            .spawn(move || {
                let (free, changed) = &*slots;
                {
                    let mut free = changed.wait_while(free.lock().unwrap(), |n| *n == 0).unwrap();
                    *free -= 1;
                }
                let _release = Release(&slots);
                scenario();
            })
            .expect("thread");
        running.push((*name, handle));
    }
    let total = running.len();
    let mut failed = Vec::new();
    for (name, handle) in running {
        if let Err(panic) = handle.join() {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("--- {name}\n{message}"));
        }
    }
    assert!(failed.is_empty(), "{} of {total} serve scenarios failed:\n{}", failed.len(), failed.join("\n"));
}

/// An every-second schedule: at least two runs, each on a whole second, started at or after its
/// fire instant, each fire once and in order. (How late runs start is measured by the
/// `fire_lag` benchmark, not asserted here.)
fn fires_on_time() {
    let dir = Dir::new();
    dir.write("procs/tick.yaml", fast("tick", &every_second("")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    serve.until("a first run", || history(&dir, &[]).into_iter().find(|r| r.status == "COMPLETE"));
    sleep(Duration::from_secs(4));
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let runs = oldest_first(history(&dir, &["--process", "tick"]));
    assert!(runs.len() >= 2, "expected at least 2 runs in about 4 s: {runs:#?}");
    for run in &runs {
        assert_eq!((run.trigger.as_str(), run.status.as_str()), ("schedule", "COMPLETE"), "{run:#?}");
        let at = run.scheduled_for.unwrap_or_else(|| panic!("no scheduled_for: {run:#?}"));
        assert_eq!(at.nanosecond(), 0, "fires are on whole seconds: {run:#?}");
        assert!(run.started_at >= at, "started before its fire instant: {run:#?}");
    }
    let fires: Vec<_> = runs.iter().map(|r| r.scheduled_for).collect();
    assert!(fires.windows(2).all(|w| w[0] < w[1]), "each fire runs once, in order: {fires:?}");
}

/// `overlap: skip`: fires while the slow run is going are recorded `DISCARDED`, and runs never
/// overlap.
fn overlap_skip_records_discarded_runs() {
    let sim = Sim::start(SLOW_MS);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), &every_second("    overlap: skip\n")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    serve.until("a complete run and two discarded ones", || {
        let runs = history(&dir, &[]);
        (count(&runs, "COMPLETE") >= 1 && count(&runs, "DISCARDED") >= 2).then_some(())
    });
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let runs = history(&dir, &[]);
    let (done, discarded) = split_discarded(&runs);
    assert_sequential(&done);
    assert!(done.iter().all(|r| r.status == "COMPLETE"), "{done:#?}");
    assert!(discarded.len() >= 2, "{runs:#?}");
    for d in &discarded {
        assert_eq!(d.trigger, "schedule", "{d:#?}");
        assert!(d.scheduled_for.is_some(), "{d:#?}");
        assert_eq!(d.ended_at, Some(d.started_at), "a discarded run never runs: {d:#?}");
        let slack = chrono::Duration::milliseconds(500);
        assert!(
            done.iter().any(|r| r.started_at - slack <= d.started_at && d.started_at <= r.ended_at.unwrap() + slack),
            "discarded while no run was going: {d:#?}\nruns: {done:#?}"
        );
    }
}

/// `overlap: queue`: a fire while the slow run is going waits and starts when it ends; at most
/// one waits (later fires are discarded); runs never overlap.
fn overlap_queue_keeps_one_waiting_run() {
    let sim = Sim::start(SLOW_MS);
    let dir = Dir::new();
    dir.write("procs/queued.yaml", slow("queued", &sim.url(), &every_second("    overlap: queue\n")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    serve.until("two complete runs and a discarded one", || {
        let runs = history(&dir, &[]);
        (count(&runs, "COMPLETE") >= 2 && count(&runs, "DISCARDED") >= 1).then_some(())
    });
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let runs = history(&dir, &[]);
    let (done, discarded) = split_discarded(&runs);
    assert!(!discarded.is_empty(), "fires while one run waits are discarded: {runs:#?}");
    assert_sequential(&done);
    assert!(done.iter().all(|r| r.status == "COMPLETE"), "{done:#?}");
    // A queued run starts late (it waited), right after the run before it ended.
    let queued: Vec<_> = done
        .windows(2)
        .filter(|w| w[1].started_at - w[1].scheduled_for.unwrap() >= chrono::Duration::seconds(1))
        .collect();
    assert!(!queued.is_empty(), "no run waited for the one before it: {done:#?}");
    for w in &queued {
        let gap = w[1].started_at - w[0].ended_at.unwrap();
        assert!(gap < chrono::Duration::seconds(1), "a queued run started {gap} after the previous one ended: {w:#?}");
    }
    // At most one run waits at any time (half a second of slack for starting).
    let slack = chrono::Duration::milliseconds(500);
    for t in done.iter().filter_map(|r| r.scheduled_for) {
        let waiting = done.iter().filter(|q| q.scheduled_for.unwrap() <= t && q.started_at > t + slack).count();
        assert!(waiting <= 1, "{waiting} runs waited at {t}: {done:#?}");
    }
}

/// `overlap: allow`: slow runs overlap in time, nothing is discarded.
fn overlap_allow_runs_concurrently() {
    let sim = Sim::start(SLOW_MS);
    let dir = Dir::new();
    dir.write("procs/parallel.yaml", slow("parallel", &sim.url(), &every_second("    overlap: allow\n")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    serve.until("two runs going at once", || {
        (count(&history(&dir, &["--status", "INPROCESS"]), "INPROCESS") >= 2).then_some(())
    });
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let runs = oldest_first(history(&dir, &[]));
    assert_eq!(count(&runs, "DISCARDED"), 0, "{runs:#?}");
    assert!(runs.iter().all(|r| r.status == "COMPLETE"), "the grace period lets them finish: {runs:#?}");
    let overlapping = runs.windows(2).filter(|w| w[1].started_at < w[0].ended_at.unwrap()).count();
    assert!(overlapping >= 1, "no two runs overlapped: {runs:#?}");
}

/// Catch-up after a restart. A schedule fires every second of a 6-second window; a first service
/// loads it before the window (recording when its schedule was last handled) and stops; a second
/// one starts after the window. Per `catch_up` the missed fires run once (`last`: the latest),
/// each, oldest first (`all`), or not at all (`none`).
fn catch_up_after_restart(mode: &str) {
    // The window must start after the first service has loaded the file, which takes a moment
    // (much longer on a loaded machine): if it did not, try again with a longer lead.
    let mut lead = 6;
    while !catch_up_attempt(mode, lead) {
        assert!(lead < 60, "the first service never loaded its file {lead} s ahead of the window");
        lead *= 2;
    }
}

/// One try of [`catch_up_after_restart`] with the window starting `lead` seconds from now;
/// `false` if the first service loaded the file too late.
fn catch_up_attempt(mode: &str, lead: i64) -> bool {
    let dir = Dir::new();
    let from = whole_second(Utc::now()) + chrono::Duration::seconds(lead);
    let to = from + chrono::Duration::seconds(5);
    let schedule = schedules(&window_cron(from, to), &format!("    catch_up: {mode}\n"));
    dir.write("procs/window.yaml", fast("window", &schedule));
    let mut first = Serve::start(&dir, "info", 30, &[]);
    first.until_log("Process loaded.");
    let loaded = Utc::now();
    assert_eq!(first.terminate(), 0, "{}", first.log());
    if loaded + chrono::Duration::seconds(1) >= from || !history(&dir, &[]).is_empty() {
        return false;
    }
    while Utc::now() < to + chrono::Duration::milliseconds(1500) {
        sleep(POLL);
    }
    let expected: Vec<DateTime<Utc>> = match mode {
        "none" => Vec::new(),
        "last" => vec![to],
        _ => (0..=5).map(|s| from + chrono::Duration::seconds(s)).collect(),
    };
    let mut second = Serve::start(&dir, "info", 30, &[]);
    second.until_log("Process loaded.");
    second.until("the caught-up runs to end", || {
        let runs = history(&dir, &[]);
        (runs.len() >= expected.len() && runs.iter().all(|r| r.status != "INPROCESS")).then_some(())
    });
    sleep(Duration::from_secs(1));
    assert_eq!(second.terminate(), 0, "{}", second.log());
    let mut runs = history(&dir, &[]);
    runs.sort_by_key(|r| r.scheduled_for);
    let fired: Vec<_> = runs.iter().filter_map(|r| r.scheduled_for).collect();
    assert_eq!(fired, expected, "catch_up {mode}: fires missed from {from} to {to}\n{}", second.log());
    for run in &runs {
        assert_eq!((run.trigger.as_str(), run.status.as_str()), ("schedule", "COMPLETE"), "{run:#?}");
        assert!(run.started_at > to, "{run:#?}");
    }
    // Caught-up runs go one after another, oldest first.
    assert!(runs.windows(2).all(|w| w[0].ended_at.unwrap() <= w[1].started_at), "{runs:#?}");
    true
}

/// Reload: a new file starts firing, a changed schedule applies, an invalid file is reported and
/// its previous version keeps running, a removed file stops.
fn reload_on_file_change() {
    let dir = Dir::new();
    let yearly = schedules("0 0 0 1 1 *", "");
    dir.write("procs/a.yaml", fast("a", &every_second("")));
    dir.write("procs/c.yaml", fast("c", &yearly));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    let runs_of = |name: &str| history(&dir, &["--process", name]);
    serve.until("a run of a", || runs_of("a").into_iter().next());

    // A new file.
    dir.write("procs/b.yaml", fast("b", &every_second("")));
    serve.until("a run of the new file b", || runs_of("b").into_iter().next());

    // A changed schedule: c goes from yearly to every second.
    assert!(runs_of("c").is_empty(), "c is yearly");
    dir.write("procs/c.yaml", fast("c", &every_second("")));
    serve.until("a run of c on its new schedule", || runs_of("c").into_iter().next());

    // b becomes invalid: reported, the service keeps running, b's previous version keeps firing.
    dir.write("procs/b.yaml", "name: b\nstart:\n  type: no_data\n  next: nowhere\n");
    serve.until_log("Invalid process file; the previously loaded version keeps running.");
    let reported = Utc::now();
    let log = serve.log();
    assert!(log.contains("b.yaml") && log.contains("nowhere"), "the error names the file and the problem:\n{log}");
    serve.until("a run of b's previous version", || runs_of("b").into_iter().find(|r| r.started_at > reported));
    assert!(serve.is_running(), "the service keeps running:\n{}", serve.log());

    // a is removed: it stops.
    std::fs::remove_file(dir.join("procs/a.yaml")).unwrap();
    serve.until_log("Process file removed; its schedules stopped.");
    sleep(Duration::from_millis(500));
    let before = runs_of("a").len();
    sleep(Duration::from_millis(2500));
    assert_eq!(runs_of("a").len(), before, "a still fires after its file was removed");
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
}

/// SIGTERM while a slow run is going: it finishes `COMPLETE`, nothing starts after the signal,
/// the exit code is 0.
fn sigterm_lets_the_running_run_finish() {
    let sim = Sim::start(SLOW_MS);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), &every_second("")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    let run = serve.until("a run in progress", || history(&dir, &["--status", "INPROCESS"]).into_iter().next());
    let signalled = Utc::now();
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let runs = history(&dir, &[]);
    let ended = runs.iter().find(|r| r.run_id == run.run_id).expect("the run");
    assert_eq!(ended.status, "COMPLETE", "{ended:#?}\n{}", serve.log());
    assert!(ended.ended_at.unwrap() > signalled, "{ended:#?}");
    let slack = chrono::Duration::milliseconds(500);
    let late: Vec<_> = runs.iter().filter(|r| r.started_at > signalled + slack).collect();
    assert!(late.is_empty(), "runs started after SIGTERM at {signalled}: {late:#?}");
    assert!(serve.log().contains("Shutdown requested"), "{}", serve.log());
}

/// SIGTERM with `--grace-secs 1` while a 3 s run is going: the service stops after the grace
/// period and the cut-off run is `ABORTED`.
fn sigterm_grace_period_runs_out() {
    let sim = Sim::start(SLOW_MS * 3);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), &every_second("")));
    let mut serve = Serve::start(&dir, "info", 1, &[]);
    let run = serve.until("a run in progress", || history(&dir, &["--status", "INPROCESS"]).into_iter().next());
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    // Had the service waited for the run instead of giving up after the grace period, the run
    // would have ended COMPLETE.
    let detail = history_run(&dir, &run.run_id);
    assert_eq!(detail.status, "ABORTED", "{detail:#?}\n{}", serve.log());
    assert!(detail.error.as_deref().unwrap_or("").contains("abandoned"), "{detail:#?}");
}

/// `kill -9` while a slow run is `INPROCESS`; a restarted service marks it `ABORTED`.
fn kill_9_mid_run_is_aborted_on_restart() {
    let sim = Sim::start(SLOW_MS);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), &every_second("")));
    let mut serve = Serve::start(&dir, "info", 30, &[]);
    let run = serve.until("a run in progress", || history(&dir, &["--status", "INPROCESS"]).into_iter().next());
    serve.kill_9();
    assert_eq!(history_run(&dir, &run.run_id).status, "INPROCESS", "nothing closed the run of the killed service");
    let mut again = Serve::start(&dir, "info", 0, &[]);
    let aborted = again.until("the killed run to be ABORTED", || {
        Some(history_run(&dir, &run.run_id)).filter(|r| r.status == "ABORTED")
    });
    assert!(aborted.error.as_deref().unwrap_or("").contains("abandoned"), "{aborted:#?}");
    assert!(aborted.ended_at.is_none(), "the end of an abandoned run is unknown: {aborted:#?}");
    let text = stepwise(dir.path(), &["history", &run.run_id, "--state", "state.db"]);
    assert!(text.stdout.contains("status     ABORTED"), "{text:?}");
    assert_eq!(again.terminate(), 0, "{}", again.log());
}

/// SIGTERM to `stepwise run` while its one call (30 s at the simulator) is going: the call is
/// dropped, the run ends `ABORTED` (so it did not wait for the call), the summary says so, the
/// exit code is 1, and the history and the test-mode `run.json` record it; a later run finds
/// nothing left `INPROCESS`.
fn run_stopped_by_sigterm_is_aborted() {
    let sim = Sim::start(SLOW_MS * 10);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), ""));
    let child = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir.path())
        .args(["run", "procs/slow.yaml", "--json", "--state", "state.db", "--test", "--dump", "dump"])
        .env_remove("STEPWISE_LOG")
        .env_remove("RUST_LOG")
        .env("KB4_TOKEN", TOKEN)
        .env("STEPWISE_KNOWBE4_RATE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting stepwise run");
    let deadline = Instant::now() + PATIENCE;
    let run = loop {
        if let Some(run) = history(&dir, &["--status", "INPROCESS"]).into_iter().next() {
            break run;
        }
        assert!(Instant::now() < deadline, "the run never showed as INPROCESS");
        sleep(POLL);
    };
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let out = child.wait_with_output().expect("waiting for stepwise run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let summary: Value = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .next()
        .expect("a summary")
        .expect("the summary is JSON");
    assert_eq!(summary["status"], "ABORTED", "{summary:#}");
    assert_eq!(summary["error"]["step"], "start", "{summary:#}");
    assert_eq!(summary["error"]["message"], "aborted: interrupted by SIGTERM", "{summary:#}");
    let recorded = history_run(&dir, &run.run_id);
    assert_eq!(recorded.status, "ABORTED", "{recorded:#?}");
    assert_eq!(recorded.error.as_deref(), Some("step 'start': aborted: interrupted by SIGTERM"), "{recorded:#?}");
    let run_json: Value = serde_json::from_str(&dir.read("dump/run.json")).expect("run.json");
    assert_eq!(run_json["status"], "ABORTED", "{run_json:#}");
    assert!(history(&dir, &["--status", "INPROCESS"]).is_empty());
}

/// Invalid process files in the served directory are reported on stderr (default log level),
/// naming the file and each problem; the valid file runs.
fn invalid_files_reported_valid_ones_run() {
    let dir = Dir::new();
    dir.write("procs/good.yaml", fast("good", &every_second("")));
    dir.write(
        "procs/bad.yaml",
        "name: bad\nschedules:\n  - cron: \"* * * * * * *\"\nstart:\n  type: no_data\n  next: nowhere\n",
    );
    dir.write("procs/same.yaml", fast("good", &every_second("")));
    dir.write("procs/notes.txt", "not a process file");
    let mut serve = Serve::start(&dir, "warn", 30, &[]);
    serve.until("a run of the valid file", || history(&dir, &["--process", "good"]).into_iter().next());
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let log = serve.log();
    for needle in [
        "Invalid process file; it does not run.",
        "procs/bad.yaml:3:",
        "7 fields",
        "procs/bad.yaml:6:",
        "unknown step 'nowhere'",
        "Duplicate process name; this file does not run.",
        "same.yaml",
    ] {
        assert!(log.contains(needle), "stderr lacks {needle:?}:\n{log}");
    }
    assert!(!log.contains("notes.txt"), "only *.yaml and *.yml files are process files:\n{log}");
    let runs = history(&dir, &[]);
    assert!(runs.iter().all(|r| r.process == "good" && r.status == "COMPLETE"), "{runs:#?}");
}

/// `--listen 127.0.0.1:PORT`: `/health` answers 200 with JSON, `/metrics` counts runs.
fn health_and_metrics() {
    let dir = Dir::new();
    dir.write("procs/m.yaml", fast("m", &every_second("")));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let made = stepwise(dir.path(), &["token", "create", "scraper", "--role", "viewer", "--state", "state.db"]);
    assert_eq!(made.code, 0, "{made:?}");
    let auth = format!("Bearer {}", made.stdout.trim());
    let metrics_get = || http_with(port, "GET", "/metrics", &[("Host", "test"), ("Authorization", &auth)], "");
    let mut serve = Serve::start(&dir, "info", 30, &["--listen", &addr]);
    let (status, body) = serve.until("/health", || http_get(port, "/health"));
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/health is not JSON ({e}): {body}"));
    assert_eq!(health["status"], "ok", "{body}");
    serve.until("a run of m", || history(&dir, &["--process", "m"]).into_iter().next());
    let metrics = serve.until("stepwise_runs_total for m", || {
        metrics_get().map(|(_, body)| body).filter(|b| b.contains("stepwise_runs_total{process=\"m\""))
    });
    let line = metrics
        .lines()
        .find(|l| l.starts_with("stepwise_runs_total{process=\"m\",status=\"COMPLETE\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    assert!(value >= 1.0, "{line}");
    for needle in [
        "# TYPE stepwise_runs_total counter",
        "stepwise_schedule_lag_seconds_count",
        "stepwise_run_duration_seconds_bucket{process=\"m\"",
        "stepwise_processes_loaded 1",
        "stepwise_schedules_active 1",
        "stepwise_runs_in_progress",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle:?}:\n{metrics}");
    }
    let health: Value = serde_json::from_str(&http_get(port, "/health").expect("/health").1).unwrap();
    assert_eq!((health["processes"].as_u64(), health["schedules"].as_u64()), (Some(1), Some(1)), "{health}");
    // /metrics needs a token (the console's rules); /health does not.
    assert_eq!(http_get(port, "/metrics").map(|(s, _)| s), Some(401));
    assert_eq!(http_get(port, "/nope").map(|(s, _)| s), Some(401));
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
}

/// A run that fails with an auth error (scheduled, and manual), and one that succeeds: the
/// history database files, `stepwise history --json` and the service's log hold no token.
fn tokens_never_stored() {
    const SECRET: &str = "tok-SECRET-2718281828";
    let sim = Sim::start(0);
    let dir = Dir::new();
    dir.write("procs/auth.yaml", slow("auth", &sim.url(), &every_second("")));
    let mut serve = Serve::start_env(&dir, "debug", 30, &[], &[("KB4_TOKEN", SECRET)]);
    serve.until("a failed run", || history(&dir, &["--status", "ERROR"]).into_iter().next());
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
    let failed = stepwise_env(
        dir.path(),
        &["run", "procs/auth.yaml", "--state", "state.db"],
        &[("KB4_TOKEN", SECRET), ("STEPWISE_KNOWBE4_RATE", "off")],
    );
    assert_eq!(failed.code, 1, "{failed:?}");
    let ok = stepwise_env(
        dir.path(),
        &["run", "procs/auth.yaml", "--state", "state.db"],
        &[("KB4_TOKEN", TOKEN), ("STEPWISE_KNOWBE4_RATE", "off")],
    );
    assert_eq!(ok.code, 0, "{ok:?}");

    let errors = history(&dir, &["--status", "ERROR"]);
    assert!(errors.iter().any(|r| r.trigger == "schedule") && errors.iter().any(|r| r.trigger == "manual"));
    for run in &errors {
        let error = run.error.as_deref().unwrap_or("");
        assert!(error.contains("401"), "the error says what went wrong: {run:#?}");
    }
    let mut texts = vec![
        ("history --json", history_cmd(&dir, &[]).stdout),
        ("the service's log", serve.log()),
        ("stepwise run", format!("{}{}{}{}", failed.stdout, failed.stderr, ok.stdout, ok.stderr)),
    ];
    for run in &errors {
        texts.push(("history RUN_ID --json", history_cmd(&dir, &[&run.run_id]).stdout));
    }
    for (what, text) in &texts {
        for token in [SECRET, TOKEN] {
            assert!(!text.contains(token), "{what} contains the token {token}:\n{text}");
        }
    }
    let mut files = 0;
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let Ok(bytes) = std::fs::read(dir.join(name)) else { continue };
        files += 1;
        for token in [SECRET, TOKEN] {
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{name} contains the token {token}");
        }
    }
    assert!(files >= 1, "no history database was written");
}

// ---------------------------------------------------------------------------------------------
// Without a service.

/// The daylight-saving rule (process format section 5), through `stepwise schedule`: a local time
/// in a spring-forward gap fires once at the first instant after the gap; a local time in a
/// fall-back repeated hour fires once, at its first occurrence.
#[test]
fn schedule_follows_the_dst_rules_in_2026() {
    let dir = Dir::new();
    let cases: &[(&str, &str, &str, usize, &[&str])] = &[
        // Europe/London: 29 March 01:00 GMT -> 02:00 BST; 25 October 02:00 BST -> 01:00 GMT.
        (
            "30 1 * * *",
            "Europe/London",
            "2026-03-27T12:00:00Z",
            4,
            &[
                "2026-03-28T01:30:00+00:00",
                "2026-03-29T02:00:00+01:00",
                "2026-03-30T01:30:00+01:00",
                "2026-03-31T01:30:00+01:00",
            ],
        ),
        (
            "30 1 * * *",
            "Europe/London",
            "2026-10-24T12:00:00Z",
            3,
            &["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00", "2026-10-27T01:30:00+00:00"],
        ),
        (
            "*/15 * * * *",
            "Europe/London",
            "2026-03-29T00:15:00Z",
            4,
            &[
                "2026-03-29T00:30:00+00:00",
                "2026-03-29T00:45:00+00:00",
                "2026-03-29T02:00:00+01:00",
                "2026-03-29T02:15:00+01:00",
            ],
        ),
        (
            "*/15 * * * *",
            "Europe/London",
            "2026-10-24T23:30:00Z",
            7,
            &[
                "2026-10-25T00:45:00+01:00",
                "2026-10-25T01:00:00+01:00",
                "2026-10-25T01:15:00+01:00",
                "2026-10-25T01:30:00+01:00",
                "2026-10-25T01:45:00+01:00",
                "2026-10-25T02:00:00+00:00",
                "2026-10-25T02:15:00+00:00",
            ],
        ),
        // America/New_York: 8 March 02:00 EST -> 03:00 EDT; 1 November 02:00 EDT -> 01:00 EST.
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            2,
            &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            2,
            &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            "*/15 * * * *",
            "America/New_York",
            "2026-03-08T06:30:00Z",
            4,
            &[
                "2026-03-08T01:45:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:15:00-04:00",
                "2026-03-08T03:30:00-04:00",
            ],
        ),
        (
            "*/15 * * * *",
            "America/New_York",
            "2026-11-01T04:30:00Z",
            7,
            &[
                "2026-11-01T00:45:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:15:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:45:00-04:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:15:00-05:00",
            ],
        ),
        // Australia/Sydney: 5 April 03:00 AEDT -> 02:00 AEST; 4 October 02:00 AEST -> 03:00 AEDT.
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2026-04-03T12:00:00Z",
            3,
            &["2026-04-04T02:30:00+11:00", "2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"],
        ),
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2026-10-02T12:00:00Z",
            3,
            &["2026-10-03T02:30:00+10:00", "2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"],
        ),
        (
            "*/15 * * * *",
            "Australia/Sydney",
            "2026-10-03T15:30:00Z",
            3,
            &["2026-10-04T01:45:00+10:00", "2026-10-04T03:00:00+11:00", "2026-10-04T03:15:00+11:00"],
        ),
        (
            "*/15 * * * *",
            "Australia/Sydney",
            "2026-04-04T14:30:00Z",
            7,
            &[
                "2026-04-05T01:45:00+11:00",
                "2026-04-05T02:00:00+11:00",
                "2026-04-05T02:15:00+11:00",
                "2026-04-05T02:30:00+11:00",
                "2026-04-05T02:45:00+11:00",
                "2026-04-05T03:00:00+10:00",
                "2026-04-05T03:15:00+10:00",
            ],
        ),
        // Six fields, seconds first: Sundays at 02:00:00 local.
        (
            "0 0 2 * * 0",
            "Australia/Sydney",
            "2026-09-20T00:00:00Z",
            3,
            &["2026-09-27T02:00:00+10:00", "2026-10-04T03:00:00+11:00", "2026-10-11T02:00:00+11:00"],
        ),
    ];
    for (i, (cron, tz, from, next, expected)) in cases.iter().enumerate() {
        let file = format!("p{i}.yaml");
        dir.write(&file, fast("dst", &schedules(cron, &format!("    timezone: {tz}\n"))));
        let out = stepwise(dir.path(), &["schedule", &file, "--next", &next.to_string(), "--from", from]);
        assert_eq!(out.code, 0, "{cron} {tz}: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines, *expected, "cron '{cron}' in {tz} from {from}");
    }

    // Several schedules: N times of each, in order, and nothing but timestamps on stdout (which
    // schedule a block belongs to goes to stderr); the default time zone is UTC.
    dir.write(
        "two.yaml",
        fast(
            "two",
            "schedules:\n  - cron: \"0 6 * * 1-5\"\n    timezone: Europe/London\n  - cron: \"*/30 * * * * *\"\n",
        ),
    );
    let out = stepwise(dir.path(), &["schedule", "two.yaml", "--next", "2", "--from", "2026-03-27T12:00:00Z"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "2026-03-30T06:00:00+01:00\n2026-03-31T06:00:00+01:00\n2026-03-27T12:00:30+00:00\n2026-03-27T12:01:00+00:00\n"
    );
    assert!(out.stdout.lines().all(|l| DateTime::parse_from_rfc3339(l).is_ok()), "{out:?}");
    assert_eq!(
        out.stderr, "# schedule 1: 0 6 * * 1-5 (Europe/London)\n# schedule 2: */30 * * * * * (UTC)\n",
        "{out:?}"
    );

    // A disabled schedule has no fire times (stderr says why); one that can never fire is an error.
    dir.write("off.yaml", fast("off", &schedules("0 9 * * MON", "    enabled: false\n")));
    let out = stepwise(dir.path(), &["schedule", "off.yaml", "--next", "1", "--from", "2026-03-27T12:00:00Z"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(out.stderr.contains("# schedule 1: 0 9 * * MON (UTC) is disabled"), "{out:?}");
    dir.write("never.yaml", fast("never", &schedules("0 0 30 2 *", "")));
    let out = stepwise(dir.path(), &["schedule", "never.yaml", "--next", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    // `validate`'s checks (the same parser as the service) already catch it, with its location.
    assert!(out.stdout.is_empty() && out.stderr.contains("never.yaml:3:5: error: cron expression"), "{out:?}");
    assert!(out.stderr.contains("never fires"), "{out:?}");
}

/// `stepwise run` records a manual run, `--test` a test run (default state path too);
/// `stepwise history` lists, filters and shows them.
#[test]
fn run_records_history_that_history_filters() {
    let dir = Dir::new();
    dir.write("ok.yaml", fast("ok", ""));
    dir.write(
        "fail.yaml",
        "name: fail\nstart:\n  type: no_data\n  next: boom\nsteps:\n  boom:\n    type: exception\n    template: \"boom\"\n    stop_process: true\n",
    );
    let state = ["--state", "state.db"];
    let run = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&state);
        stepwise(dir.path(), &all)
    };
    assert_eq!(run(&["ok.yaml"]).code, 0);
    assert_eq!(run(&["ok.yaml", "--test", "--dump", "dump"]).code, 0);
    assert_eq!(run(&["fail.yaml"]).code, 1);
    assert_eq!(run(&["fail.yaml"]).code, 1);

    let all = history(&dir, &[]);
    assert_eq!(all.len(), 4, "{all:#?}");
    let ok: Vec<_> = oldest_first(history(&dir, &["--process", "ok"]));
    assert_eq!(
        ok.iter().map(|r| (r.trigger.as_str(), r.status.as_str())).collect::<Vec<_>>(),
        [("manual", "COMPLETE"), ("test", "COMPLETE")]
    );
    assert!(ok.iter().all(|r| r.scheduled_for.is_none() && r.ended_at.is_some()), "{ok:#?}");

    let errors = history(&dir, &["--status", "ERROR", "--process", "fail"]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|r| r.process == "fail" && r.status == "ERROR" && r.trigger == "manual"), "{errors:#?}");
    assert!(errors[0].error.as_deref().unwrap_or("").contains("boom"), "{errors:#?}");
    assert_eq!(history(&dir, &["--status", "error", "--process", "fail"]).len(), 2, "status is case-insensitive");
    assert!(history(&dir, &["--status", "ERROR", "--process", "ok"]).is_empty());
    let typo = history_cmd(&dir, &["--status", "COMPLETED"]);
    assert_eq!(typo.code, 2, "an unknown status is a usage error: {typo:?}");
    assert!(typo.stderr.contains("unknown run status 'COMPLETED'"), "{typo:?}");
    let newest = history_cmd(&dir, &["--limit", "1"]).json();
    assert_eq!(newest.as_array().map(Vec::len), Some(1), "{newest}");
    assert_eq!(newest[0]["run_id"], all[0].run_id.as_str(), "newest first");

    // One run with its steps.
    let detail = history_cmd(&dir, &[&ok[0].run_id]).json();
    assert_eq!(detail["run_id"], ok[0].run_id.as_str());
    let steps: Vec<&str> = detail["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["start", "done"]);
    let text = stepwise(dir.path(), &["history", "--state", "state.db", "--process", "fail"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("RUN ") && text.stdout.contains(" ERROR "), "{text:?}");
    let missing = stepwise(dir.path(), &["history", "no-such-run", "--state", "state.db"]);
    assert_eq!(missing.code, 1, "{missing:?}");

    // Without --state: .stepwise/state.db in the working directory.
    assert_eq!(stepwise(dir.path(), &["run", "ok.yaml"]).code, 0);
    assert!(dir.join(".stepwise/state.db").is_file());
    let default = stepwise(dir.path(), &["history", "--json"]);
    assert_eq!(default.json().as_array().map(Vec::len), Some(1), "{default:?}");
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A process that runs in a moment: one empty document to a stop step.
fn fast(name: &str, schedules: &str) -> String {
    format!("name: {name}\n{schedules}start:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n")
}

/// A process that lists KnowBe4 users from `url` (token from `KB4_TOKEN`): one call, as slow as
/// the simulator's latency.
fn slow(name: &str, url: &str, schedules: &str) -> String {
    format!(
        "name: {name}\nconnections:\n  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {url}\n{schedules}start:\n  type: connector\n  connection: kb4\n  object: user\n  action: list\n  next: done\nsteps:\n  done:\n    type: stop\n"
    )
}

/// A `schedules:` block with one schedule; `extra` holds more keys, indented four spaces.
fn schedules(cron: &str, extra: &str) -> String {
    format!("schedules:\n  - cron: \"{cron}\"\n{extra}")
}

fn every_second(extra: &str) -> String {
    schedules("* * * * * *", extra)
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// A six-field UTC cron expression that fires every second from `from` to `to` (a window under a
/// minute). The fields combine, so it also fires outside the window, but never within a minute
/// after `from` nor between `to` and the window's start minus a minute.
fn window_cron(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    assert!(to - from < chrono::Duration::seconds(50));
    let mut fields: [BTreeSet<u32>; 5] = Default::default();
    let mut t = from;
    while t <= to {
        for (set, value) in fields.iter_mut().zip([t.second(), t.minute(), t.hour(), t.day(), t.month()]) {
            set.insert(value);
        }
        t += chrono::Duration::seconds(1);
    }
    let list = |set: &BTreeSet<u32>| set.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    format!("{} *", fields.iter().map(list).collect::<Vec<_>>().join(" "))
}

/// One row of `stepwise history --json`.
#[derive(Debug, Clone)]
struct RunRow {
    run_id: String,
    process: String,
    trigger: String,
    status: String,
    scheduled_for: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

impl RunRow {
    fn from_json(v: &Value) -> RunRow {
        let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_owned();
        let time = |key: &str| {
            v[key].as_str().map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .unwrap_or_else(|e| panic!("{key} '{t}' is not RFC 3339: {e}"))
                    .with_timezone(&Utc)
            })
        };
        RunRow {
            run_id: text("run_id"),
            process: text("process"),
            trigger: text("trigger"),
            status: text("status"),
            scheduled_for: time("scheduled_for"),
            started_at: time("started_at").unwrap_or_else(|| panic!("no started_at in {v}")),
            ended_at: time("ended_at"),
            error: v["error"].as_str().map(str::to_owned),
        }
    }
}

/// `stepwise history --json --state state.db ARGS` in `dir`.
fn history_cmd(dir: &Dir, args: &[&str]) -> Run {
    let mut all = vec!["history", "--json", "--state", "state.db"];
    all.extend_from_slice(args);
    stepwise(dir.path(), &all)
}

/// Every run matching `args`, newest first; none while there is no database yet.
fn history(dir: &Dir, args: &[&str]) -> Vec<RunRow> {
    let mut all = vec!["--limit", "100000"];
    all.extend_from_slice(args);
    let out = history_cmd(dir, &all);
    if out.code == 1 && out.stderr.contains("no run history") {
        return Vec::new();
    }
    assert_eq!(out.code, 0, "{out:?}");
    out.json().as_array().unwrap_or_else(|| panic!("{out:?}")).iter().map(RunRow::from_json).collect()
}

/// `stepwise history RUN_ID --json`: the run.
fn history_run(dir: &Dir, run_id: &str) -> RunRow {
    let out = history_cmd(dir, &[run_id]);
    assert_eq!(out.code, 0, "{out:?}");
    RunRow::from_json(&out.json())
}

fn oldest_first(mut runs: Vec<RunRow>) -> Vec<RunRow> {
    runs.sort_by_key(|r| r.started_at);
    runs
}

fn count(runs: &[RunRow], status: &str) -> usize {
    runs.iter().filter(|r| r.status == status).count()
}

/// The runs that ran (oldest first) and the discarded ones.
fn split_discarded(runs: &[RunRow]) -> (Vec<RunRow>, Vec<RunRow>) {
    let (discarded, done): (Vec<RunRow>, Vec<RunRow>) = runs.iter().cloned().partition(|r| r.status == "DISCARDED");
    (oldest_first(done), discarded)
}

/// Each run (oldest first) started after the one before it ended.
fn assert_sequential(runs: &[RunRow]) {
    for w in runs.windows(2) {
        let ended = w[0].ended_at.unwrap_or_else(|| panic!("not ended: {:#?}", w[0]));
        assert!(w[1].started_at >= ended, "runs overlap: {w:#?}");
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A KnowBe4 simulator process (no rate limits, `latency_ms` per call); killed when dropped.
struct Sim;

impl Sim {
    fn start(latency_ms: u64) -> SimProcess {
        let latency = latency_ms.to_string();
        SimProcess::start(&["knowbe4-sim", "--port", "0", "--no-limits", "--latency-ms", &latency])
    }
}

/// A `stepwise serve procs --state state.db --reload-ms 200` process in a [`Dir`], its stderr
/// collected. Killed (by its own pid) if still running when dropped.
struct Serve {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Serve {
    /// Starts the service at log level `log` with `--grace-secs grace` and `extra` arguments;
    /// `KB4_TOKEN` is the simulator's token unless `env` says otherwise.
    fn start(dir: &Dir, log: &str, grace: u64, extra: &[&str]) -> Serve {
        Serve::start_env(dir, log, grace, extra, &[])
    }

    fn start_env(dir: &Dir, log: &str, grace: u64, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let grace = grace.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        cmd.current_dir(dir.path())
            .args(["--log", log, "serve", "procs", "--state", "state.db", "--reload-ms", "200", "--grace-secs", &grace])
            .args(extra)
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("STEPWISE_KNOWBE4_RATE", "off")
            .env("KB4_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting stepwise serve");
        let (log, reader) = crate::support::capture_stderr(&mut child);
        Serve { child, log, reader: Some(reader) }
    }

    /// What it wrote to stderr so far.
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `probe` gives a value; panics with the service's log after [`PATIENCE`].
    fn until<T>(&mut self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            if !self.is_running() {
                self.join_reader();
                panic!("stepwise serve exited while waiting for {what}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; stepwise serve's log:\n{}", self.log());
            sleep(POLL);
        }
    }

    /// Waits until the log contains `needle`.
    fn until_log(&mut self, needle: &str) {
        let log = self.log.clone();
        self.until(&format!("{needle:?} in the log"), || {
            log.lock().unwrap_or_else(|e| e.into_inner()).contains(needle).then_some(())
        });
    }

    /// Sends SIGTERM (with `kill`) and waits for the exit; returns the exit code.
    fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for stepwise serve") {
                self.join_reader();
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "stepwise serve did not stop after SIGTERM:\n{}", self.log());
            sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash; waits for the process to be gone.
    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("waiting for the killed service");
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
