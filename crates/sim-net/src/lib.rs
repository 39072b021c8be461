//! What the simulators (`knowbe4-sim`, `boomi-sim`) share below their APIs:
//! - [`listener`]: a TCP listener for axum whose connections can be dropped mid-request (the
//!   "dropped connection" fault);
//! - [`server`]: binding, serving with per-connection info ([`Conn`]), and stopping;
//! - [`SimError`]: the errors of starting and running a simulator;
//! - [`faults`]: seeded fault injection (each simulator names its kinds and their answers), and
//!   scripted faults for chosen requests, before or after the request is executed;
//! - [`stats`]: the request counters that open `GET /__sim/stats`;
//! - [`seed`]: seeded people (names and emails) for the data sets.
//!
//! Routes, auth, limits, data and answer bodies stay in each simulator.

mod error;
pub mod faults;
pub mod listener;
pub mod seed;
pub mod server;
pub mod stats;

pub use error::SimError;
pub use faults::{Fault, FaultPicker, FaultScript, Moment, ScriptedFault, Strike};
pub use listener::{KillableListener, KillableStream};
pub use server::{Bound, Conn, Running, bind};
pub use stats::RequestStats;
