//! Many records held by one identity in one store, loaded on demand and evicted when idle:
//! what a clinic node hosts, or a family device holding several children's records.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::exchange::{self, Batch, Received, WireClock};
use crate::store::{COMPACT_AFTER, Store};
use phr_model::access::{AccessSet, Statement};
use phr_model::change::SignedChange;
use phr_model::crypto::KdfParams;
use phr_model::error::{Damage, Error, Refusal, Result, Stored};
use phr_model::identity::{KeyPair, PublicKey, RecordId};
use phr_model::record::Record;
use phr_model::section::Section;
use phr_model::verify::Clock;

const LIBRARY_KEY: &str = "library_key";

/// One record held in memory.
pub struct Loaded {
    /// The record's documents.
    pub record: Record,
    /// Its membership.
    pub access: AccessSet,
    waiting: BTreeMap<Section, usize>,
    last_used: Instant,
}

/// Records of many patients under one identity.
pub struct Library {
    store: Store,
    key: KeyPair,
    loaded: HashMap<RecordId, Loaded>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("key", &self.key.public())
            .field("loaded", &self.loaded.len())
            .finish()
    }
}

impl Library {
    /// Create a new library store for `key`.
    pub fn create(path: &Path, passphrase: &str, key: KeyPair, kdf: KdfParams) -> Result<Library> {
        let store = Store::create(path, passphrase, kdf)?;
        store.put_secret(LIBRARY_KEY, &key.secret_bytes())?;
        Ok(Library {
            store,
            key,
            loaded: HashMap::new(),
        })
    }

    /// Open an existing library store.
    pub fn open(path: &Path, passphrase: &str) -> Result<Library> {
        let store = Store::open(path, passphrase)?;
        let raw = store
            .secret(LIBRARY_KEY)?
            .ok_or(Error::Corrupt(Damage::Missing(Stored::LibraryKey)))?;
        let secret: [u8; 32] = raw
            .try_into()
            .map_err(|_| Error::Corrupt(Damage::WrongLength(Stored::LibraryKey)))?;
        Ok(Library {
            store,
            key: KeyPair::from_secret(secret),
            loaded: HashMap::new(),
        })
    }

    /// The identity records are synced under.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every record held, loaded or not.
    pub fn records(&self) -> Result<Vec<RecordId>> {
        Ok(self.store.records()?.into_iter().map(|(id, _)| id).collect())
    }

    /// How many records are in memory now.
    pub fn loaded_count(&self) -> usize {
        self.loaded.len()
    }

    /// Start holding a record, given its membership statements (which must certify this
    /// library's key). Its content arrives by sync.
    pub fn add_record(&mut self, record: RecordId, statements: Vec<Statement>) -> Result<()> {
        let mut access = AccessSet::default();
        let mut valid = Vec::new();
        for st in statements {
            if access.insert(&record, st.clone())? {
                valid.push(st);
            }
        }
        if !access.is_member(&self.key.public()) {
            return Err(Error::NotAllowed(Refusal::NotGranted { record: record.short() }));
        }
        self.store.put_statements(&record, &valid)?;
        let info = serde_json::to_vec(&serde_json::json!({ "added": chrono::Utc::now().to_rfc3339() }))
            .map_err(|_| Error::internal("the record's information would not encode"))?;
        self.store.put_record(&record, &info)?;
        self.loaded.remove(&record);
        Ok(())
    }

    /// Whether the library holds a record.
    pub fn holds(&self, record: &RecordId) -> Result<bool> {
        // A key lookup: listing (and unsealing) every record here made a session over n
        // records cost n² unseals.
        Ok(self.loaded.contains_key(record) || self.store.has_record(record)?)
    }

    /// A record, loaded from the store if it is not in memory.
    pub fn get(&mut self, id: &RecordId) -> Result<&mut Loaded> {
        if !self.loaded.contains_key(id) {
            if !self.store.has_record(id)? {
                return Err(not_held(id));
            }
            let (docs, waiting) = self.store.load_record(id)?;
            let access = self.stored_access(id)?;
            let record = Record::from_docs(*id, self.key.clone(), docs);
            self.loaded.insert(
                *id,
                Loaded {
                    record,
                    access,
                    waiting,
                    last_used: Instant::now(),
                },
            );
        }
        let loaded = self
            .loaded
            .get_mut(id)
            .ok_or_else(|| Error::internal("a loaded record went missing"))?;
        loaded.last_used = Instant::now();
        Ok(loaded)
    }

    /// Look at a record's membership without loading its documents: a peer's claim to a record
    /// is checked against it before anything of the record is loaded on the peer's behalf.
    pub fn with_membership<T>(&self, id: &RecordId, f: impl FnOnce(&AccessSet) -> T) -> Result<T> {
        if let Some(l) = self.loaded.get(id) {
            return Ok(f(&l.access));
        }
        if !self.store.has_record(id)? {
            return Err(not_held(id));
        }
        Ok(f(&self.stored_access(id)?))
    }

    /// A record's membership as stored.
    fn stored_access(&self, id: &RecordId) -> Result<AccessSet> {
        let mut access = AccessSet::default();
        for st in self.store.statements(id)? {
            // Verified before they were stored; the seal authenticates them (see `restore`).
            access.restore(id, st).map_err(|e| {
                Error::Corrupt(Damage::FailsCheck {
                    stored: Stored::Membership,
                    cause: Box::new(e),
                })
            })?;
        }
        Ok(access)
    }

    /// Drop records unused for `idle` from memory; returns how many were evicted.
    pub fn evict_idle(&mut self, idle: Duration) -> usize {
        let before = self.loaded.len();
        self.loaded.retain(|_, l| l.last_used.elapsed() < idle);
        before - self.loaded.len()
    }

    /// Edit a record as this library's identity, durably; returns the signed changes made.
    pub fn write<T>(
        &mut self,
        id: &RecordId,
        edit: impl FnOnce(&mut Record) -> Result<T>,
    ) -> Result<(T, Vec<SignedChange>)> {
        let loaded = self.get(id)?;
        let out = edit(&mut loaded.record).map(|out| (out, loaded.record.take_pending()));
        let result = out.and_then(|(out, pending)| {
            let waiting = self.store.append(id, &pending)?;
            Ok((out, pending, waiting))
        });
        match result {
            Ok((out, pending, waiting)) => {
                if let Some(l) = self.loaded.get_mut(id) {
                    l.waiting.extend(waiting);
                }
                self.compact_due(id)?;
                Ok((out, pending))
            }
            Err(e) => {
                self.loaded.remove(id);
                Err(e)
            }
        }
    }

    /// Edit a record durably as `author` (one of this library's clinicians), held to `scope`
    /// so nothing is written that the patient's devices would refuse; returns the changes made.
    pub fn write_as<T>(
        &mut self,
        id: &RecordId,
        author: &KeyPair,
        scope: (String, phr_model::capability::Scope),
        edit: impl FnOnce(&mut Record) -> Result<T>,
    ) -> Result<(T, Vec<SignedChange>)> {
        let loaded = self.get(id)?;
        let me = loaded.record.set_author(author.clone());
        loaded.record.set_limits(Some(scope));
        let result = self.write(id, edit);
        // A failed write drops the record from memory; it reloads with the library's own key.
        if let Some(l) = self.loaded.get_mut(id) {
            l.record.set_author(me);
            l.record.set_limits(None);
        }
        result
    }

    fn compact_due(&mut self, id: &RecordId) -> Result<()> {
        let Some(l) = self.loaded.get_mut(id) else {
            return Ok(());
        };
        let due: Vec<Section> = l
            .waiting
            .iter()
            .filter(|(_, n)| **n >= COMPACT_AFTER)
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            self.store.compact(id, s, l.record.doc(s))?;
            l.waiting.insert(s, 0);
        }
        Ok(())
    }

    /// Clocks of a record, for a hello.
    pub fn clocks(&mut self, id: &RecordId) -> Result<Vec<(Section, WireClock)>> {
        Ok(exchange::clocks(&mut self.get(id)?.record))
    }

    /// What a peer with `clock` lacks of a section.
    pub fn outgoing(&mut self, id: &RecordId, section: Section, clock: &Clock) -> Result<Option<Batch>> {
        self.get(id)?;
        let Library { store, loaded, .. } = self;
        let l = loaded
            .get_mut(id)
            .ok_or_else(|| Error::internal("a loaded record went missing"))?;
        exchange::outgoing(&mut l.record, store, section, clock)
    }

    /// Verify and apply batches of any records, then make all of them durable in one
    /// transaction.
    pub fn incoming(&mut self, batches: Vec<Batch>) -> Result<Vec<Received>> {
        let mut results = Vec::with_capacity(batches.len());
        let ids: Vec<(RecordId, Section)> = batches.iter().map(|b| (b.record, b.section)).collect();
        // (record, section, changes applied, whether the section was stored whole as a snapshot)
        let mut touched: Vec<(RecordId, Section, usize, bool)> = Vec::new();
        let outcome = (|| -> Result<()> {
            let mut persist = Vec::new();
            for ((received, p), (id, section)) in exchange::take_in_many(self, batches)?.into_iter().zip(&ids) {
                let whole = matches!(p, Some(crate::store::Persist::Snapshot { .. }));
                touched.push((*id, *section, received.applied as usize, whole));
                results.push(received);
                persist.extend(p);
            }
            self.store.persist_received(&persist)
        })();
        if let Err(e) = outcome {
            // Drop every record a batch was for from memory; it reloads from what is stored.
            for (id, _) in &ids {
                self.loaded.remove(id);
            }
            return Err(e);
        }
        for (id, section, n, whole) in touched {
            if section == Section::Profile && n > 0 {
                self.remember_name(&id)?;
            }
            if let Some(l) = self.loaded.get_mut(&id) {
                // A snapshot clears the section's change rows: nothing waits to be folded in.
                let waiting = l.waiting.entry(section).or_default();
                *waiting = if whole { 0 } else { *waiting + n };
            }
            self.compact_due(&id)?;
        }
        Ok(results)
    }

    /// Keep the patient's name beside the record, so listing records loads none of them.
    fn remember_name(&mut self, id: &RecordId) -> Result<()> {
        let name = self
            .get(id)?
            .record
            .read_entry(Section::Profile, phr_model::entry::PATIENT_ENTRY)?
            .and_then(|e| e.fields.get("name").and_then(|v| v.as_str()).map(str::to_string));
        let Some(name) = name else { return Ok(()) };
        let mut info = self
            .store
            .record_info(id)?
            .and_then(|info| serde_json::from_slice::<serde_json::Value>(&info).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if info.get("name").and_then(|v| v.as_str()) == Some(name.as_str()) {
            return Ok(());
        }
        info["name"] = serde_json::Value::String(name);
        let raw = serde_json::to_vec(&info).map_err(|_| Error::internal("record information would not encode"))?;
        self.store.put_record(id, &raw)
    }

    /// Merge membership statements of a record; returns whether `peer` is still a member.
    pub fn merge(&mut self, id: &RecordId, peer: &PublicKey, statements: Vec<Statement>) -> Result<bool> {
        self.merge_fresh(id, peer, statements).map(|(member, _)| member)
    }

    /// Merge membership statements of a record; returns whether `peer` is still a member and
    /// which statements were new here.
    pub fn merge_fresh(
        &mut self,
        id: &RecordId,
        peer: &PublicKey,
        statements: Vec<Statement>,
    ) -> Result<(bool, Vec<Statement>)> {
        let l = self.get(id)?;
        let mut fresh = Vec::new();
        for st in phr_model::access::in_order(statements) {
            match l.access.insert(id, st.clone()) {
                Ok(true) => fresh.push(st),
                Ok(false) => {}
                Err(e) => tracing::warn!(peer = %peer.short(), "ignored a membership statement: {e}"),
            }
        }
        let member = l.access.is_member(peer);
        let withdrawn = fresh
            .iter()
            .any(|s| matches!(s, Statement::Removal(_) | Statement::Revocation(_)));
        // A node writes no caregivers' log of its own: it makes nothing again.
        let persist = if withdrawn {
            exchange::enforce_cutoffs(&mut l.record, &l.access, false)?.persist
        } else {
            Vec::new()
        };
        self.store.put_statements(id, &fresh)?;
        if let Err(e) = self.store.persist_received(&persist) {
            self.loaded.remove(id);
            return Err(e);
        }
        Ok((member, fresh))
    }
}

fn not_held(id: &RecordId) -> Error {
    Error::NotAllowed(Refusal::NotHeld { record: id.short() })
}

impl exchange::Holder for Library {
    fn holding(&mut self, id: &RecordId) -> Result<(&mut Record, &AccessSet)> {
        let l = self.get(id)?;
        Ok((&mut l.record, &l.access))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::entry::parse_fields;
    use phr_model::identity::DeviceCert;

    fn fast() -> KdfParams {
        KdfParams::for_tests()
    }

    /// Two libraries (a clinic node and its second machine) that both hold `n` records.
    fn pair(n: usize) -> (tempfile::TempDir, Library, Library, Vec<RecordId>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
        let mut a = Library::create(&dir.path().join("a.redb"), "pass", ka.clone(), fast()).expect("a");
        let mut b = Library::create(&dir.path().join("b.redb"), "pass", kb.clone(), fast()).expect("b");
        let mut ids = Vec::new();
        for _ in 0..n {
            let root = KeyPair::generate();
            let now = chrono::Utc::now().timestamp();
            let statements = vec![
                Statement::Device(DeviceCert::issue(&root, ka.public(), "a", now)),
                Statement::Device(DeviceCert::issue(&root, kb.public(), "b", now)),
            ];
            a.add_record(root.public(), statements.clone()).expect("add on a");
            b.add_record(root.public(), statements).expect("add on b");
            ids.push(root.public());
        }
        (dir, a, b, ids)
    }

    fn note(lib: &mut Library, id: &RecordId, text: &str) {
        let args = [
            ("discipline", "speech"),
            ("clinician", "Dana Reyes, CCC-SLP"),
            ("date", "2026-11-20"),
            ("plan", text),
        ];
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let fields = parse_fields(Section::Notes, &args).expect("fields");
        lib.write(id, |r| r.add(Section::Notes, fields)).expect("write");
    }

    fn batch(lib: &mut Library, id: &RecordId, peer: &Clock) -> Batch {
        lib.outgoing(id, Section::Notes, peer)
            .expect("outgoing")
            .expect("something to send")
    }

    #[test]
    fn a_forged_signature_among_many_records_rejects_only_that_records_changes() {
        let (_dir, mut a, mut b, ids) = pair(3);
        let mut batches = Vec::new();
        for id in &ids {
            note(&mut a, id, "session went well");
            batches.push(batch(&mut a, id, &Clock::new()));
        }
        batches[1].head_sigs[0].sig[0] ^= 1;

        let got = b.incoming(batches).expect("incoming");

        assert_eq!(got[0].applied, 1);
        assert_eq!(got[2].applied, 1);
        assert_eq!(got[1].applied, 0);
        assert!(got[1].rejected[0].contains("does not verify"), "{:?}", got[1].rejected);
        assert_eq!(b.get(&ids[1]).expect("record").record.count(Section::Notes), 0);
        assert_eq!(b.get(&ids[2]).expect("record").record.count(Section::Notes), 1);
    }

    #[test]
    fn a_batch_building_on_an_earlier_one_in_the_same_delivery_is_taken_in() {
        let (_dir, mut a, mut b, ids) = pair(2);
        note(&mut a, &ids[0], "first visit");
        let first = batch(&mut a, &ids[0], &Clock::new());
        let seen = a.get(&ids[0]).expect("record").record.clock(Section::Notes).clone();
        note(&mut a, &ids[0], "second visit");
        let second = batch(&mut a, &ids[0], &seen);
        note(&mut a, &ids[1], "intake");
        let other = batch(&mut a, &ids[1], &Clock::new());

        let got = b.incoming(vec![first, other, second]).expect("incoming");

        assert_eq!(got.iter().map(|r| r.applied).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(got.iter().all(|r| r.rejected.is_empty()), "{got:?}");
        assert_eq!(b.get(&ids[0]).expect("record").record.count(Section::Notes), 2);
    }

    #[test]
    fn a_record_loads_only_the_sections_that_hold_something() {
        let (_dir, mut a, _b, ids) = pair(1);
        note(&mut a, &ids[0], "first visit");
        a.loaded.clear();
        let l = a.get(&ids[0]).expect("record");
        assert_eq!(l.record.count(Section::Notes), 1);
        assert!(l.record.doc_ref(Section::Medications).is_none());
        assert!(l.record.clock(Section::Medications).is_empty());
    }
}
