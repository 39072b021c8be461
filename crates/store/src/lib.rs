//! The run store (process format section 8): run history, the queue of runs, schedules' fire
//! records, leases, step counts and run logs, behind one async interface, [`Store`], with two
//! implementations:
//!
//! * [`SqliteStore`]: an embedded SQLite file, the default for one node
//!   (`.stepwise/state.db`).
//! * [`PgStore`]: PostgreSQL, shared by every node of a cluster. Its unique constraints and row
//!   locks carry the cluster's guarantees: a fire is recorded once (primary key on
//!   `(process, schedule, instant)`), a queued run is taken by one node (`FOR UPDATE SKIP
//!   LOCKED`), overlap decisions of one process are serialized (a transaction-scoped advisory
//!   lock), and a run's end is written only by the node that still holds its lease.
//!
//! [`open`] picks the implementation from a store URL. The engine and the connectors know
//! nothing of the store; the scheduler and the command line use it.
//!
//! Both implementations pass one conformance suite (`tests/conformance.rs`).

mod access;
mod documents;
mod model;
mod postgres;
mod postgres_rate;
mod rate;
mod render;
mod sqlite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use access::{AuditEntry, NewToken, Paused, Revoked, Role, TokenRecord};
pub use documents::{
    DocumentChunks, ERRORS_SUFFIX, RecordedDocument, StepDocuments, error_documents_key, error_documents_of,
};
pub use model::{
    CancelOutcome, Claim, Claimed, ClaimedRun, Completion, Fire, FireOutcome, LAST_USED_GRANULARITY, ListFilter,
    LogLine, MAX_START_DOCUMENT_BYTES, NewRun, Overlap, Renewed, RunDetail, RunEnd, RunRecord, RunStart, RunStatus,
    StartDocument, StepRecord, Trigger, default_node_name,
};
pub use postgres::PgStore;
pub use rate::{RateHold, RateLimits, Reservation};
pub use render::{render_run_detail, render_runs_table};
pub use sqlite::{DB_FILE_NAME, SqliteStore, db_path};

/// Where the run history lives unless `--store` (or `STEPWISE_STORE`) says otherwise.
pub const DEFAULT_STORE: &str = ".stepwise/state.db";

/// Errors of the run store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL is not understood.
    #[error("invalid store '{url}': {reason}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
    /// The directory for a SQLite file could not be created.
    #[error("cannot create directory '{}' for the run store: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQLite file could not be opened or set up.
    #[error("cannot open run store '{}': {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The PostgreSQL database could not be reached or set up.
    #[error("cannot open run store '{url}': {message}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        message: String,
    },
    /// The database was written by a newer stepwise.
    #[error(
        "run store '{what}' has schema version {found}, newer than this stepwise supports ({supported}); upgrade stepwise"
    )]
    NewerSchema {
        /// The database.
        what: String,
        /// Its version.
        found: i64,
        /// The newest this code knows.
        supported: i64,
    },
    /// `record_end` for a run that was never started.
    #[error("unknown run '{0}'")]
    UnknownRun(String),
    /// A token name that is already taken.
    #[error("a token named '{0}' already exists")]
    DuplicateToken(String),
    /// A run id that is already recorded.
    #[error("run '{0}' is already recorded")]
    DuplicateRun(String),
    /// `record_end` with a status a run cannot end with.
    #[error("invalid final run status '{0}'; expected COMPLETE, COMPLETE_WARN, ERROR or ABORTED")]
    InvalidStatus(String),
    /// A start document over [`MAX_START_DOCUMENT_BYTES`].
    #[error("run '{run_id}': the start document has {size} bytes, more than the {max} the run store keeps")]
    TooLarge {
        /// The run.
        run_id: String,
        /// Its size.
        size: usize,
        /// The most.
        max: usize,
    },
    /// A batch of writes failed as a whole.
    #[error("run store: {0}")]
    Batch(String),
    /// A SQLite error.
    #[error("run store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error.
    #[error("run store: {0}")]
    Postgres(#[from] sqlx::Error),
    /// An operation this store does not keep (rate budgets on SQLite stay in the process).
    #[error("run store: {0} are not kept in this store")]
    Unsupported(&'static str),
    /// A PostgreSQL migration error.
    #[error("run store: migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The run store; see the crate documentation. Every method is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The store, for logs (never a password).
    fn describe(&self) -> String;

    /// Whether several nodes may share the store (a cluster), so that a node must not act
    /// for the others (discard their queued runs, forget their schedules).
    fn is_shared(&self) -> bool;

    /// Records that a run started outside the queue (`stepwise run`): `INPROCESS`.
    async fn record_start(&self, run: &RunStart) -> Result<(), StoreError>;

    /// Records the end of a run started with [`Store::record_start`] and its step counts.
    /// Calling it again replaces the earlier end.
    async fn record_end(&self, end: &RunEnd) -> Result<(), StoreError>;

    /// Records a run that was not started: `DISCARDED` with the reason.
    async fn record_discarded(&self, run: &RunStart, reason: &str) -> Result<(), StoreError>;

    /// Turns `INPROCESS` runs without a lease whose OS process is gone into `ABORTED`, and
    /// returns how many (runs of a live `stepwise run` are left alone).
    async fn mark_abandoned_as_aborted(&self) -> Result<usize, StoreError>;

    /// Runs matching `filter`, newest first.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// One run and its steps.
    async fn get(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<StepRecord>)>, StoreError>;

    /// One run with its steps and its log (`None` if unknown).
    async fn detail(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let Some((run, steps)) = self.get(run_id).await? else {
            return Ok(None);
        };
        let logs = self.logs(run_id).await?;
        Ok(Some(RunDetail { run, steps, logs }))
    }

    /// Deletes ended runs (with their steps and logs) that started before `before`; returns
    /// how many.
    async fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// The last fired instant of each schedule of `process`.
    async fn last_fired(&self, process: &str) -> Result<HashMap<String, DateTime<Utc>>, StoreError>;

    /// Saves last fired instants `(process, schedule key, instant)`; an instant never moves
    /// backwards.
    async fn save_last_fired(&self, entries: &[(String, String, DateTime<Utc>)]) -> Result<(), StoreError>;

    /// Forgets the schedule state of `process` for schedules not in `keep`.
    async fn retain_schedules(&self, process: &str, keep: &[String]) -> Result<(), StoreError>;

    /// Records a fire of a schedule once: the first call for `(process, schedule, instant)`
    /// queues a run or discards it (overlap, decided against every node's runs of the
    /// process); later calls change nothing and answer [`FireOutcome::Duplicate`].
    async fn fire(&self, fire: &Fire) -> Result<FireOutcome, StoreError>;

    /// [`Store::fire`] for several fires; a store may record them in one transaction. The
    /// answers are in the order of `fires`.
    async fn fire_many(&self, fires: &[Fire]) -> Vec<Result<FireOutcome, StoreError>> {
        let mut out = Vec::with_capacity(fires.len());
        for fire in fires {
            out.push(self.fire(fire).await);
        }
        out
    }

    /// Puts a run in the queue (`stepwise trigger`).
    async fn enqueue(&self, run: &NewRun) -> Result<(), StoreError>;

    /// The response kept with an ended run ([`RunEnd::response`]): `None` while the run is
    /// queued or going, or when it ended without one.
    async fn response(&self, run_id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Takes up to `claim.max` queued runs of the processes the node holds, oldest first,
    /// leasing them to the node. A run whose process is going (overlap `skip` or `queue`, or
    /// a catch-up run) waits until that run ends.
    async fn claim(&self, claim: &Claim) -> Result<Claimed, StoreError>;

    /// Extends the leases of the node's runs; returns the ones it still holds, and those of them
    /// someone asked to cancel.
    async fn renew(&self, node: &str, run_ids: &[String], lease: Duration) -> Result<Renewed, StoreError>;

    /// Cancels run `run_id` for `reason`, whichever node holds it: a queued run is marked
    /// `DISCARDED` at once (it never starts); a going run is marked, and the node running it
    /// stops it (`ABORTED`, with `reason`) when it next renews its leases ([`Renewed::cancel`]).
    /// `audit` is recorded in the same transaction when the cancel takes effect (`Discarded`,
    /// `Requested`), and not when it is refused: the trail holds what happened.
    async fn request_cancel(&self, run_id: &str, reason: &str, audit: &AuditEntry)
    -> Result<CancelOutcome, StoreError>;

    /// The per-step counts of run `run_id` so far, written by `node` while the run goes (the
    /// run's end replaces them); `false`, and nothing written, once the run is not `node`'s
    /// going run any more.
    async fn save_progress(&self, node: &str, run_id: &str, steps: &[StepRecord]) -> Result<bool, StoreError>;

    /// Records the end of a run leased to `node`; discards it if the node lost the lease.
    async fn complete(&self, node: &str, end: &RunEnd) -> Result<Completion, StoreError>;

    /// [`Store::complete`] for several ends of `node`'s runs; a store may record them in one
    /// transaction. The answers are in the order of `ends`.
    async fn complete_many(&self, node: &str, ends: &[RunEnd]) -> Vec<Result<Completion, StoreError>> {
        let mut out = Vec::with_capacity(ends.len());
        for end in ends {
            out.push(self.complete(node, end).await);
        }
        out
    }

    /// Marks `ABORTED` (node lost) every `INPROCESS` run whose lease ran out; returns their
    /// `(run id, node)`.
    async fn expire_leases(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Marks the queued runs of `processes` `DISCARDED` with `reason` (their process is no
    /// longer served); returns how many.
    async fn discard_queued(&self, processes: &[String], reason: &str) -> Result<usize, StoreError>;

    /// Appends lines to a run's log, in order, in one transaction (all or none).
    async fn append_logs(&self, run_id: &str, lines: &[LogLine]) -> Result<(), StoreError>;

    /// A run's log, oldest first.
    async fn logs(&self, run_id: &str) -> Result<Vec<LogLine>, StoreError>;

    /// Whether the store keeps rate budgets, shared by every node ([`Store::reserve_rate`]).
    /// When it does not (SQLite), each OS process keeps its own.
    fn shares_rate_budgets(&self) -> bool {
        false
    }

    /// Reserves a request slot of `budget` (the service and a hash of the token, never the
    /// token) under `limits`, in one statement; or says how long until one may free, or that the
    /// budget is exhausted. A slot counts in every window until [`Store::finish_rate`], then
    /// from the instant of that call.
    async fn reserve_rate(&self, budget: &str, limits: &RateLimits) -> Result<Reservation, StoreError> {
        let _ = (budget, limits);
        Err(StoreError::Unsupported("rate budgets"))
    }

    /// The answer to the request of `slot` has come (or the request failed).
    async fn finish_rate(&self, budget: &str, slot: i64) -> Result<(), StoreError> {
        let _ = (budget, slot);
        Err(StoreError::Unsupported("rate budgets"))
    }

    /// Pauses or exhausts `budget` for every node (a `429`).
    async fn hold_rate(&self, budget: &str, hold: &RateHold) -> Result<(), StoreError> {
        let _ = (budget, hold);
        Err(StoreError::Unsupported("rate budgets"))
    }

    /// Records a token; a name already taken is refused ([`StoreError::DuplicateToken`]).
    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError>;

    /// Records `token` only if the store holds no token at all; whether it did.
    async fn create_first_token(&self, token: &NewToken) -> Result<bool, StoreError>;

    /// Every token, by name (never their hashes).
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Deletes the token `name`. With `keep_an_admin`, the last admin token stays: the check
    /// and the delete are one step, so two admins revoking each other at once leave one.
    async fn revoke_token(&self, name: &str, keep_an_admin: bool) -> Result<Revoked, StoreError>;

    /// The token whose SHA-256 hash is `hash`, recording that it was used at `at` (unless its
    /// recorded use is less than [`LAST_USED_GRANULARITY`] older: the time is to the minute).
    async fn authenticate(&self, hash: &str, at: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError>;

    /// Appends a line to the audit trail.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The audit trail, newest first, at most `limit` lines.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Pauses the schedules of `process` (`by`: who), or resumes them (`None`). Pausing a
    /// paused process keeps the first record.
    async fn set_paused(&self, process: &str, by: Option<&str>, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The paused processes, by name.
    async fn paused(&self) -> Result<Vec<Paused>, StoreError>;

    /// The property overrides a run was started with (`None`: no such run).
    async fn run_overrides(&self, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// Keeps `documents` of the run `run_id` until `expires_at`, in one transaction.
    async fn save_documents(
        &self,
        run_id: &str,
        documents: DocumentChunks,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// How many documents of each step of `run_id` are kept, by step name.
    async fn document_counts(&self, run_id: &str) -> Result<Vec<StepDocuments>, StoreError>;

    /// The kept documents of `step` in `run_id`, by number, skipping `offset`, at most `limit`.
    async fn documents(
        &self,
        run_id: &str,
        step: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RecordedDocument>, StoreError>;

    /// Deletes the documents kept past their expiry; returns how many.
    async fn prune_documents(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Opens a console session: `hash` (the SHA-256 of its id) stands for the token `token`
    /// until `expires_at`.
    async fn open_session(&self, hash: &str, token: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The token of a live session (none once it expired or its token was revoked), recording
    /// that the token was used at `now` (as [`Store::authenticate`] does).
    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError>;

    /// Ends a session, and forgets every expired one.
    async fn close_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file (or a directory for `history.db`, as `--state` always took).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreUrl {
    /// `sqlite:PATH`, `postgres://...` / `postgresql://...`, or a plain path (SQLite).
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(StoreError::Url { url: String::new(), reason: "empty".to_owned() });
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(trimmed.to_owned()));
        }
        if let Some(path) = trimmed.strip_prefix("sqlite://").or_else(|| trimmed.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::Url { url: trimmed.to_owned(), reason: "no file after 'sqlite:'".to_owned() });
            }
            return Ok(StoreUrl::Sqlite(db_path(Path::new(path))));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(StoreError::Url {
                url: redact_url(trimmed),
                reason: format!(
                    "unknown scheme '{scheme}'; expected sqlite:PATH, a path, or postgres://USER@HOST:PORT/DB"
                ),
            });
        }
        Ok(StoreUrl::Sqlite(db_path(Path::new(trimmed))))
    }

    /// Whether the store is shared by several nodes.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreUrl::Postgres(_))
    }

    /// For messages: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => redact_url(url),
        }
    }
}

/// Opens (creating and migrating if needed) the store at `url`.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Arc::new(SqliteStore::open_async(path.clone()).await?),
        StoreUrl::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// Query parameters of a PostgreSQL URL whose values are secrets.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// `url` without the password of its user info, nor the values of its `?password=` and
/// `?sslpassword=` parameters.
pub fn redact_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(redact_query(query))),
        None => (url, None),
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url}{query}");
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let masked = if user_info.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}{tail}{query}")
        }
        None => format!("{url}{query}"),
    }
}

/// A URL's query with the values of [`SECRET_PARAMETERS`] masked.
fn redact_query(query: &str) -> String {
    let pair = |pair: &str| match pair.split_once('=') {
        Some((key, _)) if SECRET_PARAMETERS.iter().any(|s| key.eq_ignore_ascii_case(s)) => format!("{key}=***"),
        _ => pair.to_owned(),
    };
    query.split('&').map(pair).collect::<Vec<_>>().join("&")
}

/// How long a lease is by default (`--lease-secs`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(StoreUrl::parse("sqlite:/tmp/x.db").unwrap(), StoreUrl::Sqlite(PathBuf::from("/tmp/x.db")));
        assert_eq!(StoreUrl::parse("/tmp/dir").unwrap(), StoreUrl::Sqlite(PathBuf::from("/tmp/dir/history.db")));
        assert_eq!(
            StoreUrl::parse(".stepwise/state.db").unwrap(),
            StoreUrl::Sqlite(PathBuf::from(".stepwise/state.db"))
        );
        assert!(StoreUrl::parse("postgres://u:p@h:5432/db").unwrap().is_shared());
        let err = StoreUrl::parse("mysql://u:secret@h/db").unwrap_err().to_string();
        assert!(err.contains("unknown scheme 'mysql'") && !err.contains("secret"), "{err}");
        assert!(StoreUrl::parse("sqlite:").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=secret&PassWord=x&sslpassword=y"),
            "postgres://u@h/db?sslmode=disable&password=***&PassWord=***&sslpassword=***"
        );
        assert_eq!(redact_url("postgres://u:p@h/db?password"), "postgres://u:***@h/db?password");
    }
}
