//! phr-engine: a patient-owned health record as signed Automerge documents in a sealed store.

pub mod access;
pub mod attachment;
pub mod capability;
pub mod change;
mod chunk;
pub mod clinic;
pub mod crypto;
pub mod device;
pub mod duration;
pub mod entry;
pub mod error;
pub mod exchange;
pub mod fhir;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod library;
pub mod limits;
pub mod private_file;
pub mod record;
pub mod section;
pub mod store;
pub mod summary;
pub mod sync;
pub mod verify;
pub mod visible;

pub use automerge;
pub use device::{Device, InitOptions};
pub use error::{Error, Result};
pub use identity::{KeyPair, PublicKey, RecordId};
pub use record::Record;
pub use section::Section;
