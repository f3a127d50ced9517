//! Deciding which received changes may enter a record.
//!
//! A device signs the hash of every change it makes. Automerge makes each change of an author
//! depend on that author's previous change, so a signature over an author's latest change
//! authenticates, through the hash chain, every earlier change of that author. A batch
//! therefore carries one signature per author (over the author's newest change in the batch),
//! and the receiver checks, before applying anything:
//!
//! 1. every change's author is a device allowed to write that section at that change;
//! 2. each author's changes continue the author's chain from what the receiver already holds:
//!    sequence numbers without gaps, each depending on the previous one by hash;
//! 3. the author's signature over the newest change verifies (all authors in one batch
//!    verification);
//! 4. every dependency is either accepted in this batch or already held.
//!
//! A change failing any check is rejected, and so is everything that depends on it.

use std::collections::{BTreeMap, HashMap, HashSet};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::access::AccessSet;
use crate::capability::Right;
use crate::identity::{PublicKey, RecordId, change_signing_message};
use crate::section::Section;

/// Change hash bytes.
pub type Hash = [u8; 32];

/// Per author, the newest change held: (sequence number, hash).
pub type Clock = BTreeMap<PublicKey, (u64, Hash)>;

/// An author's signature over the newest of its changes in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadSig {
    /// Hash of the signed change.
    pub hash: Hash,
    /// The ed25519 signature.
    #[serde(with = "crate::identity::hex_bytes")]
    pub sig: [u8; 64],
}

/// What verification needs to know about one received change.
#[derive(Debug, Clone)]
pub struct ChangeInfo {
    /// Hash.
    pub hash: Hash,
    /// Author (actor id); `None` if the actor id is not a 32-byte key.
    pub author: Option<PublicKey>,
    /// Author's sequence number.
    pub seq: u64,
    /// Dependencies.
    pub deps: Vec<Hash>,
    /// When the author says it made the change (unix seconds).
    pub time: i64,
}

impl ChangeInfo {
    /// Describe an Automerge change.
    pub fn of_change(c: &automerge::Change) -> Self {
        ChangeInfo {
            hash: c.hash().0,
            author: c.actor_id().to_bytes().try_into().ok().map(PublicKey),
            seq: c.seq(),
            deps: c.deps().iter().map(|h| h.0).collect(),
            time: c.timestamp(),
        }
    }

    /// Describe an Automerge change from its metadata.
    pub fn of_meta(m: &automerge::ChangeMetadata<'_>) -> Self {
        ChangeInfo {
            hash: m.hash.0,
            author: m.actor.to_bytes().try_into().ok().map(PublicKey),
            seq: m.seq,
            deps: m.deps.iter().map(|h| h.0).collect(),
            time: m.timestamp,
        }
    }
}

/// The outcome for a batch.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Hashes that passed every check.
    pub accepted: HashSet<Hash>,
    /// Hashes refused, each with why.
    pub rejected: Vec<(Hash, String)>,
    /// Each author's newest accepted change with its signature, to keep for forwarding.
    pub head_sigs: Vec<HeadSig>,
}

/// Check a batch of received changes of one section; see the module docs for the rules.
#[allow(clippy::too_many_arguments)] // each input is a distinct fact the rules need
pub fn check(
    record: &RecordId,
    section: Section,
    held: &Clock,
    is_held: impl Fn(&Hash) -> bool,
    batch: &[ChangeInfo],
    signatures: &[HeadSig],
    access: &AccessSet,
    limited: &dyn Fn(&ChangeInfo, Right) -> std::result::Result<(), String>,
) -> Verdict {
    let authorized = authorize(record, section, held, batch, signatures, access, limited);
    let valid = verify_signatures(authorized.signatures());
    authorized.conclude(batch, is_held, &valid)
}

/// A batch that passed (or failed) rules 1 and 2, with the signatures rule 3 still has to
/// check; several batches' signatures can then be verified together.
#[derive(Debug)]
pub struct Authorized {
    /// Changes refused so far, each with why.
    bad: HashMap<Hash, String>,
    /// Per author still standing: the newest change's hash and its signature.
    heads: Vec<(PublicKey, Hash, [u8; 64])>,
    /// The signatures to verify, in the order of `heads`.
    pending: Vec<SignatureCheck>,
}

/// One ed25519 signature to verify.
#[derive(Debug)]
pub struct SignatureCheck {
    message: Vec<u8>,
    signature: Signature,
    key: VerifyingKey,
}

/// Rules 1 and 2 for a batch: authors, rights and chains; see the module docs.
pub fn authorize(
    record: &RecordId,
    section: Section,
    held: &Clock,
    batch: &[ChangeInfo],
    signatures: &[HeadSig],
    access: &AccessSet,
    limited: &dyn Fn(&ChangeInfo, Right) -> std::result::Result<(), String>,
) -> Authorized {
    let mut bad: HashMap<Hash, String> = HashMap::new();
    let sig_of: HashMap<&Hash, &[u8; 64]> = signatures.iter().map(|h| (&h.hash, &h.sig)).collect();
    let by_author = group_by_author(batch, &mut bad);

    // Per author: authorization, chain continuity, and the head to verify.
    let mut heads: Vec<Head> = Vec::new();
    for (author, mut changes) in by_author {
        changes.sort_by_key(|c| c.seq);
        if let Some(why) = chain_break(&author, &changes, held) {
            reject_all(&changes, why, &mut bad);
            continue;
        }
        check_rights(&author, &changes, section, access, limited, &mut bad);
        let Some(newest) = changes.last() else {
            continue;
        };
        match sig_of.get(&newest.hash) {
            Some(sig) => heads.push((author, newest.hash, **sig)),
            None => reject_all(
                &changes,
                format!("no signature from {} covers its changes", author.short()),
                &mut bad,
            ),
        }
    }

    let (standing, pending) = signature_checks(record, section, batch, heads, &mut bad);
    Authorized {
        bad,
        heads: standing,
        pending,
    }
}

/// An author's newest change in a batch and the signature said to cover it.
type Head = (PublicKey, Hash, [u8; 64]);

/// Group a batch's changes by author; anonymous actors are rejected outright.
fn group_by_author<'a>(
    batch: &'a [ChangeInfo],
    bad: &mut HashMap<Hash, String>,
) -> BTreeMap<PublicKey, Vec<&'a ChangeInfo>> {
    let mut by_author: BTreeMap<PublicKey, Vec<&ChangeInfo>> = BTreeMap::new();
    for c in batch {
        match c.author {
            Some(a) => by_author.entry(a).or_default().push(c),
            None => {
                bad.insert(c.hash, "the change's author is not a device key".into());
            }
        }
    }
    by_author
}

/// Refuse every one of an author's changes (keeping any earlier reason for one).
fn reject_all(changes: &[&ChangeInfo], why: String, bad: &mut HashMap<Hash, String>) {
    for c in changes {
        bad.entry(c.hash).or_insert_with(|| why.clone());
    }
}

/// Why an author's changes, sorted by sequence number, do not continue its chain from what
/// this side holds (each the next number, each built on the one before); `None` if they do.
fn chain_break(author: &PublicKey, changes: &[&ChangeInfo], held: &Clock) -> Option<String> {
    let (mut prev_seq, mut prev_hash) = match held.get(author) {
        Some((s, h)) => (*s, Some(*h)),
        None => (0, None),
    };
    for c in changes {
        if c.seq != prev_seq + 1 {
            return Some(format!(
                "change #{} of {} does not follow #{prev_seq}: changes are missing or forged",
                c.seq,
                author.short()
            ));
        }
        if let Some(p) = prev_hash
            && !c.deps.contains(&p)
        {
            return Some(format!(
                "change #{} of {} does not build on its author's previous change",
                c.seq,
                author.short()
            ));
        }
        prev_seq = c.seq;
        prev_hash = Some(c.hash);
    }
    None
}

/// Refuse each of an author's changes that its right in the section does not allow, checking
/// changes made under a restricted right op by op with `limited`.
fn check_rights(
    author: &PublicKey,
    changes: &[&ChangeInfo],
    section: Section,
    access: &AccessSet,
    limited: &dyn Fn(&ChangeInfo, Right) -> std::result::Result<(), String>,
    bad: &mut HashMap<Hash, String>,
) {
    for c in changes {
        match access.write_right(author, section, c.seq, c.time) {
            Ok(right) if crate::limits::restricted(section, right) => {
                if let Err(why) = limited(c, right) {
                    bad.entry(c.hash).or_insert(why);
                }
            }
            Ok(_) => {}
            Err(why) => {
                bad.entry(c.hash).or_insert(why);
            }
        }
    }
}

/// The heads still standing and the signature checks for them, in the same order. An author
/// whose key is no curve point cannot have signed anything: its changes are refused.
fn signature_checks(
    record: &RecordId,
    section: Section,
    batch: &[ChangeInfo],
    heads: Vec<Head>,
    bad: &mut HashMap<Hash, String>,
) -> (Vec<Head>, Vec<SignatureCheck>) {
    let mut standing = Vec::with_capacity(heads.len());
    let mut pending = Vec::with_capacity(heads.len());
    for (author, hash, sig) in heads {
        match author.verifying_key() {
            Ok(key) => {
                pending.push(SignatureCheck {
                    message: change_signing_message(record, section, &hash),
                    signature: Signature::from_bytes(&sig),
                    key,
                });
                standing.push((author, hash, sig));
            }
            Err(e) => reject_author(batch, &author, e.to_string(), bad),
        }
    }
    (standing, pending)
}

/// Verify signatures, all in one batch verification; only if that fails is each checked
/// alone, to name the culprits. Returns, per signature, whether it verifies.
pub fn verify_signatures(checks: &[SignatureCheck]) -> Vec<bool> {
    if checks.is_empty() {
        return Vec::new();
    }
    let messages: Vec<&[u8]> = checks.iter().map(|c| c.message.as_slice()).collect();
    let signatures: Vec<Signature> = checks.iter().map(|c| c.signature).collect();
    let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return vec![true; checks.len()];
    }
    checks
        .iter()
        .map(|c| c.key.verify_strict(&c.message, &c.signature).is_ok())
        .collect()
}

impl Authorized {
    /// The signatures rule 3 must verify for this batch.
    pub fn signatures(&self) -> &[SignatureCheck] {
        &self.pending
    }

    /// Hand over the signatures to verify (with others), leaving none here.
    pub fn take_signatures(&mut self) -> Vec<SignatureCheck> {
        std::mem::take(&mut self.pending)
    }

    /// Rules 3 and 4, given whether each of this batch's signatures verified (in the order
    /// [`Authorized::signatures`] gave them).
    pub fn conclude(self, batch: &[ChangeInfo], is_held: impl Fn(&Hash) -> bool, valid: &[bool]) -> Verdict {
        let Authorized { mut bad, heads, .. } = self;
        let mut head_sigs = Vec::new();
        for (i, (author, hash, sig)) in heads.into_iter().enumerate() {
            if valid.get(i).copied().unwrap_or(false) {
                head_sigs.push(HeadSig { hash, sig });
            } else {
                reject_author(
                    batch,
                    &author,
                    format!("the signature of {} over its changes does not verify", author.short()),
                    &mut bad,
                );
            }
        }

        // Dependencies, in causal order: a change stands only if everything it builds on does.
        let index: HashMap<Hash, &ChangeInfo> = batch.iter().map(|c| (c.hash, c)).collect();
        let mut accepted = HashSet::new();
        let mut rejected: Vec<(Hash, String)> = Vec::new();
        for c in topo_order(batch, &index) {
            if let Some(why) = bad.get(&c.hash) {
                rejected.push((c.hash, why.clone()));
                continue;
            }
            let missing = c.deps.iter().find(|d| {
                if index.contains_key(*d) {
                    !accepted.contains(*d)
                } else {
                    !is_held(d)
                }
            });
            match missing {
                Some(d) if index.contains_key(d) => {
                    rejected.push((c.hash, "it depends on a rejected change".into()));
                }
                Some(_) => rejected.push((c.hash, "it depends on a change this device does not have".into())),
                None => {
                    accepted.insert(c.hash);
                }
            }
        }
        // Keep signatures only for authors whose newest change made it in.
        head_sigs.retain(|h| accepted.contains(&h.hash));
        Verdict {
            accepted,
            rejected,
            head_sigs,
        }
    }
}

fn reject_author(batch: &[ChangeInfo], author: &PublicKey, why: String, bad: &mut HashMap<Hash, String>) {
    for c in batch.iter().filter(|c| c.author.as_ref() == Some(author)) {
        bad.entry(c.hash).or_insert_with(|| why.clone());
    }
}

/// Changes ordered so that each comes after its dependencies within the batch.
pub fn topo_order<'a>(batch: &'a [ChangeInfo], index: &HashMap<Hash, &'a ChangeInfo>) -> Vec<&'a ChangeInfo> {
    let mut out = Vec::with_capacity(batch.len());
    let mut done: HashSet<Hash> = HashSet::with_capacity(batch.len());
    let mut on_path: HashSet<Hash> = HashSet::new();
    for root in batch {
        if done.contains(&root.hash) {
            continue;
        }
        // Iterative DFS: (change, next dep index).
        let mut stack: Vec<(&ChangeInfo, usize)> = vec![(root, 0)];
        on_path.insert(root.hash);
        while let Some((c, i)) = stack.pop() {
            if let Some(dep) = c.deps.get(i) {
                stack.push((c, i + 1));
                if let Some(d) = index.get(dep)
                    && !done.contains(dep)
                    && !on_path.contains(dep)
                {
                    on_path.insert(*dep);
                    stack.push((d, 0));
                }
            } else {
                on_path.remove(&c.hash);
                if done.insert(c.hash) {
                    out.push(c);
                }
            }
        }
    }
    out
}
