//! Plain text from a resource's XHTML narrative (`text.div`, a Composition's sections).

/// Plain text of an XHTML narrative: tags dropped, block elements as line breaks, entities
/// decoded, runs of blanks collapsed.
pub(crate) fn xhtml_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "br",
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "table",
        "blockquote",
        "pre",
        "hr",
        "dt",
        "dd",
    ];
    // Line breaks in the source are layout, like spaces; lines come from the markup.
    let as_text = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let mut raw = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find(['<', '&']) {
        raw.push_str(&as_text(&rest[..open]));
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if rest.starts_with('<') {
            // Find the tag's end outside quoted attribute values.
            let mut quote = None;
            let mut end = rest.len();
            for (i, c) in rest.char_indices().skip(1) {
                match (quote, c) {
                    (None, '"' | '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, '>') => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let tag = rest.get(1..end).unwrap_or_default();
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            // A block starts a line (one, however many blocks meet); `br` always breaks.
            // Inline tags (b, i, span, …) join their text without a gap; cells get one.
            if name == "br" || (BLOCKS.contains(&name.as_str()) && !raw.trim_end_matches(' ').ends_with('\n')) {
                raw.push('\n');
            } else if name == "td" || name == "th" {
                raw.push(' ');
            }
            rest = rest.get(end + 1..).unwrap_or_default();
        } else {
            let entity_end = rest.char_indices().take(12).find(|(_, c)| *c == ';').map(|(i, _)| i);
            match entity_end.and_then(|end| decode_entity(&rest[1..end]).map(|c| (c, end))) {
                Some((c, end)) => {
                    raw.push(c);
                    rest = &rest[end + 1..];
                }
                None => {
                    raw.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    raw.push_str(&as_text(rest));
    let mut lines: Vec<String> = Vec::new();
    for line in raw.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() || lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(line);
        }
    }
    lines.join("\n").trim().to_string()
}

pub(crate) fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhtml_narrative_becomes_plain_text() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><!-- generated --><h3 title="a > b">Notes</h3>
            <p>Ate   well&nbsp;&lt;3 &#x2713; &#233;</p><table><tr><td>a</td><td>b</td></tr></table>AT&amp;T & co</div>"#;
        assert_eq!(xhtml_text(div), "Notes\nAte well <3 ✓ é\na b\nAT&T & co");
        assert_eq!(xhtml_text("<div>one<br/><br/>two</div>"), "one\n\ntwo");
    }
}
