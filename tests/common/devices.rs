//! Patient devices on real loopback iroh endpoints, for tests that sync in one process.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::sync::Arc;
use std::time::Duration;

use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::sync::net::{NetConfig, Service};
use phr::sync::pair;
use phr::sync::{Replica, SessionOptions};
use phr::{Device, InitOptions, KeyPair, Section};
use serde_json::{Map, Value};

/// Key stretching cheap enough for tests (the real default takes ~20 ms per open).
pub fn fast() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

/// An entry's fields as the CLI would parse them.
pub fn fields(section: Section, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    parse_fields(section, &args).unwrap()
}

/// One of the patient's devices, serving on loopback.
pub struct Phone {
    /// Its home directory, removed when the phone is dropped.
    pub dir: tempfile::TempDir,
    /// Its endpoint.
    pub service: Service,
}

impl Phone {
    /// The shared device.
    pub fn replica(&self) -> &Arc<Replica> {
        self.service.replica()
    }
    /// Add an entry; returns its id.
    pub fn add(&self, section: Section, pairs: &[(&str, &str)]) -> String {
        let f = fields(section, pairs);
        self.replica().write(|r| r.add(section, f)).unwrap()
    }
    /// A section's heads.
    pub fn heads(&self, section: Section) -> Vec<phr::automerge::ChangeHash> {
        self.replica().lock().record_mut().heads(section)
    }
    /// How many entries a section holds.
    pub fn count(&self, section: Section) -> usize {
        self.replica().lock().record().count(section)
    }
}

/// A new record's first device (holding the root key), for patient Mia Lopez.
pub async fn first_device() -> Phone {
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
    Phone { dir, service }
}

/// Pair a new device with `issuer` by ticket, and sync it once.
pub async fn pair_new_device(issuer: &Phone, name: &str) -> Phone {
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
    Phone { dir, service }
}

/// Log steps of progress on `goal` whose values the writing device does not check, as a
/// hostile or broken peer could: checked steps of 0 are logged, then their values are
/// overwritten with the given ones in the same change.
pub fn progress_unchecked(r: &mut phr::Record, goal: &str, steps: &[(chrono::NaiveDate, f64)]) -> phr::Result<()> {
    use phr::automerge::transaction::Transactable;
    use phr::automerge::{ROOT, ReadDoc};
    r.batched("progress", |r| {
        for (date, _) in steps {
            r.goal_progress(goal, *date, 0.0, None)?;
        }
        let doc = r.doc(Section::Goals);
        let (_, entry) = doc.get(ROOT, goal)?.expect("the goal");
        let (_, list) = doc.get(&entry, "progress")?.expect("its progress");
        let first = doc.length(&list) - steps.len();
        for (i, (_, value)) in steps.iter().enumerate() {
            let (_, step) = doc.get(&list, first + i)?.expect("a new step");
            doc.put(&step, "value", *value)?;
        }
        Ok(())
    })
}
