//! Cluster mode (process format section 8) with real PostgreSQL: several `stepwise serve`
//! processes on one database, each test on a database of its own.
//!
//! PostgreSQL is `STEPWISE_TEST_POSTGRES` (default
//! `postgres://stepwise:stepwise@127.0.0.1:5432/postgres`; `scripts/test` starts Debian's
//! `postgresql` when nothing answers). When it is unreachable these tests fail with a message,
//! unless `STEPWISE_SKIP_POSTGRES=1`.
//!
//! The tests compare recorded instants, statuses and nodes, never durations.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::{Dir, SimProcess, stepwise_env};

#[path = "../../crates/store/tests/support/postgres.rs"]
mod pg;

const TOKEN: &str = "sandbox-token";
const PATIENCE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

/// A database of the test's own, or `None` (skipped) when PostgreSQL is unreachable and
/// `STEPWISE_SKIP_POSTGRES=1`.
fn database(what: &str) -> Option<pg::TestDb> {
    pg::TestDb::create_blocking(what)
}

/// A process that runs in a moment.
fn fast(name: &str, cron: &str, overlap: &str) -> String {
    format!(
        "name: {name}\nschedules:\n  - cron: \"{cron}\"\n    overlap: {overlap}\n    catch_up: none\nstart:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n"
    )
}

/// A process whose one call to the simulator at `url` is as slow as its latency.
fn slow(name: &str, url: &str, schedules: &str) -> String {
    format!(
        "name: {name}\nconnections:\n  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {url}\n{schedules}start:\n  type: connector\n  connection: kb4\n  object: user\n  action: list\n  next: done\nsteps:\n  done:\n    type: stop\n"
    )
}

fn every_second(overlap: &str) -> String {
    format!("schedules:\n  - cron: \"* * * * * *\"\n    overlap: {overlap}\n    catch_up: none\n")
}

/// A `stepwise serve procs --store URL --node NAME` process, its stderr collected; killed if
/// still running when dropped.
struct Node {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Node {
    fn start(dir: &Dir, url: &str, name: &str, extra: &[&str]) -> Node {
        Node::start_env(dir, url, name, extra, &[])
    }

    /// [`Node::start`] with environment changes: `(name, Some(value))` sets, `(name, None)`
    /// removes (after the defaults, which pace no KnowBe4 call).
    fn start_env(dir: &Dir, url: &str, name: &str, extra: &[&str], env: &[(&str, Option<&str>)]) -> Node {
        // Each node names its connections, so that a test can cut one node's.
        let sep = if url.contains('?') { '&' } else { '?' };
        let url =
            if url.starts_with("postgres") { format!("{url}{sep}application_name={name}") } else { url.to_owned() };
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        command
            .current_dir(dir.path())
            .args(["--log", "info", "serve", "procs", "--store", &url, "--node", name, "--reload-ms", "500"])
            .args(extra)
            .env_remove("STEPWISE_LOG")
            .env_remove("STEPWISE_STORE")
            .env("NO_COLOR", "1")
            .env("STEPWISE_KNOWBE4_RATE", "off")
            .env("KB4_TOKEN", TOKEN)
            .envs(env.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));
        for (key, _) in env.iter().filter(|(_, v)| v.is_none()) {
            command.env_remove(key);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting stepwise serve");
        let (log, reader) = crate::support::capture_stderr(&mut child);
        Node { name: name.to_owned(), child, log, reader: Some(reader) }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("running kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// SIGTERM; waits for the exit and returns its code.
    fn terminate(&mut self) -> i32 {
        self.signal("-TERM");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for stepwise serve") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "node {} did not stop after SIGTERM:\n{}", self.name, self.log());
            sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("waiting for the killed node");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn logs(nodes: &[&Node]) -> String {
    nodes.iter().map(|n| format!("--- node {}:\n{}", n.name, n.log())).collect::<Vec<_>>().join("\n")
}

/// Waits until `probe` gives a value; panics with the nodes' logs after [`PATIENCE`].
fn until<T>(what: &str, nodes: &[&Node], mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", logs(nodes));
        sleep(POLL);
    }
}

/// One row of `stepwise history --json`.
#[derive(Debug, Clone)]
struct Row {
    run_id: String,
    process: String,
    trigger: String,
    status: String,
    node: Option<String>,
    scheduled_for: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v[key].as_str().map(|t| DateTime::parse_from_rfc3339(t).expect("RFC 3339").with_timezone(&Utc))
}

impl Row {
    fn from_json(v: &Value) -> Row {
        let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_owned();
        for key in [
            "run_id",
            "process",
            "trigger",
            "scheduled_for",
            "node",
            "started_at",
            "ended_at",
            "status",
            "documents_in",
            "documents_out",
            "documents_error",
            "error",
        ] {
            assert!(v.get(key).is_some(), "history --json has no '{key}': {v}");
        }
        Row {
            run_id: text("run_id"),
            process: text("process"),
            trigger: text("trigger"),
            status: text("status"),
            node: v["node"].as_str().map(str::to_owned),
            scheduled_for: time(v, "scheduled_for"),
            started_at: time(v, "started_at").expect("started_at"),
            ended_at: time(v, "ended_at"),
            error: v["error"].as_str().map(str::to_owned),
        }
    }
}

fn stepwise_in(dir: &Dir, args: &[&str]) -> crate::support::Run {
    stepwise_env(dir.path(), args, &[("STEPWISE_STORE", "")])
}

/// Every run in the store, newest first.
fn history(dir: &Dir, url: &str) -> Vec<Row> {
    let out = stepwise_in(dir, &["history", "--json", "--limit", "1000000", "--store", url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json().as_array().expect("an array").iter().map(Row::from_json).collect()
}

fn run_of(dir: &Dir, url: &str, run_id: &str) -> Row {
    let out = stepwise_in(dir, &["history", run_id, "--json", "--store", url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    Row::from_json(&out.json())
}

/// `stepwise trigger ARGS --store URL`: the run id it printed.
fn trigger(dir: &Dir, url: &str, args: &[&str]) -> String {
    let mut all = vec!["trigger"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", url]);
    let out = stepwise_in(dir, &all);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().to_owned()
}

fn sim(latency_ms: u64) -> SimProcess {
    let latency = latency_ms.to_string();
    SimProcess::start(&["knowbe4-sim", "--port", "0", "--no-limits", "--latency-ms", &latency])
}

/// For each process, its scheduled instants within `[from, to]`, with how many runs each has.
fn instants(rows: &[Row], from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeMap<String, BTreeMap<i64, usize>> {
    let mut out: BTreeMap<String, BTreeMap<i64, usize>> = BTreeMap::new();
    for row in rows {
        if let Some(at) = row.scheduled_for.filter(|at| *at >= from && *at <= to) {
            *out.entry(row.process.clone()).or_default().entry(at.timestamp()).or_default() += 1;
        }
    }
    out
}

/// Waits until each of `processes` processes has a run scheduled at or after `to`: the nodes
/// fired every instant up to `to` (when they lag, the test waits; it never times them).
fn until_recorded(dir: &Dir, url: &str, nodes: &[&Node], processes: usize, to: DateTime<Utc>) {
    until("fires up to the end of the window", nodes, || {
        let rows = history(dir, url);
        let done: BTreeSet<&str> =
            rows.iter().filter(|r| r.scheduled_for.is_some_and(|at| at >= to)).map(|r| r.process.as_str()).collect();
        (done.len() == processes).then_some(())
    });
}

/// Waits until each of `processes` processes has a run recorded: the nodes loaded them and
/// fire. Fires before a node first loads a process are not due (nothing to catch up).
fn until_loaded(dir: &Dir, url: &str, nodes: &[&Node], processes: usize) -> DateTime<Utc> {
    until("every process to run once", nodes, || {
        let rows = history(dir, url);
        let seen: BTreeSet<&str> = rows.iter().map(|r| r.process.as_str()).collect();
        (seen.len() == processes).then_some(())
    });
    Utc::now() + chrono::Duration::seconds(2)
}

/// Three nodes cold-start at once on an empty database with 50 every-second schedules: each
/// (process, instant) is recorded exactly once, with no gap, and the runs spread over the nodes.
#[test]
fn three_nodes_cold_start_and_record_each_fire_once() {
    let Some(db) = database("fires") else { return };
    let dir = Dir::new();
    for i in 0..50 {
        dir.write(&format!("procs/p{i:02}.yaml"), fast(&format!("p{i:02}"), "* * * * * *", "skip"));
    }
    let mut nodes: Vec<Node> =
        ["a", "b", "c"].iter().map(|n| Node::start(&dir, &db.url, n, &["--workers", "8"])).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let from = until_loaded(&dir, &db.url, &refs, 50);
    let to = from + chrono::Duration::seconds(40);
    until_recorded(&dir, &db.url, &refs, 50, to);
    for node in &mut nodes {
        assert_eq!(node.terminate(), 0, "{}", node.log());
    }
    let rows = history(&dir, &db.url);
    let by_process = instants(&rows, from, to);
    assert_eq!(by_process.len(), 50, "every process ran");
    let expected: BTreeSet<i64> = (from.timestamp() + 1..=to.timestamp()).collect();
    for (process, seen) in &by_process {
        let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(duplicates.is_empty(), "{process}: instants recorded twice: {duplicates:?}");
        let missing: Vec<_> = expected.iter().filter(|s| !seen.contains_key(s)).collect();
        assert!(missing.is_empty(), "{process}: gaps at {missing:?}\n{}", logs(&nodes.iter().collect::<Vec<_>>()));
    }
    // Every fire ran (a run takes a moment, so skip never had to discard).
    let window: Vec<&Row> = rows.iter().filter(|r| r.scheduled_for.is_some_and(|at| at >= from && at <= to)).collect();
    let statuses: BTreeSet<&str> = window.iter().map(|r| r.status.as_str()).collect();
    assert!(statuses.iter().all(|s| ["COMPLETE", "DISCARDED"].contains(s)), "{statuses:?}");
    let by_node: BTreeMap<&str, usize> = window.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.node.as_deref().unwrap_or("-")).or_default() += 1;
        m
    });
    assert!(by_node.len() >= 2, "runs spread over the nodes: {by_node:?}");
    assert!(window.iter().all(|r| r.trigger == "schedule"));
}

/// `kill -9` of the node running a run: another node records it ABORTED (node lost) within
/// the lease plus 10 s of the kill.
#[test]
fn a_killed_nodes_run_is_aborted_as_node_lost() {
    let Some(db) = database("kill") else { return };
    let sim = sim(60_000);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), ""));
    let mut a = Node::start(&dir, &db.url, "a", &["--lease-secs", "2"]);
    until("node a started", &[&a], || a.log().contains("Service started").then_some(()));
    let run_id = trigger(&dir, &db.url, &["slow"]);
    until("the run on node a", &[&a], || {
        let row = run_of(&dir, &db.url, &run_id);
        (row.status == "INPROCESS" && row.node.as_deref() == Some("a")).then_some(())
    });
    let b = Node::start(&dir, &db.url, "b", &["--lease-secs", "2"]);
    until("node b started", &[&a, &b], || b.log().contains("Service started").then_some(()));
    a.kill_9();
    let killed = Utc::now();
    let row =
        until("the run ABORTED", &[&a, &b], || Some(run_of(&dir, &db.url, &run_id)).filter(|r| r.status == "ABORTED"));
    assert!(row.error.as_deref().unwrap_or("").contains("node lost"), "{row:#?}");
    assert_eq!(row.node.as_deref(), Some("a"));
    let ended = row.ended_at.expect("ended_at");
    assert!(ended <= killed + chrono::Duration::seconds(2 + 10), "{row:#?} (killed at {killed})");
    assert!(b.log().contains("node lost"), "{}", b.log());
}

/// A node paused (SIGSTOP) past its lease: its run is recorded ABORTED by another node; once it
/// resumes (SIGCONT) its late result is discarded, so the run keeps one result.
#[test]
fn a_paused_nodes_late_result_is_discarded() {
    let Some(db) = database("pause") else { return };
    let sim = sim(6_000);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), ""));
    let mut a = Node::start(&dir, &db.url, "a", &["--lease-secs", "2"]);
    until("node a started", &[&a], || a.log().contains("Service started").then_some(()));
    let run_id = trigger(&dir, &db.url, &["slow"]);
    until("the run on node a", &[&a], || {
        let row = run_of(&dir, &db.url, &run_id);
        (row.status == "INPROCESS" && row.node.as_deref() == Some("a")).then_some(())
    });
    let b = Node::start(&dir, &db.url, "b", &["--lease-secs", "2"]);
    a.signal("-STOP");
    let row =
        until("the run ABORTED", &[&a, &b], || Some(run_of(&dir, &db.url, &run_id)).filter(|r| r.status == "ABORTED"));
    a.signal("-CONT");
    until("node a to discard its late result", &[&a, &b], || a.log().contains("Late result discarded").then_some(()));
    let after = run_of(&dir, &db.url, &run_id);
    assert_eq!((after.status.as_str(), after.ended_at, after.error.clone()), ("ABORTED", row.ended_at, row.error));
    assert_eq!(a.terminate(), 0, "{}", a.log());
}

/// Every connection of the test database is cut (`pg_terminate_backend`) again and again while
/// two nodes fire ten every-second schedules: nothing is lost or recorded twice.
#[test]
fn cut_connections_lose_and_duplicate_nothing() {
    let Some(db) = database("terminate") else { return };
    let dir = Dir::new();
    for i in 0..10 {
        dir.write(&format!("procs/p{i}.yaml"), fast(&format!("p{i}"), "* * * * * *", "allow"));
    }
    let mut nodes: Vec<Node> = ["a", "b"].iter().map(|n| Node::start(&dir, &db.url, n, &[])).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let from = until_loaded(&dir, &db.url, &refs, 10);
    let to = from + chrono::Duration::seconds(15);
    let mut cuts = 0;
    while Utc::now() < to {
        let cut = db.query_blocking(&format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
             WHERE datname = '{}' AND application_name = 'a' AND pid <> pg_backend_pid()",
            db.name
        ));
        cuts += cut.len();
        sleep(Duration::from_millis(700));
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    until_recorded(&dir, &db.url, &refs, 10, to);
    for node in &mut nodes {
        assert_eq!(node.terminate(), 0, "{}", node.log());
    }
    assert!(cuts > 0, "connections were cut");
    let rows = history(&dir, &db.url);
    let expected: BTreeSet<i64> = (from.timestamp() + 1..=to.timestamp()).collect();
    let by_process = instants(&rows, from, to);
    assert_eq!(by_process.len(), 10);
    for (process, seen) in &by_process {
        assert!(seen.values().all(|n| *n == 1), "{process}: recorded twice: {seen:?}");
        let missing: Vec<_> = expected.iter().filter(|s| !seen.contains_key(s)).collect();
        assert!(missing.is_empty(), "{process}: gaps at {missing:?}\n{}", logs(&nodes.iter().collect::<Vec<_>>()));
    }
    let open: Vec<&Row> = rows.iter().filter(|r| r.status == "INPROCESS" || r.status == "QUEUED").collect();
    assert!(open.is_empty(), "runs left open: {open:#?}");
}

/// `overlap: skip` and `overlap: queue` hold across nodes: runs of a process never overlap,
/// wherever they run, and each instant is recorded once (as a run or DISCARDED).
#[test]
fn skip_and_queue_hold_across_nodes() {
    let Some(db) = database("overlap") else { return };
    let sim = sim(2_500);
    let dir = Dir::new();
    dir.write("procs/skip.yaml", slow("skip", &sim.url(), &every_second("skip")));
    dir.write("procs/queue.yaml", slow("queue", &sim.url(), &every_second("queue")));
    let mut nodes: Vec<Node> = ["a", "b", "c"].iter().map(|n| Node::start(&dir, &db.url, n, &[])).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let from = until_loaded(&dir, &db.url, &refs, 2);
    let to = from + chrono::Duration::seconds(15);
    until_recorded(&dir, &db.url, &refs, 2, to);
    for node in &mut nodes {
        assert_eq!(node.terminate(), 0, "{}", node.log());
    }
    let rows = history(&dir, &db.url);
    for process in ["skip", "queue"] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.process == process).collect();
        let seen = &instants(&rows, from, to)[process];
        assert!(seen.values().all(|n| *n == 1), "{process}: recorded twice: {seen:?}");
        let mut ran: Vec<&Row> = mine.iter().copied().filter(|r| r.status == "COMPLETE").collect();
        ran.sort_by_key(|r| r.started_at);
        assert!(ran.len() >= 3, "{process}: {ran:#?}");
        for w in ran.windows(2) {
            assert!(w[1].started_at >= w[0].ended_at.expect("ended"), "{process}: runs overlap: {w:#?}");
        }
        let discarded = mine.iter().filter(|r| r.status == "DISCARDED").count();
        assert!(discarded > 0, "{process}: some fires were discarded");
        assert!(
            mine.iter().filter(|r| r.status == "DISCARDED").all(|r| r
                .error
                .as_deref()
                .unwrap_or("")
                .contains("overlap"))
        );
    }
}

/// `stepwise trigger` queues a manual run that a node serving the process takes, with `--set`
/// overrides; `--wait` prints the summary and exits as `run`. `history --json` names the node
/// and the trigger.
#[test]
fn trigger_queues_a_manual_run_any_node_takes() {
    let Some(db) = database("trigger") else { return };
    let dir = Dir::new();
    dir.write("procs/fast.yaml", fast("fast", "0 0 3 1 1 *", "skip"));
    let mut a = Node::start(&dir, &db.url, "a", &[]);
    until("node a started", &[&a], || a.log().contains("Service started").then_some(()));
    let out = stepwise_in(&dir, &["trigger", "procs/fast.yaml", "--wait", "--store", &db.url]);
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, a.log());
    let run_id = out.stdout.lines().next().expect("the run id").trim().to_owned();
    assert!(out.stdout.contains("status     COMPLETE"), "{}", out.stdout);
    assert!(out.stdout.contains("node       a"), "{}", out.stdout);
    let by_name = trigger(&dir, &db.url, &["fast"]);
    let row =
        until("the run by name", &[&a], || Some(run_of(&dir, &db.url, &by_name)).filter(|r| r.status == "COMPLETE"));
    assert_eq!((row.trigger.as_str(), row.node.as_deref(), row.scheduled_for), ("manual", Some("a"), None));
    let first = run_of(&dir, &db.url, &run_id);
    assert_eq!((first.run_id.as_str(), first.process.as_str()), (run_id.as_str(), "fast"));
    // `--wait --json` prints one JSON document: the run as `history RUN_ID --json` shows it.
    let out = stepwise_in(&dir, &["trigger", "fast", "--wait", "--json", "--store", &db.url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let waited = out.json();
    let again = run_of(&dir, &db.url, waited["run_id"].as_str().expect("run_id at the top level"));
    assert_eq!((again.status.as_str(), waited["status"].as_str()), ("COMPLETE", Some("COMPLETE")), "{waited}");
    assert!(waited["steps"].as_array().is_some_and(|s| !s.is_empty()) && waited["logs"].is_array(), "{waited}");
    // A file that does not exist, and a bad --set, are usage errors; nothing is queued.
    let missing = stepwise_in(&dir, &["trigger", "procs/nope.yaml", "--store", &db.url]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no such process file"), "{}", missing.stderr);
    assert_eq!(history(&dir, &db.url).len(), 3);
    assert_eq!(a.terminate(), 0, "{}", a.log());
}

/// Issue 13 item 8: runs in the queue are never lost silently. Runs queued while no node is up
/// (here by `stepwise trigger` on the SQLite store) and a run waiting behind a running one
/// (`overlap: queue`) when its node is killed run after the restart.
#[test]
fn queued_runs_survive_a_restart() {
    let sim = sim(3_000);
    let dir = Dir::new();
    let url = "sqlite:state.db";
    dir.write("procs/fast.yaml", fast("fast", "0 0 3 1 1 *", "skip"));
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), &every_second("queue")));
    let early: Vec<String> = (0..2).map(|_| trigger(&dir, url, &["fast"])).collect();
    for run_id in &early {
        assert_eq!(run_of(&dir, url, run_id).status, "QUEUED");
    }
    let mut node = Node::start(&dir, url, "one", &[]);
    let waiting = until("a run of slow waiting behind the running one", &[&node], || {
        let rows = history(&dir, url);
        let running = rows.iter().any(|r| r.process == "slow" && r.status == "INPROCESS");
        rows.into_iter().find(|r| running && r.process == "slow" && r.status == "QUEUED")
    });
    node.kill_9();
    let mut again = Node::start(&dir, url, "two", &[]);
    let ran = until("the waiting run to run after the restart", &[&node, &again], || {
        Some(run_of(&dir, url, &waiting.run_id)).filter(|r| r.status == "COMPLETE")
    });
    assert_eq!(ran.node.as_deref(), Some("two"));
    for run_id in &early {
        let row = run_of(&dir, url, run_id);
        assert_eq!((row.status.as_str(), row.trigger.as_str()), ("COMPLETE", "manual"), "{row:#?}");
    }
    assert_eq!(again.terminate(), 0, "{}", again.log());
}

/// Issue 13 item 8: a queued run whose process is no longer served (its file was removed while
/// no node was up) is recorded DISCARDED with the reason, not left waiting forever.
#[test]
fn queued_runs_of_a_removed_process_are_discarded() {
    let dir = Dir::new();
    let url = "sqlite:state.db";
    dir.write("procs/fast.yaml", fast("fast", "0 0 3 1 1 *", "skip"));
    let gone = trigger(&dir, url, &["gone"]);
    let mut node = Node::start(&dir, url, "one", &[]);
    let row = until("the run of the removed process to be discarded", &[&node], || {
        Some(run_of(&dir, url, &gone)).filter(|r| r.status == "DISCARDED")
    });
    assert!(row.error.as_deref().unwrap_or("").contains("no longer served"), "{row:#?}");
    assert_eq!(node.terminate(), 0, "{}", node.log());
}

/// `stepwise run --store postgres://...` records the run with its node; a bad store URL is a
/// usage error, and a password in a store URL is never printed.
#[test]
fn run_records_in_postgres_and_store_urls_hide_passwords() {
    let Some(db) = database("run") else { return };
    let dir = Dir::new();
    dir.write("procs/fast.yaml", fast("fast", "0 0 3 1 1 *", "skip"));
    let out = stepwise_in(&dir, &["run", "procs/fast.yaml", "--store", &db.url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = history(&dir, &db.url);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].status.as_str(), rows[0].trigger.as_str()), ("COMPLETE", "manual"));
    assert!(rows[0].node.as_deref().is_some_and(|n| n.contains(':')), "{:#?}", rows[0]);
    // A store opened again: PostgreSQL's notice that the migrations table exists is not logged.
    let again = stepwise_in(&dir, &["--log", "info", "history", "--store", &db.url]);
    assert!(again.code == 0 && !again.stderr.contains("_sqlx_migrations"), "{}", again.stderr);
    let bad = stepwise_in(&dir, &["history", "--store", "mysql://u:hunter2@127.0.0.1/db"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown scheme 'mysql'") && !bad.stderr.contains("hunter2"), "{}", bad.stderr);
    let unreachable = stepwise_in(&dir, &["history", "--store", "postgres://u:hunter2@127.0.0.1:1/db"]);
    assert_ne!(unreachable.code, 0);
    assert!(
        unreachable.stderr.contains("127.0.0.1:1") && !unreachable.stderr.contains("hunter2"),
        "{}",
        unreachable.stderr
    );
    // The store is named once, with why it cannot be reached; a password given as a query
    // parameter is masked too.
    assert_eq!(unreachable.stderr.matches("cannot open").count(), 1, "{}", unreachable.stderr);
    assert!(unreachable.stderr.to_lowercase().contains("connection refused"), "{}", unreachable.stderr);
    let query =
        stepwise_in(&dir, &["history", "--store", "postgres://u@127.0.0.1:1/db?password=hunter3&sslmode=disable"]);
    assert_ne!(query.code, 0);
    assert!(
        query.stderr.contains("password=***&sslmode=disable") && !query.stderr.contains("hunter3"),
        "{}",
        query.stderr
    );
    let both = stepwise_in(&dir, &["history", "--store", &db.url, "--state", "x.db"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}

/// A process whose runs make three KnowBe4 calls each (three paths of a branch), every second.
fn three_calls(name: &str, url: &str) -> String {
    let list = |next: &str| {
        format!(
            "  {next}:\n    type: connector\n    connection: kb4\n    object: user\n    action: list\n    next: done\n"
        )
    };
    format!(
        "name: {name}\nconnections:\n  kb4:\n    type: knowbe4\n    token: {{ env: KB4_TOKEN }}\n    base_url: {url}\n{}start:\n  type: no_data\n  next: fan\nsteps:\n  fan:\n    type: branch\n    paths: [l1, l2, l3]\n{}{}{}  done:\n    type: stop\n",
        every_second("skip"),
        list("l1"),
        list("l2"),
        list("l3")
    )
}

/// Three nodes with one KnowBe4 token share its rate budget through the store: together they
/// keep under the simulator's real limits (4 a second, 50 a minute), which refuse nothing,
/// although their processes ask for far more (6 processes of 3 calls every second, on every
/// node's own budget 4 a second: 12 a second in all if each node kept its own).
#[test]
fn three_nodes_share_one_tokens_rate_budget() {
    let Some(db) = database("budget") else { return };
    let sim = SimProcess::start(&["knowbe4-sim", "--port", "0", "--latency-ms", "20"]);
    let dir = Dir::new();
    for i in 0..6 {
        dir.write(&format!("procs/b{i}.yaml"), three_calls(&format!("b{i}"), &sim.url()));
    }
    let rate = [("STEPWISE_KNOWBE4_RATE", None)];
    let mut nodes: Vec<Node> =
        ["a", "b", "c"].iter().map(|n| Node::start_env(&dir, &db.url, n, &["--workers", "4"], &rate)).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    // Past the first minute's 50: the minute window must hold too.
    until("60 requests at the simulator", &refs, || (sim.requests() >= 60).then_some(()));
    for node in &mut nodes {
        assert_eq!(node.terminate(), 0, "{}", node.log());
    }
    let stats = sim.stats();
    assert_eq!(stats["throttled"], 0, "{stats}\n{}", logs(&nodes.iter().collect::<Vec<_>>()));
    let rows = history(&dir, &db.url);
    let ran: Vec<&Row> = rows.iter().filter(|r| r.status == "COMPLETE").collect();
    let by_node: BTreeSet<&str> = ran.iter().filter_map(|r| r.node.as_deref()).collect();
    assert!(by_node.len() >= 2, "the nodes shared the work: {by_node:?}");
    // The processes asked for more than the budget gives: fires were skipped while runs waited.
    assert!(rows.iter().any(|r| r.status == "DISCARDED"), "no fire waited for the budget");
    assert!(rows.iter().all(|r| r.status != "ERROR"), "{rows:#?}");
}

/// Writes each webhook's body to `out/<X-Request-Id>.json` (next to the process file).
const HOOK: &str = r#"name: hook
connections:
  out:
    type: disk
    directory: out
start:
  type: webhook
  secret: { env: HOOK_SECRET }
  headers: [X-Request-Id]
  next: write
steps:
  write:
    type: connector
    connection: out
    action: send
    file_name:
      - { document_property: X-Request-Id }
      - { static: ".json" }
    next: done
  done:
    type: stop
"#;

#[test]
fn a_webhook_accepted_by_one_node_is_run_by_another() {
    let Some(db) = database("webhook") else { return };
    let sim = sim(120_000);
    let dir = Dir::new();
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), ""));
    dir.write("procs/hook.yaml", HOOK);
    let secret = "cluster-hook-secret-93ab";
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let addr = format!("127.0.0.1:{port}");
    // Node a has one worker, kept busy by a slow run: it accepts the hook but cannot run it.
    let a =
        Node::start_env(&dir, &db.url, "a", &["--workers", "1", "--listen", &addr], &[("HOOK_SECRET", Some(secret))]);
    let host = format!("127.0.0.1:{port}");
    until("node a to listen", &[&a], || {
        crate::support::http_with(port, "GET", "/health", &[("Host", &host)], "").filter(|(s, _)| *s == 200)
    });
    let slow_run = trigger(&dir, &db.url, &["slow"]);
    until("the slow run on node a", &[&a], || {
        let row = run_of(&dir, &db.url, &slow_run);
        (row.status == "INPROCESS").then_some(())
    });
    let body = r#"{"employee": {"workEmail": "ada@example.com"}}"#;
    let bearer = format!("Bearer {secret}");
    let headers = [("Host", host.as_str()), ("Authorization", &bearer), ("X-Request-Id", "req-a1")];
    let (status, answer) = crate::support::http_with(port, "POST", "/hooks/hook", &headers, body).expect("an answer");
    assert_eq!(status, 202, "{answer}\n{}", logs(&[&a]));
    let run_id = serde_json::from_str::<Value>(&answer).unwrap()["run_id"].as_str().expect("run_id").to_owned();
    assert_eq!(run_of(&dir, &db.url, &run_id).status, "QUEUED");
    // Node b, which serves no HTTP and was given no secret, takes it from the queue.
    let b = Node::start_env(&dir, &db.url, "b", &["--workers", "2"], &[]);
    let row = until("the webhook run to end", &[&a, &b], || {
        let row = run_of(&dir, &db.url, &run_id);
        row.ended_at.is_some().then_some(row)
    });
    assert_eq!(row.status, "COMPLETE", "{row:?}\n{}", logs(&[&a, &b]));
    assert_eq!(row.trigger, "webhook");
    assert_eq!(row.process, "hook");
    assert_eq!(row.node.as_deref(), Some("b"));
    // The start document travelled with the queued run.
    assert_eq!(dir.read("procs/out/req-a1.json"), body);
    assert_eq!(run_of(&dir, &db.url, &slow_run).node.as_deref(), Some("a"));
    let all = format!("{}\n{:?}", logs(&[&a, &b]), history(&dir, &db.url));
    assert!(!all.contains(secret), "the secret leaked:\n{all}");
}

/// The console of one node cancels what goes elsewhere, through the store: a run on another
/// node (which stops it when it next renews its lease) and a `stepwise run` recording in the
/// cluster's store; a queued run it discards at once.
#[test]
fn a_console_cancels_runs_going_on_other_nodes() {
    let Some(db) = database("cancel") else { return };
    let sim = sim(60_000);
    let (dir, console_dir) = (Dir::new(), Dir::new());
    dir.write("procs/slow.yaml", slow("slow", &sim.url(), ""));
    // The console's node serves another process: it never takes a run of `slow`.
    console_dir.write("procs/other.yaml", fast("other", "0 0 3 1 1 *", "skip"));
    let made = stepwise_in(&console_dir, &["token", "create", "ops", "--role", "operator", "--store", &db.url]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let token = made.stdout.trim().to_owned();
    let port = crate::support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let a = Node::start(&console_dir, &db.url, "a", &["--listen", &listen, "--lease-secs", "3"]);
    // Node b's lease outlasts the moment it is held still below by far: its run is not taken
    // for lost meanwhile.
    let b = Node::start(&dir, &db.url, "b", &["--lease-secs", "15", "--workers", "1"]);
    until("both nodes started", &[&a, &b], || {
        (a.log().contains("Service started") && b.log().contains("Service started")).then_some(())
    });
    let cancel = |run_id: &str| {
        let auth = format!("Bearer {token}");
        let path = format!("/api/v1/runs/{run_id}/cancel");
        let (status, body) =
            crate::support::http_with(port, "POST", &path, &[("Host", &listen), ("Authorization", &auth)], "")
                .expect("node a answers");
        assert_eq!(status, 202, "{body}\n{}", logs(&[&a, &b]));
        serde_json::from_str::<Value>(&body).expect("JSON")
    };
    let going = trigger(&dir, &db.url, &["slow"]);
    until("the run on node b", &[&a, &b], || {
        let row = run_of(&dir, &db.url, &going);
        (row.status == "INPROCESS" && row.node.as_deref() == Some("b")).then_some(())
    });
    // Node b has one worker, busy: this run waits in the queue, and is discarded at once.
    let queued = trigger(&dir, &db.url, &["slow"]);
    assert_eq!(run_of(&dir, &db.url, &queued).status, "QUEUED");
    assert_eq!(cancel(&queued)["status"], "DISCARDED");
    assert_eq!(run_of(&dir, &db.url, &queued).status, "DISCARDED");
    // Node b is held still (SIGSTOP) for a moment: the request waits in the store, and node a's
    // API and run page say so. Let go, node b learns of it at its next renewal.
    b.signal("-STOP");
    let answer = cancel(&going);
    assert_eq!((answer["node"].as_str(), answer["on_this_node"].as_bool()), (Some("b"), Some(false)), "{answer}");
    let get = |path: &str| {
        let auth = format!("Bearer {token}");
        crate::support::http_with(port, "GET", path, &[("Host", &listen), ("Authorization", &auth)], "")
            .expect("node a answers")
    };
    let (status, detail) = get(&format!("/api/v1/runs/{going}"));
    let (page_status, page) = get(&format!("/runs/{going}"));
    b.signal("-CONT");
    let detail: Value = serde_json::from_str(&detail).expect("JSON");
    assert_eq!(
        (status, detail["status"].as_str(), detail["cancel_requested"].as_str()),
        (200, Some("INPROCESS"), Some("cancelled by 'ops' from the console")),
        "{detail}"
    );
    assert_eq!(page_status, 200);
    assert!(
        page.contains("Cancel requested (cancelled by") && page.contains("when it next renews its lease"),
        "{page}"
    );
    assert!(!page.contains("Cancel run"), "{page}");
    let row =
        until("the run ABORTED", &[&a, &b], || Some(run_of(&dir, &db.url, &going)).filter(|r| r.status != "INPROCESS"));
    assert_eq!((row.status.as_str(), row.node.as_deref()), ("ABORTED", Some("b")), "{row:#?}");
    assert!(row.error.as_deref().unwrap_or("").contains("cancelled by 'ops' from the console"), "{row:#?}");
    // A `stepwise run` on the cluster's store holds a lease too, and stops the same way.
    let local = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .current_dir(dir.path())
        .args(["run", "procs/slow.yaml", "--store", &db.url])
        .env_remove("STEPWISE_STORE")
        .env("KB4_TOKEN", TOKEN)
        .env("STEPWISE_KNOWBE4_RATE", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stepwise run");
    let run_id = until("the local run recorded", &[&a, &b], || {
        history(&dir, &db.url).into_iter().find(|r| r.status == "INPROCESS" && r.process == "slow").map(|r| r.run_id)
    });
    assert_eq!(cancel(&run_id)["status"], "cancelling");
    let out = local.wait_with_output().expect("stepwise run ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ABORTED"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let row = run_of(&dir, &db.url, &run_id);
    assert_eq!(row.status, "ABORTED", "{row:#?}");
    assert!(row.error.as_deref().unwrap_or("").contains("cancelled by 'ops' from the console"), "{row:#?}");
}
