//! A clinic hosting a patient's record over real iroh endpoints on 127.0.0.1, in one process:
//! connecting by invitation, clinicians writing under their own keys, store-and-forward
//! between two devices of the patient, and removing a clinician.

use std::sync::Arc;
use std::time::Duration;

use phr::clinic::Clinic;
use phr::sync::clinic::{self as connect, CLINIC_ALPN, ClinicTicket, ConnectHandler};
use phr::sync::net::NetConfig;
use phr::sync::{HostService, LibraryHost, SessionOptions};
use phr::{PublicKey, Section};

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::devices::{Phone, fast, fields, first_device, pair_new_device};

struct Node {
    _dir: tempfile::TempDir,
    clinic: Arc<Clinic>,
    service: HostService<LibraryHost>,
}

async fn clinic_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let clinic =
        Arc::new(Clinic::create(&dir.path().join("clinic.redb"), "pw", "Bright Steps Therapy", fast()).unwrap());
    let c = clinic.clone();
    let service = HostService::start_with(clinic.host().clone(), NetConfig::local(), move |b| {
        b.accept(CLINIC_ALPN, ConnectHandler::new(c))
    })
    .await
    .unwrap();
    Node {
        _dir: dir,
        clinic,
        service,
    }
}

impl Node {
    fn invite(&self) -> ClinicTicket {
        let (_, t) = self
            .clinic
            .invite(self.service.addr(), Duration::from_secs(600), Some(1), None)
            .unwrap();
        ClinicTicket::parse(&t.to_text()).unwrap()
    }
}

/// The patient's phone connects its record to the clinic with an invitation.
async fn connect_phone(node: &Node, phone: &Phone) {
    let ticket = node.invite();
    let connected = connect::connect(phone.service.endpoint(), phone.replica(), &ticket, &NetConfig::local())
        .await
        .unwrap();
    assert_eq!(connected.clinic, "Bright Steps Therapy");
    let report = phone
        .service
        .sync_once(node.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rejected(), 0);
}

fn note(plan: &str) -> serde_json::Map<String, serde_json::Value> {
    fields(
        Section::Notes,
        &[
            ("discipline", "speech"),
            ("clinician", "Jane Roe"),
            ("date", "2026-11-20"),
            ("plan", plan),
        ],
    )
}

async fn sync(phone: &Phone, node: &Node) -> phr::sync::SessionReport {
    phone
        .service
        .sync_once(node.service.addr(), SessionOptions::default())
        .await
        .unwrap()
}

fn author_of(phone: &Phone, section: Section) -> Vec<String> {
    phone
        .replica()
        .lock()
        .record()
        .list(section)
        .unwrap()
        .into_iter()
        .map(|e| e.author)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinicians_note_reaches_the_phone_signed_by_the_clinician_then_the_laptop_through_the_node() {
    let node = clinic_node().await;
    let phone = first_device().await;
    let laptop = pair_new_device(&phone, "laptop").await;
    connect_phone(&node, &phone).await;
    let record = phone.replica().record_id();
    assert_eq!(node.clinic.patients().unwrap()[0].record, record);
    assert_eq!(
        node.clinic.patients().unwrap()[0].name.as_deref(),
        Some("Mia Lopez"),
        "the node learns the patient's name from the profile it may read"
    );

    let jane = node.clinic.add_staff("Jane Roe", "SLP", vec![]).unwrap();
    let n = note("Practice /s/ blends daily");
    node.clinic
        .write(&record, Some(&jane.key), |r| r.add(Section::Notes, n))
        .unwrap();

    let report = sync(&phone, &node).await;
    assert_eq!(report.rejected(), 0);
    assert_eq!(
        author_of(&phone, Section::Notes),
        vec![jane.key.to_string()],
        "written under Jane's own key"
    );
    let name = phone.replica().lock().access().name_of(&jane.key);
    assert_eq!(name.as_deref(), Some("Jane Roe, SLP — Bright Steps Therapy"));

    // The laptop never meets the phone again: the phone's edit and the note reach it through
    // the node alone.
    phone.add(Section::Goals, &[("goal", "Uses 3-word phrases")]);
    sync(&phone, &node).await;
    assert_eq!(laptop.count(Section::Notes), 0);
    let report = sync(&laptop, &node).await;
    assert_eq!(report.rejected(), 0);
    assert_eq!(laptop.count(Section::Notes), 1);
    assert_eq!(laptop.count(Section::Goals), 1);
    for s in [Section::Notes, Section::Goals, Section::Profile] {
        assert_eq!(laptop.heads(s), phone.heads(s), "{s} identical");
    }
    // Sections the clinic may not read never went through it.
    phone.add(Section::Insurance, &[("payer", "Aetna"), ("member_id", "W123")]);
    sync(&phone, &node).await;
    sync(&laptop, &node).await;
    assert_eq!(laptop.count(Section::Insurance), 0);
    let node_has_insurance = node
        .clinic
        .read(&record, |r, _| Ok(r.count(Section::Insurance)))
        .unwrap();
    assert_eq!(node_has_insurance, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_pushed_while_the_phone_is_live_arrives_without_a_command() {
    let node = clinic_node().await;
    let phone = first_device().await;
    connect_phone(&node, &phone).await;
    let record = phone.replica().record_id();
    let jane = node.clinic.add_staff("Jane Roe", "SLP", vec![]).unwrap();
    let live = phone.service.keep_live(node.service.addr());
    let mut feed = phone.replica().subscribe();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Jane's first change to this record needs her credential on the phone first; it is
    // sent live ahead of the note.
    let n = note("Live note");
    node.clinic
        .write(&record, Some(&jane.key), |r| r.add(Section::Notes, n))
        .unwrap();
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(e) = feed.recv().await
                && e.batch().is_some_and(|b| b.section == Section::Notes)
            {
                return;
            }
        }
    })
    .await;
    assert!(arrived.is_ok(), "the note arrived live");
    assert_eq!(phone.count(Section::Notes), 1);
    live.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_clinician_keeps_past_notes_but_nothing_new_is_accepted() {
    let node = clinic_node().await;
    let phone = first_device().await;
    connect_phone(&node, &phone).await;
    let record = phone.replica().record_id();
    let jane = node.clinic.add_staff("Jane Roe", "SLP", vec![]).unwrap();
    let first = note("Before leaving");
    node.clinic
        .write(&record, Some(&jane.key), |r| r.add(Section::Notes, first))
        .unwrap();
    sync(&phone, &node).await;

    let (_, revoked) = node.clinic.remove_staff("Jane Roe").unwrap();
    assert_eq!(revoked, 1);
    let late = note("After leaving");
    assert!(
        node.clinic
            .write(&record, Some(&jane.key), |r| r.add(Section::Notes, late))
            .is_err(),
        "the node refuses to write as a removed clinician"
    );
    sync(&phone, &node).await;
    assert_eq!(phone.count(Section::Notes), 1, "her earlier note stays");
    let grants = phone.replica().lock().access().grants();
    let jane_grant = grants.iter().find(|(c, _)| c.audience == jane.key).unwrap();
    assert!(
        jane_grant.1.is_some(),
        "the phone holds the clinic's revocation of her grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_one_time_and_bound_to_the_clinic() {
    let node = clinic_node().await;
    let phone = first_device().await;
    let ticket = node.invite();
    connect::connect(phone.service.endpoint(), phone.replica(), &ticket, &NetConfig::local())
        .await
        .unwrap();
    // A second patient using the same one-time invitation is refused.
    let other = first_device().await;
    let err = connect::connect(other.service.endpoint(), other.replica(), &ticket, &NetConfig::local())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
    // A forged secret is refused.
    let mut forged = node.invite();
    forged.secret[0] ^= 1;
    let err = connect::connect(other.service.endpoint(), other.replica(), &forged, &NetConfig::local())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not one this clinic holds"), "{err}");
    // Refused twice, the other record granted the clinic nothing.
    assert!(
        other.replica().lock().access().grants().is_empty(),
        "a refused connection grants nothing"
    );
    // A withdrawn invitation is refused too, and is no longer listed.
    let (id, withdrawn) = node
        .clinic
        .invite(
            node.service.addr(),
            Duration::from_secs(600),
            Some(1),
            Some("wrong family".into()),
        )
        .unwrap();
    assert!(node.clinic.invites().unwrap().iter().any(|i| i.id == id));
    node.clinic.withdraw_invite(&id).unwrap();
    assert!(!node.clinic.invites().unwrap().iter().any(|i| i.id == id));
    let err = connect::connect(
        other.service.endpoint(),
        other.replica(),
        &withdrawn,
        &NetConfig::local(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("withdrawn"), "{err}");
    assert!(
        node.clinic
            .withdraw_invite(&id)
            .unwrap_err()
            .to_string()
            .contains("no invitation")
    );
    // A device that is not the record's (no certificate) cannot sync with the node.
    let stranger = first_device().await;
    let report = stranger
        .service
        .sync_once(node.service.addr(), SessionOptions::default())
        .await;
    assert!(report.is_err(), "a record the node does not host is refused");
    let _: PublicKey = node.clinic.key();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinicians_first_note_relayed_live_by_the_phone_is_accepted_by_the_laptop() {
    let node = clinic_node().await;
    let phone = first_device().await;
    let laptop = pair_new_device(&phone, "laptop").await;
    connect_phone(&node, &phone).await;
    let record = phone.replica().record_id();
    let jane = node.clinic.add_staff("Jane Roe", "SLP", vec![]).unwrap();
    // The laptop only ever hears from the phone; the phone relays what the node sends live.
    let to_node = phone.service.keep_live(node.service.addr());
    let to_phone = laptop.service.keep_live(phone.service.addr());
    let mut feed = laptop.replica().subscribe();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let n = note("Relayed");
    node.clinic
        .write(&record, Some(&jane.key), |r| r.add(Section::Notes, n))
        .unwrap();
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(e) = feed.recv().await
                && e.batch().is_some_and(|b| b.section == Section::Notes)
            {
                return;
            }
        }
    })
    .await;
    assert!(arrived.is_ok(), "the note reached the laptop through the phone");
    assert_eq!(
        laptop.count(Section::Notes),
        1,
        "Jane's grant was relayed ahead of her note, so the laptop could verify it"
    );
    to_node.abort();
    to_phone.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_patient_revokes_the_clinic_the_node_learns_it_and_stops_writing() {
    let node = clinic_node().await;
    let phone = first_device().await;
    connect_phone(&node, &phone).await;
    let record = phone.replica().record_id();
    let grant = phone
        .replica()
        .lock()
        .access()
        .grants()
        .into_iter()
        .find(|(c, _)| c.audience == node.clinic.key())
        .unwrap()
        .0;
    phone.replica().lock().revoke(&grant.short_id()).unwrap();

    let refused = phone
        .service
        .sync_once(node.service.addr(), SessionOptions::default())
        .await;
    assert!(refused.is_err(), "the phone no longer syncs with the clinic");
    // The phone said why before hanging up. The node takes that in on its own session task,
    // which may finish just after the phone's call returns: give it a bounded moment.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        let n = note("After the revocation");
        match node.clinic.write(&record, None, |r| r.add(Section::Notes, n)) {
            Err(e) => break e,
            Ok(id) if std::time::Instant::now() > until => {
                panic!("the node still wrote note {id} 10 s after the phone refused it")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(err.to_string().contains("revoked"), "{err}");
}
