//! What is damaged in a store (`Error::Corrupt`) and how a signature or certificate fails
//! (`Error::BadSignature`): one kind per finding, with the values it concerns.

use crate::section::Section;

/// A value a store keeps, as a damage report names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Stored {
    /// One of the store's metadata values.
    #[error("store metadata `{0}`")]
    Metadata(String),
    /// The store's format version.
    #[error("the store format version")]
    FormatVersion,
    /// The store's key-derivation settings.
    #[error("the store's key-derivation settings")]
    KdfSettings,
    /// The store key, wrapped under the passphrase.
    #[error("the wrapped store key")]
    WrappedKey,
    /// A clinic's library key.
    #[error("the library key")]
    LibraryKey,
    /// A device's own key.
    #[error("the device key")]
    DeviceKey,
    /// The record's id.
    #[error("the record id")]
    RecordId,
    /// The device's credential.
    #[error("the device's credential")]
    Credential,
    /// A secret the store keeps under a name.
    #[error("the stored `{0}`")]
    Secret(String),
    /// A peer's key.
    #[error("a peer key in the store")]
    PeerKey,
    /// A change's signature.
    #[error("a stored signature")]
    Signature,
    /// A change row's key.
    #[error("a change key in the store")]
    ChangeKey,
    /// A statement of who belongs to a record.
    #[error("a stored membership statement")]
    Membership,
    /// A section's snapshot.
    #[error("the stored {0} snapshot")]
    Snapshot(Section),
    /// One of a section's change rows.
    #[error("a stored {0} change")]
    Change(Section),
    /// A clinic's staff member.
    #[error("a stored staff member")]
    StaffMember,
    /// A clinic's invitation.
    #[error("a stored invitation")]
    Invitation,
}

/// What is damaged in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The database found damage (its own report).
    #[error("{0}")]
    Database(crate::error::BoxError),
    /// A read of the database that crashed on damaged data.
    #[error("reading the store hit damaged data")]
    Crashed,
    /// The file is not a phr store.
    #[error("this file is not a phr store (no metadata table)")]
    NotAStore,
    /// The newest changes fail their checksums (a write torn by a crash or altered).
    #[error("the latest changes fail their checksums")]
    Checksums,
    /// A table whose keys do not walk in order.
    #[error("the `{table}` table is out of order")]
    TableOrder {
        /// The table's name.
        table: String,
    },
    /// A sealed value cut short.
    #[error("a sealed value is truncated")]
    SealedTruncated,
    /// A sealed value of a version phr does not know.
    #[error("a sealed value has unknown version {version}")]
    SealedVersion {
        /// The version byte.
        version: u8,
    },
    /// A sealed value that fails its integrity check (altered, or a wrong key).
    #[error("a sealed value failed its integrity check")]
    SealedIntegrity,
    /// Key-derivation settings argon2 refuses.
    #[error("stored key-derivation settings are invalid")]
    KdfSettings,
    /// A stored value that is not there.
    #[error("{0} is missing")]
    Missing(Stored),
    /// A stored value that does not decode.
    #[error("{0} is unreadable")]
    Unreadable(Stored),
    /// A stored value of the wrong length.
    #[error("{0} has the wrong length")]
    WrongLength(Stored),
    /// A stored value that does not decode as what it should be.
    #[error("{stored} does not decode: {cause}")]
    Undecodable {
        /// What was decoded.
        stored: Stored,
        /// Why not.
        cause: Box<crate::error::Error>,
    },
    /// A stored value that decodes but fails its check.
    #[error("{stored} fails its check: {cause}")]
    FailsCheck {
        /// What was checked.
        stored: Stored,
        /// Why it fails.
        cause: Box<crate::error::Error>,
    },
    /// The audit log has gaps.
    #[error("the audit log is missing events (truncated or damaged)")]
    AuditGap,
    /// An audit event without its signature.
    #[error("an audit event has lost its signature")]
    AuditUnsigned,
}
