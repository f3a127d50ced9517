//! Property: however devices of one record edit and sync — concurrently, in any order, with
//! the network split into parts for a while — once everyone can reach everyone again and
//! syncs, every replica holds the same changes and shows the same content.
//!
//! Transport (framing, sessions, iroh) is covered by tests/sync.rs and tests/hostile_sync.rs;
//! this property drives the record-level half of sync directly, in process, exactly as a
//! session does: membership statements first, then for every section the receiver's clock
//! (`Device::clocks` through `exchange::from_wire`), the sender's `outgoing` batch for it, and
//! the receiver's `incoming_many`, which verifies and durably applies. So it exercises
//! clocks, the choice of what to send (snapshot or bundle), signature and authorship
//! verification, apply, and the sealed store (devices are also reopened and compacted along
//! the way).

use std::path::PathBuf;

use phr::access::Statement;
use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::exchange::from_wire;
use phr::identity::DeviceCert;
use phr::record::EntryView;
use phr::{Device, InitOptions, KeyPair, Section};
use proptest::prelude::*;
use serde_json::{Map, Value};

const PASS: &str = "pw";

fn fast() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

/// Sections edited, each with a field that edits (concurrently, too) overwrite.
const SECTIONS: [(Section, &str); 3] = [
    (Section::Medications, "dose"),
    (Section::Labs, "value"),
    (Section::CaregiverLog, "text"),
];

fn new_entry(section: Section, n: u16) -> Map<String, Value> {
    let pairs: Vec<(&str, String)> = match section {
        Section::Medications => vec![("name", format!("drug {n}")), ("dose", format!("{n} mg"))],
        Section::Labs => vec![
            ("test", format!("test {n}")),
            ("value", n.to_string()),
            ("date", "2024-03-01".into()),
        ],
        _ => vec![("date", "2024-03-01".into()), ("text", format!("day {n}"))],
    };
    fields(section, &pairs)
}

fn fields(section: Section, pairs: &[(&str, String)]) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    parse_fields(section, &args).unwrap()
}

fn edit_value(section: Section, n: u16) -> String {
    match section {
        Section::Medications => format!("{n} mg"),
        Section::Labs => n.to_string(),
        _ => format!("note {n}"),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Replica `who` adds an entry to a section.
    Add { who: usize, section: usize, n: u16 },
    /// Replica `who` edits the edit-field of its `entry`-th entry (mod count) of a section;
    /// entries are listed oldest first, so low indexes make replicas edit the same entry.
    Edit {
        who: usize,
        section: usize,
        entry: usize,
        n: u16,
    },
    /// `from` sends `to` what it lacks (skipped if the pair is cut in this phase).
    Sync { from: usize, to: usize },
    /// Close and reopen a replica's store.
    Reopen { who: usize },
    /// Fold a replica's changes into snapshots.
    Compact { who: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..4usize;
    prop_oneof![
        3 => (who.clone(), 0..3usize, any::<u16>()).prop_map(|(who, section, n)| Op::Add { who, section, n }),
        3 => (who.clone(), 0..3usize, 0..3usize, any::<u16>())
            .prop_map(|(who, section, entry, n)| Op::Edit { who, section, entry, n }),
        4 => (who.clone(), who.clone()).prop_map(|(from, to)| Op::Sync { from, to }),
        1 => who.clone().prop_map(|who| Op::Reopen { who }),
        1 => who.prop_map(|who| Op::Compact { who }),
    ]
}

/// A phase: some pairs cannot reach each other (bit `i * 4 + j` of the mask cuts `i`–`j`,
/// both ways), and a run of operations.
fn phases() -> impl Strategy<Value = Vec<(u16, Vec<Op>)>> {
    prop::collection::vec((any::<u16>(), prop::collection::vec(op(), 1..14)), 1..4)
}

fn cut(mask: u16, a: usize, b: usize) -> bool {
    let (i, j) = (a.min(b), a.max(b));
    mask & (1 << (i * 4 + j)) != 0
}

struct Replicas {
    _dirs: Vec<tempfile::TempDir>,
    homes: Vec<PathBuf>,
    devices: Vec<Option<Device>>,
}

impl Replicas {
    /// One record on `n` devices: the first created it, the others were certified by its root
    /// key one after another, each told the membership known at that time.
    fn new(n: usize) -> Replicas {
        let mut dirs = Vec::new();
        let mut devices = Vec::new();
        let first = tempfile::tempdir().unwrap();
        let mut root_device = Device::init(
            first.path(),
            PASS,
            InitOptions {
                name: "Mia Lopez".into(),
                dob: None,
                device_name: "device 0".into(),
                kdf: fast(),
            },
        )
        .unwrap();
        dirs.push(first);
        let root = root_device.root().expect("the first device holds the root").clone();
        let mut members = Vec::new();
        for i in 1..n {
            let dir = tempfile::tempdir().unwrap();
            let key = KeyPair::generate();
            let name = format!("device {i}");
            let cert = DeviceCert::issue(&root, key.public(), &name, chrono::Utc::now().timestamp());
            root_device
                .merge_statements(vec![Statement::Device(cert.clone())])
                .unwrap();
            let statements: Vec<Statement> = root_device.access().statements().cloned().collect();
            members.push(Device::create_member(dir.path(), PASS, key, cert, statements, fast()).unwrap());
            dirs.push(dir);
        }
        devices.push(Some(root_device));
        devices.extend(members.into_iter().map(Some));
        Replicas {
            homes: dirs.iter().map(|d| d.path().to_path_buf()).collect(),
            _dirs: dirs,
            devices,
        }
    }

    fn len(&self) -> usize {
        self.devices.len()
    }

    fn get(&mut self, i: usize) -> &mut Device {
        self.devices[i].as_mut().expect("device is open")
    }

    fn reopen(&mut self, i: usize) {
        drop(self.devices[i].take());
        self.devices[i] = Some(Device::open(&self.homes[i], PASS).unwrap());
    }

    /// Everything `from` has that `to` lacks, the way a session sends it.
    fn sync(&mut self, from: usize, to: usize) -> Result<(), TestCaseError> {
        if from == to {
            return Ok(());
        }
        let (f, t) = if from < to {
            let (lo, hi) = self.devices.split_at_mut(to);
            (lo[from].as_mut().unwrap(), hi[0].as_mut().unwrap())
        } else {
            let (lo, hi) = self.devices.split_at_mut(from);
            (hi[0].as_mut().unwrap(), lo[to].as_mut().unwrap())
        };
        // Membership first, as in a session (only what the receiver lacks: checking a
        // signature costs milliseconds in a debug build).
        let known: Vec<Statement> = t.access().statements().cloned().collect();
        let news: Vec<Statement> = f
            .access()
            .statements()
            .filter(|s| !known.contains(s))
            .cloned()
            .collect();
        t.merge_statements(news).unwrap();
        let mut batches = Vec::new();
        for (section, clock) in t.clocks() {
            if let Some(b) = f.outgoing(section, &from_wire(&clock)).unwrap() {
                batches.push(b);
            }
        }
        if batches.is_empty() {
            return Ok(());
        }
        let sent: u32 = batches.iter().map(|b| b.count).sum();
        let got = t.incoming_many(batches).unwrap();
        let rejected: Vec<&String> = got.iter().flat_map(|r| &r.rejected).collect();
        prop_assert!(
            rejected.is_empty(),
            "honest changes rejected {from}->{to}: {rejected:?}"
        );
        let taken: u32 = got.iter().map(|r| r.applied + r.duplicates).sum();
        prop_assert!(
            taken > 0 && taken <= sent,
            "{from}->{to}: sent {sent}, applied+dup {taken}"
        );
        Ok(())
    }

    fn apply(&mut self, op: &Op, mask: u16) -> Result<(), TestCaseError> {
        let n = self.len();
        match *op {
            Op::Add { who, section, n: v } => {
                let (s, _) = SECTIONS[section];
                let f = new_entry(s, v);
                self.get(who % n).write(|r| r.add(s, f)).unwrap();
            }
            Op::Edit {
                who,
                section,
                entry,
                n: v,
            } => {
                let (s, field) = SECTIONS[section];
                let d = self.get(who % n);
                let list = d.record().list(s).unwrap();
                if list.is_empty() {
                    return Ok(());
                }
                let id = list[entry % list.len()].id.clone();
                let mut change = Map::new();
                change.insert(field.to_string(), Value::String(edit_value(s, v)));
                d.write(|r| r.edit(s, &id, change)).unwrap();
            }
            Op::Sync { from, to } => {
                let (from, to) = (from % n, to % n);
                if !cut(mask, from, to) {
                    self.sync(from, to)?;
                }
            }
            Op::Reopen { who } => self.reopen(who % n),
            Op::Compact { who } => self.get(who % n).compact().unwrap(),
        }
        Ok(())
    }

    fn heads(&mut self, i: usize) -> Vec<Vec<phr::automerge::ChangeHash>> {
        let d = self.get(i);
        Section::SYNCED
            .iter()
            .map(|s| {
                let mut h = d.record_mut().heads(*s);
                h.sort();
                h
            })
            .collect()
    }

    fn content(&mut self, i: usize) -> Vec<Vec<EntryView>> {
        let d = self.get(i);
        Section::SYNCED.iter().map(|s| d.record().list(*s).unwrap()).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_once_everyone_syncs(n in 3..=4usize, phases in phases()) {
        let mut r = Replicas::new(n);
        for (mask, ops) in &phases {
            for op in ops {
                r.apply(op, *mask)?;
            }
        }
        // The network heals: everyone syncs with everyone, both ways. One round suffices, as
        // every change is sent by a replica holding it when that replica's turn comes;
        // checked below by finding nothing left to send.
        for i in 0..n {
            for j in 0..n {
                r.sync(i, j)?;
            }
        }
        let heads = r.heads(0);
        let content = r.content(0);
        let conflicts = r.get(0).record().conflicts().unwrap();
        for i in 1..n {
            prop_assert_eq!(&r.heads(i), &heads, "heads of replica {} differ from replica 0", i);
            prop_assert_eq!(&r.content(i), &content, "content of replica {} differs from replica 0", i);
            prop_assert_eq!(&r.get(i).record().conflicts().unwrap(), &conflicts);
        }
        // Nothing is left to send between any two of them.
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let clocks = r.get(j).clocks();
                    for (section, clock) in clocks {
                        let out = r.get(i).outgoing(section, &from_wire(&clock)).unwrap();
                        prop_assert!(out.is_none(), "{}->{} would still send {}", i, j, section);
                    }
                }
            }
        }
        // And what they converged on is what they stored (every replica may also have been
        // reopened along the way).
        r.reopen(n - 1);
        prop_assert_eq!(&r.heads(n - 1), &heads, "replica {} after reopening", n - 1);
        prop_assert_eq!(&r.content(n - 1), &content, "replica {} content after reopening", n - 1);
    }
}
