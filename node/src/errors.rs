//! The engine's errors worded for the node's two audiences: the clinic's systems (an HTTP status
//! and an OperationOutcome text, with no command-line advice) and the operator at a terminal
//! (`phr-node` commands, with the commands that help).

use phr_engine::{Error, Refusal};

/// The HTTP status an engine error deserves: the caller's fault (4xx), the host's condition
/// (503, worth retrying), or phr's own fault (500).
pub fn status(e: &Error) -> u16 {
    match e {
        Error::Fhir { .. }
        | Error::InvalidField { .. }
        | Error::InvalidEntry { .. }
        | Error::InvalidDate(_)
        | Error::UnknownField { .. }
        | Error::UnknownSection(_)
        | Error::AmbiguousId { .. } => 422,
        Error::NoSuchEntry { .. } => 404,
        Error::NotAllowed(_) => 403,
        Error::StoreBusy | Error::Io(_) | Error::DiskFull(_) | Error::ReadOnly(_) => 503,
        Error::Internal { .. } => 500,
        _ => 500,
    }
}

/// The text an EHR reads in an OperationOutcome: what happened and, where the clinic's system
/// can do something about it, what.
pub fn for_ehr(e: &Error) -> String {
    let mut text = with_causes(e);
    if let Error::NotAllowed(Refusal::NoteExists { .. }) = e {
        text.push_str("; push a new note or an amendment");
    }
    text
}

/// The text the operator reads on stderr: the whole chain of causes and, for the errors a
/// `phr-node` command can fix, which one.
pub fn for_operator(e: &anyhow::Error) -> String {
    let mut text = format!("{e:#}");
    let engine = e.chain().find_map(|c| c.downcast_ref::<Error>());
    let advice = match engine {
        Some(Error::NoClinic) => Some(" (was it made by `phr-node init`?)"),
        Some(Error::NotAllowed(Refusal::NoSuchInvite { .. })) => Some("; see `phr-node invite --list`"),
        Some(Error::StoreBusy) => Some(" (is `phr serve` or `phr-node run` running on this home?)"),
        _ => None,
    };
    text.extend(advice);
    text
}

/// An error's message followed by those of its sources, as `anyhow` prints `{:#}`.
fn with_causes(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
