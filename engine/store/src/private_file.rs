//! Files and directories that hold a patient's data (homes, stores, blobs, reports, exports,
//! tickets): readable by their owner only from the moment they exist, never widened by a later
//! chmod, and never silently put over a file that is already there.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use phr_model::error::{Error, Result};

/// Mode of a directory holding private data: its owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file holding private data: its owner only.
pub const FILE_MODE: u32 = 0o600;

/// Make every file and directory this process creates from now on private to its user (umask
/// 077), whatever mode their creator asks for: what redb, iroh-blobs and other libraries
/// create as well as what phr writes itself. For a binary's `main`, before any thread starts.
#[cfg(unix)]
pub fn private_by_default() {
    // SAFETY: umask takes no pointers; it only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Nothing to do where there is no umask.
#[cfg(not(unix))]
pub fn private_by_default() {}

/// Create `dir` and any missing parents, each made readable by its owner only. Directories
/// that already exist are left as they are.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)
}

/// Create the new file `path`, readable and writable by its owner only; fails with
/// `AlreadyExists` if anything is at `path`.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    opts.open(path)
}

/// Write `bytes` to `path` as a private file; see [`write_then`].
pub fn write(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    write_then(path, bytes, replace, || Ok(()))
}

/// Write `bytes` to `path` as a private file that appears whole or not at all: they go to a
/// new private file beside it, then `before` runs (to record the disclosure, say), and only if
/// it succeeds is the file renamed into place. An existing `path` is refused
/// ([`Error::OutputExists`], checked before anything is written and again just before the
/// rename) unless `replace`. Missing parent directories are created private.
pub fn write_then(path: &Path, bytes: &[u8], replace: bool, before: impl FnOnce() -> Result<()>) -> Result<()> {
    let refuse_existing = || {
        if !replace && path.symlink_metadata().is_ok() {
            return Err(Error::OutputExists {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    };
    refuse_existing()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::from(std::io::Error::from(std::io::ErrorKind::IsADirectory)))?;
    create_dir(dir)?;
    let partial = dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        hex::encode(phr_model::crypto::random_bytes::<6>())
    ));
    let result = (|| {
        let mut f = create_file(&partial)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        before()?;
        refuse_existing()?;
        std::fs::rename(&partial, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_made_for_their_owner_only() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&t.path().join("a")), mode(&dir)), (0o700, 0o700));
        let file = dir.join("f");
        drop(create_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            create_file(&file).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn an_existing_file_is_kept_unless_replacing_and_a_failure_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("out/report.html");
        write(&path, b"first", false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let e = write(&path, b"second", false).unwrap_err();
        assert!(matches!(e, Error::OutputExists { .. }), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let e = write_then(&path, b"third", true, || {
            Err(Error::NotAllowed(phr_model::error::Refusal::RemoveSelf))
        })
        .unwrap_err();
        assert!(matches!(e, Error::NotAllowed(_)), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write(&path, b"fourth", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"fourth");
        assert_eq!(
            std::fs::read_dir(t.path().join("out")).unwrap().count(),
            1,
            "no partial file is left"
        );
    }
}
