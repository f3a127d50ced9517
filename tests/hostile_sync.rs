//! A hostile peer speaking the sync protocol by hand against a real device endpoint on
//! 127.0.0.1: forged, unauthorised and malformed input must be refused, must leave the record
//! untouched, and must not stop the device from serving its legitimate peers.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::wire::{dial, hang_up, hear, say};
use phr::access::{Credential, Statement};
use phr::automerge::ChangeHash;
use phr::change::SignedChange;
use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::exchange::{Batch, Received};
use phr::identity::{DeviceCert, change_signing_message};
use phr::record::EntryView;
use phr::sync::net::{NetConfig, Service};
use phr::sync::pair::{self, PairTicket};
use phr::sync::wire::{self, Hello, Msg, RecordHello};
use phr::sync::{Replica, SessionOptions};
use phr::verify::HeadSig;
use phr::{Device, InitOptions, KeyPair, Record, RecordId, Section};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};

fn fast() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

fn fields(section: Section, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    parse_fields(section, &args).unwrap()
}

fn med(name: &str) -> Map<String, Value> {
    fields(Section::Medications, &[("name", name), ("dose", "10 mg")])
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A device running its endpoint, as the patient's phone or laptop would.
struct Phone {
    _dir: tempfile::TempDir,
    service: Service,
}

impl Phone {
    fn replica(&self) -> &Arc<Replica> {
        self.service.replica()
    }
    fn record_id(&self) -> RecordId {
        self.replica().record_id()
    }
    fn add(&self, section: Section, f: Map<String, Value>) -> String {
        self.replica().write(|r| r.add(section, f)).unwrap()
    }
    fn heads(&self, section: Section) -> Vec<ChangeHash> {
        let mut h = self.replica().lock().record_mut().heads(section);
        h.sort();
        h
    }
    /// Heads of the patient's sections; the audit log is left out, as it grows by design
    /// when a change is refused (see `audit_mentions`).
    fn all_heads(&self) -> Vec<Vec<ChangeHash>> {
        Section::ALL.iter().map(|s| self.heads(*s)).collect()
    }
    /// Whether the audit log holds an event of `kind` whose text contains `text`.
    #[allow(dead_code)]
    fn audit_mentions(&self, kind: &str, text: &str) -> bool {
        self.list(Section::Audit).iter().any(|e| {
            e.fields.get("kind").and_then(Value::as_str) == Some(kind)
                && e.fields
                    .get("detail")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.contains(text))
        })
    }
    fn list(&self, section: Section) -> Vec<EntryView> {
        self.replica().lock().record().list(section).unwrap()
    }
    fn has(&self, section: Section, hash: &[u8; 32]) -> bool {
        self.replica().lock().record_mut().has_change(section, hash)
    }
    /// A record in memory holding exactly this device's content, written by `author`: the
    /// hostile client's workbench for building real changes on top of the device's state.
    fn fork_as(&self, author: KeyPair) -> Record {
        let mut device = self.replica().lock();
        let docs = Section::SYNCED
            .iter()
            .map(|s| (*s, device.record_mut().doc(*s).fork()))
            .collect();
        Record::from_docs(device.record().id(), author, docs)
    }
    /// Certify a key with the root key held by this device, as pairing would.
    fn certify(&self, key: &KeyPair, name: &str) -> DeviceCert {
        let mut device = self.replica().lock();
        let root = device.root().expect("the first device holds the root key").clone();
        let cert = DeviceCert::issue(&root, key.public(), name, now());
        device.merge_statements(vec![Statement::Device(cert.clone())]).unwrap();
        cert
    }
}

async fn first_device() -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::init(
        dir.path(),
        "pw",
        InitOptions {
            name: "Mia Lopez".into(),
            dob: Some("2017-04-12".into()),
            device_name: "phone".into(),
            kdf: fast(),
        },
    )
    .unwrap();
    let service = Service::start(Replica::new(device), NetConfig::local()).await.unwrap();
    let phone = Phone { _dir: dir, service };
    phone.add(Section::Medications, med("Amoxicillin"));
    phone.add(
        Section::Labs,
        fields(
            Section::Labs,
            &[("test", "Ferritin"), ("value", "30"), ("date", "2024-01-02")],
        ),
    );
    phone
}

/// Pair a device with `issuer` by ticket, without starting its endpoint; its content is
/// copied from the issuer in process so its changes build on the issuer's state.
async fn paired_member(issuer: &Phone, name: &str) -> (tempfile::TempDir, Device) {
    let ticket = issuer
        .service
        .pairing()
        .issue(issuer.service.addr(), Duration::from_secs(60))
        .unwrap();
    let key = KeyPair::generate();
    let (cert, statements) = pair::join(&ticket, &key, name, &NetConfig::local()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::create_member(dir.path(), "pw", key, cert, statements, fast()).unwrap();
    let mut a = issuer.replica().lock();
    for (section, clock) in device.clocks() {
        if let Some(batch) = a.outgoing(section, &phr::exchange::from_wire(&clock)).unwrap() {
            let got = device.incoming(batch).unwrap();
            assert!(got.rejected.is_empty(), "{:?}", got.rejected);
        }
    }
    drop(a);
    (dir, device)
}

/// Pair a device with `issuer` and run its endpoint (the ordinary way, as in tests/sync.rs).
async fn paired_phone(issuer: &Phone, name: &str) -> Phone {
    let ticket = issuer
        .service
        .pairing()
        .issue(issuer.service.addr(), Duration::from_secs(60))
        .unwrap();
    let ticket = PairTicket::parse(&ticket.to_text()).unwrap();
    let key = KeyPair::generate();
    let (cert, statements) = pair::join(&ticket, &key, name, &NetConfig::local()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::create_member(dir.path(), "pw", key, cert, statements, fast()).unwrap();
    let service = Service::start(Replica::new(device), NetConfig::local()).await.unwrap();
    let report = service
        .sync_once(issuer.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert!(report.applied() > 0, "the new device receives the record");
    Phone { _dir: dir, service }
}

fn hello(record: RecordId, cert: DeviceCert, clocks: Vec<(Section, phr::exchange::WireClock)>) -> Msg {
    Msg::Hello(Hello {
        version: wire::VERSION,
        records: vec![RecordHello {
            record,
            credential: Credential::Device(cert),
            clocks,
        }],
        refused: Vec::new(),
        live: false,
        addrs: Vec::new(),
    })
}

/// Say hello as a certified device whose clocks are the device's own (so it sends nothing
/// back but membership), and expect a hello in return.
async fn greet<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(w: &mut W, r: &mut R, member: &mut Device) {
    let (record, cert, clocks) = (
        member.record().id(),
        member.cert().cloned().expect("a member device"),
        member.clocks(),
    );
    say(w, hello(record, cert, clocks)).await;
    match hear(r).await.unwrap() {
        Msg::Hello(h) => assert_eq!(h.records.len(), 1, "the device accepts to sync its record"),
        other => panic!("expected hello, got {other:?}"),
    }
}

/// Send one batch and report that we are caught up; return the device's receipt for it.
async fn push<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(w: &mut W, r: &mut R, batch: Batch) -> Received {
    say(w, Msg::Batch(batch)).await;
    say(w, Msg::CaughtUp).await;
    loop {
        match hear(r).await {
            Ok(Msg::Ack { received, .. }) => return received,
            Ok(Msg::Refused { reason }) => panic!("the device refused the session: {reason}"),
            Ok(Msg::Access { .. } | Msg::CaughtUp | Msg::Batch(_) | Msg::BatchPart { .. }) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("the device hung up before acknowledging: {e}"),
        }
    }
}

/// Read until the device closes the stream or refuses; returns the refusal reason, if any.
async fn until_closed<R: AsyncRead + Unpin>(r: &mut R) -> Option<String> {
    loop {
        match hear(r).await {
            Ok(Msg::Refused { reason }) => return Some(reason),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

fn decode(changes: &[SignedChange]) -> Vec<phr::automerge::Change> {
    changes.iter().map(|c| c.decode().unwrap()).collect()
}

fn batch_of(record: RecordId, section: Section, changes: &[SignedChange]) -> Batch {
    Batch::from_local(record, section, changes).unwrap()
}

fn sig_by(key: &KeyPair, record: &RecordId, section: Section, hash: [u8; 32]) -> HeadSig {
    HeadSig {
        hash,
        sig: key.sign(&change_signing_message(record, section, &hash)),
    }
}

/// How the device words a change whose author holds no certificate (nor any grant).
const NO_ACCESS: &str = "holds no access to this record";

fn assert_rejected(got: &Received, n: usize, why: &str) {
    assert_eq!(got.applied, 0, "nothing applied: {got:?}");
    assert_eq!(got.rejected.len(), n, "{:?}", got.rejected);
    assert!(
        got.rejected.iter().all(|r| r.contains(why)),
        "expected `{why}` in {:?}",
        got.rejected
    );
    assert!(got.forward.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_with_a_bad_signature_is_rejected_and_the_record_is_unchanged() {
    let a = first_device().await;
    let (_b_dir, mut b) = paired_member(&a, "laptop").await;
    let record = a.record_id();
    let section = Section::Medications;

    // A genuine change by B, written on B's device and signed there...
    b.write(|r| r.add(section, med("Ibuprofen"))).unwrap();
    let written = b.take_written();
    assert_eq!(written.len(), 1);
    let genuine = batch_of(record, section, &written);
    // ...whose signature is damaged in transit.
    let mut forged = genuine.clone();
    forged.head_sigs[0].sig[10] ^= 0x01;

    let heads = a.heads(section);
    let list = a.list(section);
    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    let got = push(&mut send, &mut recv, forged).await;
    assert_rejected(&got, 1, "does not verify");
    assert!(got.rejected[0].starts_with("medications change "), "{:?}", got.rejected);
    assert_eq!(until_closed(&mut recv).await, None, "the session itself ends normally");
    hang_up!(endpoint, conn);
    assert_eq!(a.heads(section), heads, "heads unchanged");
    assert_eq!(a.list(section), list, "content unchanged");
    assert!(!a.has(section, &written[0].hash));

    // The rejection left nothing behind: the same change with its real signature gets in.
    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    let got = push(&mut send, &mut recv, genuine).await;
    assert_eq!((got.applied, got.rejected.len()), (1, 0), "{got:?}");
    hang_up!(endpoint, conn);
    assert!(a.has(section, &written[0].hash));
    assert_eq!(a.list(section).len(), list.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_an_uncertified_key_is_rejected() {
    let a = first_device().await;
    let (_b_dir, mut b) = paired_member(&a, "laptop").await;
    let record = a.record_id();
    let section = Section::Labs;

    // X was never certified; its change is well formed and properly signed by X.
    let x = KeyPair::generate();
    let mut xr = a.fork_as(x.clone());
    xr.add(
        section,
        fields(section, &[("test", "Iron"), ("value", "5"), ("date", "2024-02-02")]),
    )
    .unwrap();
    let changes = xr.take_pending();
    assert_eq!(changes.len(), 1);
    let batch = batch_of(record, section, &changes);
    assert_eq!(
        batch.head_sigs[0],
        sig_by(&x, &record, section, changes[0].hash),
        "signed by X"
    );

    let heads = a.all_heads();
    let list = a.list(section);
    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    let got = push(&mut send, &mut recv, batch).await;
    assert_rejected(&got, 1, NO_ACCESS);
    hang_up!(endpoint, conn);
    assert_eq!(a.all_heads(), heads);
    assert_eq!(a.list(section), list);
    assert!(a.replica().lock().access().cert(&x.public()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_actor_differs_from_its_signer_is_rejected() {
    let a = first_device().await;
    let (_b_dir, mut b) = paired_member(&a, "laptop").await;
    let record = a.record_id();
    let section = Section::Medications;
    let heads = a.all_heads();
    let list = a.list(section);

    // B puts words in the mouth of another certified device, C: the actor is C, the
    // signature B's own.
    let c = KeyPair::generate();
    a.certify(&c, "tablet");
    let mut cr = a.fork_as(c.clone());
    cr.add(section, med("Codeine")).unwrap();
    let changes = cr.take_pending();
    let mut as_c = batch_of(record, section, &changes);
    as_c.head_sigs = vec![sig_by(b.key(), &record, section, changes[0].hash)];

    // And an uncertified X's change signed by B.
    let x = KeyPair::generate();
    let mut xr = a.fork_as(x);
    xr.add(section, med("Morphine")).unwrap();
    let x_changes = xr.take_pending();
    let mut as_x = batch_of(record, section, &x_changes);
    as_x.head_sigs = vec![sig_by(b.key(), &record, section, x_changes[0].hash)];

    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    say(&mut send, Msg::Batch(as_c)).await;
    // Receipts come back in the order the batches were sent.
    let for_c = push(&mut send, &mut recv, as_x).await;
    let for_x = loop {
        if let Msg::Ack { received, .. } = hear(&mut recv).await.unwrap() {
            break received;
        }
    };
    assert_rejected(&for_c, 1, "does not verify");
    assert!(for_c.rejected[0].contains(&c.public().short()), "{:?}", for_c.rejected);
    assert_rejected(&for_x, 1, NO_ACCESS);
    hang_up!(endpoint, conn);
    assert_eq!(a.all_heads(), heads);
    assert_eq!(a.list(section), list);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_depending_on_a_rejected_change_is_rejected_too() {
    let a = first_device().await;
    let (_b_dir, mut b) = paired_member(&a, "laptop").await;
    let record = a.record_id();
    let section = Section::Medications;
    let heads = a.all_heads();
    let list = a.list(section);

    // Two chained changes by the uncertified X...
    let x = KeyPair::generate();
    let mut xr = a.fork_as(x.clone());
    xr.add(section, med("Oxycodone")).unwrap();
    xr.add(section, med("Fentanyl")).unwrap();
    let x_changes = xr.take_pending();
    assert_eq!(x_changes.len(), 2);
    // ...and a genuine, properly signed change by B that builds on them.
    let mut br = a.fork_as(b.key().clone());
    br.apply_verified(section, decode(&x_changes)).unwrap();
    br.add(section, med("Ibuprofen")).unwrap();
    let b_changes = br.take_pending();
    assert_eq!(b_changes.len(), 1);
    let b_change = b_changes[0].decode().unwrap();
    assert_eq!(
        b_change.deps().to_vec(),
        vec![ChangeHash(x_changes[1].hash)],
        "B's change depends on X's"
    );

    let mut all = x_changes.clone();
    all.extend(b_changes.iter().cloned());
    let mut batch = batch_of(record, section, &all);
    batch.head_sigs = vec![
        sig_by(&x, &record, section, x_changes[1].hash),
        sig_by(b.key(), &record, section, b_changes[0].hash),
    ];

    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    let got = push(&mut send, &mut recv, batch).await;
    assert_eq!(got.applied, 0, "{got:?}");
    assert_eq!(got.rejected.len(), 3, "{:?}", got.rejected);
    let about = |hash: &[u8; 32]| {
        let tag = format!("change {}", hex(&hash[..6]));
        got.rejected
            .iter()
            .find(|r| r.contains(&tag))
            .cloned()
            .unwrap_or_default()
    };
    assert!(about(&x_changes[0].hash).contains(NO_ACCESS), "{:?}", got.rejected);
    assert!(about(&x_changes[1].hash).contains(NO_ACCESS), "{:?}", got.rejected);
    assert!(
        about(&b_changes[0].hash).contains("depends on a rejected change"),
        "{:?}",
        got.rejected
    );
    hang_up!(endpoint, conn);

    // B's change alone: its dependency is nowhere to be found.
    let (endpoint, conn, mut send, mut recv) = dial!(b.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut b).await;
    let got = push(&mut send, &mut recv, batch_of(record, section, &b_changes)).await;
    assert_rejected(&got, 1, "depends on a change this device does not have");
    hang_up!(endpoint, conn);

    assert_eq!(a.all_heads(), heads);
    assert_eq!(a.list(section), list);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertified_device_cannot_connect() {
    let a = first_device().await;
    let (_b_dir, b) = paired_member(&a, "laptop").await;
    let record = a.record_id();
    let heads = a.all_heads();
    let statements = a.replica().lock().access().len();

    let z = KeyPair::generate();
    let other_root = KeyPair::generate();
    // A certificate from another patient's root...
    let foreign = DeviceCert::issue(&other_root, z.public(), "z", now());
    // ...the same, claiming to be for this record (its signature no longer matches)...
    let mut forged = foreign.clone();
    forged.record = record;
    // ...and B's genuine certificate, presented by someone who is not B.
    let stolen = b.cert().cloned().expect("a member device");
    let attempts = [
        (foreign, "not for this device and record"),
        (forged, "forged"),
        (stolen, "not for this device and record"),
    ];

    let mut zr = a.fork_as(z.clone());
    zr.add(Section::Medications, med("Codeine")).unwrap();
    let batch = batch_of(record, Section::Medications, &zr.take_pending());
    let clocks = a.replica().lock().clocks();
    for (cert, why) in attempts {
        let (endpoint, conn, mut send, mut recv) = dial!(&z, a.service.addr());
        say(&mut send, hello(record, cert, clocks.clone())).await;
        // It does not wait to be let in before pushing its changes.
        say(&mut send, Msg::Batch(batch.clone())).await;
        say(&mut send, Msg::CaughtUp).await;
        match hear(&mut recv).await {
            Ok(Msg::Refused { reason }) => {
                assert!(reason.contains(why), "expected `{why}` in `{reason}`")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(hear(&mut recv).await.is_err(), "nothing follows a refusal");
        hang_up!(endpoint, conn);
    }
    // Nor can it ask for a record the device does not hold.
    let (endpoint, conn, mut send, mut recv) = dial!(&z, a.service.addr());
    let own = DeviceCert::issue(&other_root, z.public(), "z", now());
    say(&mut send, hello(other_root.public(), own, Vec::new())).await;
    match hear(&mut recv).await {
        Ok(Msg::Refused { reason }) => assert!(reason.contains("does not hold record"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    hang_up!(endpoint, conn);

    assert_eq!(a.all_heads(), heads, "nothing applied");
    let device = a.replica().lock();
    assert!(
        device.access().cert(&z.public()).is_none(),
        "no certificate of Z was kept"
    );
    assert_eq!(device.access().len(), statements);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_is_refused() {
    let a = first_device().await;
    let b = paired_phone(&a, "laptop").await;
    let b_pub = b.replica().device_id();
    let removal = a.replica().lock().remove_device(&b_pub).unwrap();
    assert_eq!(removal.device, b_pub);

    b.add(Section::Medications, med("Codeine"));
    let count = a.list(Section::Medications).len();
    let heads = a.all_heads();
    let err = b
        .service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("removed"), "{err}");
    assert_eq!(a.list(Section::Medications).len(), count);
    assert_eq!(a.all_heads(), heads);

    // Dialing by hand with its still-valid certificate changes nothing.
    let b_key = b.replica().lock().key().clone();
    let (endpoint, conn, mut send, mut recv) = dial!(&b_key, a.service.addr());
    let (record, cert) = (
        a.record_id(),
        b.replica().lock().cert().cloned().expect("a member device"),
    );
    say(&mut send, hello(record, cert, Vec::new())).await;
    // The refusal comes after the record's withdrawals, so the removed device learns why.
    loop {
        match hear(&mut recv).await {
            Ok(Msg::Access { statements, .. }) => assert!(!statements.is_empty()),
            Ok(Msg::Refused { reason }) => {
                assert!(reason.contains("removed"), "{reason}");
                break;
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    hang_up!(endpoint, conn);
    assert_eq!(a.all_heads(), heads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_learned_from_a_third_device_cuts_off_the_removed_device() {
    let a = first_device().await;
    let b = paired_phone(&a, "laptop").await;
    let c = paired_phone(&a, "tablet").await;
    let b_pub = b.replica().device_id();

    // Something B wrote before its removal stays part of the record.
    let kept = b.add(Section::Medications, med("Ibuprofen"));
    b.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    a.replica().lock().remove_device(&b_pub).unwrap();

    // C learns the removal (and B's earlier change) from A.
    c.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert!(
        c.replica().lock().access().removal(&b_pub).is_some(),
        "C knows B was removed"
    );
    assert!(!c.replica().lock().access().is_member(&b_pub));
    assert!(
        c.list(Section::Medications).iter().any(|e| e.id == kept),
        "B's earlier change stays valid"
    );

    // B, unaware, writes on and tries C.
    b.add(Section::Medications, med("Codeine"));
    let written = b.replica().lock().record_mut().heads(Section::Medications);
    // Keep B's genuine signed change: B drops it itself once it learns of its removal.
    let section = Section::Medications;
    let relayed = {
        let mut device = b.replica().lock();
        let record = device.record().id();
        let key = device.key().clone();
        let doc = device.record_mut().doc(section);
        let mut change = doc
            .get_changes(&[])
            .into_iter()
            .filter(|c| c.actor_id().to_bytes() == b_pub.0.as_slice())
            .max_by_key(|c| c.seq())
            .unwrap();
        assert_eq!(change.seq(), 2, "B's change after its cutoff");
        let hash = change.hash().0;
        SignedChange {
            section,
            hash,
            bytes: change.bytes().into_owned(),
            signature: sig_by(&key, &record, section, hash).sig,
        }
    };
    let count = c.list(Section::Medications).len();
    let err = b
        .service
        .sync_once(c.service.addr(), SessionOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("removed"), "{err}");
    assert_eq!(c.list(Section::Medications).len(), count);
    for h in written {
        assert!(!c.has(Section::Medications, &h.0), "C never got B's new change");
    }
    // C and A still agree.
    c.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(c.all_heads(), a.all_heads());

    // Nor does B's new change slip in through a device in good standing: relayed by a
    // certified device, with B's genuine signature, it falls after B's cutoff.
    let relay = KeyPair::generate();
    let cert = a.certify(&relay, "relay");
    let clocks = a.replica().lock().clocks();
    let heads = a.all_heads();
    let (endpoint, conn, mut send, mut recv) = dial!(&relay, a.service.addr());
    say(&mut send, hello(a.record_id(), cert, clocks)).await;
    assert!(matches!(hear(&mut recv).await, Ok(Msg::Hello(_))));
    let got = push(
        &mut send,
        &mut recv,
        batch_of(a.record_id(), section, std::slice::from_ref(&relayed)),
    )
    .await;
    assert_rejected(&got, 1, "was removed from the record");
    hang_up!(endpoint, conn);
    assert_eq!(a.all_heads(), heads);
    assert!(!a.has(section, &relayed.hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_tickets_are_one_time_and_expire_and_cannot_be_forged() {
    let a = first_device().await;
    let cfg = NetConfig::local();
    let issue = |ttl: u64| {
        a.service
            .pairing()
            .issue(a.service.addr(), Duration::from_secs(ttl))
            .unwrap()
    };

    // One use only.
    let ticket = issue(60);
    pair::join(&ticket, &KeyPair::generate(), "laptop", &cfg).await.unwrap();
    let err = pair::join(&ticket, &KeyPair::generate(), "thief", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already used"), "{err}");

    // A guessed or altered secret proves nothing.
    let mut altered = issue(60);
    altered.secret[0] ^= 0x80;
    let err = pair::join(&altered, &KeyPair::generate(), "thief", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not one this device issued"), "{err}");
    let mut invented = altered.clone();
    invented.secret = [7; 16];
    let err = pair::join(&invented, &KeyPair::generate(), "thief", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not one this device issued"), "{err}");

    // Expiry: the joiner notices by itself...
    let short = issue(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = pair::join(&short, &KeyPair::generate(), "late", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");
    // ...and the issuer checks its own copy, whatever the joiner's copy claims (the expiry
    // is not covered by the proof, so only the issuer's record of it counts).
    let mut extended = short.clone();
    extended.expires = now() + 3600;
    let err = pair::join(&extended, &KeyPair::generate(), "late", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");

    // Nobody was certified by any of the refused attempts.
    assert_eq!(
        a.replica().lock().access().devices().len(),
        2,
        "the first device and the laptop"
    );

    // Text that is not a ticket says so.
    let err = PairTicket::parse("hello there").unwrap_err().to_string();
    assert!(err.contains("not a phr pairing ticket"), "{err}");
    let err = PairTicket::parse("PHRPAIR1!!!!").unwrap_err().to_string();
    assert!(err.contains("damaged"), "{err}");
    let text = issue(60).to_text();
    let err = PairTicket::parse(&text[..text.len() - 10]).unwrap_err().to_string();
    assert!(err.contains("damaged"), "{err}");
    // Case and surrounding whitespace do not matter.
    let lower = format!("  PHRPAIR1{}\n", text["PHRPAIR1".len()..].to_ascii_lowercase());
    assert_eq!(PairTicket::parse(&lower).unwrap(), PairTicket::parse(&text).unwrap());

    // Only a device holding the root key hands out tickets.
    let b = paired_phone(&a, "phone 2").await;
    let err = b
        .service
        .pairing()
        .issue(b.service.addr(), Duration::from_secs(60))
        .unwrap_err()
        .to_string();
    assert!(err.contains("root key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_frames_disconnect_the_peer_but_the_service_keeps_serving() {
    let a = first_device().await;
    let (_m_dir, mut m) = paired_member(&a, "mallory's laptop").await;
    let heads = a.all_heads();

    // A frame header announcing 100 MB after a proper hello.
    let (endpoint, conn, mut send, mut recv) = dial!(m.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut m).await;
    send.write_all(&(100u32 * 1024 * 1024).to_be_bytes()).await.unwrap();
    send.write_all(&[0u8; 1024]).await.unwrap();
    let reason = until_closed(&mut recv).await.expect("the device says why it hangs up");
    assert!(reason.contains("byte limit"), "{reason}");
    hang_up!(endpoint, conn);

    // A well-sized frame of garbage after a proper hello.
    let (endpoint, conn, mut send, mut recv) = dial!(m.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut m).await;
    send.write_all(&16u32.to_be_bytes()).await.unwrap();
    send.write_all(&[0xff; 16]).await.unwrap();
    let reason = until_closed(&mut recv).await.expect("the device says why it hangs up");
    assert!(reason.contains("malformed"), "{reason}");
    hang_up!(endpoint, conn);

    // Plain garbage instead of a hello.
    let (endpoint, conn, mut send, mut recv) = dial!(m.key(), a.service.addr());
    send.write_all(b"GET / HTTP/1.1\r\nHost: phone\r\n\r\n").await.unwrap();
    let _ = send.finish();
    assert!(
        !matches!(hear(&mut recv).await, Ok(Msg::Hello(_))),
        "no hello for garbage"
    );
    hang_up!(endpoint, conn);

    // A frame cut short: the peer leaves mid-message.
    let (endpoint, conn, mut send, mut recv) = dial!(m.key(), a.service.addr());
    greet(&mut send, &mut recv, &mut m).await;
    send.write_all(&64u32.to_be_bytes()).await.unwrap();
    send.write_all(&[1u8; 10]).await.unwrap();
    let _ = send.finish();
    let reason = until_closed(&mut recv).await.expect("the device says why it hangs up");
    assert!(reason.contains("cut short"), "{reason}");
    hang_up!(endpoint, conn);

    assert_eq!(a.all_heads(), heads, "nothing applied");

    // The device still serves: a legitimate device syncs both ways.
    let b = paired_phone(&a, "laptop").await;
    b.add(
        Section::Labs,
        fields(
            Section::Labs,
            &[("test", "Iron"), ("value", "5"), ("date", "2024-02-02")],
        ),
    );
    a.add(Section::Medications, med("Ibuprofen"));
    let report = b
        .service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rejected(), 0);
    assert!(report.rejected_by_peer.is_empty(), "{:?}", report.rejected_by_peer);
    assert_eq!(b.all_heads(), a.all_heads());
    assert_eq!(b.list(Section::Labs), a.list(Section::Labs));
}
