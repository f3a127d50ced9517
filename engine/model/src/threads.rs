//! Messages grouped by thread: a thread is its subject, compared without case or surrounding
//! spaces, so a reply typed "homework" joins "Homework".

use serde_json::Value;

use crate::error::Result;
use crate::record::{EntryView, Record};
use crate::section::Section;

/// Whether two thread subjects name the same thread.
pub fn same_subject(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// A message's thread subject (empty when it has none).
pub fn subject(m: &EntryView) -> &str {
    m.fields.get("thread").and_then(Value::as_str).unwrap_or_default()
}

/// The record's messages by thread, oldest first within each, in write order; the thread with
/// the newest message last.
pub fn threads(record: &Record) -> Result<Vec<(String, Vec<EntryView>)>> {
    // Each thread with the position of its newest message in write order.
    let mut threads: Vec<(usize, String, Vec<EntryView>)> = Vec::new();
    let messages = record.in_write_order(Section::Messages, record.list(Section::Messages)?);
    for (i, m) in messages.into_iter().enumerate() {
        let subject = subject(&m).to_string();
        match threads.iter_mut().find(|(_, t, _)| same_subject(t, &subject)) {
            Some((newest, _, msgs)) => {
                *newest = i;
                msgs.push(m);
            }
            None => threads.push((i, subject, vec![m])),
        }
    }
    threads.sort_by_key(|(newest, _, _)| *newest);
    Ok(threads.into_iter().map(|(_, t, msgs)| (t, msgs)).collect())
}
