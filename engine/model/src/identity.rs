//! Who is who: device keys, the patient's root key, device certificates, the recovery kit.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::error::{Error, Forgery, KitProblem, Result, shown};
use crate::section::Section;

/// Domain-separation prefixes, so a signature made for one purpose can never be
/// replayed as another.
const CHANGE_DOMAIN: &[u8] = b"phr/change/v1";
const DEVICE_CERT_DOMAIN: &[u8] = b"phr/device-cert/v1";

/// An ed25519 public key, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "hex_bytes")] pub [u8; 32]);

impl PublicKey {
    /// The ed25519 verifying key, if the bytes are a valid curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| Error::BadSignature(Forgery::NotAKey { key: self.short() }))
    }

    /// First eight hex digits, for display.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Verify `sig` over `msg` with this key (strict: rejects malleable encodings).
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<()> {
        self.verifying_key()?
            .verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| Error::BadSignature(Forgery::Signature { key: self.short() }))
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim()).map_err(|_| Error::BadSignature(Forgery::NotHexKey { given: shown(s) }))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::BadSignature(Forgery::KeyLength { given: shown(s) }))?;
        Ok(PublicKey(arr))
    }
}

/// A record's identity: the patient's root public key, so every record id is self-certifying.
pub type RecordId = PublicKey;

/// A private ed25519 key: a device's identity or the patient's root key.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        KeyPair(SigningKey::from_bytes(&random_bytes()))
    }

    /// Rebuild a key pair from its 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(&secret))
    }

    /// The 32 secret bytes (handle with care).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Sign a message.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public().short())
    }
}

/// The bytes a device signs for one Automerge change of one section of one record.
pub fn change_signing_message(record: &RecordId, section: Section, hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(CHANGE_DOMAIN.len() + 65);
    msg.extend_from_slice(CHANGE_DOMAIN);
    msg.extend_from_slice(&record.0);
    msg.push(section.code());
    msg.extend_from_slice(hash);
    msg
}

/// The root key's statement that a device key belongs to the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCert {
    /// Record the device belongs to.
    pub record: RecordId,
    /// The device's public key (also its iroh identity and Automerge actor id).
    pub device: PublicKey,
    /// Human name of the device ("Maria's phone").
    pub name: String,
    /// Unix seconds when it was issued.
    pub issued_at: i64,
    /// Root key's signature over the fields above.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

impl DeviceCert {
    /// Certify `device` for the record whose root key is `root`.
    pub fn issue(root: &KeyPair, device: PublicKey, name: &str, issued_at: i64) -> Self {
        let record = root.public();
        let msg = Self::message(&record, &device, name, issued_at);
        DeviceCert {
            record,
            device,
            name: name.to_string(),
            issued_at,
            signature: root.sign(&msg),
        }
    }

    fn message(record: &RecordId, device: &PublicKey, name: &str, issued_at: i64) -> Vec<u8> {
        let mut msg = DEVICE_CERT_DOMAIN.to_vec();
        msg.extend_from_slice(&record.0);
        msg.extend_from_slice(&device.0);
        msg.extend_from_slice(&issued_at.to_le_bytes());
        msg.extend_from_slice(name.as_bytes());
        msg
    }

    /// Check the root signature; the record id is the root key, so nothing else is needed.
    pub fn verify(&self) -> Result<()> {
        let msg = Self::message(&self.record, &self.device, &self.name, self.issued_at);
        self.record.verify(&msg, &self.signature).map_err(|_| {
            Error::BadSignature(Forgery::DeviceCertificate {
                device: self.device.short(),
            })
        })
    }
}

/// Prefix of the text recovery kit, so a kit is recognisable on paper.
const KIT_HEADER: &str = "phr recovery kit v1";

/// The patient's root key written out as 24 words, to restore the record on a new device.
pub struct RecoveryKit {
    root: KeyPair,
}

impl RecoveryKit {
    /// A kit for this root key.
    pub fn new(root: &KeyPair) -> Self {
        RecoveryKit { root: root.clone() }
    }

    /// The 24 BIP-39 words encoding the root secret.
    pub fn words(&self) -> Vec<&'static str> {
        bip39::Mnemonic::from_entropy(&self.root.secret_bytes())
            .map(|m| m.words().collect())
            // 32 bytes is a valid BIP-39 entropy length, so this cannot fail.
            .unwrap_or_default()
    }

    /// The printable kit: header, record id, numbered words.
    pub fn to_text(&self) -> String {
        let mut out = format!("{KIT_HEADER}\nrecord {}\n", self.root.public());
        for (i, w) in self.words().iter().enumerate() {
            out.push_str(&format!("{:>2}. {w}\n", i + 1));
        }
        out
    }

    /// Read a kit from its text form or from the bare words.
    pub fn parse(text: &str) -> Result<Self> {
        let mut words = Vec::new();
        let mut record: Option<RecordId> = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line == KIT_HEADER {
                continue;
            }
            if let Some(id) = line.strip_prefix("record ") {
                record = Some(
                    id.parse()
                        .map_err(|_| Error::InvalidRecoveryKit(KitProblem::RecordLine))?,
                );
                continue;
            }
            for token in line.split_whitespace() {
                // Accept "1. word" as printed, and bare words.
                if token.trim_end_matches('.').chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                words.push(token.to_ascii_lowercase());
            }
        }
        if words.len() != 24 {
            return Err(Error::InvalidRecoveryKit(KitProblem::WordCount { found: words.len() }));
        }
        let mnemonic = bip39::Mnemonic::parse_normalized(&words.join(" "))
            .map_err(|e| Error::InvalidRecoveryKit(kit_words_problem(e)))?;
        let (entropy, len) = mnemonic.to_entropy_array();
        if len != 32 {
            return Err(Error::InvalidRecoveryKit(KitProblem::KeyLength));
        }
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&entropy[..32]);
        let root = KeyPair::from_secret(secret);
        if let Some(expected) = record
            && expected != root.public()
        {
            return Err(Error::InvalidRecoveryKit(KitProblem::OtherRecord));
        }
        Ok(RecoveryKit { root })
    }

    /// The root key the kit restores.
    pub fn root(&self) -> &KeyPair {
        &self.root
    }
}

/// Serde helper: fixed-size byte arrays as hex strings in JSON, raw bytes in binary formats.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            serde::Serialize::serialize(&serde_big_array::Array(*bytes), s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
            v.try_into()
                .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes")))
        } else {
            let arr = serde_big_array::Array::<u8, N>::deserialize(d)?;
            Ok(arr.0)
        }
    }
}

/// What is wrong with the kit's words, as bip39 found it.
fn kit_words_problem(e: bip39::Error) -> KitProblem {
    match e {
        bip39::Error::UnknownWord(i) => KitProblem::UnknownWord { position: i + 1 },
        bip39::Error::InvalidChecksum => KitProblem::Checksum,
        bip39::Error::BadWordCount(found) => KitProblem::WordCount { found },
        _ => KitProblem::KeyLength,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_certificates_verify_and_forgeries_do_not() {
        let root = KeyPair::generate();
        let phone = KeyPair::generate();
        let cert = DeviceCert::issue(&root, phone.public(), "phone", 1_700_000_000);
        cert.verify().unwrap();

        let mut renamed = cert.clone();
        renamed.name = "laptop".into();
        assert!(renamed.verify().is_err());

        let stranger = KeyPair::generate();
        let forged = DeviceCert::issue(&stranger, phone.public(), "phone", 1_700_000_000);
        let mut claimed = forged.clone();
        claimed.record = root.public();
        assert!(claimed.verify().is_err());
    }

    #[test]
    fn recovery_kit_round_trips_through_text_and_bare_words() {
        let root = KeyPair::generate();
        let kit = RecoveryKit::new(&root);
        let back = RecoveryKit::parse(&kit.to_text()).unwrap();
        assert_eq!(back.root().public(), root.public());
        let bare = kit.words().join(" ");
        assert_eq!(RecoveryKit::parse(&bare).unwrap().root().public(), root.public());
    }

    #[test]
    fn recovery_kit_rejects_typos_and_wrong_counts() {
        let problem = |text: &str| match RecoveryKit::parse(text) {
            Err(Error::InvalidRecoveryKit(p)) => p,
            Err(other) => panic!("expected a kit problem, got {other}"),
            Ok(_) => panic!("the kit was accepted"),
        };
        let kit = RecoveryKit::new(&KeyPair::generate());
        let mut words = kit.words();
        words[3] = "zzzz";
        assert_eq!(problem(&words.join(" ")), KitProblem::UnknownWord { position: 4 });
        assert_eq!(problem("abandon abandon"), KitProblem::WordCount { found: 2 });
        let mut swapped = kit.words();
        let last = swapped.len() - 1;
        swapped.swap(0, last);
        if swapped != kit.words() {
            assert_eq!(problem(&swapped.join(" ")), KitProblem::Checksum);
        }
        let other = RecoveryKit::new(&KeyPair::generate());
        let mixed = format!("record {}\n{}", KeyPair::generate().public(), other.words().join(" "));
        assert_eq!(problem(&mixed), KitProblem::OtherRecord);
    }
}
