//! Sealing at rest: XChaCha20-Poly1305 for values, argon2id for passphrase keys.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Damage, Error, Result};

pub mod chunk_cipher;

/// Length of a symmetric key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Version byte in front of every sealed value, so the format can evolve.
const SEALED_V1: u8 = 1;

/// Bytes added to a value by sealing it (version, nonce, tag).
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// BLAKE3 digest of `bytes`, for stable ids derived from content.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Fill a buffer with bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS RNG failing means the machine cannot do cryptography at all; there is no
    // meaningful recovery, and continuing with zeros would be a silent disaster.
    getrandom::fill(&mut out).expect("the operating system's random number generator failed");
    out
}

/// A 256-bit symmetric key that wipes itself from memory when dropped.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SecretKey(Zeroizing::new(random_bytes()))
    }

    /// Wrap existing key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*self.0))
    }

    /// Encrypt `plain`, binding it to `aad` (where it is stored), with a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = random_bytes();
        let ct = self
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
            // Encryption only fails for messages beyond 256 GiB, far above any value we store.
            .expect("XChaCha20-Poly1305 encryption of a bounded value");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypt a value sealed with [`SecretKey::seal`] under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(Error::Corrupt(Damage::SealedTruncated));
        }
        if sealed[0] != SEALED_V1 {
            return Err(Error::Corrupt(Damage::SealedVersion { version: sealed[0] }));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| Error::Corrupt(Damage::SealedIntegrity))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Argon2id cost settings, stored beside the salt so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Degree of parallelism.
    pub lanes: u32,
}

impl Default for KdfParams {
    /// OWASP's recommended minimum for argon2id (19 MiB, 2 passes): ~50 ms here, slow for guessing.
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            lanes: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest settings, for the engine crates' unit tests: the real ones cost ~50 ms per
    /// key. Never for a store that holds a record.
    #[doc(hidden)]
    pub fn for_tests() -> Self {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            lanes: 1,
        }
    }
}

/// The fewest characters a new passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// The one rule for a passphrase that is to protect a new store (or replace a store's
/// passphrase), wherever it comes from: at least [`MIN_PASSPHRASE_CHARS`] characters, not
/// counting spaces at either end. Opening an existing store checks nothing: its passphrase is
/// whatever it was made with.
pub fn check_new_passphrase(passphrase: &str) -> Result<()> {
    let chars = passphrase.trim().chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(Error::WeakPassphrase {
            chars,
            min: MIN_PASSPHRASE_CHARS,
        });
    }
    Ok(())
}

/// Derive a key-encryption key from a passphrase with argon2id.
pub fn derive_key(passphrase: &str, salt: &[u8; 16], params: KdfParams) -> Result<SecretKey> {
    let p = argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(KEY_LEN))
        .map_err(|_| Error::Corrupt(Damage::KdfSettings))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; KEY_LEN];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|_| Error::Corrupt(Damage::KdfSettings))?;
    let key = SecretKey::from_bytes(out);
    out.zeroize();
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_location() {
        let key = SecretKey::generate();
        let sealed = key.seal(b"changes/1", b"Amoxicillin 250 mg");
        assert_eq!(key.open(b"changes/1", &sealed).unwrap(), b"Amoxicillin 250 mg");
        assert!(key.open(b"changes/2", &sealed).is_err(), "moved value must not open");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            key.open(b"changes/1", &flipped).is_err(),
            "tampered value must not open"
        );
        assert!(key.open(b"changes/1", &sealed[..10]).is_err());
    }

    #[test]
    fn a_new_passphrase_needs_eight_characters_besides_surrounding_spaces() {
        for weak in ["", "x", "   ", "1234567", "  abcdefg  ", "\n"] {
            let e = check_new_passphrase(weak).unwrap_err();
            assert!(matches!(e, Error::WeakPassphrase { min: 8, .. }), "{weak:?}: {e}");
        }
        for fine in ["12345678", "correct horse", "ñandú-ñandú"] {
            check_new_passphrase(fine).unwrap();
        }
    }

    #[test]
    fn wrong_passphrase_gives_a_different_key() {
        let salt = [7u8; 16];
        let fast = KdfParams::for_tests();
        let a = derive_key("correct horse", &salt, fast).unwrap();
        let b = derive_key("correct horse", &salt, fast).unwrap();
        let c = derive_key("wrong horse", &salt, fast).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), c.as_bytes());
    }
}
