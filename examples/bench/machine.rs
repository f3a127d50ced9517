//! The machine a bench run measured, and writing the run's table into docs/BENCHMARKS.md.
//!
//! Figures only mean something beside the machine and its load, so the block written into the
//! docs carries both: CPU, cores, memory, kernel, compiler, commit, and the load average at the
//! start and the end of the run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where the generated block starts and ends in the docs file.
const BEGIN: &str = "<!-- bench table: begin (written by `cargo run --release --example bench -- --write-docs`) -->";
const END: &str = "<!-- bench table: end -->";

/// What was true of the machine at one moment.
pub struct Facts {
    /// UTC time.
    pub at: String,
    /// 1-minute load average.
    pub load: String,
}

impl Facts {
    /// Read them now.
    pub fn now() -> Facts {
        Facts {
            at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The Markdown block for the docs: the machine, the run, and the table.
pub fn describe(before: &Facts, after: &Facts, groups: &[&str], took: Duration, table: &str) -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let commit = first_line("git", &["rev-parse", "--short", "HEAD"]);
    let uncommitted = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    let dirty = if uncommitted { " (with uncommitted changes)" } else { "" };
    format!(
        "{BEGIN}\n\n\
         Run of {start} to {end}, {secs:.0} s, groups {groups}; commit {commit}{dirty}.\n\n\
         Machine: {cpu}, {cores} cores, {mem} memory, Linux {kernel}, {rustc}. \
         Load average (1 min) {load0} at the start, {load1} at the end.\n\n\
         {table}\n\n{END}",
        start = before.at,
        end = after.at,
        secs = took.as_secs_f64(),
        groups = groups.join(", "),
        cpu = proc_field("/proc/cpuinfo", "model name"),
        mem = proc_field("/proc/meminfo", "MemTotal"),
        kernel = first_line("uname", &["-r"]),
        rustc = first_line("rustc", &["-V"]),
        load0 = before.load,
        load1 = after.load,
    )
}

/// Replace the block between the markers in `file` (or add it after the file's first
/// paragraph when there are no markers yet).
pub fn write_block(file: &Path, block: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &text[..b], &text[e + END.len()..]),
        _ => {
            let at = text.find("\n## ").map(|i| i + 1).unwrap_or(text.len());
            format!("{}{block}\n\n{}", &text[..at], &text[at..])
        }
    };
    let tmp = file.with_extension("md.tmp");
    std::fs::write(&tmp, updated)?;
    std::fs::rename(tmp, file)
}
