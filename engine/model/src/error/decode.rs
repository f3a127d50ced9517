//! Why Automerge bytes from outside this process were refused (`Error::Automerge`).

use crate::section::Section;

/// Where bytes handed to Automerge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Origin {
    /// A section's snapshot in the store.
    #[error("the stored {0} snapshot")]
    StoredSnapshot(Section),
    /// A section's change in the store.
    #[error("a stored {0} change")]
    StoredChange(Section),
    /// A batch of a section's changes from a peer.
    #[error("a {0} batch from the peer")]
    PeerBatch(Section),
    /// A section's snapshot from a peer.
    #[error("a {0} snapshot from the peer")]
    PeerSnapshot(Section),
    /// One of a section's changes from a peer.
    #[error("a {0} change from the peer")]
    PeerChange(Section),
    /// One signed change of a section.
    #[error("a {0} change")]
    Change(Section),
    /// Bytes handed in by a caller of the engine (a fuzzer, a test, an import).
    #[error("the given bytes")]
    Given,
}

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// A bound checked before decoding refused them (a hostile run length, a DEFLATE bomb).
    #[error("is refused: {bound}")]
    Refused {
        /// Which bound, in the checker's words.
        bound: String,
    },
    /// Automerge's parser refused them.
    #[error("is malformed: {cause}")]
    Malformed {
        /// Automerge's report.
        cause: String,
    },
    /// Automerge's parser crashed on them.
    #[error("is malformed (Automerge could not decode it)")]
    Crashed,
}
