//! Reusable HTTP pieces for Stepwise connectors (KnowBe4, Boomi Platform, ...).
//!
//! - [`client`]: one process-wide reqwest client (rustls) with connect and request timeouts.
//! - [`pacer`]: a fair async pacer that keeps under several request windows at once (for
//!   example 4 per second AND 50 per rolling minute), shared by every caller of one API key for
//!   the life of the process, behind the [`RateBudget`] trait (a cluster-wide budget can
//!   implement it too: the program installs a [`BudgetSource`], and connectors ask
//!   [`shared_budget`]).
//! - [`retry`]: exponential backoff with jitter, `Retry-After` parsing, and the classification
//!   of failures into throttled / transient (maybe executed or not) / permanent.
//! - [`call`]: [`call::Caller::send_json`], one JSON request through pacer and retries, with
//!   the rule that a request that is not idempotent is never blindly re-sent after a failure
//!   that may have been executed by the server.
//! - [`transport`]: what a caller sends each attempt through: the network by default, or a
//!   [`Transport`] given by a process test.
//! - [`url`]: the base URL rule (https, or plain http to loopback only).
//! - [`schema`]: validation of a JSON document against an embedded JSON Schema, returning
//!   `engine::FieldError`s; a connector's embedded per-action schemas ([`SchemaSet`],
//!   [`embed_schemas!`]) and the document input of an action.
//! - [`docs`]: the object/action table of a connector's page, generated from its schemas, and
//!   the checks that keep the page, the schema files and the operations in step.
//!
//! Nothing here ever logs a request header; bearer tokens are marked sensitive.

mod budget;
pub mod call;
pub mod client;
pub mod docs;
mod error;
pub mod pacer;
pub mod retry;
pub mod schema;
pub mod transport;
pub mod url;

pub use budget::{BudgetSource, install_budget_source, limits_of, shared_budget};
pub use call::{Caller, JsonRequest, JsonResponse, Safety, SendError};
pub use client::{ClientConfig, shared_client};
pub use error::HttpError;
pub use pacer::{Exhausted, Pacer, Permit, RateBudget, Window, budget_key, shared_pacer};
pub use retry::{Class, RetryPolicy, classify_error, classify_status, parse_retry_after};
pub use schema::{InputSchema, InputSource, JsonSchema, SchemaSet, document_input, document_json, invalid_input};
pub use transport::{Answer, Fault, Outgoing, ReqwestTransport, Transport};
pub use url::check_base_url;

/// The reqwest version these helpers are built on, for connectors that need its types.
pub use reqwest;
