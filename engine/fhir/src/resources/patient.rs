//! `Patient`: the record's profile, both ways.

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

/// Patient → the profile's fields. `name` is left out when the resource gives none: an
/// existing profile keeps its own, and a new one is refused by the caller.
pub(crate) fn patient(root: &At, cx: &Cx) -> Result<Mapping> {
    let mut fields = Fields::new();
    put(&mut fields, "name", human_name(&root.get("name")?)?);
    put(&mut fields, "dob", date(root, "birthDate")?);
    let gender = root.get("gender")?;
    if let Some(g) = gender.text()? {
        if !matches!(g.as_str(), "female" | "male" | "other" | "unknown") {
            return Err(gender.fail(format!(
                "`{g}` is not a FHIR gender; R4 has female, male, other, unknown"
            )));
        }
        fields.insert("sex".into(), g.into());
    }
    let mut language = None;
    for comm in root.get("communication")?.items()? {
        let label = match concept_label(&comm.get("language")?)? {
            Some(l) => Some(l),
            None => first_code(&comm.get("language")?)?,
        };
        if comm.get("preferred")?.boolean()? == Some(true) || language.is_none() {
            language = label.or(language);
        }
    }
    put(&mut fields, "language", language);
    let telecom_at = root.get("telecom")?;
    put(&mut fields, "phone", telecom(&telecom_at, "phone")?);
    put(&mut fields, "email", telecom(&telecom_at, "email")?);
    put(&mut fields, "address", address_text(&root.get("address")?)?);

    let mut guardians = Vec::new();
    let mut contacts = Vec::new();
    for contact in root.get("contact")?.items()? {
        let name = match name_text(&contact.get("name")?)? {
            Some(n) => Some(n),
            None => cx.name(&contact.get("organization")?)?,
        };
        let Some(name) = name else { continue };
        let mut guardian = false;
        let mut relationship = Vec::new();
        for concept in contact.get("relationship")?.items()? {
            let mut marker_only = true;
            for c in codings(&concept)? {
                match (c.system.as_deref(), c.code.as_deref()) {
                    (_, Some("GUARD")) => guardian = true,
                    (Some(CONTACT_ROLE), Some("C")) => {}
                    _ => marker_only = false,
                }
            }
            match concept.get("text")?.text()? {
                Some(text) => {
                    guardian |= text.to_lowercase().contains("guardian");
                    relationship.push(text);
                }
                None if !marker_only => relationship.extend(concept_label(&concept)?),
                None => {}
            }
        }
        let mut item = Map::new();
        item.insert("name".into(), name.into());
        if !relationship.is_empty() {
            item.insert("relationship".into(), relationship.join(", ").into());
        }
        let points = contact.get("telecom")?;
        if let Some(phone) = telecom(&points, "phone")? {
            item.insert("phone".into(), phone.into());
        }
        if let Some(email) = telecom(&points, "email")? {
            item.insert("email".into(), email.into());
        }
        if guardian {
            guardians.push(Value::Object(item));
        } else {
            contacts.push(Value::Object(item));
        }
    }
    if !guardians.is_empty() {
        fields.insert("guardians".into(), Value::Array(guardians));
    }
    if !contacts.is_empty() {
        fields.insert("contacts".into(), Value::Array(contacts));
    }
    Ok(Entry(Section::Profile, fields))
}

/// The profile as a `Patient`.
pub(crate) fn patient_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut p = base("Patient", id, fields);
    if let Some(name) = text_field(fields, "name") {
        p.insert("name".into(), json!([{ "use": "official", "text": name }]));
    }
    let mut points = Vec::new();
    if let Some(phone) = text_field(fields, "phone") {
        points.push(json!({ "system": "phone", "value": phone }));
    }
    if let Some(email) = text_field(fields, "email") {
        points.push(json!({ "system": "email", "value": email }));
    }
    if !points.is_empty() {
        p.insert("telecom".into(), Value::Array(points));
    }
    if let Some(sex) = text_field(fields, "sex") {
        p.insert("gender".into(), sex.into());
    }
    if let Some(dob) = text_field(fields, "dob") {
        p.insert("birthDate".into(), dob.into());
    }
    if let Some(address) = text_field(fields, "address") {
        p.insert("address".into(), json!([{ "use": "home", "text": address }]));
    }
    let mut contacts = Vec::new();
    for (key, marker) in [
        (
            "guardians",
            json!({ "coding": [{ "system": ROLE_CODE, "code": "GUARD", "display": "guardian" }] }),
        ),
        (
            "contacts",
            json!({ "coding": [{ "system": CONTACT_ROLE, "code": "C", "display": "Emergency Contact" }] }),
        ),
    ] {
        for person in fields.get(key).and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = person.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut relationship = vec![marker.clone()];
            if let Some(r) = person.get("relationship").and_then(Value::as_str) {
                relationship.push(json!({ "text": r }));
            }
            let mut c = Map::new();
            c.insert("relationship".into(), Value::Array(relationship));
            c.insert("name".into(), json!({ "text": name }));
            let mut points = Vec::new();
            if let Some(phone) = person.get("phone").and_then(Value::as_str) {
                points.push(json!({ "system": "phone", "value": phone }));
            }
            if let Some(email) = person.get("email").and_then(Value::as_str) {
                points.push(json!({ "system": "email", "value": email }));
            }
            if !points.is_empty() {
                c.insert("telecom".into(), Value::Array(points));
            }
            contacts.push(Value::Object(c));
        }
    }
    if !contacts.is_empty() {
        p.insert("contact".into(), Value::Array(contacts));
    }
    if let Some(language) = text_field(fields, "language") {
        p.insert(
            "communication".into(),
            json!([{ "language": { "text": language }, "preferred": true }]),
        );
    }
    Value::Object(p)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    patient_to_fhir(id, fields)
}
