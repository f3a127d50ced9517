//! Tables on PDF pages: cells wrapped within their columns, the header shaded, and repeated
//! at the top of each page a table runs onto.

use super::fonts::Face;
use super::layout::Layout;
use super::{Draw, HEAD_FILL, INK, MARGIN, RULE, SMALL, WIDTH, line_height};
use crate::model::Table;

impl Layout<'_> {
    pub(super) fn table(&mut self, t: &Table) {
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

    pub(super) fn table_row(&mut self, cells: &[Vec<String>], widths: &[f32], face: Face, head: bool) {
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
}
