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
use common::fhir_validator::assert_valid_fhir;
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
fn every_sample_record_comes_back_as_the_ehr_sent_it_first_half() {
    let half: Vec<PathBuf> = fhir_samples().into_iter().step_by(2).collect();
    round_trips_lose_nothing(&half);
}

#[test]
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
    let found: Vec<String> = round_trip_differences(&input, &export)
        .iter()
        .map(ToString::to_string)
        .collect();
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

/// An EHR's bundle: a diagnosis given only to the year, a blood pressure with its two
/// components, and a procedure.
fn ehr_bundle(clinical_status: &str) -> Value {
    let subject = json!({ "reference": "urn:uuid:p1" });
    json!({ "resourceType": "Bundle", "type": "collection", "entry": [
        { "fullUrl": "urn:uuid:p1", "resource": {
            "resourceType": "Patient", "id": "p1", "name": [{ "family": "Lopez", "given": ["Mia"] }],
            "birthDate": "2017-04" } },
        { "fullUrl": "urn:uuid:c1", "resource": {
            "resourceType": "Condition", "id": "c1", "subject": subject,
            "clinicalStatus": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical_status }] },
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma" }],
                      "text": "Asthma" },
            "onsetDateTime": "2015" } },
        { "fullUrl": "urn:uuid:o1", "resource": {
            "resourceType": "Observation", "id": "o1", "status": "final", "subject": subject,
            "category": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
            "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9" }], "text": "Blood pressure" },
            "effectiveDateTime": "2024-03-02T10:15:00-05:00",
            "component": [
                { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
                  "valueQuantity": { "value": 118.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
                { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] },
                  "valueQuantity": { "value": 76, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } }
            ] } },
        { "fullUrl": "urn:uuid:x1", "resource": {
            "resourceType": "Procedure", "id": "x1", "status": "completed", "subject": subject,
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "117015009" }], "text": "Throat culture" },
            "performedDateTime": "2024-03" } }
    ]})
}

/// The exported resource whose kept source is `Type/id` of the EHR's bundle.
fn exported<'a>(bundle: &'a Value, key: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| {
            r["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["system"] == "urn:phr:source" && i["value"].as_str().is_some_and(|v| v.ends_with(key)))
        })
        .unwrap_or_else(|| panic!("no {key} in {bundle:#}"))
}

fn export(home: &Home) -> Value {
    let out = home.scratch("export.fhir.json");
    let path = out.to_str().unwrap_or_default();
    home.ok(["export", "--format", "fhir", "--out", path, "--force"]);
    let bundle = read_json(&out);
    assert_valid_fhir("the export", &bundle);
    bundle
}

#[test]
fn an_edit_in_phr_replaces_what_it_changed_and_a_newer_ehr_version_replaces_the_kept_source() {
    let home = Home::init("Mia Lopez");
    let ehr = home.scratch("ehr.json");
    std::fs::write(&ehr, ehr_bundle("active").to_string()).expect("writing the bundle");
    home.ok(["import", "--fhir", ehr.to_str().unwrap_or_default()]);

    // Unedited, everything comes back as the EHR sent it: the year-only onset, the vital
    // sign's components and category, the procedure as a Procedure.
    let bundle = export(&home);
    assert!(round_trip_differences(&ehr_bundle("active"), &bundle).is_empty());
    let asthma = exported(&bundle, "Condition/c1");
    assert_eq!(asthma["onsetDateTime"], "2015", "{asthma:#}");
    assert_eq!(exported(&bundle, "Procedure/x1")["resourceType"], "Procedure");
    assert_eq!(
        exported(&bundle, "Observation/o1")["category"][0]["coding"][0]["code"],
        "vital-signs"
    );

    // The family renames the diagnosis: `code` is phr's now (the SNOMED coding described the
    // old name), the rest is still the EHR's.
    let id = home.json(["list", "conditions", "--json"])[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let shown = home.ok(["show", "conditions", &id]).stdout;
    assert!(shown.contains("the FHIR resource as received"), "{shown}");
    home.ok(["edit", "conditions", &id, "--name", "Exercise-induced asthma"]);
    let bundle = export(&home);
    let asthma = exported(&bundle, "Condition/c1");
    assert_eq!(asthma["code"]["text"], "Exercise-induced asthma", "{asthma:#}");
    assert!(!asthma["code"].to_string().contains("snomed"), "{asthma:#}");
    assert_eq!(asthma["onsetDateTime"], "2015", "{asthma:#}");
    assert_eq!(
        asthma["clinicalStatus"],
        ehr_bundle("active")["entry"][1]["resource"]["clinicalStatus"]
    );

    // The EHR sends a newer version: the entry and its kept source follow it.
    std::fs::write(&ehr, ehr_bundle("resolved").to_string()).expect("writing the bundle");
    let report = home.json(["import", "--fhir", ehr.to_str().unwrap_or_default(), "--json"]);
    assert_eq!(report["sections"]["conditions"]["updated"], 1, "{report}");
    let bundle = export(&home);
    let asthma = exported(&bundle, "Condition/c1");
    assert_eq!(asthma["clinicalStatus"]["coding"][0]["code"], "resolved", "{asthma:#}");
}
