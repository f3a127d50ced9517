//! Who may take part in a record: root-signed statements (device certificates and removals),
//! kept as a grow-only set that merges by union on every device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capability::{Capability, Revocation, Right, Scope};
use crate::error::{Error, Forgery, Result};
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
        self.record.verify(&msg, &self.signature).map_err(|_| {
            Error::BadSignature(Forgery::Removal {
                device: self.device.short(),
            })
        })
    }
}

/// One signed statement about membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statement {
    /// A device joins.
    Device(DeviceCert),
    /// A device leaves.
    Removal(DeviceRemoval),
    /// Someone outside the family's devices is granted scoped access.
    Capability(Capability),
    /// A grant is withdrawn.
    Revocation(Revocation),
}

/// How a key proves its right to a record: as one of the patient's devices, or by a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credential {
    /// One of the patient's own devices (full access).
    Device(DeviceCert),
    /// A holder of a capability (scoped access).
    Capability(Capability),
}

impl Credential {
    /// The key the credential empowers.
    pub fn holder(&self) -> PublicKey {
        match self {
            Credential::Device(c) => c.device,
            Credential::Capability(c) => c.audience,
        }
    }

    /// The record it opens.
    pub fn record(&self) -> RecordId {
        match self {
            Credential::Device(c) => c.record,
            Credential::Capability(c) => c.record,
        }
    }

    /// Check its signatures.
    pub fn verify(&self) -> Result<()> {
        match self {
            Credential::Device(c) => c.verify(),
            Credential::Capability(c) => c.check_chain(),
        }
    }

    /// The membership statement that carries it.
    pub fn statement(&self) -> Statement {
        match self {
            Credential::Device(c) => Statement::Device(c.clone()),
            Credential::Capability(c) => Statement::Capability(c.clone()),
        }
    }

    /// A name for the holder.
    pub fn name(&self) -> &str {
        match self {
            Credential::Device(c) => &c.name,
            Credential::Capability(c) => &c.label,
        }
    }

    /// The holder's rights, or `None` for a full device.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Credential::Device(_) => None,
            Credential::Capability(c) => Some(&c.scope),
        }
    }
}

impl Statement {
    /// The record the statement is about.
    pub fn record(&self) -> RecordId {
        match self {
            Statement::Device(c) => c.record,
            Statement::Removal(r) => r.record,
            Statement::Capability(c) => c.record,
            Statement::Revocation(r) => r.record,
        }
    }

    /// Check its signature (and, for a capability, its whole chain).
    pub fn verify(&self) -> Result<()> {
        match self {
            Statement::Device(c) => c.verify(),
            Statement::Removal(r) => r.verify(),
            Statement::Capability(c) => c.check_chain(),
            Statement::Revocation(r) => r.verify(),
        }
    }

    /// Order in which statements are taken in, so a revocation can find its capability.
    fn rank(&self) -> u8 {
        match self {
            Statement::Device(_) => 0,
            Statement::Capability(_) => 1,
            Statement::Removal(_) => 2,
            Statement::Revocation(_) => 3,
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

/// Sort statements so that each can be checked against those it refers to.
pub fn in_order(mut statements: Vec<Statement>) -> Vec<Statement> {
    statements.sort_by_key(Statement::rank);
    statements
}

impl AccessSet {
    /// Add a statement after checking it belongs to `record` and verifies. Returns true if new.
    pub fn insert(&mut self, record: &RecordId, st: Statement) -> Result<bool> {
        self.add(record, st, true)
    }

    /// Add a statement read back from this device's own sealed store, without checking its
    /// signature again: it was verified before it was stored, and the store's seal (an AEAD
    /// bound to the row's place) authenticates it. Whoever could forge a sealed row holds the
    /// store key, and with it everything the signature check would protect. The other checks
    /// still run. Loading a record on a node hosting thousands was dominated by these repeated
    /// signature checks.
    pub fn restore(&mut self, record: &RecordId, st: Statement) -> Result<bool> {
        self.add(record, st, false)
    }

    /// Whether this exact statement (signature included) is already held, so already verified.
    pub fn contains(&self, st: &Statement) -> bool {
        self.statements.contains_key(&st.id())
    }

    fn add(&mut self, record: &RecordId, st: Statement, check_signature: bool) -> Result<bool> {
        if st.record() != *record {
            return Err(Error::BadSignature(Forgery::OtherRecord));
        }
        let id = st.id();
        if self.statements.contains_key(&id) {
            // Same content, signature included: already checked when it was first added.
            return Ok(false);
        }
        if check_signature {
            st.verify()?;
        }
        if let Statement::Revocation(r) = &st
            && r.by != *record
            && !self.granted_by(&r.capability, &r.by)
        {
            // Besides the root, only whoever granted an access (or a grant above it) may revoke it.
            return Err(Error::BadSignature(Forgery::RevokedByStranger));
        }
        Ok(self.statements.insert(id, st).is_none())
    }

    /// Whether `by` issued the capability `id` or one of the grants it was delegated from.
    fn granted_by(&self, id: &[u8; 16], by: &PublicKey) -> bool {
        self.capabilities().any(|c| {
            let mut cur = Some(c);
            let mut seen = false;
            while let Some(x) = cur {
                seen |= x.id == *id;
                if seen && x.issuer == *by {
                    return true;
                }
                cur = x.parent.as_deref();
            }
            false
        })
    }

    fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.statements.values().filter_map(|s| match s {
            Statement::Capability(c) => Some(c),
            _ => None,
        })
    }

    fn revocations(&self) -> impl Iterator<Item = &Revocation> {
        self.statements.values().filter_map(|s| match s {
            Statement::Revocation(r) => Some(r),
            _ => None,
        })
    }

    /// Revocations that cover a capability (of it or of any grant above it).
    fn revocations_of<'a>(&'a self, cap: &'a Capability) -> impl Iterator<Item = &'a Revocation> + 'a {
        let ids = cap.chain_ids();
        self.revocations().filter(move |r| ids.contains(&r.capability))
    }

    /// Whether a capability, or any grant it was delegated from, was revoked.
    pub fn is_revoked(&self, cap: &Capability) -> bool {
        self.revocations_of(cap).next().is_some()
    }

    /// Every grant, with its revocation if any.
    pub fn grants(&self) -> Vec<(Capability, Option<Revocation>)> {
        self.capabilities()
            .map(|c| (c.clone(), self.revocations_of(c).next().cloned()))
            .collect()
    }

    /// A grant by (a prefix of) its id.
    pub fn grant(&self, id_prefix: &str) -> Vec<Capability> {
        let p = id_prefix.to_ascii_lowercase();
        self.capabilities()
            .filter(|c| hex::encode(c.id).starts_with(&p))
            .cloned()
            .collect()
    }

    /// Grants of `holder` usable at time `now`: whole chain in its validity, none revoked.
    fn live_grants(&self, holder: &PublicKey, now: i64) -> impl Iterator<Item = &Capability> {
        self.capabilities().filter(move |c| {
            if c.audience != *holder {
                return false;
            }
            let mut cur = Some(*c);
            while let Some(x) = cur {
                if !x.valid_at(now) {
                    return false;
                }
                cur = x.parent.as_deref();
            }
            self.revocations_of(c).next().is_none()
        })
    }

    /// The credential `peer` may use now: its device certificate, or its widest live grant.
    pub fn credential(&self, peer: &PublicKey, now: i64) -> Option<Credential> {
        if let Some(c) = self.cert(peer)
            && self.removal(peer).is_none()
        {
            return Some(Credential::Device(c.clone()));
        }
        self.live_grants(peer, now)
            .max_by_key(|c| c.scope.len())
            .map(|c| Credential::Capability(c.clone()))
    }

    /// Whether `peer` may see `section` now.
    pub fn may_read(&self, peer: &PublicKey, section: Section, now: i64) -> bool {
        if self.cert(peer).is_some() && self.removal(peer).is_none() {
            return true;
        }
        self.live_grants(peer, now).any(|c| c.right(section).is_some())
    }

    /// The best right `author` held on `section` for its change number `seq`, made at `time`.
    pub fn write_right(
        &self,
        author: &PublicKey,
        section: Section,
        seq: u64,
        time: i64,
    ) -> std::result::Result<Right, String> {
        if self.cert(author).is_some() {
            return self.may_write(author, section, seq).map(|()| Right::Write);
        }
        let mut best: Option<Right> = None;
        let mut why = format!("{} holds no access to this record", author.short());
        for cap in self.capabilities().filter(|c| c.audience == *author) {
            let Some(right) = cap.right(section).filter(|r| r.writes()) else {
                why = format!("`{}` may not write {section}", cap.label);
                continue;
            };
            let mut cur = Some(cap);
            let mut in_time = true;
            while let Some(x) = cur {
                in_time &= x.valid_at(time);
                cur = x.parent.as_deref();
            }
            if !in_time {
                why = format!("`{}`'s access was not valid when the change was made", cap.label);
                continue;
            }
            if let Some(last) = self.revocations_of(cap).map(|r| r.cutoff_for(author, section)).min()
                && seq > last
            {
                why = format!(
                    "`{}`'s access was revoked; its {section} change #{seq} came after its cutoff #{last}",
                    cap.label
                );
                continue;
            }
            best = Some(match best {
                Some(b) if b.covers(right) => b,
                _ => right,
            });
        }
        best.ok_or(why)
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

    /// The name of whoever holds `key`: its device's name, or the label of a grant to it.
    ///
    /// Removed devices and revoked or expired grants count too: this names past authors, whose
    /// changes stay in the record. Of several grants to one key the newest names it.
    pub fn name_of(&self, key: &PublicKey) -> Option<String> {
        if let Some(cert) = self.cert(key) {
            return Some(cert.name.clone());
        }
        self.capabilities()
            .filter(|c| c.audience == *key)
            .max_by_key(|c| (c.not_before, c.id))
            .map(|c| c.label.clone())
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
                        for s in Section::SYNCED {
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

    /// The last change of `author` in `section` that stays valid, if the author was removed or
    /// every grant it wrote under was revoked; `None` while its writes stand.
    pub fn cutoff(&self, author: &PublicKey, section: Section) -> Option<u64> {
        if self.cert(author).is_some() {
            return self
                .removal(author)
                .map(|r| r.cutoff.get(&section).copied().unwrap_or(0));
        }
        let mut cutoff: Option<u64> = None;
        // Only grants that let the author write this section keep its writes here standing:
        // a read-only grant it still holds does not (the same rule as `write_right`).
        let writes_here = |c: &&Capability| c.right(section).is_some_and(|r| r.writes());
        for cap in self
            .capabilities()
            .filter(|c| c.audience == *author)
            .filter(writes_here)
        {
            match self.revocations_of(cap).map(|r| r.cutoff_for(author, section)).min() {
                None => return None,
                Some(c) => cutoff = Some(cutoff.map_or(c, |x: u64| x.max(c))),
            }
        }
        cutoff.or(Some(0))
    }

    /// Whether the set holds removals or revocations.
    pub fn has_withdrawals(&self) -> bool {
        self.statements
            .values()
            .any(|s| matches!(s, Statement::Removal(_) | Statement::Revocation(_)))
    }

    /// Whether a device is certified and not removed, or a key holds a live grant: may
    /// connect and sync.
    pub fn is_member(&self, device: &PublicKey) -> bool {
        self.credential(device, chrono::Utc::now().timestamp()).is_some()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Grant, Preset};

    #[test]
    fn past_and_present_authors_are_named() {
        let root = KeyPair::generate();
        let record = root.public();
        let (phone, clinic, clinician, stranger) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let grant = |audience: PublicKey, label: &str, scope, expires| Grant {
            audience,
            label: label.into(),
            scope,
            delegate: true,
            not_before: 0,
            expires,
        };
        let cap = Capability::issue_root(
            &root,
            grant(
                clinic.public(),
                "Bright Steps Therapy",
                Preset::Clinic.scope(),
                Some(10),
            ),
        )
        .unwrap();
        let narrow: Scope = [(Section::Notes, Right::Write)].into();
        let jane = Capability::delegate(
            &clinic,
            &cap,
            grant(
                clinician.public(),
                "Jane Roe, SLP — Bright Steps Therapy",
                narrow,
                Some(10),
            ),
        )
        .unwrap();
        let mut set = AccessSet::default();
        let statements = vec![
            Statement::Device(DeviceCert::issue(&root, phone.public(), "Mia's phone", 0)),
            Statement::Capability(cap.clone()),
            Statement::Capability(jane),
            Statement::Revocation(Revocation::issue(&root, record, cap.id, Vec::new(), 5)),
            Statement::Removal(DeviceRemoval::issue(&root, phone.public(), BTreeMap::new(), 5)),
        ];
        for st in in_order(statements) {
            set.insert(&record, st).unwrap();
        }
        // Removed, revoked and expired: all still named, since their old changes stay.
        assert_eq!(set.name_of(&phone.public()).as_deref(), Some("Mia's phone"));
        assert_eq!(set.name_of(&clinic.public()).as_deref(), Some("Bright Steps Therapy"));
        assert_eq!(
            set.name_of(&clinician.public()).as_deref(),
            Some("Jane Roe, SLP — Bright Steps Therapy")
        );
        assert_eq!(set.name_of(&stranger.public()), None);
    }
}
