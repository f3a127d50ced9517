//! FHIR data types read and written the same way in every resource: CodeableConcept and
//! Coding, Reference, HumanName, ContactPoint, Address, Annotation, Attachment, and phr's own
//! `urn:phr:field:` extensions.

use serde_json::{Map, Value, json};

use phr_model::error::Result;

use crate::json::*;
use crate::vocab::*;
use crate::xhtml::*;
use data_encoding::{BASE64, BASE64_NOPAD};

pub(crate) struct Coding {
    pub(crate) system: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) display: Option<String>,
}

pub(crate) fn codings(concept: &At) -> Result<Vec<Coding>> {
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
pub(crate) fn concept_label(concept: &At) -> Result<Option<String>> {
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
pub(crate) fn reference_type(reference: &At) -> Result<Option<String>> {
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
pub(crate) fn clinician_of(authors: &At) -> Result<Option<String>> {
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

pub(crate) fn attachment_text(attachment: &At) -> Result<Option<String>> {
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

pub(crate) fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    // FHIR asks for no whitespace in base64Binary, but wrapped base64 is common in the wild.
    let clean: Vec<u8> = encoded.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(&clean).ok().or_else(|| {
        let unpadded: &[u8] = clean.strip_suffix(b"==").or(clean.strip_suffix(b"=")).unwrap_or(&clean);
        BASE64_NOPAD.decode(unpadded).ok()
    })
}

/// The first code among a CodeableConcept's codings.
pub(crate) fn first_code(concept: &At) -> Result<Option<String>> {
    Ok(codings(concept)?.into_iter().find_map(|c| c.code))
}

/// A CodeableConcept's first coding as the record keeps a `code` field: `system|code`, or the
/// bare code when the coding names no system. The one place that reads that form.
pub(crate) fn coded(concept: &At) -> Result<Option<String>> {
    Ok(codings(concept)?.into_iter().find_map(|c| match (c.system, c.code) {
        (Some(system), Some(code)) => Some(format!("{system}|{code}")),
        (None, Some(code)) => Some(code),
        _ => None,
    }))
}

/// A CodeableConcept from a `code` field (`system|code` or a bare code, see [`coded`]) and its
/// words; `None` when there are neither.
pub(crate) fn concept(code: Option<&str>, text: Option<&str>) -> Option<Value> {
    let mut c = Map::new();
    if let Some(code) = code {
        let coding = match code.rsplit_once('|') {
            Some((system, code)) if !system.is_empty() => json!({ "system": system, "code": code }),
            _ => json!({ "code": code.trim_start_matches('|') }),
        };
        c.insert("coding".into(), Value::Array(vec![coding]));
    }
    if let Some(text) = text {
        c.insert("text".into(), text.into());
    }
    (!c.is_empty()).then_some(Value::Object(c))
}

/// A Reference that names what it points at only in words.
pub(crate) fn named(display: &str) -> Value {
    json!({ "display": display })
}

/// A status CodeableConcept's code (first coding's), else its text; lower case.
pub(crate) fn status_code(concept: &At) -> Result<Option<String>> {
    let code = match first_code(concept)? {
        Some(c) => Some(c),
        None => concept.get("text")?.text()?,
    };
    Ok(code.map(|c| c.to_ascii_lowercase()))
}

/// The labels of a list of CodeableConcepts.
pub(crate) fn labels(list: &At) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for concept in list.items()? {
        out.extend(concept_label(&concept)?);
    }
    Ok(out)
}

/// The text of every `note` (Annotation).
pub(crate) fn note_texts(root: &At) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for note in root.get("note")?.items()? {
        out.extend(note.get("text")?.text()?);
    }
    Ok(out)
}

/// Paragraphs as one notes text, or nothing.
pub(crate) fn paragraphs(parts: Vec<String>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// A person's name: the official (or usual) one, else the first; its text, else given and
/// family names (titles such as "Dr." are left out).
pub(crate) fn human_name(list: &At) -> Result<Option<String>> {
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
pub(crate) fn name_text(name: &At) -> Result<Option<String>> {
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
pub(crate) fn telecom(list: &At, system: &str) -> Result<Option<String>> {
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
pub(crate) fn address_text(list: &At) -> Result<Option<String>> {
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
pub(crate) fn field_ext<'a>(root: &At<'a>, name: &str) -> Result<Option<At<'a>>> {
    for ext in root.get("extension")?.items()? {
        if ext.get("url")?.str()?.and_then(|u| u.strip_prefix(PHR_FIELD)) == Some(name) {
            return Ok(Some(ext));
        }
    }
    Ok(None)
}

pub(crate) fn ext_value(name: &str, key: &str, value: Value) -> Value {
    let mut ext = Map::new();
    ext.insert("url".into(), format!("{PHR_FIELD}{name}").into());
    ext.insert(key.into(), value);
    Value::Object(ext)
}

/// Whether a status says the resource was entered in error (and so holds nothing true).
pub(crate) fn in_error(status: Option<&str>) -> bool {
    status == Some("entered-in-error")
}
