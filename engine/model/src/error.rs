//! The engine's one error type: every failure a patient or an operator can meet.

use crate::section::Section;
use std::path::PathBuf;

mod damage;
mod decode;
mod field;
mod forgery;
mod network;
mod problems;
mod refusal;

pub use damage::{Damage, Stored};
pub use decode::{DecodeProblem, Origin};
pub use field::{EntryProblem, FieldProblem};
pub use forgery::Forgery;
pub use network::{NetworkProblem, SyncProblem};
pub use problems::{AttachmentProblem, BlobDamage, BlobMissing, KitProblem, TicketProblem, WhichTicket};
pub use refusal::{Refusal, RootAction};

/// Another layer's error carried as the cause of one of ours (a database's, a library's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine. Each variant says what happened, with typed values;
/// what a person can do about it (a command to run, a flag to pass) is the front end's to add
/// (the CLI's `errors` module, the node's HTTP layer), so the words fit the reader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The passphrase did not unlock the store.
    #[error("wrong passphrase: the store could not be unlocked (nothing was changed)")]
    WrongPassphrase,
    /// A new passphrase too short to protect a store.
    #[error("the passphrase is too weak: it has {chars} character(s), and a new passphrase needs at least {min}")]
    WeakPassphrase {
        /// Characters it has (spaces at either end not counted).
        chars: usize,
        /// Characters it needs.
        min: usize,
    },
    /// A file to be written is already there, and was not to be replaced.
    #[error("{} already exists; nothing was written over it", .path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// No store exists at the given home.
    #[error("no phr record at {}", .home.display())]
    NoStore {
        /// The store file looked for.
        home: PathBuf,
    },
    /// A store already exists where a new one was asked for.
    #[error("a phr record already exists at {}; refusing to overwrite it", .home.display())]
    StoreExists {
        /// The store file found.
        home: PathBuf,
    },
    /// The store file is damaged: truncated, altered or not a phr store at all.
    #[error("the store file is damaged ({0}); it was left untouched: restore it from a backup or another device")]
    Corrupt(Damage),
    /// The store was written by a newer phr.
    #[error("the store uses format version {found}, but this phr reads up to version {supported}: upgrade phr")]
    NewerFormat {
        /// Version found on disk.
        found: u32,
        /// Highest version this build understands.
        supported: u32,
    },
    /// Another process holds the store open.
    #[error("the store is in use by another phr process")]
    StoreBusy,
    /// The disk or filesystem refused a write or read.
    #[error("storage failure (nothing was half-written; check free disk space and permissions)")]
    Io(#[source] BoxError),
    /// The disk (or the file size this process may write) is full.
    #[error("the disk is full: nothing was half-written; free some space and try again")]
    DiskFull(#[source] std::io::Error),
    /// The store's disk or file may not be written to.
    #[error("the store is read-only: its disk or file may not be written to; nothing was changed")]
    ReadOnly(#[source] std::io::Error),
    /// A section name that does not exist.
    #[error("unknown section `{0}`; sections are: {list}", list = Section::names().join(", "))]
    UnknownSection(String),
    /// A field that the section does not have.
    #[error("{section} has no field `{field}`; its fields are: {}", .known.join(", "))]
    UnknownField {
        /// Section being written.
        section: Section,
        /// Field that was given.
        field: String,
        /// The section's fields.
        known: Vec<&'static str>,
    },
    /// A field value that does not fit the field.
    #[error("{section}.{field}: {problem}")]
    InvalidField {
        /// Section being written.
        section: Section,
        /// Field at fault.
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// A measurement (a goal's progress, baseline or target) that is not a finite number
    /// within `limit` of zero (`entry::MEASURE_LIMIT`).
    #[error(
        "{section}.{field}: {value:e} is not a measurement phr can keep: it must be a finite number between -{limit} and {limit}"
    )]
    MeasureOutOfRange {
        /// Section of the entry.
        section: Section,
        /// Field at fault (`value`, `baseline`, `target`).
        field: String,
        /// The value given.
        value: f64,
        /// The largest magnitude a measurement may have.
        limit: f64,
    },
    /// An entry that fails validation as a whole.
    #[error("invalid {section} entry: {problem}")]
    InvalidEntry {
        /// The entry's section.
        section: Section,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// No entry with that id.
    #[error("no entry `{id}` in {section}")]
    NoSuchEntry {
        /// Section searched.
        section: Section,
        /// Id that was asked for.
        id: String,
    },
    /// An id prefix that matches more than one entry.
    #[error("`{id}` matches several entries in {section}; give more of the id")]
    AmbiguousId {
        /// Section searched.
        section: Section,
        /// Prefix that was given.
        id: String,
    },
    /// An operation the record's rules forbid (e.g. rewriting a clinical note).
    #[error("{0}")]
    NotAllowed(Refusal),
    /// The recovery kit could not be read.
    #[error("invalid recovery kit: {0}")]
    InvalidRecoveryKit(KitProblem),
    /// A signature or certificate that does not verify.
    #[error("signature check failed: {0}")]
    BadSignature(Forgery),
    /// Automerge bytes from outside (a peer, the store file) were refused.
    #[error("record data could not be decoded: {from} {problem}")]
    Automerge {
        /// Where the bytes came from.
        from: Origin,
        /// What was wrong with them.
        problem: DecodeProblem,
    },
    /// Automerge refused an operation on a record this device holds.
    #[error("the record's data could not be changed")]
    Document(#[source] automerge::AutomergeError),
    /// A peer could not be reached or the connection failed.
    #[error("network: {0}")]
    Network(NetworkProblem),
    /// A peer refused to sync or broke the protocol.
    #[error("sync with {peer} failed: {problem}")]
    Sync {
        /// Short id of the peer.
        peer: String,
        /// What happened.
        problem: SyncProblem,
    },
    /// A clinic accepted the record, but this device could not add the clinic's new grant to
    /// its copy of the record.
    #[error(
        "`{clinic}` took the record in, but this device could not save the access it granted; \
         the clinic holds the grant, and it returns to this device with the next sync with the clinic"
    )]
    GrantNotKept {
        /// The clinic's name.
        clinic: String,
        /// Why saving failed.
        #[source]
        source: Box<Error>,
    },
    /// A pairing ticket that cannot be used.
    #[error("ticket refused: {0}")]
    Ticket(TicketProblem),
    /// A date or time that does not parse.
    #[error("`{0}` is not a valid date: use YYYY-MM-DD")]
    InvalidDate(String),
    /// A duration that does not parse (`30m`, `12h`, `7d` or plain seconds are expected).
    #[error("`{given}` is not a duration: write a whole number and a unit, e.g. 30m, 12h or 7d")]
    InvalidDuration {
        /// What was given, control characters escaped.
        given: String,
    },
    /// A duration of zero: whatever it would limit would be over before it began.
    #[error("`{given}` is no time at all: a duration must be at least one second")]
    ZeroDuration {
        /// What was given, control characters escaped.
        given: String,
    },
    /// A duration longer than the engine accepts (see `duration::MAX_DAYS`).
    #[error("`{given}` is too long: a duration may be at most {max_days} days (ten years)")]
    DurationTooLong {
        /// What was given, control characters escaped.
        given: String,
        /// The longest duration accepted, in days.
        max_days: u64,
    },
    /// An expiry time that does not fit in a timestamp.
    #[error("an expiry {seconds} seconds after {now} is past the last time phr can record")]
    ExpiryOutOfRange {
        /// The starting time (Unix seconds).
        now: i64,
        /// The duration asked for, in seconds.
        seconds: u64,
    },
    /// No hosted record has this id.
    #[error("this clinic hosts no record `{given}`")]
    NoSuchRecord {
        /// The id given, control characters escaped.
        given: String,
    },
    /// A record id cut too short to name one record safely.
    #[error("`{given}` is too short to name a record: give its full id or at least {min} of its characters")]
    RecordIdTooShort {
        /// The id given, control characters escaped.
        given: String,
        /// The fewest characters accepted.
        min: usize,
    },
    /// A record id prefix that matches more than one hosted record.
    #[error("`{given}` matches several hosted records; give more of the id")]
    AmbiguousRecord {
        /// The prefix given.
        given: String,
    },
    /// No current staff member has exactly this name or key.
    #[error(
        "no current staff member is named `{given}` or has that key; names must match exactly (letter case aside), keys in full"
    )]
    NoSuchStaff {
        /// The name or key given, control characters escaped.
        given: String,
    },
    /// A FHIR resource that cannot be mapped to an entry; the first problem found.
    #[error("the FHIR resource is invalid at `{path}`: {problem}")]
    Fhir {
        /// Where in the resource, e.g. `Observation.valueQuantity.value` or `Composition.section[2].title`.
        path: String,
        /// What is wrong there.
        problem: String,
    },
    /// An attached file's stored data fails its checks (altered, truncated, or not the file the
    /// entry describes).
    #[error("the attached file is damaged or was altered on this device ({0}); nothing was written")]
    AttachmentDamaged(BlobDamage),
    /// An attached file's data is not (or not wholly) on this device yet.
    #[error("the attached file is not on this device yet ({0})")]
    AttachmentMissing(BlobMissing),
    /// An attachment cannot be added or opened as asked.
    #[error("attachment: {0}")]
    Attachment(AttachmentProblem),
    /// A file to attach could not be read.
    #[error("attachment: cannot read {}", .path.display())]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// An attached file could not be written out where asked.
    #[error("attachment: cannot write {}", .path.display())]
    FileUnwritable {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The store holds no clinic (it is a device's home, or not yet set up as a clinic).
    #[error("this store holds no clinic")]
    NoClinic,
    /// Something that cannot happen unless phr itself is wrong: a broken invariant, a task that
    /// panicked, a value of its own that would not encode.
    #[error("internal error: {what} (this is a bug in phr)")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },
}

impl Error {
    /// An internal error (a broken invariant), described by `what`.
    pub fn internal(what: &'static str) -> Error {
        Error::Internal { what }
    }
}

/// How much of a caller's text an error message repeats.
const SHOWN_CHARS: usize = 40;

/// Text someone typed or sent, as an error message may repeat it: control characters escaped
/// (never written raw to a terminal or a log), long text cut.
pub fn shown(text: &str) -> String {
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    let mut out = crate::visible::escape(&cut, false).into_owned();
    if text.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded => Error::DiskFull(e),
            ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => Error::ReadOnly(e),
            _ => Error::Io(Box::new(e)),
        }
    }
}

impl From<automerge::AutomergeError> for Error {
    fn from(e: automerge::AutomergeError) -> Self {
        Error::Document(e)
    }
}
