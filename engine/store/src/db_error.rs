//! redb's errors as the engine's: a damaged file is `Corrupt`, a full disk `DiskFull`, a store
//! another process holds `StoreBusy`. `phr_model::Error` cannot know redb (the model has no
//! database), so the store converts at each call with `.map_err(db_err)`.

use phr_model::error::{Damage, Error};

/// A redb error the store turns into an [`Error`].
pub trait DbError {
    /// The engine's error for it.
    fn into_error(self) -> Error;
}

/// For `.map_err(db_err)` after a redb call.
pub fn db_err(e: impl DbError) -> Error {
    e.into_error()
}

impl DbError for redb::StorageError {
    fn into_error(self) -> Error {
        match self {
            redb::StorageError::Corrupted(m) => Error::Corrupt(Damage::Database(m.into())),
            // redb reports a file that is not a database as invalid data, and a page pointer past
            // the end of the file as an early end of file: the file is damaged, the disk is fine.
            redb::StorageError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Error::Corrupt(Damage::Database(Box::new(io)))
            }
            redb::StorageError::Io(io) => Error::from(io),
            other => Error::Io(Box::new(other)),
        }
    }
}

impl DbError for redb::TransactionError {
    fn into_error(self) -> Error {
        match self {
            redb::TransactionError::Storage(s) => s.into_error(),
            other => Error::Io(Box::new(other)),
        }
    }
}

impl DbError for redb::TableError {
    fn into_error(self) -> Error {
        match self {
            redb::TableError::Storage(s) => s.into_error(),
            other => Error::Corrupt(Damage::Database(Box::new(other))),
        }
    }
}

impl DbError for redb::CommitError {
    fn into_error(self) -> Error {
        match self {
            redb::CommitError::Storage(s) => s.into_error(),
            other => Error::Io(Box::new(other)),
        }
    }
}

impl DbError for redb::DatabaseError {
    fn into_error(self) -> Error {
        match self {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::StoreBusy,
            redb::DatabaseError::UpgradeRequired(v) => Error::NewerFormat {
                found: u32::from(v),
                supported: crate::FORMAT_VERSION,
            },
            redb::DatabaseError::Storage(s) => s.into_error(),
            other => Error::Corrupt(Damage::Database(Box::new(other))),
        }
    }
}
