//! `phr sync` as a family runs it with the real `phr` binary on loopback: which devices it
//! dials, and what it says when none of them answers.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::processes::Dev as Device;
use serde_json::Value;

/// A short dial timeout, so a device that does not answer is given up on quickly.
const DIAL_TIMEOUT: &str = "1";

/// `phr sync --json` with the short dial timeout; returns the run and the peers it reported.
fn sync(device: &Device) -> (common::Run, Vec<Value>) {
    let out = device.phr(["sync", "--json", "--dial-timeout", DIAL_TIMEOUT]);
    let reports = out.json().as_array().cloned().unwrap_or_default();
    (out, reports)
}

/// The error a failed `phr sync` ended with (each peer's own failure is printed before it).
#[track_caller]
fn failure(out: &common::Run) -> String {
    assert_eq!(out.code, Some(1), "`{}`:\n{}\n{}", out.line, out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let last = out.stderr.lines().rfind(|l| l.starts_with("error: "));
    last.unwrap_or_else(|| panic!("no error line:\n{}", out.stderr))
        .to_string()
}

/// Which of `devices` the reports are about (a report names a peer by the start of its key).
fn tried(reports: &[Value], devices: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = reports
        .iter()
        .map(|r| {
            let peer = r["peer"].as_str().unwrap_or_default();
            devices
                .iter()
                .find(|(_, key)| !peer.is_empty() && key.starts_with(peer))
                .map_or_else(|| format!("unknown peer {peer}"), |(name, _)| name.to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn sync_dials_only_live_members_at_once_and_says_to_start_phr_serve_when_nobody_answers() {
    let phone = Device::init("Mia Lopez", "Mia's phone");
    let tablet = phone.pair("tablet");
    let laptop = phone.pair("laptop");
    let (tablet_key, laptop_key) = (tablet.key(), laptop.key());

    // Straight after pairing, neither device runs `phr serve`: both are tried in the one run,
    // and the error says what to do.
    let (out, reports) = sync(&phone);
    let keys = [("laptop", laptop_key.as_str()), ("tablet", tablet_key.as_str())];
    assert_eq!(tried(&reports, &keys), ["laptop", "tablet"], "{reports:?}");
    assert!(reports.iter().all(|r| r["ok"] == false), "{reports:?}");
    let why = failure(&out);
    assert!(why.contains("no device answered (tried 2)"), "{why}");
    assert!(why.contains("must be running `phr serve`"), "{why}");
    assert!(why.contains("unchanged"), "{why}");

    // Grandma joins with a caregiver share; then the tablet is lost and grandma's access is
    // withdrawn. Neither is dialed again: only the laptop is tried.
    let grandma = phone.share("grandma's phone", &["--preset", "caregiver"]);
    let grandma_key = grandma.key();
    let peers = phone.json(["peers", "--json"]);
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "all three are known: {peers}");
    phone.ok(["devices", "remove", &tablet_key[..8]]);
    let grants = phone.json(["access", "list", "--json"]);
    let grant = grants
        .as_array()
        .and_then(|g| g.iter().find(|g| g["holder"] == grandma_key.as_str()))
        .and_then(|g| g["id"].as_str())
        .unwrap_or_else(|| panic!("grandma's grant is listed: {grants}"))
        .to_string();
    phone.ok(["access", "revoke", &grant[..8]]);

    let (out, reports) = sync(&phone);
    let keys = [
        ("grandma", grandma_key.as_str()),
        ("laptop", laptop_key.as_str()),
        ("tablet", tablet_key.as_str()),
    ];
    assert_eq!(tried(&reports, &keys), ["laptop"], "{reports:?}");
    let why = failure(&out);
    assert!(why.contains("no device answered (tried 1)"), "{why}");

    // Once the laptop serves, the same command syncs with it.
    let mut serving = laptop.spawn(["serve"]);
    serving.wait_line(|l| l.contains("phr sync --peer"));
    let (out, reports) = sync(&phone);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(tried(&reports, &keys), ["laptop"], "{reports:?}");
    assert_eq!(reports[0]["ok"], true, "{reports:?}");
}
