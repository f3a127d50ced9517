//! `MedicationRequest` and `MedicationStatement`: a medication; written as a
//! `MedicationStatement` (the patient's list says what they take).

use serde_json::{Map, Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;

/// MedicationRequest or MedicationStatement → a medication.
///
/// A medication that ended on a date the source does not give is `inactive`: the record's
/// `stopped` status needs the date, and calling it active would mislead.
pub(crate) fn medication(root: &At, cx: &Cx, request: bool) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = status_at.text()?;
    if in_error(status.as_deref()) {
        return Ok(Skip("entered-in-error"));
    }
    let concept = root.get("medicationCodeableConcept")?;
    let name = match concept_label(&concept)? {
        Some(n) => Some(n),
        None => cx.name(&root.get("medicationReference")?)?,
    };
    let Some(name) = name else {
        return Ok(Skip("medication not named"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());

    let dosage = if request {
        root.get("dosageInstruction")?
    } else {
        root.get("dosage")?
    };
    if let Some(d) = dosage.items()?.into_iter().next() {
        dosage_fields(&d, &mut fields)?;
    }

    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    if !reasons.is_empty() {
        fields.insert("reason".into(), reasons.join("; ").into());
    }

    let (started, stopped) = if request {
        put(&mut fields, "prescriber", cx.person(&[root.get("requester")?])?);
        let bounds = match dosage.items()?.into_iter().next() {
            Some(d) => d.get("timing")?.get("repeat")?.get("boundsPeriod")?,
            None => root.get("dosageInstruction")?,
        };
        let validity = root.get("dispenseRequest")?.get("validityPeriod")?;
        (
            first_partial_date(&[root.get("authoredOn")?, bounds.get("start")?])?,
            first_partial_date(&[bounds.get("end")?, validity.get("end")?])?,
        )
    } else {
        put(&mut fields, "prescriber", cx.person(&[root.get("informationSource")?])?);
        let period = root.get("effectivePeriod")?;
        (
            first_partial_date(&[
                root.get("effectiveDateTime")?,
                period.get("start")?,
                root.get("dateAsserted")?,
            ])?,
            first_partial_date(&[period.get("end")?])?,
        )
    };
    put(&mut fields, "started", started);

    let mut notes = Vec::new();
    let ended = ended(status.as_deref(), &status_at, &mut notes)?;
    if ended {
        match stopped {
            Some(date) => {
                fields.insert("status".into(), "stopped".into());
                fields.insert("stopped".into(), date.into());
            }
            None => {
                fields.insert("status".into(), "inactive".into());
            }
        }
        let reason = root.get("statusReason")?;
        let reason = if request {
            concept_label(&reason)?
        } else {
            labels(&reason)?.into_iter().next()
        };
        put(&mut fields, "stop_reason", reason);
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Medications, fields))
}

/// A Dosage's dose, schedule and route.
fn dosage_fields(d: &At, fields: &mut Fields) -> Result<()> {
    let mut dose = None;
    if let Some(rate) = d.get("doseAndRate")?.items()?.into_iter().next() {
        let q = rate.get("doseQuantity")?;
        if let Some(n) = q.get("value")?.number()? {
            dose = Some(match q.get("unit")?.text()? {
                Some(u) => format!("{n} {u}"),
                None => n.to_string(),
            });
        }
        let range = rate.get("doseRange")?;
        if dose.is_none()
            && let (Some(lo), Some(hi)) = (
                range.get("low")?.get("value")?.number()?,
                range.get("high")?.get("value")?.number()?,
            )
        {
            dose = Some(match range.get("high")?.get("unit")?.text()? {
                Some(u) => format!("{lo}-{hi} {u}"),
                None => format!("{lo}-{hi}"),
            });
        }
    }
    if dose.is_none()
        && let Some(ext) = field_ext(d, "dose")?
    {
        dose = ext.get("valueString")?.text()?;
    }
    put(fields, "dose", dose);
    let timing = d.get("timing")?;
    let schedule = match d.get("text")?.text()? {
        Some(t) => Some(t),
        None => match concept_label(&timing.get("code")?)? {
            Some(t) => Some(t),
            None => repeat_words(&timing.get("repeat")?)?,
        },
    };
    let schedule = match (schedule, d.get("asNeededBoolean")?.boolean()?) {
        (Some(s), Some(true)) => Some(format!("{s}, as needed")),
        (None, Some(true)) => Some("as needed".to_string()),
        (s, _) => s,
    };
    put(fields, "schedule", schedule);
    put(fields, "route", concept_label(&d.get("route")?)?);
    Ok(())
}

/// Whether a medication status says it ended, noting what the record has no status for.
fn ended(status: Option<&str>, status_at: &At, notes: &mut Vec<String>) -> Result<bool> {
    Ok(match status {
        None | Some("active" | "unknown") => false,
        Some("on-hold") => {
            notes.push("On hold.".to_string());
            false
        }
        Some("draft") => {
            notes.push("Draft: not yet prescribed.".to_string());
            false
        }
        Some("intended") => {
            notes.push("Intended: not yet started.".to_string());
            false
        }
        Some("completed" | "stopped") => true,
        Some("cancelled") => {
            notes.push("Cancelled before it was started.".to_string());
            true
        }
        Some("not-taken") => {
            notes.push("Not taken.".to_string());
            true
        }
        Some(other) => {
            return Err(status_at.fail(format!("`{other}` is not a medication status")));
        }
    })
}

/// A Timing.repeat in words: "2x per day", "1x every 8 hours".
pub(crate) fn repeat_words(repeat: &At) -> Result<Option<String>> {
    let (Some(freq), Some(period), Some(unit)) = (
        repeat.get("frequency")?.number()?,
        repeat.get("period")?.float()?,
        repeat.get("periodUnit")?.text()?,
    ) else {
        return Ok(None);
    };
    let unit = match unit.as_str() {
        "s" => "second",
        "min" => "minute",
        "h" => "hour",
        "d" => "day",
        "wk" => "week",
        "mo" => "month",
        "a" => "year",
        other => return Err(repeat.get("periodUnit")?.fail(format!("`{other}` is not a time unit"))),
    };
    Ok(Some(if period == 1.0 {
        format!("{freq}x per {unit}")
    } else {
        format!("{freq}x every {} {unit}s", fmt_number(period))
    }))
}

/// A medication as a `MedicationStatement` (the patient's list says what they take).
pub(crate) fn medication_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut m = base("MedicationStatement", id, fields);
    let status = match text_field(fields, "status") {
        Some("stopped") => "stopped",
        Some("inactive") => "completed",
        Some("active") | None => "active",
        Some(_) => "unknown",
    };
    m.insert("status".into(), status.into());
    if let Some(reason) = text_field(fields, "stop_reason") {
        m.insert("statusReason".into(), json!([{ "text": reason }]));
    }
    if let Some(name) = text_field(fields, "name") {
        m.insert("medicationCodeableConcept".into(), json!({ "text": name }));
    }
    let mut period = Map::new();
    if let Some(start) = text_field(fields, "started") {
        period.insert("start".into(), start.into());
    }
    if let Some(end) = text_field(fields, "stopped") {
        period.insert("end".into(), end.into());
    }
    if !period.is_empty() {
        m.insert("effectivePeriod".into(), Value::Object(period));
    }
    if let Some(prescriber) = text_field(fields, "prescriber") {
        m.insert(
            "informationSource".into(),
            json!({ "type": "Practitioner", "display": prescriber }),
        );
    }
    if let Some(reason) = text_field(fields, "reason") {
        m.insert("reasonCode".into(), json!([{ "text": reason }]));
    }
    if let Some(notes) = text_field(fields, "notes") {
        m.insert("note".into(), json!([{ "text": notes }]));
    }
    let mut dosage = Map::new();
    if let Some(schedule) = text_field(fields, "schedule") {
        dosage.insert("text".into(), schedule.into());
    }
    if let Some(route) = text_field(fields, "route") {
        dosage.insert("route".into(), json!({ "text": route }));
    }
    if let Some(dose) = text_field(fields, "dose") {
        // "250 mg" is a quantity; anything else ("1-2 tablets") travels as text.
        let (number, unit) = dose.split_once(' ').map_or((dose, None), |(n, u)| (n, Some(u)));
        match exact_number(number) {
            Some(n) if unit.is_none_or(|u| !u.is_empty() && u.trim() == u) => {
                let mut q = Map::new();
                q.insert("value".into(), Value::Number(n));
                if let Some(u) = unit {
                    q.insert("unit".into(), u.into());
                }
                dosage.insert("doseAndRate".into(), json!([{ "doseQuantity": q }]));
            }
            _ => {
                dosage.insert(
                    "extension".into(),
                    json!([ext_value("dose", "valueString", dose.into())]),
                );
            }
        }
    }
    if !dosage.is_empty() {
        m.insert("dosage".into(), json!([dosage]));
    }
    Value::Object(m)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    medication_to_fhir(id, fields)
}

/// A MedicationRequest of a bundle.
pub(crate) fn read_request(root: &At, cx: &Cx) -> Result<Mapping> {
    medication(root, cx, true)
}

/// A MedicationStatement of a bundle.
pub(crate) fn read_statement(root: &At, cx: &Cx) -> Result<Mapping> {
    medication(root, cx, false)
}
