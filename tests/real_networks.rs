//! Across real networks: a phone on a mobile network and a laptop at home, each behind its own
//! NAT, and the clinic's node with the relay it runs for its patients, in network namespaces
//! the test makes (tests/common/netns.rs). Each scenario prints how its sessions ended up
//! connected, in iroh's terms: `direct` or `relay`. Skipped where namespaces cannot be made.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::impair::{Impairment, in_netns};
use common::netns::{CLINIC_IP, Lab, Side};
use common::processes::{Dev, Node, PATIENCE, session_note};
use serde_json::Value;

/// Poll `done` (every 100 ms, at most PATIENCE) until it holds; `what` names it on failure.
/// Live changes arrive without any line to wait for, so the test looks at the record.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The path each peer's session of a `phr sync --json` ended on.
fn paths(reports: &Value) -> Vec<String> {
    let list = reports.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|r| r["report"]["path"].as_str().unwrap_or("failed").to_string())
        .collect()
}

fn conditions(dev: &Dev) -> Vec<String> {
    dev.list("conditions")
        .iter()
        .filter_map(|c| c["fields"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A UDP socket bound in namespace `ns`.
fn udp_in(ns: &str, bind: &str) -> UdpSocket {
    let bind = bind.to_string();
    let s = in_netns(ns, move || UdpSocket::bind(bind)).expect("a UDP socket in the namespace");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    s
}

#[test]
fn the_impaired_link_delays_drops_and_cuts_what_crosses_the_nat() {
    let Some(lab) = Lab::new() else { return };
    let clinic = udp_in(&lab.clinic_ns(), &format!("{CLINIC_IP}:5000"));
    let phone = udp_in(&lab.device_ns(Side::Mobile), "0.0.0.0:0");
    let mut buf = [0u8; 64];
    let mut round_trip = |payload: &[u8]| -> Option<(Duration, std::net::SocketAddr)> {
        let started = Instant::now();
        phone.send_to(payload, (CLINIC_IP, 5000)).expect("sending");
        let (n, from) = clinic.recv_from(&mut buf).ok()?;
        clinic.send_to(&buf[..n], from).expect("echoing");
        phone.recv_from(&mut buf).ok()?;
        Some((started.elapsed(), from))
    };

    // Unimpaired, the phone's packets reach the clinic from its router's public address.
    let (_, seen_from) = round_trip(b"hello").expect("an unimpaired link delivers");
    assert_eq!(seen_from.ip().to_string(), "192.0.2.2", "the mobile router masquerades");

    // 40 ms each way: no round trip is shorter than 80 ms.
    lab.impair(Side::Mobile, Impairment::rtt_loss(Duration::from_millis(80), 0.0));
    let (rtt, _) = round_trip(b"slow").expect("a slow link still delivers");
    assert!(rtt >= Duration::from_millis(80), "round trip {rtt:?}");

    // Everything lost, then the link cut: nothing crosses; restored, it delivers again.
    lab.impair(Side::Mobile, Impairment::rtt_loss(Duration::ZERO, 1.0));
    assert!(round_trip(b"lost").is_none(), "a link losing everything delivered");
    lab.impair(Side::Mobile, Impairment::default());
    lab.set_down(Side::Mobile, true);
    assert!(round_trip(b"cut").is_none(), "a cut link delivered");
    lab.set_down(Side::Mobile, false);
    assert!(round_trip(b"back").is_some(), "a restored link does not deliver");
}

/// The cast: the clinic (node and relay) on the internet; Mia's phone on the mobile network,
/// connected to the clinic; her laptop at home, paired with the phone through the relay.
fn family_across_two_nats(lab: &Lab) -> (Node, Dev, Dev) {
    let node = Node::start_with_relay(&lab.clinic_ns(), CLINIC_IP);
    node.staff("Jane Roe", "SLP");
    let phone = Dev::fresh("phone", Some(&lab.device_ns(Side::Mobile)));
    phone.ok(["init", "--name", "Mia Lopez", "--device-name", "phone"]);
    phone.connect(&node);
    let relay = node.relay.clone().expect("the node runs a relay");
    let kept = phone.ok(["config", "relay"]).stdout;
    assert!(kept.contains(&relay), "the invitation gave the phone its relay: {kept}");
    let laptop = phone.pair_onto(Dev::fresh("laptop", Some(&lab.device_ns(Side::Home))));
    let kept = laptop.ok(["config", "relay"]).stdout;
    assert!(
        kept.contains(&relay),
        "the pairing ticket gave the laptop the relay: {kept}"
    );
    (node, phone, laptop)
}

#[test]
fn phone_and_laptop_behind_two_nats_sync_through_the_clinics_relay() {
    let Some(lab) = Lab::new() else { return };
    let (_node, phone, laptop) = family_across_two_nats(&lab);
    laptop.ok(["add", "conditions", "--name", "Asthma"]);
    let mut serving = phone.spawn(["serve"]);
    serving.wait_line(|l| l.starts_with("Serving record"));

    let reports = laptop.json(["sync", "--json"]);
    println!("laptop -> phone and clinic: paths {:?}", paths(&reports));
    let all_ok = reports.as_array().is_some_and(|r| r.iter().all(|r| r["ok"] == true));
    assert!(all_ok, "{reports:#}");
    assert_eq!(conditions(&phone), ["Asthma"], "the phone has the laptop's entry");
}

#[test]
fn live_edits_cross_an_80_ms_link_losing_2_percent() {
    let Some(lab) = Lab::new() else { return };
    let (_node, phone, laptop) = family_across_two_nats(&lab);
    let rough = Impairment {
        jitter: Duration::from_millis(5),
        ..Impairment::rtt_loss(Duration::from_millis(80), 0.02)
    };
    lab.impair(Side::Mobile, rough);
    lab.impair(Side::Home, rough);
    let mut phone_serving = phone.spawn(["serve"]);
    let mut laptop_serving = laptop.spawn(["serve"]);
    let live = laptop_serving.wait_line(|l| l.contains("connected, live"));
    phone_serving.wait_line(|l| l.contains("connected, live"));
    println!("laptop live session: {live}");

    for name in ["Asthma", "Eczema", "Hay fever"] {
        laptop.ok(["add", "conditions", "--name", name]);
        wait_until(&format!("{name} reaching the phone"), || {
            conditions(&phone).iter().any(|c| c == name)
        });
    }
    phone.ok(["add", "conditions", "--name", "Migraine"]);
    wait_until("the phone's entry reaching the laptop", || {
        conditions(&laptop).len() == 4
    });
    let mut on_phone = conditions(&phone);
    let mut on_laptop = conditions(&laptop);
    on_phone.sort();
    on_laptop.sort();
    assert_eq!(on_phone, on_laptop, "both hold the same record");
}

#[test]
fn the_clinic_delivers_a_note_to_a_phone_only_its_relay_reaches() {
    let Some(lab) = Lab::new() else { return };
    // The phone's network forwards no UDP: QUIC reaches nobody directly from there.
    lab.block_udp(Side::Mobile);
    let node = Node::start_with_relay(&lab.clinic_ns(), CLINIC_IP);
    node.staff("Jane Roe", "SLP");
    let phone = Dev::fresh("phone", Some(&lab.device_ns(Side::Mobile)));
    phone.ok(["init", "--name", "Mia Lopez", "--device-name", "phone"]);
    phone.connect(&node);
    let mut serving = phone.spawn(["serve"]);
    let live = serving.wait_line(|l| l.contains("connected, live"));
    println!("phone's live session with the clinic: {live}");
    assert!(live.contains("(relay)"), "only the relay reaches the phone: {live}");

    let note = session_note("visit-0302", "Plan: Practise /s/ blends daily");
    let file = phone.home.scratch("note.json");
    std::fs::write(&file, note.to_string()).expect("writing the FHIR file");
    let record = phone.record();
    let file = file.to_string_lossy().into_owned();
    node.cli_ok([
        "push",
        "note",
        "--patient",
        &record,
        "--file",
        &file,
        "--clinician",
        "Jane Roe",
    ]);
    wait_until("the note reaching the phone", || phone.notes().len() == 1);
    assert_eq!(phone.notes()[0]["fields"]["plan"], "Practise /s/ blends daily");
}
