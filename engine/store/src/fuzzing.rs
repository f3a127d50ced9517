//! Entry points for the fuzz targets in `fuzz/` (see docs/FUZZING.md) into decoders that are
//! otherwise private. Not part of the engine's API.

use phr_model::error::Result;
use phr_model::section::Section;

/// Decode one stored change row as the store does after opening it; returns how many changes
/// it held.
pub fn stored_change_row(section: Section, plain: &[u8]) -> Result<usize> {
    let mut changes = Vec::new();
    crate::store::decode_change_row(section, plain, &mut changes)?;
    Ok(changes.len())
}

/// Load one stored section snapshot as the store does after opening it.
pub fn stored_snapshot(section: Section, plain: &[u8]) -> Result<automerge::AutoCommit> {
    crate::store::decode_snapshot(section, plain)
}
