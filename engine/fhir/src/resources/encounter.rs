//! `Encounter`: a visit that happened (or is planned, or under way), both ways.

use chrono::{NaiveDateTime, NaiveTime};
use serde_json::{Value, json};

use phr_model::entry::{ENCOUNTER_STATUSES, parse_datetime};
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::resources::procedure::joined;

/// The code system of an encounter's class (AMB, EMER, IMP, HH, VR, …).
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// `UNK`: the class R4 requires, when the record does not know it.
const NULL_FLAVOR: &str = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";

/// Encounter → an encounter: its kind, setting, status, period, reasons, clinician and place.
pub(crate) fn encounter(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        None => "finished".to_string(),
        Some(s) if ENCOUNTER_STATUSES.contains(&s) => s.to_string(),
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not an encounter status; R4 has {}, entered-in-error",
                ENCOUNTER_STATUSES.join(", ")
            )));
        }
    };
    let period = root.get("period")?;
    let Some((start, end)) = period_of(&period)? else {
        return Ok(Skip("no date"));
    };
    let mut fields = Fields::new();
    let class = root.get("class")?;
    let types = root.get("type")?.items()?;
    let first_type = types.first();
    let kind = match labels(&root.get("type")?)?.into_iter().next() {
        Some(k) => k,
        None => match concept_label(&root.get("serviceType")?)? {
            Some(k) => k,
            None => match class.get("display")?.text()? {
                Some(d) => d,
                None => class.get("code")?.text()?.unwrap_or_else(|| "Visit".into()),
            },
        },
    };
    fields.insert("type".into(), kind.into());
    if let Some(t) = first_type {
        put(&mut fields, "code", coded(t)?);
    }
    if class.get("system")?.str()? != Some(NULL_FLAVOR) {
        put(&mut fields, "class", class.get("code")?.text()?);
    }
    fields.insert("status".into(), status.into());
    fields.insert("start".into(), format_datetime(start).into());
    put(&mut fields, "end", end.map(format_datetime));
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    put(&mut fields, "reason", joined(reasons));
    let mut people = Vec::new();
    for p in root.get("participant")?.items()? {
        people.push(p.get("individual")?);
    }
    put(&mut fields, "clinician", cx.person(&people)?);
    let mut place = None;
    for l in root.get("location")?.items()? {
        if place.is_none() {
            place = cx.name(&l.get("location")?)?;
        }
    }
    let place = match place {
        Some(p) => Some(p),
        None => cx.name(&root.get("serviceProvider")?)?,
    };
    put(&mut fields, "location", place);
    Ok(Entry(Section::Encounters, fields))
}

/// The wall-clock start and end of a period (a date alone starts at midnight); `None` without a
/// start. An end before the start is refused, compared in UTC when both have offsets; an end
/// whose wall-clock time reads before the start only because its offset differs is left out.
fn period_of(period: &At) -> Result<Option<(NaiveDateTime, Option<NaiveDateTime>)>> {
    let start_at = period.get("start")?;
    let Some(start_text) = start_at.text()? else {
        return Ok(None);
    };
    let start = parse_when(&start_text).ok_or_else(|| start_at.fail(format!("`{start_text}` {BAD_DATE}")))?;
    let end_at = period.get("end")?;
    let end = match end_at.text()? {
        Some(t) => Some(parse_when(&t).ok_or_else(|| end_at.fail(format!("`{t}` {BAD_DATE}")))?),
        None => None,
    };
    let local = |w: When| w.datetime().unwrap_or_else(|| w.date.and_time(NaiveTime::MIN));
    let Some(end) = end else {
        return Ok(Some((local(start), None)));
    };
    let (s, e) = match (start.offset, end.offset) {
        (Some(a), Some(b)) => (utc(local(start), a), utc(local(end), b)),
        _ => (Some(local(start)), Some(local(end))),
    };
    if let Some((s, e)) = s.zip(e)
        && e < s
    {
        return Err(end_at.fail("is before period.start"));
    }
    let end = Some(local(end)).filter(|e| *e >= local(start));
    Ok(Some((local(start), end)))
}

/// An encounter as an `Encounter`; wall-clock times go out as instants in `out.zone`.
pub(crate) fn encounter_to_fhir(out: &Out, id: &str, fields: &Fields) -> Value {
    let mut e = base("Encounter", id, fields);
    e.insert(
        "status".into(),
        text_field(fields, "status").unwrap_or("finished").into(),
    );
    let class = match text_field(fields, "class") {
        Some(code) => json!({ "system": ACT_CODE, "code": code }),
        None => json!({ "system": NULL_FLAVOR, "code": "UNK" }),
    };
    e.insert("class".into(), class);
    if let Some(kind) = concept(text_field(fields, "code"), text_field(fields, "type")) {
        e.insert("type".into(), json!([kind]));
    }
    let when = |key: &str| {
        text_field(fields, key)
            .and_then(|t| parse_datetime(t).ok())
            .map(|t| out.zone.instant(t))
    };
    let mut period = serde_json::Map::new();
    for key in ["start", "end"] {
        if let Some(t) = when(key) {
            period.insert(key.into(), t.into());
        }
    }
    if !period.is_empty() {
        e.insert("period".into(), Value::Object(period));
    }
    if let Some(reason) = text_field(fields, "reason") {
        e.insert("reasonCode".into(), json!([{ "text": reason }]));
    }
    if let Some(who) = text_field(fields, "clinician") {
        e.insert("participant".into(), json!([{ "individual": named(who) }]));
    }
    if let Some(place) = text_field(fields, "location") {
        e.insert("location".into(), json!([{ "location": named(place) }]));
    }
    Value::Object(e)
}

pub(crate) fn write(out: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    encounter_to_fhir(out, id, fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    #[test]
    fn a_synthea_encounter_becomes_an_encounter_and_goes_back_the_same() {
        let res = json!({
            "resourceType": "Encounter", "id": "e1", "status": "finished",
            "class": { "system": ACT_CODE, "code": "AMB" },
            "type": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "185345009", "display": "Encounter for symptom" }],
                       "text": "Encounter for symptom" }],
            "participant": [{ "individual": { "reference": "Practitioner/9", "display": "Dr. Ames" } }],
            "period": { "start": "2011-05-11T15:44:30+00:00", "end": "2011-05-11T15:59:30+00:00" },
            "reasonCode": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "444814009", "display": "Viral sinusitis (disorder)" }] }],
            "serviceProvider": { "display": "Sunrise Clinic" }
        });
        let fields = read_entry(&res, Section::Encounters);
        assert_eq!(fields["type"], "Encounter for symptom");
        assert_eq!(fields["code"], "http://snomed.info/sct|185345009");
        assert_eq!(
            (fields["class"].as_str(), fields["status"].as_str()),
            (Some("AMB"), Some("finished"))
        );
        assert_eq!(
            (fields["start"].as_str(), fields["end"].as_str()),
            (Some("2011-05-11T15:44:30"), Some("2011-05-11T15:59:30"))
        );
        assert_eq!(fields["reason"], "Viral sinusitis (disorder)");
        assert_eq!(
            (fields["clinician"].as_str(), fields["location"].as_str()),
            (Some("Dr. Ames"), Some("Sunrise Clinic"))
        );
        let out = encounter_to_fhir(&Out::default(), "x", &fields);
        assert_eq!(out["period"]["start"], "2011-05-11T15:44:30Z");
        assert_eq!(read_entry(&out, Section::Encounters), fields, "{out:#}");
    }

    #[test]
    fn an_encounter_without_a_class_says_unknown_and_a_bad_period_is_named() {
        let typed = phr_model::entry::validate(
            Section::Encounters,
            &fields(json!({ "type": "Home visit", "start": "2024-03-02T10:00:00" })),
        )
        .unwrap();
        let out = encounter_to_fhir(&Out::default(), "h", &typed);
        assert_eq!(out["class"]["code"], "UNK");
        let bad = json!({ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" },
            "period": { "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T09:00:00Z" } });
        assert_eq!(fault(&bad).0, "Encounter.period.end");
    }
}
