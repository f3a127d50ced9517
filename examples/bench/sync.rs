//! Group `sync`: issue 3's targets for sync over iroh, on real loopback endpoints.
//!
//! | benchmark             | phr                                                         | baseline (same run)                              |
//! |-----------------------|-------------------------------------------------------------|--------------------------------------------------|
//! | initial sync 10k/100k | `sync_once` on an empty member, from dial to return          | stock Automerge sync of the same docs, in memory; `save()` size for bytes |
//! | reconnect             | `sync_once` after 1,000 offline changes per side on ~10,000 shared | stock Automerge sync of the same divergence, in memory |
//! | live edit             | `Replica::write` on A until B published it applied and durable | iroh 64-byte echo RTT + one `apply_changes` into a 10k-change doc + one durable redb commit, sampled after every edit |
//! | many records          | 1,000 records × 10 changes in one `HostService::sync_once`   | one record × 10,000 changes, same setup          |
//!
//! Every host is wrapped in [`Traced`], which times each call a session makes into it; the
//! group prints those timings on stderr so a missed target can be explained. Set
//! `BENCH_SYNC_PARTS=initial,reconnect,live,many` to run only some parts (for profiling;
//! `takein` adds a diagnostic timing the steps of taking in a whole section), and
//! `BENCH_DEBUG=1` to print every stock-sync message size.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use phr::access::Statement;
use phr::automerge::AutoCommit;
use phr::automerge::sync::{Message, State, SyncDoc};
use phr::entry::parse_fields;
use phr::exchange::{Batch, Received};
use phr::identity::DeviceCert;
use phr::library::Library;
use phr::record::Record;
use phr::sync::net::{self, NetConfig};
use phr::sync::replica::Entered;
use phr::sync::wire::RecordHello;
use phr::sync::{Host, HostService, LibraryHost, Replica, SessionOptions, SessionReport};
use phr::verify::Clock;
use phr::{Device, InitOptions, KeyPair, PublicKey, RecordId, Section};
use serde_json::{Map, Value};
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

use crate::{Ctx, PASS, Row, bytes, cheap, median, ms, now, percentile};

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut initial = Vec::new();
    let mut reconnect = Vec::new();
    let mut live = Vec::new();
    let mut many = Vec::new();
    // BENCH_SYNC_PARTS=initial,reconnect,live,many narrows the run (for profiling); the
    // figures in docs/BENCHMARKS.md come from a full run.
    let parts = std::env::var("BENCH_SYNC_PARTS").unwrap_or_default();
    let part = |p: &str| parts.is_empty() || parts.split(',').any(|x| x == p);

    // 1 and 2: a 10,000-change record, synced to fresh members; the last member then diverges.
    if part("initial") || part("reconnect") {
        let a = Node::founder(ctx, &rt, "A");
        grow(ctx, &a, &mut Edits::new(), 10_000);
        let (rows, b) = initial_sync(ctx, &rt, &a, "10k", if part("initial") { 5 } else { 1 });
        if part("initial") {
            initial.extend(rows);
        }
        if part("reconnect") {
            reconnect.extend(divergence(ctx, &rt, &a, &b, 3));
        }
        b.shutdown(&rt);
        a.shutdown(&rt);
    }

    // 3, then 1 at 100k: one record grown 1k → 10k → 50k with a live member, then 100k.
    if part("live") || part("initial") {
        let mut levels: Vec<Level> = Vec::new();
        if part("live") {
            // Three pairs, one per history size, edited round-robin so every level sees the
            // same machine at the same time.
            for (label, history) in [("1k", 1_000), ("10k", 10_000), ("50k", 50_000)] {
                let a = Node::founder(ctx, &rt, "A");
                let mut edits = Edits::new();
                grow(ctx, &a, &mut edits, history);
                let b = Node::member(ctx, &rt, &a, "B");
                levels.push(Level { label, a, b, edits });
            }
            let echo = rt.block_on(Echo::start());
            let mut apply = ApplyBaseline::new(3 * (LIVE_EDITS + LIVE_WARMUP));
            live.extend(live_edits(ctx, &rt, &mut levels, &echo, &mut apply));
            rt.block_on(echo.shutdown());
        }
        if part("initial") {
            // Grow the largest record on to 100,000 changes.
            let (a, mut edits) = match levels.pop() {
                Some(l) => {
                    l.b.shutdown(&rt);
                    (l.a, l.edits)
                }
                None => (Node::founder(ctx, &rt, "A"), Edits::new()),
            };
            grow(ctx, &a, &mut edits, 100_000);
            let (rows, b) = initial_sync(ctx, &rt, &a, "100k", 3);
            initial.extend(rows);
            b.shutdown(&rt);
            a.shutdown(&rt);
        }
        for l in levels {
            l.b.shutdown(&rt);
            l.a.shutdown(&rt);
        }
    }

    // Diagnostic, only when named: what taking in a whole section costs, step by step.
    if parts.split(',').any(|x| x == "takein") {
        let a = Node::founder(ctx, &rt, "A");
        grow(ctx, &a, &mut Edits::new(), 100_000);
        let docs = a.docs();
        for (sec, d) in docs {
            let saved = d.clone().save();
            let (doc, t_load) = crate::timed(|| AutoCommit::load(&saved).unwrap());
            let (mut c, t_clone) = crate::timed(|| doc.clone());
            let (n, t_meta) = crate::timed(|| c.get_changes_meta(&[]).len());
            let mut c2 = doc.clone();
            let (_, t_heads) = crate::timed(|| c2.get_heads());
            let (_, t_save) = crate::timed(|| c2.save());
            eprintln!(
                "TAKEIN {sec}: {n} changes, {} bytes: load {} clone {} meta {} heads {} save {}",
                saved.len(),
                ms(t_load),
                ms(t_clone),
                ms(t_meta),
                ms(t_heads),
                ms(t_save)
            );
        }
        a.shutdown(&rt);
    }

    // 4: many small records in one session vs one large record.
    if part("many") {
        many = many_records(ctx, &rt);
    }

    let mut rows = initial;
    rows.extend(reconnect);
    rows.extend(live);
    rows.extend(many);
    rows
}

// ---------------------------------------------------------------------------------------------
// Realistic edits
// ---------------------------------------------------------------------------------------------

/// Sections the edits go to.
const EDIT_SECTIONS: [Section; 3] = [Section::Medications, Section::Labs, Section::CaregiverLog];

/// A deterministic stream of edits: about a quarter add an entry, the rest change one field of
/// an existing entry. Each edit is one Automerge change.
struct Edits {
    ids: BTreeMap<Section, Vec<String>>,
    n: usize,
    rng: u64,
}

impl Edits {
    fn new() -> Self {
        Edits {
            ids: BTreeMap::new(),
            n: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Edits that continue a record another device built (knows its entry ids).
    fn continuing(record: &Record, seed: u64) -> Self {
        let mut e = Edits::new();
        e.rng ^= seed;
        e.n = 1_000_000 * seed as usize;
        for s in EDIT_SECTIONS {
            let ids = record.list(s).expect("list").into_iter().map(|v| v.id).collect();
            e.ids.insert(s, ids);
        }
        e
    }

    fn next(&mut self) -> u64 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn apply(&mut self, r: &mut Record) -> phr::Result<()> {
        let section = EDIT_SECTIONS[self.n % EDIT_SECTIONS.len()];
        let i = self.n;
        self.n += 1;
        let add = self.ids.get(&section).is_none_or(|v| v.is_empty()) || self.next() % 100 < 25;
        if add {
            let id = r.add(section, new_fields(section, i))?;
            self.ids.entry(section).or_default().push(id);
        } else {
            let pick = self.next() as usize;
            let ids = &self.ids[&section];
            let id = ids[pick % ids.len()].clone();
            r.edit(section, &id, edit_fields(section, i))?;
        }
        Ok(())
    }
}

fn parsed(section: Section, pairs: Vec<(&str, String)>) -> Map<String, Value> {
    let args: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    parse_fields(section, &args).expect("valid fields")
}

fn new_fields(section: Section, i: usize) -> Map<String, Value> {
    let day = format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
    match section {
        Section::Medications => parsed(
            section,
            vec![
                ("name", format!("Drug {i}")),
                ("dose", "250 mg".into()),
                ("schedule", "twice daily".into()),
            ],
        ),
        Section::Labs => parsed(
            section,
            vec![
                ("test", format!("Ferritin {i}")),
                ("value", "30".into()),
                ("unit", "ng/mL".into()),
                ("date", day),
            ],
        ),
        Section::CaregiverLog => parsed(
            section,
            vec![
                ("date", day),
                ("text", format!("Log {i}: slept well, ate lunch")),
                ("category", "sleep".into()),
            ],
        ),
        _ => unreachable!(),
    }
}

fn edit_fields(section: Section, i: usize) -> Map<String, Value> {
    match section {
        Section::Medications => parsed(section, vec![("dose", format!("{} mg", 1000 + i))]),
        Section::Labs => parsed(section, vec![("notes", format!("recheck in {i} days"))]),
        Section::CaregiverLog => parsed(
            section,
            vec![("text", format!("Log edit {i}: practised /s/ words, 7 of 10"))],
        ),
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// A host that times every call a session makes into it
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Ev {
    side: &'static str,
    what: &'static str,
    start: Duration,
    took: Duration,
    n: usize,
}

/// A shared log of host calls, timed from an epoch that `reset` moves.
#[derive(Default)]
struct Trace {
    inner: Mutex<(Option<Instant>, Vec<Ev>)>,
}

impl Trace {
    fn reset(&self) {
        *self.inner.lock().unwrap() = (Some(Instant::now()), Vec::new());
    }

    fn record(&self, side: &'static str, what: &'static str, start: Instant, n: usize) {
        let took = start.elapsed();
        let mut g = self.inner.lock().unwrap();
        let epoch = *g.0.get_or_insert(start);
        g.1.push(Ev {
            side,
            what,
            start: start.saturating_duration_since(epoch),
            took,
            n,
        });
    }

    fn epoch(&self) -> Instant {
        self.inner.lock().unwrap().0.unwrap_or_else(Instant::now)
    }

    /// The latest call of one kind.
    fn last(&self, what: &str) -> Option<Ev> {
        self.inner
            .lock()
            .unwrap()
            .1
            .iter()
            .rev()
            .find(|e| e.what == what)
            .cloned()
    }

    fn events(&self) -> Vec<Ev> {
        let mut v = self.inner.lock().unwrap().1.clone();
        v.sort_by_key(|e| e.start);
        v
    }

    /// Per side and call: how many, items, total time, first start, last end.
    fn summary(&self) -> String {
        // (calls, items, busy, first start, last end)
        type Agg = (usize, usize, Duration, Duration, Duration);
        let mut agg: BTreeMap<(&str, &str), Agg> = BTreeMap::new();
        for e in self.events() {
            let a = agg
                .entry((e.side, e.what))
                .or_insert((0, 0, Duration::ZERO, Duration::MAX, Duration::ZERO));
            a.0 += 1;
            a.1 += e.n;
            a.2 += e.took;
            a.3 = a.3.min(e.start);
            a.4 = a.4.max(e.start + e.took);
        }
        let mut out = String::new();
        for ((side, what), (calls, n, total, first, last)) in agg {
            out.push_str(&format!(
                "{side} {what:<10} calls {calls:>6}  items {n:>6}  busy {:>10}  span {} – {}\n",
                ms(total),
                ms(first),
                ms(last)
            ));
        }
        out
    }
}

/// Any host, with each session call timed into a shared trace.
struct Traced<H: Host> {
    inner: Arc<H>,
    side: &'static str,
    trace: Arc<Trace>,
}

impl<H: Host> Traced<H> {
    fn time<T>(&self, what: &'static str, n: impl Fn(&T) -> usize, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.trace.record(self.side, what, t, n(&out));
        out
    }
}

impl<H: Host> Host for Traced<H> {
    fn key(&self) -> KeyPair {
        self.inner.key()
    }
    fn offer(&self, only: Option<&[RecordId]>) -> phr::Result<Vec<RecordHello>> {
        self.time(
            "offer",
            |r: &phr::Result<Vec<RecordHello>>| r.as_ref().map_or(0, Vec::len),
            || self.inner.offer(only),
        )
    }
    fn admit(&self, peer: &PublicKey, hello: &RecordHello) -> Result<(), String> {
        let r = self.time("admit", |_| 1, || self.inner.admit(peer, hello));
        if let Err(e) = &r {
            eprintln!("  {} refused record {}: {e}", self.side, hello.record.short());
        }
        r
    }
    fn statements(&self, record: &RecordId) -> phr::Result<Vec<Statement>> {
        self.time("statements", |_| 1, || self.inner.statements(record))
    }
    fn merge(&self, record: &RecordId, peer: &PublicKey, st: Vec<Statement>) -> phr::Result<bool> {
        self.time("merge", |_| 1, || self.inner.merge(record, peer, st))
    }
    fn outgoing(&self, record: &RecordId, peer: &PublicKey, s: Section, clock: &Clock) -> phr::Result<Option<Batch>> {
        self.time(
            "outgoing",
            |r: &phr::Result<Option<Batch>>| match r {
                Ok(Some(b)) => b.count as usize,
                _ => 0,
            },
            || self.inner.outgoing(record, peer, s, clock),
        )
    }
    fn may_read(&self, record: &RecordId, peer: &PublicKey, s: Section) -> bool {
        self.inner.may_read(record, peer, s)
    }
    fn incoming(&self, batches: Vec<Batch>) -> phr::Result<Vec<Received>> {
        let n: usize = batches.iter().map(|b| b.count as usize).sum();
        self.time("incoming", |_| n, || self.inner.incoming(batches))
    }
    fn subscribe(&self, records: &[RecordId]) -> broadcast::Receiver<Arc<Entered>> {
        self.inner.subscribe(records)
    }
    fn publish(&self, from: Option<PublicKey>, batch: Batch) {
        self.inner.publish(from, batch)
    }
    fn remember(&self, addr: &iroh::EndpointAddr) {
        self.time("remember", |_| 1, || self.inner.remember(addr))
    }
    fn record_session(&self, peer: &PublicKey, report: &SessionReport) {
        self.time("record", |_| 1, || self.inner.record_session(peer, report))
    }
}

/// Sections holding the record's content. The audit section is left out of counts and
/// convergence checks: each session appends to it on the side that sent something, when the
/// session ends, so it moves while the benchmark looks.
fn content_sections() -> impl Iterator<Item = Section> {
    Section::SYNCED.into_iter().filter(|s| *s != Section::Audit)
}

/// Changes applied from the peer, content sections only.
fn applied(report: &SessionReport) -> usize {
    report
        .received
        .iter()
        .filter(|(s, _)| **s != Section::Audit)
        .map(|(_, r)| r.applied as usize)
        .sum()
}

/// Changes sent to the peer, content sections only.
fn sent(report: &SessionReport) -> usize {
    report
        .sent
        .iter()
        .filter(|(s, _)| **s != Section::Audit)
        .map(|(_, n)| *n as usize)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Devices on endpoints
// ---------------------------------------------------------------------------------------------

/// A device home served on a loopback endpoint.
struct Node {
    _dir: tempfile::TempDir,
    svc: HostService<Traced<Replica>>,
    trace: Arc<Trace>,
}

impl Node {
    fn start(rt: &Runtime, dir: tempfile::TempDir, device: Device, side: &'static str) -> Node {
        let trace = Arc::new(Trace::default());
        let host = Arc::new(Traced {
            inner: Replica::new(device),
            side,
            trace: trace.clone(),
        });
        let svc = rt
            .block_on(HostService::start(host, NetConfig::local()))
            .expect("endpoint");
        Node { _dir: dir, svc, trace }
    }

    /// A new record (Device::init) on its own endpoint.
    fn founder(ctx: &Ctx, rt: &Runtime, side: &'static str) -> Node {
        let dir = ctx.dir();
        let device = Device::init(
            dir.path(),
            PASS,
            InitOptions {
                name: "Mia Lopez".into(),
                dob: Some("2017-04-12".into()),
                device_name: "phone".into(),
                kdf: cheap(),
            },
        )
        .expect("init");
        Node::start(rt, dir, device, side)
    }

    /// An empty member device of `a`'s record, certified with `a`'s root key.
    fn member(ctx: &Ctx, rt: &Runtime, a: &Node, side: &'static str) -> Node {
        let dir = ctx.dir();
        let key = KeyPair::generate();
        let (cert, statements) = {
            let dev = a.replica().lock();
            let root = dev.root().expect("the founder holds the root key");
            let cert = DeviceCert::issue(root, key.public(), "laptop", now());
            (cert, dev.access().statements().cloned().collect())
        };
        let device = Device::create_member(dir.path(), PASS, key, cert, statements, cheap()).expect("member");
        Node::start(rt, dir, device, side)
    }

    fn replica(&self) -> &Arc<Replica> {
        &self.svc.host().inner
    }

    fn key(&self) -> PublicKey {
        self.replica().device_id()
    }

    /// Changes held, summed over sections and authors.
    fn changes(&self) -> usize {
        let mut d = self.replica().lock();
        Section::ALL
            .iter()
            .map(|s| {
                d.record_mut()
                    .clock(*s)
                    .values()
                    .map(|(seq, _)| *seq as usize)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Clones of the section documents that hold anything.
    fn docs(&self) -> BTreeMap<Section, AutoCommit> {
        let mut d = self.replica().lock();
        let mut out = BTreeMap::new();
        for s in Section::SYNCED {
            if !d.record_mut().clock(s).is_empty() {
                out.insert(s, d.record_mut().doc(s).clone());
            }
        }
        out
    }

    fn same_heads(&self, other: &Node) -> bool {
        content_sections().all(|s| {
            let a = self.replica().lock().record_mut().heads(s);
            let b = other.replica().lock().record_mut().heads(s);
            a == b
        })
    }

    fn sync_from(&self, rt: &Runtime, a: &Node) -> (SessionReport, Duration) {
        let addr = a.svc.addr();
        self.trace.reset();
        a.trace.reset();
        let t = Instant::now();
        let report = rt
            .block_on(self.svc.sync_once(addr, SessionOptions::default()))
            .expect("sync");
        (report, t.elapsed())
    }

    fn shutdown(self, rt: &Runtime) {
        rt.block_on(self.svc.shutdown());
    }
}

/// Write `edits` on `node` until its record holds `total` changes (1,000 edits per write).
fn grow(ctx: &Ctx, node: &Node, edits: &mut Edits, total: usize) {
    let have = node.changes();
    if have >= total {
        return;
    }
    let t = Instant::now();
    let mut left = total - have;
    while left > 0 {
        let k = left.min(1000);
        left = left.saturating_sub(k);
        node.replica()
            .write(|r| {
                for _ in 0..k {
                    edits.apply(r)?;
                }
                Ok(())
            })
            .expect("write");
        if left == 0 {
            // An edit that changes nothing makes no change: top up.
            left = total.saturating_sub(node.changes());
        }
    }
    ctx.note(format!(
        "built {total} changes ({} new) in {:.1} s",
        total - have,
        t.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Stock Automerge sync, in memory
// ---------------------------------------------------------------------------------------------

struct Stock {
    time: Duration,
    bytes: u64,
    /// Messages, all documents together.
    messages: usize,
    /// One-way message flights on the critical path (max over documents) when both sides
    /// start at once and each answers everything it received in the previous flight: the
    /// fewest round trips the stock protocol can finish in.
    flights: usize,
}

/// Sync pairs of documents with Automerge's own protocol, every message encoded and decoded,
/// in the canonical loop: `x` (the dialer's side) speaks, `y` answers, until both are quiet.
/// Time, bytes and messages come from this loop; `flights` from [`stock_flights`].
fn stock_sync(pairs: Vec<(AutoCommit, AutoCommit)>) -> (Stock, Vec<(AutoCommit, AutoCommit)>) {
    let flights = pairs
        .iter()
        .map(|(x, y)| stock_flights(x.clone(), y.clone()))
        .max()
        .unwrap_or(0);
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut messages = 0;
    let mut done = Vec::with_capacity(pairs.len());
    for (mut x, mut y) in pairs {
        let (mut sx, mut sy) = (State::new(), State::new());
        loop {
            let mut quiet = true;
            if let Some(m) = x.sync().generate_sync_message(&mut sx) {
                let m = m.encode();
                debug_msg("x→y", m.len());
                bytes += m.len() as u64;
                messages += 1;
                quiet = false;
                let msg = Message::decode(&m).expect("decode");
                y.sync().receive_sync_message(&mut sy, msg).expect("receive");
            }
            if let Some(m) = y.sync().generate_sync_message(&mut sy) {
                let m = m.encode();
                debug_msg("y→x", m.len());
                bytes += m.len() as u64;
                messages += 1;
                quiet = false;
                let msg = Message::decode(&m).expect("decode");
                x.sync().receive_sync_message(&mut sx, msg).expect("receive");
            }
            if quiet {
                break;
            }
        }
        done.push((x, y));
    }
    let time = t.elapsed();
    (
        Stock {
            time,
            bytes,
            messages,
            flights,
        },
        done,
    )
}

fn debug_msg(dir: &str, len: usize) {
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!("    stock {dir} {len} bytes");
    }
}

/// Flights of the stock protocol when both sides start at once (full duplex).
fn stock_flights(mut x: AutoCommit, mut y: AutoCommit) -> usize {
    let (mut sx, mut sy) = (State::new(), State::new());
    let mut to_y = x.sync().generate_sync_message(&mut sx);
    let mut to_x = y.sync().generate_sync_message(&mut sy);
    let mut flights = 0;
    while to_y.is_some() || to_x.is_some() {
        flights += 1;
        if let Some(m) = to_y.take() {
            y.sync().receive_sync_message(&mut sy, m).expect("receive");
        }
        if let Some(m) = to_x.take() {
            x.sync().receive_sync_message(&mut sx, m).expect("receive");
        }
        to_y = x.sync().generate_sync_message(&mut sx);
        to_x = y.sync().generate_sync_message(&mut sy);
    }
    flights
}

// ---------------------------------------------------------------------------------------------
// 1. Initial sync
// ---------------------------------------------------------------------------------------------

fn initial_sync(ctx: &Ctx, rt: &Runtime, a: &Node, label: &str, reps: usize) -> (Vec<Row>, Node) {
    let mut ours = Vec::new();
    let mut stock_times = Vec::new();
    let mut wire = 0;
    let mut saved = 0;
    let mut stock_bytes = 0;
    let mut stock_flights = 0;
    let mut last = None;
    for rep in 0..reps {
        // A's audit log gains an entry after each session it sent in: let it land, then take
        // A's documents as they are now.
        std::thread::sleep(Duration::from_millis(100));
        let total = a.changes();
        let docs = a.docs();
        saved = docs.values().map(|d| d.clone().save().len() as u64).sum();
        // Baseline first, then phr, alternating, so drift hits both alike.
        let pairs: Vec<_> = docs.values().map(|d| (AutoCommit::new(), d.clone())).collect();
        let (stock, synced) = stock_sync(pairs);
        assert!(synced.into_iter().all(|(mut x, mut y)| x.get_heads() == y.get_heads()));
        stock_times.push(stock.time);
        stock_bytes = stock.bytes;
        stock_flights = stock.flights;

        let b = Node::member(ctx, rt, a, "B");
        let (report, took) = b.sync_from(rt, a);
        assert_eq!(applied(&report), total, "every change arrives");
        assert_eq!(report.rejected(), 0);
        assert!(b.same_heads(a));
        wire = report.traffic.sent + report.traffic.received;
        ours.push(took);
        ctx.note(format!(
            "initial {label} rep {rep}: phr {} ({} on the wire), stock {} ({}, {} flights, {} messages)",
            ms(took),
            bytes(wire),
            ms(stock.time),
            bytes(stock.bytes),
            stock.flights,
            stock.messages
        ));
        if rep + 1 == reps {
            ctx.note(format!(
                "trace of the last session (B dialed A):\n{}",
                b.trace.summary() + &a.trace.summary()
            ));
        }
        if let Some(old) = last.replace(b) {
            Node::shutdown(old, rt);
        }
    }
    let (t_ours, t_stock) = (median(&ours), median(&stock_times));
    let rows = vec![
        Row::ratio(
            format!("initial sync {label}: time (median of {reps})"),
            ms(t_ours),
            "stock Automerge sync, in memory",
            ms(t_stock),
            t_ours.as_secs_f64() / t_stock.as_secs_f64(),
            1.25,
        ),
        Row::ratio(
            format!("initial sync {label}: wire bytes"),
            bytes(wire),
            "save() of A's docs",
            bytes(saved),
            wire as f64 / saved as f64,
            1.10,
        ),
        Row::info(
            format!("initial sync {label}: stock protocol bytes"),
            bytes(wire),
            format!("stock sync bytes ({stock_flights} flights)"),
            bytes(stock_bytes),
            Some(wire as f64 / stock_bytes as f64),
        ),
    ];
    (rows, last.expect("at least one rep"))
}

// ---------------------------------------------------------------------------------------------
// 2. Reconnect after divergence
// ---------------------------------------------------------------------------------------------

// One piece: one timed scenario read top to bottom (diverge, reconnect, converge, check);
// its rounds share the nodes and the timers.
fn divergence(ctx: &Ctx, rt: &Runtime, a: &Node, b: &Node, rounds: usize) -> Vec<Row> {
    let mut a_edits = {
        let d = a.replica().lock();
        Edits::continuing(d.record(), 1)
    };
    let mut b_edits = {
        let d = b.replica().lock();
        Edits::continuing(d.record(), 2)
    };
    let mut ours = Vec::new();
    let mut stock_times = Vec::new();
    let (mut wire, mut stock_bytes, mut stock_flights, mut stock_msgs) = (0, 0, 0, 0);
    let mut shared = 0;
    for round in 0..rounds {
        shared = a.changes();
        for (node, edits) in [(a, &mut a_edits), (b, &mut b_edits)] {
            node.replica()
                .write(|r| {
                    for _ in 0..1000 {
                        edits.apply(r)?;
                    }
                    Ok(())
                })
                .expect("offline edits");
        }
        let (ad, bd) = (a.docs(), b.docs());
        let sections: Vec<Section> = Section::SYNCED
            .iter()
            .copied()
            .filter(|s| ad.contains_key(s) || bd.contains_key(s))
            .collect();
        let pairs = sections
            .iter()
            .map(|s| {
                (
                    bd.get(s).cloned().unwrap_or_default(),
                    ad.get(s).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let (stock, synced) = stock_sync(pairs);
        assert!(synced.into_iter().all(|(mut x, mut y)| x.get_heads() == y.get_heads()));

        let (report, took) = b.sync_from(rt, a);
        assert_eq!(applied(&report), 1000);
        assert_eq!(sent(&report), 1000);
        assert_eq!(report.rejected() + report.rejected_by_peer.len(), 0);
        assert!(b.same_heads(a));
        wire = report.traffic.sent + report.traffic.received;
        ours.push(took);
        stock_times.push(stock.time);
        (stock_bytes, stock_flights, stock_msgs) = (stock.bytes, stock.flights, stock.messages);
        ctx.note(format!(
            "reconnect round {round} ({shared} shared + 1000 each side): phr {} ({}), stock {} ({}, {} flights, {} messages)",
            ms(took),
            bytes(wire),
            ms(stock.time),
            bytes(stock.bytes),
            stock.flights,
            stock.messages
        ));
        if round + 1 == rounds {
            let mut timeline = String::from("timeline of the last session, ms from dial (B dials A):\n");
            for e in a.trace.events().into_iter().chain(b.trace.events()) {
                timeline.push_str(&format!(
                    "  {:>9} +{:>9}  {} {} ({} items)\n",
                    ms(e.start),
                    ms(e.took),
                    e.side,
                    e.what,
                    e.n
                ));
            }
            timeline.push_str(&format!("  {:>9}  sync_once returned on B\n", ms(took)));
            ctx.note(timeline);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (t_ours, t_stock) = (median(&ours), median(&stock_times));
    // Our protocol's flights on the dialer's critical path: (1) B→A hello, (2) A→B hello then
    // A's access, batches and caught-up, (3) B→A its access, batches, caught-up and acks for
    // A's batches, (4) A→B acks for B's batches, then end of stream. See docs/BENCHMARKS.md.
    let our_flights = 4;
    vec![
        Row::ratio(
            format!(
                "reconnect: 1,000 + 1,000 on {}k shared, time (median of {rounds})",
                shared / 1000
            ),
            ms(t_ours),
            "stock Automerge sync, in memory",
            ms(t_stock),
            t_ours.as_secs_f64() / t_stock.as_secs_f64(),
            1.2,
        ),
        Row::ratio(
            "reconnect: wire bytes",
            bytes(wire),
            "stock sync bytes",
            bytes(stock_bytes),
            wire as f64 / stock_bytes as f64,
            1.1,
        ),
        Row {
            bench: "reconnect: round trips".into(),
            phr: format!("{} ({our_flights} flights)", our_flights / 2),
            baseline: format!("stock sync rounds ({stock_msgs} messages)"),
            base: format!("{} ({stock_flights} flights)", stock_flights.div_ceil(2)),
            ratio: None,
            target: "≤ 2".into(),
            met: Some(our_flights / 2 <= 2),
            limit: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// 3. Live edit
// ---------------------------------------------------------------------------------------------

const LIVE_EDITS: usize = 200;
const LIVE_WARMUP: usize = 10;
/// Pause before each live edit and before each baseline commit.
const FLUSH_GAP: Duration = Duration::from_millis(2);
const ECHO_ALPN: &[u8] = b"phr-bench/echo/1";

#[derive(Debug, Clone)]
struct EchoHandler;

impl ProtocolHandler for EchoHandler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let (mut send, mut recv) = conn.accept_bi().await.map_err(AcceptError::from_err)?;
        let mut buf = [0u8; 64];
        while recv.read_exact(&mut buf).await.is_ok() {
            if send.write_all(&buf).await.is_err() {
                break;
            }
        }
        let _ = send.finish();
        conn.closed().await;
        Ok(())
    }
}

/// Two endpoints with a 64-byte echo protocol between them.
struct Echo {
    server: Router,
    client: iroh::Endpoint,
}

/// One open echo stream.
struct EchoStream {
    conn: Connection,
    send: iroh::endpoint::SendStream,
    recv: iroh::endpoint::RecvStream,
}

impl Echo {
    async fn start() -> Echo {
        let cfg = NetConfig::local();
        let server_ep = net::bind(&KeyPair::generate(), &cfg).await.expect("bind");
        let server = Router::builder(server_ep).accept(ECHO_ALPN, EchoHandler).spawn();
        let client = net::bind(&KeyPair::generate(), &cfg).await.expect("bind");
        Echo { server, client }
    }

    async fn open(&self) -> EchoStream {
        let cfg = NetConfig::local();
        let conn = net::connect(&self.client, self.server.endpoint().addr(), ECHO_ALPN, &cfg)
            .await
            .expect("connect");
        let (send, recv) = conn.open_bi().await.expect("stream");
        let mut s = EchoStream { conn, send, recv };
        for _ in 0..LIVE_WARMUP {
            s.round_trip().await;
        }
        s
    }

    async fn shutdown(self) {
        let _ = self.server.shutdown().await;
        self.client.close().await;
    }
}

impl EchoStream {
    async fn round_trip(&mut self) -> Duration {
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let t = Instant::now();
        self.send.write_all(&msg).await.expect("send");
        self.recv.read_exact(&mut buf).await.expect("echo");
        t.elapsed()
    }

    fn close(mut self) {
        let _ = self.send.finish();
        self.conn.close(0u32.into(), b"done");
    }
}

/// A 10,000-change document, and single changes of another writer to apply to it one by one.
struct ApplyBaseline {
    doc: AutoCommit,
    changes: std::collections::VecDeque<phr::automerge::Change>,
}

impl ApplyBaseline {
    fn new(n: usize) -> ApplyBaseline {
        let author = KeyPair::generate();
        let mut main = Record::new(author.public(), author.clone());
        let mut edits = Edits::new();
        // Edits go round-robin over three sections: 30,000 edits give medications 10,000.
        while main.clock(Section::Medications).values().map(|(s, _)| *s).sum::<u64>() < 10_000 {
            edits.apply(&mut main).expect("edit");
        }
        main.take_pending();
        let forks: BTreeMap<Section, AutoCommit> = EDIT_SECTIONS.iter().map(|s| (*s, main.doc(*s).fork())).collect();
        let mut writer = Record::from_docs(author.public(), KeyPair::generate(), forks);
        let mut changes = std::collections::VecDeque::new();
        while changes.len() < n {
            edits.apply(&mut writer).expect("edit");
            for c in writer.take_pending() {
                if c.section == Section::Medications {
                    changes.push_back(phr::automerge::Change::from_bytes(c.bytes).expect("change"));
                }
            }
        }
        ApplyBaseline {
            doc: main.doc(Section::Medications).clone(),
            changes,
        }
    }

    fn step(&mut self) -> Duration {
        let change = self.changes.pop_front().expect("enough prepared changes");
        let t = Instant::now();
        self.doc.apply_changes([change]).expect("apply");
        t.elapsed()
    }
}

/// Small durable commits to a redb file.
struct RedbBaseline {
    db: redb::Database,
    next: u64,
}

const BASE_TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");

impl RedbBaseline {
    fn new(dir: &Path) -> RedbBaseline {
        let mut r = RedbBaseline {
            db: redb::Database::create(dir.join("baseline.redb")).expect("redb"),
            next: 0,
        };
        for _ in 0..LIVE_WARMUP {
            r.step();
        }
        r
    }

    fn step(&mut self) -> Duration {
        let t = Instant::now();
        let txn = self.db.begin_write().expect("txn");
        txn.open_table(BASE_TABLE)
            .expect("table")
            .insert(self.next, [42u8; 256].as_slice())
            .expect("insert");
        txn.commit().expect("commit");
        self.next += 1;
        t.elapsed()
    }
}

/// A record with some history on A and a member B.
struct Level {
    label: &'static str,
    a: Node,
    b: Node,
    edits: Edits,
}

/// Where one live edit's time went.
#[derive(Clone, Copy)]
struct LiveSample {
    /// Commit on A to B publishing it.
    total: Duration,
    /// `Replica::write` on A: edit, sign, durable commit.
    write: Duration,
    /// Of which the edit itself (Automerge ops, validation, commit, signature).
    edit: Duration,
    /// From A's write returning to B's session handing the batch to the host.
    transit: Duration,
    /// B's `incoming`: verify, apply, durable commit.
    incoming: Duration,
}

/// Live edits on each level's A until its B has the edit applied and durable, round-robin over
/// the levels; after every edit one sample of each baseline part is taken in the same loop, so
/// phr and baseline see the same machine (fsync latency on this VM swings between ~0.2 ms and
/// ~4 ms with what else runs). Edit and baseline commit each follow the same short pause.
// One piece: the sampling loop must interleave phr and its baselines edit by edit (see
// above), so the loop and the rows it yields stay together.
fn live_edits(ctx: &Ctx, rt: &Runtime, levels: &mut [Level], echo: &Echo, apply: &mut ApplyBaseline) -> Vec<Row> {
    let dir = ctx.dir();
    let mut commit = RedbBaseline::new(dir.path());

    // Live sessions: each B keeps a connection to its A; wait until all caught up.
    let mut handles = Vec::new();
    for l in levels.iter() {
        let history = l.a.changes();
        let _rt = rt.enter();
        handles.push(l.b.svc.keep_live(l.a.svc.addr()));
        let t = Instant::now();
        while l.b.changes() < history {
            assert!(t.elapsed() < Duration::from_secs(300), "B never caught up");
            std::thread::sleep(Duration::from_millis(20));
        }
        ctx.note(format!(
            "live {}: B caught up with {history} changes in {}",
            l.label,
            ms(t.elapsed())
        ));
    }

    let mut samples: Vec<Vec<LiveSample>> = vec![Vec::new(); levels.len()];
    let (mut rtts, mut applies, mut commits) = (Vec::new(), Vec::new(), Vec::new());
    let mut feeds: Vec<_> = levels.iter().map(|l| l.b.replica().subscribe()).collect();
    for l in levels.iter() {
        l.b.trace.reset();
    }
    rt.block_on(async {
        let mut es = echo.open().await;
        for i in 0..LIVE_EDITS + LIVE_WARMUP {
            for (k, l) in levels.iter_mut().enumerate() {
                let a_key = l.a.key();
                let epoch = l.b.trace.epoch();
                // The same pause before the edit and before the baseline commit: a flush pays
                // for whatever else the machine wrote since the last one, so the first commit
                // after a pause costs more than one right behind another.
                std::thread::sleep(FLUSH_GAP);
                let t0 = Instant::now();
                let edits = &mut l.edits;
                let mut edit = Duration::ZERO;
                l.a.replica()
                    .write(|r| {
                        let t = Instant::now();
                        let out = edits.apply(r);
                        edit = t.elapsed();
                        out
                    })
                    .expect("live write");
                let wrote = t0.elapsed();
                loop {
                    match tokio::time::timeout(Duration::from_secs(10), feeds[k].recv()).await {
                        Ok(Ok(e)) if e.from == Some(a_key) => break,
                        Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                        Ok(Err(e)) => panic!("B's feed closed: {e}"),
                        Err(_) => panic!("an edit did not reach B within 10 s"),
                    }
                }
                let total = t0.elapsed();
                let rtt = es.round_trip().await;
                let ap = apply.step();
                std::thread::sleep(FLUSH_GAP);
                let cm = commit.step();
                // B's host call for this edit: the last `incoming` in its trace.
                let inc = l.b.trace.last("incoming").expect("B took the edit in");
                let since = t0.saturating_duration_since(epoch);
                if i >= LIVE_WARMUP {
                    samples[k].push(LiveSample {
                        total,
                        write: wrote,
                        edit,
                        transit: inc.start.saturating_sub(since + wrote),
                        incoming: inc.took,
                    });
                    rtts.push(rtt);
                    applies.push(ap);
                    commits.push(cm);
                }
            }
        }
        es.close();
    });
    for h in handles {
        h.abort();
    }
    std::thread::sleep(Duration::from_millis(100));
    for l in levels.iter() {
        assert!(l.b.same_heads(&l.a));
    }

    let base = median(&rtts) + median(&applies) + median(&commits);
    ctx.note(format!(
        "live baseline p50s: echo RTT {} + apply {} + redb commit {} = {} (redb commit p99 {})",
        ms(median(&rtts)),
        ms(median(&applies)),
        ms(median(&commits)),
        ms(base),
        ms(percentile(&commits, 99.0)),
    ));
    let mut rows = Vec::new();
    let mut p50s = Vec::new();
    for (l, s) in levels.iter().zip(&samples) {
        let col = |f: fn(&LiveSample) -> Duration| s.iter().map(f).collect::<Vec<_>>();
        let total = col(|x| x.total);
        let (p50, p99) = (median(&total), percentile(&total, 99.0));
        ctx.note(format!(
            "live {}: p50 {} p99 {} max {}; p50 parts: A write {} (p99 {}; edit+sign {}), transit {}, B incoming {} (p99 {}), B publish to feed {}",
            l.label,
            ms(p50),
            ms(p99),
            ms(percentile(&total, 100.0)),
            ms(median(&col(|x| x.write))),
            ms(percentile(&col(|x| x.write), 99.0)),
            ms(median(&col(|x| x.edit))),
            ms(median(&col(|x| x.transit))),
            ms(median(&col(|x| x.incoming))),
            ms(percentile(&col(|x| x.incoming), 99.0)),
            ms(median(&col(|x| x.total.saturating_sub(x.write + x.transit + x.incoming)))),
        ));
        rows.push(Row::ratio(
            format!("live edit, {} history: p50 ({LIVE_EDITS} edits)", l.label),
            ms(p50),
            "echo RTT + apply + redb commit (p50s)",
            ms(base),
            p50.as_secs_f64() / base.as_secs_f64(),
            1.5,
        ));
        rows.push(Row::info(
            format!("live edit, {} history: p99", l.label),
            ms(p99),
            "same baseline",
            ms(base),
            Some(p99.as_secs_f64() / base.as_secs_f64()),
        ));
        p50s.push(p50);
    }
    let (first, last) = (p50s[0], p50s[p50s.len() - 1]);
    rows.push(Row::ratio(
        format!(
            "live edit: p50 growth, {} → {} history",
            levels[0].label,
            levels[levels.len() - 1].label
        ),
        ms(last),
        format!("p50 at {} history", levels[0].label),
        ms(first),
        last.as_secs_f64() / first.as_secs_f64(),
        1.3,
    ));
    rows
}

// ---------------------------------------------------------------------------------------------
// 4. Many records in one session
// ---------------------------------------------------------------------------------------------

struct LibNode {
    _dir: tempfile::TempDir,
    svc: HostService<Traced<LibraryHost>>,
}

fn library(ctx: &Ctx, key: &KeyPair) -> (tempfile::TempDir, Arc<LibraryHost>) {
    let dir = ctx.dir();
    let lib = Library::create(&dir.path().join("library.redb"), PASS, key.clone(), cheap()).expect("library");
    (dir, LibraryHost::new(lib))
}

fn serve(
    rt: &Runtime,
    dir: tempfile::TempDir,
    host: Arc<LibraryHost>,
    side: &'static str,
    trace: &Arc<Trace>,
) -> LibNode {
    let host = Arc::new(Traced {
        inner: host,
        side,
        trace: trace.clone(),
    });
    let svc = rt
        .block_on(HostService::start(host, NetConfig::local()))
        .expect("endpoint");
    LibNode { _dir: dir, svc }
}

/// A library A holding `records` records of `changes` changes each; every rep syncs all of
/// them into a fresh, empty library B (same key, new store) in one session, B dialing A.
fn library_sessions(ctx: &Ctx, rt: &Runtime, records: usize, changes: usize, reps: usize) -> Vec<Duration> {
    let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
    let (dir_a, ha) = library(ctx, &ka);
    let t = Instant::now();
    let mut held = Vec::with_capacity(records);
    for _ in 0..records {
        let root = KeyPair::generate();
        let id = root.public();
        let statements = vec![
            Statement::Device(DeviceCert::issue(&root, ka.public(), "node-a", now())),
            Statement::Device(DeviceCert::issue(&root, kb.public(), "node-b", now())),
        ];
        ha.lock().add_record(id, statements.clone()).expect("add on A");
        let mut edits = Edits::new();
        let mut left = changes;
        while left > 0 {
            let k = left.min(1000);
            ha.write(&id, |r| {
                for _ in 0..k {
                    edits.apply(r)?;
                }
                Ok(())
            })
            .expect("write");
            left -= k;
        }
        held.push((id, statements));
    }
    ctx.note(format!(
        "library setup: {records} records × {changes} changes in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let trace = Arc::new(Trace::default());
    let a = serve(rt, dir_a, ha, "A", &trace);
    let mut times = Vec::with_capacity(reps);
    for rep in 0..reps {
        let (dir_b, hb) = library(ctx, &kb);
        for (id, statements) in &held {
            hb.lock().add_record(*id, statements.clone()).expect("add on B");
        }
        let b = serve(rt, dir_b, hb, "B", &trace);
        trace.reset();
        let t = Instant::now();
        let report = match rt.block_on(b.svc.sync_once(a.svc.addr(), SessionOptions::default())) {
            Ok(r) => r,
            Err(e) => panic!("library sync failed: {e}\nhost calls:\n{}", trace.summary()),
        };
        let took = t.elapsed();
        assert_eq!(report.records.len(), records);
        assert_eq!(applied(&report), records * changes);
        assert_eq!(report.rejected(), 0);
        let mut line = format!(
            "library session {rep}, {records} × {changes}: {} ({} on the wire)",
            ms(took),
            bytes(report.traffic.sent + report.traffic.received),
        );
        if rep + 1 == reps {
            line.push_str(&format!("; host calls:\n{}", trace.summary()));
        }
        ctx.note(line);
        rt.block_on(b.svc.shutdown());
        times.push(took);
    }
    rt.block_on(a.svc.shutdown());
    times
}

fn many_records(ctx: &Ctx, rt: &Runtime) -> Vec<Row> {
    let one = median(&library_sessions(ctx, rt, 1, 10_000, 3));
    let many = median(&library_sessions(ctx, rt, 1000, 10, 3));
    vec![Row::ratio(
        "1,000 records × 10 changes, one session (median of 3)",
        ms(many),
        "1 record × 10,000 changes",
        ms(one),
        many.as_secs_f64() / one.as_secs_f64(),
        2.0,
    )]
}
