//! `phr report`: a printable summary of the record for a school's IEP team, a specialist or an
//! insurer, written as a self-contained HTML page or as a PDF with its font embedded.
//!
//! The report itself (what it holds, its charts, HTML and PDF) is made by `phr_report`; this
//! module is the command: its arguments, the file's format from its extension, writing the file
//! once the disclosure is recorded, and the words for what went wrong.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use chrono::NaiveDate;
use clap::Args;
use phr_engine::summary::{Audience, Options};
use phr_engine::sync::Replica;
use phr_report::Format;
use serde::{Deserialize, Serialize};

/// What to report, for whom, and where to write it.
#[derive(Args, Serialize, Deserialize)]
pub(crate) struct ReportArgs {
    /// Who the report is for: iep, specialist or insurer.
    #[arg(
        long = "for",
        value_name = "AUDIENCE",
        long_help = audience_help()
    )]
    audience: Audience,
    /// First day of therapy notes and session counts, YYYY-MM-DD (default: 90 days ago).
    #[arg(long, value_parser = parse_since)]
    since: Option<NaiveDate>,
    /// File to write: its extension, .pdf or .html, picks the format.
    #[arg(long, value_name = "FILE", value_parser = output_file)]
    out: PathBuf,
    /// Replace the file if it is already there.
    #[arg(long)]
    force: bool,
    /// Put immunizations in a school's (--for iep) report: the family's choice, never the default.
    #[arg(long)]
    with_immunizations: bool,
}

fn audience_help() -> String {
    let mut help = String::from("Who the report is for; each gets only what it needs:\n");
    for a in Audience::ALL {
        help.push_str(&format!("\n  {:<11} {}", a.name(), a.contents()));
    }
    help.push_str("\n\nGoals are the current ones (active or on hold), each with a chart of its measured progress.");
    help
}

fn parse_since(raw: &str) -> Result<NaiveDate, String> {
    phr_engine::entry::parse_date(raw).map_err(|e| e.to_string())
}

/// Checks the extension before anything runs, and makes the path absolute against the
/// caller's directory: while `phr serve` holds the home, the serving process writes the file.
fn output_file(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    format_of(&path).map_err(|e| e.to_string())?;
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("cannot tell the current directory: {e}"))?;
    Ok(cwd.join(path))
}

/// The format a report file is written in, picked by its extension.
fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pdf") => Ok(Format::Pdf),
        Some("html") => Ok(Format::Html),
        _ => bail!(
            "`{}` does not end in .pdf or .html: the extension picks the report's format",
            path.display()
        ),
    }
}

/// A report error in the CLI's words; the engine's own errors keep theirs.
fn worded(e: phr_report::Error) -> anyhow::Error {
    match e {
        phr_report::Error::Summary { source } => source.into(),
        phr_report::Error::Font { name } => anyhow!("the bundled font {name} could not be read"),
    }
}

/// `phr report`: build the summary, render it, write it, and record the disclosure.
pub(crate) fn run(args: ReportArgs, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let format = format_of(&args.out)?;
    let today = chrono::Local::now().date_naive();
    if let Some(since) = args.since
        && since > today
    {
        bail!("--since {since} is in the future: the report covers the period up to today");
    }
    if args.with_immunizations && args.audience != Audience::Iep {
        bail!(
            "--with-immunizations is for a school's report (--for iep): a specialist's always has immunizations, an insurer's never"
        );
    }
    let (summary, sections) = {
        let device = replica.lock();
        let opts = Options {
            audience: args.audience,
            since: args.since,
            today,
            with_immunizations: args.with_immunizations,
        };
        let summary = phr_report::summarize(device.record(), device.access(), &opts).map_err(worded)?;
        (summary, opts.sections())
    };
    let rendered = phr_report::render(&phr_report::document(&summary), format).map_err(worded)?;

    let path = &args.out;
    let parts = summary.parts().join(", ");
    let detail = summary.disclosure(&format!("written to {}", path.display()));
    // The file appears only once the disclosure is recorded: a report never leaves the device
    // unrecorded, and a failure leaves no half file.
    crate::out_file::write_then(path, &rendered.bytes, args.force, || {
        replica.write(|r| r.audit("export", &detail, None, &sections))
    })?;

    writeln!(
        out,
        "wrote the {} report to {} ({parts}; notes since {})",
        summary.audience,
        path.display(),
        summary.since
    )?;
    let undrawable = &rendered.undrawable;
    if !undrawable.is_empty() {
        let sample: String = undrawable.iter().take(12).collect();
        writeln!(
            out,
            "note: {} character(s) the bundled font (DejaVu Sans) cannot draw show as \u{FFFD} in the PDF (e.g. {sample}); \
             the .html report shows them",
            undrawable.len()
        )?;
    }
    for s in &summary.skipped {
        writeln!(
            out,
            "note: {} {} is left out: it could not be read ({})",
            s.section, s.id, s.problem
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pdf_and_html_are_formats() {
        assert_eq!(format_of(Path::new("a/b.PDF")).unwrap(), Format::Pdf);
        assert_eq!(format_of(Path::new("b.html")).unwrap(), Format::Html);
        for bad in ["b.docx", "b", "pdf"] {
            let e = format_of(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains("does not end in .pdf or .html"), "{e}");
        }
    }
}
