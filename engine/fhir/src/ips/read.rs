//! Reading an IPS document's Composition: which section lists which resource, and what an
//! empty section or a "no information" entry says instead of entries.

use std::collections::BTreeSet;

use serde_json::Value;

use phr_model::error::Result;

use super::{Absence, LIST_EMPTY_REASON, Learned, PATIENT_SUMMARY, absent_code, by_loinc, codings, empty_reason};
use crate::MAX_DEPTH;
use crate::elements;
use crate::json::At;
use crate::reading::Refs;
use crate::vocab::LOINC;

/// A document's Composition read as its table of contents.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// What empty sections said.
    pub(crate) learned: BTreeSet<Learned>,
}

/// Whether `composition`, the first entry of a `document` Bundle, is a summary's table of
/// contents (a patient summary, or sections that list entries or say why they are empty)
/// rather than a clinical note written as a document.
fn is_index(composition: &Value) -> bool {
    let summary = codings(composition.get("type")).any(|(s, c)| s == LOINC && c == PATIENT_SUMMARY);
    let lists = composition
        .get("section")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| s.get("entry").is_some() || s.get("emptyReason").is_some());
    summary || lists
}

/// Read the Composition at `composition` (a `document` Bundle's first entry) as the document's
/// index; `None` when it is a clinical note to import as one.
pub(crate) fn read_index(composition: &At) -> Result<Option<Index>> {
    let Some(res) = composition.value else {
        return Ok(None);
    };
    if !is_index(res) {
        return Ok(None);
    }
    let mut index = Index::default();
    sections(&composition.get("section")?, 0, &mut index)?;
    Ok(Some(index))
}

fn sections(list: &At, depth: usize, index: &mut Index) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for section in list.items()? {
        let known = elements::codings(&section.get("code")?)?
            .into_iter()
            .filter(|c| c.system.as_deref() == Some(LOINC))
            .find_map(|c| c.code.as_deref().and_then(by_loinc));
        let label = known.map(|k| k.label);
        let entries = section.get("entry")?.items()?;
        let reason = section.get("emptyReason")?;
        if let (Some(label), true) = (label, entries.is_empty()) {
            let said = elements::codings(&reason)?
                .into_iter()
                .filter(|c| c.system.as_deref() == Some(LIST_EMPTY_REASON))
                .find_map(|c| c.code.as_deref().map(empty_reason));
            if let Some(says) = said.or(reason.present().then_some(Absence::NoInformation)) {
                index.learned.insert(Learned {
                    section: label.to_string(),
                    says,
                });
            }
        }
        sections(&section.get("section")?, depth + 1, index)?;
    }
    Ok(())
}

/// The keys whose CodeableConcept says what a resource is about.
const CODE_KEYS: &[&str] = &["code", "medicationCodeableConcept", "vaccineCode"];

/// Whether `res` is an IPS "no information" or "none known" entry (such as an
/// AllergyIntolerance coded `no-known-allergies`, or a MedicationStatement whose medication is
/// `no-medication-info`, given inline or as a Medication of the bundle): what it says, about
/// which section. Such a resource is a statement about a section, never an entry of it.
pub(crate) fn absent_entry<'a>(res: &'a Value, refs: &Refs<'a>) -> Option<Learned> {
    let mut concepts: Vec<Option<&Value>> = CODE_KEYS.iter().map(|k| res.get(*k)).collect();
    if let Some(medication) = res
        .get("medicationReference")
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| refs.resolve(r.trim(), res))
    {
        concepts.push(medication.get("code"));
    }
    concepts.into_iter().find_map(|concept| {
        codings(concept).find_map(|(system, code)| {
            absent_code(system, code).map(|(section, says)| Learned {
                section: section.to_string(),
                says,
            })
        })
    })
}
