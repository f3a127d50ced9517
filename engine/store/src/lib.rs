//! phr-store: a home on disk. The sealed redb store of one record, the device that owns it
//! (its keys, its record, its access), the exchange of signed changes with peers as data (no
//! network: that is phr-sync), the library of many hosted records a clinic keeps, the blob store
//! of attachments, and files created private.

pub mod blob_store;
pub mod db_error;
pub mod device;
pub mod exchange;
#[doc(hidden)]
pub mod fuzzing;
pub mod library;
pub mod private_file;
pub mod store;

pub use device::{Device, InitOptions};

/// On-disk format version this build writes and the highest it reads.
pub const FORMAT_VERSION: u32 = 1;
