//! `Coverage`: insurance, both ways.

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

/// Coverage → insurance.
pub(crate) fn coverage(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("cancelled") => return Ok(Skip("cancelled")),
        Some("draft") => return Ok(Skip("draft")),
        Some("active") | None => {}
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a coverage status; R4 has active, cancelled, draft, entered-in-error"
            )));
        }
    }
    let mut payer = None;
    for p in root.get("payor")?.items()? {
        if payer.is_none() {
            payer = cx.name(&p)?;
        }
    }
    let Some(payer) = payer else {
        return Ok(Skip("payer not named"));
    };
    let mut member = root.get("subscriberId")?.text()?;
    for ident in root.get("identifier")?.items()? {
        let code = first_code(&ident.get("type")?)?;
        let value = ident.get("value")?.text()?;
        if member.is_none() && matches!(code.as_deref(), Some("MB" | "SN")) {
            member = value;
        }
    }
    if member.is_none() {
        member = match root.get("identifier")?.items()?.first() {
            Some(ident) => ident.get("value")?.text()?,
            None => None,
        };
    }
    let Some(member) = member else {
        return Ok(Skip("no member id"));
    };
    let mut fields = Fields::new();
    fields.insert("payer".into(), payer.into());
    fields.insert("member_id".into(), member.into());
    for class in root.get("class")?.items()? {
        let kind = first_code(&class.get("type")?)?;
        let value = class.get("value")?.text()?;
        let name = class.get("name")?.text()?;
        match kind.as_deref() {
            Some("group") if !fields.contains_key("group") => put(&mut fields, "group", value),
            Some("plan") if !fields.contains_key("plan") => put(&mut fields, "plan", name.or(value)),
            _ => {}
        }
    }
    put(&mut fields, "subscriber", cx.name(&root.get("subscriber")?)?);
    put(&mut fields, "relationship", concept_label(&root.get("relationship")?)?);
    let period = root.get("period")?;
    put(&mut fields, "start", date(&period, "start")?);
    put(&mut fields, "end", date(&period, "end")?);
    Ok(Entry(Section::Insurance, fields))
}

/// Insurance as a `Coverage`.
pub(crate) fn coverage_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut c = base("Coverage", id, fields);
    c.insert("status".into(), "active".into());
    if let Some(member) = text_field(fields, "member_id") {
        c.insert("subscriberId".into(), member.into());
    }
    if let Some(subscriber) = text_field(fields, "subscriber") {
        c.insert("subscriber".into(), json!({ "display": subscriber }));
    }
    if let Some(rel) = text_field(fields, "relationship") {
        c.insert("relationship".into(), json!({ "text": rel }));
    }
    let mut period = Map::new();
    for key in ["start", "end"] {
        if let Some(d) = text_field(fields, key) {
            period.insert(key.into(), d.into());
        }
    }
    if !period.is_empty() {
        c.insert("period".into(), Value::Object(period));
    }
    if let Some(payer) = text_field(fields, "payer") {
        c.insert("payor".into(), json!([{ "display": payer }]));
    }
    let mut classes = Vec::new();
    if let Some(group) = text_field(fields, "group") {
        classes.push(json!({ "type": { "coding": [{ "system": COVERAGE_CLASS, "code": "group" }] }, "value": group }));
    }
    if let Some(plan) = text_field(fields, "plan") {
        classes.push(
            json!({ "type": { "coding": [{ "system": COVERAGE_CLASS, "code": "plan" }] }, "value": plan, "name": plan }),
        );
    }
    if !classes.is_empty() {
        c.insert("class".into(), Value::Array(classes));
    }
    Value::Object(c)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    coverage_to_fhir(id, fields)
}
