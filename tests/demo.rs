//! The README's first command, `cargo run --example demo`: a newcomer watching it in a terminal
//! ends in the patient portal of the demo family's phone; a script piping it does not wait.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use common::http;
use common::processes::{Proc, run};

/// The demo example's binary. `cargo test` builds the examples next to the test binaries
/// (target/<profile>/examples/); run alone, this test needs `cargo build --example demo` first.
fn demo_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/");
    let bin = profile
        .join("examples")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds it, or run `cargo build --example demo` before this test alone",
        bin.display()
    );
    bin
}

fn demo(args: &[&str]) -> Command {
    let mut cmd = Command::new(demo_bin());
    cmd.args(args);
    cmd
}

#[test]
fn piped_demo_runs_to_the_end_and_skips_the_portal() {
    // The test's pipe is not a terminal: nobody is there to open a browser.
    let piped = run(demo(&[]), "demo".into()).ok();
    assert!(piped.stdout.contains("[9] Done"), "{}", piped.stdout);
    assert!(piped.stdout.contains("the portal is skipped"), "{}", piped.stdout);
    assert!(!piped.stdout.contains("Portal: open"), "{}", piped.stdout);

    let asked_not_to = run(demo(&["--no-portal"]), "demo --no-portal".into()).ok();
    assert!(asked_not_to.stdout.contains("the portal is skipped"));
}

#[test]
fn a_wrong_argument_is_named() {
    let refused = run(demo(&["--portl"]), "demo --portl".into());
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("unknown argument `--portl`"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
}

#[test]
fn demo_ends_serving_the_demo_familys_record_in_the_portal_until_ctrl_c() {
    let mut proc = Proc::spawn(demo(&["--portal"]), "demo --portal".into());
    let line = proc.wait_line(|l| l.starts_with("Portal: open "));
    let login = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no loopback link in `{line}`"));
    let rest = login.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let addr: SocketAddr = host.parse().expect("an address");

    // Opening the link signs the browser in.
    let signed_in = http::send(addr, "GET", path, &[("Host", host)], None);
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let cookie = signed_in
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let page = |p: &str| {
        let reply = http::send(addr, "GET", p, &[("Host", host), ("Cookie", &cookie)], None);
        assert_eq!(reply.status, 200, "{p}: {reply:?}");
        reply.body
    };
    // The record the demo built on the phone: Mia, her medication and goal, the school's IEP.
    assert!(page("/").contains("Mia Lopez"), "the home page names the patient");
    assert!(page("/s/medications").contains("Amoxicillin"));
    assert!(page("/s/documents").contains("IEP 2024-25, Lincoln Elementary"));
    assert!(page("/s/goals").contains("Produce /s/ in single words"));

    // Ctrl-C ends it cleanly.
    let stopped = proc.signal("INT").ok();
    assert!(stopped.stdout.contains("portal stopped"), "{}", stopped.stdout);
}
