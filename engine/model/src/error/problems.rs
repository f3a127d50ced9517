//! What is wrong with an attachment request or a ticket (`Error::Attachment`, `Error::Ticket`):
//! one kind per problem, with the values it concerns, worded without advice for any one front end.

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
