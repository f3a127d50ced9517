//! Fixtures and helpers shared by the unit tests of several resources.

use data_encoding::BASE64;
use serde_json::{Value, json};

use phr_model::entry::{self, FieldKind};
use phr_model::error::{Error, Result};
use phr_model::section::Section;

use crate::Fields;
use crate::vocab::{CATEGORY, INTERPRETATION, LOINC, NUCC};

pub(crate) fn fields(v: Value) -> Fields {
    match v {
        Value::Object(m) => m,
        other => panic!("test fixture is not an object: {other}"),
    }
}

pub(crate) fn b64(s: &str) -> String {
    BASE64.encode(s.as_bytes())
}

/// The path and problem of a FHIR error; any other error fails the test.
pub(crate) fn fhir_fault(result: Result<Fields>) -> (String, String) {
    match result {
        Err(Error::Fhir { path, problem }) => (path, problem),
        Err(other) => panic!("expected a FHIR error, got: {other}"),
        Ok(f) => panic!("expected a FHIR error, got fields: {f:?}"),
    }
}

pub(crate) fn choices(section: Section, field: &str) -> &'static [&'static str] {
    match entry::fields(section).iter().find(|s| s.name == field).map(|s| s.kind) {
        Some(FieldKind::Choice(options)) => options,
        other => panic!("{section}.{field} is not a choice: {other:?}"),
    }
}

pub(crate) fn question_kinds() -> &'static [&'static str] {
    match entry::fields(Section::Forms)
        .iter()
        .find(|s| s.name == "question")
        .map(|s| s.kind)
    {
        Some(FieldKind::Items(sub)) => match sub.iter().find(|s| s.name == "kind").map(|s| s.kind) {
            Some(FieldKind::Choice(options)) => options,
            other => panic!("question kind is not a choice: {other:?}"),
        },
        other => panic!("forms.question is not items: {other:?}"),
    }
}

pub(crate) fn ehr_document() -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": "doc-881",
        "status": "current",
        "docStatus": "final",
        "type": { "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }] },
        "category": [{ "coding": [{
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "code": "clinical-note", "display": "Clinical Note" }] }],
        "subject": { "reference": "Patient/p-1" },
        "date": "2024-03-05T17:20:11.123-05:00",
        "author": [
            { "reference": "Organization/clinic-1", "display": "Sunrise Pediatric Therapy" },
            { "reference": "Practitioner/pr-7", "display": "Jamie Ames, CCC-SLP" }
        ],
        "content": [
            { "attachment": { "contentType": "application/pdf", "url": "Binary/note-881" } },
            { "attachment": {
                "contentType": "text/plain; charset=utf-8",
                "data": b64("S: Tired after school.\nO: 8/10 /s/ in initial position\nwith visual cues.\n\nA: Improving.\nP: Continue twice weekly.")
            } }
        ],
        "context": {
            "period": { "start": "2024-03-04T15:00:00-05:00", "end": "2024-03-04T15:45:00-05:00" },
            "practiceSetting": { "coding": [{ "system": NUCC, "code": "235Z00000X" }] }
        }
    })
}

pub(crate) fn intake_questionnaire() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "id": "intake-2024",
        "url": "https://ehr.example/fhir/Questionnaire/intake-2024",
        "status": "active",
        "title": "Speech intake",
        "item": [
            { "linkId": "intro", "type": "display", "text": "Please answer for your child." },
            { "linkId": "history", "type": "group", "text": "History", "item": [
                { "linkId": "first-words", "type": "integer", "text": "Age at first words (months)" },
                { "linkId": "ear-infections", "type": "boolean", "text": "Frequent ear infections?" },
                { "linkId": "details", "type": "group", "item": [
                    { "linkId": "concerns", "type": "text", "text": "Main concerns" }
                ] }
            ] },
            { "linkId": "language", "type": "choice", "text": "Home language",
              "answerOption": [{ "valueCoding": { "code": "en", "display": "English" } }, { "valueString": "Spanish" }] },
            { "linkId": "last-visit", "type": "date", "text": "Last hearing test" },
            { "linkId": "name", "type": "string", "text": "Who is filling this in?" }
        ]
    })
}

pub(crate) fn ehr_appointment() -> Value {
    json!({
        "resourceType": "Appointment",
        "id": "appt-5521",
        "status": "booked",
        "serviceType": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/service-type",
            "code": "355", "display": "Speech Therapy" }] }],
        "reasonCode": [{ "coding": [{ "system": "http://snomed.info/sct", "display": "Articulation disorder" }] }],
        "description": "Follow-up speech session",
        "start": "2024-03-12T15:30:00-04:00",
        "end": "2024-03-12T16:15:00-04:00",
        "comment": "Bring home-practice sheet.",
        "participant": [
            { "actor": { "reference": "Patient/p-1", "display": "Mia Lopez" }, "status": "accepted" },
            { "actor": { "reference": "https://ehr.example/fhir/Practitioner/pr-7/_history/3", "display": "Jamie Ames" }, "status": "accepted" },
            { "actor": { "reference": "Location/room-2", "display": "Room 2" }, "status": "accepted" }
        ]
    })
}

pub(crate) fn synthea_glucose() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "171b685d-d94a-427e-abcc-f5cfbcd05838",
        "status": "final",
        "category": [{ "coding": [{ "system": CATEGORY, "code": "laboratory", "display": "laboratory" }] }],
        "code": { "coding": [{ "system": LOINC, "code": "2339-0", "display": "Glucose" }], "text": "Glucose" },
        "subject": { "reference": "urn:uuid:cccb981f-2a12-44d0-b1dd-5404ece3f535" },
        "effectiveDateTime": "2008-05-19T07:44:08+00:00",
        "issued": "2008-05-19T07:44:08.416+00:00",
        "valueQuantity": { "value": 75.55529258694807, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL" },
        "referenceRange": [{ "low": { "value": 70, "unit": "mg/dL" }, "high": { "value": 99, "unit": "mg/dL" } }],
        "interpretation": [{ "coding": [{ "system": INTERPRETATION, "code": "N" }] }]
    })
}

pub(crate) fn template_fields() -> Fields {
    entry::validate(
        Section::Forms,
        &fields(json!({
            "title": "Intake",
            "kind": "template",
            "status": "sent",
            "questions": [
                { "text": "Age at first words (months)", "id": "first-words", "kind": "number" },
                { "text": "Frequent ear infections?", "id": "ears", "kind": "yesno" },
                { "text": "Last hearing test", "id": "hearing", "kind": "date" },
                { "text": "Main concerns", "id": "concerns", "kind": "text" },
                { "text": "Anything else?", "id": "else" }
            ]
        })),
    )
    .unwrap()
}

/// Read `res` alone (no bundle around it) through its row of the table, as an import does, and
/// return the validated fields of the entry it becomes, which must be of `section`.
pub(crate) fn read_entry(res: &Value, section: Section) -> Fields {
    match read_alone(res) {
        Ok((s, fields)) => {
            assert_eq!(s, section, "{res:#}");
            fields
        }
        Err(e) => panic!("{e}: {res:#}"),
    }
}

/// The path and problem of the FHIR error reading `res` alone gives.
pub(crate) fn fault(res: &Value) -> (String, String) {
    match read_alone(res) {
        Err(Error::Fhir { path, problem }) => (path, problem),
        Err(other) => panic!("expected a FHIR error, got: {other}"),
        Ok(f) => panic!("expected a FHIR error, got: {f:?}"),
    }
}

fn read_alone(res: &Value) -> Result<(Section, Fields)> {
    use crate::json::{At, Path};
    use crate::reading::{Cx, Mapping, Refs};
    let ty = res["resourceType"].as_str().unwrap_or_default();
    let row = crate::resources::resource(ty).unwrap_or_else(|| panic!("no row for {ty}"));
    let mut refs = Refs::default();
    refs.add(None, res);
    let cx = Cx {
        refs: &refs,
        res,
        from_phr: false,
        tag: None,
    };
    let at = At {
        value: Some(res),
        path: Path::new(ty),
    };
    match (row.read)(&at, &cx)? {
        Mapping::Entry(s, fields) => Ok((s, entry::validate(s, &fields)?)),
        Mapping::Checked(s, fields) => Ok((s, fields)),
        Mapping::Skip(why) => panic!("skipped ({why}): {res:#}"),
    }
}
