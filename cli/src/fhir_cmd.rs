//! `phr import --fhir` and `phr export --format fhir`: a FHIR R4 Bundle into the record and the
//! record out as one. The mapping itself is `phr_engine::fhir`'s; this is reading, writing and
//! printing.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use phr_engine::Section;
use phr_engine::fhir::{self, ImportReport};
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
    if !report.sections.is_empty() {
        writeln!(
            out,
            "  {:<14} {:>8} {:>8} {:>10}",
            "section", "created", "updated", "unchanged"
        )?;
        let (mut c, mut u, mut n) = (0, 0, 0);
        for (section, counts) in &report.sections {
            writeln!(
                out,
                "  {:<14} {:>8} {:>8} {:>10}",
                section.name(),
                counts.created,
                counts.updated,
                counts.unchanged
            )?;
            c += counts.created;
            u += counts.updated;
            n += counts.unchanged;
        }
        writeln!(out, "  {:<14} {c:>8} {u:>8} {n:>10}", "total")?;
        let kept: usize = report.sections.values().map(|s| s.kept).sum();
        if kept > 0 {
            writeln!(
                out,
                "  {kept} session note(s) differ from the bundle's and {} kept as written: notes are never rewritten (add a correction with `phr amend notes ID`)",
                if dry_run { "would be" } else { "were" }
            )?;
        }
    }
    if !report.unmapped.is_empty() {
        writeln!(out, "Not imported (the record has no place for them):")?;
        let width = report.unmapped.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (kind, n) in &report.unmapped {
            writeln!(out, "  {:<width$} {n:>6}", crate::display::text(kind))?;
        }
    }
    if dry_run {
        writeln!(out, "Dry run: nothing was written.")?;
    } else if !report.written {
        writeln!(out, "Nothing changed: the record already holds all of it.")?;
    }
    Ok(())
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
