//! One device's home: its sealed store, its identity and the patient record it holds.
//!
//! Every mutation goes through [`Device::write`], which signs the resulting changes and makes
//! them durable in one store transaction before returning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{COMPACT_AFTER, Store};
use phr_model::access::{AccessSet, Credential, Statement};
use phr_model::change::SignedChange;
use phr_model::crypto::KdfParams;
use phr_model::entry::PATIENT_ENTRY;
use phr_model::error::{Damage, Error, Forgery, Refusal, Result, RootAction, Stored};
use phr_model::identity::{DeviceCert, KeyPair, PublicKey, RecordId, RecoveryKit};
use phr_model::record::Record;
use phr_model::section::Section;

mod peer;
mod sender;

/// File name of the store inside a home directory.
pub const STORE_FILE: &str = "phr.redb";

const DEVICE_KEY: &str = "device_key";
const ROOT_KEY: &str = "root_key";
const CREDENTIAL: &str = "credential";
const RECORD: &str = "record";

/// What `phr init` needs to create a record.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Patient's full name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub dob: Option<String>,
    /// Name of this device.
    pub device_name: String,
    /// Passphrase key-derivation cost.
    pub kdf: KdfParams,
}

/// Facts about a record kept beside it in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordInfo {
    /// When this home first held the record (RFC 3339).
    pub added: String,
}

/// A device home, unlocked.
pub struct Device {
    home: PathBuf,
    pub(crate) store: Store,
    key: KeyPair,
    root: Option<KeyPair>,
    credential: Credential,
    pub(crate) record: Record,
    waiting: BTreeMap<Section, usize>,
    pub(crate) access: AccessSet,
    written: Vec<SignedChange>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("home", &self.home)
            .field("device", &self.key.public())
            .field("record", &self.record.id())
            .finish()
    }
}

impl Device {
    /// Path of the store file in a home.
    pub fn store_path(home: &Path) -> PathBuf {
        home.join(STORE_FILE)
    }

    /// Create a new record with a fresh root key and device key in an empty home.
    pub fn init(home: &Path, passphrase: &str, opts: InitOptions) -> Result<Device> {
        let mut profile = Map::new();
        profile.insert("name".into(), Value::String(opts.name.clone()));
        if let Some(dob) = &opts.dob {
            phr_model::entry::parse_date(dob)?;
            profile.insert("dob".into(), Value::String(dob.trim().into()));
        }
        // Validate before creating anything on disk.
        phr_model::entry::validate(Section::Profile, &profile)?;
        let root = KeyPair::generate();
        let mut device = Self::create(home, passphrase, &root, true, &opts.device_name, opts.kdf)?;
        device.write(|r| r.insert_entry(Section::Profile, PATIENT_ENTRY, profile))?;
        Ok(device)
    }

    /// Join an existing record on a new device from its recovery kit; the record's content
    /// arrives by syncing with another device or node.
    pub fn restore(
        home: &Path,
        passphrase: &str,
        kit: &RecoveryKit,
        device_name: &str,
        kdf: KdfParams,
    ) -> Result<Device> {
        Self::create(home, passphrase, kit.root(), true, device_name, kdf)
    }

    /// Set up a home for a device that was certified by pairing; its content arrives by sync.
    pub fn create_member(
        home: &Path,
        passphrase: &str,
        key: KeyPair,
        cert: DeviceCert,
        statements: Vec<Statement>,
        kdf: KdfParams,
    ) -> Result<Device> {
        Self::create_with(home, passphrase, key, Credential::Device(cert), statements, kdf)
    }

    /// Set up a home for someone granted access to another person's record (a caregiver, a
    /// school, a clinic): it holds and syncs only what the capability lets it read.
    pub fn create_holder(
        home: &Path,
        passphrase: &str,
        key: KeyPair,
        capability: phr_model::capability::Capability,
        statements: Vec<Statement>,
        kdf: KdfParams,
    ) -> Result<Device> {
        Self::create_with(
            home,
            passphrase,
            key,
            Credential::Capability(capability),
            statements,
            kdf,
        )
    }

    /// Set up a home from a credential received when joining; its content arrives by sync.
    pub fn create_with(
        home: &Path,
        passphrase: &str,
        key: KeyPair,
        credential: Credential,
        statements: Vec<Statement>,
        kdf: KdfParams,
    ) -> Result<Device> {
        if credential.holder() != key.public() {
            return Err(Error::BadSignature(Forgery::ForeignCredential));
        }
        credential.verify()?;
        let path = Self::store_path(home);
        let store = Store::create(&path, passphrase, kdf)?;
        let record_id = credential.record();
        let mut access = AccessSet::default();
        let setup = (|| -> Result<()> {
            store.put_secret(DEVICE_KEY, &key.secret_bytes())?;
            store.put_secret(CREDENTIAL, &json(&credential)?)?;
            store.put_secret(RECORD, &record_id.0)?;
            let info = RecordInfo {
                added: chrono::Utc::now().to_rfc3339(),
            };
            store.put_record(&record_id, &json(&info)?)?;
            let mut valid = vec![credential.statement()];
            access.insert(&record_id, credential.statement())?;
            for st in phr_model::access::in_order(statements) {
                match access.insert(&record_id, st.clone()) {
                    Ok(true) => valid.push(st),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("ignored a membership statement from the issuer: {e}"),
                }
            }
            store.put_statements(&record_id, &valid)
        })();
        if let Err(e) = setup {
            drop(store);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let mut record = Record::new(record_id, key.clone());
        record.set_limits(credential.scope().map(|s| (credential.name().to_string(), s.clone())));
        Ok(Device {
            home: home.to_path_buf(),
            store,
            record,
            key,
            root: None,
            credential,
            waiting: BTreeMap::new(),
            access,
            written: Vec::new(),
        })
    }

    fn create(
        home: &Path,
        passphrase: &str,
        root: &KeyPair,
        keep_root: bool,
        device_name: &str,
        kdf: KdfParams,
    ) -> Result<Device> {
        let path = Self::store_path(home);
        let store = Store::create(&path, passphrase, kdf)?;
        let key = KeyPair::generate();
        let record_id = root.public();
        let cert = DeviceCert::issue(root, key.public(), device_name, chrono::Utc::now().timestamp());
        let setup = (|| -> Result<()> {
            store.put_secret(DEVICE_KEY, &key.secret_bytes())?;
            if keep_root {
                store.put_secret(ROOT_KEY, &root.secret_bytes())?;
            }
            store.put_secret(CREDENTIAL, &json(&Credential::Device(cert.clone()))?)?;
            store.put_secret(RECORD, &record_id.0)?;
            let info = RecordInfo {
                added: chrono::Utc::now().to_rfc3339(),
            };
            store.put_record(&record_id, &json(&info)?)?;
            store.put_statements(&record_id, &[Statement::Device(cert.clone())])
        })();
        if let Err(e) = setup {
            // A half-initialised home is useless and would block a retry: remove it.
            drop(store);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let mut access = AccessSet::default();
        access.insert(&record_id, Statement::Device(cert.clone()))?;
        Ok(Device {
            home: home.to_path_buf(),
            store,
            record: Record::new(record_id, key.clone()),
            key,
            root: keep_root.then(|| root.clone()),
            credential: Credential::Device(cert),
            waiting: BTreeMap::new(),
            access,
            written: Vec::new(),
        })
    }

    /// Unlock an existing home and load its record.
    pub fn open(home: &Path, passphrase: &str) -> Result<Device> {
        let store = Store::open(&Self::store_path(home), passphrase)?;
        let secret32 = |name: &str| -> Result<Option<[u8; 32]>> {
            match store.secret(name)? {
                Some(v) => Ok(Some(v.try_into().map_err(|_| {
                    Error::Corrupt(Damage::WrongLength(Stored::Secret(name.to_string())))
                })?)),
                None => Ok(None),
            }
        };
        let key =
            KeyPair::from_secret(secret32(DEVICE_KEY)?.ok_or(Error::Corrupt(Damage::Missing(Stored::DeviceKey)))?);
        let root = secret32(ROOT_KEY)?.map(KeyPair::from_secret);
        let record_id = RecordId::from(secret32(RECORD)?.ok_or(Error::Corrupt(Damage::Missing(Stored::RecordId)))?);
        let credential: Credential = serde_json::from_slice(
            &store
                .secret(CREDENTIAL)?
                .ok_or(Error::Corrupt(Damage::Missing(Stored::Credential)))?,
        )
        .map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::Credential)))?;
        let (docs, waiting) = store.load_record(&record_id)?;
        let mut access = AccessSet::default();
        for st in store.statements(&record_id)? {
            // Statements were verified before they were stored; a failure here means the
            // sealed store itself is inconsistent.
            access.restore(&record_id, st).map_err(|e| {
                Error::Corrupt(Damage::FailsCheck {
                    stored: Stored::Membership,
                    cause: Box::new(e),
                })
            })?;
        }
        Ok(Device {
            home: home.to_path_buf(),
            record: {
                let mut r = Record::from_docs(record_id, key.clone(), docs);
                r.set_limits(credential.scope().map(|s| (credential.name().to_string(), s.clone())));
                r
            },
            store,
            key,
            root,
            credential,
            waiting,
            access,
            written: Vec::new(),
        })
    }

    /// Apply `edit` to the record, then sign and durably store every change it made in one
    /// transaction. If anything fails, nothing is stored and the record is reloaded as it was.
    pub fn write<T>(&mut self, edit: impl FnOnce(&mut Record) -> Result<T>) -> Result<T> {
        let result = edit(&mut self.record).and_then(|out| {
            let pending = self.record.take_pending();
            let waiting = self.store.append(&self.record.id(), &pending)?;
            self.waiting.extend(waiting);
            self.written.extend(pending);
            Ok(out)
        });
        match result {
            Ok(out) => {
                self.compact_if_due()?;
                Ok(out)
            }
            Err(e) => {
                self.reload()?;
                Err(e)
            }
        }
    }

    /// Local changes made durable since the last call, for pushing to connected peers.
    pub fn take_written(&mut self) -> Vec<SignedChange> {
        std::mem::take(&mut self.written)
    }

    /// Count `n` received changes as waiting for compaction; a section stored `whole` (as a
    /// snapshot, which clears its change rows) has nothing waiting, so it is not re-saved.
    pub(crate) fn note_received(&mut self, section: Section, n: usize, whole: bool) -> Result<()> {
        let waiting = self.waiting.entry(section).or_default();
        *waiting = if whole { 0 } else { *waiting + n };
        self.compact_if_due()
    }

    pub(crate) fn reload(&mut self) -> Result<()> {
        let (docs, waiting) = self.store.load_record(&self.record.id())?;
        self.record = Record::from_docs(self.record.id(), self.key.clone(), docs);
        // A holder's record keeps checking its edits against its grant after a reload (a
        // refused edit reloads), and keeps writing no audit events of its own.
        let limits = self
            .credential
            .scope()
            .map(|s| (self.credential.name().to_string(), s.clone()));
        self.record.set_limits(limits);
        self.waiting = waiting;
        Ok(())
    }

    fn compact_if_due(&mut self) -> Result<()> {
        let due: Vec<Section> = self
            .waiting
            .iter()
            .filter(|(_, n)| **n >= COMPACT_AFTER)
            .map(|(s, _)| *s)
            .collect();
        for section in due {
            self.compact_section(section)?;
        }
        Ok(())
    }

    fn compact_section(&mut self, section: Section) -> Result<()> {
        let id = self.record.id();
        self.store.compact(&id, section, self.record.doc(section))?;
        self.waiting.insert(section, 0);
        Ok(())
    }

    /// Fold every section's changes into snapshots now.
    pub fn compact(&mut self) -> Result<()> {
        for section in Section::SYNCED {
            self.compact_section(section)?;
        }
        Ok(())
    }

    /// Changes per section stored since the last snapshot.
    pub fn uncompacted(&self) -> &BTreeMap<Section, usize> {
        &self.waiting
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record, for reads that need `&mut` (history, heads).
    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.record
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This device's key pair (also its iroh identity).
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// This device's public key.
    pub fn device_id(&self) -> PublicKey {
        self.key.public()
    }

    /// How this device proves its right to the record.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The root key's certificate for this device, if it is one of the patient's devices.
    pub fn cert(&self) -> Option<&DeviceCert> {
        match &self.credential {
            Credential::Device(c) => Some(c),
            Credential::Capability(_) => None,
        }
    }

    /// This device's name (or the grant's label).
    pub fn name(&self) -> &str {
        self.credential.name()
    }

    /// Whether this device holds the patient's root key.
    pub fn has_root(&self) -> bool {
        self.root.is_some()
    }

    /// The recovery kit for the root key, if this device holds it.
    pub fn recovery_kit(&self) -> Result<RecoveryKit> {
        self.root
            .as_ref()
            .map(RecoveryKit::new)
            .ok_or(Error::NotAllowed(Refusal::NeedsRootKey(RootAction::ExportRecoveryKit)))
    }

    /// Who belongs to the record.
    pub fn access(&self) -> &AccessSet {
        &self.access
    }

    /// The patient's root key, if this device holds it.
    pub fn root(&self) -> Option<&KeyPair> {
        self.root.as_ref()
    }

    /// Remove a device from the record (needs the root key). Its changes this device already
    /// holds stay valid; anything it writes later is refused everywhere the removal reaches.
    pub fn remove_device(&mut self, device: &PublicKey) -> Result<phr_model::access::DeviceRemoval> {
        let root = self
            .root
            .clone()
            .ok_or(Error::NotAllowed(Refusal::NeedsRootKey(RootAction::RemoveDevices)))?;
        if *device == self.key.public() {
            return Err(Error::NotAllowed(Refusal::RemoveSelf));
        }
        if self.access.cert(device).is_none() {
            return Err(Error::NotAllowed(Refusal::NotOurDevice { device: device.short() }));
        }
        let mut cutoff = BTreeMap::new();
        for s in Section::SYNCED {
            let seq = self.record.clock(s).get(device).map(|(seq, _)| *seq).unwrap_or(0);
            cutoff.insert(s, seq);
        }
        let removal = phr_model::access::DeviceRemoval::issue(&root, *device, cutoff, chrono::Utc::now().timestamp());
        self.merge_statements(vec![Statement::Removal(removal.clone())])?;
        let detail = format!("removed device {}", device.short());
        self.write(|r| r.audit("remove", &detail, Some(&device.to_string()), &[]))?;
        Ok(removal)
    }

    /// Grant scoped access to a key directly (needs the root key); the usual way is a share
    /// ticket, which fills in the key of whoever uses it.
    pub fn grant(&mut self, grant: phr_model::capability::Grant) -> Result<phr_model::capability::Capability> {
        let cap = self.sign_grant(grant)?;
        self.commit_grant(&cap)?;
        Ok(cap)
    }

    /// Sign a grant with the root key without adding it to the record yet: for access that
    /// takes effect only once its holder has accepted (a clinic's node taking the record in).
    pub fn sign_grant(&self, grant: phr_model::capability::Grant) -> Result<phr_model::capability::Capability> {
        let root = self
            .root
            .as_ref()
            .ok_or(Error::NotAllowed(Refusal::NeedsRootKey(RootAction::ShareAccess)))?;
        phr_model::capability::Capability::issue_root(root, grant)
    }

    /// Add a grant made with [`Device::sign_grant`] to the record, durably, with its audit entry.
    pub fn commit_grant(&mut self, cap: &phr_model::capability::Capability) -> Result<()> {
        self.merge_statements(vec![Statement::Capability(cap.clone())])?;
        let detail = format!("granted `{}` ({}) access", cap.label, cap.audience.short());
        self.write(|r| r.audit("grant", &detail, Some(&hex::encode(cap.id)), &[]))?;
        Ok(())
    }

    /// Withdraw a grant (by a unique prefix of its id): its holder, and everyone it passed
    /// access on to, can no longer connect, and their changes after this point are refused
    /// everywhere. Needs the root key.
    pub fn revoke(&mut self, id_prefix: &str) -> Result<phr_model::capability::Revocation> {
        let root = self
            .root
            .clone()
            .ok_or(Error::NotAllowed(Refusal::NeedsRootKey(RootAction::RevokeAccess)))?;
        let mut found = self.access.grant(id_prefix);
        // Copies of one grant under one id (a re-encoded copy, or a delegated grant reusing its
        // parent's id) are one grant to revoke: the revocation names the id, and withdraws
        // every capability whose chain carries it.
        found.sort_by_key(|c| (c.id, c.parent.is_some()));
        found.dedup_by_key(|c| c.id);
        let cap = match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::NotAllowed(Refusal::NoSuchGrant {
                    given: id_prefix.to_string(),
                }));
            }
            _ => {
                return Err(Error::NotAllowed(Refusal::AmbiguousGrant {
                    given: id_prefix.to_string(),
                }));
            }
        };
        // Everyone whose access hangs on this grant keeps what they wrote so far, nothing after.
        let mut holders = vec![cap.audience];
        for (c, _) in self.access.grants() {
            if c.chain_ids().contains(&cap.id) && !holders.contains(&c.audience) {
                holders.push(c.audience);
            }
        }
        let mut cutoff = Vec::new();
        for h in &holders {
            for s in Section::SYNCED {
                let seq = self.record.clock(s).get(h).map(|(seq, _)| *seq).unwrap_or(0);
                cutoff.push((*h, s, seq));
            }
        }
        let record = self.record.id();
        let rev =
            phr_model::capability::Revocation::issue(&root, record, cap.id, cutoff, chrono::Utc::now().timestamp());
        self.merge_statements(vec![Statement::Revocation(rev.clone())])?;
        let detail = format!("revoked the access of `{}` ({})", cap.label, cap.audience.short());
        self.write(|r| r.audit("revoke", &detail, Some(&hex::encode(cap.id)), &[]))?;
        Ok(rev)
    }

    /// Check the audit log end to end: every event signed by a device of the record, each
    /// device's events an unbroken chain, nothing missing; returns how many events were checked.
    pub fn verify_audit(&mut self) -> Result<usize> {
        let record = self.record.id();
        let doc = self.record.doc(Section::Audit);
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(Error::Corrupt(Damage::AuditGap));
        }
        let changes = doc.get_changes(&[]);
        let infos: Vec<phr_model::verify::ChangeInfo> =
            changes.iter().map(phr_model::verify::ChangeInfo::of_change).collect();
        let clock = self.record.clock(Section::Audit).clone();
        let mut sigs = Vec::new();
        for (hash, _) in clock.values().map(|(s, h)| (*h, *s)) {
            match self.store.signature(&record, Section::Audit, &hash)? {
                Some(sig) => sigs.push(phr_model::verify::HeadSig { hash, sig }),
                None => return Err(Error::Corrupt(Damage::AuditUnsigned)),
            }
        }
        let verdict = phr_model::verify::check(
            &record,
            Section::Audit,
            &Default::default(),
            |_| false,
            &infos,
            &sigs,
            &self.access,
            &|_, _| Ok(()),
        );
        match verdict.rejected.first() {
            None => Ok(infos.len()),
            Some((_, why)) => Err(Error::BadSignature(Forgery::AuditLog { why: why.clone() })),
        }
    }

    /// Verify and durably add membership statements from a peer; returns how many were new.
    pub fn merge_statements(&mut self, statements: Vec<Statement>) -> Result<usize> {
        let record = self.record.id();
        let mut fresh = Vec::new();
        for st in phr_model::access::in_order(statements) {
            if self.access.insert(&record, st.clone())? {
                fresh.push(st);
            }
        }
        self.store.put_statements(&record, &fresh)?;
        if fresh
            .iter()
            .any(|s| matches!(s, Statement::Removal(_) | Statement::Revocation(_)))
        {
            self.apply_cutoffs()?;
        }
        Ok(fresh.len())
    }

    /// Drop held changes that removals and revocations invalidate (see
    /// [`crate::exchange::enforce_cutoffs`]); returns how many per section.
    ///
    /// What this device itself wrote and lost only for what it was built on (a caregivers'-log
    /// entry written after syncing with the revoked caregiver) is made again as new changes,
    /// so an honest writer loses nothing it wrote.
    pub fn apply_cutoffs(&mut self) -> Result<Vec<(Section, usize)>> {
        let outcome = crate::exchange::enforce_cutoffs(&mut self.record, &self.access, true).and_then(|cut| {
            self.store.persist_received(&cut.persist)?;
            // Stored: now they are this device's writes, to push to connected peers.
            self.written.extend(cut.remade);
            Ok(cut.dropped)
        });
        if outcome.is_err() {
            self.reload()?;
        }
        outcome
    }

    /// Change the passphrase protecting this home.
    pub fn change_passphrase(&self, new_passphrase: &str, kdf: KdfParams) -> Result<()> {
        self.store.change_passphrase(new_passphrase, kdf)
    }
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|_| Error::internal("a value would not encode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::entry::parse_fields;

    fn fast() -> KdfParams {
        KdfParams::for_tests()
    }

    fn opts() -> InitOptions {
        InitOptions {
            name: "Mia Lopez".into(),
            dob: Some("2017-04-12".into()),
            device_name: "phone".into(),
            kdf: fast(),
        }
    }

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn entries_survive_a_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::init(dir.path(), "pw", opts()).unwrap();
        let med = parse_fields(
            Section::Medications,
            &args(&[("name", "Amoxicillin"), ("dose", "250 mg")]),
        )
        .unwrap();
        let id = d.write(|r| r.add(Section::Medications, med)).unwrap();
        d.write(|r| {
            r.stop_medication(
                &id,
                chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
                Some("course done"),
            )
        })
        .unwrap();
        drop(d);

        let mut d = Device::open(dir.path(), "pw").unwrap();
        let m = d.record().read_entry(Section::Medications, &id).unwrap().unwrap();
        assert_eq!(m.fields["status"], "stopped");
        assert_eq!(m.fields["stopped"], "2024-05-01");
        assert_eq!(
            d.record()
                .read_entry(Section::Profile, "patient")
                .unwrap()
                .unwrap()
                .fields["name"],
            "Mia Lopez"
        );

        d.compact().unwrap();
        assert_eq!(d.uncompacted()[&Section::Medications], 0);
        let heads = d.record_mut().heads(Section::Medications);
        drop(d);
        let mut d = Device::open(dir.path(), "pw").unwrap();
        assert_eq!(d.record_mut().heads(Section::Medications), heads);
        assert_eq!(
            d.store()
                .signature_count(&d.record().id(), Section::Medications)
                .unwrap(),
            2
        );
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Device::init(dir.path(), "right", opts()).unwrap());
        let err = Device::open(dir.path(), "wrong").unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase), "{err}");
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::init(dir.path(), "pw", opts()).unwrap();
        let before = d.record().count(Section::Labs);
        let ok = parse_fields(
            Section::Labs,
            &args(&[("test", "Ferritin"), ("value", "30"), ("date", "2024-01-02")]),
        )
        .unwrap();
        let bad = parse_fields(Section::Labs, &args(&[("test", "Iron"), ("date", "2024-01-02")])).unwrap();
        let res = d.write(|r| {
            r.add(Section::Labs, ok)?;
            r.add(Section::Labs, bad)
        });
        assert!(res.is_err());
        assert_eq!(d.record().count(Section::Labs), before);
        drop(d);
        let d = Device::open(dir.path(), "pw").unwrap();
        assert_eq!(d.record().count(Section::Labs), before);
    }

    #[test]
    fn notes_are_amended_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::init(dir.path(), "pw", opts()).unwrap();
        let note = parse_fields(
            Section::Notes,
            &args(&[
                ("discipline", "speech"),
                ("clinician", "J. Ames"),
                ("date", "2024-02-01"),
                ("subjective", "Tired today"),
            ]),
        )
        .unwrap();
        let id = d.write(|r| r.add(Section::Notes, note)).unwrap();
        let mut change = Map::new();
        change.insert("subjective".into(), Value::String("Rested".into()));
        assert!(matches!(
            d.write(|r| r.edit(Section::Notes, &id, change)),
            Err(Error::NotAllowed(_))
        ));
        d.write(|r| r.amend_note(&id, "Was tired after school", Some("clarify")))
            .unwrap();
        let n = d.record().read_entry(Section::Notes, &id).unwrap().unwrap();
        assert_eq!(n.fields["subjective"], "Tired today");
        assert_eq!(n.fields["amendments"][0]["text"], "Was tired after school");
        let hist = d.record_mut().history(Some(Section::Notes));
        assert_eq!(hist.len(), 2);
        assert!(hist[1].message.starts_with("amend notes"));
    }

    /// A device whose medication's dose was changed on it (150 mg) and, at the same time, on
    /// another writer (200 mg); returns its folder, the device and the entry's id.
    fn dose_changed_on_two_devices() -> (tempfile::TempDir, Device, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Device::init(dir.path(), "pw", opts()).unwrap();
        let med = parse_fields(
            Section::Medications,
            &args(&[("name", "Ibuprofen"), ("dose", "100 mg")]),
        )
        .unwrap();
        let id = a.write(|r| r.add(Section::Medications, med)).unwrap();
        // A second writer with its own key, starting from the same state.
        let other = KeyPair::generate();
        let fork = a.record_mut().doc(Section::Medications).fork();
        let mut b = Record::from_docs(a.record().id(), other, [(Section::Medications, fork)].into());
        let dose = |v: &str| {
            let mut m = Map::new();
            m.insert("dose".into(), Value::String(v.into()));
            m
        };
        a.write(|r| r.edit(Section::Medications, &id, dose("150 mg"))).unwrap();
        b.edit(Section::Medications, &id, dose("200 mg")).unwrap();
        let from_b: Vec<_> = b.take_pending().iter().map(|c| c.decode().unwrap()).collect();
        a.write(|r| r.apply_verified(Section::Medications, from_b)).unwrap();
        (dir, a, id)
    }

    #[test]
    fn an_edit_to_the_value_shown_settles_a_conflict_on_that_field() {
        let (_dir, mut a, id) = dose_changed_on_two_devices();
        let shown = a.record().read_entry(Section::Medications, &id).unwrap().unwrap();
        let mut dose = Map::new();
        dose.insert("dose".into(), shown.fields["dose"].clone());
        a.write(|r| r.edit(Section::Medications, &id, dose)).unwrap();
        assert!(a.record().conflicts().unwrap().is_empty());
    }

    #[test]
    fn concurrent_edits_of_one_field_are_listed_as_conflicts() {
        let (_dir, mut a, id) = dose_changed_on_two_devices();
        let conflicts = a.record().conflicts().unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, "dose");
        let values: Vec<_> = conflicts[0]
            .values
            .iter()
            .map(|v| v.value.as_str().unwrap().to_string())
            .collect();
        assert!(values.contains(&"150 mg".to_string()) && values.contains(&"200 mg".to_string()));

        // Picking the value shown now still settles it: an edit to it would change nothing.
        let shown = a.record().read_entry(Section::Medications, &id).unwrap().unwrap();
        let shown = shown.fields["dose"].clone();
        a.write(|r| r.resolve(Section::Medications, &id, "dose", shown.clone()))
            .unwrap();
        assert!(a.record().conflicts().unwrap().is_empty());
        let after = a.record().read_entry(Section::Medications, &id).unwrap().unwrap();
        assert_eq!(after.fields["dose"], shown);
        let hist = a.record_mut().history(Some(Section::Medications));
        assert!(hist.last().unwrap().message.starts_with("resolve medications"));
        // Nothing left to choose between: refused, naming the field.
        let again = a.write(|r| r.resolve(Section::Medications, &id, "dose", shown));
        assert!(
            matches!(again, Err(Error::NotAllowed(Refusal::NoConflict { ref field, .. })) if field == "dose"),
            "{again:?}"
        );
    }
}
