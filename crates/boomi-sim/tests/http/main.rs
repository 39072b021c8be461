//! Real-HTTP tests of the Boomi simulator, with hand-written requests (no connector).

mod common;
mod endpoints;
mod filters;
mod limits;
mod rules;
