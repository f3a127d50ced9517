//! A device shared between the sync sessions of a running process, with a feed of every
//! batch that enters it (local writes and changes received from peers) for live forwarding.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use phr_model::access::Statement;
use phr_model::error::Result;
use phr_model::identity::{PublicKey, RecordId};
use phr_model::record::Record;
use phr_store::device::Device;
use phr_store::exchange::Batch;

/// What entered a replica or library, and the peer it came from (none for local writes).
#[derive(Debug, Clone)]
pub struct Entered {
    /// Peer that sent it, so it is not echoed back.
    pub from: Option<PublicKey>,
    /// Changes, or new membership statements.
    pub what: Arrival,
}

/// Something live sessions forward to their peers as it happens.
#[derive(Debug, Clone)]
pub enum Arrival {
    /// Changes of one section.
    Changes(Batch),
    /// New membership statements of a record (a grant, a revocation, a clinician's
    /// credential), sent ahead of any change that needs them to verify.
    Access {
        /// The record.
        record: RecordId,
        /// The new statements.
        statements: Vec<Statement>,
    },
}

impl Entered {
    /// The changes, if changes entered.
    pub fn batch(&self) -> Option<&Batch> {
        match &self.what {
            Arrival::Changes(b) => Some(b),
            Arrival::Access { .. } => None,
        }
    }
}

/// How many entered batches a slow session may fall behind before it must resync.
const FEED_CAPACITY: usize = 4096;

/// A device shared by a process's sync sessions.
pub struct Replica {
    device: Mutex<Device>,
    record: RecordId,
    me: PublicKey,
    feed: broadcast::Sender<Arc<Entered>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("record", &self.record)
            .field("me", &self.me)
            .finish()
    }
}

impl Replica {
    /// Share a device.
    pub fn new(device: Device) -> Arc<Replica> {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Arc::new(Replica {
            record: device.record().id(),
            me: device.device_id(),
            device: Mutex::new(device),
            feed,
        })
    }

    /// The record this replica holds.
    pub fn record_id(&self) -> RecordId {
        self.record
    }

    /// This device's key.
    pub fn device_id(&self) -> PublicKey {
        self.me
    }

    /// Exclusive access to the device.
    pub fn lock(&self) -> MutexGuard<'_, Device> {
        // A panic while holding the lock cannot leave the store half-written (every write is
        // one transaction), so the device is still consistent: carry on with it.
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the audit log names `peer`: its credential's label and its short key.
    pub(crate) fn describe(&self, peer: &PublicKey) -> String {
        let name = self
            .lock()
            .access()
            .credential(peer, chrono::Utc::now().timestamp())
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| "a former member".into());
        format!("`{name}` ({})", peer.short())
    }

    /// Edit the record durably, then push the new changes to every live session.
    pub fn write<T>(&self, edit: impl FnOnce(&mut Record) -> Result<T>) -> Result<T> {
        let mut device = self.lock();
        let out = device.write(edit)?;
        let written = device.take_written();
        drop(device);
        for batch in phr_store::exchange::local_batches(self.record, written)? {
            self.publish(None, batch);
        }
        Ok(out)
    }

    /// Listen to every batch entering the replica from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Entered>> {
        self.feed.subscribe()
    }

    pub(crate) fn publish(&self, from: Option<PublicKey>, batch: Batch) {
        // No subscribers is fine: nobody is connected.
        let _ = self.feed.send(Arc::new(Entered {
            from,
            what: Arrival::Changes(batch),
        }));
    }

    /// Tell live sessions about membership statements this device just made or learned
    /// (a grant, a revocation) from `from`, so connected peers act on them without
    /// reconnecting.
    pub fn publish_access(&self, from: Option<PublicKey>, statements: Vec<Statement>) {
        if statements.is_empty() {
            return;
        }
        let _ = self.feed.send(Arc::new(Entered {
            from,
            what: Arrival::Access {
                record: self.record,
                statements,
            },
        }));
    }

    /// Take the device back (when no session uses it any more).
    pub fn into_device(self: Arc<Self>) -> std::result::Result<Device, Arc<Self>> {
        Arc::try_unwrap(self).map(|r| r.device.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}
