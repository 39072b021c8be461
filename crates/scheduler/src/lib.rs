//! Scheduling for Stepwise: cron schedules with time zones, and the `serve` loop that fires
//! process runs into the run store (crate `store`) and runs what it takes from it.
//!
//! * [`schedule`]: parses cron expressions and computes fire instants with the process format's
//!   daylight-saving rule; used by `stepwise schedule` and the service.
//! * [`service`]: `stepwise serve DIR`; loads process files through a [`service::ProcessLoader`],
//!   fires their schedules, claims queued runs and runs them through a
//!   [`service::ProcessRunner`], with overlap, catch-up, leases, reload, graceful shutdown and an
//!   optional `/health` + `/metrics` HTTP endpoint.
//!
//! **API Boundary:** this crate knows nothing of the engine; the CLI implements the two traits.

/// Cron schedules live in the pure compiler crate, so `stepwise validate` and the service agree.
pub use compiler::schedule;
pub mod service;

/// Implement [`service::ProcessRunner`] with this attribute.
pub use async_trait::async_trait;
pub use schedule::{CatchUp, Overlap, Schedule, ScheduleError, ScheduleSpec, format_rfc3339};
pub use service::{
    CancelSignal, Control, ControlHook, LoadedProcess, Outline, ProcessLoader, ProcessRunner, ProcessView,
    PropertyView, RunOutcome, RunRequest, ScheduleView, ServiceConfig, ServiceError, StepView, Stopped, Webhook,
    WebhookSecret, control, serve, serve_with,
};

#[cfg(test)]
mod tests;
