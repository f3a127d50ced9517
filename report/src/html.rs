//! A report as one self-contained HTML page: inline CSS and SVG charts, no external resources,
//! laid out for the screen and for print.

use std::fmt::Write as _;

use crate::chart::{Anchor, CHART_FONT, Chart, LineKind, Mark};
use crate::model::{Block, Doc, Style, Table};

/// Kept inline so the page needs nothing but itself; `@media print` tunes it for paper.
const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1b1f24; background: #fff; max-width: 52rem; margin: 2rem auto; padding: 0 1.25rem;
  font-size: 15px; line-height: 1.45; }
header { border-bottom: 3px solid #2a5d8f; padding-bottom: .75rem; margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .35rem; }
header p { margin: .1rem 0; color: #4a5563; }
header p.notice { font-size: .85rem; margin-top: .5rem; }
h2 { font-size: 1.2rem; color: #2a5d8f; border-bottom: 1px solid #c9d4df; padding-bottom: .2rem;
  margin: 1.8rem 0 .6rem; }
h3 { font-size: 1rem; margin: 1.1rem 0 .3rem; }
p { margin: .3rem 0; }
.muted { color: #5b6570; font-size: .9rem; }
.strong { font-weight: bold; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1.25rem; margin: 0; }
dl.fields dt { font-weight: bold; color: #4a5563; }
dl.fields dd { margin: 0; }
.labelled { display: grid; grid-template-columns: 7.5rem 1fr; gap: 1rem; margin: .2rem 0; }
.labelled .label { font-weight: bold; color: #4a5563; }
.text { white-space: pre-wrap; }
.amendment { background: #fff6db; border-left: 3px solid #c99700; padding: .25rem .5rem; }
.note { border-left: 3px solid #c9d4df; padding: .1rem 0 .1rem .8rem; margin: .8rem 0; }
.goal { margin-bottom: 1.2rem; }
.keep { break-inside: avoid; page-break-inside: avoid; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .3rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #dde3ea; }
th { background: #eef3f8; }
svg.chart { display: block; width: 100%; max-width: 40rem; height: auto; margin: .3rem 0; }
footer { margin-top: 2.5rem; border-top: 1px solid #c9d4df; padding-top: .5rem; color: #5b6570;
  font-size: .85rem; }
@media print {
  @page { size: auto; margin: 16mm 15mm; }
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .amendment { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Escape text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(doc: &Doc) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>{}</title>", esc(&doc.title));
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>\n<header>");
    let _ = writeln!(h, "<h1>{}</h1>", esc(&doc.title));
    for line in &doc.lines {
        let _ = writeln!(h, "<p>{}</p>", esc(line));
    }
    let _ = writeln!(h, "<p class=\"notice\">{}</p>\n</header>\n<main>", esc(&doc.notice));
    let mut open = false;
    for b in &doc.blocks {
        if let Block::Heading(title) = b {
            if open {
                h.push_str("</section>\n");
            }
            let _ = writeln!(h, "<section>\n<h2>{}</h2>", esc(title));
            open = true;
        } else {
            block(&mut h, b);
        }
    }
    if open {
        h.push_str("</section>\n");
    }
    let _ = writeln!(h, "</main>\n<footer>{}</footer>\n</body>\n</html>", esc(&doc.footer));
    h
}

fn block(h: &mut String, b: &Block) {
    match b {
        Block::Heading(t) => {
            let _ = writeln!(h, "<h2>{}</h2>", esc(t));
        }
        Block::Subheading(t) => {
            let _ = writeln!(h, "<h3>{}</h3>", esc(t));
        }
        Block::Fields(fields) => {
            h.push_str("<dl class=\"fields\">\n");
            for (k, v) in fields {
                let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
            }
            h.push_str("</dl>\n");
        }
        Block::Para { label, text, style } => {
            let class = match style {
                Style::Body => "",
                Style::Muted => " muted",
                Style::Strong => " strong",
                Style::Amendment => " amendment",
            };
            match label {
                Some(l) => {
                    let _ = writeln!(
                        h,
                        "<div class=\"labelled{class}\"><span class=\"label\">{}</span><span class=\"text\">{}</span></div>",
                        esc(l),
                        esc(text)
                    );
                }
                None => {
                    let _ = writeln!(h, "<p class=\"text{class}\">{}</p>", esc(text));
                }
            }
        }
        Block::Table(t) => table(h, t),
        Block::Chart(c) => chart(h, c),
        Block::Keep { class, blocks } => {
            let _ = writeln!(h, "<div class=\"keep {class}\">");
            for b in blocks {
                block(h, b);
            }
            h.push_str("</div>\n");
        }
    }
}

fn table(h: &mut String, t: &Table) {
    h.push_str("<table>\n<colgroup>");
    for w in &t.widths {
        let _ = write!(h, "<col style=\"width:{:.0}%\">", w * 100.0);
    }
    h.push_str("</colgroup>\n<thead><tr>");
    for c in &t.head {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// A chart as one `<svg>` element, as the HTML report draws it: its words (title, labels)
/// escaped, styles as attributes (no `style` attribute or element), so a page with a strict
/// Content-Security-Policy can show it as it is.
pub fn svg(c: &Chart) -> String {
    let mut h = String::new();
    chart(&mut h, c);
    h
}

fn chart(h: &mut String, c: &Chart) {
    let _ = writeln!(
        h,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {hgt}\" width=\"{w}\" height=\"{hgt}\" role=\"img\" aria-label=\"{d}\"><title>{d}</title>",
        w = c.width,
        hgt = c.height,
        d = esc(&c.description)
    );
    // Styles are attributes rather than classes, so the chart stays right when copied on its own.
    for m in &c.marks {
        match m {
            Mark::Line { points, kind } => {
                let (stroke, width, dash) = match kind {
                    LineKind::Grid => ("#e3e8ee", 0.8, ""),
                    LineKind::Axis => ("#8a96a3", 1.0, ""),
                    LineKind::Baseline => ("#8a96a3", 1.0, " stroke-dasharray=\"4 3\""),
                    LineKind::Target => ("#2e7d32", 1.2, " stroke-dasharray=\"6 3\""),
                    LineKind::Progress => ("#2a5d8f", 2.0, ""),
                };
                let pts: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    h,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash} stroke-linejoin=\"round\"/>",
                    pts.join(" ")
                );
            }
            Mark::Dot { at } => {
                let _ = writeln!(
                    h,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.8\" fill=\"#2a5d8f\" stroke=\"#fff\" stroke-width=\"1\"/>",
                    at.0, at.1
                );
            }
            Mark::Label {
                at,
                text,
                anchor,
                accent,
            } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let fill = if *accent { "#1f4f7a" } else { "#5b6570" };
                let _ = writeln!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{}\" font-family=\"DejaVu Sans, Arial, sans-serif\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>",
                    at.0,
                    at.1,
                    CHART_FONT,
                    esc(text)
                );
            }
        }
    }
    h.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_so_a_note_cannot_inject_markup() {
        let doc = Doc {
            title: "A <b>&</b>".into(),
            lines: vec![],
            notice: String::new(),
            footer: String::new(),
            blocks: vec![
                Block::Heading("Notes".into()),
                Block::Para {
                    label: None,
                    text: "<script>alert(1)</script>".into(),
                    style: Style::Body,
                },
            ],
        };
        let page = render(&doc);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(page.contains("A &lt;b&gt;&amp;&lt;/b&gt;"), "{page}");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let page = render(&Doc {
            title: "t".into(),
            lines: vec![],
            notice: String::new(),
            footer: String::new(),
            blocks: vec![],
        });
        for external in ["<link", "<script", "src=", "@import", "url("] {
            assert!(!page.contains(external), "{external} in {page}");
        }
    }
}
