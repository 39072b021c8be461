//! Runs a compiled `compiler::Plan` with Boomi's execution semantics.
//!
//! Owns documents, the executor (batch order, paths, try/catch, errors), parameters, the
//! `Connector` trait and registry that connectors plug into, the built-in disk connector, and
//! the test-mode recorder hook. **Architecture Invariant:** the engine knows no connector but
//! disk by name; KnowBe4 and Boomi Platform arrive through the `Registry`.

mod cancel;
mod connector;
mod disk;
mod document;
pub mod dump;
mod params;
mod progress;
mod report;
mod run;

pub use cancel::Cancel;
pub use connector::{
    ApiError, ConnectEnv, Connector, ConnectorError, ConnectorFactory, ErrorKind, FieldError, Input, OperationRef,
    Output, Redactor, Registry, SandboxTarget, Secret, Transports,
};
pub use disk::DiskFactory;
pub use document::{Document, Properties};
pub use progress::Progress;
pub use report::{Notification, RunError, RunReport, RunStatus, StepStats};
pub use run::{RUN_STACK_BYTES, Recorder, RunOptions, run};

#[cfg(test)]
mod tests;
