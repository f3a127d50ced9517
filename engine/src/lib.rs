//! phr-engine: one front door over the engine's crates, so callers name one dependency and
//! the paths they always used (`phr_engine::record::Record`, `phr_engine::sync::Service`, …).
//!
//! The engine itself lives in five crates whose Cargo edges are its layers (see
//! docs/ARCHITECTURE.md): `phr-model` (the record, no I/O runtime, network or database),
//! `phr-fhir` (FHIR mapping over the model), `phr-store` (a home on disk), `phr-sync` (iroh) and
//! `phr-clinic` (a clinic's host and its protocol). This crate adds no code of its own but the
//! fuzzing entry points.

pub use phr_fhir as fhir;
pub use phr_model::{
    access, capability, change, crypto, duration, entry, error, identity, limits, record, section, summary, threads,
    verify, visible,
};
pub use phr_store::{db_error, device, exchange, library, private_file, store};

/// Attachments: the reference an entry carries (model), the blob store (store) and attaching a
/// file through a replica (sync), under the one path callers know.
pub mod attachment {
    pub use phr_model::attached::*;
    pub use phr_model::attachment::*;
    pub use phr_store::blob_store::*;
    pub use phr_sync::attach::*;
}

/// A clinic's host over its library of records.
pub mod clinic {
    pub use phr_clinic::host::*;
}

/// Peer-to-peer sync, with the clinic's join protocol at `sync::clinic`.
pub mod sync {
    pub use phr_clinic::protocol as clinic;
    pub use phr_sync::*;
}

#[doc(hidden)]
pub use phr_store::fuzzing;

pub use automerge;
pub use device::{Device, InitOptions};
pub use error::{
    AttachmentProblem, BlobDamage, BlobMissing, EntryProblem, Error, FieldProblem, KitProblem, Refusal, Result,
    RootAction, TicketProblem, WhichTicket,
};
pub use identity::{KeyPair, PublicKey, RecordId};
pub use record::Record;
pub use section::Section;
