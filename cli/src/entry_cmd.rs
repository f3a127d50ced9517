//! Commands on single entries: add, show, edit, log a goal's progress, stop a medication,
//! amend a session note.

use std::io::Write;

use anyhow::{Context, Result, bail};
use phr_engine::Section;
use phr_engine::entry::{self, parse_fields};
use phr_engine::sync::Replica;

use crate::output;

/// Split `--field value` words into pairs; `--field=value` works too. Also says whether a bare
/// `--json` was among them: clap hands everything after the section to the fields, so
/// `phr add medications --name X --json` lands here, and no section has a `json` field.
fn pairs(words: &[String]) -> Result<(Vec<(String, String)>, bool)> {
    let mut out = Vec::new();
    let mut json = false;
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        if w == "--json" {
            json = true;
            continue;
        }
        let Some(name) = w.strip_prefix("--") else {
            bail!("expected `--field value`, found `{w}`");
        };
        if let Some((k, v)) = name.split_once('=') {
            out.push((k.to_string(), v.to_string()));
            continue;
        }
        match it.next() {
            Some(v) => out.push((name.to_string(), v.clone())),
            None => bail!("`--{name}` needs a value"),
        }
    }
    Ok((out, json))
}

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// `phr add SECTION --field value …`.
pub(crate) fn add(
    replica: &Replica,
    section: Section,
    words: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let (fields, json_after_fields) = pairs(words)?;
    let parsed = parse_fields(section, &fields)?;
    let id = replica.write(|r| r.add(section, parsed))?;
    if json || json_after_fields {
        let device = replica.lock();
        let entry = device
            .record()
            .read_entry(section, &id)?
            .with_context(|| format!("the new entry {id} went missing"))?;
        output::print_json(out, &output::entry_json(&entry, &output::Names::of(&device))?)?;
    } else {
        writeln!(out, "added {section} {id}")?;
    }
    Ok(())
}

/// `phr show [SECTION [ID]]`: one entry in full, a section, or the whole record.
pub(crate) fn show(
    replica: &Replica,
    section: Option<Section>,
    id: Option<String>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let device = replica.lock();
    match (section, id) {
        (Some(section), Some(id)) => {
            let id = device.record().resolve_id(section, &id)?;
            output::entry(out, &device, section, &id, json)
        }
        (Some(section), None) => output::list(out, &device, section, json),
        _ => output::record(out, &device, json),
    }
}

/// `phr edit SECTION ID --field value …`.
pub(crate) fn edit(replica: &Replica, section: Section, id: &str, words: &[String], out: &mut dyn Write) -> Result<()> {
    let (fields, json) = pairs(words)?;
    if json {
        bail!("`phr edit` has no --json output");
    }
    let changes = parse_fields(section, &fields)?;
    if changes.is_empty() {
        bail!("nothing to change: give `--field value` pairs (see `phr fields {section}`)");
    }
    let id = replica.lock().record().resolve_id(section, id)?;
    replica.write(|r| r.edit(section, &id, changes))?;
    writeln!(out, "updated {section} {id}")?;
    Ok(())
}

/// `phr goal progress ID --value N`.
pub(crate) fn goal_progress(
    replica: &Replica,
    id: &str,
    value: f64,
    note: Option<String>,
    date: Option<String>,
    out: &mut dyn Write,
) -> Result<()> {
    let date = date.map(|d| entry::parse_date(&d)).transpose()?.unwrap_or_else(today);
    let id = replica.lock().record().resolve_id(Section::Goals, id)?;
    replica.write(|r| r.goal_progress(&id, date, value, note.as_deref()))?;
    writeln!(out, "logged progress {value} on goal {id} for {date}")?;
    Ok(())
}

/// `phr stop medications ID`.
pub(crate) fn stop(
    replica: &Replica,
    section: Section,
    id: &str,
    date: Option<String>,
    reason: Option<String>,
    out: &mut dyn Write,
) -> Result<()> {
    if section != Section::Medications {
        bail!("only medications can be stopped; other entries change with `phr edit`");
    }
    let date = date.map(|d| entry::parse_date(&d)).transpose()?.unwrap_or_else(today);
    let id = replica.lock().record().resolve_id(section, id)?;
    replica.write(|r| r.stop_medication(&id, date, reason.as_deref()))?;
    writeln!(out, "stopped medication {id} on {date}")?;
    Ok(())
}

/// `phr amend notes ID --text …`.
pub(crate) fn amend(
    replica: &Replica,
    section: Section,
    id: &str,
    text: &str,
    reason: Option<String>,
    out: &mut dyn Write,
) -> Result<()> {
    if section != Section::Notes {
        bail!("only session notes are amended; other entries change with `phr edit`");
    }
    let id = replica.lock().record().resolve_id(section, id)?;
    replica.write(|r| r.amend_note(&id, text, reason.as_deref()))?;
    writeln!(out, "amended note {id}; the original text is kept")?;
    Ok(())
}
