//! FHIR R4 JSON resources to and from record entries.
//!
//! A clinic's EHR speaks FHIR; the record speaks entries (see [`phr_model::entry`]). This module maps
//! between the two for the sections a clinic writes into:
//!
//! | section        | from FHIR                                  | to FHIR                 |
//! |----------------|--------------------------------------------|-------------------------|
//! | `notes`        | `DocumentReference`, `Composition`         | `DocumentReference`     |
//! | `labs`         | `Observation`                              | `Observation`           |
//! | `appointments` | `Appointment`                              | `Appointment`           |
//! | `messages`     | `Communication`                            | `Communication`         |
//! | `forms`        | `Questionnaire`, `QuestionnaireResponse`   | the same two            |
//!
//! Everything here is pure: no I/O, no clock, no network (an attachment given only by `url` is
//! not fetched). Every `*_from_fhir` checks `resourceType`, reports the first problem as
//! [`Error::Fhir`] with a path such as `Observation.valueQuantity.value`, and returns the fields
//! as [`entry::validate`] normalized them, so the entry is known valid. The one exception is a
//! session note whose resource names no author or no discipline: those keys are left out for
//! the caller (the clinic node knows its staff) to fill, and the rest is validated.
//!
//! Times: the record keeps wall-clock times without a zone (`NaiveDateTime`), so an incoming
//! `2024-03-02T10:00:00-05:00` is kept as 10:00 on that day (the offset is dropped, not
//! applied), and outgoing date-times carry no offset.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use data_encoding::{BASE64, BASE64_NOPAD};
use serde_json::{Map, Number, Value, json};

use phr_model::entry;
use phr_model::error::{Error, Result};
use phr_model::section::Section;

mod bundle;
mod clinical;

pub use bundle::{Exported, ImportReport, Mapped, SectionCounts, export_bundle, map_bundle, read_bundle};

/// An entry's fields, as [`entry::validate`] takes and returns them.
type Fields = Map<String, Value>;

const LOINC: &str = "http://loinc.org";
const NUCC: &str = "http://nucc.org/provider-taxonomy";
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Standard extension giving a display text to a canonical reference.
const DISPLAY_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/display";

/// How deep nested sections and questionnaire items are followed; real documents use a few
/// levels, and a bound keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 32;

/// Resource types [`entry_from_fhir`] accepts.
const IMPORTABLE: &[&str] = &[
    "DocumentReference",
    "Composition",
    "Observation",
    "Appointment",
    "Communication",
    "Questionnaire",
    "QuestionnaireResponse",
];

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The entry id of the resource `resource_type/id` in the record: the first 8 bytes of
/// BLAKE3(`fhir:Type/id`) in hex. Derived, not random, so the same resource pushed or imported
/// again lands on the same entry instead of adding another.
pub fn entry_id(resource_type: &str, id: &str) -> String {
    let hash = phr_model::crypto::digest(format!("fhir:{resource_type}/{id}").as_bytes());
    hex::encode(&hash[..8])
}

/// The `resourceType` and `id` of a resource, when it has both, to key pushed resources stably.
pub fn source_of(res: &Value) -> Option<(String, String)> {
    let ty = res.get("resourceType")?.as_str()?.trim();
    let id = res.get("id")?.as_str()?.trim();
    (!ty.is_empty() && !id.is_empty()).then(|| (ty.to_string(), id.to_string()))
}

/// Map any supported resource to its section and validated entry fields.
pub fn entry_from_fhir(res: &Value) -> Result<(Section, Map<String, Value>)> {
    let (_, ty) = resource(res, IMPORTABLE)?;
    match ty {
        "DocumentReference" | "Composition" => Ok((Section::Notes, note_from_fhir(res)?)),
        "Observation" => Ok((Section::Labs, lab_from_fhir(res)?)),
        "Appointment" => Ok((Section::Appointments, appointment_from_fhir(res)?)),
        "Communication" => Ok((Section::Messages, message_from_fhir(res)?)),
        "Questionnaire" => Ok((Section::Forms, form_from_fhir(res)?)),
        _ => Ok((Section::Forms, form_response_from_fhir(res)?)),
    }
}

/// Map an entry of a section this module knows to its FHIR resource; `None` for other sections.
pub fn entry_to_fhir(section: Section, id: &str, fields: &Map<String, Value>) -> Option<Value> {
    match section {
        Section::Notes => Some(note_to_fhir(id, fields)),
        Section::Labs => Some(lab_to_fhir(id, fields)),
        Section::Appointments => Some(appointment_to_fhir(id, fields)),
        Section::Messages => Some(message_to_fhir(id, fields)),
        Section::Forms => Some(form_to_fhir(id, fields)),
        _ => None,
    }
}

/// A FHIR `Bundle` of type `searchset` holding the given resources as matches.
pub fn searchset(resources: Vec<Value>) -> Value {
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("type".into(), "searchset".into());
    bundle.insert("total".into(), resources.len().into());
    // FHIR JSON forbids empty arrays, so an empty result has no `entry` at all.
    if !resources.is_empty() {
        // Built by hand rather than with `json!`, which would copy every resource once more.
        let entries = resources
            .into_iter()
            .map(|resource| {
                let mut entry = Map::new();
                entry.insert("resource".into(), resource);
                entry.insert("search".into(), json!({ "mode": "match" }));
                Value::Object(entry)
            })
            .collect();
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(bundle)
}

/// The record's discipline word (`speech`, `aba`, …) named by a free text or display, if any.
pub fn discipline_from_text(text: &str) -> Option<&'static str> {
    // Lower-case words joined by single spaces, so "Speech-Language" and "speech language"
    // read alike; `has_word` matches abbreviations only as whole words.
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let flat = words.join(" ");
    let has = |part: &str| flat.contains(part);
    let has_word = |w: &str| words.iter().any(|x| x == w);
    // Order matters: a team note naming several disciplines is multidisciplinary, "physical
    // medicine" is physical therapy rather than medicine, "behavior analysis" is ABA rather
    // than behavioral health.
    if has("multidisciplin") || has("interdisciplin") || has("transdisciplin") || has("multi disciplin") {
        Some("multidisciplinary")
    } else if has("applied behavio")
        || has("behavior analy")
        || has("behaviour analy")
        || ["aba", "bcba", "bcaba", "rbt", "lba"].iter().any(|w| has_word(w))
    {
        Some("aba")
    } else if has("speech") || has("language patholog") || has("language therap") || has_word("slp") {
        Some("speech")
    } else if has("occupational") || ["ot", "otr", "otd", "cota"].iter().any(|w| has_word(w)) {
        Some("occupational")
    } else if has("physical therap")
        || has("physiotherap")
        || has("physical medicine")
        || has("physiatr")
        || ["pt", "dpt", "mpt", "pta"].iter().any(|w| has_word(w))
    {
        Some("physical")
    } else if has("psycholog")
        || has("psychiatr")
        || has("psychotherap")
        || has("mental health")
        || has("behavioral health")
        || has("behavioural health")
        || has("counsel")
        || ["lcsw", "lpc", "lmft", "psyd"].iter().any(|w| has_word(w))
    {
        Some("psychology")
    } else if has("pediatric")
        || has("paediatric")
        || has("medicine")
        || has("medical")
        || has("physician")
        || has("primary care")
        || has("family practice")
        || has("general practice")
        || has("nursing")
        || has("neurolog")
        || ["md", "rn", "np", "fnp", "cpnp"].iter().any(|w| has_word(w))
    {
        Some("medical")
    } else {
        None
    }
}

/// A session note from a `DocumentReference` or a `Composition`.
///
/// `clinician` and `discipline` are present only when the resource names them (an author that
/// is a practitioner; a discipline in `context.practiceSetting`, `type` or `category`); the
/// entry is valid once the caller has filled any that are missing.
pub fn note_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, ty) = resource(res, &["DocumentReference", "Composition"])?;
    let fields = if ty == "DocumentReference" {
        note_from_document(&root)?
    } else {
        note_from_composition(&root)?
    };
    validated_note(fields)
}

/// A session note as a `DocumentReference` whose content is the SOAP text, base64 `text/plain`.
///
/// Amendments are not part of this text: they are separate signed corrections, meant to travel
/// as their own resources (`relatesTo` = `appends`) once whole-Bundle export exists.
pub fn note_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    let mut doc = base("DocumentReference", id, fields);
    doc.insert("status".into(), "current".into());
    doc.insert("docStatus".into(), "final".into());
    doc.insert(
        "type".into(),
        json!({
            "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }],
            "text": "Progress note"
        }),
    );
    if let Some(clinician) = text_field(fields, "clinician") {
        doc.insert(
            "author".into(),
            json!([{ "type": "Practitioner", "display": clinician }]),
        );
    }
    let text = note_text(fields);
    doc.insert(
        "content".into(),
        json!([{ "attachment": { "contentType": "text/plain; charset=utf-8", "data": BASE64.encode(text.as_bytes()) } }]),
    );
    let mut context = Map::new();
    if let Some(date) = text_field(fields, "date") {
        context.insert("period".into(), json!({ "start": date }));
    }
    if let Some(discipline) = text_field(fields, "discipline") {
        context.insert(
            "practiceSetting".into(),
            json!({ "text": discipline_display(discipline) }),
        );
    }
    if !context.is_empty() {
        doc.insert("context".into(), Value::Object(context));
    }
    Value::Object(doc)
}

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
    let mut obs = base("Observation", id, fields);
    obs.insert("status".into(), "final".into());
    obs.insert(
        "category".into(),
        json!([{ "coding": [{ "system": CATEGORY, "code": "laboratory", "display": "Laboratory" }] }]),
    );
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
                obs.insert("valueQuantity".into(), Value::Object(q));
            }
            // A string value has no unit of its own, so a unit given with one is kept beside it.
            None => {
                let text = match unit {
                    Some(unit) => format!("{value} {unit}"),
                    None => value.to_string(),
                };
                obs.insert("valueString".into(), text.into());
            }
        }
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

/// An appointment from an `Appointment`.
pub fn appointment_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Appointment"])?;
    let mut fields = Fields::new();
    let mut notes = Vec::new();

    let status_at = root.get("status")?;
    let fhir_status = status_at
        .text()?
        .ok_or_else(|| status_at.fail("is missing: FHIR requires an appointment status"))?;
    let status = appointment_status_from_fhir(&fhir_status).ok_or_else(|| {
        status_at.fail(format!(
            "`{fhir_status}` is not an appointment status; FHIR R4 has {}",
            FHIR_APPOINTMENT_STATUSES.join(", ")
        ))
    })?;
    fields.insert("status".into(), status.into());
    match fhir_status.as_str() {
        "noshow" => notes.push("No-show.".to_string()),
        "entered-in-error" => notes.push("Entered in error.".to_string()),
        _ => {}
    }

    let description = root.get("description")?.text()?;
    let mut reason = None;
    for concept in root.get("reasonCode")?.items()? {
        if reason.is_none() {
            reason = concept_label(&concept)?;
        }
    }
    for condition in root.get("reasonReference")?.items()? {
        if reason.is_none() {
            reason = condition.get("display")?.text()?;
        }
    }
    match (&reason, &description) {
        (Some(r), Some(d)) if r != d => notes.push(d.clone()),
        (None, Some(_)) => reason = description.clone(),
        _ => {}
    }
    let service_type = root.get("serviceType")?.items()?;
    let specialty = root.get("specialty")?.items()?;
    // Without a stated reason, the kind of visit is the best description of it.
    let mut kinds = service_type.clone();
    kinds.push(root.get("appointmentType")?);
    for concept in &kinds {
        if reason.is_none() {
            reason = concept_label(concept)?;
        }
    }
    let reason = reason.ok_or_else(|| {
        fhir_error(
            format!("{}.reasonCode", root.path),
            "is missing, and so is description: an appointment needs its reason",
        )
    })?;
    fields.insert("reason".into(), reason.into());

    let start_at = root.get("start")?;
    // A request may have no start yet, only the period the patient asked for.
    let requested_start = match root.get("requestedPeriod")?.items()?.first() {
        Some(period) => datetime_at(&period.get("start")?)?,
        None => None,
    };
    let (start, start_offset) = match datetime_at(&start_at)? {
        Some(found) => found,
        None => requested_start.ok_or_else(|| {
            start_at.fail("is missing (and there is no requestedPeriod.start): an appointment needs its time")
        })?,
    };
    fields.insert("start".into(), format_datetime(start).into());

    // `end` is checked even when minutesDuration is given, so a broken resource is refused.
    let end_at = root.get("end")?;
    let span = match datetime_at(&end_at)? {
        Some((end, end_offset)) => {
            let span = match (start_offset, end_offset) {
                (Some(a), Some(b)) => utc(end, b).zip(utc(start, a)).map(|(e, s)| e - s),
                _ => Some(end - start),
            };
            if span.is_some_and(|d| d <= TimeDelta::zero()) {
                return Err(end_at.fail("is not after start"));
            }
            span
        }
        None => None,
    };
    let duration = root.get("minutesDuration")?;
    let minutes = match duration.float()? {
        Some(m) if m <= 0.0 => {
            return Err(duration.fail(format!("must be a positive number of minutes, not {m}")));
        }
        Some(m) => Some(m),
        None => span.map(|d| d.num_seconds() as f64 / 60.0),
    };
    if let Some(minutes) = minutes {
        fields.insert("minutes".into(), json_number(minutes));
    }

    for participant in root.get("participant")?.items()? {
        let actor = participant.get("actor")?;
        let Some(display) = actor.get("display")?.text()? else {
            continue;
        };
        match reference_type(&actor)?.as_deref() {
            Some("Practitioner" | "PractitionerRole") if !fields.contains_key("clinician") => {
                fields.insert("clinician".into(), display.into());
            }
            Some("Location") if !fields.contains_key("location") => {
                fields.insert("location".into(), display.into());
            }
            _ => {}
        }
    }

    if let Some(discipline) = pick_discipline(&[specialty, service_type].concat(), &[])? {
        fields.insert("discipline".into(), discipline.into());
    }

    for key in ["comment", "patientInstruction"] {
        if let Some(text) = root.get(key)?.text()? {
            notes.push(text);
        }
    }
    if !notes.is_empty() {
        fields.insert("notes".into(), notes.join("\n\n").into());
    }
    entry::validate(Section::Appointments, &fields)
}

/// An appointment as an `Appointment`; `start` and `end` carry no offset (see the module docs).
pub fn appointment_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    let mut appt = base("Appointment", id, fields);
    let status = text_field(fields, "status").unwrap_or("requested");
    appt.insert(
        "status".into(),
        appointment_status_to_fhir(status).unwrap_or("proposed").into(),
    );
    if let Some(discipline) = text_field(fields, "discipline") {
        appt.insert(
            "serviceType".into(),
            json!([{ "text": discipline_display(discipline) }]),
        );
    }
    if let Some(reason) = text_field(fields, "reason") {
        appt.insert("description".into(), reason.into());
    }
    let start = text_field(fields, "start")
        .and_then(parse_when)
        .and_then(When::datetime);
    if let Some(start) = start {
        appt.insert("start".into(), format_datetime(start).into());
    }
    if let Some(minutes) = fields.get("minutes").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        let end = start.and_then(|s| {
            TimeDelta::try_milliseconds((minutes * 60_000.0).round() as i64).and_then(|d| s.checked_add_signed(d))
        });
        if let Some(end) = end {
            appt.insert("end".into(), format_datetime(end).into());
        }
        if minutes.fract() == 0.0 {
            appt.insert("minutesDuration".into(), json_number(minutes));
        }
    }
    if let Some(notes) = text_field(fields, "notes") {
        appt.insert("comment".into(), notes.into());
    }
    // Acceptance is the participant's side of the status: a request still needs their answer.
    let participant_status = if status == "requested" {
        "needs-action"
    } else {
        "accepted"
    };
    let mut participants = Vec::new();
    if let Some(clinician) = text_field(fields, "clinician") {
        participants
            .push(json!({ "actor": { "type": "Practitioner", "display": clinician }, "status": participant_status }));
    }
    if let Some(location) = text_field(fields, "location") {
        participants
            .push(json!({ "actor": { "type": "Location", "display": location }, "status": participant_status }));
    }
    if !participants.is_empty() {
        appt.insert("participant".into(), Value::Array(participants));
    }
    Value::Object(appt)
}

/// A form template (status `sent`) from a `Questionnaire`; nested groups are flattened.
pub fn form_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Questionnaire"])?;
    let mut fields = Fields::new();
    let title_at = root.get("title")?;
    let title = match title_at.text()? {
        Some(t) => t,
        None => root
            .get("name")?
            .text()?
            .ok_or_else(|| title_at.fail("is missing, and so is name: a form needs its title"))?,
    };
    fields.insert("title".into(), title.into());
    fields.insert("kind".into(), "template".into());
    fields.insert("status".into(), "sent".into());
    let mut questions = Vec::new();
    questionnaire_items(&root.get("item")?, 0, &mut questions)?;
    if !questions.is_empty() {
        fields.insert("questions".into(), Value::Array(questions));
    }
    entry::validate(Section::Forms, &fields)
}

/// A filled form from a `QuestionnaireResponse`; `template` is the questionnaire's id.
pub fn form_response_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["QuestionnaireResponse"])?;
    let mut fields = Fields::new();

    let questionnaire = root.get("questionnaire")?;
    let template = questionnaire
        .text()?
        .as_deref()
        .and_then(template_id)
        .ok_or_else(|| questionnaire.fail("is missing: a response must name the questionnaire it answers"))?;
    let mut title = None;
    for ext in root.get("_questionnaire")?.get("extension")?.items()? {
        if ext.get("url")?.str()? == Some(DISPLAY_EXTENSION) {
            title = ext.get("valueString")?.text()?;
        }
    }
    fields.insert(
        "title".into(),
        title.unwrap_or_else(|| format!("Response to {template}")).into(),
    );
    fields.insert("kind".into(), "response".into());
    fields.insert("template".into(), template.into());

    let status_at = root.get("status")?;
    let status = status_at
        .text()?
        .ok_or_else(|| status_at.fail("is missing: FHIR requires a response status"))?;
    let status = match status.as_str() {
        "completed" | "amended" => "completed",
        "in-progress" | "stopped" => "in-progress",
        "entered-in-error" => return Err(status_at.fail("is `entered-in-error`: there is no response to record")),
        other => {
            return Err(status_at.fail(format!(
                "`{other}` is not a response status; FHIR R4 has in-progress, completed, amended, entered-in-error, stopped"
            )));
        }
    };
    fields.insert("status".into(), status.into());

    let mut answers = Vec::new();
    response_items(&root.get("item")?, 0, &mut answers)?;
    if !answers.is_empty() {
        fields.insert("answers".into(), Value::Array(answers));
    }
    entry::validate(Section::Forms, &fields)
}

/// A form as a `Questionnaire` (template) or a `QuestionnaireResponse` (response, answers as text).
pub fn form_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    form_response_to_fhir(id, fields, None)
}

/// Like [`form_to_fhir`], typing a response's answers by the question kinds of its `template`.
///
/// With the template's fields, a `yesno` answer becomes `valueBoolean`, a `number` answer
/// `valueInteger` or `valueDecimal`, a `date` answer `valueDate`; an answer that does not parse
/// as its kind, or whose question is unknown, stays `valueString` so nothing is lost.
pub fn form_response_to_fhir(id: &str, fields: &Map<String, Value>, template: Option<&Map<String, Value>>) -> Value {
    if text_field(fields, "kind").unwrap_or("template") == "template" {
        return questionnaire_to_fhir(id, fields);
    }
    let mut qr = base("QuestionnaireResponse", id, fields);
    if let Some(template) = text_field(fields, "template") {
        qr.insert("questionnaire".into(), format!("Questionnaire/{template}").into());
        if let Some(title) = text_field(fields, "title") {
            qr.insert(
                "_questionnaire".into(),
                json!({ "extension": [{ "url": DISPLAY_EXTENSION, "valueString": title }] }),
            );
        }
    }
    let status = match text_field(fields, "status") {
        Some("completed") => "completed",
        _ => "in-progress",
    };
    qr.insert("status".into(), status.into());
    let kinds: Vec<(&str, &str)> = template
        .and_then(|t| t.get("questions"))
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(|q| Some((q.get("id")?.as_str()?, q.get("kind")?.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut items = Vec::new();
    for answer in fields.get("answers").and_then(Value::as_array).into_iter().flatten() {
        let (Some(question), Some(text)) = (
            answer.get("question").and_then(Value::as_str),
            answer.get("answer").and_then(Value::as_str),
        ) else {
            continue;
        };
        let kind = kinds.iter().find(|(q, _)| *q == question).map(|(_, k)| *k);
        items.push(json!({ "linkId": question, "answer": [typed_answer(kind, text)] }));
    }
    if !items.is_empty() {
        qr.insert("item".into(), Value::Array(items));
    }
    Value::Object(qr)
}

/// A message from a `Communication`.
///
/// The message entry has no date of its own (the record stamps `created`), so `sent` is checked
/// but not kept.
pub fn message_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Communication"])?;
    let mut fields = Fields::new();
    let status = root.get("status")?;
    if status.text()?.as_deref() == Some("entered-in-error") {
        return Err(status.fail("is `entered-in-error`: there is no message to record"));
    }

    let payload = root.get("payload")?;
    let mut parts = Vec::new();
    for item in payload.items()? {
        if let Some(text) = item.get("contentString")?.text()? {
            parts.push(text);
        } else if let Some(text) = attachment_text(&item.get("contentAttachment")?)? {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return Err(payload.fail("has no contentString (or inline text attachment): a message needs its text"));
    }
    fields.insert("body".into(), parts.join("\n\n").into());

    let from = root.get("sender")?.get("display")?.text()?;
    let mut to = Vec::new();
    for recipient in root.get("recipient")?.items()? {
        if let Some(name) = recipient.get("display")?.text()? {
            to.push(name);
        }
    }

    let mut thread = concept_label(&root.get("topic")?)?;
    for key in ["category", "reasonCode"] {
        for concept in root.get(key)?.items()? {
            if thread.is_none() {
                thread = concept_label(&concept)?;
            }
        }
    }
    // A message without any subject still belongs somewhere: its sender's thread.
    let thread = thread.unwrap_or_else(|| match &from {
        Some(name) => format!("Message from {name}"),
        None => "Message".to_string(),
    });
    fields.insert("thread".into(), thread.into());
    if let Some(from) = from {
        fields.insert("from".into(), from.into());
    }
    if !to.is_empty() {
        fields.insert("to".into(), to.join(", ").into());
    }
    // Checked so that a malformed resource is refused as a whole, not half-read.
    date_at(&root.get("sent")?)?;
    entry::validate(Section::Messages, &fields)
}

/// A message as a `Communication`; `sent` comes from the entry's `created` stamp when present.
pub fn message_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    let mut msg = base("Communication", id, fields);
    msg.insert("status".into(), "completed".into());
    if let Some(thread) = text_field(fields, "thread") {
        msg.insert("topic".into(), json!({ "text": thread }));
    }
    if let Some(created) = text_field(fields, "created").filter(|c| parse_when(c).is_some()) {
        msg.insert("sent".into(), created.into());
    }
    if let Some(from) = text_field(fields, "from") {
        msg.insert("sender".into(), json!({ "display": from }));
    }
    if let Some(to) = text_field(fields, "to") {
        msg.insert("recipient".into(), json!([{ "display": to }]));
    }
    if let Some(body) = text_field(fields, "body") {
        msg.insert("payload".into(), json!([{ "contentString": body }]));
    }
    Value::Object(msg)
}

// ---------------------------------------------------------------------------------------------
// Reading resources
// ---------------------------------------------------------------------------------------------

fn fhir_error(path: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::Fhir {
        path: path.into(),
        problem: problem.into(),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A place in the resource being read: the value there, if any, and its path for errors.
///
/// Absent keys and JSON `null` read as "not there"; a value of the wrong JSON type is an
/// error at its path, so the first malformed element is what the caller hears about.
#[derive(Clone, Debug)]
struct At<'a> {
    value: Option<&'a Value>,
    path: Path,
}

/// Where an element is: a chain of steps from a starting point, spelled out only when an
/// error names it (a bundle has tens of thousands of elements, and almost none are errors).
#[derive(Clone, Debug)]
struct Path(std::rc::Rc<Step>);

#[derive(Debug)]
enum Step {
    Start(String),
    Key(Path, &'static str),
    Index(Path, usize),
}

impl Path {
    fn new(start: impl Into<String>) -> Path {
        Path(std::rc::Rc::new(Step::Start(start.into())))
    }

    fn key(&self, key: &'static str) -> Path {
        Path(std::rc::Rc::new(Step::Key(self.clone(), key)))
    }

    fn index(&self, i: usize) -> Path {
        Path(std::rc::Rc::new(Step::Index(self.clone(), i)))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Step::Start(s) => f.write_str(s),
            Step::Key(parent, key) if parent.is_empty() => f.write_str(key),
            Step::Key(parent, key) => write!(f, "{parent}.{key}"),
            Step::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path {
    fn is_empty(&self) -> bool {
        matches!(&*self.0, Step::Start(s) if s.is_empty())
    }
}

impl<'a> At<'a> {
    fn fail(&self, problem: impl Into<String>) -> Error {
        fhir_error(self.path.to_string(), problem)
    }

    fn present(&self) -> bool {
        self.value.is_some()
    }

    fn get(&self, key: &'static str) -> Result<At<'a>> {
        let path = self.path.key(key);
        match self.value {
            None => Ok(At { value: None, path }),
            Some(Value::Object(map)) => Ok(At {
                value: map.get(key).filter(|v| !v.is_null()),
                path,
            }),
            Some(other) => Err(self.fail(format!("must be an object, not {}", describe(other)))),
        }
    }

    fn items(&self) -> Result<Vec<At<'a>>> {
        match self.value {
            None => Ok(Vec::new()),
            Some(Value::Array(list)) => Ok(list
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, v)| At {
                    value: Some(v),
                    path: self.path.index(i),
                })
                .collect()),
            Some(other) => Err(self.fail(format!("must be an array, not {}", describe(other)))),
        }
    }

    fn str(&self) -> Result<Option<&'a str>> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.fail(format!("must be a string, not {}", describe(other)))),
        }
    }

    /// The string here, trimmed; blank counts as absent (FHIR forbids empty strings anyway).
    fn text(&self) -> Result<Option<String>> {
        Ok(self.str()?.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
    }

    fn number(&self) -> Result<Option<&'a Number>> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            Some(other) => Err(self.fail(format!("must be a number, not {}", describe(other)))),
        }
    }

    fn float(&self) -> Result<Option<f64>> {
        match self.number()? {
            None => Ok(None),
            Some(n) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.fail(format!("`{n}` is not a usable number"))),
        }
    }

    fn boolean(&self) -> Result<Option<bool>> {
        match self.value {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.fail(format!("must be true or false, not {}", describe(other)))),
        }
    }
}

/// Check `resourceType` against the expected ones; the resource's root and its type.
fn resource<'a>(res: &'a Value, expected: &[&'static str]) -> Result<(At<'a>, &'static str)> {
    let want = expected.join(" or ");
    let Value::Object(map) = res else {
        return Err(fhir_error(
            "resourceType",
            format!("the body is {}, not a FHIR resource; expected {want}", describe(res)),
        ));
    };
    match map.get("resourceType") {
        None | Some(Value::Null) => Err(fhir_error("resourceType", format!("is missing; expected {want}"))),
        Some(Value::String(found)) => match expected.iter().find(|e| **e == found) {
            Some(ty) => Ok((
                At {
                    value: Some(res),
                    path: Path::new(*ty),
                },
                ty,
            )),
            None => Err(fhir_error("resourceType", format!("is `{found}`; expected {want}"))),
        },
        Some(other) => Err(fhir_error(
            "resourceType",
            format!("must be a string, not {}; expected {want}", describe(other)),
        )),
    }
}

struct Coding {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

fn codings(concept: &At) -> Result<Vec<Coding>> {
    let mut out = Vec::new();
    for coding in concept.get("coding")?.items()? {
        out.push(Coding {
            system: coding.get("system")?.text()?,
            code: coding.get("code")?.text()?,
            display: coding.get("display")?.text()?,
        });
    }
    Ok(out)
}

/// What a CodeableConcept says in words: its text, else a coding's display, else a code.
fn concept_label(concept: &At) -> Result<Option<String>> {
    if let Some(text) = concept.get("text")?.text()? {
        return Ok(Some(text));
    }
    let codings = codings(concept)?;
    Ok(codings
        .iter()
        .find_map(|c| c.display.clone())
        .or_else(|| codings.into_iter().find_map(|c| c.code)))
}

/// The resource type a Reference points at: its `type`, else read from `reference`.
fn reference_type(reference: &At) -> Result<Option<String>> {
    if let Some(ty) = reference.get("type")?.text()? {
        // `type` may be a bare name or a canonical URL ending in the name.
        return Ok(ty.rsplit('/').next().map(str::to_string));
    }
    let Some(target) = reference.get("reference")?.text()? else {
        return Ok(None);
    };
    // `Practitioner/123`, `https://ehr.example/fhir/Practitioner/123`, `…/_history/2`.
    let parts: Vec<&str> = target.split('/').collect();
    let at = parts.iter().position(|p| *p == "_history").unwrap_or(parts.len());
    Ok(at.checked_sub(2).and_then(|i| parts.get(i)).map(|s| s.to_string()))
}

/// The first author that is a person (or not said to be anything else) with a display name.
fn clinician_of(authors: &At) -> Result<Option<String>> {
    for author in authors.items()? {
        let Some(name) = author.get("display")?.text()? else {
            continue;
        };
        match reference_type(&author)?.as_deref() {
            None | Some("Practitioner" | "PractitionerRole") => return Ok(Some(name)),
            _ => {}
        }
    }
    Ok(None)
}

fn attachment_text(attachment: &At) -> Result<Option<String>> {
    let content_type = attachment.get("contentType")?.text()?.map(|t| {
        let bare = t.split(';').next().unwrap_or_default();
        bare.trim().to_ascii_lowercase()
    });
    let html = match content_type.as_deref() {
        None | Some("text/plain" | "text/markdown") => false,
        Some("text/html" | "application/xhtml+xml") => true,
        Some(_) => return Ok(None),
    };
    let data = attachment.get("data")?;
    let Some(encoded) = data.str()? else { return Ok(None) };
    let bytes = decode_base64(encoded).ok_or_else(|| data.fail("is not valid base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| data.fail("is not UTF-8 text"))?;
    let text = text.trim_start_matches('\u{feff}');
    let text = if html {
        xhtml_text(text)
    } else {
        text.trim().to_string()
    };
    Ok((!text.is_empty()).then_some(text))
}

fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    // FHIR asks for no whitespace in base64Binary, but wrapped base64 is common in the wild.
    let clean: Vec<u8> = encoded.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(&clean).ok().or_else(|| {
        let unpadded: &[u8] = clean.strip_suffix(b"==").or(clean.strip_suffix(b"=")).unwrap_or(&clean);
        BASE64_NOPAD.decode(unpadded).ok()
    })
}

/// Plain text of an XHTML narrative: tags dropped, block elements as line breaks, entities
/// decoded, runs of blanks collapsed.
fn xhtml_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "br",
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "table",
        "blockquote",
        "pre",
        "hr",
        "dt",
        "dd",
    ];
    // Line breaks in the source are layout, like spaces; lines come from the markup.
    let as_text = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let mut raw = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find(['<', '&']) {
        raw.push_str(&as_text(&rest[..open]));
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if rest.starts_with('<') {
            // Find the tag's end outside quoted attribute values.
            let mut quote = None;
            let mut end = rest.len();
            for (i, c) in rest.char_indices().skip(1) {
                match (quote, c) {
                    (None, '"' | '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, '>') => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let tag = rest.get(1..end).unwrap_or_default();
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            // A block starts a line (one, however many blocks meet); `br` always breaks.
            // Inline tags (b, i, span, …) join their text without a gap; cells get one.
            if name == "br" || (BLOCKS.contains(&name.as_str()) && !raw.trim_end_matches(' ').ends_with('\n')) {
                raw.push('\n');
            } else if name == "td" || name == "th" {
                raw.push(' ');
            }
            rest = rest.get(end + 1..).unwrap_or_default();
        } else {
            let entity_end = rest.char_indices().take(12).find(|(_, c)| *c == ';').map(|(i, _)| i);
            match entity_end.and_then(|end| decode_entity(&rest[1..end]).map(|c| (c, end))) {
                Some((c, end)) => {
                    raw.push(c);
                    rest = &rest[end + 1..];
                }
                None => {
                    raw.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    raw.push_str(&as_text(rest));
    let mut lines: Vec<String> = Vec::new();
    for line in raw.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() || lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(line);
        }
    }
    lines.join("\n").trim().to_string()
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dates and numbers
// ---------------------------------------------------------------------------------------------

/// A FHIR date, dateTime or instant, split into what the record keeps.
#[derive(Debug, Clone, Copy)]
struct When {
    date: NaiveDate,
    time: Option<NaiveTime>,
    offset: Option<FixedOffset>,
}

impl When {
    fn datetime(self) -> Option<NaiveDateTime> {
        self.time.map(|t| NaiveDateTime::new(self.date, t))
    }
}

const BAD_DATE: &str = "is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)";

/// Parse `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`; a partial
/// date stands for its first day, since the record keeps whole dates.
fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    let (day, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = day.split('-').collect();
    let (y, m, d) = match parts.as_slice() {
        [y] if digits(y, 4) => (*y, "1", "1"),
        [y, m] if digits(y, 4) && digits(m, 2) => (*y, *m, "1"),
        [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => (*y, *m, *d),
        _ => return None,
    };
    let year: i32 = y.parse().ok()?;
    if year < 1 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)?;
    let Some(clock) = clock else {
        return Some(When {
            date,
            time: None,
            offset: None,
        });
    };
    if parts.len() != 3 {
        return None;
    }
    let (clock, offset) = if let Some(c) = clock.strip_suffix('Z') {
        (c, FixedOffset::east_opt(0))
    } else if let Some(at) = clock.rfind(['+', '-']) {
        let zone = &clock[at..];
        let (sign, hm) = zone.split_at(1);
        let (h, mm) = hm.split_once(':')?;
        if !digits(h, 2) || !digits(mm, 2) {
            return None;
        }
        let (h, mm): (i32, i32) = (h.parse().ok()?, mm.parse().ok()?);
        if h > 14 || mm > 59 {
            return None;
        }
        let secs = (h * 3600 + mm * 60) * if sign == "-" { -1 } else { 1 };
        (&clock[..at], Some(FixedOffset::east_opt(secs)?))
    } else {
        (clock, None)
    };
    let well_formed = clock.len() >= 5 && clock.as_bytes().get(2) == Some(&b':');
    if !well_formed {
        return None;
    }
    let time = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
        .ok()?;
    Some(When {
        date,
        time: Some(time),
        offset,
    })
}

/// The date at `at` in the record's `YYYY-MM-DD` form.
fn date_at(at: &At) -> Result<Option<String>> {
    match at.text()? {
        None => Ok(None),
        Some(s) => match parse_when(&s) {
            Some(w) => Ok(Some(w.date.format("%Y-%m-%d").to_string())),
            None => Err(at.fail(format!("`{s}` {BAD_DATE}"))),
        },
    }
}

/// The first date found among `places`, in order; a malformed one is an error even if a later
/// place has a good one, since the resource is then not what it claims.
fn first_date(places: &[At]) -> Result<Option<String>> {
    for at in places {
        if let Some(date) = date_at(at)? {
            return Ok(Some(date));
        }
    }
    Ok(None)
}

/// A date and time at `at`, with its offset if it had one; a date without a time is refused.
fn datetime_at(at: &At) -> Result<Option<(NaiveDateTime, Option<FixedOffset>)>> {
    let Some(s) = at.text()? else { return Ok(None) };
    let when = parse_when(&s).ok_or_else(|| at.fail(format!("`{s}` {BAD_DATE}")))?;
    match when.datetime() {
        Some(dt) => Ok(Some((dt, when.offset))),
        None => Err(at.fail(format!("`{s}` has no time of day; an appointment needs one"))),
    }
}

fn utc(local: NaiveDateTime, offset: FixedOffset) -> Option<NaiveDateTime> {
    local.checked_sub_signed(TimeDelta::try_seconds(i64::from(offset.local_minus_utc()))?)
}

fn format_datetime(dt: NaiveDateTime) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A JSON number for `x`: whole values as integers, so `45.0` minutes goes out as `45`.
fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A JSON number that prints back exactly as `s`, so a value round-trips as the same text.
fn exact_number(s: &str) -> Option<Number> {
    if let Ok(i) = s.parse::<i64>() {
        let n = Number::from(i);
        if n.to_string() == s {
            return Some(n);
        }
    }
    let n = Number::from_f64(s.parse().ok()?)?;
    (n.to_string() == s).then_some(n)
}

fn split_comparator(value: &str) -> (&str, &str) {
    for c in ["<=", ">=", "<", ">"] {
        if let Some(rest) = value.strip_prefix(c) {
            return (c, rest);
        }
    }
    ("", value)
}

fn fmt_number(x: f64) -> String {
    match json_number(x) {
        Value::Number(n) => n.to_string(),
        _ => x.to_string(),
    }
}

fn text_field<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A resource skeleton: type, id, and `meta.lastUpdated` from the entry's `updated` stamp.
fn base(ty: &str, id: &str, fields: &Fields) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("resourceType".into(), ty.into());
    if !id.trim().is_empty() {
        r.insert("id".into(), id.trim().into());
    }
    // lastUpdated is an instant, which needs a time and a zone.
    if let Some(updated) =
        text_field(fields, "updated").filter(|u| parse_when(u).is_some_and(|w| w.time.is_some() && w.offset.is_some()))
    {
        r.insert("meta".into(), json!({ "lastUpdated": updated }));
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Disciplines
// ---------------------------------------------------------------------------------------------

/// How each discipline is named in outgoing resources; every name maps back to its word.
const DISCIPLINE_DISPLAY: &[(&str, &str)] = &[
    ("speech", "Speech-language pathology"),
    ("aba", "Applied behavior analysis"),
    ("occupational", "Occupational therapy"),
    ("physical", "Physical therapy"),
    ("psychology", "Psychology"),
    ("medical", "Medicine"),
    ("multidisciplinary", "Multidisciplinary team"),
    ("other", "Other"),
];

/// NUCC provider taxonomy codes, for codings that carry a code but no display.
const NUCC_DISCIPLINES: &[(&str, &str)] = &[
    ("235Z00000X", "speech"),
    ("103K00000X", "aba"),
    ("225X00000X", "occupational"),
    ("225100000X", "physical"),
    ("103T00000X", "psychology"),
    ("208000000X", "medical"),
    ("207Q00000X", "medical"),
];

fn discipline_display(word: &str) -> &str {
    DISCIPLINE_DISPLAY
        .iter()
        .find(|(w, _)| *w == word)
        .map_or(word, |(_, display)| display)
}

/// The discipline a CodeableConcept names, and whether it names anything at all.
fn concept_discipline(concept: &At) -> Result<(Option<&'static str>, bool)> {
    let text = concept.get("text")?.text()?;
    let codings = codings(concept)?;
    let mut named = text.is_some();
    let mut words: Vec<String> = text.into_iter().collect();
    for c in &codings {
        named |= c.display.is_some() || c.code.is_some();
        words.extend(c.display.clone());
    }
    if let Some(found) = words.iter().find_map(|w| discipline_from_text(w)) {
        return Ok((Some(found), true));
    }
    let by_code = codings.iter().find_map(|c| {
        let code = c.code.as_deref()?;
        (c.system.as_deref().is_none_or(|s| s == NUCC))
            .then(|| NUCC_DISCIPLINES.iter().find(|(k, _)| *k == code).map(|(_, w)| *w))
            .flatten()
    });
    Ok((by_code, named))
}

/// The discipline from `specialties` (which name a discipline by nature, so an unrecognized one
/// is `other`) and `kinds` (document types and categories, which only count when recognized).
fn pick_discipline(specialties: &[At], kinds: &[At]) -> Result<Option<&'static str>> {
    let mut named = false;
    for concept in specialties {
        let (found, any) = concept_discipline(concept)?;
        if found.is_some() {
            return Ok(found);
        }
        named |= any;
    }
    for concept in kinds {
        if let (Some(found), _) = concept_discipline(concept)? {
            return Ok(Some(found));
        }
    }
    Ok(named.then_some("other"))
}

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Soap {
    Subjective,
    Objective,
    Assessment,
    Plan,
}

impl Soap {
    const ALL: [Soap; 4] = [Soap::Subjective, Soap::Objective, Soap::Assessment, Soap::Plan];

    fn key(self) -> &'static str {
        match self {
            Soap::Subjective => "subjective",
            Soap::Objective => "objective",
            Soap::Assessment => "assessment",
            Soap::Plan => "plan",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Soap::Subjective => "Subjective",
            Soap::Objective => "Objective",
            Soap::Assessment => "Assessment",
            Soap::Plan => "Plan",
        }
    }

    /// Exactly a SOAP heading: the word or its letter, any case.
    fn from_heading(word: &str) -> Option<Soap> {
        match word.trim().to_lowercase().as_str() {
            "s" | "subjective" => Some(Soap::Subjective),
            "o" | "objective" => Some(Soap::Objective),
            "a" | "assessment" => Some(Soap::Assessment),
            "p" | "plan" => Some(Soap::Plan),
            _ => None,
        }
    }

    /// The slot a Composition section's title points to, allowing common variants.
    fn from_title(title: &str) -> Option<Soap> {
        let t = title.trim().trim_end_matches(':').trim().to_lowercase();
        if let Some(slot) = Soap::from_heading(&t) {
            return Some(slot);
        }
        let has = |w: &str| t.contains(w);
        if t.starts_with("assessment") || has("impression") {
            Some(Soap::Assessment)
        } else if has("subjective")
            || has("history of present")
            || has("chief complaint")
            || has("reason for visit")
            || has("interval history")
            || has("parent report")
            || has("caregiver report")
        {
            Some(Soap::Subjective)
        } else if has("objective") || has("findings") || has("measurement") || has("session data") {
            Some(Soap::Objective)
        } else if has("plan") || has("recommendation") {
            Some(Soap::Plan)
        } else {
            None
        }
    }

    /// The slot a LOINC section code stands for.
    fn from_loinc(code: &str) -> Option<Soap> {
        match code {
            "61150-9" | "10164-2" | "10154-3" => Some(Soap::Subjective),
            "61149-1" | "29545-1" => Some(Soap::Objective),
            "51848-0" | "51847-2" => Some(Soap::Assessment),
            "18776-5" => Some(Soap::Plan),
            _ => None,
        }
    }
}

/// SOAP text gathered from a resource; several pieces for one slot are joined by blank lines.
#[derive(Default)]
struct SoapText {
    parts: [Vec<String>; 4],
}

impl SoapText {
    fn add(&mut self, slot: Soap, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.parts[slot as usize].push(text.to_string());
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    fn write(&self, fields: &mut Fields) {
        for slot in Soap::ALL {
            let parts = &self.parts[slot as usize];
            if !parts.is_empty() {
                fields.insert(slot.key().into(), parts.join("\n\n").into());
            }
        }
    }
}

/// Split a note's plain text at SOAP headings (`Subjective:`, `S:`, …, at the start of a line)
/// and read a `Minutes: N` line; text before any heading is objective.
fn parse_note_text(text: &str) -> (SoapText, Option<f64>) {
    let mut soap = SoapText::default();
    let mut minutes = None;
    let mut slot = Soap::Objective;
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some((head, rest)) = line.split_once(':') {
            let word = head.trim().trim_matches(|c| c == '*' || c == '#' || c == '_').trim();
            if let Some(next) = Soap::from_heading(word) {
                soap.add(slot, &block.join("\n"));
                slot = next;
                block = vec![rest];
                continue;
            }
            if word.eq_ignore_ascii_case("minutes")
                && let Ok(n) = rest.trim().parse::<f64>()
                && n.is_finite()
                && n > 0.0
            {
                minutes = Some(n);
                continue;
            }
        }
        block.push(line);
    }
    soap.add(slot, &block.join("\n"));
    (soap, minutes)
}

/// A note's fields as the plain text [`parse_note_text`] reads back.
fn note_text(fields: &Fields) -> String {
    let mut blocks: Vec<String> = Soap::ALL
        .iter()
        .filter_map(|slot| text_field(fields, slot.key()).map(|t| format!("{}: {t}", slot.heading())))
        .collect();
    if let Some(m) = fields.get("minutes").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        blocks.push(format!("Minutes: {}", fmt_number(m)));
    }
    blocks.join("\n\n")
}

fn note_from_document(root: &At) -> Result<Fields> {
    let mut fields = Fields::new();
    for key in ["status", "docStatus"] {
        let status = root.get(key)?;
        if status.text()?.as_deref() == Some("entered-in-error") {
            return Err(status.fail("is `entered-in-error`: there is no note to record"));
        }
    }

    let content = root.get("content")?;
    let mut text = None;
    for item in content.items()? {
        if let Some(found) = attachment_text(&item.get("attachment")?)? {
            text = Some(found);
            break;
        }
    }
    let text = match text {
        Some(t) => t,
        None => root.get("description")?.text()?.ok_or_else(|| {
            content.fail(
                "has no inline text (text/plain, text/markdown or text/html data) and the resource has no description",
            )
        })?,
    };
    let (soap, text_minutes) = parse_note_text(&text);
    soap.write(&mut fields);

    let context = root.get("context")?;
    let period = context.get("period")?;
    // The service period says when the session was; `date` only when the document was made.
    let date = first_date(&[period.get("start")?, root.get("date")?])?.ok_or_else(|| {
        fhir_error(
            format!("{}.date", root.path),
            "is missing, and so is context.period.start: a session note needs its date",
        )
    })?;
    fields.insert("date".into(), date.into());

    let span = match (
        datetime_or_none(&period.get("start")?),
        datetime_or_none(&period.get("end")?),
    ) {
        (Some(start), Some(end)) if end > start => Some((end - start).num_seconds() as f64 / 60.0),
        _ => None,
    };
    if let Some(minutes) = span.or(text_minutes) {
        fields.insert("minutes".into(), json_number(minutes));
    }

    if let Some(clinician) = clinician_of(&root.get("author")?)? {
        fields.insert("clinician".into(), clinician.into());
    }
    let mut kinds = vec![root.get("type")?];
    kinds.extend(root.get("category")?.items()?);
    if let Some(discipline) = pick_discipline(&[context.get("practiceSetting")?], &kinds)? {
        fields.insert("discipline".into(), discipline.into());
    }
    Ok(fields)
}

/// A date-time for arithmetic only: absent, date-only or malformed all give `None` here, since
/// the same element's date was already checked where it matters.
fn datetime_or_none(at: &At) -> Option<NaiveDateTime> {
    let s = at.str().ok()??;
    parse_when(s)?.datetime()
}

fn note_from_composition(root: &At) -> Result<Fields> {
    let mut fields = Fields::new();
    let status = root.get("status")?;
    if status.text()?.as_deref() == Some("entered-in-error") {
        return Err(status.fail("is `entered-in-error`: there is no note to record"));
    }
    let date_at_ = root.get("date")?;
    let date = date_at(&date_at_)?.ok_or_else(|| date_at_.fail("is missing: a session note needs its date"))?;
    fields.insert("date".into(), date.into());

    let mut soap = SoapText::default();
    let sections = root.get("section")?;
    composition_sections(&sections, None, 0, &mut soap)?;
    if soap.is_empty()
        && let Some(div) = root.get("text")?.get("div")?.str()?
    {
        soap.add(Soap::Objective, &xhtml_text(div));
    }
    if soap.is_empty() {
        return Err(
            sections.fail("has no text: a session note needs at least one of subjective, objective, assessment, plan")
        );
    }
    soap.write(&mut fields);

    if let Some(clinician) = clinician_of(&root.get("author")?)? {
        fields.insert("clinician".into(), clinician.into());
    }
    let mut kinds = vec![root.get("type")?];
    kinds.extend(root.get("category")?.items()?);
    if let Some(discipline) = pick_discipline(&[], &kinds)? {
        fields.insert("discipline".into(), discipline.into());
    }
    Ok(fields)
}

/// Read sections into SOAP slots; a section with no slot of its own goes where its parent went,
/// else to objective, headed by its title so the reader still sees what it was.
fn composition_sections(list: &At, inherited: Option<Soap>, depth: usize, soap: &mut SoapText) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for section in list.items()? {
        let title = section.get("title")?.text()?;
        let code = section.get("code")?;
        let by_code = codings(&code)?
            .into_iter()
            .filter(|c| c.system.as_deref().is_none_or(|s| s == LOINC))
            .find_map(|c| c.code.as_deref().and_then(Soap::from_loinc));
        let own = title.as_deref().and_then(Soap::from_title).or(by_code);
        let label = title.or(concept_label(&code)?);
        if let Some(div) = section.get("text")?.get("div")?.str()? {
            let text = xhtml_text(div);
            if !text.is_empty() {
                match (own, label) {
                    (Some(slot), _) => soap.add(slot, &text),
                    (None, Some(label)) => soap.add(inherited.unwrap_or(Soap::Objective), &format!("{label}: {text}")),
                    (None, None) => soap.add(inherited.unwrap_or(Soap::Objective), &text),
                }
            }
        }
        composition_sections(&section.get("section")?, own.or(inherited), depth + 1, soap)?;
    }
    Ok(())
}

/// Validate a note, standing in for a missing clinician or discipline so that everything else
/// is checked, then leave those keys out for the caller to fill.
fn validated_note(mut fields: Fields) -> Result<Fields> {
    let missing: Vec<&str> = ["clinician", "discipline"]
        .into_iter()
        .filter(|k| !fields.contains_key(*k))
        .collect();
    for key in &missing {
        let stand_in = if *key == "discipline" { "other" } else { "unknown" };
        fields.insert((*key).into(), stand_in.into());
    }
    let mut normal = entry::validate(Section::Notes, &fields)?;
    for key in missing {
        normal.remove(key);
    }
    Ok(normal)
}

// ---------------------------------------------------------------------------------------------
// Labs
// ---------------------------------------------------------------------------------------------

fn missing_value(root: &At) -> Error {
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
fn observation_value(at: &At) -> Result<Option<(String, Option<String>)>> {
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
fn component_values(root: &At) -> Result<Option<(String, Option<String>)>> {
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

enum Interpretation {
    Known(&'static str),
    /// Not a flag the record has; carries what it said, to keep in the notes.
    Unknown(Option<String>),
}

/// The record's flag for a v3 ObservationInterpretation (or v2 table 0078) code.
///
/// LL, HH and AA are the panic-limit codes ("critical low", "critical high", "critical
/// abnormal"), so they map to `critical` rather than plain low/high/abnormal.
fn interpretation_flag(code: &str) -> Option<&'static str> {
    match code {
        "N" | "NEG" | "ND" => Some("normal"),
        "L" | "LU" | "<" => Some("low"),
        "H" | "HU" | ">" => Some("high"),
        "A" | "POS" | "DET" => Some("abnormal"),
        "LL" | "HH" | "AA" => Some("critical"),
        _ => None,
    }
}

fn interpretation_of(concept: &At) -> Result<Interpretation> {
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

fn interpretation_code(flag: &str) -> Option<(&'static str, &'static str)> {
    match flag {
        "normal" => Some(("N", "Normal")),
        "low" => Some(("L", "Low")),
        "high" => Some(("H", "High")),
        "abnormal" => Some(("A", "Abnormal")),
        "critical" => Some(("AA", "Critical abnormal")),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Appointments
// ---------------------------------------------------------------------------------------------

const FHIR_APPOINTMENT_STATUSES: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];

/// FHIR appointment status to the record's. `pending` (some participants have yet to accept)
/// is `scheduled`, which is also what `scheduled` goes out as, so statuses round-trip.
fn appointment_status_from_fhir(status: &str) -> Option<&'static str> {
    match status {
        "proposed" | "waitlist" => Some("requested"),
        "pending" => Some("scheduled"),
        "booked" => Some("confirmed"),
        "arrived" | "checked-in" | "fulfilled" => Some("completed"),
        "cancelled" | "noshow" | "entered-in-error" => Some("cancelled"),
        _ => None,
    }
}

fn appointment_status_to_fhir(status: &str) -> Option<&'static str> {
    match status {
        "requested" => Some("proposed"),
        "scheduled" => Some("pending"),
        "confirmed" => Some("booked"),
        "cancelled" => Some("cancelled"),
        "completed" => Some("fulfilled"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------------

/// FHIR item type to the record's question kind: `Some(None)` for plain text (the record's
/// default kind), `None` for a type FHIR does not have.
fn question_kind(ty: &str) -> Option<Option<&'static str>> {
    match ty {
        "boolean" => Some(Some("yesno")),
        "decimal" | "integer" | "quantity" => Some(Some("number")),
        "date" | "dateTime" => Some(Some("date")),
        "text" => Some(Some("text")),
        "string" | "url" | "choice" | "open-choice" | "time" | "attachment" | "reference" | "coding" | "question" => {
            Some(None)
        }
        _ => None,
    }
}

fn questionnaire_items(list: &At, depth: usize, out: &mut Vec<Value>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for item in list.items()? {
        let type_at = item.get("type")?;
        let ty = type_at.text()?.unwrap_or_else(|| "string".to_string());
        match ty.as_str() {
            "group" => {}
            "display" => continue,
            _ => {
                let kind = question_kind(&ty)
                    .ok_or_else(|| type_at.fail(format!("`{ty}` is not a Questionnaire item type")))?;
                let link = item.get("linkId")?;
                let id = link
                    .text()?
                    .ok_or_else(|| link.fail("is missing: every question needs its linkId"))?;
                let text_at = item.get("text")?;
                let mut text = text_at
                    .text()?
                    .ok_or_else(|| text_at.fail("is missing: a question needs its text"))?;
                // The record has no choice kind, so the choices travel with the question.
                let mut options = Vec::new();
                for option in item.get("answerOption")?.items()? {
                    let coding = option.get("valueCoding")?;
                    let label = match coding.get("display")?.text()? {
                        Some(d) => Some(d),
                        None => coding.get("code")?.text()?,
                    };
                    let label = match label {
                        Some(l) => Some(l),
                        None => match option.get("valueString")?.text()? {
                            Some(s) => Some(s),
                            None => option.get("valueInteger")?.number()?.map(Number::to_string),
                        },
                    };
                    options.extend(label);
                }
                if !options.is_empty() {
                    text = format!("{text} ({})", options.join(" / "));
                }
                let mut question = Map::new();
                question.insert("text".into(), text.into());
                question.insert("id".into(), id.into());
                if let Some(kind) = kind {
                    question.insert("kind".into(), kind.into());
                }
                if item.get("required")?.boolean()? == Some(true) {
                    question.insert("required".into(), true.into());
                }
                out.push(Value::Object(question));
            }
        }
        questionnaire_items(&item.get("item")?, depth + 1, out)?;
    }
    Ok(())
}

fn questionnaire_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut q = base("Questionnaire", id, fields);
    q.insert("status".into(), "active".into());
    if let Some(title) = text_field(fields, "title") {
        q.insert("title".into(), title.into());
    }
    let mut items = Vec::new();
    let questions = fields.get("questions").and_then(Value::as_array);
    for (n, question) in questions.into_iter().flatten().enumerate() {
        let Some(text) = question.get("text").and_then(Value::as_str) else {
            continue;
        };
        // A question without an id is known by its position, as FHIR needs a linkId.
        let link = question
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| (n + 1).to_string(), str::to_string);
        let ty = match question.get("kind").and_then(Value::as_str) {
            Some("yesno") => "boolean",
            Some("number") => "decimal",
            Some("date") => "date",
            Some("text") => "text",
            _ => "string",
        };
        let mut item = json!({ "linkId": link, "text": text, "type": ty });
        if question.get("required").and_then(Value::as_bool) == Some(true) {
            item["required"] = true.into();
        }
        items.push(item);
    }
    if !items.is_empty() {
        q.insert("item".into(), Value::Array(items));
    }
    Value::Object(q)
}

/// The id of the questionnaire a canonical or reference names: `Questionnaire/abc`,
/// `https://x.org/fhir/Questionnaire/abc|2.0`, `…/abc/_history/3` all give `abc`.
fn template_id(canonical: &str) -> Option<String> {
    let base = canonical.split_once('|').map_or(canonical, |(b, _)| b).trim();
    let id = match base.rfind("Questionnaire/") {
        Some(at) => base[at + "Questionnaire/".len()..]
            .split('/')
            .next()
            .unwrap_or_default(),
        None => base.trim_end_matches('/').rsplit('/').next().unwrap_or_default(),
    };
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn response_items(list: &At, depth: usize, out: &mut Vec<Value>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for item in list.items()? {
        let mut texts = Vec::new();
        let answers = item.get("answer")?.items()?;
        for answer in &answers {
            texts.extend(answer_text(answer)?);
        }
        if !texts.is_empty() {
            let link = item.get("linkId")?;
            let question = link
                .text()?
                .ok_or_else(|| link.fail("is missing: an answer needs its question's linkId"))?;
            out.push(json!({ "question": question, "answer": texts.join("; ") }));
        }
        for answer in &answers {
            response_items(&answer.get("item")?, depth + 1, out)?;
        }
        response_items(&item.get("item")?, depth + 1, out)?;
    }
    Ok(())
}

/// An answer's value as the record's text.
fn answer_text(answer: &At) -> Result<Option<String>> {
    if let Some(b) = answer.get("valueBoolean")?.boolean()? {
        return Ok(Some(if b { "yes" } else { "no" }.to_string()));
    }
    for key in ["valueDecimal", "valueInteger"] {
        if let Some(n) = answer.get(key)?.number()? {
            return Ok(Some(n.to_string()));
        }
    }
    for key in ["valueString", "valueDate", "valueDateTime", "valueTime", "valueUri"] {
        if let Some(text) = answer.get(key)?.text()? {
            return Ok(Some(text));
        }
    }
    let coding = answer.get("valueCoding")?;
    if let Some(label) = coding.get("display")?.text()? {
        return Ok(Some(label));
    }
    if let Some(code) = coding.get("code")?.text()? {
        return Ok(Some(code));
    }
    let quantity = answer.get("valueQuantity")?;
    if let Some(n) = quantity.get("value")?.number()? {
        return Ok(Some(match quantity.get("unit")?.text()? {
            Some(unit) => format!("{n} {unit}"),
            None => n.to_string(),
        }));
    }
    let attachment = answer.get("valueAttachment")?;
    if let Some(label) = attachment.get("title")?.text()? {
        return Ok(Some(label));
    }
    if let Some(url) = attachment.get("url")?.text()? {
        return Ok(Some(url));
    }
    let reference = answer.get("valueReference")?;
    if let Some(label) = reference.get("display")?.text()? {
        return Ok(Some(label));
    }
    reference.get("reference")?.text()
}

/// An answer typed by its question's kind, falling back to text when it does not parse as one.
fn typed_answer(kind: Option<&str>, text: &str) -> Value {
    let t = text.trim();
    match kind {
        Some("yesno") => match t.to_ascii_lowercase().as_str() {
            "yes" | "true" | "y" => return json!({ "valueBoolean": true }),
            "no" | "false" | "n" => return json!({ "valueBoolean": false }),
            _ => {}
        },
        Some("number") => {
            if let Some(n) = exact_number(t) {
                let key = if n.is_f64() { "valueDecimal" } else { "valueInteger" };
                return json!({ key: n });
            }
        }
        Some("date") if parse_when(t).is_some_and(|w| w.time.is_none()) => return json!({ "valueDate": t }),
        _ => {}
    }
    json!({ "valueString": text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::entry::FieldKind;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            other => panic!("test fixture is not an object: {other}"),
        }
    }

    fn b64(s: &str) -> String {
        BASE64.encode(s.as_bytes())
    }

    /// The path and problem of a FHIR error; any other error fails the test.
    fn fhir_fault(result: Result<Fields>) -> (String, String) {
        match result {
            Err(Error::Fhir { path, problem }) => (path, problem),
            Err(other) => panic!("expected a FHIR error, got: {other}"),
            Ok(f) => panic!("expected a FHIR error, got fields: {f:?}"),
        }
    }

    fn choices(section: Section, field: &str) -> &'static [&'static str] {
        match entry::fields(section).iter().find(|s| s.name == field).map(|s| s.kind) {
            Some(FieldKind::Choice(options)) => options,
            other => panic!("{section}.{field} is not a choice: {other:?}"),
        }
    }

    fn question_kinds() -> &'static [&'static str] {
        match entry::fields(Section::Forms)
            .iter()
            .find(|s| s.name == "question")
            .map(|s| s.kind)
        {
            Some(FieldKind::Items(sub)) => match sub.iter().find(|s| s.name == "kind").map(|s| s.kind) {
                Some(FieldKind::Choice(options)) => options,
                other => panic!("question kind is not a choice: {other:?}"),
            },
            other => panic!("forms.question is not items: {other:?}"),
        }
    }

    // ----- notes ------------------------------------------------------------------------------

    fn ehr_document() -> Value {
        json!({
            "resourceType": "DocumentReference",
            "id": "doc-881",
            "status": "current",
            "docStatus": "final",
            "type": { "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }] },
            "category": [{ "coding": [{
                "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "code": "clinical-note", "display": "Clinical Note" }] }],
            "subject": { "reference": "Patient/p-1" },
            "date": "2024-03-05T17:20:11.123-05:00",
            "author": [
                { "reference": "Organization/clinic-1", "display": "Sunrise Pediatric Therapy" },
                { "reference": "Practitioner/pr-7", "display": "Jamie Ames, CCC-SLP" }
            ],
            "content": [
                { "attachment": { "contentType": "application/pdf", "url": "Binary/note-881" } },
                { "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": b64("S: Tired after school.\nO: 8/10 /s/ in initial position\nwith visual cues.\n\nA: Improving.\nP: Continue twice weekly.")
                } }
            ],
            "context": {
                "period": { "start": "2024-03-04T15:00:00-05:00", "end": "2024-03-04T15:45:00-05:00" },
                "practiceSetting": { "coding": [{ "system": NUCC, "code": "235Z00000X" }] }
            }
        })
    }

    #[test]
    fn an_ehr_document_reference_becomes_a_soap_note() {
        let note = note_from_fhir(&ehr_document()).unwrap();
        assert_eq!(note["date"], "2024-03-04", "the service period, not the filing date");
        assert_eq!(note["minutes"], 45.0);
        assert_eq!(
            note["clinician"], "Jamie Ames, CCC-SLP",
            "the practitioner, not the organization"
        );
        assert_eq!(note["discipline"], "speech");
        assert_eq!(note["subjective"], "Tired after school.");
        assert_eq!(note["objective"], "8/10 /s/ in initial position\nwith visual cues.");
        assert_eq!(note["assessment"], "Improving.");
        assert_eq!(note["plan"], "Continue twice weekly.");
    }

    #[test]
    fn a_note_without_author_or_discipline_leaves_them_to_the_caller() {
        let doc = json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "description": "Parent reports good week. Practised /r/ at home.",
            "content": [{ "attachment": { "url": "https://ehr.example/Binary/9" } }],
            "date": "2024-05-01T09:00:00Z"
        });
        let mut note = note_from_fhir(&doc).unwrap();
        assert!(!note.contains_key("clinician"));
        assert!(!note.contains_key("discipline"));
        assert_eq!(note["objective"], "Parent reports good week. Practised /r/ at home.");
        assert_eq!(note["date"], "2024-05-01");
        note.insert("clinician".into(), "J. Ames".into());
        note.insert("discipline".into(), "speech".into());
        entry::validate(Section::Notes, &note).unwrap();
    }

    #[test]
    fn a_composition_maps_its_sections_to_soap() {
        let comp = json!({
            "resourceType": "Composition",
            "id": "comp-1",
            "status": "final",
            "type": {
                "coding": [{ "system": LOINC, "code": "11506-3", "display": "Progress note" }],
                "text": "Occupational therapy progress note"
            },
            "date": "2024-04-02T10:30:00+01:00",
            "author": [{ "reference": "Practitioner/ot-1", "display": "R. Chen, OTR/L" }],
            "title": "OT session",
            "section": [
                { "title": "Subjective", "text": { "status": "generated",
                  "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Mother reports <b>calmer</b> mornings &amp; less fuss.</p></div>" } },
                { "title": "o", "text": { "div": "<div><ul><li>Buttoning: 3/5</li><li>Zipper: independent</li></ul></div>" } },
                { "title": "Goals addressed", "text": { "div": "<div>Fine motor goal 2</div>" } },
                { "title": "ASSESSMENT:", "text": { "div": "<div>Steady gains.</div>" } },
                { "code": { "coding": [{ "system": LOINC, "code": "18776-5" }] },
                  "text": { "div": "<div>Home program<br/>daily</div>" } }
            ]
        });
        let note = note_from_fhir(&comp).unwrap();
        assert_eq!(note["date"], "2024-04-02");
        assert_eq!(note["clinician"], "R. Chen, OTR/L");
        assert_eq!(note["discipline"], "occupational");
        assert_eq!(note["subjective"], "Mother reports calmer mornings & less fuss.");
        assert_eq!(
            note["objective"],
            "Buttoning: 3/5\nZipper: independent\n\nGoals addressed: Fine motor goal 2"
        );
        assert_eq!(note["assessment"], "Steady gains.");
        assert_eq!(note["plan"], "Home program\ndaily");
    }

    #[test]
    fn a_note_round_trips_through_a_document_reference() {
        let original = entry::validate(
            Section::Notes,
            &fields(json!({
                "discipline": "aba",
                "clinician": "Dana Ruiz, BCBA",
                "date": "2024-06-11",
                "minutes": 50,
                "subjective": "Slept poorly.",
                "objective": "Manding: 14 independent\nTantrums: 2 (short)",
                "assessment": "On track.",
                "plan": "Fade prompts next week."
            })),
        )
        .unwrap();
        let doc = note_to_fhir("n-1", &original);
        assert_eq!(doc["resourceType"], "DocumentReference");
        assert_eq!(
            doc["content"][0]["attachment"]["contentType"],
            "text/plain; charset=utf-8"
        );
        assert_eq!(note_from_fhir(&doc).unwrap(), original);
        assert_eq!(source_of(&doc), Some(("DocumentReference".into(), "n-1".into())));
    }

    #[test]
    fn disciplines_map_from_the_words_ehrs_use() {
        let cases = [
            ("Speech-language pathology", Some("speech")),
            ("speech therapy", Some("speech")),
            ("Speech and language therapy", Some("speech")),
            ("Speech-Language Pathologist", Some("speech")),
            ("SLP", Some("speech")),
            ("Applied behavior analysis", Some("aba")),
            ("Applied Behaviour Analysis service", Some("aba")),
            ("Behavior Analyst", Some("aba")),
            ("ABA therapy", Some("aba")),
            ("Occupational therapy", Some("occupational")),
            ("OT evaluation", Some("occupational")),
            ("Physical therapy", Some("physical")),
            ("Physiotherapy", Some("physical")),
            ("Physical medicine and rehabilitation", Some("physical")),
            ("Clinical psychology", Some("psychology")),
            ("Child psychiatry", Some("psychology")),
            ("Behavioral health", Some("psychology")),
            ("Pediatrics", Some("medical")),
            ("Paediatrics", Some("medical")),
            ("Family medicine", Some("medical")),
            // Credentials, as staff roles and signatures give them.
            ("OTR/L", Some("occupational")),
            ("COTA/L", Some("occupational")),
            ("PT, DPT", Some("physical")),
            ("PTA", Some("physical")),
            ("BCaBA", Some("aba")),
            ("RBT", Some("aba")),
            ("LCSW", Some("psychology")),
            ("PsyD", Some("psychology")),
            ("MD", Some("medical")),
            ("CPNP", Some("medical")),
            ("Multidisciplinary team meeting", Some("multidisciplinary")),
            ("Interdisciplinary speech and OT", Some("multidisciplinary")),
            ("Progress note", None),
            ("Clinical Note", None),
            ("Dietetics", None),
        ];
        for (text, want) in cases {
            assert_eq!(discipline_from_text(text), want, "{text}");
        }
        let allowed = choices(Section::Notes, "discipline");
        for (word, display) in DISCIPLINE_DISPLAY {
            assert!(allowed.contains(word), "{word}");
            let back = discipline_from_text(display).unwrap_or("other");
            assert_eq!(back, *word, "{display} must map back");
        }
        for word in allowed {
            assert!(
                DISCIPLINE_DISPLAY.iter().any(|(w, _)| w == word),
                "{word} has no display name"
            );
        }
        for (_, word) in NUCC_DISCIPLINES {
            assert!(allowed.contains(word), "{word}");
        }
    }

    #[test]
    fn an_unrecognized_practice_setting_is_other_but_an_unrecognized_type_is_nothing() {
        let mut doc = ehr_document();
        doc["context"]["practiceSetting"] = json!({ "text": "Hippotherapy" });
        assert_eq!(note_from_fhir(&doc).unwrap()["discipline"], "other");
        doc["context"]["practiceSetting"] = Value::Null;
        assert!(!note_from_fhir(&doc).unwrap().contains_key("discipline"));
    }

    #[test]
    fn note_errors_name_their_place() {
        let mut comp = json!({
            "resourceType": "Composition", "status": "final", "date": "2024-04-02",
            "section": [
                { "title": "S", "text": { "div": "<div>ok</div>" } },
                { "title": "O", "text": { "div": "<div>ok</div>" } },
                { "title": 7, "text": { "div": "<div>ok</div>" } }
            ]
        });
        let (path, problem) = fhir_fault(note_from_fhir(&comp));
        assert_eq!(path, "Composition.section[2].title");
        assert!(problem.contains("must be a string"), "{problem}");

        comp["section"] = json!([{ "title": "Plan" }]);
        assert_eq!(fhir_fault(note_from_fhir(&comp)).0, "Composition.section");
        comp["section"] = json!({ "title": "Plan" });
        let (path, problem) = fhir_fault(note_from_fhir(&comp));
        assert_eq!(
            (path.as_str(), problem.as_str()),
            ("Composition.section", "must be an array, not an object")
        );

        let mut doc = ehr_document();
        doc["content"][1]["attachment"]["data"] = "not base64!".into();
        assert_eq!(
            fhir_fault(note_from_fhir(&doc)).0,
            "DocumentReference.content[1].attachment.data"
        );
        let mut doc = ehr_document();
        doc["context"]["period"]["start"] = "04/03/2024".into();
        assert_eq!(
            fhir_fault(note_from_fhir(&doc)).0,
            "DocumentReference.context.period.start"
        );
        let mut doc = ehr_document();
        doc["context"]["period"] = Value::Null;
        doc["date"] = Value::Null;
        assert_eq!(fhir_fault(note_from_fhir(&doc)).0, "DocumentReference.date");
        let (path, problem) = fhir_fault(note_from_fhir(&json!({ "resourceType": "Observation" })));
        assert_eq!(path, "resourceType");
        assert!(problem.contains("DocumentReference or Composition"), "{problem}");
    }

    #[test]
    fn xhtml_narrative_becomes_plain_text() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><!-- generated --><h3 title="a > b">Notes</h3>
            <p>Ate   well&nbsp;&lt;3 &#x2713; &#233;</p><table><tr><td>a</td><td>b</td></tr></table>AT&amp;T & co</div>"#;
        assert_eq!(xhtml_text(div), "Notes\nAte well <3 ✓ é\na b\nAT&T & co");
        assert_eq!(xhtml_text("<div>one<br/><br/>two</div>"), "one\n\ntwo");
    }

    // ----- labs -------------------------------------------------------------------------------

    fn synthea_glucose() -> Value {
        json!({
            "resourceType": "Observation",
            "id": "171b685d-d94a-427e-abcc-f5cfbcd05838",
            "status": "final",
            "category": [{ "coding": [{ "system": CATEGORY, "code": "laboratory", "display": "laboratory" }] }],
            "code": { "coding": [{ "system": LOINC, "code": "2339-0", "display": "Glucose" }], "text": "Glucose" },
            "subject": { "reference": "urn:uuid:cccb981f-2a12-44d0-b1dd-5404ece3f535" },
            "effectiveDateTime": "2008-05-19T07:44:08+00:00",
            "issued": "2008-05-19T07:44:08.416+00:00",
            "valueQuantity": { "value": 75.55529258694807, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL" },
            "referenceRange": [{ "low": { "value": 70, "unit": "mg/dL" }, "high": { "value": 99, "unit": "mg/dL" } }],
            "interpretation": [{ "coding": [{ "system": INTERPRETATION, "code": "N" }] }]
        })
    }

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

    // ----- appointments -----------------------------------------------------------------------

    fn ehr_appointment() -> Value {
        json!({
            "resourceType": "Appointment",
            "id": "appt-5521",
            "status": "booked",
            "serviceType": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/service-type",
                "code": "355", "display": "Speech Therapy" }] }],
            "reasonCode": [{ "coding": [{ "system": "http://snomed.info/sct", "display": "Articulation disorder" }] }],
            "description": "Follow-up speech session",
            "start": "2024-03-12T15:30:00-04:00",
            "end": "2024-03-12T16:15:00-04:00",
            "comment": "Bring home-practice sheet.",
            "participant": [
                { "actor": { "reference": "Patient/p-1", "display": "Mia Lopez" }, "status": "accepted" },
                { "actor": { "reference": "https://ehr.example/fhir/Practitioner/pr-7/_history/3", "display": "Jamie Ames" }, "status": "accepted" },
                { "actor": { "reference": "Location/room-2", "display": "Room 2" }, "status": "accepted" }
            ]
        })
    }

    #[test]
    fn an_ehr_appointment_becomes_an_entry() {
        let appt = appointment_from_fhir(&ehr_appointment()).unwrap();
        assert_eq!(appt["status"], "confirmed");
        assert_eq!(appt["reason"], "Articulation disorder");
        assert_eq!(appt["start"], "2024-03-12T15:30:00", "wall-clock time as written");
        assert_eq!(appt["minutes"], 45.0);
        assert_eq!(appt["clinician"], "Jamie Ames");
        assert_eq!(appt["location"], "Room 2");
        assert_eq!(appt["discipline"], "speech");
        assert_eq!(appt["notes"], "Follow-up speech session\n\nBring home-practice sheet.");
    }

    #[test]
    fn appointment_statuses_map_both_ways() {
        let from = [
            ("proposed", "requested"),
            ("waitlist", "requested"),
            ("pending", "scheduled"),
            ("booked", "confirmed"),
            ("arrived", "completed"),
            ("checked-in", "completed"),
            ("fulfilled", "completed"),
            ("cancelled", "cancelled"),
            ("noshow", "cancelled"),
            ("entered-in-error", "cancelled"),
        ];
        let allowed = choices(Section::Appointments, "status");
        for (fhir, ours) in from {
            let mut res = ehr_appointment();
            res["status"] = fhir.into();
            assert_eq!(appointment_from_fhir(&res).unwrap()["status"], ours, "{fhir}");
            assert!(allowed.contains(&ours));
        }
        assert_eq!(FHIR_APPOINTMENT_STATUSES.len(), from.len());
        let mut res = ehr_appointment();
        res["status"] = "noshow".into();
        assert!(
            appointment_from_fhir(&res).unwrap()["notes"]
                .as_str()
                .unwrap()
                .starts_with("No-show.")
        );
        for ours in allowed {
            let fhir = appointment_status_to_fhir(ours).unwrap();
            assert_eq!(
                appointment_status_from_fhir(fhir),
                Some(*ours),
                "{ours} must round-trip"
            );
        }
    }

    #[test]
    fn appointments_round_trip() {
        let statuses = choices(Section::Appointments, "status");
        for (i, status) in statuses.iter().enumerate() {
            let original = entry::validate(
                Section::Appointments,
                &fields(json!({
                    "reason": "OT evaluation",
                    "start": "2024-07-01T09:00:00",
                    "minutes": if i % 2 == 0 { json!(60) } else { json!(30.5) },
                    "status": status,
                    "discipline": "occupational",
                    "clinician": "R. Chen",
                    "location": "Main St clinic",
                    "notes": "Wear comfortable clothes."
                })),
            )
            .unwrap();
            let res = appointment_to_fhir("a-1", &original);
            assert_eq!(appointment_from_fhir(&res).unwrap(), original, "{res:#}");
        }
        let bare = entry::validate(
            Section::Appointments,
            &fields(json!({ "reason": "Check-up", "start": "2024-07-01T09:00:00" })),
        )
        .unwrap();
        assert_eq!(appointment_from_fhir(&appointment_to_fhir("a-2", &bare)).unwrap(), bare);
    }

    #[test]
    fn a_proposed_appointment_may_give_only_its_requested_period() {
        let res = json!({ "resourceType": "Appointment", "status": "proposed", "description": "Hearing screen",
            "requestedPeriod": [{ "start": "2024-08-01T08:00:00Z", "end": "2024-08-01T12:00:00Z" }] });
        let appt = appointment_from_fhir(&res).unwrap();
        assert_eq!(appt["start"], "2024-08-01T08:00:00");
        assert_eq!(appt["status"], "requested");
    }

    #[test]
    fn appointment_errors_name_their_place() {
        let mut res = ehr_appointment();
        res["status"] = "maybe".into();
        let (path, problem) = fhir_fault(appointment_from_fhir(&res));
        assert_eq!(path, "Appointment.status");
        assert!(problem.contains("`maybe` is not an appointment status"), "{problem}");
        let mut res = ehr_appointment();
        res["start"] = "2024-03-12".into();
        let (path, problem) = fhir_fault(appointment_from_fhir(&res));
        assert_eq!(path, "Appointment.start");
        assert!(problem.contains("no time of day"), "{problem}");
        let mut res = ehr_appointment();
        res["end"] = "2024-03-12T15:00:00-04:00".into();
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.end");
        let mut res = ehr_appointment();
        res["minutesDuration"] = 0.into();
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.minutesDuration");
        let mut res = ehr_appointment();
        res["participant"][1]["actor"] = json!(["Jamie"]);
        assert_eq!(
            fhir_fault(appointment_from_fhir(&res)).0,
            "Appointment.participant[1].actor"
        );
        let res = json!({ "resourceType": "Appointment", "status": "booked", "start": "2024-03-12T15:30:00Z" });
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.reasonCode");
    }

    // ----- forms ------------------------------------------------------------------------------

    fn intake_questionnaire() -> Value {
        json!({
            "resourceType": "Questionnaire",
            "id": "intake-2024",
            "url": "https://ehr.example/fhir/Questionnaire/intake-2024",
            "status": "active",
            "title": "Speech intake",
            "item": [
                { "linkId": "intro", "type": "display", "text": "Please answer for your child." },
                { "linkId": "history", "type": "group", "text": "History", "item": [
                    { "linkId": "first-words", "type": "integer", "text": "Age at first words (months)" },
                    { "linkId": "ear-infections", "type": "boolean", "text": "Frequent ear infections?" },
                    { "linkId": "details", "type": "group", "item": [
                        { "linkId": "concerns", "type": "text", "text": "Main concerns" }
                    ] }
                ] },
                { "linkId": "language", "type": "choice", "text": "Home language",
                  "answerOption": [{ "valueCoding": { "code": "en", "display": "English" } }, { "valueString": "Spanish" }] },
                { "linkId": "last-visit", "type": "date", "text": "Last hearing test" },
                { "linkId": "name", "type": "string", "text": "Who is filling this in?" }
            ]
        })
    }

    #[test]
    fn a_questionnaire_becomes_a_flat_template() {
        let form = form_from_fhir(&intake_questionnaire()).unwrap();
        assert_eq!(form["title"], "Speech intake");
        assert_eq!(form["kind"], "template");
        assert_eq!(form["status"], "sent");
        let questions = form["questions"].as_array().unwrap();
        let ids: Vec<&str> = questions.iter().map(|q| q["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "first-words",
                "ear-infections",
                "concerns",
                "language",
                "last-visit",
                "name"
            ]
        );
        assert_eq!(questions[0]["kind"], "number");
        assert_eq!(questions[1]["kind"], "yesno");
        assert_eq!(questions[2]["kind"], "text");
        assert_eq!(questions[3]["text"], "Home language (English / Spanish)");
        assert!(questions[3].get("kind").is_none());
        assert_eq!(questions[4]["kind"], "date");
        let allowed = question_kinds();
        for q in questions {
            if let Some(kind) = q.get("kind").and_then(Value::as_str) {
                assert!(allowed.contains(&kind), "{kind}");
            }
        }
    }

    fn template_fields() -> Fields {
        entry::validate(
            Section::Forms,
            &fields(json!({
                "title": "Intake",
                "kind": "template",
                "status": "sent",
                "questions": [
                    { "text": "Age at first words (months)", "id": "first-words", "kind": "number" },
                    { "text": "Frequent ear infections?", "id": "ears", "kind": "yesno" },
                    { "text": "Last hearing test", "id": "hearing", "kind": "date" },
                    { "text": "Main concerns", "id": "concerns", "kind": "text" },
                    { "text": "Anything else?", "id": "else" }
                ]
            })),
        )
        .unwrap()
    }

    #[test]
    fn forms_round_trip() {
        let template = template_fields();
        let q = form_to_fhir("tmpl-1", &template);
        assert_eq!(q["resourceType"], "Questionnaire");
        assert_eq!(form_from_fhir(&q).unwrap(), template);

        let response = entry::validate(
            Section::Forms,
            &fields(json!({
                "title": "Intake",
                "kind": "response",
                "template": "tmpl-1",
                "status": "completed",
                "answers": [
                    { "question": "first-words", "answer": "18" },
                    { "question": "ears", "answer": "yes" },
                    { "question": "hearing", "answer": "2023-10-02" },
                    { "question": "concerns", "answer": "Hard to understand\nat school" },
                    { "question": "else", "answer": "2.5" }
                ]
            })),
        )
        .unwrap();
        let untyped = form_to_fhir("resp-1", &response);
        assert_eq!(untyped["resourceType"], "QuestionnaireResponse");
        assert_eq!(untyped["questionnaire"], "Questionnaire/tmpl-1");
        assert_eq!(untyped["item"][1]["answer"][0], json!({ "valueString": "yes" }));
        assert_eq!(form_response_from_fhir(&untyped).unwrap(), response);

        let typed = form_response_to_fhir("resp-1", &response, Some(&template));
        let answers: Vec<&Value> = (0..5).map(|i| &typed["item"][i]["answer"][0]).collect();
        assert_eq!(answers[0], &json!({ "valueInteger": 18 }));
        assert_eq!(answers[1], &json!({ "valueBoolean": true }));
        assert_eq!(answers[2], &json!({ "valueDate": "2023-10-02" }));
        assert_eq!(answers[3], &json!({ "valueString": "Hard to understand\nat school" }));
        assert_eq!(answers[4], &json!({ "valueString": "2.5" }), "no kind known: text");
        assert_eq!(form_response_from_fhir(&typed).unwrap(), response);
        assert_eq!(entry_from_fhir(&typed).unwrap(), (Section::Forms, response));
    }

    #[test]
    fn a_response_from_an_ehr_is_read_with_nested_answers() {
        let qr = json!({
            "resourceType": "QuestionnaireResponse",
            "id": "qr-9",
            "questionnaire": "https://ehr.example/fhir/Questionnaire/intake-2024|3.1",
            "status": "amended",
            "authored": "2024-02-01T10:00:00+00:00",
            "item": [
                { "linkId": "history", "item": [
                    { "linkId": "first-words", "answer": [{ "valueDecimal": 14.5 }] },
                    { "linkId": "ear-infections", "answer": [{ "valueBoolean": false,
                        "item": [{ "linkId": "ear-details", "answer": [{ "valueString": "none" }] }] }] }
                ] },
                { "linkId": "language", "answer": [{ "valueCoding": { "code": "en", "display": "English" } }, { "valueString": "Spanish" }] },
                { "linkId": "skipped" }
            ]
        });
        let form = form_response_from_fhir(&qr).unwrap();
        assert_eq!(form["template"], "intake-2024");
        assert_eq!(form["title"], "Response to intake-2024");
        assert_eq!(form["status"], "completed");
        assert_eq!(
            form["answers"],
            json!([
                { "question": "first-words", "answer": "14.5" },
                { "question": "ear-infections", "answer": "no" },
                { "question": "ear-details", "answer": "none" },
                { "question": "language", "answer": "English; Spanish" }
            ])
        );
    }

    #[test]
    fn form_errors_name_their_place() {
        let mut q = intake_questionnaire();
        q["item"][1]["item"][1]["type"] = "slider".into();
        let (path, problem) = fhir_fault(form_from_fhir(&q));
        assert_eq!(path, "Questionnaire.item[1].item[1].type");
        assert!(problem.contains("`slider`"), "{problem}");
        let mut q = intake_questionnaire();
        q["item"][4]["linkId"] = Value::Null;
        assert_eq!(fhir_fault(form_from_fhir(&q)).0, "Questionnaire.item[4].linkId");
        let mut q = intake_questionnaire();
        q["title"] = Value::Null;
        assert_eq!(fhir_fault(form_from_fhir(&q)).0, "Questionnaire.title");

        let qr = json!({ "resourceType": "QuestionnaireResponse", "status": "completed" });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.questionnaire"
        );
        let qr =
            json!({ "resourceType": "QuestionnaireResponse", "status": "done", "questionnaire": "Questionnaire/x" });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.status"
        );
        let qr = json!({ "resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "Questionnaire/x",
            "item": [{ "linkId": "a", "answer": [{ "valueInteger": "three" }] }] });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.item[0].answer[0].valueInteger"
        );
    }

    // ----- messages ---------------------------------------------------------------------------

    #[test]
    fn a_communication_becomes_a_message_and_round_trips() {
        let res = json!({
            "resourceType": "Communication",
            "id": "com-3",
            "status": "completed",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification" }] }],
            "topic": { "text": "Schedule change" },
            "sent": "2024-03-10T08:15:00-05:00",
            "sender": { "reference": "Practitioner/pr-7", "display": "Jamie Ames" },
            "recipient": [{ "reference": "RelatedPerson/rp-1", "display": "Ana Lopez" }, { "display": "Luis Lopez" }],
            "payload": [
                { "contentString": "Thursday's session moves to 4pm." },
                { "contentAttachment": { "contentType": "text/plain", "data": b64("Reply here if that does not work.") } }
            ]
        });
        let msg = message_from_fhir(&res).unwrap();
        assert_eq!(msg["thread"], "Schedule change");
        assert_eq!(
            msg["body"],
            "Thursday's session moves to 4pm.\n\nReply here if that does not work."
        );
        assert_eq!(msg["from"], "Jamie Ames");
        assert_eq!(msg["to"], "Ana Lopez, Luis Lopez");

        let mut stored = msg.clone();
        stored.insert("created".into(), "2024-03-10T13:15:00Z".into());
        let out = message_to_fhir("m-1", &stored);
        assert_eq!(out["sent"], "2024-03-10T13:15:00Z");
        assert_eq!(message_from_fhir(&out).unwrap(), msg);

        let mut untitled = res.clone();
        untitled["topic"] = Value::Null;
        untitled["category"] = Value::Null;
        assert_eq!(
            message_from_fhir(&untitled).unwrap()["thread"],
            "Message from Jamie Ames"
        );

        let mut empty = res.clone();
        empty["payload"] = json!([]);
        assert_eq!(fhir_fault(message_from_fhir(&empty)).0, "Communication.payload");
        let mut bad_sent = res;
        bad_sent["sent"] = "yesterday".into();
        assert_eq!(fhir_fault(message_from_fhir(&bad_sent)).0, "Communication.sent");
    }

    // ----- bundles, ids, dates ----------------------------------------------------------------

    #[test]
    fn a_searchset_counts_and_wraps_its_resources() {
        let bundle = searchset(vec![synthea_glucose(), ehr_appointment()]);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 2);
        assert_eq!(bundle["entry"][1]["resource"]["id"], "appt-5521");
        assert_eq!(bundle["entry"][0]["search"]["mode"], "match");
        let empty = searchset(Vec::new());
        assert_eq!(empty["total"], 0);
        assert!(empty.get("entry").is_none());
    }

    #[test]
    fn source_of_and_entry_from_fhir_dispatch() {
        assert_eq!(
            source_of(&ehr_appointment()),
            Some(("Appointment".into(), "appt-5521".into()))
        );
        assert_eq!(source_of(&json!({ "resourceType": "Appointment", "id": " " })), None);
        assert_eq!(source_of(&json!({ "resourceType": "Appointment", "id": 7 })), None);
        assert_eq!(source_of(&json!("Appointment")), None);
        assert_eq!(entry_from_fhir(&synthea_glucose()).unwrap().0, Section::Labs);
        assert_eq!(entry_from_fhir(&ehr_document()).unwrap().0, Section::Notes);
        assert_eq!(entry_from_fhir(&intake_questionnaire()).unwrap().0, Section::Forms);
        let (path, problem) = match entry_from_fhir(&json!({ "resourceType": "Patient" })) {
            Err(Error::Fhir { path, problem }) => (path, problem),
            other => panic!("{other:?}"),
        };
        assert_eq!(path, "resourceType");
        assert!(
            problem.contains("expected DocumentReference or Composition or Observation"),
            "{problem}"
        );
        let labs = entry::validate(Section::Labs, &lab_from_fhir(&synthea_glucose()).unwrap()).unwrap();
        let back = entry_to_fhir(Section::Labs, "x", &labs).unwrap();
        assert_eq!(back["resourceType"], "Observation");
        assert!(entry_to_fhir(Section::Profile, "patient", &labs).is_none());
    }

    #[test]
    fn fhir_dates_are_read_in_every_precision() {
        let good = [
            ("2024", "2024-01-01", None),
            ("2024-02", "2024-02-01", None),
            ("2024-02-29", "2024-02-29", None),
            ("2024-03-02T10:05:00Z", "2024-03-02", Some("2024-03-02T10:05:00")),
            (
                "2024-03-02T10:05:07.123+05:30",
                "2024-03-02",
                Some("2024-03-02T10:05:07"),
            ),
            ("2024-03-02T23:30:00-05:00", "2024-03-02", Some("2024-03-02T23:30:00")),
            ("2024-03-02T10:05", "2024-03-02", Some("2024-03-02T10:05:00")),
        ];
        for (text, date, datetime) in good {
            let when = parse_when(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(when.date.format("%Y-%m-%d").to_string(), date);
            assert_eq!(when.datetime().map(format_datetime).as_deref(), datetime, "{text}");
        }
        let bad = [
            "",
            "T",
            "0000",
            "24",
            "2024-3-1",
            "2023-02-29",
            "2024-13",
            "2024-03-02T",
            "2024-03T10:00:00Z",
            "2024-03-02T25:00:00Z",
            "2024-03-02T10:00:00+15:00",
            "2024-03-02T10:00:00+0500",
            "2024-03-02 10:00",
            "2024-03-02T1:00:00Z",
            "٢٠٢٤-03-02",
            "2024-03-02T10:00:00+05:3é",
        ];
        for text in bad {
            assert!(parse_when(text).is_none(), "{text} should be refused");
        }
    }

    // ----- robustness -------------------------------------------------------------------------

    /// A small deterministic generator (xorshift), so failures reproduce without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn one_in(&mut self, n: usize) -> bool {
            self.below(n) == 0
        }
        fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
            list[self.below(list.len())]
        }
    }

    const KEYS: &[&str] = &[
        "resourceType",
        "id",
        "status",
        "text",
        "div",
        "coding",
        "code",
        "display",
        "system",
        "value",
        "unit",
        "valueQuantity",
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueDecimal",
        "valueCodeableConcept",
        "section",
        "title",
        "item",
        "linkId",
        "type",
        "answer",
        "start",
        "end",
        "date",
        "content",
        "attachment",
        "data",
        "contentType",
        "participant",
        "actor",
        "reference",
        "payload",
        "contentString",
        "effectiveDateTime",
        "effectivePeriod",
        "referenceRange",
        "low",
        "high",
        "interpretation",
        "author",
        "context",
        "period",
        "practiceSetting",
        "minutesDuration",
        "questionnaire",
        "_questionnaire",
        "extension",
        "url",
        "component",
        "requestedPeriod",
        "topic",
        "sender",
        "recipient",
        "reasonCode",
        "description",
        "answerOption",
    ];

    const STRINGS: &[&str] = &[
        "",
        " ",
        "2024",
        "2024-13-01",
        "2024-02-29T24:00:00Z",
        "2024-03-01T10:00:00+99:99",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "Z",
        "T",
        "+",
        "-",
        "<",
        "&",
        "&#x110000;",
        "&#99999999999999999999;",
        "&#xD800;",
        "<div><p>x</p",
        "<!--",
        "<a href='>'",
        "S:",
        "P: plan\nS:",
        "Minutes: 1e400",
        "Minutes: -5",
        "Practitioner/",
        "/",
        "|",
        "Questionnaire/",
        "Questionnaire/|",
        "😀 ünïcode",
        "text/html",
        "text/plain",
        "PGI+aGk8L2I+",
        "====",
        "YQ",
        "booked",
        "noshow",
        "entered-in-error",
        "boolean",
        "group",
        "decimal",
        "display",
        "http://loinc.org",
        "LL",
        "N",
        "DocumentReference",
        "Composition",
        "Observation",
        "Appointment",
        "Communication",
        "Questionnaire",
        "QuestionnaireResponse",
        "completed",
        "Location/1",
        "<5",
        "1e308",
    ];

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth > 3 { 7 } else { 10 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.one_in(2)),
            2 => [
                json!(0),
                json!(-1),
                json!(1e308),
                json!(-0.0),
                json!(3.5),
                json!(u64::MAX),
                json!(i64::MIN),
            ][rng.below(7)]
            .clone(),
            3..=6 => Value::String(rng.pick(STRINGS).to_string()),
            7 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
            8 => Value::Object(
                (0..rng.below(4))
                    .map(|_| (rng.pick(KEYS).to_string(), random_value(rng, depth + 1)))
                    .collect(),
            ),
            _ => deep(rng.pick(KEYS), MAX_DEPTH + 8),
        }
    }

    /// `{"key": [{"key": [ … ]}]}` nested `levels` deep: sections in sections, items in items.
    fn deep(key: &str, levels: usize) -> Value {
        let mut v =
            json!({ "title": "S", "text": { "div": "<p>x</p>" }, "linkId": "a", "answer": [{ "valueString": "y" }] });
        // Built by hand: `json!` would re-serialize the whole inner value at every level.
        for _ in 0..levels {
            let mut level = Map::new();
            level.insert(key.into(), Value::Array(vec![v]));
            level.insert("linkId".into(), "a".into());
            if key == "item" {
                level.insert("text".into(), "q".into());
            }
            v = Value::Object(level);
        }
        v
    }

    fn mutate(v: &mut Value, rng: &mut Rng) {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if rng.one_in(10) {
                        map.insert(key, random_value(rng, 0));
                    } else if rng.one_in(25) {
                        map.remove(&key);
                    } else if let Some(child) = map.get_mut(&key) {
                        mutate(child, rng);
                    }
                }
                if rng.one_in(8) {
                    map.insert(rng.pick(KEYS).to_string(), random_value(rng, 0));
                }
            }
            Value::Array(list) => {
                for child in list.iter_mut() {
                    if rng.one_in(10) {
                        *child = random_value(rng, 0);
                    } else {
                        mutate(child, rng);
                    }
                }
                if rng.one_in(8) {
                    list.push(random_value(rng, 0));
                }
            }
            _ => {
                if rng.one_in(6) {
                    *v = random_value(rng, 0);
                }
            }
        }
    }

    fn map_every_way(res: &Value) {
        let _ = note_from_fhir(res);
        let _ = lab_from_fhir(res);
        let _ = appointment_from_fhir(res);
        let _ = form_from_fhir(res);
        let _ = form_response_from_fhir(res);
        let _ = message_from_fhir(res);
        let _ = source_of(res);
        if let Ok((section, fields)) = entry_from_fhir(res)
            && let Some(back) = entry_to_fhir(section, "x", &fields)
        {
            let _ = entry_from_fhir(&back);
        }
        if let Value::Object(map) = res {
            for section in [
                Section::Notes,
                Section::Labs,
                Section::Appointments,
                Section::Messages,
                Section::Forms,
            ] {
                let _ = entry_to_fhir(section, "x", map);
            }
            let _ = form_response_to_fhir("x", map, Some(map));
        }
    }

    #[test]
    fn odd_json_never_panics() {
        let seeds = [
            ehr_document(),
            json!({ "resourceType": "Composition", "date": "2024", "section": [{ "title": "S", "text": { "div": "<p>x</p>" } }] }),
            synthea_glucose(),
            ehr_appointment(),
            intake_questionnaire(),
            form_to_fhir(
                "r",
                &fields(json!({ "title": "t", "kind": "response", "template": "t1",
                "answers": [{ "question": "a", "answer": "b" }] })),
            ),
            json!({ "resourceType": "Communication", "payload": [{ "contentString": "hi" }], "topic": { "text": "t" } }),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for seed in &seeds {
            map_every_way(seed);
            for _ in 0..1000 {
                let mut res = seed.clone();
                mutate(&mut res, &mut rng);
                map_every_way(&res);
            }
        }
        for _ in 0..300 {
            map_every_way(&random_value(&mut rng, 0));
        }
        for ty in IMPORTABLE {
            for key in [
                "section",
                "item",
                "answer",
                "code",
                "content",
                "valueQuantity",
                "participant",
            ] {
                let mut res = deep(key, 300);
                res["resourceType"] = (*ty).into();
                map_every_way(&res);
            }
        }
        let chars: Vec<char> = "<>&;#x\"'/ !-Tp0123456789:+Zé😀\n".chars().collect();
        for _ in 0..3000 {
            let s: String = (0..rng.below(30)).map(|_| chars[rng.below(chars.len())]).collect();
            let _ = xhtml_text(&s);
            let _ = parse_when(&s);
            let _ = parse_note_text(&s);
            let _ = template_id(&s);
            let _ = discipline_from_text(&s);
            let _ = decode_base64(&s);
        }
    }

    #[test]
    fn deep_nesting_is_refused_at_a_path_not_followed_forever() {
        let mut comp = json!({ "resourceType": "Composition", "date": "2024-01-01" });
        comp["section"] = Value::Array(vec![deep("section", 100)]);
        let (path, problem) = fhir_fault(note_from_fhir(&comp));
        assert!(path.starts_with("Composition.section[0].section[0]"), "{path}");
        assert!(problem.contains("deeper than"), "{problem}");
    }
}
