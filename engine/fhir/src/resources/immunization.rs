//! `Immunization`: a document of the immunization record; not written (it goes out as that
//! document).

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;

/// Immunization → a document of the immunization record ("Immunization: …").
pub(crate) fn immunization(root: &At, cx: &Cx) -> Result<Mapping> {
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
