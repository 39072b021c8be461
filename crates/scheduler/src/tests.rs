//! Unit tests, one module per area.

mod history;
mod schedule;
mod service;
