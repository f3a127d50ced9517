//! `AllergyIntolerance`: an allergy, both ways.

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

/// Stands in for an allergy reaction that only has a severity, since FHIR needs a manifestation
/// to hang the severity on; read back as no reaction.
const UNDESCRIBED_REACTION: &str = "Reaction not described";

/// AllergyIntolerance → an allergy.
pub(crate) fn allergy(root: &At, _cx: &Cx) -> Result<Mapping> {
    let verification = status_code(&root.get("verificationStatus")?)?;
    match verification.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("refuted") => return Ok(Skip("refuted")),
        _ => {}
    }
    let reactions = root.get("reaction")?.items()?;
    let mut substance = concept_label(&root.get("code")?)?;
    for r in &reactions {
        if substance.is_none() {
            substance = concept_label(&r.get("substance")?)?;
        }
    }
    let Some(substance) = substance else {
        return Ok(Skip("no substance"));
    };
    let mut fields = Fields::new();
    fields.insert("substance".into(), substance.into());
    let mut seen: Vec<String> = Vec::new();
    let mut severity = None;
    for r in &reactions {
        for m in labels(&r.get("manifestation")?)? {
            if m != UNDESCRIBED_REACTION && !seen.contains(&m) {
                seen.push(m);
            }
        }
        if let Some(d) = r.get("description")?.text()? {
            seen.push(d);
        }
        let sev = r.get("severity")?;
        if severity.is_none()
            && let Some(s) = sev.text()?
        {
            if !matches!(s.as_str(), "mild" | "moderate" | "severe") {
                return Err(sev.fail(format!(
                    "`{s}` is not a reaction severity; R4 has mild, moderate, severe"
                )));
            }
            severity = Some(s);
        }
    }
    if !seen.is_empty() {
        fields.insert("reaction".into(), seen.join(", ").into());
    }
    put(&mut fields, "severity", severity);
    let clinical = root.get("clinicalStatus")?;
    let status = match status_code(&clinical)?.as_deref() {
        None | Some("active") => "active",
        Some("inactive") => "inactive",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(clinical.fail(format!(
                "`{other}` is not an allergy status; R4 has active, inactive, resolved"
            )));
        }
    };
    fields.insert("status".into(), status.into());
    put(
        &mut fields,
        "recorded",
        first_partial_date(&[root.get("recordedDate")?, root.get("onsetDateTime")?])?,
    );
    let mut about = Vec::new();
    let mut categories = Vec::new();
    for c in root.get("category")?.items()? {
        categories.extend(c.text()?);
    }
    let kind = root.get("type")?.text()?;
    if !categories.is_empty() || kind.is_some() {
        let what = kind.unwrap_or_else(|| "allergy".into());
        about.push(match categories.is_empty() {
            true => format!("Type: {what}."),
            false => format!("Type: {} {what}.", categories.join("/")),
        });
    }
    if let Some(c) = root.get("criticality")?.text()? {
        about.push(format!("Criticality: {c}."));
    }
    if let Some(v) = verification.filter(|v| v != "confirmed") {
        about.push(format!("Verification: {v}."));
    }
    let mut notes = Vec::new();
    if !about.is_empty() {
        notes.push(about.join(" "));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Allergies, fields))
}

/// An allergy as an `AllergyIntolerance`.
pub(crate) fn allergy_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut a = base("AllergyIntolerance", id, fields);
    let status = text_field(fields, "status").unwrap_or("active");
    a.insert(
        "clinicalStatus".into(),
        json!({ "coding": [{ "system": ALLERGY_CLINICAL, "code": status }] }),
    );
    if let Some(substance) = text_field(fields, "substance") {
        a.insert("code".into(), json!({ "text": substance }));
    }
    if let Some(recorded) = text_field(fields, "recorded") {
        a.insert("recordedDate".into(), recorded.into());
    }
    let reaction = text_field(fields, "reaction");
    let severity = text_field(fields, "severity");
    if reaction.is_some() || severity.is_some() {
        let mut r = Map::new();
        r.insert(
            "manifestation".into(),
            json!([{ "text": reaction.unwrap_or(UNDESCRIBED_REACTION) }]),
        );
        if let Some(s) = severity {
            r.insert("severity".into(), s.into());
        }
        a.insert("reaction".into(), json!([r]));
    }
    if let Some(notes) = text_field(fields, "notes") {
        a.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(a)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    allergy_to_fhir(id, fields)
}
