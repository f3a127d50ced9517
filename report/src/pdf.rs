//! A report as a PDF: US Letter pages, real text (searchable, copyable, read aloud), vector
//! charts, and DejaVu Sans embedded so the file prints the same on every machine.
//!
//! printpdf writes the file but lays nothing out, so this module does: it measures text with
//! the font's own advance widths, wraps it, breaks pages, and repeats table headers. It lays
//! out into its own list of drawing commands first; only then is it known which glyphs the
//! report uses, so the embedded fonts are cut down to those (a few kilobytes instead of the
//! ~700 KB of each full font) before the commands become printpdf operations.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use printpdf::{
    Color, FontId, Line, LineDashPattern, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Polygon, PolygonRing, Pt, Rgb, TextItem, WindingOrder,
};

use super::{Anchor, Block, CHART_FONT, Chart, Doc, LineKind, Mark, Style, Table};

/// DejaVu Sans (Bitstream Vera license; see cli/assets/fonts/LICENSE-DejaVu.txt).
const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, same license.
const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

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

/// Stands in for a character the font cannot draw, so the gap is visible and survives copying.
const REPLACEMENT: char = '\u{FFFD}';

/// The two faces a report uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Face {
    Regular,
    Bold,
}

struct Font {
    parsed: ParsedFont,
    units: f32,
}

impl Font {
    fn load(bytes: &[u8], name: &str) -> Result<Font> {
        let parsed = ParsedFont::from_bytes(bytes, 0, &mut Vec::new())
            .with_context(|| format!("the bundled font {name} could not be read"))?;
        let units = f32::from(parsed.units_per_em.max(1));
        Ok(Font { parsed, units })
    }

    fn glyph(&self, c: char) -> Option<u16> {
        self.parsed.lookup_glyph_index(u32::from(c)).filter(|g| *g != 0)
    }

    /// Advance width of `c` in ems.
    fn advance(&self, c: char) -> f32 {
        self.glyph(c)
            .and_then(|g| self.parsed.get_glyph_width(g))
            .map(|w| f32::from(w) / self.units)
            .unwrap_or(0.5)
    }
}

struct Fonts {
    regular: Font,
    bold: Font,
}

impl Fonts {
    fn load() -> Result<Fonts> {
        Ok(Fonts {
            regular: Font::load(REGULAR_TTF, "DejaVu Sans")?,
            bold: Font::load(BOLD_TTF, "DejaVu Sans Bold")?,
        })
    }

    fn get(&self, face: Face) -> &Font {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
        }
    }

    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let font = self.get(face);
        text.chars().map(|c| font.advance(c)).sum::<f32>() * size
    }
}

/// Right-to-left scripts: printpdf draws glyphs in logical order without shaping, which would
/// print Hebrew backwards and Arabic unjoined; better a visible gap than a wrong name.
fn right_to_left(c: char) -> bool {
    matches!(u32::from(c), 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF)
}

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

/// Lays blocks out on pages.
struct Layout<'a> {
    fonts: &'a Fonts,
    pages: Vec<Vec<Draw>>,
    /// Top of the next line, from the top of the current page.
    y: f32,
    /// Lowest point content may reach; infinite when only measuring.
    limit: f32,
    undrawable: BTreeSet<char>,
}

impl<'a> Layout<'a> {
    fn new(fonts: &'a Fonts, limit: f32) -> Self {
        Layout {
            fonts,
            pages: vec![Vec::new()],
            y: TOP,
            limit,
            undrawable: BTreeSet::new(),
        }
    }

    fn draw(&mut self, d: Draw) {
        if let Some(page) = self.pages.last_mut() {
            page.push(d);
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Start a new page unless `height` more fits on this one (or this one is still empty).
    fn room(&mut self, height: f32) {
        if self.y + height > self.limit && self.y > TOP {
            self.new_page();
        }
    }

    /// The text as the face can draw it.
    fn drawable(&mut self, face: Face, text: &str) -> String {
        let font = self.fonts.get(face);
        text.chars()
            .map(|c| {
                if c == '\n' {
                    c
                } else if c.is_control() {
                    ' '
                } else if right_to_left(c) || (font.glyph(c).is_none() && !c.is_whitespace()) {
                    self.undrawable.insert(c);
                    REPLACEMENT
                } else {
                    c
                }
            })
            .collect()
    }

    /// Break text into lines no wider than `width`; a word longer than a line is split.
    fn wrap(&mut self, face: Face, size: f32, text: &str, width: f32) -> Vec<String> {
        let text = self.drawable(face, text);
        let fonts = self.fonts;
        let measure = |s: &str| fonts.width(face, size, s);
        let space = measure(" ");
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut used = 0.0;
            for word in paragraph.split_whitespace() {
                let w = measure(word);
                let gap = if line.is_empty() { 0.0 } else { space };
                if used + gap + w <= width {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(word);
                    used += gap + w;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    used = 0.0;
                }
                if w <= width {
                    line.push_str(word);
                    used = w;
                    continue;
                }
                for c in word.chars() {
                    let cw = fonts.width(face, size, c.encode_utf8(&mut [0; 4]));
                    if used + cw > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        used = 0.0;
                    }
                    line.push(c);
                    used += cw;
                }
            }
            lines.push(line);
        }
        lines
    }

    fn text(&mut self, x: f32, baseline: f32, face: Face, size: f32, color: Rgb3, text: String) {
        if !text.trim().is_empty() {
            self.draw(Draw::Text {
                x,
                y: baseline,
                face,
                size,
                color,
                text,
            });
        }
    }

    /// Wrapped text at `x`, `width` wide, breaking pages between lines.
    fn paragraph(&mut self, x: f32, width: f32, face: Face, size: f32, color: Rgb3, text: &str) {
        let lh = line_height(size);
        for line in self.wrap(face, size, text, width) {
            self.room(lh);
            let baseline = self.y + size;
            self.text(x, baseline, face, size, color, line);
            self.y += lh;
        }
    }

    fn rule(&mut self, x0: f32, x1: f32, y: f32, width: f32, color: Rgb3) {
        self.draw(Draw::Line {
            points: vec![(x0, y), (x1, y)],
            width,
            color,
            dash: None,
        });
    }

    fn header(&mut self, doc: &Doc) {
        self.paragraph(MARGIN, WIDTH, Face::Bold, 17.0, INK, &doc.title);
        self.y += 2.0;
        for line in &doc.lines {
            self.paragraph(MARGIN, WIDTH, Face::Regular, BODY, MUTED, line);
        }
        self.y += 2.0;
        self.paragraph(MARGIN, WIDTH, Face::Regular, 7.5, MUTED, &doc.notice);
        self.y += 4.0;
        self.rule(MARGIN, MARGIN + WIDTH, self.y, 1.6, ACCENT);
        self.y += 4.0;
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Heading(title) => {
                // Never leave a heading alone at the foot of a page.
                self.room(line_height(13.0) + 60.0);
                self.y += 12.0;
                self.paragraph(MARGIN, WIDTH, Face::Bold, 13.0, ACCENT, title);
                self.rule(MARGIN, MARGIN + WIDTH, self.y, 0.6, RULE);
                self.y += 6.0;
            }
            Block::Subheading(title) => {
                self.room(line_height(11.0) + 40.0);
                self.y += 6.0;
                self.paragraph(MARGIN, WIDTH, Face::Bold, 11.0, INK, title);
                self.y += 1.0;
            }
            Block::Fields(fields) => {
                let widest = fields
                    .iter()
                    .map(|(k, _)| self.fonts.width(Face::Bold, BODY, k))
                    .fold(0.0, f32::max);
                let label_w = (widest + 14.0).min(140.0);
                for (k, v) in fields {
                    self.columns(k, v, label_w, Face::Regular, BODY, INK);
                }
            }
            Block::Para { label, text, style } => {
                let (face, size, color) = match style {
                    Style::Body | Style::Amendment => (Face::Regular, BODY, INK),
                    Style::Muted => (Face::Regular, SMALL, MUTED),
                    Style::Strong => (Face::Bold, BODY, INK),
                };
                match (style, label) {
                    (Style::Amendment, _) => self.amendment(label.as_deref(), text),
                    (_, Some(l)) => self.columns(l, text, 80.0, face, size, color),
                    (_, None) => {
                        self.y += 1.5;
                        self.paragraph(MARGIN, WIDTH, face, size, color, text);
                    }
                }
            }
            Block::Table(t) => self.table(t),
            Block::Chart(c) => self.chart(c),
            Block::Keep { blocks, .. } => {
                let height = self.measure(blocks);
                if self.y + height > self.limit && height <= BOTTOM - TOP {
                    self.new_page();
                }
                self.y += 6.0;
                for b in blocks {
                    self.block(b);
                }
            }
        }
    }

    /// A label in a left column beside wrapped text, row by row so pages break between lines.
    fn columns(&mut self, label: &str, text: &str, label_w: f32, face: Face, size: f32, color: Rgb3) {
        let lh = line_height(size);
        let labels = self.wrap(Face::Bold, size, label, label_w - 8.0);
        let lines = self.wrap(face, size, text, WIDTH - label_w);
        for i in 0..labels.len().max(lines.len()) {
            self.room(lh);
            let baseline = self.y + size;
            if let Some(l) = labels.get(i) {
                self.text(MARGIN, baseline, Face::Bold, size, MUTED, l.clone());
            }
            if let Some(t) = lines.get(i) {
                self.text(MARGIN + label_w, baseline, face, size, color, t.clone());
            }
            self.y += lh;
        }
        self.y += 1.5;
    }

    fn amendment(&mut self, label: Option<&str>, text: &str) {
        let indent = 10.0;
        let lh = line_height(BODY);
        let mut rows: Vec<(Face, Rgb3, String)> = Vec::new();
        if let Some(l) = label {
            for line in self.wrap(Face::Bold, SMALL, l, WIDTH - indent) {
                rows.push((Face::Bold, AMBER_INK, line));
            }
        }
        for line in self.wrap(Face::Regular, BODY, text, WIDTH - indent) {
            rows.push((Face::Regular, INK, line));
        }
        self.y += 2.0;
        let mut bar_top = self.y;
        for (face, color, line) in rows {
            let before = self.pages.len();
            self.room(lh);
            if self.pages.len() != before {
                bar_top = self.y;
            }
            let size = if face == Face::Bold { SMALL } else { BODY };
            let baseline = self.y + size;
            self.text(MARGIN + indent, baseline, face, size, color, line);
            self.y += lh;
            self.draw(Draw::Line {
                points: vec![(MARGIN + 2.0, bar_top), (MARGIN + 2.0, self.y)],
                width: 2.2,
                color: AMBER,
                dash: None,
            });
            bar_top = self.y;
        }
        self.y += 2.0;
    }

    fn table(&mut self, t: &Table) {
        let pad = 3.0;
        let lh = line_height(SMALL);
        let widths: Vec<f32> = t.widths.iter().map(|w| w * WIDTH).collect();
        let head: Vec<Vec<String>> = t
            .head
            .iter()
            .zip(&widths)
            .map(|(c, w)| self.wrap(Face::Bold, SMALL, c, w - 2.0 * pad))
            .collect();
        let rows: Vec<Vec<Vec<String>>> = t
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&widths)
                    .map(|(c, w)| self.wrap(Face::Regular, SMALL, c, w - 2.0 * pad))
                    .collect()
            })
            .collect();
        let height = |cells: &[Vec<String>]| cells.iter().map(Vec::len).max().unwrap_or(1) as f32 * lh + 2.0 * pad;
        let head_h = height(&head);
        self.y += 3.0;
        self.room(head_h + rows.first().map(|r| height(r)).unwrap_or(0.0));
        self.table_row(&head, &widths, Face::Bold, true);
        for row in &rows {
            let before = self.pages.len();
            self.room(height(row));
            if self.pages.len() != before {
                // A table that runs onto a new page repeats its header there.
                self.table_row(&head, &widths, Face::Bold, true);
            }
            self.table_row(row, &widths, Face::Regular, false);
        }
        self.y += 3.0;
    }

    fn table_row(&mut self, cells: &[Vec<String>], widths: &[f32], face: Face, head: bool) {
        let pad = 3.0;
        let lh = line_height(SMALL);
        let h = cells.iter().map(Vec::len).max().unwrap_or(1) as f32 * lh + 2.0 * pad;
        let top = self.y;
        if head {
            let (x0, x1, y0, y1) = (MARGIN, MARGIN + WIDTH, top, top + h);
            self.draw(Draw::Fill {
                points: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
                color: HEAD_FILL,
            });
        }
        let mut x = MARGIN;
        for (lines, w) in cells.iter().zip(widths) {
            for (i, line) in lines.iter().enumerate() {
                let baseline = top + pad + i as f32 * lh + SMALL;
                self.text(x + pad, baseline, face, SMALL, INK, line.clone());
            }
            x += w;
        }
        self.y = top + h;
        self.rule(MARGIN, MARGIN + WIDTH, self.y, if head { 0.8 } else { 0.4 }, RULE);
    }

    fn chart(&mut self, c: &Chart) {
        self.room(c.height + 6.0);
        let (ox, oy) = (MARGIN, self.y + 2.0);
        let at = |(x, y): (f32, f32)| (ox + x, oy + y);
        for m in &c.marks {
            match m {
                Mark::Line { points, kind } => {
                    let (width, color, dash) = match kind {
                        LineKind::Grid => (0.5, GRID, None),
                        LineKind::Axis => (0.8, AXIS, None),
                        LineKind::Baseline => (0.8, AXIS, Some([3.0, 2.0])),
                        LineKind::Target => (1.0, TARGET, Some([5.0, 2.5])),
                        LineKind::Progress => (1.8, ACCENT, None),
                    };
                    self.draw(Draw::Line {
                        points: points.iter().map(|p| at(*p)).collect(),
                        width,
                        color,
                        dash,
                    });
                }
                Mark::Dot { at: p } => {
                    let (cx, cy) = at(*p);
                    let r = 2.6;
                    let points = (0..12)
                        .map(|i| {
                            let a = i as f32 * std::f32::consts::TAU / 12.0;
                            (cx + r * a.cos(), cy + r * a.sin())
                        })
                        .collect();
                    self.draw(Draw::Fill { points, color: ACCENT });
                }
                Mark::Label {
                    at: p,
                    text,
                    anchor,
                    accent,
                } => {
                    let text = self.drawable(Face::Regular, text);
                    let w = self.fonts.width(Face::Regular, CHART_FONT, &text);
                    let (x, y) = at(*p);
                    let x = match anchor {
                        Anchor::Start => x,
                        Anchor::Middle => x - w / 2.0,
                        Anchor::End => x - w,
                    };
                    let color = if *accent { ACCENT } else { MUTED };
                    self.text(x, y, Face::Regular, CHART_FONT, color, text);
                }
            }
        }
        self.y += c.height + 4.0;
    }

    /// Height `blocks` take when laid out without page breaks.
    fn measure(&self, blocks: &[Block]) -> f32 {
        let mut scratch = Layout::new(self.fonts, f32::INFINITY);
        scratch.y = 0.0;
        for b in blocks {
            scratch.block(b);
        }
        scratch.y + 6.0
    }

    fn footers(&mut self, text: &str) {
        let total = self.pages.len();
        let fonts = self.fonts;
        for (i, page) in self.pages.iter_mut().enumerate() {
            let number = format!("Page {} of {total}", i + 1);
            let w = fonts.width(Face::Regular, 7.5, &number);
            let y = PAGE_H - 44.0;
            page.push(Draw::Line {
                points: vec![(MARGIN, y), (MARGIN + WIDTH, y)],
                width: 0.5,
                color: RULE,
                dash: None,
            });
            page.push(Draw::Text {
                x: MARGIN,
                y: y + 12.0,
                face: Face::Regular,
                size: 7.5,
                color: MUTED,
                text: text.to_string(),
            });
            page.push(Draw::Text {
                x: MARGIN + WIDTH - w,
                y: y + 12.0,
                face: Face::Regular,
                size: 7.5,
                color: MUTED,
                text: number,
            });
        }
    }
}

fn color((r, g, b): Rgb3) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
}

fn point((x, y): (f32, f32)) -> Point {
    Point {
        x: Pt(x),
        y: Pt(PAGE_H - y),
    }
}

fn ops(draws: &[Draw], regular: &FontId, bold: &FontId) -> Vec<Op> {
    let mut ops = Vec::new();
    for d in draws {
        match d {
            Draw::Text {
                x,
                y,
                face,
                size,
                color: c,
                text,
            } => {
                let id = match face {
                    Face::Regular => regular,
                    Face::Bold => bold,
                };
                ops.extend([
                    Op::StartTextSection,
                    Op::SetFont {
                        font: PdfFontHandle::External(id.clone()),
                        size: Pt(*size),
                    },
                    Op::SetFillColor { col: color(*c) },
                    Op::SetTextCursor { pos: point((*x, *y)) },
                    Op::ShowText {
                        items: vec![TextItem::Text(text.clone())],
                    },
                    Op::EndTextSection,
                ]);
            }
            Draw::Line {
                points,
                width,
                color: c,
                dash,
            } => {
                ops.push(Op::SaveGraphicsState);
                ops.push(Op::SetOutlineColor { col: color(*c) });
                ops.push(Op::SetOutlineThickness { pt: Pt(*width) });
                if let Some(d) = dash {
                    ops.push(Op::SetLineDashPattern {
                        dash: LineDashPattern::new(0.0, d),
                    });
                }
                ops.push(Op::DrawLine {
                    line: Line {
                        points: points
                            .iter()
                            .map(|p| LinePoint {
                                p: point(*p),
                                bezier: false,
                            })
                            .collect(),
                        is_closed: false,
                    },
                });
                ops.push(Op::RestoreGraphicsState);
            }
            Draw::Fill { points, color: c } => {
                ops.push(Op::SaveGraphicsState);
                ops.push(Op::SetFillColor { col: color(*c) });
                ops.push(Op::DrawPolygon {
                    polygon: Polygon {
                        rings: vec![PolygonRing {
                            points: points
                                .iter()
                                .map(|p| LinePoint {
                                    p: point(*p),
                                    bezier: false,
                                })
                                .collect(),
                        }],
                        mode: PaintMode::Fill,
                        winding_order: WindingOrder::NonZero,
                    },
                });
                ops.push(Op::RestoreGraphicsState);
            }
        }
    }
    ops
}

/// `font` cut down to the glyphs of `used`, keeping each glyph's width; the full font if
/// cutting fails or the result does not check out, since a larger file beats a wrong one.
/// `name` is the PostScript name; a cut font carries it behind `tag`, as PDF marks subsets.
fn subset(font: &Font, bytes: &[u8], used: &BTreeSet<char>, tag: &str, name: &str) -> ParsedFont {
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::subset::{CmapTarget, SubsetProfile};

    let mut glyphs: Vec<u16> = used.iter().filter_map(|c| font.glyph(*c)).collect();
    glyphs.sort_unstable();
    glyphs.dedup();
    // Glyph 0 (.notdef) must come first.
    glyphs.insert(0, 0);
    let cut = ReadScope::new(bytes)
        .read::<FontData<'_>>()
        .ok()
        .and_then(|data| data.table_provider(0).ok())
        .and_then(|provider| {
            allsorts::subset::subset(&provider, &glyphs, &SubsetProfile::Pdf, CmapTarget::Unicode).ok()
        })
        .and_then(|cut| ParsedFont::from_bytes(&cut, 0, &mut Vec::new()));
    match cut {
        Some(small)
            if used.iter().all(|c| {
                let width = |f: &ParsedFont| f.lookup_glyph_index(u32::from(*c)).and_then(|g| f.get_glyph_width(g));
                font.glyph(*c).is_none() || width(&small) == width(&font.parsed)
            }) =>
        {
            ParsedFont {
                font_name: Some(format!("{tag}+{name}")),
                ..small
            }
        }
        _ => ParsedFont {
            font_name: Some(name.into()),
            ..font.parsed.clone()
        },
    }
}

/// Render a report; returns the PDF and the characters the font could not draw.
pub(crate) fn render(doc: &Doc) -> Result<(Vec<u8>, Vec<char>)> {
    let fonts = Fonts::load()?;
    let mut layout = Layout::new(&fonts, BOTTOM);
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

    let mut used = [BTreeSet::new(), BTreeSet::new()];
    for d in layout.pages.iter().flatten() {
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
    let pages = layout
        .pages
        .iter()
        .map(|draws| {
            PdfPage::new(
                Mm(PAGE_W * 25.4 / 72.0),
                Mm(PAGE_H * 25.4 / 72.0),
                ops(draws, &regular, &bold),
            )
        })
        .collect();
    let mut warnings = Vec::new();
    let bytes = pdf.with_pages(pages).save(&PdfSaveOptions::default(), &mut warnings);
    tracing::debug!(?warnings, "pdf written");
    Ok((bytes, layout.undrawable.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().unwrap()
    }

    #[test]
    fn long_text_wraps_within_the_width_and_splits_overlong_words() {
        let f = fonts();
        let mut l = Layout::new(&f, BOTTOM);
        let text = "word ".repeat(200) + &"x".repeat(300);
        let lines = l.wrap(Face::Regular, BODY, &text, 200.0);
        assert!(lines.len() > 10);
        for line in &lines {
            assert!(f.width(Face::Regular, BODY, line) <= 200.0 + 0.01, "{line}");
        }
        assert_eq!(lines.concat().replace(' ', "").len(), 4 * 200 + 300);
    }

    #[test]
    fn a_long_note_runs_onto_more_pages() {
        let f = fonts();
        let mut l = Layout::new(&f, BOTTOM);
        let para = "The session went well and the child practised every sound on the list. ".repeat(400);
        l.block(&Block::Para {
            label: Some("Subjective".into()),
            text: para,
            style: Style::Body,
        });
        assert!(l.pages.len() >= 3, "{} pages", l.pages.len());
        for page in &l.pages {
            for d in page {
                if let Draw::Text { y, .. } = d {
                    assert!(*y <= BOTTOM, "text below the bottom margin at {y}");
                }
            }
        }
    }

    #[test]
    fn characters_outside_the_font_are_replaced_and_reported() {
        let f = fonts();
        let mut l = Layout::new(&f, BOTTOM);
        let shown = l.drawable(Face::Regular, "José Ñúñez Ελένη 李 שלום");
        assert_eq!(shown.chars().filter(|c| *c == REPLACEMENT).count(), 5);
        assert!(shown.starts_with("José Ñúñez Ελένη"));
        assert!(l.undrawable.contains(&'李'));
    }

    #[test]
    fn the_fonts_are_cut_down_to_the_glyphs_used() {
        let f = fonts();
        let used: BTreeSet<char> = "José Ñúñez".chars().collect();
        let small = subset(&f.regular, REGULAR_TTF, &used, "PHRREG", "DejaVuSans");
        assert_eq!(small.font_name.as_deref(), Some("PHRREG+DejaVuSans"));
        assert!(small.original_bytes.len() < REGULAR_TTF.len() / 10);
        for c in used {
            assert!(small.lookup_glyph_index(u32::from(c)).is_some(), "{c}");
        }
    }
}
