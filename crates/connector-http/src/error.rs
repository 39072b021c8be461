//! Errors of setting up HTTP pieces (not of individual calls; see `call::SendError`).

/// What can go wrong while building the client, checking a URL or compiling a schema.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The HTTP client could not be built (TLS backend, resolver).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// A base URL is not allowed or does not parse.
    #[error("{0}")]
    BaseUrl(String),
    /// An embedded JSON Schema does not compile (a bug in the connector).
    #[error("the JSON Schema '{name}' is invalid: {message}")]
    Schema { name: String, message: String },
}
