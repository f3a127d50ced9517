//! Chaos convergence: a real `phr-node` process and four real `phr` homes on loopback — the
//! patient's phone (root key) and laptop, Carol (a caregiver scoped to goal progress, the
//! caregivers' log and reading medications) and Dave (the caregiver preset, revoked midway) —
//! go through a random (seeded) sequence of offline edits, syncs with the node and with each
//! other, `phr serve` processes started and killed, node restarts by SIGTERM and SIGKILL,
//! clinic pushes over the node's HTTP API, and Dave's revocation at a random point. Then
//! everyone syncs until quiescent, and per section every device that may read it holds the
//! same content, devices that may not hold nothing of it, Dave's edits after the revocation
//! are nowhere else, and nothing acknowledged was lost.
//!
//! The seed is printed; `PHR_CHAOS_SEED=N` replays a run.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::processes::{Dev, Node, Proc, free_udp_port};
use serde_json::{Value, json};

/// Random steps before the final phase.
const STEPS: usize = 90;

/// splitmix64: small, seedable, good enough to pick steps.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const PHONE: usize = 0;
const LAPTOP: usize = 1;
const CAROL: usize = 2;
const DAVE: usize = 3;

/// A device of the story, with its `phr serve` when one runs.
struct Actor {
    dev: Dev,
    port: u16,
    serve: Option<Proc>,
    /// `KEY@127.0.0.1:PORT` once it has served.
    addr: Option<String>,
}

/// An edit some device reported done.
#[derive(Debug, Clone)]
struct Acked {
    section: &'static str,
    id: String,
    by: usize,
    step: usize,
    /// Whether its writer held (or may have held) Dave's caregivers' log changes when it wrote.
    tainted: bool,
}

/// Sections compared at the end, and who may read each (by actor index), beside the node.
fn readers(section: &str) -> &'static [usize] {
    match section {
        "medications" | "goals" | "caregiver_log" => &[PHONE, LAPTOP, CAROL],
        _ => &[PHONE, LAPTOP],
    }
}
const COMPARED: [&str; 6] = [
    "medications",
    "insurance",
    "caregiver_log",
    "goals",
    "notes",
    "messages",
];

fn session_note(id: &str, text: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "type": { "text": "Speech therapy progress note" },
        "author": [{ "type": "Practitioner", "display": "Jane Roe" }],
        "description": format!("Plan: {text}"),
        "context": { "period": { "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T10:45:00Z" } }
    })
}

/// Sum of `applied` received and changes sent in `phr sync --json` output, audit log aside;
/// None if the output is not a sync report.
fn traffic(out: &str) -> Option<u64> {
    let reports: Value = serde_json::from_str(out).ok()?;
    let mut n = 0;
    for r in reports.as_array()? {
        let report = &r["report"];
        for (section, got) in report["received"].as_object().into_iter().flatten() {
            if section != "audit" {
                n += got["applied"].as_u64().unwrap_or(0);
            }
        }
        for (section, sent) in report["sent"].as_object().into_iter().flatten() {
            if section != "audit" {
                n += sent.as_u64().unwrap_or(0);
            }
        }
    }
    Some(n)
}

struct World {
    node: Node,
    actors: Vec<Actor>,
    goal: String,
    med: String,
    acked: Vec<Acked>,
    pushed: Vec<String>,
    /// Sections the node was ever sent, from every sync report against it.
    sent_to_node: BTreeSet<String>,
    revoked_at: Option<usize>,
    dave_grant: String,
    log: Vec<String>,
    /// Devices that synced, directly or through others, with Dave: their later writes to the
    /// caregivers' log may depend on changes of his that his revocation cuts off.
    tainted: [bool; 4],
}

impl World {
    fn say(&mut self, what: String) {
        eprintln!("chaos: {what}");
        self.log.push(what);
    }

    fn add(&mut self, who: usize, step: usize, section: &'static str, fields: &[&str]) {
        let mut args = vec!["add", section];
        args.extend_from_slice(fields);
        args.push("--json");
        let out = self.actors[who].dev.phr(&args);
        assert!(!out.stderr.contains("panicked"), "{}: {}", out.line, out.stderr);
        if out.code == Some(0) {
            let id = out.json()["id"].as_str().unwrap_or_default().to_string();
            self.acked.push(Acked {
                section,
                id,
                by: who,
                step,
                tainted: self.tainted[who],
            });
        } else {
            self.say(format!("`{}` refused: {}", out.line, out.stderr.trim()));
        }
    }

    /// An offline edit by `who` in a section it may write.
    fn edit(&mut self, rng: &mut Rng, who: usize, step: usize) {
        let tag = format!("s{step}");
        let date = "2024-06-01";
        match who {
            PHONE | LAPTOP => match rng.below(5) {
                0 => self.add(
                    who,
                    step,
                    "medications",
                    &["--name", &format!("drug {tag}"), "--dose", "1 mg"],
                ),
                1 => self.add(
                    who,
                    step,
                    "insurance",
                    &["--payer", &format!("payer {tag}"), "--member-id", &tag],
                ),
                2 => self.add(
                    who,
                    step,
                    "caregiver_log",
                    &["--date", date, "--text", &format!("log {tag}")],
                ),
                3 => self.add(
                    who,
                    step,
                    "messages",
                    &["--thread", "Chaos", "--body", &format!("msg {tag}")],
                ),
                _ => {
                    // Concurrent edits of one field: kept as a conflict, the same everywhere.
                    let dose = format!("{} mg", rng.below(500));
                    let med = self.med.clone();
                    let out = self.actors[who].dev.phr(["edit", "medications", &med, "--dose", &dose]);
                    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
                    self.say(format!(
                        "{} sets the dose to {dose}: exit {:?}",
                        self.actors[who].dev.name, out.code
                    ));
                }
            },
            CAROL if rng.chance(50) => {
                let goal = self.goal.clone();
                let v = rng.below(100).to_string();
                let out = self.actors[who]
                    .dev
                    .phr(["goal", "progress", &goal, "--value", &v, "--note", &tag]);
                assert_eq!(out.code, Some(0), "{}: {}", out.line, out.stderr);
            }
            _ => self.add(
                who,
                step,
                "caregiver_log",
                &["--date", date, "--text", &format!("log {tag}")],
            ),
        }
    }

    /// `phr sync` from `who` with `peer`; returns its traffic if it succeeded.
    fn sync(&mut self, who: usize, peer: &str, to_node: bool) -> Option<u64> {
        let out = self.actors[who].dev.sync_with(peer);
        assert!(
            !out.stderr.contains("panicked"),
            "{} panicked:\n{}\nnode log:\n{}",
            out.line,
            out.stderr,
            self.node.log()
        );
        if to_node && let Ok(reports) = serde_json::from_str::<Value>(&out.stdout) {
            for r in reports.as_array().into_iter().flatten() {
                for (section, n) in r["report"]["sent"].as_object().into_iter().flatten() {
                    if n.as_u64().unwrap_or(0) > 0 {
                        self.sent_to_node.insert(section.clone());
                    }
                }
            }
        }
        let ok = out.code == Some(0);
        let t = if ok { traffic(&out.stdout) } else { None };
        if t.is_some()
            && !to_node
            && let Some(other) = self.actors.iter().position(|a| a.addr.as_deref() == Some(peer))
            && (self.tainted[who] || self.tainted[other])
        {
            self.tainted[who] = true;
            self.tainted[other] = true;
        }
        let name = self.actors[who].dev.name.clone();
        let target = if to_node { "the node" } else { peer };
        match t {
            Some(n) => self.say(format!("{name} synced with {target}: {n} change(s) moved")),
            None => self.say(format!("{name} could not sync with {target}: {}", out.stderr.trim())),
        }
        t
    }

    fn start_serve(&mut self, who: usize, live: bool) {
        if self.actors[who].serve.is_some() {
            return;
        }
        let bind = format!("127.0.0.1:{}", self.actors[who].port);
        let mut args = vec!["serve".to_string(), "--bind".into(), bind];
        if live && self.node.running() {
            args.extend(["--peer".into(), self.node.sync.clone()]);
        }
        let mut serve = self.actors[who].dev.spawn(&args);
        let line = serve.wait_line(|l| l.contains("phr sync --peer "));
        let addr = line.rsplit(' ').next().unwrap_or_default().to_string();
        self.actors[who].addr = Some(addr);
        self.actors[who].serve = Some(serve);
        let name = self.actors[who].dev.name.clone();
        self.say(format!(
            "{name} serves{}",
            if live { ", live with the node" } else { "" }
        ));
    }

    fn stop_serve(&mut self, who: usize, signal: &str) {
        if let Some(serve) = self.actors[who].serve.take() {
            let out = serve.signal(signal);
            assert!(!out.stderr.contains("panicked"), "{}: {}", out.line, out.stderr);
            let name = self.actors[who].dev.name.clone();
            self.say(format!("{name}'s serve stopped by SIG{signal}"));
        }
    }

    fn push_note(&mut self, step: usize) {
        let record = self.actors[PHONE].dev.record();
        let id = format!("chaos-{step}");
        let path = format!("/v1/patients/{record}/notes");
        let note = session_note(&id, &format!("note {step}")).to_string();
        match self
            .node
            .try_call("POST", &path, Some(&self.node.token.clone()), Some(&note))
        {
            Ok((200 | 201, body)) => {
                let entry = body["id"].as_str().unwrap_or_default().to_string();
                self.pushed.push(entry);
                self.say(format!("the clinic pushed note {id}"));
            }
            Ok((status, body)) => self.node.fail(format!("push answered {status}: {body}")),
            Err(e) => self.say(format!("push failed: {e}")),
        }
    }

    fn revoke(&mut self, step: usize) {
        // What of Dave's the phone holds now is what stays valid.
        let grant = self.dave_grant.clone();
        let out = self.actors[PHONE].dev.phr(["access", "revoke", &grant[..12]]);
        assert_eq!(out.code, Some(0), "{}: {}", out.line, out.stderr);
        self.revoked_at = Some(step);
        self.say(format!("the phone revokes Dave's grant at step {step}"));
    }

    /// A section's entries on a device, as `phr list --json` shows them.
    fn list(&self, who: usize, section: &str) -> Vec<Value> {
        self.actors[who].dev.list(section)
    }
}

#[test]
fn random_edits_disconnects_restarts_and_a_revocation_converge_to_what_each_device_may_hold() {
    let started = Instant::now();
    let seed = std::env::var("PHR_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("chaos seed: {seed} (replay with PHR_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);

    // --- The cast.
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Dev::init("Mia Lopez", "phone");
    let goal = phone.json([
        "add",
        "goals",
        "--goal",
        "Produce /s/ in words",
        "--unit",
        "% correct",
        "--json",
    ])["id"]
        .as_str()
        .expect("the goal's id")
        .to_string();
    let med = phone.json([
        "add",
        "medications",
        "--name",
        "Amoxicillin",
        "--dose",
        "250 mg",
        "--json",
    ])["id"]
        .as_str()
        .expect("the medication's id")
        .to_string();
    phone.ok(["add", "insurance", "--payer", "Blue Shield", "--member-id", "XYZ123"]);
    let laptop = phone.pair("laptop");
    let carol = phone.share(
        "carol",
        &[
            "--sections",
            "goals=progress,caregiver_log=write,medications=read",
            "--label",
            "Carol",
        ],
    );
    let dave = phone.share("dave", &["--preset", "caregiver", "--label", "Dave"]);
    let grants = phone.json(["access", "list", "--json"]);
    let dave_grant = grants
        .as_array()
        .and_then(|a| a.iter().find(|g| g["label"] == "Dave"))
        .and_then(|g| g["id"].as_str())
        .expect("Dave's grant")
        .to_string();
    phone.connect(&node);
    let actors = [phone, laptop, carol, dave]
        .into_iter()
        .map(|dev| Actor {
            dev,
            port: free_udp_port(),
            serve: None,
            addr: None,
        })
        .collect();
    let mut w = World {
        node,
        actors,
        goal,
        med,
        acked: Vec::new(),
        pushed: Vec::new(),
        sent_to_node: BTreeSet::new(),
        revoked_at: None,
        dave_grant,
        log: Vec::new(),
        tainted: [false, false, false, true],
    };
    let revoke_at = 15 + rng.below(STEPS - 30);
    // Dave's entries the phone held when it revoked him: those stay valid everywhere.
    let mut dave_kept: BTreeSet<String> = BTreeSet::new();
    let dave_key = w.actors[DAVE].dev.key();
    eprintln!(
        "chaos: set up in {:?}; the revocation comes at step {revoke_at}",
        started.elapsed()
    );

    // --- The random phase.
    for step in 0..STEPS {
        if step == revoke_at {
            dave_kept = w
                .list(PHONE, "caregiver_log")
                .iter()
                .filter(|e| e["author"].as_str() == Some(dave_key.as_str()))
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect();
            w.revoke(step);
            continue;
        }
        match rng.below(100) {
            0..=34 => {
                let who = rng.below(4);
                w.edit(&mut rng, who, step);
            }
            35..=64 => {
                // `phr sync` needs the home to itself: only a device not serving dials.
                let idle: Vec<usize> = (0..4).filter(|i| w.actors[*i].serve.is_none()).collect();
                if idle.is_empty() {
                    continue;
                }
                let who = idle[rng.below(idle.len())];
                let mut targets: Vec<(String, bool)> = w
                    .actors
                    .iter()
                    .enumerate()
                    .filter(|(i, a)| *i != who && a.serve.is_some())
                    .filter_map(|(_, a)| a.addr.clone().map(|x| (x, false)))
                    .collect();
                if w.node.running() {
                    targets.push((w.node.sync.clone(), true));
                }
                if !targets.is_empty() {
                    let (peer, to_node) = targets[rng.below(targets.len())].clone();
                    w.sync(who, &peer, to_node);
                }
            }
            65..=74 => {
                let who = rng.below(4);
                let live = rng.chance(50);
                w.start_serve(who, live);
            }
            75..=82 => {
                let serving: Vec<usize> = (0..4).filter(|i| w.actors[*i].serve.is_some()).collect();
                if !serving.is_empty() {
                    let who = serving[rng.below(serving.len())];
                    let signal = if rng.chance(50) { "KILL" } else { "TERM" };
                    w.stop_serve(who, signal);
                }
            }
            83..=89 => {
                if w.node.running() {
                    let signal = if rng.chance(50) { "KILL" } else { "TERM" };
                    w.node.stop_with(signal);
                    w.say(format!("the node stopped by SIG{signal}"));
                    if rng.chance(60) {
                        w.node.start();
                        w.say("the node restarted".into());
                    }
                } else {
                    w.node.start();
                    w.say("the node restarted".into());
                }
            }
            _ => {
                if w.node.running() {
                    w.push_note(step);
                }
            }
        }
    }
    if w.revoked_at.is_none() {
        w.revoke(STEPS);
    }
    eprintln!("chaos: random phase done at {:?}", started.elapsed());

    // --- The final phase: serves stop, the node runs, the phone serves, everyone syncs until
    // a whole round moves nothing.
    for who in 0..4 {
        w.stop_serve(who, "TERM");
    }
    if !w.node.running() {
        w.node.start();
    }
    w.start_serve(PHONE, false);
    let phone_addr = w.actors[PHONE].addr.clone().expect("the phone serves");
    let node_addr = w.node.sync.clone();
    // Dave tries once more: he is refused, and learns why.
    let out = w.actors[DAVE].dev.sync_with(&phone_addr);
    assert_eq!(out.code, Some(1), "the revoked caregiver is refused: {}", out.stdout);
    assert!(out.stderr.contains("revoked"), "{}", out.stderr);
    let out = w.actors[DAVE].dev.sync_with(&node_addr);
    assert_eq!(
        out.code,
        Some(1),
        "the node refuses the revoked caregiver: {}",
        out.stdout
    );
    // `phr sync` needs the home to itself, so the phone stops serving for its own sync with
    // the node, then serves again for the others.
    let mut quiet = false;
    for round in 0..6 {
        let mut moved = 0;
        w.stop_serve(PHONE, "TERM");
        let mut syncs = vec![(PHONE, node_addr.clone(), true)];
        for who in [LAPTOP, CAROL] {
            syncs.push((who, node_addr.clone(), true));
            syncs.push((who, phone_addr.clone(), false));
        }
        for (who, peer, to_node) in syncs {
            if who != PHONE {
                w.start_serve(PHONE, false);
            }
            match w.sync(who, &peer, to_node) {
                Some(n) => moved += n,
                None => w.node.fail(format!(
                    "round {round}: a final sync failed; story:\n{}",
                    w.log.join("\n")
                )),
            }
        }
        if moved == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "no quiescence after 6 rounds; story:\n{}", w.log.join("\n"));
    w.stop_serve(PHONE, "TERM");
    eprintln!("chaos: quiescent at {:?}", started.elapsed());

    // --- Every device that may read a section holds the same content.
    let revoked_at = w.revoked_at.unwrap_or(STEPS);
    let mut held: BTreeMap<(&str, usize), Vec<Value>> = BTreeMap::new();
    for section in COMPARED {
        for &who in readers(section) {
            held.insert((section, who), w.list(who, section));
        }
        let first = &held[&(section, readers(section)[0])];
        for &who in &readers(section)[1..] {
            assert_eq!(
                &held[&(section, who)],
                first,
                "{section} differs between {} and {}; seed {seed}; story:\n{}",
                w.actors[readers(section)[0]].dev.name,
                w.actors[who].dev.name,
                w.log.join("\n")
            );
        }
    }
    // Carol's goal progress is the same on the phone as on her device (compared above) and
    // the node's messages are the phone's.
    let record = w.actors[PHONE].dev.record();
    let on_node = w.node.get(&format!("/v1/patients/{record}/messages")).to_string();
    for m in &held[&("messages", PHONE)] {
        let body = m["fields"]["body"].as_str().unwrap_or_default();
        assert!(on_node.contains(body), "the node lacks message `{body}`");
    }

    // --- Devices that may not read a section hold nothing of it; the node was never sent
    // what its grant does not cover.
    for (who, section) in [
        (CAROL, "insurance"),
        (CAROL, "notes"),
        (CAROL, "messages"),
        (DAVE, "insurance"),
    ] {
        let got = w.list(who, section);
        assert!(got.is_empty(), "{} holds {section}: {got:#?}", w.actors[who].dev.name);
    }
    for section in ["insurance", "caregiver_log", "audit"] {
        assert!(
            !w.sent_to_node.contains(section),
            "the node was sent {section}: {:?}",
            w.sent_to_node
        );
    }

    // --- Nothing acknowledged was lost, and Dave's late edits are nowhere else.
    let mut ids: BTreeMap<(&str, usize), BTreeSet<String>> = BTreeMap::new();
    for ((section, who), entries) in &held {
        let set = entries
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        ids.insert((section, *who), set);
    }
    // An honest entry written on a device that held changes of Dave's beyond his cutoff was
    // built on them: when its writer heard of the revocation, it wrote the entry again. Those
    // written after syncing with Dave (directly or not) are counted, to show the case ran.
    let mut after_dave = BTreeSet::new();
    for a in &w.acked {
        let from_dave = a.by == DAVE;
        for &who in readers(a.section) {
            let has = ids[&(a.section, who)].contains(&a.id);
            if !from_dave {
                assert!(
                    has,
                    "{} lost {} entry {} written by {} at step {}; seed {seed}; story:\n{}",
                    w.actors[who].dev.name,
                    a.section,
                    a.id,
                    w.actors[a.by].dev.name,
                    a.step,
                    w.log.join("\n")
                );
                if a.tainted {
                    after_dave.insert(a.id.clone());
                }
            } else if a.step > revoked_at {
                assert!(
                    !has,
                    "Dave's post-revocation entry {} reached {}",
                    a.id, w.actors[who].dev.name
                );
            } else if dave_kept.contains(&a.id) {
                assert!(has, "Dave's entry {} that the phone held at revocation is gone", a.id);
            }
        }
    }
    // Whatever of Dave's survives is exactly what the phone held when it revoked him.
    let dave_everywhere: BTreeSet<String> = held[&("caregiver_log", PHONE)]
        .iter()
        .filter(|e| e["author"].as_str() == Some(dave_key.as_str()))
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(dave_everywhere, dave_kept, "Dave's entries after the cutoff");
    // Every note the node acknowledged reached the patient's devices.
    for id in &w.pushed {
        for who in [PHONE, LAPTOP] {
            assert!(
                ids[&("notes", who)].contains(id),
                "note {id} missing on {}",
                w.actors[who].dev.name
            );
        }
    }
    // The revoked caregiver never had insurance, and the node survived all of it.
    assert_eq!(w.node.health(), 200);
    let dave_only: Vec<&Acked> = w.acked.iter().filter(|a| a.by == DAVE && a.step > revoked_at).collect();
    eprintln!(
        "chaos: seed {seed}: {} acknowledged edits ({} by Dave after the revocation; {} honest ones written on a \
         device that had synced with Dave's, every one kept), {} clinic notes, done in {:?}",
        w.acked.len(),
        dave_only.len(),
        after_dave.len(),
        w.pushed.len(),
        started.elapsed()
    );
}
