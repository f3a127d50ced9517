//! What a sync session needs from the process that holds records: one patient device
//! ([`Replica`]) or a node hosting many records.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::replica::{Entered, Replica};
use super::wire::RecordHello;
use crate::access::Statement;
use crate::error::Result;
use crate::exchange::{self, Batch, Received};
use crate::identity::{KeyPair, PublicKey, RecordId};
use crate::section::Section;
use crate::verify::Clock;

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
    /// Changes of a section that a peer with `clock` lacks.
    fn outgoing(&self, record: &RecordId, section: Section, clock: &Clock) -> Result<Option<Batch>>;
    /// Verify, apply and durably store batches (one transaction where possible).
    fn incoming(&self, batches: Vec<Batch>) -> Result<Vec<Received>>;
    /// Batches entering the host from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Entered>>;
    /// Announce a batch that entered from `from`.
    fn publish(&self, from: Option<PublicKey>, batch: Batch);
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
            cert: device.cert().clone(),
            clocks: device.clocks(),
        }])
    }

    fn admit(&self, peer: &PublicKey, hello: &RecordHello) -> std::result::Result<(), String> {
        if hello.record != self.record_id() {
            return Err(format!("this device does not hold record {}", hello.record.short()));
        }
        if hello.cert.device != *peer || hello.cert.record != hello.record {
            return Err("the device certificate is not for this device and record".into());
        }
        hello.cert.verify().map_err(|e| e.to_string())?;
        let mut device = self.lock();
        if device.access().removal(peer).is_some() {
            return Err(format!("device {} was removed from this record", peer.short()));
        }
        device
            .merge_statements(vec![Statement::Device(hello.cert.clone())])
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn statements(&self, _record: &RecordId) -> Result<Vec<Statement>> {
        Ok(self.lock().access().statements().cloned().collect())
    }

    fn merge(&self, _record: &RecordId, peer: &PublicKey, statements: Vec<Statement>) -> Result<bool> {
        let mut d = self.lock();
        for st in statements {
            // A forged statement is logged and skipped; the rest still count.
            if let Err(e) = d.merge_statements(vec![st]) {
                tracing::warn!(peer = %peer.short(), "ignored a membership statement: {e}");
            }
        }
        Ok(d.access().is_member(peer))
    }

    fn outgoing(&self, _record: &RecordId, section: Section, clock: &Clock) -> Result<Option<Batch>> {
        self.lock().outgoing(section, clock)
    }

    fn incoming(&self, batches: Vec<Batch>) -> Result<Vec<Received>> {
        self.lock().incoming_many(batches)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Entered>> {
        Replica::subscribe(self)
    }

    fn publish(&self, from: Option<PublicKey>, batch: Batch) {
        Replica::publish(self, from, batch)
    }
}

/// Decode a hello's clocks.
pub fn clocks_of(hello: &RecordHello) -> std::collections::BTreeMap<Section, Clock> {
    hello.clocks.iter().map(|(s, c)| (*s, exchange::from_wire(c))).collect()
}
