//! How the network or a sync session failed (`Error::Network`, `Error::Sync`): one kind per
//! failure. Where the cause is another party's words (the network library's report, or a peer's
//! reason, which travels on the wire as text), it is carried as given.

/// How reaching a peer failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkProblem {
    /// The endpoint could not be opened.
    #[error("could not open the network endpoint on {bind}: {cause}")]
    Endpoint {
        /// The address asked for.
        bind: String,
        /// The network library's report.
        cause: String,
    },
    /// A peer could not be reached.
    #[error("could not reach {who}: {cause}")]
    Unreachable {
        /// The peer's short id.
        who: String,
        /// The network library's report.
        cause: String,
    },
    /// A connection broke.
    #[error("{cause}")]
    Connection {
        /// The network library's report.
        cause: String,
    },
    /// Sending failed.
    #[error("sending to the peer failed: {cause}")]
    Send {
        /// The network library's report.
        cause: String,
    },
    /// A reply ended before it was whole.
    #[error("message cut short: {cause}")]
    CutShort {
        /// The network library's report.
        cause: String,
    },
    /// A reply larger than any phr sends.
    #[error("message too large")]
    TooLarge,
    /// A reply that does not decode.
    #[error("malformed message")]
    Malformed,
    /// Text that is not a peer address.
    #[error("`{given}` is not a peer address: use DEVICE_KEY@IP:PORT")]
    NotAnAddress {
        /// What was given.
        given: String,
    },
    /// An address whose key is not a device key.
    #[error("`{given}` is not a device key")]
    NotADeviceKey {
        /// What was given.
        given: String,
    },
    /// An address whose socket part is not IP:PORT.
    #[error("`{given}` is not an IP:PORT address")]
    NotASocket {
        /// What was given.
        given: String,
    },
}

/// How a sync session with a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncProblem {
    /// The connection failed or broke.
    #[error("{cause}")]
    Connection {
        /// The network library's report.
        cause: String,
    },
    /// The connection closed while this side was sending.
    #[error("the connection closed while sending")]
    ClosedWhileSending,
    /// The peer did not answer in time.
    #[error("the peer did not answer in time")]
    Timeout,
    /// The peer answered with something other than hello.
    #[error("the peer did not answer with hello")]
    NoHello,
    /// The peer started with something other than hello.
    #[error("the peer did not start with hello")]
    NoOpeningHello,
    /// The peer said hello twice.
    #[error("the peer said hello twice")]
    HelloTwice,
    /// The peer speaks another protocol version.
    #[error("protocol version {theirs} is not supported (this side speaks {ours})")]
    Version {
        /// The peer's version.
        theirs: u32,
        /// This side's.
        ours: u32,
    },
    /// The peer refused, with its reason.
    #[error("refused: {reason}")]
    RefusedByPeer {
        /// The peer's own words.
        reason: String,
    },
    /// This side refused the peer, with the reason it told the peer.
    #[error("refused: {reason}")]
    Refused {
        /// The reason sent to the peer.
        reason: String,
    },
    /// The peer broke the protocol.
    #[error("{violation}")]
    Protocol {
        /// What the wire reader found.
        violation: String,
    },
    /// The peer sent changes of a record outside the session.
    #[error("the peer sent changes of record {record} outside this session")]
    OutsideSession {
        /// The record's short id.
        record: String,
    },
    /// This side could not take the peer's changes in.
    #[error("{0}")]
    TakeIn(Box<crate::error::Error>),
    /// The peer was removed from the record or lost its access.
    #[error("the peer was removed from the record, or its access was revoked")]
    Removed,
    /// This side fell too far behind the live changes.
    #[error("fell {batches} batches behind; reconnect to catch up")]
    Lagged {
        /// Batches missed.
        batches: u64,
    },
    /// The peer left before the sync finished.
    #[error("the peer left before the sync finished")]
    LeftEarly,
    /// The peer refused to send an attachment this device may not read.
    #[error("refused to send attachment {blob}: this device may not read an entry that references it")]
    AttachmentRefused {
        /// The blob's short id.
        blob: String,
    },
    /// An attachment transfer failed.
    #[error("could not send attachment {blob}: {cause}")]
    AttachmentFailed {
        /// The blob's short id.
        blob: String,
        /// What went wrong.
        cause: String,
    },
}
