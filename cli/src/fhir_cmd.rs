//! `phr import --fhir` and `phr export --format fhir`: a FHIR R4 Bundle into the record and the
//! record out as one. The mapping itself is `phr_engine::fhir`'s; this is reading, writing and
//! printing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use phr_engine::Section;
use phr_engine::fhir::{self, Absence, ImportReport, TypeCounts};
use phr_engine::sync::Replica;

use crate::output;

/// `phr import --fhir FILE [--dry-run] [--json]`.
pub fn import(replica: &Replica, file: &Path, dry_run: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let refused = || format!("{} was not imported (nothing was changed)", file.display());
    let mapped = fhir::read_bundle(&text).with_context(refused)?;
    let origin = file
        .file_name()
        .map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let report = if dry_run {
        mapped.preview(replica.lock().record()).with_context(refused)?
    } else {
        replica.write(|r| mapped.import(r, &origin)).with_context(refused)?
    };
    if json {
        return output::print_json(out, &report);
    }
    print_report(out, &origin, &report, dry_run)
}

fn print_report(out: &mut dyn Write, origin: &str, report: &ImportReport, dry_run: bool) -> Result<()> {
    let from = report
        .source
        .as_deref()
        .map(|s| format!(" from {}", crate::display::text(s)))
        .unwrap_or_default();
    writeln!(
        out,
        "{origin}: a FHIR {} bundle of {} resources{from}",
        report.bundle_type, report.resources
    )?;
    print_types(out, &report.types)?;
    let kept: usize = report.sections.values().map(|s| s.kept).sum();
    if kept > 0 {
        writeln!(
            out,
            "  {kept} session note(s) differ from the bundle's and {} kept as written: notes are never rewritten (add a correction with `phr amend notes ID`)",
            if dry_run { "would be" } else { "were" }
        )?;
    }
    if !report.unmapped.is_empty() {
        writeln!(out, "Not imported (and why):")?;
        let width = report.unmapped.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (kind, n) in &report.unmapped {
            writeln!(out, "  {:<width$} {n:>6}", crate::display::text(kind))?;
        }
    }
    if !report.learned.is_empty() {
        writeln!(out, "The bundle says, instead of entries:")?;
        for learned in &report.learned {
            writeln!(
                out,
                "  {}: {}",
                crate::display::text(&learned.section),
                absence(learned.says)
            )?;
        }
    }
    if dry_run {
        writeln!(out, "Dry run: nothing was written.")?;
    } else if !report.written {
        writeln!(out, "Nothing changed: the record already holds all of it.")?;
    }
    Ok(())
}

/// One row per resource type: the sections it went into and what happened to it.
fn print_types(out: &mut dyn Write, types: &BTreeMap<String, TypeCounts>) -> Result<()> {
    if types.is_empty() {
        return Ok(());
    }
    let width = types.keys().map(|k| k.chars().count()).max().unwrap_or(0).max(13);
    let row = |out: &mut dyn Write, ty: &str, into: &str, n: [usize; 4]| {
        writeln!(
            out,
            "  {ty:<width$} {into:<14} {:>7} {:>7} {:>9} {:>12}",
            n[0], n[1], n[2], n[3]
        )
    };
    writeln!(
        out,
        "  {:<width$} {:<14} {:>7} {:>7} {:>9} {:>12}",
        "resource type", "into", "created", "updated", "unchanged", "not imported"
    )?;
    let mut total = [0; 4];
    let mut source_only = false;
    for (ty, c) in types {
        let mut into: Vec<&str> = c.sections.iter().map(|s| s.name()).collect();
        if c.source_only > 0 {
            into.push("*");
            source_only = true;
        }
        let n = [c.created, c.updated, c.unchanged + c.kept, c.skipped()];
        for (t, v) in total.iter_mut().zip(n) {
            *t += v;
        }
        row(out, &crate::display::text(ty), &into.join(" "), n)?;
    }
    row(out, "total", "", total)?;
    if source_only {
        writeln!(
            out,
            "  * kept as the resource received: phr has no section of its own for it yet, shows it as an entry of that section and exports it back as received"
        )?;
    }
    Ok(())
}

/// What a sender said instead of entries, in words.
fn absence(says: Absence) -> &'static str {
    match says {
        Absence::NoInformation => "the sender has no information",
        Absence::NoneKnown => "the sender knows of none",
        Absence::NotAsked => "the sender did not ask",
        Absence::Withheld => "the sender withheld it",
        Absence::NotStarted => "the sender has not started or has closed this list",
    }
}

/// `phr export --format fhir [--sections a,b] --out FILE`.
pub fn export(replica: &Replica, file: &Path, sections: Option<&str>, force: bool, out: &mut dyn Write) -> Result<()> {
    let chosen: Vec<Section> = match sections {
        None => Section::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?,
    };
    if chosen.is_empty() {
        bail!(
            "--sections names no section; sections are: {}",
            Section::names().join(", ")
        );
    }
    let exported = {
        let device = replica.lock();
        // Wall-clock times go out in this device's zone (see `fhir::Zone` for why).
        let local = |t| fhir::offset_at(&chrono::Local, t);
        fhir::export_bundle(device.record(), device.access(), &chosen, fhir::Zone::new(&local))?
    };
    let text = serde_json::to_vec_pretty(&exported.bundle)?;
    crate::out_file::write(file, &text, force)?;
    let names: Vec<&str> = chosen.iter().map(|s| s.name()).collect();
    let detail = format!(
        "exported {} as a FHIR bundle to {}",
        if sections.is_some() {
            names.join(", ")
        } else {
            "the record".to_string()
        },
        file.display()
    );
    replica.write(|r| r.audit("export", &detail, None, &chosen))?;
    let total: usize = exported.resources.values().sum();
    writeln!(out, "wrote {total} resources to {}", file.display())?;
    for (section, n) in &exported.resources {
        writeln!(out, "  {:<14} {n:>6}", section.name())?;
    }
    if exported.provenance > 0 {
        writeln!(
            out,
            "  and {} Provenance resource(s) naming the clinicians and caregivers who wrote entries",
            exported.provenance
        )?;
    }
    Ok(())
}

/// `phr export --format ips --out FILE`: the record as an International Patient Summary.
pub fn export_ips(replica: &Replica, file: &Path, force: bool, out: &mut dyn Write) -> Result<()> {
    let exported = {
        let device = replica.lock();
        let local = |t| fhir::offset_at(&chrono::Local, t);
        fhir::export_ips(device.record(), device.access(), fhir::Zone::new(&local))?
    };
    let text = serde_json::to_vec_pretty(&exported.bundle)?;
    crate::out_file::write(file, &text, force)?;
    let chosen: Vec<Section> = exported.resources.keys().copied().collect();
    let detail = format!("exported a patient summary (IPS) to {}", file.display());
    replica.write(|r| r.audit("export", &detail, None, &chosen))?;
    let total: usize = exported.resources.values().sum();
    writeln!(out, "wrote a patient summary of {total} entries to {}", file.display())?;
    for (section, n) in &exported.resources {
        writeln!(out, "  {:<14} {n:>6}", section.name())?;
    }
    Ok(())
}
