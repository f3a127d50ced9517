//! A family imports their EHR's export into phr and later hands phr's export to another clinic:
//! nothing the EHR sent may come back lost, changed into something else or invented. Every
//! Synthea sample of ../shared/fhir-samples goes through the real `phr import --fhir` and
//! `phr export --format fhir`, and the export is compared with the input resource by resource
//! (tests/common/fhir_roundtrip.rs says what is compared and how resources are matched).

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::Home;
use common::fhir_roundtrip::{Difference, counts_by_kind, fhir_samples, read_json, round_trip_differences};
use serde_json::{Value, json};

/// A deliberate difference: its kind, the input resource type it happens to, where (a path
/// prefix inside the resource), and why it is right.
struct Allowed {
    kind: &'static str,
    ty: &'static str,
    path: &'static str,
    #[allow(dead_code)] // read by people: every entry says why it is deliberate
    why: &'static str,
}

/// The differences a round trip makes on purpose. Besides these, a resource the import counts
/// as not imported (valid FHIR holding nothing the record keeps, such as a survey Observation,
/// `Observation (survey)` in its summary) is not in the export either; the test allows as many
/// lost resources of a type as the import said it did not import.
const ALLOWED: &[Allowed] = &[];

fn allowed(d: &Difference) -> bool {
    let ty = d.resource.split('/').next().unwrap_or_default();
    ALLOWED
        .iter()
        .any(|a| a.kind == d.kind && a.ty == ty && d.path.starts_with(a.path))
}

/// Import `path` into a new home, export it, and list what the round trip did not give back
/// (resources the import says it did not import taken out).
fn round_trip(path: &std::path::Path) -> Vec<Difference> {
    let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let home = Home::init(&name);
    let report = home.json(["import", "--fhir", path.to_str().unwrap_or_default(), "--json"]);
    let out = home.scratch("export.fhir.json");
    home.ok(["export", "--format", "fhir", "--out", out.to_str().unwrap_or_default()]);
    let input = read_json(path);
    let mut skipped = not_imported(&report);
    round_trip_differences(&input, &read_json(&out))
        .into_iter()
        .filter(|d| {
            let ty = d.resource.split('/').next().unwrap_or_default();
            match skipped.get_mut(ty) {
                Some(n) if *n > 0 && d.kind == "resource lost" => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        })
        .collect()
}

/// How many resources of each type the import's summary says it did not import.
fn not_imported(report: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (what, n) in report["unmapped"].as_object().into_iter().flatten() {
        let ty = what.split(' ').next().unwrap_or_default().to_string();
        *counts.entry(ty).or_default() += n.as_u64().unwrap_or_default() as usize;
    }
    counts
}

fn round_trips_lose_nothing(files: &[PathBuf]) {
    let mut all = Vec::new();
    for path in files {
        all.extend(round_trip(path).into_iter().filter(|d| !allowed(d)));
    }
    let counts: Vec<String> = counts_by_kind(&all).iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let shown: Vec<String> = all.iter().take(60).map(ToString::to_string).collect();
    assert!(
        all.is_empty(),
        "{} differences ({}); the first:\n{}",
        all.len(),
        counts.join(", "),
        shown.join("\n")
    );
}

// Every sample, in two halves so the harness runs them on two cores.
#[test]
#[ignore = "passes once export overlays phr's edits on the kept source"]
fn every_sample_record_comes_back_as_the_ehr_sent_it_first_half() {
    let half: Vec<PathBuf> = fhir_samples().into_iter().step_by(2).collect();
    round_trips_lose_nothing(&half);
}

#[test]
#[ignore = "passes once export overlays phr's edits on the kept source"]
fn every_sample_record_comes_back_as_the_ehr_sent_it_second_half() {
    let half: Vec<PathBuf> = fhir_samples().into_iter().skip(1).step_by(2).collect();
    round_trips_lose_nothing(&half);
}

#[test]
fn the_comparison_names_what_was_lost_changed_or_invented() {
    let input = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
        { "fullUrl": "urn:uuid:abc", "resource": {
            "resourceType": "Condition", "id": "abc",
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "12345" }] },
            "onsetDateTime": "2015" } },
        { "fullUrl": "urn:uuid:o1", "resource": {
            "resourceType": "Observation", "id": "o1", "status": "final",
            "valueQuantity": { "value": 1.50, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } } },
        { "fullUrl": "urn:uuid:p1", "resource": { "resourceType": "Procedure", "id": "p1", "status": "completed" } },
        { "fullUrl": "urn:uuid:x", "resource": { "resourceType": "Claim", "id": "x" } }
    ]});
    let source = |key: &str| json!([{ "system": "urn:phr:source", "value": format!("ehr|{key}") }]);
    let export = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
        { "resource": { "resourceType": "Condition", "identifier": source("Condition/abc"),
            "code": { "text": "Asthma" }, "onsetDateTime": "2015-01-01" } },
        { "resource": { "resourceType": "Observation", "identifier": source("Observation/o1"), "status": "final",
            "valueQuantity": { "value": 1.5, "unit": "mg" } } }
    ]});
    let found: Vec<String> = round_trip_differences(&input, &export).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "Condition/abc code.coding[0]: coding lost: SNOMED 12345",
            "Condition/abc onsetDateTime: date changed: 2015 became 2015-01-01",
            "Observation/o1 valueQuantity: quantity changed: 1.5 mg (UCUM mg) became 1.5 mg (- -)",
            "Procedure/p1: resource lost: not in the export",
        ],
        "the Claim is not a type phr maps, so it is not missed"
    );
}
