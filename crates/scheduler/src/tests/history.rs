//! History tests: round trip, filters, abandoned runs, concurrency, schema versions, rendering.

use chrono::{DateTime, Duration, Utc};
use expect_test::expect;

use crate::history::{
    History, HistoryError, ListFilter, RunEnd, RunStart, SCHEMA_VERSION, StepRecord, Trigger, db_path, proc_start_time,
    render_run_detail, render_runs_table,
};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn start(run_id: &str, process: &str, at: &str) -> RunStart {
    RunStart {
        run_id: run_id.to_owned(),
        process: process.to_owned(),
        trigger: Trigger::Schedule,
        scheduled_for: Some(t(at)),
        started_at: t(at) + Duration::milliseconds(3),
    }
}

fn end(run_id: &str, at: &str, status: &str) -> RunEnd {
    RunEnd {
        run_id: run_id.to_owned(),
        ended_at: t(at),
        status: status.to_owned(),
        documents_in: 10,
        documents_out: 9,
        documents_error: 1,
        error: None,
        steps: vec![
            StepRecord { step: "fetch".into(), documents_in: 0, documents_out: 10, documents_error: 0, millis: 120 },
            StepRecord { step: "map".into(), documents_in: 10, documents_out: 9, documents_error: 1, millis: 7 },
        ],
    }
}

fn open_temp() -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db_path(&dir.path().join("state"))).unwrap();
    (dir, history)
}

#[test]
fn round_trip_with_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/history.db");
    let history = History::open(&path).unwrap();
    assert!(path.exists(), "open creates parent directories");

    history.record_start(&start("r1", "orders", "2026-03-29T01:00:00Z")).unwrap();
    let (run, steps) = history.get("r1").unwrap().unwrap();
    assert_eq!(run.status, "INPROCESS");
    assert_eq!(run.ended_at, None);
    assert!(steps.is_empty());

    history.record_end(&end("r1", "2026-03-29T01:00:02.5Z", "COMPLETE_WARN")).unwrap();
    let (run, steps) = history.get("r1").unwrap().unwrap();
    assert_eq!(run.status, "COMPLETE_WARN");
    assert_eq!(run.trigger, Trigger::Schedule);
    assert_eq!(run.scheduled_for, Some(t("2026-03-29T01:00:00Z")));
    assert_eq!(run.started_at, t("2026-03-29T01:00:00.003Z"));
    assert_eq!(run.ended_at, Some(t("2026-03-29T01:00:02.5Z")));
    assert_eq!((run.documents_in, run.documents_out, run.documents_error), (10, 9, 1));
    assert_eq!(steps, end("r1", "2026-03-29T01:00:02.5Z", "COMPLETE").steps);

    // Ending again replaces the end, steps included.
    let mut again = end("r1", "2026-03-29T01:00:03Z", "ERROR");
    again.error = Some("connection refused".into());
    again.steps.truncate(1);
    history.record_end(&again).unwrap();
    let (run, steps) = history.get("r1").unwrap().unwrap();
    assert_eq!(run.status, "ERROR");
    assert_eq!(run.error.as_deref(), Some("connection refused"));
    assert_eq!(steps.len(), 1);

    assert!(history.get("nope").unwrap().is_none());

    // Survives reopening.
    drop(history);
    let history = History::open(&path).unwrap();
    assert_eq!(history.get("r1").unwrap().unwrap().0.status, "ERROR");
}

#[test]
fn discarded_runs_start_and_end_at_once() {
    let (_dir, history) = open_temp();
    history.record_discarded(&start("d1", "orders", "2026-01-01T00:00:00Z")).unwrap();
    let (run, steps) = history.get("d1").unwrap().unwrap();
    assert_eq!(run.status, "DISCARDED");
    assert_eq!(run.ended_at, Some(run.started_at));
    assert!(steps.is_empty());
}

#[test]
fn rejects_bad_writes() {
    let (_dir, history) = open_temp();
    let err = history.record_end(&end("ghost", "2026-01-01T00:00:00Z", "COMPLETE")).unwrap_err();
    assert!(matches!(err, HistoryError::UnknownRun(ref id) if id == "ghost"), "{err}");

    history.record_start(&start("r1", "p", "2026-01-01T00:00:00Z")).unwrap();
    let err = history.record_start(&start("r1", "p", "2026-01-01T00:00:00Z")).unwrap_err();
    assert!(matches!(err, HistoryError::DuplicateRun(_)), "{err}");
    let err = history.record_discarded(&start("r1", "p", "2026-01-01T00:00:00Z")).unwrap_err();
    assert!(matches!(err, HistoryError::DuplicateRun(_)), "{err}");

    for status in ["INPROCESS", "DISCARDED", "complete", "DONE"] {
        let err = history.record_end(&end("r1", "2026-01-01T00:00:01Z", status)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid final run status '{status}'; expected COMPLETE, COMPLETE_WARN, ERROR or ABORTED")
        );
    }
    assert_eq!(history.get("r1").unwrap().unwrap().0.status, "INPROCESS");
}

#[test]
fn lists_newest_first_with_filters() {
    let (_dir, history) = open_temp();
    for (i, process) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        let id = format!("r{i}");
        history.record_start(&start(&id, process, &format!("2026-01-01T00:0{i}:00Z"))).unwrap();
        let status = if i % 2 == 0 { "COMPLETE" } else { "ERROR" };
        history.record_end(&end(&id, &format!("2026-01-01T00:0{i}:30Z"), status)).unwrap();
    }
    let ids =
        |filter: ListFilter| -> Vec<String> { history.list(&filter).unwrap().into_iter().map(|r| r.run_id).collect() };
    assert_eq!(ids(ListFilter::default()), ["r4", "r3", "r2", "r1", "r0"]);
    assert_eq!(ids(ListFilter { process: Some("a".into()), ..Default::default() }), ["r3", "r2", "r0"]);
    assert_eq!(ids(ListFilter { status: Some("ERROR".into()), ..Default::default() }), ["r3", "r1"]);
    assert_eq!(ids(ListFilter { limit: Some(2), ..Default::default() }), ["r4", "r3"]);
    assert_eq!(ids(ListFilter { process: Some("a".into()), status: Some("COMPLETE".into()), limit: Some(1) }), ["r2"]);
    assert!(ids(ListFilter { process: Some("zzz".into()), ..Default::default() }).is_empty());

    assert_eq!(history.prune_before(t("2026-01-01T00:02:00Z")).unwrap(), 2);
    assert_eq!(ids(ListFilter::default()), ["r4", "r3", "r2"]);
}

#[test]
fn marks_abandoned_runs_but_not_those_of_live_processes() {
    let (_dir, history) = open_temp();
    // Owned by this process: a service starting in this process owns nothing yet, so it counts
    // as abandoned (this is also how the caller closes runs left after serve's grace period).
    history.record_start(&start("mine", "p", "2026-01-01T00:00:00Z")).unwrap();
    history.record_start(&start("dead", "p", "2026-01-01T00:00:01Z")).unwrap();
    history.record_start(&start("live", "p", "2026-01-01T00:00:02Z")).unwrap();
    history.record_start(&start("done", "p", "2026-01-01T00:00:03Z")).unwrap();
    history.record_end(&end("done", "2026-01-01T00:00:04Z", "COMPLETE")).unwrap();

    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let child_start = proc_start_time(child.id());
    {
        let conn = history.conn();
        conn.execute("UPDATE runs SET owner = '4000000000:12345' WHERE run_id = 'dead'", []).unwrap();
        if let Some(start) = &child_start {
            conn.execute("UPDATE runs SET owner = ?1 WHERE run_id = 'live'", [format!("{}:{start}", child.id())])
                .unwrap();
        }
    }
    let marked = history.mark_abandoned_as_aborted().unwrap();
    let status = |id: &str| history.get(id).unwrap().unwrap().0;
    assert_eq!(status("mine").status, "ABORTED");
    assert!(status("mine").error.unwrap().contains("abandoned"));
    assert_eq!(status("dead").status, "ABORTED");
    assert_eq!(status("done").status, "COMPLETE");
    if child_start.is_some() {
        assert_eq!(marked, 2);
        assert_eq!(status("live").status, "INPROCESS");
    } else {
        // No /proc: nothing can be told alive, so everything is abandoned.
        assert_eq!(marked, 3);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(history.mark_abandoned_as_aborted().unwrap(), usize::from(child_start.is_some()));
    assert_eq!(history.mark_abandoned_as_aborted().unwrap(), 0);
}

#[test]
fn concurrent_connections_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Every thread opens (and possibly creates) the file at the same time.
                let history = History::open(&path).unwrap();
                for i in 0..50 {
                    let id = format!("w{w}-{i}");
                    history.record_start(&start(&id, &format!("p{w}"), "2026-01-01T00:00:00Z")).unwrap();
                    history.record_end(&end(&id, "2026-01-01T00:00:01Z", "COMPLETE")).unwrap();
                    let _ = history.list(&ListFilter { limit: Some(5), ..Default::default() }).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let history = History::open(&path).unwrap();
    let all = history.list(&ListFilter::default()).unwrap();
    assert_eq!(all.len(), 200);
    assert!(all.iter().all(|r| r.status == "COMPLETE"));
    let mode: String = history.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn schema_version_is_set_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let history = History::open(&path).unwrap();
    let version: i64 = history.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    history.conn().execute_batch("PRAGMA user_version = 99").unwrap();
    drop(history);
    let err = History::open(&path).unwrap_err();
    assert!(matches!(err, HistoryError::NewerSchema { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("upgrade stepwise"));
}

#[test]
fn open_reports_unusable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a database\n".repeat(100)).unwrap();
    let err = History::open(&file.join("history.db")).unwrap_err();
    assert!(matches!(err, HistoryError::CreateDir { .. }), "{err}");
    let err = History::open(&file).unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn db_path_accepts_a_directory_or_a_file() {
    assert_eq!(db_path("/x/.stepwise".as_ref()), std::path::Path::new("/x/.stepwise/history.db"));
    assert_eq!(db_path("/x/runs.sqlite".as_ref()), std::path::Path::new("/x/runs.sqlite"));
}

#[test]
fn last_fired_only_moves_forward() {
    let (_dir, history) = open_temp();
    let a = t("2026-01-01T00:00:00Z");
    let b = t("2026-01-01T00:00:05Z");
    history.save_last_fired(&[("p".into(), "k1".into(), b), ("p".into(), "k2".into(), a)]).unwrap();
    history.save_last_fired(&[("p".into(), "k1".into(), a)]).unwrap();
    let got = history.last_fired("p").unwrap();
    assert_eq!(got.get("k1"), Some(&b));
    assert_eq!(got.get("k2"), Some(&a));
    history.retain_schedules("p", &["k2".to_owned()]).unwrap();
    assert_eq!(history.last_fired("p").unwrap().len(), 1);
    assert!(history.last_fired("other").unwrap().is_empty());
}

#[test]
fn renders_table_detail_and_json() {
    let (_dir, history) = open_temp();
    history.record_start(&start("0190-aaaa", "orders", "2026-03-29T01:00:00Z")).unwrap();
    let mut e = end("0190-aaaa", "2026-03-29T01:00:02.503Z", "COMPLETE_WARN");
    e.error = Some("1 document failed in 'map'".into());
    history.record_end(&e).unwrap();
    history.record_discarded(&start("0190-bbbb", "customer-sync", "2026-03-29T01:00:01Z")).unwrap();
    history
        .record_start(&RunStart {
            run_id: "0190-cccc".into(),
            process: "orders".into(),
            trigger: Trigger::Manual,
            scheduled_for: None,
            started_at: t("2026-03-29T01:05:00Z"),
        })
        .unwrap();
    let runs = history.list(&ListFilter::default()).unwrap();
    expect![[r#"
        RUN        PROCESS        TRIGGER   STARTED (UTC)        DURATION  STATUS         IN  OUT  ERRORS
        0190-cccc  orders         manual    2026-03-29 01:05:00         -  INPROCESS       0    0       0
        0190-bbbb  customer-sync  schedule  2026-03-29 01:00:01    0.000s  DISCARDED       0    0       0
        0190-aaaa  orders         schedule  2026-03-29 01:00:00    2.500s  COMPLETE_WARN  10    9       1
    "#]]
    .assert_eq(&render_runs_table(&runs));
    assert_eq!(render_runs_table(&[]), "no runs recorded\n");

    let (run, steps) = history.get("0190-aaaa").unwrap().unwrap();
    expect![[r#"
        run        0190-aaaa
        process    orders
        trigger    schedule (scheduled for 2026-03-29T01:00:00Z)
        status     COMPLETE_WARN
        started    2026-03-29T01:00:00.003Z
        ended      2026-03-29T01:00:02.503Z (2.500s)
        documents  10 in, 9 out, 1 errors
        error      1 document failed in 'map'

        STEP         IN       OUT    ERRORS        MS
        fetch         0        10         0       120
        map          10         9         1         7
    "#]]
    .assert_eq(&render_run_detail(&run, &steps));

    let json = serde_json::to_value(&run).unwrap();
    assert_eq!(json["trigger"], "schedule");
    assert_eq!(json["status"], "COMPLETE_WARN");
    assert_eq!(json["started_at"], "2026-03-29T01:00:00.003Z");
    assert_eq!(json["scheduled_for"], "2026-03-29T01:00:00Z");
    assert_eq!(json["documents_out"], 9);
}
