//! The resources a whole-record export carries beyond what a clinic pushes: Patient, Condition,
//! Procedure, AllergyIntolerance, MedicationRequest and MedicationStatement, Immunization,
//! Encounter, DocumentReference (as a document), Goal, CarePlan, Coverage, and the caregivers'
//! log; each read into a section's fields, and (per section) written back out.
//!
//! Readers take a [`Cx`]: the bundle the resource came in, so a reference such as
//! `urn:uuid:…` or `Practitioner/7` is read as the name of what it points at. A resource that is
//! valid FHIR but holds nothing the record can keep (an allergy entered in error, an
//! observation with no value) is a [`Mapping::Skip`] with the reason, reported by the caller;
//! a malformed one is an [`Error::Fhir`] with its path.
//!
//! Writers produce what the readers read back unchanged, so a record exported and imported
//! again holds the same fields; where FHIR has no element for a field (a goal's baseline, a dose
//! that is not a number) it travels in an extension `urn:phr:field:NAME`.

use std::collections::HashMap;

use chrono::{NaiveDateTime, NaiveTime};
use serde_json::{Map, Value, json};

use super::{
    At, BAD_DATE, CATEGORY, DISCIPLINE_DISPLAY, Fields, attachment_text, codings, concept_label, date_at,
    discipline_display, exact_number, first_date, format_datetime, json_number, parse_when, pick_discipline,
    text_field, utc, xhtml_text,
};
use phr_model::error::Result;
use phr_model::section::Section;

/// Coding system of the tag naming the section an exported resource came from.
pub(super) const PHR_SECTION: &str = "urn:phr:section";
/// Identifier system carrying an imported entry's source through an export.
pub(super) const PHR_SOURCE: &str = "urn:phr:source";
/// Identifier system naming an entry by its id, in references to resources not exported.
pub(super) const PHR_ENTRY: &str = "urn:phr:entry";
/// Identifier system of the record (the patient's root key).
pub(super) const PHR_RECORD: &str = "urn:phr:record";
const PHR_DISCIPLINE: &str = "urn:phr:discipline";
const PHR_DOCUMENT_KIND: &str = "urn:phr:document-kind";
const PHR_CAREGIVER_LOG: &str = "urn:phr:caregiver-log";
/// Extension URL prefix for fields FHIR has no element for; the field name follows.
const PHR_FIELD: &str = "urn:phr:field:";

const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const CONTACT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
const UCUM: &str = "http://unitsofmeasure.org";

/// Stands in for an allergy reaction that only has a severity, since FHIR needs a manifestation
/// to hang the severity on; read back as no reaction.
const UNDESCRIBED_REACTION: &str = "Reaction not described";
/// A note's clinician when the source names none (the record requires one).
const UNNAMED_CLINICIAN: &str = "not named in the source";

/// What one resource becomes.
pub(super) enum Mapping {
    /// An entry of this section with these fields (validated by the caller).
    Entry(Section, Fields),
    /// The same, already validated by a mapper that validates its own result.
    Checked(Section, Fields),
    /// Nothing: valid FHIR, but nothing the record keeps; the reason is reported.
    Skip(&'static str),
}

use Mapping::{Entry, Skip};

// ---------------------------------------------------------------------------------------------
// References within a bundle
// ---------------------------------------------------------------------------------------------

/// The resources of one bundle by `fullUrl` and by `Type/id`, to follow references.
#[derive(Default)]
pub(super) struct Refs<'a> {
    by_url: HashMap<&'a str, &'a Value>,
    by_id: HashMap<(&'a str, &'a str), &'a Value>,
}

impl<'a> Refs<'a> {
    /// Know `res`, found under `full_url` if it has one.
    pub(super) fn add(&mut self, full_url: Option<&'a str>, res: &'a Value) {
        if let Some(url) = full_url {
            self.by_url.insert(url, res);
        }
        if let (Some(ty), Some(id)) = (
            res.get("resourceType").and_then(Value::as_str),
            res.get("id").and_then(Value::as_str),
        ) {
            self.by_id.insert((ty, id), res);
        }
    }

    /// What `reference` points at: a resource contained in `within` (`#id`), an entry's
    /// `fullUrl`, or `Type/id` (relative, absolute or versioned) matched by type and id.
    pub(super) fn resolve(&self, reference: &str, within: &'a Value) -> Option<&'a Value> {
        if let Some(local) = reference.strip_prefix('#') {
            return within
                .get("contained")?
                .as_array()?
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(local));
        }
        if let Some(found) = self.by_url.get(reference) {
            return Some(found);
        }
        let (ty, id) = type_and_id(reference)?;
        self.by_id.get(&(ty, id)).copied()
    }
}

/// The `Type` and `id` a literal reference names: `Type/id`, `https://x/fhir/Type/id`,
/// `…/Type/id/_history/2`.
pub(super) fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let mut parts: Vec<&str> = reference.split('/').collect();
    if let Some(at) = parts.iter().position(|p| *p == "_history") {
        parts.truncate(at);
    }
    let id = parts.pop()?;
    let ty = parts.pop()?;
    let is_type = ty.starts_with(|c: char| c.is_ascii_uppercase()) && ty.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !id.is_empty()).then_some((ty, id))
}

/// Reading one resource of a bundle.
pub(super) struct Cx<'r, 'a> {
    /// The bundle's resources.
    pub(super) refs: &'r Refs<'a>,
    /// The resource being read (for `#contained` references).
    pub(super) res: &'a Value,
    /// Whether it came from a phr export, whose references name entries by id.
    pub(super) from_phr: bool,
}

impl<'a> Cx<'_, 'a> {
    /// The resource a Reference points at, if it is in the bundle.
    fn target(&self, reference: &At<'a>) -> Result<Option<&'a Value>> {
        Ok(reference
            .get("reference")?
            .str()?
            .and_then(|r| self.refs.resolve(r.trim(), self.res)))
    }

    /// A Reference in words: its display, else the name of what it points at.
    fn name(&self, reference: &At<'a>) -> Result<Option<String>> {
        if let Some(display) = reference.get("display")?.text()? {
            return Ok(Some(display));
        }
        Ok(self.target(reference)?.and_then(name_of))
    }

    /// The resource type a Reference points at: its `type`, its target's, or its URL's.
    fn kind(&self, reference: &At<'a>) -> Result<Option<String>> {
        if let Some(ty) = super::reference_type(reference)? {
            return Ok(Some(ty));
        }
        Ok(self
            .target(reference)?
            .and_then(|t| t.get("resourceType")?.as_str())
            .map(str::to_string))
    }

    /// The name of the first person among `refs` (a practitioner, or not said to be anything else).
    fn person(&self, refs: &[At<'a>]) -> Result<Option<String>> {
        for r in refs {
            match self.kind(r)?.as_deref() {
                None | Some("Practitioner" | "PractitionerRole" | "RelatedPerson" | "Person") => {
                    if let Some(name) = self.name(r)? {
                        return Ok(Some(name));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The entry id of the `ty` resource a Reference points at: the target's own entry id
    /// when it is in the bundle, else the one derived from `Type/id`, else one named by an
    /// `urn:phr:entry` identifier.
    fn entry_id(&self, reference: &At<'a>, ty: &str) -> Result<Option<String>> {
        if let Some(target) = self.target(reference)? {
            return Ok(entry_id_of(target));
        }
        let identifier = reference.get("identifier")?;
        if identifier.get("system")?.str()? == Some(PHR_ENTRY) {
            return identifier.get("value")?.text();
        }
        let Some(literal) = reference.get("reference")?.text()? else {
            return Ok(None);
        };
        Ok(match type_and_id(&literal) {
            // An export names entries by their own id.
            Some((t, id)) if t == ty && self.from_phr => Some(id.to_string()),
            Some((t, id)) if t == ty => Some(super::entry_id(t, id)),
            _ => None,
        })
    }
}

/// The entry id a resource of a bundle keeps: its own id if it came from a phr export, else
/// derived from `Type/id`.
pub(super) fn entry_id_of(res: &Value) -> Option<String> {
    let ty = res.get("resourceType")?.as_str()?;
    let id = res.get("id")?.as_str()?;
    if phr_section_tag(res).is_some() {
        Some(id.to_string())
    } else {
        Some(super::entry_id(ty, id))
    }
}

/// The section named by a resource's `urn:phr:section` tag, as text (checked by the caller).
pub(super) fn phr_section_tag(res: &Value) -> Option<&str> {
    res.get("meta")?
        .get("tag")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(PHR_SECTION))?
        .get("code")?
        .as_str()
}

/// The name of a resource pointed at, for display; lenient, since it only labels another entry.
fn name_of(target: &Value) -> Option<String> {
    let ty = target.get("resourceType")?.as_str()?;
    let at = At {
        value: Some(target),
        path: super::Path::new(""),
    };
    match ty {
        "Practitioner" | "Patient" | "RelatedPerson" | "Person" => human_name(&at.get("name").ok()?).ok()?,
        "Organization" | "Location" | "HealthcareService" | "Group" | "InsurancePlan" => {
            at.get("name").ok()?.text().ok()?
        }
        "PractitionerRole" => at.get("practitioner").ok()?.get("display").ok()?.text().ok()?,
        _ => concept_label(&at.get("code").ok()?).ok()?,
    }
}

// ---------------------------------------------------------------------------------------------
// Small readers and writers
// ---------------------------------------------------------------------------------------------

fn put(fields: &mut Fields, key: &str, value: Option<String>) {
    if let Some(v) = value {
        fields.insert(key.into(), v.into());
    }
}

/// The first code among a CodeableConcept's codings.
fn first_code(concept: &At) -> Result<Option<String>> {
    Ok(codings(concept)?.into_iter().find_map(|c| c.code))
}

/// A status CodeableConcept's code (first coding's), else its text; lower case.
fn status_code(concept: &At) -> Result<Option<String>> {
    let code = match first_code(concept)? {
        Some(c) => Some(c),
        None => concept.get("text")?.text()?,
    };
    Ok(code.map(|c| c.to_ascii_lowercase()))
}

/// The labels of a list of CodeableConcepts.
fn labels(list: &At) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for concept in list.items()? {
        out.extend(concept_label(&concept)?);
    }
    Ok(out)
}

/// The text of every `note` (Annotation).
fn note_texts(root: &At) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for note in root.get("note")?.items()? {
        out.extend(note.get("text")?.text()?);
    }
    Ok(out)
}

/// Paragraphs as one notes text, or nothing.
fn paragraphs(parts: Vec<String>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// A date-only element as the record's `YYYY-MM-DD`.
fn date(root: &At, key: &'static str) -> Result<Option<String>> {
    date_at(&root.get(key)?)
}

/// A person's name: the official (or usual) one, else the first; its text, else given and
/// family names (titles such as "Dr." are left out).
fn human_name(list: &At) -> Result<Option<String>> {
    let names = list.items()?;
    let mut pick = None;
    for name in &names {
        let use_ = name.get("use")?.text()?;
        if matches!(use_.as_deref(), Some("official" | "usual")) {
            pick = Some(name);
            break;
        }
        if pick.is_none() && use_.as_deref() != Some("old") {
            pick = Some(name);
        }
    }
    match pick.or(names.first()) {
        Some(name) => name_text(name),
        None => Ok(None),
    }
}

/// One HumanName in words: its text, else given and family names.
fn name_text(name: &At) -> Result<Option<String>> {
    if let Some(text) = name.get("text")?.text()? {
        return Ok(Some(text));
    }
    let mut parts = Vec::new();
    for given in name.get("given")?.items()? {
        parts.extend(given.text()?);
    }
    parts.extend(name.get("family")?.text()?);
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

/// The first current contact point of a kind (`phone`, `email`).
fn telecom(list: &At, system: &str) -> Result<Option<String>> {
    for point in list.items()? {
        if point.get("system")?.str()? == Some(system)
            && point.get("use")?.str()? != Some("old")
            && let Some(value) = point.get("value")?.text()?
        {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A postal address as one line: home (else the first current one); its text, else its parts.
fn address_text(list: &At) -> Result<Option<String>> {
    let all = list.items()?;
    let mut pick = None;
    for a in &all {
        let use_ = a.get("use")?.text()?;
        if use_.as_deref() == Some("home") {
            pick = Some(a);
            break;
        }
        if pick.is_none() && use_.as_deref() != Some("old") {
            pick = Some(a);
        }
    }
    let Some(a) = pick else { return Ok(None) };
    if let Some(text) = a.get("text")?.text()? {
        return Ok(Some(text));
    }
    let mut parts: Vec<String> = Vec::new();
    for line in a.get("line")?.items()? {
        parts.extend(line.text()?);
    }
    parts.extend(a.get("city")?.text()?);
    let state_zip: Vec<String> = [a.get("state")?.text()?, a.get("postalCode")?.text()?]
        .into_iter()
        .flatten()
        .collect();
    if !state_zip.is_empty() {
        parts.push(state_zip.join(" "));
    }
    parts.extend(a.get("country")?.text()?);
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// The extension `urn:phr:field:NAME` of an element, if present.
fn field_ext<'a>(root: &At<'a>, name: &str) -> Result<Option<At<'a>>> {
    for ext in root.get("extension")?.items()? {
        if ext.get("url")?.str()?.and_then(|u| u.strip_prefix(PHR_FIELD)) == Some(name) {
            return Ok(Some(ext));
        }
    }
    Ok(None)
}

fn ext_value(name: &str, key: &str, value: Value) -> Value {
    let mut ext = Map::new();
    ext.insert("url".into(), format!("{PHR_FIELD}{name}").into());
    ext.insert(key.into(), value);
    Value::Object(ext)
}

/// A discipline named by a `urn:phr:discipline` coding, else recognized in the concepts' words.
fn discipline_in(concepts: &[At]) -> Result<Option<&'static str>> {
    for concept in concepts {
        for c in codings(concept)? {
            if c.system.as_deref() == Some(PHR_DISCIPLINE)
                && let Some((word, _)) = DISCIPLINE_DISPLAY.iter().find(|(w, _)| Some(*w) == c.code.as_deref())
            {
                return Ok(Some(word));
            }
        }
    }
    pick_discipline(&[], concepts)
}

fn discipline_concept(word: &str) -> Value {
    let display = discipline_display(word);
    json!({ "coding": [{ "system": PHR_DISCIPLINE, "code": word, "display": display }], "text": display })
}

/// Whether a status says the resource was entered in error (and so holds nothing true).
fn in_error(status: Option<&str>) -> bool {
    status == Some("entered-in-error")
}

fn number_field(fields: &Fields, key: &str) -> Option<f64> {
    fields.get(key).and_then(Value::as_f64)
}

// ---------------------------------------------------------------------------------------------
// Reading resources
// ---------------------------------------------------------------------------------------------

/// Patient → the profile's fields. `name` is left out when the resource gives none: an
/// existing profile keeps its own, and a new one is refused by the caller.
pub(super) fn patient(root: &At, cx: &Cx) -> Result<Mapping> {
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

/// Condition → a condition.
pub(super) fn condition(root: &At, _cx: &Cx) -> Result<Mapping> {
    let verification = status_code(&root.get("verificationStatus")?)?;
    match verification.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        // A diagnosis ruled out is not one the patient has.
        Some("refuted") => return Ok(Skip("refuted")),
        _ => {}
    }
    let code = root.get("code")?;
    let Some(name) = concept_label(&code)? else {
        return Ok(Skip("no code"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());
    put(&mut fields, "code", first_code(&code)?);
    let onset = first_date(&[root.get("onsetDateTime")?, root.get("onsetPeriod")?.get("start")?])?;
    let abatement = root.get("abatementPeriod")?;
    let resolved = first_date(&[
        root.get("abatementDateTime")?,
        abatement.get("end")?,
        abatement.get("start")?,
    ])?;
    let clinical = root.get("clinicalStatus")?;
    let status = match status_code(&clinical)?.as_deref() {
        Some("active" | "recurrence" | "relapse") => "active",
        Some("inactive" | "remission") => "inactive",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(clinical.fail(format!(
                "`{other}` is not a condition status; R4 has active, recurrence, relapse, inactive, remission, resolved"
            )));
        }
        None if resolved.is_some() => "resolved",
        None => "active",
    };
    fields.insert("status".into(), status.into());
    put(&mut fields, "onset", onset);
    put(&mut fields, "resolved", resolved);
    let mut notes = Vec::new();
    if let Some(v) = verification.filter(|v| v != "confirmed") {
        notes.push(format!("Verification: {v}."));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Conditions, fields))
}

/// Procedure → a condition of the medical history, named "Procedure: …".
pub(super) fn procedure(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = status_at.text()?;
    let (record_status, note) = match status.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("preparation" | "in-progress" | "on-hold") => ("active", None),
        Some("completed") | Some("unknown") | None => ("resolved", None),
        Some("not-done") => ("inactive", Some("Not done.")),
        Some("stopped") => ("inactive", Some("Stopped before it was completed.")),
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a procedure status; R4 has preparation, in-progress, not-done, on-hold, stopped, completed, entered-in-error, unknown"
            )));
        }
    };
    let code = root.get("code")?;
    let Some(label) = concept_label(&code)? else {
        return Ok(Skip("no code"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), format!("Procedure: {label}").into());
    put(&mut fields, "code", first_code(&code)?);
    fields.insert("status".into(), record_status.into());
    let period = root.get("performedPeriod")?;
    let start = first_date(&[root.get("performedDateTime")?, period.get("start")?])?;
    let end = first_date(&[period.get("end")?])?;
    put(&mut fields, "onset", start.clone());
    if record_status == "resolved" {
        put(&mut fields, "resolved", end.or(start));
    }
    let mut notes: Vec<String> = note.map(str::to_string).into_iter().collect();
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    if !reasons.is_empty() {
        notes.push(format!("Reason: {}.", reasons.join("; ")));
    }
    let mut performers = Vec::new();
    for p in root.get("performer")?.items()? {
        performers.extend(cx.name(&p.get("actor")?)?);
    }
    if !performers.is_empty() {
        notes.push(format!("Performed by {}.", performers.join(", ")));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Conditions, fields))
}

/// AllergyIntolerance → an allergy.
pub(super) fn allergy(root: &At, _cx: &Cx) -> Result<Mapping> {
    let verification = status_code(&root.get("verificationStatus")?)?;
    match verification.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("refuted") => return Ok(Skip("refuted")),
        _ => {}
    }
    let reactions = root.get("reaction")?.items()?;
    let mut substance = concept_label(&root.get("code")?)?;
    for r in &reactions {
        if substance.is_none() {
            substance = concept_label(&r.get("substance")?)?;
        }
    }
    let Some(substance) = substance else {
        return Ok(Skip("no substance"));
    };
    let mut fields = Fields::new();
    fields.insert("substance".into(), substance.into());
    let mut seen: Vec<String> = Vec::new();
    let mut severity = None;
    for r in &reactions {
        for m in labels(&r.get("manifestation")?)? {
            if m != UNDESCRIBED_REACTION && !seen.contains(&m) {
                seen.push(m);
            }
        }
        if let Some(d) = r.get("description")?.text()? {
            seen.push(d);
        }
        let sev = r.get("severity")?;
        if severity.is_none()
            && let Some(s) = sev.text()?
        {
            if !matches!(s.as_str(), "mild" | "moderate" | "severe") {
                return Err(sev.fail(format!(
                    "`{s}` is not a reaction severity; R4 has mild, moderate, severe"
                )));
            }
            severity = Some(s);
        }
    }
    if !seen.is_empty() {
        fields.insert("reaction".into(), seen.join(", ").into());
    }
    put(&mut fields, "severity", severity);
    let clinical = root.get("clinicalStatus")?;
    let status = match status_code(&clinical)?.as_deref() {
        None | Some("active") => "active",
        Some("inactive") => "inactive",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(clinical.fail(format!(
                "`{other}` is not an allergy status; R4 has active, inactive, resolved"
            )));
        }
    };
    fields.insert("status".into(), status.into());
    put(
        &mut fields,
        "recorded",
        first_date(&[root.get("recordedDate")?, root.get("onsetDateTime")?])?,
    );
    let mut about = Vec::new();
    let mut categories = Vec::new();
    for c in root.get("category")?.items()? {
        categories.extend(c.text()?);
    }
    let kind = root.get("type")?.text()?;
    if !categories.is_empty() || kind.is_some() {
        let what = kind.unwrap_or_else(|| "allergy".into());
        about.push(match categories.is_empty() {
            true => format!("Type: {what}."),
            false => format!("Type: {} {what}.", categories.join("/")),
        });
    }
    if let Some(c) = root.get("criticality")?.text()? {
        about.push(format!("Criticality: {c}."));
    }
    if let Some(v) = verification.filter(|v| v != "confirmed") {
        about.push(format!("Verification: {v}."));
    }
    let mut notes = Vec::new();
    if !about.is_empty() {
        notes.push(about.join(" "));
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Allergies, fields))
}

/// MedicationRequest or MedicationStatement → a medication.
///
/// A medication that ended on a date the source does not give is `inactive`: the record's
/// `stopped` status needs the date, and calling it active would mislead.
pub(super) fn medication(root: &At, cx: &Cx, request: bool) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = status_at.text()?;
    if in_error(status.as_deref()) {
        return Ok(Skip("entered-in-error"));
    }
    let concept = root.get("medicationCodeableConcept")?;
    let name = match concept_label(&concept)? {
        Some(n) => Some(n),
        None => cx.name(&root.get("medicationReference")?)?,
    };
    let Some(name) = name else {
        return Ok(Skip("medication not named"));
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());

    let dosage = if request {
        root.get("dosageInstruction")?
    } else {
        root.get("dosage")?
    };
    if let Some(d) = dosage.items()?.into_iter().next() {
        let mut dose = None;
        if let Some(rate) = d.get("doseAndRate")?.items()?.into_iter().next() {
            let q = rate.get("doseQuantity")?;
            if let Some(n) = q.get("value")?.number()? {
                dose = Some(match q.get("unit")?.text()? {
                    Some(u) => format!("{n} {u}"),
                    None => n.to_string(),
                });
            }
            let range = rate.get("doseRange")?;
            if dose.is_none()
                && let (Some(lo), Some(hi)) = (
                    range.get("low")?.get("value")?.number()?,
                    range.get("high")?.get("value")?.number()?,
                )
            {
                dose = Some(match range.get("high")?.get("unit")?.text()? {
                    Some(u) => format!("{lo}-{hi} {u}"),
                    None => format!("{lo}-{hi}"),
                });
            }
        }
        if dose.is_none()
            && let Some(ext) = field_ext(&d, "dose")?
        {
            dose = ext.get("valueString")?.text()?;
        }
        put(&mut fields, "dose", dose);
        let timing = d.get("timing")?;
        let schedule = match d.get("text")?.text()? {
            Some(t) => Some(t),
            None => match concept_label(&timing.get("code")?)? {
                Some(t) => Some(t),
                None => repeat_words(&timing.get("repeat")?)?,
            },
        };
        let schedule = match (schedule, d.get("asNeededBoolean")?.boolean()?) {
            (Some(s), Some(true)) => Some(format!("{s}, as needed")),
            (None, Some(true)) => Some("as needed".to_string()),
            (s, _) => s,
        };
        put(&mut fields, "schedule", schedule);
        put(&mut fields, "route", concept_label(&d.get("route")?)?);
    }

    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    if !reasons.is_empty() {
        fields.insert("reason".into(), reasons.join("; ").into());
    }

    let (started, stopped) = if request {
        put(&mut fields, "prescriber", cx.person(&[root.get("requester")?])?);
        let bounds = match dosage.items()?.into_iter().next() {
            Some(d) => d.get("timing")?.get("repeat")?.get("boundsPeriod")?,
            None => root.get("dosageInstruction")?,
        };
        let validity = root.get("dispenseRequest")?.get("validityPeriod")?;
        (
            first_date(&[root.get("authoredOn")?, bounds.get("start")?])?,
            first_date(&[bounds.get("end")?, validity.get("end")?])?,
        )
    } else {
        put(&mut fields, "prescriber", cx.person(&[root.get("informationSource")?])?);
        let period = root.get("effectivePeriod")?;
        (
            first_date(&[
                root.get("effectiveDateTime")?,
                period.get("start")?,
                root.get("dateAsserted")?,
            ])?,
            first_date(&[period.get("end")?])?,
        )
    };
    put(&mut fields, "started", started);

    let mut notes = Vec::new();
    let ended = match status.as_deref() {
        None | Some("active" | "unknown") => false,
        Some("on-hold") => {
            notes.push("On hold.".to_string());
            false
        }
        Some("draft") => {
            notes.push("Draft: not yet prescribed.".to_string());
            false
        }
        Some("intended") => {
            notes.push("Intended: not yet started.".to_string());
            false
        }
        Some("completed" | "stopped") => true,
        Some("cancelled") => {
            notes.push("Cancelled before it was started.".to_string());
            true
        }
        Some("not-taken") => {
            notes.push("Not taken.".to_string());
            true
        }
        Some(other) => {
            return Err(status_at.fail(format!("`{other}` is not a medication status")));
        }
    };
    if ended {
        match stopped {
            Some(date) => {
                fields.insert("status".into(), "stopped".into());
                fields.insert("stopped".into(), date.into());
            }
            None => {
                fields.insert("status".into(), "inactive".into());
            }
        }
        let reason = root.get("statusReason")?;
        let reason = if request {
            concept_label(&reason)?
        } else {
            labels(&reason)?.into_iter().next()
        };
        put(&mut fields, "stop_reason", reason);
    }
    notes.extend(note_texts(root)?);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Medications, fields))
}

/// A Timing.repeat in words: "2x per day", "1x every 8 hours".
fn repeat_words(repeat: &At) -> Result<Option<String>> {
    let (Some(freq), Some(period), Some(unit)) = (
        repeat.get("frequency")?.number()?,
        repeat.get("period")?.float()?,
        repeat.get("periodUnit")?.text()?,
    ) else {
        return Ok(None);
    };
    let unit = match unit.as_str() {
        "s" => "second",
        "min" => "minute",
        "h" => "hour",
        "d" => "day",
        "wk" => "week",
        "mo" => "month",
        "a" => "year",
        other => return Err(repeat.get("periodUnit")?.fail(format!("`{other}` is not a time unit"))),
    };
    Ok(Some(if period == 1.0 {
        format!("{freq}x per {unit}")
    } else {
        format!("{freq}x every {} {unit}s", super::fmt_number(period))
    }))
}

/// Immunization → a document of the immunization record ("Immunization: …").
pub(super) fn immunization(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let given = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("completed") | None => true,
        Some("not-done") => false,
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not an immunization status; R4 has completed, entered-in-error, not-done"
            )));
        }
    };
    let vaccine = root.get("vaccineCode")?;
    let Some(label) = concept_label(&vaccine)? else {
        return Ok(Skip("no vaccine code"));
    };
    let mut fields = Fields::new();
    let title = if given {
        format!("Immunization: {label}")
    } else {
        format!("Immunization not given: {label}")
    };
    fields.insert("title".into(), title.into());
    fields.insert("kind".into(), "other".into());
    put(
        &mut fields,
        "date",
        first_date(&[root.get("occurrenceDateTime")?, root.get("recorded")?])?,
    );
    let mut about = Vec::new();
    for c in codings(&vaccine)? {
        if let Some(code) = c.code {
            let system = match c.system.as_deref() {
                Some("http://hl7.org/fhir/sid/cvx") => "CVX",
                Some("http://hl7.org/fhir/sid/ndc") => "NDC",
                Some("http://snomed.info/sct") => "SNOMED",
                _ => "code",
            };
            about.push(format!("{system} {code}"));
            break;
        }
    }
    if let Some(when) = root.get("occurrenceString")?.text()? {
        about.push(format!("When: {when}"));
    }
    if let Some(reason) = concept_label(&root.get("statusReason")?)? {
        about.push(format!("Not given: {reason}"));
    }
    for dose in root.get("protocolApplied")?.items()? {
        let number = dose.get("doseNumberPositiveInt")?.number()?.map(ToString::to_string);
        let number = match number {
            Some(n) => Some(n),
            None => dose.get("doseNumberString")?.text()?,
        };
        if let Some(n) = number {
            let of = dose.get("seriesDosesPositiveInt")?.number()?;
            about.push(match of {
                Some(of) => format!("Dose {n} of {of}"),
                None => format!("Dose {n}"),
            });
        }
    }
    if let Some(lot) = root.get("lotNumber")?.text()? {
        about.push(format!("Lot {lot}"));
    }
    let quantity = root.get("doseQuantity")?;
    if let Some(n) = quantity.get("value")?.number()? {
        let unit = quantity.get("unit")?.text()?.unwrap_or_default();
        about.push(format!("Amount {n} {unit}").trim_end().to_string());
    }
    if let Some(site) = concept_label(&root.get("site")?)? {
        about.push(format!("Site: {site}"));
    }
    if let Some(route) = concept_label(&root.get("route")?)? {
        about.push(format!("Route: {route}"));
    }
    let mut performers = Vec::new();
    for p in root.get("performer")?.items()? {
        performers.extend(cx.name(&p.get("actor")?)?);
    }
    if !performers.is_empty() {
        about.push(format!("Given by {}", performers.join(", ")));
    }
    if let Some(place) = cx.name(&root.get("location")?)? {
        about.push(format!("At {place}"));
    }
    if root.get("primarySource")?.boolean()? == Some(false) {
        about.push("Reported by someone other than who gave it".into());
    }
    let mut parts = Vec::new();
    if !about.is_empty() {
        parts.push(format!("{}.", about.join(". ")));
    }
    parts.extend(note_texts(root)?);
    put(&mut fields, "description", paragraphs(parts));
    Ok(Entry(Section::Documents, fields))
}

/// Encounter → an appointment: a visit that happened (or is planned), with its reason, length,
/// clinician and place.
pub(super) fn encounter(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("planned") => "scheduled",
        Some("arrived" | "triaged" | "in-progress" | "onleave") => "confirmed",
        Some("finished" | "unknown") | None => "completed",
        Some("cancelled") => "cancelled",
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not an encounter status; R4 has planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown"
            )));
        }
    };
    let period = root.get("period")?;
    let start_at = period.get("start")?;
    let Some(start_text) = start_at.text()? else {
        return Ok(Skip("no date"));
    };
    let start = parse_when(&start_text).ok_or_else(|| start_at.fail(format!("`{start_text}` {BAD_DATE}")))?;
    let end_at = period.get("end")?;
    let end = match end_at.text()? {
        Some(t) => Some(parse_when(&t).ok_or_else(|| end_at.fail(format!("`{t}` {BAD_DATE}")))?),
        None => None,
    };
    let local = |w: super::When| w.datetime().unwrap_or_else(|| w.date.and_time(NaiveTime::MIN));
    let mut fields = Fields::new();
    fields.insert("status".into(), status.into());
    fields.insert("start".into(), format_datetime(local(start)).into());
    let span = match end {
        Some(end) => {
            let (s, e): (Option<NaiveDateTime>, Option<NaiveDateTime>) = match (start.offset, end.offset) {
                (Some(a), Some(b)) => (utc(local(start), a), utc(local(end), b)),
                _ => (Some(local(start)), Some(local(end))),
            };
            match s.zip(e) {
                Some((s, e)) if e < s => return Err(end_at.fail("is before period.start")),
                Some((s, e)) if e > s => Some((e - s).num_seconds() as f64 / 60.0),
                _ => None,
            }
        }
        None => None,
    };
    let length = root.get("length")?;
    let minutes = match span {
        Some(m) => Some(m),
        None => match (length.get("value")?.float()?, length.get("code")?.text()?) {
            (Some(v), Some(unit)) if unit == "h" => Some(v * 60.0),
            (Some(v), Some(unit)) if unit == "min" => Some(v),
            _ => None,
        },
    };
    if let Some(m) = minutes.filter(|m| *m > 0.0) {
        fields.insert("minutes".into(), json_number(m));
    }

    let types = root.get("type")?.items()?;
    let service = root.get("serviceType")?;
    let mut kinds = types.clone();
    kinds.push(service.clone());
    let kind_label = match labels(&root.get("type")?)?.into_iter().next() {
        Some(l) => Some(l),
        None => concept_label(&service)?,
    };
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    let mut notes = Vec::new();
    let reason = if reasons.is_empty() {
        let class = root.get("class")?;
        match kind_label {
            Some(k) => k,
            None => match class.get("display")?.text()? {
                Some(d) => d,
                None => class.get("code")?.text()?.unwrap_or_else(|| "Visit".into()),
            },
        }
    } else {
        if let Some(k) = kind_label {
            notes.push(format!("Visit type: {k}."));
        }
        reasons.join("; ")
    };
    fields.insert("reason".into(), reason.into());
    if let Some(d) = pick_discipline(&[], &kinds)? {
        fields.insert("discipline".into(), d.into());
    }
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
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Appointments, fields))
}

/// Whether a DocumentReference carries readable text inline (a note to read), rather than
/// pointing at a file.
pub(super) fn has_inline_text(root: &At) -> Result<bool> {
    for item in root.get("content")?.items()? {
        if attachment_text(&item.get("attachment")?)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// DocumentReference (or Composition) → a session note; a clinician or discipline the
/// resource does not name is filled in, as the section requires both.
pub(super) fn note(res: &Value, root: &At, cx: &Cx) -> Result<Mapping> {
    let status = root.get("status")?.text()?;
    let doc_status = root.get("docStatus")?.text()?;
    if in_error(status.as_deref()) || in_error(doc_status.as_deref()) {
        return Ok(Skip("entered-in-error"));
    }
    let mut fields = super::note_from_fhir(res)?;
    if !fields.contains_key("clinician") {
        let authors = root.get("author")?.items()?;
        let name = cx.person(&authors)?.unwrap_or_else(|| UNNAMED_CLINICIAN.to_string());
        fields.insert("clinician".into(), name.into());
    }
    if !fields.contains_key("discipline") {
        fields.insert("discipline".into(), "other".into());
    }
    Ok(Entry(Section::Notes, fields))
}

/// DocumentReference without inline text → a document's metadata.
pub(super) fn document(root: &At, _cx: &Cx) -> Result<Mapping> {
    let status = root.get("status")?.text()?;
    let doc_status = root.get("docStatus")?.text()?;
    if in_error(status.as_deref()) || in_error(doc_status.as_deref()) {
        return Ok(Skip("entered-in-error"));
    }
    let content = root.get("content")?.items()?;
    let attachment = match content.first() {
        Some(c) => c.get("attachment")?,
        None => root.get("content")?,
    };
    let description = root.get("description")?.text()?;
    let type_at = root.get("type")?;
    let mut title = attachment.get("title")?.text()?;
    let mut description_is_title = false;
    if title.is_none() {
        title = description.clone();
        description_is_title = title.is_some();
    }
    if title.is_none() {
        title = concept_label(&type_at)?;
    }
    if title.is_none() {
        title = labels(&root.get("category")?)?.into_iter().next();
    }
    let mut fields = Fields::new();
    fields.insert("title".into(), title.unwrap_or_else(|| "Document".into()).into());
    let mut kind = None;
    for c in codings(&type_at)? {
        if c.system.as_deref() == Some(PHR_DOCUMENT_KIND) {
            kind = c.code;
        }
    }
    let kind = match kind {
        Some(k) => k,
        None => {
            let mut words: Vec<String> = labels(&root.get("category")?)?;
            words.extend(concept_label(&type_at)?);
            let all = words.join(" ").to_lowercase();
            let has = |w: &str| all.contains(w);
            if has("individualized education") || all.split_whitespace().any(|w| w == "iep") {
                "iep"
            } else if has("insurance card") {
                "insurance-card"
            } else if has("assessment") || has("evaluation") {
                "assessment"
            } else if has("report") || has("summary") || has("discharge") {
                "report"
            } else {
                "other"
            }
            .to_string()
        }
    };
    fields.insert("kind".into(), kind.into());
    put(
        &mut fields,
        "date",
        first_date(&[root.get("context")?.get("period")?.get("start")?, root.get("date")?])?,
    );
    if !description_is_title {
        put(&mut fields, "description", description);
    }
    let media_type = attachment.get("contentType")?.text()?;
    put(&mut fields, "media_type", media_type);
    Ok(Entry(Section::Documents, fields))
}

/// Goal → a goal; targets with a text are milestones, the first other one is the target.
pub(super) fn goal(root: &At, _cx: &Cx) -> Result<Mapping> {
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

/// CarePlan → a treatment plan; its goals become the ids of the goals' entries.
pub(super) fn care_plan(root: &At, cx: &Cx) -> Result<Mapping> {
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

/// Coverage → insurance.
pub(super) fn coverage(root: &At, cx: &Cx) -> Result<Mapping> {
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

/// Questionnaire → a form template. One from a phr export keeps the template's own status
/// (carried in an extension, absent when it had none) instead of the `sent` a clinic's gets.
pub(super) fn form_template(res: &Value, root: &At, cx: &Cx) -> Result<Mapping> {
    let mut fields = super::form_from_fhir(res)?;
    if cx.from_phr {
        fields.remove("status");
        if let Some(ext) = field_ext(root, "status")? {
            put(&mut fields, "status", ext.get("valueString")?.text()?);
        }
    }
    Ok(Entry(Section::Forms, fields))
}

/// The template's status, for [`form_template`] to read back.
pub(super) fn form_status_ext(res: &mut Value, fields: &Fields) {
    if let (Some(status), Value::Object(m)) = (text_field(fields, "status"), res) {
        m.insert(
            "extension".into(),
            json!([ext_value("status", "valueString", status.into())]),
        );
    }
}

/// An Observation of the caregivers' log (as [`log_to_fhir`] writes it).
pub(super) fn log_entry(root: &At, _cx: &Cx) -> Result<Mapping> {
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

// ---------------------------------------------------------------------------------------------
// Writing resources
// ---------------------------------------------------------------------------------------------

/// The profile as a `Patient`.
pub(super) fn patient_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut p = super::base("Patient", id, fields);
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

/// A condition as a `Condition`.
pub(super) fn condition_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut c = super::base("Condition", id, fields);
    let status = text_field(fields, "status").unwrap_or("active");
    c.insert(
        "clinicalStatus".into(),
        json!({ "coding": [{ "system": CONDITION_CLINICAL, "code": status }] }),
    );
    let mut code = Map::new();
    if let Some(k) = text_field(fields, "code") {
        code.insert("coding".into(), json!([{ "code": k }]));
    }
    if let Some(name) = text_field(fields, "name") {
        code.insert("text".into(), name.into());
    }
    c.insert("code".into(), Value::Object(code));
    if let Some(onset) = text_field(fields, "onset") {
        c.insert("onsetDateTime".into(), onset.into());
    }
    if let Some(resolved) = text_field(fields, "resolved") {
        c.insert("abatementDateTime".into(), resolved.into());
    }
    if let Some(notes) = text_field(fields, "notes") {
        c.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(c)
}

/// An allergy as an `AllergyIntolerance`.
pub(super) fn allergy_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut a = super::base("AllergyIntolerance", id, fields);
    let status = text_field(fields, "status").unwrap_or("active");
    a.insert(
        "clinicalStatus".into(),
        json!({ "coding": [{ "system": ALLERGY_CLINICAL, "code": status }] }),
    );
    if let Some(substance) = text_field(fields, "substance") {
        a.insert("code".into(), json!({ "text": substance }));
    }
    if let Some(recorded) = text_field(fields, "recorded") {
        a.insert("recordedDate".into(), recorded.into());
    }
    let reaction = text_field(fields, "reaction");
    let severity = text_field(fields, "severity");
    if reaction.is_some() || severity.is_some() {
        let mut r = Map::new();
        r.insert(
            "manifestation".into(),
            json!([{ "text": reaction.unwrap_or(UNDESCRIBED_REACTION) }]),
        );
        if let Some(s) = severity {
            r.insert("severity".into(), s.into());
        }
        a.insert("reaction".into(), json!([r]));
    }
    if let Some(notes) = text_field(fields, "notes") {
        a.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(a)
}

/// A medication as a `MedicationStatement` (the patient's list says what they take).
pub(super) fn medication_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut m = super::base("MedicationStatement", id, fields);
    let status = match text_field(fields, "status") {
        Some("stopped") => "stopped",
        Some("inactive") => "completed",
        Some("active") | None => "active",
        Some(_) => "unknown",
    };
    m.insert("status".into(), status.into());
    if let Some(reason) = text_field(fields, "stop_reason") {
        m.insert("statusReason".into(), json!([{ "text": reason }]));
    }
    if let Some(name) = text_field(fields, "name") {
        m.insert("medicationCodeableConcept".into(), json!({ "text": name }));
    }
    let mut period = Map::new();
    if let Some(start) = text_field(fields, "started") {
        period.insert("start".into(), start.into());
    }
    if let Some(end) = text_field(fields, "stopped") {
        period.insert("end".into(), end.into());
    }
    if !period.is_empty() {
        m.insert("effectivePeriod".into(), Value::Object(period));
    }
    if let Some(prescriber) = text_field(fields, "prescriber") {
        m.insert(
            "informationSource".into(),
            json!({ "type": "Practitioner", "display": prescriber }),
        );
    }
    if let Some(reason) = text_field(fields, "reason") {
        m.insert("reasonCode".into(), json!([{ "text": reason }]));
    }
    if let Some(notes) = text_field(fields, "notes") {
        m.insert("note".into(), json!([{ "text": notes }]));
    }
    let mut dosage = Map::new();
    if let Some(schedule) = text_field(fields, "schedule") {
        dosage.insert("text".into(), schedule.into());
    }
    if let Some(route) = text_field(fields, "route") {
        dosage.insert("route".into(), json!({ "text": route }));
    }
    if let Some(dose) = text_field(fields, "dose") {
        // "250 mg" is a quantity; anything else ("1-2 tablets") travels as text.
        let (number, unit) = dose.split_once(' ').map_or((dose, None), |(n, u)| (n, Some(u)));
        match exact_number(number) {
            Some(n) if unit.is_none_or(|u| !u.is_empty() && u.trim() == u) => {
                let mut q = Map::new();
                q.insert("value".into(), Value::Number(n));
                if let Some(u) = unit {
                    q.insert("unit".into(), u.into());
                }
                dosage.insert("doseAndRate".into(), json!([{ "doseQuantity": q }]));
            }
            _ => {
                dosage.insert(
                    "extension".into(),
                    json!([ext_value("dose", "valueString", dose.into())]),
                );
            }
        }
    }
    if !dosage.is_empty() {
        m.insert("dosage".into(), json!([dosage]));
    }
    Value::Object(m)
}

/// A document's metadata as a `DocumentReference` with no content of its own.
pub(super) fn document_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut d = super::base("DocumentReference", id, fields);
    d.insert("status".into(), "current".into());
    let kind = text_field(fields, "kind").unwrap_or("other");
    d.insert(
        "type".into(),
        json!({ "coding": [{ "system": PHR_DOCUMENT_KIND, "code": kind }], "text": kind }),
    );
    if let Some(description) = text_field(fields, "description") {
        d.insert("description".into(), description.into());
    }
    let mut attachment = Map::new();
    if let Some(media) = text_field(fields, "media_type") {
        attachment.insert("contentType".into(), media.into());
    }
    if let Some(title) = text_field(fields, "title") {
        attachment.insert("title".into(), title.into());
    }
    d.insert("content".into(), json!([{ "attachment": attachment }]));
    if let Some(date) = text_field(fields, "date") {
        d.insert("context".into(), json!({ "period": { "start": date } }));
    }
    Value::Object(d)
}

/// A goal as a `Goal`: the target measure and date first, then one target per milestone.
///
/// Progress measurements are not written: they are the record's own observations, kept with
/// the goal.
pub(super) fn goal_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut g = super::base("Goal", id, fields);
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

/// A plan as a `CarePlan`; `goal_ref` turns a goal's entry id into a Reference.
pub(super) fn plan_to_fhir(id: &str, fields: &Fields, goal_ref: &dyn Fn(&str) -> Value) -> Value {
    let mut c = super::base("CarePlan", id, fields);
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

/// Insurance as a `Coverage`.
pub(super) fn coverage_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut c = super::base("Coverage", id, fields);
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

/// A caregivers' log line as an `Observation`: the text is the value, the category a code.
pub(super) fn log_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut o = super::base("Observation", id, fields);
    o.insert("status".into(), "final".into());
    o.insert(
        "category".into(),
        json!([{ "coding": [{ "system": CATEGORY, "code": "activity", "display": "Activity" }] }]),
    );
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
