//! Typed entries of every section, their fields as the CLI sets them, and validation.
//!
//! An entry is stored in Automerge as a map of plain values (strings, numbers, booleans,
//! lists, nested maps), one key per field, so concurrent edits to different fields merge and
//! concurrent edits to the same field surface as a conflict. Every write is checked by
//! deserializing into the section's typed struct and calling its `validate`.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{EntryProblem, Error, FieldProblem, Result};
use crate::section::Section;

mod clinical;
mod coded;
mod partial_date;

pub use clinical::{
    CARE_TEAM_STATUSES, CareTeam, Component, ENCOUNTER_STATUSES, Encounter, IMMUNIZATION_STATUSES, Immunization,
    Member, PROCEDURE_STATUSES, Procedure, VitalSign,
};
pub use coded::{Coded, Coding};
pub use partial_date::{PartialDate, Precision};

/// Keys every entry map carries besides its fields; not settable by hand.
pub const META_KEYS: [&str; 3] = ["author", "created", "updated"];

/// Fixed id of the patient's demographics entry in `profile`.
pub const PATIENT_ENTRY: &str = "patient";

/// Where an imported entry came from (`system|Type/id`, see [`crate::fhir`]); kept beside the
/// fields, set only by imports (no `--source` on the command line).
pub const SOURCE_KEY: &str = "source";

/// The FHIR resource an imported or pushed entry came from, as received (its JSON text, one
/// string), so an export can give it back whole with phr's edits on top; kept beside the
/// fields like [`SOURCE_KEY`], set only by imports and a clinic's push. Entries typed by a
/// person have none.
pub const FHIR_KEY: &str = "fhir";

/// The bookkeeping keys an entry may carry beside its fields, each a string.
const KEPT_KEYS: [&str; 2] = [SOURCE_KEY, FHIR_KEY];

/// What kind of value a field holds, and so how a command-line string is parsed.
#[derive(Debug, Clone, Copy)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A date known to a year, month or day (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), kept as
    /// written; see [`PartialDate`].
    PartialDate,
    /// A date and time, `YYYY-MM-DD HH:MM`.
    DateTime,
    /// A number.
    Number,
    /// `true` or `false` (also yes/no).
    Bool,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Repeatable text; each use adds one item.
    List,
    /// Repeatable structured item: `key=value; key=value`, or bare text for the first key.
    Items(&'static [FieldSpec]),
}

/// One settable field of a section's entries.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Field name as stored and as typed after `--`.
    pub name: &'static str,
    /// Value kind.
    pub kind: FieldKind,
    /// Whether every entry must have it.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

const fn f(name: &'static str, kind: FieldKind, required: bool, help: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required,
        help,
    }
}

use FieldKind::*;

const DISCIPLINES: &[&str] = &[
    "speech",
    "aba",
    "occupational",
    "physical",
    "psychology",
    "medical",
    "multidisciplinary",
    "other",
];

const CONTACT_FIELDS: &[FieldSpec] = &[
    f("name", Text, true, "full name"),
    f("relationship", Text, false, "mother, father, grandparent, …"),
    f("phone", Text, false, "phone number"),
    f("email", Text, false, "email address"),
];

const MILESTONE_FIELDS: &[FieldSpec] = &[
    f("text", Text, true, "what the milestone is"),
    f("due", Date, false, "target date"),
    f("done", Bool, false, "reached yet"),
];

/// What a form question's answer is: the words a template's question `kind` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionKind {
    /// Free text (also any kind this version does not know).
    Text,
    /// Yes or no.
    YesNo,
    /// A number.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

impl QuestionKind {
    /// Every kind, in help order.
    pub const ALL: [QuestionKind; 4] = [Self::Text, Self::YesNo, Self::Number, Self::Date];

    /// The word a template stores for this kind.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::YesNo => "yesno",
            Self::Number => "number",
            Self::Date => "date",
        }
    }

    /// The kind a template's `kind` word names. A word this version does not know (or none)
    /// is answered as text rather than refused.
    pub fn parse(word: Option<&str>) -> QuestionKind {
        let word = word.map(str::trim);
        Self::ALL
            .into_iter()
            .find(|k| Some(k.word()) == word)
            .unwrap_or(Self::Text)
    }
}

/// The words of [`QuestionKind`], as a question's `kind` field offers them.
const QUESTION_KINDS: &[&str] = &[
    QuestionKind::Text.word(),
    QuestionKind::YesNo.word(),
    QuestionKind::Number.word(),
    QuestionKind::Date.word(),
];

const QUESTION_FIELDS: &[FieldSpec] = &[
    f("text", Text, true, "the question"),
    f("id", Text, false, "short key for the answer"),
    f("kind", Choice(QUESTION_KINDS), false, "answer type"),
    f("required", Bool, false, "whether the form cannot be sent without it"),
];

const ANSWER_FIELDS: &[FieldSpec] = &[
    f("question", Text, true, "question id"),
    f("answer", Text, true, "the answer"),
];

const PROFILE: &[FieldSpec] = &[
    f("name", Text, true, "patient's full name"),
    f("dob", Date, false, "date of birth"),
    f("sex", Choice(&["female", "male", "other", "unknown"]), false, "sex"),
    f("gender", Text, false, "gender identity"),
    f("language", Text, false, "preferred language"),
    f("phone", Text, false, "phone number"),
    f("email", Text, false, "email address"),
    f("address", Text, false, "home address"),
    f("school", Text, false, "school and grade"),
    f("guardian", Items(CONTACT_FIELDS), false, "legal guardian (for a minor)"),
    f("contact", Items(CONTACT_FIELDS), false, "emergency contact"),
];

const CONDITIONS: &[FieldSpec] = &[
    f("name", Text, true, "diagnosis or condition"),
    f("code", Text, false, "ICD-10 or SNOMED code"),
    f(
        "status",
        Choice(&["active", "resolved", "inactive"]),
        false,
        "clinical status (default active)",
    ),
    f("onset", FieldKind::PartialDate, false, "when it started"),
    f("resolved", FieldKind::PartialDate, false, "when it resolved"),
    f("notes", Text, false, "notes"),
];

const ALLERGIES: &[FieldSpec] = &[
    f("substance", Text, true, "what the patient reacts to"),
    f("reaction", Text, false, "what happens"),
    f("severity", Choice(&["mild", "moderate", "severe"]), false, "severity"),
    f(
        "status",
        Choice(&["active", "inactive", "resolved"]),
        false,
        "status (default active)",
    ),
    f("recorded", FieldKind::PartialDate, false, "when it was noted"),
    f("notes", Text, false, "notes"),
];

const MEDICATIONS: &[FieldSpec] = &[
    f("name", Text, true, "drug name"),
    f("dose", Text, false, "dose, e.g. 250 mg"),
    f("schedule", Text, false, "e.g. twice daily"),
    f("route", Text, false, "oral, topical, …"),
    f("prescriber", Text, false, "who prescribed it"),
    f("reason", Text, false, "why it is taken"),
    f("started", FieldKind::PartialDate, false, "start date"),
    f("notes", Text, false, "notes"),
];

const LABS: &[FieldSpec] = &[
    f("test", Text, true, "test name"),
    f("value", Text, true, "result value"),
    f("unit", Text, false, "unit, e.g. mg/dL"),
    f("low", Number, false, "reference range low"),
    f("high", Number, false, "reference range high"),
    f("range", Text, false, "reference range as text, when not numeric"),
    f("date", Date, true, "collection date"),
    f("code", Text, false, "LOINC code"),
    f(
        "interpretation",
        Choice(&["normal", "low", "high", "abnormal", "critical"]),
        false,
        "flag",
    ),
    f("notes", Text, false, "notes"),
];

const NOTES: &[FieldSpec] = &[
    f("discipline", Choice(DISCIPLINES), true, "therapy discipline"),
    f("clinician", Text, true, "who led the session"),
    f("date", Date, true, "session date"),
    f("minutes", Number, false, "session length"),
    f("subjective", Text, false, "S: what the family reports"),
    f("objective", Text, false, "O: what was measured"),
    f("assessment", Text, false, "A: clinician's assessment"),
    f("plan", Text, false, "P: next steps"),
];

const GOALS: &[FieldSpec] = &[
    f("goal", Text, true, "the goal"),
    f("discipline", Choice(DISCIPLINES), false, "therapy discipline"),
    f("target_date", Date, false, "when it should be met"),
    f(
        "status",
        Choice(&["active", "met", "discontinued", "on-hold"]),
        false,
        "status (default active)",
    ),
    f("baseline", Number, false, "starting measure"),
    f("target", Number, false, "target measure"),
    f("unit", Text, false, "unit of measure, e.g. % correct"),
    f("milestone", Items(MILESTONE_FIELDS), false, "a milestone on the way"),
];

const PLANS: &[FieldSpec] = &[
    f("title", Text, true, "plan title"),
    f("discipline", Choice(DISCIPLINES), false, "therapy discipline"),
    f("start", Date, false, "start date"),
    f("end", Date, false, "end date"),
    f("frequency", Text, false, "e.g. 2x weekly, 45 min"),
    f(
        "status",
        Choice(&["draft", "active", "completed", "revoked"]),
        false,
        "status (default active)",
    ),
    f("goal", List, false, "id of a goal this plan serves"),
    f("description", Text, false, "the plan"),
];

const DOCUMENTS: &[FieldSpec] = &[
    f("title", Text, true, "document title"),
    f(
        "kind",
        Choice(&["iep", "assessment", "insurance-card", "report", "other"]),
        false,
        "kind (default other)",
    ),
    f("date", Date, false, "document date"),
    f("description", Text, false, "what it is"),
    f("media_type", Text, false, "MIME type of the attached file"),
];

const INSURANCE: &[FieldSpec] = &[
    f("payer", Text, true, "insurance company"),
    f("member_id", Text, true, "member id"),
    f("group", Text, false, "group number"),
    f("plan", Text, false, "plan name"),
    f("subscriber", Text, false, "policy holder"),
    f("relationship", Text, false, "patient's relationship to the subscriber"),
    f("start", Date, false, "coverage start"),
    f("end", Date, false, "coverage end"),
];

const APPOINTMENTS: &[FieldSpec] = &[
    f("reason", Text, true, "what the visit is for"),
    f("start", DateTime, true, "date and time"),
    f("minutes", Number, false, "length"),
    f(
        "status",
        Choice(&["requested", "scheduled", "confirmed", "cancelled", "completed"]),
        false,
        "status (default requested)",
    ),
    f("discipline", Choice(DISCIPLINES), false, "therapy discipline"),
    f("clinician", Text, false, "with whom"),
    f("location", Text, false, "where"),
    f("notes", Text, false, "notes"),
];

const MESSAGES: &[FieldSpec] = &[
    f("thread", Text, true, "thread subject"),
    f("body", Text, true, "message text"),
    f("from", Text, false, "sender's name"),
    f("to", Text, false, "recipient"),
];

const FORMS: &[FieldSpec] = &[
    f("title", Text, true, "form title"),
    f(
        "kind",
        Choice(&["template", "response"]),
        false,
        "template or response (default template)",
    ),
    f("template", Text, false, "id of the template a response answers"),
    f("status", Choice(&["sent", "in-progress", "completed"]), false, "status"),
    f("question", Items(QUESTION_FIELDS), false, "a question of a template"),
    f("answer", Items(ANSWER_FIELDS), false, "an answer of a response"),
];

const CAREGIVER_LOG: &[FieldSpec] = &[
    f("date", Date, true, "day of the observation"),
    f("text", Text, true, "what happened"),
    f(
        "category",
        Choice(&["behavior", "sleep", "meals", "practice", "medication", "mood", "other"]),
        false,
        "category",
    ),
    f("minutes", Number, false, "duration"),
    f("by", Text, false, "who logged it"),
];

const AUDIT: &[FieldSpec] = &[
    f(
        "kind",
        Text,
        true,
        "what happened: grant, revoke, join, sync, reject, export, remove",
    ),
    f("detail", Text, true, "in words"),
    f("subject", Text, false, "key or id the event concerns"),
    f("section", List, false, "sections involved"),
];

/// The settable fields of a section, in help order.
pub fn fields(section: Section) -> &'static [FieldSpec] {
    match section {
        Section::Profile => PROFILE,
        Section::Conditions => CONDITIONS,
        Section::Allergies => ALLERGIES,
        Section::Medications => MEDICATIONS,
        Section::Labs => LABS,
        Section::Notes => NOTES,
        Section::Goals => GOALS,
        Section::Plans => PLANS,
        Section::Documents => DOCUMENTS,
        Section::Insurance => INSURANCE,
        Section::Appointments => APPOINTMENTS,
        Section::Messages => MESSAGES,
        Section::Forms => FORMS,
        Section::CaregiverLog => CAREGIVER_LOG,
        Section::Audit => AUDIT,
        Section::Procedures => clinical::PROCEDURES,
        Section::Immunizations => clinical::IMMUNIZATIONS,
        Section::Vitals => clinical::VITALS,
        Section::Encounters => clinical::ENCOUNTERS,
        Section::CareTeam => clinical::CARE_TEAM,
    }
}

/// The field holding the day an entry is about (a result's collection date, a session's date,
/// the day a medication was started, a visit's start), in sections that have one.
pub fn day_field(section: Section) -> Option<&'static str> {
    use Section::*;
    match section {
        Labs | Notes | CaregiverLog | Documents | Procedures | Immunizations | Vitals => Some("date"),
        Medications => Some("started"),
        Conditions => Some("onset"),
        Allergies => Some("recorded"),
        Plans | Insurance | Appointments | Encounters | CareTeam => Some("start"),
        Profile | Goals | Messages | Forms | Audit => None,
    }
}

/// Where a repeatable field's items are stored (the field name is singular on the command line).
pub fn storage_key(spec: &FieldSpec) -> String {
    match spec.kind {
        List | Items(_) => format!("{}s", spec.name),
        _ => spec.name.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Typed entries
// ---------------------------------------------------------------------------------------------

/// A person connected to the patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Full name.
    pub name: String,
    /// Relationship to the patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The patient's demographics (the single `patient` entry of `profile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    /// Full name.
    pub name: String,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<NaiveDate>,
    /// Sex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// Gender identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Preferred language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Home address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// School.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Legal guardians.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardians: Vec<Contact>,
    /// Emergency contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
}

/// A diagnosis or condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Name of the condition.
    pub name: String,
    /// Coded form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Clinical status.
    #[serde(default = "active")]
    pub status: String,
    /// Onset date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<PartialDate>,
    /// Resolution date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<PartialDate>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allergy {
    /// The substance.
    pub substance: String,
    /// The reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// Severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Status.
    #[serde(default = "active")]
    pub status: String,
    /// When noted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<PartialDate>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A medication, current or stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    /// Drug name.
    pub name: String,
    /// Dose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<String>,
    /// Schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Prescriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prescriber: Option<String>,
    /// Reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Start date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<PartialDate>,
    /// `active` or `stopped`.
    #[serde(default = "active")]
    pub status: String,
    /// When it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<PartialDate>,
    /// Why it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A lab result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabResult {
    /// Test name.
    pub test: String,
    /// Result value.
    pub value: String,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Reference low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Reference high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Reference range as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// Collection date.
    pub date: NaiveDate,
    /// LOINC code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Interpretation flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpretation: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A correction to a clinical note; the original text stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amendment {
    /// The corrected or added text.
    pub text: String,
    /// Why it was amended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Device key that wrote it.
    pub author: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A therapy session note (SOAP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionNote {
    /// Discipline.
    pub discipline: String,
    /// Clinician.
    pub clinician: String,
    /// Session date.
    pub date: NaiveDate,
    /// Minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<f64>,
    /// Subjective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjective: Option<String>,
    /// Objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// Assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<String>,
    /// Plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Amendments, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amendments: Vec<Amendment>,
    /// The attached file (see `crate::attachment`), set by `phr attach`, not by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<crate::attachment::Attachment>,
}

/// A step towards a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// What it is.
    pub text: String,
    /// Target date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// Reached.
    #[serde(default)]
    pub done: bool,
}

/// A dated measurement of progress on a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Day measured.
    pub date: NaiveDate,
    /// Measured value.
    pub value: f64,
    /// Note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Device key that recorded it.
    pub author: String,
}

/// A therapy goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// The goal.
    pub goal: String,
    /// Discipline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discipline: Option<String>,
    /// Target date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_date: Option<NaiveDate>,
    /// Status.
    #[serde(default = "active")]
    pub status: String,
    /// Baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Milestones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<Milestone>,
    /// Progress entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Progress>,
}

/// A treatment plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreatmentPlan {
    /// Title.
    pub title: String,
    /// Discipline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discipline: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    /// Frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// Status.
    #[serde(default = "active")]
    pub status: String,
    /// Goals served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Metadata of an attached document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Title.
    pub title: String,
    /// Kind.
    #[serde(default = "other")]
    pub kind: String,
    /// Date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The attached file (see `crate::attachment`), set by `phr attach`, not by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<crate::attachment::Attachment>,
}

/// Insurance coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Payer.
    pub payer: String,
    /// Member id.
    pub member_id: String,
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<String>,
    /// Relationship to subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    /// The attached file (see `crate::attachment`), set by `phr attach`, not by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<crate::attachment::Attachment>,
}

/// An appointment or a request for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    /// Reason.
    pub reason: String,
    /// Start.
    pub start: NaiveDateTime,
    /// Minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<f64>,
    /// Status.
    #[serde(default = "requested")]
    pub status: String,
    /// Discipline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discipline: Option<String>,
    /// Clinician.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician: Option<String>,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A secure message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Thread subject.
    pub thread: String,
    /// Text.
    pub body: String,
    /// Sender's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A question of an intake form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// The question.
    pub text: String,
    /// Key for answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Answer type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether it must be answered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// An answer in a form response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Question id.
    pub question: String,
    /// Answer.
    pub answer: String,
}

/// An intake form template or a filled response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    /// Title.
    pub title: String,
    /// `template` or `response`.
    #[serde(default = "template")]
    pub kind: String,
    /// Template answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Questions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
    /// Answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
}

/// One line of the caregivers' log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Day.
    pub date: NaiveDate,
    /// What happened.
    pub text: String,
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<f64>,
    /// Who logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One event in the record's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// grant, revoke, join, sync, reject, export, remove.
    pub kind: String,
    /// In words.
    pub detail: String,
    /// Key or id concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Sections involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<String>,
}

impl EntryKind for AuditEvent {
    const SECTION: Section = Section::Audit;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "kind", &self.kind)
    }
}

fn active() -> String {
    "active".into()
}
fn other() -> String {
    "other".into()
}
fn requested() -> String {
    "requested".into()
}
fn template() -> String {
    "template".into()
}

/// A typed entry kind: its section and its whole-entry rules.
pub trait EntryKind: Serialize + for<'de> Deserialize<'de> {
    /// Section the kind lives in.
    const SECTION: Section;
    /// Rules that span fields; field types are already checked by deserialization.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

fn invalid(section: Section, problem: EntryProblem) -> Error {
    Error::InvalidEntry { section, problem }
}

fn non_empty(section: Section, field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::InvalidField {
            section,
            field: field.into(),
            problem: FieldProblem::Empty,
        });
    }
    Ok(())
}

impl EntryKind for Patient {
    const SECTION: Section = Section::Profile;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)
    }
}
impl EntryKind for Condition {
    const SECTION: Section = Section::Conditions;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)?;
        if let (Some(on), Some(off)) = (self.onset, self.resolved)
            && off.wholly_before(&on)
        {
            return Err(invalid(Self::SECTION, EntryProblem::ResolvedBeforeOnset));
        }
        Ok(())
    }
}
impl EntryKind for Allergy {
    const SECTION: Section = Section::Allergies;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "substance", &self.substance)
    }
}
impl EntryKind for Medication {
    const SECTION: Section = Section::Medications;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)?;
        if self.status == "stopped" && self.stopped.is_none() {
            return Err(invalid(Self::SECTION, EntryProblem::StoppedWithoutDate));
        }
        if let (Some(start), Some(stop)) = (self.started, self.stopped)
            && stop.wholly_before(&start)
        {
            return Err(invalid(Self::SECTION, EntryProblem::StopBeforeStart));
        }
        Ok(())
    }
}
impl EntryKind for LabResult {
    const SECTION: Section = Section::Labs;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "test", &self.test)?;
        non_empty(Self::SECTION, "value", &self.value)?;
        if let (Some(lo), Some(hi)) = (self.low, self.high)
            && lo > hi
        {
            return Err(invalid(Self::SECTION, EntryProblem::RangeUpsideDown));
        }
        Ok(())
    }
}
impl EntryKind for SessionNote {
    const SECTION: Section = Section::Notes;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "clinician", &self.clinician)?;
        let soap = [&self.subjective, &self.objective, &self.assessment, &self.plan];
        if soap.iter().all(|s| s.as_deref().is_none_or(|t| t.trim().is_empty())) {
            return Err(invalid(Self::SECTION, EntryProblem::EmptyNote));
        }
        check_attachment(Self::SECTION, self.attachment.as_ref())
    }
}
impl EntryKind for Goal {
    const SECTION: Section = Section::Goals;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "goal", &self.goal)?;
        for (field, value) in [("baseline", self.baseline), ("target", self.target)] {
            if let Some(v) = value {
                check_measure(Self::SECTION, field, v)?;
            }
        }
        for p in &self.progress {
            check_measure(Self::SECTION, "value", p.value)?;
        }
        Ok(())
    }
}

/// The largest magnitude a measurement (a goal's progress, baseline or target) may have.
///
/// Far beyond any count, percentage, duration or score a therapy goal measures, and small
/// enough that charts and sums over measurements stay exact and finite.
pub const MEASURE_LIMIT: f64 = 1e9;

/// Whether `value` is a measurement phr keeps: finite and within [`MEASURE_LIMIT`] of zero.
pub fn is_measure(value: f64) -> bool {
    value.is_finite() && value.abs() <= MEASURE_LIMIT
}

/// Refuse a measurement that is not finite or beyond [`MEASURE_LIMIT`].
pub fn check_measure(section: Section, field: &str, value: f64) -> Result<()> {
    if is_measure(value) {
        return Ok(());
    }
    Err(Error::MeasureOutOfRange {
        section,
        field: field.into(),
        value,
        limit: MEASURE_LIMIT,
    })
}
impl EntryKind for TreatmentPlan {
    const SECTION: Section = Section::Plans;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "title", &self.title)?;
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e < s
        {
            return Err(invalid(Self::SECTION, EntryProblem::EndBeforeStart));
        }
        Ok(())
    }
}
impl EntryKind for Document {
    const SECTION: Section = Section::Documents;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "title", &self.title)?;
        check_attachment(Self::SECTION, self.attachment.as_ref())
    }
}
impl EntryKind for Coverage {
    const SECTION: Section = Section::Insurance;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "payer", &self.payer)?;
        non_empty(Self::SECTION, "member_id", &self.member_id)?;
        check_attachment(Self::SECTION, self.attachment.as_ref())
    }
}
impl EntryKind for Appointment {
    const SECTION: Section = Section::Appointments;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "reason", &self.reason)
    }
}
impl EntryKind for Message {
    const SECTION: Section = Section::Messages;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "body", &self.body)
    }
}
impl EntryKind for Form {
    const SECTION: Section = Section::Forms;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "title", &self.title)?;
        if self.kind == "response" && self.template.is_none() {
            return Err(invalid(Self::SECTION, EntryProblem::ResponseWithoutTemplate));
        }
        Ok(())
    }
}
impl EntryKind for LogEntry {
    const SECTION: Section = Section::CaregiverLog;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "text", &self.text)
    }
}

fn check_attachment(section: Section, attachment: Option<&crate::attachment::Attachment>) -> Result<()> {
    match attachment {
        Some(a) => a.validate().map_err(|problem| Error::InvalidField {
            section,
            field: "attachment".into(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_as<K: EntryKind>(fields: &Map<String, Value>) -> Result<Map<String, Value>> {
    check_required(K::SECTION, fields)?;
    let typed: K = serde_json::from_value(Value::Object(fields.clone()))
        .map_err(|e| invalid(K::SECTION, EntryProblem::Shape { detail: e.to_string() }))?;
    typed.validate()?;
    match serde_json::to_value(&typed) {
        Ok(Value::Object(mut normal)) => {
            // Keep the bookkeeping keys the typed struct does not model.
            for key in KEPT_KEYS {
                match fields.get(key) {
                    None => {}
                    Some(kept @ Value::String(_)) => {
                        normal.insert(key.to_string(), kept.clone());
                    }
                    Some(_) => {
                        return Err(Error::InvalidField {
                            section: K::SECTION,
                            field: key.into(),
                            problem: FieldProblem::NotText,
                        });
                    }
                }
            }
            for key in META_KEYS {
                if let Some(v) = fields.get(key) {
                    normal.insert(key.to_string(), v.clone());
                }
            }
            Ok(normal)
        }
        _ => Err(Error::internal("an entry does not serialize to a map")),
    }
}

/// Refuse an entry without one of the fields its section requires, naming the field.
fn check_required(section: Section, given: &Map<String, Value>) -> Result<()> {
    let missing = fields(section)
        .iter()
        .find(|s| s.required && given.get(s.name).is_none_or(Value::is_null));
    match missing {
        Some(spec) => Err(Error::InvalidField {
            section,
            field: spec.name.to_string(),
            problem: FieldProblem::Missing,
        }),
        None => Ok(()),
    }
}

/// Validate an entry's fields against its section's typed struct; returns the normalized fields.
pub fn validate(section: Section, fields: &Map<String, Value>) -> Result<Map<String, Value>> {
    match section {
        Section::Profile => check_as::<Patient>(fields),
        Section::Conditions => check_as::<Condition>(fields),
        Section::Allergies => check_as::<Allergy>(fields),
        Section::Medications => check_as::<Medication>(fields),
        Section::Labs => check_as::<LabResult>(fields),
        Section::Notes => check_as::<SessionNote>(fields),
        Section::Goals => check_as::<Goal>(fields),
        Section::Plans => check_as::<TreatmentPlan>(fields),
        Section::Documents => check_as::<Document>(fields),
        Section::Insurance => check_as::<Coverage>(fields),
        Section::Appointments => check_as::<Appointment>(fields),
        Section::Messages => check_as::<Message>(fields),
        Section::Forms => check_as::<Form>(fields),
        Section::CaregiverLog => check_as::<LogEntry>(fields),
        Section::Audit => check_as::<AuditEvent>(fields),
        Section::Procedures => check_as::<Procedure>(fields),
        Section::Immunizations => check_as::<Immunization>(fields),
        Section::Vitals => check_as::<VitalSign>(fields),
        Section::Encounters => check_as::<Encounter>(fields),
        Section::CareTeam => check_as::<CareTeam>(fields),
    }
}

/// Parse a date as the CLI accepts it (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| Error::InvalidDate(s.to_string()))
}

/// Parse a date-time as the CLI accepts it (`YYYY-MM-DD HH:MM[:SS]` or with a `T`).
pub fn parse_datetime(s: &str) -> Result<NaiveDateTime> {
    let t = s.trim().replace('T', " ");
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&t, fmt) {
            return Ok(dt);
        }
    }
    Err(Error::InvalidField {
        section: Section::Appointments,
        field: "start".into(),
        problem: FieldProblem::NotADateTime { given: s.to_string() },
    })
}

fn parse_value(section: Section, spec: &FieldSpec, raw: &str) -> Result<Value> {
    let bad = |problem: FieldProblem| Error::InvalidField {
        section,
        field: spec.name.to_string(),
        problem,
    };
    Ok(match spec.kind {
        Text | List => Value::String(raw.to_string()),
        Date => {
            parse_date(raw).map_err(|_| bad(FieldProblem::NotADate { given: raw.into() }))?;
            Value::String(raw.trim().to_string())
        }
        FieldKind::PartialDate => {
            let date = PartialDate::parse(raw).map_err(|_| bad(FieldProblem::NotAPartialDate { given: raw.into() }))?;
            Value::String(date.to_string())
        }
        DateTime => {
            let dt = parse_datetime(raw).map_err(|_| bad(FieldProblem::NotADateTime { given: raw.into() }))?;
            Value::String(dt.format("%Y-%m-%dT%H:%M:%S").to_string())
        }
        Number => {
            let n: f64 = raw
                .trim()
                .parse()
                .map_err(|_| bad(FieldProblem::NotANumber { given: raw.into() }))?;
            if !n.is_finite() {
                return Err(bad(FieldProblem::NotFinite { given: raw.into() }));
            }
            Value::from(n)
        }
        Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Value::Bool(true),
            "false" | "no" | "n" | "0" => Value::Bool(false),
            _ => return Err(bad(FieldProblem::NotYesOrNo { given: raw.into() })),
        },
        Choice(options) => {
            let v = raw.trim().to_ascii_lowercase();
            if !options.contains(&v.as_str()) {
                return Err(bad(FieldProblem::NotAChoice {
                    given: raw.into(),
                    options,
                }));
            }
            Value::String(v)
        }
        Items(sub) => {
            let mut item = Map::new();
            for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, val) = match part.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim()),
                    // Bare text fills the first sub-field: `--milestone "10 words"`.
                    None => (sub[0].name, part),
                };
                let sub_spec = sub.iter().find(|s| s.name == key).ok_or_else(|| {
                    bad(FieldProblem::UnknownPart {
                        given: key.into(),
                        parts: sub.iter().map(|s| s.name).collect(),
                    })
                })?;
                item.insert(key.to_string(), parse_value(section, sub_spec, val)?);
            }
            for s in sub.iter().filter(|s| s.required) {
                if !item.contains_key(s.name) {
                    return Err(bad(FieldProblem::MissingPart { part: s.name }));
                }
            }
            Value::Object(item)
        }
    })
}

/// Turn `--field value` pairs into an entry's field map, checking each against the section.
///
/// Repeatable fields (lists and items) collect every use in order.
pub fn parse_fields(section: Section, args: &[(String, String)]) -> Result<Map<String, Value>> {
    let specs = fields(section);
    let mut out = Map::new();
    for (name, raw) in args {
        let wanted = name.trim_start_matches('-').replace('-', "_");
        let spec = specs
            .iter()
            .find(|s| s.name == wanted)
            .ok_or_else(|| Error::UnknownField {
                section,
                field: wanted.clone(),
                known: specs.iter().map(|s| s.name).collect(),
            })?;
        let value = parse_value(section, spec, raw)?;
        match spec.kind {
            List | Items(_) => {
                let slot = out.entry(storage_key(spec)).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = slot {
                    items.push(value);
                }
            }
            _ => {
                out.insert(spec.name.to_string(), value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_medication_parses_and_normalizes() {
        let m = parse_fields(
            Section::Medications,
            &args(&[("name", "Amoxicillin"), ("dose", "250 mg"), ("schedule", "twice daily")]),
        )
        .unwrap();
        let normal = validate(Section::Medications, &m).unwrap();
        assert_eq!(normal["status"], "active");
        assert_eq!(normal["dose"], "250 mg");
    }

    #[test]
    fn a_lab_without_a_value_is_refused() {
        let m = parse_fields(Section::Labs, &args(&[("test", "Ferritin"), ("date", "2024-03-01")])).unwrap();
        let err = validate(Section::Labs, &m).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidField { field, problem: FieldProblem::Missing, .. } if field == "value"),
            "{err}"
        );
        assert_eq!(err.to_string(), "labs.value: is required");
    }

    #[test]
    fn bad_dates_numbers_choices_and_fields_are_named() {
        let e = parse_fields(Section::Labs, &args(&[("date", "03/01/2024")])).unwrap_err();
        assert!(e.to_string().contains("labs.date"), "{e}");
        let e = parse_fields(Section::Labs, &args(&[("low", "abc")])).unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = parse_fields(Section::Notes, &args(&[("discipline", "astrology")])).unwrap_err();
        assert!(e.to_string().contains("speech"), "{e}");
        let e = parse_fields(Section::Medications, &args(&[("colour", "red")])).unwrap_err();
        assert!(e.to_string().contains("has no field `colour`"), "{e}");
    }

    #[test]
    fn a_condition_known_only_to_its_year_or_month_keeps_that_precision() {
        let typed = parse_fields(
            Section::Conditions,
            &args(&[("name", "Asthma"), ("onset", "2015"), ("resolved", " 2015-03 ")]),
        )
        .and_then(|m| validate(Section::Conditions, &m))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(typed["onset"], "2015");
        assert_eq!(typed["resolved"], "2015-03");
        let e = parse_fields(Section::Conditions, &args(&[("onset", "03/2015")])).unwrap_err();
        assert!(e.to_string().contains("YYYY, YYYY-MM or YYYY-MM-DD"), "{e}");
        let backwards = serde_json::json!({"name": "Asthma", "onset": "2016", "resolved": "2015-12"});
        let e = validate(Section::Conditions, backwards.as_object().unwrap_or(&Map::new())).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidEntry {
                    problem: EntryProblem::ResolvedBeforeOnset,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn full_dates_stored_before_partial_dates_still_read() {
        let old = serde_json::json!({"name": "Amoxicillin", "started": "2024-01-05", "status": "stopped", "stopped": "2024-02-01"});
        let kept =
            validate(Section::Medications, old.as_object().unwrap_or(&Map::new())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept["started"], "2024-01-05");
        assert_eq!(kept["stopped"], "2024-02-01");
    }

    #[test]
    fn repeatable_items_collect_in_order() {
        let m = parse_fields(
            Section::Goals,
            &args(&[
                ("goal", "Produce /s/ in words"),
                ("milestone", "10 words"),
                ("milestone", "text=sentences; due=2025-06-01"),
            ]),
        )
        .unwrap();
        let normal = validate(Section::Goals, &m).unwrap();
        let ms = normal["milestones"].as_array().unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1]["due"], "2025-06-01");
        assert_eq!(ms[0]["done"], false);
    }

    #[test]
    fn a_note_needs_some_soap_text() {
        let m = parse_fields(
            Section::Notes,
            &args(&[
                ("discipline", "speech"),
                ("clinician", "Dr. Ames"),
                ("date", "2024-05-02"),
            ]),
        )
        .unwrap();
        assert!(validate(Section::Notes, &m).is_err());
    }

    #[test]
    fn a_measurement_beyond_a_billion_or_not_finite_is_refused_whoever_writes_it() {
        use crate::identity::KeyPair;
        let mut r = crate::record::Record::new(KeyPair::generate().public(), KeyPair::generate());
        let goal = r
            .add(
                Section::Goals,
                parse_fields(Section::Goals, &args(&[("goal", "Walk 10 steps")])).unwrap(),
            )
            .unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        for bad in [
            -1e20,
            1e20,
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NAN,
            MEASURE_LIMIT * 1.5,
        ] {
            let e = r.goal_progress(&goal, day, bad, None).unwrap_err();
            assert!(matches!(e, Error::MeasureOutOfRange { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("goals.value"), "{e}");
        }
        for good in [-MEASURE_LIMIT, 0.0, 42.5, MEASURE_LIMIT] {
            r.goal_progress(&goal, day, good, None).unwrap();
        }
        let m = parse_fields(Section::Goals, &args(&[("goal", "Walk"), ("baseline", "-1e20")])).unwrap();
        let e = validate(Section::Goals, &m).unwrap_err().to_string();
        assert!(e.contains("goals.baseline") && e.contains("-1e20"), "{e}");
    }

    #[test]
    fn question_kinds_read_their_words_and_default_to_text() {
        for kind in QuestionKind::ALL {
            assert_eq!(QuestionKind::parse(Some(kind.word())), kind);
        }
        assert_eq!(QuestionKind::parse(Some(" yesno ")), QuestionKind::YesNo);
        assert_eq!(QuestionKind::parse(Some("scale")), QuestionKind::Text);
        assert_eq!(QuestionKind::parse(None), QuestionKind::Text);
    }
}
