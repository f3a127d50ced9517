//! Progress charts, laid out once for both renderers: a goal's measurements as a line chart
//! with its baseline and target, in points, as marks the HTML and PDF renderers only paint.

use chrono::NaiveDate;
use phr_model::entry::{Goal, MEASURE_LIMIT, Progress};

use crate::text::num;

/// What a chart line is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LineKind {
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
pub enum Anchor {
    /// The text starts at the point.
    Start,
    /// The text is centred on the point.
    Middle,
    /// The text ends at the point.
    End,
}

/// One thing drawn in a chart. Coordinates are points from the chart's top left, y downwards.
#[derive(Clone, PartialEq, Debug)]
pub enum Mark {
    /// A straight line or polyline.
    Line {
        /// The corners, in order.
        points: Vec<(f32, f32)>,
        /// What the line is.
        kind: LineKind,
    },
    /// A measurement.
    Dot {
        /// Its centre.
        at: (f32, f32),
    },
    /// A label; `at` is the baseline of the text.
    Label {
        /// Where the text's baseline meets its anchor.
        at: (f32, f32),
        /// The label.
        text: String,
        /// Which end of the text is at `at`.
        anchor: Anchor,
        /// Drawn in the accent colour (the target's and the values' labels).
        accent: bool,
    },
}

/// A goal's progress chart.
#[derive(Clone, PartialEq, Debug)]
pub struct Chart {
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
pub const CHART_FONT: f32 = 7.0;

/// Width and height of a chart, in points.
const WIDTH: f32 = 460.0;
const HEIGHT: f32 = 150.0;

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

/// Where values and days fall in a chart: the plot area, the value axis and the days spanned.
struct Frame {
    x0: f32,
    x1: f32,
    y0: f32,
    y1: f32,
    /// Left and right ends of the measurements, clear of the value axis and its labels.
    px0: f32,
    px1: f32,
    lo: f64,
    hi: f64,
    step: f64,
    first: NaiveDate,
    /// Days from the first measurement to the last.
    span: i64,
}

impl Frame {
    fn new(g: &Goal, first: &Progress, last: &Progress) -> Frame {
        let (left, right, top, bottom) = (34.0_f32, 78.0_f32, 12.0_f32, 20.0_f32);
        let (x0, x1) = (left, WIDTH - right);
        let mut values: Vec<f64> = g.progress.iter().map(|p| p.value).collect();
        values.extend(g.baseline);
        values.extend(g.target);
        let (lo, hi, step) = value_axis(&values, &g.unit);
        Frame {
            x0,
            x1,
            y0: top,
            y1: HEIGHT - bottom,
            px0: x0 + 14.0,
            px1: x1 - 10.0,
            lo,
            hi,
            step,
            first: first.date,
            span: (last.date - first.date).num_days(),
        }
    }

    fn y_of(&self, v: f64) -> f32 {
        let (lo, hi) = (self.lo, self.hi);
        self.y1 - ((plotted(v).unwrap_or(lo) - lo) / (hi - lo)) as f32 * (self.y1 - self.y0)
    }

    fn x_of(&self, d: NaiveDate) -> f32 {
        if self.span == 0 {
            (self.px0 + self.px1) / 2.0
        } else {
            self.px0 + ((d - self.first).num_days() as f32 / self.span as f32) * (self.px1 - self.px0)
        }
    }

    /// Grid lines with their values, and the axes.
    fn axes(&self, marks: &mut Vec<Mark>) {
        for v in ticks(self.lo, self.hi, self.step) {
            let y = self.y_of(v);
            let kind = if (v - self.lo).abs() < 1e-9 {
                LineKind::Axis
            } else {
                LineKind::Grid
            };
            marks.push(Mark::Line {
                points: vec![(self.x0, y), (self.x1, y)],
                kind,
            });
            marks.push(Mark::Label {
                at: (self.x0 - 4.0, y + CHART_FONT * 0.35),
                text: num(v),
                anchor: Anchor::End,
                accent: false,
            });
        }
        marks.push(Mark::Line {
            points: vec![(self.x0, self.y0), (self.x0, self.y1)],
            kind: LineKind::Axis,
        });
    }

    /// The goal's baseline and target as dashed lines, labelled at the right.
    fn references(&self, g: &Goal, marks: &mut Vec<Mark>) {
        for (value, kind, name) in [
            (g.baseline, LineKind::Baseline, "baseline"),
            (g.target, LineKind::Target, "target"),
        ] {
            if let Some(value) = value {
                let y = self.y_of(value);
                marks.push(Mark::Line {
                    points: vec![(self.x0, y), (self.x1, y)],
                    kind,
                });
                marks.push(Mark::Label {
                    at: (self.x1 + 4.0, y + CHART_FONT * 0.35),
                    text: format!("{name} {}", num(value)),
                    anchor: Anchor::Start,
                    accent: kind == LineKind::Target,
                });
            }
        }
    }

    /// The measurements: a line through them, a dot each with its value (when there are few),
    /// and their dates under the axis, skipping any that would overlap the one before or the
    /// last one.
    fn progress(&self, points: &[Progress], marks: &mut Vec<Mark>) {
        let at: Vec<(f32, f32)> = points.iter().map(|p| (self.x_of(p.date), self.y_of(p.value))).collect();
        if at.len() > 1 {
            marks.push(Mark::Line {
                points: at.clone(),
                kind: LineKind::Progress,
            });
        }
        let min_gap = 48.0;
        let mut shown: Option<f32> = None;
        let last_x = at.last().map(|p| p.0).unwrap_or(self.x1);
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
                    at: (*x, self.y1 + CHART_FONT + 5.0),
                    text: p.date.to_string(),
                    anchor: Anchor::Middle,
                    accent: false,
                });
                shown = Some(*x);
            }
        }
    }
}

/// The chart in words, for screen readers.
fn description(g: &Goal, first: &Progress, last: &Progress) -> String {
    let count = g.progress.len();
    let unit = g.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    let mut description = format!(
        "Progress on “{}”: {} measurement{} from {} to {}, latest {}{unit}",
        g.goal,
        count,
        if count == 1 { "" } else { "s" },
        first.date,
        last.date,
        num(last.value)
    );
    if let Some(t) = g.target {
        description.push_str(&format!(", target {}{unit}", num(t)));
    }
    description
}

/// Lay out a goal's progress as a line chart, with its baseline and target; `None` without
/// measurements.
pub fn chart(g: &Goal) -> Option<Chart> {
    let first = g.progress.first()?;
    let last = g.progress.last()?;
    let frame = Frame::new(g, first, last);
    let mut marks = Vec::new();
    frame.axes(&mut marks);
    frame.references(g, &mut marks);
    frame.progress(&g.progress, &mut marks);
    Some(Chart {
        width: WIDTH,
        height: HEIGHT,
        marks,
        description: description(g, first, last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Block, Doc};
    use crate::{html, pdf};

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
}
