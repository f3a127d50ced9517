//! `Procedure`: read as a condition of the medical history ("Procedure: …"); not written.

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;

/// Procedure → a condition of the medical history, named "Procedure: …".
pub(crate) fn procedure(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = status_at.text()?;
    let (record_status, note) = match status.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("preparation" | "in-progress" | "on-hold") => ("active", None),
        Some("completed") | Some("unknown") | None => ("resolved", None),
        Some("not-done") => ("inactive", Some("Not done.")),
        Some("stopped") => ("inactive", Some("Stopped before it was completed.")),
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a procedure status; R4 has preparation, in-progress, not-done, on-hold, stopped, completed, entered-in-error, unknown"
            )));
        }
    };
    let code = root.get("code")?;
    let Some(label) = concept_label(&code)? else {
        return Ok(Skip("no code"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), format!("Procedure: {label}").into());
    put(&mut fields, "code", first_code(&code)?);
    fields.insert("status".into(), record_status.into());
    let period = root.get("performedPeriod")?;
    let start = first_date(&[root.get("performedDateTime")?, period.get("start")?])?;
    let end = first_date(&[period.get("end")?])?;
    put(&mut fields, "onset", start.clone());
    if record_status == "resolved" {
        put(&mut fields, "resolved", end.or(start));
    }
    let mut notes: Vec<String> = note.map(str::to_string).into_iter().collect();
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    if !reasons.is_empty() {
        notes.push(format!("Reason: {}.", reasons.join("; ")));
    }
    let mut performers = Vec::new();
    for p in root.get("performer")?.items()? {
        performers.extend(cx.name(&p.get("actor")?)?);
    }
    if !performers.is_empty() {
        notes.push(format!("Performed by {}.", performers.join(", ")));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Conditions, fields))
}
