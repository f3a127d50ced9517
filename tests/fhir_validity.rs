//! What phr writes as FHIR is valid R4, judged by a real validator (fhir.resources' R4B models
//! and the checks of tests/fhir_validator/validate.py), not by phr's own reader.
//!
//! A family exports the record they imported from their EHR, to hand it to another clinic: every
//! Synthea sample bundle in ../shared/fhir-samples (Apache-2.0, see its LICENSE.md; 34 patients,
//! every resource type phr maps) goes through the real `phr import --fhir` and
//! `phr export --format fhir`, and the export must validate. The node's FHIR answers are
//! validated in tests/node.rs, a record with every section in tests/fhir.rs.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::path::PathBuf;

use common::Home;
use common::fhir_roundtrip::{fhir_samples as samples, read_json};
use common::fhir_validator::{assert_valid_fhir, fhir_problems, fhir_problems_each};
use serde_json::{Value, json};

/// An appointment as phr exported it before it gave instants a zone and the patient as a
/// participant.
fn zoneless_appointment() -> Value {
    json!({
        "resourceType": "Appointment", "id": "a1", "status": "booked",
        "description": "Speech evaluation",
        "start": "2015-09-14T15:29:24", "end": "2015-09-14T16:29:24"
    })
}

#[test]
fn the_validator_refuses_a_zoneless_instant_a_missing_participant_and_a_dangling_reference() {
    let problems = fhir_problems(&zoneless_appointment());
    for path in ["Appointment.start: ", "Appointment.end: ", "Appointment.participant: "] {
        assert!(problems.iter().any(|p| p.starts_with(path)), "{path}…: {problems:#?}");
    }
    assert!(problems.iter().any(|p| p.contains("Instant")), "{problems:#?}");

    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            { "fullUrl": "urn:uuid:p1", "resource": { "resourceType": "Patient", "id": "p1" } },
            { "fullUrl": "urn:uuid:c1", "resource": {
                "resourceType": "Condition", "id": "c1", "code": { "text": "Asthma" },
                "subject": { "reference": "urn:uuid:nobody" } } },
            { "fullUrl": "urn:uuid:c2", "resource": {
                "resourceType": "Condition", "id": "c2", "code": { "text": "Asthma" },
                "subject": { "reference": "Patient/p2" } } }
        ]
    });
    let problems = fhir_problems(&bundle);
    assert_eq!(
        problems,
        [
            "Bundle.entry[1].resource.subject.reference: `urn:uuid:nobody` is no entry's fullUrl",
            "Bundle.entry[2].resource.subject.reference: `Patient/p2` is no entry of the Bundle",
        ],
        "a resource inside a Bundle is checked too"
    );

    // Several at once (one run of the validator) are told apart by name.
    let named = vec![
        (
            "the fixed one".to_string(),
            json!({ "resourceType": "Patient", "id": "p1" }),
        ),
        ("the old one".to_string(), zoneless_appointment()),
    ];
    let problems = fhir_problems_each(named);
    assert!(
        !problems.is_empty() && problems.iter().all(|p| p.starts_with("the old one: Appointment.")),
        "{problems:#?}"
    );

    // And the same things, fixed, pass.
    let mut fixed = zoneless_appointment();
    fixed["start"] = json!("2015-09-14T15:29:24-04:00");
    fixed["end"] = json!("2015-09-14T16:29:24-04:00");
    fixed["participant"] = json!([{ "actor": { "reference": "Patient/p1" }, "status": "accepted" }]);
    assert_valid_fhir("the fixed appointment", &fixed);
}

#[test]
fn the_validator_finds_what_the_models_let_through() {
    let mut odd = zoneless_appointment();
    odd["start"] = json!("2015-09-14T15:29:24Z");
    odd["end"] = Value::Null;
    odd["status"] = json!("maybe");
    odd["participant"] = json!([{ "status": "accepted" }]);
    odd["comment"] = json!("");
    let problems = fhir_problems(&odd);
    for expected in [
        "Appointment.end: is null",
        "Appointment.comment: is an empty string",
        "Appointment.status: `maybe` is not a code of the required value set",
        "Appointment.participant[0]: has neither type nor actor (app-1)",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected}…: {problems:#?}"
        );
    }
    let phone = json!({ "resourceType": "Patient", "telecom": [{ "system": "phone", "use": "cell" }] });
    assert_eq!(
        fhir_problems(&phone),
        ["Patient.telecom[0].use: `cell` is not a code of the required value set: home work temp old mobile"]
    );
}

#[test]
fn the_samples_as_the_ehr_wrote_them_are_valid() {
    // The validator is not stricter than R4: the smallest and the largest sample pass as given.
    let mut files = samples();
    files.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    for path in [files.first(), files.last()].into_iter().flatten() {
        assert_valid_fhir(&path.display().to_string(), &read_json(path));
    }
}

/// Import each sample into a new home with the real `phr`, export it, and validate the exports
/// (in one run of the validator).
fn exports_are_valid(files: &[PathBuf]) {
    let mut exports = Vec::new();
    for path in files {
        let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let home = Home::init(&name);
        home.ok(["import", "--fhir", path.to_str().unwrap_or_default()]);
        let out = home.scratch("export.fhir.json");
        home.ok(["export", "--format", "fhir", "--out", out.to_str().unwrap_or_default()]);
        exports.push((format!("the export of {name}"), read_json(&out)));
    }
    let problems = fhir_problems_each(exports);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// Every sample, in two halves so the harness runs them on two cores.
#[test]
fn every_sample_record_exports_as_valid_fhir_first_half() {
    let half: Vec<PathBuf> = samples().into_iter().step_by(2).collect();
    exports_are_valid(&half);
}

#[test]
fn every_sample_record_exports_as_valid_fhir_second_half() {
    let half: Vec<PathBuf> = samples().into_iter().skip(1).step_by(2).collect();
    exports_are_valid(&half);
}

/// The appointment with this description among an export's resources.
fn appointment<'a>(bundle: &'a Value, description: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Appointment" && r["description"] == description)
        .unwrap_or_else(|| panic!("no appointment `{description}` in {bundle:#}"))
}

#[test]
fn an_appointment_typed_on_the_phone_goes_out_at_that_time_in_the_phones_zone() {
    let home = Home::init("Mia Lopez");
    let confirmed = [
        "--reason",
        "Speech evaluation",
        "--start",
        "2024-05-02 14:30",
        "--minutes",
        "60",
        "--status",
        "confirmed",
    ];
    home.add("appointments", &confirmed);
    // A request whose length nobody knows yet.
    home.add(
        "appointments",
        &["--reason", "Hearing screen", "--start", "2024-12-02 09:00"],
    );
    let out = home.scratch("export.fhir.json");
    let path = out.to_str().unwrap_or_default();
    home.ok_in_zone("America/New_York", ["export", "--format", "fhir", "--out", path]);
    let bundle = read_json(&out);
    assert_valid_fhir("the export", &bundle);
    let patient = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .map(|e| e["fullUrl"].clone())
        .expect("the Patient");

    let evaluation = appointment(&bundle, "Speech evaluation");
    assert_eq!(evaluation["start"], "2024-05-02T14:30:00-04:00", "{evaluation:#}");
    assert_eq!(evaluation["end"], "2024-05-02T15:30:00-04:00", "{evaluation:#}");
    assert_eq!(
        evaluation["participant"][0],
        json!({ "actor": { "reference": patient }, "status": "accepted" })
    );
    let screen = appointment(&bundle, "Hearing screen");
    assert_eq!(screen["start"], "2024-12-02T09:00:00-05:00", "winter time: {screen:#}");
    assert_eq!(screen["end"], screen["start"], "no length is invented: {screen:#}");
    assert!(screen.get("minutesDuration").is_none(), "{screen:#}");
    assert_eq!(screen["participant"][0]["status"], "needs-action", "{screen:#}");

    // Read back elsewhere, the times are the ones typed, and the request still has no length.
    let other = Home::init("Mia Lopez");
    other.ok(["import", "--fhir", path]);
    let listed = other.json(["list", "appointments", "--json"]);
    let fields = |reason: &str| {
        listed
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["fields"])
            .find(|f| f["reason"] == reason)
            .cloned()
            .unwrap_or_else(|| panic!("no `{reason}` in {listed:#}"))
    };
    assert_eq!(fields("Speech evaluation")["start"], "2024-05-02T14:30:00");
    assert_eq!(fields("Speech evaluation")["minutes"], 60.0);
    assert_eq!(fields("Hearing screen")["start"], "2024-12-02T09:00:00");
    assert!(fields("Hearing screen").get("minutes").is_none(), "{listed:#}");
}
