//! Comparing an EHR's Bundle with phr's export of the record it was imported into, resource by
//! resource: what a round trip through phr lost, changed or invented.
//!
//! Resources are matched by identity: phr's export carries each entry's source as an
//! `urn:phr:source` identifier (`system|Type/id`, the importer's key), so the input resource
//! `Type/id` (its fullUrl when it has no id) is the exported resource whose source ends in it.
//! Compared, by path inside the resource (`code.coding[0]`): the resource type; every Coding
//! (system + code) of every CodeableConcept; every Quantity (value as written, unit, system,
//! code); every date, dateTime and instant string at its precision; every status and intent;
//! and the number of an Observation's components (their codings and quantities are compared by
//! path like the rest). `meta`, `identifier`, narrative `text`, ids and references are phr's to
//! write (its tags, its source identifier, its own fullUrls), so they are not compared.
#![allow(dead_code)] // not every test file that shares the harness compares round trips

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// The resource types phr maps (the rows of `phr_fhir::RESOURCES`); others are not imported.
pub const MAPPED_TYPES: &[&str] = &[
    "DocumentReference",
    "Composition",
    "Observation",
    "Appointment",
    "Communication",
    "Questionnaire",
    "QuestionnaireResponse",
    "Patient",
    "Condition",
    "Procedure",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Immunization",
    "Encounter",
    "Goal",
    "CarePlan",
    "Coverage",
    "CareTeam",
];

/// One thing a round trip did not give back as it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The input resource, `Type/id`.
    pub resource: String,
    /// Where inside it (`code.coding[0]`); empty for the resource as a whole.
    pub path: String,
    /// What kind of difference: `resource lost`, `type changed`, `coding lost`, `date changed`, …
    pub kind: String,
    /// The values, in words.
    pub detail: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!(" {}", self.path)
        };
        write!(f, "{}{at}: {}: {}", self.resource, self.kind, self.detail)
    }
}

/// What is compared at one path.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    Coding(String),
    Quantity(String),
    Date(String),
    Status(String),
    Components(usize),
}

impl Fact {
    fn kind(&self) -> &'static str {
        match self {
            Fact::Coding(_) => "coding",
            Fact::Quantity(_) => "quantity",
            Fact::Date(_) => "date",
            Fact::Status(_) => "status",
            Fact::Components(_) => "components",
        }
    }

    fn words(&self) -> String {
        match self {
            Fact::Coding(s) | Fact::Quantity(s) | Fact::Date(s) | Fact::Status(s) => s.clone(),
            Fact::Components(n) => format!("{n} components"),
        }
    }
}

/// Every difference between the mapped resources of `input` (an EHR's Bundle) and `export`
/// (phr's export of a record `input` was imported into), input order.
pub fn round_trip_differences(input: &Value, export: &Value) -> Vec<Difference> {
    let mut exported: HashMap<String, &Value> = HashMap::new();
    for res in resources(export) {
        if let Some(key) = source_key(res) {
            exported.insert(key, res);
        }
    }
    let mut found = Vec::new();
    for entry in input["entry"].as_array().into_iter().flatten() {
        let res = &entry["resource"];
        let ty = res["resourceType"].as_str().unwrap_or_default();
        if !MAPPED_TYPES.contains(&ty) {
            continue;
        }
        let local = res["id"].as_str().or(entry["fullUrl"].as_str()).unwrap_or_default();
        let key = format!("{ty}/{local}");
        let Some(out) = exported.get(&key) else {
            found.push(diff(&key, "", "resource lost", "not in the export".into()));
            continue;
        };
        found.extend(compare(&key, res, out));
    }
    found
}

/// The differences of one resource and its export.
fn compare(key: &str, input: &Value, output: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    let (ty_in, ty_out) = (&input["resourceType"], &output["resourceType"]);
    if ty_in != ty_out {
        found.push(diff(key, "", "type changed", format!("{ty_in} became {ty_out}")));
    }
    let (before, after) = (facts(input), facts(output));
    for (path, was) in &before {
        match after.get(path) {
            None => found.push(diff(key, path, &format!("{} lost", was.kind()), was.words())),
            Some(now) if now != was => found.push(diff(
                key,
                path,
                &format!("{} changed", was.kind()),
                format!("{} became {}", was.words(), now.words()),
            )),
            Some(_) => {}
        }
    }
    for (path, now) in &after {
        if !before.contains_key(path) {
            found.push(diff(key, path, &format!("{} invented", now.kind()), now.words()));
        }
    }
    found
}

fn diff(resource: &str, path: &str, kind: &str, detail: String) -> Difference {
    Difference {
        resource: resource.to_string(),
        path: path.to_string(),
        kind: kind.to_string(),
        detail,
    }
}

/// The resources of a Bundle.
fn resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"].as_array().into_iter().flatten().map(|e| &e["resource"])
}

/// `Type/id` of the source an exported resource names (its `urn:phr:source` identifier).
fn source_key(res: &Value) -> Option<String> {
    let idents: Vec<&Value> = match &res["identifier"] {
        Value::Array(list) => list.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    let value = idents
        .into_iter()
        .find(|i| i["system"] == "urn:phr:source")?
        .get("value")?
        .as_str()?;
    Some(value.rsplit_once('|').map_or(value, |(_, key)| key).to_string())
}

/// The compared facts of a resource by path.
fn facts(res: &Value) -> BTreeMap<String, Fact> {
    let mut found = BTreeMap::new();
    if let Value::Object(map) = res {
        for (key, value) in map {
            if !matches!(key.as_str(), "meta" | "identifier" | "text" | "id" | "contained") {
                walk(key, key, value, &mut found);
            }
        }
    }
    found
}

fn walk(key: &str, path: &str, value: &Value, found: &mut BTreeMap<String, Fact>) {
    match value {
        Value::Object(map) => {
            if let Some(n) = map.get("value").filter(|v| v.is_number()) {
                let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
                let words = format!(
                    "{n} {} ({} {})",
                    field("unit"),
                    system_name(&field("system")),
                    field("code")
                );
                found.insert(path.to_string(), Fact::Quantity(words));
            }
            for (k, v) in map {
                if matches!(k.as_str(), "reference" | "identifier" | "text" | "display" | "id") {
                    continue;
                }
                walk(k, &format!("{path}.{k}"), v, found);
            }
        }
        Value::Array(items) => {
            if key == "component" {
                found.insert(path.to_string(), Fact::Components(items.len()));
            }
            for (i, item) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                if key == "coding" {
                    let s = |k: &str| item[k].as_str().unwrap_or("-").to_string();
                    found.insert(
                        at.clone(),
                        Fact::Coding(format!("{} {}", system_name(&s("system")), s("code"))),
                    );
                    continue;
                }
                walk(key, &at, item, found);
            }
        }
        Value::String(s) if matches!(key, "status" | "intent") => {
            found.insert(path.to_string(), Fact::Status(s.clone()));
        }
        Value::String(s) if key != "code" && key != "value" && is_date(s) => {
            found.insert(path.to_string(), Fact::Date(s.clone()));
        }
        _ => {}
    }
}

/// Whether `s` is a FHIR date, dateTime or instant (at any precision).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| b.get(from..to).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    match b.len() {
        4 => digits(0, 4),
        7 => digits(0, 4) && b[4] == b'-' && digits(5, 7),
        10 => digits(0, 4) && b[4] == b'-' && digits(5, 7) && b[7] == b'-' && digits(8, 10),
        n if n > 10 => is_date(&s[..10]) && b[10] == b'T' && digits(11, 13) && b[13] == b':',
        _ => false,
    }
}

/// A code system as people know it, else as written.
fn system_name(system: &str) -> &str {
    match system {
        "http://snomed.info/sct" => "SNOMED",
        "http://loinc.org" => "LOINC",
        "http://www.nlm.nih.gov/research/umls/rxnorm" => "RxNorm",
        "http://unitsofmeasure.org" => "UCUM",
        "http://hl7.org/fhir/sid/cvx" => "CVX",
        other => other,
    }
}

/// The differences counted by kind, most first, for a summary line.
pub fn counts_by_kind(found: &[Difference]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in found {
        *counts.entry(&d.kind).or_default() += 1;
    }
    let mut list: Vec<(String, usize)> = counts.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list
}

/// The sample bundles of ../shared/fhir-samples by name (Synthea patients, Apache-2.0, see its
/// LICENSE.md); empty (with a note) when the directory is absent.
pub fn fhir_samples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-samples");
    let Ok(list) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no FHIR samples at {}", dir.display());
        return Vec::new();
    };
    let mut files: Vec<std::path::PathBuf> = list
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// A JSON file the test wrote or was given.
pub fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
