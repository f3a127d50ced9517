//! What is wrong with an attachment, a ticket or a recovery kit (`Error::Attachment`,
//! `Error::AttachmentDamaged`, `Error::AttachmentMissing`, `Error::Ticket`,
//! `Error::InvalidRecoveryKit`): one kind per problem, with the values it concerns, worded
//! without advice for any one front end.

use crate::section::Section;
use std::path::PathBuf;

/// Why an attachment cannot be added or opened as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentProblem {
    /// Files attach to a few sections only.
    #[error("files attach to documents, insurance or notes, not {section}")]
    WrongSection {
        /// The section asked for.
        section: Section,
    },
    /// The path names something other than a regular file.
    #[error("{} is not a file", .path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// A media type that is empty or too long.
    #[error("the media type must be 1 to {max} characters")]
    MediaTypeLength {
        /// The most characters allowed.
        max: usize,
    },
    /// No entry in the sections that hold attachments has this id.
    #[error("no entry `{id}` in {}", sections.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "))]
    NoSuchEntry {
        /// The id given.
        id: String,
        /// The sections searched.
        sections: Vec<Section>,
    },
    /// An id that matches entries in more than one section.
    #[error("`{id}` matches entries in several sections")]
    AmbiguousEntry {
        /// The id given.
        id: String,
    },
    /// The entry has no file attached.
    #[error("{section} {id} has no attached file")]
    NoFile {
        /// The entry's section.
        section: Section,
        /// The entry's id.
        id: String,
    },
    /// A file too large to be cut into chunks.
    #[error("an attachment may have at most 2^56 chunks")]
    TooManyChunks,
    /// The file changed while it was being read.
    #[error("{} changed while it was being attached; attach it again once it is complete", .path.display())]
    ChangedWhileAttaching {
        /// The file.
        path: PathBuf,
    },
    /// The file to open the attachment into is already there.
    #[error("{} already exists", .path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
}

/// Which kind of ticket a `TicketProblem` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichTicket {
    /// A device pairing or access ticket (`PHR1…`).
    Pairing,
    /// A clinic's invitation (`PHRCLINIC1…`).
    ClinicInvitation,
}

/// Why a ticket cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketProblem {
    /// The text is not a ticket of that kind.
    #[error("{}", match .0 {
        WhichTicket::Pairing => "this is not a phr pairing ticket",
        WhichTicket::ClinicInvitation => "this is not a phr clinic invitation (those start with PHRCLINIC1)",
    })]
    NotATicket(WhichTicket),
    /// The ticket's text does not decode.
    #[error("{}", match .0 {
        WhichTicket::Pairing => "the ticket text is damaged (check it was copied whole)",
        WhichTicket::ClinicInvitation => "the clinic invitation is damaged (check it was copied whole)",
    })]
    Damaged(WhichTicket),
    /// The ticket is past its expiry.
    #[error("{}", match .0 {
        WhichTicket::Pairing => "this pairing ticket has expired; ask for a new one",
        WhichTicket::ClinicInvitation => "this clinic invitation has expired; ask the clinic for a new one",
    })]
    Expired(WhichTicket),
    /// A ticket that shares access, used to join as a device.
    #[error("this ticket shares access: it joins someone given access, not one of the patient's devices")]
    SharesAccess,
    /// The issuer answered with a credential for another key.
    #[error("the issuer sent a credential for someone else")]
    ForeignCredential,
    /// The issuer refused, with its reason (the peer's own words).
    #[error("{reason}")]
    Refused {
        /// What the issuer said.
        reason: String,
    },
}

/// How an attached file's stored data fails its checks (`Error::AttachmentDamaged`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobDamage {
    /// A sealed chunk fails its integrity check.
    #[error("chunk {chunk} fails its integrity check")]
    Chunk {
        /// The chunk's index.
        chunk: u64,
    },
    /// More chunks than the entry describes.
    #[error("the blob has more chunks than the entry says")]
    ExtraChunks,
    /// Fewer chunks (or bytes) than the entry describes.
    #[error("the blob is truncated: {opened} of {chunks} chunks opened")]
    Truncated {
        /// Chunks opened.
        opened: u64,
        /// Chunks the entry describes.
        chunks: u64,
    },
    /// The stored blob's size is not the one the entry describes.
    #[error("the stored blob has {held} bytes, the entry says {expected}")]
    WrongSize {
        /// Bytes held.
        held: u64,
        /// Bytes the entry describes.
        expected: u64,
    },
    /// The opened file's hash is not the entry's.
    #[error("the opened file is not the one the entry describes")]
    NotTheFile,
    /// The entry's description of the file is itself invalid.
    #[error("{0}")]
    Description(crate::error::FieldProblem),
    /// The blob store could not read the stored blob.
    #[error("the stored blob cannot be read: {cause}")]
    Unreadable {
        /// The blob library's own report.
        cause: String,
    },
}

/// Which attached file is not (wholly) on this device (`Error::AttachmentMissing`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobMissing {
    /// None of it is here.
    #[error("`{name}`")]
    Nothing {
        /// The file's name as the entry gives it.
        name: String,
    },
    /// Part of it is here.
    #[error("{held} of {size} bytes of `{name}` are here")]
    Part {
        /// The file's name as the entry gives it.
        name: String,
        /// Bytes held here.
        held: u64,
        /// Bytes it has in all (sealed).
        size: u64,
    },
    /// A peer sent only part of it.
    #[error("{peer} has only {held} bytes of attachment {blob}")]
    PeerHasPart {
        /// The peer's short id.
        peer: String,
        /// Bytes it had.
        held: u64,
        /// The blob's short id.
        blob: String,
    },
}

/// Why a recovery kit cannot be used (`Error::InvalidRecoveryKit`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KitProblem {
    /// The kit's record line does not hold a record id.
    #[error("the record line is not a valid record id")]
    RecordLine,
    /// Not 24 words.
    #[error("expected 24 words, found {found}")]
    WordCount {
        /// Words found.
        found: usize,
    },
    /// A word that is not in the word list.
    #[error("word {position} is not in the recovery word list (check its spelling)")]
    UnknownWord {
        /// The word's position, from 1.
        position: usize,
    },
    /// The words do not check out (a word is wrong or two are swapped).
    #[error("the words do not check out: one is misspelt, missing or out of order")]
    Checksum,
    /// The words encode something other than a 32-byte key.
    #[error("the words do not encode a 32-byte key")]
    KeyLength,
    /// The words belong to another record than the one the kit names.
    #[error("the words do not belong to the record named in the kit")]
    OtherRecord,
}
