//! phr-report: a printable summary of a patient's record for a school's IEP team, a specialist
//! or an insurer, as a self-contained HTML page or as a PDF with its font embedded.
//!
//! What each audience gets is decided by `phr_model::summary`. This crate turns a summary into
//! a small document model (headings, fields, paragraphs, tables, charts: [`model`]) that the
//! HTML and PDF renderers both draw, so the two formats always say the same thing; the progress
//! charts are laid out once, in points ([`chart`]), and each renderer only paints them.
//!
//! It knows nothing of command lines, terminals, HTTP or files: callers pass a record in and get
//! bytes back, and word this crate's [`Error`] for their own audience.

pub mod chart;
mod document;
mod error;
pub mod html;
pub mod model;
pub mod pdf;
mod text;

use phr_model::Record;
use phr_model::access::AccessSet;
use phr_model::summary::{self, Options, Summary};

pub use chart::{Anchor, CHART_FONT, Chart, LineKind, Mark, chart};
pub use document::document;
pub use error::Error;
pub use model::{Block, Doc, Style, Table};

/// The file formats a report is written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// One self-contained HTML page.
    Html,
    /// A PDF with its fonts embedded.
    Pdf,
}

/// A rendered report.
#[derive(Debug)]
pub struct Rendered {
    /// The file's contents.
    pub bytes: Vec<u8>,
    /// Characters the PDF's font cannot draw, shown there as U+FFFD (always empty for HTML).
    pub undrawable: Vec<char>,
}

/// What a report for `opts.audience` holds, from the record as this device holds it.
pub fn summarize(record: &Record, access: &AccessSet, opts: &Options) -> Result<Summary, Error> {
    summary::build(record, access, opts).map_err(|source| Error::Summary { source })
}

/// Render a laid-out report in `format`.
pub fn render(doc: &Doc, format: Format) -> Result<Rendered, Error> {
    match format {
        Format::Html => Ok(Rendered {
            bytes: html::render(doc).into_bytes(),
            undrawable: Vec::new(),
        }),
        Format::Pdf => pdf::render(doc),
    }
}
