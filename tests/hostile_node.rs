//! Hostile peers against a real `phr-node` process on 127.0.0.1: a hand-written wire client
//! (as in tests/hostile_sync.rs) sends oversized, truncated and garbage frames, replays a
//! valid batch, writes sections and records it may not touch, presents forged and expired
//! capabilities, and floods the node with connections, while the patient's device keeps
//! syncing honestly. The node must stay up (`/health` 200), apply nothing of it (its counters
//! and what the honest device receives from it say so), and log every attempt.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::time::{Duration, Instant};

use common::wire::{dial, hang_up, hear, say};
use phr::access::{Credential, Statement};
use phr::capability::{Capability, Grant, Preset};
use phr::change::SignedChange;
use phr::exchange::{Batch, Received, WireClock};
use phr::identity::DeviceCert;
use phr::sync::clinic::{self as clinic_connect, CLINIC_ALPN, ClinicTicket};
use phr::sync::net::{MAX_PENDING_SESSIONS, MAX_SESSIONS_PER_PEER, NetConfig, SYNC_ALPN, bind, connect, parse_addr};
use phr::sync::wire::{self, Hello, Msg, RecordHello, read_msg, write_msg};
use phr::sync::{Replica, SessionOptions};
use phr::{KeyPair, Record, RecordId, Section};
use tokio::io::{AsyncRead, AsyncWrite};

use common::devices::{Phone, fields, first_device};
use common::processes::Node;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The clinic's node, the patient's phone (holding the root key) connected to it, and a
/// second patient's record on the same node.
struct Scene {
    node: Node,
    phone: Phone,
    record: RecordId,
    other: Phone,
    addr: iroh::EndpointAddr,
}

async fn connect_to_node(node: &Node, phone: &Phone) {
    let ticket = ClinicTicket::parse(&node.invite()).expect("the node's invitation parses");
    let name = clinic_connect::connect(phone.service.endpoint(), phone.replica(), &ticket, &NetConfig::local())
        .await
        .unwrap_or_else(|e| node.fail(format!("clinic connect: {e}")))
        .clinic;
    assert_eq!(name, common::processes::CLINIC);
    honest_sync(node, phone).await;
}

/// The phone syncs with the node; it must succeed with nothing refused either way.
async fn honest_sync(node: &Node, phone: &Phone) -> phr::sync::SessionReport {
    let addr = parse_addr(&node.sync).expect("the node's address");
    let report = phone
        .service
        .sync_once(addr, SessionOptions::default())
        .await
        .unwrap_or_else(|e| node.fail(format!("the honest phone could not sync: {e}")));
    assert_eq!(report.rejected(), 0, "{report:?}");
    assert!(report.rejected_by_peer.is_empty(), "{report:?}");
    report
}

async fn scene() -> Scene {
    let node = Node::start_new();
    let phone = first_device().await;
    phone.add(
        Section::Messages,
        &[("thread", "Homework"), ("body", "Hello from Mia's phone")],
    );
    phone.add(Section::Insurance, &[("payer", "Blue Shield"), ("member-id", "XYZ123")]);
    connect_to_node(&node, &phone).await;
    let other = first_device().await;
    connect_to_node(&node, &other).await;
    let record = phone.replica().record_id();
    let addr = parse_addr(&node.sync).expect("the node's address");
    Scene {
        node,
        phone,
        record,
        other,
        addr,
    }
}

/// Certify `key` as a device of the phone's record (as pairing would).
fn certify(phone: &Phone, key: &KeyPair, name: &str) -> DeviceCert {
    let mut device = phone.replica().lock();
    let root = device.root().expect("the first device holds the root key").clone();
    let cert = DeviceCert::issue(&root, key.public(), name, now());
    device
        .merge_statements(vec![Statement::Device(cert.clone())])
        .expect("merging");
    cert
}

/// Grant `key` the caregiver preset from the phone, valid until `expires`.
fn caregiver(phone: &Phone, key: &KeyPair, label: &str, expires: Option<i64>) -> Capability {
    phone
        .replica()
        .lock()
        .grant(Grant {
            audience: key.public(),
            label: label.into(),
            scope: Preset::Caregiver.scope(),
            delegate: false,
            not_before: now() - 60,
            expires,
        })
        .expect("granting")
}

/// A record in memory holding exactly the phone's content, written by `author`.
fn fork_as(replica: &Replica, author: KeyPair) -> Record {
    let mut device = replica.lock();
    let docs = Section::SYNCED
        .iter()
        .map(|s| (*s, device.record_mut().doc(*s).fork()))
        .collect();
    Record::from_docs(device.record().id(), author, docs)
}

/// One new entry by `author` in `section`, built on the phone's state: its signed changes.
fn change_by(phone: &Phone, author: &KeyPair, section: Section, pairs: &[(&str, &str)]) -> Vec<SignedChange> {
    let mut r = fork_as(phone.replica(), author.clone());
    r.add(section, fields(section, pairs)).expect("a valid entry");
    r.take_pending()
}

fn batch_of(record: RecordId, section: Section, changes: &[SignedChange]) -> Batch {
    Batch::from_local(record, section, changes).expect("a batch")
}

fn hello(record: RecordId, credential: Credential, clocks: Vec<(Section, WireClock)>) -> Msg {
    Msg::Hello(Hello {
        version: wire::VERSION,
        records: vec![RecordHello {
            record,
            credential,
            clocks,
        }],
        refused: Vec::new(),
        live: false,
        addrs: Vec::new(),
    })
}

/// Say hello with the phone's clocks (so the node has nothing to send but membership) and
/// expect the node's hello.
async fn greet<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(w: &mut W, r: &mut R, phone: &Phone, cred: Credential) {
    let clocks = phone.replica().lock().clocks();
    say(w, hello(phone.replica().record_id(), cred, clocks)).await;
    match hear(r).await {
        Ok(Msg::Hello(h)) => assert_eq!(h.records.len(), 1, "the node admits the record"),
        other => panic!("expected hello, got {other:?}"),
    }
}

/// Send a batch (without ending our side); return the node's receipt for it.
async fn push<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(w: &mut W, r: &mut R, batch: Batch) -> Received {
    say(w, Msg::Batch(batch)).await;
    loop {
        match hear(r).await {
            Ok(Msg::Ack { received, .. }) => return received,
            Ok(Msg::Refused { reason }) => panic!("the node refused the session: {reason}"),
            Ok(_) => {}
            Err(e) => panic!("the node hung up before acknowledging: {e}"),
        }
    }
}

/// Read until the node closes the stream or refuses; the refusal's reason, if any.
async fn until_closed<R: AsyncRead + Unpin>(r: &mut R) -> Option<String> {
    loop {
        match hear(r).await {
            Ok(Msg::Refused { reason }) => return Some(reason),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// The node's log must hold a line naming `peer` (its short key) and containing `what`.
#[track_caller]
fn assert_logged(node: &Node, peer: &KeyPair, what: &str) {
    let short = peer.public().short();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let log = node.log();
        if log.lines().any(|l| l.contains(&short) && l.contains(what)) {
            return;
        }
        if Instant::now() > until {
            node.fail(format!("no log line names {short} with `{what}`"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node's log must hold a line containing `what`.
#[track_caller]
fn assert_logged_any(node: &Node, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !node.log().contains(what) {
        if Instant::now() > until {
            node.fail(format!("no log line says `{what}`"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replayed_and_unauthorised_input_is_refused_logged_and_never_applied() {
    let mut s = scene().await;
    let (node, phone, record) = (&s.node, &s.phone, s.record);

    // Mallory holds a genuine device certificate: the worst case, a stolen or rogue device.
    let mallory = KeyPair::generate();
    let cert = Credential::Device(certify(phone, &mallory, "mallory's laptop"));
    honest_sync(node, phone).await;

    // --- Replay: a valid batch is applied once; sent again, in the same session or a new
    // one, it is recognised as held and dropped.
    let received = node.metric("phr_changes_received_total");
    let valid = batch_of(
        record,
        Section::Messages,
        &change_by(
            phone,
            &mallory,
            Section::Messages,
            &[("thread", "Homework"), ("body", "once")],
        ),
    );
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    let got = push(&mut send, &mut recv, valid.clone()).await;
    assert_eq!((got.applied, got.duplicates, got.rejected.len()), (1, 0, 0), "{got:?}");
    let got = push(&mut send, &mut recv, valid.clone()).await;
    assert_eq!(
        (got.applied, got.duplicates),
        (0, 1),
        "replayed in the same session: {got:?}"
    );
    // A replayed hello ends the session.
    let clocks = phone.replica().lock().clocks();
    say(&mut send, hello(record, cert.clone(), clocks)).await;
    say(&mut send, Msg::CaughtUp).await;
    until_closed(&mut recv).await;
    hang_up!(endpoint, conn);
    // The phone takes the one valid change (so the node has nothing to send the next
    // hostile sessions, which greet with the phone's clocks and never acknowledge anything).
    let report = honest_sync(node, phone).await;
    assert_eq!(report.applied(), 1, "{report:?}");
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    let got = push(&mut send, &mut recv, valid.clone()).await;
    assert_eq!(
        (got.applied, got.duplicates),
        (0, 1),
        "replayed in a new session: {got:?}"
    );
    say(&mut send, Msg::CaughtUp).await;
    assert_eq!(until_closed(&mut recv).await, None);
    hang_up!(endpoint, conn);
    assert_logged(node, &mallory, "said hello twice");
    assert_logged(node, &mallory, "duplicates=1");
    assert_eq!(
        node.metric("phr_changes_received_total"),
        received + 1.0,
        "applied once, never twice"
    );
    // From here on, nothing may change on the node.
    let report = honest_sync(node, phone).await;
    assert_eq!(report.applied(), 0, "{report:?}");
    let received = node.metric("phr_changes_received_total");
    let rejected = node.metric("phr_changes_rejected_total");

    // --- Broken framing: each ends the hostile session with the reason, and is logged.
    let attempts: [(&str, Vec<u8>, &str); 3] = [
        (
            "oversized",
            [&(100u32 * 1024 * 1024).to_be_bytes()[..], &[0u8; 1024]].concat(),
            "byte limit",
        ),
        ("garbage", [&16u32.to_be_bytes()[..], &[0xff; 16]].concat(), "malformed"),
        (
            "truncated",
            [&64u32.to_be_bytes()[..], &[1u8; 10]].concat(),
            "cut short",
        ),
    ];
    for (what, bytes, why) in attempts {
        let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
        greet(&mut send, &mut recv, phone, cert.clone()).await;
        send.write_all(&bytes).await.unwrap();
        if what == "truncated" {
            let _ = send.finish();
        }
        let reason = until_closed(&mut recv).await.unwrap_or_default();
        assert!(reason.contains(why), "{what}: `{reason}`");
        hang_up!(endpoint, conn);
        assert_logged(node, &mallory, why);
    }
    // Garbage instead of a hello.
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    send.write_all(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n").await.unwrap();
    let _ = send.finish();
    assert!(
        !matches!(hear(&mut recv).await, Ok(Msg::Hello(_))),
        "no hello for garbage"
    );
    hang_up!(endpoint, conn);
    assert_logged(node, &mallory, "sync session failed");
    assert!(node.alive(), "the node survived broken framing");

    // --- Records it may not touch: a hello for a record the node does not host, and a batch
    // of the other patient's record inside a session for this one.
    let stranger_root = KeyPair::generate();
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    let own = DeviceCert::issue(&stranger_root, mallory.public(), "m", now());
    say(
        &mut send,
        hello(stranger_root.public(), Credential::Device(own), Vec::new()),
    )
    .await;
    let reason = until_closed(&mut recv).await.unwrap_or_default();
    assert!(reason.contains("does not hold record"), "{reason}");
    hang_up!(endpoint, conn);
    assert_logged(node, &mallory, "does not hold record");
    let other_record = s.other.replica().record_id();
    let foreign = batch_of(
        other_record,
        Section::Messages,
        &change_by(
            &s.other,
            &mallory,
            Section::Messages,
            &[("thread", "x"), ("body", "not yours")],
        ),
    );
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    say(&mut send, Msg::Batch(foreign)).await;
    let reason = until_closed(&mut recv).await.unwrap_or_default();
    assert!(reason.contains("outside this session"), "{reason}");
    hang_up!(endpoint, conn);
    assert_logged(node, &mallory, "outside this session");

    // --- Sections it may not touch. Mallory's certificate lets it write every section, but
    // the node was never granted insurance or the caregivers' log: it must not take them.
    // A caregiver's grant writes the caregivers' log and messages, not notes.
    let carol = KeyPair::generate();
    let carol_cap = caregiver(phone, &carol, "Carol (sitter)", None);
    honest_sync(node, phone).await;
    let insurance = batch_of(
        record,
        Section::Insurance,
        &change_by(
            phone,
            &mallory,
            Section::Insurance,
            &[("payer", "Evil Mutual"), ("member-id", "666")],
        ),
    );
    let log = batch_of(
        record,
        Section::CaregiverLog,
        &change_by(
            phone,
            &mallory,
            Section::CaregiverLog,
            &[("date", "2024-06-01"), ("text", "planted")],
        ),
    );
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    for b in [insurance, log] {
        let section = b.section;
        let got = push(&mut send, &mut recv, b).await;
        assert_eq!(got.applied, 0, "{section}: {got:?}");
        assert!(
            got.rejected.iter().any(|r| r.contains("no right to read")),
            "{section}: {got:?}"
        );
    }
    say(&mut send, Msg::CaughtUp).await;
    until_closed(&mut recv).await;
    hang_up!(endpoint, conn);
    assert_logged_any(node, "no right to read insurance");
    assert_logged_any(node, "no right to read caregiver_log");
    let notes = batch_of(
        record,
        Section::Notes,
        &change_by(
            phone,
            &carol,
            Section::Notes,
            &[
                ("discipline", "speech"),
                ("clinician", "Carol"),
                ("plan", "Skip therapy"),
                ("date", "2024-06-01"),
            ],
        ),
    );
    let carol_cred = Credential::Capability(carol_cap.clone());
    let (endpoint, conn, mut send, mut recv) = dial!(&carol, s.addr);
    greet(&mut send, &mut recv, phone, carol_cred.clone()).await;
    let got = push(&mut send, &mut recv, notes).await;
    assert_eq!(got.applied, 0, "{got:?}");
    assert!(
        got.rejected.iter().any(|r| r.contains("may not write notes")),
        "{got:?}"
    );
    say(&mut send, Msg::CaughtUp).await;
    until_closed(&mut recv).await;
    hang_up!(endpoint, conn);
    assert_logged_any(node, "may not write notes");

    // --- Forged capabilities: rights added after signing, a damaged signature, a grant signed
    // by someone other than the patient.
    let mut widened = carol_cap.clone();
    widened.scope.insert(Section::Insurance, phr::capability::Right::Write);
    let mut damaged = carol_cap.clone();
    damaged.signature[5] ^= 0x20;
    let impostor = KeyPair::generate();
    let mut self_signed = Capability::issue_root(
        &impostor,
        Grant {
            audience: carol.public(),
            label: "Carol (sitter)".into(),
            scope: Preset::Caregiver.scope(),
            delegate: false,
            not_before: now() - 60,
            expires: None,
        },
    )
    .expect("a grant");
    self_signed.record = record;
    for forged in [widened, damaged, self_signed] {
        let (endpoint, conn, mut send, mut recv) = dial!(&carol, s.addr);
        let clocks = phone.replica().lock().clocks();
        say(&mut send, hello(record, Credential::Capability(forged), clocks)).await;
        let reason = until_closed(&mut recv).await.unwrap_or_default();
        assert!(reason.contains("forged"), "{reason}");
        hang_up!(endpoint, conn);
    }
    assert_logged(node, &carol, "forged");

    // --- An expired capability: refused at the door, and a change written under it after it
    // ended is refused even when a member in good standing relays it.
    let dave = KeyPair::generate();
    let dave_cap = caregiver(phone, &dave, "Dave (weekend)", Some(now() + 2));
    honest_sync(node, phone).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (endpoint, conn, mut send, mut recv) = dial!(&dave, s.addr);
    let clocks = phone.replica().lock().clocks();
    say(&mut send, hello(record, Credential::Capability(dave_cap), clocks)).await;
    let reason = until_closed(&mut recv).await.unwrap_or_default();
    assert!(reason.contains("expired"), "{reason}");
    hang_up!(endpoint, conn);
    assert_logged(node, &dave, "expired");
    let late = batch_of(
        record,
        Section::Messages,
        &change_by(
            phone,
            &dave,
            Section::Messages,
            &[("thread", "Homework"), ("body", "too late")],
        ),
    );
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    let got = push(&mut send, &mut recv, late).await;
    assert_eq!(got.applied, 0, "{got:?}");
    assert_eq!(got.rejected.len(), 1, "{got:?}");
    say(&mut send, Msg::CaughtUp).await;
    until_closed(&mut recv).await;
    hang_up!(endpoint, conn);

    // --- The node is up, applied nothing of all that, and still serves the honest phone.
    assert!(s.node.alive(), "the node is still running");
    let node = &s.node;
    assert_eq!(node.health(), 200);
    assert_eq!(
        node.metric("phr_changes_received_total"),
        received,
        "nothing hostile applied"
    );
    assert!(
        node.metric("phr_changes_rejected_total") >= rejected + 4.0,
        "the refused changes are counted"
    );
    phone.add(
        Section::Messages,
        &[("thread", "Homework"), ("body", "after the storm")],
    );
    let report = honest_sync(node, phone).await;
    assert_eq!(
        report.applied(),
        0,
        "the node holds nothing the phone lacks: no hostile change got in: {report:?}"
    );
    assert!(report.sent_total() >= 1, "{report:?}");
    assert_eq!(node.metric("phr_changes_received_total"), received + 1.0);
    let threads = node.get(&format!("/v1/patients/{record}/messages"));
    assert!(threads.to_string().contains("after the storm"), "{threads:#}");
    assert!(!threads.to_string().contains("too late"), "{threads:#}");
    assert!(!threads.to_string().contains("not yours"), "{threads:#}");
    s.node.stop_with("TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_is_bounded_and_honest_devices_keep_syncing() {
    let s = scene().await;
    let (node, phone) = (&s.node, &s.phone);
    let mallory = KeyPair::generate();
    let cert = Credential::Device(certify(phone, &mallory, "mallory's laptop"));
    honest_sync(node, phone).await;
    let record = s.record;

    // 200 connections at once from one key, each saying a valid hello and then holding the
    // session open without ever finishing it.
    const FLOOD: usize = 200;
    let cfg = NetConfig::local();
    let endpoint = bind(&mallory, &cfg).await.unwrap();
    let clocks = phone.replica().lock().clocks();
    let mut tasks = Vec::new();
    for _ in 0..FLOOD {
        let (endpoint, addr, cfg) = (endpoint.clone(), s.addr.clone(), cfg.clone());
        let msg = hello(record, cert.clone(), clocks.clone());
        tasks.push(tokio::spawn(async move {
            let conn = connect(&endpoint, addr, SYNC_ALPN, &cfg).await.ok()?;
            let Ok((mut send, mut recv)) = conn.open_bi().await else {
                return Some((false, conn, None));
            };
            if write_msg(&mut send, &msg).await.is_err() {
                return Some((false, conn, None));
            }
            let admitted = matches!(
                tokio::time::timeout(Duration::from_secs(20), read_msg(&mut recv)).await,
                Ok(Ok((Msg::Hello(_), _)))
            );
            // The streams are kept open: the session waits for our catch-up forever.
            Some((admitted, conn, Some((send, recv))))
        }));
    }
    // And 60 strangers (keys the record never heard of), each opening 3 connections that
    // send half a frame header and never say hello: more than the node keeps waiting for
    // hello at once, so the oldest are crowded out. Each also knocks 3 times on the clinic's
    // door (where any device may bring an invitation) and never says what it wants.
    let mut strangers = Vec::new();
    let mut knocks = Vec::new();
    let mut stranger_endpoints = Vec::new();
    for _ in 0..60 {
        let ep = bind(&KeyPair::generate(), &cfg).await.unwrap();
        for _ in 0..3 {
            if let Ok(conn) = connect(&ep, s.addr.clone(), SYNC_ALPN, &cfg).await
                && let Ok((mut send, recv)) = conn.open_bi().await
            {
                let _ = send.write_all(&[0, 0]).await;
                strangers.push((conn, send, recv));
            }
            if let Ok(conn) = connect(&ep, s.addr.clone(), CLINIC_ALPN, &cfg).await {
                knocks.push(conn);
            }
        }
        stranger_endpoints.push(ep);
    }
    // A new patient connects to the clinic with its invitation in the middle of it.
    let newcomer = first_device().await;
    connect_to_node(node, &newcomer).await;

    // Meanwhile the patient's phone writes and syncs, and every edit reaches the node.
    let started = Instant::now();
    for i in 0..3 {
        let body = format!("during the flood {i}");
        phone.add(Section::Messages, &[("thread", "Homework"), ("body", &body)]);
        let report = honest_sync(node, phone).await;
        assert!(report.sent_total() >= 1, "{report:?}");
        assert_eq!(node.health(), 200, "/health during the flood");
    }
    let honest_time = started.elapsed();

    let mut admitted = 0;
    let mut conns = Vec::new();
    for t in tasks {
        if let Some((ok, conn, streams)) = t.await.unwrap() {
            admitted += usize::from(ok);
            conns.push((conn, streams));
        }
    }
    // Each newer session of mallory's closed its oldest one: however many were admitted along
    // the way, no more than the cap are still open.
    assert!(admitted >= 1, "the sessions of a member are served");
    let still_open = || conns.iter().filter(|(c, _)| c.close_reason().is_none()).count();
    let until = Instant::now() + Duration::from_secs(10);
    while still_open() > MAX_SESSIONS_PER_PEER && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        still_open() <= MAX_SESSIONS_PER_PEER,
        "{} sessions still open for one key; at most {MAX_SESSIONS_PER_PEER} may be",
        still_open()
    );
    assert_logged(node, &mallory, "closed this peer's oldest sync session");
    // The key's device restarts (a new endpoint, as after a crash) while its old sessions are
    // still open on the node: it is served at once, the oldest of them making room.
    let (restarted, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert.clone()).await;
    say(&mut send, Msg::CaughtUp).await;
    assert_eq!(
        until_closed(&mut recv).await,
        None,
        "a full sync for the restarted device"
    );
    hang_up!(restarted, conn);
    assert_logged_any(
        node,
        "sync connection still waiting for hello: crowded out by newer connections",
    );
    assert_logged_any(
        node,
        "clinic connection still waiting for its request: crowded out by newer connections",
    );
    let active = node.metric("phr_connections_active");
    assert!(
        active <= (MAX_SESSIONS_PER_PEER + MAX_PENDING_SESSIONS + 1) as f64,
        "{active} sessions open; at most {MAX_SESSIONS_PER_PEER} admitted for mallory and {MAX_PENDING_SESSIONS} waiting for hello"
    );
    eprintln!(
        "flood: {admitted} of {FLOOD} admitted, {} stranger connections, honest syncs took {honest_time:?}",
        strangers.len()
    );

    // The flood ends: every slot is given back and the node is idle again.
    for (c, _) in &conns {
        c.close(0u32.into(), b"bye");
    }
    drop(conns);
    drop(strangers);
    drop(knocks);
    endpoint.close().await;
    for ep in stranger_endpoints {
        ep.close().await;
    }
    let until = Instant::now() + Duration::from_secs(30);
    while node.metric("phr_connections_active") > 0.0 {
        assert!(
            Instant::now() < until,
            "sessions still open after the flood:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Mallory's key may connect again once its sessions are gone.
    let (endpoint, conn, mut send, mut recv) = dial!(&mallory, s.addr);
    greet(&mut send, &mut recv, phone, cert).await;
    say(&mut send, Msg::CaughtUp).await;
    assert_eq!(until_closed(&mut recv).await, None);
    hang_up!(endpoint, conn);

    let threads = node.get(&format!("/v1/patients/{record}/messages")).to_string();
    for i in 0..3 {
        assert!(threads.contains(&format!("during the flood {i}")), "{threads}");
    }
    assert!(node.alive());
    assert_eq!(node.health(), 200);
}
