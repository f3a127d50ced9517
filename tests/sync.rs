//! Two and three devices of one patient syncing over real iroh endpoints on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::sync::net::{NetConfig, Service};
use phr::sync::pair;
use phr::sync::{Replica, SessionOptions};
use phr::{Device, InitOptions, KeyPair, Section};
use serde_json::{Map, Value};

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

struct Phone {
    _dir: tempfile::TempDir,
    service: Service,
}

impl Phone {
    fn replica(&self) -> &Arc<Replica> {
        self.service.replica()
    }
    fn add(&self, section: Section, pairs: &[(&str, &str)]) -> String {
        let f = fields(section, pairs);
        self.replica().write(|r| r.add(section, f)).unwrap()
    }
    fn heads(&self, section: Section) -> Vec<phr::automerge::ChangeHash> {
        self.replica().lock().record_mut().heads(section)
    }
    fn count(&self, section: Section) -> usize {
        self.replica().lock().record().count(section)
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
    Phone { _dir: dir, service }
}

async fn pair_new_device(issuer: &Phone, name: &str) -> Phone {
    let ticket = issuer
        .service
        .pairing()
        .issue(issuer.service.addr(), Duration::from_secs(60))
        .unwrap();
    let text = ticket.to_text();
    let ticket = pair::PairTicket::parse(&text).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_laptop_receives_the_record_and_offline_edits_converge() {
    let phone = first_device().await;
    phone.add(Section::Medications, &[("name", "Amoxicillin"), ("dose", "250 mg")]);
    let laptop = pair_new_device(&phone, "laptop").await;
    assert_eq!(laptop.count(Section::Medications), 1);
    assert_eq!(laptop.heads(Section::Profile), phone.heads(Section::Profile));

    // Both edit while apart: different sections, and the same field of the same entry.
    let med = phone.replica().lock().record().list(Section::Medications).unwrap()[0]
        .id
        .clone();
    phone.add(
        Section::Labs,
        &[("test", "Ferritin"), ("value", "30"), ("date", "2024-01-02")],
    );
    laptop.add(Section::CaregiverLog, &[("date", "2024-01-02"), ("text", "Slept well")]);
    let dose = |v: &str| fields(Section::Medications, &[("dose", v)]);
    let (d1, d2) = (dose("500 mg"), dose("125 mg"));
    phone
        .replica()
        .write(|r| r.edit(Section::Medications, &med, d1))
        .unwrap();
    laptop
        .replica()
        .write(|r| r.edit(Section::Medications, &med, d2))
        .unwrap();

    let report = laptop
        .service
        .sync_once(phone.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rejected(), 0);
    for s in Section::ALL {
        assert_eq!(laptop.heads(s), phone.heads(s), "{s} converged");
    }
    let conflicts = phone.replica().lock().record().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].field, "dose");
    let a = phone.replica().lock().record().list(Section::Medications).unwrap();
    let b = laptop.replica().lock().record().list(Section::Medications).unwrap();
    assert_eq!(a, b, "identical content");
}
