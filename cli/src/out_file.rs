//! Files `phr` writes where the user asks (reports, exports, ticket QR codes): private to the
//! user from the moment they exist, whole or absent, and never put over an existing file
//! unless the user passed `--force`.

use std::path::Path;

use anyhow::{Result, bail};
use phr_engine::private_file;

/// Write `bytes` to `path`; see [`write_then`].
pub(crate) fn write(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    write_then(path, bytes, force, || Ok(()))
}

/// Write `bytes` to `path`, running `before` (recording the disclosure) just before the file
/// is put in place; an existing file is refused unless `force`.
pub(crate) fn write_then(
    path: &Path,
    bytes: &[u8],
    force: bool,
    before: impl FnOnce() -> phr_engine::Result<()>,
) -> Result<()> {
    private_file::write_then(path, bytes, force, before).map_err(worded)
}

/// Refuse to write into `dir` if it holds anything, unless `force`.
pub(crate) fn refuse_filled_dir(dir: &Path, force: bool) -> Result<()> {
    let filled = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if filled && !force {
        bail!(
            "{} already holds files; nothing was written: choose a new directory, or pass --force to write over its files",
            dir.display()
        );
    }
    Ok(())
}

/// An engine error as the user reads it here: what to do about an existing file.
pub(crate) fn worded(e: phr_engine::Error) -> anyhow::Error {
    match e {
        phr_engine::Error::OutputExists { .. } => {
            anyhow::anyhow!("{e}: choose another file, or pass --force to replace it")
        }
        e => e.into(),
    }
}
