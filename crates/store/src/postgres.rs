//! The run store on PostgreSQL, shared by the nodes of a cluster.
//!
//! * The schema is the migration files of `migrations/postgres/`, applied by sqlx's migrator,
//!   which holds an advisory lock while it runs: nodes starting at once on an empty database
//!   migrate it once.
//! * A fire is one row of `fires`, whose primary key `(process, schedule, instant)` makes a
//!   second record of it impossible whatever the nodes' clocks and timing.
//! * Overlap decisions (a fire, the claim of a run that must wait for its process) of one
//!   process are serialized by a transaction-scoped advisory lock on the process name.
//! * Queued runs are claimed with `FOR UPDATE SKIP LOCKED`, so nodes never wait for each other
//!   and never take the same run.
//! * Leases are computed and compared with the database's clock (`now()`), never a node's.
//! * The pool reconnects by itself: a connection lost (database restart,
//!   `pg_terminate_backend`) fails the call that used it, and the next call gets a new one.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

mod access;
mod documents;

use crate::access::{AuditEntry, NewToken, Paused, Revoked, TokenRecord};
use crate::documents::{DocumentChunks, RecordedDocument, StepDocuments};
use crate::model::{
    CancelOutcome, Claim, Claimed, ClaimedRun, Completion, Fire, FireOutcome, ListFilter, LogLine, NewRun, Overlap,
    Renewed, RunEnd, RunRecord, RunStart, StepRecord, Trigger,
};
use crate::rate::{RateHold, RateLimits, Reservation};
use crate::{Store, StoreError, redact_url};

/// How long opening the store waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a first connection failed, with what to do about a password the server wants.
struct Unreachable(sqlx::Error);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.write_str(&text)?;
        if text.contains("password") {
            f.write_str(" (give the password in PGPASSWORD, or in the URL as postgres://USER:PASSWORD@HOST:PORT/DB)")?;
        }
        Ok(())
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The first key of the advisory locks that serialize one process's overlap decisions.
const PROCESS_LOCK_SPACE: i32 = 0x5354_5057; // "STPW"

const RUN_COLUMNS: &str = "run_id, process, trigger, scheduled_for, node, queued_at, sort_at AS started_at, ended_at, status, \
                           documents_in, documents_out, documents_error, error, content_hash, \
                           CASE WHEN status = 'INPROCESS' THEN cancel_requested END AS cancel_requested, rerun_of";

/// The PostgreSQL run store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    url: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact_url(url);
        let connect_err = |e: &dyn fmt::Display| StoreError::Connect { url: shown.clone(), message: e.to_string() };
        let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| connect_err(&e))?;
        // Nodes name their connections (`?application_name=` in the URL wins).
        let options =
            if options.get_application_name().is_some() { options } else { options.application_name("stepwise") };
        // One connection first: the pool retries until its timeout and then says only that it
        // timed out, not why (refused, no such database, the password).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::ConnectOptions::connect(&options))
            .await
            .map_err(|_| connect_err(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| connect_err(&Unreachable(e)))?;
        let _ = sqlx::Connection::close(first).await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| connect_err(&e))?;
        MIGRATOR.run(&pool).await.map_err(|e| connect_err(&e))?;
        Ok(PgStore { pool, url: shown })
    }

    /// The connection pool (tests use it to reach the database directly).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn lock_process(tx: &mut Transaction<'_, Postgres>, process: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(PROCESS_LOCK_SPACE)
        .bind(process)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn duplicate_or(error: sqlx::Error, run_id: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::DuplicateRun(run_id.to_owned()),
        _ => StoreError::Postgres(error),
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn run_from_row(row: &PgRow) -> Result<RunRecord, sqlx::Error> {
    let trigger: String = row.try_get("trigger")?;
    Ok(RunRecord {
        run_id: row.try_get("run_id")?,
        process: row.try_get("process")?,
        trigger: trigger.parse().unwrap_or(Trigger::Manual),
        scheduled_for: row.try_get("scheduled_for")?,
        node: row.try_get("node")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        status: row.try_get("status")?,
        documents_in: uint(row.try_get("documents_in")?),
        documents_out: uint(row.try_get("documents_out")?),
        documents_error: uint(row.try_get("documents_error")?),
        error: row.try_get("error")?,
        content_hash: row.try_get("content_hash")?,
        cancel_requested: row.try_get("cancel_requested")?,
        rerun_of: row.try_get("rerun_of")?,
    })
}

/// Writes a run's end and its steps; with `node`, only while the node holds the run.
async fn write_end(tx: &mut Transaction<'_, Postgres>, end: &RunEnd, node: Option<&str>) -> Result<u64, StoreError> {
    let guard = if node.is_some() { " AND node = $8 AND status = 'INPROCESS'" } else { "" };
    let sql = format!(
        "UPDATE runs SET ended_at = $2, status = $3, documents_in = $4, documents_out = $5,
             documents_error = $6, error = $7, owner = NULL, lease_until = NULL,
             closed_by = COALESCE($8, closed_by), start_data = NULL, response = $9
         WHERE run_id = $1{guard}"
    );
    let updated = sqlx::query(&sql)
        .bind(&end.run_id)
        .bind(end.ended_at)
        .bind(end.status.as_str())
        .bind(int(end.documents_in))
        .bind(int(end.documents_out))
        .bind(int(end.documents_error))
        .bind(end.error.as_deref().map(crate::model::text))
        .bind(node)
        .bind(crate::model::kept_response(end))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(0);
    }
    write_steps(tx, &end.run_id, &end.steps).await?;
    Ok(updated)
}

/// Replaces the step rows of `run_id` (its progress while it goes, its counts at the end).
async fn write_steps(
    tx: &mut Transaction<'_, Postgres>,
    run_id: &str,
    steps: &[StepRecord],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM run_steps WHERE run_id = $1").bind(run_id).execute(&mut **tx).await?;
    for (ordinal, step) in steps.iter().enumerate() {
        sqlx::query(
            "INSERT INTO run_steps (run_id, ordinal, step, documents_in, documents_out, documents_error, millis)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run_id)
        .bind(i32::try_from(ordinal).unwrap_or(i32::MAX))
        .bind(&step.step)
        .bind(int(step.documents_in))
        .bind(int(step.documents_out))
        .bind(int(step.documents_error))
        .bind(int(step.millis))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn is_shared(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn record_start(&self, run: &RunStart) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, status, node, lease_until, overrides)
             VALUES ($1, $2, $3, $4, $5, 'INPROCESS', $6,
                     CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $7::float8) END, $8)",
        )
        .bind(&run.run_id)
        .bind(&run.process)
        .bind(run.trigger.as_str())
        .bind(run.scheduled_for)
        .bind(run.started_at)
        .bind(&run.node)
        .bind(run.lease.map(secs))
        .bind(crate::model::overrides_json(&run.overrides))
        .execute(&self.pool)
        .await
        .map_err(|e| duplicate_or(e, &run.run_id))?;
        Ok(())
    }

    async fn record_end(&self, end: &RunEnd) -> Result<(), StoreError> {
        if !end.status.is_final() {
            return Err(StoreError::InvalidStatus(end.status.to_string()));
        }
        let mut tx = self.pool.begin().await?;
        if write_end(&mut tx, end, None).await? == 0 {
            return Err(StoreError::UnknownRun(end.run_id.clone()));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_discarded(&self, run: &RunStart, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, ended_at, status, node, error)
             VALUES ($1, $2, $3, $4, $5, $5, 'DISCARDED', $6, $7)",
        )
        .bind(&run.run_id)
        .bind(&run.process)
        .bind(run.trigger.as_str())
        .bind(run.scheduled_for)
        .bind(run.started_at)
        .bind(&run.node)
        .bind(crate::model::text(reason))
        .execute(&self.pool)
        .await
        .map_err(|e| duplicate_or(e, &run.run_id))?;
        Ok(())
    }

    async fn mark_abandoned_as_aborted(&self) -> Result<usize, StoreError> {
        // Every run in a shared store has a lease: expire_leases closes abandoned ones.
        Ok(0)
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, StoreError> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE ($1::text IS NULL OR process = $1)");
        sql.push_str(" AND ($2::text IS NULL OR status = $2) AND ($4::text IS NULL OR trigger = $4)");
        sql.push_str(" AND ($5::timestamptz IS NULL OR sort_at >= $5) AND ($6::timestamptz IS NULL OR sort_at < $6)");
        sql.push_str(" ORDER BY sort_at DESC NULLS LAST, run_id DESC LIMIT $3");
        let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows = sqlx::query(&sql)
            .bind(&filter.process)
            .bind(&filter.status)
            .bind(limit)
            .bind(filter.trigger.map(|t| t.as_str()))
            .bind(filter.since)
            .bind(filter.until)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(run_from_row).collect::<Result<_, _>>()?)
    }

    async fn get(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<StepRecord>)>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run = run_from_row(&row)?;
        let steps = sqlx::query(
            "SELECT step, documents_in, documents_out, documents_error, millis
             FROM run_steps WHERE run_id = $1 ORDER BY ordinal",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(StepRecord {
                step: row.try_get("step")?,
                documents_in: uint(row.try_get("documents_in")?),
                documents_out: uint(row.try_get("documents_out")?),
                documents_error: uint(row.try_get("documents_error")?),
                millis: uint(row.try_get("millis")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((run, steps)))
    }

    async fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let n = sqlx::query("DELETE FROM runs WHERE sort_at < $1 AND status NOT IN ('INPROCESS', 'QUEUED')")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn last_fired(&self, process: &str) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows = sqlx::query("SELECT schedule, last_fired FROM schedule_state WHERE process = $1")
            .bind(process)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("schedule")?, row.try_get("last_fired")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn save_last_fired(&self, entries: &[(String, String, DateTime<Utc>)]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let processes: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let schedules: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
        let instants: Vec<DateTime<Utc>> = entries.iter().map(|e| e.2).collect();
        // One statement: the rows are taken in a stable order, so concurrent nodes never
        // deadlock on them. Duplicates within one call keep the latest instant.
        sqlx::query(
            "INSERT INTO schedule_state (process, schedule, last_fired)
             SELECT process, schedule, max(instant)
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS e(process, schedule, instant)
             GROUP BY process, schedule ORDER BY process, schedule
             ON CONFLICT (process, schedule) DO UPDATE SET last_fired = excluded.last_fired
             WHERE excluded.last_fired > schedule_state.last_fired",
        )
        .bind(&processes)
        .bind(&schedules)
        .bind(&instants)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retain_schedules(&self, process: &str, keep: &[String]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM schedule_state WHERE process = $1 AND NOT (schedule = ANY($2))")
            .bind(process)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn fire(&self, fire: &Fire) -> Result<FireOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_process(&mut tx, &fire.process).await?;
        let inserted = sqlx::query(
            "INSERT INTO fires (process, schedule, instant, run_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&fire.process)
        .bind(&fire.schedule)
        .bind(fire.instant)
        .bind(&fire.run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(FireOutcome::Duplicate);
        }
        let (running, waiting): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'INPROCESS'), count(*) FILTER (WHERE status = 'QUEUED')
             FROM runs WHERE process = $1 AND status IN ('INPROCESS', 'QUEUED')",
        )
        .bind(&fire.process)
        .fetch_one(&mut *tx)
        .await?;
        let outcome = crate::model::decide_fire(fire, uint(running), uint(waiting));
        match &outcome {
            FireOutcome::Queued => {
                let overlap = if fire.catch_up { Overlap::Queue } else { fire.overlap };
                sqlx::query(
                    "INSERT INTO runs (run_id, process, trigger, scheduled_for, queued_at, status, content_hash, overlap)
                     VALUES ($1, $2, 'schedule', $3, $4, 'QUEUED', $5, $6)",
                )
                .bind(&fire.run_id)
                .bind(&fire.process)
                .bind(fire.instant)
                .bind(fire.at)
                .bind(&fire.content_hash)
                .bind(overlap.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| duplicate_or(e, &fire.run_id))?;
            }
            FireOutcome::Discarded(reason) => {
                sqlx::query(
                    "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, ended_at, status,
                                       content_hash, node, error)
                     VALUES ($1, $2, 'schedule', $3, $4, $4, 'DISCARDED', $5, $6, $7)",
                )
                .bind(&fire.run_id)
                .bind(&fire.process)
                .bind(fire.instant)
                .bind(fire.at)
                .bind(&fire.content_hash)
                .bind(&fire.node)
                .bind(crate::model::text(reason))
                .execute(&mut *tx)
                .await
                .map_err(|e| duplicate_or(e, &fire.run_id))?;
            }
            FireOutcome::Duplicate => {}
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn enqueue(&self, run: &NewRun) -> Result<(), StoreError> {
        crate::model::check_start_document(run)?;
        let start = run.start_document.as_ref();
        sqlx::query(
            "INSERT INTO runs (run_id, process, trigger, queued_at, status, content_hash, overlap, overrides,
                               start_data, start_properties, rerun_of)
             VALUES ($1, $2, $3, $4, 'QUEUED', $5, 'allow', $6, $7, $8, $9)",
        )
        .bind(&run.run_id)
        .bind(&run.process)
        .bind(run.trigger.as_str())
        .bind(run.queued_at)
        .bind(&run.content_hash)
        .bind(crate::model::overrides_json(&run.overrides))
        .bind(start.map(|d| d.data.as_slice()))
        .bind(start.and_then(|d| crate::model::overrides_json(&d.properties)))
        .bind(&run.rerun_of)
        .execute(&self.pool)
        .await
        .map_err(|e| duplicate_or(e, &run.run_id))?;
        Ok(())
    }

    async fn response(&self, run_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let found: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT response FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.flatten())
    }

    async fn claim(&self, claim: &Claim) -> Result<Claimed, StoreError> {
        let names: Vec<&str> = claim.processes.iter().map(|(n, _)| n.as_str()).collect();
        let held: HashMap<&str, &str> = claim.processes.iter().map(|(n, h)| (n.as_str(), h.as_str())).collect();
        let mut tx = self.pool.begin().await?;
        // Four statements whatever the number of runs, so that the transaction (and the process
        // locks it holds, which fires of those processes wait for) stays short.
        let rows = sqlx::query(
            "SELECT run_id, process, trigger, scheduled_for, overrides, overlap, content_hash
             FROM runs WHERE status = 'QUEUED' AND process = ANY($1)
             ORDER BY queued_at, run_id LIMIT 200 FOR UPDATE SKIP LOCKED",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Claimed::default();
        let mut candidates = Vec::new();
        for row in &rows {
            let run_id: String = row.try_get("run_id")?;
            let process: String = row.try_get("process")?;
            let Some(hash) = held.get(process.as_str()) else {
                continue;
            };
            let wanted: Option<String> = row.try_get("content_hash")?;
            if let Some(wanted) = wanted.filter(|w| w != hash) {
                claimed.other_version.push((run_id, process, wanted));
                continue;
            }
            let overlap = Overlap::parse(row.try_get::<String, _>("overlap")?.as_str());
            let trigger: String = row.try_get("trigger")?;
            let overrides: Option<String> = row.try_get("overrides")?;
            let run = ClaimedRun {
                run_id,
                process,
                trigger: trigger.parse().unwrap_or(Trigger::Manual),
                scheduled_for: row.try_get("scheduled_for")?,
                overrides: crate::model::parse_overrides(overrides.as_deref()),
                start_document: None,
            };
            candidates.push((run, overlap));
        }
        // A run that must wait for its process needs the process's lock (never waited for: two
        // claims taking locks in different orders would deadlock; a process whose lock is taken
        // is tried on the next round) and no run of the process going.
        let waiting: Vec<&str> = {
            let set: HashSet<&str> =
                candidates.iter().filter(|(_, o)| *o != Overlap::Allow).map(|(r, _)| r.process.as_str()).collect();
            set.into_iter().collect()
        };
        let mut free: HashSet<String> = HashSet::new();
        if !waiting.is_empty() {
            let locked: Vec<String> = sqlx::query_scalar(
                "SELECT p FROM unnest($2::text[]) AS p WHERE pg_try_advisory_xact_lock($1, hashtext(p))",
            )
            .bind(PROCESS_LOCK_SPACE)
            .bind(&waiting)
            .fetch_all(&mut *tx)
            .await?;
            let busy: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT process FROM runs WHERE status = 'INPROCESS' AND process = ANY($1)",
            )
            .bind(&locked)
            .fetch_all(&mut *tx)
            .await?;
            free = locked.into_iter().filter(|p| !busy.contains(p)).collect();
        }
        for (run, overlap) in candidates {
            if claimed.runs.len() >= claim.max {
                break;
            }
            // A run taken makes its process busy for the runs that must wait.
            if !free.remove(&run.process) && overlap != Overlap::Allow {
                continue;
            }
            claimed.runs.push(run);
        }
        if !claimed.runs.is_empty() {
            let ids: Vec<&str> = claimed.runs.iter().map(|r| r.run_id.as_str()).collect();
            // Started once the busy check above saw the process free, not when the node asked:
            // a run of the process that ended meanwhile on another node ended before this.
            // The start documents of webhook runs come back with the claim.
            let starts = sqlx::query(
                "UPDATE runs SET status = 'INPROCESS', node = $2, started_at = GREATEST($3, clock_timestamp()),
                     lease_until = now() + make_interval(secs => $4)
                 WHERE run_id = ANY($1)
                 RETURNING run_id, start_data, start_properties",
            )
            .bind(&ids)
            .bind(&claim.node)
            .bind(claim.now)
            .bind(secs(claim.lease))
            .fetch_all(&mut *tx)
            .await?;
            for row in starts {
                let run_id: String = row.try_get("run_id")?;
                let data: Option<Vec<u8>> = row.try_get("start_data")?;
                let properties: Option<String> = row.try_get("start_properties")?;
                if let Some(run) = claimed.runs.iter_mut().find(|r| r.run_id == run_id) {
                    run.start_document = crate::model::start_document(data, properties.as_deref());
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn renew(&self, node: &str, run_ids: &[String], lease: Duration) -> Result<Renewed, StoreError> {
        if run_ids.is_empty() {
            return Ok(Renewed::default());
        }
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "UPDATE runs SET lease_until = now() + make_interval(secs => $3)
             WHERE run_id = ANY($1) AND node = $2 AND status = 'INPROCESS' RETURNING run_id, cancel_requested",
        )
        .bind(run_ids)
        .bind(node)
        .bind(secs(lease))
        .fetch_all(&self.pool)
        .await?;
        let cancel = rows.iter().filter_map(|(id, reason)| Some((id.clone(), reason.clone()?))).collect();
        Ok(Renewed { held: rows.into_iter().map(|(id, _)| id).collect(), cancel })
    }

    async fn save_progress(&self, node: &str, run_id: &str, steps: &[StepRecord]) -> Result<bool, StoreError> {
        // One statement, one round trip: the run's row is locked only while its step rows are
        // upserted (a run's steps are the same all along), so the end, which waits on that lock,
        // always writes last; lease renewals wait no longer than that.
        let ordinals: Vec<i32> = (0..steps.len()).map(|i| i32::try_from(i).unwrap_or(i32::MAX)).collect();
        let count = |f: fn(&StepRecord) -> u64| steps.iter().map(|s| int(f(s))).collect::<Vec<i64>>();
        let going: bool = sqlx::query_scalar(
            "WITH going AS (
                 SELECT run_id FROM runs WHERE run_id = $1 AND node = $2 AND status = 'INPROCESS' FOR UPDATE
             ), written AS (
                 INSERT INTO run_steps (run_id, ordinal, step, documents_in, documents_out, documents_error, millis)
                 SELECT going.run_id, s.ordinal, s.step, s.din, s.dout, s.derr, s.ms
                 FROM going, unnest($3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
                      AS s (ordinal, step, din, dout, derr, ms)
                 ON CONFLICT (run_id, ordinal) DO UPDATE SET
                     step = EXCLUDED.step, documents_in = EXCLUDED.documents_in,
                     documents_out = EXCLUDED.documents_out, documents_error = EXCLUDED.documents_error,
                     millis = EXCLUDED.millis
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM going)",
        )
        .bind(run_id)
        .bind(node)
        .bind(&ordinals)
        .bind(steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>())
        .bind(count(|s| s.documents_in))
        .bind(count(|s| s.documents_out))
        .bind(count(|s| s.documents_error))
        .bind(count(|s| s.millis))
        .fetch_one(&self.pool)
        .await?;
        Ok(going)
    }

    async fn request_cancel(
        &self,
        run_id: &str,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(String, Option<String>, bool)> =
            sqlx::query_as("SELECT status, node, lease_until IS NOT NULL FROM runs WHERE run_id = $1 FOR UPDATE")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match found {
            None => CancelOutcome::Unknown,
            Some((status, _, _)) if status == "QUEUED" => {
                sqlx::query(
                    "UPDATE runs SET status = 'DISCARDED', started_at = now(), ended_at = now(), error = $2, start_data = NULL
                     WHERE run_id = $1 AND status = 'QUEUED'",
                )
                .bind(run_id)
                .bind(crate::model::text(reason))
                .execute(&mut *tx)
                .await?;
                CancelOutcome::Discarded
            }
            Some((status, node, leased)) if status == "INPROCESS" => {
                let node = node.unwrap_or_default();
                if leased {
                    sqlx::query("UPDATE runs SET cancel_requested = $2 WHERE run_id = $1")
                        .bind(run_id)
                        .bind(crate::model::text(reason))
                        .execute(&mut *tx)
                        .await?;
                    CancelOutcome::Requested { node }
                } else {
                    CancelOutcome::Unleased { node }
                }
            }
            Some((status, _, _)) => CancelOutcome::Ended { status },
        };
        if outcome.took_effect() {
            access::record_audit(&mut *tx, audit).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn complete(&self, node: &str, end: &RunEnd) -> Result<Completion, StoreError> {
        if !end.status.is_final() {
            return Err(StoreError::InvalidStatus(end.status.to_string()));
        }
        let mut tx = self.pool.begin().await?;
        if write_end(&mut tx, end, Some(node)).await? > 0 {
            tx.commit().await?;
            return Ok(Completion::Recorded);
        }
        let closed_by: Option<Option<String>> = sqlx::query_scalar("SELECT closed_by FROM runs WHERE run_id = $1")
            .bind(&end.run_id)
            .fetch_optional(&mut *tx)
            .await?;
        match closed_by {
            None => Err(StoreError::UnknownRun(end.run_id.clone())),
            // The end was recorded by an earlier call whose answer was lost with its connection.
            Some(Some(by)) if by == node => Ok(Completion::Recorded),
            Some(_) => Ok(Completion::Discarded),
        }
    }

    async fn expire_leases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE runs SET status = 'ABORTED', ended_at = now(), closed_by = 'lease', lease_until = NULL, start_data = NULL,
                 error = 'node lost: node ''' || COALESCE(node, '') || ''' stopped renewing the run''s lease'
             WHERE status = 'INPROCESS' AND lease_until < now()
             RETURNING run_id, COALESCE(node, '') AS node",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get("run_id")?, r.try_get("node")?))).collect::<Result<_, sqlx::Error>>()?)
    }

    async fn discard_queued(&self, processes: &[String], reason: &str) -> Result<usize, StoreError> {
        let n = sqlx::query(
            "UPDATE runs SET status = 'DISCARDED', started_at = now(), ended_at = now(), error = $2, start_data = NULL
             WHERE process = ANY($1) AND status = 'QUEUED'",
        )
        .bind(processes)
        .bind(crate::model::text(reason))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn append_logs(&self, run_id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        // One statement: the lines in order (`seq` follows the array's order).
        sqlx::query(
            "INSERT INTO run_logs (run_id, at, level, node, message) \
             SELECT $1, l.at, l.level, l.node, l.message \
             FROM UNNEST($2::timestamptz[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY \
                  AS l(at, level, node, message, n) ORDER BY l.n",
        )
        .bind(run_id)
        .bind(lines.iter().map(|l| l.at).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.level.as_str()).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.node.as_str()).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| crate::model::text(&l.message)).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn logs(&self, run_id: &str) -> Result<Vec<LogLine>, StoreError> {
        let rows = sqlx::query("SELECT at, level, node, message FROM run_logs WHERE run_id = $1 ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(LogLine {
                    at: r.try_get("at")?,
                    level: r.try_get("level")?,
                    node: r.try_get("node")?,
                    message: r.try_get("message")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    fn shares_rate_budgets(&self) -> bool {
        true
    }

    async fn reserve_rate(&self, budget: &str, limits: &RateLimits) -> Result<Reservation, StoreError> {
        crate::postgres_rate::reserve(&self.pool, budget, limits).await
    }

    async fn finish_rate(&self, budget: &str, slot: i64) -> Result<(), StoreError> {
        crate::postgres_rate::finish(&self.pool, budget, slot).await
    }

    async fn hold_rate(&self, budget: &str, hold: &RateHold) -> Result<(), StoreError> {
        crate::postgres_rate::hold(&self.pool, budget, hold).await
    }

    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError> {
        access::create_token(&self.pool, token).await
    }

    async fn create_first_token(&self, token: &NewToken) -> Result<bool, StoreError> {
        access::create_first_token(&self.pool, token).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        access::tokens(&self.pool).await
    }

    async fn revoke_token(&self, name: &str, keep_an_admin: bool) -> Result<Revoked, StoreError> {
        access::revoke_token(&self.pool, name, keep_an_admin).await
    }

    async fn authenticate(&self, hash: &str, at: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
        access::authenticate(&self.pool, hash, at).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        access::record_audit(&self.pool, entry).await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        access::audit(&self.pool, limit).await
    }

    async fn set_paused(&self, process: &str, by: Option<&str>, at: DateTime<Utc>) -> Result<(), StoreError> {
        access::set_paused(&self.pool, process, by, at).await
    }

    async fn paused(&self) -> Result<Vec<Paused>, StoreError> {
        access::paused(&self.pool).await
    }

    async fn run_overrides(&self, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
        documents::run_overrides(&self.pool, run_id).await
    }

    async fn save_documents(
        &self,
        run_id: &str,
        documents: DocumentChunks,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        documents::save(&self.pool, run_id, documents, expires_at).await
    }

    async fn document_counts(&self, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
        documents::counts(&self.pool, run_id).await
    }

    async fn documents(
        &self,
        run_id: &str,
        step: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RecordedDocument>, StoreError> {
        documents::page(&self.pool, run_id, step, offset, limit).await
    }

    async fn prune_documents(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let rows = sqlx::query("DELETE FROM run_documents WHERE expires_at < $1 RETURNING count")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let mut n = 0usize;
        for row in &rows {
            n += usize::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0);
        }
        Ok(n)
    }

    async fn open_session(&self, hash: &str, token: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        access::open_session(&self.pool, hash, token, expires_at).await
    }

    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
        access::session(&self.pool, hash, now).await
    }

    async fn close_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        access::close_session(&self.pool, hash, now).await
    }
}
