//! What a sync session needs from the process that holds records: one patient device
//! ([`Replica`]) or a node hosting many records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::replica::{Arrival, Entered, Replica};
use super::wire::RecordHello;
use phr_model::access::{AccessSet, Credential, Statement};
use phr_model::error::Result;
use phr_model::identity::{KeyPair, PublicKey, RecordId};
use phr_model::section::Section;
use phr_model::verify::Clock;
use phr_store::exchange::{self, Batch, Received};
use phr_store::library::Library;

/// The records a process offers to sync and how it takes changes in.
pub trait Host: Send + Sync + 'static {
    /// This endpoint's device key.
    fn key(&self) -> KeyPair;
    /// Hellos for the records this host offers; `only` narrows to records the peer asked for.
    fn offer(&self, only: Option<&[RecordId]>) -> Result<Vec<RecordHello>>;
    /// Whether `peer` may sync `hello.record`; on success, its certificate is kept.
    fn admit(&self, peer: &PublicKey, hello: &RecordHello) -> std::result::Result<(), String>;
    /// Membership statements of a record, to send.
    fn statements(&self, record: &RecordId) -> Result<Vec<Statement>>;
    /// Merge statements from a peer; returns whether `peer` is still a member afterwards.
    fn merge(&self, record: &RecordId, peer: &PublicKey, statements: Vec<Statement>) -> Result<bool>;
    /// Changes of a section that `peer`, holding `clock`, lacks, if it may read the section.
    fn outgoing(&self, record: &RecordId, peer: &PublicKey, section: Section, clock: &Clock) -> Result<Option<Batch>>;
    /// Whether `peer` may read a section of a record now.
    fn may_read(&self, record: &RecordId, peer: &PublicKey, section: Section) -> bool;
    /// Verify, apply and durably store batches (one transaction where possible).
    fn incoming(&self, batches: Vec<Batch>) -> Result<Vec<Received>>;
    /// What enters the host from now on, for (at least) `records`.
    fn subscribe(&self, records: &[RecordId]) -> broadcast::Receiver<Arc<Entered>>;
    /// Announce a batch that entered from `from`.
    fn publish(&self, from: Option<PublicKey>, batch: Batch);
    /// Remember how to reach a peer (default: forget it).
    fn remember(&self, _addr: &iroh::EndpointAddr) {}
    /// Account for a finished session (default: nothing).
    fn record_session(&self, _peer: &PublicKey, _report: &super::SessionReport) {}
    /// Count changes sent to a peer, in catch-up or live (default: nothing).
    fn sent(&self, _count: u32) {}
}

/// `addr`, with the relays of the address stored before (`known`) when it names none: a peer's
/// hello lists only its direct addresses, and behind NAT the relay is how it is reached.
fn keep_known_relays(addr: &iroh::EndpointAddr, known: Option<&[u8]>) -> iroh::EndpointAddr {
    if addr.relay_urls().next().is_some() {
        return addr.clone();
    }
    let before: Option<iroh::EndpointAddr> = known.and_then(|k| serde_json::from_slice(k).ok());
    let relays = before
        .into_iter()
        .flat_map(|b| b.relay_urls().cloned().collect::<Vec<_>>());
    relays.fold(addr.clone(), |a, url| a.with_relay_url(url))
}

impl Host for Replica {
    fn key(&self) -> KeyPair {
        self.lock().key().clone()
    }

    fn offer(&self, only: Option<&[RecordId]>) -> Result<Vec<RecordHello>> {
        let record = self.record_id();
        if only.is_some_and(|o| !o.contains(&record)) {
            return Ok(Vec::new());
        }
        let mut device = self.lock();
        Ok(vec![RecordHello {
            record,
            credential: device.credential().clone(),
            clocks: in_hello(device.clocks()),
        }])
    }

    fn admit(&self, peer: &PublicKey, hello: &RecordHello) -> std::result::Result<(), String> {
        if hello.record != self.record_id() {
            return Err(format!("this device does not hold record {}", hello.record.short()));
        }
        let mut device = self.lock();
        check_peer(peer, hello, device.access())?;
        device
            .merge_statements(vec![hello.credential.statement()])
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn statements(&self, _record: &RecordId) -> Result<Vec<Statement>> {
        Ok(self.lock().access().statements().cloned().collect())
    }

    fn merge(&self, _record: &RecordId, peer: &PublicKey, statements: Vec<Statement>) -> Result<bool> {
        let mut d = self.lock();
        let mut fresh = Vec::new();
        for st in phr_model::access::in_order(statements) {
            // A forged statement is logged and skipped; the rest still count.
            match d.merge_statements(vec![st.clone()]) {
                Ok(0) => {}
                Ok(_) => fresh.push(st),
                Err(e) => tracing::warn!(peer = %peer.short(), "ignored a membership statement: {e}"),
            }
        }
        let member = d.access().is_member(peer);
        // What a withdrawal made this device write again (see `Device::apply_cutoffs`).
        let remade = d.take_written();
        drop(d);
        // Other live peers need what was new here too, before any change that depends on it.
        self.publish_access(Some(*peer), fresh);
        for batch in phr_store::exchange::local_batches(self.record_id(), remade)? {
            self.publish(None, batch);
        }
        Ok(member)
    }

    fn outgoing(&self, _record: &RecordId, peer: &PublicKey, section: Section, clock: &Clock) -> Result<Option<Batch>> {
        let mut device = self.lock();
        if !device.access().may_read(peer, section, now()) {
            return Ok(None);
        }
        device.outgoing(section, clock)
    }

    fn may_read(&self, _record: &RecordId, peer: &PublicKey, section: Section) -> bool {
        self.lock().access().may_read(peer, section, now())
    }

    fn incoming(&self, batches: Vec<Batch>) -> Result<Vec<Received>> {
        let mut device = self.lock();
        let me = device.key().public();
        let (admitted, verdicts) = screen(batches, |b| device.access().may_read(&me, b.section, now()));
        let taken = if admitted.is_empty() {
            Vec::new()
        } else {
            device.incoming_many(admitted)?
        };
        Ok(merge_verdicts(verdicts, taken))
    }

    fn subscribe(&self, _records: &[RecordId]) -> broadcast::Receiver<Arc<Entered>> {
        Replica::subscribe(self)
    }

    fn publish(&self, from: Option<PublicKey>, batch: Batch) {
        Replica::publish(self, from, batch)
    }

    fn record_session(&self, peer: &PublicKey, report: &super::SessionReport) {
        // Which peer received which sections is the record's accounting of disclosures; the
        // audit log's own traffic is left out so logging a sync does not cause another.
        let sent: Vec<Section> = report
            .sent
            .iter()
            .filter(|(s, n)| **s != Section::Audit && **n > 0)
            .map(|(s, _)| *s)
            .collect();
        let rejected: Vec<&String> = report.received.values().flat_map(|r| r.rejected.iter()).collect();
        if sent.is_empty() && rejected.is_empty() {
            return;
        }
        let who = self.describe(peer);
        let result = self.write(|r| {
            if !sent.is_empty() {
                let names: Vec<&str> = sent.iter().map(|s| s.name()).collect();
                r.audit(
                    "sync",
                    &format!("sent {who}: {}", names.join(", ")),
                    Some(&peer.to_string()),
                    &sent,
                )?;
            }
            for why in rejected.iter().take(20) {
                r.audit(
                    "reject",
                    &format!("refused a change from {who}: {why}"),
                    Some(&peer.to_string()),
                    &[],
                )?;
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!("could not write the audit log: {e}");
        }
    }

    fn remember(&self, addr: &iroh::EndpointAddr) {
        let device = self.lock();
        let peer = PublicKey(*addr.id.as_bytes());
        let record = device.record().id();
        // Sessions run this on their critical path, usually with an address already stored:
        // a read then spares them a durable write.
        let known = device
            .store()
            .peers(&record)
            .ok()
            .and_then(|all| all.into_iter().find(|(p, _)| *p == peer).map(|(_, info)| info));
        let addr = keep_known_relays(addr, known.as_deref());
        let Ok(json) = serde_json::to_vec(&addr) else {
            return;
        };
        if known.as_deref() == Some(json.as_slice()) {
            return;
        }
        if let Err(e) = device.store().put_peer(&record, &peer, &json) {
            tracing::warn!("could not remember peer {}: {e}", peer.short());
        }
    }
}

/// The checks every host makes of a peer's claim to a record: its certificate is for the
/// connection's key and this record, is signed by the record's root, and was not revoked.
pub fn check_peer(peer: &PublicKey, hello: &RecordHello, access: &AccessSet) -> std::result::Result<(), String> {
    let cred = &hello.credential;
    if cred.holder() != *peer || cred.record() != hello.record {
        return Err("the credential is not for this device and record".into());
    }
    // A credential this side already holds, byte for byte, was verified when it was added:
    // a node admitting thousands of records' devices would otherwise check each again.
    if !access.contains(&cred.statement()) {
        cred.verify().map_err(|e| e.to_string())?;
    }
    match cred {
        Credential::Device(_) => {
            if access.removal(peer).is_some() {
                return Err(format!("device {} was removed from this record", peer.short()));
            }
        }
        Credential::Capability(cap) => {
            if access.is_revoked(cap) {
                return Err(format!("the access granted to `{}` was revoked", cap.label));
            }
            if !cap.chain_valid_at(now()) {
                return Err(format!(
                    "the access granted to `{}` has expired or is not yet valid",
                    cap.label
                ));
            }
        }
    }
    Ok(())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Many records under one identity, shared by a process's sync sessions.
pub struct LibraryHost {
    library: Mutex<Library>,
    /// Everything that enters, for sessions syncing several records at once.
    feed: broadcast::Sender<Arc<Entered>>,
    /// What enters each record, for sessions syncing that record alone (a patient's device).
    /// A write then wakes only its own record's sessions, not every session of the node.
    feeds: Mutex<HashMap<RecordId, broadcast::Sender<Arc<Entered>>>>,
    counters: Counters,
}

/// How many batches of one record a live session may fall behind before it must resync.
const RECORD_FEED_CAPACITY: usize = 256;

/// Running totals of what a library took in and sent, for metrics.
#[derive(Debug, Default)]
struct Counters {
    changes_in: AtomicU64,
    changes_out: AtomicU64,
    rejected: AtomicU64,
    written: AtomicU64,
}

/// Totals since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Changes received from peers, verified and stored.
    pub changes_in: u64,
    /// Changes sent to peers.
    pub changes_out: u64,
    /// Changes refused on receipt.
    pub rejected: u64,
    /// Changes written here (by the node or its clinicians).
    pub written: u64,
}

impl std::fmt::Debug for LibraryHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibraryHost").finish()
    }
}

impl LibraryHost {
    /// Share a library.
    pub fn new(library: Library) -> Arc<LibraryHost> {
        let (feed, _) = broadcast::channel(4096);
        Arc::new(LibraryHost {
            library: Mutex::new(library),
            feed,
            feeds: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// Hand what entered a record to the sessions listening for it.
    fn tell(&self, record: RecordId, entered: Entered) {
        let entered = Arc::new(entered);
        if self.feed.receiver_count() > 0 {
            let _ = self.feed.send(entered.clone());
        }
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(feed) = feeds.get(&record)
            && feed.send(entered).is_err()
        {
            // Nobody listens any more.
            feeds.remove(&record);
        }
    }

    /// Exclusive access to the library.
    pub fn lock(&self) -> MutexGuard<'_, Library> {
        // Every store write is one transaction, so a panic elsewhere leaves it consistent.
        self.library.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Totals since start.
    pub fn totals(&self) -> Totals {
        let c = &self.counters;
        Totals {
            changes_in: c.changes_in.load(Ordering::Relaxed),
            changes_out: c.changes_out.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
        }
    }

    /// Tell live sessions about new membership statements of a record, ahead of any change
    /// that needs them.
    pub fn publish_access(&self, from: Option<PublicKey>, record: RecordId, statements: Vec<Statement>) {
        if statements.is_empty() {
            return;
        }
        self.tell(
            record,
            Entered {
                from,
                what: Arrival::Access { record, statements },
            },
        );
    }

    /// Edit a record durably as one of the library's clinicians, held to `scope`, and push
    /// the new changes to live sessions.
    pub fn write_as<T>(
        &self,
        id: &RecordId,
        author: &KeyPair,
        scope: (String, phr_model::capability::Scope),
        edit: impl FnOnce(&mut phr_model::record::Record) -> Result<T>,
    ) -> Result<T> {
        let (out, written) = self.lock().write_as(id, author, scope, edit)?;
        self.announce(*id, written)?;
        Ok(out)
    }

    /// Edit a record durably and push the new changes to live sessions.
    pub fn write<T>(&self, id: &RecordId, edit: impl FnOnce(&mut phr_model::record::Record) -> Result<T>) -> Result<T> {
        let (out, written) = self.lock().write(id, edit)?;
        self.announce(*id, written)?;
        Ok(out)
    }

    fn announce(&self, id: RecordId, written: Vec<phr_model::change::SignedChange>) -> Result<()> {
        self.counters.written.fetch_add(written.len() as u64, Ordering::Relaxed);
        for batch in phr_store::exchange::local_batches(id, written)? {
            self.tell(
                id,
                Entered {
                    from: None,
                    what: Arrival::Changes(batch),
                },
            );
        }
        Ok(())
    }
}

impl Host for LibraryHost {
    fn key(&self) -> KeyPair {
        self.lock().key().clone()
    }

    fn offer(&self, only: Option<&[RecordId]>) -> Result<Vec<RecordHello>> {
        let mut lib = self.lock();
        let me = lib.key().public();
        let ids = match only {
            Some(o) => o.to_vec(),
            None => lib.records()?,
        };
        let mut out = Vec::new();
        for id in ids {
            if !lib.holds(&id)? {
                continue;
            }
            let credential = match lib.get(&id)?.access.credential(&me, now()) {
                Some(c) => c,
                None => continue,
            };
            out.push(RecordHello {
                record: id,
                credential,
                clocks: in_hello(lib.clocks(&id)?),
            });
        }
        Ok(out)
    }

    fn admit(&self, peer: &PublicKey, hello: &RecordHello) -> std::result::Result<(), String> {
        let mut lib = self.lock();
        if !lib.holds(&hello.record).map_err(|e| e.to_string())? {
            return Err(format!("this node does not hold record {}", hello.record.short()));
        }
        // The claim is checked against the stored membership alone: a stranger who knows a
        // record's id must not make the node load (decrypt) the record's documents.
        lib.with_membership(&hello.record, |access| check_peer(peer, hello, access))
            .map_err(|e| e.to_string())??;
        lib.merge(&hello.record, peer, vec![hello.credential.statement()])
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn statements(&self, record: &RecordId) -> Result<Vec<Statement>> {
        // Refused peers are told of withdrawals from these too: no need to load the record.
        self.lock()
            .with_membership(record, |access| access.statements().cloned().collect())
    }

    fn merge(&self, record: &RecordId, peer: &PublicKey, statements: Vec<Statement>) -> Result<bool> {
        let (member, fresh) = self.lock().merge_fresh(record, peer, statements)?;
        self.publish_access(Some(*peer), *record, fresh);
        Ok(member)
    }

    fn outgoing(&self, record: &RecordId, peer: &PublicKey, section: Section, clock: &Clock) -> Result<Option<Batch>> {
        let mut lib = self.lock();
        if !lib.get(record)?.access.may_read(peer, section, now()) {
            return Ok(None);
        }
        lib.outgoing(record, section, clock)
    }

    fn may_read(&self, record: &RecordId, peer: &PublicKey, section: Section) -> bool {
        self.lock()
            .get(record)
            .map(|l| l.access.may_read(peer, section, now()))
            .unwrap_or(false)
    }

    fn incoming(&self, batches: Vec<Batch>) -> Result<Vec<Received>> {
        let results = {
            let mut lib = self.lock();
            let me = lib.key().public();
            // A record the library cannot load is left to `Library::incoming` to report.
            let (admitted, verdicts) = screen(batches, |b| {
                lib.get(&b.record)
                    .map(|l| l.access.may_read(&me, b.section, now()))
                    .unwrap_or(true)
            });
            let taken = if admitted.is_empty() {
                Vec::new()
            } else {
                lib.incoming(admitted)?
            };
            merge_verdicts(verdicts, taken)
        };
        let applied: u64 = results.iter().map(|r| u64::from(r.applied)).sum();
        let rejected: u64 = results.iter().map(|r| r.rejected.len() as u64).sum();
        for why in results.iter().flat_map(|r| r.rejected.iter()) {
            tracing::warn!("refused a received change: {why}");
        }
        self.counters.changes_in.fetch_add(applied, Ordering::Relaxed);
        self.counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        Ok(results)
    }

    fn sent(&self, count: u32) {
        self.counters.changes_out.fetch_add(u64::from(count), Ordering::Relaxed);
    }

    fn subscribe(&self, records: &[RecordId]) -> broadcast::Receiver<Arc<Entered>> {
        let [record] = records else {
            return self.feed.subscribe();
        };
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        // Drop the feeds of records whose sessions all ended, so they do not pile up.
        feeds.retain(|_, feed| feed.receiver_count() > 0);
        feeds
            .entry(*record)
            .or_insert_with(|| broadcast::channel(RECORD_FEED_CAPACITY).0)
            .subscribe()
    }

    fn publish(&self, from: Option<PublicKey>, batch: Batch) {
        self.tell(
            batch.record,
            Entered {
                from,
                what: Arrival::Changes(batch),
            },
        );
    }
}

/// Set aside batches of sections this side may not read itself (`readable` says which it may):
/// no honest peer sends them (catch-up and live forwarding send only what the receiver may
/// read), so they come from a hostile or broken peer, and holding them would keep data the
/// patient never granted this side. Returns the batches to take in, and per batch in order
/// either None (taken in) or the refusal to acknowledge it with.
fn screen(batches: Vec<Batch>, mut readable: impl FnMut(&Batch) -> bool) -> (Vec<Batch>, Vec<Option<Received>>) {
    let mut admitted = Vec::with_capacity(batches.len());
    let mut verdicts = Vec::with_capacity(batches.len());
    for b in batches {
        if readable(&b) {
            verdicts.push(None);
            admitted.push(b);
        } else {
            verdicts.push(Some(Received {
                rejected: vec![format!(
                    "{} {} change(s) refused: this side holds no right to read {}",
                    b.count, b.section, b.section
                )],
                ..Received::default()
            }));
        }
    }
    (admitted, verdicts)
}

/// Put the results of the batches taken in back among the refusals, in the batches' order.
fn merge_verdicts(verdicts: Vec<Option<Received>>, taken: Vec<Received>) -> Vec<Received> {
    let mut taken = taken.into_iter();
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or_else(|| taken.next().unwrap_or_default()))
        .collect()
}

/// The clocks a hello carries: those of the sections that hold changes. A section left out is
/// one its peer reads as empty (as it reads any section missing from a hello), so an older phr,
/// which cannot decode a section it does not know, still syncs a record with nothing in the
/// sections added after it (docs/PROTOCOL.md, "Sections a peer does not know").
fn in_hello(clocks: Vec<(Section, exchange::WireClock)>) -> Vec<(Section, exchange::WireClock)> {
    clocks.into_iter().filter(|(_, clock)| !clock.is_empty()).collect()
}

/// Decode a hello's clocks.
pub fn clocks_of(hello: &RecordHello) -> std::collections::BTreeMap<Section, Clock> {
    hello.clocks.iter().map(|(s, c)| (*s, exchange::from_wire(c))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::crypto::KdfParams;
    use phr_model::identity::DeviceCert;

    /// A clinic's library hosting one patient's record (none of it in memory), the record's
    /// root, and the patient's phone.
    fn node_hosting_a_record() -> (tempfile::TempDir, Arc<LibraryHost>, KeyPair, KeyPair) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, root, phone) = (KeyPair::generate(), KeyPair::generate(), KeyPair::generate());
        let mut lib = Library::create(
            &dir.path().join("node.redb"),
            "pass",
            node.clone(),
            KdfParams::for_tests(),
        )
        .expect("library");
        let t = now();
        let statements = vec![
            Statement::Device(DeviceCert::issue(&root, node.public(), "clinic", t)),
            Statement::Device(DeviceCert::issue(&root, phone.public(), "phone", t)),
        ];
        lib.add_record(root.public(), statements).expect("hosted");
        (dir, LibraryHost::new(lib), root, phone)
    }

    fn hello(record: &RecordId, cert: DeviceCert) -> RecordHello {
        RecordHello {
            record: *record,
            credential: Credential::Device(cert),
            clocks: Vec::new(),
        }
    }

    #[test]
    fn a_strangers_hello_for_a_hosted_record_is_refused_without_loading_the_record() {
        let (_dir, host, root, phone) = node_hosting_a_record();
        let record = root.public();
        assert_eq!(host.lock().loaded_count(), 0);

        // Mallory knows the record's id and certifies her own key for it with her own key.
        let mallory = KeyPair::generate();
        let mut forged = DeviceCert::issue(&mallory, mallory.public(), "phone", now());
        forged.record = record;
        let refused = host.admit(&mallory.public(), &hello(&record, forged));
        assert!(refused.is_err(), "a forged certificate is refused");
        // A certificate of another record entirely, sent under this record's id.
        let own = DeviceCert::issue(&mallory, mallory.public(), "phone", now());
        let refused = host.admit(&mallory.public(), &hello(&record, own));
        assert!(refused.is_err(), "another record's certificate is refused");
        assert_eq!(host.lock().loaded_count(), 0, "nothing was loaded for a stranger");

        // The patient's own phone is admitted, and only then is the record loaded.
        let cert = DeviceCert::issue(&root, phone.public(), "phone", now());
        host.admit(&phone.public(), &hello(&record, cert))
            .expect("the phone is admitted");
        assert_eq!(host.lock().loaded_count(), 1);
    }

    #[test]
    fn a_refused_strangers_withdrawals_are_read_without_loading_the_record() {
        let (_dir, host, root, _phone) = node_hosting_a_record();
        let statements = host.statements(&root.public()).expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(host.lock().loaded_count(), 0);
    }
}
