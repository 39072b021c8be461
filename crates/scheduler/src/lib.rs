//! Scheduling for Stepwise (issue 7): cron schedules with time zones, run history in SQLite,
//! and the `serve` loop that fires process runs.
//!
//! * [`schedule`]: parses cron expressions and computes fire instants with the process format's
//!   daylight-saving rule; used by `stepwise schedule` and the service.
//! * [`history`]: the run history database (`stepwise run` and `stepwise serve` write it,
//!   `stepwise history` reads it), plus text rendering for the CLI.
//! * [`service`]: `stepwise serve DIR`; loads process files through a [`service::ProcessLoader`],
//!   fires their schedules and runs them through a [`service::ProcessRunner`], with overlap,
//!   catch-up, reload, graceful shutdown and an optional `/health` + `/metrics` HTTP endpoint.
//!
//! **API Boundary:** this crate knows nothing of the engine; the CLI implements the two traits.

pub mod history;
/// Cron schedules live in the pure compiler crate, so `stepwise validate` and the service agree.
pub use compiler::schedule;
pub mod service;

/// Implement [`service::ProcessRunner`] with this attribute.
pub use async_trait::async_trait;
pub use history::{
    History, HistoryError, ListFilter, RunEnd, RunRecord, RunStart, RunStatus, StepRecord, Trigger, db_path,
    render_run_detail, render_runs_table,
};
pub use schedule::{CatchUp, Overlap, Schedule, ScheduleError, ScheduleSpec, format_rfc3339};
pub use service::{LoadedProcess, ProcessLoader, ProcessRunner, RunOutcome, ServiceConfig, ServiceError, serve};

#[cfg(test)]
mod tests;
