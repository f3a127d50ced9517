//! phr benchmarks that need the whole stack (stores, iroh endpoints, sessions), each figure
//! measured beside its baseline in the same run.
//!
//! Run: `cargo run --release --example bench` (all groups), or
//! `cargo run --release --example bench -- --only sync` (one group; a comma list also works).
//! Groups: `sync` (sync over iroh), `access` (capability checks), `node` (the `phr-node`
//! daemon with many hosted records and live devices; `BENCH_NODE_SCALE=quick` for a quick check).
//! `fhir` (`phr import --fhir` of the largest sample bundle beside parsing it).
//! `attach` (an encrypted 256 MiB attachment between two devices beside a raw iroh stream).
//!
//! Every group returns rows of one table:
//! benchmark | phr figure | baseline | baseline figure | ratio | target | met.
//! A group is a module with `pub fn run(ctx: &Ctx) -> Vec<Row>`; add it to [`GROUPS`].

mod access;
mod attach;
mod fhir;
mod machine;
mod node;
mod sync;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One line of the result table.
pub struct Row {
    /// What was measured.
    pub bench: String,
    /// The phr figure, formatted.
    pub phr: String,
    /// What it is compared with.
    pub baseline: String,
    /// The baseline's figure, formatted.
    pub base: String,
    /// phr / baseline (lower is better unless the target says otherwise).
    pub ratio: Option<f64>,
    /// The target, as text.
    pub target: String,
    /// Whether the target was met (`None`: informational row).
    pub met: Option<bool>,
    /// The ratio the target allows, for rows with a ratio target.
    pub limit: Option<f64>,
}

impl Row {
    /// A row whose target is "ratio at most `limit`".
    pub fn ratio(
        bench: impl Into<String>,
        phr: String,
        baseline: impl Into<String>,
        base: String,
        ratio: f64,
        limit: f64,
    ) -> Row {
        Row {
            bench: bench.into(),
            phr,
            baseline: baseline.into(),
            base,
            ratio: Some(ratio),
            target: format!("≤ {limit}x"),
            met: Some(ratio <= limit),
            limit: Some(limit),
        }
    }

    /// A row for information only.
    pub fn info(
        bench: impl Into<String>,
        phr: String,
        baseline: impl Into<String>,
        base: String,
        ratio: Option<f64>,
    ) -> Row {
        Row {
            bench: bench.into(),
            phr,
            baseline: baseline.into(),
            base,
            ratio,
            target: "—".into(),
            met: None,
            limit: None,
        }
    }
}

/// What every group gets.
pub struct Ctx {
    /// Scratch space (stores, redb files); removed at exit.
    pub scratch: PathBuf,
    /// Print progress lines to stderr.
    pub verbose: bool,
}

impl Ctx {
    /// A fresh directory under the scratch space.
    pub fn dir(&self) -> tempfile::TempDir {
        tempfile::tempdir_in(&self.scratch).expect("scratch dir")
    }

    /// A progress line (stderr, so stdout holds only the table).
    pub fn note(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("  {}", msg.as_ref());
        }
    }
}

type Group = (&'static str, fn(&Ctx) -> Vec<Row>);

/// Every group, in the order they run.
const GROUPS: &[Group] = &[
    ("sync", sync::run),
    ("access", access::run),
    ("node", node::run),
    ("fhir", fhir::run),
    ("attach", attach::run),
];

// ---------------------------------------------------------------------------------------------
// Small helpers shared by groups
// ---------------------------------------------------------------------------------------------

/// Milliseconds with sensible precision.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// Bytes in KiB/MiB.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", f / (1024.0 * 1024.0))
    } else if f >= 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The `p`-th percentile (0..=100) of some durations, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The median of some durations.
pub fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50.0)
}

/// The passphrase of every store a group makes.
pub const PASS: &str = "bench passphrase";

/// Key stretching cheap enough that making thousands of stores measures the stores, not argon2.
pub fn cheap() -> phr::crypto::KdfParams {
    phr::crypto::KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    }
}

/// Seconds since the epoch, as grants and statements take them.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Time a closure.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn usage() -> ! {
    let names: Vec<&str> = GROUPS.iter().map(|g| g.0).collect();
    eprintln!(
        "usage: bench [--only GROUP[,GROUP…]] [--quiet] [--write-docs [FILE]]\n  groups: {}\n  \
         --write-docs: put the table and the machine it ran on into FILE (default \
         docs/BENCHMARKS.md), between its `bench table` markers",
        names.join(", ")
    );
    std::process::exit(2)
}

fn main() {
    let mut only: Option<Vec<String>> = None;
    let mut verbose = true;
    let mut write_docs: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--write-docs" => {
                let file = match args.peek() {
                    Some(f) if !f.starts_with("--") => PathBuf::from(args.next().unwrap_or_default()),
                    _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/BENCHMARKS.md"),
                };
                write_docs = Some(file);
            }
            "--only" => {
                let v = args.next().unwrap_or_else(|| usage());
                only = Some(v.split(',').map(|s| s.trim().to_string()).collect());
            }
            "--quiet" | "-q" => verbose = false,
            "--help" | "-h" => usage(),
            _ => usage(),
        }
    }
    if let Some(o) = &only {
        for name in o {
            if !GROUPS.iter().any(|g| g.0 == name) {
                eprintln!("unknown group `{name}`");
                usage();
            }
        }
    }

    // Scratch on the same filesystem as the build (not a tmpfs), so fsync costs what it costs.
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/bench");
    std::fs::create_dir_all(&base).expect("scratch base");
    let scratch = tempfile::tempdir_in(&base).expect("scratch");
    let ctx = Ctx {
        scratch: scratch.path().to_path_buf(),
        verbose,
    };

    let machine_before = machine::Facts::now();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut ran = Vec::new();
    for (name, run) in GROUPS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        eprintln!("== group {name}");
        let t = Instant::now();
        for mut row in run(&ctx) {
            row.bench = format!("{name}: {}", row.bench);
            rows.push(row);
        }
        eprintln!("== group {name} took {:.1} s", t.elapsed().as_secs_f64());
        ran.push(*name);
    }
    let table = table(&rows);
    println!("\n{table}");
    let took = started.elapsed();
    eprintln!("total {:.1} s", took.as_secs_f64());
    if let Some(file) = write_docs {
        let block = machine::describe(&machine_before, &machine::Facts::now(), &ran, took, &table);
        match machine::write_block(&file, &block) {
            Ok(()) => eprintln!("wrote the table into {}", file.display()),
            Err(e) => {
                eprintln!("could not write {}: {e}", file.display());
                std::process::exit(1);
            }
        }
    }
}

/// A ratio with two decimals, or three when two would round a miss onto its limit.
fn show_ratio(x: f64, limit: Option<f64>) -> String {
    match limit {
        Some(l) if x > l && (x * 100.0).round() / 100.0 <= l => format!("{x:.3}x"),
        // Small ratios (memory per idle record) would all print as 0.00x.
        _ if x != 0.0 && x.abs() < 0.01 => format!("{x:.4}x"),
        _ => format!("{x:.2}x"),
    }
}

/// The rows as a Markdown table, columns padded so it reads as text too.
fn table(rows: &[Row]) -> String {
    let header = [
        "benchmark",
        "phr figure",
        "baseline",
        "baseline figure",
        "ratio",
        "target",
        "met",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.bench.clone(),
                r.phr.clone(),
                r.baseline.clone(),
                r.base.clone(),
                r.ratio.map(|x| show_ratio(x, r.limit)).unwrap_or_else(|| "—".into()),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "**no**".into(),
                    None => "—".into(),
                },
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .zip(width)
            .map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let dashes: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = vec![line(&header.map(String::from)), format!("|-{}-|", dashes.join("-|-"))];
    out.extend(cells.iter().map(|c| line(c)));
    out.join("\n")
}
