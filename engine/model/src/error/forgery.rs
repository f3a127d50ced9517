//! How a key, signature, certificate or capability fails its check (`Error::BadSignature`).

use crate::capability::Right;
use crate::section::Section;

/// A key, signature or signed statement that does not check out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Forgery {
    /// Text that is not a hex public key.
    #[error("`{given}` is not a hex public key")]
    NotHexKey {
        /// What was given, control characters escaped.
        given: String,
    },
    /// A hex key of the wrong length.
    #[error("`{given}` is not 32 bytes long")]
    KeyLength {
        /// What was given, control characters escaped.
        given: String,
    },
    /// Bytes that are not a valid ed25519 public key.
    #[error("{key} is not a valid public key")]
    NotAKey {
        /// The key's short form.
        key: String,
    },
    /// A signature that does not verify.
    #[error("signature by {key} does not verify")]
    Signature {
        /// The signer's short key.
        key: String,
    },
    /// A change whose actor is not a device key.
    #[error("the change's actor id is not a device key")]
    ActorNotAKey,
    /// A device certificate that does not verify.
    #[error("device certificate for {device} is forged")]
    DeviceCertificate {
        /// The device's short key.
        device: String,
    },
    /// A credential issued to another device.
    #[error("the credential is for another device")]
    ForeignCredential,
    /// A device removal that does not verify.
    #[error("removal of {device} is forged")]
    Removal {
        /// The removed device's short key.
        device: String,
    },
    /// A membership statement about another record.
    #[error("a membership statement is for another record")]
    OtherRecord,
    /// A revocation by someone who did not grant the access.
    #[error("a revocation was signed by someone who did not grant that access")]
    RevokedByStranger,
    /// A revocation whose signature does not verify.
    #[error("a revocation is forged")]
    Revocation,
    /// Text that is not a capability.
    #[error("this is not a phr capability")]
    NotACapability,
    /// A capability's text that does not decode.
    #[error("the capability text is damaged")]
    CapabilityText,
    /// Capability bytes that do not decode.
    #[error("the capability is damaged or not a capability")]
    CapabilityBytes,
    /// A delegation chain longer than phr follows.
    #[error("delegation chain longer than {max}")]
    ChainTooLong {
        /// The longest chain.
        max: usize,
    },
    /// A delegated capability with its parent's id.
    #[error("a delegated capability reuses the id of the grant above it")]
    ReusedId,
    /// A capability whose signature does not verify.
    #[error("capability for `{label}` is forged")]
    Capability {
        /// The grant's label.
        label: String,
    },
    /// A capability not issued by the record's owner.
    #[error("capability for `{label}` was not granted by the record's owner")]
    NotFromOwner {
        /// The grant's label.
        label: String,
    },
    /// A delegated capability for another record.
    #[error("a delegated capability changes the record")]
    ChangesRecord,
    /// A delegation by someone who did not hold the parent.
    #[error("a capability was delegated by someone who did not hold its parent")]
    NotTheHolder,
    /// A delegation of a capability that may not be passed on.
    #[error("`{label}` was not allowed to pass its access on")]
    MayNotDelegate {
        /// The parent grant's label.
        label: String,
    },
    /// A delegation granting more than its parent.
    #[error("a delegated capability grants {right} on {section}, more than its parent")]
    Widens {
        /// The section.
        section: Section,
        /// The right granted.
        right: Right,
    },
    /// A delegation that starts before its parent.
    #[error("a delegated capability starts before its parent")]
    StartsEarly,
    /// A delegation that outlives its parent.
    #[error("a delegated capability outlives its parent")]
    Outlives,
    /// The audit log fails verification, with the verifier's reason.
    #[error("the audit log fails its check: {why}")]
    AuditLog {
        /// The verifier's reason for the first change it rejected.
        why: String,
    },
}
