//! Two and three devices of one patient syncing over real iroh endpoints on 127.0.0.1.

use std::time::Duration;

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::devices::{Phone, fields, first_device, pair_new_device};
use phr::sync::SessionOptions;
use phr::{KeyPair, Section};
use serde_json::{Map, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_laptop_receives_the_record_and_offline_edits_converge() {
    let phone = first_device().await;
    phone.add(Section::Medications, &[("name", "Amoxicillin"), ("dose", "250 mg")]);
    let laptop = pair_new_device(&phone, "laptop").await;
    assert_eq!(laptop.count(Section::Medications), 1);
    assert_eq!(laptop.heads(Section::Profile), phone.heads(Section::Profile));

    // Both edit while apart: different sections, and the same field of the same entry.
    let med = phone.replica().lock().record().list(Section::Medications).unwrap()[0]
        .id
        .clone();
    phone.add(
        Section::Labs,
        &[("test", "Ferritin"), ("value", "30"), ("date", "2024-01-02")],
    );
    laptop.add(Section::CaregiverLog, &[("date", "2024-01-02"), ("text", "Slept well")]);
    let dose = |v: &str| fields(Section::Medications, &[("dose", v)]);
    let (d1, d2) = (dose("500 mg"), dose("125 mg"));
    phone
        .replica()
        .write(|r| r.edit(Section::Medications, &med, d1))
        .unwrap();
    laptop
        .replica()
        .write(|r| r.edit(Section::Medications, &med, d2))
        .unwrap();

    let report = laptop
        .service
        .sync_once(phone.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rejected(), 0);
    for s in Section::ALL {
        assert_eq!(laptop.heads(s), phone.heads(s), "{s} converged");
    }
    let conflicts = phone.replica().lock().record().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].field, "dose");
    let a = phone.replica().lock().record().list(Section::Medications).unwrap();
    let b = laptop.replica().lock().record().list(Section::Medications).unwrap();
    assert_eq!(a, b, "identical content");
}

async fn converged(a: &Phone, b: &Phone) -> bool {
    Section::ALL.iter().all(|s| a.heads(*s) == b.heads(*s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_in_a_line_converge_through_the_middle_one() {
    let a = first_device().await;
    let b = pair_new_device(&a, "tablet").await;
    // Only a holds the root key, so a pairs c; from then on c only talks to b, and a only to b.
    let c = pair_new_device(&a, "laptop").await;
    a.add(
        Section::Notes,
        &[
            ("discipline", "speech"),
            ("clinician", "J. Ames"),
            ("date", "2024-05-02"),
            ("plan", "Continue /s/ drills"),
        ],
    );
    c.add(
        Section::CaregiverLog,
        &[("date", "2024-05-02"), ("text", "Did homework")],
    );
    b.add(
        Section::Appointments,
        &[("reason", "Re-evaluation"), ("start", "2024-06-01 10:00")],
    );

    b.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    c.service
        .sync_once(b.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    b.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();

    assert!(converged(&a, &b).await);
    assert!(converged(&b, &c).await);
    assert_eq!(a.count(Section::CaregiverLog), 1, "c's log reached a through b");
    assert_eq!(c.count(Section::Notes), 1, "a's note reached c through b");
    assert_eq!(c.count(Section::Appointments), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_connected_an_edit_reaches_the_other_device_without_a_command() {
    let phone = first_device().await;
    let laptop = pair_new_device(&phone, "laptop").await;
    let live = laptop.service.keep_live(phone.service.addr());
    let mut feed = laptop.replica().subscribe();
    // Give the live session a moment to come up; then edits flow both ways on their own.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = phone.add(
        Section::Messages,
        &[("thread", "Schedule"), ("body", "Can we move Tuesday?")],
    );
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match feed.recv().await {
                Ok(e) if e.from.is_some() && e.batch().is_some_and(|b| b.section == Section::Messages) => return,
                Ok(_) => {}
                Err(e) => panic!("feed closed: {e}"),
            }
        }
    })
    .await;
    assert!(arrived.is_ok(), "the phone's message reached the laptop");
    assert!(
        laptop
            .replica()
            .lock()
            .record()
            .read_entry(Section::Messages, &id)
            .unwrap()
            .is_some()
    );

    // And the other way round, on the same connection.
    let mut phone_feed = phone.replica().subscribe();
    laptop.add(
        Section::Messages,
        &[("thread", "Schedule"), ("body", "Tuesday 4pm works")],
    );
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(e) = phone_feed.recv().await
                && e.from.is_some()
            {
                return;
            }
        }
    })
    .await;
    assert!(back.is_ok(), "the laptop's reply reached the phone");
    assert_eq!(phone.count(Section::Messages), 2);
    live.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_is_reported_not_waited_on() {
    let phone = first_device().await;
    let ghost = phr::sync::net::parse_addr(&format!("{}@127.0.0.1:9", KeyPair::generate().public())).unwrap();
    let started = std::time::Instant::now();
    let err = phone
        .service
        .sync_once(ghost, SessionOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not reach"), "{err}");
    // Bounded by the dial timeout, not QUIC's default 30 s idle timeout.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_after_a_removal_leave_every_replica_even_ones_that_took_them_first() {
    // a removes b; b, not yet told, hands a new change to c; c builds on it. When c hears of
    // the removal (from a), it drops b's late change and what depends on it, and a and c end
    // up with the same history: the rule decides alike wherever the removal arrives.
    let a = first_device().await;
    let b = pair_new_device(&a, "old tablet").await;
    let c = pair_new_device(&a, "laptop").await;
    b.service
        .sync_once(c.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    let b_key = b.replica().device_id();
    a.replica().lock().remove_device(&b_key).unwrap();

    b.add(
        Section::CaregiverLog,
        &[("date", "2024-06-01"), ("text", "written after removal")],
    );
    let report = c
        .service
        .sync_once(b.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.applied(), 1, "c has not heard of the removal yet");
    let late = c.replica().lock().record().list(Section::CaregiverLog).unwrap()[0]
        .id
        .clone();
    let mut edit = Map::new();
    edit.insert("text".into(), Value::String("c edits b's late entry".into()));
    c.replica()
        .write(|r| r.edit(Section::CaregiverLog, &late, edit))
        .unwrap();
    c.add(
        Section::Labs,
        &[("test", "Iron"), ("value", "60"), ("date", "2024-06-02")],
    );

    c.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(
        c.count(Section::CaregiverLog),
        0,
        "b's late entry and c's edit of it are gone from c"
    );
    assert_eq!(a.count(Section::CaregiverLog), 0, "and never reached a");
    c.service
        .sync_once(a.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert!(converged(&a, &c).await, "a and c hold the same history");
    assert_eq!(a.count(Section::Labs), 1, "c's unrelated work still arrives");
}
