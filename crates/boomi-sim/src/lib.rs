//! An in-memory stand-in for the Boomi Platform REST API, for tests, demos and benchmarks of the
//! `boomi_platform` connector.
//!
//! It serves `AccountUserRole` (create, delete, query, queryMore), `Role` (get, query,
//! queryMore, bulk), `AccountGroup` (get, query, queryMore) and `AccountGroupUserRole` (create,
//! delete, query, queryMore) under `/api/rest/v1/{accountId}/`, in JSON, with Boomi's
//! `QueryFilter` (every operator, nested and/or groups) and 100-result pages continued by
//! `queryMore`. It checks Basic auth (`BOOMI_TOKEN.<email>` / token: 401) and the account id
//! (403), keeps Boomi's rules (a grant for an unknown user creates and invites them; deleting a
//! user's last global role removes them from the account; only users who have logged in get
//! group roles; non-primary accounts have no account groups; one seeded role has a non-UUID id
//! and cannot be assigned), limits requests per second (503 beyond) and injects seeded faults.
//! `GET /__sim/stats` counts what clients did; `GET /__sim/state` dumps the account.
//!
//! Choices where the reference is silent:
//! - Conceptual ids: `AccountUserRole.id` is the unpadded URL-safe base64 of
//!   `roleId|userId|accountId`, `AccountGroupUserRole.id` of `roleId|userId|accountGroupId`.
//! - A grant the user already holds answers 400 `{"@type": "Error", "message":
//!   "AccountUserRole already exists: ..."}` (or `AccountGroupUserRole already exists: ...`);
//!   a client may treat "already exists" as success.
//! - `numberOfResults` is the number of results in the page; `result` is always present
//!   (an empty array when nothing matches); tokens do not expire with time (the 1,000 most
//!   recent paged queries keep theirs, to bound memory in long runs), a query's matches are a
//!   snapshot taken by the query, and re-sending a token returns the same page.
//!
//! Start it in-process with [`start`], or from the command line through [`Args`] and
//! [`serve_forever`] (`stepwise boomi-sim --port 8788`).

mod api;
mod cli;
mod config;
mod filter;
mod limits;
mod model;
mod reply;
mod seed;
mod server;
mod stats;

pub use cli::{Args, serve_forever};
pub use config::{SANDBOX_ACCOUNT_ID, SANDBOX_EMAIL, SANDBOX_TOKEN, SimConfig};
pub use model::{
    ADMINISTRATOR_ROLE_ID, NON_UUID_ROLE_ID, PRODUCTION_SUPPORT_ROLE_ID, STANDARD_USER_ROLE_ID, SUPPORT_ROLE_ID,
};
pub use server::{SimHandle, start};
pub use sim_net::SimError;
