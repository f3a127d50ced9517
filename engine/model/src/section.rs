//! The sections a record is divided into; each is its own Automerge document.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One part of a patient's record, synced and shared as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Demographics, contacts, preferred language, guardians.
    Profile,
    /// Medical history: diagnoses and conditions.
    Conditions,
    /// Allergies and intolerances.
    Allergies,
    /// Current and past medications.
    Medications,
    /// Lab results.
    Labs,
    /// Therapy session notes.
    Notes,
    /// Goals with milestones and progress.
    Goals,
    /// Treatment plans.
    Plans,
    /// Attached documents (IEPs, assessments, cards).
    Documents,
    /// Insurance coverage.
    Insurance,
    /// Appointments and appointment requests.
    Appointments,
    /// Secure message threads.
    Messages,
    /// Intake form templates and responses.
    Forms,
    /// Caregivers' daily log.
    CaregiverLog,
    /// The record's accounting of disclosures and changes of access; written by phr itself,
    /// seen only by the patient's own devices.
    Audit,
}

impl Section {
    /// Every patient-facing section, in display order.
    pub const ALL: [Section; 14] = [
        Section::Profile,
        Section::Conditions,
        Section::Allergies,
        Section::Medications,
        Section::Labs,
        Section::Notes,
        Section::Goals,
        Section::Plans,
        Section::Documents,
        Section::Insurance,
        Section::Appointments,
        Section::Messages,
        Section::Forms,
        Section::CaregiverLog,
    ];

    /// Every section that syncs: the patient-facing ones and the audit log.
    pub const SYNCED: [Section; 15] = {
        let mut all = [Section::Audit; 15];
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
        }
    }

    /// Stable one-byte code used in storage keys and on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The section with the given code, if any.
    pub fn from_code(code: u8) -> Option<Section> {
        Section::SYNCED.get(usize::from(code)).copied()
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
    }

    #[test]
    fn unknown_section_names_the_choices() {
        let err = "billing".parse::<Section>().unwrap_err().to_string();
        assert!(err.contains("unknown section `billing`"), "{err}");
        assert!(err.contains("caregiver_log"), "{err}");
    }
}
