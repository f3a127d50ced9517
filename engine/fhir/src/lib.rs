//! FHIR R4 JSON resources to and from record entries.
//!
//! A clinic's EHR speaks FHIR; the record speaks entries (see [`phr_model::entry`]). This crate maps
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
//! A whole-record import and export (see [`map_bundle`]) also map the chart's other sections,
//! each to its own type: `procedures` (`Procedure`), `immunizations` (`Immunization`), `vitals`
//! (`Observation` of category vital-signs, components kept apart), `encounters` (`Encounter`),
//! `care_team` (`CareTeam`), besides conditions, allergies, medications, goals, plans, insurance
//! and the profile.
//!
//! Everything here is pure: no I/O, no clock, no network (an attachment given only by `url` is
//! not fetched). Every `*_from_fhir` checks `resourceType`, reports the first problem as
//! [`Error::Fhir`](phr_model::error::Error::Fhir) with a path such as `Observation.valueQuantity.value`, and returns the fields
//! as [`phr_model::entry::validate`] normalized them, so the entry is known valid. The one exception is a
//! session note whose resource names no author or no discipline: those keys are left out for
//! the caller (the clinic node knows its staff) to fill, and the rest is validated.
//!
//! Times (see `date.rs`): the record keeps wall-clock times without a zone (`NaiveDateTime`), so an
//! incoming `2024-03-02T10:00:00-05:00` is kept as 10:00 on that day (the offset is dropped, not
//! applied); outgoing instants carry the offset of the [`Zone`] the caller names (its own).
//!
//! Every resource type phr reads is one row of [`RESOURCES`]: its sections, the reader a
//! whole-record import uses, the reader a clinic's push uses, and the writer of the sections
//! that go out as that type. Import ([`map_bundle`]), export ([`export_bundle`]), the
//! clinic's readers ([`entry_from_fhir`], [`entry_to_fhir`]) and the clinic node all dispatch
//! through it, and [`upsert`] is the one rule deciding whether an incoming entry is created,
//! left unchanged or updated.
//!
//! Codemap: `json.rs` (the `At` cursor every reader uses), `date.rs`, `xhtml.rs` (narrative
//! text), `vocab.rs` (code systems, disciplines), `elements.rs` (FHIR data types shared by
//! resources), `reading.rs` (a resource in its bundle), `resources/` (one file per resource
//! type, and the table), `bundle.rs` (import and export of whole records), `overlay.rs` (an
//! imported entry's kept source with phr's edits on top, as export writes it), `upsert.rs`.

use serde_json::{Map, Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

mod bundle;
mod date;
mod elements;
mod ips;
mod json;
mod overlay;
mod reading;
mod resources;
mod summary;
#[cfg(test)]
mod test_util;
mod upsert;
mod vocab;
mod xhtml;

pub use bundle::{
    Exported, ImportReport, Mapped, SectionCounts, export_bundle, map_bundle, read_bundle, record_patient,
};
pub use date::{Zone, offset_at};
pub use ips::{Absence, Learned, export_ips};
pub use resources::appointment::{appointment_from_fhir, appointment_to_fhir};
pub use resources::communication::{message_from_fhir, message_to_fhir};
pub use resources::document_reference::{note_from_fhir, note_to_fhir};
pub use resources::observation::{lab_from_fhir, lab_to_fhir};
pub use resources::questionnaire::{form_from_fhir, form_to_fhir};
pub use resources::questionnaire_response::{form_response_from_fhir, form_response_to_fhir};
pub use resources::{RESOURCES, Resource, resource, writer_for};
pub use summary::TypeCounts;
pub use upsert::{Upsert, upsert};
pub use vocab::discipline_from_text;

/// An entry's fields, as [`phr_model::entry::validate`] takes and returns them.
type Fields = Map<String, Value>;

/// Keep `res`, the resource an entry is read from, with its fields (as one JSON string under
/// [`phr_model::entry::FHIR_KEY`]), so an export gives it back whole with phr's edits on top.
/// Bundle import and a clinic's push both keep it.
pub fn keep_source(fields: &mut Map<String, Value>, res: &Value) {
    fields.insert(phr_model::entry::FHIR_KEY.into(), res.to_string().into());
}

/// How deep nested sections and questionnaire items are followed; real documents use a few
/// levels, and a bound keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 32;

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

/// Map any resource a clinic may push to its section and validated entry fields.
pub fn entry_from_fhir(res: &Value) -> Result<(Section, Map<String, Value>)> {
    let pushable: Vec<&'static str> = RESOURCES.iter().filter(|r| r.push.is_some()).map(|r| r.ty).collect();
    let (_, ty) = json::resource(res, &pushable)?;
    let row =
        resource(ty).ok_or_else(|| json::fhir_error("resourceType", format!("is `{ty}`, which phr does not map")))?;
    Ok((row.sections[0], row.read_pushed(res)?))
}

/// Map an entry of a section a clinic writes into (the first section of a type it may push)
/// to its FHIR resource; `None` for other sections.
pub fn entry_to_fhir(section: Section, id: &str, fields: &Map<String, Value>) -> Option<Value> {
    let row = writer_for(section).filter(|r| r.push.is_some() && r.sections.first() == Some(&section))?;
    row.write(section, id, fields, &resources::Out::default())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::parse_when;
    use crate::elements::decode_base64;
    use crate::resources::document_reference::parse_note_text;
    use crate::resources::questionnaire_response::template_id;
    use crate::test_util::*;
    use crate::xhtml::xhtml_text;
    use phr_model::entry;
    use phr_model::error::Error;

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
        for ty in RESOURCES.iter().filter(|r| r.pushable()).map(|r| r.ty) {
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
                res["resourceType"] = ty.into();
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
