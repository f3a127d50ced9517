//! Group `node`: issue 5's targets for the clinic daemon, measured on the real `phr-node`
//! release binary with patient devices syncing to it over iroh on 127.0.0.1.
//!
//! | benchmark | phr | baseline (same run) |
//! |---|---|---|
//! | start-up | spawn of `phr-node run` on a store of 10,000 records → its ready line (and its `phr_startup_seconds`) | the same on a store of 100 records |
//! | memory per hosted record | (idle RSS with 10,000 records − idle RSS with 100) / 9,900 | RSS per record loaded into memory (200 records read through the API) |
//! | memory per active connection | RSS after 200 devices connected live, minus before, / 200 | RSS per loaded record |
//! | delivery | 10 rounds; in each, every device's patient gets one note: POSTed as a FHIR `DocumentReference` by 8 concurrent HTTP clients, until each is applied (durably) on its device | the same notes written directly with `Clinic::write` (same mapping, same clinician, same records loaded) on a copy of the store, no HTTP, no network; in the same round, alternately before and after |
//! | latency | push → applied on the device, under that load, and one note at a time | the direct writes of the rounds; one at a time: the same note written directly just before |
//!
//! Then the light-load pass again with every device gone, which isolates what the live
//! sessions cost each write. CPU time of the node and of this process is read from /proc
//! around the HTTP part of each round. A lone `fdatasync` on the benchmark VM switches between
//! ~0.1 ms and ~4 ms (one 250 Hz tick), while concurrent ones stay fast; a probe before each
//! round and the p50 of its direct writes (lone fsyncs) show which state the baseline met.
//!
//! The store is built in-process (not timed): `Clinic::create`, then per record a root key, a
//! device certificate, a delegable `clinic` grant to the clinic (`Library::add_record`) and a
//! profile written by the patient's device (`Library::incoming`, 500 records per call). The
//! first 200 records also get a real `Device` (its own store) that later syncs with the node
//! through `Service::keep_live`, as `phr serve` would.
//!
//! Scale: `BENCH_NODE_SCALE=quick` runs 1,000 records / 50 devices; `BENCH_NODE_RECORDS`,
//! `BENCH_NODE_DEVICES`, `BENCH_NODE_NOTES` (per device) and `BENCH_NODE_CLIENTS` override
//! single figures; `BENCH_NODE_HOLD=SECS` keeps the node running that long after the pushes
//! (to inspect it); `BENCH_NODE_KEEP=DIR` copies the two data directories there after setup.
//! `PHR_NODE_BIN` names a prebuilt binary (default: `cargo build --release -p
//! phr --bin phr-node` first, then `target/release/phr-node`).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use phr::access::Statement;
use phr::capability::{Capability, Grant, Preset};
use phr::clinic::{Clinic, StaffMember};
use phr::entry::{PATIENT_ENTRY, parse_fields};
use phr::identity::DeviceCert;
use phr::record::Record;
use phr::sync::net::NetConfig;
use phr::sync::{Replica, Service};
use phr::{Device, KeyPair, RecordId, Section, fhir};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{Ctx, PASS, Row, bytes, cheap, median, ms, now, percentile};

const CLINIC: &str = "Bright Steps Therapy";
const CLINICIAN: &str = "Jane Roe";
/// Records set up per `Library::incoming` call (one durable commit).
const CHUNK: usize = 500;
/// Records in the small store the hosted-record figures are compared with.
const SMALL: usize = 100;
/// Start-up rounds (small and large store alternating).
const ROUNDS: usize = 3;

struct Scale {
    records: usize,
    devices: usize,
    notes_per_device: usize,
    clients: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("BENCH_NODE_SCALE").is_ok_and(|s| s == "quick" || s == "small");
        let mut s = if quick {
            Scale {
                records: 1_000,
                devices: 50,
                notes_per_device: 10,
                clients: 8,
            }
        } else {
            Scale {
                records: 10_000,
                devices: 200,
                notes_per_device: 10,
                clients: 8,
            }
        };
        let var = |name: &str, v: &mut usize| {
            if let Some(n) = std::env::var(name).ok().and_then(|x| x.parse().ok()) {
                *v = n;
            }
        };
        var("BENCH_NODE_RECORDS", &mut s.records);
        var("BENCH_NODE_DEVICES", &mut s.devices);
        var("BENCH_NODE_NOTES", &mut s.notes_per_device);
        var("BENCH_NODE_CLIENTS", &mut s.clients);
        s.records = s.records.max(SMALL + 1);
        s.devices = s.devices.clamp(1, s.records);
        s.clients = s.clients.max(1);
        s.notes_per_device = s.notes_per_device.max(1);
        s
    }
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let scale = Scale::from_env();
    let bin = node_binary(ctx);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    // --- Setup (not timed as part of any figure) ---------------------------------------------
    let big_dir = ctx.scratch.join("node-big");
    let small_dir = ctx.scratch.join("node-small");
    let (big, t_big) = crate::timed(|| build_store(ctx, &big_dir, scale.records, scale.devices));
    ctx.note(format!(
        "setup: {} records ({} with a device) in {:.1} s, store {}",
        scale.records,
        scale.devices,
        t_big.as_secs_f64(),
        bytes(file_len(&big_dir.join("clinic.redb")))
    ));
    let (_, t_small) = crate::timed(|| build_store(ctx, &small_dir, SMALL, 0));
    ctx.note(format!(
        "setup: {SMALL} records in {:.1} s, store {}",
        t_small.as_secs_f64(),
        bytes(file_len(&small_dir.join("clinic.redb")))
    ));
    if let Some(keep) = std::env::var_os("BENCH_NODE_KEEP") {
        // Copies of both data directories, for looking at a node by hand afterwards.
        for (d, name) in [(&big_dir, "big"), (&small_dir, "small")] {
            let to = PathBuf::from(&keep).join(name);
            std::fs::create_dir_all(&to).expect("keep dir");
            for f in ["clinic.redb", "api-token"] {
                std::fs::copy(d.join(f), to.join(f)).expect("keep copy");
            }
        }
        ctx.note(format!("data directories copied to {}", PathBuf::from(&keep).display()));
    }
    // A copy of the large store for the direct baseline, taken before the node ever opens it.
    let copy = ctx.scratch.join("node-direct");
    std::fs::create_dir_all(&copy).expect("copy dir");
    std::fs::copy(big_dir.join("clinic.redb"), copy.join("clinic.redb")).expect("copy store");
    let device_records: Vec<RecordId> = big.records[..scale.devices].to_vec();
    let plan = Plan::new(&device_records, scale.notes_per_device);
    let probe_before = disk_probe(&ctx.scratch);
    ctx.note(format!(
        "disk probe (4 KiB pwrite + fdatasync, median of 50): {}",
        ms(probe_before)
    ));

    // --- Start-up and idle memory: small and large store, alternating ------------------------
    let mut startups: HashMap<&str, Vec<Startup>> = HashMap::new();
    let mut node = None;
    for round in 0..ROUNDS {
        for (label, dir) in [("small", &small_dir), ("big", &big_dir)] {
            let n = start_node(&bin, dir, &ctx.scratch.join(format!("node-{label}-{round}.log")));
            std::thread::sleep(Duration::from_millis(1500));
            let metrics = rt.block_on(scrape(n.http));
            let s = Startup {
                ready: n.ready,
                reported: metrics.get("phr_startup_seconds").copied().unwrap_or(f64::NAN),
                rss: rss(n.pid()),
                hosted: metrics.get("phr_records_hosted").copied().unwrap_or(0.0) as u64,
            };
            ctx.note(format!(
                "start-up {label} round {round}: ready {} (reported {:.3} s), hosting {}, RSS {} (anon {})",
                ms(s.ready),
                s.reported,
                s.hosted,
                bytes(s.rss.rss),
                bytes(s.rss.anon)
            ));
            startups.entry(label).or_default().push(s);
            if label == "big" && round == ROUNDS - 1 {
                node = Some(n);
            } else {
                stop_node(n);
            }
        }
    }
    let node = node.expect("the large node runs");

    // --- The baseline's engine, open beside the node on the copy -----------------------------
    let direct = DirectClinic::open(&copy, &device_records);
    let live = rt.block_on(live_phase(
        ctx,
        &node,
        big.devices,
        &device_records,
        &plan,
        &scale,
        &direct,
    ));
    if let Some(s) = std::env::var("BENCH_NODE_HOLD").ok().and_then(|s| s.parse().ok()) {
        ctx.note(format!("holding phr-node (pid {}) for {s} s", node.pid()));
        std::thread::sleep(Duration::from_secs(s));
    }
    stop_node(node);
    drop(direct);
    let probe_after = disk_probe(&ctx.scratch);
    ctx.note(format!("disk probe after: {}", ms(probe_after)));

    rows(ctx, &scale, &startups, &live, (probe_before, probe_after))
}

/// Median of 50 4 KiB `pwrite` + `fdatasync` in `dir`: the state the disk is in.
fn disk_probe(dir: &Path) -> Duration {
    disk_probe_n(dir, 50)
}

/// A lone `fdatasync` on this VM takes either ~0.1 ms or ~4 ms (one 250 Hz tick), switching
/// within seconds; two concurrent ones are fast either way. The probes and the rounds'
/// direct writes are read against this.
const FAST_DISK: Duration = Duration::from_millis(1);

/// Median of `n` 4 KiB `pwrite` + `fdatasync`, one after the other.
fn disk_probe_n(dir: &Path, n: u64) -> Duration {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("node-probe.bin");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let buf = [0x5au8; 4096];
    let mut v = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        f.seek(SeekFrom::Start((i % 16) * 4096)).expect("seek");
        f.write_all(&buf).expect("write");
        f.sync_data().expect("fdatasync");
        v.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    median(&v)
}

// ---------------------------------------------------------------------------------------------
// Building the stores
// ---------------------------------------------------------------------------------------------

struct Hosted {
    /// Every hosted record, in creation order; the first ones have a device.
    records: Vec<RecordId>,
    /// The patient devices (their homes kept until the end), for the first records.
    devices: Vec<(tempfile::TempDir, Device)>,
}

fn profile(i: usize) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("name".into(), Value::String(format!("Patient {i:05}")));
    p.insert(
        "dob".into(),
        Value::String(format!("2017-{:02}-{:02}", 1 + i % 12, 1 + i % 28)),
    );
    p
}

/// A clinic store hosting `n` records, the first `with_devices` of them with a patient device.
fn build_store(ctx: &Ctx, dir: &Path, n: usize, with_devices: usize) -> Hosted {
    std::fs::create_dir_all(dir).expect("data dir");
    let clinic = Clinic::create(&dir.join("clinic.redb"), PASS, CLINIC, cheap()).expect("clinic");
    let token: String = phr::crypto::random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(dir.join("api-token"), format!("{token}\n")).expect("token");
    let me = clinic.key();
    let t = now();
    let mut records = Vec::with_capacity(n);
    let mut devices = Vec::new();
    let mut lib = clinic.host().lock();
    for start in (0..n).step_by(CHUNK) {
        let mut batches = Vec::new();
        for i in start..(start + CHUNK).min(n) {
            let root = KeyPair::generate();
            let key = KeyPair::generate();
            let record = root.public();
            let cert = DeviceCert::issue(&root, key.public(), "phone", t);
            let cap = Capability::issue_root(
                &root,
                Grant {
                    audience: me,
                    label: CLINIC.into(),
                    scope: Preset::Clinic.scope(),
                    delegate: true,
                    not_before: t - 60,
                    expires: None,
                },
            )
            .expect("grant");
            lib.add_record(
                record,
                vec![Statement::Device(cert.clone()), Statement::Capability(cap.clone())],
            )
            .expect("add_record");
            let written = if i < with_devices {
                let home = ctx.dir();
                let mut d =
                    Device::create_member(home.path(), PASS, key, cert, vec![Statement::Capability(cap)], cheap())
                        .expect("device");
                d.write(|r| r.insert_entry(Section::Profile, PATIENT_ENTRY, profile(i)))
                    .expect("profile");
                let w = d.take_written();
                devices.push((home, d));
                w
            } else {
                let mut r = Record::new(record, key);
                r.insert_entry(Section::Profile, PATIENT_ENTRY, profile(i))
                    .expect("profile");
                r.take_pending()
            };
            batches.extend(phr::exchange::local_batches(record, written).expect("batch"));
            records.push(record);
        }
        let got = lib.incoming(batches).expect("incoming");
        assert!(
            got.iter().all(|r| r.rejected.is_empty() && r.applied == 1),
            "every profile is accepted"
        );
        lib.evict_idle(Duration::ZERO);
    }
    drop(lib);
    drop(clinic);
    Hosted { records, devices }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The notes pushed
// ---------------------------------------------------------------------------------------------

/// Every note: `rounds[j][p]` is patient `p`'s `j`-th note (record, FHIR DocumentReference).
/// After the throughput rounds come two light-load rounds (one note per patient, pushed one
/// at a time): with the devices connected, then with none.
struct Plan {
    rounds: Vec<Vec<(RecordId, Value)>>,
}

impl Plan {
    fn new(records: &[RecordId], per_patient: usize) -> Plan {
        let rounds = (0..per_patient + 2)
            .map(|j| {
                records
                    .iter()
                    .enumerate()
                    .map(|(p, r)| (*r, note_resource(p, j)))
                    .collect()
            })
            .collect();
        Plan { rounds }
    }
}

/// A realistic SOAP session note as the EHR would send it.
fn note_resource(p: usize, j: usize) -> Value {
    let args: Vec<(String, String)> = [
        ("discipline", "speech".to_string()),
        ("clinician", CLINICIAN.to_string()),
        ("date", format!("2026-{:02}-{:02}", 1 + j % 12, 1 + p % 28)),
        ("minutes", "45".into()),
        (
            "subjective",
            format!("Parent reports practice of /s/ blends {} days this week.", 1 + j % 7),
        ),
        (
            "objective",
            format!(
                "Produced /s/ blends in {} of 20 trials at word level.",
                8 + (p + j) % 12
            ),
        ),
        ("assessment", "Steady progress; errors mostly in final position.".into()),
        (
            "plan",
            "Continue home practice; move to phrase level next session.".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let fields = parse_fields(Section::Notes, &args).expect("note fields");
    fhir::note_to_fhir(&format!("bench-{p}-{j}"), &fields)
}

/// The entry id `phr-node` gives a pushed resource (node/src/ops.rs `entry_id_for`).
fn entry_id_for(res: &Value) -> String {
    let (kind, id) = fhir::source_of(res).expect("resource id");
    let hash = phr::crypto::digest(format!("fhir:{kind}/{id}").as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What `phr-node` does for `POST /v1/patients/{id}/notes?clinician=…`, minus HTTP:
/// resolve the record, map the FHIR resource, attribute it, write it as the clinician.
fn push_direct(clinic: &Clinic, record: &RecordId, staff: &StaffMember, res: &Value) -> phr::Result<()> {
    let record = clinic.resolve_record(&record.to_string())?;
    let mut fields = fhir::note_from_fhir(res)?;
    let staff = clinic.find_staff(&staff.key.to_string())?;
    fields.insert("clinician".into(), Value::String(staff.name.clone()));
    let id = entry_id_for(res);
    clinic.write(&record, Some(&staff.key), |r| {
        match r.read_entry(Section::Notes, &id)? {
            None => r.insert_entry(Section::Notes, &id, fields),
            Some(_) => Err(phr::Error::NotAllowed(phr::Refusal::NoteExists { id: id.clone() })),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Baseline: the same notes written directly into the engine
// ---------------------------------------------------------------------------------------------

/// The engine the baseline writes into: the copy of the large store, opened in this process
/// with the same clinician and the devices' records loaded, as the node has them.
struct DirectClinic {
    clinic: Arc<Clinic>,
    staff: StaffMember,
}

impl DirectClinic {
    fn open(dir: &Path, loaded: &[RecordId]) -> DirectClinic {
        let clinic = Clinic::open(&dir.join("clinic.redb"), PASS).expect("open the copy");
        let staff = clinic.add_staff(CLINICIAN, "SLP", vec![]).expect("staff");
        for r in loaded {
            clinic.read(r, |_, _| Ok(())).expect("load");
        }
        DirectClinic {
            clinic: Arc::new(clinic),
            staff,
        }
    }

    /// Write notes one after the other; each write's duration and the total.
    async fn write(&self, notes: Vec<(RecordId, Value)>) -> (Duration, Vec<Duration>) {
        let (clinic, staff) = (self.clinic.clone(), self.staff.clone());
        tokio::task::spawn_blocking(move || {
            let mut each = Vec::with_capacity(notes.len());
            let t = Instant::now();
            for (record, res) in &notes {
                let t0 = Instant::now();
                push_direct(&clinic, record, &staff, res).expect("direct write");
                each.push(t0.elapsed());
            }
            (t.elapsed(), each)
        })
        .await
        .expect("direct writes")
    }
}

// ---------------------------------------------------------------------------------------------
// The node process
// ---------------------------------------------------------------------------------------------

fn node_binary(ctx: &Ctx) -> PathBuf {
    if let Some(p) = std::env::var_os("PHR_NODE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ctx.note("building phr-node (cargo build --release -p phr --bin phr-node)");
    let ok = Command::new(cargo)
        .args(["build", "--release", "-p", "phr", "--bin", "phr-node"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cargo build --release -p phr --bin phr-node failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/phr-node");
    assert!(bin.exists(), "no phr-node binary at {}", bin.display());
    bin
}

struct NodeProc {
    child: Child,
    http: SocketAddr,
    sync: iroh::EndpointAddr,
    /// Spawn to the ready line.
    ready: Duration,
    token: String,
}

impl NodeProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeProc {
    /// A bench that fails half-way leaves no daemon behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_node(bin: &Path, data: &Path, log: &Path) -> NodeProc {
    let token = std::fs::read_to_string(data.join("api-token"))
        .expect("token")
        .trim()
        .to_string();
    let log = std::fs::File::create(log).expect("node log");
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data")
        .arg(data)
        .args([
            "run",
            "--net",
            "local",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--idle-secs",
            "3600",
        ])
        .env("PHR_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn phr-node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { return };
            if line.starts_with("phr-node ready:") {
                let _ = tx.send((line, Instant::now()));
                break;
            }
        }
        // Keep draining so the node never blocks on a full pipe.
        for _ in lines {}
    });
    let (line, at) = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("phr-node on {} did not get ready", data.display()));
    let ready = at.duration_since(t);
    let sync = line
        .split(" sync ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("sync address in the ready line");
    let http = line
        .split(" http http://")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .expect("http address in the ready line");
    NodeProc {
        sync: phr::sync::net::parse_addr(sync).expect("sync address"),
        child,
        http,
        ready,
        token,
    }
}

/// SIGTERM, then wait (SIGKILL after 20 s).
fn stop_node(mut n: NodeProc) {
    let _ = Command::new("kill").arg("-TERM").arg(n.pid().to_string()).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = n.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("  phr-node {} did not stop on SIGTERM; killing it", n.pid());
    let _ = n.child.kill();
    let _ = n.child.wait();
}

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    anon: u64,
}

/// Resident memory of a process (`VmRSS`, `RssAnon` from /proc/PID/status).
fn rss(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Mem {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
    }
}

struct Startup {
    ready: Duration,
    reported: f64,
    rss: Mem,
    hosted: u64,
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (keep-alive), so the bench needs no HTTP crate
// ---------------------------------------------------------------------------------------------

struct Http {
    conn: BufReader<TcpStream>,
    token: String,
}

impl Http {
    async fn connect(addr: SocketAddr, token: &str) -> Http {
        let s = TcpStream::connect(addr).await.expect("connect to the HTTP API");
        s.set_nodelay(true).expect("nodelay");
        Http {
            conn: BufReader::new(s),
            token: token.to_string(),
        }
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n",
            self.token
        );
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        let mut out = req.into_bytes();
        out.extend_from_slice(body.unwrap_or_default());
        self.conn.get_mut().write_all(&out).await.expect("send request");

        let mut line = String::new();
        self.conn.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.conn.read_line(&mut line).await.expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.conn.read_line(&mut line).await.expect("chunk size");
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).expect("chunk size");
                let mut chunk = vec![0; n + 2];
                self.conn.read_exact(&mut chunk).await.expect("chunk");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.conn.read_exact(&mut body).await.expect("body");
        }
        (status, body)
    }
}

/// The node's Prometheus metrics, by name.
async fn scrape(http: SocketAddr) -> HashMap<String, f64> {
    let mut c = Http::connect(http, "").await;
    let (status, body) = c.request("GET", "/metrics", None).await;
    assert_eq!(status, 200, "GET /metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Live phase: records loaded, devices connected, notes pushed over HTTP until delivered
// ---------------------------------------------------------------------------------------------

/// One note pushed over HTTP: to which patient, as their `k`-th, when, and how long the
/// node took to answer.
struct Push {
    patient: usize,
    k: usize,
    sent: Instant,
    answered: Duration,
}

/// A throughput round: the same notes through HTTP and directly.
struct Round {
    pushes: Vec<Push>,
    direct_total: Duration,
    direct_each: Vec<Duration>,
    /// CPU time while the HTTP part ran (push to last delivery): the node's, and this
    /// process's (200 devices, HTTP clients).
    node_cpu: Duration,
    bench_cpu: Duration,
    /// This process's CPU time while the direct writes ran.
    direct_cpu: Duration,
    /// A lone fdatasync just before the round (median of 10).
    disk: Duration,
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

struct Live {
    idle: Mem,
    loaded: Mem,
    connected: Mem,
    after: Mem,
    devices: usize,
    /// Sessions the node counted once every device had connected.
    connections: f64,
    rounds: Vec<Round>,
    /// Light load: one push at a time, each after the previous one arrived; and the same
    /// notes written directly, each right before its push.
    single: Vec<Push>,
    single_direct: Vec<Duration>,
    /// Light load with no device connected: HTTP answers, and the same notes written directly.
    alone: Vec<Duration>,
    alone_direct: Vec<Duration>,
    /// When each patient's `k`-th note was applied on their device.
    arrived: Vec<Vec<Instant>>,
    delivered: usize,
}

/// Push `notes` (patient, API path, body) from `clients` concurrent connections; each
/// patient's notes all go through one client, in order.
async fn push_all(
    http: SocketAddr,
    token: &str,
    clients: usize,
    notes: Vec<(usize, String, Vec<u8>)>,
    counts: &mut [usize],
) -> Vec<Push> {
    let mut ks = Vec::with_capacity(notes.len());
    for (p, _, _) in &notes {
        ks.push(counts[*p]);
        counts[*p] += 1;
    }
    // (patient, k, path, body)
    type Queued = (usize, usize, String, Vec<u8>);
    let notes: Arc<Vec<Queued>> = Arc::new(
        notes
            .into_iter()
            .zip(ks)
            .map(|((p, path, body), k)| (p, k, path, body))
            .collect(),
    );
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Http::connect(http, token).await);
    }
    let mut joins = Vec::new();
    for (c, mut client) in conns.into_iter().enumerate() {
        let notes = notes.clone();
        joins.push(tokio::spawn(async move {
            let mut log = Vec::new();
            for (p, k, path, body) in notes.iter().filter(|n| n.0 % clients == c) {
                let t0 = Instant::now();
                let (status, resp) = client.request("POST", path, Some(body)).await;
                let answered = t0.elapsed();
                assert_eq!(status, 201, "push: {}", String::from_utf8_lossy(&resp));
                log.push(Push {
                    patient: *p,
                    k: *k,
                    sent: t0,
                    answered,
                });
            }
            log
        }));
    }
    let mut out = Vec::new();
    for j in joins {
        out.extend(j.await.expect("client"));
    }
    out
}

/// Wait until `n` notes in all were applied on the devices (or a minute passed).
async fn wait_delivered(delivered: &AtomicUsize, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

// One piece: one timed scenario read top to bottom (start the node and its clients, push,
// sample, stop); its phases share the clocks, the processes and the samples.
async fn live_phase(
    ctx: &Ctx,
    node: &NodeProc,
    devices: Vec<(tempfile::TempDir, Device)>,
    records: &[RecordId],
    plan: &Plan,
    scale: &Scale,
    direct: &DirectClinic,
) -> Live {
    let pid = node.pid();
    ctx.note(format!("phr-node pid {pid}, log in {}", ctx.scratch.display()));
    let idle = rss(pid);
    ctx.note(format!("idle: RSS {} (anon {})", bytes(idle.rss), bytes(idle.anon)));

    // 1. The devices' records, loaded through the API (a read loads a record on demand).
    let mut c = Http::connect(node.http, &node.token).await;
    for r in records {
        let (status, _) = c.request("GET", &format!("/v1/patients/{r}/appointments"), None).await;
        assert_eq!(status, 200, "reading a hosted record");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let loaded = rss(pid);
    let m = scrape(node.http).await;
    ctx.note(format!(
        "{} records loaded: RSS {} (anon {})",
        m.get("phr_records_loaded").copied().unwrap_or(0.0),
        bytes(loaded.rss),
        bytes(loaded.anon)
    ));

    // 2. The patients' devices, each on its own endpoint, live with the node. A watcher per
    // device notes when each note was applied (durably) there.
    let n_dev = devices.len();
    let arrived: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); n_dev]));
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut homes = Vec::with_capacity(n_dev);
    let mut services = Vec::with_capacity(n_dev);
    let mut tasks = Vec::new();
    let t_conn = Instant::now();
    for (i, (home, device)) in devices.into_iter().enumerate() {
        let record = device.record().id();
        assert_eq!(record, records[i]);
        let replica = Replica::new(device);
        let svc = Service::start(replica.clone(), NetConfig::local())
            .await
            .expect("device endpoint");
        let mut feed = replica.subscribe();
        let (arrived, delivered) = (arrived.clone(), delivered.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(e) => {
                        if let Some(b) = e.batch()
                            && b.section == Section::Notes
                            && b.record == record
                        {
                            let at = Instant::now();
                            arrived.lock().unwrap()[i].extend(std::iter::repeat_n(at, b.count as usize));
                            delivered.fetch_add(b.count as usize, Ordering::Relaxed);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("  device {i}: feed lagged by {n}");
                    }
                    Err(_) => return,
                }
            }
        }));
        tasks.push(svc.keep_live(node.sync.clone()));
        homes.push(home);
        services.push(svc);
        if i % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut connections = 0.0;
    while Instant::now() < deadline {
        connections = scrape(node.http)
            .await
            .get("phr_connections_active")
            .copied()
            .unwrap_or(0.0);
        if connections as usize >= n_dev {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.note(format!(
        "{connections} devices connected live in {:.1} s",
        t_conn.elapsed().as_secs_f64()
    ));
    assert!(connections as usize >= n_dev, "every device connected");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = rss(pid);
    ctx.note(format!(
        "connected: RSS {} (anon {})",
        bytes(connected.rss),
        bytes(connected.anon)
    ));

    // 3. A clinician, then the notes.
    let (status, body) = c
        .request(
            "POST",
            "/v1/staff",
            Some(&serde_json::to_vec(&json!({"name": CLINICIAN, "role": "SLP"})).unwrap()),
        )
        .await;
    assert_eq!(status, 201, "adding staff: {}", String::from_utf8_lossy(&body));
    let staff: Value = serde_json::from_slice(&body).expect("staff json");
    let key = staff["key"].as_str().expect("staff key").to_string();
    let request = |p: usize, r: &RecordId, res: &Value| {
        (
            p,
            format!("/v1/patients/{r}/notes?clinician={key}"),
            serde_json::to_vec(res).unwrap(),
        )
    };

    // 3a. Throughput: round `j` gives every patient their `j`-th note, written directly and
    // pushed through HTTP, alternating which goes first, so both see the same disk and machine.
    let mut counts = vec![0usize; n_dev];
    let mut pushed = 0;
    let mut rounds = Vec::new();
    for (j, round) in plan.rounds[..scale.notes_per_device].iter().enumerate() {
        let reqs: Vec<_> = round
            .iter()
            .enumerate()
            .map(|(p, (r, res))| request(p, r, res))
            .collect();
        let n = reqs.len();
        let direct_first = j % 2 == 0;
        let disk = disk_probe_n(&ctx.scratch, 10);
        let mut direct_result = None;
        if direct_first {
            let c0 = cpu_time(None);
            let r = direct.write(round.clone()).await;
            direct_result = Some((r, cpu_time(None) - c0));
        }
        let (n0, b0) = (cpu_time(Some(pid)), cpu_time(None));
        let t = Instant::now();
        let pushes = push_all(node.http, &node.token, scale.clients, reqs, &mut counts).await;
        let answered_in = t.elapsed();
        pushed += n;
        let ok = wait_delivered(&delivered, pushed).await;
        let delivered_in = t.elapsed();
        let (node_cpu, bench_cpu) = (cpu_time(Some(pid)) - n0, cpu_time(None) - b0);
        let ((direct_total, direct_each), direct_cpu) = match direct_result {
            Some(r) => r,
            None => {
                let c0 = cpu_time(None);
                let r = direct.write(round.clone()).await;
                (r, cpu_time(None) - c0)
            }
        };
        ctx.note(format!(
            "round {j} (disk probe {}): {n} pushes answered in {}, {} delivered in {} ({:.0}/s); direct{} {} ({:.0}/s, p50 {})",
            ms(disk),
            ms(answered_in),
            if ok { "all" } else { "NOT all" },
            ms(delivered_in),
            n as f64 / delivered_in.as_secs_f64(),
            if direct_first { " (first)" } else { "" },
            ms(direct_total),
            n as f64 / direct_total.as_secs_f64(),
            ms(median(&direct_each))
        ));
        rounds.push(Round {
            pushes,
            direct_total,
            direct_each,
            node_cpu,
            bench_cpu,
            direct_cpu,
            disk,
        });
    }

    // 3b. Light load: one note per device, pushed alone once the previous one arrived, each
    // right after the same note was written directly.
    let last = &plan.rounds[scale.notes_per_device];
    let mut single = Vec::new();
    let mut single_direct = Vec::new();
    let mut one = Http::connect(node.http, &node.token).await;
    for (p, (r, res)) in last.iter().enumerate() {
        let (_, each) = direct.write(vec![(*r, res.clone())]).await;
        single_direct.extend(each);
        let (_, path, body) = request(p, r, res);
        let k = counts[p];
        counts[p] += 1;
        let t0 = Instant::now();
        let (status, resp) = one.request("POST", &path, Some(&body)).await;
        let answered = t0.elapsed();
        assert_eq!(status, 201, "push: {}", String::from_utf8_lossy(&resp));
        single.push(Push {
            patient: p,
            k,
            sent: t0,
            answered,
        });
        pushed += 1;
        if !wait_delivered(&delivered, pushed).await {
            break;
        }
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss(pid);
    let end_metrics = scrape(node.http).await;
    let got = delivered.load(Ordering::Relaxed);
    ctx.note(format!(
        "after {got} of {pushed} notes delivered: RSS {} (anon {}); node: loaded {}, connections {}, written {}, sent {}, rejected {}, http failures {}",
        bytes(after.rss),
        bytes(after.anon),
        end_metrics.get("phr_records_loaded").copied().unwrap_or(0.0),
        end_metrics.get("phr_connections_active").copied().unwrap_or(0.0),
        end_metrics.get("phr_changes_written_total").copied().unwrap_or(0.0),
        end_metrics.get("phr_changes_sent_total").copied().unwrap_or(0.0),
        end_metrics.get("phr_changes_rejected_total").copied().unwrap_or(0.0),
        end_metrics.get("phr_http_failures_total").copied().unwrap_or(0.0),
    ));
    // Every note is in its record on the device.
    for svc in &services {
        let d = svc.replica().lock();
        assert_eq!(
            d.record().count(Section::Notes),
            scale.notes_per_device + 1,
            "notes on the device"
        );
    }

    for t in tasks {
        t.abort();
    }
    let mut set = tokio::task::JoinSet::new();
    for s in services {
        set.spawn(s.shutdown());
    }
    while set.join_next().await.is_some() {}
    drop(homes);

    // 3c. Light load again, with no device connected: what the fan-out to live sessions costs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && scrape(node.http)
            .await
            .get("phr_connections_active")
            .copied()
            .unwrap_or(0.0)
            > 0.0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut alone = Vec::new();
    let mut alone_direct = Vec::new();
    for (p, (r, res)) in plan.rounds[scale.notes_per_device + 1].iter().enumerate() {
        let (_, each) = direct.write(vec![(*r, res.clone())]).await;
        alone_direct.extend(each);
        let (_, path, body) = request(p, r, res);
        let t0 = Instant::now();
        let (status, resp) = one.request("POST", &path, Some(&body)).await;
        alone.push(t0.elapsed());
        assert_eq!(status, 201, "push: {}", String::from_utf8_lossy(&resp));
    }
    drop(one);
    drop(c);
    let arrived = std::mem::take(&mut *arrived.lock().unwrap());
    Live {
        idle,
        loaded,
        connected,
        after,
        devices: n_dev,
        connections,
        rounds,
        single,
        single_direct,
        alone,
        alone_direct,
        arrived,
        delivered: got,
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

fn per(delta: i64, n: usize) -> String {
    let v = delta as f64 / n as f64;
    if v.abs() >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Push-to-device latencies of some pushes, and the span from the first push to the last
/// arrival.
fn latencies(live: &Live, pushes: &[Push]) -> (Vec<Duration>, Duration) {
    let mut lat = Vec::new();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for p in pushes {
        first = Some(first.map_or(p.sent, |f| f.min(p.sent)));
        if let Some(t1) = live.arrived[p.patient].get(p.k) {
            lat.push(t1.saturating_duration_since(p.sent));
            last = Some(last.map_or(*t1, |l| l.max(*t1)));
        }
    }
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f),
        _ => Duration::ZERO,
    };
    (lat, span)
}

// One piece: the rows in the order the table prints them, each from the figures measured
// above; split by group, the table's order would be scattered over several functions.
fn rows(
    ctx: &Ctx,
    scale: &Scale,
    startups: &HashMap<&str, Vec<Startup>>,
    live: &Live,
    probes: (Duration, Duration),
) -> Vec<Row> {
    let mut rows = Vec::new();
    let (big, small) = (&startups["big"], &startups["small"]);
    let med = |v: &[Startup], f: &dyn Fn(&Startup) -> u64| {
        let mut x: Vec<u64> = v.iter().map(f).collect();
        x.sort();
        x[x.len() / 2]
    };
    let ready_big = median(&big.iter().map(|s| s.ready).collect::<Vec<_>>());
    let ready_small = median(&small.iter().map(|s| s.ready).collect::<Vec<_>>());
    let rep = |v: &[Startup]| {
        let mut x: Vec<f64> = v.iter().map(|s| s.reported).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let hosted_big = big[0].hosted as usize;
    let hosted_small = small[0].hosted as usize;
    rows.push(Row::info(
        format!("start-up to ready line, {hosted_big} records (median of {ROUNDS}; node's own figure)"),
        format!("{} ({:.3} s)", ms(ready_big), rep(big)),
        format!("same, {hosted_small} records"),
        format!("{} ({:.3} s)", ms(ready_small), rep(small)),
        Some(ready_big.as_secs_f64() / ready_small.as_secs_f64()),
    ));

    // Memory.
    let rss_big = med(big, &|s| s.rss.rss) as i64;
    let rss_small = med(small, &|s| s.rss.rss) as i64;
    let anon_big = med(big, &|s| s.rss.anon) as i64;
    let anon_small = med(small, &|s| s.rss.anon) as i64;
    rows.push(Row::info(
        format!("idle RSS, {hosted_big} records hosted (median of {ROUNDS})"),
        bytes(rss_big as u64),
        format!("idle RSS, {hosted_small} records hosted"),
        bytes(rss_small as u64),
        Some(rss_big as f64 / rss_small as f64),
    ));
    let n_loaded = live.devices;
    let loaded_delta = live.loaded.rss as i64 - live.idle.rss as i64;
    let per_loaded = loaded_delta as f64 / n_loaded as f64;
    let per_hosted = (rss_big - rss_small) as f64 / (hosted_big - hosted_small) as f64;
    // Target: an idle hosted record costs at most 1% of a record in use.
    let limit = 0.01;
    let ratio = per_hosted / per_loaded;
    rows.push(Row {
        bench: "RSS per hosted record (idle)".into(),
        phr: per(rss_big - rss_small, hosted_big - hosted_small),
        baseline: format!("RSS per loaded record ({n_loaded} read via the API)"),
        base: per(loaded_delta, n_loaded),
        ratio: Some(ratio),
        target: format!("≤ {limit}x"),
        met: Some(ratio <= limit),
        limit: Some(limit),
    });
    rows.push(Row::info(
        "… anonymous memory only (RssAnon)",
        per(anon_big - anon_small, hosted_big - hosted_small),
        "same, per loaded record",
        per(live.loaded.anon as i64 - live.idle.anon as i64, n_loaded),
        None,
    ));
    let conn_delta = live.connected.rss as i64 - live.loaded.rss as i64;
    rows.push(Row::info(
        format!("RSS per live device connection ({} connected)", live.connections),
        per(conn_delta, live.devices),
        "RSS per loaded record",
        per(loaded_delta, n_loaded),
        Some(conn_delta as f64 / live.devices as f64 / per_loaded),
    ));
    let pushed: usize = live.rounds.iter().map(|r| r.pushes.len()).sum::<usize>() + live.single.len();
    rows.push(Row::info(
        format!("RSS growth while {pushed} notes were pushed (node RSS at the end)"),
        format!(
            "{} ({})",
            bytes((live.after.rss as i64 - live.connected.rss as i64).max(0) as u64),
            bytes(live.after.rss)
        ),
        "—",
        "—".into(),
        None,
    ));

    // Throughput under load: per round (the same notes through HTTP and directly, back to
    // back), then the median round; all rounds together for information.
    struct PerRound {
        http: f64,
        direct: f64,
    }
    let mut lat = Vec::new();
    let mut answered = Vec::new();
    let mut direct_each = Vec::new();
    let mut per_round = Vec::new();
    let (mut span_all, mut direct_all, mut n_all) = (Duration::ZERO, Duration::ZERO, 0);
    let (mut node_cpu, mut bench_cpu, mut direct_cpu) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for r in &live.rounds {
        let (l, span) = latencies(live, &r.pushes);
        per_round.push(PerRound {
            http: l.len() as f64 / span.as_secs_f64(),
            direct: r.direct_each.len() as f64 / r.direct_total.as_secs_f64(),
        });
        n_all += l.len();
        span_all += span;
        direct_all += r.direct_total;
        lat.extend(l);
        answered.extend(r.pushes.iter().map(|p| p.answered));
        direct_each.extend(r.direct_each.iter().copied());
        node_cpu += r.node_cpu;
        bench_cpu += r.bench_cpu;
        direct_cpu += r.direct_cpu;
    }
    ctx.note(format!(
        "per round, HTTP vs direct notes/s: {}",
        per_round
            .iter()
            .map(|r| format!("{:.0}/{:.0}", r.http, r.direct))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let wanted: usize = live.rounds.iter().map(|r| r.pushes.len()).sum();
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ratios: Vec<f64> = per_round.iter().map(|r| r.direct / r.http).collect();
    ratios.sort_by(f64::total_cmp);
    let per_device = wanted / live.rounds.len().max(1);
    let all_rounds: Vec<usize> = (0..live.rounds.len()).collect();
    let summary = |idx: &[usize]| {
        let http = mid(idx.iter().map(|i| per_round[*i].http).collect());
        let direct = mid(idx.iter().map(|i| per_round[*i].direct).collect());
        let ratio = mid(idx.iter().map(|i| per_round[*i].direct / per_round[*i].http).collect());
        (http, direct, ratio)
    };
    let (http, direct_rate, ratio) = summary(&all_rounds);
    rows.push(Row::ratio(
        format!(
            "notes via HTTP ({} clients) until applied on {} devices: median of {} rounds of {per_device}",
            scale.clients,
            live.devices,
            live.rounds.len()
        ),
        format!("{http:.0}/s"),
        "Clinic::write of the same notes, no HTTP/network (same rounds)",
        format!("{direct_rate:.0}/s"),
        ratio,
        2.0,
    ));
    // A lone fdatasync on this VM costs ~0.1 ms or ~4 ms (see FAST_DISK); the baseline's are
    // lone, the node's run beside the devices'. The rounds whose direct writes met the fast
    // state (their p50 well under one 4 ms tick), separately:
    let fast: Vec<usize> = all_rounds
        .iter()
        .copied()
        .filter(|i| median(&live.rounds[*i].direct_each) < 2 * FAST_DISK)
        .collect();
    let disks: Vec<Duration> = live.rounds.iter().map(|r| r.disk).collect();
    if !fast.is_empty() && fast.len() < all_rounds.len() {
        let (http, direct_rate, ratio) = summary(&fast);
        rows.push(Row::info(
            format!(
                "… median of the {} of {} rounds whose direct writes had p50 < 2 ms (disk fast)",
                fast.len(),
                all_rounds.len()
            ),
            format!("{http:.0}/s"),
            "same",
            format!("{direct_rate:.0}/s"),
            Some(ratio),
        ));
    }
    rows.push(Row::info(
        "… disk probe before each round (lone fdatasync, median of 10): min / median / max",
        format!(
            "{} / {} / {}",
            ms(*disks.iter().min().unwrap_or(&Duration::ZERO)),
            ms(median(&disks)),
            ms(*disks.iter().max().unwrap_or(&Duration::ZERO))
        ),
        "—",
        "—".into(),
        None,
    ));
    rows.push(Row::info(
        "… per round, direct rate / HTTP rate: min / median / max",
        format!(
            "{:.2}x / {:.2}x / {:.2}x",
            ratios[0],
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1]
        ),
        "—",
        "—".into(),
        None,
    ));
    rows.push(Row::info(
        format!("… all {wanted} notes together ({} delivered)", n_all),
        format!("{:.0}/s ({})", n_all as f64 / span_all.as_secs_f64(), secs(span_all)),
        "same, direct",
        format!(
            "{:.0}/s ({})",
            direct_each.len() as f64 / direct_all.as_secs_f64(),
            secs(direct_all)
        ),
        Some((direct_each.len() as f64 / direct_all.as_secs_f64()) / (n_all as f64 / span_all.as_secs_f64())),
    ));
    let all = wanted + live.single.len();
    if live.delivered < all {
        rows.push(Row {
            bench: "notes delivered".into(),
            phr: format!("{} of {all}", live.delivered),
            baseline: "—".into(),
            base: "—".into(),
            ratio: None,
            target: format!("{all}"),
            met: Some(false),
            limit: None,
        });
    }
    let cpu_per = |d: Duration, n: usize| ms(d / n.max(1) as u32);
    rows.push(Row::info(
        "… CPU per note while pushing: phr-node + bench process (devices, clients)",
        format!("{} + {}", cpu_per(node_cpu, wanted), cpu_per(bench_cpu, wanted)),
        "CPU per direct write",
        cpu_per(direct_cpu, direct_each.len()),
        Some((node_cpu + bench_cpu).as_secs_f64() / direct_cpu.as_secs_f64().max(1e-9)),
    ));
    let (d50, d99) = (median(&direct_each), percentile(&direct_each, 99.0));
    rows.push(Row::info(
        "… push → applied on device, under that load: p50 / p99",
        format!("{} / {}", ms(median(&lat)), ms(percentile(&lat, 99.0))),
        "one direct Clinic::write: p50 / p99",
        format!("{} / {}", ms(d50), ms(d99)),
        Some(median(&lat).as_secs_f64() / d50.as_secs_f64()),
    ));
    rows.push(Row::info(
        "… HTTP answer (durable on the node), under that load: p50 / p99",
        format!("{} / {}", ms(median(&answered)), ms(percentile(&answered, 99.0))),
        "same",
        format!("{} / {}", ms(d50), ms(d99)),
        Some(median(&answered).as_secs_f64() / d50.as_secs_f64()),
    ));

    // Light load.
    let (lat1, _) = latencies(live, &live.single);
    let ans1: Vec<Duration> = live.single.iter().map(|p| p.answered).collect();
    let (s50, s99) = (median(&live.single_direct), percentile(&live.single_direct, 99.0));
    rows.push(Row::info(
        format!(
            "push → applied on device, one at a time ({} notes): p50",
            live.single.len()
        ),
        ms(median(&lat1)),
        "the same note by Clinic::write just before: p50",
        ms(s50),
        Some(median(&lat1).as_secs_f64() / s50.as_secs_f64()),
    ));
    rows.push(Row::info(
        "push → applied on device, one at a time: p99",
        ms(percentile(&lat1, 99.0)),
        "same: p99",
        ms(s99),
        Some(percentile(&lat1, 99.0).as_secs_f64() / s99.as_secs_f64()),
    ));
    rows.push(Row::info(
        "… HTTP answer, one at a time: p50 / p99",
        format!("{} / {}", ms(median(&ans1)), ms(percentile(&ans1, 99.0))),
        "same: p50 / p99",
        format!("{} / {}", ms(s50), ms(s99)),
        Some(median(&ans1).as_secs_f64() / s50.as_secs_f64()),
    ));
    let (a50, a99) = (median(&live.alone_direct), percentile(&live.alone_direct, 99.0));
    rows.push(Row::info(
        "… HTTP answer, one at a time, no device connected: p50 / p99",
        format!("{} / {}", ms(median(&live.alone)), ms(percentile(&live.alone, 99.0))),
        "same: p50 / p99",
        format!("{} / {}", ms(a50), ms(a99)),
        Some(median(&live.alone).as_secs_f64() / a50.as_secs_f64()),
    ));
    rows.push(Row::info(
        "disk: 4 KiB pwrite + fdatasync, median of 50 (before / after)",
        format!("{} / {}", ms(probes.0), ms(probes.1)),
        "—",
        "—".into(),
        None,
    ));
    rows
}
