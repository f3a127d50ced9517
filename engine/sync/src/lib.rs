//! phr-sync: peer-to-peer sync over iroh. The wire format, sessions, device pairing, blob
//! transfer, the endpoint (binding, dialing, admission) and the service that mounts the
//! protocol handlers on it; the replica shared between them and the device.

pub mod attach;
pub mod blobs;
pub mod endpoint;
pub mod host;
pub mod net;
pub mod pair;
pub mod proof;
pub mod replica;
pub mod request;
pub mod session;
pub mod wire;

pub use host::{Host, LibraryHost};
pub use net::{HostService, NetConfig, SYNC_ALPN, Service};
pub use replica::Replica;
pub use session::{SessionOptions, SessionReport};
