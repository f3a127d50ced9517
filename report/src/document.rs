//! A summary laid out as a document: the title lines, the patient, then each part the audience
//! gets, in print order. The parts' own layouts live in [`clinical`] (tables of entries) and
//! [`therapy`] (goals, sessions and notes).

mod clinical;
mod history;
mod therapy;

use phr_model::summary::{PatientPart, Summary};

use crate::model::{Block, Doc, Style, para};
use crate::text::{age_on, contact_line};

/// Lay out a summary as a document.
pub fn document(s: &Summary) -> Doc {
    let period = format!("{} to {}", s.since, s.generated);
    let patient_name = s
        .patient
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "(patient profile not on this device)".into());
    let mut blocks = vec![Block::Heading("Patient".into())];
    blocks.push(match &s.patient {
        Some(p) => patient(p, s),
        None => para(
            "The patient's profile has not reached this device, or is not shared with it.",
            Style::Muted,
        ),
    });
    clinical::parts(&mut blocks, s);
    therapy::parts(&mut blocks, s, &period);
    clinical::documents(&mut blocks, s);
    if !s.skipped.is_empty() {
        blocks.push(skipped(s.skipped.len()));
    }
    Doc {
        title: format!("Health summary: {patient_name}"),
        lines: title_lines(s, &period),
        notice: "Confidential health information, shared by the family for this purpose only. \
                 Made with phr from the family's own record."
            .into(),
        footer: format!("{patient_name} · {} · {}", s.audience.title(), s.generated),
        blocks,
    }
}

/// The lines under the title: audience, period, and the parts this audience does not get.
fn title_lines(s: &Summary, period: &str) -> Vec<String> {
    let mut left_out: Vec<&str> = Vec::new();
    for (name, present) in [
        ("insurance", s.coverage.is_some()),
        ("diagnoses", s.diagnoses.is_some()),
        ("allergies", s.allergies.is_some()),
        ("medications", s.medications.is_some()),
        (
            "stopped medications",
            s.stopped_medications.is_some() || s.medications.is_none(),
        ),
        ("note text", s.notes.is_some()),
    ] {
        if !present {
            left_out.push(name);
        }
    }
    let mut lines = vec![
        format!("For: {}", s.audience.title()),
        format!("Therapy period: {period} · Made {}", s.generated),
    ];
    if !left_out.is_empty() {
        lines.push(format!("Not included for this audience: {}", left_out.join(", ")));
    }
    lines
}

/// The patient's profile as label and value pairs.
fn patient(p: &PatientPart, s: &Summary) -> Block {
    let mut f = vec![("Name".to_string(), p.name.clone())];
    if let Some(dob) = p.dob {
        let age = age_on(dob, s.generated)
            .map(|a| format!(" (age {a})"))
            .unwrap_or_default();
        f.push(("Date of birth".into(), format!("{dob}{age}")));
    }
    if let Some(sex) = &p.sex {
        f.push(("Sex".into(), sex.clone()));
    }
    if let Some(l) = &p.language {
        f.push(("Language".into(), l.clone()));
    }
    if let Some(school) = &p.school {
        f.push(("School".into(), school.clone()));
    }
    for g in &p.guardians {
        f.push(("Guardian".into(), contact_line(g)));
    }
    Block::Fields(f)
}

/// The closing remark on entries this version could not read.
fn skipped(count: usize) -> Block {
    para(
        format!(
            "{} entr{} could not be read by this version of phr and {} not shown.",
            count,
            if count == 1 { "y" } else { "ies" },
            if count == 1 { "is" } else { "are" }
        ),
        Style::Muted,
    )
}
