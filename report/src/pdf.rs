//! A report as a PDF: US Letter pages, real text (searchable, copyable, read aloud), vector
//! charts, and DejaVu Sans embedded so the file prints the same on every machine.
//!
//! printpdf writes the file but lays nothing out, so this module does: it measures text with
//! the font's own advance widths, wraps it, breaks pages, and repeats table headers. It lays
//! out into its own list of drawing commands first; only then is it known which glyphs the
//! report uses, so the embedded fonts are cut down to those (a few kilobytes instead of the
//! ~700 KB of each full font) before the commands become printpdf operations.

mod chart;
mod fonts;
mod layout;
mod ops;
mod table;

use std::collections::BTreeSet;

use printpdf::{Mm, PdfDocument, PdfPage, PdfSaveOptions};

use crate::model::{Block, Doc};
use crate::{Error, Rendered};
use fonts::{BOLD_TTF, Face, Fonts, REGULAR_TTF, subset};
use layout::Layout;

/// US Letter, in points; most of the report's readers (IEP teams, US payers) print on it.
const PAGE_W: f32 = 612.0;
const PAGE_H: f32 = 792.0;
const MARGIN: f32 = 54.0;
const TOP: f32 = 54.0;
/// Lowest point content may reach; the footer sits below it.
const BOTTOM: f32 = PAGE_H - 66.0;
const WIDTH: f32 = PAGE_W - 2.0 * MARGIN;

const BODY: f32 = 9.5;
const SMALL: f32 = 8.5;

type Rgb3 = (f32, f32, f32);
const INK: Rgb3 = (0.11, 0.12, 0.14);
const MUTED: Rgb3 = (0.36, 0.40, 0.44);
const ACCENT: Rgb3 = (0.16, 0.36, 0.56);
const RULE: Rgb3 = (0.79, 0.83, 0.87);
const GRID: Rgb3 = (0.89, 0.91, 0.93);
const AXIS: Rgb3 = (0.54, 0.59, 0.64);
const TARGET: Rgb3 = (0.18, 0.49, 0.20);
const AMBER: Rgb3 = (0.79, 0.59, 0.0);
const AMBER_INK: Rgb3 = (0.45, 0.33, 0.0);
const HEAD_FILL: Rgb3 = (0.93, 0.95, 0.97);

/// A drawing command, in points from the page's top left corner (y downwards).
#[derive(Debug, Clone, PartialEq)]
enum Draw {
    /// Text on a baseline at `y`.
    Text {
        x: f32,
        y: f32,
        face: Face,
        size: f32,
        color: Rgb3,
        text: String,
    },
    Line {
        points: Vec<(f32, f32)>,
        width: f32,
        color: Rgb3,
        dash: Option<[f32; 2]>,
    },
    Fill {
        points: Vec<(f32, f32)>,
        color: Rgb3,
    },
}

fn line_height(size: f32) -> f32 {
    size * 1.38
}

/// Render a report as a PDF, with the characters the font could not draw.
pub fn render(doc: &Doc) -> Result<Rendered, Error> {
    let fonts = Fonts::load()?;
    let layout = lay_out(doc, &fonts);
    let bytes = write(doc, &fonts, &layout.pages);
    Ok(Rendered {
        bytes,
        undrawable: layout.undrawable.into_iter().collect(),
    })
}

/// The report laid out on pages, footers included.
fn lay_out<'a>(doc: &Doc, fonts: &'a Fonts) -> Layout<'a> {
    let mut layout = Layout::new(fonts, BOTTOM);
    layout.header(doc);
    for (i, b) in doc.blocks.iter().enumerate() {
        // Headings go to the next page with the goal or note they introduce, when that one
        // would move there anyway.
        let headings = doc.blocks[i..]
            .iter()
            .take_while(|b| matches!(b, Block::Heading(_) | Block::Subheading(_)))
            .count();
        if headings > 0
            && let Some(Block::Keep { blocks, .. }) = doc.blocks.get(i + headings)
        {
            let needed = layout.measure(&doc.blocks[i..i + headings]) + layout.measure(blocks);
            if needed <= BOTTOM - TOP {
                layout.room(needed);
            }
        }
        layout.block(b);
    }
    let footer = layout.drawable(Face::Regular, &doc.footer);
    layout.footers(&footer);
    layout
}

/// The PDF file of laid-out pages, with the fonts cut down to the glyphs they use.
fn write(doc: &Doc, fonts: &Fonts, pages: &[Vec<Draw>]) -> Vec<u8> {
    let mut used = [BTreeSet::new(), BTreeSet::new()];
    for d in pages.iter().flatten() {
        if let Draw::Text { face, text, .. } = d {
            used[*face as usize].extend(text.chars());
        }
    }
    let mut pdf = PdfDocument::new(&doc.title);
    let regular = pdf.add_font(&subset(&fonts.regular, REGULAR_TTF, &used[0], "PHRREG", "DejaVuSans"));
    let bold = pdf.add_font(&subset(&fonts.bold, BOLD_TTF, &used[1], "PHRBLD", "DejaVuSans-Bold"));
    let now = printpdf::OffsetDateTime::now();
    let info = &mut pdf.metadata.info;
    info.creation_date = now;
    info.modification_date = now;
    info.metadata_date = now;
    info.creator = "phr report".into();
    info.producer = "phr".into();
    info.subject = doc.lines.first().cloned().unwrap_or_default();
    let pages = pages
        .iter()
        .map(|draws| {
            PdfPage::new(
                Mm(PAGE_W * 25.4 / 72.0),
                Mm(PAGE_H * 25.4 / 72.0),
                ops::ops(draws, &regular, &bold),
            )
        })
        .collect();
    let mut warnings = Vec::new();
    let bytes = pdf.with_pages(pages).save(&PdfSaveOptions::default(), &mut warnings);
    tracing::debug!(?warnings, "pdf written");
    bytes
}
