//! Laying a report out on PDF pages: text measured with the font's own advance widths and
//! wrapped, pages broken between lines, a goal or note kept on one page when it fits, and a
//! footer on every page. Tables and charts are laid out in `table.rs` and `chart.rs`.

use std::collections::BTreeSet;

use super::fonts::{Face, Fonts, REPLACEMENT, right_to_left};
use super::{
    ACCENT, AMBER, AMBER_INK, BODY, BOTTOM, Draw, INK, MARGIN, MUTED, PAGE_H, RULE, Rgb3, SMALL, TOP, WIDTH,
    line_height,
};
use crate::model::{Block, Doc, Style};

/// Lays blocks out on pages.
pub(super) struct Layout<'a> {
    pub(super) fonts: &'a Fonts,
    pub(super) pages: Vec<Vec<Draw>>,
    /// Top of the next line, from the top of the current page.
    pub(super) y: f32,
    /// Lowest point content may reach; infinite when only measuring.
    limit: f32,
    pub(super) undrawable: BTreeSet<char>,
}

impl<'a> Layout<'a> {
    pub(super) fn new(fonts: &'a Fonts, limit: f32) -> Self {
        Layout {
            fonts,
            pages: vec![Vec::new()],
            y: TOP,
            limit,
            undrawable: BTreeSet::new(),
        }
    }

    pub(super) fn draw(&mut self, d: Draw) {
        if let Some(page) = self.pages.last_mut() {
            page.push(d);
        }
    }

    pub(super) fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Start a new page unless `height` more fits on this one (or this one is still empty).
    pub(super) fn room(&mut self, height: f32) {
        if self.y + height > self.limit && self.y > TOP {
            self.new_page();
        }
    }

    /// The text as the face can draw it.
    pub(super) fn drawable(&mut self, face: Face, text: &str) -> String {
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
    pub(super) fn wrap(&mut self, face: Face, size: f32, text: &str, width: f32) -> Vec<String> {
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

    pub(super) fn text(&mut self, x: f32, baseline: f32, face: Face, size: f32, color: Rgb3, text: String) {
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

    pub(super) fn rule(&mut self, x0: f32, x1: f32, y: f32, width: f32, color: Rgb3) {
        self.draw(Draw::Line {
            points: vec![(x0, y), (x1, y)],
            width,
            color,
            dash: None,
        });
    }

    pub(super) fn header(&mut self, doc: &Doc) {
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

    pub(super) fn block(&mut self, b: &Block) {
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

    /// Height `blocks` take when laid out without page breaks.
    pub(super) fn measure(&self, blocks: &[Block]) -> f32 {
        let mut scratch = Layout::new(self.fonts, f32::INFINITY);
        scratch.y = 0.0;
        for b in blocks {
            scratch.block(b);
        }
        scratch.y + 6.0
    }

    pub(super) fn footers(&mut self, text: &str) {
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
}
