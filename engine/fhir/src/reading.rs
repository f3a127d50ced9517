//! Reading one resource of a bundle: what it becomes ([`Mapping`]), and its context ([`Cx`]):
//! the bundle's other resources, so a reference such as `urn:uuid:…` or `Practitioner/7` is
//! read as the name of what it points at.

use std::collections::HashMap;

use serde_json::Value;

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::elements::*;
use crate::json::*;
use crate::vocab::*;

/// What one resource becomes.
pub(crate) enum Mapping {
    /// An entry of this section with these fields (validated by the caller).
    Entry(Section, Fields),
    /// The same, already validated by a mapper that validates its own result.
    Checked(Section, Fields),
    /// Nothing: valid FHIR, but nothing the record keeps; the reason is reported.
    Skip(&'static str),
}

pub(crate) use Mapping::{Entry, Skip};

/// The resources of one bundle by `fullUrl` and by `Type/id`, to follow references.
#[derive(Default)]
pub(crate) struct Refs<'a> {
    pub(crate) by_url: HashMap<&'a str, &'a Value>,
    pub(crate) by_id: HashMap<(&'a str, &'a str), &'a Value>,
}

impl<'a> Refs<'a> {
    /// Know `res`, found under `full_url` if it has one.
    pub(crate) fn add(&mut self, full_url: Option<&'a str>, res: &'a Value) {
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
    pub(crate) fn resolve(&self, reference: &str, within: &'a Value) -> Option<&'a Value> {
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
pub(crate) fn type_and_id(reference: &str) -> Option<(&str, &str)> {
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
pub(crate) struct Cx<'r, 'a> {
    /// The bundle's resources.
    pub(crate) refs: &'r Refs<'a>,
    /// The resource being read (for `#contained` references).
    pub(crate) res: &'a Value,
    /// Whether it came from a phr export, whose references name entries by id.
    pub(crate) from_phr: bool,
    /// The section its phr tag names, if it came from a phr export.
    pub(crate) tag: Option<Section>,
}

impl<'a> Cx<'_, 'a> {
    /// The resource a Reference points at, if it is in the bundle.
    pub(crate) fn target(&self, reference: &At<'a>) -> Result<Option<&'a Value>> {
        Ok(reference
            .get("reference")?
            .str()?
            .and_then(|r| self.refs.resolve(r.trim(), self.res)))
    }

    /// A Reference in words: its display, else the name of what it points at.
    pub(crate) fn name(&self, reference: &At<'a>) -> Result<Option<String>> {
        if let Some(display) = reference.get("display")?.text()? {
            return Ok(Some(display));
        }
        Ok(self.target(reference)?.and_then(name_of))
    }

    /// The resource type a Reference points at: its `type`, its target's, or its URL's.
    pub(crate) fn kind(&self, reference: &At<'a>) -> Result<Option<String>> {
        if let Some(ty) = reference_type(reference)? {
            return Ok(Some(ty));
        }
        Ok(self
            .target(reference)?
            .and_then(|t| t.get("resourceType")?.as_str())
            .map(str::to_string))
    }

    /// The name of the first person among `refs` (a practitioner, or not said to be anything else).
    pub(crate) fn person(&self, refs: &[At<'a>]) -> Result<Option<String>> {
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
    pub(crate) fn entry_id(&self, reference: &At<'a>, ty: &str) -> Result<Option<String>> {
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
            Some((t, id)) if t == ty => Some(crate::entry_id(t, id)),
            _ => None,
        })
    }
}

/// The entry id a resource of a bundle keeps: its own id if it came from a phr export, else
/// derived from `Type/id`.
pub(crate) fn entry_id_of(res: &Value) -> Option<String> {
    let ty = res.get("resourceType")?.as_str()?;
    let id = res.get("id")?.as_str()?;
    if phr_section_tag(res).is_some() {
        Some(id.to_string())
    } else {
        Some(crate::entry_id(ty, id))
    }
}

/// The section named by a resource's `urn:phr:section` tag, as text (checked by the caller).
pub(crate) fn phr_section_tag(res: &Value) -> Option<&str> {
    res.get("meta")?
        .get("tag")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(PHR_SECTION))?
        .get("code")?
        .as_str()
}

/// The name of a resource pointed at, for display; lenient, since it only labels another entry.
pub(crate) fn name_of(target: &Value) -> Option<String> {
    let ty = target.get("resourceType")?.as_str()?;
    let at = At {
        value: Some(target),
        path: Path::new(""),
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
