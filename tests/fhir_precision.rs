//! What an EHR says only roughly stays rough: a condition "since 2015" or a vaccine given "in
//! March 2015" is kept, shown and exported as the EHR wrote it, not as an invented first day.
//!
//! The export checks use entries with NO kept source (the `fhir` and `source` keys stripped,
//! as for an entry a person typed), so they test the record model itself and not the
//! export's ability to hand back what it kept.

use phr::access::AccessSet;
use phr::fhir;
use phr::{KeyPair, Record, Section};
use serde_json::{Map, Value, json};

fn empty_record() -> Record {
    let root = KeyPair::generate();
    Record::new(root.public(), root)
}

/// A bundle of one patient and the history a clinic knew only to the year or month.
fn rough_history() -> Value {
    let patient = json!({ "reference": "urn:uuid:p1" });
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            { "fullUrl": "urn:uuid:p1", "resource": {
                "resourceType": "Patient", "id": "p1", "name": [{ "text": "Mia Lopez" }]
            } },
            { "fullUrl": "urn:uuid:c1", "resource": {
                "resourceType": "Condition", "id": "c1", "subject": patient,
                "code": { "text": "Asthma" },
                "onsetDateTime": "2015",
                "abatementDateTime": "2019-06"
            } },
            { "fullUrl": "urn:uuid:a1", "resource": {
                "resourceType": "AllergyIntolerance", "id": "a1", "patient": patient,
                "code": { "text": "Peanut" },
                "recordedDate": "2016-04"
            } },
            { "fullUrl": "urn:uuid:m1", "resource": {
                "resourceType": "MedicationStatement", "id": "m1", "status": "active", "subject": patient,
                "medicationCodeableConcept": { "text": "Salbutamol inhaler" },
                "effectivePeriod": { "start": "2015-09" }
            } },
            { "fullUrl": "urn:uuid:i1", "resource": {
                "resourceType": "Immunization", "id": "i1", "status": "completed", "patient": patient,
                "vaccineCode": { "text": "MMR" },
                "occurrenceDateTime": "2015-03"
            } },
            { "fullUrl": "urn:uuid:pr1", "resource": {
                "resourceType": "Procedure", "id": "pr1", "status": "completed", "subject": patient,
                "code": { "text": "Tonsillectomy" },
                "performedPeriod": { "start": "2014", "end": "2014-06-02" }
            } }
        ]
    })
}

/// A fresh record with `bundle` imported.
fn imported(bundle: &Value) -> Record {
    let mut record = empty_record();
    fhir::map_bundle(bundle)
        .and_then(|m| m.import(&mut record, "test"))
        .unwrap_or_else(|e| panic!("import: {e}"));
    record
}

/// The one entry of `section`, its fields.
fn only(record: &Record, section: Section) -> Map<String, Value> {
    let list = record.list(section).unwrap_or_else(|e| panic!("{section}: {e}"));
    assert_eq!(list.len(), 1, "{section}: {list:?}");
    list.into_iter().next().map(|e| e.fields).unwrap_or_default()
}

/// What each imported entry holds, as (section, field, value).
const KEPT_AS_WRITTEN: &[(Section, &str, &str)] = &[
    (Section::Conditions, "onset", "2015"),
    (Section::Conditions, "resolved", "2019-06"),
    (Section::Allergies, "recorded", "2016-04"),
    (Section::Medications, "started", "2015-09"),
    (Section::Immunizations, "date", "2015-03"),
    (Section::Procedures, "date", "2014"),
    (Section::Procedures, "end", "2014-06-02"),
];

#[test]
fn dates_known_to_a_year_or_month_are_imported_as_written() {
    let record = imported(&rough_history());
    for (section, field, written) in KEPT_AS_WRITTEN {
        assert_eq!(only(&record, *section)[*field], *written, "{section}.{field}");
    }
}

/// The record after import, copied entry by entry without the kept FHIR source, as if a
/// person had typed every entry.
fn typed_copy(imported: &Record) -> Record {
    let mut typed = empty_record();
    for section in [
        Section::Conditions,
        Section::Allergies,
        Section::Medications,
        Section::Immunizations,
        Section::Procedures,
    ] {
        let mut fields = only(imported, section);
        for kept in [
            phr::entry::FHIR_KEY,
            phr::entry::SOURCE_KEY,
            "author",
            "created",
            "updated",
        ] {
            fields.remove(kept);
        }
        typed.add(section, fields).unwrap_or_else(|e| panic!("{section}: {e}"));
    }
    typed
}

/// The exported resource of `kind`.
fn resource<'a>(bundle: &'a Value, kind: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {bundle}"))
}

#[test]
fn an_entry_without_its_source_exports_its_dates_at_their_precision() {
    let typed = typed_copy(&imported(&rough_history()));
    let out = fhir::export_bundle(&typed, &AccessSet::default(), &Section::ALL, fhir::Zone::UTC)
        .unwrap_or_else(|e| panic!("export: {e}"))
        .bundle;
    let condition = resource(&out, "Condition");
    assert_eq!(condition["onsetDateTime"], "2015", "{condition}");
    assert_eq!(condition["abatementDateTime"], "2019-06", "{condition}");
    assert_eq!(resource(&out, "AllergyIntolerance")["recordedDate"], "2016-04");
    assert_eq!(
        resource(&out, "MedicationStatement")["effectivePeriod"]["start"],
        "2015-09"
    );
    assert_eq!(resource(&out, "Immunization")["occurrenceDateTime"], "2015-03");
    let procedure = resource(&out, "Procedure");
    assert_eq!(
        procedure["performedPeriod"],
        json!({ "start": "2014", "end": "2014-06-02" }),
        "{procedure}"
    );

    let again = imported(&out);
    for (section, field, written) in KEPT_AS_WRITTEN {
        assert_eq!(
            only(&again, *section)[*field],
            *written,
            "{section}.{field} after a round trip"
        );
    }
}
