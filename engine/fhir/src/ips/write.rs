//! `phr export --format ips`: the record as an IPS document Bundle. The resources are the ones
//! [`export_bundle`] writes; this adds the Composition that lists them by IPS section (from
//! [`SECTIONS`]), the Device that authored it, and, for a required section phr has no entries
//! for, the IPS entry that says "no information".

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use phr_model::access::AccessSet;
use phr_model::entry::PATIENT_ENTRY;
use phr_model::error::Result;
use phr_model::record::Record;
use phr_model::section::Section;

use super::{ABSENT_UNKNOWN, IpsSection, PATIENT_SUMMARY, Required, SECTIONS};
use crate::bundle::{Exported, export_bundle, urn};
use crate::date::Zone;
use crate::reading::phr_section_tag;
use crate::vocab::{LOINC, PHR_RECORD};

/// The record as an IPS document Bundle: the Composition first (LOINC 60591-5, its subject the
/// Patient, its author this record's phr as a Device), then the Patient, the Device and every
/// entry of the summary's sections. The required sections (medications, allergies, problems)
/// are always there, with the IPS "no information" entry when phr has none; the others only
/// when phr has entries for them. Every reference resolves inside the Bundle.
pub fn export_ips(record: &Record, access: &AccessSet, zone: Zone) -> Result<Exported> {
    let rid = record.id();
    let mut chosen = vec![Section::Profile];
    chosen.extend(SECTIONS.iter().filter_map(|s| s.section));
    let exported = export_bundle(record, access, &chosen, zone)?;
    let now = exported.bundle.get("timestamp").cloned().unwrap_or(Value::Null);

    let mut by_section: BTreeMap<Section, Vec<Value>> = BTreeMap::new();
    let mut patient = None;
    for entry in entries(exported.bundle) {
        let resource = &entry["resource"];
        let section = phr_section_tag(resource).and_then(|s| s.parse::<Section>().ok());
        match section {
            Some(Section::Profile) => patient = Some(entry),
            Some(section) => by_section.entry(section).or_default().push(entry),
            // Provenance: who wrote which entry is not part of a summary.
            None => {}
        }
    }
    let patient = patient.unwrap_or_else(|| {
        json!({ "fullUrl": urn(&rid, &format!("{}/{PATIENT_ENTRY}", Section::Profile)), "resource": {
            "resourceType": "Patient", "id": PATIENT_ENTRY,
            "identifier": [{ "system": PHR_RECORD, "value": rid.to_string() }] } })
    });
    let patient_url = patient["fullUrl"].clone();
    let device = json!({ "fullUrl": urn(&rid, "ips/device"), "resource": {
        "resourceType": "Device", "id": "phr",
        "identifier": [{ "system": PHR_RECORD, "value": rid.to_string() }],
        "deviceName": [{ "name": "phr personal health record", "type": "user-friendly-name" }] } });

    let mut sections = Vec::new();
    let mut listed = Vec::new();
    for row in SECTIONS {
        let Some(section) = row.section else { continue };
        let mut members = by_section.remove(&section).unwrap_or_default();
        if members.is_empty() {
            let Some(required) = &row.required else { continue };
            members.push(absent(required, &rid, &patient_url));
        }
        sections.push(composition_section(row, &members));
        listed.extend(members);
    }
    let composition = json!({ "fullUrl": urn(&rid, "ips/composition"), "resource": {
        "resourceType": "Composition", "id": "ips", "status": "final",
        "type": { "coding": [{ "system": LOINC, "code": PATIENT_SUMMARY, "display": "Patient summary Document" }] },
        "subject": { "reference": patient_url }, "date": now,
        "author": [{ "reference": device["fullUrl"] }],
        "title": "International Patient Summary", "section": sections } });

    let mut all = vec![composition, patient, device];
    all.extend(listed);
    let stamp = now.as_str().unwrap_or_default();
    let bundle = json!({
        "resourceType": "Bundle",
        "identifier": { "system": "urn:ietf:rfc:3986", "value": urn(&rid, &format!("ips/{stamp}")) },
        "type": "document",
        "timestamp": now,
        "entry": all,
    });
    Ok(Exported {
        bundle,
        resources: exported.resources,
        provenance: 0,
    })
}

fn entries(bundle: Value) -> Vec<Value> {
    match bundle {
        Value::Object(mut map) => match map.remove("entry") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// A Composition section listing `members` (Bundle entries), with a narrative naming each.
fn composition_section(row: &IpsSection, members: &[Value]) -> Value {
    let items: String = members
        .iter()
        .map(|m| format!("<li>{}</li>", escape(&label(&m["resource"]))))
        .collect();
    let refs: Vec<Value> = members.iter().map(|m| json!({ "reference": m["fullUrl"] })).collect();
    json!({
        "title": row.title,
        "code": { "coding": [{ "system": LOINC, "code": row.loinc, "display": row.title }] },
        "text": { "status": "generated",
                  "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul>{items}</ul></div>") },
        "entry": refs,
    })
}

/// The IPS entry saying phr has no information for a required section.
fn absent(required: &Required, rid: &phr_model::identity::PublicKey, patient_url: &Value) -> Value {
    let mut res = Map::new();
    res.insert("resourceType".into(), required.ty.into());
    res.insert("id".into(), required.code.into());
    let code = json!({ "coding": [{ "system": ABSENT_UNKNOWN, "code": required.code, "display": required.display }],
                       "text": required.display });
    res.insert(required.code_key.into(), code);
    let patient = json!({ "reference": patient_url });
    match required.ty {
        "AllergyIntolerance" => res.insert("patient".into(), patient),
        "MedicationStatement" => {
            res.insert("status".into(), "unknown".into());
            res.insert("subject".into(), patient)
        }
        _ => res.insert("subject".into(), patient),
    };
    json!({ "fullUrl": urn(rid, &format!("ips/{}", required.code)), "resource": res })
}

/// What a resource of the summary is called, for the section's narrative.
fn label(res: &Value) -> String {
    let concept = ["code", "medicationCodeableConcept", "vaccineCode"]
        .iter()
        .find_map(|k| res.get(*k));
    let text = concept.and_then(|c| {
        c.get("text").and_then(Value::as_str).or_else(|| {
            c.get("coding")?
                .as_array()?
                .iter()
                .find_map(|c| c.get("display").and_then(Value::as_str))
        })
    });
    let ty = res.get("resourceType").and_then(Value::as_str).unwrap_or("entry");
    text.unwrap_or(ty).to_string()
}

/// `text` as XHTML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
