//! Signed Automerge changes: the unit that is stored, synced and verified.

use automerge::{AutoCommit, Change};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::{DecodeProblem, Error, Forgery, Origin, Result};
use crate::identity::{PublicKey, RecordId, change_signing_message};
use crate::section::Section;

/// Run Automerge's decoding of bytes from outside (a peer, the store file), turning a panic
/// inside Automerge into an error: its parsers unwrap on some malformed input (automerge 0.12
/// panics in `hexane` on a truncated bundle column), and a hostile peer must not be able to
/// take a session, a lock or the process down with one.
pub fn decoding<T>(from: Origin, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Automerge {
            from,
            problem: DecodeProblem::Crashed,
        })
    })
}

// The three ways Automerge bytes from outside (a peer, the store file) are decoded. Each first
// measures what the bytes would expand to (`chunk`) and refuses a hostile run length or a
// DEFLATE bomb before Automerge sees it, then decodes under `decoding`. Errors say "{what} is
// refused" (the bound) or "{what} is malformed" (Automerge's parser).

fn refused(from: Origin) -> impl Fn(String) -> Error {
    move |bound| Error::Automerge {
        from,
        problem: DecodeProblem::Refused { bound },
    }
}

fn malformed(from: Origin) -> impl Fn(String) -> Error {
    move |cause| Error::Automerge {
        from,
        problem: DecodeProblem::Malformed { cause },
    }
}

/// Load a saved document (handed to Automerge with its columns inflated, so only once).
pub fn load_document(what: Origin, bytes: &[u8]) -> Result<AutoCommit> {
    let inflated = crate::chunk::check_document(bytes).map_err(refused(what))?;
    decoding(what, || {
        AutoCommit::load(inflated.as_deref().unwrap_or(bytes)).map_err(|e| malformed(what)(e.to_string()))
    })
}

/// Decode one change (a compressed one is handed to Automerge inflated, so only once).
pub fn decode_change(what: Origin, bytes: &[u8]) -> Result<Change> {
    let inflated = crate::chunk::check_change(bytes).map_err(refused(what))?;
    decoding(what, || {
        Change::try_from(inflated.as_deref().unwrap_or(bytes)).map_err(|e| malformed(what)(e.to_string()))
    })
}

/// Decode a bundle into its changes.
pub fn decode_bundle(what: Origin, bytes: &[u8]) -> Result<Vec<Change>> {
    crate::chunk::check_bundle(bytes).map_err(refused(what))?;
    decoding(what, || {
        let bundle = automerge::Bundle::try_from(bytes).map_err(|e| malformed(what)(e.to_string()))?;
        bundle.to_changes().map_err(|e| malformed(what)(e.to_string()))
    })
}

/// One Automerge change of one section, with its author's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChange {
    /// Section document the change belongs to.
    pub section: Section,
    /// Automerge hash of `bytes`; always computed locally, never taken from a peer.
    pub hash: [u8; 32],
    /// The encoded Automerge change.
    pub bytes: Vec<u8>,
    /// Author's ed25519 signature over (record, section, change hash).
    pub signature: [u8; 64],
}

impl SignedChange {
    /// Decode the Automerge change (checks its encoding and hash).
    pub fn decode(&self) -> Result<Change> {
        decode_change(Origin::Change(self.section), &self.bytes)
    }

    /// The public key that wrote the change: its Automerge actor id, which must be a key.
    pub fn author(change: &Change) -> Result<PublicKey> {
        let actor = change.actor_id().to_bytes();
        let arr: [u8; 32] = actor
            .try_into()
            .map_err(|_| Error::BadSignature(Forgery::ActorNotAKey))?;
        Ok(PublicKey(arr))
    }
}

/// Why one change of a batch failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index in the batch.
    pub index: usize,
    /// Human-readable reason.
    pub reason: String,
}

/// Check a batch of signed changes for one record: decoding, actor = signer, signature.
///
/// Returns the decoded changes when all pass; otherwise every failing index with its reason.
/// Signatures are checked with ed25519 batch verification, falling back to one-by-one only to
/// name the culprits when the batch fails.
pub fn verify_batch(record: &RecordId, changes: &[SignedChange]) -> std::result::Result<Vec<Change>, Vec<Rejection>> {
    let mut decoded = Vec::with_capacity(changes.len());
    let mut rejections = Vec::new();
    let mut messages = Vec::with_capacity(changes.len());
    let mut sigs = Vec::with_capacity(changes.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(changes.len());
    let mut index_of = Vec::with_capacity(changes.len());
    for (i, sc) in changes.iter().enumerate() {
        let checked = sc.decode().and_then(|c| {
            let author = SignedChange::author(&c)?;
            Ok((c, author.verifying_key()?))
        });
        match checked {
            Ok((c, vk)) => {
                messages.push(change_signing_message(record, sc.section, &c.hash().0));
                sigs.push(Signature::from_bytes(&sc.signature));
                keys.push(vk);
                index_of.push(i);
                decoded.push(c);
            }
            Err(e) => rejections.push(Rejection {
                index: i,
                reason: e.to_string(),
            }),
        }
    }
    let msg_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&msg_refs, &sigs, &keys).is_err() {
        for (j, &i) in index_of.iter().enumerate() {
            if keys[j].verify_strict(msg_refs[j], &sigs[j]).is_err() {
                rejections.push(Rejection {
                    index: i,
                    reason: format!(
                        "signature does not match the change's author {}",
                        hex::encode(&keys[j].to_bytes()[..4])
                    ),
                });
            }
        }
    }
    if rejections.is_empty() {
        Ok(decoded)
    } else {
        rejections.sort_by_key(|r| r.index);
        Err(rejections)
    }
}
