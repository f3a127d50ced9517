//! The chunk cipher of attachments: XChaCha20-Poly1305 over the chunks of one file, each chunk's
//! nonce committing it to its position and the last one to being last (the blob format is in
//! [`crate::attachment`]).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce as RingNonce, Tag as RingTag, UnboundKey};

use crate::error::{AttachmentProblem, BlobDamage, Error, Result};

/// Bytes of the random nonce prefix each file has.
pub const NONCE_PREFIX: usize = 15;
/// Bytes of the tag each sealed chunk ends with.
pub const TAG_LEN: usize = 16;
/// Associated data of every chunk.
pub const AAD: &[u8] = b"phr/attachment/v1";

// ---------------------------------------------------------------------------------------------
// Sealing and opening chunks
// ---------------------------------------------------------------------------------------------

/// The 24-byte XChaCha20 nonce of chunk `index` (see the module docs).
#[cfg(test)]
pub(crate) fn nonce(prefix: &[u8; NONCE_PREFIX], index: u64, last: bool) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..NONCE_PREFIX].copy_from_slice(prefix);
    n[NONCE_PREFIX..NONCE_PREFIX + 8].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    n
}

/// XChaCha20-Poly1305 over the chunks of one file, as draft-irtf-cfrg-xchacha defines it:
/// HChaCha20 of the key and the nonce's first 16 bytes gives a subkey, then ChaCha20-Poly1305
/// (RFC 8439) runs under the subkey with a 12-byte nonce of four zero bytes and the nonce's last
/// 8. The first 16 nonce bytes are the file's prefix and the chunk index's top byte, which is 0
/// for every chunk an attachment may have (at most 2^30), so the subkey is computed once.
/// ChaCha20-Poly1305 itself is ring's (assembly): RustCrypto's generic implementation would be
/// compiled into this crate, unoptimised in debug builds and tests, at a few MB/s. A test checks
/// the output is byte for byte RustCrypto's `XChaCha20Poly1305`.
struct ChunkCipher {
    key: LessSafeKey,
    index: u64,
    count: Option<u64>,
}

impl ChunkCipher {
    fn new(key: &[u8; 32], prefix: &[u8; NONCE_PREFIX], count: Option<u64>) -> Result<Self> {
        let mut input = [0u8; 16];
        input[..NONCE_PREFIX].copy_from_slice(prefix);
        let subkey = chacha20::hchacha::<chacha20::R20>(&chacha20::Key::from(*key), &input.into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice())
            .map_err(|_| Error::internal("a file key of the wrong length"))?;
        Ok(ChunkCipher {
            key: LessSafeKey::new(key),
            index: 0,
            count,
        })
    }

    fn nonce(&self, last: bool) -> Result<RingNonce> {
        let index = self.index.to_be_bytes();
        if index[0] != 0 {
            return Err(Error::Attachment(AttachmentProblem::TooManyChunks));
        }
        let mut n = [0u8; 12];
        n[4..11].copy_from_slice(&index[1..]);
        n[11] = u8::from(last);
        Ok(RingNonce::assume_unique_for_key(n))
    }
}

/// Seals the chunks of one file in order.
pub struct Sealer(ChunkCipher);

impl Sealer {
    /// A sealer for one file under `key` and nonce `prefix`.
    pub fn new(key: &[u8; 32], prefix: [u8; NONCE_PREFIX]) -> Result<Self> {
        Ok(Sealer(ChunkCipher::new(key, &prefix, None)?))
    }

    /// Seal `buf` (a plaintext chunk) in place and append its tag.
    pub fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<()> {
        let nonce = self.0.nonce(last)?;
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(AAD), buf.as_mut_slice())
            .map_err(|_| Error::internal("a chunk could not be encrypted"))?;
        buf.extend_from_slice(tag.as_ref());
        self.0.index += 1;
        Ok(())
    }
}

/// Opens the chunks of one blob in order.
pub struct Opener(ChunkCipher);

impl Opener {
    /// An opener for a blob of `chunks` chunks sealed under `key` and nonce `prefix`.
    pub fn new(key: &[u8; 32], prefix: &[u8; NONCE_PREFIX], chunks: u64) -> Result<Self> {
        Ok(Opener(ChunkCipher::new(key, prefix, Some(chunks))?))
    }

    /// Chunks opened so far.
    pub fn opened(&self) -> u64 {
        self.0.index
    }

    /// Whether every chunk the entry describes was opened.
    pub fn finished(&self) -> bool {
        Some(self.0.index) == self.0.count
    }

    /// Open a sealed chunk in place; returns its plaintext length.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<usize> {
        let at = self.0.index;
        let count = self.0.count.unwrap_or(u64::MAX);
        let damaged = || Error::AttachmentDamaged(BlobDamage::Chunk { chunk: at });
        if at >= count {
            return Err(Error::AttachmentDamaged(BlobDamage::ExtraChunks));
        }
        let len = buf.len().checked_sub(TAG_LEN).ok_or_else(damaged)?;
        let (msg, tag) = buf.split_at_mut(len);
        let tag = RingTag::try_from(&*tag).map_err(|_| damaged())?;
        let nonce = self.0.nonce(at + 1 == count)?;
        self.0
            .key
            .open_in_place_separate_tag(nonce, Aad::from(AAD), tag, msg, 0..)
            .map_err(|_| damaged())?;
        self.0.index += 1;
        Ok(len)
    }
}
