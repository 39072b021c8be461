//! Errors of setting up a Boomi Platform connection (not of individual calls, which become
//! `engine::ApiError`s of the documents they answer).

/// What can go wrong while reading a `boomi_platform` connection.
#[derive(Debug, thiserror::Error)]
pub enum BoomiError {
    /// A connection setting is missing or invalid (base URL, account id, email, rate).
    #[error("{0}")]
    Setting(String),
    /// The HTTP client could not be built or a URL is not allowed.
    #[error(transparent)]
    Http(#[from] connector_http::HttpError),
}
