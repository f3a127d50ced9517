//! QR codes for tickets: shown in the terminal, encoded as PNG or SVG (the portal's pages), and
//! read back from an image.
//!
//! Shared by `phr` and its portal (pairing and share tickets, a clinic's invitation read from a photo) and
//! `phr-node` (invitations). It knows nothing of records or files' privacy: the binaries write
//! the PNG bytes themselves, private to the user, since a ticket lets whoever holds it in.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use qrcode::QrCode;
use qrcode::render::unicode;

/// The ticket as a QR code drawn with Unicode half blocks, for the terminal.
pub fn terminal(text: &str) -> Result<String> {
    let code = QrCode::new(text.as_bytes()).context("the ticket is too long for a QR code")?;
    Ok(code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// The ticket as a PNG that any ordinary QR scanner decodes to the same text.
pub fn png(text: &str) -> Result<Vec<u8>> {
    let code = QrCode::new(text.as_bytes()).context("the ticket is too long for a QR code")?;
    let img = code.render::<image::Luma<u8>>().min_dimensions(400, 400).build();
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .context("encoding the QR code")?;
    Ok(png.into_inner())
}

/// The ticket as an SVG image (black on white, with its quiet zone), for a web page.
pub fn svg(text: &str) -> Result<String> {
    let code = QrCode::new(text.as_bytes()).context("the ticket is too long for a QR code")?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// Read the text of the first QR code in an image file.
pub fn read_png(path: &Path) -> Result<String> {
    let img = image::open(path)
        .with_context(|| format!("{} is not a readable image", path.display()))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let grid = grids
        .first()
        .ok_or_else(|| anyhow!("no QR code found in {}", path.display()))?;
    let (_, content) = grid
        .decode()
        .map_err(|e| anyhow!("the QR code in {} could not be read: {e}", path.display()))?;
    Ok(content)
}
