//! The HL7 International Patient Summary (IPS): a `document` Bundle whose first entry is a
//! `Composition` (LOINC 60591-5) listing the summary's sections by LOINC section code.
//!
//! [`SECTIONS`] is the one table between phr's sections and the IPS sections: import reads a
//! Composition's sections through it (`read.rs`: what each section's `emptyReason` and IPS
//! "no information" entries say), and `phr export --format ips` writes one Composition section
//! per row phr has entries for, and every required row always (`write.rs`). A section phr gains
//! later (immunizations, procedures, vital signs) plugs in by filling its row's `section`.

use serde::Serialize;
use serde_json::Value;

use phr_model::section::Section;

mod read;
mod write;

pub(crate) use read::{Index, absent_entry, read_index};
pub use write::export_ips;

/// The IPS guide's code system for "no information" and "none known" statements.
pub(crate) const ABSENT_UNKNOWN: &str = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips";
/// FHIR's reasons a list (or a Composition section) is empty.
pub(crate) const LIST_EMPTY_REASON: &str = "http://terminology.hl7.org/CodeSystem/list-empty-reason";
const SNOMED: &str = "http://snomed.info/sct";
/// The LOINC code of a patient summary document.
pub(crate) const PATIENT_SUMMARY: &str = "60591-5";

/// One IPS section: its LOINC code and title, the phr section its entries are (`None` while phr
/// has no section for it), its name in an import's summary, and whether the guide requires it.
pub(crate) struct IpsSection {
    pub(crate) loinc: &'static str,
    pub(crate) title: &'static str,
    pub(crate) label: &'static str,
    pub(crate) section: Option<Section>,
    /// The guide requires the section; when phr has no entries for it, the export writes the
    /// entry that says "no information" (`absent`).
    pub(crate) required: Option<Required>,
}

/// How a required section says "no information": the resource type and its code element.
pub(crate) struct Required {
    pub(crate) ty: &'static str,
    pub(crate) code_key: &'static str,
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
}

/// The IPS sections phr knows, required ones first (the order a summary is read in).
pub(crate) static SECTIONS: &[IpsSection] = &[
    IpsSection {
        loinc: "10160-0",
        title: "Medication summary",
        label: "medications",
        section: Some(Section::Medications),
        required: Some(Required {
            ty: "MedicationStatement",
            code_key: "medicationCodeableConcept",
            code: "no-medication-info",
            display: "No information about medications",
        }),
    },
    IpsSection {
        loinc: "48765-2",
        title: "Allergies and intolerances",
        label: "allergies",
        section: Some(Section::Allergies),
        required: Some(Required {
            ty: "AllergyIntolerance",
            code_key: "code",
            code: "no-allergy-info",
            display: "No information about allergies",
        }),
    },
    IpsSection {
        loinc: "11450-4",
        title: "Problem list",
        label: "conditions",
        section: Some(Section::Conditions),
        required: Some(Required {
            ty: "Condition",
            code_key: "code",
            code: "no-problem-info",
            display: "No information about problems",
        }),
    },
    IpsSection {
        loinc: "30954-2",
        title: "Results",
        label: "labs",
        section: Some(Section::Labs),
        required: None,
    },
    IpsSection {
        loinc: "11369-6",
        title: "History of immunizations",
        label: "immunizations",
        section: None,
        required: None,
    },
    IpsSection {
        loinc: "47519-4",
        title: "History of procedures",
        label: "procedures",
        section: None,
        required: None,
    },
    IpsSection {
        loinc: "8716-3",
        title: "Vital signs",
        label: "vital signs",
        section: None,
        required: None,
    },
    IpsSection {
        loinc: "46264-8",
        title: "Medical devices",
        label: "medical devices",
        section: None,
        required: None,
    },
    IpsSection {
        loinc: "11348-0",
        title: "History of past illness",
        label: "past illnesses",
        section: None,
        required: None,
    },
    IpsSection {
        loinc: "18776-5",
        title: "Plan of care",
        label: "plans",
        section: Some(Section::Plans),
        required: None,
    },
];

/// The IPS section of a LOINC section code.
pub(crate) fn by_loinc(code: &str) -> Option<&'static IpsSection> {
    SECTIONS.iter().find(|s| s.loinc == code)
}

/// What a sender said instead of entries: a section's `emptyReason`, or an IPS entry such as
/// "no known allergies".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Absence {
    /// The sender has no information (`no-medication-info`, emptyReason `unavailable`).
    NoInformation,
    /// The sender knows of none (`no-known-allergies`, emptyReason `nilknown`).
    NoneKnown,
    /// Nobody asked (emptyReason `notasked`).
    NotAsked,
    /// Held back by the sender (emptyReason `withheld`).
    Withheld,
    /// Not started, or closed (emptyReason `notstarted`, `closed`).
    NotStarted,
}

impl Absence {
    /// In words, as an import's summary gives the reason a resource was not imported.
    pub fn reason(self) -> &'static str {
        match self {
            Absence::NoInformation => "no information",
            Absence::NoneKnown => "none known",
            Absence::NotAsked => "not asked",
            Absence::Withheld => "withheld",
            Absence::NotStarted => "not started",
        }
    }
}

/// What an import learned about one section without an entry to keep.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Learned {
    /// The section, by phr's name (`medications`) or the summary's (`immunizations`).
    pub section: String,
    /// What the sender said.
    pub says: Absence,
}

/// An `absent-unknown-uv-ips` code (or its SNOMED twin): the section it is about and what it says.
fn absent_code(system: &str, code: &str) -> Option<(&'static str, Absence)> {
    use Absence::{NoInformation as Info, NoneKnown as None_};
    let found = match (system, code) {
        (ABSENT_UNKNOWN, "no-allergy-info") => ("allergies", Info),
        (
            ABSENT_UNKNOWN,
            "no-known-allergies"
            | "no-known-medication-allergies"
            | "no-known-environmental-allergies"
            | "no-known-food-allergies",
        ) => ("allergies", None_),
        (SNOMED, "716186003" | "409137002" | "429625007" | "428607008") => ("allergies", None_),
        (ABSENT_UNKNOWN, "no-medication-info") => ("medications", Info),
        (ABSENT_UNKNOWN, "no-known-medications") => ("medications", None_),
        (ABSENT_UNKNOWN, "no-problem-info") => ("conditions", Info),
        (ABSENT_UNKNOWN, "no-known-problems") => ("conditions", None_),
        (SNOMED, "160245001") => ("conditions", None_),
        (ABSENT_UNKNOWN, "no-immunization-info") => ("immunizations", Info),
        (ABSENT_UNKNOWN, "no-known-immunizations") => ("immunizations", None_),
        (ABSENT_UNKNOWN, "no-procedure-info") => ("procedures", Info),
        (ABSENT_UNKNOWN, "no-known-procedures") => ("procedures", None_),
        (ABSENT_UNKNOWN, "no-device-info") => ("medical devices", Info),
        (ABSENT_UNKNOWN, "no-known-devices") => ("medical devices", None_),
        _ => return None,
    };
    Some(found)
}

/// What a `list-empty-reason` code says.
fn empty_reason(code: &str) -> Absence {
    match code {
        "nilknown" => Absence::NoneKnown,
        "notasked" => Absence::NotAsked,
        "withheld" => Absence::Withheld,
        "notstarted" | "closed" => Absence::NotStarted,
        _ => Absence::NoInformation,
    }
}

/// The codings of a CodeableConcept value, as (system, code) pairs; lenient: malformed ones
/// are the resource's reader's to report.
fn codings(concept: Option<&Value>) -> impl Iterator<Item = (&str, &str)> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c.get("system")?.as_str()?, c.get("code")?.as_str()?)))
}
