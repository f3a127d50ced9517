//! `DocumentReference`: a session note (when it carries its text inline) in SOAP form, or a
//! document's metadata (when it points at a file); written back as either.

use serde_json::{Map, Value, json};

use phr_model::entry;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::resources::composition::note_from_composition;
use crate::vocab::*;
use data_encoding::BASE64;

/// A note's clinician when the source names none (the record requires one).
const UNNAMED_CLINICIAN: &str = "not named in the source";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Soap {
    Subjective,
    Objective,
    Assessment,
    Plan,
}

impl Soap {
    const ALL: [Soap; 4] = [Soap::Subjective, Soap::Objective, Soap::Assessment, Soap::Plan];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Soap::Subjective => "subjective",
            Soap::Objective => "objective",
            Soap::Assessment => "assessment",
            Soap::Plan => "plan",
        }
    }

    pub(crate) fn heading(self) -> &'static str {
        match self {
            Soap::Subjective => "Subjective",
            Soap::Objective => "Objective",
            Soap::Assessment => "Assessment",
            Soap::Plan => "Plan",
        }
    }

    /// Exactly a SOAP heading: the word or its letter, any case.
    pub(crate) fn from_heading(word: &str) -> Option<Soap> {
        match word.trim().to_lowercase().as_str() {
            "s" | "subjective" => Some(Soap::Subjective),
            "o" | "objective" => Some(Soap::Objective),
            "a" | "assessment" => Some(Soap::Assessment),
            "p" | "plan" => Some(Soap::Plan),
            _ => None,
        }
    }

    /// The slot a Composition section's title points to, allowing common variants.
    pub(crate) fn from_title(title: &str) -> Option<Soap> {
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
    pub(crate) fn from_loinc(code: &str) -> Option<Soap> {
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
pub(crate) struct SoapText {
    pub(crate) parts: [Vec<String>; 4],
}

impl SoapText {
    pub(crate) fn add(&mut self, slot: Soap, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.parts[slot as usize].push(text.to_string());
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    pub(crate) fn write(&self, fields: &mut Fields) {
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
pub(crate) fn parse_note_text(text: &str) -> (SoapText, Option<f64>) {
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
pub(crate) fn note_text(fields: &Fields) -> String {
    let mut blocks: Vec<String> = Soap::ALL
        .iter()
        .filter_map(|slot| text_field(fields, slot.key()).map(|t| format!("{}: {t}", slot.heading())))
        .collect();
    if let Some(m) = fields.get("minutes").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        blocks.push(format!("Minutes: {}", fmt_number(m)));
    }
    blocks.join("\n\n")
}

pub(crate) fn note_from_document(root: &At) -> Result<Fields> {
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

/// Validate a note, standing in for a missing clinician or discipline so that everything else
/// is checked, then leave those keys out for the caller to fill.
pub(crate) fn validated_note(mut fields: Fields) -> Result<Fields> {
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

/// Whether a DocumentReference carries readable text inline (a note to read), rather than
/// pointing at a file.
pub(crate) fn has_inline_text(root: &At) -> Result<bool> {
    for item in root.get("content")?.items()? {
        if attachment_text(&item.get("attachment")?)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// DocumentReference (or Composition) → a session note; a clinician or discipline the
/// resource does not name is filled in, as the section requires both.
pub(crate) fn note(res: &Value, root: &At, cx: &Cx) -> Result<Mapping> {
    let status = root.get("status")?.text()?;
    let doc_status = root.get("docStatus")?.text()?;
    if in_error(status.as_deref()) || in_error(doc_status.as_deref()) {
        return Ok(Skip("entered-in-error"));
    }
    let mut fields = crate::note_from_fhir(res)?;
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
pub(crate) fn document(root: &At, _cx: &Cx) -> Result<Mapping> {
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

/// A document's metadata as a `DocumentReference` with no content of its own.
pub(crate) fn document_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut d = base("DocumentReference", id, fields);
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

/// A DocumentReference of a bundle: a note when phr's tag says so or it carries its text
/// inline, else a document.
pub(crate) fn read(root: &At, cx: &Cx) -> Result<Mapping> {
    let as_note = match cx.tag {
        Some(section) => section == Section::Notes,
        None => has_inline_text(root)?,
    };
    if as_note {
        note(cx.res, root, cx)
    } else {
        document(root, cx)
    }
}

/// A note, or a document's metadata, as a `DocumentReference`.
pub(crate) fn write(_: &Out, section: Section, id: &str, fields: &Fields) -> Value {
    if section == Section::Notes {
        note_to_fhir(id, fields)
    } else {
        document_to_fhir(id, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use crate::*;
    use phr_model::entry;

    use phr_model::section::Section;
    use serde_json::{Value, json};
    // ----- notes ------------------------------------------------------------------------------

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
}
