//! Signed capability keys (issue 4) on real iroh endpoints on 127.0.0.1: a caregiver, a school
//! and a clinic are given scoped, expiring, revocable access to a patient's record, and every
//! device of the patient enforces that scope on what it sends and on what it accepts.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::wire::{dial, hang_up, hear, say};
use phr::access::{AccessSet, Credential, Statement};
use phr::automerge::ChangeHash;
use phr::capability::{Capability, Grant, Preset, Right, Scope};
use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::exchange::Received;
use phr::record::EntryView;
use phr::sync::net::{NetConfig, Service};
use phr::sync::pair::{self, PairTicket, TicketKind};
use phr::sync::replica::Entered;
use phr::sync::wire::{self, Hello, Msg, RecordHello};
use phr::sync::{Replica, SessionOptions, SessionReport};
use phr::{Device, InitOptions, KeyPair, Record, RecordId, Section};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

fn fast() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn fields(section: Section, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    parse_fields(section, &args).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn log_entry(text: &str) -> Map<String, Value> {
    fields(Section::CaregiverLog, &[("date", "2024-06-01"), ("text", text)])
}

fn note(plan: &str) -> Map<String, Value> {
    fields(
        Section::Notes,
        &[
            ("discipline", "speech"),
            ("clinician", "J. Ames"),
            ("date", "2024-05-02"),
            ("plan", plan),
        ],
    )
}

fn appointment(status: &str) -> Map<String, Value> {
    fields(
        Section::Appointments,
        &[
            ("reason", "Re-evaluation"),
            ("start", "2024-06-01 10:00"),
            ("status", status),
        ],
    )
}

/// One device (the patient's, or a holder's) serving its endpoint.
struct Node {
    _dir: tempfile::TempDir,
    service: Service,
}

impl Node {
    async fn start(dir: tempfile::TempDir, device: Device) -> Node {
        let service = Service::start(Replica::new(device), NetConfig::local()).await.unwrap();
        Node { _dir: dir, service }
    }
    fn replica(&self) -> &Arc<Replica> {
        self.service.replica()
    }
    fn record_id(&self) -> RecordId {
        self.replica().record_id()
    }
    fn key(&self) -> KeyPair {
        self.replica().lock().key().clone()
    }
    fn add(&self, section: Section, f: Map<String, Value>) -> String {
        self.replica().write(|r| r.add(section, f)).unwrap()
    }
    fn count(&self, section: Section) -> usize {
        self.replica().lock().record().count(section)
    }
    fn list(&self, section: Section) -> Vec<EntryView> {
        self.replica().lock().record().list(section).unwrap()
    }
    fn has(&self, section: Section, hash: &ChangeHash) -> bool {
        self.replica().lock().record_mut().has_change(section, &hash.0)
    }
    fn heads(&self, section: Section) -> Vec<ChangeHash> {
        let mut h = self.replica().lock().record_mut().heads(section);
        h.sort();
        h
    }
    /// Heads of the patient-facing sections (the audit log grows on each side by design).
    fn all_heads(&self) -> Vec<Vec<ChangeHash>> {
        Section::ALL.iter().map(|s| self.heads(*s)).collect()
    }
    /// Heads of every synced section, the audit log included.
    fn synced_heads(&self) -> Vec<Vec<ChangeHash>> {
        Section::SYNCED.iter().map(|s| self.heads(*s)).collect()
    }
    async fn sync(&self, other: &Node) -> phr::Result<SessionReport> {
        self.service
            .sync_once(other.service.addr(), SessionOptions::default())
            .await
    }
    /// Audit events as (kind, detail, sections).
    fn audit(&self) -> Vec<(String, String, Vec<String>)> {
        self.list(Section::Audit)
            .into_iter()
            .map(|e| {
                let text = |k: &str| e.fields.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let sections = e
                    .fields
                    .get("sections")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                (text("kind"), text("detail"), sections)
            })
            .collect()
    }
    fn audit_has(&self, kind: &str, text: &str) -> bool {
        self.audit().iter().any(|(k, d, _)| k == kind && d.contains(text))
    }
    /// The accepting side of a session writes its audit events after the connection closes:
    /// wait (bounded) for one to appear.
    async fn await_audit(&self, kind: &str, text: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self.audit_has(kind, text) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
    /// Edit as a holder whose own device does not stop it: the local check of its rights is
    /// lifted for this one edit, so the change goes out and the receivers must refuse it.
    fn beyond_rights<T>(&self, edit: impl FnOnce(&mut Record) -> phr::Result<T>) -> T {
        let limits = {
            let d = self.replica().lock();
            d.credential().scope().map(|s| (d.name().to_string(), s.clone()))
        };
        assert!(limits.is_some(), "only a holder has limits to lift");
        self.replica().lock().record_mut().set_limits(None);
        let out = self.replica().write(edit);
        self.replica().lock().record_mut().set_limits(limits);
        out.unwrap()
    }
    /// The hash of this device's newest change of a section.
    fn my_newest(&self, section: Section) -> ChangeHash {
        let mut d = self.replica().lock();
        let me = d.device_id();
        let (_, hash) = d.record_mut().clock(section)[&me];
        ChangeHash(hash)
    }
}

/// The patient's first device, holding the root key, with something in several sections.
async fn owner() -> Node {
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
    let a = Node::start(dir, device).await;
    a.add(
        Section::Medications,
        fields(Section::Medications, &[("name", "Amoxicillin"), ("dose", "250 mg")]),
    );
    a.add(
        Section::Insurance,
        fields(
            Section::Insurance,
            &[("payer", "Blue Shield"), ("member-id", "XYZ123"), ("group", "G-77")],
        ),
    );
    a.add(Section::Notes, note("Continue /s/ drills"));
    a.add(
        Section::Goals,
        fields(
            Section::Goals,
            &[("goal", "Produce /s/ in words"), ("unit", "% correct")],
        ),
    );
    a
}

/// A second device of the patient, paired by ticket.
async fn pair_laptop(a: &Node) -> Node {
    let ticket = a
        .service
        .pairing()
        .issue(a.service.addr(), Duration::from_secs(60))
        .unwrap();
    let key = KeyPair::generate();
    let (cert, statements) = pair::join(&ticket, &key, "laptop", &NetConfig::local()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::create_member(dir.path(), "pw", key, cert, statements, fast()).unwrap();
    let l = Node::start(dir, device).await;
    l.sync(a).await.unwrap();
    l
}

/// Someone joins with a share ticket from `a` for `preset`, then syncs once with `a`.
async fn join_shared(a: &Node, preset: Preset, label: &str) -> (Node, Capability, SessionReport) {
    let grant = Grant {
        // Filled in with the key of whoever uses the ticket.
        audience: KeyPair::generate().public(),
        label: label.into(),
        scope: preset.scope(),
        delegate: false,
        not_before: now() - 5,
        expires: None,
    };
    let ticket = a
        .service
        .pairing()
        .share(a.service.addr(), Duration::from_secs(60), grant)
        .unwrap();
    let ticket = PairTicket::parse(&ticket.to_text()).unwrap();
    match &ticket.kind {
        TicketKind::Share { label: l, scope, .. } => {
            assert_eq!(l, label);
            assert_eq!(*scope, preset.scope(), "the ticket shows what it grants");
        }
        TicketKind::Device => panic!("a share ticket"),
    }
    let key = KeyPair::generate();
    let (credential, statements) = pair::join_any(&ticket, &key, "their phone", &NetConfig::local())
        .await
        .unwrap();
    let Credential::Capability(cap) = credential.clone() else {
        panic!("a share ticket gives a capability, not a device certificate")
    };
    assert_eq!(cap.audience, key.public());
    assert_eq!(cap.issuer, a.record_id(), "granted by the record's root key");
    assert_eq!(cap.scope, preset.scope());
    let dir = tempfile::tempdir().unwrap();
    let device = Device::create_with(dir.path(), "pw", key, credential, statements, fast()).unwrap();
    let node = Node::start(dir, device).await;
    let report = node.sync(a).await.unwrap();
    (node, cap, report)
}

/// A holder created directly from a grant the root holder signs for a known key.
async fn holder(a: &Node, grant: impl FnOnce(KeyPair) -> Grant) -> (Node, Capability) {
    let key = KeyPair::generate();
    let cap = a.replica().lock().grant(grant(key.clone())).unwrap();
    let statements: Vec<Statement> = a.replica().lock().access().statements().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::create_holder(dir.path(), "pw", key, cap.clone(), statements, fast()).unwrap();
    (Node::start(dir, device).await, cap)
}

// ---------------------------------------------------------------------------------------------
// Speaking the protocol by hand
// ---------------------------------------------------------------------------------------------

fn hello_with(record: RecordId, credential: Credential) -> Msg {
    Msg::Hello(Hello {
        version: wire::VERSION,
        records: vec![RecordHello {
            record,
            credential,
            // Empty clocks: "send me everything I may see".
            clocks: Vec::new(),
        }],
        refused: Vec::new(),
        live: false,
        addrs: Vec::new(),
    })
}

/// Present `credential` to `to` as the holder of `key`; returns the refusal, if refused.
async fn present(key: &KeyPair, to: &Node, credential: Credential) -> Option<String> {
    let (endpoint, conn, mut send, mut recv) = dial!(key, to.service.addr());
    say(&mut send, hello_with(to.record_id(), credential)).await;
    let out = loop {
        match hear(&mut recv).await {
            Ok(Msg::Refused { reason }) => break Some(reason),
            Ok(Msg::Hello(h)) => {
                assert_eq!(h.records.len(), 1);
                break None;
            }
            // A refused holder is first told of the revocation that cut it off.
            Ok(Msg::Access { statements, .. }) => {
                assert!(
                    statements
                        .iter()
                        .all(|s| matches!(s, Statement::Revocation(_) | Statement::Removal(_))),
                    "a refused peer is told only of withdrawals: {statements:?}"
                );
            }
            other => panic!("expected hello or a refusal, got {other:?}"),
        }
    };
    hang_up!(endpoint, conn);
    out
}

/// The bytes a capability's issuer signs, as docs/PROTOCOL.md specifies them. Replicated here
/// so a test can sign a capability the engine's own constructors would refuse to make.
fn capability_message(c: &Capability) -> Vec<u8> {
    let mut m = b"phr/capability/v1".to_vec();
    m.extend_from_slice(&c.id);
    m.extend_from_slice(&c.record.0);
    m.extend_from_slice(&c.issuer.0);
    m.extend_from_slice(&c.audience.0);
    m.extend_from_slice(&(c.label.len() as u32).to_le_bytes());
    m.extend_from_slice(c.label.as_bytes());
    for (s, r) in &c.scope {
        m.push(s.code());
        m.push(*r as u8);
    }
    m.push(0xff);
    m.push(u8::from(c.delegate));
    m.extend_from_slice(&c.not_before.to_le_bytes());
    m.extend_from_slice(&c.expires.unwrap_or(i64::MAX).to_le_bytes());
    match &c.parent {
        Some(p) => {
            m.push(1);
            m.extend_from_slice(&p.id);
            m.extend_from_slice(&p.signature);
        }
        None => m.push(0),
    }
    m
}

/// A capability delegated from `parent` and signed by `signer` by hand, whatever it grants.
fn delegated_by_hand(signer: &KeyPair, parent: &Capability, audience: &KeyPair, scope: Scope) -> Capability {
    let mut cap = Capability {
        id: rand_id(),
        record: parent.record,
        issuer: signer.public(),
        audience: audience.public(),
        label: "therapist".into(),
        scope,
        delegate: false,
        not_before: parent.not_before,
        expires: parent.expires,
        parent: Some(Box::new(parent.clone())),
        signature: [0; 64],
    };
    cap.signature = signer.sign(&capability_message(&cap));
    cap
}

fn rand_id() -> [u8; 16] {
    let k = KeyPair::generate().public().0;
    k[..16].try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Stories
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregiver_joins_with_a_share_ticket_and_receives_only_what_it_may_read() {
    let a = owner().await;
    let (g, cap, report) = join_shared(&a, Preset::Caregiver, "Grandma").await;

    // What arrived: the sections the preset lets it read, never insurance, never the audit log.
    assert!(report.applied() > 0, "the caregiver receives the record");
    for section in report.received.keys() {
        assert!(
            cap.right(*section).is_some(),
            "{section} arrived but the grant does not open it"
        );
    }
    assert!(!report.received.contains_key(&Section::Insurance), "{report:?}");
    assert!(!report.received.contains_key(&Section::Audit), "{report:?}");
    for (section, n) in [
        (Section::Medications, 1),
        (Section::Notes, 1),
        (Section::Goals, 1),
        (Section::Profile, 1),
        (Section::Insurance, 0),
        (Section::Audit, 0),
    ] {
        assert_eq!(g.count(section), n, "{section} on the caregiver's device");
    }
    assert_eq!(a.count(Section::Insurance), 1, "the owner does have an insurance entry");
    assert!(a.count(Section::Audit) > 0, "and an audit log");
    assert!(g.heads(Section::Insurance).is_empty(), "no insurance change at all");
    assert!(g.heads(Section::Audit).is_empty(), "no audit change at all");
    for s in [Section::Medications, Section::Notes, Section::Goals, Section::Profile] {
        assert_eq!(g.heads(s), a.heads(s), "{s} is the owner's");
    }

    // On the wire: asked for everything (empty clocks), the owner sends only readable sections.
    let mut sent: Vec<Section> = Vec::new();
    let key = g.key();
    let (endpoint, conn, mut send, mut recv) = dial!(&key, a.service.addr());
    say(
        &mut send,
        hello_with(a.record_id(), Credential::Capability(cap.clone())),
    )
    .await;
    loop {
        match hear(&mut recv).await.unwrap() {
            Msg::Hello(_) | Msg::Access { .. } => {}
            Msg::Batch(b) => {
                sent.push(b.section);
                say(
                    &mut send,
                    Msg::Ack {
                        record: b.record,
                        section: b.section,
                        received: Received::default(),
                    },
                )
                .await;
            }
            Msg::BatchPart { section, .. } => sent.push(section),
            Msg::CaughtUp => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    say(&mut send, Msg::CaughtUp).await;
    while hear(&mut recv).await.is_ok() {}
    hang_up!(endpoint, conn);
    assert!(
        sent.contains(&Section::Medications) && sent.contains(&Section::Goals),
        "{sent:?}"
    );
    assert!(!sent.contains(&Section::Insurance), "insurance never travels: {sent:?}");
    assert!(!sent.contains(&Section::Audit), "the audit log never travels: {sent:?}");

    // The owner's accounting of the disclosure names the sections, and only readable ones.
    assert!(a.await_audit("sync", "Grandma").await, "{:?}", a.audit());
    for (kind, _, sections) in a.audit() {
        if kind == "sync" {
            assert!(!sections.is_empty());
            assert!(
                !sections.iter().any(|s| s == "insurance" || s == "audit"),
                "{sections:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregivers_progress_log_and_requests_are_accepted_but_nothing_beyond_them() {
    let a = owner().await;
    let (g, _cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let goal = g.list(Section::Goals)[0].id.clone();

    // Within its rights: progress on an existing goal, a log entry, an appointment request.
    let day = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
    g.replica()
        .write(|r| r.goal_progress(&goal, day, 40.0, Some("7 of 10 at dinner")))
        .unwrap();
    let logged = g.add(Section::CaregiverLog, log_entry("Practised /s/ words at dinner"));
    let requested = g.add(Section::Appointments, appointment("requested"));
    // The device itself refuses more, before writing anything, every time.
    for _ in 0..2 {
        let local = g
            .replica()
            .write(|r| r.add(Section::Appointments, appointment("confirmed")))
            .unwrap_err()
            .to_string();
        assert!(local.contains("may write"), "{local}");
    }
    let report = g.sync(&a).await.unwrap();
    assert!(report.rejected_by_peer.is_empty(), "{:?}", report.rejected_by_peer);
    let on_a = a.list(Section::Goals)[0].clone();
    let progress = on_a.fields["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 1, "{on_a:?}");
    assert_eq!(progress[0]["value"], 40.0);
    assert_eq!(progress[0]["author"], g.key().public().to_string());
    assert!(a.list(Section::CaregiverLog).iter().any(|e| e.id == logged));
    let appts = a.list(Section::Appointments);
    assert_eq!(appts.len(), 1);
    assert_eq!(appts[0].id, requested);
    assert_eq!(appts[0].fields["status"], "requested");

    // Beyond them (its own device's check lifted): rewriting the goal, confirming a visit.
    let mut text = Map::new();
    text.insert("goal".into(), Value::String("Produce /s/ in sentences".into()));
    g.beyond_rights(|r| r.edit(Section::Goals, &goal, text));
    let rewrite = g.my_newest(Section::Goals);
    g.beyond_rights(|r| r.add(Section::Appointments, appointment("confirmed")));
    let confirmed = g.my_newest(Section::Appointments);
    let report = g.sync(&a).await.unwrap();
    let why = &report.rejected_by_peer;
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why.iter().any(|w| w.contains("may only add progress")), "{why:?}");
    assert!(
        why.iter().any(|w| w.contains("may only add new appointment requests")),
        "{why:?}"
    );
    assert!(!a.has(Section::Goals, &rewrite) && !a.has(Section::Appointments, &confirmed));
    assert_eq!(a.list(Section::Goals)[0].fields["goal"], "Produce /s/ in words");
    assert_eq!(a.count(Section::Appointments), 1);
    assert!(
        a.await_audit("reject", "may only add progress").await,
        "{:?}",
        a.audit()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregivers_progress_value_no_chart_can_draw_is_refused_by_the_patients_device() {
    let a = owner().await;
    let (g, _cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let goal = g.list(Section::Goals)[0].id.clone();
    let day = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();

    // Her own device refuses such a value before writing anything.
    let local = g
        .replica()
        .write(|r| r.goal_progress(&goal, day, -1e20, None))
        .unwrap_err()
        .to_string();
    assert!(local.contains("goals.value"), "{local}");

    // A device that does not check (hostile, or an old phr) sends it all the same.
    g.beyond_rights(|r| common::devices::progress_unchecked(r, &goal, &[(day, -1e20)]));
    let sent = g.my_newest(Section::Goals);
    let report = g.sync(&a).await.unwrap();
    let why = &report.rejected_by_peer;
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("goals.value"), "{why:?}");
    assert!(!a.has(Section::Goals, &sent));
    let on_a = a.list(Section::Goals)[0].clone();
    let steps = on_a.fields.get("progress").and_then(Value::as_array);
    assert!(steps.is_none_or(|s| s.is_empty()), "{on_a:?}");
    assert!(a.await_audit("reject", "goals.value").await, "{:?}", a.audit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregiver_writing_notes_is_refused_by_every_device_of_the_patient() {
    let a = owner().await;
    let l = pair_laptop(&a).await;
    let (g, _cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    l.sync(&a).await.unwrap();
    let notes = a.count(Section::Notes);

    let local = g
        .replica()
        .write(|r| r.add(Section::Notes, note("Grandma's note")))
        .unwrap_err()
        .to_string();
    assert!(
        local.contains("may write") && local.contains("caregiver_log"),
        "{local}"
    );
    g.beyond_rights(|r| r.add(Section::Notes, note("Grandma's note")));
    let forged = g.my_newest(Section::Notes);

    for (name, device) in [("laptop", &l), ("phone", &a)] {
        let report = g.sync(device).await.unwrap();
        let why = &report.rejected_by_peer;
        assert_eq!(why.len(), 1, "{name}: {why:?}");
        assert!(why[0].contains("may not write notes"), "{name}: {why:?}");
        assert!(!device.has(Section::Notes, &forged), "{name} does not hold the note");
        assert_eq!(device.count(Section::Notes), notes, "{name}");
    }
    // Nor does it travel between the patient's devices afterwards.
    l.sync(&a).await.unwrap();
    assert!(!a.has(Section::Notes, &forged) && !l.has(Section::Notes, &forged));
    assert!(a.await_audit("reject", "may not write notes").await, "{:?}", a.audit());
    assert!(a.audit_has("reject", "Grandma"));
    assert!(l.await_audit("reject", "may not write notes").await, "{:?}", l.audit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_syncs_until_its_access_expires_then_is_refused() {
    let a = owner().await;
    let expires = now() + 2;
    let (school, cap) = holder(&a, |key| Grant {
        audience: key.public(),
        label: "Lincoln Elementary IEP team".into(),
        scope: Preset::School.scope(),
        delegate: false,
        not_before: now() - 5,
        expires: Some(expires),
    })
    .await;
    let report = school.sync(&a).await.unwrap();
    assert!(report.applied() > 0);
    for section in report.received.keys() {
        assert!(
            [Section::Profile, Section::Goals, Section::Notes, Section::Documents].contains(section),
            "{section} reached the school"
        );
    }
    assert_eq!(school.count(Section::Notes), 1);
    assert_eq!(school.count(Section::Medications), 0);
    assert_eq!(school.count(Section::Profile), 1, "the school knows whose record it is");

    while now() <= expires {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!cap.chain_valid_at(now()));
    a.add(Section::Notes, note("After the school year"));
    let err = school.sync(&a).await.unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
    // Nor does the owner push to it when it is the one dialing.
    let err = a.sync(&school).await.unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
    assert_eq!(school.count(Section::Notes), 1, "nothing after the expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_capability_wider_than_its_parent_is_refused() {
    let a = owner().await;
    let (clinic, parent) = holder(&a, |key| Grant {
        audience: key.public(),
        label: "Bright Steps Therapy".into(),
        scope: Preset::Clinic.scope(),
        delegate: true,
        not_before: now() - 5,
        expires: Some(now() + 3600),
    })
    .await;
    let clinic_key = clinic.key();
    let therapist = KeyPair::generate();
    let grant = |scope: Scope, expires: Option<i64>| Grant {
        audience: therapist.public(),
        label: "therapist".into(),
        scope,
        delegate: false,
        not_before: now(),
        expires,
    };
    let in_hour = Some(now() + 1800);

    // The engine will not make one: more sections, a stronger right, a longer life.
    for (scope, expires) in [
        (Scope::from([(Section::Insurance, Right::Read)]), in_hour),
        (Scope::from([(Section::Goals, Right::Write)]), in_hour),
        (Scope::from([(Section::Notes, Right::Write)]), Some(now() + 7200)),
        (Scope::from([(Section::Notes, Right::Write)]), None),
    ] {
        assert!(Capability::delegate(&clinic_key, &parent, grant(scope, expires)).is_err());
    }
    let narrow = Capability::delegate(
        &clinic_key,
        &parent,
        grant(Scope::from([(Section::Notes, Right::Write)]), in_hour),
    )
    .unwrap();

    // The message replicated here is the engine's: a by-hand signature of a narrow grant verifies.
    assert!(
        parent
            .record
            .verify(&capability_message(&parent), &parent.signature)
            .is_ok()
    );
    let by_hand = delegated_by_hand(
        &clinic_key,
        &parent,
        &therapist,
        Scope::from([(Section::Notes, Right::Write), (Section::Goals, Right::Read)]),
    );
    by_hand.check_chain().unwrap();
    assert_eq!(Capability::from_bytes(&by_hand.to_bytes()).unwrap(), by_hand);

    // Signed by the rightful holder of the parent, but wider than the parent: refused everywhere.
    let wide = delegated_by_hand(
        &clinic_key,
        &parent,
        &therapist,
        Scope::from([(Section::Notes, Right::Write), (Section::Insurance, Right::Read)]),
    );
    let err = wide.check_chain().unwrap_err().to_string();
    assert!(err.contains("more than its parent"), "{err}");
    assert!(Capability::from_bytes(&wide.to_bytes()).is_err());
    let mut set = AccessSet::default();
    set.insert(&a.record_id(), Statement::Capability(parent.clone()))
        .unwrap();
    assert!(set.insert(&a.record_id(), Statement::Capability(wide.clone())).is_err());
    assert!(
        a.replica()
            .lock()
            .merge_statements(vec![Statement::Capability(wide.clone())])
            .is_err()
    );

    let reason = present(&therapist, &a, Credential::Capability(wide.clone()))
        .await
        .expect("the owner refuses the wide grant");
    assert!(reason.contains("more than its parent"), "{reason}");
    assert!(
        a.replica()
            .lock()
            .access()
            .grants()
            .iter()
            .all(|(c, _)| c.id != wide.id),
        "the wide grant was not kept"
    );
    // The same therapist with a grant its delegator could give is let in.
    assert_eq!(present(&therapist, &a, Credential::Capability(narrow)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_caregiver_is_cut_off_even_where_the_revocation_arrives_second_hand() {
    let a = owner().await;
    let l = pair_laptop(&a).await;
    let (g, cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let kept = g.add(Section::CaregiverLog, log_entry("Slept well"));
    g.sync(&a).await.unwrap();
    l.sync(&a).await.unwrap();
    g.sync(&l).await.unwrap();
    assert!(l.list(Section::CaregiverLog).iter().any(|e| e.id == kept));

    let id = hex(&cap.id);
    a.replica().lock().revoke(&id[..8]).unwrap();
    // L hears of it from A only.
    l.sync(&a).await.unwrap();
    assert!(l.replica().lock().access().is_revoked(&cap));
    assert!(!l.replica().lock().access().is_member(&g.key().public()));

    let late = g.add(Section::CaregiverLog, log_entry("Written after the revocation"));
    let err = g.sync(&l).await.unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
    let err = g.sync(&a).await.unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
    // The patient's devices do not push to it either.
    let err = l.sync(&g).await.unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
    let reason = present(&g.key(), &l, Credential::Capability(cap.clone()))
        .await
        .unwrap();
    assert!(reason.contains("revoked"), "{reason}");

    for device in [&a, &l] {
        let ids: Vec<String> = device.list(Section::CaregiverLog).into_iter().map(|e| e.id).collect();
        assert!(ids.contains(&kept), "what it wrote before stays");
        assert!(!ids.contains(&late), "what it wrote after never arrives");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_as_its_author_is_revoked_is_judged_by_the_cutoff_alike_everywhere() {
    // The rule: a revocation names, per holder and section, the holder's last change that
    // stays valid (the revoking device's clock when it revoked). Every device judges the
    // holder's changes by that cutoff, not by when the change or the revocation reached it:
    // a device that took a later change first drops it (and anything built on it) as soon as
    // it hears of the revocation, so all replicas end up with the same history.
    let a = owner().await;
    let l = pair_laptop(&a).await;
    let (g, cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let early = g.add(Section::CaregiverLog, log_entry("Before"));
    g.sync(&a).await.unwrap();
    l.sync(&a).await.unwrap();
    assert_eq!(l.count(Section::CaregiverLog), 1);

    // G writes while A, offline, revokes it: the cutoff keeps `early`, not `late`.
    let late = g.add(Section::CaregiverLog, log_entry("Concurrent with the revocation"));
    let late_hash = g.my_newest(Section::CaregiverLog);
    let rev = a.replica().lock().revoke(&hex(&cap.id)).unwrap();
    assert_eq!(rev.cutoff_for(&g.key().public(), Section::CaregiverLog), 1);

    // L, not yet told, takes it (it is within the grant as L knows it) and builds on it.
    let report = g.sync(&l).await.unwrap();
    assert!(report.rejected_by_peer.is_empty(), "{:?}", report.rejected_by_peer);
    assert!(l.has(Section::CaregiverLog, &late_hash));
    let laptops = l.add(Section::CaregiverLog, log_entry("Laptop entry after Grandma's"));
    let built_on = l.my_newest(Section::CaregiverLog);
    {
        let mut d = l.replica().lock();
        let change = d
            .record_mut()
            .doc(Section::CaregiverLog)
            .get_change_by_hash(&built_on)
            .unwrap();
        assert!(change.deps().contains(&late_hash), "L's entry depends on G's late one");
    }

    // L meets A and hears of the revocation: L drops the late entry and the change of its own
    // built on it, and writes its own entry again on top of what remains. A never takes the
    // late entry or the first version of L's.
    let report = l.sync(&a).await.unwrap();
    assert!(!report.rejected_by_peer.is_empty(), "A refuses what L offers of them");
    let ids = |d: &Node| -> Vec<String> {
        let mut ids: Vec<String> = d.list(Section::CaregiverLog).into_iter().map(|e| e.id).collect();
        ids.sort();
        ids
    };
    let mut expected = vec![early.clone(), laptops.clone()];
    expected.sort();
    assert_eq!(
        ids(&l),
        expected,
        "G's entry from before its cutoff and L's own, made again"
    );
    // One more sync brings L's entry, made again, to A (this session may already have).
    l.sync(&a).await.unwrap();
    for device in [&a, &l] {
        assert!(!device.has(Section::CaregiverLog, &late_hash));
        assert!(!device.has(Section::CaregiverLog, &built_on));
        assert_eq!(ids(device), expected);
        let entry = device
            .list(Section::CaregiverLog)
            .into_iter()
            .find(|e| e.id == laptops)
            .unwrap();
        assert_eq!(entry.fields["text"], "Laptop entry after Grandma's");
    }
    assert!(!l.list(Section::CaregiverLog).iter().any(|e| e.id == late));
    assert_eq!(a.all_heads(), l.all_heads(), "A and L hold the same history");
    // Once A's own account of the session is written, one more sync makes the logs equal too.
    assert!(a.await_audit("reject", "Grandma").await, "{:?}", a.audit());
    l.sync(&a).await.unwrap();
    assert_eq!(a.synced_heads(), l.synced_heads(), "audit log included");
    // And G's late entry stays out however it is offered again.
    let err = g.sync(&l).await.unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_grants_joins_syncs_rejections_and_revocations() {
    let a = owner().await;
    let _l = pair_laptop(&a).await;
    assert!(a.audit_has("join", "laptop"), "{:?}", a.audit());
    let (g, cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let grants: Vec<_> = a.audit().into_iter().filter(|(k, _, _)| k == "grant").collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert!(grants[0].1.contains("Grandma") && grants[0].1.contains("caregiver_log=write"));

    // A sync to the caregiver, dialed by the owner: logged at once, naming what was sent.
    a.add(
        Section::Medications,
        fields(Section::Medications, &[("name", "Ibuprofen"), ("dose", "100 mg")]),
    );
    a.add(
        Section::Insurance,
        fields(Section::Insurance, &[("payer", "Aetna"), ("member-id", "A1")]),
    );
    a.sync(&g).await.unwrap();
    let syncs: Vec<_> = a.audit().into_iter().filter(|(k, _, _)| k == "sync").collect();
    assert!(
        syncs
            .iter()
            .any(|(_, detail, sections)| detail.contains("Grandma") && *sections == ["medications"]),
        "{syncs:?}"
    );
    for (detail, sections) in syncs.iter().map(|(_, d, s)| (d, s)) {
        if detail.contains("Grandma") {
            assert!(
                !sections.iter().any(|s| s == "insurance" || s == "audit"),
                "{sections:?}"
            );
        } else {
            assert!(detail.contains("laptop"), "{detail}");
        }
    }

    // A refused change, then a revocation.
    g.beyond_rights(|r| {
        r.add(
            Section::Insurance,
            fields(Section::Insurance, &[("payer", "Fake"), ("member-id", "F1")]),
        )
    });
    let report = g.sync(&a).await.unwrap();
    assert_eq!(report.rejected_by_peer.len(), 1, "{:?}", report.rejected_by_peer);
    assert!(
        a.await_audit("reject", "may not write insurance").await,
        "{:?}",
        a.audit()
    );
    a.replica().lock().revoke(&hex(&cap.id)[..6]).unwrap();
    assert!(a.audit_has("revoke", "Grandma"), "{:?}", a.audit());
    let kinds: Vec<String> = a.audit().into_iter().map(|(k, _, _)| k).collect();
    for kind in ["join", "grant", "sync", "reject", "revoke"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The holder's device keeps no audit log of its own, and never received the owner's.
    assert_eq!(g.count(Section::Audit), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cannot_make_its_access_unrevocable() {
    let a = owner().await;
    let (g, cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;

    // "Never expires" is signed as expires = i64::MAX, so a re-encoded copy of the grant
    // verifies; presented in a hello, it is kept beside the original under the same id.
    let mut copy = cap.clone();
    copy.expires = Some(i64::MAX);
    copy.check_chain().unwrap();
    assert_eq!(present(&g.key(), &a, Credential::Capability(copy.clone())).await, None);

    // A delegating holder can likewise sign a grant reusing its own grant's id.
    let (clinic, parent) = holder(&a, |key| Grant {
        audience: key.public(),
        label: "Bright Steps Therapy".into(),
        scope: Preset::Clinic.scope(),
        delegate: true,
        not_before: now() - 5,
        expires: None,
    })
    .await;
    let accomplice = KeyPair::generate();
    let mut twin = delegated_by_hand(
        &clinic.key(),
        &parent,
        &accomplice,
        Scope::from([(Section::Notes, Right::Read)]),
    );
    twin.id = parent.id;
    twin.signature = clinic.key().sign(&capability_message(&twin));
    // ...which no longer verifies: every link of a chain must have its own id.
    assert!(twin.check_chain().is_err());
    let refused = present(&accomplice, &a, Credential::Capability(twin)).await;
    assert!(refused.is_some(), "a twin of its parent's id is refused at hello");

    // The owner can still revoke either grant by its id.
    for (holder_key, c, copies) in [(g.key(), &cap, 2), (clinic.key(), &parent, 1)] {
        let matching = a.replica().lock().access().grant(&hex(&c.id)).len();
        assert_eq!(matching, copies, "capabilities carrying the id");
        a.replica().lock().revoke(&hex(&c.id)[..8]).unwrap();
        let reason = present(&holder_key, &a, Credential::Capability(c.clone()))
            .await
            .unwrap();
        assert!(reason.contains("revoked"), "{reason}");
    }
    let reason = present(&g.key(), &a, Credential::Capability(copy)).await.unwrap();
    assert!(reason.contains("revoked"), "{reason}");
    assert!(!a.replica().lock().access().is_member(&accomplice.public()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_cuts_off_its_writes_even_if_the_holder_keeps_a_read_only_grant() {
    // The same person holds two grants: a caregiver's (writes the log) and, say, a school
    // team member's (reads notes and goals). Revoking the first must withdraw the log writes
    // made after its cutoff on every device, though the second grant still stands.
    let a = owner().await;
    let l = pair_laptop(&a).await;
    let (g, cap) = holder(&a, |key| Grant {
        audience: key.public(),
        label: "Grandma".into(),
        scope: Preset::Caregiver.scope(),
        delegate: false,
        not_before: now() - 5,
        expires: None,
    })
    .await;
    let g_key = g.key().public();
    a.replica()
        .lock()
        .grant(Grant {
            audience: g_key,
            label: "Grandma, IEP team".into(),
            scope: Preset::School.scope(),
            delegate: false,
            not_before: now() - 5,
            expires: None,
        })
        .unwrap();
    let early = g.add(Section::CaregiverLog, log_entry("Before"));
    g.sync(&a).await.unwrap();
    l.sync(&a).await.unwrap();

    let late = g.add(Section::CaregiverLog, log_entry("Concurrent with the revocation"));
    let late_hash = g.my_newest(Section::CaregiverLog);
    a.replica().lock().revoke(&hex(&cap.id)).unwrap();
    assert!(
        a.replica().lock().access().is_member(&g_key),
        "the read-only grant stands"
    );
    g.sync(&l).await.unwrap();
    assert!(l.has(Section::CaregiverLog, &late_hash), "L took it, not yet told");

    l.sync(&a).await.unwrap();
    assert!(!a.has(Section::CaregiverLog, &late_hash), "A refuses it");
    assert!(
        !l.has(Section::CaregiverLog, &late_hash),
        "L drops it once told, as the cutoff says"
    );
    for device in [&a, &l] {
        let ids: Vec<String> = device.list(Section::CaregiverLog).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![early.clone()]);
        assert!(!ids.contains(&late));
    }
    assert_eq!(a.all_heads(), l.all_heads(), "A and L converge");
}

/// Whether a medications batch from a peer enters the device's feed within `limit`.
async fn arrives(feed: &mut broadcast::Receiver<Arc<Entered>>, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            match feed.recv().await {
                Ok(e) if e.from.is_some() && e.batch().is_some_and(|b| b.section == Section::Medications) => return,
                Ok(_) => {}
                Err(e) => panic!("feed closed: {e}"),
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregiver_connected_live_stops_receiving_and_writing_when_revoked() {
    let a = owner().await;
    let (g, cap, _) = join_shared(&a, Preset::Caregiver, "Grandma").await;
    let live = g.service.keep_live(a.service.addr());
    let mut feed = g.replica().subscribe();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.add(
        Section::Medications,
        fields(Section::Medications, &[("name", "Ibuprofen"), ("dose", "100 mg")]),
    );
    assert!(arrives(&mut feed, Duration::from_secs(10)).await, "live while granted");

    a.replica().lock().revoke(&hex(&cap.id)).unwrap();
    let secret = a.add(
        Section::Medications,
        fields(Section::Medications, &[("name", "Sertraline"), ("dose", "25 mg")]),
    );
    assert!(
        !arrives(&mut feed, Duration::from_secs(2)).await,
        "nothing more after the revocation"
    );
    assert!(g.list(Section::Medications).iter().all(|e| e.id != secret));
    let late = g.add(Section::CaregiverLog, log_entry("Written while still connected"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        a.list(Section::CaregiverLog).iter().all(|e| e.id != late),
        "refused live too"
    );
    live.abort();
}
