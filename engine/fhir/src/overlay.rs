//! The resource an entry imported from FHIR goes out as: the resource it came from, kept as
//! received (the entry's `fhir` key, see [`phr_model::entry::FHIR_KEY`]), with phr's edits on
//! top, so a record that went through phr gives its EHR back what the EHR sent.
//!
//! The rule: phr writes the entry's current fields as it writes any entry, and writes the fields
//! it reads from the kept source alone the same way; every top-level element the two writings
//! disagree on is an edit made in phr, and replaces the source's element whole (an edited name
//! replaces `code`, dropping the codings that described the old name). An element one writing
//! has and the other has not is set or removed; setting one choice of an R4 `[x]` element
//! (`onsetDateTime`) removes the source's other choices (`onsetPeriod`). An unedited entry
//! writes the same twice, so its source goes back as received, except:
//!
//! - `id` is the entry id (so importing the export gives the same entries back), and `meta`
//!   says when phr last changed the entry (`lastUpdated`) besides the source's own meta;
//! - references are made to resolve inside the exported Bundle (see [`Links`]).
//!
//! When the source is of another type than the one its section writes (a Procedure, an
//! Immunization or an Encounter that an older phr kept as a condition, a document or an
//! appointment, entries still in records imported then; a MedicationRequest as a medication,
//! which phr writes as a MedicationStatement), the source goes back as its own type and phr's
//! edits of the entry are not written into it. A source of another type not among those (a
//! Composition a clinic pushed as a note) is not given back: the entry goes out as phr writes
//! it, as does an entry whose source no longer reads alone as an entry of its section.
//!
//! References a source names only by `reference` get the names phr read for them from the rest
//! of its bundle (an encounter's clinician and place, a procedure's performer) as `display`
//! before anything else: the export may not hold what they point at, and reading the source
//! alone then finds the same names, so only phr's edits differ.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use phr_model::entry::{self, FHIR_KEY, SOURCE_KEY};
use phr_model::section::Section;

use crate::Fields;
use crate::json::{At, Path};
use crate::reading::{self, Cx, Mapping, Refs};
use crate::resources::{self, Out, Resource};

/// The top-level `[x]` elements of the types phr maps, by their name before the type.
const CHOICES: &[&str] = &[
    "onset",
    "abatement",
    "effective",
    "value",
    "medication",
    "occurrence",
    "performed",
    "deceased",
    "multipleBirth",
    "reported",
    "start",
    "timing",
];

/// The types kept by a section that writes another type, given back as their own type (the
/// first three only in entries an older phr imported: see the module docs).
const GIVEN_BACK_AS_THEMSELVES: &[&str] = &["Procedure", "Immunization", "Encounter", "MedicationRequest"];

/// The resources an export holds, to point the references of kept sources at them.
#[derive(Default)]
pub(crate) struct Links {
    /// `(Type, id)` of each entry's source → its `fullUrl` in the export.
    by_type_id: HashMap<(String, String), String>,
    /// A source's id alone → the same (`urn:uuid:ID` names the resource whose id is ID).
    by_id: HashMap<String, String>,
    /// The ids the patient's own resource went by.
    patients: HashSet<String>,
    /// The export's own `fullUrl`s (phr's writing of an edit points at them already).
    urls: HashSet<String>,
}

impl Links {
    /// Know an exported entry's `full_url`, and the `source` (`system|Type/id`) it came from.
    pub(crate) fn add(&mut self, source: Option<&str>, full_url: &str) {
        self.urls.insert(full_url.to_string());
        let Some(source) = source else { return };
        let key = source.rsplit_once('|').map_or(source, |(_, key)| key);
        let Some((ty, id)) = key.split_once('/') else { return };
        if ty == "Patient" {
            self.patients.insert(id.to_string());
        }
        self.by_type_id
            .insert((ty.to_string(), id.to_string()), full_url.to_string());
        self.by_id.insert(id.to_string(), full_url.to_string());
    }

    /// Where a literal reference of a kept source points in the export: `Some(None)` for the
    /// patient, `Some(Some(url))` for an exported entry, `None` for what the export lacks.
    fn resolve<'a>(&'a self, reference: &'a str) -> Option<Option<&'a str>> {
        if self.urls.contains(reference) {
            return Some(Some(reference));
        }
        if let Some(id) = reference.strip_prefix("urn:uuid:") {
            if self.patients.contains(id) {
                return Some(None);
            }
            return self.by_id.get(id).map(|u| Some(u.as_str()));
        }
        let (ty, id) = reading::type_and_id(reference)?;
        if ty == "Patient" {
            // A bundle is one patient's record: its Patient is the record's.
            return Some(None);
        }
        self.by_type_id
            .get(&(ty.to_string(), id.to_string()))
            .map(|u| Some(u.as_str()))
    }
}

/// The source an entry keeps, if it was imported from FHIR (and the kept text still reads).
pub(crate) fn kept_source(fields: &Fields) -> Option<Value> {
    let text = fields.get(FHIR_KEY)?.as_str()?;
    serde_json::from_str(text).ok().filter(Value::is_object)
}

/// The resource an entry with a kept `source` goes out as (see the module docs); `None` if
/// `row` does not write `section`.
pub(crate) fn write_kept(
    row: &Resource,
    section: Section,
    id: &str,
    fields: &Fields,
    source: Value,
    out: &Out,
    links: &Links,
) -> Option<Value> {
    let ours = row.write(section, id, fields, out)?;
    // Named first, so that reading the source alone finds the names its bundle gave (an
    // encounter's clinician): only what phr changed differs from phr's own writing.
    let mut source = source;
    name_people_and_places(&mut source, fields);
    let mut res = if ours.get("resourceType") == source.get("resourceType") {
        match read_alone(&source, section).and_then(|mut read| {
            for key in ["created", "updated", SOURCE_KEY] {
                if let Some(v) = fields.get(key) {
                    read.insert(key.into(), v.clone());
                }
            }
            row.write(section, id, &read, out)
        }) {
            Some(base) => overlay(source, &ours, &base),
            None => ours,
        }
    } else if source
        .get("resourceType")
        .and_then(Value::as_str)
        .is_some_and(|ty| GIVEN_BACK_AS_THEMSELVES.contains(&ty))
    {
        source
    } else {
        // A note pushed as a Composition goes out as the DocumentReference phr writes for it.
        return Some(ours);
    };
    relink(&mut res, links, out.patient);
    if let Value::Object(m) = &mut res {
        m.insert("id".into(), id.into());
    }
    Some(res)
}

/// The validated fields phr reads from `source` alone (no other resource of its bundle), if
/// it reads as an entry of `section`.
fn read_alone(source: &Value, section: Section) -> Option<Fields> {
    let ty = source.get("resourceType")?.as_str()?;
    let row = resources::resource(ty)?;
    let mut refs = Refs::default();
    refs.add(None, source);
    let tag = reading::phr_section_tag(source).and_then(|s| s.parse::<Section>().ok());
    let cx = Cx {
        refs: &refs,
        res: source,
        from_phr: tag.is_some(),
        tag,
    };
    let at = At {
        value: Some(source),
        path: Path::new(ty),
    };
    match (row.read)(&at, &cx).ok()? {
        Mapping::Entry(s, fields) if s == section => entry::validate(s, &fields).ok(),
        Mapping::Checked(s, fields) if s == section => Some(fields),
        _ => None,
    }
}

/// `source` with every top-level element `ours` and `base` disagree on taken from `ours`.
fn overlay(source: Value, ours: &Value, base: &Value) -> Value {
    let (Value::Object(mut res), Value::Object(ours), Value::Object(base)) = (source, ours, base) else {
        return ours.clone();
    };
    let keys: HashSet<&String> = ours.keys().chain(base.keys()).collect();
    for key in keys {
        if matches!(key.as_str(), "resourceType" | "id" | "meta") || ours.get(key) == base.get(key) {
            continue;
        }
        match ours.get(key) {
            Some(v) => {
                if let Some(choice) = choice_of(key) {
                    res.retain(|k, _| choice_of(k) != Some(choice));
                }
                res.insert(key.clone(), v.clone());
            }
            None => {
                res.remove(key);
            }
        }
    }
    if let Some(updated) = ours.get("meta").and_then(|m| m.get("lastUpdated")) {
        let meta = res.entry("meta").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            meta.insert("lastUpdated".into(), updated.clone());
        }
    }
    Value::Object(res)
}

/// The `[x]` element `key` is one choice of (`onset` for `onsetDateTime`).
fn choice_of(key: &str) -> Option<&'static str> {
    CHOICES.iter().copied().find(|c| {
        key.strip_prefix(c)
            .is_some_and(|rest| rest.starts_with(|ch: char| ch.is_ascii_uppercase()))
    })
}

/// Give the references a source given back as itself names people and places by the names phr
/// read for them from the rest of its bundle (an encounter's clinician and place, a request's
/// prescriber), when they have no `display`: the export may not hold what they point at.
fn name_people_and_places(res: &mut Value, fields: &Fields) {
    let name = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    let ty = res
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut places: Vec<&mut Value> = Vec::new();
    match ty.as_str() {
        "Encounter" => {
            let Value::Object(m) = res else { return };
            let (mut people, mut at) = (Vec::new(), Vec::new());
            for (key, value) in m.iter_mut() {
                match key.as_str() {
                    "participant" => people.extend(
                        value
                            .as_array_mut()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.get_mut("individual")),
                    ),
                    "location" => at.extend(
                        value
                            .as_array_mut()
                            .into_iter()
                            .flatten()
                            .filter_map(|l| l.get_mut("location")),
                    ),
                    "serviceProvider" => places.push(value),
                    _ => {}
                }
            }
            name_first(people, name("clinician"));
            at.append(&mut places);
            name_first(at, name("location"));
            name_one_reason(res, fields);
        }
        "Procedure" | "Immunization" => {
            let Value::Object(m) = res else { return };
            let (mut people, mut at) = (Vec::new(), Vec::new());
            for (key, value) in m.iter_mut() {
                match key.as_str() {
                    "performer" => people.extend(
                        value
                            .as_array_mut()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.get_mut("actor")),
                    ),
                    "location" => at.push(value),
                    _ => {}
                }
            }
            name_first(people, name("performer"));
            name_first(at, name("location"));
            name_one_reason(res, fields);
        }
        "CareTeam" => {
            let organizations = res
                .get_mut("managingOrganization")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .take(1)
                .collect();
            name_first(organizations, name("organization"));
        }
        "MedicationRequest" => {
            if let Some(requester) = res.get_mut("requester") {
                name_first(vec![requester], name("prescriber"));
            }
        }
        _ => {}
    }
}

/// A reason given only as one reference (a procedure's to the condition it treats) is named by
/// the reason phr read for it; several are left as they are, since the words cannot be split.
fn name_one_reason(res: &mut Value, fields: &Fields) {
    if res.get("reasonCode").is_some() {
        return;
    }
    let reason = fields.get("reason").and_then(Value::as_str).map(str::to_string);
    if let Some(Value::Array(refs)) = res.get_mut("reasonReference")
        && refs.len() == 1
    {
        name_first(refs.iter_mut().collect(), reason);
    }
}

/// Set `display` on the first of `refs` that has a reference and no display.
fn name_first(refs: Vec<&mut Value>, name: Option<String>) {
    let Some(name) = name else { return };
    if let Some(Value::Object(r)) = refs
        .into_iter()
        .find(|r| r.get("reference").is_some() && r.get("display").is_none())
    {
        r.insert("display".into(), name.into());
    }
}

/// Point every literal reference of a kept source at what the export holds: the patient's at
/// the exported patient, an exported entry's at its `fullUrl`. A reference to a resource the
/// export lacks (a Practitioner, an Organization, a Claim) keeps its `display`, `identifier`
/// and `type` without the `reference`; with none of those it is dropped, and so is an array or
/// element left empty. R4 allows that everywhere phr's sources have such references (an
/// encounter's `serviceProvider`, a request's `requester`, an observation's `hasMember`); the
/// required ones (`subject`, `patient`) point at the patient, and `#contained` ones are kept.
fn relink(res: &mut Value, links: &Links, patient: &Value) {
    if let Value::Object(m) = res {
        for (key, value) in m.iter_mut() {
            // Import refuses a resource about anyone but the bundle's patient, so these point
            // at the patient even when the patient's resource is not known by the same name (a
            // source from a phr export names its Patient by that export's fullUrl).
            if matches!(key.as_str(), "subject" | "patient" | "beneficiary") && value.get("reference").is_some() {
                *value = patient.clone();
                continue;
            }
            relink_value(value, links, patient);
        }
        m.retain(|_, v| !is_empty(v));
    }
}

/// Relink within `value`; returns nothing, leaving empties for the caller to drop.
fn relink_value(value: &mut Value, links: &Links, patient: &Value) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference")
                && !r.starts_with('#')
            {
                match links.resolve(r.trim()) {
                    Some(None) => {
                        *value = patient.clone();
                        return;
                    }
                    Some(Some(url)) => {
                        m.insert("reference".into(), url.into());
                    }
                    None => {
                        m.remove("reference");
                        if !["display", "identifier"].iter().any(|k| m.contains_key(*k)) {
                            m.clear();
                        }
                    }
                }
                return;
            }
            for v in m.values_mut() {
                relink_value(v, links, patient);
            }
            m.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                relink_value(v, links, patient);
            }
            items.retain(|v| !is_empty(v));
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phr_edits_replace_whole_elements_and_choices() {
        let source = json!({
            "resourceType": "Condition", "id": "c1",
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "195662009" }], "text": "Pharyngitis" },
            "onsetDateTime": "2015", "recordedDate": "2015-03-02"
        });
        let base =
            json!({ "resourceType": "Condition", "code": { "text": "Pharyngitis" }, "onsetDateTime": "2015-01-01" });
        let same = overlay(source.clone(), &base, &base);
        assert_eq!(same, source, "an unedited entry goes back as received");
        let ours = json!({ "resourceType": "Condition", "code": { "text": "Strep throat" }, "onsetPeriod": { "start": "2015-02-01" } });
        let edited = overlay(source, &ours, &base);
        assert_eq!(
            edited,
            json!({
                "resourceType": "Condition", "id": "c1", "code": { "text": "Strep throat" },
                "onsetPeriod": { "start": "2015-02-01" }, "recordedDate": "2015-03-02"
            })
        );
    }

    #[test]
    fn references_point_inside_the_export_or_keep_their_words() {
        let mut links = Links::default();
        links.add(Some("ehr|Patient/p1"), "urn:uuid:patient");
        links.add(Some("ehr|Encounter/e1"), "urn:uuid:visit");
        links.add(None, "urn:uuid:typed");
        let patient = json!({ "reference": "urn:uuid:patient" });
        let mut res = json!({
            "resourceType": "Immunization",
            "patient": { "reference": "urn:uuid:p1" },
            "encounter": { "reference": "Encounter/e1" },
            "performer": [{ "actor": { "reference": "Practitioner/9" } }],
            "location": { "reference": "Location/3", "display": "Clinic" },
            "contained": [{ "resourceType": "Medication", "id": "m" }],
            "reasonReference": [{ "reference": "#m" }],
            "basedOn": [{ "reference": "urn:uuid:typed" }]
        });
        relink(&mut res, &links, &patient);
        assert_eq!(
            res,
            json!({
                "resourceType": "Immunization",
                "patient": { "reference": "urn:uuid:patient" },
                "encounter": { "reference": "urn:uuid:visit" },
                "location": { "display": "Clinic" },
                "contained": [{ "resourceType": "Medication", "id": "m" }],
                "reasonReference": [{ "reference": "#m" }],
                "basedOn": [{ "reference": "urn:uuid:typed" }]
            })
        );
    }
}
