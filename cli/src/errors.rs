//! The engine's errors worded for a person at a terminal: the engine says what happened; this
//! adds the `phr` command or flag that helps, where there is one.

use phr_engine::{AttachmentProblem, Error, Refusal, TicketProblem};

/// An error as `phr` prints it: the whole chain of causes (`{:#}`), then advice for the first
/// engine error in the chain, if it has any.
pub fn worded(e: &anyhow::Error) -> String {
    let mut text = format!("{e:#}");
    if let Some(advice) = e.chain().find_map(|c| c.downcast_ref::<Error>()).and_then(advice) {
        text.push_str(advice);
    }
    text
}

/// What a person at a terminal can do about an engine error, as text to follow its message.
fn advice(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::NoStore { .. } => ": run `phr init` first, or point --home / PHR_HOME at an existing home",
        Error::StoreBusy => " (is `phr serve` or `phr-node run` running on this home?)",
        Error::AttachmentMissing(_) => ": run `phr sync` with a device that has it",
        Error::NotAllowed(Refusal::ProfileExists) => ": change it with `phr edit profile patient --field value`",
        Error::NotAllowed(Refusal::NoteRewrite) => ", with `phr amend notes ID --text …`",
        Error::NotAllowed(Refusal::NoSuchGrant { .. }) => "; see `phr access list`",
        Error::Attachment(AttachmentProblem::NoSuchEntry { .. }) => "; see `phr attachments list`",
        Error::Attachment(AttachmentProblem::AmbiguousEntry { .. }) => "; add --section",
        Error::Attachment(AttachmentProblem::MediaTypeLength { .. }) => " (--media-type)",
        Error::Attachment(AttachmentProblem::OutputExists { .. }) => "; choose another --out or remove it first",
        Error::Ticket(TicketProblem::SharesAccess) => "; use it with `phr join`, not `phr devices join`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_follows_the_engine_message_through_context() {
        let e = anyhow::Error::from(Error::NoStore { home: "/tmp/x".into() }).context("opening the record");
        assert_eq!(
            worded(&e),
            "opening the record: no phr record at /tmp/x: run `phr init` first, or point --home / PHR_HOME at an existing home"
        );
        let plain = anyhow::anyhow!("something else");
        assert_eq!(worded(&plain), "something else");
    }
}
