//! The records the store keeps, shared by every implementation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `stepwise run` or `stepwise trigger`.
    Manual,
    /// A schedule of `stepwise serve`.
    Schedule,
    /// `stepwise run --test`.
    Test,
    /// A webhook start.
    Webhook,
    /// A run started again from the history.
    Rerun,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 5] = [Trigger::Manual, Trigger::Schedule, Trigger::Test, Trigger::Webhook, Trigger::Rerun];

    /// The name stored in the database and printed by `stepwise history`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Test => "test",
            Trigger::Webhook => "webhook",
            Trigger::Rerun => "rerun",
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
        Trigger::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown trigger '{s}'"))
    }
}

/// Run statuses (process format section 6, plus the two of a run not ended yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// In the queue of runs, not taken by a node yet.
    Queued,
    /// Started, not ended yet.
    InProcess,
    /// Completed.
    Complete,
    /// Completed, but error documents were produced or errors caught.
    CompleteWarn,
    /// Failed.
    Error,
    /// The engine stopped mid-run, or the node running it was lost.
    Aborted,
    /// Not started (overlap, or a queued run that could no longer run).
    Discarded,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
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
            RunStatus::Queued => "QUEUED",
            RunStatus::InProcess => "INPROCESS",
            RunStatus::Complete => "COMPLETE",
            RunStatus::CompleteWarn => "COMPLETE_WARN",
            RunStatus::Error => "ERROR",
            RunStatus::Aborted => "ABORTED",
            RunStatus::Discarded => "DISCARDED",
        }
    }

    /// Whether a run can end with this status ([`crate::Store::record_end`]).
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
            format!(
                "unknown run status '{s}'; expected one of QUEUED, INPROCESS, COMPLETE, COMPLETE_WARN, ERROR, ABORTED, DISCARDED"
            )
        })
    }
}

/// What a schedule does when it fires while a run of its process is going (process format
/// section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overlap {
    /// Discard the fire.
    Skip,
    /// Keep one waiting run.
    Queue,
    /// Start anyway.
    Allow,
}

impl Overlap {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }

    /// Parses [`Overlap::as_str`]; anything else is `skip`.
    pub fn parse(s: &str) -> Overlap {
        match s {
            "queue" => Overlap::Queue,
            "allow" => Overlap::Allow,
            _ => Overlap::Skip,
        }
    }
}

/// A run that starts at once, outside the queue (`stepwise run`), or that was not started
/// ([`crate::Store::record_discarded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// Unique id (UUID v7).
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// What started it.
    pub trigger: Trigger,
    /// The schedule's fire instant, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The node (host and OS process) that runs it.
    pub node: String,
    /// With a lease, the run must be renewed ([`crate::Store::renew`]) or it is marked
    /// `ABORTED` once the lease runs out; without, only the OS process check of
    /// [`crate::Store::mark_abandoned_as_aborted`] closes it (SQLite).
    pub lease: Option<Duration>,
    /// `--set NAME=VALUE` property overrides (kept for a rerun).
    pub overrides: Vec<(String, String)>,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The run.
    pub run_id: String,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// `COMPLETE`, `COMPLETE_WARN`, `ERROR` or `ABORTED`.
    pub status: RunStatus,
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
    /// The data of the last document that reached a `stop` with `respond: true` (the answer
    /// to a `respond: sync` webhook), at most [`MAX_START_DOCUMENT_BYTES`]; larger is not kept.
    pub response: Option<Vec<u8>>,
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

/// One row of the run history (`stepwise history --json` prints these; process format
/// section 8).
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
    /// The node that ran it (or discarded it); `None` while queued.
    pub node: Option<String>,
    /// When it was put in the queue; `None` for runs started outside it.
    pub queued_at: Option<DateTime<Utc>>,
    /// When it started; while `QUEUED`, when it was queued.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while queued or `INPROCESS`.
    pub ended_at: Option<DateTime<Utc>>,
    /// One of the [`RunStatus`] spellings.
    pub status: String,
    /// Documents that entered the process.
    pub documents_in: u64,
    /// Documents that left it.
    pub documents_out: u64,
    /// Error documents.
    pub documents_error: u64,
    /// The run's error (or why it was discarded or aborted), if any.
    pub error: Option<String>,
    /// The SHA-256 of the process file the run was queued for, when known.
    pub content_hash: Option<String>,
    /// Why a cancel was asked for a run still `INPROCESS`: its node stops it at its next lease
    /// renewal ([`crate::Store::request_cancel`]). `None` once the run has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_requested: Option<String>,
    /// For a rerun (trigger `rerun`), the run it repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
}

/// One run as `stepwise history RUN_ID --json` and `GET /api/v1/runs/{run_id}` give it: the
/// fields of the history row at the top level (process format sections 8 and 9), with the
/// run's steps and log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunDetail {
    /// The history row.
    #[serde(flatten)]
    pub run: RunRecord,
    /// Per-step counts: so far while it runs, final once it ended.
    pub steps: Vec<StepRecord>,
    /// What the nodes noted about the run.
    pub logs: Vec<LogLine>,
}

/// Which runs [`crate::Store::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only runs of this process.
    pub process: Option<String>,
    /// Only runs with this status (e.g. `ERROR`).
    pub status: Option<String>,
    /// Only runs with this trigger.
    pub trigger: Option<Trigger>,
    /// Only runs that started (or, queued, were queued) at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only runs that started (or were queued) before this instant.
    pub until: Option<DateTime<Utc>>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

/// One fire of a schedule, offered to the store ([`crate::Store::fire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// The run id to use if this fire is the first of its instant.
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// The schedule's key (cron and time zone).
    pub schedule: String,
    /// The fire instant.
    pub instant: DateTime<Utc>,
    /// The firing schedule's overlap rule.
    pub overlap: Overlap,
    /// A catch-up fire: it waits its turn behind the process's other runs, never discarded.
    pub catch_up: bool,
    /// SHA-256 of the process file of the node that fires.
    pub content_hash: String,
    /// The node that fires.
    pub node: String,
    /// When it fired.
    pub at: DateTime<Utc>,
}

/// What became of a [`Fire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// Put in the queue of runs as `QUEUED`.
    Queued,
    /// Recorded `DISCARDED` (overlap), with the reason.
    Discarded(String),
    /// Another node (or an earlier call) recorded this fire already: nothing was written.
    Duplicate,
}

/// A run put in the queue by hand (`stepwise trigger`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// Unique id (UUID v7).
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// What started it.
    pub trigger: Trigger,
    /// Property overrides (`--set NAME=VALUE`), in order.
    pub overrides: Vec<(String, String)>,
    /// Only a node holding the process at this hash may take it; `None`: any node holding it.
    pub content_hash: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// The start document of a webhook run, carried with the run to the node that takes it.
    pub start_document: Option<StartDocument>,
    /// For a rerun, the run it repeats.
    pub rerun_of: Option<String>,
}

/// The start document of a webhook run: the request's body and the named headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartDocument {
    /// The request body.
    pub data: Vec<u8>,
    /// Document properties, in order.
    pub properties: Vec<(String, String)>,
}

/// The largest start document ([`NewRun::start_document`]) and response ([`RunEnd::response`])
/// the store keeps: 16 MiB.
pub const MAX_START_DOCUMENT_BYTES: usize = 16 << 20;

/// What a node asks of [`crate::Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The node.
    pub node: String,
    /// The processes the node holds: `(name, content hash)`.
    pub processes: Vec<(String, String)>,
    /// At most this many runs.
    pub max: usize,
    /// The lease the claimed runs get.
    pub lease: Duration,
    /// When they start.
    pub now: DateTime<Utc>,
}

/// A run a node took from the queue; it is `INPROCESS`, leased to that node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    /// The run.
    pub run_id: String,
    /// Process name.
    pub process: String,
    /// What started it.
    pub trigger: Trigger,
    /// The schedule's fire instant, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Property overrides.
    pub overrides: Vec<(String, String)>,
    /// The start document of a webhook run.
    pub start_document: Option<StartDocument>,
}

/// What [`crate::Store::claim`] found besides the runs it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// Runs now leased to the node.
    pub runs: Vec<ClaimedRun>,
    /// Queued runs left because the node holds another version of their process:
    /// `(run id, process, wanted hash)`.
    pub other_version: Vec<(String, String, String)>,
}

/// How [`crate::Store::complete`] took a run's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Recorded.
    Recorded,
    /// The node no longer held the run (its lease ran out and the run was closed as
    /// `ABORTED`): the result is discarded.
    Discarded,
}

/// What [`crate::Store::renew`] found for the node's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewed {
    /// The runs the node still holds (leases extended).
    pub held: Vec<String>,
    /// Held runs someone asked to cancel ([`crate::Store::request_cancel`]): `(run id, reason)`.
    /// The node stops them.
    pub cancel: Vec<(String, String)>,
}

/// What [`crate::Store::request_cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued: it is now `DISCARDED` and never starts.
    Discarded,
    /// The run is going on `node`, under a lease: that node stops it when it next renews the
    /// lease (the node that asked may stop it at once when it is its own).
    Requested {
        /// The node running it.
        node: String,
    },
    /// The run is going without a lease (a `stepwise run` on `node`): no service can stop it.
    Unleased {
        /// The node running it.
        node: String,
    },
    /// The run has ended, with this status.
    Ended {
        /// Its status.
        status: String,
    },
    /// No such run.
    Unknown,
}

impl CancelOutcome {
    /// Whether the cancel took effect (the run is discarded, or its node will stop it).
    pub fn took_effect(&self) -> bool {
        matches!(self, CancelOutcome::Discarded | CancelOutcome::Requested { .. })
    }
}

/// A line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When.
    pub at: DateTime<Utc>,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The node that wrote it.
    pub node: String,
    /// What happened.
    pub message: String,
}

/// The default node name: host name and OS process id (`host:1234`).
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The overlap decision of a fire, given the process's runs going and waiting on every node.
pub(crate) fn decide_fire(fire: &Fire, running: u64, waiting: u64) -> FireOutcome {
    if fire.catch_up || (running == 0 && waiting == 0) {
        return FireOutcome::Queued;
    }
    match fire.overlap {
        Overlap::Allow => FireOutcome::Queued,
        Overlap::Queue if waiting == 0 => FireOutcome::Queued,
        Overlap::Queue => FireOutcome::Discarded("overlap queue: a run of the process is already waiting".to_owned()),
        Overlap::Skip => FireOutcome::Discarded("overlap skip: the previous run is still going".to_owned()),
    }
}

/// The error of a run whose node stopped renewing its lease.
/// Free text as every store keeps it: a NUL character (which PostgreSQL's text refuses, and
/// which a document or a server's answer may hold) becomes U+FFFD, so that the write is never
/// lost for it.
pub(crate) fn text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// How stale a token's `last_used_at` may be: a use within this of the recorded one writes
/// nothing (a page reloading every 2 seconds does not write the tokens table every time).
pub const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Whether a use at `at` of a token last used at `last` is worth recording.
pub(crate) fn use_worth_recording(last: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    last.is_none_or(|last| at - last >= LAST_USED_GRANULARITY)
}

pub(crate) fn node_lost_reason(node: &str) -> String {
    format!("node lost: node '{node}' stopped renewing the run's lease")
}

/// Property overrides as stored (a JSON array of `[name, value]` pairs), `None` when empty.
pub(crate) fn overrides_json(overrides: &[(String, String)]) -> Option<String> {
    if overrides.is_empty() { None } else { serde_json::to_string(overrides).ok() }
}

/// The stored overrides; unreadable ones count as none.
pub(crate) fn parse_overrides(text: Option<&str>) -> Vec<(String, String)> {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

/// The stored start document, from its two columns; `None` when there is no data.
pub(crate) fn start_document(data: Option<Vec<u8>>, properties: Option<&str>) -> Option<StartDocument> {
    data.map(|data| StartDocument { data, properties: parse_overrides(properties) })
}

/// The response kept with a run's end: none over [`MAX_START_DOCUMENT_BYTES`].
pub(crate) fn kept_response(end: &RunEnd) -> Option<&[u8]> {
    end.response.as_deref().filter(|r| r.len() <= MAX_START_DOCUMENT_BYTES)
}

/// Refuses a start document over [`MAX_START_DOCUMENT_BYTES`].
pub(crate) fn check_start_document(run: &NewRun) -> Result<(), crate::StoreError> {
    match &run.start_document {
        Some(doc) if doc.data.len() > MAX_START_DOCUMENT_BYTES => Err(crate::StoreError::TooLarge {
            run_id: run.run_id.clone(),
            size: doc.data.len(),
            max: MAX_START_DOCUMENT_BYTES,
        }),
        _ => Ok(()),
    }
}
