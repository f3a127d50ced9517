//! A real FHIR R4 validator for the tests: `tests/fhir_validator/validate.py`, fhir.resources'
//! R4B models plus the checks they do not do (references resolving inside a Bundle, required
//! codes, no empty values; see the script's docs), run in a virtual environment under target/
//! that `tests/fhir_validator/ensure-venv` creates on first use (pinned by hash; `.ci/run` creates
//! it up front).
#![allow(dead_code)] // not every test file that shares the harness validates FHIR

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn validator_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir_validator")
}

/// The virtual environment's Python, created once per test binary (and once per machine: the
/// script keeps it and locks against other test binaries creating it at the same time).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fhir-validator");
        let script = validator_dir().join("ensure-venv");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "creating the FHIR validator's virtual environment in {} failed (it needs python3 \
             with venv and pip, and PyPI):\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("venv/bin/python")
    })
}

/// Every problem the FHIR R4 validator finds in `resource` (a resource or a Bundle of them), one
/// line each, `PATH: MESSAGE` (e.g. `Bundle.entry[3].resource.start: … instant …`); empty when
/// it is valid.
pub fn fhir_problems(resource: &Value) -> Vec<String> {
    let script = validator_dir().join("validate.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
    // The script reads all of its input before it writes anything, so this cannot block on a
    // full output pipe.
    let sent = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(resource.to_string().as_bytes());
    let out = child.wait_with_output().expect("the validator's output");
    sent.unwrap_or_else(|e| panic!("sending the resource to the validator: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let problems: Vec<String> = stdout
        .lines()
        .map(|l| l.strip_prefix("-: ").unwrap_or(l).to_string())
        .collect();
    match out.status.code() {
        Some(0) if problems.is_empty() => problems,
        Some(1) if !problems.is_empty() => problems,
        code => panic!(
            "the FHIR validator failed ({code:?}):\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The problems of several resources in one run of the validator (it starts in a fraction of
/// a second; one run saves that for each), each line starting with the name it was given.
pub fn fhir_problems_each(named: Vec<(String, Value)>) -> Vec<String> {
    let (names, all): (Vec<String>, Vec<Value>) = named.into_iter().unzip();
    fhir_problems(&Value::Array(all))
        .into_iter()
        .map(|line| {
            // The script names the i-th of an array `[i] PATH`.
            let split = line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "))
                .and_then(|(i, rest)| Some((names.get(i.parse::<usize>().ok()?)?, rest)));
            match split {
                Some((name, rest)) => format!("{name}: {rest}"),
                None => line,
            }
        })
        .collect()
}

/// Fail, listing the problems, unless `resource` is valid FHIR R4; `what` says what it is.
#[track_caller]
pub fn assert_valid_fhir(what: &str, resource: &Value) {
    let problems = fhir_problems(resource);
    assert!(
        problems.is_empty(),
        "{what} is not valid FHIR R4 ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
