//! A faithful, in-memory stand-in for KnowBe4's HTTP APIs, for tests, demos and benchmarks.
//!
//! The simulator speaks the KSAT GraphQL API (`POST /graphql`, queries and mutations with the
//! argument and field names of the real service), the Partner API `accounts` query, and the
//! read-only Reporting REST API (`GET /v1/users`, `/v1/groups`, `/v1/groups/{id}/members`, ...).
//! It enforces bearer-token auth, KnowBe4's per-second / per-minute / per-day request limits
//! (HTTP 429, with `Retry-After` for the burst windows), the gateway timeout (HTTP 504) on large bulk membership calls,
//! and injects seeded faults (500, 503, slow answers, dropped connections, truncated bodies).
//! `GET /__sim/stats` tells what a client did or did not send.
//!
//! Start it in-process with [`start`], or from the command line through [`Args`] and
//! [`serve_forever`] (`stepwise knowbe4-sim --port 8787`).
//!
//! Behaviour a client can rely on:
//! - HTTP: 401 `{"message":"Unauthorized"}` for a missing or unknown bearer token; 429
//!   `{"message":"Too many requests"}` with `x-sim-rate-limit: second|minute|day` and, for the
//!   second and minute windows, `Retry-After` (whole seconds; the daily quota's 429 has none); 504 (HTML body, no state change) for `userAddToGroups` /
//!   `userDeleteMemberships` with more than `bulk_timeout_size` user ids; 400 for a body that is
//!   not a GraphQL request; every answer carries `x-request-id`.
//! - GraphQL errors (HTTP 200, `extensions.code`): `FORBIDDEN` for a mutation with a read-only
//!   token, a KSAT operation with a partner token, or `accounts` without a partner token;
//!   `INVALID_ARGUMENT` for `per` outside 1..=1000 or `page` below 1.
//! - Payload errors (`errors { field placeholders reason recordId message }`, HTTP 200, and then
//!   nothing changed): `not_found`, `taken`, `too_long` (`placeholders.count`), `blank`,
//!   `invalid`, `not_console_group`, `archived`, `not_archivable` (admins), `closed`,
//!   `not_running`.
//! - `userArchive`, `userUnarchive`, `userAddToGroups` and `userDeleteMemberships` return the
//!   users as a list in `node`; `groupArchive` / `groupDelete` return `nodes`;
//!   `trainingCampaignDelete` / `trainingCampaignAddUser` return a Boolean `node`.
//! - Partner `accounts`: `userCount` counts active (non-archived) users, all users with
//!   `archivedUsers: true`; the first account is this tenant, whose counts are live.

mod cli;
mod config;
mod inspect;
mod limits;
mod model;
mod mutation;
mod query;
mod rest;
mod scalars;
mod seed;
mod server;
mod stats;

pub use cli::{Args, serve_forever};
pub use config::{SANDBOX_PARTNER_TOKEN, SANDBOX_TOKEN, SimConfig, TokenKind, daily_quota};
pub use server::{SimHandle, start};
pub use sim_net::SimError;
