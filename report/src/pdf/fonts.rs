//! The fonts a PDF report embeds: DejaVu Sans and DejaVu Sans Bold, their advance widths for
//! laying text out, which characters they can draw, and cutting them down to the glyphs a
//! report uses.

use std::collections::BTreeSet;

use printpdf::ParsedFont;

use crate::Error;

/// DejaVu Sans (Bitstream Vera license; see report/assets/fonts/LICENSE-DejaVu.txt).
pub(super) const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, same license.
pub(super) const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Stands in for a character the font cannot draw, so the gap is visible and survives copying.
pub(super) const REPLACEMENT: char = '\u{FFFD}';

/// The two faces a report uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Face {
    Regular,
    Bold,
}

pub(super) struct Font {
    parsed: ParsedFont,
    units: f32,
}

impl Font {
    fn load(bytes: &[u8], name: &'static str) -> Result<Font, Error> {
        let parsed = ParsedFont::from_bytes(bytes, 0, &mut Vec::new()).ok_or(Error::Font { name })?;
        let units = f32::from(parsed.units_per_em.max(1));
        Ok(Font { parsed, units })
    }

    pub(super) fn glyph(&self, c: char) -> Option<u16> {
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

pub(super) struct Fonts {
    pub(super) regular: Font,
    pub(super) bold: Font,
}

impl Fonts {
    pub(super) fn load() -> Result<Fonts, Error> {
        Ok(Fonts {
            regular: Font::load(REGULAR_TTF, "DejaVu Sans")?,
            bold: Font::load(BOLD_TTF, "DejaVu Sans Bold")?,
        })
    }

    pub(super) fn get(&self, face: Face) -> &Font {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
        }
    }

    pub(super) fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let font = self.get(face);
        text.chars().map(|c| font.advance(c)).sum::<f32>() * size
    }
}

/// Right-to-left scripts: printpdf draws glyphs in logical order without shaping, which would
/// print Hebrew backwards and Arabic unjoined; better a visible gap than a wrong name.
pub(super) fn right_to_left(c: char) -> bool {
    matches!(u32::from(c), 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF)
}

/// `font` cut down to the glyphs of `used`, keeping each glyph's width; the full font if
/// cutting fails or the result does not check out, since a larger file beats a wrong one.
/// `name` is the PostScript name; a cut font carries it behind `tag`, as PDF marks subsets.
pub(super) fn subset(font: &Font, bytes: &[u8], used: &BTreeSet<char>, tag: &str, name: &str) -> ParsedFont {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().unwrap()
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
