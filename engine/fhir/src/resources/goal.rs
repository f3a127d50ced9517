//! `Goal`: a goal with its target and milestones, both ways.

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

/// Goal → a goal; targets with a text are milestones, the first other one is the target.
pub(crate) fn goal(root: &At, _cx: &Cx) -> Result<Mapping> {
    let lifecycle_at = root.get("lifecycleStatus")?;
    let lifecycle = lifecycle_at.text()?;
    let achieved = status_code(&root.get("achievementStatus")?)?;
    let status = match lifecycle.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("cancelled" | "rejected") => "discontinued",
        Some("on-hold") => "on-hold",
        Some("completed") => "met",
        Some("proposed" | "planned" | "accepted" | "active") | None => {
            if matches!(achieved.as_deref(), Some("achieved")) {
                "met"
            } else {
                "active"
            }
        }
        Some(other) => {
            return Err(lifecycle_at.fail(format!(
                "`{other}` is not a goal status; R4 has proposed, planned, accepted, active, on-hold, completed, cancelled, entered-in-error, rejected"
            )));
        }
    };
    let description = root.get("description")?;
    let Some(text) = concept_label(&description)? else {
        return Err(description.fail("has no text, display or code: a goal needs its words"));
    };
    let mut fields = Fields::new();
    fields.insert("goal".into(), text.into());
    fields.insert("status".into(), status.into());
    if let Some(d) = discipline_in(&root.get("category")?.items()?)? {
        fields.insert("discipline".into(), d.into());
    }
    let mut milestones = Vec::new();
    let mut main_seen = false;
    for target in root.get("target")?.items()? {
        let due = date(&target, "dueDate")?;
        if let Some(text) = target.get("detailString")?.text()? {
            let mut m = Map::new();
            m.insert("text".into(), text.into());
            if let Some(due) = due {
                m.insert("due".into(), due.into());
            }
            let done = match field_ext(&target, "done")? {
                Some(ext) => ext.get("valueBoolean")?.boolean()?.unwrap_or(false),
                None => false,
            };
            m.insert("done".into(), done.into());
            milestones.push(Value::Object(m));
        } else if !main_seen {
            main_seen = true;
            put(&mut fields, "target_date", due);
            let q = target.get("detailQuantity")?;
            if let Some(v) = q.get("value")?.float()? {
                fields.insert("target".into(), json_number(v));
            }
            put(&mut fields, "unit", q.get("unit")?.text()?);
        }
    }
    if !milestones.is_empty() {
        fields.insert("milestones".into(), Value::Array(milestones));
    }
    if let Some(ext) = field_ext(root, "baseline")?
        && let Some(v) = ext.get("valueDecimal")?.float()?
    {
        fields.insert("baseline".into(), json_number(v));
    }
    Ok(Entry(Section::Goals, fields))
}

/// A goal as a `Goal`: the target measure and date first, then one target per milestone.
///
/// Progress measurements are not written: they are the record's own observations, kept with
/// the goal.
pub(crate) fn goal_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut g = base("Goal", id, fields);
    let (lifecycle, achieved) = match text_field(fields, "status") {
        Some("met") => ("completed", Some("achieved")),
        Some("discontinued") => ("cancelled", None),
        Some("on-hold") => ("on-hold", None),
        _ => ("active", None),
    };
    g.insert("lifecycleStatus".into(), lifecycle.into());
    if let Some(a) = achieved {
        g.insert(
            "achievementStatus".into(),
            json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": a }] }),
        );
    }
    if let Some(d) = text_field(fields, "discipline") {
        g.insert("category".into(), json!([discipline_concept(d)]));
    }
    if let Some(goal) = text_field(fields, "goal") {
        g.insert("description".into(), json!({ "text": goal }));
    }
    let mut targets = Vec::new();
    let target = number_field(fields, "target");
    let due = text_field(fields, "target_date");
    if target.is_some() || due.is_some() {
        let mut t = Map::new();
        if let Some(v) = target {
            // FHIR requires a measure beside a detail.
            t.insert("measure".into(), json!({ "text": "Progress towards the goal" }));
            let mut q = Map::new();
            q.insert("value".into(), json_number(v));
            if let Some(u) = text_field(fields, "unit") {
                q.insert("unit".into(), u.into());
            }
            t.insert("detailQuantity".into(), Value::Object(q));
        }
        if let Some(due) = due {
            t.insert("dueDate".into(), due.into());
        }
        targets.push(Value::Object(t));
    }
    for m in fields.get("milestones").and_then(Value::as_array).into_iter().flatten() {
        let Some(text) = m.get("text").and_then(Value::as_str) else {
            continue;
        };
        let mut t = Map::new();
        t.insert("measure".into(), json!({ "text": "Milestone" }));
        t.insert("detailString".into(), text.into());
        if let Some(due) = m.get("due").and_then(Value::as_str) {
            t.insert("dueDate".into(), due.into());
        }
        if m.get("done").and_then(Value::as_bool) == Some(true) {
            t.insert(
                "extension".into(),
                json!([ext_value("done", "valueBoolean", true.into())]),
            );
        }
        targets.push(Value::Object(t));
    }
    if !targets.is_empty() {
        g.insert("target".into(), Value::Array(targets));
    }
    if let Some(b) = number_field(fields, "baseline") {
        g.insert(
            "extension".into(),
            json!([ext_value("baseline", "valueDecimal", json_number(b))]),
        );
    }
    Value::Object(g)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    goal_to_fhir(id, fields)
}
