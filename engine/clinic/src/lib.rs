//! phr-clinic: what a clinic adds to sync. The host a clinic node runs over its library of
//! records (staff, grants, pushes from the EHR) and the protocol a patient's device joins a
//! clinic by.

pub mod host;
pub mod protocol;
pub mod ticket;
