//! How records look on the terminal and in exported files.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use phr_engine::access::AccessSet;
use phr_engine::entry::{self, FieldKind, PATIENT_ENTRY};
use phr_engine::record::EntryView;
use phr_engine::{Device, PublicKey, Record, RecordId, Section};
use serde::Serialize;
use serde_json::{Value, json};

use crate::display;

/// Print any value as pretty JSON.
pub fn print_json<T: Serialize>(out: &mut dyn Write, v: &T) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

/// The patient's name from the profile, or a placeholder before the profile has synced.
pub fn patient_name(record: &Record) -> String {
    record
        .read_entry(Section::Profile, PATIENT_ENTRY)
        .ok()
        .flatten()
        .and_then(|e| e.fields.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "(profile not yet synced)".into())
}

/// Names the keys that wrote a record, from its membership: the device's name for the patient's
/// own devices, the grant's label for anyone else.
pub struct Names<'a> {
    access: &'a AccessSet,
    root: RecordId,
}

impl<'a> Names<'a> {
    /// The names known to `device`.
    pub fn of(device: &'a Device) -> Self {
        Names {
            access: device.access(),
            root: device.record().id(),
        }
    }

    /// The name of an author key given in hex, if the record's membership names it.
    pub fn known(&self, author: &str) -> Option<String> {
        let key: PublicKey = author.parse().ok()?;
        if key == self.root {
            return Some("the patient's root key".into());
        }
        self.access.name_of(&key)
    }

    /// The name of an author key given in hex; a key nobody named shows as its first eight
    /// hex digits, as elsewhere. Someone else chose the name, so it comes safe for a terminal
    /// ([`display::text`]).
    pub fn name(&self, author: &str) -> String {
        let name = self
            .known(author)
            .unwrap_or_else(|| author.get(..8).unwrap_or(author).to_string());
        display::text(&name).into_owned()
    }
}

/// An entry as JSON: the entry itself plus `author_name`, the name of its author key (null if
/// no one in the record's membership holds that key).
pub fn entry_json(e: &EntryView, names: &Names) -> Result<Value> {
    let mut v = serde_json::to_value(e)?;
    if let Value::Object(m) = &mut v {
        m.insert("author_name".into(), json!(names.known(&e.author)));
    }
    Ok(v)
}

/// Entries as a JSON list, each with its author's name.
pub fn entries_json(entries: &[EntryView], names: &Names) -> Result<Value> {
    Ok(Value::Array(
        entries.iter().map(|e| entry_json(e, names)).collect::<Result<_>>()?,
    ))
}

/// A field value as one line of text (numbers plain, booleans yes/no, items joined).
pub(crate) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join("; "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// One-line summary of an entry: its first few fields, and its status (a stopped
/// medication's with the day and reason). Safe for a terminal.
fn summary(e: &EntryView) -> String {
    let mut parts = Vec::new();
    for spec in entry::fields(e.section).iter().take(4) {
        if matches!(spec.kind, FieldKind::Items(_) | FieldKind::List) {
            continue;
        }
        if let Some(v) = e.fields.get(spec.name) {
            parts.push(shown(e.section, spec.name, v));
        }
    }
    match e.fields.get("status").and_then(Value::as_str) {
        Some("stopped") if e.section == Section::Medications => parts.push(stopped(e)),
        Some(status) => {
            let status = display::text(status).into_owned();
            if !parts.contains(&status) {
                parts.push(format!("[{status}]"));
            }
        }
        None => {}
    }
    parts.join(" · ")
}

/// A field's value as one safe line; a lab result's or a vital sign's number as people read it.
fn shown(section: Section, field: &str, v: &Value) -> String {
    match v {
        Value::String(s) if matches!(section, Section::Labs | Section::Vitals) && field == "value" => {
            display::measured(s).into_owned()
        }
        other => display::value(other),
    }
}

/// `stopped 2024-03-10 (reason)` for a stopped medication.
fn stopped(e: &EntryView) -> String {
    let field = |name: &str| {
        e.fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(display::text)
    };
    let mut text = String::from("stopped");
    if let Some(day) = field("stopped") {
        text.push_str(&format!(" {day}"));
    }
    if let Some(reason) = field("stop_reason") {
        text.push_str(&format!(" ({reason})"));
    }
    text
}

/// The day an entry is about (a result's collection date, a session's date, the day a
/// medication was started), or, for an entry without one, the day it was written down.
fn day(e: &EntryView) -> String {
    let about = phr_engine::entry::day_field(e.section)
        .and_then(|f| e.fields.get(f))
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty());
    let day = about.unwrap_or(&e.created);
    display::text(day.get(..10).unwrap_or(day)).into_owned()
}

/// The first eight characters of an entry id, safe for a terminal.
fn short_id(id: &str) -> std::borrow::Cow<'_, str> {
    display::text(id.get(..8).unwrap_or(id))
}

/// `phr status`.
pub fn status(out: &mut dyn Write, device: &Device, json: bool) -> Result<()> {
    let record = device.record();
    let counts: Vec<(Section, usize)> = Section::ALL.iter().map(|s| (*s, record.count(*s))).collect();
    let conflicts = record.conflicts()?.len();
    if json {
        let sections: serde_json::Map<String, Value> =
            counts.iter().map(|(s, n)| (s.name().to_string(), json!(n))).collect();
        return print_json(
            out,
            &json!({
                "record": record.id().to_string(),
                "patient": patient_name(record),
                "device": device.device_id().to_string(),
                "device_name": device.name(),
                "holds_root_key": device.has_root(),
                "home": device.home().display().to_string(),
                "sections": sections,
                "conflicts": conflicts,
            }),
        );
    }
    writeln!(out, "Patient   {}", display::text(&patient_name(record)))?;
    writeln!(out, "Record    {}", record.id())?;
    writeln!(
        out,
        "Device    {} ({})",
        device.device_id(),
        display::text(device.name())
    )?;
    writeln!(
        out,
        "Root key  {}",
        if device.has_root() {
            "held on this device"
        } else {
            "not on this device"
        }
    )?;
    writeln!(out, "Home      {}", device.home().display())?;
    writeln!(out)?;
    for (s, n) in counts {
        writeln!(out, "  {:<14} {n:>5}", s.name())?;
    }
    if conflicts > 0 {
        writeln!(
            out,
            "\n{conflicts} field(s) have conflicting edits: see `phr conflicts`"
        )?;
    }
    Ok(())
}

/// `phr list SECTION`.
pub fn list(out: &mut dyn Write, device: &Device, section: Section, json: bool) -> Result<()> {
    let names = Names::of(device);
    let entries = device.record().list(section)?;
    if json {
        return print_json(out, &entries_json(&entries, &names)?);
    }
    if entries.is_empty() {
        writeln!(out, "no {section} yet")?;
        return Ok(());
    }
    for e in &entries {
        writeln!(
            out,
            "{}  {}  {}  (by {})",
            short_id(&e.id),
            day(e),
            summary(e),
            names.name(&e.author)
        )?;
    }
    Ok(())
}

fn print_entry(out: &mut dyn Write, e: &EntryView, names: &Names) -> Result<()> {
    writeln!(out, "{} {}", e.section, display::text(&e.id))?;
    let short = display::text(e.author.get(..8).unwrap_or(&e.author));
    match names.known(&e.author) {
        Some(name) => writeln!(out, "  author      {} ({short})", display::text(&name))?,
        None => writeln!(out, "  author      {short}")?,
    }
    writeln!(out, "  created     {}", display::text(&e.created))?;
    writeln!(out, "  updated     {}", display::text(&e.updated))?;
    for (k, v) in &e.fields {
        if k == entry::FHIR_KEY {
            // The resource it was imported from: kept for export, too long to read here.
            let size = v.as_str().map_or(0, str::len);
            writeln!(out, "  {k:<12}the FHIR resource as received ({size} bytes)")?;
            continue;
        }
        let k = display::text(k);
        match v {
            Value::Array(items) if !items.is_empty() => {
                writeln!(out, "  {k}:")?;
                for item in items {
                    writeln!(out, "    - {}", display::value(item))?;
                }
            }
            Value::Array(_) => {}
            // Several lines (a session note's plan, say): each further line indented under the first.
            Value::String(text) if text.contains('\n') => {
                let mut lines = display::lines(text);
                writeln!(out, "  {k:<12}{}", lines.next().unwrap_or_default())?;
                for line in lines {
                    writeln!(out, "  {:<12}{line}", "")?;
                }
            }
            other => writeln!(out, "  {k:<12}{}", shown(e.section, &k, other))?,
        }
    }
    Ok(())
}

/// `phr show SECTION ID`.
pub fn entry(out: &mut dyn Write, device: &Device, section: Section, id: &str, json: bool) -> Result<()> {
    let names = Names::of(device);
    let e = device
        .record()
        .read_entry(section, id)?
        .with_context(|| format!("no entry {id} in {section}"))?;
    if json {
        return print_json(out, &entry_json(&e, &names)?);
    }
    print_entry(out, &e, &names)?;
    Ok(())
}

/// `phr show`: every section with its entries.
pub fn record(out: &mut dyn Write, device: &Device, json: bool) -> Result<()> {
    let names = Names::of(device);
    let record = device.record();
    if json {
        let mut all = serde_json::Map::new();
        all.insert("record".into(), json!(record.id().to_string()));
        for s in Section::ALL {
            all.insert(s.name().into(), entries_json(&record.list(s)?, &names)?);
        }
        return print_json(out, &all);
    }
    writeln!(out, "Health record of {}\n", display::text(&patient_name(record)))?;
    for s in Section::ALL {
        let entries = record.list(s)?;
        writeln!(out, "== {s} ({})", entries.len())?;
        for e in &entries {
            if s == Section::Profile {
                print_entry(out, e, &names)?;
            } else {
                writeln!(
                    out,
                    "  {}  {}  (by {})",
                    short_id(&e.id),
                    summary(e),
                    names.name(&e.author)
                )?;
            }
        }
    }
    Ok(())
}

/// `phr history`.
pub fn history(out: &mut dyn Write, device: &mut Device, section: Option<Section>, json: bool) -> Result<()> {
    let items = device.record_mut().history(section);
    if json {
        return print_json(out, &items);
    }
    let me = device.device_id().to_string();
    for h in items {
        let when = chrono::DateTime::from_timestamp(h.time, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let who = if h.author == me {
            "this device".to_string()
        } else {
            h.author.chars().take(8).collect()
        };
        writeln!(out, "{when}  {who:<11}  {}", display::text(&h.message))?;
    }
    Ok(())
}

/// `phr conflicts`.
pub fn conflicts(out: &mut dyn Write, record: &Record, json: bool) -> Result<()> {
    let list = record.conflicts()?;
    if json {
        return print_json(out, &list);
    }
    if list.is_empty() {
        writeln!(out, "no conflicts")?;
        return Ok(());
    }
    for c in list {
        let (entry, field) = (display::text(&c.entry), display::text(&c.field));
        writeln!(
            out,
            "{} {entry} `{field}` was changed on several devices at once:",
            c.section
        )?;
        for v in c.values {
            writeln!(
                out,
                "    {:<30} (by {})",
                display::value(&v.value),
                display::text(v.author.get(..8).unwrap_or(&v.author))
            )?;
        }
        writeln!(out, "  resolve with `phr edit {} {entry} --{field} VALUE`", c.section)?;
    }
    Ok(())
}

/// `phr fields SECTION`.
pub fn fields(out: &mut dyn Write, section: Section) -> Result<()> {
    writeln!(out, "fields of {section}:")?;
    for f in entry::fields(section) {
        let kind = match f.kind {
            FieldKind::Text => "text".to_string(),
            FieldKind::Date => "YYYY-MM-DD".into(),
            FieldKind::PartialDate => "YYYY, YYYY-MM or YYYY-MM-DD".into(),
            FieldKind::DateTime => "YYYY-MM-DD HH:MM".into(),
            FieldKind::Number => "number".into(),
            FieldKind::Bool => "yes|no".into(),
            FieldKind::Choice(c) => c.join("|"),
            FieldKind::List => "text, repeatable".into(),
            FieldKind::Items(sub) => format!(
                "repeatable: {}",
                sub.iter()
                    .map(|s| format!("{}=", s.name))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let req = if f.required { " (required)" } else { "" };
        writeln!(out, "  --{:<14} {kind}{req}: {}", f.name.replace('_', "-"), f.help)?;
    }
    Ok(())
}

/// `phr export --format json`: one file per section plus an index; entries carry their
/// authors' names, as `phr list --json` shows them, since an export outlives the membership
/// that names the keys.
pub fn export_json(device: &Device, out: &Path, force: bool) -> Result<usize> {
    let names = Names::of(device);
    let record = device.record();
    let mut n = 0;
    for s in Section::ALL {
        let path = out.join(format!("{}.json", s.name()));
        let text = serde_json::to_vec_pretty(&entries_json(&record.list(s)?, &names)?)?;
        crate::out_file::write(&path, &text, force)?;
        n += 1;
    }
    let index = json!({
        "record": record.id().to_string(),
        "patient": patient_name(record),
        "exported": chrono::Utc::now().to_rfc3339(),
        "sections": Section::names(),
    });
    crate::out_file::write(&out.join("record.json"), &serde_json::to_vec_pretty(&index)?, force)?;
    Ok(n + 1)
}

/// `phr export --format automerge`: each section document as saved by Automerge.
pub fn export_automerge(record: &mut Record, out: &Path, force: bool) -> Result<usize> {
    for s in Section::ALL {
        let path = out.join(format!("{}.automerge", s.name()));
        crate::out_file::write(&path, &record.saved_section(s), force)?;
    }
    Ok(Section::ALL.len())
}

/// `phr access list`.
pub fn access(out: &mut dyn Write, device: &Device, json: bool) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let grants = device.access().grants();
    let day = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    if json {
        let rows: Vec<_> = grants
            .iter()
            .map(|(c, r)| {
                json!({
                    "id": hex::encode(c.id),
                    "label": c.label,
                    "holder": c.audience.to_string(),
                    "rights": c.scope.iter().map(|(s, r)| (s.name().to_string(), json!(r.to_string()))).collect::<serde_json::Map<_, _>>(),
                    "delegate": c.delegate,
                    "from": c.not_before,
                    "expires": c.expires,
                    "delegated": c.parent.is_some(),
                    "revoked": r.as_ref().map(|r| r.revoked_at),
                    "status": status_of(c, r.is_some(), now),
                })
            })
            .collect();
        return print_json(out, &rows);
    }
    writeln!(out, "Devices of the patient:")?;
    for (c, r) in device.access().devices() {
        let status = if r.is_some() { "removed" } else { "full access" };
        writeln!(out, "  {}  {:<24} {status}", c.device.short(), display::text(&c.name))?;
    }
    if grants.is_empty() {
        writeln!(
            out,
            "No one else has access. Share with `phr share --preset caregiver|school|clinic`."
        )?;
        return Ok(());
    }
    writeln!(out, "Shared access:")?;
    for (c, r) in &grants {
        let rights: Vec<String> = c.scope.iter().map(|(s, r)| format!("{s}={r}")).collect();
        let until = c
            .expires
            .map(|e| format!("until {}", day(e)))
            .unwrap_or_else(|| "no end date".into());
        writeln!(
            out,
            "  {}  {:<24} {}  {until}  [{}]",
            c.short_id(),
            display::text(&c.label),
            c.audience.short(),
            status_of(c, r.is_some(), now)
        )?;
        writeln!(out, "      {}", rights.join(", "))?;
    }
    Ok(())
}

fn status_of(c: &phr_engine::capability::Capability, revoked: bool, now: i64) -> &'static str {
    if revoked {
        "revoked"
    } else if !c.chain_valid_at(now) {
        if c.expires.is_some_and(|e| now > e) {
            "expired"
        } else {
            "not yet valid"
        }
    } else {
        "active"
    }
}

/// `phr audit`.
pub fn audit(out: &mut dyn Write, record: &Record, since: Option<chrono::NaiveDate>, json: bool) -> Result<()> {
    let mut events = record.list(Section::Audit)?;
    if let Some(day) = since {
        let from = day.to_string();
        events.retain(|e| e.created.as_str() >= from.as_str());
    }
    if json {
        return print_json(out, &events);
    }
    if events.is_empty() {
        writeln!(out, "no audit events")?;
    }
    for e in events {
        let kind = e.fields.get("kind").map(display::value).unwrap_or_default();
        let detail = e.fields.get("detail").map(display::value).unwrap_or_default();
        writeln!(
            out,
            "{}  {:<7} {}  (by {})",
            display::text(&e.created.get(..16).unwrap_or(&e.created).replace('T', " ")),
            kind,
            detail,
            display::text(e.author.get(..8).unwrap_or(&e.author))
        )?;
    }
    Ok(())
}
