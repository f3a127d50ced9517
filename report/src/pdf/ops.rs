//! The laid-out drawing commands as printpdf operations: PDF coordinates (y upwards), colours,
//! fonts, dashes.

use printpdf::{
    Color, FontId, Line, LineDashPattern, LinePoint, Op, PaintMode, PdfFontHandle, Point, Polygon, PolygonRing, Pt,
    Rgb, TextItem, WindingOrder,
};

use super::fonts::Face;
use super::{Draw, PAGE_H, Rgb3};

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

pub(super) fn ops(draws: &[Draw], regular: &FontId, bold: &FontId) -> Vec<Op> {
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
                        points: line_points(points),
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
                            points: line_points(points),
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

/// Straight segments through `points`.
fn line_points(points: &[(f32, f32)]) -> Vec<LinePoint> {
    points
        .iter()
        .map(|p| LinePoint {
            p: point(*p),
            bezier: false,
        })
        .collect()
}
