//! The portal's one error type: what can stop it from starting or serving.

use std::net::SocketAddr;

/// Why the portal could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address other than loopback was asked for, which needs TLS.
    #[error(
        "the portal listens only on this computer (127.0.0.1 or ::1) for now, not on {0}: \
         serving other devices needs TLS, which the portal does not support yet"
    )]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The system's random number generator failed.
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    /// Serving stopped on an I/O error.
    #[error("the portal stopped: {0}")]
    Serve(#[source] std::io::Error),
    /// The engine refused or failed an operation.
    #[error(transparent)]
    Engine(#[from] phr_engine::Error),
    /// A page could not be rendered (a template error: a bug in phr).
    #[error("a page could not be drawn: {0}")]
    Render(#[from] askama::Error),
}
