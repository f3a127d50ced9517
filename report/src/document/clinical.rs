//! The clinical parts of a report, each a table of entries: insurance coverage, diagnoses,
//! allergies, current and stopped medications, and the list of documents.

use phr_model::entry::{Allergy, Condition, Coverage, Document, Medication};
use phr_model::summary::{Audience, Summary};

use crate::model::{Block, Style, Table, para};
use crate::text::{day, opt};

/// Coverage, diagnoses, procedures, allergies, medications, immunizations and vital signs, those
/// the audience gets, in print order.
pub(super) fn parts(blocks: &mut Vec<Block>, s: &Summary) {
    if let Some(coverage) = &s.coverage {
        blocks.push(Block::Heading("Insurance coverage".into()));
        blocks.push(table_or("No coverage recorded.", coverage_table(coverage)));
    }
    if let Some(dx) = &s.diagnoses {
        blocks.push(Block::Heading("Diagnoses".into()));
        blocks.push(table_or("No diagnoses recorded.", diagnoses_table(dx)));
    }
    super::history::procedures(blocks, s);
    if let Some(allergies) = &s.allergies {
        blocks.push(Block::Heading("Allergies".into()));
        blocks.push(table_or("No active allergies recorded.", allergies_table(allergies)));
    }
    if let Some(meds) = &s.medications {
        blocks.push(Block::Heading("Medications".into()));
        let full = s.audience != Audience::Iep;
        blocks.push(table_or(
            "No current medications recorded.",
            medications_table(meds, full),
        ));
    }
    if let Some(stopped) = &s.stopped_medications {
        blocks.push(Block::Subheading("Stopped medications".into()));
        blocks.push(table_or("None recorded.", stopped_table(stopped)));
    }
    super::history::immunizations_and_vitals(blocks, s);
}

/// The documents part, when the audience gets it: listed, not attached.
pub(super) fn documents(blocks: &mut Vec<Block>, s: &Summary) {
    let Some(docs) = &s.documents else {
        return;
    };
    blocks.push(Block::Heading("Documents".into()));
    if docs.is_empty() {
        blocks.push(para("No documents recorded.", Style::Muted));
        return;
    }
    blocks.push(Block::Table(documents_table(docs)));
    blocks.push(para(
        "Documents are listed, not attached: ask the family for copies.",
        Style::Muted,
    ));
}

/// The table, or a muted remark when the record holds nothing for it.
fn table_or(empty: &str, table: Table) -> Block {
    if table.rows.is_empty() {
        para(empty, Style::Muted)
    } else {
        Block::Table(table)
    }
}

fn heads<const N: usize>(names: [&str; N]) -> Vec<String> {
    names.map(String::from).into()
}

fn coverage_table(coverage: &[Coverage]) -> Table {
    Table {
        head: heads(["Payer", "Plan", "Member ID", "Group", "Subscriber", "Period"]),
        widths: vec![0.2, 0.18, 0.16, 0.12, 0.18, 0.16],
        rows: coverage
            .iter()
            .map(|c| {
                let subscriber = match (&c.subscriber, &c.relationship) {
                    (Some(s), Some(r)) => format!("{s} ({r})"),
                    (s, _) => opt(s),
                };
                let period = match (c.start, c.end) {
                    (None, None) => String::new(),
                    (a, b) => format!("{} – {}", day(&a), b.map(|d| d.to_string()).unwrap_or("now".into())),
                };
                vec![
                    c.payer.clone(),
                    opt(&c.plan),
                    c.member_id.clone(),
                    opt(&c.group),
                    subscriber,
                    period,
                ]
            })
            .collect(),
    }
}

fn diagnoses_table(dx: &[Condition]) -> Table {
    Table {
        head: heads(["Diagnosis", "Code", "Status", "Onset"]),
        widths: vec![0.5, 0.16, 0.16, 0.18],
        rows: dx
            .iter()
            .map(|c| vec![c.name.clone(), opt(&c.code), c.status.clone(), day(&c.onset)])
            .collect(),
    }
}

fn allergies_table(allergies: &[Allergy]) -> Table {
    Table {
        head: heads(["Substance", "Reaction", "Severity"]),
        widths: vec![0.35, 0.45, 0.2],
        rows: allergies
            .iter()
            .map(|a| vec![a.substance.clone(), opt(&a.reaction), opt(&a.severity)])
            .collect(),
    }
}

/// Current medications; `full` adds why each is taken and who prescribed it (not for a school).
fn medications_table(meds: &[Medication], full: bool) -> Table {
    let mut head = vec!["Medication", "Dose", "Schedule", "Route", "Started"];
    let mut widths = vec![0.28, 0.16, 0.22, 0.14, 0.2];
    if full {
        head.extend(["Reason", "Prescriber"]);
        widths = vec![0.2, 0.11, 0.15, 0.1, 0.12, 0.17, 0.15];
    }
    Table {
        head: head.into_iter().map(String::from).collect(),
        widths,
        rows: meds
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.name.clone(),
                    opt(&m.dose),
                    opt(&m.schedule),
                    opt(&m.route),
                    day(&m.started),
                ];
                if full {
                    row.extend([opt(&m.reason), opt(&m.prescriber)]);
                }
                row
            })
            .collect(),
    }
}

fn stopped_table(stopped: &[Medication]) -> Table {
    Table {
        head: heads(["Medication", "Dose", "Started", "Stopped", "Why stopped"]),
        widths: vec![0.26, 0.14, 0.15, 0.15, 0.3],
        rows: stopped
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    opt(&m.dose),
                    day(&m.started),
                    day(&m.stopped),
                    opt(&m.stop_reason),
                ]
            })
            .collect(),
    }
}

fn documents_table(docs: &[Document]) -> Table {
    Table {
        head: heads(["Title", "Kind", "Date"]),
        widths: vec![0.6, 0.2, 0.2],
        rows: docs
            .iter()
            .map(|d| vec![d.title.clone(), d.kind.clone(), day(&d.date)])
            .collect(),
    }
}
