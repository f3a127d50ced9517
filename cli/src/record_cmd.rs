//! Commands on the record as a whole: export it to a directory, compact it, write out the
//! recovery kit, revoke a grant, and read or check the audit log.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use phr_engine::Section;
use phr_engine::entry;
use phr_engine::sync::Replica;

use crate::{ExportFormat, out_file, output};

/// `phr export --format json|automerge --out DIR` (a FHIR export is one file, see `fhir_cmd`).
pub(crate) fn export(
    replica: &Replica,
    format: ExportFormat,
    dir: &Path,
    force: bool,
    out: &mut dyn Write,
) -> Result<()> {
    out_file::refuse_filled_dir(dir, force)?;
    let mut device = replica.lock();
    phr_engine::private_file::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = match format {
        ExportFormat::Json => output::export_json(&device, dir, force)?,
        ExportFormat::Automerge => output::export_automerge(device.record_mut(), dir, force)?,
        // Taken by the dispatcher's arm before: a FHIR export is one file, not a directory.
        ExportFormat::Fhir | ExportFormat::Ips => bail!("`--format fhir` and `--format ips` write one file"),
    };
    drop(device);
    let detail = format!("exported the record to {}", dir.display());
    replica.write(|r| r.audit("export", &detail, None, &Section::ALL))?;
    writeln!(out, "wrote {written} files to {}", dir.display())?;
    Ok(())
}

/// `phr compact`.
pub(crate) fn compact(replica: &Replica, out: &mut dyn Write) -> Result<()> {
    replica.lock().compact()?;
    writeln!(out, "compacted every section into a snapshot")?;
    Ok(())
}

/// `phr recovery export [--out FILE]`.
pub(crate) fn recovery_export(replica: &Replica, file: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let kit = replica.lock().recovery_kit()?.to_text();
    match file {
        Some(path) => {
            write_private(path, kit.as_bytes())?;
            writeln!(
                out,
                "wrote the recovery kit to {}; keep it offline and private",
                path.display()
            )?;
        }
        None => {
            writeln!(out, "{kit}")?;
            writeln!(out, "Anyone with these words controls this record. Keep them offline.")?;
        }
    }
    Ok(())
}

/// Write the recovery kit to a new file private to the user (never over an existing one).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = phr_engine::private_file::create_file(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// `phr access revoke ID`.
pub(crate) fn revoke(replica: &Replica, id: &str, out: &mut dyn Write) -> Result<()> {
    let rev = replica.lock().revoke(id)?;
    // Under `phr serve`, connected peers hear of it at once.
    replica.publish_access(None, vec![phr_engine::access::Statement::Revocation(rev.clone())]);
    writeln!(
        out,
        "Revoked grant {}. Every device that hears of it refuses the holder from now on.",
        hex::encode(&rev.capability[..4])
    )?;
    Ok(())
}

/// `phr audit --verify`.
pub(crate) fn verify_audit(replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let n = replica.lock().verify_audit()?;
    writeln!(
        out,
        "the audit log is intact: {n} events, each signed and chained by the device that wrote it"
    )?;
    Ok(())
}

/// `phr audit [--since DAY]`.
pub(crate) fn audit(replica: &Replica, since: Option<&str>, json: bool, out: &mut dyn Write) -> Result<()> {
    let since = since.map(entry::parse_date).transpose()?;
    output::audit(out, replica.lock().record(), since, json)
}
