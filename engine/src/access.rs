//! Who may take part in a record: root-signed statements (device certificates and removals),
//! kept as a grow-only set that merges by union on every device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{DeviceCert, KeyPair, PublicKey, RecordId};
use crate::section::Section;

const REMOVAL_DOMAIN: &[u8] = b"phr/device-removal/v1";

/// The root key's statement that a device no longer belongs to the record.
///
/// `cutoff` names, per section, the last sequence number of the device's changes that stay
/// valid; every device applies the same rule, so all replicas decide alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRemoval {
    /// Record.
    pub record: RecordId,
    /// Device removed.
    pub device: PublicKey,
    /// Last valid change sequence per section (absent: none valid beyond 0).
    pub cutoff: BTreeMap<Section, u64>,
    /// Unix seconds.
    pub removed_at: i64,
    /// Root signature.
    #[serde(with = "crate::identity::hex_bytes")]
    pub signature: [u8; 64],
}

impl DeviceRemoval {
    /// Remove `device`, keeping its changes up to `cutoff`.
    pub fn issue(root: &KeyPair, device: PublicKey, cutoff: BTreeMap<Section, u64>, removed_at: i64) -> Self {
        let record = root.public();
        let msg = Self::message(&record, &device, &cutoff, removed_at);
        DeviceRemoval {
            record,
            device,
            cutoff,
            removed_at,
            signature: root.sign(&msg),
        }
    }

    fn message(record: &RecordId, device: &PublicKey, cutoff: &BTreeMap<Section, u64>, at: i64) -> Vec<u8> {
        let mut msg = REMOVAL_DOMAIN.to_vec();
        msg.extend_from_slice(&record.0);
        msg.extend_from_slice(&device.0);
        msg.extend_from_slice(&at.to_le_bytes());
        for (s, seq) in cutoff {
            msg.push(s.code());
            msg.extend_from_slice(&seq.to_le_bytes());
        }
        msg
    }

    /// Check the root signature.
    pub fn verify(&self) -> Result<()> {
        let msg = Self::message(&self.record, &self.device, &self.cutoff, self.removed_at);
        self.record
            .verify(&msg, &self.signature)
            .map_err(|_| Error::BadSignature(format!("removal of {} is forged", self.device.short())))
    }
}

/// One signed statement about membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statement {
    /// A device joins.
    Device(DeviceCert),
    /// A device leaves.
    Removal(DeviceRemoval),
}

impl Statement {
    /// The record the statement is about.
    pub fn record(&self) -> RecordId {
        match self {
            Statement::Device(c) => c.record,
            Statement::Removal(r) => r.record,
        }
    }

    /// Check its signature.
    pub fn verify(&self) -> Result<()> {
        match self {
            Statement::Device(c) => c.verify(),
            Statement::Removal(r) => r.verify(),
        }
    }

    /// Stable content id, used as its storage key and to deduplicate.
    pub fn id(&self) -> [u8; 32] {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        *blake3::hash(&bytes).as_bytes()
    }
}

/// The verified membership of a record.
#[derive(Debug, Clone, Default)]
pub struct AccessSet {
    statements: BTreeMap<[u8; 32], Statement>,
}

impl AccessSet {
    /// Add a statement after checking it belongs to `record` and verifies. Returns true if new.
    pub fn insert(&mut self, record: &RecordId, st: Statement) -> Result<bool> {
        if st.record() != *record {
            return Err(Error::BadSignature(
                "a membership statement is for another record".into(),
            ));
        }
        st.verify()?;
        Ok(self.statements.insert(st.id(), st).is_none())
    }

    /// Every statement, for sending to a peer.
    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.statements.values()
    }

    /// The certificate of a device, if it was ever certified.
    pub fn cert(&self, device: &PublicKey) -> Option<&DeviceCert> {
        self.statements.values().find_map(|s| match s {
            Statement::Device(c) if c.device == *device => Some(c),
            _ => None,
        })
    }

    /// The removal of a device, if any (the strictest one, if several).
    pub fn removal(&self, device: &PublicKey) -> Option<DeviceRemoval> {
        let mut found: Option<DeviceRemoval> = None;
        for s in self.statements.values() {
            if let Statement::Removal(r) = s
                && r.device == *device
            {
                found = Some(match found {
                    None => r.clone(),
                    Some(prev) => {
                        // Two removals: keep, per section, the lower cutoff, so the result does
                        // not depend on the order they arrived in.
                        let mut cutoff = prev.cutoff.clone();
                        for s in Section::ALL {
                            let a = prev.cutoff.get(&s).copied().unwrap_or(0);
                            let b = r.cutoff.get(&s).copied().unwrap_or(0);
                            cutoff.insert(s, a.min(b));
                        }
                        DeviceRemoval { cutoff, ..prev }
                    }
                });
            }
        }
        found
    }

    /// Whether a device is certified and not removed: may connect and sync.
    pub fn is_member(&self, device: &PublicKey) -> bool {
        self.cert(device).is_some() && self.removal(device).is_none()
    }

    /// Whether `device` may have written change number `seq` of `section`.
    pub fn may_write(&self, device: &PublicKey, section: Section, seq: u64) -> std::result::Result<(), String> {
        if self.cert(device).is_none() {
            return Err(format!("device {} is not certified for this record", device.short()));
        }
        if let Some(r) = self.removal(device) {
            let last = r.cutoff.get(&section).copied().unwrap_or(0);
            if seq > last {
                return Err(format!(
                    "device {} was removed from the record; its {section} change #{seq} came after its cutoff #{last}",
                    device.short()
                ));
            }
        }
        Ok(())
    }

    /// Certified devices with their removal status.
    pub fn devices(&self) -> Vec<(DeviceCert, Option<DeviceRemoval>)> {
        self.statements
            .values()
            .filter_map(|s| match s {
                Statement::Device(c) => Some((c.clone(), self.removal(&c.device))),
                _ => None,
            })
            .collect()
    }

    /// Number of statements.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}
