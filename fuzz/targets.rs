//! The body of every fuzz target, as plain functions over the raw input.
//!
//! `fuzz/fuzz_targets/*.rs` hand them libFuzzer's input (nightly, `cargo fuzz`), and
//! `tests/fuzz_targets.rs` runs them on stable as CI's short run (seeds and mutations of them).
//! Each one decodes bytes that reach the engine from outside — a peer, a ticket someone pasted,
//! a store file, an EHR's FHIR — and checks the decoder's contract beyond "it did not panic":
//! what decodes re-encodes to the same value, what is accepted satisfies the rules the decoder
//! promises. See docs/FUZZING.md.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use phr::access::{AccessSet, Statement};
use phr::attachment;
use phr::capability::{self, Capability, MAX_CHAIN, Preset, Right, Scope};
use phr::crypto::SecretKey;
use phr::exchange;
use phr::fhir;
use phr::fuzzing;
use phr::identity::{DeviceCert, KeyPair, PublicKey, RecoveryKit};
use phr::store::Persist;
use phr::sync::clinic::ClinicTicket;
use phr::sync::net;
use phr::sync::pair::PairTicket;
use phr::sync::wire::{self, Msg, Reassembly};
use phr::{Record, Section};

/// A fuzz target: takes any bytes, panics only when the decoder broke its contract.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("pair_ticket", pair_ticket),
    ("clinic_ticket", clinic_ticket),
    ("capability", capability),
    ("capability_text", capability_text),
    ("recovery_kit", recovery_kit),
    ("peer_addr", peer_addr),
    ("wire_frames", wire_frames),
    ("sync_batch", sync_batch),
    ("stored_value", stored_value),
    ("fhir_bundle", fhir_bundle),
    ("fhir_resource", fhir_resource),
    ("attachment_ref", attachment_ref),
];

/// The patient's root key of the record `sync_batch` inputs are for (fixed, so seeds stay valid).
pub fn patient_root() -> KeyPair {
    KeyPair::from_secret([1; 32])
}

/// The one device of that record allowed to write (certified by [`patient_root`]).
pub fn patient_device() -> KeyPair {
    KeyPair::from_secret([2; 32])
}

/// The key `stored_value` seals and opens with.
pub fn store_key() -> SecretKey {
    SecretKey::from_bytes([7; 32])
}

/// Associated data `stored_value` seals and opens under.
pub const STORE_AAD: &[u8] = b"phr fuzz stored value";

/// `stored_value`'s first byte: what the rest of the input is.
pub mod stored {
    /// A sealed value as the store file holds it (version, nonce, ciphertext and tag).
    pub const SEALED: u8 = 0;
    /// An opened change row; the second byte is the section code.
    pub const CHANGE_ROW: u8 = 1;
    /// An opened section snapshot; the second byte is the section code.
    pub const SNAPSHOT: u8 = 2;
}

/// Row kinds of stored change rows, as in engine/store/src/store.rs (`ROW_BUNDLE`, `ROW_LIST`).
const ROW_BUNDLE: u8 = 1;
const ROW_LIST: u8 = 2;

/// Bundles larger than this are only read and mapped, not also imported (imports are slow).
pub const IMPORT_LIMIT: usize = 64 * 1024;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Run a future over in-memory I/O, which never waits.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory I/O never waits"),
    }
}

/// Keep Automerge's own panics quiet: the engine catches those where it decodes outside bytes
/// and returns an error instead (`decoding` in engine/model/src/change.rs). Any other panic still
/// reaches the previous hook — libFuzzer's, which aborts, or the test harness's — and an
/// Automerge panic the engine does not catch still fails the target where it unwinds out.
fn quiet_automerge_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // `PHR_FUZZ_LOUD=1` shows them, to find where an uncaught one came from.
        if std::env::var_os("PHR_FUZZ_LOUD").is_some() {
            return;
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_automerge = info
                .location()
                .is_some_and(|l| ["/automerge-", "/hexane-"].iter().any(|c| l.file().contains(c)));
            if !in_automerge {
                previous(info);
            }
        }));
    });
}

/// The record `sync_batch` takes batches into, as a second device of the patient holds it.
fn receiver() -> Record {
    Record::new(patient_root().public(), KeyPair::from_secret([3; 32]))
}

/// The record's membership: the patient's root certifies [`patient_device`].
fn membership() -> &'static AccessSet {
    static SET: OnceLock<AccessSet> = OnceLock::new();
    SET.get_or_init(|| {
        let root = patient_root();
        let cert = DeviceCert::issue(&root, patient_device().public(), "phone", 0);
        let mut set = AccessSet::default();
        set.insert(&root.public(), Statement::Device(cert))
            .expect("the fuzz record's own device certificate verifies");
        set
    })
}

/// A pairing ticket pasted or scanned by a new device (`PHRPAIR1…`).
pub fn pair_ticket(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(ticket) = PairTicket::parse(t) else { return };
    let again = PairTicket::parse(&ticket.to_text()).expect("a parsed pairing ticket's text parses");
    assert_eq!(again, ticket, "a pairing ticket changed through its text form");
}

/// A clinic invitation pasted or scanned by the patient (`PHRCLINIC1…`).
pub fn clinic_ticket(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(ticket) = ClinicTicket::parse(t) else { return };
    assert_eq!(
        *ticket.addr.id.as_bytes(),
        ticket.clinic.0,
        "a clinic ticket was accepted with an address of another node"
    );
    let again = ClinicTicket::parse(&ticket.to_text()).expect("a parsed clinic ticket's text parses");
    assert_eq!(again, ticket, "a clinic ticket changed through its text form");
}

/// What holds for every capability a decoder accepted.
fn accepted_capability(cap: &Capability) {
    cap.check_chain().expect("a decoded capability's chain verifies");
    assert!(
        cap.chain_ids().len() <= MAX_CHAIN + 1,
        "a decoded chain is longer than allowed"
    );
    for (s, r) in &cap.scope {
        capability::parse_scope(&format!("{s}={r}")).expect("every right of a verified grant fits its section");
    }
    assert_eq!(
        Capability::from_bytes(&cap.to_bytes()).expect("a capability's bytes decode"),
        *cap,
        "a capability changed through its binary form"
    );
    assert_eq!(
        Capability::from_text(&cap.to_text()).expect("a capability's text decodes"),
        *cap,
        "a capability changed through its text form"
    );
    let json = serde_json::to_string(cap).expect("a capability encodes as JSON");
    let back: Capability = serde_json::from_str(&json).expect("a capability's JSON decodes");
    assert_eq!(back, *cap, "a capability changed through JSON");
}

/// A capability in its binary form, as carried in share tickets, credentials and statements.
pub fn capability(data: &[u8]) {
    if let Ok(cap) = Capability::from_bytes(data) {
        accepted_capability(&cap);
    }
}

/// Text a person types or pastes for access: `PHRCAP1…`, scopes, rights, presets, sections,
/// keys.
pub fn capability_text(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Ok(cap) = Capability::from_text(t) {
        accepted_capability(&cap);
    }
    if let Ok(scope) = capability::parse_scope(t) {
        let rendered: Vec<String> = scope.iter().map(|(s, r)| format!("{s}={r}")).collect();
        let again: Scope = capability::parse_scope(&rendered.join(",")).expect("a parsed scope's text parses");
        assert_eq!(again, scope, "a scope changed through its text form");
    }
    if let Ok(right) = t.parse::<Right>() {
        assert_eq!(right.to_string().parse::<Right>().ok(), Some(right));
    }
    if let Ok(preset) = t.parse::<Preset>() {
        let rendered: Vec<String> = preset.scope().iter().map(|(s, r)| format!("{s}={r}")).collect();
        capability::parse_scope(&rendered.join(",")).expect("a preset's scope is a valid scope");
    }
    if let Ok(section) = t.parse::<Section>() {
        assert_eq!(section.name().parse::<Section>().ok(), Some(section));
    }
    if let Ok(key) = t.parse::<PublicKey>() {
        assert_eq!(key.to_string().parse::<PublicKey>().ok(), Some(key));
    }
}

/// A recovery kit typed back in from paper (24 words, optionally the record line).
pub fn recovery_kit(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(kit) = RecoveryKit::parse(t) else { return };
    assert_eq!(kit.words().len(), 24);
    let again = RecoveryKit::parse(&kit.to_text()).expect("a kit's printed text parses");
    assert_eq!(
        again.root().public(),
        kit.root().public(),
        "a kit changed through its text form"
    );
}

/// A peer address given on the command line or stored: `KEY@IP:PORT` or JSON.
pub fn peer_addr(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(addr) = net::parse_addr(t) else { return };
    let shown = net::format_addr(&addr);
    let again = net::parse_addr(&shown).expect("a formatted peer address parses");
    assert_eq!(
        again.id, addr.id,
        "a peer address changed its key through its text form"
    );
    if addr.ip_addrs().next().is_none() {
        assert_eq!(again, addr, "a peer address changed through its JSON form");
    }
}

/// A sync stream from a peer: length-prefixed postcard frames, batch parts reassembled,
/// statements and credentials verified as a session would.
pub fn wire_frames(data: &[u8]) {
    let mut rest = data;
    let mut parts = Reassembly::default();
    for _ in 0..64 {
        let before = rest.len();
        let Ok((msg, n)) = ready(wire::read_msg(&mut rest)) else {
            return;
        };
        assert_eq!(
            n as usize,
            before - rest.len(),
            "a frame's reported size is not what it consumed"
        );
        assert!(n as usize <= 4 + wire::MAX_FRAME);
        let mut out = Vec::new();
        let written = ready(wire::write_msg(&mut out, &msg)).expect("a decoded message encodes");
        assert_eq!(written as usize, out.len());
        let (again, m) = ready(wire::read_msg(&mut out.as_slice())).expect("a re-encoded message decodes");
        assert_eq!(m as usize, out.len());
        assert_eq!(again, msg, "a message changed through its encoding");
        match msg {
            Msg::BatchPart {
                record,
                section,
                bytes,
                last,
            } => match parts.push(record, section, bytes, last) {
                Ok(Some(batch)) => assert!(batch.record == record && batch.section == section),
                Ok(None) => {}
                Err(_) => parts = Reassembly::default(),
            },
            Msg::Access { record, statements } => {
                let mut set = AccessSet::default();
                for st in phr::access::in_order(statements) {
                    let _ = set.insert(&record, st);
                }
            }
            Msg::Hello(hello) => {
                for r in &hello.records {
                    let _ = r.credential.verify();
                }
            }
            _ => {}
        }
    }
}

/// Decode a message body (no length prefix) as `read_msg` would.
fn decode_body(body: &[u8]) -> Option<Msg> {
    let len = u32::try_from(body.len()).ok()?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    ready(wire::read_msg(&mut frame.as_slice())).ok().map(|(m, _)| m)
}

/// A `Batch` message body from a peer (a snapshot, an Automerge bundle or raw changes), taken
/// into the record whose only writer is [`patient_device`]: only its signed changes may enter,
/// what enters must load again from the store, and what is forwarded must be accepted by the
/// next peer.
pub fn sync_batch(data: &[u8]) {
    quiet_automerge_panics();
    let Some(Msg::Batch(batch)) = decode_body(data) else {
        return;
    };
    let section = batch.section;
    let mut record = receiver();
    let Ok((received, persist)) = exchange::take_in(&mut record, membership(), batch) else {
        return;
    };
    assert_eq!(
        persist.is_some(),
        received.applied > 0,
        "persisting without applying, or the reverse"
    );
    let Some(persist) = persist else { return };
    let device = patient_device().public();
    assert!(
        record.clock(section).keys().all(|a| *a == device),
        "a change by someone other than the record's one device entered"
    );
    let reloaded = match &persist {
        Persist::Snapshot { saved, .. } => {
            let mut plain = vec![0u8; 8];
            plain.extend_from_slice(saved);
            let mut doc = fuzzing::stored_snapshot(section, &plain).expect("a persisted snapshot loads");
            doc.get_changes(&[]).len()
        }
        Persist::Bundle { bundle, .. } => {
            let mut row = vec![ROW_BUNDLE];
            row.extend_from_slice(bundle);
            fuzzing::stored_change_row(section, &row).expect("a persisted bundle loads")
        }
        Persist::Changes { list, .. } => {
            let mut row = vec![ROW_LIST];
            row.extend_from_slice(list);
            fuzzing::stored_change_row(section, &row).expect("persisted changes load")
        }
    };
    assert!(
        reloaded >= received.applied as usize,
        "fewer changes persisted than applied"
    );
    let forward = received.forward.expect("applied changes are forwarded to other peers");
    let (again, _) = exchange::take_in(&mut receiver(), membership(), forward).expect("a forwarded batch decodes");
    assert_eq!(
        again.applied, received.applied,
        "the next peer refuses what this one forwarded"
    );
}

/// What the store decodes from its file: sealed values, and (once opened) change rows and
/// section snapshots. The first byte picks which, see [`stored`].
pub fn stored_value(data: &[u8]) {
    quiet_automerge_panics();
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let key = store_key();
    match kind {
        stored::SEALED => {
            if let Ok(plain) = key.open(STORE_AAD, rest) {
                let resealed = key.seal(STORE_AAD, &plain);
                assert_eq!(key.open(STORE_AAD, &resealed).ok(), Some(plain));
            }
            assert!(
                key.open(b"another place", rest).is_err(),
                "a sealed value opened under another location"
            );
            assert_eq!(
                key.open(STORE_AAD, &key.seal(STORE_AAD, rest)).ok().as_deref(),
                Some(rest)
            );
        }
        stored::CHANGE_ROW | stored::SNAPSHOT => {
            let Some((&code, value)) = rest.split_first() else {
                return;
            };
            let Some(section) = Section::from_code(code) else {
                return;
            };
            if kind == stored::CHANGE_ROW {
                let _ = fuzzing::stored_change_row(section, value);
            } else if let Ok(mut doc) = fuzzing::stored_snapshot(section, value) {
                let mut plain = value[..8].to_vec();
                plain.extend_from_slice(&doc.save());
                let mut again = fuzzing::stored_snapshot(section, &plain).expect("a re-saved snapshot loads");
                assert_eq!(
                    again.get_heads(),
                    doc.get_heads(),
                    "a snapshot changed through save and load"
                );
            }
        }
        _ => {}
    }
}

/// A FHIR Bundle a patient imports (a hospital's export): read and mapped; small ones also
/// imported into an empty record, after which importing again changes nothing.
pub fn fhir_bundle(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(mapped) = fhir::read_bundle(t) else { return };
    assert!(
        mapped.mapped.values().sum::<usize>() <= mapped.resources,
        "more entries mapped than resources"
    );
    if t.len() > IMPORT_LIMIT {
        return;
    }
    let mut record = Record::new(patient_root().public(), patient_device());
    let report = mapped
        .import(&mut record, "fuzz")
        .expect("a mapped bundle imports into an empty record");
    assert!(report.sections.values().all(|c| c.updated == 0 && c.unchanged == 0));
    let again = mapped
        .preview(&record)
        .expect("a bundle previews against the record it went into");
    assert_eq!(again.changes(), 0, "importing the same bundle twice changes the record");
}

/// One FHIR resource an EHR sends the clinic node (a note, a lab, an appointment, a message,
/// a form): what maps to an entry maps back to a resource of the same section.
pub fn fhir_resource(data: &[u8]) {
    let Ok(res) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok((section, fields)) = fhir::entry_from_fhir(&res) else {
        return;
    };
    let Some(back) = fhir::entry_to_fhir(section, "fuzz", &fields) else {
        return;
    };
    let (again, _) = fhir::entry_from_fhir(&back).expect("a resource written from an entry maps back");
    assert_eq!(again, section, "a resource changed section through its entry");
}

/// An entry's `attachment` field, as a peer may have written it without validation.
pub fn attachment_ref(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut fields = serde_json::Map::new();
    fields.insert("attachment".into(), value);
    let Some(a) = attachment::of_fields(&fields) else {
        return;
    };
    a.validate().expect("an attachment reference in use is valid");
    assert!(a.chunks() >= 1);
    assert!(a.sealed_size() >= a.size);
    fields.insert(
        "attachment".into(),
        serde_json::to_value(&a).expect("a reference encodes"),
    );
    assert_eq!(
        attachment::of_fields(&fields),
        Some(a),
        "a reference changed through JSON"
    );
}
