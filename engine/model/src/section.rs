//! The sections a record is divided into; each is its own Automerge document.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One part of a patient's record, synced and shared as a unit.
///
/// The discriminant is the section's stable code (storage keys, signatures); on the wire a
/// section is its declaration index, so a new section is declared last and takes the next code,
/// keeping both the same. Codes are never reused or renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Demographics, contacts, preferred language, guardians.
    Profile = 0,
    /// Medical history: diagnoses and conditions.
    Conditions = 1,
    /// Allergies and intolerances.
    Allergies = 2,
    /// Current and past medications.
    Medications = 3,
    /// Lab results.
    Labs = 4,
    /// Therapy session notes.
    Notes = 5,
    /// Goals with milestones and progress.
    Goals = 6,
    /// Treatment plans.
    Plans = 7,
    /// Attached documents (IEPs, assessments, cards).
    Documents = 8,
    /// Insurance coverage.
    Insurance = 9,
    /// Appointments and appointment requests.
    Appointments = 10,
    /// Secure message threads.
    Messages = 11,
    /// Intake form templates and responses.
    Forms = 12,
    /// Caregivers' daily log.
    CaregiverLog = 13,
    /// The record's accounting of disclosures and changes of access; written by phr itself,
    /// seen only by the patient's own devices.
    Audit = 14,
    /// Procedures done (or begun, or not done) to the patient: surgery, tests, therapy sessions
    /// an EHR records as procedures.
    Procedures = 15,
    /// Vaccines given (or not given, and why).
    Immunizations = 16,
    /// Vital signs: height, weight, temperature, blood pressure (its parts as components), …
    Vitals = 17,
    /// Visits that happened: at a clinic, a hospital, at home or by video.
    Encounters = 18,
    /// The people and organisations caring for the patient, and how to reach them.
    CareTeam = 19,
}

impl Section {
    /// Every patient-facing section, in display order.
    pub const ALL: [Section; 19] = [
        Section::Profile,
        Section::CareTeam,
        Section::Conditions,
        Section::Procedures,
        Section::Allergies,
        Section::Medications,
        Section::Immunizations,
        Section::Labs,
        Section::Vitals,
        Section::Notes,
        Section::Goals,
        Section::Plans,
        Section::Documents,
        Section::Insurance,
        Section::Appointments,
        Section::Encounters,
        Section::Messages,
        Section::Forms,
        Section::CaregiverLog,
    ];

    /// Every section that syncs: the patient-facing ones (display order) and the audit log last.
    pub const SYNCED: [Section; 20] = {
        let mut all = [Section::Audit; 20];
        let mut i = 0;
        while i < Section::ALL.len() {
            all[i] = Section::ALL[i];
            i += 1;
        }
        all
    };

    /// The section's name as typed on the command line and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Section::Profile => "profile",
            Section::Conditions => "conditions",
            Section::Allergies => "allergies",
            Section::Medications => "medications",
            Section::Labs => "labs",
            Section::Notes => "notes",
            Section::Goals => "goals",
            Section::Plans => "plans",
            Section::Documents => "documents",
            Section::Insurance => "insurance",
            Section::Appointments => "appointments",
            Section::Messages => "messages",
            Section::Forms => "forms",
            Section::CaregiverLog => "caregiver_log",
            Section::Audit => "audit",
            Section::Procedures => "procedures",
            Section::Immunizations => "immunizations",
            Section::Vitals => "vitals",
            Section::Encounters => "encounters",
            Section::CareTeam => "care_team",
        }
    }

    /// Stable one-byte code used in storage keys and on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The section with the given code, if any.
    pub fn from_code(code: u8) -> Option<Section> {
        Section::SYNCED.into_iter().find(|s| s.code() == code)
    }

    /// All section names, for help and error messages.
    pub fn names() -> Vec<&'static str> {
        Section::ALL.iter().map(|s| s.name()).collect()
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Section {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Section::ALL
            .iter()
            .copied()
            .find(|sec| sec.name() == wanted)
            .ok_or_else(|| Error::UnknownSection(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for s in Section::ALL {
            assert_eq!(s.name().parse::<Section>().unwrap(), s);
            assert_eq!(Section::from_code(s.code()), Some(s));
        }
        assert_eq!("caregiver-log".parse::<Section>().unwrap(), Section::CaregiverLog);
        assert_eq!("care-team".parse::<Section>().unwrap(), Section::CareTeam);
    }

    #[test]
    fn codes_stay_what_they_were_and_new_sections_take_the_next() {
        let codes: Vec<(u8, &str)> = Section::SYNCED.iter().map(|s| (s.code(), s.name())).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        let names: Vec<&str> = sorted.iter().map(|(_, n)| *n).collect();
        assert_eq!(
            names,
            [
                "profile",
                "conditions",
                "allergies",
                "medications",
                "labs",
                "notes",
                "goals",
                "plans",
                "documents",
                "insurance",
                "appointments",
                "messages",
                "forms",
                "caregiver_log",
                "audit",
                "procedures",
                "immunizations",
                "vitals",
                "encounters",
                "care_team"
            ]
        );
        assert_eq!(
            sorted.iter().map(|(c, _)| *c).collect::<Vec<u8>>(),
            (0..20).collect::<Vec<u8>>()
        );
        assert_eq!(Section::from_code(20), None);
        assert_eq!(Section::from_code(255), None);
        assert_eq!(*Section::SYNCED.last().unwrap(), Section::Audit);
    }

    #[test]
    fn on_the_wire_a_section_is_its_code() {
        // postcard writes a unit variant as its declaration index: the same as the code, so a
        // new section appended keeps every older one's bytes.
        for s in Section::SYNCED {
            assert_eq!(postcard::to_stdvec(&s).unwrap(), [s.code()], "{s}");
        }
        let unknown: Result<Section, _> = postcard::from_bytes(&[20]);
        assert!(
            unknown.is_err(),
            "a code this version does not know is refused, not guessed"
        );
    }

    #[test]
    fn unknown_section_names_the_choices() {
        let err = "billing".parse::<Section>().unwrap_err().to_string();
        assert!(err.contains("unknown section `billing`"), "{err}");
        assert!(err.contains("caregiver_log"), "{err}");
    }
}
