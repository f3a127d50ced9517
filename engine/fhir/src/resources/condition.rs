//! `Condition`: a condition, both ways.

use serde_json::{Map, Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::vocab::*;

/// Condition → a condition.
pub(crate) fn condition(root: &At, _cx: &Cx) -> Result<Mapping> {
    let verification = status_code(&root.get("verificationStatus")?)?;
    match verification.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        // A diagnosis ruled out is not one the patient has.
        Some("refuted") => return Ok(Skip("refuted")),
        _ => {}
    }
    let code = root.get("code")?;
    let Some(name) = concept_label(&code)? else {
        return Ok(Skip("no code"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());
    put(&mut fields, "code", first_code(&code)?);
    let onset = first_partial_date(&[root.get("onsetDateTime")?, root.get("onsetPeriod")?.get("start")?])?;
    let abatement = root.get("abatementPeriod")?;
    let resolved = first_partial_date(&[
        root.get("abatementDateTime")?,
        abatement.get("end")?,
        abatement.get("start")?,
    ])?;
    let clinical = root.get("clinicalStatus")?;
    let status = match status_code(&clinical)?.as_deref() {
        Some("active" | "recurrence" | "relapse") => "active",
        Some("inactive" | "remission") => "inactive",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(clinical.fail(format!(
                "`{other}` is not a condition status; R4 has active, recurrence, relapse, inactive, remission, resolved"
            )));
        }
        None if resolved.is_some() => "resolved",
        None => "active",
    };
    fields.insert("status".into(), status.into());
    put(&mut fields, "onset", onset);
    put(&mut fields, "resolved", resolved);
    let mut notes = Vec::new();
    if let Some(v) = verification.filter(|v| v != "confirmed") {
        notes.push(format!("Verification: {v}."));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Conditions, fields))
}

/// A condition as a `Condition`.
pub(crate) fn condition_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut c = base("Condition", id, fields);
    let status = text_field(fields, "status").unwrap_or("active");
    c.insert(
        "clinicalStatus".into(),
        json!({ "coding": [{ "system": CONDITION_CLINICAL, "code": status }] }),
    );
    let mut code = Map::new();
    if let Some(k) = text_field(fields, "code") {
        code.insert("coding".into(), json!([{ "code": k }]));
    }
    if let Some(name) = text_field(fields, "name") {
        code.insert("text".into(), name.into());
    }
    c.insert("code".into(), Value::Object(code));
    if let Some(onset) = text_field(fields, "onset") {
        c.insert("onsetDateTime".into(), onset.into());
    }
    if let Some(resolved) = text_field(fields, "resolved") {
        c.insert("abatementDateTime".into(), resolved.into());
    }
    if let Some(notes) = text_field(fields, "notes") {
        c.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(c)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    condition_to_fhir(id, fields)
}
