//! `Communication`: a secure message, both ways.

use serde_json::{Map, Value, json};

use phr_model::entry;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;

/// A message from a `Communication`.
///
/// The message entry has no date of its own (the record stamps `created`), so `sent` is checked
/// but not kept.
pub fn message_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Communication"])?;
    let mut fields = Fields::new();
    let status = root.get("status")?;
    if status.text()?.as_deref() == Some("entered-in-error") {
        return Err(status.fail("is `entered-in-error`: there is no message to record"));
    }

    let payload = root.get("payload")?;
    let mut parts = Vec::new();
    for item in payload.items()? {
        if let Some(text) = item.get("contentString")?.text()? {
            parts.push(text);
        } else if let Some(text) = attachment_text(&item.get("contentAttachment")?)? {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return Err(payload.fail("has no contentString (or inline text attachment): a message needs its text"));
    }
    fields.insert("body".into(), parts.join("\n\n").into());

    let from = root.get("sender")?.get("display")?.text()?;
    let mut to = Vec::new();
    for recipient in root.get("recipient")?.items()? {
        if let Some(name) = recipient.get("display")?.text()? {
            to.push(name);
        }
    }

    let mut thread = concept_label(&root.get("topic")?)?;
    for key in ["category", "reasonCode"] {
        for concept in root.get(key)?.items()? {
            if thread.is_none() {
                thread = concept_label(&concept)?;
            }
        }
    }
    // A message without any subject still belongs somewhere: its sender's thread.
    let thread = thread.unwrap_or_else(|| match &from {
        Some(name) => format!("Message from {name}"),
        None => "Message".to_string(),
    });
    fields.insert("thread".into(), thread.into());
    if let Some(from) = from {
        fields.insert("from".into(), from.into());
    }
    if !to.is_empty() {
        fields.insert("to".into(), to.join(", ").into());
    }
    // Checked so that a malformed resource is refused as a whole, not half-read.
    date_at(&root.get("sent")?)?;
    entry::validate(Section::Messages, &fields)
}

/// A message as a `Communication`; `sent` comes from the entry's `created` stamp when present.
pub fn message_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    let mut msg = base("Communication", id, fields);
    msg.insert("status".into(), "completed".into());
    if let Some(thread) = text_field(fields, "thread") {
        msg.insert("topic".into(), json!({ "text": thread }));
    }
    if let Some(created) = text_field(fields, "created").filter(|c| parse_when(c).is_some()) {
        msg.insert("sent".into(), created.into());
    }
    if let Some(from) = text_field(fields, "from") {
        msg.insert("sender".into(), json!({ "display": from }));
    }
    if let Some(to) = text_field(fields, "to") {
        msg.insert("recipient".into(), json!([{ "display": to }]));
    }
    if let Some(body) = text_field(fields, "body") {
        msg.insert("payload".into(), json!([{ "contentString": body }]));
    }
    Value::Object(msg)
}

/// A Communication of a bundle, read as a clinic's is unless it was entered in error.
pub(crate) fn read(root: &At, cx: &Cx) -> Result<Mapping> {
    if root.get("status")?.text()?.as_deref() == Some("entered-in-error") {
        return Ok(Mapping::Skip("entered-in-error"));
    }
    Ok(Mapping::Checked(Section::Messages, message_from_fhir(cx.res)?))
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    message_to_fhir(id, fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use serde_json::{Value, json};
    // ----- messages ---------------------------------------------------------------------------

    #[test]
    fn a_communication_becomes_a_message_and_round_trips() {
        let res = json!({
            "resourceType": "Communication",
            "id": "com-3",
            "status": "completed",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification" }] }],
            "topic": { "text": "Schedule change" },
            "sent": "2024-03-10T08:15:00-05:00",
            "sender": { "reference": "Practitioner/pr-7", "display": "Jamie Ames" },
            "recipient": [{ "reference": "RelatedPerson/rp-1", "display": "Ana Lopez" }, { "display": "Luis Lopez" }],
            "payload": [
                { "contentString": "Thursday's session moves to 4pm." },
                { "contentAttachment": { "contentType": "text/plain", "data": b64("Reply here if that does not work.") } }
            ]
        });
        let msg = message_from_fhir(&res).unwrap();
        assert_eq!(msg["thread"], "Schedule change");
        assert_eq!(
            msg["body"],
            "Thursday's session moves to 4pm.\n\nReply here if that does not work."
        );
        assert_eq!(msg["from"], "Jamie Ames");
        assert_eq!(msg["to"], "Ana Lopez, Luis Lopez");

        let mut stored = msg.clone();
        stored.insert("created".into(), "2024-03-10T13:15:00Z".into());
        let out = message_to_fhir("m-1", &stored);
        assert_eq!(out["sent"], "2024-03-10T13:15:00Z");
        assert_eq!(message_from_fhir(&out).unwrap(), msg);

        let mut untitled = res.clone();
        untitled["topic"] = Value::Null;
        untitled["category"] = Value::Null;
        assert_eq!(
            message_from_fhir(&untitled).unwrap()["thread"],
            "Message from Jamie Ames"
        );

        let mut empty = res.clone();
        empty["payload"] = json!([]);
        assert_eq!(fhir_fault(message_from_fhir(&empty)).0, "Communication.payload");
        let mut bad_sent = res;
        bad_sent["sent"] = "yesterday".into();
        assert_eq!(fhir_fault(message_from_fhir(&bad_sent)).0, "Communication.sent");
    }
}
