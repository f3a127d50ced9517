//! The device's half of an exchange with a peer: its clocks, what a peer lacks, and taking in
//! a peer's batches durably (the record-level rules are in [`crate::exchange`]).

use phr_model::error::{Error, Result};
use phr_model::section::Section;
use phr_model::verify::Clock;

use super::Device;
use crate::exchange::{Batch, OneRecord, Received, WireClock, clocks, outgoing, take_in_many};
use crate::store::Persist;

impl Device {
    /// Each section's clock, for the hello message.
    pub fn clocks(&mut self) -> Vec<(Section, WireClock)> {
        clocks(&mut self.record)
    }

    /// The changes of `section` that a peer with `peer` clock lacks, if any.
    pub fn outgoing(&mut self, section: Section, peer: &Clock) -> Result<Option<Batch>> {
        outgoing(&mut self.record, &self.store, section, peer)
    }

    /// Verify a batch from a peer and durably apply what passes; nothing else enters the record.
    pub fn incoming(&mut self, batch: Batch) -> Result<Received> {
        let mut got = self.incoming_many(vec![batch])?;
        got.pop().ok_or_else(|| Error::internal("no result for a batch"))
    }

    /// Verify and apply several batches, then make them durable in one transaction.
    pub fn incoming_many(&mut self, batches: Vec<Batch>) -> Result<Vec<Received>> {
        let sections: Vec<Section> = batches.iter().map(|b| b.section).collect();
        let mut results = Vec::with_capacity(batches.len());
        let mut whole = Vec::with_capacity(batches.len());
        let outcome = (|| -> Result<()> {
            let mut one = OneRecord {
                record: &mut self.record,
                access: &self.access,
            };
            let mut persist = Vec::new();
            for (received, p) in take_in_many(&mut one, batches)? {
                whole.push(matches!(p, Some(Persist::Snapshot { .. })));
                results.push(received);
                persist.extend(p);
            }
            self.store.persist_received(&persist)
        })();
        if let Err(e) = outcome {
            // Keep memory and disk in step: drop anything applied but not stored.
            self.reload()?;
            return Err(e);
        }
        for ((r, section), whole) in results.iter().zip(sections).zip(whole) {
            self.note_received(section, r.applied as usize, whole)?;
        }
        Ok(results)
    }
}
