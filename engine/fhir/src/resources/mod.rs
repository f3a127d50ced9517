//! One file per FHIR resource type, and [`RESOURCES`], the table every dispatch goes through.
//!
//! Each row names a `resourceType`, the sections its entries may land in, the reader a
//! whole-record import uses (one style for all: the resource as an [`At`] in its bundle's
//! [`Cx`]), the reader a clinic's push uses (the strict `*_from_fhir` of the clinic API, for
//! the types a clinic may push), and, for the types entries go out as, the sections it writes
//! and its writer.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::Zone;
use crate::json::{At, fhir_error};
use crate::reading::{Cx, Mapping};

pub(crate) mod allergy_intolerance;
pub(crate) mod appointment;
pub(crate) mod care_plan;
pub(crate) mod care_team;
pub(crate) mod communication;
pub(crate) mod composition;
pub(crate) mod condition;
pub(crate) mod coverage;
pub(crate) mod document_reference;
pub(crate) mod encounter;
pub(crate) mod goal;
pub(crate) mod immunization;
pub(crate) mod medication;
pub(crate) mod observation;
pub(crate) mod patient;
pub(crate) mod procedure;
pub(crate) mod questionnaire;
pub(crate) mod questionnaire_response;
pub(crate) mod vital_signs;

/// Reads one resource of a bundle into what it becomes.
pub(crate) type Reader = fn(&At, &Cx) -> Result<Mapping>;
/// Reads a resource a clinic pushed into validated fields (see the crate docs for notes).
pub(crate) type PushReader = fn(&Value) -> Result<Fields>;
/// Writes an entry of one of the sections a type writes.
pub(crate) type Writer = fn(&Out, Section, &str, &Fields) -> Value;

/// What a writer may need beyond the entry itself: the patient, the zone of wall-clock times,
/// the other entries of an export.
pub(crate) struct Out<'a> {
    /// A Reference to the record's patient (an appointment names them as its participant).
    pub(crate) patient: &'a Value,
    /// Where the record's wall-clock times are, to write them as instants.
    pub(crate) zone: Zone<'a>,
    /// A Reference to the goal entry with this id (for care plans).
    pub(crate) goal_ref: &'a dyn Fn(&str) -> Value,
    /// The form templates by entry id, so responses' answers go out typed.
    pub(crate) templates: HashMap<&'a str, &'a Fields>,
}

/// No goal is exported beside the entry written (writing one entry alone never writes plans).
fn no_goal(_: &str) -> Value {
    Value::Null
}

/// The patient, when one entry is written alone: the record's, not named further.
static SOME_PATIENT: LazyLock<Value> = LazyLock::new(|| json!({ "type": "Patient" }));

impl Default for Out<'_> {
    fn default() -> Self {
        Out {
            patient: &SOME_PATIENT,
            zone: Zone::UTC,
            goal_ref: &no_goal,
            templates: HashMap::new(),
        }
    }
}

/// One FHIR resource type phr reads, and writes when entries go out as it.
pub struct Resource {
    /// Its `resourceType`.
    pub ty: &'static str,
    /// The sections its entries may land in; a clinic's push lands in the first.
    pub sections: &'static [Section],
    /// The sections whose entries go out as this type (empty for types only read).
    pub writes: &'static [Section],
    pub(crate) read: Reader,
    pub(crate) push: Option<PushReader>,
    pub(crate) write: Option<Writer>,
}

impl Resource {
    /// Whether a clinic may push this type (to [`Resource::read_pushed`] it).
    pub fn pushable(&self) -> bool {
        self.push.is_some()
    }

    /// Read a resource a clinic pushed into the validated fields of an entry of
    /// `self.sections[0]`; a session note may lack its clinician and discipline, for the
    /// caller to fill (see [`crate::note_from_fhir`]).
    pub fn read_pushed(&self, res: &Value) -> Result<Fields> {
        match self.push {
            Some(read) => read(res),
            None => Err(fhir_error(
                "resourceType",
                format!("is `{}`, which a clinic does not push", self.ty),
            )),
        }
    }

    /// The resource an entry of `section` goes out as; `None` if this type does not write it.
    pub(crate) fn write(&self, section: Section, id: &str, fields: &Fields, out: &Out) -> Option<Value> {
        let write = self.write.filter(|_| self.writes.contains(&section))?;
        Some(write(out, section, id, fields))
    }
}

const fn row(ty: &'static str, sections: &'static [Section], read: Reader) -> Resource {
    Resource {
        ty,
        sections,
        writes: &[],
        read,
        push: None,
        write: None,
    }
}

/// Every resource type phr reads, with its sections, readers and writer. The types a clinic
/// may push come first, in the order their names are listed when a push has the wrong type.
pub static RESOURCES: &[Resource] = &[
    Resource {
        push: Some(document_reference::note_from_fhir),
        writes: &[Section::Notes, Section::Documents],
        write: Some(document_reference::write),
        ..row(
            "DocumentReference",
            &[Section::Notes, Section::Documents],
            document_reference::read,
        )
    },
    Resource {
        push: Some(document_reference::note_from_fhir),
        ..row("Composition", &[Section::Notes], composition::read)
    },
    Resource {
        push: Some(observation::lab_from_fhir),
        writes: &[Section::Labs, Section::Vitals, Section::CaregiverLog],
        write: Some(observation::write),
        ..row(
            "Observation",
            &[Section::Labs, Section::Vitals, Section::CaregiverLog],
            observation::read,
        )
    },
    Resource {
        push: Some(appointment::appointment_from_fhir),
        writes: &[Section::Appointments],
        write: Some(appointment::write),
        ..row("Appointment", &[Section::Appointments], appointment::read)
    },
    Resource {
        push: Some(communication::message_from_fhir),
        writes: &[Section::Messages],
        write: Some(communication::write),
        ..row("Communication", &[Section::Messages], communication::read)
    },
    Resource {
        push: Some(questionnaire::form_from_fhir),
        writes: &[Section::Forms],
        write: Some(questionnaire::write),
        ..row("Questionnaire", &[Section::Forms], questionnaire::form_template)
    },
    Resource {
        push: Some(questionnaire_response::form_response_from_fhir),
        ..row("QuestionnaireResponse", &[Section::Forms], questionnaire_response::read)
    },
    Resource {
        writes: &[Section::Profile],
        write: Some(patient::write),
        ..row("Patient", &[Section::Profile], patient::patient)
    },
    Resource {
        writes: &[Section::Conditions],
        write: Some(condition::write),
        ..row("Condition", &[Section::Conditions], condition::condition)
    },
    // An older phr exported a procedure tagged as a condition (and an immunization as a document,
    // an encounter as an appointment): those tags still import, into the new sections.
    Resource {
        writes: &[Section::Procedures],
        write: Some(procedure::write),
        ..row(
            "Procedure",
            &[Section::Procedures, Section::Conditions],
            procedure::procedure,
        )
    },
    Resource {
        writes: &[Section::Allergies],
        write: Some(allergy_intolerance::write),
        ..row(
            "AllergyIntolerance",
            &[Section::Allergies],
            allergy_intolerance::allergy,
        )
    },
    row("MedicationRequest", &[Section::Medications], medication::read_request),
    Resource {
        writes: &[Section::Medications],
        write: Some(medication::write),
        ..row(
            "MedicationStatement",
            &[Section::Medications],
            medication::read_statement,
        )
    },
    Resource {
        writes: &[Section::Immunizations],
        write: Some(immunization::write),
        ..row(
            "Immunization",
            &[Section::Immunizations, Section::Documents],
            immunization::immunization,
        )
    },
    Resource {
        writes: &[Section::Encounters],
        write: Some(encounter::write),
        ..row(
            "Encounter",
            &[Section::Encounters, Section::Appointments],
            encounter::encounter,
        )
    },
    Resource {
        writes: &[Section::CareTeam],
        write: Some(care_team::write),
        ..row("CareTeam", &[Section::CareTeam], care_team::care_team)
    },
    Resource {
        writes: &[Section::Goals],
        write: Some(goal::write),
        ..row("Goal", &[Section::Goals], goal::goal)
    },
    Resource {
        writes: &[Section::Plans],
        write: Some(care_plan::write),
        ..row("CarePlan", &[Section::Plans], care_plan::care_plan)
    },
    Resource {
        writes: &[Section::Insurance],
        write: Some(coverage::write),
        ..row("Coverage", &[Section::Insurance], coverage::coverage)
    },
];

/// The row of a resource type; `None` for types phr does not keep.
pub fn resource(ty: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.ty == ty)
}

/// The row of the type entries of `section` go out as; `None` for sections never exported
/// (the audit log).
pub fn writer_for(section: Section) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.writes.contains(&section))
}
