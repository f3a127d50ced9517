//! Encrypted attachments: files of any size, sealed chunk by chunk under a random key of their
//! own, kept content-addressed in the home's blob store (`HOME/blobs/`, ciphertext only) and
//! referenced from an entry of `documents`, `insurance` or `notes`.
//!
//! The reference ([`Attachment`]: key, nonce prefix, blob hash, sizes, media type) is a field of
//! the entry, so it lives inside the sealed, signed record: only those who may read the section
//! learn the key, and the blob store and the network only ever see ciphertext.
//!
//! # Blob format, version 1
//!
//! ```text
//! n         = max(1, ceil(size / chunk))
//! blob      = sealed(0) ‖ sealed(1) ‖ … ‖ sealed(n-1)
//! sealed(i) = XChaCha20-Poly1305(key, nonce(i), aad, plaintext[i·chunk .. min((i+1)·chunk, size)])
//!             (ciphertext ‖ 16-byte tag)
//! nonce(i)  = prefix (15 random bytes per file) ‖ i (u64 big-endian) ‖ last (1 byte: 1 if i = n-1, else 0)
//! aad       = "phr/attachment/v1"
//! ```
//!
//! The nonce commits every chunk to its position and the final one to being final, so a
//! reordered, dropped or repeated chunk and a truncated or extended blob all fail to open, chunk
//! by chunk, without holding the file in memory. Opening also checks the total size and the
//! plaintext hash the entry records. The blob's address is the BLAKE3 hash of the ciphertext,
//! which iroh-blobs verifies on every transfer.
//!
//! # The same file twice
//!
//! Each entry records the plaintext's BLAKE3 hash, keyed per record (see [`plain_hasher`]).
//! Attaching a file whose keyed hash and size match an attachment the record already holds
//! reuses that attachment's blob and key instead of sealing the file again, so the file is
//! stored (and transferred) once. The key is per record so that the hash says nothing across
//! records; within a record only readers of the section see it, and they can open the file anyway.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::crypto::chunk_cipher::{NONCE_PREFIX, TAG_LEN};

use crate::error::FieldProblem;
use crate::identity::RecordId;
use crate::section::Section;

/// Sections whose entries may carry an attachment.
pub const SECTIONS: [Section; 3] = [Section::Documents, Section::Insurance, Section::Notes];

/// Plaintext bytes per sealed chunk for new attachments.
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// Version of the blob format described in the module docs.
pub const FORMAT: u32 = 1;

/// Smallest and largest chunk a reference may name: the upper bound caps what opening one
/// chunk allocates, whatever a (possibly hostile) writer put in the entry.
const MIN_CHUNK: u64 = 1024;
const MAX_CHUNK: u64 = 16 * 1024 * 1024;
/// Largest plaintext an attachment may describe (1 TiB): keeps every size computation far from
/// overflow and every number exact when Automerge stores it as a float.
const MAX_SIZE: u64 = 1 << 40;
/// The longest media type, in bytes.
const MAX_MEDIA_TYPE: usize = 255;
/// The longest file name, in bytes.
const MAX_NAME: usize = 1024;
const PLAIN_HASH_CONTEXT: &str = "phr attachment plaintext hash v1";

/// The reference to an attached file, stored as the `attachment` field of its entry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Blob format version ([`FORMAT`]).
    #[serde(deserialize_with = "whole_number")]
    pub format: u64,
    /// BLAKE3 hash of the sealed blob: its address in blob stores and on the wire.
    #[serde(with = "crate::identity::hex_bytes")]
    pub blob: [u8; 32],
    /// The file's own XChaCha20-Poly1305 key.
    #[serde(with = "crate::identity::hex_bytes")]
    pub key: [u8; 32],
    /// The file's nonce prefix.
    #[serde(with = "crate::identity::hex_bytes")]
    pub nonce: [u8; NONCE_PREFIX],
    /// Plaintext size in bytes.
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    /// Plaintext bytes per sealed chunk.
    #[serde(deserialize_with = "whole_number")]
    pub chunk: u64,
    /// BLAKE3 hash of the plaintext, keyed per record ([`plain_hasher`]).
    #[serde(with = "crate::identity::hex_bytes")]
    pub plain_hash: [u8; 32],
    /// MIME type of the file.
    pub media_type: String,
    /// The file's name when it was attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key: debug output ends up in logs.
        f.debug_struct("Attachment")
            .field("blob", &hex::encode(self.blob))
            .field("size", &self.size)
            .field("chunk", &self.chunk)
            .field("media_type", &self.media_type)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Automerge keeps numbers as floats; accept a whole, non-negative float as well as an integer.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                return Ok(u);
            }
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => Ok(f as u64),
                _ => Err(serde::de::Error::custom(format!("`{n}` is not a whole number"))),
            }
        }
        other => Err(serde::de::Error::custom(format!("`{other}` is not a number"))),
    }
}

impl Attachment {
    /// Check what opening relies on; the error says what is wrong, for a field error.
    pub fn validate(&self) -> std::result::Result<(), FieldProblem> {
        if self.format != u64::from(FORMAT) {
            return Err(FieldProblem::BlobFormat {
                found: self.format,
                reads: u64::from(FORMAT),
            });
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&self.chunk) {
            return Err(FieldProblem::ChunkSize {
                size: self.chunk,
                min: MIN_CHUNK,
                max: MAX_CHUNK,
            });
        }
        if self.size > MAX_SIZE {
            return Err(FieldProblem::FileTooLarge {
                size: self.size,
                max: MAX_SIZE,
            });
        }
        if self.media_type.trim().is_empty() || self.media_type.len() > MAX_MEDIA_TYPE {
            return Err(FieldProblem::MediaTypeLength { max: MAX_MEDIA_TYPE });
        }
        if self.name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
            return Err(FieldProblem::FileNameLength { max: MAX_NAME });
        }
        Ok(())
    }

    /// Number of sealed chunks.
    pub fn chunks(&self) -> u64 {
        chunk_count(self.size, self.chunk)
    }

    /// Size of the sealed blob in bytes.
    pub fn sealed_size(&self) -> u64 {
        self.size + TAG_LEN as u64 * self.chunks()
    }

    /// Short hex form of the blob hash, for messages.
    pub fn short(&self) -> String {
        hex::encode(&self.blob[..4])
    }

    /// A name to show for the file.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("attachment")
    }
}

fn chunk_count(size: u64, chunk: u64) -> u64 {
    size.div_ceil(chunk).max(1)
}

/// The plaintext hasher of a record: BLAKE3 keyed with a key derived from the record id.
pub fn plain_hasher(record: &RecordId) -> blake3::Hasher {
    blake3::Hasher::new_keyed(&blake3::derive_key(PLAIN_HASH_CONTEXT, &record.0))
}

/// A MIME type guessed from a file name's extension (`application/octet-stream` if unknown).
pub fn guess_media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "txt" | "text" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "json" => "application/json",
        "rtf" => "application/rtf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "dcm" => "application/dicom",
        "zip" => "application/zip",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

/// The attachment of an entry's fields, if it has a readable one.
pub fn of_fields(fields: &serde_json::Map<String, Value>) -> Option<Attachment> {
    let a: Attachment = serde_json::from_value(fields.get("attachment")?.clone()).ok()?;
    // A reference a peer wrote without validation (received changes are verified for who
    // wrote them, not for their fields) is ignored rather than trusted.
    a.validate().ok().map(|()| a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::chunk_cipher::{AAD, Opener, Sealer, nonce};
    use crate::error::{BlobDamage, Error, Result};

    fn sample(size: u64, chunk: u64) -> (Attachment, Vec<u8>, Vec<u8>) {
        let record = RecordId::from([7u8; 32]);
        let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let key = [9u8; 32];
        let prefix = [3u8; NONCE_PREFIX];
        let mut sealer = Sealer::new(&key, prefix).unwrap();
        let mut blob = Vec::new();
        let pieces: Vec<&[u8]> = if plain.is_empty() {
            vec![&[]]
        } else {
            plain.chunks(chunk as usize).collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            let mut buf = piece.to_vec();
            sealer.seal(&mut buf, i + 1 == pieces.len()).unwrap();
            blob.extend_from_slice(&buf);
        }
        let mut h = plain_hasher(&record);
        h.update(&plain);
        let a = Attachment {
            format: 1,
            blob: *blake3::hash(&blob).as_bytes(),
            key,
            nonce: prefix,
            size,
            chunk,
            plain_hash: *h.finalize().as_bytes(),
            media_type: "application/pdf".into(),
            name: None,
        };
        (a, plain, blob)
    }

    fn open_all(a: &Attachment, blob: &[u8]) -> Result<Vec<u8>> {
        let mut opener = Opener::new(&a.key, &a.nonce, a.chunks())?;
        let mut out = Vec::new();
        for piece in blob.chunks(a.chunk as usize + TAG_LEN) {
            let mut buf = piece.to_vec();
            let n = opener.open(&mut buf)?;
            out.extend_from_slice(&buf[..n]);
        }
        if !opener.finished() {
            return Err(Error::AttachmentDamaged(BlobDamage::Truncated {
                opened: opener.opened(),
                chunks: a.chunks(),
            }));
        }
        Ok(out)
    }

    #[test]
    fn chunks_round_trip_and_sizes_add_up() {
        for size in [0u64, 1, 1023, 1024, 1025, 4096, 5000] {
            let (a, plain, blob) = sample(size, 1024);
            assert_eq!(blob.len() as u64, a.sealed_size(), "size {size}");
            assert_eq!(open_all(&a, &blob).unwrap(), plain, "size {size}");
        }
    }

    #[test]
    fn chunks_are_exactly_rustcrypto_xchacha20_poly1305() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let (a, plain, blob) = sample(2500, 1024);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&chacha20poly1305::Key::from(a.key));
        let mut expected = Vec::new();
        let pieces: Vec<&[u8]> = plain.chunks(1024).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let n = chacha20poly1305::XNonce::from(nonce(&a.nonce, i as u64, i + 1 == pieces.len()));
            expected.extend(cipher.encrypt(&n, Payload { msg: piece, aad: AAD }).unwrap());
        }
        assert_eq!(blob, expected);
    }

    #[test]
    fn reordered_truncated_or_flipped_chunks_fail() {
        let (a, _, blob) = sample(4096, 1024);
        let c = 1024 + TAG_LEN;
        let mut swapped = blob.clone();
        swapped[..c].copy_from_slice(&blob[c..2 * c]);
        swapped[c..2 * c].copy_from_slice(&blob[..c]);
        assert!(open_all(&a, &swapped).is_err(), "reordered");
        // Dropping the last chunk: the new last one was not sealed as last.
        assert!(open_all(&a, &blob[..3 * c]).is_err(), "truncated");
        let mut flipped = blob.clone();
        flipped[100] ^= 1;
        assert!(open_all(&a, &flipped).is_err(), "flipped");
        let mut wrong_key = a.clone();
        wrong_key.key[0] ^= 1;
        assert!(open_all(&wrong_key, &blob).is_err(), "wrong key");
    }

    #[test]
    fn references_round_trip_through_automerge_floats() {
        let (a, _, _) = sample(5000, 1024);
        let mut v = serde_json::to_value(&a).unwrap();
        // What reading back from Automerge gives: numbers as floats.
        v["size"] = serde_json::json!(5000.0);
        v["chunk"] = serde_json::json!(1024.0);
        v["format"] = serde_json::json!(1.0);
        let back: Attachment = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, a);
        v["chunk"] = serde_json::json!(1024.5);
        assert!(serde_json::from_value::<Attachment>(v).is_err());
        let mut big = a.clone();
        big.chunk = 1 << 30;
        assert!(big.validate().is_err(), "a huge chunk would make opening allocate it");
        assert!(
            !format!("{a:?}").contains(&hex::encode(a.key)),
            "debug output hides the key"
        );
    }

    #[test]
    fn media_types_are_guessed_from_the_extension() {
        assert_eq!(guess_media_type(Path::new("IEP 2024.PDF")), "application/pdf");
        assert_eq!(guess_media_type(Path::new("card.jpeg")), "image/jpeg");
        assert_eq!(guess_media_type(Path::new("noext")), "application/octet-stream");
    }
}
