//! International Patient Summaries in and out: a clinic's IPS document imports (its "no
//! information" statements learned, never made entries), and `phr export --format ips` writes one
//! the real FHIR R4 validator accepts.
//!
//! The fixtures in tests/fixtures/ips/ are written for these tests in the shape of the HL7 IPS
//! guide's examples: a document Bundle, its Composition first, partial dates, empty sections
//! with an `emptyReason`, entries coded with the guide's absent-unknown codes.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::path::{Path, PathBuf};

use common::Home;
use common::fhir_validator::assert_valid_fhir;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ips")
        .join(name)
}

fn import(home: &Home, name: &str) -> (Value, String) {
    let file = fixture(name);
    let file = file.to_str().unwrap_or_default();
    let report = home.json(["import", "--fhir", file, "--dry-run", "--json"]);
    let text = home.ok(["import", "--fhir", file]).stdout;
    (report, text)
}

/// The IPS document `phr export --format ips` writes for `home`, checked by the real validator.
fn export_ips(home: &Home) -> Value {
    let out = home.scratch("summary.json");
    home.ok(["export", "--format", "ips", "--out", out.to_str().unwrap_or_default()]);
    let text = std::fs::read_to_string(&out).expect("the exported summary");
    let bundle: Value = serde_json::from_str(&text).expect("JSON");
    assert_valid_fhir("the IPS export", &bundle);
    bundle
}

fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .collect()
}

/// The Composition's section with this LOINC code.
fn section<'a>(bundle: &'a Value, loinc: &str) -> Option<&'a Value> {
    bundle["entry"][0]["resource"]["section"]
        .as_array()?
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == loinc)
}

#[test]
fn a_clinics_patient_summary_imports_and_no_information_is_not_an_entry() {
    let home = Home::init("Rosa Alvarez");
    let (report, text) = import(&home, "summary.json");
    assert_eq!(report["bundle_type"], "document", "{report}");
    assert_eq!(report["types"]["Condition"]["created"], 2, "{report}");
    assert_eq!(report["types"]["Observation"]["created"], 1, "{report}");
    assert_eq!(
        report["types"]["MedicationStatement"]["not_imported"]["no information"], 1,
        "{report}"
    );
    assert_eq!(
        report["types"]["AllergyIntolerance"]["not_imported"]["none known"], 1,
        "{report}"
    );

    // What the parent reads: one row per resource type, and what the summary said.
    let row = |ty: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(ty))
            .unwrap_or_default()
    };
    assert!(row("Condition").contains("conditions"), "{text}");
    assert!(row("Condition").split_whitespace().nth(2) == Some("2"), "{text}");
    assert!(text.contains("medications: the sender has no information"), "{text}");
    assert!(text.contains("allergies: the sender knows of none"), "{text}");
    assert!(text.contains("immunizations: the sender did not ask"), "{text}");
    assert!(text.contains("procedures: the sender knows of none"), "{text}");

    // "No information about medications" is not a medication the child takes.
    assert_eq!(home.json(["list", "medications", "--json"]), serde_json::json!([]));
    assert_eq!(home.json(["list", "allergies", "--json"]), serde_json::json!([]));
    let conditions = home.json(["list", "conditions", "--json"]);
    assert_eq!(conditions.as_array().map_or(0, Vec::len), 2, "{conditions}");

    // The same summary again changes nothing.
    let (_, again) = import(&home, "summary.json");
    assert!(again.contains("Nothing changed"), "{again}");
}

#[test]
fn an_imported_summary_goes_back_out_as_a_valid_ips_with_its_dates_as_written() {
    let home = Home::init("Rosa Alvarez");
    import(&home, "summary.json");
    let bundle = export_ips(&home);
    assert_eq!(bundle["type"], "document");
    assert!(bundle["identifier"]["value"].is_string(), "{bundle:#}");
    assert!(bundle["timestamp"].is_string(), "{bundle:#}");
    let composition = &bundle["entry"][0]["resource"];
    assert_eq!(composition["resourceType"], "Composition");
    assert_eq!(composition["type"]["coding"][0]["code"], "60591-5");
    assert_eq!(composition["subject"]["reference"], bundle["entry"][1]["fullUrl"]);
    assert_eq!(bundle["entry"][1]["resource"]["resourceType"], "Patient");

    // The partial dates the clinic wrote, not invented days.
    let onsets: Vec<&str> = resources(&bundle)
        .into_iter()
        .filter(|r| r["resourceType"] == "Condition")
        .filter_map(|r| r["onsetDateTime"].as_str())
        .collect();
    assert_eq!(onsets, ["2015", "2015-03"], "{bundle:#}");

    let problems = section(&bundle, "11450-4").expect("the problem list");
    assert_eq!(problems["entry"].as_array().map_or(0, Vec::len), 2);
    let results = section(&bundle, "30954-2").expect("the results section: phr has a lab");
    assert_eq!(results["entry"].as_array().map_or(0, Vec::len), 1);
    // Required, and empty in phr: said with the guide's "no information" entry.
    let medications = section(&bundle, "10160-0").expect("the medication summary");
    let reference = medications["entry"][0]["reference"].clone();
    let statement = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["fullUrl"] == reference)
        .map(|e| &e["resource"])
        .expect("the section's entry is in the bundle");
    assert_eq!(
        statement["medicationCodeableConcept"]["coding"][0]["code"],
        "no-medication-info"
    );
    assert!(section(&bundle, "48765-2").is_some(), "allergies are required");
}

#[test]
fn a_summary_that_says_nothing_is_known_imports_nothing_and_an_empty_record_exports_valid() {
    let home = Home::init("Theo Brandt");
    let (report, text) = import(&home, "no-information.json");
    let learned: Vec<(&str, &str)> = report["learned"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["section"].as_str()?, l["says"].as_str()?)))
        .collect();
    assert_eq!(
        learned,
        [
            ("allergies", "no-information"),
            ("conditions", "no-information"),
            ("medications", "no-information")
        ],
        "{report}"
    );
    assert!(text.contains("conditions: the sender has no information"), "{text}");
    for section in ["medications", "conditions", "allergies"] {
        assert_eq!(
            home.json(["list", section, "--json"]),
            serde_json::json!([]),
            "{section}"
        );
    }

    let bundle = export_ips(&home);
    for loinc in ["10160-0", "48765-2", "11450-4"] {
        assert!(
            section(&bundle, loinc).is_some(),
            "required section {loinc}: {bundle:#}"
        );
    }
    assert!(section(&bundle, "30954-2").is_none(), "no results: no results section");
}
