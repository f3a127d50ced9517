//! Sharing access with the real `phr` binary: `phr share` in the background hands out a QR
//! ticket, `phr join` uses it on a fresh home, the holder writes only what its grant allows,
//! and `phr access revoke` on the owner (while `phr serve` runs) cuts it off. Loopback only
//! (`--net local`).

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::time::{Duration, Instant};

use common::processes::{Proc, spawn_phr};
use common::{Home, Run};
use serde_json::Value;

/// `phr --net local ARGS` on a home.
fn local(home: &Home, args: &[&str]) -> Run {
    let mut all = vec!["--net", "local"];
    all.extend_from_slice(args);
    home.phr(all)
}

/// A loopback UDP port nobody is using right now.
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn grants(owner: &Home) -> Vec<Value> {
    owner.json(["access", "list", "--json"]).as_array().unwrap().clone()
}

#[test]
fn a_caregiver_joins_by_qr_writes_only_within_its_grant_and_is_cut_off_when_revoked() {
    let owner = Home::init("Mia Lopez");
    owner.add("insurance", &["--payer", "Blue Shield", "--member-id", "XYZ123"]);
    let goal = owner.add("goals", &["--goal", "Produce /s/ in words", "--unit", "% correct"]);

    // The owner shares; two people try the same QR code at once: one gets in, one is told why not.
    let png = owner.scratch("share.png");
    let png_arg = png.to_str().unwrap();
    let mut share = spawn_phr(&owner, &["share", "--preset", "caregiver", "--qr", png_arg]);
    share.wait_line(|l| l.starts_with("QR code written to"));
    assert!(png.exists());
    let (first, second) = (Home::new(), Home::new());
    let joins = [&first, &second].map(|h| spawn_phr(h, &["join", "--qr", png_arg, "--name", "grandma's phone"]));
    let [a, b] = joins.map(Proc::finish);
    let (g, winner, thief, loser) = match (a.code, b.code) {
        (Some(0), _) => (first, a, second, b),
        (_, Some(0)) => (second, b, first, a),
        _ => panic!("nobody joined:\n{}\n{}\n{}\n{}", a.stdout, a.stderr, b.stdout, b.stderr),
    };
    assert!(winner.stdout.contains("Joined record"), "{}", winner.stdout);
    let why = loser.refused();
    assert!(why.contains("already used"), "{why}");
    let shared = share.finish().ok();
    assert!(shared.stdout.contains("joined"), "{}", shared.stdout);
    assert!(shared.stdout.contains("Done"), "{}", shared.stdout);

    assert!(!thief.store().exists(), "nothing is created for a spent ticket");

    // On the caregiver's device: no insurance, no notes of its own, progress and a log welcome.
    assert_eq!(g.json(["list", "insurance", "--json"]), Value::Array(vec![]));
    let status = g.status();
    assert_eq!(status["holds_root_key"], false);
    assert_eq!(status["sections"]["goals"], 1);
    assert_eq!(status["sections"]["insurance"], 0);
    let why = g
        .phr([
            "add",
            "notes",
            "--discipline",
            "speech",
            "--clinician",
            "Grandma",
            "--date",
            "2024-06-01",
        ])
        .refused();
    assert!(why.contains("may write") && why.contains("caregiver_log"), "{why}");
    assert!(why.contains("goals (progress)"), "{why}");
    g.ok([
        "goal",
        "progress",
        &goal[..6],
        "--value",
        "40",
        "--note",
        "7 of 10 at dinner",
    ]);
    g.add(
        "caregiver_log",
        &["--date", "2024-06-01", "--text", "Practised /s/ words"],
    );

    // The owner sees the grant, active, for the caregiver's key.
    let rows = grants(&owner);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let grant = &rows[0];
    assert_eq!(grant["status"], "active", "{grant}");
    assert_eq!(grant["label"], "caregiver");
    assert_eq!(grant["holder"], status["device"]);
    assert_eq!(grant["rights"]["goals"], "progress");
    assert!(grant["rights"].get("insurance").is_none(), "{grant}");
    let id = grant["id"].as_str().unwrap().to_string();

    // The owner serves; the caregiver's progress reaches it.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut serve = spawn_phr(&owner, &["serve", "--bind", &bind]);
    let line = serve.wait_line(|l| l.contains("phr sync --peer "));
    let addr = line.rsplit(' ').next().unwrap().to_string();
    assert!(addr.ends_with(&bind), "{line}");
    local(&g, &["sync", "--peer", &addr]).ok();
    // While `phr serve` holds the store, commands on the owner's home run inside it.
    let on_owner = owner.entry("goals", &goal);
    let progress = on_owner["fields"]["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 1, "{on_owner}");
    assert_eq!(progress[0]["value"], 40.0);
    assert_eq!(
        owner
            .json(["list", "caregiver_log", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Revoked: the caregiver's next sync is refused, with the reason.
    let out = owner.ok(["access", "revoke", &id[..8]]);
    assert!(out.stdout.contains("Revoked"), "{}", out.stdout);
    assert_eq!(grants(&owner)[0]["status"], "revoked");
    g.add(
        "caregiver_log",
        &["--date", "2024-06-02", "--text", "After the revocation"],
    );
    let run = local(&g, &["sync", "--peer", &addr]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(
        owner
            .json(["list", "caregiver_log", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The audit log tells the story, export included.
    owner.ok(["export", "--format", "json", "--out", "exported"]);
    let kinds: Vec<String> = owner
        .json(["audit", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fields"]["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    for kind in ["grant", "sync", "revoke", "export"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    drop(serve);
}

#[test]
fn an_expired_share_ticket_is_refused_with_the_reason() {
    let owner = Home::init("Mia Lopez");
    let mut share = spawn_phr(&owner, &["share", "--preset", "school", "--ticket-expires", "1s"]);
    let ticket = share.wait_line(|l| l.starts_with("PHRPAIR1"));
    let issued = Instant::now();
    let why = share.finish().refused();
    assert!(why.contains("nobody used the ticket"), "{why}");
    // The ticket's expiry is in whole seconds: two of them are surely past it.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(issued.elapsed()));
    let school = Home::new();
    let why = local(&school, &["join", &ticket]).refused();
    assert!(why.contains("expired"), "{why}");
    assert!(!school.store().exists(), "nothing is created for an expired ticket");
    assert!(grants(&owner).is_empty(), "nothing was granted");
}

#[test]
fn access_or_a_ticket_for_longer_than_ten_years_is_refused_before_any_ticket_is_shown() {
    let owner = Home::init("Mia Lopez");
    // The first two overflowed the seconds; the third was signed as asked.
    for (args, flag) in [
        (
            &[
                "share",
                "--preset",
                "school",
                "--expires",
                "213503982334601d",
                "--ticket-expires",
                "1s",
            ][..],
            "--expires",
        ),
        (
            &[
                "share",
                "--preset",
                "school",
                "--expires",
                "9223372036854775807s",
                "--ticket-expires",
                "1s",
            ][..],
            "--expires",
        ),
        (
            &[
                "share",
                "--preset",
                "school",
                "--expires",
                "3651d",
                "--ticket-expires",
                "1s",
            ][..],
            "--expires",
        ),
        (
            &["share", "--preset", "school", "--ticket-expires", "213503982334601d"][..],
            "--ticket-expires",
        ),
        (&["devices", "add", "--expires", "213503982334601d"][..], "--expires"),
    ] {
        let run = local(&owner, args);
        let shown = run.stdout.clone();
        let why = run.refused();
        assert!(
            why.contains(&format!("{flag}: `")) && why.contains("at most 3650 days"),
            "phr {}: {why}",
            args.join(" ")
        );
        assert!(!shown.contains("PHRPAIR"), "a ticket was shown: {shown}");
    }
    assert!(grants(&owner).is_empty(), "nothing was granted");
}
