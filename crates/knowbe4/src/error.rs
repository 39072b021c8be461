//! Errors of setting up a KnowBe4 connection.

/// A connection that cannot be made (the run fails at the first step that uses it).
#[derive(Debug, thiserror::Error)]
pub enum KnowBe4Error {
    /// A bad region, base URL or environment setting.
    #[error("{0}")]
    Setting(String),
    /// The shared HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] connector_http::HttpError),
}
