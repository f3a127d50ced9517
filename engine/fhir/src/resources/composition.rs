//! `Composition`: a clinical document read as a session note, its sections sorted into SOAP
//! slots by title or LOINC code. Never written: notes go out as `DocumentReference`s.

use phr_model::error::Result;

use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::document_reference::*;
use crate::vocab::*;
use crate::xhtml::*;
use crate::{Fields, MAX_DEPTH};

pub(crate) fn note_from_composition(root: &At) -> Result<Fields> {
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
pub(crate) fn composition_sections(
    list: &At,
    inherited: Option<Soap>,
    depth: usize,
    soap: &mut SoapText,
) -> Result<()> {
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

/// A Composition of a bundle: a session note.
pub(crate) fn read(root: &At, cx: &Cx) -> Result<Mapping> {
    super::document_reference::note(cx.res, root, cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;
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
}
