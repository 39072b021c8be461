//! Unit tests, one module per area.

mod schedule;
mod service;
