//! `Procedure`: a procedure, both ways.

use serde_json::{Value, json};

use phr_model::entry::PROCEDURE_STATUSES;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;

/// Procedure → a procedure: what was done, its code, status, when, why, by whom and where.
pub(crate) fn procedure(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        None => "completed".to_string(),
        Some(s) if PROCEDURE_STATUSES.contains(&s) => s.to_string(),
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a procedure status; R4 has {}, entered-in-error",
                PROCEDURE_STATUSES.join(", ")
            )));
        }
    };
    let code = root.get("code")?;
    let Some(name) = concept_label(&code)? else {
        return Ok(Skip("no code"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());
    put(&mut fields, "code", coded(&code)?);
    fields.insert("status".into(), status.into());
    let period = root.get("performedPeriod")?;
    let start = first_partial_date(&[root.get("performedDateTime")?, period.get("start")?])?;
    let end = first_partial_date(&[period.get("end")?])?;
    // A period that ends before it starts says nothing sure about its end.
    let end = end.filter(|e| start.as_deref().is_none_or(|s| !wholly_before(e, s)));
    put(&mut fields, "date", start);
    put(&mut fields, "end", end);
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    put(&mut fields, "reason", joined(reasons));
    put(&mut fields, "status_reason", concept_label(&root.get("statusReason")?)?);
    read_who_where(root, cx, &mut fields)?;
    Ok(Entry(Section::Procedures, fields))
}

/// A procedure as a `Procedure`.
pub(crate) fn procedure_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut p = base("Procedure", id, fields);
    p.insert(
        "status".into(),
        text_field(fields, "status").unwrap_or("completed").into(),
    );
    let name = text_field(fields, "name");
    if let Some(code) = concept(text_field(fields, "code"), name) {
        p.insert("code".into(), code);
    }
    match (text_field(fields, "date"), text_field(fields, "end")) {
        (Some(start), Some(end)) => {
            p.insert("performedPeriod".into(), json!({ "start": start, "end": end }));
        }
        (None, Some(end)) => {
            p.insert("performedPeriod".into(), json!({ "end": end }));
        }
        (Some(start), None) => {
            p.insert("performedDateTime".into(), start.into());
        }
        (None, None) => {}
    }
    if let Some(reason) = text_field(fields, "reason") {
        p.insert("reasonCode".into(), json!([{ "text": reason }]));
    }
    if let Some(why) = text_field(fields, "status_reason") {
        p.insert("statusReason".into(), json!({ "text": why }));
    }
    write_who_where(&mut p, fields);
    Value::Object(p)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    procedure_to_fhir(id, fields)
}

/// Who did it (the first performer's actor), where (`location`) and the notes: read the same
/// way for a procedure and an immunization.
pub(crate) fn read_who_where(root: &At, cx: &Cx, fields: &mut Fields) -> Result<()> {
    let mut performers = Vec::new();
    for p in root.get("performer")?.items()? {
        performers.extend(cx.name(&p.get("actor")?)?);
    }
    put(fields, "performer", performers.into_iter().next());
    put(fields, "location", cx.name(&root.get("location")?)?);
    put(fields, "notes", paragraphs(note_texts(root)?));
    Ok(())
}

/// The fields [`read_who_where`] reads, written back.
pub(crate) fn write_who_where(res: &mut serde_json::Map<String, Value>, fields: &Fields) {
    if let Some(who) = text_field(fields, "performer") {
        res.insert("performer".into(), json!([{ "actor": named(who) }]));
    }
    if let Some(place) = text_field(fields, "location") {
        res.insert("location".into(), named(place));
    }
    if let Some(notes) = text_field(fields, "notes") {
        res.insert("note".into(), json!([{ "text": notes }]));
    }
}

/// Several labels as one text, or nothing.
pub(crate) fn joined(labels: Vec<String>) -> Option<String> {
    (!labels.is_empty()).then(|| labels.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use phr_model::entry;

    #[test]
    fn a_synthea_procedure_becomes_a_procedure_and_goes_back_the_same() {
        let res = json!({
            "resourceType": "Procedure", "id": "p1", "status": "completed",
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "117015009", "display": "Throat culture" }],
                      "text": "Throat culture" },
            "reasonCode": [{ "text": "Sore throat" }],
            "performedPeriod": { "start": "2013-05-17T15:44:30+00:00", "end": "2013-05-17T15:59:30+00:00" }
        });
        let fields = read_entry(&res, Section::Procedures);
        assert_eq!(fields["name"], "Throat culture");
        assert_eq!(fields["code"], "http://snomed.info/sct|117015009");
        assert_eq!(
            (fields["date"].as_str(), fields["end"].as_str()),
            (Some("2013-05-17"), Some("2013-05-17"))
        );
        assert_eq!(fields["reason"], "Sore throat");
        let out = procedure_to_fhir("x", &fields);
        assert_eq!(out["code"]["coding"][0]["code"], "117015009");
        assert_eq!(read_entry(&out, Section::Procedures), fields, "{out:#}");
    }

    #[test]
    fn a_procedure_not_done_keeps_why_and_a_bad_status_is_named() {
        let typed = entry::validate(
            Section::Procedures,
            &fields(json!({ "name": "MRI", "status": "not-done", "status_reason": "Could not lie still" })),
        )
        .unwrap();
        let out = procedure_to_fhir("m", &typed);
        assert_eq!(out["statusReason"]["text"], "Could not lie still");
        assert_eq!(read_entry(&out, Section::Procedures), typed);
        let bad = json!({ "resourceType": "Procedure", "status": "done", "code": { "text": "MRI" } });
        let (path, problem) = fault(&bad);
        assert_eq!(path, "Procedure.status");
        assert!(problem.contains("not-done"), "{problem}");
    }
}
