//! The sections an EHR's chart has beside diagnoses and medications: procedures,
//! immunizations, vital signs, encounters (visits that happened) and the care team. Their field
//! specs, typed entries and rules; the module above dispatches to them.
//!
//! A `code` field holds one coding as `system|code` (`http://loinc.org|8480-6`), or a bare code
//! when its system is not known; it is plain text so that a person typing an entry may leave
//! it out.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::FieldKind::*;
use super::{EntryKind, FieldKind, FieldSpec, PartialDate, f, invalid, non_empty};
use crate::error::{EntryProblem, Result};
use crate::section::Section;

/// A procedure's status, as FHIR R4 names them (entered-in-error is not kept).
pub const PROCEDURE_STATUSES: &[&str] = &[
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "unknown",
];

/// An immunization's status: given, or not given (with why, in `not_given_reason`).
pub const IMMUNIZATION_STATUSES: &[&str] = &["completed", "not-done"];

/// An encounter's status, as FHIR R4 names them (entered-in-error is not kept).
pub const ENCOUNTER_STATUSES: &[&str] = &[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "unknown",
];

/// A care team's status, as FHIR R4 names them (entered-in-error is not kept).
pub const CARE_TEAM_STATUSES: &[&str] = &["proposed", "active", "suspended", "inactive"];

pub(super) const PROCEDURES: &[FieldSpec] = &[
    f("name", Text, true, "the procedure"),
    f(
        "code",
        Text,
        false,
        "code as system|code, e.g. http://snomed.info/sct|117015009",
    ),
    f(
        "status",
        Choice(PROCEDURE_STATUSES),
        false,
        "status (default completed)",
    ),
    f("date", FieldKind::PartialDate, false, "when it was done, or began"),
    f("end", FieldKind::PartialDate, false, "when it ended"),
    f("reason", Text, false, "why it was done"),
    f("status_reason", Text, false, "why it was not done, or stopped"),
    f("performer", Text, false, "who did it"),
    f("location", Text, false, "where"),
    f("notes", Text, false, "notes"),
];

pub(super) const IMMUNIZATIONS: &[FieldSpec] = &[
    f("vaccine", Text, true, "the vaccine"),
    f(
        "code",
        Text,
        false,
        "code as system|code, e.g. http://hl7.org/fhir/sid/cvx|20",
    ),
    f(
        "status",
        Choice(IMMUNIZATION_STATUSES),
        false,
        "completed (given, the default) or not-done",
    ),
    f("date", FieldKind::PartialDate, false, "when it was given"),
    f("when", Text, false, "when, in words, if no date is known"),
    f(
        "not_given_reason",
        Text,
        false,
        "why it was not given (status not-done)",
    ),
    f("dose", Text, false, "which dose of the series, e.g. 2"),
    f("lot", Text, false, "lot number"),
    f("site", Text, false, "where on the body, e.g. left arm"),
    f("route", Text, false, "intramuscular, oral, …"),
    f("performer", Text, false, "who gave it"),
    f("location", Text, false, "where"),
    f("notes", Text, false, "notes"),
];

const COMPONENT_FIELDS: &[FieldSpec] = &[
    f(
        "name",
        Text,
        true,
        "what this part measures, e.g. Systolic blood pressure",
    ),
    f("value", Text, true, "its value, as written"),
    f("unit", Text, false, "its unit, e.g. mm[Hg]"),
    f("code", Text, false, "its code as system|code"),
];

pub(super) const VITALS: &[FieldSpec] = &[
    f("name", Text, true, "what was measured, e.g. Body weight"),
    f("value", Text, false, "the value, as written"),
    f("unit", Text, false, "unit, e.g. kg"),
    f(
        "component",
        Items(COMPONENT_FIELDS),
        false,
        "one part of a measurement with parts: name=Systolic; value=120; unit=mm[Hg]",
    ),
    f("date", Date, true, "when it was measured"),
    f(
        "code",
        Text,
        false,
        "code as system|code, e.g. http://loinc.org|29463-7",
    ),
    f("notes", Text, false, "notes"),
];

pub(super) const ENCOUNTERS: &[FieldSpec] = &[
    f("type", Text, true, "kind of visit, e.g. Well child visit"),
    f("code", Text, false, "code of the kind of visit as system|code"),
    f(
        "class",
        Text,
        false,
        "setting as an HL7 ActCode: AMB (clinic), EMER, IMP (inpatient), HH (home), VR (video), …",
    ),
    f("status", Choice(ENCOUNTER_STATUSES), false, "status (default finished)"),
    f("start", DateTime, true, "when it began"),
    f("end", DateTime, false, "when it ended"),
    f("reason", Text, false, "why"),
    f("clinician", Text, false, "who saw the patient"),
    f("location", Text, false, "where"),
    f("notes", Text, false, "notes"),
];

const MEMBER_FIELDS: &[FieldSpec] = &[
    f("name", Text, true, "full name, or the organisation"),
    f("role", Text, false, "their role, e.g. speech therapist"),
    f("organization", Text, false, "on behalf of which organisation"),
    f("phone", Text, false, "phone number"),
    f("email", Text, false, "email address"),
];

pub(super) const CARE_TEAM: &[FieldSpec] = &[
    f("name", Text, true, "the person, team or organisation"),
    f("role", Text, false, "their role or kind of care, e.g. pediatrician"),
    f("organization", Text, false, "practice, hospital or agency"),
    f("phone", Text, false, "phone number"),
    f("email", Text, false, "email address"),
    f("status", Choice(CARE_TEAM_STATUSES), false, "status (default active)"),
    f("start", Date, false, "caring since"),
    f("end", Date, false, "caring until"),
    f(
        "member",
        Items(MEMBER_FIELDS),
        false,
        "a member of a team: name=…; role=…; organization=…; phone=…; email=…",
    ),
    f("reason", Text, false, "what they care for"),
    f("notes", Text, false, "notes"),
];

/// A procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Procedure {
    /// What was done.
    pub name: String,
    /// One coding, `system|code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One of [`PROCEDURE_STATUSES`].
    #[serde(default = "completed")]
    pub status: String,
    /// When it was done or began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PartialDate>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<PartialDate>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it was not done or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Who did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A vaccine given, or not given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    /// The vaccine.
    pub vaccine: String,
    /// One coding, `system|code` (CVX, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `completed` or `not-done`.
    #[serde(default = "completed")]
    pub status: String,
    /// When it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PartialDate>,
    /// When, in words, when no date is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Why it was not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_given_reason: Option<String>,
    /// Which dose of its series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<String>,
    /// Lot number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Body site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Who gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// One part of a vital sign with parts (a blood pressure's systolic, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// What it measures.
    pub name: String,
    /// Its value, as written.
    pub value: String,
    /// Its unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// One coding, `system|code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A vital sign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitalSign {
    /// What was measured.
    pub name: String,
    /// One coding, `system|code` (LOINC, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When.
    pub date: NaiveDate,
    /// Its value, as written (none when it has components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Unit of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Its parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A visit that happened (or is planned, or under way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    /// Kind of visit.
    #[serde(rename = "type")]
    pub kind: String,
    /// One coding of the kind, `system|code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Setting, an HL7 ActCode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// One of [`ENCOUNTER_STATUSES`].
    #[serde(default = "finished")]
    pub status: String,
    /// When it began.
    pub start: NaiveDateTime,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDateTime>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who saw the patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician: Option<String>,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A member of a care team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// On behalf of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Someone caring for the patient: one person, a team with members, or an organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CareTeam {
    /// The person, team or organisation.
    pub name: String,
    /// Role or kind of care.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// One of [`CARE_TEAM_STATUSES`].
    #[serde(default = "active")]
    pub status: String,
    /// Caring since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    /// Caring until.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    /// A team's members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// What they care for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

fn completed() -> String {
    "completed".into()
}
fn finished() -> String {
    "finished".into()
}
fn active() -> String {
    "active".into()
}

fn in_order<T: PartialOrd>(section: Section, start: Option<T>, end: Option<T>) -> Result<()> {
    match (start, end) {
        (Some(s), Some(e)) if e < s => Err(invalid(section, EntryProblem::EndBeforeStart)),
        _ => Ok(()),
    }
}

impl EntryKind for Procedure {
    const SECTION: Section = Section::Procedures;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)?;
        match (self.date, self.end) {
            (Some(start), Some(end)) if end.wholly_before(&start) => {
                Err(invalid(Self::SECTION, EntryProblem::EndBeforeStart))
            }
            _ => Ok(()),
        }
    }
}

impl EntryKind for Immunization {
    const SECTION: Section = Section::Immunizations;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "vaccine", &self.vaccine)?;
        if self.not_given_reason.is_some() && self.status != "not-done" {
            return Err(invalid(Self::SECTION, EntryProblem::ReasonButGiven));
        }
        Ok(())
    }
}

impl EntryKind for VitalSign {
    const SECTION: Section = Section::Vitals;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)?;
        let value = self.value.as_deref().is_some_and(|v| !v.trim().is_empty());
        if !value && self.components.is_empty() {
            return Err(invalid(Self::SECTION, EntryProblem::NoVitalValue));
        }
        for c in &self.components {
            non_empty(Self::SECTION, "component", &c.name)?;
            non_empty(Self::SECTION, "component", &c.value)?;
        }
        Ok(())
    }
}

impl EntryKind for Encounter {
    const SECTION: Section = Section::Encounters;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "type", &self.kind)?;
        in_order(Self::SECTION, Some(self.start), self.end)
    }
}

impl EntryKind for CareTeam {
    const SECTION: Section = Section::CareTeam;
    fn validate(&self) -> Result<()> {
        non_empty(Self::SECTION, "name", &self.name)?;
        for m in &self.members {
            non_empty(Self::SECTION, "member", &m.name)?;
        }
        in_order(Self::SECTION, self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use crate::entry::{parse_fields, validate};
    use crate::error::{EntryProblem, Error, FieldProblem};
    use crate::section::Section;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn entry(
        section: Section,
        pairs: &[(&str, &str)],
    ) -> crate::error::Result<serde_json::Map<String, serde_json::Value>> {
        validate(section, &parse_fields(section, &args(pairs))?)
    }

    #[test]
    fn a_procedure_is_completed_unless_told_and_ends_after_it_begins() {
        let p = entry(
            Section::Procedures,
            &[("name", "Tonsillectomy"), ("date", "2023-04-02")],
        )
        .unwrap();
        assert_eq!(p["status"], "completed");
        let e = entry(
            Section::Procedures,
            &[("name", "Cast"), ("date", "2023-04-02"), ("end", "2023-03-01")],
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidEntry {
                    problem: EntryProblem::EndBeforeStart,
                    ..
                }
            ),
            "{e}"
        );
        let e = entry(Section::Procedures, &[("name", "Cast"), ("status", "done")]).unwrap_err();
        assert!(e.to_string().contains("not-done"), "the choices are named: {e}");
        let e = entry(Section::Procedures, &[("date", "2023-04-02")]).unwrap_err();
        assert_eq!(e.to_string(), "procedures.name: is required");
    }

    #[test]
    fn an_immunization_not_given_says_why_and_one_given_has_no_such_reason() {
        let i = entry(
            Section::Immunizations,
            &[
                ("vaccine", "MMR"),
                ("status", "not-done"),
                ("not_given_reason", "fever that day"),
            ],
        )
        .unwrap();
        assert_eq!(i["not_given_reason"], "fever that day");
        let e = entry(
            Section::Immunizations,
            &[("vaccine", "MMR"), ("not_given_reason", "fever")],
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidEntry {
                    problem: EntryProblem::ReasonButGiven,
                    ..
                }
            ),
            "{e}"
        );
        let e = entry(Section::Immunizations, &[("vaccine", "MMR"), ("date", "May 2020")]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidField {
                    problem: FieldProblem::NotAPartialDate { .. },
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_blood_pressure_keeps_its_two_parts_with_units() {
        let bp = entry(
            Section::Vitals,
            &[
                ("name", "Blood pressure"),
                ("date", "2024-03-02"),
                (
                    "component",
                    "name=Systolic; value=118; unit=mm[Hg]; code=http://loinc.org|8480-6",
                ),
                ("component", "name=Diastolic; value=76; unit=mm[Hg]"),
            ],
        )
        .unwrap();
        let parts = bp["components"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0]["value"].as_str(), parts[0]["unit"].as_str()),
            (Some("118"), Some("mm[Hg]"))
        );
        assert_eq!(parts[0]["code"], "http://loinc.org|8480-6");
        let e = entry(Section::Vitals, &[("name", "Weight"), ("date", "2024-03-02")]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidEntry {
                    problem: EntryProblem::NoVitalValue,
                    ..
                }
            ),
            "{e}"
        );
        let e = entry(
            Section::Vitals,
            &[("name", "Weight"), ("value", "20"), ("component", "value=3")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("name="), "{e}");
    }

    #[test]
    fn an_encounter_needs_its_kind_and_start_and_ends_after_it() {
        let v = entry(
            Section::Encounters,
            &[("type", "Well child visit"), ("start", "2024-03-02 10:15")],
        )
        .unwrap();
        assert_eq!(
            (v["status"].as_str(), v["start"].as_str()),
            (Some("finished"), Some("2024-03-02T10:15:00"))
        );
        let e = entry(
            Section::Encounters,
            &[
                ("type", "Visit"),
                ("start", "2024-03-02 10:15"),
                ("end", "2024-03-02 09:00"),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidEntry {
                    problem: EntryProblem::EndBeforeStart,
                    ..
                }
            ),
            "{e}"
        );
        let e = entry(Section::Encounters, &[("type", "Visit")]).unwrap_err();
        assert_eq!(e.to_string(), "encounters.start: is required");
    }

    #[test]
    fn a_care_team_is_a_person_or_a_team_of_members() {
        let lee = entry(
            Section::CareTeam,
            &[
                ("name", "Dr. Lee"),
                ("role", "pediatrician"),
                ("phone", "555-0100"),
                ("start", "2020-01-01"),
            ],
        )
        .unwrap();
        assert_eq!(lee["status"], "active");
        let team = entry(
            Section::CareTeam,
            &[
                ("name", "Feeding clinic"),
                ("member", "name=Ann Park; role=dietitian"),
                ("member", "Bo Chen"),
            ],
        )
        .unwrap();
        assert_eq!(team["members"][1]["name"], "Bo Chen");
        let e = entry(Section::CareTeam, &[("name", "X"), ("status", "retired")]).unwrap_err();
        assert!(e.to_string().contains("suspended"), "{e}");
    }
}
