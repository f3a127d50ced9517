//! What the clinic's systems can do with hosted records, in FHIR terms: push a note, a lab
//! result, an appointment, an intake form or a message; change an appointment's status;
//! read requests, messages and completed forms. Shared by the HTTP API and its tests.

use phr_engine::clinic::{Clinic, StaffMember};
use phr_engine::fhir::{self, Upsert};
use phr_engine::{Error, RecordId, Refusal, Section};
use serde::Serialize;
use serde_json::{Map, Value};

/// A failed operation, with the HTTP status it deserves.
#[derive(Debug)]
pub struct OpError {
    /// HTTP status code.
    pub status: u16,
    /// What went wrong, for the caller.
    pub message: String,
}

impl OpError {
    /// An error with a status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        OpError {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::new(crate::errors::status(&e), crate::errors::for_ehr(&e))
    }
}

/// Result of an operation.
pub type OpResult<T> = std::result::Result<T, OpError>;

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The patient's record.
    pub patient: String,
    /// Section written.
    pub section: Section,
    /// Entry id in the record.
    pub id: String,
    /// `created`, `updated` or `unchanged`.
    pub outcome: &'static str,
    /// Who it is attributed to.
    pub author: String,
}

/// The record a path names: its full id, or a unique prefix of at least
/// [`phr_engine::clinic::MIN_RECORD_PREFIX`] characters.
pub fn patient(clinic: &Clinic, id: &str) -> OpResult<RecordId> {
    clinic.resolve_record(id).map_err(|e| OpError::new(404, e.to_string()))
}

/// The staff member named by `?clinician=` or, failing that, by the resource's author
/// (`Practitioner/<key>` or a display name matching the staff list), exactly: a name as on
/// the staff list (ASCII letter case aside) or a full key, never a prefix.
fn clinician(clinic: &Clinic, explicit: Option<&str>, res: &Value) -> OpResult<Option<StaffMember>> {
    if let Some(who) = explicit.filter(|w| !w.trim().is_empty()) {
        return clinic
            .find_staff(who)
            .map(Some)
            .map_err(|e| OpError::new(422, format!("clinician: {e}; staff: {}", staff_names(clinic))));
    }
    let authors = ["author", "sender", "performer", "recorder"]
        .iter()
        .filter_map(|k| res.get(*k))
        .flat_map(|v| match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        });
    for a in authors {
        if let Some(key) = a
            .get("reference")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("Practitioner/"))
            && let Ok(m) = clinic.find_staff(key)
        {
            return Ok(Some(m));
        }
        if let Some(name) = a.get("display").and_then(Value::as_str)
            && let Ok(m) = clinic.find_staff(name)
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

fn staff_names(clinic: &Clinic) -> String {
    let names: Vec<String> = clinic
        .staff()
        .into_iter()
        .filter(|m| m.removed.is_none())
        .map(|m| m.name)
        .collect();
    if names.is_empty() {
        "none yet: add one with `phr-node staff add`".into()
    } else {
        names.join(", ")
    }
}

/// The entry id a pushed resource keeps: derived from its own id, so pushing the same
/// resource again updates one entry instead of adding another.
pub fn entry_id_for(res: &Value) -> Option<String> {
    let (kind, id) = fhir::source_of(res)?;
    Some(fhir::entry_id(&kind, &id))
}

/// Push a FHIR resource into a patient's record, read as `resource_type` (a row of
/// [`fhir::RESOURCES`] a clinic may push; a note's route takes `DocumentReference`, which also
/// reads a `Composition`).
pub fn push(
    clinic: &Clinic,
    patient_id: &str,
    resource_type: &str,
    res: &Value,
    who: Option<&str>,
) -> OpResult<Pushed> {
    let kind = fhir::resource(resource_type)
        .filter(|r| r.pushable())
        .ok_or_else(|| OpError::new(500, format!("{resource_type} is not a resource type a clinic pushes")))?;
    let record = patient(clinic, patient_id)?;
    let mut fields = kind.read_pushed(res)?;
    fhir::keep_source(&mut fields, res);
    let section = kind.sections[0];
    let staff = clinician(clinic, who, res)?;
    if section == Section::Notes {
        let Some(m) = &staff else {
            return Err(OpError::new(
                422,
                format!(
                    "a note must name the clinician who wrote it: pass ?clinician=NAME or set author[0].reference to Practitioner/KEY; staff: {}",
                    staff_names(clinic)
                ),
            ));
        };
        fields.insert("clinician".into(), Value::String(m.name.clone()));
        if !fields.contains_key("discipline") {
            // A note that names no discipline is taken to be in its author's.
            let d = fhir::discipline_from_text(&m.role).ok_or_else(|| {
                OpError::new(
                    422,
                    format!(
                        "the note names no discipline (type, category or context.practiceSetting), and `{}`'s role `{}` does not say one",
                        m.name, m.role
                    ),
                )
            })?;
            fields.insert("discipline".into(), Value::String(d.into()));
        }
    }
    let id = entry_id_for(res);
    let author = staff
        .as_ref()
        .map(|m| m.label(clinic.name()))
        .unwrap_or_else(|| clinic.name().to_string());
    let (id, outcome) = clinic.write(&record, staff.as_ref().map(|m| &m.key), |r| {
        let Some(id) = id else {
            return Ok((r.add(section, fields)?, "created"));
        };
        let old = r.read_entry(section, &id)?;
        // Compared as the record would keep them; a new entry is validated as it is inserted.
        let fields = match old {
            Some(_) => phr_engine::entry::validate(section, &fields)?,
            None => fields,
        };
        match fhir::upsert(section, &fields, old.as_ref().map(|e| &e.fields)) {
            Upsert::Create => {
                r.insert_entry(section, &id, fields)?;
                Ok((id, "created"))
            }
            Upsert::Unchanged => Ok((id, "unchanged")),
            Upsert::Kept => Err(Error::NotAllowed(Refusal::NoteExists { id: id.clone() })),
            Upsert::Update(changes) => {
                r.edit(section, &id, changes)?;
                Ok((id, "updated"))
            }
        }
    })?;
    tracing::info!(patient = %record.short(), %section, %id, outcome, by = %author, "pushed");
    Ok(Pushed {
        patient: record.to_string(),
        section,
        id,
        outcome,
        author,
    })
}

/// Change an appointment from a FHIR Appointment (status, time, details).
pub fn update_appointment(
    clinic: &Clinic,
    patient_id: &str,
    id: &str,
    res: &Value,
    who: Option<&str>,
) -> OpResult<Pushed> {
    let record = patient(clinic, patient_id)?;
    let fields = fhir::appointment_from_fhir(res)?;
    let staff = clinician(clinic, who, res)?;
    edit_appointment(clinic, record, id, fields, staff)
}

/// Set an appointment's status: `confirmed`, `cancelled`, `scheduled` or `completed`.
pub fn set_appointment_status(
    clinic: &Clinic,
    patient_id: &str,
    id: &str,
    status: &str,
    who: Option<&str>,
) -> OpResult<Pushed> {
    let record = patient(clinic, patient_id)?;
    let staff = clinician(clinic, who, &Value::Null)?;
    let mut fields = Map::new();
    fields.insert("status".into(), Value::String(status.into()));
    edit_appointment(clinic, record, id, fields, staff)
}

fn edit_appointment(
    clinic: &Clinic,
    record: RecordId,
    id: &str,
    fields: Map<String, Value>,
    staff: Option<StaffMember>,
) -> OpResult<Pushed> {
    let author = staff
        .as_ref()
        .map(|m| m.label(clinic.name()))
        .unwrap_or_else(|| clinic.name().to_string());
    let id = clinic.write(&record, staff.as_ref().map(|m| &m.key), |r| {
        let id = r.resolve_id(Section::Appointments, id)?;
        r.edit(Section::Appointments, &id, fields)?;
        Ok(id)
    })?;
    tracing::info!(patient = %record.short(), %id, by = %author, "appointment changed");
    Ok(Pushed {
        patient: record.to_string(),
        section: Section::Appointments,
        id,
        outcome: "updated",
        author,
    })
}

/// Appointments of a patient as FHIR Appointments, optionally only one status: the patient is
/// named by record id, and times are in the node's zone (`TZ`, else the system's; see
/// `fhir::Zone`), where the clinic that books them runs it.
pub fn appointments(clinic: &Clinic, patient_id: &str, status: Option<&str>) -> OpResult<Vec<Value>> {
    let record = patient(clinic, patient_id)?;
    let who = fhir::record_patient(&record);
    let local = |t| fhir::offset_at(&chrono::Local, t);
    let out = clinic.read(&record, |r, _| {
        Ok(r.list(Section::Appointments)?
            .into_iter()
            .filter(|e| status.is_none_or(|s| e.fields.get("status").and_then(Value::as_str) == Some(s)))
            .map(|e| fhir::appointment_to_fhir(&e.id, &e.fields, &who, fhir::Zone::new(&local)))
            .collect())
    })?;
    Ok(out)
}

/// Messages of a patient as FHIR Communications.
pub fn messages(clinic: &Clinic, patient_id: &str) -> OpResult<Vec<Value>> {
    let record = patient(clinic, patient_id)?;
    Ok(clinic.read(&record, |r, _| {
        Ok(r.list(Section::Messages)?
            .into_iter()
            .map(|e| fhir::message_to_fhir(&e.id, &e.fields))
            .collect())
    })?)
}

/// Forms of a patient: with `completed`, the filled-in responses as
/// QuestionnaireResponses; otherwise every form (templates as Questionnaires).
pub fn forms(clinic: &Clinic, patient_id: &str, completed: bool) -> OpResult<Vec<Value>> {
    let record = patient(clinic, patient_id)?;
    Ok(clinic.read(&record, |r, _| {
        Ok(r.list(Section::Forms)?
            .into_iter()
            .filter(|e| {
                !completed
                    || (e.fields.get("kind").and_then(Value::as_str) == Some("response")
                        && e.fields.get("status").and_then(Value::as_str) != Some("in-progress"))
            })
            .map(|e| match e.fields.get("template").and_then(Value::as_str) {
                // Answers go out typed by the template's questions when it is at hand.
                Some(t) if e.fields.get("kind").and_then(Value::as_str) == Some("response") => {
                    let template = r.read_entry(Section::Forms, t).ok().flatten().map(|t| t.fields);
                    fhir::form_response_to_fhir(&e.id, &e.fields, template.as_ref())
                }
                _ => fhir::form_to_fhir(&e.id, &e.fields),
            })
            .collect())
    })?)
}
