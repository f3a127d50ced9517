//! Record engine benchmarks (issue 2), each measured beside its baseline in the same run.
//!
//! Run with `cargo bench -p phr-engine --bench record`. After criterion has run every group,
//! `main` reads criterion's median estimates back and prints a summary with the ratios, and the
//! heap figures measured by the counting allocator below.
//!
//! | group            | phr                                          | baseline                                   |
//! |------------------|----------------------------------------------|--------------------------------------------|
//! | `add_entry`      | one entry add through `Device::write`        | 4 KiB `pwrite` + `fdatasync` in the same dir |
//! | `burst_1000`     | 1,000 edits in one `Device::write`           | the same 1,000 edits in 1,000 writes       |
//! | `load_10k`       | `Store::load_record`, 10,000 entries         | `AutoCommit::load` of the docs' `save()`   |
//! | `open`           | `Device::open` (argon2id default cost)       | one `derive_key` at the default cost       |
//! | `cold_open_100k` | `Store::load_record`, 100,000 changes        | `AutoCommit::load` of the same snapshots   |
//! | `compaction`     | `Store::compact`, 2,000 changes              | `save()` of the same doc                   |
//!
//! The VM disk's `fdatasync` latency drifts by 30x with other processes' writeback, and criterion
//! measures one benchmark after the other, so `add_entry`, `burst_1000` and `cold_open_100k` are
//! also timed in alternating rounds (phr, baseline, phr, ...), and a disk probe (median 4 KiB
//! `pwrite` + `fdatasync`) is noted around the disk-bound groups. Figures: docs/BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use criterion::{Criterion, SamplingMode};
use phr_engine::crypto::{KdfParams, derive_key};
use phr_engine::device::{Device, InitOptions};
use phr_engine::entry::parse_fields;
use phr_engine::record::Record;
use phr_engine::section::Section;
use phr_engine::store::Store;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Counting allocator: live heap bytes and the peak since the last reset.
// ---------------------------------------------------------------------------------------------

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn reset_peak() -> usize {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const PASS: &str = "correct horse battery staple";

fn cheap() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

/// A fresh directory under the target dir (same filesystem as /tmp on the bench machine).
fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-record");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn init(home: &Path, kdf: KdfParams) -> Device {
    Device::init(
        home,
        PASS,
        InitOptions {
            name: "Mia Lopez".into(),
            dob: Some("2017-04-12".into()),
            device_name: "bench".into(),
            kdf,
        },
    )
    .unwrap()
}

/// The sections the benchmark writes: every section the record had when its figures in
/// docs/BENCHMARKS.md were measured, but the patient profile, which holds one fixed entry
/// (the five added with issue 14 are left out, so the figures stay comparable).
const SECTIONS: &[Section] = &[
    Section::Conditions,
    Section::Allergies,
    Section::Medications,
    Section::Labs,
    Section::Notes,
    Section::Goals,
    Section::Plans,
    Section::Documents,
    Section::Insurance,
    Section::Appointments,
    Section::Messages,
    Section::Forms,
    Section::CaregiverLog,
];

/// Realistic fields for a new entry of `section`, parsed as the CLI parses them.
fn new_fields(section: Section, i: usize) -> Map<String, Value> {
    let day = format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
    let a: Vec<(&str, String)> = match section {
        Section::Conditions => vec![
            ("name", format!("Condition {i}")),
            ("code", "F84.0".into()),
            ("onset", day),
        ],
        Section::Allergies => vec![
            ("substance", format!("Substance {i}")),
            ("reaction", "hives".into()),
            ("severity", "mild".into()),
        ],
        Section::Medications => vec![
            ("name", format!("Drug {i}")),
            ("dose", "250 mg".into()),
            ("schedule", "twice daily".into()),
        ],
        Section::Labs => vec![
            ("test", format!("Ferritin {i}")),
            ("value", "30".into()),
            ("unit", "ng/mL".into()),
            ("date", day),
        ],
        Section::Notes => vec![
            ("discipline", "speech".into()),
            ("clinician", "J. Ames".into()),
            ("date", day),
            (
                "subjective",
                format!("Session {i}: worked on two-word phrases, good attention"),
            ),
        ],
        Section::Goals => vec![
            ("goal", format!("Goal {i}: request items with two words")),
            ("target", "80".into()),
            ("unit", "% correct".into()),
        ],
        Section::Plans => vec![
            ("title", format!("Plan {i}")),
            ("frequency", "2x weekly, 45 min".into()),
        ],
        Section::Documents => vec![
            ("title", format!("Assessment {i}")),
            ("kind", "assessment".into()),
            ("date", day),
        ],
        Section::Insurance => vec![("payer", "Acme Health".into()), ("member_id", format!("M{i:08}"))],
        Section::Appointments => vec![
            ("reason", format!("Follow-up {i}")),
            ("start", format!("{day} 09:30")),
            ("minutes", "45".into()),
        ],
        Section::Messages => vec![
            ("thread", format!("Thread {}", i % 50)),
            ("body", format!("Message {i}: see you Tuesday")),
        ],
        Section::Forms => vec![("title", format!("Intake form {i}"))],
        Section::CaregiverLog => vec![
            ("date", day),
            ("text", format!("Log {i}: slept well, ate lunch")),
            ("category", "sleep".into()),
        ],
        other => unreachable!("{other} is not benchmarked"),
    };
    let args: Vec<(String, String)> = a.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    parse_fields(section, &args).unwrap()
}

/// Field changed by an edit of an entry of `section` (notes are amended instead).
fn edit_field(section: Section) -> &'static str {
    match section {
        Section::Conditions | Section::Allergies | Section::Labs | Section::Appointments => "notes",
        Section::Medications => "dose",
        Section::Goals => "unit",
        Section::Plans | Section::Documents => "description",
        Section::Insurance => "plan",
        Section::Messages => "to",
        Section::Forms => "title",
        Section::CaregiverLog => "text",
        other => unreachable!("{other} is not edited here"),
    }
}

/// Deterministic stream of edits: entry adds and single-field edits of existing entries.
struct Edits {
    sections: Vec<Section>,
    /// Percentage of edits that add a new entry (the rest change one field of an existing one).
    add_percent: u64,
    ids: BTreeMap<Section, Vec<String>>,
    n: usize,
    rng: u64,
}

impl Edits {
    fn new(sections: &[Section], add_percent: u64) -> Self {
        Edits {
            sections: sections.to_vec(),
            add_percent,
            ids: BTreeMap::new(),
            n: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Make one edit (one Automerge change) in `r`.
    fn one(&mut self, r: &mut Record) -> phr_engine::Result<()> {
        let i = self.n;
        self.n += 1;
        let section = self.sections[i % self.sections.len()];
        let roll = self.next_rand() % 100;
        let pick = self.next_rand() as usize;
        let ids = self.ids.entry(section).or_default();
        if ids.is_empty() || roll < self.add_percent {
            let id = r.add(section, new_fields(section, i))?;
            ids.push(id);
            return Ok(());
        }
        let id = ids[pick % ids.len()].clone();
        if section == Section::Notes {
            return r.amend_note(
                &id,
                &format!("Correction {i}: it was the afternoon session"),
                Some("clarify"),
            );
        }
        let mut change = Map::new();
        change.insert(edit_field(section).into(), Value::String(format!("edit {i}")));
        r.edit(section, &id, change)
    }

    fn many(&mut self, r: &mut Record, n: usize) -> phr_engine::Result<()> {
        for _ in 0..n {
            self.one(r)?;
        }
        Ok(())
    }
}

/// Bytes of the `save()` of every section that `Store::load_record` loads: the bare-Automerge
/// baseline's input (the same edits, without signatures, sealing or store).
fn saved_docs(d: &mut Device) -> Vec<Vec<u8>> {
    let id = d.record().id();
    let (loaded, _) = d.store().load_record(&id).unwrap();
    loaded.keys().map(|s| d.record_mut().doc(*s).save()).collect()
}

fn am_load_all(saved: &[Vec<u8>]) -> Vec<AutoCommit> {
    saved.iter().map(|b| AutoCommit::load(b).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------
// Facts printed after the run
// ---------------------------------------------------------------------------------------------

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note(s: String) {
    println!("{s}");
    NOTES.lock().unwrap().push(s);
}

// ---------------------------------------------------------------------------------------------
// 1. add_entry
// ---------------------------------------------------------------------------------------------

fn add_entry(c: &mut Criterion) {
    fsync_probe("before add_entry");
    let dir = scratch();
    let mut d = init(dir.path(), cheap());
    // Precomputed fields, cycled over every section so no section reaches auto-compaction.
    let fields: Vec<(Section, Map<String, Value>)> = SECTIONS.iter().map(|s| (*s, new_fields(*s, 7))).collect();

    // Baseline file beside the store: preallocated and synced, so each write is a pure data write.
    let path = dir.path().join("baseline.bin");
    let mut f = File::create(&path).unwrap();
    const SLOTS: u64 = 256;
    f.write_all(&vec![0u8; (SLOTS * 4096) as usize]).unwrap();
    f.sync_all().unwrap();
    let block = vec![0xA5u8; 4096];

    let mut g = c.benchmark_group("add_entry");
    g.sample_size(100).measurement_time(Duration::from_secs(5));
    let mut n = 0usize;
    g.bench_function("phr_device_write", |b| {
        b.iter(|| {
            let (section, f) = &fields[n % fields.len()];
            n += 1;
            black_box(d.write(|r| r.add(*section, f.clone())).unwrap())
        })
    });
    let mut k = 0u64;
    g.bench_function("baseline_4k_pwrite_fdatasync", |b| {
        b.iter(|| {
            f.write_all_at(&block, (k % SLOTS) * 4096).unwrap();
            k += 1;
            f.sync_data().unwrap();
        })
    });

    // Where the time goes: the in-memory part alone (validate, Automerge ops and commit, sign),
    // and a bare redb commit of one ~1 KiB value (what the store's durable commit costs at least).
    let mut mem = Record::new(d.record().id(), phr_engine::KeyPair::generate());
    let mut m = 0usize;
    g.bench_function("part_record_add_in_memory", |b| {
        b.iter(|| {
            let (section, f) = &fields[m % fields.len()];
            m += 1;
            mem.add(*section, f.clone()).unwrap();
            black_box(mem.take_pending())
        })
    });
    let db = redb::Database::create(dir.path().join("bare.redb")).unwrap();
    const T: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
    let value = vec![0x5Au8; 1024];
    let mut j = 0u64;
    g.bench_function("part_bare_redb_commit_1k", |b| {
        b.iter(|| {
            let txn = db.begin_write().unwrap();
            txn.open_table(T).unwrap().insert(j, value.as_slice()).unwrap();
            j += 1;
            txn.commit().unwrap();
        })
    });
    g.finish();

    // The disk's fsync latency drifts on a shared VM (other processes' writeback makes the
    // device flush wait): also time phr, the baseline and the two parts in turn, round by round.
    let rounds = 300;
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        let (section, fl) = &fields[n % fields.len()];
        n += 1;
        let t = Instant::now();
        d.write(|r| r.add(*section, fl.clone())).unwrap();
        times[0].push(t.elapsed());
        let t = Instant::now();
        f.write_all_at(&block, (k % SLOTS) * 4096).unwrap();
        k += 1;
        f.sync_data().unwrap();
        times[1].push(t.elapsed());
        let t = Instant::now();
        mem.add(*section, fl.clone()).unwrap();
        black_box(mem.take_pending());
        times[2].push(t.elapsed());
        let t = Instant::now();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(j, value.as_slice()).unwrap();
        j += 1;
        txn.commit().unwrap();
        times[3].push(t.elapsed());
    }
    let [p, r, im, rc] = times.map(|mut v| median(&mut v));
    note(format!(
        "add_entry interleaved ({rounds} rounds): phr p50 {}, 4 KiB pwrite+fdatasync p50 {}, ratio {:.2}x; \
         parts: in-memory add p50 {}, bare redb commit p50 {}",
        human(p),
        human(r),
        p / r,
        human(im),
        human(rc)
    ));
    INTERLEAVED.lock().unwrap().insert("add_entry", (p, r));
    fsync_probe("after add_entry");
    note(format!("add_entry: {n} entries added to one device in all"));
}

fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_nanos() as f64
}

/// Interleaved (phr, baseline) medians in ns, by group.
static INTERLEAVED: Mutex<BTreeMap<&'static str, (f64, f64)>> = Mutex::new(BTreeMap::new());

// ---------------------------------------------------------------------------------------------
// 2. burst_1000
// ---------------------------------------------------------------------------------------------

fn burst_1000(c: &mut Criterion) {
    fsync_probe("before burst_1000");
    const N: usize = 1000;
    let mut g = c.benchmark_group("burst_1000");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    // Each timed burst starts from a fresh home holding only the patient profile.
    g.bench_function("phr_one_write", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = scratch();
                let mut d = init(dir.path(), cheap());
                let mut e = Edits::new(SECTIONS, 10);
                let t = Instant::now();
                d.write(|r| e.many(r, N)).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("baseline_1000_writes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = scratch();
                let mut d = init(dir.path(), cheap());
                let mut e = Edits::new(SECTIONS, 10);
                let t = Instant::now();
                for _ in 0..N {
                    d.write(|r| e.one(r)).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    // Alternating rounds, so both sides see the same disk.
    let rounds = 3;
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = scratch();
        let mut d = init(dir.path(), cheap());
        let mut e = Edits::new(SECTIONS, 10);
        let t = Instant::now();
        d.write(|r| e.many(r, N)).unwrap();
        one.push(t.elapsed());
        let dir = scratch();
        let mut d = init(dir.path(), cheap());
        let mut e = Edits::new(SECTIONS, 10);
        let t = Instant::now();
        for _ in 0..N {
            d.write(|r| e.one(r)).unwrap();
        }
        many.push(t.elapsed());
    }
    let (p, b) = (median(&mut one), median(&mut many));
    note(format!(
        "burst_1000 interleaved ({rounds} rounds): one write p50 {}, 1000 writes p50 {}, burst {:.1}x faster",
        human(p),
        human(b),
        b / p
    ));
    INTERLEAVED.lock().unwrap().insert("burst_1000", (p, b));
    fsync_probe("after burst_1000");
}

/// Median latency of a 4 KiB pwrite + fdatasync right now: the disk's state, for the notes.
fn fsync_probe(when: &str) {
    let dir = scratch();
    let f = File::create(dir.path().join("probe.bin")).unwrap();
    f.write_all_at(&[0u8; 64 * 4096], 0).unwrap();
    f.sync_all().unwrap();
    let block = [0x3Cu8; 4096];
    let mut v: Vec<Duration> = (0..64u64)
        .map(|i| {
            let t = Instant::now();
            f.write_all_at(&block, i * 4096).unwrap();
            f.sync_data().unwrap();
            t.elapsed()
        })
        .collect();
    note(format!(
        "disk probe {when}: 4 KiB pwrite+fdatasync p50 {}",
        human(median(&mut v))
    ));
}

// ---------------------------------------------------------------------------------------------
// 3. load_10k (+ Device::open and the argon2 cost)
// ---------------------------------------------------------------------------------------------

fn load_10k(c: &mut Criterion) {
    let dir = scratch();
    let t = Instant::now();
    // The real KDF cost, so that `Device::open` below measures it; loads do not depend on it.
    let mut d = init(dir.path(), KdfParams::default());
    let mut e = Edits::new(SECTIONS, 100);
    for _ in 0..10 {
        d.write(|r| e.many(r, 1000)).unwrap();
    }
    let id = d.record().id();
    let entries: usize = Section::ALL.iter().map(|s| d.record().count(*s)).sum();
    let saved = saved_docs(&mut d);
    let saved_len: usize = saved.iter().map(Vec::len).sum();
    note(format!(
        "load_10k: setup {:.1} s; {entries} entries; {} changes waiting uncompacted; save() bytes of all sections {saved_len}",
        t.elapsed().as_secs_f64(),
        d.uncompacted().values().sum::<usize>()
    ));

    let mut g = c.benchmark_group("load_10k");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("phr_load_record_uncompacted", |b| {
        b.iter(|| black_box(d.store().load_record(&id).unwrap()))
    });
    d.compact().unwrap();
    g.bench_function("phr_load_record_compacted", |b| {
        b.iter(|| black_box(d.store().load_record(&id).unwrap()))
    });
    g.bench_function("baseline_automerge_load", |b| b.iter(|| black_box(am_load_all(&saved))));
    g.finish();
    drop(d);

    // Unlocking: argon2id at the default cost, then the 10k-entry record (now compacted).
    let mut g = c.benchmark_group("open");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("phr_device_open_default_kdf_10k", |b| {
        b.iter(|| black_box(Device::open(dir.path(), PASS).unwrap()))
    });
    g.bench_function("part_store_open_default_kdf", |b| {
        b.iter(|| black_box(Store::open(&Device::store_path(dir.path()), PASS).unwrap()))
    });
    let salt = [7u8; 16];
    g.bench_function("baseline_one_argon2id_default", |b| {
        b.iter(|| black_box(derive_key(PASS, &salt, KdfParams::default()).unwrap()))
    });
    g.finish();
    let p = KdfParams::default();
    note(format!(
        "open: KdfParams::default() = argon2id m={} KiB, t={}, p={}",
        p.memory_kib, p.iterations, p.lanes
    ));
}

// ---------------------------------------------------------------------------------------------
// 4. cold_open_100k (+ heap)
// ---------------------------------------------------------------------------------------------

// One piece: builds the 100k-change store, then times opening it and measures the heap,
// in order; the measurements share the store and the allocator's counters.
fn cold_open_100k(c: &mut Criterion) {
    let dir = scratch();
    let t = Instant::now();
    let mut d = init(dir.path(), cheap());
    let mut e = Edits::new(SECTIONS, 10);
    let mut changes = 1; // the profile
    for _ in 0..100 {
        d.write(|r| e.many(r, 1000)).unwrap();
        changes += 1000;
    }
    let built = t.elapsed();
    d.compact().unwrap();
    let id = d.record().id();
    let entries: usize = Section::ALL.iter().map(|s| d.record().count(*s)).sum();
    let history = d.record_mut().history(None).len();
    let before = saved_docs(&mut d);
    drop(d);
    note(format!(
        "cold_open_100k: setup {:.1} s (+ compact); {changes} changes written, {history} in history, {entries} entries",
        built.as_secs_f64()
    ));

    let store = Store::open(&Device::store_path(dir.path()), PASS).unwrap();

    // Heap: live bytes added by a load through the store, on a freshly opened store (its page
    // cache still empty), against AutoCommit::load of the same snapshot bytes already in memory.
    let h0 = reset_peak();
    let (docs, waiting) = store.load_record(&id).unwrap();
    let store_live = live() - h0;
    let store_peak = peak() - h0;
    assert_eq!(waiting.values().sum::<usize>(), 0, "everything is compacted");
    drop(waiting);
    let mut docs: Vec<AutoCommit> = docs.into_values().collect();
    let before_saving = live();
    let saved: Vec<Vec<u8>> = docs.iter_mut().map(AutoCommit::save).collect();
    let saved_alloc = live() - before_saving;
    let identical = saved == before;
    let saved_len: usize = saved.iter().map(Vec::len).sum();
    let h1 = live();
    drop(docs);
    // What the load left live besides the documents (redb's read cache and the like).
    let store_cache = live().saturating_sub(h0 + saved_alloc);
    let freed_by_docs = h1 - live();
    // Warm: a second load on the same store.
    let h2 = reset_peak();
    let warm = store.load_record(&id).unwrap();
    let store_live_warm = live() - h2;
    drop(warm);

    let h3 = reset_peak();
    let am = am_load_all(&saved);
    let am_live = live() - h3;
    let am_peak = peak() - h3;
    drop(am);

    note(format!(
        "cold_open_100k: snapshot (save()) bytes of all sections {saved_len}; save() of the loaded docs identical to the writer's: {identical}"
    ));
    note(format!(
        "heap after load: store (fresh store) {} live, peak +{}; of which store caches kept after the docs are dropped {}; docs themselves {}",
        mib(store_live),
        mib(store_peak),
        mib(store_cache),
        mib(freed_by_docs)
    ));
    note(format!(
        "heap after load: store (second load, warm) {} live",
        mib(store_live_warm)
    ));
    note(format!(
        "heap after load: AutoCommit::load {} live, peak +{}",
        mib(am_live),
        mib(am_peak)
    ));
    note(format!(
        "heap ratio (fresh store / automerge) {:.3}x; (warm store / automerge) {:.3}x",
        store_live as f64 / am_live as f64,
        store_live_warm as f64 / am_live as f64
    ));
    HEAP.lock().unwrap().extend([store_live, store_live_warm, am_live]);

    let mut g = c.benchmark_group("cold_open_100k");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("phr_load_record", |b| {
        b.iter(|| black_box(store.load_record(&id).unwrap()))
    });
    g.bench_function("baseline_automerge_load", |b| b.iter(|| black_box(am_load_all(&saved))));
    g.finish();

    let rounds = 6;
    let (mut phr, mut am) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(store.load_record(&id).unwrap());
        phr.push(t.elapsed());
        let t = Instant::now();
        black_box(am_load_all(&saved));
        am.push(t.elapsed());
    }
    let (p, a) = (median(&mut phr), median(&mut am));
    note(format!(
        "cold_open_100k interleaved ({rounds} alternating pairs): phr p50 {}, AutoCommit::load p50 {}, ratio {:.2}x",
        human(p),
        human(a),
        p / a
    ));
    INTERLEAVED.lock().unwrap().insert("cold_open_100k", (p, a));
}

static HEAP: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Groups run by this process: the summary shows only their (fresh) estimates.
static RAN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn ran(group: &str) -> bool {
    RAN.lock().unwrap().contains(&group)
}

// ---------------------------------------------------------------------------------------------
// 5. compaction
// ---------------------------------------------------------------------------------------------

/// A fresh home whose medications section holds 2,000 uncompacted changes.
fn with_2000_waiting() -> (tempfile::TempDir, Device) {
    let dir = scratch();
    let mut d = init(dir.path(), cheap());
    let mut e = Edits::new(&[Section::Medications], 10);
    d.write(|r| e.many(r, 1000)).unwrap();
    d.write(|r| e.many(r, 1000)).unwrap();
    assert_eq!(d.uncompacted()[&Section::Medications], 2000);
    (dir, d)
}

fn compaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("phr_store_compact_2000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, mut d) = with_2000_waiting();
                let id = d.record().id();
                let mut doc = d.record_mut().doc(Section::Medications).clone();
                let t = Instant::now();
                d.store().compact(&id, Section::Medications, &mut doc).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    let (_dir, mut d) = with_2000_waiting();
    let doc = d.record_mut().doc(Section::Medications);
    note(format!(
        "compaction: medications doc save() is {} bytes",
        doc.save().len()
    ));
    g.bench_function("baseline_doc_save", |b| b.iter(|| black_box(doc.save())));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/// Where criterion writes its estimates, found the way criterion 0.5 finds it.
fn criterion_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("criterion");
    }
    if std::env::var_os("CARGO").is_some() {
        // Under cargo, criterion asks `cargo metadata`: the workspace target directory.
        return PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..").join("criterion");
    }
    PathBuf::from("target").join("criterion")
}

static STARTED: Mutex<Option<std::time::SystemTime>> = Mutex::new(None);

/// Criterion's median point estimate (ns) of one benchmark, if this run measured it (a test
/// run, `--test`, writes no estimates: older files are ignored).
fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let started = (*STARTED.lock().unwrap())?;
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// How a row's target reads the ratio phr / baseline.
#[derive(Clone, Copy)]
enum Target {
    /// No target: the figure is for information.
    None,
    /// phr / baseline must be at most this.
    AtMost(f64),
    /// baseline / phr must be at least this (phr is the faster side).
    SpeedupAtLeast(f64),
}

// One piece: the summary table in the order it prints, one target per row.
fn summary(started: Instant) {
    use Target::*;
    let rows = [
        (
            "add_entry",
            "phr_device_write",
            "baseline_4k_pwrite_fdatasync",
            AtMost(1.5),
        ),
        (
            "burst_1000",
            "phr_one_write",
            "baseline_1000_writes",
            SpeedupAtLeast(10.0),
        ),
        (
            "load_10k",
            "phr_load_record_uncompacted",
            "baseline_automerge_load",
            None,
        ),
        ("load_10k", "phr_load_record_compacted", "baseline_automerge_load", None),
        (
            "open",
            "phr_device_open_default_kdf_10k",
            "baseline_one_argon2id_default",
            None,
        ),
        (
            "cold_open_100k",
            "phr_load_record",
            "baseline_automerge_load",
            AtMost(1.2),
        ),
        ("compaction", "phr_store_compact_2000", "baseline_doc_save", None),
    ];
    let interleaved = INTERLEAVED.lock().unwrap().clone();
    println!();
    println!("==== summary (criterion medians from this run) ====");
    println!("| benchmark | phr | baseline | ratio phr/baseline | target | met? |");
    println!("|---|---|---|---|---|---|");
    let mut printed = 0;
    for (group, phr, base, target) in rows {
        let (true, Some(p), Some(b)) = (ran(group), median_ns(group, phr), median_ns(group, base)) else {
            continue;
        };
        printed += 1;
        let ratio = p / b;
        let (shown, goal, met) = match target {
            None => (format!("{ratio:.3}x"), "-".to_string(), "-"),
            AtMost(l) => (
                format!("{ratio:.3}x"),
                format!("<= {l}x"),
                if ratio <= l { "yes" } else { "no" },
            ),
            SpeedupAtLeast(l) => (
                format!("{ratio:.4}x (burst {:.1}x faster)", b / p),
                format!(">= {l}x faster"),
                if b / p >= l { "yes" } else { "no" },
            ),
        };
        println!(
            "| {group}/{phr} | {} | {base} {} | {shown} | {goal} | {met} |",
            human(p),
            human(b)
        );
        if let Some((ip, ib)) = interleaved.get(group) {
            let r = ip / ib;
            let (shown, met) = match target {
                AtMost(l) => (format!("{r:.3}x"), if r <= l { "yes" } else { "no" }),
                SpeedupAtLeast(l) => (
                    format!("{r:.4}x (burst {:.1}x faster)", ib / ip),
                    if ib / ip >= l { "yes" } else { "no" },
                ),
                None => (format!("{r:.3}x"), "-"),
            };
            println!(
                "| {group} (interleaved) | {} | {} | {shown} | {goal} | {met} |",
                human(*ip),
                human(*ib)
            );
        }
    }
    for (group, part) in [
        ("add_entry", "part_record_add_in_memory"),
        ("add_entry", "part_bare_redb_commit_1k"),
        ("open", "part_store_open_default_kdf"),
    ] {
        if let (true, Some(p)) = (ran(group), median_ns(group, part)) {
            println!("| {group}/{part} (breakdown) | {} | | | | |", human(p));
        }
    }
    if printed == 0 {
        println!("(no estimates found under {})", criterion_dir().display());
    }
    let heap = HEAP.lock().unwrap();
    if let [fresh, warm, am] = heap[..] {
        let r = fresh as f64 / am as f64;
        println!(
            "| cold_open_100k heap after load | {} | AutoCommit::load {} | {r:.3}x (warm store {:.3}x) | <= 1.25x | {} |",
            mib(fresh),
            mib(am),
            warm as f64 / am as f64,
            if r <= 1.25 { "yes" } else { "no" }
        );
    }
    println!();
    for n in NOTES.lock().unwrap().iter() {
        println!("note: {n}");
    }
    println!("total bench time {:.0} s", started.elapsed().as_secs_f64());
}

/// Whether a group runs: criterion's name filter (if any) names it, so that setup of groups
/// criterion would skip is not paid for. A filter's first path segment must begin the group's
/// name (`add_entry`, `burst_1000/phr_one_write`, `open`); criterion applies the full filter.
fn wanted(group: &str) -> bool {
    const VALUED: [&str; 12] = [
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if VALUED.contains(&a.as_str())
            || a == "--profile-time"
            || a == "--format"
            || a == "--color"
            || a == "--output-format"
            || a == "--plotting-backend"
            || a == "--load-baseline"
        {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            filters.push(a.clone());
        }
        i += 1;
    }
    filters.is_empty()
        || filters.iter().any(|f| {
            let head = f.split('/').next().unwrap_or(f);
            !head.is_empty() && group.starts_with(head)
        })
}

fn main() {
    let started = Instant::now();
    *STARTED.lock().unwrap() = Some(std::time::SystemTime::now());
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    type Group = (&'static str, fn(&mut Criterion));
    let groups: [Group; 5] = [
        ("add_entry", add_entry),
        ("burst_1000", burst_1000),
        ("load_10k", load_10k),
        ("cold_open_100k", cold_open_100k),
        ("compaction", compaction),
    ];
    for (name, run) in groups {
        if wanted(name) || (name == "load_10k" && wanted("open")) {
            RAN.lock().unwrap().push(name);
            if name == "load_10k" {
                RAN.lock().unwrap().push("open");
            }
            run(&mut c);
        }
    }
    c.final_summary();
    summary(started);
}
