//! One conformance suite, run against both stores.
//!
//! PostgreSQL tests create a database of their own on the server at `STEPWISE_TEST_POSTGRES`
//! (default `postgres://stepwise:stepwise@127.0.0.1:5432/postgres`, a role allowed to create
//! databases). When nothing answers there they fail with a message saying how to start it,
//! unless `STEPWISE_SKIP_POSTGRES=1`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use store::{
    AuditEntry, CancelOutcome, Claim, Completion, DocumentChunks, Fire, FireOutcome, ListFilter, LogLine, NewRun,
    NewToken, Overlap, RateHold, RateLimits, RecordedDocument, Reservation, Revoked, Role, RunEnd, RunStart, RunStatus,
    SqliteStore, StepRecord, Store, StoreError, Trigger,
};

#[path = "support/postgres.rs"]
mod pg;

type Dyn = Arc<dyn Store>;

struct Fixture {
    store: Dyn,
    _dir: Option<tempfile::TempDir>,
    _db: Option<pg::TestDb>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_async(dir.path().join("state.db")).await.unwrap();
    Fixture { store: Arc::new(store), _dir: Some(dir), _db: None }
}

async fn postgres() -> Option<Fixture> {
    let db = pg::TestDb::create("store").await?;
    let store = store::PgStore::connect(&db.url).await.unwrap();
    Some(Fixture { store: Arc::new(store), _dir: None, _db: Some(db) })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fixture = super::sqlite().await;
                    super::$name(fixture.store.clone()).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(fixture) = super::postgres().await else { return };
                    super::$name(fixture.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    records_runs_and_steps,
    lists_newest_first_with_filters,
    refuses_bad_ends_and_duplicates,
    records_each_fire_once_under_concurrency,
    records_a_batch_of_fires_once,
    applies_overlap_across_nodes,
    claims_each_run_once_and_bounds_per_node,
    takes_only_runs_of_the_same_version,
    catch_up_runs_wait_their_turn,
    lost_leases_abort_runs_and_discard_late_results,
    cancels_queued_runs_at_once_and_going_ones_through_their_node,
    keeps_the_progress_of_going_runs_until_their_end,
    completes_idempotently,
    completes_a_batch_with_an_answer_per_end,
    keeps_schedule_state_monotonic,
    manual_runs_carry_overrides,
    discards_queued_runs_with_a_reason,
    keeps_run_logs,
    prunes_ended_runs,
    shares_rate_budgets_between_nodes,
    counts_rate_slots_in_flight_until_answered,
    keeps_tokens_by_hash,
    creates_a_first_token_once,
    keeps_an_audit_trail,
    pauses_and_resumes_processes,
    keeps_recorded_documents_until_they_expire,
    keeps_sessions_while_their_token_lives,
    keeps_the_overrides_of_started_runs,
    keeps_free_text_with_a_nul_character,
    keeps_an_admin_token_when_asked_even_under_concurrency,
);

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap()
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn start(run_id: &str, process: &str, started: DateTime<Utc>) -> RunStart {
    RunStart {
        run_id: run_id.to_owned(),
        process: process.to_owned(),
        trigger: Trigger::Manual,
        scheduled_for: None,
        started_at: started,
        node: "n1".to_owned(),
        lease: None,
        overrides: Vec::new(),
    }
}

fn end(run_id: &str, status: RunStatus) -> RunEnd {
    RunEnd {
        run_id: run_id.to_owned(),
        ended_at: at(100),
        status,
        documents_in: 3,
        documents_out: 2,
        documents_error: 1,
        error: None,
        steps: vec![
            StepRecord { step: "a".into(), documents_in: 3, documents_out: 3, documents_error: 0, millis: 5 },
            StepRecord { step: "b".into(), documents_in: 3, documents_out: 2, documents_error: 1, millis: 7 },
        ],
        response: None,
    }
}

fn fire(process: &str, instant: DateTime<Utc>, overlap: Overlap, node: &str) -> Fire {
    Fire {
        run_id: id(),
        process: process.to_owned(),
        schedule: "* * * * * *|UTC".to_owned(),
        instant,
        overlap,
        catch_up: false,
        content_hash: "h1".to_owned(),
        node: node.to_owned(),
        at: instant,
    }
}

fn claim(node: &str, processes: &[&str], max: usize) -> Claim {
    Claim {
        node: node.to_owned(),
        processes: processes.iter().map(|p| ((*p).to_owned(), "h1".to_owned())).collect(),
        max,
        lease: Duration::from_secs(30),
        now: Utc::now(),
    }
}

async fn status_of(store: &Dyn, run_id: &str) -> String {
    store.get(run_id).await.unwrap().unwrap().0.status
}

async fn records_runs_and_steps(store: Dyn) {
    let run = id();
    store.record_start(&start(&run, "p", at(0))).await.unwrap();
    let (rec, steps) = store.get(&run).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.node.as_deref(), rec.started_at), ("INPROCESS", Some("n1"), at(0)));
    assert!(steps.is_empty());
    store.record_end(&end(&run, RunStatus::CompleteWarn)).await.unwrap();
    let (rec, steps) = store.get(&run).await.unwrap().unwrap();
    assert_eq!(rec.status, "COMPLETE_WARN");
    assert_eq!((rec.documents_in, rec.documents_out, rec.documents_error), (3, 2, 1));
    assert_eq!(rec.ended_at, Some(at(100)));
    assert_eq!(steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(steps[1].millis, 7);
    // Recording the end again replaces it.
    let mut again = end(&run, RunStatus::Error);
    again.error = Some("step 'b': boom".into());
    again.steps.truncate(1);
    store.record_end(&again).await.unwrap();
    let (rec, steps) = store.get(&run).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.error.as_deref(), steps.len()), ("ERROR", Some("step 'b': boom"), 1));
    assert!(store.get("nope").await.unwrap().is_none());
}

async fn lists_newest_first_with_filters(store: Dyn) {
    let ids: Vec<String> = (0..4).map(|_| id()).collect();
    for (i, run) in ids.iter().enumerate() {
        let process = if i % 2 == 0 { "even" } else { "odd" };
        store.record_start(&start(run, process, at(i as i64))).await.unwrap();
    }
    store.record_end(&end(&ids[0], RunStatus::Complete)).await.unwrap();
    store.record_discarded(&start(&id(), "odd", at(-5)), "overlap skip").await.unwrap();
    let all = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].run_id, ids[3]);
    assert_eq!(all[4].status, "DISCARDED");
    assert_eq!(all[4].error.as_deref(), Some("overlap skip"));
    let odd = store.list(&ListFilter { process: Some("odd".into()), ..ListFilter::default() }).await.unwrap();
    assert_eq!(odd.len(), 3);
    let done = store.list(&ListFilter { status: Some("COMPLETE".into()), ..ListFilter::default() }).await.unwrap();
    assert_eq!(done.iter().map(|r| &r.run_id).collect::<Vec<_>>(), [&ids[0]]);
    let two = store.list(&ListFilter { limit: Some(2), ..ListFilter::default() }).await.unwrap();
    assert_eq!(two.iter().map(|r| &r.run_id).collect::<Vec<_>>(), [&ids[3], &ids[2]]);
    let window = ListFilter { since: Some(at(1)), until: Some(at(3)), ..ListFilter::default() };
    let inside = store.list(&window).await.unwrap();
    assert_eq!(inside.iter().map(|r| &r.run_id).collect::<Vec<_>>(), [&ids[2], &ids[1]]);
    let manual = ListFilter { trigger: Some(Trigger::Manual), ..ListFilter::default() };
    assert_eq!(store.list(&manual).await.unwrap().len(), 5);
    let scheduled = ListFilter { trigger: Some(Trigger::Schedule), ..ListFilter::default() };
    assert_eq!(store.list(&scheduled).await.unwrap().len(), 0);
}

async fn refuses_bad_ends_and_duplicates(store: Dyn) {
    let run = id();
    store.record_start(&start(&run, "p", at(0))).await.unwrap();
    assert!(matches!(store.record_start(&start(&run, "p", at(0))).await, Err(StoreError::DuplicateRun(_))));
    assert!(matches!(store.record_end(&end(&run, RunStatus::Queued)).await, Err(StoreError::InvalidStatus(_))));
    assert!(matches!(store.record_end(&end("missing", RunStatus::Complete)).await, Err(StoreError::UnknownRun(_))));
    assert!(matches!(store.complete("n1", &end("missing", RunStatus::Complete)).await, Err(StoreError::UnknownRun(_))));
}

async fn records_each_fire_once_under_concurrency(store: Dyn) {
    // Eight nodes fire the same ten instants at once.
    let mut tasks = Vec::new();
    for node in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for second in 0..10 {
                let f = fire("p", at(second), Overlap::Allow, &format!("node{node}"));
                outcomes.push(store.fire(&f).await.unwrap());
            }
            outcomes
        }));
    }
    let mut recorded = 0;
    for task in tasks {
        recorded += task.await.unwrap().iter().filter(|o| **o != FireOutcome::Duplicate).count();
    }
    assert_eq!(recorded, 10);
    let runs = store.list(&ListFilter::default()).await.unwrap();
    let mut instants: Vec<_> = runs.iter().map(|r| r.scheduled_for.unwrap()).collect();
    instants.sort();
    assert_eq!(instants, (0..10).map(at).collect::<Vec<_>>());
    assert!(runs.iter().all(|r| r.status == "QUEUED" && r.trigger == Trigger::Schedule));
}

async fn records_a_batch_of_fires_once(store: Dyn) {
    let fires: Vec<Fire> = (0..5).map(|s| fire("p", at(s), Overlap::Allow, "a")).collect();
    let first = store.fire_many(&fires).await;
    assert!(first.iter().all(|o| matches!(o, Ok(FireOutcome::Queued))), "{first:?}");
    let again: Vec<Fire> = (3..8).map(|s| fire("p", at(s), Overlap::Allow, "b")).collect();
    let outcomes: Vec<FireOutcome> = store.fire_many(&again).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == FireOutcome::Duplicate).count(), 2, "{outcomes:?}");
    assert_eq!(store.list(&ListFilter::default()).await.unwrap().len(), 8);
}

async fn applies_overlap_across_nodes(store: Dyn) {
    // skip: a fire while a run is going (on another node) is discarded.
    assert_eq!(store.fire(&fire("skip", at(0), Overlap::Skip, "a")).await.unwrap(), FireOutcome::Queued);
    assert_eq!(store.claim(&claim("a", &["skip"], 5)).await.unwrap().runs.len(), 1);
    match store.fire(&fire("skip", at(1), Overlap::Skip, "b")).await.unwrap() {
        FireOutcome::Discarded(reason) => assert!(reason.contains("overlap skip"), "{reason}"),
        other => panic!("expected a discard, got {other:?}"),
    }
    // queue: one waiting run; a second is discarded.
    assert_eq!(store.fire(&fire("queue", at(0), Overlap::Queue, "a")).await.unwrap(), FireOutcome::Queued);
    let first = store.claim(&claim("a", &["queue"], 5)).await.unwrap().runs;
    assert_eq!(first.len(), 1);
    assert_eq!(store.fire(&fire("queue", at(1), Overlap::Queue, "b")).await.unwrap(), FireOutcome::Queued);
    assert!(matches!(store.fire(&fire("queue", at(2), Overlap::Queue, "c")).await.unwrap(), FireOutcome::Discarded(_)));
    // The waiting run is not taken while the first goes, on any node.
    assert!(store.claim(&claim("b", &["queue"], 5)).await.unwrap().runs.is_empty());
    assert_eq!(store.complete("a", &end(&first[0].run_id, RunStatus::Complete)).await.unwrap(), Completion::Recorded);
    let next = store.claim(&claim("b", &["queue"], 5)).await.unwrap().runs;
    assert_eq!(next.iter().map(|r| r.scheduled_for).collect::<Vec<_>>(), [Some(at(1))]);
    // allow: runs go side by side.
    for s in 0..3 {
        assert_eq!(store.fire(&fire("allow", at(s), Overlap::Allow, "a")).await.unwrap(), FireOutcome::Queued);
    }
    assert_eq!(store.claim(&claim("a", &["allow"], 1)).await.unwrap().runs.len(), 1);
    assert_eq!(store.claim(&claim("b", &["allow"], 5)).await.unwrap().runs.len(), 2);
    let discarded = store.list(&ListFilter { status: Some("DISCARDED".into()), ..Default::default() }).await.unwrap();
    assert_eq!(discarded.len(), 2);
    assert!(discarded.iter().all(|r| r.node.is_some() && r.ended_at.is_some()));
}

async fn claims_each_run_once_and_bounds_per_node(store: Dyn) {
    for s in 0..40 {
        store.fire(&fire("p", at(s), Overlap::Allow, "a")).await.unwrap();
    }
    let mut tasks = Vec::new();
    for node in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let runs = store.claim(&claim(&format!("n{node}"), &["p"], 3)).await.unwrap().runs;
                assert!(runs.len() <= 3);
                if runs.is_empty() {
                    break got;
                }
                got.extend(runs.into_iter().map(|r| r.run_id));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (40, 40));
    let runs = store.list(&ListFilter::default()).await.unwrap();
    assert!(runs.iter().all(|r| r.status == "INPROCESS" && r.node.as_deref().is_some_and(|n| n.starts_with('n'))));
    // A node that does not hold the process takes nothing.
    store.fire(&fire("p", at(99), Overlap::Allow, "a")).await.unwrap();
    assert!(store.claim(&claim("x", &["other"], 5)).await.unwrap().runs.is_empty());
}

async fn takes_only_runs_of_the_same_version(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Allow, "a")).await.unwrap();
    let mut old = claim("old", &["p"], 5);
    old.processes[0].1 = "h0".into();
    let claimed = store.claim(&old).await.unwrap();
    assert!(claimed.runs.is_empty());
    assert_eq!(claimed.other_version.len(), 1);
    assert_eq!(claimed.other_version[0].2, "h1");
    assert_eq!(store.claim(&claim("new", &["p"], 5)).await.unwrap().runs.len(), 1);
    // A manual run without a hash goes to any node holding the process.
    let run = NewRun {
        run_id: id(),
        process: "p".into(),
        trigger: Trigger::Manual,
        overrides: Vec::new(),
        content_hash: None,
        queued_at: Utc::now(),
        start_document: None,
        rerun_of: None,
    };
    store.enqueue(&run).await.unwrap();
    assert_eq!(store.claim(&old).await.unwrap().runs.len(), 1);
    // A rerun keeps the run it repeats.
    let again = NewRun { run_id: id(), trigger: Trigger::Rerun, rerun_of: Some(run.run_id.clone()), ..run.clone() };
    store.enqueue(&again).await.unwrap();
    assert_eq!(store.get(&again.run_id).await.unwrap().unwrap().0.rerun_of, Some(run.run_id.clone()));
    assert_eq!(store.get(&run.run_id).await.unwrap().unwrap().0.rerun_of, None);
}

async fn catch_up_runs_wait_their_turn(store: Dyn) {
    for s in 0..3 {
        let mut f = fire("p", at(s), Overlap::Skip, "a");
        f.catch_up = true;
        assert_eq!(store.fire(&f).await.unwrap(), FireOutcome::Queued);
    }
    for expected in 0..3 {
        let runs = store.claim(&claim("a", &["p"], 5)).await.unwrap().runs;
        assert_eq!(runs.iter().map(|r| r.scheduled_for).collect::<Vec<_>>(), [Some(at(expected))]);
        assert!(store.claim(&claim("b", &["p"], 5)).await.unwrap().runs.is_empty());
        store.complete("a", &end(&runs[0].run_id, RunStatus::Complete)).await.unwrap();
    }
}

async fn lost_leases_abort_runs_and_discard_late_results(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Skip, "a")).await.unwrap();
    store.fire(&fire("q", at(0), Overlap::Skip, "a")).await.unwrap();
    let mut expiring = claim("lost", &["p"], 5);
    expiring.lease = Duration::ZERO;
    let lost = store.claim(&expiring).await.unwrap().runs;
    let kept = store.claim(&claim("alive", &["q"], 5)).await.unwrap().runs;
    assert_eq!((lost.len(), kept.len()), (1, 1));
    // The database clock must pass the zero lease.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = store.expire_leases().await.unwrap();
    assert_eq!(expired, vec![(lost[0].run_id.clone(), "lost".to_owned())]);
    let (rec, _) = store.get(&lost[0].run_id).await.unwrap().unwrap();
    assert_eq!(rec.status, "ABORTED");
    assert!(rec.error.as_deref().unwrap().contains("node lost"), "{:?}", rec.error);
    assert!(rec.ended_at.is_some());
    // The lost node can neither renew nor complete; the live one can.
    assert!(store.renew("lost", &[lost[0].run_id.clone()], Duration::from_secs(30)).await.unwrap().held.is_empty());
    assert_eq!(store.renew("alive", &[kept[0].run_id.clone()], Duration::from_secs(30)).await.unwrap().held.len(), 1);
    assert!(store.renew("other", &[kept[0].run_id.clone()], Duration::from_secs(30)).await.unwrap().held.is_empty());
    assert_eq!(
        store.complete("lost", &end(&lost[0].run_id, RunStatus::Complete)).await.unwrap(),
        Completion::Discarded
    );
    assert_eq!(status_of(&store, &lost[0].run_id).await, "ABORTED");
    assert_eq!(
        store.complete("alive", &end(&kept[0].run_id, RunStatus::Complete)).await.unwrap(),
        Completion::Recorded
    );
    assert!(store.expire_leases().await.unwrap().is_empty());
}

async fn cancels_queued_runs_at_once_and_going_ones_through_their_node(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Allow, "a")).await.unwrap();
    store.fire(&fire("p", at(1), Overlap::Allow, "a")).await.unwrap();
    let going = store.claim(&claim("b", &["p"], 1)).await.unwrap().runs.remove(0);
    let queued = store.list(&ListFilter { status: Some("QUEUED".into()), ..ListFilter::default() }).await.unwrap();
    let queued = queued[0].run_id.clone();
    // A queued run is discarded at once and never claimed.
    assert_eq!(
        store.request_cancel(&queued, "cancelled by 'ops'", &cancel_audit(&queued)).await.unwrap(),
        CancelOutcome::Discarded
    );
    let (rec, _) = store.get(&queued).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.error.as_deref()), ("DISCARDED", Some("cancelled by 'ops'")));
    assert!(rec.ended_at.is_some());
    assert!(store.claim(&claim("a", &["p"], 5)).await.unwrap().runs.is_empty());
    // A going run stays going until its node, renewing, learns of the request.
    let renewed = store.renew("b", std::slice::from_ref(&going.run_id), Duration::from_secs(30)).await.unwrap();
    assert_eq!((renewed.held.len(), renewed.cancel.len()), (1, 0));
    assert_eq!(
        store.request_cancel(&going.run_id, "cancelled by 'ops'", &cancel_audit(&going.run_id)).await.unwrap(),
        CancelOutcome::Requested { node: "b".into() }
    );
    let (rec, _) = store.get(&going.run_id).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.cancel_requested.as_deref()), ("INPROCESS", Some("cancelled by 'ops'")));
    let renewed = store.renew("b", std::slice::from_ref(&going.run_id), Duration::from_secs(30)).await.unwrap();
    assert_eq!(renewed.held, std::slice::from_ref(&going.run_id));
    assert_eq!(renewed.cancel, [(going.run_id.clone(), "cancelled by 'ops'".to_owned())]);
    store.complete("b", &end(&going.run_id, RunStatus::Aborted)).await.unwrap();
    // Carried out, the request is no longer pending.
    assert_eq!(store.get(&going.run_id).await.unwrap().unwrap().0.cancel_requested, None);
    assert_eq!(
        store.request_cancel(&going.run_id, "again", &cancel_audit(&going.run_id)).await.unwrap(),
        CancelOutcome::Ended { status: "ABORTED".into() }
    );
    // A `stepwise run` holds no lease: no service can stop it.
    store.record_start(&start("cli", "p", Utc::now())).await.unwrap();
    assert_eq!(
        store.request_cancel("cli", "x", &cancel_audit("cli")).await.unwrap(),
        CancelOutcome::Unleased { node: "n1".into() }
    );
    assert_eq!(store.request_cancel("nope", "x", &cancel_audit("nope")).await.unwrap(), CancelOutcome::Unknown);
    // The trail holds the two cancels that took effect, not the three refused.
    let trail: Vec<String> = store.audit(10).await.unwrap().into_iter().map(|e| e.target).collect();
    assert_eq!(trail, [going.run_id.clone(), queued], "newest first");
}

/// The audit line of a cancel of `run_id`.
fn cancel_audit(run_id: &str) -> AuditEntry {
    AuditEntry { at: Utc::now(), actor: "ops".into(), action: "cancel".into(), target: run_id.into(), detail: None }
}

async fn keeps_the_progress_of_going_runs_until_their_end(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Skip, "a")).await.unwrap();
    let run = store.claim(&claim("a", &["p"], 1)).await.unwrap().runs.remove(0);
    let step = |name: &str, n: u64| StepRecord {
        step: name.into(),
        documents_in: n,
        documents_out: n,
        documents_error: 0,
        millis: n,
    };
    for n in [1, 40] {
        let progress = [step("a", n), step("b", 0)];
        assert!(store.save_progress("a", &run.run_id, &progress).await.unwrap());
        assert_eq!(store.get(&run.run_id).await.unwrap().unwrap().1, progress);
    }
    // Only the node running it writes it.
    assert!(!store.save_progress("b", &run.run_id, &[step("x", 9)]).await.unwrap());
    // The end replaces it, and a late write changes nothing.
    store.complete("a", &end(&run.run_id, RunStatus::Complete)).await.unwrap();
    assert!(!store.save_progress("a", &run.run_id, &[step("a", 99)]).await.unwrap());
    let (rec, steps) = store.get(&run.run_id).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), steps), ("COMPLETE", end(&run.run_id, RunStatus::Complete).steps));
    assert!(!store.save_progress("a", "nope", &[]).await.unwrap());
}

async fn completes_idempotently(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Skip, "a")).await.unwrap();
    let run = store.claim(&claim("a", &["p"], 1)).await.unwrap().runs.remove(0);
    for _ in 0..2 {
        assert_eq!(store.complete("a", &end(&run.run_id, RunStatus::Complete)).await.unwrap(), Completion::Recorded);
    }
    assert_eq!(store.complete("b", &end(&run.run_id, RunStatus::Error)).await.unwrap(), Completion::Discarded);
    let (rec, steps) = store.get(&run.run_id).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.node.as_deref(), steps.len()), ("COMPLETE", Some("a"), 2));
}

async fn completes_a_batch_with_an_answer_per_end(store: Dyn) {
    store.fire(&fire("p", at(0), Overlap::Allow, "a")).await.unwrap();
    store.fire(&fire("p", at(1), Overlap::Allow, "a")).await.unwrap();
    let runs = store.claim(&claim("a", &["p"], 2)).await.unwrap().runs;
    assert_eq!(runs.len(), 2);
    let ends = [
        end(&runs[0].run_id, RunStatus::Complete),
        end("no-such-run", RunStatus::Complete),
        end(&runs[1].run_id, RunStatus::Error),
    ];
    let outcomes = store.complete_many("a", &ends).await;
    assert!(matches!(outcomes[0], Ok(Completion::Recorded)), "{outcomes:?}");
    assert!(matches!(&outcomes[1], Err(store::StoreError::UnknownRun(id)) if id == "no-such-run"), "{outcomes:?}");
    assert!(matches!(outcomes[2], Ok(Completion::Recorded)), "{outcomes:?}");
    assert_eq!(status_of(&store, &runs[0].run_id).await, "COMPLETE");
    assert_eq!(status_of(&store, &runs[1].run_id).await, "ERROR");
    // Another node's batch for the same runs is discarded, end by end.
    let late = store.complete_many("b", &[end(&runs[0].run_id, RunStatus::Error)]).await;
    assert!(matches!(late[0], Ok(Completion::Discarded)), "{late:?}");
    assert_eq!(status_of(&store, &runs[0].run_id).await, "COMPLETE");
}

async fn keeps_schedule_state_monotonic(store: Dyn) {
    store.save_last_fired(&[("p".into(), "s1".into(), at(10)), ("p".into(), "s2".into(), at(5))]).await.unwrap();
    store.save_last_fired(&[("p".into(), "s1".into(), at(3)), ("p".into(), "s2".into(), at(6))]).await.unwrap();
    let state = store.last_fired("p").await.unwrap();
    assert_eq!((state["s1"], state["s2"]), (at(10), at(6)));
    store.retain_schedules("p", &["s2".to_owned()]).await.unwrap();
    assert_eq!(store.last_fired("p").await.unwrap().keys().collect::<Vec<_>>(), ["s2"]);
    store.retain_schedules("p", &[]).await.unwrap();
    assert!(store.last_fired("p").await.unwrap().is_empty());
}

async fn manual_runs_carry_overrides(store: Dyn) {
    let run = NewRun {
        run_id: id(),
        process: "p".into(),
        trigger: Trigger::Manual,
        overrides: vec![("limit".into(), "5".into()), ("name".into(), "a=b".into())],
        content_hash: Some("h1".into()),
        queued_at: Utc::now(),
        start_document: None,
        rerun_of: None,
    };
    store.enqueue(&run).await.unwrap();
    assert!(matches!(store.enqueue(&run).await, Err(StoreError::DuplicateRun(_))));
    assert_eq!(status_of(&store, &run.run_id).await, "QUEUED");
    let claimed = store.claim(&claim("a", &["p"], 1)).await.unwrap().runs;
    assert_eq!(claimed[0].overrides, run.overrides);
    assert_eq!(claimed[0].trigger, Trigger::Manual);
    assert_eq!(claimed[0].scheduled_for, None);
}

async fn discards_queued_runs_with_a_reason(store: Dyn) {
    store.fire(&fire("gone", at(0), Overlap::Queue, "a")).await.unwrap();
    store.fire(&fire("kept", at(0), Overlap::Queue, "a")).await.unwrap();
    assert_eq!(store.discard_queued(&["gone".to_owned()], "process no longer served").await.unwrap(), 1);
    let runs = store.list(&ListFilter::default()).await.unwrap();
    let gone = runs.iter().find(|r| r.process == "gone").unwrap();
    assert_eq!((gone.status.as_str(), gone.error.as_deref()), ("DISCARDED", Some("process no longer served")));
    assert_eq!(runs.iter().find(|r| r.process == "kept").unwrap().status, "QUEUED");
}

async fn keeps_run_logs(store: Dyn) {
    let run = id();
    store.record_start(&start(&run, "p", at(0))).await.unwrap();
    for (i, message) in ["claimed", "lease lost"].iter().enumerate() {
        let line = LogLine { at: at(i as i64), level: "warn".into(), node: "n1".into(), message: (*message).into() };
        store.append_logs(&run, &[line]).await.unwrap();
    }
    store.append_logs(&run, &[]).await.unwrap();
    // A batch keeps its order, after what was there.
    let batch: Vec<LogLine> = (0..300)
        .map(|i| LogLine { at: at(2), level: "info".into(), node: "n2".into(), message: format!("line {i}") })
        .collect();
    store.append_logs(&run, &batch).await.unwrap();
    let lines = store.logs(&run).await.unwrap();
    assert_eq!(lines.len(), 302);
    assert_eq!(lines[..2].iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["claimed", "lease lost"]);
    assert_eq!(lines[1].at, at(1));
    let batched: Vec<&str> = lines[2..].iter().map(|l| l.message.as_str()).collect();
    assert_eq!(batched, batch.iter().map(|l| l.message.as_str()).collect::<Vec<_>>());
    assert_eq!((lines[301].node.as_str(), lines[301].level.as_str()), ("n2", "info"));
}

async fn prunes_ended_runs(store: Dyn) {
    let old = id();
    let going = id();
    store.record_start(&start(&old, "p", at(0))).await.unwrap();
    store.record_end(&end(&old, RunStatus::Complete)).await.unwrap();
    store.record_start(&start(&going, "p", at(1))).await.unwrap();
    assert_eq!(store.prune_before(at(50)).await.unwrap(), 1);
    assert!(store.get(&old).await.unwrap().is_none());
    assert!(store.get(&going).await.unwrap().is_some());
}

/// Nodes starting at once on an empty database migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_cold_start_on_an_empty_database() {
    let Some(db) = pg::TestDb::create("coldstart").await else { return };
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move { store::PgStore::connect(&url).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

/// A store of stepwise before the run store (schema version 1) keeps its runs.
#[test]
fn sqlite_migrates_a_version_1_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0001_initial.sql")).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (run_id, process, trigger, started_at, ended_at, status, documents_in)
                 VALUES ('r1', 'p', 'schedule', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z', 'COMPLETE', 4);
             INSERT INTO run_steps VALUES ('r1', 0, 'a', 4, 4, 0, 9);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (run, steps) = runtime.block_on(store.get("r1")).unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.documents_in, steps.len()), ("COMPLETE", 4, 1));
    assert_eq!(steps[0].millis, 9);
}

fn limits(windows: &[(u32, Duration)], in_flight_cap: Duration) -> RateLimits {
    RateLimits { windows: windows.to_vec(), min_interval: Duration::ZERO, margin: Duration::ZERO, in_flight_cap }
}

const MINUTE: Duration = Duration::from_secs(60);

/// Nodes reserving one budget at once get no more slots than its window holds; the others are
/// told how long to wait (never more than the window); pauses and exhaustion reach everyone;
/// budgets are independent. A store that does not keep budgets (SQLite) says so.
async fn shares_rate_budgets_between_nodes(store: Dyn) {
    let three = limits(&[(3, MINUTE), (100, Duration::from_secs(3600))], MINUTE);
    if !store.shares_rate_budgets() {
        let refused = store.reserve_rate("svc h1", &three).await;
        assert!(matches!(refused, Err(StoreError::Unsupported(_))), "{refused:?}");
        return;
    }
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (store, three) = (store.clone(), three.clone());
            tokio::spawn(async move { store.reserve_rate("svc h1", &three).await.unwrap() })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Reservation::Granted(slot) => granted.push(slot),
            Reservation::Wait(wait) => assert!(wait > Duration::ZERO && wait <= MINUTE, "{wait:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(granted.len(), 3, "{granted:?}");
    for slot in &granted {
        store.finish_rate("svc h1", *slot).await.unwrap();
    }
    // Answered slots still fill the window.
    assert!(matches!(store.reserve_rate("svc h1", &three).await.unwrap(), Reservation::Wait(_)));
    // Another token's budget is its own.
    assert!(matches!(store.reserve_rate("svc h2", &three).await.unwrap(), Reservation::Granted(_)));

    let open = limits(&[(100, MINUTE)], MINUTE);
    store.hold_rate("svc h3", &RateHold::Pause(MINUTE)).await.unwrap();
    match store.reserve_rate("svc h3", &open).await.unwrap() {
        Reservation::Wait(wait) => assert!(wait > Duration::from_secs(50) && wait <= MINUTE, "{wait:?}"),
        other => panic!("a paused budget gave {other:?}"),
    }
    let reason = "the daily quota is used up".to_owned();
    store.hold_rate("svc h4", &RateHold::Exhaust(MINUTE, reason.clone())).await.unwrap();
    assert_eq!(store.reserve_rate("svc h4", &open).await.unwrap(), Reservation::Exhausted(reason));
    assert!(matches!(store.reserve_rate("svc h5", &open).await.unwrap(), Reservation::Granted(_)));
}

/// A slot counts in every window while its request is in flight, then from its answer; a slot
/// left in flight (its node died) stops counting after the cap.
async fn counts_rate_slots_in_flight_until_answered(store: Dyn) {
    let short = Duration::from_millis(100);
    let capped = limits(&[(1, short)], MINUTE);
    if !store.shares_rate_budgets() {
        assert!(matches!(store.finish_rate("svc f", 1).await, Err(StoreError::Unsupported(_))));
        return;
    }
    let Reservation::Granted(slot) = store.reserve_rate("svc f1", &capped).await.unwrap() else { panic!("no slot") };
    tokio::time::sleep(short * 3).await;
    assert!(matches!(store.reserve_rate("svc f1", &capped).await.unwrap(), Reservation::Wait(_)), "in flight");
    store.finish_rate("svc f1", slot).await.unwrap();
    tokio::time::sleep(short * 3).await;
    assert!(matches!(store.reserve_rate("svc f1", &capped).await.unwrap(), Reservation::Granted(_)), "answered");

    let uncapped = limits(&[(1, short)], Duration::ZERO);
    assert!(matches!(store.reserve_rate("svc f2", &uncapped).await.unwrap(), Reservation::Granted(_)));
    tokio::time::sleep(short * 3).await;
    assert!(matches!(store.reserve_rate("svc f2", &uncapped).await.unwrap(), Reservation::Granted(_)), "past the cap");
}

fn token(name: &str, hash: &str, role: Role) -> NewToken {
    NewToken { name: name.to_owned(), hash: hash.to_owned(), role, view_data: role == Role::Admin, created_at: at(10) }
}

async fn keeps_tokens_by_hash(store: Dyn) {
    store.create_token(&token("ci", "h1", Role::Operator)).await.unwrap();
    store.create_token(&token("alice", "h2", Role::Admin)).await.unwrap();
    let err = store.create_token(&token("ci", "h3", Role::Viewer)).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateToken(ref name) if name == "ci"), "{err}");
    assert_eq!(store.authenticate("nope", at(20)).await.unwrap(), None);
    let found = store.authenticate("h1", at(20)).await.unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.role, found.view_data), ("ci", Role::Operator, false));
    assert_eq!(found.last_used_at, Some(at(20)));
    let listed = store.tokens().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alice", "ci"]);
    assert_eq!(listed[0].last_used_at, None);
    assert_eq!(listed[1].last_used_at, Some(at(20)));
    assert_eq!(listed[1].created_at, at(10));
    assert_eq!(store.revoke_token("ci", true).await.unwrap(), Revoked::Revoked);
    assert_eq!(store.revoke_token("ci", false).await.unwrap(), Revoked::NoSuchToken);
    assert_eq!(store.authenticate("h1", at(30)).await.unwrap(), None);
}

async fn creates_a_first_token_once(store: Dyn) {
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create_first_token(&token("admin", &format!("h{i}"), Role::Admin)).await })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap() {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.tokens().await.unwrap().len(), 1);
    assert!(!store.create_first_token(&token("other", "hx", Role::Admin)).await.unwrap());
}

async fn keeps_an_audit_trail(store: Dyn) {
    for (i, action) in ["pause", "run_now", "cancel"].into_iter().enumerate() {
        let entry = AuditEntry {
            at: at(100 + i as i64),
            actor: "ci".to_owned(),
            action: action.to_owned(),
            target: "p".to_owned(),
            detail: (action == "run_now").then(|| "run r1".to_owned()),
        };
        store.record_audit(&entry).await.unwrap();
    }
    let trail = store.audit(2).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["cancel", "run_now"]);
    assert_eq!(trail[1].detail.as_deref(), Some("run r1"));
    assert_eq!(trail[1].at, at(101));
    assert_eq!(store.audit(100).await.unwrap().len(), 3);
}

async fn pauses_and_resumes_processes(store: Dyn) {
    store.set_paused("b", Some("ci"), at(5)).await.unwrap();
    store.set_paused("a", Some("alice"), at(6)).await.unwrap();
    store.set_paused("a", Some("bob"), at(7)).await.unwrap();
    let paused = store.paused().await.unwrap();
    let seen: Vec<(&str, &str)> = paused.iter().map(|p| (p.process.as_str(), p.paused_by.as_str())).collect();
    assert_eq!(seen, [("a", "alice"), ("b", "ci")]);
    assert_eq!(paused[0].paused_at, at(6));
    store.set_paused("a", None, at(8)).await.unwrap();
    store.set_paused("never", None, at(8)).await.unwrap();
    let left: Vec<String> = store.paused().await.unwrap().into_iter().map(|p| p.process).collect();
    assert_eq!(left, ["b"]);
}

fn document(step: &str, seq: u64, data: &[u8]) -> RecordedDocument {
    let properties = [("source".to_owned(), format!("{step}-{seq}"))].into_iter().collect();
    RecordedDocument { step: step.to_owned(), seq, properties, data: data.to_vec() }
}

async fn keeps_recorded_documents_until_they_expire(store: Dyn) {
    let (kept, gone) = (id(), id());
    for run in [&kept, &gone] {
        store.record_start(&start(run, "p", at(0))).await.unwrap();
    }
    let documents: Vec<_> = (1..=5).map(|i| document("map", i, format!("{{\"n\":{i}}}").as_bytes())).collect();
    store.save_documents(&kept, DocumentChunks::from_documents(&documents), at(1000)).await.unwrap();
    store
        .save_documents(&kept, DocumentChunks::from_documents(&[document("start", 1, &[0xff, 0x00])]), at(1000))
        .await
        .unwrap();
    let many: Vec<_> = (1..=300).map(|i| document("map", i, b"x")).collect();
    store.save_documents(&gone, DocumentChunks::from_documents(&many), at(100)).await.unwrap();
    let counts = store.document_counts(&kept).await.unwrap();
    let counts: Vec<(&str, u64)> = counts.iter().map(|c| (c.step.as_str(), c.count)).collect();
    assert_eq!(counts, [("map", 5), ("start", 1)]);
    let page = store.documents(&kept, "map", 1, 3).await.unwrap();
    assert_eq!(page, documents[1..4].to_vec());
    assert_eq!(store.documents(&kept, "start", 0, 10).await.unwrap()[0].data, [0xff, 0x00]);
    assert_eq!(store.documents(&gone, "map", 254, 4).await.unwrap(), many[254..258].to_vec(), "across chunks");
    assert_eq!(store.prune_documents(at(500)).await.unwrap(), 300);
    assert!(store.document_counts(&gone).await.unwrap().is_empty());
    assert_eq!(store.document_counts(&kept).await.unwrap().len(), 2);
    // Pruning a run takes its documents with it.
    store.record_end(&end(&kept, RunStatus::Complete)).await.unwrap();
    store.prune_before(at(10)).await.unwrap();
    assert!(store.document_counts(&kept).await.unwrap().is_empty());
}

async fn keeps_sessions_while_their_token_lives(store: Dyn) {
    store.create_token(&token("ci", "h1", Role::Operator)).await.unwrap();
    store.open_session("s1", "ci", at(100)).await.unwrap();
    store.open_session("s2", "ci", at(50)).await.unwrap();
    assert_eq!(store.session("s1", at(10)).await.unwrap().map(|t| t.name), Some("ci".to_owned()));
    let used = store.tokens().await.unwrap().into_iter().find(|t| t.name == "ci").unwrap();
    assert_eq!(used.last_used_at, Some(at(10)), "using a session is using its token");
    // To the minute: a use within it writes nothing; one after it does.
    store.session("s1", at(40)).await.unwrap().unwrap();
    assert_eq!(store.tokens().await.unwrap()[0].last_used_at, Some(at(10)));
    store.session("s1", at(70)).await.unwrap().unwrap();
    assert_eq!(store.tokens().await.unwrap()[0].last_used_at, Some(at(70)));
    assert_eq!(store.session("s2", at(60)).await.unwrap(), None, "expired");
    assert_eq!(store.session("nope", at(10)).await.unwrap(), None);
    store.close_session("s1", at(10)).await.unwrap();
    assert_eq!(store.session("s1", at(10)).await.unwrap(), None, "closed");
    store.open_session("s3", "ci", at(100)).await.unwrap();
    assert_eq!(store.revoke_token("ci", false).await.unwrap(), Revoked::Revoked);
    assert_eq!(store.session("s3", at(10)).await.unwrap(), None, "its token was revoked");
}

async fn keeps_the_overrides_of_started_runs(store: Dyn) {
    let run = id();
    let mut started = start(&run, "p", at(0));
    started.overrides = vec![("limit".to_owned(), "5".to_owned())];
    store.record_start(&started).await.unwrap();
    assert_eq!(store.run_overrides(&run).await.unwrap(), Some(started.overrides.clone()));
    assert_eq!(store.run_overrides("nope").await.unwrap(), None);
}

/// Free text comes from documents and servers (a run's error, its log, a cancel's reason, the
/// audit's detail) and may hold a NUL character, which PostgreSQL's text refuses: every store
/// keeps the text with U+FFFD in its place rather than losing the write.
async fn keeps_free_text_with_a_nul_character(store: Dyn) {
    let nul = "bad\0value";
    let kept = "bad\u{FFFD}value";
    let run = id();
    store.record_start(&start(&run, "p", at(0))).await.unwrap();
    let line = LogLine { at: at(1), level: "warn".into(), node: "n1".into(), message: nul.into() };
    store.append_logs(&run, &[line]).await.unwrap();
    let mut ended = end(&run, RunStatus::Error);
    ended.error = Some(nul.to_owned());
    store.record_end(&ended).await.unwrap();
    let (rec, _) = store.get(&run).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.error.as_deref()), ("ERROR", Some(kept)));
    assert_eq!(store.logs(&run).await.unwrap()[0].message, kept);

    store.fire(&fire("q", at(0), Overlap::Allow, "a")).await.unwrap();
    let queued = store.list(&ListFilter { status: Some("QUEUED".into()), ..ListFilter::default() }).await.unwrap();
    assert_eq!(
        store.request_cancel(&queued[0].run_id, nul, &cancel_audit(&queued[0].run_id)).await.unwrap(),
        CancelOutcome::Discarded
    );
    assert_eq!(store.get(&queued[0].run_id).await.unwrap().unwrap().0.error.as_deref(), Some(kept));

    let entry = AuditEntry {
        at: at(2),
        actor: "ci".into(),
        action: "cancel".into(),
        target: nul.into(),
        detail: Some(nul.into()),
    };
    store.record_audit(&entry).await.unwrap();
    let trail = store.audit(1).await.unwrap();
    assert_eq!((trail[0].target.as_str(), trail[0].detail.as_deref()), (kept, Some(kept)));
}

async fn keeps_an_admin_token_when_asked_even_under_concurrency(store: Dyn) {
    for round in 0..10 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        store.create_token(&token(&a, &format!("ha{round}"), Role::Admin)).await.unwrap();
        store.create_token(&token(&b, &format!("hb{round}"), Role::Admin)).await.unwrap();
        // Two admins revoke each other at once: one of them stays.
        let (s1, s2) = (store.clone(), store.clone());
        let (a2, b2) = (a.clone(), b.clone());
        let first = tokio::spawn(async move { s1.revoke_token(&a2, true).await.unwrap() });
        let second = tokio::spawn(async move { s2.revoke_token(&b2, true).await.unwrap() });
        let mut outcomes = [first.await.unwrap(), second.await.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [Revoked::LastAdmin, Revoked::Revoked], "round {round}");
        let admins: Vec<String> = store.tokens().await.unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(admins.len(), 1, "{admins:?}");
        // Without asking, the last one goes too (`stepwise token revoke`).
        assert_eq!(store.revoke_token(&admins[0], false).await.unwrap(), Revoked::Revoked);
    }
    // A viewer is no admin to keep.
    store.create_token(&token("v", "hv", Role::Viewer)).await.unwrap();
    assert_eq!(store.revoke_token("v", true).await.unwrap(), Revoked::Revoked);
}
