//! FHIR R4 Bundles in and out: `phr import --fhir` and `phr export --format fhir`.
//!
//! The bulk checks over the Synthea sample bundles (../shared/fhir-samples, Apache-2.0; see its
//! LICENSE.md) use the engine directly on in-memory records so they stay fast; the command-level
//! checks drive the real `phr` binary on the smallest sample and on small hand-written bundles.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Home;
use common::fhir_validator::assert_valid_fhir;
use phr::access::AccessSet;
use phr::capability::{Grant, Right};
use phr::crypto::KdfParams;
use phr::fhir::{self, ImportReport};
use phr::record::EntryView;
use phr::{Device, InitOptions, KeyPair, Record, Section};
use serde_json::{Value, json};

/// The sample bundles, smallest first; `None` (with a note) when the directory is absent.
fn samples() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-samples");
    let Ok(list) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no FHIR samples at {}", dir.display());
        return None;
    };
    let mut files: Vec<(u64, PathBuf)> = list
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), p))
        .collect();
    if files.is_empty() {
        eprintln!("skipped: no FHIR samples in {}", dir.display());
        return None;
    }
    files.sort();
    Some(files.into_iter().map(|(_, p)| p).collect())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// An empty record in memory, written by the patient's root key.
fn empty_record() -> Record {
    let root = KeyPair::generate();
    Record::new(root.public(), root)
}

/// What the import must map, counted from the bundle's JSON independently of the engine: every
/// resource of a mapped type, except observations of social history and surveys.
fn mappable(bundle: &Value) -> BTreeMap<String, usize> {
    const MAPPED: &[&str] = &[
        "Patient",
        "Condition",
        "Procedure",
        "AllergyIntolerance",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Immunization",
        "Encounter",
        "Appointment",
        "DocumentReference",
        "Goal",
        "CarePlan",
        "Coverage",
        "CareTeam",
    ];
    let mut out = BTreeMap::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let res = &entry["resource"];
        let ty = res["resourceType"].as_str().unwrap_or_default();
        if !MAPPED.contains(&ty) {
            continue;
        }
        let categories: Vec<&str> = res["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["coding"].as_array().into_iter().flatten())
            .filter_map(|c| c["code"].as_str())
            .collect();
        if ty == "Observation" && categories.iter().any(|c| *c == "social-history" || *c == "survey") {
            continue;
        }
        *out.entry(ty.to_string()).or_insert(0) += 1;
    }
    out
}

/// Every entry of the patient-facing sections, by section and id, without the bookkeeping that
/// differs between records (author, times), and with whether it keeps its FHIR source rather
/// than the source itself: a record imported from phr's export keeps the resource as that
/// export wrote it (its references pointing inside that export), not as the EHR did.
fn contents(record: &Record) -> BTreeMap<(Section, String), serde_json::Map<String, Value>> {
    let mut out = BTreeMap::new();
    for section in Section::ALL {
        for e in record.list(section).expect("listing a section") {
            let mut fields = e.fields;
            if let Some(kept) = fields.get_mut(phr::entry::FHIR_KEY) {
                *kept = Value::Bool(true);
            }
            out.insert((section, e.id.clone()), fields);
        }
    }
    out
}

fn heads(record: &mut Record) -> Vec<String> {
    Section::SYNCED
        .iter()
        .flat_map(|s| record.heads(*s))
        .map(|h| h.to_string())
        .collect()
}

/// Every sample: each mappable resource becomes one entry; importing it again writes nothing;
/// its export, imported into the same record, changes nothing, and into a fresh record gives
/// the same entries.
fn check_samples(files: &[PathBuf]) {
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let bundle: Value = serde_json::from_str(&read(path)).expect("sample is JSON");
        let mapped = fhir::map_bundle(&bundle).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(mapped.mapped, mappable(&bundle), "{name}: mapped entries per type");
        assert!(
            mapped.unmapped.contains_key("Claim"),
            "{name}: Claims are reported, not dropped"
        );

        let mut record = empty_record();
        let first = mapped
            .import(&mut record, "test")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(first.written, "{name}");
        let created: usize = first.sections.values().map(|c| c.created).sum();
        assert_eq!(
            created,
            mapped.mapped.values().sum::<usize>(),
            "{name}: every mapped resource is an entry"
        );

        // The same bundle again: nothing at all is written.
        let before = heads(&mut record);
        let again = mapped
            .import(&mut record, "test")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.changes(), 0, "{name}: {:?}", again.sections);
        assert!(!again.written, "{name}");
        assert_eq!(heads(&mut record), before, "{name}: heads moved on a repeated import");

        let exported =
            fhir::export_bundle(&record, &AccessSet::default(), &Section::ALL, fhir::Zone::UTC).expect("export");
        let back = fhir::map_bundle(&exported.bundle).unwrap_or_else(|e| panic!("{name}: export: {e}"));
        assert!(back.unmapped.is_empty(), "{name}: {:?}", back.unmapped);
        let same = back.import(&mut record, "test").expect("re-import of the export");
        assert_eq!(same.changes(), 0, "{name}: export re-imported: {:?}", same.sections);
        assert_eq!(
            heads(&mut record),
            before,
            "{name}: heads moved on importing the export"
        );
        let mut fresh = empty_record();
        back.import(&mut fresh, "test")
            .expect("import of the export into a fresh record");
        assert_eq!(contents(&fresh), contents(&record), "{name}: round trip");
    }
}

// Two halves, so the harness runs them on two cores.
#[test]
fn samples_import_round_trip_and_import_again_as_no_change_first_half() {
    let Some(files) = samples() else { return };
    let half: Vec<PathBuf> = files.iter().step_by(2).cloned().collect();
    check_samples(&half);
}

#[test]
fn samples_import_round_trip_and_import_again_as_no_change_second_half() {
    let Some(files) = samples() else { return };
    let half: Vec<PathBuf> = files.iter().skip(1).step_by(2).cloned().collect();
    check_samples(&half);
}

// ---------------------------------------------------------------------------------------------
// Small hand-written bundles
// ---------------------------------------------------------------------------------------------

/// A small EHR export: the patient, a clinician, a condition, a prescription, a lab result, a
/// survey answer (not imported), two claims and an organization (not imported).
fn small_bundle() -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "meta": { "source": "https://ehr.example.org/fhir" },
        "entry": [
            { "fullUrl": "urn:uuid:p1", "resource": {
                "resourceType": "Patient", "id": "p1",
                "name": [{ "use": "official", "given": ["Mia"], "family": "Lopez" }],
                "birthDate": "2017-04-12", "gender": "female",
                "communication": [{ "language": { "text": "Spanish" }, "preferred": true }],
                "contact": [{
                    "relationship": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD" }] }, { "text": "mother" }],
                    "name": { "given": ["Ana"], "family": "Lopez" },
                    "telecom": [{ "system": "phone", "value": "555-0100" }]
                }]
            } },
            { "fullUrl": "urn:uuid:pr1", "resource": {
                "resourceType": "Practitioner", "id": "pr1",
                "name": [{ "prefix": ["Dr."], "given": ["Jamie"], "family": "Ames" }]
            } },
            { "fullUrl": "urn:uuid:c1", "resource": {
                "resourceType": "Condition", "id": "c1",
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                "code": { "text": "Childhood apraxia of speech", "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R48.2" }] },
                "subject": { "reference": "urn:uuid:p1" },
                "onsetDateTime": "2019-03-01"
            } },
            { "fullUrl": "urn:uuid:m1", "resource": {
                "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
                "medicationCodeableConcept": { "text": "Amoxicillin 250 MG" },
                "subject": { "reference": "urn:uuid:p1" },
                "authoredOn": "2024-03-01",
                "requester": { "reference": "urn:uuid:pr1" },
                "reasonReference": [{ "reference": "urn:uuid:c1" }],
                "dosageInstruction": [{
                    "timing": { "repeat": { "frequency": 2, "period": 1, "periodUnit": "d" } },
                    "doseAndRate": [{ "doseQuantity": { "value": 250, "unit": "mg" } }]
                }]
            } },
            { "fullUrl": "urn:uuid:o1", "resource": {
                "resourceType": "Observation", "id": "o1", "status": "final",
                "category": [{ "coding": [{ "code": "laboratory" }] }],
                "code": { "text": "Ferritin", "coding": [{ "system": "http://loinc.org", "code": "2276-4" }] },
                "subject": { "reference": "urn:uuid:p1" },
                "effectiveDateTime": "2024-03-01T09:00:00Z",
                "valueQuantity": { "value": 30, "unit": "ng/mL" },
                "referenceRange": [{ "low": { "value": 15 }, "high": { "value": 150 } }]
            } },
            { "fullUrl": "urn:uuid:o2", "resource": {
                "resourceType": "Observation", "id": "o2", "status": "final",
                "category": [{ "coding": [{ "code": "survey" }] }],
                "code": { "text": "Tobacco smoking status" },
                "subject": { "reference": "urn:uuid:p1" },
                "effectiveDateTime": "2024-03-01",
                "valueCodeableConcept": { "text": "Never smoker" }
            } },
            { "fullUrl": "urn:uuid:cl1", "resource": { "resourceType": "Claim", "id": "cl1" } },
            { "fullUrl": "urn:uuid:cl2", "resource": { "resourceType": "Claim", "id": "cl2" } },
            { "fullUrl": "urn:uuid:org1", "resource": { "resourceType": "Organization", "id": "org1", "name": "Sunrise Pediatrics" } }
        ]
    })
}

/// `small_bundle` with one more resource at the end.
fn with_entry(mut bundle: Value, resource: Value) -> Value {
    if let Some(list) = bundle["entry"].as_array_mut() {
        list.push(json!({ "resource": resource }));
    }
    bundle
}

fn write_json(home: &Home, name: &str, v: &Value) -> PathBuf {
    let path = home.scratch(name);
    std::fs::write(&path, serde_json::to_vec_pretty(v).expect("JSON")).expect("writing a bundle");
    path
}

/// Everything a refused import must leave alone: every section's entries and the history.
fn snapshot(home: &Home) -> (Value, usize) {
    let shown = home.json(["show", "--json"]);
    let history = home.json(["history", "--json"]);
    (shown, history.as_array().map_or(0, Vec::len))
}

fn import_events(home: &Home) -> usize {
    home.json(["audit", "--json"])
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["fields"]["kind"] == "import" || e["kind"] == "import")
        .count()
}

#[test]
fn a_malformed_bundle_changes_nothing_and_names_the_first_error() {
    let home = Home::init("Mia Lopez");
    let before = snapshot(&home);

    let bad_json = home.scratch("bad.json");
    std::fs::write(
        &bad_json,
        "{ \"resourceType\": \"Bundle\", \"type\": \"collection\", \"entry\": [ ",
    )
    .expect("write");
    let err = home
        .phr(["import", "--fhir", bad_json.to_str().unwrap_or_default()])
        .refused();
    assert!(err.contains("`Bundle`") && err.contains("not valid JSON"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");

    let not_a_bundle = write_json(&home, "patient.json", &json!({ "resourceType": "Patient", "id": "p1" }));
    let err = home
        .phr(["import", "--fhir", not_a_bundle.to_str().unwrap_or_default()])
        .refused();
    assert!(
        err.contains("`resourceType`") && err.contains("is `Patient`; expected Bundle"),
        "{err}"
    );

    let mut odd = small_bundle();
    odd["entry"][2]["resource"]["resourceType"] = json!(42);
    let odd = write_json(&home, "odd.json", &odd);
    let err = home
        .phr(["import", "--fhir", odd.to_str().unwrap_or_default()])
        .refused();
    assert!(err.contains("`Bundle.entry[2].resource.resourceType`"), "{err}");

    // Nine good resources, then an observation whose period starts on the 13th month: the
    // first nine must not be imported either.
    let bad_date = with_entry(
        small_bundle(),
        json!({
            "resourceType": "Observation", "id": "o3", "status": "final",
            "code": { "text": "Hemoglobin" },
            "subject": { "reference": "urn:uuid:p1" },
            "effectivePeriod": { "start": "2024-13-01T08:00:00Z" },
            "valueQuantity": { "value": 12.5, "unit": "g/dL" }
        }),
    );
    let bad_date = write_json(&home, "bad-date.json", &bad_date);
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["import", "--fhir", bad_date.to_str().unwrap_or_default()];
        args.extend_from_slice(extra);
        let err = home.phr(args).refused();
        assert!(
            err.contains("`Bundle.entry[9].resource.effectivePeriod.start`"),
            "{err}"
        );
        assert!(err.contains("2024-13-01"), "{err}");
    }

    assert_eq!(snapshot(&home), before, "a refused import changed the record");
    assert_eq!(import_events(&home), 0);
}

#[test]
fn three_imported_heights_are_listed_as_vital_signs_with_the_day_each_was_measured_and_readable_numbers() {
    let home = Home::init("Mia Lopez");
    let height = |id: &str, day: &str, cm: f64| {
        json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "category": [{ "coding": [{ "code": "vital-signs" }] }],
            "code": { "text": "Body Height", "coding": [{ "system": "http://loinc.org", "code": "8302-2" }] },
            "effectiveDateTime": day,
            "valueQuantity": { "value": cm, "unit": "cm" }
        })
    };
    let bundle = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
        { "resource": height("h1", "2023-01-10", 110.35671238940213) },
        { "resource": height("h2", "2023-07-10", 112.5) },
        { "resource": height("h3", "2024-01-10", 115.71111111111112) },
    ] });
    let file = write_json(&home, "heights.json", &bundle);
    home.ok(["import", "--fhir", file.to_str().unwrap()]);

    let shown = home.ok(["list", "vitals"]).stdout;
    let heights: Vec<&str> = shown.lines().filter(|l| l.contains("Body Height")).collect();
    assert_eq!(heights.len(), 3, "{shown}");
    for (day, value) in [
        ("2023-01-10", "110.357"),
        ("2023-07-10", "112.5"),
        ("2024-01-10", "115.711"),
    ] {
        assert!(
            heights
                .iter()
                .any(|l| l.contains(day) && l.contains(&format!("Body Height · {value} · cm"))),
            "no height of {value} cm measured on {day}:\n{shown}"
        );
    }
    assert!(!shown.contains("110.3567123"), "{shown}");
    // What is stored keeps every digit.
    assert!(
        home.json(["list", "labs", "--json"])
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let stored = home.json(["list", "vitals", "--json"]);
    let first = stored
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fields"]["date"] == "2023-01-10");
    let value = first.and_then(|e| e["fields"]["value"].as_str()).unwrap_or_default();
    assert!(value.starts_with("110.3567123894021"), "{stored}");
}

#[test]
fn an_import_reports_per_section_and_unmapped_types_and_a_second_import_changes_nothing() {
    let home = Home::init("Mia Lopez");
    let bundle = write_json(&home, "ehr.json", &small_bundle());
    let file = bundle.to_str().unwrap_or_default();

    // A dry run says what would happen and writes nothing.
    let before = snapshot(&home);
    let dry = home.json(["import", "--fhir", file, "--dry-run", "--json"]);
    assert_eq!(dry["written"], false, "{dry}");
    assert_eq!(dry["sections"]["conditions"]["created"], 1, "{dry}");
    assert_eq!(snapshot(&home), before, "a dry run wrote something");

    let first = home.json(["import", "--fhir", file, "--json"]);
    assert_eq!(first["written"], true, "{first}");
    assert_eq!(first["bundle_type"], "collection");
    assert_eq!(first["resources"], 9);
    // The profile `phr init` made is merged into, not refused.
    assert_eq!(first["sections"]["profile"]["updated"], 1, "{first}");
    for section in ["conditions", "medications", "labs"] {
        assert_eq!(first["sections"][section]["created"], 1, "{section}: {first}");
    }
    assert_eq!(
        first["unmapped"],
        json!({ "Claim": 2, "Observation (survey)": 1, "Organization": 1, "Practitioner": 1 })
    );
    assert_eq!(
        first["mapped"],
        json!({ "Condition": 1, "MedicationRequest": 1, "Observation": 1, "Patient": 1 })
    );
    // The same per resource type, with why the rest was not imported.
    let types = &first["types"];
    assert_eq!(
        types["Claim"]["not_imported"],
        json!({ "phr has no place for it": 2 }),
        "{first}"
    );
    assert_eq!(types["Observation"]["created"], 1, "{first}");
    assert_eq!(types["Observation"]["not_imported"], json!({ "survey": 1 }), "{first}");
    assert_eq!(types["Patient"]["updated"], 1, "{first}");
    assert_eq!(
        types["MedicationRequest"]["sections"],
        json!(["medications"]),
        "{first}"
    );
    assert_eq!(
        types["MedicationRequest"]["source_only"], 1,
        "phr keeps a request as a medication and gives the request back as received: {first}"
    );

    let profile = home.entry("profile", "patient");
    assert_eq!(profile["fields"]["dob"], "2017-04-12");
    assert_eq!(profile["fields"]["language"], "Spanish");
    assert_eq!(profile["fields"]["guardians"][0]["name"], "Ana Lopez");
    assert_eq!(profile["fields"]["source"], "https://ehr.example.org/fhir|Patient/p1");
    let meds = home.json(["list", "medications", "--json"]);
    let med = &meds[0]["fields"];
    assert_eq!(med["name"], "Amoxicillin 250 MG");
    assert_eq!(med["dose"], "250 mg");
    assert_eq!(med["schedule"], "2x per day");
    assert_eq!(
        med["prescriber"], "Jamie Ames",
        "the requester, read through its reference"
    );
    assert_eq!(med["reason"], "Childhood apraxia of speech");
    assert_eq!(med["source"], "https://ehr.example.org/fhir|MedicationRequest/m1");
    assert_eq!(
        meds[0]["id"],
        fhir::entry_id("MedicationRequest", "m1"),
        "the entry id is derived from the source"
    );

    let after_first = snapshot(&home);
    let second = home.ok(["import", "--fhir", file]).stdout;
    assert!(second.contains("Nothing changed"), "{second}");
    let condition = second.lines().find(|l| l.trim_start().starts_with("Condition"));
    let cells: Vec<&str> = condition.unwrap_or_default().split_whitespace().collect();
    assert_eq!(cells, ["Condition", "conditions", "0", "0", "1", "0"], "{second}");
    assert!(
        second.contains("Claim") && second.contains("Observation (survey)"),
        "{second}"
    );
    assert!(
        second
            .lines()
            .any(|l| l.trim_start().starts_with("Claim") && l.trim_end().ends_with(" 2")),
        "{second}"
    );
    assert_eq!(snapshot(&home), after_first, "a second import wrote something");
    assert_eq!(import_events(&home), 1, "the import is in the audit log, once");
}

#[test]
fn export_then_import_into_a_fresh_home_gives_the_same_entries() {
    let home = Home::init("Mia Lopez");
    home.add(
        "goals",
        &[
            "--goal",
            "Produce /s/ in words",
            "--discipline",
            "speech",
            "--baseline",
            "20",
            "--target",
            "80",
            "--unit",
            "% correct",
            "--milestone",
            "10 words",
            "--milestone",
            "text=sentences; due=2025-06-01",
        ],
    );
    home.add(
        "notes",
        &[
            "--discipline",
            "speech",
            "--clinician",
            "J. Ames",
            "--date",
            "2024-02-01",
            "--minutes",
            "45",
            "--subjective",
            "Tired today",
            "--plan",
            "Practice daily",
        ],
    );
    home.add(
        "documents",
        &["--title", "IEP 2024", "--kind", "iep", "--date", "2024-09-01"],
    );
    home.add(
        "insurance",
        &[
            "--payer",
            "Blue Shield",
            "--member-id",
            "XYZ123",
            "--group",
            "G-77",
            "--plan",
            "PPO",
        ],
    );
    home.add(
        "caregiver_log",
        &[
            "--date",
            "2024-03-03",
            "--text",
            "Slept 10 hours",
            "--category",
            "sleep",
            "--by",
            "Mom",
            "--minutes",
            "600",
        ],
    );
    home.add(
        "allergies",
        &[
            "--substance",
            "Penicillin",
            "--reaction",
            "Hives",
            "--severity",
            "moderate",
        ],
    );
    home.add(
        "appointments",
        &[
            "--reason",
            "Speech evaluation",
            "--start",
            "2024-05-02 14:30",
            "--minutes",
            "60",
            "--status",
            "scheduled",
        ],
    );
    home.add(
        "messages",
        &[
            "--thread",
            "Homework",
            "--body",
            "Please practice /s/ daily",
            "--from",
            "J. Ames",
        ],
    );
    let intake = home.add(
        "forms",
        &[
            "--title",
            "Intake",
            "--question",
            "text=Any allergies?; id=allergies; kind=yesno",
        ],
    );
    home.ok(["forms", "fill", &intake, "--answer", "allergies=no"]);
    let ehr = write_json(&home, "ehr.json", &small_bundle());
    home.ok(["import", "--fhir", ehr.to_str().unwrap_or_default()]);
    let goal = home.json(["list", "goals", "--json"])[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    home.add(
        "plans",
        &[
            "--title",
            "Speech block",
            "--discipline",
            "speech",
            "--start",
            "2024-01-01",
            "--frequency",
            "2x weekly",
            "--goal",
            &goal,
        ],
    );

    let out = home.scratch("export/record.fhir.json");
    let wrote = home
        .ok(["export", "--format", "fhir", "--out", out.to_str().unwrap_or_default()])
        .stdout;
    assert!(wrote.contains("resources"), "{wrote}");
    let bundle: Value = serde_json::from_str(&read(&out)).expect("the export is JSON");
    assert_valid_fhir("the export of every section", &bundle);
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let made = bundle["timestamp"].as_str().expect("the export says when it was made");
    assert!(chrono::DateTime::parse_from_rfc3339(made).is_ok(), "{made}");
    let entries = bundle["entry"].as_array().expect("entries");
    let patient_url = entries
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .and_then(|e| e["fullUrl"].as_str())
        .expect("the Patient is exported");
    for e in entries {
        let res = &e["resource"];
        assert!(res["id"].as_str().is_some_and(|id| !id.is_empty()), "{res}");
        for key in ["subject", "patient", "beneficiary"] {
            if let Some(r) = res[key]["reference"].as_str() {
                assert_eq!(r, patient_url, "{key} of {res}");
            }
        }
    }

    // Into a fresh home: the same entries, with the same ids.
    let fresh = Home::init("Someone Else");
    let report = fresh.json(["import", "--fhir", out.to_str().unwrap_or_default(), "--json"]);
    assert_eq!(report["written"], true, "{report}");
    for section in Section::ALL {
        let list = |h: &Home| -> BTreeMap<String, Value> {
            h.json(["list", section.name(), "--json"])
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let mut fields = e["fields"].clone();
                    // Logged progress and amendments are the record's own, not exported; an
                    // imported entry's kept source is the EHR's resource in one home and phr's
                    // export of it in the other, so only its presence is compared.
                    if let Some(m) = fields.as_object_mut() {
                        m.remove("progress");
                        m.remove("amendments");
                        if let Some(kept) = m.get_mut(phr::entry::FHIR_KEY) {
                            *kept = Value::Bool(true);
                        }
                    }
                    (e["id"].as_str().unwrap_or_default().to_string(), fields)
                })
                .collect()
        };
        assert_eq!(list(&fresh), list(&home), "{section} after export and import");
    }

    // And back into the original: nothing changes.
    let again = home.json(["import", "--fhir", out.to_str().unwrap_or_default(), "--json"]);
    assert_eq!(again["written"], false, "{again}");
    assert_eq!(again["unmapped"], json!({}), "{again}");

    // Some sections only, and the export is in the audit log.
    let some = home.scratch("labs.json");
    home.ok([
        "export",
        "--format",
        "fhir",
        "--sections",
        "labs,conditions",
        "--out",
        some.to_str().unwrap_or_default(),
    ]);
    let bundle: Value = serde_json::from_str(&read(&some)).expect("JSON");
    assert_valid_fhir("an export of labs and conditions, without the Patient", &bundle);
    let types: std::collections::BTreeSet<&str> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert_eq!(types, ["Condition", "Observation"].into_iter().collect());
    let audit = home.json(["audit", "--json"]);
    let exports = audit
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["fields"]["kind"] == "export" || e["kind"] == "export")
        .count();
    assert_eq!(exports, 2, "{audit}");
}

#[test]
fn a_synthea_patients_chart_lands_in_its_own_sections_not_in_conditions_documents_or_labs() {
    let Some(files) = samples() else { return };
    let entries = |bundle: &Value| -> Vec<Value> {
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"].clone())
            .collect()
    };
    let found = files.iter().find_map(|path| {
        let bundle: Value = serde_json::from_str(&read(path)).expect("JSON");
        let all = entries(&bundle);
        let has = |ty: &str| all.iter().any(|r| r["resourceType"] == ty);
        let has_bp = all.iter().any(|r| r["code"]["coding"][0]["code"] == "55284-4");
        (has("Procedure") && has("Immunization") && has("Encounter") && has_bp).then(|| (path.clone(), bundle))
    });
    let (path, bundle) = found.expect("a sample with procedures, immunizations, encounters and a blood pressure");
    let all = entries(&bundle);
    let count = |ty: &str| all.iter().filter(|r| r["resourceType"] == ty).count();
    let file = path.to_str().unwrap_or_default();
    let home = Home::init("Someone");
    let report = home.json(["import", "--fhir", file, "--dry-run", "--json"]);
    let created = |section: &str| report["sections"][section]["created"].as_u64().unwrap_or(0) as usize;
    assert_eq!(created("procedures"), count("Procedure"), "{report}");
    assert_eq!(created("immunizations"), count("Immunization"), "{report}");
    assert!(created("encounters") > 0 && created("vitals") > 0, "{report}");
    for other in ["documents", "appointments"] {
        assert_eq!(
            report["sections"].get(other),
            None,
            "nothing is converted into {other}: {report}"
        );
    }
    let text = home.ok(["import", "--fhir", file]).stdout;
    // The summary's row for Procedure says where they went and how many were created.
    let procedures: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("Procedure "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let created_text = count("Procedure").to_string();
    assert_eq!(
        procedures.get(1..3),
        Some(&["procedures", created_text.as_str()][..]),
        "{text}"
    );

    let conditions = home.json(["list", "conditions", "--json"]);
    assert!(!conditions.to_string().contains("Procedure: "), "{conditions}");
    let vitals = home.json(["list", "vitals", "--json"]);
    let bp = vitals
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["fields"]["code"] == "http://loinc.org|55284-4")
        .expect("a blood pressure");
    let parts = bp["fields"]["components"].as_array().expect("components");
    assert_eq!(parts.len(), 2, "{bp}");
    for part in parts {
        assert!(
            part["value"].as_str().is_some_and(|v| v.parse::<f64>().is_ok()),
            "{part}"
        );
        assert_eq!(part["unit"], "mm[Hg]", "{part}");
    }
    let labs = home.json(["list", "labs", "--json"]);
    assert!(!labs.to_string().contains("55284-4"), "a vital sign is not a lab");
    let shots = home.json(["list", "immunizations", "--json"]);
    assert!(shots.to_string().contains("http://hl7.org/fhir/sid/cvx|"), "{shots}");
    let visits = home.json(["list", "encounters", "--json"]);
    assert!(visits[0]["fields"]["start"].as_str().is_some(), "{visits}");
}

#[test]
fn the_smallest_sample_imports_through_the_command_line() {
    let Some(files) = samples() else { return };
    let home = Home::init("Someone");
    let file = files[0].to_str().unwrap_or_default();
    let report = home.json(["import", "--fhir", file, "--json"]);
    let bundle: Value = serde_json::from_str(&read(&files[0])).expect("JSON");
    let expected = mappable(&bundle);
    let mapped: BTreeMap<String, usize> = serde_json::from_value(report["mapped"].clone()).expect("counts");
    assert_eq!(mapped, expected, "{report}");
    let text = home.ok(["import", "--fhir", file]).stdout;
    assert!(text.contains("Nothing changed"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Engine-level: updates, patients, provenance
// ---------------------------------------------------------------------------------------------

fn import(record: &mut Record, bundle: &Value) -> phr::Result<ImportReport> {
    fhir::map_bundle(bundle)?.import(record, "test")
}

fn only(record: &Record, section: Section) -> EntryView {
    let list = record.list(section).expect("list");
    assert_eq!(list.len(), 1, "{section}: {list:?}");
    list.into_iter().next().expect("one entry")
}

#[test]
fn a_newer_export_updates_only_what_changed() {
    let mut record = empty_record();
    import(&mut record, &small_bundle()).expect("first import");
    let before = only(&record, Section::Conditions);

    let mut newer = small_bundle();
    newer["entry"][2]["resource"]["clinicalStatus"] = json!({ "coding": [{ "code": "resolved" }] });
    newer["entry"][2]["resource"]["abatementDateTime"] = json!("2024-06-01");
    let report = import(&mut record, &newer).expect("newer import");
    assert_eq!(report.sections[&Section::Conditions].updated, 1, "{report:?}");
    assert_eq!(report.sections[&Section::Labs].unchanged, 1, "{report:?}");
    assert_eq!(report.changes(), 1, "{report:?}");

    let after = only(&record, Section::Conditions);
    assert_eq!(after.id, before.id, "updated in place");
    assert_eq!(after.fields["status"], "resolved");
    assert_eq!(after.fields["resolved"], "2024-06-01");
    assert_eq!(after.fields["onset"], before.fields["onset"]);
    assert_eq!(after.created, before.created);
}

#[test]
fn one_bundle_is_one_patient() {
    let mut record = empty_record();
    let second = with_entry(
        small_bundle(),
        json!({ "resourceType": "Patient", "id": "p2", "name": [{ "text": "Sam Okafor" }] }),
    );
    let err = import(&mut record, &second).expect_err("two patients").to_string();
    assert!(
        err.contains("`Bundle.entry[9].resource`") && err.contains("one patient"),
        "{err}"
    );

    let stray = with_entry(
        small_bundle(),
        json!({
            "resourceType": "Condition", "id": "c9", "code": { "text": "Asthma" },
            "subject": { "reference": "Patient/someone-else" }
        }),
    );
    let err = import(&mut record, &stray)
        .expect_err("another patient's condition")
        .to_string();
    assert!(err.contains("`Bundle.entry[9].resource.subject.reference`"), "{err}");
    assert!(contents(&record).is_empty(), "nothing was imported");
}

#[test]
fn entries_written_by_a_clinician_are_exported_with_their_provenance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut device = Device::init(
        dir.path(),
        "pw",
        InitOptions {
            name: "Mia Lopez".into(),
            dob: None,
            device_name: "phone".into(),
            kdf: KdfParams {
                memory_kib: 64,
                iterations: 1,
                lanes: 1,
            },
        },
    )
    .expect("device");
    let clinician = KeyPair::generate();
    let now = chrono::Utc::now().timestamp();
    device
        .grant(Grant {
            audience: clinician.public(),
            label: "Jane Roe, SLP — Bright Steps".into(),
            scope: [(Section::Labs, Right::Write)].into_iter().collect(),
            delegate: false,
            not_before: now - 60,
            expires: None,
        })
        .expect("grant");
    let mut lab = serde_json::Map::new();
    for (k, v) in [("test", "Ferritin"), ("value", "30"), ("date", "2024-03-01")] {
        lab.insert(k.into(), v.into());
    }
    let own = device
        .write(|r| r.add(Section::Labs, lab.clone()))
        .expect("the patient's own lab");
    let by_clinician = device
        .write(|r| {
            let me = r.set_author(clinician.clone());
            let id = r.add(Section::Labs, lab.clone());
            r.set_author(me);
            id
        })
        .expect("the clinician's lab");

    let exported =
        fhir::export_bundle(device.record(), device.access(), &Section::ALL, fhir::Zone::UTC).expect("export");
    assert_valid_fhir("the export with a Provenance", &exported.bundle);
    assert_eq!(exported.provenance, 1);
    let entries = exported.bundle["entry"].as_array().expect("entries").clone();
    let url_of = |id: &str| {
        entries
            .iter()
            .find(|e| e["resource"]["id"] == id && e["resource"]["resourceType"] == "Observation")
            .and_then(|e| e["fullUrl"].as_str())
            .map(str::to_string)
            .expect("exported")
    };
    let prov: Vec<&Value> = entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Provenance")
        .collect();
    assert_eq!(prov.len(), 1);
    assert_eq!(prov[0]["agent"][0]["who"]["display"], "Jane Roe, SLP — Bright Steps");
    assert_eq!(prov[0]["target"], json!([{ "reference": url_of(&by_clinician) }]));
    assert!(!prov[0]["target"].to_string().contains(&url_of(&own)));
    assert!(prov[0]["recorded"].as_str().is_some_and(|t| t.ends_with('Z')));
}
