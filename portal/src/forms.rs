//! Forms built from the engine's own field specs (`entry::fields`), what a submitted form
//! means as the CLI's `--field value` pairs, and engine errors placed beside the field they
//! name, in the engine's words (the same text the CLI prints).

use std::collections::HashMap;

use phr_engine::entry::{self, FieldKind, FieldSpec};
use phr_engine::{Error, Section};
use serde_json::{Map, Value};

use crate::i18n::{Arg, Messages};
use crate::people;
use crate::templates::{Choice, Input};

/// A submitted form: its fields in order (a field may repeat).
#[derive(Debug, Default)]
pub struct Submitted(pub Vec<(String, String)>);

impl Submitted {
    /// The first value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name` with the browser's `\r\n` made `\n` (empty if not sent).
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().replace("\r\n", "\n")
    }
}

/// Whether a field takes one item per line (lists and structured items).
fn per_line(spec: &FieldSpec) -> bool {
    matches!(spec.kind, FieldKind::List | FieldKind::Items(_))
}

/// Text fields that hold several sentences get a text area.
fn long_text(spec: &FieldSpec) -> bool {
    matches!(
        spec.name,
        "subjective" | "objective" | "assessment" | "plan" | "description" | "body" | "notes" | "text" | "address"
    )
}

/// A stored value as the form's input shows it (what the CLI would take back).
pub fn form_value(spec: &FieldSpec, v: Option<&Value>) -> String {
    let Some(v) = v else { return String::new() };
    match (spec.kind, v) {
        (FieldKind::Date, Value::String(s)) => s.get(..10).unwrap_or(s).to_string(),
        (FieldKind::DateTime, Value::String(s)) => s.get(..16).unwrap_or(s).to_string(),
        (FieldKind::Items(sub), Value::Array(items)) => {
            items.iter().map(|i| item_line(sub, i)).collect::<Vec<_>>().join("\n")
        }
        (_, Value::Array(items)) => items.iter().map(scalar).collect::<Vec<_>>().join("\n"),
        (_, other) => scalar(other),
    }
}

/// A structured item as `key=value; key=value`, in its spec's order.
fn item_line(sub: &[FieldSpec], item: &Value) -> String {
    sub.iter()
        .filter_map(|s| item.get(s.name).map(|v| format!("{}={}", s.name, scalar(v))))
        .collect::<Vec<_>>()
        .join("; ")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(people::number).unwrap_or_else(|| n.to_string()),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The inputs of a form over `specs`, filled with `values`, with `errors` beside their fields.
pub fn inputs(
    m: &Messages,
    section: Section,
    specs: &[&FieldSpec],
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> Vec<Input> {
    specs
        .iter()
        .map(|spec| input(m, section, spec, values.get(spec.name), errors.get(spec.name)))
        .collect()
}

fn input(m: &Messages, section: Section, spec: &FieldSpec, value: Option<&String>, error: Option<&String>) -> Input {
    let id = people::field_id(section, spec.name);
    let mut hint = m.get(&format!("{id}.hint"));
    match spec.kind {
        FieldKind::Items(sub) => {
            let parts = sub.iter().map(|s| s.name).collect::<Vec<_>>().join("=…; ");
            let how = m.with("form-items-hint", &[("parts", Arg::Text(format!("{parts}=…")))]);
            hint = format!("{hint}. {how}");
        }
        FieldKind::List => hint = format!("{hint}. {}", m.get("form-list-hint")),
        _ => {}
    }
    let label = m.get(&id);
    if hint.trim() == label.trim() {
        // "Notes" under "Notes" says nothing twice.
        hint.clear();
    }
    let (kind, inputmode) = match spec.kind {
        FieldKind::Date => ("date", ""),
        FieldKind::DateTime => ("datetime-local", ""),
        // A browser's date picker cannot say "2015" or "March 2015"; plain text can.
        FieldKind::PartialDate => ("text", ""),
        FieldKind::Number => ("text", "decimal"),
        FieldKind::Bool | FieldKind::Choice(_) => ("select", ""),
        FieldKind::List | FieldKind::Items(_) => ("textarea", ""),
        FieldKind::Text if long_text(spec) => ("textarea", ""),
        FieldKind::Text => ("text", ""),
    };
    let value = value.cloned().unwrap_or_default();
    let options = match spec.kind {
        FieldKind::Bool => vec![("yes", m.get("value-yes")), ("no", m.get("value-no"))],
        FieldKind::Choice(words) => words.iter().map(|w| (*w, people::choice(m, w))).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .map(|(w, label)| Choice {
        selected: value == w,
        value: w.to_string(),
        label,
    })
    .collect();
    let mut described_by: Vec<String> = (!hint.is_empty())
        .then(|| format!("h-{}", spec.name))
        .into_iter()
        .collect();
    if error.is_some() {
        described_by.push(format!("e-{}", spec.name));
    }
    Input {
        name: spec.name.to_string(),
        label,
        hint,
        required: spec.required,
        input: kind,
        inputmode,
        value,
        options,
        error: error.cloned(),
        described_by: described_by.join(" "),
    }
}

/// An input that is not one of a section's fields (a correction's text, a measured value).
pub fn plain(
    name: &str,
    label: String,
    kind: &'static str,
    value: String,
    required: bool,
    error: Option<String>,
) -> Input {
    Input {
        described_by: if error.is_some() {
            format!("e-{name}")
        } else {
            String::new()
        },
        name: name.to_string(),
        label,
        hint: String::new(),
        required,
        input: kind,
        inputmode: if kind == "text" && name == "value" {
            "decimal"
        } else {
            ""
        },
        value,
        options: Vec::new(),
        error,
    }
}

/// What a submitted form asks to set, as `--field value` pairs: every filled field when
/// adding; when changing (`before` holds the form as it was drawn), only fields that differ,
/// plus the repeatable fields emptied (to be cleared).
pub fn pairs(
    specs: &[&FieldSpec],
    sent: &Submitted,
    before: Option<&HashMap<String, String>>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut cleared = Vec::new();
    for spec in specs {
        let raw = sent.text(spec.name);
        if let Some(before) = before
            && before.get(spec.name).map(String::as_str).unwrap_or_default().trim() == raw.trim()
        {
            continue;
        }
        if per_line(spec) {
            let lines: Vec<&str> = raw.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            if lines.is_empty() && before.is_some() {
                cleared.push(entry::storage_key(spec));
            }
            out.extend(lines.into_iter().map(|l| (spec.name.to_string(), l.to_string())));
        } else if !raw.trim().is_empty() || before.is_some() {
            out.push((spec.name.to_string(), raw));
        }
    }
    (out, cleared)
}

/// `pairs` parsed and checked field by field as the CLI does, with cleared lists emptied.
pub fn changes(
    section: Section,
    pairs: &[(String, String)],
    cleared: &[String],
) -> phr_engine::Result<Map<String, Value>> {
    let mut map = entry::parse_fields(section, pairs)?;
    for key in cleared {
        map.insert(key.clone(), Value::Array(Vec::new()));
    }
    Ok(map)
}

/// Where an engine error belongs on a form: beside the field it names (its problem, in the
/// engine's words), or above the form (the whole message).
pub fn place(e: &Error) -> (Option<String>, String) {
    match e {
        Error::InvalidField { field, problem, .. } => (Some(field.clone()), people::text(&problem.to_string())),
        Error::MeasureOutOfRange { field, .. } => (Some(field.clone()), people::text(&e.to_string())),
        _ => (None, people::text(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(section: Section, name: &str) -> &'static FieldSpec {
        entry::fields(section).iter().find(|s| s.name == name).expect("a field")
    }

    #[test]
    fn a_filled_form_reads_as_the_clis_pairs_and_an_error_lands_beside_its_field() {
        let specs: Vec<&FieldSpec> = entry::fields(Section::Labs).iter().collect();
        let sent = Submitted(vec![
            ("test".into(), "Ferritin".into()),
            ("value".into(), String::new()),
            ("date".into(), "03/01/2024".into()),
        ]);
        let (pairs, cleared) = pairs(&specs, &sent, None);
        assert_eq!(
            pairs,
            vec![("test".into(), "Ferritin".into()), ("date".into(), "03/01/2024".into())]
        );
        assert!(cleared.is_empty());
        let e = changes(Section::Labs, &pairs, &cleared).unwrap_err();
        let (field, text) = place(&e);
        assert_eq!(field.as_deref(), Some("date"));
        assert!(e.to_string().ends_with(&text), "{e} / {text}");
    }

    #[test]
    fn milestones_round_trip_through_their_lines() {
        let goal = spec(Section::Goals, "milestone");
        let stored = serde_json::json!([{"text": "10 words", "done": false}, {"text": "sentences", "due": "2025-06-01", "done": true}]);
        let shown = form_value(goal, Some(&stored));
        assert_eq!(
            shown,
            "text=10 words; done=no\ntext=sentences; due=2025-06-01; done=yes"
        );
        let sent = Submitted(vec![("goal".into(), "Talk".into()), ("milestone".into(), shown)]);
        let (p, _) = pairs(&[spec(Section::Goals, "goal"), goal], &sent, None);
        let parsed = changes(Section::Goals, &p, &[]).unwrap();
        assert_eq!(parsed["milestones"], stored);
    }
}
