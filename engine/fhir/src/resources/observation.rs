//! `Observation`: a lab result (values of every FHIR kind, panels, interpretation flags), or a
//! line of the caregivers' log (as phr exports it); written back as either.

use serde_json::{Map, Value, json};

use phr_model::entry;
use phr_model::error::{Error, Result};
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::{Out, vital_signs};
use crate::vocab::*;

/// The value elements [`crate::lab_from_fhir`] reads; an Observation with none of them (and no
/// component with one) has no result to keep.
pub(crate) const OBSERVATION_VALUES: &[&str] = &[
    "valueQuantity",
    "valueString",
    "valueDateTime",
    "valueTime",
    "valueCodeableConcept",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
];

/// A lab result from an `Observation`.
pub fn lab_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Observation"])?;
    let mut fields = Fields::new();
    let mut notes = Vec::new();

    let status = root.get("status")?;
    match status.text()?.as_deref() {
        Some(s @ ("cancelled" | "entered-in-error")) => {
            return Err(status.fail(format!("is `{s}`: there is no result to record")));
        }
        Some("preliminary") => notes.push("Preliminary result.".to_string()),
        _ => {}
    }

    let code = root.get("code")?;
    let test = concept_label(&code)?.ok_or_else(|| code.fail("names no test: it needs a text or a coding"))?;
    fields.insert("test".into(), test.into());
    if let Some(loinc) = codings(&code)?
        .into_iter()
        .find(|c| c.system.as_deref() == Some(LOINC))
        .and_then(|c| c.code)
    {
        fields.insert("code".into(), loinc.into());
    }

    let (value, unit) = match observation_value(&root)? {
        Some(found) => found,
        None => component_values(&root)?.ok_or_else(|| missing_value(&root))?,
    };
    fields.insert("value".into(), value.into());
    if let Some(unit) = unit {
        fields.insert("unit".into(), unit.into());
    }

    if let Some(range) = root.get("referenceRange")?.items()?.into_iter().next() {
        let low = range.get("low")?.get("value")?;
        let high = range.get("high")?.get("value")?;
        let lo = low.float()?;
        let hi = high.float()?;
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            return Err(range.fail(format!("low ({lo}) is above high ({hi})")));
        }
        if let Some(lo) = lo {
            fields.insert("low".into(), json_number(lo));
        }
        if let Some(hi) = hi {
            fields.insert("high".into(), json_number(hi));
        }
        if let Some(text) = range.get("text")?.text()? {
            fields.insert("range".into(), text.into());
        }
    }

    let date = first_date(&[
        root.get("effectiveDateTime")?,
        root.get("effectivePeriod")?.get("start")?,
        root.get("effectiveInstant")?,
        root.get("issued")?,
    ])?
    .ok_or_else(|| {
        fhir_error(
            format!("{}.effective[x]", root.path),
            "is missing, and so is issued: a lab result needs its date",
        )
    })?;
    fields.insert("date".into(), date.into());

    for concept in root.get("interpretation")?.items()? {
        match interpretation_of(&concept)? {
            Interpretation::Known(flag) => {
                fields.insert("interpretation".into(), flag.into());
                break;
            }
            Interpretation::Unknown(Some(label)) => notes.push(format!("Interpretation: {label}")),
            Interpretation::Unknown(None) => {}
        }
    }

    for note in root.get("note")?.items()? {
        if let Some(text) = note.get("text")?.text()? {
            notes.push(text);
        }
    }
    if !notes.is_empty() {
        fields.insert("notes".into(), notes.join("\n\n").into());
    }
    entry::validate(Section::Labs, &fields)
}

/// A lab result as an `Observation` (category laboratory, status final).
pub fn lab_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    let mut obs = final_observation(id, fields, ("laboratory", "Laboratory"));
    let mut code = Map::new();
    if let Some(loinc) = text_field(fields, "code") {
        code.insert("coding".into(), json!([{ "system": LOINC, "code": loinc }]));
    }
    if let Some(test) = text_field(fields, "test") {
        code.insert("text".into(), test.into());
    }
    obs.insert("code".into(), Value::Object(code));
    if let Some(date) = text_field(fields, "date") {
        obs.insert("effectiveDateTime".into(), date.into());
    }
    let unit = text_field(fields, "unit");
    if let Some(value) = text_field(fields, "value") {
        let (key, v) = value_element(value, unit);
        obs.insert(key.into(), v);
    }
    let mut range = Map::new();
    for key in ["low", "high"] {
        if let Some(x) = fields.get(key).and_then(Value::as_f64) {
            let mut q = Map::new();
            q.insert("value".into(), json_number(x));
            if let Some(unit) = unit {
                q.insert("unit".into(), unit.into());
            }
            range.insert(key.into(), Value::Object(q));
        }
    }
    if let Some(text) = text_field(fields, "range") {
        range.insert("text".into(), text.into());
    }
    if !range.is_empty() {
        obs.insert("referenceRange".into(), json!([range]));
    }
    if let Some((code, display)) = text_field(fields, "interpretation").and_then(interpretation_code) {
        obs.insert(
            "interpretation".into(),
            json!([{ "coding": [{ "system": INTERPRETATION, "code": code, "display": display }], "text": display }]),
        );
    }
    if let Some(notes) = text_field(fields, "notes") {
        obs.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(obs)
}

/// Whether an Observation has a value of its own or a component with one.
pub(crate) fn has_any_value(res: &Value) -> bool {
    let has_value = |v: &Value| {
        OBSERVATION_VALUES
            .iter()
            .any(|k| v.get(*k).is_some_and(|x| !x.is_null()))
    };
    let components = res.get("component").and_then(Value::as_array);
    has_value(res) || components.is_some_and(|cs| cs.iter().any(has_value))
}

/// An Observation's skeleton as phr writes one: final, in one category (code, display).
pub(crate) fn final_observation(id: &str, fields: &Fields, (code, display): (&str, &str)) -> Map<String, Value> {
    let mut obs = base("Observation", id, fields);
    obs.insert("status".into(), "final".into());
    obs.insert(
        "category".into(),
        json!([{ "coding": [{ "system": CATEGORY, "code": code, "display": display }] }]),
    );
    obs
}

/// A value as the record keeps it (text, with its unit) as an Observation's or a component's
/// `value[x]`: a `valueQuantity` when it is a number (with its comparator), else a
/// `valueString`, which has no unit of its own, so a unit given with one is kept beside it.
pub(crate) fn value_element(value: &str, unit: Option<&str>) -> (&'static str, Value) {
    let (comparator, number) = split_comparator(value);
    match exact_number(number) {
        Some(n) => {
            let mut q = Map::new();
            q.insert("value".into(), Value::Number(n));
            if !comparator.is_empty() {
                q.insert("comparator".into(), comparator.into());
            }
            if let Some(unit) = unit {
                q.insert("unit".into(), unit.into());
            }
            ("valueQuantity", Value::Object(q))
        }
        None => {
            let text = match unit {
                Some(unit) => format!("{value} {unit}"),
                None => value.to_string(),
            };
            ("valueString", text.into())
        }
    }
}

pub(crate) fn missing_value(root: &At) -> Error {
    let absent = root
        .get("dataAbsentReason")
        .and_then(|r| concept_label(&r))
        .ok()
        .flatten();
    let path = format!("{}.value[x]", root.path);
    match absent {
        Some(reason) => fhir_error(
            path,
            format!("is missing (dataAbsentReason: {reason}): a lab result needs a value"),
        ),
        None => fhir_error(
            path,
            "is missing: a lab result needs valueQuantity, valueString, valueCodeableConcept, valueBoolean, valueInteger, … or components with values",
        ),
    }
}

/// The value (as the record's text) and unit of an Observation or one of its components.
pub(crate) fn observation_value(at: &At) -> Result<Option<(String, Option<String>)>> {
    let quantity = at.get("valueQuantity")?;
    if quantity.present() {
        let value = quantity.get("value")?;
        let n = value
            .number()?
            .ok_or_else(|| value.fail("is missing: a quantity needs its number"))?;
        let comparator = quantity.get("comparator")?.text()?.unwrap_or_default();
        let unit = match quantity.get("unit")?.text()? {
            Some(unit) => Some(unit),
            None => quantity.get("code")?.text()?,
        };
        return Ok(Some((format!("{comparator}{n}"), unit)));
    }
    for key in ["valueString", "valueDateTime", "valueTime"] {
        if let Some(text) = at.get(key)?.text()? {
            return Ok(Some((text, None)));
        }
    }
    let concept = at.get("valueCodeableConcept")?;
    if concept.present() {
        let label = concept_label(&concept)?.ok_or_else(|| concept.fail("has no text, display or code"))?;
        return Ok(Some((label, None)));
    }
    if let Some(b) = at.get("valueBoolean")?.boolean()? {
        return Ok(Some((b.to_string(), None)));
    }
    if let Some(n) = at.get("valueInteger")?.number()? {
        return Ok(Some((n.to_string(), None)));
    }
    let range = at.get("valueRange")?;
    if range.present() {
        let low = range.get("low")?.get("value")?.number()?;
        let high = range.get("high")?.get("value")?.number()?;
        let unit = match range.get("low")?.get("unit")?.text()? {
            Some(u) => Some(u),
            None => range.get("high")?.get("unit")?.text()?,
        };
        let text = match (low, high) {
            (Some(l), Some(h)) => format!("{l}-{h}"),
            (Some(l), None) => format!(">={l}"),
            (None, Some(h)) => format!("<={h}"),
            (None, None) => return Err(range.fail("has neither low nor high")),
        };
        return Ok(Some((text, unit)));
    }
    let ratio = at.get("valueRatio")?;
    if ratio.present() {
        let numerator = ratio.get("numerator")?.get("value")?;
        let denominator = ratio.get("denominator")?.get("value")?;
        let n = numerator.number()?.ok_or_else(|| numerator.fail("is missing"))?;
        let d = denominator.number()?.ok_or_else(|| denominator.fail("is missing"))?;
        return Ok(Some((format!("{n}/{d}"), None)));
    }
    Ok(None)
}

/// A panel's values (blood pressure, …) as one text, each part named, when there is no value of
/// its own.
pub(crate) fn component_values(root: &At) -> Result<Option<(String, Option<String>)>> {
    let mut parts = Vec::new();
    for component in root.get("component")?.items()? {
        let Some((value, unit)) = observation_value(&component)? else {
            continue;
        };
        let name = concept_label(&component.get("code")?)?;
        let mut part = match name {
            Some(name) => format!("{name}: {value}"),
            None => value,
        };
        if let Some(unit) = unit {
            part = format!("{part} {unit}");
        }
        parts.push(part);
    }
    Ok((!parts.is_empty()).then(|| (parts.join("; "), None)))
}

pub(crate) enum Interpretation {
    Known(&'static str),
    /// Not a flag the record has; carries what it said, to keep in the notes.
    Unknown(Option<String>),
}

/// The record's flag for a v3 ObservationInterpretation (or v2 table 0078) code.
///
/// LL, HH and AA are the panic-limit codes ("critical low", "critical high", "critical
/// abnormal"), so they map to `critical` rather than plain low/high/abnormal.
pub(crate) fn interpretation_flag(code: &str) -> Option<&'static str> {
    match code {
        "N" | "NEG" | "ND" => Some("normal"),
        "L" | "LU" | "<" => Some("low"),
        "H" | "HU" | ">" => Some("high"),
        "A" | "POS" | "DET" => Some("abnormal"),
        "LL" | "HH" | "AA" => Some("critical"),
        _ => None,
    }
}

pub(crate) fn interpretation_of(concept: &At) -> Result<Interpretation> {
    let codings = codings(concept)?;
    for c in &codings {
        if let Some(flag) = c.code.as_deref().and_then(interpretation_flag) {
            return Ok(Interpretation::Known(flag));
        }
    }
    let label = concept_label(concept)?;
    // Words, not substrings: "below" says low, "yellow" says nothing.
    let flag = label.as_deref().and_then(|l| {
        let lower = l.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
        let any = |list: &[&str]| words.iter().any(|w| list.contains(w));
        if any(&["critical", "critically", "panic"]) {
            Some("critical")
        } else if any(&["abnormal"]) {
            Some("abnormal")
        } else if any(&["low", "below", "decreased"]) {
            Some("low")
        } else if any(&["high", "above", "elevated", "increased"]) {
            Some("high")
        } else if any(&["normal", "negative"]) {
            Some("normal")
        } else {
            None
        }
    });
    Ok(match flag {
        Some(flag) => Interpretation::Known(flag),
        None => Interpretation::Unknown(label),
    })
}

pub(crate) fn interpretation_code(flag: &str) -> Option<(&'static str, &'static str)> {
    match flag {
        "normal" => Some(("N", "Normal")),
        "low" => Some(("L", "Low")),
        "high" => Some(("H", "High")),
        "abnormal" => Some(("A", "Abnormal")),
        "critical" => Some(("AA", "Critical abnormal")),
        _ => None,
    }
}

/// An Observation → a lab result, unless it is one the record has no place for.
///
/// Social history (housing, sexual orientation, abuse…) and survey answers (smoking status,
/// screening scores) are not lab results, and the labs section is the one clinics are usually
/// granted: they are reported as not imported rather than filed where they would mislead.
pub(crate) fn observation(res: &Value, root: &At, from_phr: bool) -> Result<Mapping> {
    match root.get("status")?.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Mapping::Skip("entered-in-error")),
        Some("cancelled") => return Ok(Mapping::Skip("cancelled")),
        _ => {}
    }
    if !from_phr {
        for category in root.get("category")?.items()? {
            for c in codings(&category)? {
                match c.code.as_deref() {
                    Some("social-history") => return Ok(Mapping::Skip("social-history")),
                    Some("survey") => return Ok(Mapping::Skip("survey")),
                    _ => {}
                }
            }
        }
    }
    if !has_any_value(res) {
        return Ok(Mapping::Skip("no value"));
    }
    let dated = ["effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"]
        .iter()
        .any(|k| res.get(*k).is_some_and(|x| !x.is_null()));
    if !dated {
        return Ok(Mapping::Skip("no date"));
    }
    Ok(Mapping::Checked(Section::Labs, crate::lab_from_fhir(res)?))
}

/// An Observation of the caregivers' log (as [`log_to_fhir`] writes it).
pub(crate) fn log_entry(root: &At, _cx: &Cx) -> Result<Mapping> {
    let mut fields = Fields::new();
    let when = root.get("effectiveDateTime")?;
    let day = date_at(&when)?.ok_or_else(|| when.fail("is missing: a log entry needs its day"))?;
    fields.insert("date".into(), day.into());
    let value = root.get("valueString")?;
    let text = value
        .text()?
        .ok_or_else(|| value.fail("is missing: a log entry needs its text"))?;
    fields.insert("text".into(), text.into());
    for c in codings(&root.get("code")?)? {
        if c.system.as_deref() == Some(PHR_CAREGIVER_LOG) {
            put(&mut fields, "category", c.code);
        }
    }
    for component in root.get("component")?.items()? {
        if concept_label(&component.get("code")?)?.as_deref() == Some("Minutes")
            && let Some(m) = component.get("valueQuantity")?.get("value")?.float()?
        {
            fields.insert("minutes".into(), json_number(m));
        }
    }
    if let Some(p) = root.get("performer")?.items()?.first() {
        put(&mut fields, "by", p.get("display")?.text()?);
    }
    Ok(Entry(Section::CaregiverLog, fields))
}

/// A caregivers' log line as an `Observation`: the text is the value, the category a code.
pub(crate) fn log_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut o = final_observation(id, fields, ("activity", "Activity"));
    let category = text_field(fields, "category").unwrap_or("other");
    o.insert(
        "code".into(),
        json!({ "coding": [{ "system": PHR_CAREGIVER_LOG, "code": category }], "text": "Caregiver log" }),
    );
    if let Some(day) = text_field(fields, "date") {
        o.insert("effectiveDateTime".into(), day.into());
    }
    if let Some(by) = text_field(fields, "by") {
        o.insert("performer".into(), json!([{ "display": by }]));
    }
    if let Some(text) = text_field(fields, "text") {
        o.insert("valueString".into(), text.into());
    }
    if let Some(m) = number_field(fields, "minutes") {
        o.insert(
            "component".into(),
            json!([{ "code": { "text": "Minutes" }, "valueQuantity": { "value": json_number(m), "unit": "min", "system": UCUM, "code": "min" } }]),
        );
    }
    Value::Object(o)
}

/// An Observation of a bundle: a line of the caregivers' log or a vital sign when phr's tag
/// says so; from an EHR, a vital sign when its category is `vital-signs`; else a lab result.
pub(crate) fn read(root: &At, cx: &Cx) -> Result<Mapping> {
    match cx.tag {
        Some(Section::CaregiverLog) => log_entry(root, cx),
        Some(Section::Vitals) => vital_signs::vital_sign(root),
        None if vital_signs::is_vital_sign(root)? => vital_signs::vital_sign(root),
        _ => observation(cx.res, root, cx.from_phr),
    }
}

/// A lab result, a vital sign or a line of the caregivers' log, as an `Observation`.
pub(crate) fn write(_: &Out, section: Section, id: &str, fields: &Fields) -> Value {
    match section {
        Section::Labs => lab_to_fhir(id, fields),
        Section::Vitals => vital_signs::vital_to_fhir(id, fields),
        _ => log_to_fhir(id, fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use phr_model::entry;

    use phr_model::section::Section;
    use serde_json::{Value, json};
    // ----- labs -------------------------------------------------------------------------------

    #[test]
    fn an_observation_becomes_a_lab_result() {
        let lab = lab_from_fhir(&synthea_glucose()).unwrap();
        assert_eq!(lab["test"], "Glucose");
        assert_eq!(lab["code"], "2339-0");
        assert_eq!(lab["value"], "75.55529258694807");
        assert_eq!(lab["unit"], "mg/dL");
        assert_eq!(lab["low"], 70.0);
        assert_eq!(lab["high"], 99.0);
        assert_eq!(lab["date"], "2008-05-19");
        assert_eq!(lab["interpretation"], "normal");
    }

    #[test]
    fn every_kind_of_observation_value_is_read() {
        let base = json!({ "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": LOINC, "code": "5778-6", "display": "Color of Urine" }] },
            "effectivePeriod": { "start": "2024-02" } });
        let cases = [
            (json!({ "valueString": "Yellow" }), "Yellow", None),
            (
                json!({ "valueCodeableConcept": { "coding": [{ "display": "Straw" }] } }),
                "Straw",
                None,
            ),
            (json!({ "valueBoolean": false }), "false", None),
            (json!({ "valueInteger": 12 }), "12", None),
            (
                json!({ "valueQuantity": { "value": 5, "comparator": "<", "code": "mg/L" } }),
                "<5",
                Some("mg/L"),
            ),
            (
                json!({ "valueRange": { "low": { "value": 4, "unit": "%" }, "high": { "value": 6 } } }),
                "4-6",
                Some("%"),
            ),
            (
                json!({ "valueRatio": { "numerator": { "value": 1 }, "denominator": { "value": 160 } } }),
                "1/160",
                None,
            ),
        ];
        for (value, want, unit) in cases {
            let mut obs = base.clone();
            if let (Some(o), Value::Object(v)) = (obs.as_object_mut(), value) {
                o.extend(v);
            }
            let lab = lab_from_fhir(&obs).unwrap();
            assert_eq!(lab["test"], "Color of Urine");
            assert_eq!(lab["date"], "2024-02-01");
            assert_eq!(lab["value"], want);
            assert_eq!(lab.get("unit").and_then(Value::as_str), unit);
        }
    }

    #[test]
    fn a_panel_without_a_value_reads_its_components() {
        let bp = json!({
            "resourceType": "Observation", "status": "final",
            "code": { "text": "Blood Pressure" }, "effectiveDateTime": "2008-09-27T07:44:08+00:00",
            "component": [
                { "code": { "text": "Diastolic Blood Pressure" }, "valueQuantity": { "value": 80, "unit": "mm[Hg]" } },
                { "code": { "text": "Systolic Blood Pressure" }, "valueQuantity": { "value": 119, "unit": "mm[Hg]" } }
            ]
        });
        let lab = lab_from_fhir(&bp).unwrap();
        assert_eq!(
            lab["value"],
            "Diastolic Blood Pressure: 80 mm[Hg]; Systolic Blood Pressure: 119 mm[Hg]"
        );
    }

    #[test]
    fn interpretation_codes_map_to_flags() {
        let allowed = choices(Section::Labs, "interpretation");
        let cases = [
            ("N", "normal"),
            ("L", "low"),
            ("H", "high"),
            ("A", "abnormal"),
            ("LL", "critical"),
            ("HH", "critical"),
            ("AA", "critical"),
        ];
        for (code, flag) in cases {
            let mut obs = synthea_glucose();
            obs["interpretation"] = json!([{ "coding": [{ "system": INTERPRETATION, "code": code }] }]);
            assert_eq!(lab_from_fhir(&obs).unwrap()["interpretation"], flag, "{code}");
            assert!(allowed.contains(&flag));
        }
        let mut obs = synthea_glucose();
        obs["interpretation"] = json!([{ "text": "Critically high" }]);
        assert_eq!(lab_from_fhir(&obs).unwrap()["interpretation"], "critical");
        obs["interpretation"] = json!([{ "coding": [{ "code": "IE", "display": "Insufficient evidence" }] }]);
        let lab = lab_from_fhir(&obs).unwrap();
        assert!(!lab.contains_key("interpretation"));
        assert_eq!(lab["notes"], "Interpretation: Insufficient evidence");
        for flag in allowed {
            assert!(interpretation_code(flag).is_some(), "{flag}");
        }
    }

    #[test]
    fn labs_round_trip() {
        let cases = [
            json!({ "test": "Ferritin", "value": "12.5", "unit": "ng/mL", "low": 15, "high": 150, "date": "2024-03-01",
                    "code": "2276-4", "interpretation": "low", "notes": "Fasting sample." }),
            json!({ "test": "CRP", "value": "<5", "unit": "mg/L", "date": "2024-03-01" }),
            json!({ "test": "Strep A", "value": "Negative", "range": "Negative", "date": "2023-11-20", "interpretation": "normal" }),
            json!({ "test": "Lead", "value": "7", "unit": "ug/dL", "high": 3.5, "date": "2022-01-05", "interpretation": "critical" }),
            json!({ "test": "Hemoglobin", "value": "11.0", "unit": "g/dL", "date": "2022-01-05" }),
        ];
        for case in cases {
            let original = entry::validate(Section::Labs, &fields(case)).unwrap();
            let obs = lab_to_fhir("lab-1", &original);
            assert_eq!(lab_from_fhir(&obs).unwrap(), original, "{obs:#}");
        }
    }

    #[test]
    fn lab_errors_name_their_place() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                Box::new(|o| o["valueQuantity"] = Value::Null),
                "Observation.value[x]",
                "is missing",
            ),
            (
                Box::new(|o| o["valueQuantity"] = json!({ "unit": "mg/dL" })),
                "Observation.valueQuantity.value",
                "is missing",
            ),
            (
                Box::new(|o| o["valueQuantity"]["value"] = "75".into()),
                "Observation.valueQuantity.value",
                "must be a number, not a string",
            ),
            (
                Box::new(|o| o["code"] = "2339-0".into()),
                "Observation.code",
                "must be an object",
            ),
            (
                Box::new(|o| o["effectiveDateTime"] = "2008-02-30".into()),
                "Observation.effectiveDateTime",
                "not a FHIR date",
            ),
            (
                Box::new(|o| {
                    o["effectiveDateTime"] = Value::Null;
                    o["issued"] = Value::Null;
                }),
                "Observation.effective[x]",
                "needs its date",
            ),
            (
                Box::new(|o| o["referenceRange"][0]["low"]["value"] = 120.into()),
                "Observation.referenceRange[0]",
                "above high",
            ),
            (
                Box::new(|o| o["status"] = "entered-in-error".into()),
                "Observation.status",
                "entered-in-error",
            ),
            (
                Box::new(|o| o["resourceType"] = "Patient".into()),
                "resourceType",
                "is `Patient`; expected Observation",
            ),
        ];
        for (change, want_path, want_problem) in cases {
            let mut obs = synthea_glucose();
            change(&mut obs);
            let (path, problem) = fhir_fault(lab_from_fhir(&obs));
            assert_eq!(path, want_path);
            assert!(problem.contains(want_problem), "{path}: {problem}");
        }
        let err = lab_from_fhir(&json!([1, 2])).unwrap_err().to_string();
        assert_eq!(
            err,
            "the FHIR resource is invalid at `resourceType`: the body is an array, not a FHIR resource; expected Observation"
        );
    }

    #[test]
    fn observations_from_the_synthea_samples_map() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/fhir-samples");
        let Ok(listing) = std::fs::read_dir(&dir) else {
            eprintln!("skipped: no samples at {}", dir.display());
            return;
        };
        let mut files: Vec<_> = listing.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        let Some(first) = files.iter().find(|p| p.extension().is_some_and(|x| x == "json")) else {
            eprintln!("skipped: no sample bundles in {}", dir.display());
            return;
        };
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
        let mut mapped = 0;
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let res = &entry["resource"];
            if res["resourceType"] != "Observation" {
                continue;
            }
            let lab = lab_from_fhir(res).unwrap_or_else(|e| panic!("{e}: {res:#}"));
            if let Some(q) = res.get("valueQuantity") {
                assert_eq!(lab["value"], q["value"].to_string());
            }
            mapped += 1;
        }
        assert!(mapped > 0, "no Observation in {}", first.display());
    }
}
