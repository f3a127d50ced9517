//! Whole records as FHIR R4 Bundles: reading an EHR's or patient-access API's export into the
//! record (`phr import --fhir`), and writing the record out as one (`phr export --format fhir`).
//!
//! Import maps every resource first and writes nothing until all of them are known good, then
//! writes them all in one batch (one change per section, one durable commit), so a bundle is
//! either imported whole or not at all. Each entry is keyed by its resource (`Type/id`, see
//! [`crate::entry_id`]): importing the same bundle again changes nothing, and a newer export of
//! the same record edits just the fields that changed.
//!
//! Export writes one resource per entry, its id the entry id, tagged `urn:phr:section` with
//! the section it came from and carrying the entry's source as an `urn:phr:source` identifier,
//! so importing the export (into the same record or a fresh one) gives the same entries back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Fields;
use crate::date::Zone;
use crate::ips::{self, Learned};
use crate::json::{At, Path, describe, fhir_error, resource};
use crate::overlay::{self, Links};
use crate::reading::{self, Cx, Mapping, Refs};
use crate::resources::{self, Out, Resource};
use crate::summary::{self, Outcome, TypeCounts};
use crate::upsert::{Upsert, upsert};
use crate::vocab::{PHR_ENTRY, PHR_RECORD, PHR_SECTION, PHR_SOURCE};
use phr_model::access::AccessSet;
use phr_model::entry::{self, FHIR_KEY, PATIENT_ENTRY, SOURCE_KEY};
use phr_model::error::{Error, Result};
use phr_model::identity::PublicKey;
use phr_model::record::{EntryView, Record};
use phr_model::section::Section;

/// Bundle types that hold a set of resources to import.
const BUNDLE_TYPES: &[&str] = &["transaction", "batch", "collection", "searchset", "document"];

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

/// One entry a bundle maps to.
#[derive(Debug, Clone)]
struct Item {
    section: Section,
    id: String,
    /// Validated fields, with the source.
    fields: Fields,
    /// `Bundle.entry[i].resource`, for errors found when writing.
    path: String,
    /// Whether it came from a phr export.
    from_phr: bool,
    /// Its resource type.
    ty: &'static str,
    /// Whether phr holds it only as the resource received (see [`TypeCounts::source_only`]).
    source_only: bool,
}

/// A bundle read and mapped to entries; nothing is written until [`Mapped::import`].
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The bundle's `type`.
    pub bundle_type: String,
    /// The bundle's `meta.source`, if it names one.
    pub source: Option<String>,
    /// How many resources the bundle holds.
    pub resources: usize,
    /// Resources mapped to entries, per resource type.
    pub mapped: BTreeMap<String, usize>,
    /// Resources not imported, per type (and reason, in parentheses, when the type is mapped
    /// but this resource holds nothing to keep: `Observation (survey)`).
    pub unmapped: BTreeMap<String, usize>,
    /// What the bundle said about sections it has no entries for (an IPS document's empty
    /// sections and "no information" entries).
    pub learned: BTreeSet<Learned>,
    /// Resources not imported, per type and reason.
    not_imported: BTreeMap<String, BTreeMap<String, usize>>,
    items: Vec<Item>,
    /// Whether the bundle's Patient gave no name (an existing profile keeps its own).
    nameless_patient: bool,
}

/// Entries per outcome in one section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SectionCounts {
    /// New entries.
    pub created: usize,
    /// Existing entries with changed fields.
    pub updated: usize,
    /// Existing entries already as the bundle has them.
    pub unchanged: usize,
    /// Session notes that differ from the bundle's but are kept, since notes are never
    /// rewritten (add an amendment instead).
    #[serde(skip_serializing_if = "is_zero")]
    pub kept: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What an import did, or (for a preview) would do.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The bundle's `type`.
    pub bundle_type: String,
    /// The bundle's `meta.source`.
    pub source: Option<String>,
    /// How many resources the bundle holds.
    pub resources: usize,
    /// Outcomes per section.
    pub sections: BTreeMap<Section, SectionCounts>,
    /// Resources mapped, per type.
    pub mapped: BTreeMap<String, usize>,
    /// Resources not imported, per type (and reason).
    pub unmapped: BTreeMap<String, usize>,
    /// Outcomes per resource type: created, updated, unchanged, held only as the resource
    /// received, not imported (and why).
    pub types: BTreeMap<String, TypeCounts>,
    /// What the bundle said about sections it has no entries for (see [`Learned`]).
    pub learned: Vec<Learned>,
    /// Whether anything was written.
    pub written: bool,
}

impl ImportReport {
    /// Entries created or updated.
    pub fn changes(&self) -> usize {
        self.sections.values().map(|c| c.created + c.updated).sum()
    }
}

enum Step {
    Create(usize),
    Update(usize, Fields),
}

/// Read a bundle from its JSON text and map it; see [`map_bundle`].
pub fn read_bundle(text: &str) -> Result<Mapped> {
    let bundle: Value =
        serde_json::from_str(text).map_err(|e| fhir_error("Bundle", format!("is not valid JSON: {e}")))?;
    map_bundle(&bundle)
}

/// A resource of the bundle as first found: its path, its `fullUrl`, the resource if any.
type Found<'a> = (String, Option<&'a str>, Option<&'a Value>);

/// Map every resource of a `transaction`, `batch`, `collection`, `searchset` or `document`
/// Bundle to its entry; the first problem found is an [`Error::Fhir`] with its path in the
/// bundle, such as `Bundle.entry[12].resource.effectiveDateTime`. A document's Composition is
/// read as its table of contents (see [`crate::ips`]) unless it is a clinical note; an IPS
/// "no information" entry is learned (see [`Mapped::learned`]), never made an entry.
pub fn map_bundle(bundle: &Value) -> Result<Mapped> {
    let (root, _) = resource(bundle, &["Bundle"])?;
    let type_at = root.get("type")?;
    let kind = type_at
        .text()?
        .ok_or_else(|| type_at.fail("is missing: FHIR requires a bundle type"))?;
    if !BUNDLE_TYPES.contains(&kind.as_str()) {
        return Err(type_at.fail(format!("is `{kind}`; phr imports {} bundles", BUNDLE_TYPES.join(", "))));
    }
    let system = root.get("meta")?.get("source")?.text()?;
    let (found, refs) = gather(&root)?;
    let index = if kind == "document" {
        document_index(&found)?
    } else {
        None
    };
    let mut mapped = Mapped {
        bundle_type: kind,
        source: system.clone(),
        resources: 0,
        mapped: BTreeMap::new(),
        unmapped: BTreeMap::new(),
        learned: BTreeSet::new(),
        not_imported: BTreeMap::new(),
        items: Vec::new(),
        nameless_patient: false,
    };
    let is_index = index.is_some();
    if let Some(index) = index {
        mapped.learned = index.learned;
    }
    let mut patient: Option<String> = None;
    let mut seen: HashMap<(Section, String), usize> = HashMap::new();
    for (n, (path, full_url, res)) in found.into_iter().enumerate() {
        let Some(res) = res else {
            *mapped.unmapped.entry("(entry without a resource)".into()).or_default() += 1;
            continue;
        };
        mapped.resources += 1;
        let ty = res.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        if n == 0 && is_index {
            mapped.skip(ty, Some("the summary's table of contents"));
            continue;
        }
        if let Some(learned) = ips::absent_entry(res, &refs) {
            mapped.skip(ty, Some(learned.says.reason()));
            mapped.learned.insert(learned);
            continue;
        }
        let Some(row) = resources::resource(ty) else {
            mapped.skip(ty, None);
            continue;
        };
        let tag = section_tag(res, row, &path)?;
        let cx = Cx {
            refs: &refs,
            res,
            from_phr: tag.is_some(),
            tag,
        };
        let root = At {
            value: Some(res),
            path: Path::new(ty),
        };
        let (section, mut fields, checked) = match (row.read)(&root, &cx).map_err(|e| at(e, &path))? {
            Mapping::Skip(reason) => {
                mapped.skip(ty, Some(reason));
                continue;
            }
            Mapping::Entry(section, fields) => (section, fields, false),
            Mapping::Checked(section, fields) => (section, fields, true),
        };
        let res_at = At {
            value: Some(res),
            path: Path::new(path.clone()),
        };
        if ty == "Patient" {
            same_patient(&mut patient, patient_key(res, full_url), &res_at)?;
        }
        for key in ["subject", "patient", "beneficiary"] {
            check_patient(&res_at.get(key)?, &refs, res, &mut patient)?;
        }
        let (id, source) = identify(&res_at, tag.is_some(), full_url, system.as_deref())?;
        let id = if section == Section::Profile {
            PATIENT_ENTRY.to_string()
        } else {
            id
        };
        if let Some(source) = &source {
            fields.insert(SOURCE_KEY.into(), source.clone().into());
        }
        // Kept: what an EHR sent, and what a phr export gives back of an entry imported from
        // one (its source is named); not a phr export of an entry typed by a person.
        if tag.is_none() || source.is_some() {
            crate::keep_source(&mut fields, res);
        }
        let fields = if checked {
            // Normalized by its mapper already; the source is kept by validation as it is.
            fields
        } else {
            mapped.validate(section, fields, &path)?
        };
        mapped.add(
            &mut seen,
            ty,
            Item {
                section,
                id,
                fields,
                path,
                from_phr: tag.is_some(),
                ty: row.ty,
                source_only: !row.writes.contains(&section),
            },
        )?;
    }
    Ok(mapped)
}

/// The first entry of a `document` Bundle, which FHIR requires to be a Composition (bdl-11),
/// read as the document's index; `None` when it is a clinical note to import as one.
fn document_index(found: &[Found]) -> Result<Option<ips::Index>> {
    let Some((path, _, res)) = found.first() else {
        return Err(fhir_error(
            "Bundle.entry",
            "is missing: a document's first entry is its Composition",
        ));
    };
    let composition = At {
        value: *res,
        path: Path::new(path.clone()),
    };
    if res.and_then(|r| r.get("resourceType")).and_then(Value::as_str) != Some("Composition") {
        return Err(composition.fail("must be a Composition: a document's first entry is its Composition"));
    }
    ips::read_index(&composition)
}

/// Every resource of the bundle (so references can point forwards), and their index.
fn gather<'a>(root: &At<'a>) -> Result<(Vec<Found<'a>>, Refs<'a>)> {
    let mut found = Vec::new();
    let mut refs = Refs::default();
    for entry in root.get("entry")?.items()? {
        let full_url = entry.get("fullUrl")?.str()?;
        let res = entry.get("resource")?;
        if let Some(v) = res.value {
            let Value::Object(map) = v else {
                return Err(res.fail(format!("must be a resource (an object), not {}", describe(v))));
            };
            match map.get("resourceType") {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) => return Err(res.get("resourceType")?.fail("is missing")),
                Some(other) => {
                    return Err(res
                        .get("resourceType")?
                        .fail(format!("must be a string, not {}", describe(other))));
                }
            }
            refs.add(full_url, v);
        }
        found.push((res.path.to_string(), full_url, res.value));
    }
    Ok((found, refs))
}

/// The section a resource's phr tag names, checked against what its type can hold.
fn section_tag(res: &Value, row: &Resource, path: &str) -> Result<Option<Section>> {
    let Some(name) = reading::phr_section_tag(res) else {
        return Ok(None);
    };
    let section: Section = name.parse().map_err(|_| {
        fhir_error(
            format!("{path}.meta.tag"),
            format!("names section `{name}`, which phr does not have"),
        )
    })?;
    if !row.sections.contains(&section) {
        return Err(fhir_error(
            format!("{path}.meta.tag"),
            format!("names section `{section}`, which cannot hold a {}", row.ty),
        ));
    }
    Ok(Some(section))
}

/// The entry id and source of a resource: from a phr export, its own id and the source it
/// carries; otherwise derived from `Type/id` (else its fullUrl, else its content), the source
/// naming the system it came from.
fn identify(
    res_at: &At,
    from_phr: bool,
    full_url: Option<&str>,
    system: Option<&str>,
) -> Result<(String, Option<String>)> {
    let res = res_at.value.unwrap_or(&Value::Null);
    let ty = res.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let id_at = res_at.get("id")?;
    let own_id = id_at.text()?;
    if from_phr {
        let id = own_id.ok_or_else(|| id_at.fail("is missing: a resource phr exported keeps its entry id"))?;
        if !is_fhir_id(&id) {
            return Err(id_at.fail(format!("`{id}` is not a FHIR id (1 to 64 letters, digits, `-` or `.`)")));
        }
        let mut source = None;
        for ident in res_at.get("identifier")?.items_or_one()? {
            if ident.get("system")?.str()? == Some(PHR_SOURCE) {
                source = ident.get("value")?.text()?;
            }
        }
        return Ok((id, source));
    }
    let local = match own_id {
        Some(id) => id,
        None => match full_url {
            Some(url) => url.to_string(),
            // No id at all: the content is what identifies it on a second import.
            None => hex::encode(&phr_model::crypto::digest(res.to_string().as_bytes())[..8]),
        },
    };
    let origin = match res_at.get("meta")?.get("source")?.text()? {
        Some(s) => Some(s),
        None => match system {
            Some(s) => Some(s.to_string()),
            None => match res_at.get("identifier")?.items_or_one()?.first() {
                Some(ident) => ident.get("system")?.text()?,
                None => None,
            },
        },
    };
    let source = match origin {
        Some(s) => format!("{s}|{ty}/{local}"),
        None => format!("{ty}/{local}"),
    };
    Ok((crate::entry_id(ty, &local), Some(source)))
}

impl Mapped {
    /// Count a resource not imported: of a type phr does not read (no `reason`), or one that
    /// holds nothing the record keeps.
    fn skip(&mut self, ty: &str, reason: Option<&str>) {
        let key = match reason {
            Some(reason) => format!("{ty} ({reason})"),
            None => ty.to_string(),
        };
        *self.unmapped.entry(key).or_default() += 1;
        let why = reason.unwrap_or(summary::NO_PLACE).to_string();
        *self
            .not_imported
            .entry(ty.to_string())
            .or_default()
            .entry(why)
            .or_default() += 1;
    }

    /// Validate an entry's fields; a Patient without a name is validated with a stand-in
    /// name, then left without one: an existing profile keeps its own name.
    fn validate(&mut self, section: Section, mut fields: Fields, path: &str) -> Result<Fields> {
        if section == Section::Profile && !fields.contains_key("name") {
            self.nameless_patient = true;
            fields.insert("name".into(), "?".into());
            let mut normal = entry::validate(section, &fields).map_err(|e| at(e, path))?;
            normal.remove("name");
            Ok(normal)
        } else {
            entry::validate(section, &fields).map_err(|e| at(e, path))
        }
    }

    /// Add a mapped entry; the same resource twice is one entry, and twins that differ are
    /// refused.
    fn add(&mut self, seen: &mut HashMap<(Section, String), usize>, ty: &str, item: Item) -> Result<()> {
        match seen.get(&(item.section, item.id.clone())) {
            Some(&earlier) if self.items[earlier].fields == item.fields => return Ok(()),
            Some(&earlier) => {
                return Err(fhir_error(
                    item.path,
                    format!(
                        "is {ty} `{}` again, as at {}, but different: a bundle holds each resource once",
                        item.id, self.items[earlier].path
                    ),
                ));
            }
            None => {}
        }
        seen.insert((item.section, item.id.clone()), self.items.len());
        *self.mapped.entry(ty.to_string()).or_default() += 1;
        self.items.push(item);
        Ok(())
    }
}

/// An error found in one resource, at its place in the bundle.
fn at(e: Error, resource_path: &str) -> Error {
    match e {
        Error::Fhir { path, problem } => {
            // The mappers' paths start with the resource type (`Observation.code`), or are
            // `resourceType` itself.
            let rest = if path == "resourceType" {
                ".resourceType"
            } else {
                path.find(['.', '[']).map_or("", |i| &path[i..])
            };
            Error::Fhir {
                path: format!("{resource_path}{rest}"),
                problem,
            }
        }
        other => Error::Fhir {
            path: resource_path.to_string(),
            problem: other.to_string(),
        },
    }
}

fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// How a Patient resource is known: its id, else its fullUrl.
fn patient_key(res: &Value, full_url: Option<&str>) -> String {
    match res.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => full_url.unwrap_or_default().to_string(),
    }
}

/// Refuse a second patient: one bundle is one patient's record.
fn same_patient(patient: &mut Option<String>, key: String, at: &At) -> Result<()> {
    match patient {
        None => {
            *patient = Some(key);
            Ok(())
        }
        Some(p) if *p == key => Ok(()),
        Some(p) => Err(at.fail(format!(
            "is about patient `{key}`, but the bundle is patient `{p}`'s record: import one patient's bundle at a time"
        ))),
    }
}

/// Check that a subject/patient reference points at the bundle's one patient.
fn check_patient<'a>(reference: &At<'a>, refs: &Refs<'a>, res: &'a Value, patient: &mut Option<String>) -> Result<()> {
    let literal = reference.get("reference")?;
    let Some(r) = literal.text()? else { return Ok(()) };
    let key = match refs.resolve(&r, res) {
        Some(target) if target.get("resourceType").and_then(Value::as_str) == Some("Patient") => {
            patient_key(target, Some(&r))
        }
        Some(_) => return Ok(()),
        None => match reading::type_and_id(&r) {
            Some(("Patient", id)) => id.to_string(),
            _ => return Ok(()),
        },
    };
    same_patient(patient, key, &literal)
}

impl Mapped {
    /// What importing into `record` would do, without changing it.
    pub fn preview(&self, record: &Record) -> Result<ImportReport> {
        Ok(self.plan(record)?.1)
    }

    /// Import into `record`: every new or changed entry, then an audit event, as one change per
    /// section touched. Nothing at all is written when nothing would change. `origin` names
    /// the bundle in the audit log (its file, say).
    pub fn import(&self, record: &mut Record, origin: &str) -> Result<ImportReport> {
        let (steps, mut report) = self.plan(record)?;
        if steps.is_empty() {
            return Ok(report);
        }
        let touched: Vec<Section> = steps
            .iter()
            .map(|s| match s {
                Step::Create(i) | Step::Update(i, _) => self.items[*i].section,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (created, updated) = report
            .sections
            .values()
            .fold((0, 0), |(c, u), n| (c + n.created, u + n.updated));
        let detail = format!(
            "imported a FHIR {} bundle ({origin}): {created} entries created, {updated} updated",
            self.bundle_type
        );
        // New entries go in per section, in bulk; then the edits of existing ones.
        let mut creates: BTreeMap<Section, Vec<usize>> = BTreeMap::new();
        for step in &steps {
            if let Step::Create(i) = step {
                creates.entry(self.items[*i].section).or_default().push(*i);
            }
        }
        record.batched("import a FHIR bundle", |r| {
            for (section, items) in &creates {
                let entries = items
                    .iter()
                    .map(|i| (self.items[*i].id.clone(), self.items[*i].fields.clone()))
                    .collect();
                // Mapping validated every entry already, so what can fail here is the writer's
                // right to the section: named at its first resource.
                let first = items.first().map_or("Bundle", |i| self.items[*i].path.as_str());
                r.insert_entries(*section, entries).map_err(|e| at(e, first))?;
            }
            for step in &steps {
                if let Step::Update(i, changes) = step {
                    let item = &self.items[*i];
                    r.edit(item.section, &item.id, changes.clone())
                        .map_err(|e| at(e, &item.path))?;
                }
            }
            r.audit("import", &detail, self.source.as_deref(), &touched)
        })?;
        report.written = true;
        Ok(report)
    }

    fn plan(&self, record: &Record) -> Result<(Vec<Step>, ImportReport)> {
        let mut steps = Vec::new();
        let mut sections: BTreeMap<Section, SectionCounts> = BTreeMap::new();
        let mut types: BTreeMap<String, TypeCounts> = self
            .not_imported
            .iter()
            .map(|(ty, why)| {
                let counts = TypeCounts {
                    not_imported: why.clone(),
                    ..TypeCounts::default()
                };
                (ty.clone(), counts)
            })
            .collect();
        for (i, item) in self.items.iter().enumerate() {
            let counts = sections.entry(item.section).or_default();
            let by_type = types.entry(item.ty.to_string()).or_default();
            let old = record.read_entry(item.section, &item.id)?;
            if let Some(old) = &old {
                same_source(item, old)?;
            }
            let mut fields = std::borrow::Cow::Borrowed(&item.fields);
            if item.from_phr && old.as_ref().is_some_and(|e| e.fields.contains_key(FHIR_KEY)) {
                // A phr export of an entry gives its kept source back with phr's edits on top:
                // the entry keeps the source as its EHR sent it.
                fields.to_mut().remove(FHIR_KEY);
            }
            match upsert(item.section, &fields, old.as_ref().map(|e| &e.fields)) {
                Upsert::Create => {
                    if item.section == Section::Profile && !item.fields.contains_key("name") {
                        return Err(fhir_error(
                            format!("{}.name", item.path),
                            "is missing, and the record has no profile yet: a new profile needs the patient's name",
                        ));
                    }
                    counts.created += 1;
                    by_type.count(item.section, Outcome::Created, item.source_only);
                    steps.push(Step::Create(i));
                }
                Upsert::Unchanged => {
                    counts.unchanged += 1;
                    by_type.count(item.section, Outcome::Unchanged, item.source_only);
                }
                Upsert::Kept => {
                    counts.kept += 1;
                    by_type.count(item.section, Outcome::Kept, item.source_only);
                }
                Upsert::Update(changes) => {
                    counts.updated += 1;
                    by_type.count(item.section, Outcome::Updated, item.source_only);
                    steps.push(Step::Update(i, changes));
                }
            }
        }
        let report = ImportReport {
            bundle_type: self.bundle_type.clone(),
            source: self.source.clone(),
            resources: self.resources,
            sections,
            mapped: self.mapped.clone(),
            unmapped: self.unmapped.clone(),
            types,
            learned: self.learned.iter().cloned().collect(),
            written: false,
        };
        Ok((steps, report))
    }
}

/// Refuse an entry the record has from another system under the same resource id.
fn same_source(item: &Item, old: &EntryView) -> Result<()> {
    if item.section != Section::Profile
        && let (Some(Value::String(was)), Some(Value::String(now))) =
            (old.fields.get(SOURCE_KEY), item.fields.get(SOURCE_KEY))
        && let (Some((a, _)), Some((b, _))) = (was.rsplit_once('|'), now.rsplit_once('|'))
        && a != b
    {
        return Err(fhir_error(
            format!("{}.id", item.path),
            format!(
                "names the record's {} entry {}, which came from {a}, not from this bundle's {b}: two systems use the same resource id, so this bundle cannot be imported into this record",
                item.section, item.id
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

/// A record written out as a FHIR Bundle.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The `collection` Bundle.
    pub bundle: Value,
    /// Resources written per section.
    pub resources: BTreeMap<Section, usize>,
    /// Provenance resources, one per clinician or caregiver who wrote entries.
    pub provenance: usize,
}

/// A stable `urn:uuid:` for a resource of this record, so exports of the same record agree.
pub(crate) fn urn(record: &PublicKey, what: &str) -> String {
    let hash = phr_model::crypto::digest(format!("{record}/{what}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    // A name-based (version 5 style) UUID with the RFC 4122 variant.
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// A Reference to the patient of record `rid` by its identifier, for resources that go out
/// without the Patient beside them (a clinic's answers, an export without the profile).
pub fn record_patient(rid: &PublicKey) -> Value {
    json!({ "type": "Patient", "identifier": { "system": PHR_RECORD, "value": rid.to_string() } })
}

/// The record (or the given sections of it) as a FHIR R4 Bundle of type `collection`.
///
/// Every entry becomes one resource whose id is the entry id and whose subject is the Patient
/// (the profile, when exported; otherwise a reference by the record id). Entries written by
/// someone other than the patient's own devices (a clinician, a caregiver) are named by one
/// `Provenance` per writer: the agent is the name their access was granted under, the targets
/// their entries. The audit log is never exported. Wall-clock times go out as instants in
/// `zone` (see [`Zone`]).
pub fn export_bundle(record: &Record, access: &AccessSet, sections: &[Section], zone: Zone) -> Result<Exported> {
    let rid = record.id();
    let chosen: Vec<Section> = Section::ALL.into_iter().filter(|s| sections.contains(s)).collect();
    let entry_url = |section: Section, id: &str| urn(&rid, &format!("{section}/{id}"));

    let patient_ref =
        if chosen.contains(&Section::Profile) && record.read_entry(Section::Profile, PATIENT_ENTRY)?.is_some() {
            json!({ "reference": entry_url(Section::Profile, PATIENT_ENTRY) })
        } else {
            record_patient(&rid)
        };
    let goals: HashSet<String> = if chosen.contains(&Section::Goals) {
        record.list(Section::Goals)?.into_iter().map(|e| e.id).collect()
    } else {
        HashSet::new()
    };
    let goal_ref = |id: &str| -> Value {
        if goals.contains(id) {
            json!({ "reference": entry_url(Section::Goals, id) })
        } else {
            json!({ "type": "Goal", "identifier": { "system": PHR_ENTRY, "value": id } })
        }
    };

    let lists = chosen
        .into_iter()
        .map(|s| Ok((s, record.list(s)?)))
        .collect::<Result<Vec<_>>>()?;
    let links = links(&lists, entry_url);

    let mut entries = Vec::new();
    let mut resources = BTreeMap::new();
    // Per writer who is not one of the patient's devices: their entries and newest change.
    let mut written_by: BTreeMap<String, (Vec<Value>, String)> = BTreeMap::new();
    for (section, list) in lists {
        let out = Out {
            patient: &patient_ref,
            zone,
            goal_ref: &goal_ref,
            templates: if section == Section::Forms {
                list.iter().map(|e| (e.id.as_str(), &e.fields)).collect()
            } else {
                HashMap::new()
            },
        };
        for e in &list {
            let mut fields = e.fields.clone();
            fields.insert("created".into(), e.created.clone().into());
            fields.insert("updated".into(), e.updated.clone().into());
            let Some(row) = resources::writer_for(section) else {
                continue;
            };
            let written = match overlay::kept_source(&fields) {
                Some(source) => overlay::write_kept(row, section, &e.id, &fields, source, &out, &links),
                None => row.write(section, &e.id, &fields, &out),
            };
            let Some(mut res) = written else { continue };
            if res.get("resourceType").and_then(Value::as_str) == Some("Questionnaire") {
                resources::questionnaire::form_status_ext(&mut res, &fields);
            }
            let source = crate::json::text_field(&fields, SOURCE_KEY);
            decorate(&mut res, section, source, &patient_ref);
            let full_url = entry_url(section, &e.id);
            if !own(record, access, &e.author) && !e.author.is_empty() {
                let (targets, newest) = written_by.entry(e.author.clone()).or_default();
                targets.push(json!({ "reference": full_url }));
                if e.updated > *newest {
                    *newest = e.updated.clone();
                }
            }
            entries.push(json!({ "fullUrl": full_url, "resource": res }));
            *resources.entry(section).or_insert(0) += 1;
        }
    }
    let provenance = written_by.len();
    entries.extend(provenance_entries(&rid, access, written_by));

    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert(
        "identifier".into(),
        json!({ "system": PHR_RECORD, "value": rid.to_string() }),
    );
    bundle.insert("type".into(), "collection".into());
    // When the export was made: each resource's meta.lastUpdated says when it last changed.
    bundle.insert(
        "timestamp".into(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    // FHIR JSON forbids empty arrays.
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Exported {
        bundle: Value::Object(bundle),
        resources,
        provenance,
    })
}

/// Where the kept sources' references point: the exported entries, by the source they name.
fn links(lists: &[(Section, Vec<EntryView>)], entry_url: impl Fn(Section, &str) -> String) -> Links {
    let mut links = Links::default();
    for (section, list) in lists {
        for e in list {
            links.add(
                crate::json::text_field(&e.fields, SOURCE_KEY),
                &entry_url(*section, &e.id),
            );
        }
    }
    links
}

/// One `Provenance` per writer who is not one of the patient's devices, naming their entries.
fn provenance_entries(
    rid: &PublicKey,
    access: &AccessSet,
    written_by: BTreeMap<String, (Vec<Value>, String)>,
) -> Vec<Value> {
    let mut entries = Vec::new();
    for (author, (targets, newest)) in written_by {
        let name = author
            .parse::<PublicKey>()
            .ok()
            .and_then(|k| access.name_of(&k))
            .unwrap_or_else(|| format!("an unknown writer ({})", author.get(..8).unwrap_or(&author)));
        let id = hex::encode(&phr_model::crypto::digest(format!("provenance/{author}").as_bytes())[..8]);
        let mut prov = Map::new();
        prov.insert("resourceType".into(), "Provenance".into());
        prov.insert("id".into(), id.clone().into());
        prov.insert("target".into(), Value::Array(targets));
        prov.insert("recorded".into(), newest.into());
        prov.insert(
            "agent".into(),
            json!([{
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                    "display": "Author"
                }] },
                "who": { "display": name, "identifier": { "system": "urn:phr:key", "value": author } }
            }]),
        );
        entries.push(json!({ "fullUrl": urn(rid, &format!("provenance/{id}")), "resource": prov }));
    }
    entries
}

/// Whether `author` (hex) is the patient: the root key or one of the record's devices.
fn own(record: &Record, access: &AccessSet, author: &str) -> bool {
    match author.parse::<PublicKey>() {
        Ok(key) => key == record.id() || access.cert(&key).is_some(),
        Err(_) => false,
    }
}

/// Tag a resource with its section, carry the entry's source, and point it at the patient.
fn decorate(res: &mut Value, section: Section, source: Option<&str>, patient: &Value) {
    let Value::Object(m) = res else { return };
    let ty = m
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let meta = m.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        // A kept source from an earlier phr export has its section tag already.
        let mut tags: Vec<Value> = match meta.remove("tag") {
            Some(Value::Array(tags)) => tags.into_iter().filter(|t| t["system"] != PHR_SECTION).collect(),
            _ => Vec::new(),
        };
        tags.push(json!({ "system": PHR_SECTION, "code": section.name() }));
        meta.insert("tag".into(), Value::Array(tags));
    }
    if let Some(source) = source {
        let ident = json!({ "system": PHR_SOURCE, "value": source });
        if ty == "QuestionnaireResponse" {
            // The one exported type whose identifier is a single value.
            m.insert("identifier".into(), ident);
        } else if let Value::Array(list) = m.entry("identifier").or_insert_with(|| json!([])) {
            list.retain(|i| i["system"] != PHR_SOURCE);
            list.push(ident);
        }
    }
    match ty.as_str() {
        "Condition"
        | "MedicationStatement"
        | "Observation"
        | "DocumentReference"
        | "Goal"
        | "CarePlan"
        | "Communication"
        | "QuestionnaireResponse"
        | "Procedure"
        | "Encounter"
        | "CareTeam" => {
            m.insert("subject".into(), patient.clone());
        }
        "AllergyIntolerance" | "Immunization" => {
            m.insert("patient".into(), patient.clone());
        }
        "Coverage" => {
            m.insert("beneficiary".into(), patient.clone());
        }
        // An Appointment names the patient among its participants (its writer does).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::KeyPair;

    fn bundle(resources: Vec<Value>) -> Value {
        let entries: Vec<Value> = resources
            .into_iter()
            .map(|r| {
                let url = format!("urn:uuid:{}", r.get("id").and_then(Value::as_str).unwrap_or("no-id"));
                json!({ "fullUrl": url, "resource": r })
            })
            .collect();
        json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [{ "system": "https://github.com/synthetichealth/synthea", "value": "p1" }],
            "name": [
                { "use": "old", "given": ["Mia"], "family": "Garcia" },
                { "use": "official", "prefix": ["Ms."], "given": ["Mia", "R."], "family": "Lopez" }
            ],
            "telecom": [{ "system": "phone", "value": "555-0101", "use": "home" }],
            "gender": "female", "birthDate": "2017-04-12",
            "address": [{ "line": ["1 Main St", "Apt 2"], "city": "Springfield", "state": "MA", "postalCode": "01101", "country": "US" }],
            "communication": [{ "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "es", "display": "Spanish" }] } }]
        })
    }

    /// An empty record written by the patient's root key itself (so "own" in exports).
    fn record() -> Record {
        let root = KeyPair::generate();
        Record::new(root.public(), root)
    }

    fn entries(record: &Record, section: Section) -> Vec<EntryView> {
        record.list(section).expect("list")
    }

    fn fault(bundle: &Value) -> (String, String) {
        match map_bundle(bundle) {
            Err(Error::Fhir { path, problem }) => (path, problem),
            Err(other) => panic!("expected a FHIR error, got {other}"),
            Ok(m) => panic!("expected a FHIR error, got {:?}", m.mapped),
        }
    }

    #[test]
    fn the_patient_becomes_the_profile_with_its_source() {
        let mapped = map_bundle(&bundle(vec![patient()])).unwrap();
        let mut r = record();
        mapped.import(&mut r, "test").unwrap();
        let p = r.read_entry(Section::Profile, PATIENT_ENTRY).unwrap().expect("profile");
        assert_eq!(p.fields["name"], "Mia R. Lopez", "the official name, without its title");
        assert_eq!(p.fields["dob"], "2017-04-12");
        assert_eq!(p.fields["sex"], "female");
        assert_eq!(p.fields["language"], "Spanish");
        assert_eq!(p.fields["phone"], "555-0101");
        assert_eq!(p.fields["address"], "1 Main St, Apt 2, Springfield, MA 01101, US");
        assert_eq!(
            p.fields[SOURCE_KEY],
            "https://github.com/synthetichealth/synthea|Patient/p1"
        );
    }

    #[test]
    fn references_are_read_as_the_names_of_what_they_point_at() {
        let res = vec![
            patient(),
            json!({ "resourceType": "Practitioner", "id": "dr", "name": [{ "prefix": ["Dr."], "given": ["Jamie"], "family": "Ames" }] }),
            json!({ "resourceType": "Organization", "id": "org", "name": "Sunrise Pediatrics" }),
            json!({ "resourceType": "Condition", "id": "c1", "code": { "text": "Otitis media" }, "subject": { "reference": "urn:uuid:p1" },
                    "clinicalStatus": { "coding": [{ "code": "resolved" }] },
                    "onsetDateTime": "2023-01-02T10:00:00+01:00", "abatementDateTime": "2023-01-20" }),
            json!({ "resourceType": "Procedure", "id": "pr1", "status": "completed", "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "34068001", "display": "Tympanostomy" }] },
                    "subject": { "reference": "Patient/p1" }, "performedPeriod": { "start": "2023-02-01T08:00:00Z", "end": "2023-02-01T09:00:00Z" },
                    "reasonReference": [{ "reference": "Condition/c1" }], "performer": [{ "actor": { "reference": "urn:uuid:dr" } }] }),
            json!({ "resourceType": "Encounter", "id": "e1", "status": "finished", "class": { "code": "AMB" },
                    "type": [{ "text": "Speech therapy session" }], "subject": { "reference": "urn:uuid:p1" },
                    "participant": [{ "individual": { "reference": "urn:uuid:dr" } }],
                    "period": { "start": "2024-03-04T15:00:00-05:00", "end": "2024-03-04T15:45:00-05:00" },
                    "serviceProvider": { "reference": "urn:uuid:org" } }),
            json!({ "resourceType": "Immunization", "id": "i1", "status": "completed",
                    "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "140", "display": "Influenza, seasonal" }] },
                    "patient": { "reference": "urn:uuid:p1" }, "occurrenceDateTime": "2023-10-01T09:00:00Z", "primarySource": true }),
        ];
        let mapped = map_bundle(&bundle(res)).unwrap();
        assert_eq!(
            mapped.unmapped,
            [("Organization".to_string(), 1), ("Practitioner".to_string(), 1)].into()
        );
        let mut r = record();
        mapped.import(&mut r, "test").unwrap();

        let conditions = entries(&r, Section::Conditions);
        let c = conditions
            .iter()
            .find(|e| e.id == crate::entry_id("Condition", "c1"))
            .expect("condition");
        assert_eq!(c.fields["status"], "resolved");
        assert_eq!(c.fields["onset"], "2023-01-02");
        assert_eq!(c.fields["resolved"], "2023-01-20");
        assert_eq!(conditions.len(), 1, "a procedure is not a diagnosis");
        let p = &entries(&r, Section::Procedures)[0];
        assert_eq!(p.id, crate::entry_id("Procedure", "pr1"));
        assert_eq!(p.fields["name"], "Tympanostomy");
        assert_eq!(p.fields["code"], "http://snomed.info/sct|34068001");
        assert_eq!(p.fields["status"], "completed");
        assert_eq!(
            (p.fields["date"].as_str(), p.fields["end"].as_str()),
            (Some("2023-02-01"), Some("2023-02-01"))
        );
        assert_eq!(p.fields["reason"], "Otitis media");
        assert_eq!(p.fields["performer"], "Jamie Ames");

        let visit = &entries(&r, Section::Encounters)[0];
        assert_eq!(visit.fields["type"], "Speech therapy session");
        assert_eq!(visit.fields["status"], "finished");
        assert_eq!(visit.fields["start"], "2024-03-04T15:00:00");
        assert_eq!(visit.fields["end"], "2024-03-04T15:45:00");
        assert_eq!(visit.fields["clinician"], "Jamie Ames");
        assert_eq!(visit.fields["location"], "Sunrise Pediatrics");
        assert!(
            entries(&r, Section::Appointments).is_empty(),
            "a visit that happened is no appointment"
        );

        let shot = &entries(&r, Section::Immunizations)[0];
        assert_eq!(shot.fields["vaccine"], "Influenza, seasonal");
        assert_eq!(shot.fields["code"], "http://hl7.org/fhir/sid/cvx|140");
        assert_eq!(shot.fields["date"], "2023-10-01");
        assert!(entries(&r, Section::Documents).is_empty());
    }

    #[test]
    fn a_medication_that_ended_is_stopped_with_its_date_or_inactive_without_one() {
        let res = vec![
            json!({ "resourceType": "MedicationRequest", "id": "m1", "status": "stopped", "intent": "order",
                    "medicationCodeableConcept": { "text": "Amoxicillin 250 MG" }, "authoredOn": "2024-01-05" }),
            json!({ "resourceType": "MedicationStatement", "id": "m2", "status": "completed",
                    "medicationCodeableConcept": { "text": "Ibuprofen 100 MG" },
                    "effectivePeriod": { "start": "2024-01-05", "end": "2024-01-12" },
                    "statusReason": [{ "text": "Fever gone" }],
                    "dosage": [{ "text": "every 6 hours as needed", "route": { "text": "oral" },
                                 "doseAndRate": [{ "doseQuantity": { "value": 5, "unit": "mL" } }] }] }),
            json!({ "resourceType": "MedicationRequest", "id": "m3", "status": "entered-in-error", "intent": "order",
                    "medicationCodeableConcept": { "text": "Wrong drug" } }),
        ];
        let mapped = map_bundle(&bundle(res)).unwrap();
        assert_eq!(
            mapped.unmapped,
            [("MedicationRequest (entered-in-error)".to_string(), 1)].into()
        );
        let mut r = record();
        mapped.import(&mut r, "test").unwrap();
        let meds = entries(&r, Section::Medications);
        let m1 = meds
            .iter()
            .find(|e| e.fields["name"] == "Amoxicillin 250 MG")
            .expect("m1");
        assert_eq!(m1.fields["status"], "inactive", "{m1:?}");
        assert!(m1.fields.get("stopped").is_none());
        let m2 = meds
            .iter()
            .find(|e| e.fields["name"] == "Ibuprofen 100 MG")
            .expect("m2");
        assert_eq!(m2.fields["status"], "stopped");
        assert_eq!(m2.fields["stopped"], "2024-01-12");
        assert_eq!(m2.fields["stop_reason"], "Fever gone");
        assert_eq!(m2.fields["dose"], "5 mL");
        assert_eq!(m2.fields["schedule"], "every 6 hours as needed");
        assert_eq!(m2.fields["route"], "oral");
    }

    #[test]
    fn observations_the_record_has_no_place_for_are_counted_not_dropped() {
        let obs = |id: &str, category: &str, extra: Value| {
            let mut o = json!({ "resourceType": "Observation", "id": id, "status": "final",
                "category": [{ "coding": [{ "code": category }] }], "code": { "text": "Something" },
                "effectiveDateTime": "2024-01-01" });
            if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
                o.extend(extra);
            }
            o
        };
        let res = vec![
            obs(
                "a",
                "laboratory",
                json!({ "valueQuantity": { "value": 1.5, "unit": "mg/dL" } }),
            ),
            obs(
                "b",
                "vital-signs",
                json!({ "component": [
                { "code": { "text": "Systolic" }, "valueQuantity": { "value": 120, "unit": "mm[Hg]" } },
                { "code": { "text": "Diastolic" }, "valueQuantity": { "value": 80, "unit": "mm[Hg]" } }] }),
            ),
            obs(
                "c",
                "social-history",
                json!({ "valueCodeableConcept": { "text": "Patient is homeless" } }),
            ),
            obs(
                "d",
                "survey",
                json!({ "valueCodeableConcept": { "text": "Never smoker" } }),
            ),
            obs(
                "e",
                "laboratory",
                json!({ "hasMember": [{ "reference": "Observation/a" }] }),
            ),
            obs(
                "f",
                "laboratory",
                json!({ "status": "entered-in-error", "valueString": "x" }),
            ),
            json!({ "resourceType": "DiagnosticReport", "id": "dr", "status": "final", "code": { "text": "Panel" } }),
        ];
        let mapped = map_bundle(&bundle(res)).unwrap();
        assert_eq!(mapped.mapped, [("Observation".to_string(), 2)].into());
        let unmapped: Vec<(&str, usize)> = mapped.unmapped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            unmapped,
            [
                ("DiagnosticReport", 1),
                ("Observation (entered-in-error)", 1),
                ("Observation (no value)", 1),
                ("Observation (social-history)", 1),
                ("Observation (survey)", 1),
            ]
        );
        let mut r = record();
        mapped.import(&mut r, "test").unwrap();
        assert_eq!(entries(&r, Section::Labs).len(), 1);
        let bp = entries(&r, Section::Vitals)
            .into_iter()
            .find(|e| e.id == crate::entry_id("Observation", "b"))
            .expect("blood pressure");
        let parts = bp.fields["components"].as_array().expect("components");
        assert_eq!(
            (parts[0]["name"].as_str(), parts[0]["value"].as_str()),
            (Some("Systolic"), Some("120"))
        );
        assert_eq!(
            (parts[1]["value"].as_str(), parts[1]["unit"].as_str()),
            (Some("80"), Some("mm[Hg]"))
        );
    }

    #[test]
    fn errors_name_their_place_in_the_bundle() {
        let (path, problem) = fault(&bundle(vec![
            patient(),
            json!({ "resourceType": "Observation", "id": "o1", "status": "final", "code": { "text": "Ferritin" },
                    "effectiveDateTime": "2024-02-30", "valueQuantity": { "value": 30 } }),
        ]));
        assert_eq!(path, "Bundle.entry[1].resource.effectiveDateTime");
        assert!(problem.contains("2024-02-30"), "{problem}");

        let (path, _) = fault(&bundle(vec![
            json!({ "resourceType": "Condition", "id": "c", "code": { "coding": "x" } }),
        ]));
        assert_eq!(path, "Bundle.entry[0].resource.code.coding");

        let (path, problem) = fault(&json!({ "resourceType": "Bundle", "type": "history" }));
        assert_eq!(path, "Bundle.type");
        assert!(problem.contains("transaction"), "{problem}");

        let (path, _) = fault(&json!({ "resourceType": "Bundle", "type": "batch", "entry": [{ "resource": [1] }] }));
        assert_eq!(path, "Bundle.entry[0].resource");

        match read_bundle("{\"resourceType\": \"Bundle\",") {
            Err(Error::Fhir { path, problem }) => {
                assert_eq!(path, "Bundle");
                assert!(problem.contains("not valid JSON"), "{problem}");
            }
            other => panic!("{other:?}"),
        }

        // A rule of the record (a condition resolved before it began) is named at its resource.
        let (path, problem) = fault(&bundle(vec![
            json!({ "resourceType": "Condition", "id": "c", "code": { "text": "Flu" },
            "onsetDateTime": "2024-02-01", "abatementDateTime": "2024-01-01" }),
        ]));
        assert_eq!(path, "Bundle.entry[0].resource");
        assert!(problem.contains("resolved date is before onset"), "{problem}");
    }

    #[test]
    fn a_document_starts_with_its_composition_and_a_note_document_is_a_note() {
        let (path, problem) = fault(&json!({ "resourceType": "Bundle", "type": "document",
            "entry": [{ "resource": { "resourceType": "Condition", "id": "c", "code": { "text": "Asthma" } } }] }));
        assert_eq!(path, "Bundle.entry[0].resource");
        assert!(problem.contains("Composition"), "{problem}");

        // A clinical note sent as a document, its identifier one object as R4 defines it.
        let note = json!({ "resourceType": "Composition", "id": "n1", "status": "final",
            "identifier": { "system": "https://ehr.example/notes", "value": "n-1" },
            "type": { "text": "Speech therapy progress note" }, "date": "2024-04-02",
            "author": [{ "display": "J. Ames" }], "title": "Session",
            "section": [{ "title": "Assessment", "text": { "div": "<div>Steady gains.</div>" } }] });
        let mapped = map_bundle(&json!({ "resourceType": "Bundle", "type": "document",
            "entry": [{ "resource": note }] }))
        .unwrap();
        assert_eq!(mapped.mapped, [("Composition".to_string(), 1)].into());
        assert!(mapped.learned.is_empty());
    }

    #[test]
    fn a_resource_twice_is_one_entry_and_different_twins_are_refused() {
        let c = json!({ "resourceType": "Condition", "id": "c1", "code": { "text": "Asthma" } });
        let mapped = map_bundle(&bundle(vec![c.clone(), c.clone()])).unwrap();
        assert_eq!(mapped.mapped, [("Condition".to_string(), 1)].into());
        let mut other = c;
        other["code"]["text"] = "Eczema".into();
        let (path, problem) = fault(&bundle(vec![
            json!({ "resourceType": "Condition", "id": "c1", "code": { "text": "Asthma" } }),
            other,
        ]));
        assert_eq!(path, "Bundle.entry[1].resource");
        assert!(problem.contains("Bundle.entry[0].resource"), "{problem}");
    }

    #[test]
    fn entry_ids_are_derived_from_type_and_id_as_the_clinic_node_does() {
        let id = crate::entry_id("Observation", "abc");
        let hash = phr_model::crypto::digest(b"fhir:Observation/abc");
        assert_eq!(id, hex::encode(&hash[..8]));
        let mapped = map_bundle(&bundle(vec![
            json!({ "resourceType": "Condition", "id": "abc", "code": { "text": "Asthma" } }),
        ]))
        .unwrap();
        let mut r = record();
        mapped.import(&mut r, "test").unwrap();
        assert_eq!(
            entries(&r, Section::Conditions)[0].id,
            crate::entry_id("Condition", "abc")
        );
    }

    #[test]
    fn a_clash_of_sources_is_refused_not_overwritten() {
        let a = json!({ "resourceType": "Bundle", "type": "collection", "meta": { "source": "https://a.example" },
            "entry": [{ "resource": { "resourceType": "Condition", "id": "1", "code": { "text": "Asthma" } } }] });
        let mut b = a.clone();
        b["meta"]["source"] = "https://b.example".into();
        let mut r = record();
        map_bundle(&a).unwrap().import(&mut r, "a").unwrap();
        let err = map_bundle(&b).unwrap().import(&mut r, "b").unwrap_err().to_string();
        assert!(
            err.contains("Bundle.entry[0].resource.id") && err.contains("https://a.example"),
            "{err}"
        );
        assert_eq!(entries(&r, Section::Conditions)[0].fields["name"], "Asthma");
    }

    /// One entry of every section, as `phr add` would make it.
    fn everything() -> Record {
        let mut r = record();
        let add = |r: &mut Record, section: Section, pairs: &[(&str, &str)]| -> String {
            let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            r.add(section, entry::parse_fields(section, &args).unwrap()).unwrap()
        };
        let mut profile = Fields::new();
        profile.insert("name".into(), "Mia Lopez".into());
        r.insert_entry(Section::Profile, PATIENT_ENTRY, profile).unwrap();
        let args: Vec<(String, String)> = [
            ("dob", "2017-04-12"),
            ("language", "Spanish"),
            ("guardian", "name=Ana Lopez; relationship=mother; phone=555-0100"),
            ("contact", "name=Luis Lopez; phone=555-0199"),
            ("address", "1 Main St"),
            ("sex", "female"),
            ("email", "ana@example.org"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        r.edit(
            Section::Profile,
            PATIENT_ENTRY,
            entry::parse_fields(Section::Profile, &args).unwrap(),
        )
        .unwrap();
        add(
            &mut r,
            Section::Conditions,
            &[
                ("name", "Apraxia"),
                ("code", "R48.2"),
                ("onset", "2019-03-01"),
                ("status", "resolved"),
                ("resolved", "2023-01-01"),
                ("notes", "Much better"),
            ],
        );
        add(
            &mut r,
            Section::Allergies,
            &[
                ("substance", "Penicillin"),
                ("severity", "severe"),
                ("recorded", "2020-01-01"),
            ],
        );
        add(
            &mut r,
            Section::Medications,
            &[
                ("name", "Amoxicillin"),
                ("dose", "1-2 tablets"),
                ("schedule", "twice daily"),
                ("route", "oral"),
                ("prescriber", "Dr. Ames"),
                ("reason", "Otitis"),
                ("started", "2024-01-01"),
            ],
        );
        let stopped = add(
            &mut r,
            Section::Medications,
            &[("name", "Ibuprofen"), ("dose", "2.5 mL")],
        );
        r.stop_medication(
            &stopped,
            chrono::NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(),
            Some("done"),
        )
        .unwrap();
        add(
            &mut r,
            Section::Labs,
            &[
                ("test", "Ferritin"),
                ("value", "<5"),
                ("unit", "ng/mL"),
                ("low", "15"),
                ("high", "150"),
                ("date", "2024-03-01"),
                ("code", "2276-4"),
                ("interpretation", "low"),
            ],
        );
        add(
            &mut r,
            Section::Notes,
            &[
                ("discipline", "other"),
                ("clinician", "J. Ames"),
                ("date", "2024-02-01"),
                ("minutes", "45"),
                ("objective", "8/10"),
                ("assessment", "Improving"),
            ],
        );
        let goal = add(
            &mut r,
            Section::Goals,
            &[
                ("goal", "Produce /s/"),
                ("discipline", "other"),
                ("target_date", "2025-01-01"),
                ("status", "met"),
                ("baseline", "20"),
                ("target", "80.5"),
                ("unit", "%"),
                ("milestone", "text=words; done=yes"),
                ("milestone", "sentences"),
            ],
        );
        add(
            &mut r,
            Section::Plans,
            &[
                ("title", "Speech block"),
                ("discipline", "speech"),
                ("start", "2024-01-01"),
                ("end", "2024-06-01"),
                ("frequency", "2x weekly"),
                ("status", "draft"),
                ("goal", &goal),
                ("goal", "0123456789abcdef"),
                ("description", "Weekly sessions"),
            ],
        );
        add(
            &mut r,
            Section::Documents,
            &[
                ("title", "IEP 2024"),
                ("kind", "iep"),
                ("date", "2024-09-01"),
                ("description", "Annual IEP"),
                ("media_type", "application/pdf"),
            ],
        );
        add(
            &mut r,
            Section::Insurance,
            &[
                ("payer", "Blue Shield"),
                ("member_id", "XYZ123"),
                ("group", "G-77"),
                ("plan", "PPO"),
                ("subscriber", "Ana Lopez"),
                ("relationship", "child"),
                ("start", "2024-01-01"),
                ("end", "2024-12-31"),
            ],
        );
        add(
            &mut r,
            Section::Appointments,
            &[
                ("reason", "Evaluation"),
                ("start", "2024-05-02 14:30"),
                ("minutes", "50"),
                ("status", "confirmed"),
                ("discipline", "physical"),
                ("clinician", "J. Ames"),
                ("location", "Room 2"),
                ("notes", "Bring shoes"),
            ],
        );
        add(
            &mut r,
            Section::Messages,
            &[
                ("thread", "Homework"),
                ("body", "Practice daily"),
                ("from", "J. Ames"),
                ("to", "Ana Lopez"),
            ],
        );
        let template = add(
            &mut r,
            Section::Forms,
            &[
                ("title", "Intake"),
                ("question", "text=Allergies?; id=allergies; kind=yesno"),
                ("question", "text=Age; id=age; kind=number"),
            ],
        );
        add(
            &mut r,
            Section::Forms,
            &[
                ("title", "Intake"),
                ("kind", "response"),
                ("template", &template),
                ("status", "completed"),
                ("answer", "question=allergies; answer=no"),
                ("answer", "question=age; answer=7"),
            ],
        );
        add(
            &mut r,
            Section::CaregiverLog,
            &[
                ("date", "2024-03-03"),
                ("text", "Slept well"),
                ("category", "sleep"),
                ("minutes", "600"),
                ("by", "Mom"),
            ],
        );
        add(
            &mut r,
            Section::Procedures,
            &[
                ("name", "Tympanostomy"),
                ("code", "http://snomed.info/sct|34068001"),
                ("date", "2023-02-01"),
                ("reason", "Otitis media"),
                ("performer", "Dr. Ames"),
            ],
        );
        add(
            &mut r,
            Section::Immunizations,
            &[
                ("vaccine", "MMR"),
                ("code", "http://hl7.org/fhir/sid/cvx|03"),
                ("status", "not-done"),
                ("not_given_reason", "Fever that day"),
                ("date", "2024-02-01"),
                ("dose", "1"),
                ("site", "left arm"),
            ],
        );
        add(
            &mut r,
            Section::Vitals,
            &[
                ("name", "Blood pressure"),
                ("code", "http://loinc.org|85354-9"),
                ("date", "2024-03-02"),
                (
                    "component",
                    "name=Systolic; value=118; unit=mm[Hg]; code=http://loinc.org|8480-6",
                ),
                ("component", "name=Diastolic; value=76; unit=mm[Hg]"),
            ],
        );
        add(
            &mut r,
            Section::Encounters,
            &[
                ("type", "Well child visit"),
                ("class", "AMB"),
                ("start", "2024-03-02 10:00"),
                ("end", "2024-03-02 10:30"),
                ("clinician", "Dr. Ames"),
            ],
        );
        add(
            &mut r,
            Section::CareTeam,
            &[
                ("name", "Dr. Lee"),
                ("role", "pediatrician"),
                ("organization", "Sunrise Pediatrics"),
                ("phone", "555-0100"),
                ("member", "name=Ann Park; role=nurse"),
            ],
        );
        r
    }

    fn contents(r: &Record) -> Vec<(Section, String, Fields)> {
        let mut out = Vec::new();
        for section in Section::ALL {
            for e in entries(r, section) {
                let mut fields = e.fields;
                fields.remove("progress");
                fields.remove("amendments");
                out.push((section, e.id, fields));
            }
        }
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }

    #[test]
    fn every_section_round_trips_through_a_bundle() {
        let mut r = everything();
        let exported = export_bundle(&r, &AccessSet::default(), &Section::ALL, Zone::UTC).unwrap();
        assert_eq!(exported.resources.len(), Section::ALL.len(), "{:?}", exported.resources);
        assert_eq!(exported.provenance, 0, "all written by the patient's own key");
        let text = exported.bundle.to_string();
        let mapped = read_bundle(&text).unwrap();
        assert!(mapped.unmapped.is_empty(), "{:?}", mapped.unmapped);

        let mut fresh = record();
        mapped.import(&mut fresh, "export").unwrap();
        assert_eq!(contents(&fresh), contents(&r));
        let again = mapped.import(&mut r, "export").unwrap();
        assert_eq!(again.changes(), 0, "{:?}", again.sections);
        assert!(!again.written);
    }

    #[test]
    fn an_export_of_some_sections_points_at_the_patient_by_record_id() {
        let r = everything();
        let exported = export_bundle(&r, &AccessSet::default(), &[Section::Labs], Zone::UTC).unwrap();
        let entries = exported.bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let lab = &entries[0]["resource"];
        assert_eq!(lab["subject"]["identifier"]["value"], r.id().to_string());
        assert_eq!(lab["meta"]["tag"][0]["code"], "labs");
        assert!(
            exported.bundle.to_string().find("Mia Lopez").is_none(),
            "the profile was not asked for"
        );
    }

    #[test]
    fn a_failed_import_leaves_the_record_as_it_was() {
        // A writer whose grant covers conditions but not labs: the conditions are written
        // first (sections go in order), then the lab is refused, and the conditions must not
        // stay behind.
        let mut r = record();
        r.set_limits(Some((
            "a caregiver".into(),
            [(Section::Conditions, phr_model::capability::Right::Write)]
                .into_iter()
                .collect(),
        )));
        let mapped = map_bundle(&bundle(vec![
            json!({ "resourceType": "Condition", "id": "c1", "code": { "text": "Asthma" } }),
            json!({ "resourceType": "Condition", "id": "c2", "code": { "text": "Eczema" } }),
            json!({ "resourceType": "Observation", "id": "o1", "status": "final", "code": { "text": "Ferritin" },
                    "effectiveDateTime": "2024-01-01", "valueQuantity": { "value": 30 } }),
        ]))
        .unwrap();
        let err = mapped.import(&mut r, "test").unwrap_err().to_string();
        assert!(
            err.contains("Bundle.entry[2].resource") && err.contains("a caregiver"),
            "{err}"
        );
        for section in [Section::Labs, Section::Conditions] {
            assert!(entries(&r, section).is_empty(), "{section}");
            assert!(r.heads(section).is_empty(), "{section}");
        }
        assert!(!r.has_pending());
    }
}
