//! Group `access`: issue 4's target for checking received changes against capabilities.
//!
//! 10,000 changes written by a capability holder (a clinic granted `notes=write` among
//! others, by the root key) arrive at a patient device whose access set also holds an
//! unrelated grant and its revocation, so every check runs: each author's signature (one
//! batched verification per batch), the holder's chain, its right on the section, the
//! revocation cutoffs, chain continuity and dependencies. Measured beside the bare Automerge
//! work of the same changes, in the same run:
//!
//! | benchmark                         | phr                                                  | baseline (same run)                          |
//! |-----------------------------------|------------------------------------------------------|----------------------------------------------|
//! | verify + apply, raw (in memory)   | `exchange::take_in` of a `Raw` batch (live pushes)   | `Change::from_bytes` ×10k + one `apply_changes_batch` |
//! | verify + apply, bundle (in memory)| `exchange::take_in` of a `Bundle` batch (catch-up)   | same; and, like for like, `Bundle::to_changes` + one `apply_changes_batch` |
//! | the checks alone                  | `verify::check` on the same 10k (what the target is about) | same                                    |
//! | … and durable                     | `Device::incoming` (take_in + one redb commit + the store's automatic compaction) | same |
//! | caregiver progress (limits probe) | 10k `goal progress` changes under the `progress` right: op-by-op check against a probe doc | same, for those changes |
//!
//! The group also prints (stderr) where the time of a `take_in` goes, measured piece by piece
//! with the engine's public functions, so a missed target can be explained.

use std::time::{Duration, Instant};

use phr::access::{AccessSet, Statement};
use phr::automerge::{AutoCommit, Change, ChangeHash};
use phr::capability::{Capability, Grant, Preset, Revocation};
use phr::change::SignedChange;
use phr::entry::parse_fields;
use phr::exchange::{self, Batch, Encoding};
use phr::identity::{DeviceCert, RecoveryKit};
use phr::record::Record;
use phr::verify::{self, ChangeInfo, HeadSig};
use phr::{Device, KeyPair, RecordId, Section};
use serde_json::{Map, Value};

use crate::{Ctx, PASS, Row, cheap, median, ms, now};

const N: usize = 10_000;
const REPS: usize = 7;
const LIMIT: f64 = 1.15;

fn parsed(section: Section, pairs: Vec<(&str, String)>) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    parse_fields(section, &args).expect("valid fields")
}

/// The record, its membership, and 10,000 signed changes by a clinic holding a grant.
struct Setup {
    root: KeyPair,
    record: RecordId,
    statements: Vec<Statement>,
    access: AccessSet,
    /// The clinic's changes to `notes`, in the order written.
    notes: Vec<SignedChange>,
    /// Goals written by the patient's device, and a caregiver's progress on them.
    goal: Vec<SignedChange>,
    progress: Vec<SignedChange>,
}

// One piece: builds one record's history in order (grants, a goal, its progress); each
// step signs with keys and clocks the step before made.
fn setup(ctx: &Ctx) -> Setup {
    let root = KeyPair::generate();
    let record = root.public();
    let phone = KeyPair::generate();
    let clinic = KeyPair::generate();
    let caregiver = KeyPair::generate();
    let former = KeyPair::generate();
    let grant = |audience: &KeyPair, label: &str, preset: Preset| Grant {
        audience: audience.public(),
        label: label.into(),
        scope: preset.scope(),
        delegate: false,
        not_before: now() - 3600,
        expires: Some(now() + 86_400),
    };
    let clinic_cap =
        Capability::issue_root(&root, grant(&clinic, "Bright Steps Therapy", Preset::Clinic)).expect("grant");
    let caregiver_cap = Capability::issue_root(&root, grant(&caregiver, "Grandma", Preset::Caregiver)).expect("grant");
    let former_cap =
        Capability::issue_root(&root, grant(&former, "Lincoln Elementary", Preset::School)).expect("grant");
    let revocation = Revocation::issue(
        &root,
        record,
        former_cap.id,
        Section::SYNCED.iter().map(|s| (former.public(), *s, 0)).collect(),
        now(),
    );
    let statements = vec![
        Statement::Device(DeviceCert::issue(&root, phone.public(), "phone", now())),
        Statement::Capability(clinic_cap.clone()),
        Statement::Capability(caregiver_cap.clone()),
        Statement::Capability(former_cap),
        Statement::Revocation(revocation),
    ];
    let mut access = AccessSet::default();
    for st in phr::access::in_order(statements.clone()) {
        access.insert(&record, st).expect("valid statement");
    }

    // The clinic writes session notes, and now and then amends one: one change each.
    let t = Instant::now();
    let mut w = Record::new(record, clinic.clone());
    w.set_limits(Some((clinic_cap.label.clone(), clinic_cap.scope.clone())));
    let mut ids: Vec<String> = Vec::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..N {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if ids.is_empty() || rng % 100 < 75 {
            let f = parsed(
                Section::Notes,
                vec![
                    ("discipline", "speech".into()),
                    ("clinician", "J. Ames".into()),
                    ("date", format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28)),
                    ("minutes", "45".into()),
                    ("plan", format!("Session {i}: continue /s/ in words, 8 of 10 target")),
                ],
            );
            ids.push(w.add(Section::Notes, f).expect("note"));
        } else {
            let id = &ids[(rng as usize / 7) % ids.len()];
            w.amend_note(id, &format!("Correction {i}: 7 of 10, not 8"), Some("typo"))
                .expect("amend");
        }
    }
    let notes = w.take_pending();
    assert_eq!(notes.len(), N);
    ctx.note(format!("the clinic wrote {N} notes changes in {}", ms(t.elapsed())));

    // The patient's phone sets goals; the caregiver logs progress on them (100 entries each:
    // every progress change re-reads its goal, so one goal with 10,000 would be quadratic).
    let t = Instant::now();
    let mut p = Record::new(record, phone);
    let goals = N / 100;
    for g in 0..goals {
        p.add(
            Section::Goals,
            parsed(
                Section::Goals,
                vec![("goal", format!("Goal {g}: produce /s/ in words"))],
            ),
        )
        .expect("goal");
    }
    let goal = p.take_pending();
    let goal_ids: Vec<String> = p
        .list(Section::Goals)
        .expect("goals")
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut c = Record::from_docs(
        record,
        caregiver,
        [(Section::Goals, p.doc(Section::Goals).fork())].into(),
    );
    c.set_limits(Some((caregiver_cap.label.clone(), caregiver_cap.scope.clone())));
    let day = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).expect("date");
    for i in 0..N {
        c.goal_progress(&goal_ids[i % goals], day, (i % 100) as f64, None)
            .expect("progress");
    }
    let progress = c.take_pending();
    ctx.note(format!(
        "the caregiver wrote {N} goal progress changes in {}",
        ms(t.elapsed())
    ));
    Setup {
        root,
        record,
        statements,
        access,
        notes,
        goal,
        progress,
    }
}

fn raw_batch(record: RecordId, section: Section, changes: &[SignedChange]) -> Batch {
    Batch::from_local(record, section, changes).expect("batch")
}

fn bundle_batch(record: RecordId, section: Section, changes: &[SignedChange]) -> Batch {
    let decoded: Vec<Change> = changes.iter().map(|c| c.decode().expect("change")).collect();
    let mut doc = AutoCommit::new();
    doc.apply_changes_batch(decoded).expect("apply");
    let hashes: Vec<ChangeHash> = changes.iter().map(|c| ChangeHash(c.hash)).collect();
    let payload = doc.bundle(hashes).expect("bundle").bytes().to_vec();
    let last = changes.last().expect("changes");
    Batch {
        record,
        section,
        encoding: Encoding::Bundle,
        payload,
        head_sigs: vec![HeadSig {
            hash: last.hash,
            sig: last.signature,
        }],
        count: changes.len() as u32,
    }
}

/// Stock Automerge: decode each change, then one batched apply into `doc`.
fn baseline(doc: AutoCommit, raw: Vec<Vec<u8>>) -> Duration {
    let mut doc = doc;
    let t = Instant::now();
    let changes: Vec<Change> = raw
        .into_iter()
        .map(|b| Change::from_bytes(b).expect("change"))
        .collect();
    doc.apply_changes_batch(changes).expect("apply");
    let took = t.elapsed();
    assert!(doc.get_changes_meta(&[]).len() >= N);
    took
}

/// Stock Automerge for a bundle: decode it into changes, then one batched apply.
fn baseline_bundle(payload: &[u8]) -> Duration {
    let mut doc = AutoCommit::new();
    let t = Instant::now();
    let bundle = phr::automerge::Bundle::try_from(payload).expect("bundle");
    doc.apply_changes_batch(bundle.to_changes().expect("changes"))
        .expect("apply");
    let took = t.elapsed();
    assert!(doc.get_changes_meta(&[]).len() >= N);
    took
}

/// A receiving record holding `pre` already (the goal, for progress).
fn receiver(s: &Setup, section: Section, pre: &[SignedChange]) -> Record {
    let mut r = Record::new(s.record, KeyPair::generate());
    if !pre.is_empty() {
        let decoded = pre.iter().map(|c| c.decode().expect("change")).collect::<Vec<_>>();
        r.apply_verified(section, decoded).expect("apply");
    }
    r
}

/// `exchange::take_in` in memory; returns its time.
fn in_memory(s: &Setup, section: Section, pre: &[SignedChange], batch: Batch) -> Duration {
    let mut r = receiver(s, section, pre);
    let t = Instant::now();
    let (got, persist) = exchange::take_in(&mut r, &s.access, batch).expect("take in");
    let took = t.elapsed();
    assert_eq!(got.applied as usize, N, "{:?}", got.rejected.first());
    assert!(persist.is_some());
    took
}

/// `Device::incoming` on a fresh patient device: verified, applied and durable.
fn durable(ctx: &Ctx, s: &Setup, batch: Batch) -> Duration {
    let dir = ctx.dir();
    let mut d = Device::restore(dir.path(), PASS, &RecoveryKit::new(&s.root), "laptop", cheap()).expect("device");
    d.merge_statements(s.statements.clone()).expect("statements");
    let t = Instant::now();
    let got = d.incoming(batch).expect("incoming");
    let took = t.elapsed();
    assert_eq!(got.applied as usize, N, "{:?}", got.rejected.first());
    // Over the threshold: the store folded the section into a snapshot within the call.
    assert_eq!(d.uncompacted().get(&Section::Notes).copied().unwrap_or(0), 0);
    took
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let s = setup(ctx);
    let raw_notes: Vec<Vec<u8>> = s.notes.iter().map(|c| c.bytes.clone()).collect();
    let raw_progress: Vec<Vec<u8>> = s.progress.iter().map(|c| c.bytes.clone()).collect();
    let notes_raw = raw_batch(s.record, Section::Notes, &s.notes);
    let notes_bundle = bundle_batch(s.record, Section::Notes, &s.notes);
    let progress_raw = raw_batch(s.record, Section::Goals, &s.progress);
    let goal_doc = {
        let mut d = AutoCommit::new();
        d.apply_changes_batch(s.goal.iter().map(|c| c.decode().expect("goal")).collect::<Vec<_>>())
            .expect("goal");
        d
    };

    let (mut base, mut raw, mut bundle, mut dur_raw, mut dur_bundle) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut base_p, mut prog, mut base_b) = (vec![], vec![], vec![]);
    for rep in 0..REPS {
        // Interleaved, so drift in the machine's speed hits every figure alike.
        base.push(baseline(AutoCommit::new(), raw_notes.clone()));
        raw.push(in_memory(&s, Section::Notes, &[], notes_raw.clone()));
        bundle.push(in_memory(&s, Section::Notes, &[], notes_bundle.clone()));
        base_b.push(baseline_bundle(&notes_bundle.payload));
        dur_raw.push(durable(ctx, &s, notes_raw.clone()));
        dur_bundle.push(durable(ctx, &s, notes_bundle.clone()));
        base_p.push(baseline(goal_doc.clone(), raw_progress.clone()));
        prog.push(in_memory(&s, Section::Goals, &s.goal, progress_raw.clone()));
        ctx.note(format!(
            "rep {rep}: baseline {} · raw {} · bundle {} (bundle baseline {}) · durable raw {} · durable bundle {} · progress {} (baseline {})",
            ms(base[rep]),
            ms(raw[rep]),
            ms(bundle[rep]),
            ms(base_b[rep]),
            ms(dur_raw[rep]),
            ms(dur_bundle[rep]),
            ms(prog[rep]),
            ms(base_p[rep]),
        ));
    }
    let checks = profile(ctx, &s, &raw_notes);
    profile_progress(ctx, &s, &raw_progress);

    let b = median(&base);
    let ratio = |x: &[Duration]| median(x).as_secs_f64() / b.as_secs_f64();
    let bl = "from_bytes ×10k + apply_changes_batch";
    vec![
        Row::ratio(
            "access: verify + apply 10k holder changes, raw batch (in memory)",
            ms(median(&raw)),
            bl,
            ms(b),
            ratio(&raw),
            LIMIT,
        ),
        Row::ratio(
            "access: verify + apply 10k holder changes, bundle batch (in memory)",
            ms(median(&bundle)),
            bl,
            ms(b),
            ratio(&bundle),
            LIMIT,
        ),
        Row::info(
            "access: … bundle batch, against decoding the bundle itself + apply",
            ms(median(&bundle)),
            "Bundle::to_changes + apply_changes_batch",
            ms(median(&base_b)),
            Some(median(&bundle).as_secs_f64() / median(&base_b).as_secs_f64()),
        ),
        Row::info(
            "access: the checks alone (verify::check: signature, chain, scope, revocation, continuity, deps)",
            ms(checks),
            bl,
            ms(b),
            Some(checks.as_secs_f64() / b.as_secs_f64()),
        ),
        Row::info(
            "access: … raw batch, durable (Device::incoming)",
            ms(median(&dur_raw)),
            bl,
            ms(b),
            Some(ratio(&dur_raw)),
        ),
        Row::info(
            "access: … bundle batch, durable (Device::incoming)",
            ms(median(&dur_bundle)),
            bl,
            ms(b),
            Some(ratio(&dur_bundle)),
        ),
        Row::info(
            "access: 10k caregiver goal progress (progress right, op-level check)",
            ms(median(&prog)),
            "the same changes, from_bytes + apply",
            ms(median(&base_p)),
            Some(median(&prog).as_secs_f64() / median(&base_p).as_secs_f64()),
        ),
    ]
}

/// Where the time of one `take_in` of the raw notes batch goes, piece by piece.
/// Returns the time of the checks themselves (`verify::check`), median of a few runs.
fn profile(ctx: &Ctx, s: &Setup, raw: &[Vec<u8>]) -> Duration {
    let section = Section::Notes;
    let mut r = receiver(s, section, &[]);
    let batch = raw_batch(s.record, section, &s.notes);
    let (_, t_payload) = crate::timed(|| postcard_list(&batch));
    let (changes, t_decode) = crate::timed(|| {
        raw.iter()
            .map(|b| Change::from_bytes(b.clone()).expect("change"))
            .collect::<Vec<_>>()
    });
    let (infos, t_info) = crate::timed(|| changes.iter().map(ChangeInfo::of_change).collect::<Vec<_>>());
    let (_, t_held) = crate::timed(|| infos.iter().filter(|c| r.has_change(section, &c.hash)).count());
    let clinic = infos[0].author.expect("author");
    let (_, t_rights) = crate::timed(|| {
        infos
            .iter()
            .filter(|c| s.access.write_right(&clinic, section, c.seq, c.time).is_ok())
            .count()
    });
    let held = r.clock(section).clone();
    let (verdict, t_check) = crate::timed(|| {
        verify::check(
            &s.record,
            section,
            &held,
            |_| false,
            &infos,
            &batch.head_sigs,
            &s.access,
            &|_, _| Ok(()),
        )
    });
    assert_eq!(verdict.accepted.len(), N);
    let mut checks = vec![t_check];
    for _ in 1..REPS {
        let (v, t) = crate::timed(|| {
            verify::check(
                &s.record,
                section,
                &held,
                |_| false,
                &infos,
                &batch.head_sigs,
                &s.access,
                &|_, _| Ok(()),
            )
        });
        assert_eq!(v.accepted.len(), N);
        checks.push(t);
    }
    let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
    let (_, t_apply) = crate::timed(|| r.apply_verified(section, changes).expect("apply"));
    let (_, t_bundle) = crate::timed(|| r.doc(section).bundle(hashes).expect("bundle").bytes().len());
    ctx.note(format!(
        "take_in (raw) piece by piece: payload decode {} · Change::from_bytes {} · ChangeInfo {} · \
         has_change ×{N} {} · write_right ×{N} {} (inside check) · verify::check {} (rights, chain, \
         1 signature, topo order) · apply {} · re-encode as bundle for the store {}",
        ms(t_payload),
        ms(t_decode),
        ms(t_info),
        ms(t_held),
        ms(t_rights),
        ms(t_check),
        ms(t_apply),
        ms(t_bundle),
    ));
    median(&checks)
}

/// Where the extra time of the caregiver's progress goes: the probe document (the section
/// forked, with the batch applied to it) and the op-by-op check of each change.
fn profile_progress(ctx: &Ctx, s: &Setup, raw: &[Vec<u8>]) {
    let section = Section::Goals;
    let mut r = receiver(s, section, &s.goal);
    let changes: Vec<Change> = raw
        .iter()
        .map(|b| Change::from_bytes(b.clone()).expect("change"))
        .collect();
    let (probe, t_probe) = crate::timed(|| {
        let mut p = r.doc(section).fork();
        p.apply_changes_batch(changes.clone()).expect("probe");
        p
    });
    let (ok, t_ops) = crate::timed(|| {
        changes
            .iter()
            .filter(|c| phr::limits::check(&probe, c, section, phr::capability::Right::Progress).is_ok())
            .count()
    });
    assert_eq!(ok, N, "every progress change is within the right");
    ctx.note(format!(
        "progress path: probe (fork + apply the batch a second time) {} · limits::check ×{N} {}",
        ms(t_probe),
        ms(t_ops)
    ));
}

/// The raw payload's own decoding (a postcard list of encoded changes), as `take_in` does it.
fn postcard_list(batch: &Batch) -> usize {
    // The payload is `Vec<&[u8]>` encoded with postcard: varint length, then each item as a
    // varint length and its bytes. Walk it without a postcard dependency in the examples.
    let p = &batch.payload;
    let mut i = 0;
    let varint = |i: &mut usize| {
        let mut v = 0usize;
        let mut shift = 0;
        loop {
            let b = p[*i];
            *i += 1;
            v |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    };
    let n = varint(&mut i);
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let len = varint(&mut i);
        items.push(p[i..i + len].to_vec());
        i += len;
    }
    items.len()
}
