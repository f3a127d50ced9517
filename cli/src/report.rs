//! `phr report`: a printable summary of the record for a school's IEP team, a specialist or an
//! insurer, written as a self-contained HTML page or as a PDF with its font embedded.
//!
//! What each audience gets is decided by `phr_engine::summary`. This module turns a summary into
//! a small document model (headings, fields, paragraphs, tables, charts) that the HTML and PDF
//! renderers both draw, so the two formats always say the same thing; the progress charts are
//! laid out here once, in points, and each renderer only paints them.

mod html;
mod pdf;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::Args;
use phr_engine::entry::{Contact, Goal, MEASURE_LIMIT};
use phr_engine::summary::{self, Audience, Options, Summary};
use phr_engine::sync::Replica;
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
    Format::of(&path).map_err(|e| e.to_string())?;
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("cannot tell the current directory: {e}"))?;
    Ok(cwd.join(path))
}

/// The file formats a report is written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Html,
    Pdf,
}

impl Format {
    fn of(path: &Path) -> Result<Format> {
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
}

/// `phr report`: build the summary, render it, write it, and record the disclosure.
pub(crate) fn run(args: ReportArgs, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let format = Format::of(&args.out)?;
    let today = chrono::Local::now().date_naive();
    if let Some(since) = args.since
        && since > today
    {
        bail!("--since {since} is in the future: the report covers the period up to today");
    }
    let summary = {
        let device = replica.lock();
        let opts = Options {
            audience: args.audience,
            since: args.since,
            today,
        };
        summary::build(device.record(), device.access(), &opts)?
    };
    let doc = document(&summary);
    let (bytes, undrawable) = match format {
        Format::Html => (html::render(&doc).into_bytes(), Vec::new()),
        Format::Pdf => pdf::render(&doc)?,
    };

    let path = &args.out;
    let parts = summary.parts().join(", ");
    let detail = format!(
        "report for {} ({}) covering {} to {}: {parts}; written to {}",
        summary.audience.title(),
        summary.audience,
        summary.since,
        summary.generated,
        path.display()
    );
    // The file appears only once the disclosure is recorded: a report never leaves the device
    // unrecorded, and a failure leaves no half file.
    crate::out_file::write_then(path, &bytes, args.force, || {
        replica.write(|r| r.audit("export", &detail, None, &summary.audience.sections()))
    })?;

    writeln!(
        out,
        "wrote the {} report to {} ({parts}; notes since {})",
        summary.audience,
        path.display(),
        summary.since
    )?;
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

// ---------------------------------------------------------------------------------------------
// The document model both renderers draw
// ---------------------------------------------------------------------------------------------

/// A report laid out as blocks, before it is HTML or PDF.
pub(crate) struct Doc {
    /// Main title.
    pub title: String,
    /// Lines under the title: audience, period, what is left out.
    pub lines: Vec<String>,
    /// The confidentiality notice.
    pub notice: String,
    /// Short text repeated at the foot of every PDF page.
    pub footer: String,
    /// The body.
    pub blocks: Vec<Block>,
}

/// How a paragraph looks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Style {
    /// Ordinary text.
    Body,
    /// Secondary text: details, empty-part remarks.
    Muted,
    /// A line that heads what follows, such as a session's date and clinician.
    Strong,
    /// A correction added to a note after it was written.
    Amendment,
}

/// A table with column widths as fractions of the page width.
pub(crate) struct Table {
    pub head: Vec<String>,
    pub widths: Vec<f32>,
    pub rows: Vec<Vec<String>>,
}

/// One piece of a report.
pub(crate) enum Block {
    /// A part of the report (Patient, Current goals, …).
    Heading(String),
    /// A group within a part: a discipline, a goal.
    Subheading(String),
    /// Label and value pairs.
    Fields(Vec<(String, String)>),
    /// A paragraph, with an optional label beside it (Subjective, Objective, …).
    Para {
        label: Option<String>,
        text: String,
        style: Style,
    },
    /// A table.
    Table(Table),
    /// A progress chart.
    Chart(Chart),
    /// Blocks kept on one page when they fit: one goal, one note.
    Keep { class: &'static str, blocks: Vec<Block> },
}

fn para(text: impl Into<String>, style: Style) -> Block {
    Block::Para {
        label: None,
        text: text.into(),
        style,
    }
}

fn labelled(label: impl Into<String>, text: impl Into<String>) -> Block {
    Block::Para {
        label: Some(label.into()),
        text: text.into(),
        style: Style::Body,
    }
}

/// A number as people write it: no trailing `.0`, at most two decimals.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() || v.abs() >= 1e15 {
        format!("{v:e}")
    } else if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn day(d: &Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn with_unit(v: f64, unit: &Option<String>) -> String {
    match unit.as_deref().map(str::trim) {
        Some(u) if u.starts_with('%') => format!("{}{u}", num(v)),
        Some(u) if !u.is_empty() => format!("{} {u}", num(v)),
        _ => num(v),
    }
}

fn age_on(dob: NaiveDate, today: NaiveDate) -> Option<u32> {
    today.years_since(dob)
}

fn contact_line(c: &Contact) -> String {
    let mut s = c.name.clone();
    if let Some(r) = &c.relationship {
        s.push_str(&format!(" ({r})"));
    }
    for extra in [&c.phone, &c.email].into_iter().flatten() {
        s.push_str(&format!(" · {extra}"));
    }
    s
}

/// Lay out a summary as a document.
pub(crate) fn document(s: &Summary) -> Doc {
    let period = format!("{} to {}", s.since, s.generated);
    let patient_name = s
        .patient
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "(patient profile not on this device)".into());
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
    let mut blocks = Vec::new();

    blocks.push(Block::Heading("Patient".into()));
    match &s.patient {
        Some(p) => {
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
            blocks.push(Block::Fields(f));
        }
        None => blocks.push(para(
            "The patient's profile has not reached this device, or is not shared with it.",
            Style::Muted,
        )),
    }

    if let Some(coverage) = &s.coverage {
        blocks.push(Block::Heading("Insurance coverage".into()));
        if coverage.is_empty() {
            blocks.push(para("No coverage recorded.", Style::Muted));
        } else {
            blocks.push(Block::Table(Table {
                head: ["Payer", "Plan", "Member ID", "Group", "Subscriber", "Period"]
                    .map(String::from)
                    .into(),
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
            }));
        }
    }

    if let Some(dx) = &s.diagnoses {
        blocks.push(Block::Heading("Diagnoses".into()));
        if dx.is_empty() {
            blocks.push(para("No diagnoses recorded.", Style::Muted));
        } else {
            blocks.push(Block::Table(Table {
                head: ["Diagnosis", "Code", "Status", "Onset"].map(String::from).into(),
                widths: vec![0.5, 0.16, 0.16, 0.18],
                rows: dx
                    .iter()
                    .map(|c| vec![c.name.clone(), opt(&c.code), c.status.clone(), day(&c.onset)])
                    .collect(),
            }));
        }
    }

    if let Some(allergies) = &s.allergies {
        blocks.push(Block::Heading("Allergies".into()));
        if allergies.is_empty() {
            blocks.push(para("No active allergies recorded.", Style::Muted));
        } else {
            blocks.push(Block::Table(Table {
                head: ["Substance", "Reaction", "Severity"].map(String::from).into(),
                widths: vec![0.35, 0.45, 0.2],
                rows: allergies
                    .iter()
                    .map(|a| vec![a.substance.clone(), opt(&a.reaction), opt(&a.severity)])
                    .collect(),
            }));
        }
    }

    if let Some(meds) = &s.medications {
        blocks.push(Block::Heading("Medications".into()));
        if meds.is_empty() {
            blocks.push(para("No current medications recorded.", Style::Muted));
        } else {
            let full = s.audience != Audience::Iep;
            let mut head = vec!["Medication", "Dose", "Schedule", "Route", "Started"];
            let mut widths = vec![0.28, 0.16, 0.22, 0.14, 0.2];
            if full {
                head.extend(["Reason", "Prescriber"]);
                widths = vec![0.2, 0.11, 0.15, 0.1, 0.12, 0.17, 0.15];
            }
            blocks.push(Block::Table(Table {
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
            }));
        }
    }
    if let Some(stopped) = &s.stopped_medications {
        blocks.push(Block::Subheading("Stopped medications".into()));
        if stopped.is_empty() {
            blocks.push(para("None recorded.", Style::Muted));
        } else {
            blocks.push(Block::Table(Table {
                head: ["Medication", "Dose", "Started", "Stopped", "Why stopped"]
                    .map(String::from)
                    .into(),
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
            }));
        }
    }

    if let Some(goals) = &s.goals {
        blocks.push(Block::Heading("Current goals".into()));
        if goals.is_empty() {
            blocks.push(para("No current goals recorded.", Style::Muted));
        }
        for g in goals {
            blocks.push(goal_block(&g.goal));
        }
    }

    if let Some(sessions) = &s.sessions {
        blocks.push(Block::Heading(format!("Therapy sessions, {period}")));
        if sessions.is_empty() {
            blocks.push(para("No sessions recorded in this period.", Style::Muted));
        } else {
            let mut rows: Vec<Vec<String>> = sessions
                .iter()
                .map(|c| vec![c.title.clone(), c.sessions.to_string(), num(c.minutes)])
                .collect();
            let total: usize = sessions.iter().map(|c| c.sessions).sum();
            let minutes: f64 = sessions.iter().map(|c| c.minutes).sum();
            rows.push(vec!["Total".into(), total.to_string(), num(minutes)]);
            blocks.push(Block::Table(Table {
                head: ["Discipline", "Sessions", "Minutes"].map(String::from).into(),
                widths: vec![0.5, 0.25, 0.25],
                rows,
            }));
            let unknown: usize = sessions.iter().map(|c| c.without_minutes).sum();
            if unknown > 0 {
                blocks.push(para(
                    format!("{unknown} session(s) give no length and add no minutes."),
                    Style::Muted,
                ));
            }
        }
    }

    if let Some(groups) = &s.notes {
        blocks.push(Block::Heading(format!("Therapy notes, {period}")));
        if groups.is_empty() {
            blocks.push(para("No therapy notes in this period.", Style::Muted));
        }
        for g in groups {
            let count = match g.notes.len() {
                1 => "1 note".to_string(),
                n => format!("{n} notes"),
            };
            blocks.push(Block::Subheading(format!("{} ({count})", g.title)));
            for n in &g.notes {
                let mut head = format!("{} · {}", n.date, n.clinician);
                if let Some(m) = n.minutes {
                    head.push_str(&format!(" · {} min", num(m)));
                }
                let mut note = vec![para(head, Style::Strong)];
                for part in &n.soap {
                    note.push(labelled(part.label, part.text.clone()));
                }
                for a in &n.amendments {
                    let mut label = format!("Amended {}", a.at.get(..10).unwrap_or(&a.at));
                    if let Some(by) = &a.by {
                        label.push_str(&format!(" by {by}"));
                    }
                    let mut text = a.text.clone();
                    if let Some(r) = &a.reason {
                        text.push_str(&format!(" (reason: {r})"));
                    }
                    note.push(Block::Para {
                        label: Some(label),
                        text,
                        style: Style::Amendment,
                    });
                }
                if let Some(by) = &n.recorded_by {
                    note.push(para(format!("Recorded by {by}"), Style::Muted));
                }
                blocks.push(Block::Keep {
                    class: "note",
                    blocks: note,
                });
            }
        }
    }

    if let Some(docs) = &s.documents {
        blocks.push(Block::Heading("Documents".into()));
        if docs.is_empty() {
            blocks.push(para("No documents recorded.", Style::Muted));
        } else {
            blocks.push(Block::Table(Table {
                head: ["Title", "Kind", "Date"].map(String::from).into(),
                widths: vec![0.6, 0.2, 0.2],
                rows: docs
                    .iter()
                    .map(|d| vec![d.title.clone(), d.kind.clone(), day(&d.date)])
                    .collect(),
            }));
            blocks.push(para(
                "Documents are listed, not attached: ask the family for copies.",
                Style::Muted,
            ));
        }
    }

    if !s.skipped.is_empty() {
        blocks.push(para(
            format!(
                "{} entr{} could not be read by this version of phr and {} not shown.",
                s.skipped.len(),
                if s.skipped.len() == 1 { "y" } else { "ies" },
                if s.skipped.len() == 1 { "is" } else { "are" }
            ),
            Style::Muted,
        ));
    }

    Doc {
        title: format!("Health summary: {patient_name}"),
        lines,
        notice: "Confidential health information, shared by the family for this purpose only. \
                 Made with phr from the family's own record."
            .into(),
        footer: format!("{patient_name} · {} · {}", s.audience.title(), s.generated),
        blocks,
    }
}

fn goal_block(g: &Goal) -> Block {
    let mut blocks = vec![Block::Subheading(g.goal.clone())];
    let mut facts = Vec::new();
    if let Some(d) = &g.discipline {
        facts.push(summary::discipline_title(d));
    }
    if g.status != "active" {
        facts.push(format!("status: {}", g.status));
    }
    if let Some(b) = g.baseline {
        facts.push(format!("baseline {}", with_unit(b, &g.unit)));
    }
    match (g.target, g.target_date) {
        (Some(t), Some(d)) => facts.push(format!("target {} by {d}", with_unit(t, &g.unit))),
        (Some(t), None) => facts.push(format!("target {}", with_unit(t, &g.unit))),
        (None, Some(d)) => facts.push(format!("target date {d}")),
        (None, None) => {}
    }
    if !facts.is_empty() {
        blocks.push(para(facts.join(" · "), Style::Muted));
    }
    match (chart(g), g.progress.first(), g.progress.last()) {
        (Some(c), Some(first), Some(last)) => {
            blocks.push(Block::Chart(c));
            let mut text = format!("Latest: {} on {}", with_unit(last.value, &g.unit), last.date);
            if g.progress.len() > 1 {
                text.push_str(&format!(
                    ", from {} on {} ({} measurements)",
                    with_unit(first.value, &g.unit),
                    first.date,
                    g.progress.len()
                ));
            }
            if let Some(n) = &last.note {
                text.push_str(&format!(". Note: {n}"));
            }
            blocks.push(para(text, Style::Body));
        }
        _ => blocks.push(para("No progress measured yet.", Style::Muted)),
    }
    if !g.milestones.is_empty() {
        let list: Vec<String> = g
            .milestones
            .iter()
            .map(|m| {
                let mut s = m.text.clone();
                if let Some(d) = m.due {
                    s.push_str(&format!(" (due {d})"));
                }
                s.push_str(if m.done { ": reached" } else { ": open" });
                s
            })
            .collect();
        blocks.push(Block::Para {
            label: Some("Milestones".into()),
            text: list.join("\n"),
            style: Style::Body,
        });
    }
    Block::Keep { class: "goal", blocks }
}

// ---------------------------------------------------------------------------------------------
// Progress charts, laid out once for both renderers
// ---------------------------------------------------------------------------------------------

/// What a chart line is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LineKind {
    /// A light horizontal line at a value tick.
    Grid,
    /// The axes.
    Axis,
    /// The goal's baseline (dashed).
    Baseline,
    /// The goal's target (dashed).
    Target,
    /// The measured progress.
    Progress,
}

/// Where a label sits relative to its point.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing drawn in a chart. Coordinates are points from the chart's top left, y downwards.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Mark {
    /// A straight line or polyline.
    Line { points: Vec<(f32, f32)>, kind: LineKind },
    /// A measurement.
    Dot { at: (f32, f32) },
    /// A label; `at` is the baseline of the text.
    Label {
        at: (f32, f32),
        text: String,
        anchor: Anchor,
        /// Drawn in the accent colour (the target's and the values' labels).
        accent: bool,
    },
}

/// A goal's progress chart.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Chart {
    /// Width in points.
    pub width: f32,
    /// Height in points.
    pub height: f32,
    /// What to draw, back to front.
    pub marks: Vec<Mark>,
    /// The chart in words, for screen readers.
    pub description: String,
}

/// Font size of chart labels, in points; the renderers draw them at this size.
pub(crate) const CHART_FONT: f32 = 7.0;

/// Round a step up to 1, 2, 2.5 or 5 times a power of ten, so ticks fall on round numbers.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let f = raw / power;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Where a chart draws a value: the value itself within what the record keeps as a measurement,
/// else the nearest edge of that range (a value no device of the patient accepts may still
/// reach a chart from an old record); nothing for a value that is not a number.
fn plotted(v: f64) -> Option<f64> {
    (!v.is_nan()).then(|| v.clamp(-MEASURE_LIMIT, MEASURE_LIMIT))
}

/// The most value ticks (grid lines with labels) a chart draws.
const MAX_TICKS: usize = 12;

/// The value axis: from `lo` to `hi` in ticks of `step`, with at most [`MAX_TICKS`] ticks,
/// whatever the values (not numbers, infinite, equal, or apart by less than their precision).
fn value_axis(values: &[f64], unit: &Option<String>) -> (f64, f64, f64) {
    let shown: Vec<f64> = values.iter().copied().filter_map(plotted).collect();
    // Non-negative measures start at zero, so the height of the line tells the size of the gain.
    let lo = shown.iter().copied().fold(0.0, f64::min);
    let mut hi = shown.iter().copied().reduce(f64::max).unwrap_or(0.0);
    if unit.as_deref().is_some_and(|u| u.contains('%')) && hi <= 100.0 && lo >= 0.0 {
        hi = 100.0;
    }
    // A span too small for ticks to differ at this magnitude is widened.
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo < (magnitude * 1e-6).max(1e-9) {
        hi = lo + (magnitude * 1e-6).max(1.0);
    }
    let step = nice_step((hi - lo) / 4.0);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// The values at which the value axis has ticks: `lo`, `lo + step`, … up to `hi`, never more
/// than [`MAX_TICKS`], counted rather than summed, so the count is known before the first.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let count = ((hi - lo) / step).round();
    if !(count.is_finite() && count >= 0.0) {
        return vec![lo];
    }
    let count = (count as usize).min(MAX_TICKS - 1);
    (0..=count).map(|i| lo + i as f64 * step).collect()
}

/// Lay out a goal's progress as a line chart, with its baseline and target; `None` without
/// measurements.
pub(crate) fn chart(g: &Goal) -> Option<Chart> {
    let points = &g.progress;
    let first = points.first()?;
    let last = points.last()?;
    let (width, height) = (460.0_f32, 150.0_f32);
    let (left, right, top, bottom) = (34.0_f32, 78.0_f32, 12.0_f32, 20.0_f32);
    let (x0, x1, y0, y1) = (left, width - right, top, height - bottom);
    // Measurements stay clear of the value axis and its labels.
    let (px0, px1) = (x0 + 14.0, x1 - 10.0);

    let mut values: Vec<f64> = points.iter().map(|p| p.value).collect();
    values.extend(g.baseline);
    values.extend(g.target);
    let (lo, hi, step) = value_axis(&values, &g.unit);
    let y_of = |v: f64| y1 - ((plotted(v).unwrap_or(lo) - lo) / (hi - lo)) as f32 * (y1 - y0);
    let span = (last.date - first.date).num_days();
    let x_of = |d: NaiveDate| {
        if span == 0 {
            (px0 + px1) / 2.0
        } else {
            px0 + ((d - first.date).num_days() as f32 / span as f32) * (px1 - px0)
        }
    };

    let mut marks = Vec::new();
    for v in ticks(lo, hi, step) {
        let y = y_of(v);
        let kind = if (v - lo).abs() < 1e-9 {
            LineKind::Axis
        } else {
            LineKind::Grid
        };
        marks.push(Mark::Line {
            points: vec![(x0, y), (x1, y)],
            kind,
        });
        marks.push(Mark::Label {
            at: (x0 - 4.0, y + CHART_FONT * 0.35),
            text: num(v),
            anchor: Anchor::End,
            accent: false,
        });
    }
    marks.push(Mark::Line {
        points: vec![(x0, y0), (x0, y1)],
        kind: LineKind::Axis,
    });
    for (value, kind, name) in [
        (g.baseline, LineKind::Baseline, "baseline"),
        (g.target, LineKind::Target, "target"),
    ] {
        if let Some(value) = value {
            let y = y_of(value);
            marks.push(Mark::Line {
                points: vec![(x0, y), (x1, y)],
                kind,
            });
            marks.push(Mark::Label {
                at: (x1 + 4.0, y + CHART_FONT * 0.35),
                text: format!("{name} {}", num(value)),
                anchor: Anchor::Start,
                accent: kind == LineKind::Target,
            });
        }
    }
    let at: Vec<(f32, f32)> = points.iter().map(|p| (x_of(p.date), y_of(p.value))).collect();
    if at.len() > 1 {
        marks.push(Mark::Line {
            points: at.clone(),
            kind: LineKind::Progress,
        });
    }
    // Dates under the axis, skipping any that would overlap the one before or the last one.
    let min_gap = 48.0;
    let mut shown: Option<f32> = None;
    let last_x = at.last().map(|p| p.0).unwrap_or(x1);
    for (i, (p, (x, y))) in points.iter().zip(&at).enumerate() {
        marks.push(Mark::Dot { at: (*x, *y) });
        if points.len() <= 12 {
            marks.push(Mark::Label {
                at: (*x, y - 4.0),
                text: num(p.value),
                anchor: Anchor::Middle,
                accent: true,
            });
        }
        let is_last = i + 1 == points.len();
        let clear = shown.is_none_or(|s| x - s >= min_gap) && (is_last || last_x - x >= min_gap);
        if clear {
            marks.push(Mark::Label {
                at: (*x, y1 + CHART_FONT + 5.0),
                text: p.date.to_string(),
                anchor: Anchor::Middle,
                accent: false,
            });
            shown = Some(*x);
        }
    }

    let unit = g.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    let mut description = format!(
        "Progress on “{}”: {} measurement{} from {} to {}, latest {}{unit}",
        g.goal,
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        first.date,
        last.date,
        num(last.value)
    );
    if let Some(t) = g.target {
        description.push_str(&format!(", target {}{unit}", num(t)));
    }
    Some(Chart {
        width,
        height,
        marks,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_engine::entry::Progress;

    fn goal(values: &[(&str, f64)]) -> Goal {
        Goal {
            goal: "Produce /s/".into(),
            discipline: Some("speech".into()),
            target_date: None,
            status: "active".into(),
            baseline: Some(20.0),
            target: Some(80.0),
            unit: Some("% correct".into()),
            milestones: Vec::new(),
            progress: values
                .iter()
                .map(|(d, v)| Progress {
                    date: d.parse().unwrap(),
                    value: *v,
                    note: None,
                    author: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn axes_start_at_zero_and_end_on_round_numbers() {
        assert_eq!(
            value_axis(&[20.0, 60.0, 80.0], &Some("% correct".into())),
            (0.0, 100.0, 25.0)
        );
        assert_eq!(value_axis(&[3.0, 7.0], &None), (0.0, 8.0, 2.0));
        assert_eq!(value_axis(&[-3.0, 4.0], &None), (-4.0, 4.0, 2.0));
        assert_eq!(value_axis(&[5.0], &None), (0.0, 6.0, 2.0));
        assert_eq!(value_axis(&[0.0], &None), (0.0, 1.0, 0.25));
    }

    /// Values no device of the patient accepts, and spans too wide or too narrow to count in.
    const EXTREMES: [f64; 16] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        -f64::MAX,
        1e308,
        -1e308,
        1e20,
        -1e20,
        1e-300,
        -1e-300,
        f64::MIN_POSITIVE,
        0.0,
        5e8,
        5e8 + 1e-7,
        -MEASURE_LIMIT,
    ];

    #[test]
    fn any_values_make_an_axis_of_a_few_distinct_finite_ticks() {
        for a in EXTREMES {
            for b in EXTREMES {
                for unit in [None, Some("% correct".to_string())] {
                    let (lo, hi, step) = value_axis(&[a, b], &unit);
                    assert!(lo.is_finite() && hi.is_finite() && lo < hi, "{a}, {b}: {lo}..{hi}");
                    assert!(step.is_finite() && step > 0.0, "{a}, {b}: step {step}");
                    let t = ticks(lo, hi, step);
                    assert!((2..=MAX_TICKS).contains(&t.len()), "{a}, {b}: {t:?}");
                    assert!(t.windows(2).all(|w| w[0] < w[1]), "{a}, {b}: {t:?}");
                }
            }
        }
        assert_eq!(ticks(0.0, f64::INFINITY, 1.0).len(), 1);
        assert_eq!(ticks(0.0, 1e9, 1e-9).len(), MAX_TICKS);
    }

    #[test]
    fn a_chart_of_extreme_values_stays_on_the_page_and_its_labels_stay_short() {
        let days = ["2024-01-05", "2024-02-01"];
        for a in EXTREMES {
            for b in EXTREMES {
                let mut g = goal(&[(days[0], a), (days[1], b)]);
                g.baseline = Some(b);
                g.target = Some(a);
                let c = chart(&g).unwrap();
                assert!(c.marks.len() < 60, "{a}, {b}: {} marks", c.marks.len());
                for m in &c.marks {
                    let (points, text) = match m {
                        Mark::Line { points, .. } => (points.clone(), ""),
                        Mark::Dot { at } => (vec![*at], ""),
                        Mark::Label { at, text, .. } => (vec![*at], text.as_str()),
                    };
                    for (x, y) in points {
                        assert!(
                            (0.0..=c.width).contains(&x) && (0.0..=c.height).contains(&y),
                            "{a}, {b}: {m:?}"
                        );
                    }
                    assert!(text.chars().count() < 40, "{a}, {b}: {text}");
                }
                assert!(html::render(&doc_of(c.clone())).len() < 100_000);
                if b.is_nan() {
                    assert!(pdf::render(&doc_of(c)).is_ok());
                }
            }
        }
    }

    fn doc_of(chart: Chart) -> Doc {
        Doc {
            title: "Report".into(),
            lines: Vec::new(),
            notice: String::new(),
            footer: String::new(),
            blocks: vec![Block::Chart(chart)],
        }
    }

    #[test]
    fn a_chart_puts_later_days_right_and_higher_values_up() {
        let c = chart(&goal(&[
            ("2024-01-05", 20.0),
            ("2024-02-01", 40.0),
            ("2024-03-01", 60.0),
        ]))
        .unwrap();
        let dots: Vec<(f32, f32)> = c
            .marks
            .iter()
            .filter_map(|m| match m {
                Mark::Dot { at } => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(dots.len(), 3);
        assert!(dots[0].0 < dots[1].0 && dots[1].0 < dots[2].0);
        assert!(dots[0].1 > dots[1].1 && dots[1].1 > dots[2].1);
        assert!(c.description.contains("3 measurements"), "{}", c.description);
        assert!(c.marks.iter().any(|m| matches!(
            m,
            Mark::Line {
                kind: LineKind::Target,
                ..
            }
        )));
    }

    #[test]
    fn one_measurement_is_a_centred_dot_and_none_is_no_chart() {
        let c = chart(&goal(&[("2024-01-05", 20.0)])).unwrap();
        assert!(c.marks.iter().any(|m| matches!(m, Mark::Dot { .. })));
        assert!(!c.marks.iter().any(|m| matches!(
            m,
            Mark::Line {
                kind: LineKind::Progress,
                ..
            }
        )));
        assert!(chart(&goal(&[])).is_none());
    }

    #[test]
    fn only_pdf_and_html_are_formats() {
        assert_eq!(Format::of(Path::new("a/b.PDF")).unwrap(), Format::Pdf);
        assert_eq!(Format::of(Path::new("b.html")).unwrap(), Format::Html);
        for bad in ["b.docx", "b", "pdf"] {
            let e = Format::of(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains("does not end in .pdf or .html"), "{e}");
        }
    }

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(num(45.0), "45");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(with_unit(60.0, &Some("% correct".into())), "60% correct");
        assert_eq!(with_unit(6.0, &Some("words".into())), "6 words");
    }
}
