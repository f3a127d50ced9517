//! `CarePlan`: a treatment plan, its goals as references to the goals' entries, both ways.

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
use crate::xhtml::*;

/// CarePlan → a treatment plan; its goals become the ids of the goals' entries.
pub(crate) fn care_plan(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("draft") => "draft",
        Some("active" | "on-hold" | "unknown") | None => "active",
        Some("revoked") => "revoked",
        Some("completed") => "completed",
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a care plan status; R4 has draft, active, on-hold, revoked, completed, entered-in-error, unknown"
            )));
        }
    };
    let categories = root.get("category")?.items()?;
    let mut fields = Fields::new();
    let title = match root.get("title")?.text()? {
        Some(t) => t,
        None => labels(&root.get("category")?)?
            .into_iter()
            .next()
            .unwrap_or_else(|| "Care plan".into()),
    };
    fields.insert("title".into(), title.into());
    fields.insert("status".into(), status.into());
    if let Some(d) = discipline_in(&categories)? {
        fields.insert("discipline".into(), d.into());
    }
    let period = root.get("period")?;
    put(&mut fields, "start", date(&period, "start")?);
    put(&mut fields, "end", date(&period, "end")?);
    let mut activities = Vec::new();
    let mut frequency = None;
    for activity in root.get("activity")?.items()? {
        let detail = activity.get("detail")?;
        if frequency.is_none() {
            frequency = detail.get("scheduledString")?.text()?;
        }
        let label = match concept_label(&detail.get("code")?)? {
            Some(l) => Some(l),
            None => detail.get("description")?.text()?,
        };
        activities.extend(label);
    }
    put(&mut fields, "frequency", frequency);
    let mut goals = Vec::new();
    for g in root.get("goal")?.items()? {
        if let Some(id) = cx.entry_id(&g, "Goal")? {
            goals.push(Value::String(id));
        }
    }
    if !goals.is_empty() {
        fields.insert("goals".into(), Value::Array(goals));
    }
    let description = match root.get("description")?.text()? {
        Some(d) => Some(d),
        None => match root.get("text")?.get("div")?.str()? {
            Some(div) => Some(xhtml_text(div)).filter(|t| !t.is_empty()),
            None => (!activities.is_empty()).then(|| format!("Activities: {}.", activities.join("; "))),
        },
    };
    put(&mut fields, "description", description);
    Ok(Entry(Section::Plans, fields))
}

/// A plan as a `CarePlan`; `goal_ref` turns a goal's entry id into a Reference.
pub(crate) fn plan_to_fhir(id: &str, fields: &Fields, goal_ref: &dyn Fn(&str) -> Value) -> Value {
    let mut c = base("CarePlan", id, fields);
    let status = text_field(fields, "status")
        .filter(|s| matches!(*s, "draft" | "active" | "completed" | "revoked"))
        .unwrap_or("unknown");
    c.insert("status".into(), status.into());
    c.insert("intent".into(), "plan".into());
    if let Some(d) = text_field(fields, "discipline") {
        c.insert("category".into(), json!([discipline_concept(d)]));
    }
    if let Some(title) = text_field(fields, "title") {
        c.insert("title".into(), title.into());
    }
    if let Some(description) = text_field(fields, "description") {
        c.insert("description".into(), description.into());
    }
    let mut period = Map::new();
    for (key, field) in [("start", "start"), ("end", "end")] {
        if let Some(d) = text_field(fields, field) {
            period.insert(key.into(), d.into());
        }
    }
    if !period.is_empty() {
        c.insert("period".into(), Value::Object(period));
    }
    let goals: Vec<Value> = fields
        .get("goals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(goal_ref)
        .collect();
    if !goals.is_empty() {
        c.insert("goal".into(), Value::Array(goals));
    }
    if let Some(freq) = text_field(fields, "frequency") {
        c.insert(
            "activity".into(),
            json!([{ "detail": { "status": "scheduled", "scheduledString": freq } }]),
        );
    }
    Value::Object(c)
}

pub(crate) fn write(out: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    plan_to_fhir(id, fields, out.goal_ref)
}
