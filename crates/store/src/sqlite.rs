//! The run store in an embedded SQLite file (one node; the default).
//!
//! * WAL mode with `synchronous=NORMAL`; every method is one transaction, so a crash never
//!   leaves a half-written run. Writes take the write lock first (`BEGIN IMMEDIATE`), which
//!   also serializes fires and claims of every OS process sharing the file.
//! * Each connection waits up to [`BUSY_TIMEOUT`] for another writer, so `stepwise run`,
//!   `stepwise serve` and `stepwise history` can share the file.
//! * The schema is versioned with `PRAGMA user_version`; the migrations are the files of
//!   `migrations/sqlite/`, applied in order; a file written by a newer stepwise is refused.
//! * Calls run on tokio's blocking threads, never on the caller's.
//!
//! Timestamps are RFC 3339 UTC text with microseconds, which sorts chronologically.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior, params};

mod access;
mod documents;

use crate::access::{AuditEntry, NewToken, Paused, Revoked, TokenRecord};
use crate::documents::{DocumentChunks, RecordedDocument, StepDocuments};
use crate::model::{
    CancelOutcome, Claim, Claimed, ClaimedRun, Completion, Fire, FireOutcome, ListFilter, LogLine, NewRun, Overlap,
    Renewed, RunEnd, RunRecord, RunStart, StepRecord,
};
use crate::{Store, StoreError};

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The database file name inside a state directory.
pub const DB_FILE_NAME: &str = "history.db";

/// The migrations: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 8] = [
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_run_store.sql"),
    include_str!("../migrations/sqlite/0003_console.sql"),
    include_str!("../migrations/sqlite/0004_webhook.sql"),
    include_str!("../migrations/sqlite/0005_documents_sessions.sql"),
    include_str!("../migrations/sqlite/0006_cancel_requests.sql"),
    include_str!("../migrations/sqlite/0007_document_encoding.sql"),
    include_str!("../migrations/sqlite/0008_rerun_of.sql"),
];

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const RUN_COLUMNS: &str = "run_id, process, trigger, scheduled_for, node, queued_at, COALESCE(started_at, queued_at), ended_at, status, \
                           documents_in, documents_out, documents_error, error, content_hash, \
                           CASE WHEN status = 'INPROCESS' THEN cancel_requested END AS cancel_requested, rerun_of";

/// The database file for a state path: `state` itself when it names a file with a `.db`,
/// `.sqlite` or `.sqlite3` extension, otherwise `state/history.db`.
pub fn db_path(state: &Path) -> PathBuf {
    match state.extension().and_then(|e| e.to_str()) {
        Some("db" | "sqlite" | "sqlite3") => state.to_path_buf(),
        _ => state.join(DB_FILE_NAME),
    }
}

/// The SQLite run store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Copies the write-ahead log into the database file in the background (`None` when its
    /// connection could not be opened: the commits then do it, as SQLite does by default).
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// How often the background thread checkpoints the write-ahead log.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The WAL size (pages) at which a commit checkpoints by itself, should the background thread
/// fall behind (SQLite's default is 1,000).
const AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// A thread with a connection of its own that checkpoints the WAL every [`CHECKPOINT_EVERY`]
/// (`PASSIVE`: it never waits for, nor blocks, the store's writer), so that the commits of
/// fires, claims, ends and kept documents do not stop to copy the log into the database file.
/// Ends when the store is dropped.
struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    fn spawn(path: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let path = path.to_path_buf();
        let run = move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(message = "Cannot checkpoint the run store's log.", path = %path.display(), %error);
                }
            }
        };
        std::thread::Builder::new().name("stepwise-sqlite-checkpoint".to_owned()).spawn(run).ok()?;
        Some(Checkpointer { _stop: stop })
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it, its parent directories and its schema if needed) the database file.
    /// Blocks.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::CreateDir { path: parent.to_path_buf(), source })?;
        }
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // SQLite answers SQLITE_BUSY at once, without waiting in the busy handler, when two
        // connections would deadlock: both reading a new file and both wanting to write to it
        // (switching it to WAL, creating the schema). Every step of the set-up is idempotent,
        // so it is tried again, after a growing pause, until BUSY_TIMEOUT has passed.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match prepare(&mut conn, path) {
                Err(StoreError::Open { source, .. })
                    if is_busy(&source) && started.elapsed() + pause < BUSY_TIMEOUT =>
                {
                    tracing::debug!(message = "Run store busy while opening; trying again.", path = %path.display());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                result => break result?,
            }
        }
        let checkpointer = Checkpointer::spawn(path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES).map_err(open_err)?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            _checkpointer: checkpointer.map(Arc::new),
        })
    }

    /// [`SqliteStore::open`] on a blocking thread.
    pub async fn open_async(path: PathBuf) -> Result<SqliteStore, StoreError> {
        match tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        match tokio::task::spawn_blocking(move || f(&mut lock(&conn))).await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave a transaction half-applied (rusqlite rolls
    // back on drop), so a poisoned connection is still usable.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a statement of the hot paths (fires, claims, ends) through the connection's cache of
/// prepared statements, instead of parsing its SQL again on every call.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`exec`] for a query of one row.
fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The answers of a batch written in one transaction: each item's own, or the transaction's
/// error for every item.
fn per_item<T>(result: Result<Vec<Result<T, StoreError>>, StoreError>, count: usize) -> Vec<Result<T, StoreError>> {
    match result {
        Ok(outcomes) => outcomes,
        Err(error) => {
            let message = error.to_string();
            (0..count).map(|_| Err(StoreError::Batch(message.clone()))).collect()
        }
    }
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn is_shared(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn record_start(&self, run: &RunStart) -> Result<(), StoreError> {
        let run = run.clone();
        self.with(move |conn| {
            let lease_until = run.lease.map(|lease| ts(Utc::now() + lease));
            conn.execute(
                "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, status, owner, node, lease_until, overrides)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'INPROCESS', ?6, ?7, ?8, ?9)",
                params![
                    run.run_id,
                    run.process,
                    run.trigger.as_str(),
                    run.scheduled_for.map(ts),
                    ts(run.started_at),
                    own_owner(),
                    run.node,
                    lease_until,
                    crate::model::overrides_json(&run.overrides),
                ],
            )
            .map_err(|e| duplicate_or(e, &run.run_id))?;
            Ok(())
        })
        .await
    }

    async fn record_end(&self, end: &RunEnd) -> Result<(), StoreError> {
        if !end.status.is_final() {
            return Err(StoreError::InvalidStatus(end.status.to_string()));
        }
        let end = end.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            if write_end(&tx, &end, None)? == 0 {
                return Err(StoreError::UnknownRun(end.run_id.clone()));
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn record_discarded(&self, run: &RunStart, reason: &str) -> Result<(), StoreError> {
        let run = run.clone();
        let reason = crate::model::text(reason).into_owned();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, ended_at, status, node, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'DISCARDED', ?6, ?7)",
                params![
                    run.run_id,
                    run.process,
                    run.trigger.as_str(),
                    run.scheduled_for.map(ts),
                    ts(run.started_at),
                    run.node,
                    reason
                ],
            )
            .map_err(|e| duplicate_or(e, &run.run_id))?;
            Ok(())
        })
        .await
    }

    async fn mark_abandoned_as_aborted(&self) -> Result<usize, StoreError> {
        self.with(|conn| {
            let tx = immediate(conn)?;
            let candidates: Vec<(String, Option<String>)> = {
                let mut stmt = tx.prepare("SELECT run_id, owner FROM runs WHERE status = 'INPROCESS'")?;
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
            };
            let mut count = 0;
            for (run_id, owner) in candidates {
                if owner.as_deref().is_some_and(owner_is_other_live_process) {
                    continue;
                }
                count += tx.execute(
                    "UPDATE runs SET status = 'ABORTED', owner = NULL, lease_until = NULL, closed_by = 'lease', start_data = NULL,
                         error = COALESCE(error, 'abandoned: stepwise stopped before the run ended')
                     WHERE run_id = ?1 AND status = 'INPROCESS'",
                    params![run_id],
                )?;
            }
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, StoreError> {
        let filter = filter.clone();
        self.with(move |conn| {
            let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1");
            let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
            if let Some(process) = &filter.process {
                args.push(process);
                sql.push_str(&format!(" AND process = ?{}", args.len()));
            }
            if let Some(status) = &filter.status {
                args.push(status);
                sql.push_str(&format!(" AND status = ?{}", args.len()));
            }
            let trigger = filter.trigger.map(|t| t.as_str());
            if let Some(trigger) = &trigger {
                args.push(trigger);
                sql.push_str(&format!(" AND trigger = ?{}", args.len()));
            }
            let (since, until) = (filter.since.map(ts), filter.until.map(ts));
            if let Some(since) = &since {
                args.push(since);
                sql.push_str(&format!(" AND COALESCE(started_at, queued_at) >= ?{}", args.len()));
            }
            if let Some(until) = &until {
                args.push(until);
                sql.push_str(&format!(" AND COALESCE(started_at, queued_at) < ?{}", args.len()));
            }
            sql.push_str(" ORDER BY COALESCE(started_at, queued_at) DESC, run_id DESC");
            let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            if let Some(limit) = &limit {
                args.push(limit);
                sql.push_str(&format!(" LIMIT ?{}", args.len()));
            }
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(args.as_slice(), run_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn get(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<StepRecord>)>, StoreError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| {
            let run = conn
                .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"), params![run_id], run_from_row)
                .optional()?;
            let Some(run) = run else {
                return Ok(None);
            };
            let mut stmt = conn.prepare(
                "SELECT step, documents_in, documents_out, documents_error, millis
                 FROM run_steps WHERE run_id = ?1 ORDER BY ordinal",
            )?;
            let steps = stmt
                .query_map(params![run_id], |row| {
                    Ok(StepRecord {
                        step: row.get(0)?,
                        documents_in: uint(row.get(1)?),
                        documents_out: uint(row.get(2)?),
                        documents_error: uint(row.get(3)?),
                        millis: uint(row.get(4)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((run, steps)))
        })
        .await
    }

    async fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.with(move |conn| {
            let n = conn.execute(
                "DELETE FROM runs WHERE COALESCE(started_at, queued_at) < ?1 AND status NOT IN ('INPROCESS', 'QUEUED')",
                params![ts(before)],
            )?;
            Ok(n)
        })
        .await
    }

    async fn last_fired(&self, process: &str) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let process = process.to_owned();
        self.with(move |conn| last_fired(conn, &process)).await
    }

    async fn save_last_fired(&self, entries: &[(String, String, DateTime<Utc>)]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.to_vec();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            {
                let mut upsert = tx.prepare(
                    "INSERT INTO schedule_state (process, schedule, last_fired) VALUES (?1, ?2, ?3)
                     ON CONFLICT (process, schedule) DO UPDATE SET last_fired = excluded.last_fired
                     WHERE excluded.last_fired > schedule_state.last_fired",
                )?;
                for (process, schedule, instant) in &entries {
                    upsert.execute(params![process, schedule, ts(*instant)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn retain_schedules(&self, process: &str, keep: &[String]) -> Result<(), StoreError> {
        let process = process.to_owned();
        let keep = keep.to_vec();
        self.with(move |conn| {
            let existing = last_fired(conn, &process)?;
            for key in existing.keys().filter(|k| !keep.contains(k)) {
                conn.execute("DELETE FROM schedule_state WHERE process = ?1 AND schedule = ?2", params![process, key])?;
            }
            Ok(())
        })
        .await
    }

    async fn fire(&self, fire: &Fire) -> Result<FireOutcome, StoreError> {
        let fire = fire.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let outcome = fire_in(&tx, &fire)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn fire_many(&self, fires: &[Fire]) -> Vec<Result<FireOutcome, StoreError>> {
        // One transaction for all: SQLite serializes writers, so one commit instead of one per
        // fire is what lets a node keep up with many schedules due at once.
        let fires = fires.to_vec();
        let count = fires.len();
        let result = self
            .with(move |conn| {
                let tx = immediate(conn)?;
                let outcomes = fires.iter().map(|fire| fire_in(&tx, fire).map(Ok)).collect::<Result<Vec<_>, _>>()?;
                tx.commit()?;
                Ok(outcomes)
            })
            .await;
        per_item(result, count)
    }

    async fn enqueue(&self, run: &NewRun) -> Result<(), StoreError> {
        crate::model::check_start_document(run)?;
        let run = run.clone();
        self.with(move |conn| {
            let start = run.start_document.as_ref();
            conn.execute(
                "INSERT INTO runs (run_id, process, trigger, queued_at, status, content_hash, overlap, overrides,
                                   start_data, start_properties, rerun_of)
                 VALUES (?1, ?2, ?3, ?4, 'QUEUED', ?5, 'allow', ?6, ?7, ?8, ?9)",
                params![
                    run.run_id,
                    run.process,
                    run.trigger.as_str(),
                    ts(run.queued_at),
                    run.content_hash,
                    crate::model::overrides_json(&run.overrides),
                    start.map(|d| d.data.as_slice()),
                    start.and_then(|d| crate::model::overrides_json(&d.properties)),
                    run.rerun_of,
                ],
            )
            .map_err(|e| duplicate_or(e, &run.run_id))?;
            Ok(())
        })
        .await
    }

    async fn response(&self, run_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| {
            let found: Option<Option<Vec<u8>>> = conn
                .query_row("SELECT response FROM runs WHERE run_id = ?1", params![run_id], |row| row.get(0))
                .optional()?;
            Ok(found.flatten())
        })
        .await
    }

    async fn claim(&self, claim: &Claim) -> Result<Claimed, StoreError> {
        let claim = claim.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let held: HashMap<&str, &str> = claim.processes.iter().map(|(n, h)| (n.as_str(), h.as_str())).collect();
            let candidates: Vec<Candidate> = {
                let mut stmt = tx.prepare(
                    "SELECT run_id, process, trigger, scheduled_for, overrides, overlap, content_hash
                     FROM runs WHERE status = 'QUEUED' ORDER BY queued_at, run_id LIMIT 1000",
                )?;
                stmt.query_map([], candidate_from_row)?.collect::<Result<_, _>>()?
            };
            let mut busy: HashSet<String> = {
                let mut stmt = tx.prepare("SELECT DISTINCT process FROM runs WHERE status = 'INPROCESS'")?;
                stmt.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?
            };
            let mut claimed = Claimed::default();
            let lease_until = ts(claim.now + claim.lease);
            for candidate in candidates {
                if claimed.runs.len() >= claim.max {
                    break;
                }
                let Some(hash) = held.get(candidate.run.process.as_str()) else {
                    continue;
                };
                if let Some(wanted) = candidate.content_hash.as_deref().filter(|w| w != hash) {
                    claimed.other_version.push((candidate.run.run_id, candidate.run.process, wanted.to_owned()));
                    continue;
                }
                if candidate.overlap != Overlap::Allow && busy.contains(&candidate.run.process) {
                    continue;
                }
                exec(
                    &tx,
                    "UPDATE runs SET status = 'INPROCESS', node = ?2, owner = ?3, started_at = ?4, lease_until = ?5
                     WHERE run_id = ?1 AND status = 'QUEUED'",
                    params![candidate.run.run_id, claim.node, own_owner(), ts(claim.now), lease_until],
                )?;
                busy.insert(candidate.run.process.clone());
                let mut run = candidate.run;
                run.start_document = tx.query_row(
                    "SELECT start_data, start_properties FROM runs WHERE run_id = ?1",
                    params![run.run_id],
                    |row| Ok(crate::model::start_document(row.get(0)?, row.get::<_, Option<String>>(1)?.as_deref())),
                )?;
                claimed.runs.push(run);
            }
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    async fn renew(&self, node: &str, run_ids: &[String], lease: Duration) -> Result<Renewed, StoreError> {
        let node = node.to_owned();
        let run_ids = run_ids.to_vec();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let until = ts(Utc::now() + lease);
            let mut renewed = Renewed::default();
            for run_id in run_ids {
                let found: Option<Option<String>> = tx
                    .query_row(
                        "UPDATE runs SET lease_until = ?3 WHERE run_id = ?1 AND node = ?2 AND status = 'INPROCESS'
                         RETURNING cancel_requested",
                        params![run_id, node, until],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(cancel) = found {
                    if let Some(reason) = cancel {
                        renewed.cancel.push((run_id.clone(), reason));
                    }
                    renewed.held.push(run_id);
                }
            }
            tx.commit()?;
            Ok(renewed)
        })
        .await
    }

    async fn save_progress(&self, node: &str, run_id: &str, steps: &[StepRecord]) -> Result<bool, StoreError> {
        let (node, run_id, steps) = (node.to_owned(), run_id.to_owned(), steps.to_vec());
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let going: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = ?1 AND node = ?2 AND status = 'INPROCESS')",
                params![run_id, node],
                |row| row.get(0),
            )?;
            if going {
                write_steps(&tx, &run_id, &steps)?;
            }
            tx.commit()?;
            Ok(going)
        })
        .await
    }

    async fn request_cancel(
        &self,
        run_id: &str,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<CancelOutcome, StoreError> {
        let (run_id, reason) = (run_id.to_owned(), crate::model::text(reason).into_owned());
        let audit = audit.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let found: Option<(String, Option<String>, bool)> = tx
                .query_row(
                    "SELECT status, node, lease_until IS NOT NULL FROM runs WHERE run_id = ?1",
                    params![run_id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let outcome = match found {
                None => CancelOutcome::Unknown,
                Some((status, _, _)) if status == "QUEUED" => {
                    exec(
                        &tx,
                        "UPDATE runs SET status = 'DISCARDED', started_at = ?2, ended_at = ?2, error = ?3, start_data = NULL
                         WHERE run_id = ?1 AND status = 'QUEUED'",
                        params![run_id, ts(Utc::now()), reason],
                    )?;
                    CancelOutcome::Discarded
                }
                Some((status, node, leased)) if status == "INPROCESS" => {
                    let node = node.unwrap_or_default();
                    if leased {
                        exec(&tx, "UPDATE runs SET cancel_requested = ?2 WHERE run_id = ?1", params![run_id, reason])?;
                        CancelOutcome::Requested { node }
                    } else {
                        CancelOutcome::Unleased { node }
                    }
                }
                Some((status, _, _)) => CancelOutcome::Ended { status },
            };
            if outcome.took_effect() {
                access::record_audit(&tx, &audit)?;
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn complete(&self, node: &str, end: &RunEnd) -> Result<Completion, StoreError> {
        let (node, end) = (node.to_owned(), end.clone());
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let outcome = complete_in(&tx, &node, &end)?;
            tx.commit()?;
            outcome
        })
        .await
    }

    async fn complete_many(&self, node: &str, ends: &[RunEnd]) -> Vec<Result<Completion, StoreError>> {
        // One transaction for all, as `fire_many`: one commit for the runs that ended together.
        let node = node.to_owned();
        let ends = ends.to_vec();
        let count = ends.len();
        let result = self
            .with(move |conn| {
                let tx = immediate(conn)?;
                let mut out = Vec::with_capacity(ends.len());
                for end in &ends {
                    out.push(complete_in(&tx, &node, end)?);
                }
                tx.commit()?;
                Ok(out)
            })
            .await;
        per_item(result, count)
    }

    async fn expire_leases(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|conn| {
            let tx = immediate(conn)?;
            let now = ts(Utc::now());
            let expired: Vec<(String, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT run_id, COALESCE(node, '') FROM runs
                     WHERE status = 'INPROCESS' AND lease_until IS NOT NULL AND lease_until < ?1",
                )?;
                stmt.query_map(params![now], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
            };
            for (run_id, node) in &expired {
                tx.execute(
                    "UPDATE runs SET status = 'ABORTED', ended_at = ?2, closed_by = 'lease', lease_until = NULL, start_data = NULL,
                         owner = NULL, error = ?3
                     WHERE run_id = ?1 AND status = 'INPROCESS'",
                    params![run_id, now, crate::model::node_lost_reason(node)],
                )?;
            }
            tx.commit()?;
            Ok(expired)
        })
        .await
    }

    async fn discard_queued(&self, processes: &[String], reason: &str) -> Result<usize, StoreError> {
        let processes = processes.to_vec();
        let reason = crate::model::text(reason).into_owned();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let now = ts(Utc::now());
            let mut count = 0;
            for process in &processes {
                count += tx.execute(
                    "UPDATE runs SET status = 'DISCARDED', started_at = ?2, ended_at = ?2, error = ?3, start_data = NULL
                     WHERE process = ?1 AND status = 'QUEUED'",
                    params![process, now, reason],
                )?;
            }
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    async fn append_logs(&self, run_id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let run_id = run_id.to_owned();
        let lines = lines.to_vec();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO run_logs (run_id, at, level, node, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for line in &lines {
                    insert.execute(params![
                        run_id,
                        ts(line.at),
                        line.level,
                        line.node,
                        crate::model::text(&line.message)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn logs(&self, run_id: &str) -> Result<Vec<LogLine>, StoreError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| {
            let mut stmt =
                conn.prepare("SELECT at, level, node, message FROM run_logs WHERE run_id = ?1 ORDER BY seq")?;
            let lines = stmt
                .query_map(params![run_id], |row| {
                    Ok(LogLine { at: parse_ts(row, 0)?, level: row.get(1)?, node: row.get(2)?, message: row.get(3)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(lines)
        })
        .await
    }

    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.with(move |conn| access::create_token(conn, &token)).await
    }

    async fn create_first_token(&self, token: &NewToken) -> Result<bool, StoreError> {
        let token = token.clone();
        self.with(move |conn| access::create_first_token(conn, &token)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with(|conn| access::tokens(conn)).await
    }

    async fn revoke_token(&self, name: &str, keep_an_admin: bool) -> Result<Revoked, StoreError> {
        let name = name.to_owned();
        self.with(move |conn| access::revoke_token(conn, &name, keep_an_admin)).await
    }

    async fn authenticate(&self, hash: &str, at: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.to_owned();
        self.with(move |conn| access::authenticate(conn, &hash, at)).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.with(move |conn| access::record_audit(conn, &entry)).await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(move |conn| access::audit(conn, limit)).await
    }

    async fn set_paused(&self, process: &str, by: Option<&str>, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (process, by) = (process.to_owned(), by.map(str::to_owned));
        self.with(move |conn| access::set_paused(conn, &process, by.as_deref(), at)).await
    }

    async fn paused(&self) -> Result<Vec<Paused>, StoreError> {
        self.with(|conn| access::paused(conn)).await
    }

    async fn run_overrides(&self, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| documents::run_overrides(conn, &run_id)).await
    }

    async fn save_documents(
        &self,
        run_id: &str,
        documents: DocumentChunks,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (run_id, chunks) = (run_id.to_owned(), documents.into_chunks());
        self.with(move |conn| documents::save(conn, &run_id, &chunks, expires_at)).await
    }

    async fn document_counts(&self, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| documents::counts(conn, &run_id)).await
    }

    async fn documents(
        &self,
        run_id: &str,
        step: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RecordedDocument>, StoreError> {
        let (run_id, step) = (run_id.to_owned(), step.to_owned());
        self.with(move |conn| documents::page(conn, &run_id, &step, offset, limit)).await
    }

    async fn prune_documents(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.with(move |conn| {
            let mut stmt = conn.prepare("DELETE FROM run_documents WHERE expires_at < ?1 RETURNING count")?;
            let counts = stmt.query_map(params![ts(now)], |row| row.get::<_, i64>(0))?;
            let mut n = 0usize;
            for count in counts {
                n += usize::try_from(count?).unwrap_or(0);
            }
            Ok(n)
        })
        .await
    }

    async fn open_session(&self, hash: &str, token: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let (hash, token) = (hash.to_owned(), token.to_owned());
        self.with(move |conn| access::open_session(conn, &hash, &token, expires_at)).await
    }

    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.to_owned();
        self.with(move |conn| access::session(conn, &hash, now)).await
    }

    async fn close_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let hash = hash.to_owned();
        self.with(move |conn| access::close_session(conn, &hash, now)).await
    }
}

/// Records one fire in `tx` (see [`Store::fire`]).
fn fire_in(tx: &Transaction<'_>, fire: &Fire) -> Result<FireOutcome, StoreError> {
    let fire = fire.clone();
    let inserted = exec(
        tx,
        "INSERT INTO fires (process, schedule, instant, run_id) VALUES (?1, ?2, ?3, ?4)
 ON CONFLICT DO NOTHING",
        params![fire.process, fire.schedule, ts(fire.instant), fire.run_id],
    )?;
    if inserted == 0 {
        return Ok(FireOutcome::Duplicate);
    }
    let (running, waiting): (i64, i64) = query_one(
        tx,
        "SELECT COALESCE(SUM(status = 'INPROCESS'), 0), COALESCE(SUM(status = 'QUEUED'), 0)
 FROM runs WHERE process = ?1 AND status IN ('INPROCESS', 'QUEUED')",
        params![fire.process],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let outcome = crate::model::decide_fire(&fire, running as u64, waiting as u64);
    match &outcome {
        FireOutcome::Queued => {
            exec(tx,
        "INSERT INTO runs (run_id, process, trigger, scheduled_for, queued_at, status, content_hash, overlap, node)
         VALUES (?1, ?2, 'schedule', ?3, ?4, 'QUEUED', ?5, ?6, NULL)",
        params![
            fire.run_id,
            fire.process,
            ts(fire.instant),
            ts(fire.at),
            fire.content_hash,
            queue_overlap(&fire).as_str()
        ],
    )
    .map_err(|e| duplicate_or(e, &fire.run_id))?;
        }
        FireOutcome::Discarded(reason) => {
            exec(tx,
        "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, ended_at, status, content_hash, node, error)
         VALUES (?1, ?2, 'schedule', ?3, ?4, ?4, 'DISCARDED', ?5, ?6, ?7)",
        params![
            fire.run_id,
            fire.process,
            ts(fire.instant),
            ts(fire.at),
            fire.content_hash,
            fire.node,
            crate::model::text(reason)
        ],
    )
    .map_err(|e| duplicate_or(e, &fire.run_id))?;
        }
        FireOutcome::Duplicate => {}
    }
    Ok(outcome)
}

/// The overlap a queued run is claimed with: a catch-up run waits its turn like `queue`.
fn queue_overlap(fire: &Fire) -> Overlap {
    if fire.catch_up { Overlap::Queue } else { fire.overlap }
}

struct Candidate {
    run: ClaimedRun,
    overlap: Overlap,
    content_hash: Option<String>,
}

fn candidate_from_row(row: &Row<'_>) -> rusqlite::Result<Candidate> {
    let trigger: String = row.get(2)?;
    let overrides: Option<String> = row.get(4)?;
    let overlap: String = row.get(5)?;
    Ok(Candidate {
        run: ClaimedRun {
            run_id: row.get(0)?,
            process: row.get(1)?,
            trigger: trigger
                .parse()
                .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, e.into()))?,
            scheduled_for: parse_opt_ts(row, 3)?,
            overrides: crate::model::parse_overrides(overrides.as_deref()),
            start_document: None,
        },
        overlap: Overlap::parse(&overlap),
        content_hash: row.get(6)?,
    })
}

/// Records one end inside `tx`: `Ok(Err(..))` is that end's own answer (an invalid status, an
/// unknown run), `Err` a database error that fails the whole transaction.
fn complete_in(tx: &Transaction<'_>, node: &str, end: &RunEnd) -> Result<Result<Completion, StoreError>, StoreError> {
    if !end.status.is_final() {
        return Ok(Err(StoreError::InvalidStatus(end.status.to_string())));
    }
    if write_end(tx, end, Some(node))? > 0 {
        return Ok(Ok(Completion::Recorded));
    }
    let closed_by: Option<Option<String>> = tx
        .query_row("SELECT closed_by FROM runs WHERE run_id = ?1", params![end.run_id], |row| row.get(0))
        .optional()?;
    Ok(match closed_by {
        None => Err(StoreError::UnknownRun(end.run_id.clone())),
        Some(Some(by)) if by == node => Ok(Completion::Recorded),
        Some(_) => Ok(Completion::Discarded),
    })
}

/// Writes a run's end and its steps; with `node`, only while the node holds the run. Returns
/// how many runs were updated (0 or 1).
fn write_end(tx: &Transaction<'_>, end: &RunEnd, node: Option<&str>) -> Result<usize, StoreError> {
    let guard = if node.is_some() { " AND node = ?8 AND status = 'INPROCESS'" } else { "" };
    let sql = format!(
        "UPDATE runs SET ended_at = ?2, status = ?3, documents_in = ?4, documents_out = ?5,
             documents_error = ?6, error = ?7, owner = NULL, lease_until = NULL, closed_by = COALESCE(?8, closed_by),
             start_data = NULL, response = ?9
         WHERE run_id = ?1{guard}"
    );
    let updated = exec(
        tx,
        &sql,
        params![
            end.run_id,
            ts(end.ended_at),
            end.status.as_str(),
            int(end.documents_in),
            int(end.documents_out),
            int(end.documents_error),
            end.error.as_deref().map(crate::model::text),
            node,
            crate::model::kept_response(end),
        ],
    )?;
    if updated == 0 {
        return Ok(0);
    }
    write_steps(tx, &end.run_id, &end.steps)?;
    Ok(updated)
}

/// Replaces the step rows of `run_id` (its progress while it goes, its counts at the end).
fn write_steps(tx: &Transaction<'_>, run_id: &str, steps: &[StepRecord]) -> rusqlite::Result<()> {
    exec(tx, "DELETE FROM run_steps WHERE run_id = ?1", params![run_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_steps (run_id, ordinal, step, documents_in, documents_out, documents_error, millis)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (ordinal, step) in steps.iter().enumerate() {
        insert.execute(params![
            run_id,
            int(ordinal as u64),
            step.step,
            int(step.documents_in),
            int(step.documents_out),
            int(step.documents_error),
            int(step.millis),
        ])?;
    }
    Ok(())
}

fn last_fired(conn: &Connection, process: &str) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
    let mut stmt = conn.prepare("SELECT schedule, last_fired FROM schedule_state WHERE process = ?1")?;
    let rows = stmt
        .query_map(params![process], |row| Ok((row.get::<_, String>(0)?, parse_ts(row, 1)?)))?
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(rows)
}

/// Sets the journal mode and the connection's pragmas, and brings the schema up to date.
fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    // The mode is persistent, so later opens find it already set.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(message = "Run store is not in WAL mode.", path = %path.display(), mode = %mode);
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
    // Off while migrating: migration 2 rebuilds `runs`, and dropping the old table must not
    // cascade to `run_steps`.
    conn.pragma_update(None, "foreign_keys", "OFF").map_err(open_err)?;
    migrate(conn, path)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
    Ok(())
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_err)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes opening a new file at once
    // migrate it once: the second waits, then sees the new version.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_err)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            what: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(version).unwrap_or(0);
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(open_err)?;
        tx.pragma_update(None, "user_version", step as i64 + 1).map_err(open_err)?;
        tracing::debug!(message = "Migrated run store.", path = %path.display(), version = step + 1);
    }
    tx.commit().map_err(open_err)?;
    Ok(())
}

fn duplicate_or(error: rusqlite::Error, run_id: &str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            StoreError::DuplicateRun(run_id.to_owned())
        }
        _ => StoreError::Sqlite(error),
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(idx)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn parse_opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
    })
    .transpose()
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let trigger: String = row.get(2)?;
    Ok(RunRecord {
        run_id: row.get(0)?,
        process: row.get(1)?,
        trigger: trigger
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, e.into()))?,
        scheduled_for: parse_opt_ts(row, 3)?,
        node: row.get(4)?,
        queued_at: parse_opt_ts(row, 5)?,
        started_at: parse_ts(row, 6)?,
        ended_at: parse_opt_ts(row, 7)?,
        status: row.get(8)?,
        documents_in: uint(row.get(9)?),
        documents_out: uint(row.get(10)?),
        documents_error: uint(row.get(11)?),
        error: row.get(12)?,
        content_hash: row.get(13)?,
        cancel_requested: row.get(14)?,
        rerun_of: row.get(15)?,
    })
}

/// `pid:start-time` of this OS process; the start time (from `/proc`) tells a live process
/// from a later one that reused the pid.
fn own_owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}:{}", proc_start_time(pid).unwrap_or_default())
    })
}

fn proc_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime); fields after the `(comm)` start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether `owner` names a live OS process other than this one. Without `/proc` nothing can be
/// told, and every owner counts as gone.
fn owner_is_other_live_process(owner: &str) -> bool {
    if owner == own_owner() {
        return false;
    }
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    !start.is_empty() && proc_start_time(pid).as_deref() == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit leaves its pages in the write-ahead log (below the autocheckpoint size); the
    /// background thread copies them into the database file.
    #[test]
    fn the_log_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        lock(&store.conn)
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); CREATE TABLE t (b BLOB); PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        lock(&store.conn).execute("INSERT INTO t SELECT randomblob(2000000)", []).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&path).unwrap().len() < before + 1_500_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was not checkpointed into {} ({before} -> {})",
                path.display(),
                std::fs::metadata(&path).unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
