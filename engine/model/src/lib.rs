//! phr-model: the record itself, with no I/O runtime, network or database: sections and their
//! entries, identities and keys, capabilities and access, signed changes and their checks, the
//! Automerge record, the summary a report is drawn from, the attachment reference, and the
//! crypto all of them use. Everything above it (FHIR, store, sync, clinic) builds on these
//! types; this crate knows none of them.

pub mod access;
pub mod attached;
pub mod attachment;
pub mod capability;
pub mod change;
pub mod chunk;
pub mod crypto;
pub mod duration;
pub mod entry;
pub mod error;
pub mod identity;
pub mod limits;
pub mod record;
pub mod section;
pub mod summary;
pub mod threads;
pub mod verify;
pub mod visible;

pub use error::{
    AttachmentProblem, BlobDamage, BlobMissing, EntryProblem, Error, FieldProblem, KitProblem, Refusal, Result,
    RootAction, TicketProblem, WhichTicket,
};
pub use identity::{KeyPair, PublicKey, RecordId};
pub use record::Record;
pub use section::Section;
