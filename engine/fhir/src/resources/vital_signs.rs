//! `Observation` of category `vital-signs`: a vital sign, both ways, with its components (a
//! blood pressure's systolic and diastolic) as separate values with their units.

use serde_json::{Map, Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::observation::{final_observation, has_any_value, observation_value, value_element};

/// Whether an Observation is filed under the category `vital-signs`.
pub(crate) fn is_vital_sign(root: &At) -> Result<bool> {
    for category in root.get("category")?.items()? {
        for c in codings(&category)? {
            if c.code.as_deref() == Some("vital-signs") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Observation → a vital sign: what was measured, its code, day, value and unit, and each
/// component with its own; one without any value or date holds nothing to keep.
pub(crate) fn vital_sign(root: &At) -> Result<Mapping> {
    match root.get("status")?.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("cancelled") => return Ok(Skip("cancelled")),
        _ => {}
    }
    if !has_any_value(root.value.unwrap_or(&Value::Null)) {
        return Ok(Skip("no value"));
    }
    let Some(day) = first_date(&[
        root.get("effectiveDateTime")?,
        root.get("effectivePeriod")?.get("start")?,
        root.get("effectiveInstant")?,
        root.get("issued")?,
    ])?
    else {
        return Ok(Skip("no date"));
    };
    let code = root.get("code")?;
    let name = concept_label(&code)?.ok_or_else(|| code.fail("names nothing measured: it needs a text or a coding"))?;
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());
    put(&mut fields, "code", coded(&code)?);
    fields.insert("date".into(), day.into());
    if let Some((value, unit)) = observation_value(root)? {
        fields.insert("value".into(), value.into());
        put(&mut fields, "unit", unit);
    }
    let mut parts = Vec::new();
    for component in root.get("component")?.items()? {
        let Some((value, unit)) = observation_value(&component)? else {
            continue;
        };
        let code = component.get("code")?;
        let Some(name) = concept_label(&code)? else { continue };
        let mut part = Map::new();
        part.insert("name".into(), name.into());
        part.insert("value".into(), value.into());
        put(&mut part, "unit", unit);
        put(&mut part, "code", coded(&code)?);
        parts.push(Value::Object(part));
    }
    if !parts.is_empty() {
        fields.insert("components".into(), Value::Array(parts));
    }
    put(&mut fields, "notes", paragraphs(note_texts(root)?));
    Ok(Entry(Section::Vitals, fields))
}

/// A vital sign as an `Observation` (category vital-signs, status final).
pub(crate) fn vital_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut obs = final_observation(id, fields, ("vital-signs", "Vital Signs"));
    let code = concept(text_field(fields, "code"), text_field(fields, "name")).unwrap_or_else(|| json!({}));
    obs.insert("code".into(), code);
    if let Some(day) = text_field(fields, "date") {
        obs.insert("effectiveDateTime".into(), day.into());
    }
    if let Some(value) = text_field(fields, "value") {
        let (key, v) = value_element(value, text_field(fields, "unit"));
        obs.insert(key.into(), v);
    }
    let parts: Vec<Value> = fields
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(component_to_fhir)
        .collect();
    if !parts.is_empty() {
        obs.insert("component".into(), Value::Array(parts));
    }
    if let Some(notes) = text_field(fields, "notes") {
        obs.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(obs)
}

fn component_to_fhir(part: &Fields) -> Option<Value> {
    let code = concept(text_field(part, "code"), text_field(part, "name"))?;
    let mut c = Map::new();
    c.insert("code".into(), code);
    if let Some(value) = text_field(part, "value") {
        let (key, v) = value_element(value, text_field(part, "unit"));
        c.insert(key.into(), v);
    }
    Some(Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use crate::vocab::*;

    fn blood_pressure() -> Value {
        json!({
            "resourceType": "Observation", "id": "bp", "status": "final",
            "category": [{ "coding": [{ "system": CATEGORY, "code": "vital-signs" }] }],
            "code": { "coding": [{ "system": LOINC, "code": "85354-9" }], "text": "Blood pressure" },
            "effectiveDateTime": "2024-03-02T10:15:00-05:00",
            "component": [
                { "code": { "coding": [{ "system": LOINC, "code": "8480-6", "display": "Systolic Blood Pressure" }] },
                  "valueQuantity": { "value": 118.5, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]" } },
                { "code": { "coding": [{ "system": LOINC, "code": "8462-4", "display": "Diastolic Blood Pressure" }] },
                  "valueQuantity": { "value": 76, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]" } }
            ]
        })
    }

    #[test]
    fn a_blood_pressure_is_a_vital_sign_with_two_components_both_ways() {
        let fields = read_entry(&blood_pressure(), Section::Vitals);
        assert_eq!(fields["name"], "Blood pressure");
        assert_eq!(fields["code"], "http://loinc.org|85354-9");
        assert_eq!(fields["date"], "2024-03-02");
        assert!(fields.get("value").is_none());
        let parts = fields["components"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (
                parts[0]["name"].as_str(),
                parts[0]["value"].as_str(),
                parts[0]["unit"].as_str()
            ),
            (Some("Systolic Blood Pressure"), Some("118.5"), Some("mm[Hg]"))
        );
        assert_eq!(parts[1]["code"], "http://loinc.org|8462-4");
        let out = vital_to_fhir("x", &fields);
        assert_eq!(out["component"][0]["valueQuantity"]["value"], json!(118.5));
        assert_eq!(out["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(read_entry(&out, Section::Vitals), fields, "{out:#}");
    }

    #[test]
    fn a_weight_has_one_value_and_a_lab_stays_a_lab() {
        let mut weight = blood_pressure();
        weight["component"] = Value::Null;
        weight["code"] = json!({ "text": "Body weight" });
        weight["valueQuantity"] = json!({ "value": 20.25, "unit": "kg" });
        let fields = read_entry(&weight, Section::Vitals);
        assert_eq!(
            (fields["value"].as_str(), fields["unit"].as_str()),
            (Some("20.25"), Some("kg"))
        );
        assert_eq!(read_entry(&vital_to_fhir("w", &fields), Section::Vitals), fields);
        weight["category"] = json!([{ "coding": [{ "system": CATEGORY, "code": "laboratory" }] }]);
        read_entry(&weight, Section::Labs);
    }
}
