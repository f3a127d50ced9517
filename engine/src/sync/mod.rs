//! Peer-to-peer sync over iroh: wire format, sessions, device pairing and the endpoint.

pub mod blobs;
pub mod clinic;
pub mod host;
pub mod net;
pub mod pair;
pub(crate) mod proof;
pub mod replica;
pub mod session;
pub mod wire;

pub use host::{Host, LibraryHost};
pub use net::{HostService, NetConfig, SYNC_ALPN, Service};
pub use replica::Replica;
pub use session::{SessionOptions, SessionReport};
