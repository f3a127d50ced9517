//! What a device sends a peer, and how it takes in what a peer sent: the record-level half of
//! sync, independent of any transport.

use automerge::{AutoCommit, Change, ChangeHash};
use serde::{Deserialize, Serialize};

use crate::store::Persist;
use crate::store::Store;
use phr_model::access::AccessSet;
use phr_model::change::SignedChange;
use phr_model::error::{DecodeProblem, Error, Origin, Refusal, Result};
use phr_model::identity::{PublicKey, RecordId};
use phr_model::record::Record;
use phr_model::section::Section;
use phr_model::verify::{self, ChangeInfo, Clock, Hash, HeadSig};

/// How a batch of changes is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// A whole section as `save()` writes it; sent to a peer that holds none of the section.
    Snapshot,
    /// An Automerge bundle of the changes the peer lacks.
    Bundle,
    /// Individual encoded changes; used for live pushes of a few changes.
    Raw,
}

/// A batch of one section's changes for a peer, with each author's head signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Record.
    pub record: phr_model::identity::RecordId,
    /// Section.
    pub section: Section,
    /// Encoding of `payload`.
    pub encoding: Encoding,
    /// Encoded changes (for `Raw`, a postcard list of encoded changes).
    pub payload: Vec<u8>,
    /// Signature over each author's newest change in the batch.
    pub head_sigs: Vec<HeadSig>,
    /// Number of changes, for progress and accounting.
    pub count: u32,
}

impl Batch {
    /// A live push of just-written local changes of one section.
    pub fn from_local(
        record: phr_model::identity::RecordId,
        section: Section,
        changes: &[SignedChange],
    ) -> Result<Batch> {
        let raw: Vec<&[u8]> = changes.iter().map(|c| c.bytes.as_slice()).collect();
        let payload = postcard::to_stdvec(&raw).map_err(|_| Error::internal("a batch would not encode"))?;
        // Every local change is signed; the newest one covers the rest.
        let head_sigs = changes
            .last()
            .map(|c| {
                vec![HeadSig {
                    hash: c.hash,
                    sig: c.signature,
                }]
            })
            .unwrap_or_default();
        Ok(Batch {
            record,
            section,
            encoding: Encoding::Raw,
            payload,
            head_sigs,
            count: changes.len() as u32,
        })
    }
}

/// Just-written local changes of a record as live pushes, one batch per section.
pub fn local_batches(record: phr_model::identity::RecordId, written: Vec<SignedChange>) -> Result<Vec<Batch>> {
    let mut by_section: std::collections::BTreeMap<Section, Vec<SignedChange>> = Default::default();
    for c in written {
        by_section.entry(c.section).or_default().push(c);
    }
    by_section
        .into_iter()
        .map(|(section, changes)| Batch::from_local(record, section, &changes))
        .collect()
}

/// The result of taking in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// Changes newly applied and made durable.
    pub applied: u32,
    /// Changes already held.
    pub duplicates: u32,
    /// Why each refused change was refused.
    pub rejected: Vec<String>,
    /// What was applied, re-encoded for forwarding to other peers (none if nothing applied).
    #[serde(skip)]
    pub forward: Option<Batch>,
}

/// Clock as sent on the wire.
pub type WireClock = Vec<(PublicKey, u64, Hash)>;

/// Convert a clock for the wire.
pub fn to_wire(clock: &Clock) -> WireClock {
    clock.iter().map(|(a, (s, h))| (*a, *s, *h)).collect()
}

/// Convert a clock from the wire (last entry per author wins; malformed input just
/// makes us send more than needed).
pub fn from_wire(w: &WireClock) -> Clock {
    w.iter().map(|(a, s, h)| (*a, (*s, *h))).collect()
}

/// Each section's clock of a record, for the hello message.
pub fn clocks(record: &mut Record) -> Vec<(Section, WireClock)> {
    Section::SYNCED
        .iter()
        .map(|s| (*s, to_wire(record.clock(*s))))
        .collect()
}

/// The changes of `section` that a peer with `peer` clock lacks, if any, with the head
/// signatures (read from `store`) that prove them.
pub fn outgoing(record: &mut Record, store: &Store, section: Section, peer: &Clock) -> Result<Option<Batch>> {
    Outgoing { record, store }.run(section, peer)
}

struct Outgoing<'a> {
    record: &'a mut Record,
    store: &'a Store,
}

impl Outgoing<'_> {
    fn run(self, section: Section, peer: &Clock) -> Result<Option<Batch>> {
        let mine = self.record.clock(section).clone();
        if mine.is_empty() {
            return Ok(None);
        }
        // The peer holds, for each author, a prefix of that author's chain; the intersection
        // of our histories is the past of each author's change at min(our seq, their seq).
        let mut have: Vec<ChangeHash> = Vec::new();
        let mut lacking = false;
        for (author, (my_seq, my_hash)) in &mine {
            match peer.get(author) {
                Some((p_seq, p_hash)) if p_seq >= my_seq => have.push(ChangeHash(*my_hash)),
                Some((_, p_hash)) => {
                    lacking = true;
                    if self.record.has_change(section, p_hash) {
                        have.push(ChangeHash(*p_hash));
                    }
                }
                None => lacking = true,
            }
        }
        if !lacking {
            return Ok(None);
        }
        let doc = self.record.doc(section);
        let (encoding, payload, authors, count) = if peer.is_empty() {
            let n = doc.get_changes_meta(&[]).len();
            (
                Encoding::Snapshot,
                doc.save(),
                mine.keys().copied().collect::<Vec<_>>(),
                n,
            )
        } else {
            let changes = doc.get_changes(&have);
            let mut authors: Vec<PublicKey> = Vec::new();
            for c in &changes {
                if let Ok(a) = SignedChange::author(c)
                    && !authors.contains(&a)
                {
                    authors.push(a);
                }
            }
            let n = changes.len();
            let bundle = doc.bundle(changes.iter().map(Change::hash))?;
            (Encoding::Bundle, bundle.bytes().to_vec(), authors, n)
        };
        let record = self.record.id();
        let mut head_sigs = Vec::new();
        for a in authors {
            if let Some((_, hash)) = mine.get(&a) {
                match self.store.signature(&record, section, hash)? {
                    Some(sig) => head_sigs.push(HeadSig { hash: *hash, sig }),
                    None => {
                        tracing::warn!(author = %a.short(), %section, "no stored signature for an author's newest change; the peer will refuse it")
                    }
                }
            }
        }
        Ok(Some(Batch {
            record: self.record.id(),
            section,
            encoding,
            payload,
            head_sigs,
            count: count as u32,
        }))
    }
}

/// Verify one batch against a record's membership and apply what passes, in memory only;
/// returns the outcome and what the caller must make durable before acknowledging.
pub fn take_in(record: &mut Record, access: &AccessSet, batch: Batch) -> Result<(Received, Option<Persist>)> {
    let mut one = OneRecord { record, access };
    take_in_many(&mut one, vec![batch])?
        .pop()
        .ok_or_else(|| Error::internal("no result for a batch"))
}

/// Where [`take_in_many`] finds the record a batch is for, and that record's membership.
pub trait Holder {
    /// The record `id` and its membership, or why it cannot be had.
    fn holding(&mut self, id: &RecordId) -> Result<(&mut Record, &AccessSet)>;
}

/// A device's own record as a [`Holder`].
pub(crate) struct OneRecord<'a> {
    pub(crate) record: &'a mut Record,
    pub(crate) access: &'a AccessSet,
}

impl Holder for OneRecord<'_> {
    fn holding(&mut self, _id: &RecordId) -> Result<(&mut Record, &AccessSet)> {
        // A batch for another record is refused by `TakeIn::prepare`.
        Ok((&mut *self.record, self.access))
    }
}

/// Verify batches (of any records `holder` holds) against their records' membership and
/// apply what passes, in memory only; returns, per batch in order, the outcome and what the
/// caller must make durable before acknowledging.
pub fn take_in_many(holder: &mut impl Holder, batches: Vec<Batch>) -> Result<Vec<(Received, Option<Persist>)>> {
    let mut slots: Vec<Option<(Received, Option<Persist>)>> = Vec::with_capacity(batches.len());
    // Batches checked but for their signatures. One ed25519 verification costs several
    // applies, so the signatures of all of them are verified together: a node taking in a
    // thousand records' small batches paid for a thousand separate verifications.
    let mut waiting: Vec<(usize, Prepared)> = Vec::new();
    for batch in batches {
        // A batch builds on what an earlier one of the same section adds: finish those first.
        if waiting
            .iter()
            .any(|(_, p)| p.batch.record == batch.record && p.batch.section == batch.section)
        {
            finish_waiting(holder, &mut waiting, &mut slots)?;
        }
        let (record, access) = holder.holding(&batch.record)?;
        let index = slots.len();
        slots.push(None);
        match (TakeIn { record, access }).prepare(batch)? {
            Intake::Done(received) => slots[index] = Some((received, None)),
            Intake::Verify(prepared) => waiting.push((index, *prepared)),
        }
    }
    finish_waiting(holder, &mut waiting, &mut slots)?;
    slots
        .into_iter()
        .map(|s| s.ok_or_else(|| Error::internal("a received batch was left unfinished")))
        .collect()
}

/// Verify the signatures of every waiting batch at once, then apply each batch.
fn finish_waiting(
    holder: &mut impl Holder,
    waiting: &mut Vec<(usize, Prepared)>,
    slots: &mut [Option<(Received, Option<Persist>)>],
) -> Result<()> {
    let mut checks = Vec::new();
    let mut counts = Vec::with_capacity(waiting.len());
    for (_, p) in waiting.iter_mut() {
        let mine = p.authorized.take_signatures();
        counts.push(mine.len());
        checks.extend(mine);
    }
    let valid = verify::verify_signatures(&checks);
    let mut at = 0;
    for ((index, prepared), n) in waiting.drain(..).zip(counts) {
        let (record, _) = holder.holding(&prepared.batch.record)?;
        let mine = valid.get(at..at + n).unwrap_or_default();
        at += n;
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(prepared.finish(record, mine)?);
        }
    }
    Ok(())
}

/// What [`TakeIn::prepare`] made of a batch.
enum Intake {
    /// Nothing to verify: the outcome is known.
    Done(Received),
    /// Checked but for its signatures.
    Verify(Box<Prepared>),
}

/// A batch decoded and authorized, waiting for its signatures to be verified.
struct Prepared {
    batch: Batch,
    /// The batch's changes not yet held (empty when it came as a snapshot of a section this
    /// side held nothing of).
    changes: Vec<Change>,
    /// The batch as a document, when it is a whole section this side held nothing of.
    snapshot: Option<AutoCommit>,
    infos: Vec<ChangeInfo>,
    duplicates: u32,
    /// Dependencies outside the batch that this side already holds.
    outside: std::collections::HashSet<Hash>,
    authorized: verify::Authorized,
}

struct TakeIn<'a> {
    record: &'a mut Record,
    access: &'a AccessSet,
}

impl TakeIn<'_> {
    /// Decode a batch and check everything but its signatures; nothing is applied.
    fn prepare(mut self, batch: Batch) -> Result<Intake> {
        let section = batch.section;
        if batch.record != self.record.id() {
            return Err(Error::NotAllowed(Refusal::ForeignBatch {
                record: batch.record.short(),
            }));
        }
        let record_id = self.record.id();
        let section_empty = self.record.clock(section).is_empty();
        let (mut changes, mut snapshot) = decode(&batch, section_empty)?;

        let mut infos: Vec<ChangeInfo> = match snapshot.as_mut() {
            Some(doc) => doc.get_changes_meta(&[]).iter().map(ChangeInfo::of_meta).collect(),
            None => changes.iter().map(ChangeInfo::of_change).collect(),
        };
        // Drop what we already hold (another peer may have delivered it first).
        let before = infos.len();
        if snapshot.is_none() {
            self.drop_held(section, &mut infos, &mut changes);
        }
        let duplicates = (before - infos.len()) as u32;
        if infos.is_empty() {
            return Ok(Intake::Done(Received {
                duplicates,
                ..Received::default()
            }));
        }

        let held_clock = self.record.clock(section).clone();
        let limits = Limits {
            section,
            probe: self.probe(section, snapshot.as_ref(), &changes, &infos)?,
            by_hash: changes.iter().map(|c| (c.hash().0, c)).collect(),
        };
        let limited = |info: &ChangeInfo, right: phr_model::capability::Right| limits.check(info, right);
        let outside = outside_deps(self.record, section, &infos);
        let authorized = verify::authorize(
            &record_id,
            section,
            &held_clock,
            &infos,
            &batch.head_sigs,
            self.access,
            &limited,
        );
        Ok(Intake::Verify(Box::new(Prepared {
            batch,
            changes,
            snapshot,
            infos,
            duplicates,
            outside,
            authorized,
        })))
    }

    /// Remove from `infos` and `changes` (which match one to one) the changes already held.
    fn drop_held(&mut self, section: Section, infos: &mut Vec<ChangeInfo>, changes: &mut Vec<Change>) {
        let held: Vec<bool> = infos.iter().map(|c| self.record.has_change(section, &c.hash)).collect();
        let mut it = held.iter();
        infos.retain(|_| !*it.next().unwrap_or(&false));
        let mut it = held.iter();
        changes.retain(|_| !*it.next().unwrap_or(&false));
    }

    /// A document to check changes op by op against, when the batch may hold changes made
    /// under a limited right (and every audit change): one that holds every object they touch.
    fn probe(
        &mut self,
        section: Section,
        snapshot: Option<&AutoCommit>,
        changes: &[Change],
        infos: &[ChangeInfo],
    ) -> Result<Option<std::cell::RefCell<AutoCommit>>> {
        let may_be_limited = section == Section::Audit
            || (matches!(section, Section::Goals | Section::Appointments)
                && infos
                    .iter()
                    .any(|c| c.author.is_none_or(|a| self.access.cert(&a).is_none())));
        Ok(if !may_be_limited {
            None
        } else if let Some(doc) = snapshot {
            Some(std::cell::RefCell::new(doc.clone()))
        } else {
            let mut p = self.record.doc(section).fork();
            // Not yet verified: Automerge's batch apply panics on some malformed changes (an
            // actor it does not know, an op on a missing object); on this fork, that is an error.
            phr_model::change::decoding(Origin::PeerBatch(section), || {
                p.apply_changes_batch(changes.to_vec())
                    .map_err(|e| malformed(section, e.to_string()))
            })?;
            Some(std::cell::RefCell::new(p))
        })
    }
}

/// The error for a batch from the peer that does not decode.
fn malformed(section: Section, e: String) -> Error {
    Error::Automerge {
        from: Origin::PeerBatch(section),
        problem: DecodeProblem::Malformed { cause: e.to_string() },
    }
}

/// Decode a batch into changes or, for a snapshot of a section this side holds nothing of,
/// a document holding them. Automerge panics on some malformed input: that too is a
/// malformed batch.
fn decode(batch: &Batch, section_empty: bool) -> Result<(Vec<Change>, Option<AutoCommit>)> {
    let section = batch.section;
    phr_model::change::decoding(Origin::PeerBatch(section), || {
        Ok(match batch.encoding {
            Encoding::Snapshot => {
                let mut doc = phr_model::change::load_document(Origin::PeerSnapshot(section), &batch.payload)?;
                if section_empty {
                    (Vec::new(), Some(doc))
                } else {
                    (doc.get_changes(&[]), None)
                }
            }
            Encoding::Bundle => (
                phr_model::change::decode_bundle(Origin::PeerBatch(section), &batch.payload)?,
                None,
            ),
            Encoding::Raw => {
                let raw: Vec<Vec<u8>> =
                    postcard::from_bytes(&batch.payload).map_err(|e| malformed(section, e.to_string()))?;
                let what = Origin::PeerChange(section);
                let mut out = Vec::with_capacity(raw.len());
                for r in raw {
                    let change = phr_model::change::decode_change(what, &r)?;
                    // Automerge checks a change's op columns lazily; read every op now, so
                    // one it cannot read fails here, not (as a panic) when applied.
                    change.decode();
                    out.push(change);
                }
                (out, None)
            }
        })
    })
}

/// Dependencies of the batch's changes outside the batch that this side already holds.
fn outside_deps(record: &mut Record, section: Section, infos: &[ChangeInfo]) -> std::collections::HashSet<Hash> {
    let held = |h: &Hash| record.has_change(section, h);
    // `held` needs &mut for Automerge's lookup; collect the outside deps first.
    let inside: std::collections::HashSet<Hash> = infos.iter().map(|c| c.hash).collect();
    infos
        .iter()
        .flat_map(|c| c.deps.iter().copied())
        .filter(|d| !inside.contains(d))
        .filter(held)
        .collect()
}

/// The op-by-op check of changes made under a limited right, against the probe document.
struct Limits<'a> {
    section: Section,
    /// `None` when no change in the batch can be limited.
    probe: Option<std::cell::RefCell<AutoCommit>>,
    /// The batch's changes by hash (a snapshot's are found in the probe).
    by_hash: std::collections::HashMap<Hash, &'a Change>,
}

impl Limits<'_> {
    fn check(&self, info: &ChangeInfo, right: phr_model::capability::Right) -> std::result::Result<(), String> {
        let Some(probe) = self.probe.as_ref() else {
            return Ok(());
        };
        let mut doc = probe.borrow_mut();
        let owned;
        let change = match self.by_hash.get(&info.hash) {
            Some(c) => *c,
            None => {
                owned = doc
                    .get_change_by_hash(&ChangeHash(info.hash))
                    .ok_or_else(|| "the change went missing".to_string())?;
                &owned
            }
        };
        // Automerge panics reading the parents of some malformed objects; a peer's change
        // must not take the process down with it (it was applied only to the probe fork).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            phr_model::limits::check(&doc, change, self.section, right)
        }))
        .unwrap_or_else(|_| Err("Automerge could not read the objects the change edits".into()))
    }
}

impl Prepared {
    /// Given whether each of its signatures verified, apply what passed, in memory only.
    fn finish(self, record: &mut Record, valid: &[bool]) -> Result<(Received, Option<Persist>)> {
        let verdict = self
            .authorized
            .conclude(&self.infos, |h| self.outside.contains(h), valid);
        let Prepared {
            batch,
            changes,
            snapshot,
            duplicates,
            ..
        } = self;
        let (record_id, section) = (batch.record, batch.section);
        let rejected: Vec<String> = verdict
            .rejected
            .iter()
            .map(|(h, why)| format!("{} change {}: {why}", section, hex::encode(&h[..6])))
            .collect();
        for r in &rejected {
            tracing::warn!(record = %record_id.short(), "rejected {r}");
        }
        let applied = verdict.accepted.len() as u32;
        if applied == 0 {
            return Ok((
                Received {
                    applied,
                    duplicates,
                    rejected,
                    forward: None,
                },
                None,
            ));
        }

        let (persist, forward) = match snapshot {
            Some(doc) if verdict.rejected.is_empty() => adopt_snapshot(record, batch, doc, &verdict, applied),
            Some(doc) => rebuild_snapshot(record, record_id, section, doc, &verdict, applied)?,
            None => apply_accepted(record, batch, changes, duplicates, &verdict, applied)?,
        };
        Ok((
            Received {
                applied,
                duplicates,
                rejected,
                forward: Some(forward),
            },
            Some(persist),
        ))
    }
}

/// The whole section, verified: adopt it as is and store the bytes we got. Returns what to
/// persist and the batch to forward.
fn adopt_snapshot(
    record: &mut Record,
    batch: Batch,
    doc: AutoCommit,
    verdict: &verify::Verdict,
    applied: u32,
) -> (Persist, Batch) {
    let section = batch.section;
    let persist = Persist::Snapshot {
        record: batch.record,
        section,
        saved: batch.payload.clone(),
        head_sigs: verdict.head_sigs.clone(),
    };
    record.replace_doc(section, doc);
    let forward = Batch {
        head_sigs: verdict.head_sigs.clone(),
        count: applied,
        ..batch
    };
    (persist, forward)
}

/// A whole section with some changes refused: rebuild it from the accepted ones. Returns
/// what to persist and the batch to forward.
fn rebuild_snapshot(
    record: &mut Record,
    record_id: RecordId,
    section: Section,
    mut doc: AutoCommit,
    verdict: &verify::Verdict,
    applied: u32,
) -> Result<(Persist, Batch)> {
    let mut fresh = AutoCommit::new();
    let keep: Vec<Change> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| verdict.accepted.contains(&c.hash().0))
        .collect();
    fresh.apply_changes_batch(keep)?;
    let saved = fresh.save();
    let persist = Persist::Snapshot {
        record: record_id,
        section,
        saved: saved.clone(),
        head_sigs: verdict.head_sigs.clone(),
    };
    record.replace_doc(section, fresh);
    let forward = Batch {
        record: record_id,
        section,
        encoding: Encoding::Snapshot,
        payload: saved,
        head_sigs: verdict.head_sigs.clone(),
        count: applied,
    };
    Ok((persist, forward))
}

/// Apply the accepted changes to the section. Returns what to persist and the batch to
/// forward: the bytes as they came when the batch was taken whole, otherwise just what was
/// accepted, re-encoded.
fn apply_accepted(
    record: &mut Record,
    batch: Batch,
    changes: Vec<Change>,
    duplicates: u32,
    verdict: &verify::Verdict,
    applied: u32,
) -> Result<(Persist, Batch)> {
    let (record_id, section) = (batch.record, batch.section);
    let all = verdict.rejected.is_empty() && duplicates == 0;
    let keep: Vec<Change> = changes
        .into_iter()
        .filter(|c| verdict.accepted.contains(&c.hash().0))
        .collect();
    let hashes: Vec<ChangeHash> = keep.iter().map(Change::hash).collect();
    // Verified, but a writer's own change can still make Automerge panic: refuse the
    // batch (the session ends) instead of taking the process down.
    phr_model::change::decoding(Origin::PeerBatch(section), || record.apply_verified(section, keep))?;
    // Taken whole: keep and forward the bytes as they came. Otherwise re-encode
    // just what was accepted.
    let (encoding, stored) = match batch.encoding {
        Encoding::Bundle | Encoding::Raw if all => (batch.encoding, batch.payload),
        _ => (Encoding::Bundle, record.doc(section).bundle(hashes)?.bytes().to_vec()),
    };
    let persist = match encoding {
        Encoding::Raw => Persist::Changes {
            record: record_id,
            section,
            list: stored.clone(),
            head_sigs: verdict.head_sigs.clone(),
        },
        _ => Persist::Bundle {
            record: record_id,
            section,
            bundle: stored.clone(),
            head_sigs: verdict.head_sigs.clone(),
        },
    };
    let forward = Batch {
        record: record_id,
        section,
        encoding,
        payload: stored,
        head_sigs: verdict.head_sigs.clone(),
        count: applied,
    };
    Ok((persist, forward))
}

/// What enforcing cutoffs produced.
#[derive(Debug, Default)]
pub struct Cutoffs {
    /// What to persist: the rebuilt sections.
    pub persist: Vec<Persist>,
    /// How many changes each section lost.
    pub dropped: Vec<(Section, usize)>,
    /// The record author's own changes that were dropped only because they were built on
    /// withdrawn ones, made again (when asked for), signed and in `persist`: to push to
    /// connected peers once stored.
    pub remade: Vec<SignedChange>,
}

/// Apply the cutoffs of removals and revocations to what a record already holds.
///
/// The rule, the same on every device: a removed device's or revoked holder's changes beyond
/// its cutoff are not part of the record, nor is anything built on them. A device that had
/// already applied such changes (because it heard of them before it heard of the removal)
/// rebuilds the section without them, so every replica converges on the same history.
/// With `remake`, the record author's own changes that went only for what they were built on
/// are made again ([`Record::remake`]) and stored with the rebuilt section, so a crash keeps
/// either the old history or the new one with them in it.
pub fn enforce_cutoffs(record: &mut Record, access: &AccessSet, remake: bool) -> Result<Cutoffs> {
    let mut out = Cutoffs::default();
    if !access.has_withdrawals() {
        return Ok(out);
    }
    let me = record.author();
    for section in Section::SYNCED {
        let over = record
            .clock(section)
            .iter()
            .any(|(a, (seq, _))| access.cutoff(a, section).is_some_and(|c| *seq > c));
        if !over {
            continue;
        }
        let all = record.doc(section).get_changes(&[]);
        let infos: Vec<ChangeInfo> = all.iter().map(ChangeInfo::of_change).collect();
        let index: std::collections::HashMap<Hash, &ChangeInfo> = infos.iter().map(|c| (c.hash, c)).collect();
        let mut invalid: std::collections::HashSet<Hash> = std::collections::HashSet::new();
        for c in verify::topo_order(&infos, &index) {
            let beyond = c
                .author
                .as_ref()
                .and_then(|a| access.cutoff(a, section))
                .is_some_and(|cut| c.seq > cut);
            if beyond || c.deps.iter().any(|d| invalid.contains(d)) {
                invalid.insert(c.hash);
            }
        }
        let mine_beyond = access.cutoff(&me, section);
        let orphan = |c: &ChangeInfo| c.author == Some(me) && mine_beyond.is_none_or(|cut| c.seq <= cut);
        let orphans: std::collections::HashSet<Hash> = infos
            .iter()
            .filter(|c| remake && invalid.contains(&c.hash) && orphan(c))
            .map(|c| c.hash)
            .collect();
        let (keep, lost): (Vec<Change>, Vec<Change>) = all.into_iter().partition(|c| !invalid.contains(&c.hash().0));
        // Oldest first: each of the author's changes builds on its previous one.
        let mut mine: Vec<Change> = lost.into_iter().filter(|c| orphans.contains(&c.hash().0)).collect();
        mine.sort_by_key(|c| c.seq());
        let mut fresh = AutoCommit::new();
        fresh.apply_changes_batch(keep)?;
        tracing::warn!(%section, dropped = invalid.len(), "removed changes made after their author lost access");
        record.replace_doc(section, fresh);
        let mut head_sigs = Vec::new();
        if !mine.is_empty() {
            let ops = record.remake(section, &mine)?;
            let made = record.take_pending();
            tracing::info!(%section, changes = mine.len(), ops, "made again what a withdrawal took with it");
            head_sigs.extend(made.iter().map(|m| HeadSig {
                hash: m.hash,
                sig: m.signature,
            }));
            out.remade.extend(made);
        }
        out.persist.push(Persist::Snapshot {
            record: record.id(),
            section,
            saved: record.doc(section).save(),
            head_sigs,
        });
        out.dropped.push((section, invalid.len()));
    }
    Ok(out)
}
