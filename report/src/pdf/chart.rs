//! A progress chart on a PDF page: the chart's marks, laid out once in `crate::chart`, turned
//! into lines, filled dots and measured labels.

use super::fonts::Face;
use super::layout::Layout;
use super::{ACCENT, AXIS, Draw, GRID, MARGIN, MUTED, TARGET};
use crate::chart::{Anchor, CHART_FONT, Chart, LineKind, Mark};

impl Layout<'_> {
    pub(super) fn chart(&mut self, c: &Chart) {
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
}
