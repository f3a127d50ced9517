//! CI's short run of the fuzz targets (docs/FUZZING.md), on stable Rust.
//!
//! Every target in fuzz/targets.rs — the same bodies `cargo fuzz` runs for hours — is run here
//! on valid encodings made in the test (real tickets, capabilities, frames, signed batches, store
//! rows, FHIR resources and the smallest Synthea sample bundle), on the committed seeds in
//! `fuzz/corpus/<target>/`, and then on a few thousand byte-level mutations of them (bit flips,
//! byte overwrites, truncations, insertions, deletions, duplications, splices) from a fixed-seed
//! PRNG, so a failure reproduces. `PHR_FUZZ_ITERS` raises the mutation count per target.
//!
//! A failing input is written to `$CARGO_TARGET_TMPDIR/fuzz-failures/` for `cargo fuzz run
//! TARGET FILE` and for keeping as a regression seed.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use phr::access::{AccessSet, DeviceRemoval, Statement};
use phr::capability::{Capability, Grant, MAX_CHAIN, Preset, Revocation, Scope};
use phr::change::SignedChange;
use phr::entry::parse_fields;
use phr::exchange::{Batch, Encoding, Received};
use phr::fhir;
use phr::identity::{DeviceCert, KeyPair, RecoveryKit};
use phr::sync::clinic::ClinicTicket;
use phr::sync::pair::{PairTicket, TicketKind};
use phr::sync::wire::{self, Hello, Msg, RecordHello};
use phr::verify::HeadSig;
use phr::{Record, Section};
use serde_json::{Map, Value, json};

/// Mutations per target (beyond the seeds themselves).
const ITERS: usize = 2500;
/// Mutations per seed larger than [`BIG`] (a Synthea bundle takes long to map).
const BIG_ITERS: usize = 12;
/// Seeds above this size get only [`BIG_ITERS`] mutations.
const BIG: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// The mutator
// ---------------------------------------------------------------------------------------------

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Bytes that often sit on a decoder's boundaries (varint continuation, signs, ASCII syntax).
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff{}[]\",:=@.-0 A";

/// One to four stacked byte-level mutations of `input`, splicing from `other` sometimes.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.byte();
            }
            2 if len > 0 => {
                let i = rng.below(len);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => out.truncate(rng.below(len + 1)),
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                out.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                out.drain(at..at + n);
            }
            6 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let piece = out[at..at + n].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, piece);
            }
            7 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            _ => {
                // A length-like field pushed to an extreme: four bytes of 0xff or 0x00.
                let at = rng.below(len + 1);
                let b = if rng.below(2) == 0 { 0xff } else { 0x00 };
                out.splice(at..at, [b; 4]);
            }
        }
    }
    out
}

/// The committed seeds of a target, `fuzz/corpus/<name>/*`.
fn committed(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn target(name: &str) -> targets::Target {
    targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target `{name}`"))
}

/// Longest one input may take (debug build, on a loaded 2-core CI machine); beyond it the
/// input is kept as a hang.
const HANG: std::time::Duration = std::time::Duration::from_secs(20);

fn keep_failure(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{name}-{}", blake3::hash(input).to_hex()));
    let _ = std::fs::write(&file, input);
    file
}

/// Run `input` through the target; on a panic or a hang, keep the input and fail naming it.
fn run_one(name: &str, f: targets::Target, input: &[u8], what: &str) {
    let owned = input.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ok = std::panic::catch_unwind(|| f(&owned)).is_ok();
        let _ = tx.send(ok);
    });
    let verdict = match rx.recv_timeout(HANG) {
        Ok(true) => return,
        Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => "failed",
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => "hung",
    };
    let file = keep_failure(name, input);
    // The seeds made here carry fresh timestamps and ids, so a mutation found on another
    // machine (CI) is only reproducible from the input itself: print small ones whole.
    let hex = if input.len() <= 8192 {
        format!(
            "\ninput (hex, `xxd -r -p` makes the file): {}",
            input.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    } else {
        String::new()
    };
    panic!(
        "fuzz target `{name}` {verdict} on {what} ({} bytes, kept in {}); reproduce with \
         `cargo +nightly fuzz run {name} {}`{hex}",
        input.len(),
        file.display(),
        file.display()
    );
}

/// Seeds (made here and committed), then mutations of them; returns how many inputs ran.
fn fuzz(name: &str, mut seeds: Vec<Vec<u8>>) -> usize {
    let f = target(name);
    seeds.extend(committed(name));
    assert!(!seeds.is_empty(), "`{name}` has no seeds");
    for (i, s) in seeds.iter().enumerate() {
        run_one(name, f, s, &format!("seed {i}"));
    }
    let iters = std::env::var("PHR_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITERS);
    // The mutator's seed is fixed; the seeds made above are not byte for byte (timestamps,
    // fresh ids), which is why a failure prints its input.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(blake3::hash(name.as_bytes()).as_bytes()[0]) ^ 0x5eed);
    let small: Vec<&Vec<u8>> = seeds.iter().filter(|s| s.len() <= BIG).collect();
    let mut ran = seeds.len();
    for k in 0..iters {
        if small.is_empty() {
            break;
        }
        let seed = small[rng.below(small.len())];
        let other = small[rng.below(small.len())];
        let input = mutate(&mut rng, seed, other);
        run_one(name, f, &input, &format!("mutation {k}"));
        ran += 1;
    }
    for (i, seed) in seeds.iter().enumerate().filter(|(_, s)| s.len() > BIG) {
        for k in 0..BIG_ITERS {
            let input = mutate(&mut rng, seed, &[]);
            run_one(name, f, &input, &format!("mutation {k} of big seed {i}"));
            ran += 1;
        }
    }
    ran
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid encodings of everything the targets decode
// ---------------------------------------------------------------------------------------------

fn fields(section: Section, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    parse_fields(section, &args).expect("test fields are valid")
}

fn addr(key: &KeyPair, port: u16) -> iroh::EndpointAddr {
    let id = iroh::PublicKey::from_bytes(&key.public().0).expect("a real key is a curve point");
    let sock: SocketAddr = format!("127.0.0.1:{port}").parse().expect("a socket address");
    iroh::EndpointAddr::new(id).with_ip_addr(sock)
}

fn grant(audience: &KeyPair, scope: Scope, delegate: bool, expires: Option<i64>) -> Grant {
    Grant {
        audience: audience.public(),
        label: "Jane Roe, SLP".into(),
        scope,
        delegate,
        not_before: 1_700_000_000,
        expires,
    }
}

/// A root grant to a clinic, and the longest chain delegated from it that is still valid.
fn capabilities() -> (Capability, Capability) {
    let root = targets::patient_root();
    let clinic = KeyPair::from_secret([10; 32]);
    let cap = Capability::issue_root(&root, grant(&clinic, Preset::Clinic.scope(), true, Some(1_900_000_000)))
        .expect("a root grant");
    let mut holder = clinic;
    let mut chain = cap.clone();
    for n in 0..MAX_CHAIN {
        let next = KeyPair::from_secret([20 + n as u8; 32]);
        let scope: Scope = [(Section::Notes, phr::capability::Right::Write)].into();
        chain = Capability::delegate(&holder, &chain, grant(&next, scope, true, Some(1_800_000_000)))
            .expect("a delegation within the chain limit");
        holder = next;
    }
    (cap, chain)
}

/// Changes of the fuzz record signed by its one device: notes, medications and an audit event.
fn signed_changes() -> (Record, Vec<SignedChange>) {
    let mut record = Record::new(targets::patient_root().public(), targets::patient_device());
    record
        .add(
            Section::Medications,
            fields(Section::Medications, &[("name", "Amoxicillin"), ("dose", "250 mg")]),
        )
        .expect("a medication");
    record
        .add(
            Section::Medications,
            fields(Section::Medications, &[("name", "Ibuprofen"), ("dose", "100 mg")]),
        )
        .expect("a medication");
    record
        .audit("export", "fuzz seed", None, &[Section::Medications])
        .expect("an audit event");
    let changes = record.take_pending();
    (record, changes)
}

fn body(msg: &Msg) -> Vec<u8> {
    frame(msg)[4..].to_vec()
}

fn frame(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    targets::ready(wire::write_msg(&mut out, msg)).expect("a message encodes");
    out
}

/// `Batch` messages of one section in every encoding, each with its head signature.
fn batches() -> Vec<Batch> {
    let (mut record, changes) = signed_changes();
    let rid = record.id();
    let mut out = Vec::new();
    for section in [Section::Medications, Section::Audit] {
        let mine: Vec<SignedChange> = changes.iter().filter(|c| c.section == section).cloned().collect();
        let last = mine.last().expect("changes in the section");
        let head_sigs = vec![HeadSig {
            hash: last.hash,
            sig: last.signature,
        }];
        out.push(Batch::from_local(rid, section, &mine).expect("a raw batch"));
        let hashes: Vec<_> = mine
            .iter()
            .map(|c| c.decode().expect("a change decodes").hash())
            .collect();
        let bundle = record.doc(section).bundle(hashes).expect("a bundle").bytes().to_vec();
        out.push(Batch {
            record: rid,
            section,
            encoding: Encoding::Bundle,
            payload: bundle,
            head_sigs: head_sigs.clone(),
            count: mine.len() as u32,
        });
        out.push(Batch {
            record: rid,
            section,
            encoding: Encoding::Snapshot,
            payload: record.doc(section).save(),
            head_sigs,
            count: mine.len() as u32,
        });
    }
    out
}

fn statements() -> Vec<Statement> {
    let root = targets::patient_root();
    let (cap, chain) = capabilities();
    let cert = DeviceCert::issue(&root, targets::patient_device().public(), "phone", 1_700_000_000);
    let old = KeyPair::from_secret([30; 32]);
    let removal = DeviceRemoval::issue(&root, old.public(), [(Section::Notes, 3)].into(), 1_700_000_100);
    let revocation = Revocation::issue(
        &root,
        root.public(),
        cap.id,
        vec![(chain.audience, Section::Notes, 2)],
        1_700_000_200,
    );
    vec![
        Statement::Device(cert),
        Statement::Removal(removal),
        Statement::Capability(cap),
        Statement::Capability(chain),
        Statement::Revocation(revocation),
    ]
}

fn wire_seeds() -> Vec<Vec<u8>> {
    let root = targets::patient_root();
    let rid = root.public();
    let (mut record, _) = signed_changes();
    let cert = DeviceCert::issue(&root, targets::patient_device().public(), "phone", 1_700_000_000);
    let hello = Msg::Hello(Hello {
        version: wire::VERSION,
        records: vec![RecordHello {
            record: rid,
            credential: phr::access::Credential::Device(cert),
            clocks: phr::exchange::clocks(&mut record),
        }],
        refused: vec![(KeyPair::from_secret([40; 32]).public(), "not here".into())],
        live: true,
        addrs: vec!["127.0.0.1:4433".parse().expect("an address")],
    });
    let access = Msg::Access {
        record: rid,
        statements: statements(),
    };
    let batch = batches().remove(0);
    // A batch sent as parts, as `write_msg` does past the frame limit, here in three pieces.
    let whole = body(&Msg::Batch(batch.clone()));
    let third = whole.len() / 3 + 1;
    let parts: Vec<Msg> = whole
        .chunks(third)
        .enumerate()
        .map(|(i, piece)| Msg::BatchPart {
            record: rid,
            section: batch.section,
            bytes: piece.to_vec(),
            last: (i + 1) * third >= whole.len(),
        })
        .collect();
    let ack = Msg::Ack {
        record: rid,
        section: Section::Notes,
        received: Received {
            applied: 2,
            duplicates: 1,
            rejected: vec!["notes change 0a0b: not allowed".into()],
            forward: None,
        },
    };
    let singles = [
        hello.clone(),
        Msg::Refused {
            reason: "unknown device".into(),
        },
        access.clone(),
        Msg::Batch(batch),
        ack.clone(),
        Msg::CaughtUp,
    ];
    let mut seeds: Vec<Vec<u8>> = singles.iter().map(frame).collect();
    // Whole sessions: hello, membership, parts of a batch, an ack, caught up.
    let mut session = frame(&hello);
    session.extend(frame(&access));
    for p in &parts {
        session.extend(frame(p));
    }
    session.extend(frame(&ack));
    session.extend(frame(&Msg::CaughtUp));
    seeds.push(session);
    let mut just_parts = Vec::new();
    for p in &parts {
        just_parts.extend(frame(p));
    }
    seeds.push(just_parts);
    seeds
}

fn stored_seeds() -> Vec<Vec<u8>> {
    let key = targets::store_key();
    let (mut record, changes) = signed_changes();
    let code = Section::Medications.code();
    let mut seeds = Vec::new();
    let mut sealed = vec![targets::stored::SEALED];
    sealed.extend(key.seal(targets::STORE_AAD, b"a stored secret"));
    seeds.push(sealed);
    seeds.push(vec![targets::stored::SEALED]);
    let row = |kind: u8, bytes: &[u8]| {
        let mut v = vec![targets::stored::CHANGE_ROW, code, kind];
        v.extend_from_slice(bytes);
        v
    };
    // The row kinds of engine/src/store.rs: a single change, a bundle, a postcard list.
    seeds.push(row(0, &changes[0].bytes));
    for b in batches().into_iter().filter(|b| b.section == Section::Medications) {
        match b.encoding {
            Encoding::Bundle => seeds.push(row(1, &b.payload)),
            Encoding::Raw => seeds.push(row(2, &b.payload)),
            Encoding::Snapshot => {}
        }
    }
    let mut snap = vec![targets::stored::SNAPSHOT, code];
    snap.extend(7u64.to_be_bytes());
    snap.extend(record.doc(Section::Medications).save());
    seeds.push(snap);
    seeds
}

fn resource_seeds() -> Vec<Value> {
    vec![
        json!({ "resourceType": "Observation", "id": "o1", "status": "final",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
            "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose" }], "text": "Glucose" },
            "effectiveDateTime": "2008-05-19T07:44:08+00:00",
            "valueQuantity": { "value": 75.5, "unit": "mg/dL" },
            "referenceRange": [{ "low": { "value": 70 }, "high": { "value": 99 } }],
            "interpretation": [{ "coding": [{ "code": "N" }] }] }),
        json!({ "resourceType": "DocumentReference", "id": "doc-1", "status": "current", "docStatus": "final",
            "type": { "coding": [{ "system": "http://loinc.org", "code": "11506-3", "display": "Progress note" }] },
            "date": "2024-03-05T17:20:11-05:00",
            "author": [{ "reference": "Practitioner/pr-7", "display": "Jamie Ames, CCC-SLP" }],
            "content": [{ "attachment": { "contentType": "text/plain",
                "data": "UzogVGlyZWQuCk86IDgvMTAuCkE6IEltcHJvdmluZy4KUDogQ29udGludWUu" } }],
            "context": { "period": { "start": "2024-03-04T15:00:00-05:00" } } }),
        json!({ "resourceType": "Composition", "id": "c1", "status": "final", "date": "2024-04-02",
            "type": { "text": "Occupational therapy progress note" }, "title": "OT session",
            "author": [{ "display": "R. Chen, OTR/L" }],
            "section": [{ "title": "Subjective", "text": { "div": "<div><p>Calmer &amp; happy.</p></div>" } },
                        { "title": "Plan", "text": { "div": "<div>Weekly</div>" } }] }),
        json!({ "resourceType": "Appointment", "id": "a1", "status": "booked", "description": "Follow-up speech session",
            "start": "2024-03-12T15:30:00-04:00", "end": "2024-03-12T16:15:00-04:00",
            "participant": [{ "actor": { "reference": "Practitioner/pr-7", "display": "Jamie Ames" }, "status": "accepted" }] }),
        json!({ "resourceType": "Communication", "id": "m1", "status": "completed", "sent": "2024-03-05T10:00:00Z",
            "payload": [{ "contentString": "See you on Tuesday." }],
            "sender": { "display": "Jamie Ames" }, "recipient": [{ "display": "Mia's parents" }],
            "topic": { "text": "Scheduling" } }),
        json!({ "resourceType": "Questionnaire", "id": "q1", "status": "active", "title": "Speech intake",
            "item": [{ "linkId": "a", "type": "integer", "text": "Age at first words (months)" },
                     { "linkId": "b", "type": "choice", "text": "Home language",
                       "answerOption": [{ "valueString": "English" }, { "valueString": "Spanish" }] }] }),
        json!({ "resourceType": "QuestionnaireResponse", "id": "r1", "status": "completed",
            "questionnaire": "Questionnaire/q1", "authored": "2024-03-06",
            "item": [{ "linkId": "a", "text": "Age at first words (months)", "answer": [{ "valueInteger": 14 }] }] }),
    ]
}

/// The smallest Synthea sample bundle (../shared/fhir-samples, Apache-2.0), if present.
fn smallest_sample() -> Option<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-samples");
    let smallest = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))?;
    std::fs::read(smallest).ok()
}

/// A bundle exported from a record holding an entry of each section a clinic writes.
fn exported_bundle() -> Vec<u8> {
    let mut record = Record::new(targets::patient_root().public(), targets::patient_device());
    for res in resource_seeds() {
        let (section, mut f) = fhir::entry_from_fhir(&res).expect("a seed resource maps");
        // A note's clinician and discipline are the caller's to fill when the resource lacks them.
        if section == Section::Notes {
            f.entry("discipline").or_insert_with(|| "speech".into());
            f.entry("clinician").or_insert_with(|| "Jamie Ames".into());
        }
        record.add(section, f).expect("a mapped resource is a valid entry");
    }
    record
        .add(
            Section::Medications,
            fields(Section::Medications, &[("name", "Amoxicillin"), ("dose", "250 mg")]),
        )
        .expect("a medication");
    let exported =
        fhir::export_bundle(&record, &AccessSet::default(), &Section::ALL, fhir::Zone::UTC).expect("an export");
    serde_json::to_vec(&exported.bundle).expect("JSON")
}

fn attachment_seed() -> Value {
    json!({
        "format": 1,
        "blob": "11".repeat(32),
        "key": "22".repeat(32),
        "nonce": "33".repeat(15),
        "size": 200_000,
        "chunk": 65536,
        "plain_hash": "44".repeat(32),
        "media_type": "application/pdf",
        "name": "audiogram.pdf"
    })
}

/// Every seed a target starts from, by target name (the committed ones come on top).
fn seeds(name: &str) -> Vec<Vec<u8>> {
    let text = |v: Vec<String>| v.into_iter().map(String::into_bytes).collect::<Vec<_>>();
    let root = targets::patient_root();
    let (cap, chain) = capabilities();
    match name {
        "pair_ticket" => {
            let device = PairTicket {
                record: root.public(),
                addr: addr(&targets::patient_device(), 4433),
                secret: [5; 16],
                expires: 1_900_000_000,
                kind: TicketKind::Device,
            };
            let share = PairTicket {
                kind: TicketKind::Share {
                    label: "Grandma".into(),
                    scope: Preset::Caregiver.scope(),
                    expires: Some(1_900_000_000),
                },
                ..device.clone()
            };
            text(vec![
                device.to_text(),
                share.to_text(),
                format!("  {}\n", device.to_text().to_lowercase()),
            ])
        }
        "clinic_ticket" => {
            let clinic = KeyPair::from_secret([10; 32]);
            let t = ClinicTicket {
                clinic: clinic.public(),
                name: "Bright Steps Therapy".into(),
                addr: addr(&clinic, 7000),
                secret: [6; 16],
                expires: 1_900_000_000,
            };
            text(vec![t.to_text()])
        }
        "capability" => vec![cap.to_bytes(), chain.to_bytes()],
        "capability_text" => text(vec![
            cap.to_text(),
            "notes=write, goals, appointments=request".into(),
            "goals=progress,caregiver-log=w".into(),
            "caregiver".into(),
            "School".into(),
            "write".into(),
            root.public().to_string(),
        ]),
        "recovery_kit" => {
            let kit = RecoveryKit::new(&root);
            text(vec![kit.to_text(), kit.words().join(" ")])
        }
        "peer_addr" => {
            let key = targets::patient_device().public().to_string();
            let a = addr(&targets::patient_device(), 4433);
            text(vec![
                format!("{key}@127.0.0.1:4433"),
                format!("{key}@[::1]:4433"),
                serde_json::to_string(&a).expect("JSON"),
                serde_json::to_string(&iroh::EndpointAddr::new(a.id)).expect("JSON"),
            ])
        }
        "wire_frames" => wire_seeds(),
        "sync_batch" => batches().into_iter().map(|b| body(&Msg::Batch(b))).collect(),
        "stored_value" => stored_seeds(),
        "fhir_bundle" => {
            let mut v = vec![exported_bundle()];
            v.extend(smallest_sample());
            v
        }
        "fhir_resource" => resource_seeds()
            .iter()
            .map(|r| serde_json::to_vec_pretty(r).expect("JSON"))
            .collect(),
        "attachment_ref" => {
            let mut float = attachment_seed();
            float["size"] = json!(200000.0);
            vec![
                serde_json::to_vec(&attachment_seed()).expect("JSON"),
                serde_json::to_vec(&float).expect("JSON"),
            ]
        }
        other => panic!("no seeds for `{other}`"),
    }
}

// ---------------------------------------------------------------------------------------------
// The user stories
// ---------------------------------------------------------------------------------------------

#[test]
fn a_damaged_or_hostile_pairing_ticket_is_refused_never_a_panic() {
    fuzz("pair_ticket", seeds("pair_ticket"));
}

#[test]
fn a_damaged_clinic_invitation_is_refused_and_an_accepted_one_names_its_own_node() {
    fuzz("clinic_ticket", seeds("clinic_ticket"));
}

#[test]
fn a_capability_from_anyone_is_verified_or_refused_never_a_panic() {
    fuzz("capability", seeds("capability"));
}

#[test]
fn whatever_is_typed_as_access_text_parses_back_to_itself_or_is_refused() {
    fuzz("capability_text", seeds("capability_text"));
}

#[test]
fn a_mistyped_recovery_kit_is_refused_never_a_panic() {
    fuzz("recovery_kit", seeds("recovery_kit"));
}

#[test]
fn a_malformed_peer_address_is_refused_never_a_panic() {
    fuzz("peer_addr", seeds("peer_addr"));
}

#[test]
fn a_hostile_peers_malformed_frames_never_panic_the_decoder() {
    fuzz("wire_frames", seeds("wire_frames"));
}

#[test]
fn a_hostile_peers_batch_lets_in_only_the_records_own_signed_changes() {
    // The unmutated seeds must be accepted, or the mutations would test nothing past decoding.
    for b in seeds("sync_batch") {
        let Some(Msg::Batch(batch)) = decode(&b) else {
            panic!("a sync_batch seed is not a batch")
        };
        let mut record = Record::new(targets::patient_root().public(), KeyPair::from_secret([3; 32]));
        let mut access = AccessSet::default();
        let root = targets::patient_root();
        let cert = DeviceCert::issue(&root, targets::patient_device().public(), "phone", 0);
        access
            .insert(&root.public(), Statement::Device(cert))
            .expect("a valid certificate");
        let (received, _) = phr::exchange::take_in(&mut record, &access, batch).expect("a valid batch");
        assert!(received.applied > 0 && received.rejected.is_empty(), "{received:?}");
    }
    fuzz("sync_batch", seeds("sync_batch"));
}

fn decode(body: &[u8]) -> Option<Msg> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    targets::ready(wire::read_msg(&mut f.as_slice())).ok().map(|(m, _)| m)
}

#[test]
fn a_damaged_store_value_is_an_error_never_a_panic() {
    let seeds = seeds("stored_value");
    // The row seeds must decode, so that mutations start from what the store really writes.
    for s in seeds.iter().filter(|s| s[0] == targets::stored::CHANGE_ROW) {
        let section = Section::from_code(s[1]).expect("a section code");
        assert!(phr::fuzzing::stored_change_row(section, &s[2..]).expect("a seed row decodes") > 0);
    }
    fuzz("stored_value", seeds);
}

#[test]
fn a_malformed_fhir_bundle_is_refused_and_a_valid_one_imports_once() {
    let seeds = seeds("fhir_bundle");
    assert!(fhir::read_bundle(std::str::from_utf8(&seeds[0]).expect("UTF-8")).is_ok());
    fuzz("fhir_bundle", seeds);
}

#[test]
fn an_ehrs_malformed_fhir_resource_is_refused_and_a_mapped_one_maps_back() {
    for r in resource_seeds() {
        fhir::entry_from_fhir(&r).unwrap_or_else(|e| panic!("seed {} does not map: {e}", r["resourceType"]));
    }
    fuzz("fhir_resource", seeds("fhir_resource"));
}

#[test]
fn a_peers_attachment_reference_is_used_only_when_valid() {
    let mut f = Map::new();
    f.insert("attachment".into(), attachment_seed());
    assert!(phr::attachment::of_fields(&f).is_some(), "the seed reference is valid");
    fuzz("attachment_ref", seeds("attachment_ref"));
}

/// postcard encoding of a capability with empty label and scope and zero keys, `depth` parents
/// deep: what a hostile peer can put in a 16 MiB frame to exhaust a decoder's stack.
fn nested_capability(depth: usize) -> Vec<u8> {
    let mut head = vec![0u8; 16 + 32 * 3]; // id, record, issuer, audience
    head.extend([0, 0, 0, 0, 0]); // label "", empty scope, no delegate, not_before 0, no expiry
    let mut out = Vec::with_capacity((head.len() + 65) * (depth + 1));
    for _ in 0..depth {
        out.extend(&head);
        out.push(1); // parent: Some(...)
    }
    out.extend(&head);
    out.push(0); // parent: None
    for _ in 0..=depth {
        out.extend([0u8; 64]); // signature
    }
    out
}

#[test]
fn a_capability_nested_eighty_thousand_deep_is_refused_without_exhausting_the_stack() {
    // Shallow: decodes, then fails its signature check (all-zero keys).
    let shallow = Capability::from_bytes(&nested_capability(2)).expect_err("zero keys do not verify");
    assert!(!shallow.to_string().contains("damaged"), "{shallow}");
    // The longest valid chain still decodes; one more link is refused while decoding.
    let (_, chain) = capabilities();
    assert_eq!(Capability::from_bytes(&chain.to_bytes()).expect("a valid chain"), chain);
    let deep = Capability::from_bytes(&nested_capability(MAX_CHAIN + 1)).expect_err("too deep");
    assert!(deep.to_string().contains("damaged"), "{deep}");
    // Before the bound, this overflowed the stack (an abort, not even a panic).
    let bytes = nested_capability(80_000);
    assert!(bytes.len() < wire::MAX_FRAME);
    assert!(Capability::from_bytes(&bytes).is_err());
    // The same inside a peer's membership message.
    let mut frame_body = vec![2u8]; // Msg::Access
    frame_body.extend(targets::patient_root().public().0);
    frame_body.extend([1u8, 2u8]); // one statement, Statement::Capability
    frame_body.extend(&bytes);
    assert!(decode(&frame_body).is_none(), "a hostile nested capability was decoded");
    run_one("wire_frames", target("wire_frames"), &frame(&Msg::CaughtUp), "a frame");
}

#[test]
fn every_target_has_a_libfuzzer_entry_and_seeds() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(fuzz_dir.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = BTreeMap::new();
    for (name, _) in targets::TARGETS {
        let entry = fuzz_dir.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(entry.exists(), "{} is missing", entry.display());
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
        assert!(!seeds(name).is_empty());
        names.insert(*name, ());
    }
    assert_eq!(names.len(), targets::TARGETS.len(), "two targets share a name");
}

/// Write the seeds made here (those of at most 4 KiB) to `fuzz/corpus/<target>/seed-NN`, the
/// starting corpus of `cargo fuzz run`. Run by hand after changing an encoding:
/// `cargo test -p phr --test fuzz_targets -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    for (name, _) in targets::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (i, s) in seeds(name).iter().filter(|s| s.len() <= 4096).enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).expect("write a seed");
        }
    }
}

/// Inputs libFuzzer and this test once found (fuzz/known/): ~1 KB bundles whose run headers
/// claim billions of values or whose columns stop inside a number, on which automerge 0.12
/// allocated until the process died or looped forever, and a change whose op-level check made
/// Automerge panic where the process could not unwind. phr now measures a chunk before
/// Automerge decodes it (engine/src/chunk.rs) and catches that panic, so each is refused
/// quickly, with bounded memory (docs/FUZZING.md).
#[test]
fn every_input_fuzzing_found_is_refused_in_bounded_time_and_memory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/known");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fuzz/known")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the kept inputs are in fuzz/known");
    for file in files {
        let file_name = file.file_name().and_then(|n| n.to_str()).expect("a file name");
        let name = file_name.split('-').next().expect("target-description");
        let input = std::fs::read(&file).expect("a kept input");
        run_one(name, target(name), &input, file_name);
    }
}
