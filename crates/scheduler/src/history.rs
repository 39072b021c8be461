//! Run history in an embedded SQLite database.
//!
//! One database file (by default `<state dir>/history.db`, see [`db_path`]) holds every run of
//! every process: `stepwise run` and `stepwise serve` write it, `stepwise history` reads it,
//! possibly all at the same time from different OS processes.
//!
//! # Durability and concurrency
//!
//! * The database is in WAL mode with `synchronous=NORMAL`. Every write below is a single
//!   transaction, so a crash (of stepwise, or of the machine) never leaves a half-written run
//!   and never corrupts the file: SQLite replays or discards the WAL on the next open. After a
//!   power loss the last few committed transactions may be lost, never the file.
//! * Each connection waits up to [`BUSY_TIMEOUT`] for another writer instead of failing with
//!   `SQLITE_BUSY`, so `stepwise run` and `stepwise serve` can share the file. WAL readers never
//!   block writers.
//! * The schema is versioned with `PRAGMA user_version` and migrated forward on open; a file
//!   written by a newer stepwise is refused rather than damaged.
//! * A [`History`] is `Send + Sync` (the connection is behind a mutex). Calls block; from async
//!   code call them in `tokio::task::spawn_blocking` when contention is possible.
//!
//! Timestamps are stored as RFC 3339 UTC text with microseconds (`2026-03-29T01:00:00.000000Z`),
//! which sorts chronologically and reads well in the `sqlite3` shell.
//!
//! Runs left `INPROCESS` by a stepwise that died are turned into `ABORTED` by
//! [`History::mark_abandoned_as_aborted`]; each `INPROCESS` row records which OS process owns it,
//! so a `stepwise serve` starting up does not abort a `stepwise run` that is still going.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The database file name inside a state directory.
pub const DB_FILE_NAME: &str = "history.db";

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// The database file for a state path: `state` itself when it names a file with a `.db`,
/// `.sqlite` or `.sqlite3` extension, otherwise `state/history.db`.
pub fn db_path(state: &Path) -> PathBuf {
    match state.extension().and_then(|e| e.to_str()) {
        Some("db" | "sqlite" | "sqlite3") => state.to_path_buf(),
        _ => state.join(DB_FILE_NAME),
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `stepwise run`.
    Manual,
    /// A schedule of `stepwise serve`.
    Schedule,
    /// `stepwise run --test`.
    Test,
}

impl Trigger {
    /// The name stored in the database and printed by `stepwise history`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Test => "test",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "manual" => Ok(Trigger::Manual),
            "schedule" => Ok(Trigger::Schedule),
            "test" => Ok(Trigger::Test),
            other => Err(format!("unknown trigger '{other}'")),
        }
    }
}

/// Run statuses (process format section 6). [`RunRecord::status`] and [`RunEnd::status`] hold
/// the [`RunStatus::as_str`] spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started, not ended yet (or its process died; see [`History::mark_abandoned_as_aborted`]).
    InProcess,
    /// Completed.
    Complete,
    /// Completed, but error documents were produced or errors caught.
    CompleteWarn,
    /// Failed.
    Error,
    /// The engine stopped mid-run.
    Aborted,
    /// Not started because of `overlap`.
    Discarded,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::InProcess,
        RunStatus::Complete,
        RunStatus::CompleteWarn,
        RunStatus::Error,
        RunStatus::Aborted,
        RunStatus::Discarded,
    ];

    /// The upper-case name used everywhere (`COMPLETE_WARN`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::InProcess => "INPROCESS",
            RunStatus::Complete => "COMPLETE",
            RunStatus::CompleteWarn => "COMPLETE_WARN",
            RunStatus::Error => "ERROR",
            RunStatus::Aborted => "ABORTED",
            RunStatus::Discarded => "DISCARDED",
        }
    }

    /// Whether a run can end with this status ([`History::record_end`]).
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Complete | RunStatus::CompleteWarn | RunStatus::Error | RunStatus::Aborted)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            format!("unknown run status '{s}'; expected one of INPROCESS, COMPLETE, COMPLETE_WARN, ERROR, ABORTED, DISCARDED")
        })
    }
}

/// A run that starts (or, for [`History::record_discarded`], that was not started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// Unique id (the service uses UUID v7).
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// What started it.
    pub trigger: Trigger,
    /// The schedule's fire instant, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// The end of a run recorded with [`History::record_start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The id given to `record_start`.
    pub run_id: String,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// `COMPLETE`, `COMPLETE_WARN`, `ERROR` or `ABORTED`.
    pub status: String,
    /// Documents that entered the process.
    pub documents_in: u64,
    /// Documents that left it.
    pub documents_out: u64,
    /// Error documents.
    pub documents_error: u64,
    /// The run's error, for `ERROR` and `ABORTED`.
    pub error: Option<String>,
    /// Per-step counters, in step order.
    pub steps: Vec<StepRecord>,
}

/// Per-step counters of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    /// Step id.
    pub step: String,
    /// Documents in.
    pub documents_in: u64,
    /// Documents out.
    pub documents_out: u64,
    /// Error documents.
    pub documents_error: u64,
    /// Time spent in the step.
    pub millis: u64,
}

/// One row of the run history (`stepwise history --json` prints these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Unique id.
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// What started it.
    pub trigger: Trigger,
    /// The schedule's fire instant, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while `INPROCESS` (and for abandoned runs).
    pub ended_at: Option<DateTime<Utc>>,
    /// One of the [`RunStatus`] spellings.
    pub status: String,
    /// Documents that entered the process.
    pub documents_in: u64,
    /// Documents that left it.
    pub documents_out: u64,
    /// Error documents.
    pub documents_error: u64,
    /// The run's error, if any.
    pub error: Option<String>,
}

/// Which runs [`History::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only runs of this process.
    pub process: Option<String>,
    /// Only runs with this status (e.g. `ERROR`).
    pub status: Option<String>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

/// Errors of the history database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The directory for the database could not be created.
    #[error("cannot create directory '{}' for the run history: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or set up.
    #[error("cannot open run history '{}': {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file was written by a newer stepwise.
    #[error(
        "run history '{}' has schema version {found}, newer than this stepwise supports ({supported}); upgrade stepwise",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// `record_end` for a run that was never started.
    #[error("unknown run '{0}'")]
    UnknownRun(String),
    /// `record_start` or `record_discarded` with an id that is already recorded.
    #[error("run '{0}' is already recorded")]
    DuplicateRun(String),
    /// `record_end` with a status a run cannot end with.
    #[error("invalid final run status '{0}'; expected COMPLETE, COMPLETE_WARN, ERROR or ABORTED")]
    InvalidStatus(String),
    /// Any other SQLite error.
    #[error("run history: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The run history database.
pub struct History {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History").field("path", &self.path).finish_non_exhaustive()
    }
}

const SCHEMA_V1: &str = "
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY NOT NULL,
    process         TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_for   TEXT,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    status          TEXT NOT NULL,
    documents_in    INTEGER NOT NULL DEFAULT 0,
    documents_out   INTEGER NOT NULL DEFAULT 0,
    documents_error INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    owner           TEXT
);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_process ON runs (process, started_at);
CREATE INDEX runs_in_process ON runs (status) WHERE status = 'INPROCESS';
CREATE TABLE run_steps (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    ordinal         INTEGER NOT NULL,
    step            TEXT NOT NULL,
    documents_in    INTEGER NOT NULL,
    documents_out   INTEGER NOT NULL,
    documents_error INTEGER NOT NULL,
    millis          INTEGER NOT NULL,
    PRIMARY KEY (run_id, ordinal)
) WITHOUT ROWID;
CREATE TABLE schedule_state (
    process         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    last_fired      TEXT NOT NULL,
    PRIMARY KEY (process, schedule)
) WITHOUT ROWID;
";

/// Migrations: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 1] = [SCHEMA_V1];

const RUN_COLUMNS: &str = "run_id, process, trigger, scheduled_for, started_at, ended_at, status, \
                           documents_in, documents_out, documents_error, error";

impl History {
    /// Opens (creating it, its parent directories and its schema if needed) the database file.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| HistoryError::CreateDir { path: parent.to_path_buf(), source })?;
        }
        let open_err = |source| HistoryError::Open { path: path.to_path_buf(), source };
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
                Err(HistoryError::Open { source, .. })
                    if is_busy(&source) && started.elapsed() + pause < BUSY_TIMEOUT =>
                {
                    tracing::debug!(message = "Run history busy while opening; trying again.", path = %path.display());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                result => break result?,
            }
        }
        Ok(History { conn: Mutex::new(conn), path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half-applied (rusqlite
        // rolls back on drop), so a poisoned connection is still usable.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that a run started: status `INPROCESS`, owned by this OS process.
    pub fn record_start(&self, run: &RunStart) -> Result<(), HistoryError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, status, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, 'INPROCESS', ?6)",
            params![
                run.run_id,
                run.process,
                run.trigger.as_str(),
                run.scheduled_for.map(ts),
                ts(run.started_at),
                own_owner(),
            ],
        )
        .map_err(|e| duplicate_or(e, &run.run_id))?;
        Ok(())
    }

    /// Records the end of a run and its per-step counters, in one transaction. Calling it
    /// again for the same run replaces the earlier end.
    pub fn record_end(&self, run: &RunEnd) -> Result<(), HistoryError> {
        let final_status = run.status.parse::<RunStatus>().ok().filter(|s| s.is_final());
        if final_status.is_none() {
            return Err(HistoryError::InvalidStatus(run.status.clone()));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE runs SET ended_at = ?2, status = ?3, documents_in = ?4, documents_out = ?5,
                 documents_error = ?6, error = ?7, owner = NULL
             WHERE run_id = ?1",
            params![
                run.run_id,
                ts(run.ended_at),
                run.status,
                int(run.documents_in),
                int(run.documents_out),
                int(run.documents_error),
                run.error,
            ],
        )?;
        if updated == 0 {
            return Err(HistoryError::UnknownRun(run.run_id.clone()));
        }
        tx.execute("DELETE FROM run_steps WHERE run_id = ?1", params![run.run_id])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO run_steps (run_id, ordinal, step, documents_in, documents_out, documents_error, millis)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (ordinal, step) in run.steps.iter().enumerate() {
                insert.execute(params![
                    run.run_id,
                    int(ordinal as u64),
                    step.step,
                    int(step.documents_in),
                    int(step.documents_out),
                    int(step.documents_error),
                    int(step.millis),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a run that was not started because of `overlap`: status `DISCARDED`, ended when
    /// it started.
    pub fn record_discarded(&self, run: &RunStart) -> Result<(), HistoryError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (run_id, process, trigger, scheduled_for, started_at, ended_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'DISCARDED')",
            params![run.run_id, run.process, run.trigger.as_str(), run.scheduled_for.map(ts), ts(run.started_at)],
        )
        .map_err(|e| duplicate_or(e, &run.run_id))?;
        Ok(())
    }

    /// Turns `INPROCESS` runs whose OS process is gone (or is this one) into `ABORTED`, and
    /// returns how many. Runs owned by another live OS process (a concurrent `stepwise run`) are
    /// left alone. Call it when a service starts, and after [`crate::service::serve`] returns
    /// to close the runs it abandoned after its grace period.
    pub fn mark_abandoned_as_aborted(&self) -> Result<usize, HistoryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
                "UPDATE runs SET status = 'ABORTED', owner = NULL,
                     error = COALESCE(error, 'abandoned: stepwise stopped before the run ended')
                 WHERE run_id = ?1 AND status = 'INPROCESS'",
                params![run_id],
            )?;
        }
        tx.commit()?;
        Ok(count)
    }

    /// Runs matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, HistoryError> {
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
        sql.push_str(" ORDER BY started_at DESC, rowid DESC");
        let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        if let Some(limit) = &limit {
            args.push(limit);
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(args.as_slice(), run_from_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One run and its steps.
    pub fn get(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<StepRecord>)>, HistoryError> {
        let conn = self.conn();
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
    }

    /// Deletes runs (and their steps) that started before `before`, except `INPROCESS` ones;
    /// returns how many.
    pub fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, HistoryError> {
        let conn = self.conn();
        let n =
            conn.execute("DELETE FROM runs WHERE started_at < ?1 AND status <> 'INPROCESS'", params![ts(before)])?;
        Ok(n)
    }

    /// The last fired instant of each schedule of `process` (service state for catch-up).
    pub fn last_fired(&self, process: &str) -> Result<HashMap<String, DateTime<Utc>>, HistoryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT schedule, last_fired FROM schedule_state WHERE process = ?1")?;
        let rows = stmt
            .query_map(params![process], |row| Ok((row.get::<_, String>(0)?, parse_ts(row, 1)?)))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(rows)
    }

    /// Saves last fired instants `(process, schedule key, instant)` in one transaction. An
    /// instant never moves backwards.
    pub fn save_last_fired(&self, entries: &[(String, String, DateTime<Utc>)]) -> Result<(), HistoryError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO schedule_state (process, schedule, last_fired) VALUES (?1, ?2, ?3)
                 ON CONFLICT (process, schedule) DO UPDATE SET last_fired = excluded.last_fired
                 WHERE excluded.last_fired > schedule_state.last_fired",
            )?;
            for (process, schedule, instant) in entries {
                upsert.execute(params![process, schedule, ts(*instant)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the schedule state of `process` for schedules not in `keep`.
    pub fn retain_schedules(&self, process: &str, keep: &[String]) -> Result<(), HistoryError> {
        let existing = self.last_fired(process)?;
        let conn = self.conn();
        for key in existing.keys().filter(|k| !keep.contains(k)) {
            conn.execute("DELETE FROM schedule_state WHERE process = ?1 AND schedule = ?2", params![process, key])?;
        }
        Ok(())
    }
}

/// Sets the journal mode and the connection's pragmas, and brings the schema up to date.
fn prepare(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let open_err = |source| HistoryError::Open { path: path.to_path_buf(), source };
    // The mode is persistent, so later opens find it already set.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(message = "Run history is not in WAL mode.", path = %path.display(), mode = %mode);
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
    migrate(conn, path)
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let open_err = |source| HistoryError::Open { path: path.to_path_buf(), source };
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_err)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes opening a new file at once
    // migrate it once: the second waits, then sees the new version.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_err)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_err)?;
    if version > SCHEMA_VERSION {
        return Err(HistoryError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    let from = usize::try_from(version).unwrap_or(0);
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(open_err)?;
        tx.pragma_update(None, "user_version", step as i64 + 1).map_err(open_err)?;
        tracing::debug!(message = "Migrated run history.", path = %path.display(), version = step + 1);
    }
    tx.commit().map_err(open_err)?;
    Ok(())
}

fn duplicate_or(error: rusqlite::Error, run_id: &str) -> HistoryError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            HistoryError::DuplicateRun(run_id.to_owned())
        }
        _ => HistoryError::Sqlite(error),
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
        started_at: parse_ts(row, 4)?,
        ended_at: parse_opt_ts(row, 5)?,
        status: row.get(6)?,
        documents_in: uint(row.get(7)?),
        documents_out: uint(row.get(8)?),
        documents_error: uint(row.get(9)?),
        error: row.get(10)?,
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

pub(crate) fn proc_start_time(pid: u32) -> Option<String> {
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

/// Formats runs as an aligned text table, newest first as given (`stepwise history`).
pub fn render_runs_table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".to_owned();
    }
    let header = ["RUN", "PROCESS", "TRIGGER", "STARTED (UTC)", "DURATION", "STATUS", "IN", "OUT", "ERRORS"];
    let rows: Vec<[String; 9]> = runs
        .iter()
        .map(|run| {
            [
                run.run_id.clone(),
                run.process.clone(),
                run.trigger.to_string(),
                run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                duration_text(run),
                run.status.clone(),
                run.documents_in.to_string(),
                run.documents_out.to_string(),
                run.documents_error.to_string(),
            ]
        })
        .collect();
    let numeric = [false, false, false, false, true, false, true, true, true];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if numeric[i] {
                let _ = write!(text, "{cell:>width$}", width = widths[i]);
            } else {
                let _ = write!(text, "{cell:<width$}", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// Formats one run and its steps (`stepwise history RUN_ID`).
pub fn render_run_detail(run: &RunRecord, steps: &[StepRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run        {}", run.run_id);
    let _ = writeln!(out, "process    {}", run.process);
    match run.scheduled_for {
        Some(at) => {
            let _ = writeln!(
                out,
                "trigger    {} (scheduled for {})",
                run.trigger,
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
        None => {
            let _ = writeln!(out, "trigger    {}", run.trigger);
        }
    }
    let _ = writeln!(out, "status     {}", run.status);
    let _ = writeln!(out, "started    {}", run.started_at.to_rfc3339_opts(SecondsFormat::Millis, true));
    if let Some(ended) = run.ended_at {
        let _ =
            writeln!(out, "ended      {} ({})", ended.to_rfc3339_opts(SecondsFormat::Millis, true), duration_text(run));
    }
    let _ =
        writeln!(out, "documents  {} in, {} out, {} errors", run.documents_in, run.documents_out, run.documents_error);
    if let Some(error) = &run.error {
        let _ = writeln!(out, "error      {error}");
    }
    if !steps.is_empty() {
        let width = steps.iter().map(|s| s.step.chars().count()).max().unwrap_or(0).max(4);
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}", "STEP", "IN", "OUT", "ERRORS", "MS");
        for step in steps {
            let _ = writeln!(
                out,
                "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}",
                step.step, step.documents_in, step.documents_out, step.documents_error, step.millis
            );
        }
    }
    out
}

fn duration_text(run: &RunRecord) -> String {
    match run.ended_at {
        Some(ended) => {
            let millis = (ended - run.started_at).num_milliseconds().max(0);
            format!("{}.{:03}s", millis / 1000, millis % 1000)
        }
        None => "-".to_owned(),
    }
}
