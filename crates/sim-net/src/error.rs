//! Errors of starting and running a simulator.

use std::net::SocketAddr;

/// What can go wrong when starting or running a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration is unusable (for example a fault rate above 1).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("simulator server failed: {0}")]
    Serve(#[source] std::io::Error),
}
