//! The chart's history parts of a report, each a table: procedures, immunizations and the
//! latest vital signs (a measurement with parts, such as a blood pressure, as its parts).

use phr_model::entry::{Immunization, Procedure, VitalSign};
use phr_model::summary::Summary;

use crate::model::{Block, Style, Table, para};
use crate::text::{day, opt};

/// Procedures, when the audience gets them.
pub(super) fn procedures(blocks: &mut Vec<Block>, s: &Summary) {
    if let Some(list) = &s.procedures {
        blocks.push(Block::Heading("Procedures".into()));
        blocks.push(table_or("No procedures recorded.", procedures_table(list)));
    }
}

/// Immunizations and the latest vital signs, those the audience gets.
pub(super) fn immunizations_and_vitals(blocks: &mut Vec<Block>, s: &Summary) {
    if let Some(list) = &s.immunizations {
        blocks.push(Block::Heading("Immunizations".into()));
        blocks.push(table_or("No immunizations recorded.", immunizations_table(list)));
    }
    if let Some(list) = &s.vitals {
        blocks.push(Block::Heading("Vital signs (latest)".into()));
        blocks.push(table_or("No vital signs recorded.", vitals_table(list)));
    }
}

fn table_or(empty: &str, table: Table) -> Block {
    if table.rows.is_empty() {
        para(empty, Style::Muted)
    } else {
        Block::Table(table)
    }
}

fn head(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A `system|code` field as printed: the code alone.
fn code(field: &Option<String>) -> String {
    let text = opt(field);
    text.rsplit_once('|').map_or(text.clone(), |(_, c)| c.to_string())
}

fn procedures_table(list: &[Procedure]) -> Table {
    Table {
        head: head(&["Procedure", "Code", "Status", "Date", "Reason"]),
        widths: vec![0.32, 0.14, 0.14, 0.14, 0.26],
        rows: list
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    code(&p.code),
                    p.status.clone(),
                    day(&p.date),
                    opt(&p.reason),
                ]
            })
            .collect(),
    }
}

fn immunizations_table(list: &[Immunization]) -> Table {
    Table {
        head: head(&["Vaccine", "Code", "Date", "Dose", "Status"]),
        widths: vec![0.34, 0.12, 0.16, 0.1, 0.28],
        rows: list
            .iter()
            .map(|i| {
                let when = i.date.map(|d| d.to_string()).or(i.when.clone()).unwrap_or_default();
                let status = match &i.not_given_reason {
                    Some(why) => format!("not given: {why}"),
                    None if i.status == "not-done" => "not given".into(),
                    None => "given".into(),
                };
                vec![i.vaccine.clone(), code(&i.code), when, opt(&i.dose), status]
            })
            .collect(),
    }
}

fn vitals_table(list: &[VitalSign]) -> Table {
    Table {
        head: head(&["Measurement", "Value", "Date"]),
        widths: vec![0.4, 0.4, 0.2],
        rows: list
            .iter()
            .map(|v| vec![v.name.clone(), vital_value(v), v.date.to_string()])
            .collect(),
    }
}

/// A value with its unit, or each part with its own: `Systolic 118 mm[Hg]; Diastolic 76 mm[Hg]`.
fn vital_value(v: &VitalSign) -> String {
    let with_unit = |value: &str, unit: &Option<String>| match unit {
        Some(u) => format!("{value} {u}"),
        None => value.to_string(),
    };
    let mut parts: Vec<String> = v.value.iter().map(|x| with_unit(x, &v.unit)).collect();
    parts.extend(
        v.components
            .iter()
            .map(|c| format!("{} {}", c.name, with_unit(&c.value, &c.unit))),
    );
    parts.join("; ")
}
