//! Which entries of a record carry an attached file: what the blob store must keep, and the
//! attachment of one entry by id.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::attachment::{Attachment, SECTIONS, of_fields};
use crate::error::{AttachmentProblem, Error, Result};
use crate::record::Record;
use crate::section::Section;

/// An entry that carries an attachment.
#[derive(Debug, Clone)]
pub struct Referenced {
    /// Section of the entry.
    pub section: Section,
    /// Entry id.
    pub id: String,
    /// The entry's title (or its first field), for listings.
    pub label: String,
    /// The attachment.
    pub attachment: Attachment,
}

/// Every entry of the record that carries an attachment, section by section.
pub fn references(record: &Record) -> Result<Vec<Referenced>> {
    let mut out = Vec::new();
    for section in SECTIONS {
        for e in record.list(section)? {
            if let Some(attachment) = of_fields(&e.fields) {
                let label = ["title", "payer", "clinician"]
                    .iter()
                    .find_map(|k| e.fields.get(*k).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_string();
                out.push(Referenced {
                    section,
                    id: e.id,
                    label,
                    attachment,
                });
            }
        }
    }
    Ok(out)
}

/// The blobs the record references: what the blob store must keep.
pub fn referenced_blobs(record: &Record) -> Result<BTreeSet<[u8; 32]>> {
    Ok(references(record)?.into_iter().map(|r| r.attachment.blob).collect())
}

/// The attachment of the entry `id` (or a unique prefix) in `section`, or in any attachment
/// section when none is given.
pub fn find(record: &Record, id: &str, section: Option<Section>) -> Result<Referenced> {
    let sections: Vec<Section> = match section {
        Some(s) => vec![s],
        None => SECTIONS.to_vec(),
    };
    let mut found = Vec::new();
    for s in &sections {
        match record.resolve_id(*s, id) {
            Ok(full) => found.push((*s, full)),
            Err(Error::NoSuchEntry { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (section, full) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Attachment(AttachmentProblem::NoSuchEntry {
                id: id.to_string(),
                sections: sections.clone(),
            }));
        }
        _ => {
            return Err(Error::Attachment(AttachmentProblem::AmbiguousEntry {
                id: id.to_string(),
            }));
        }
    };
    let entry = record.read_entry(section, &full)?.ok_or_else(|| Error::NoSuchEntry {
        section,
        id: full.clone(),
    })?;
    let attachment = of_fields(&entry.fields).ok_or_else(|| {
        Error::Attachment(AttachmentProblem::NoFile {
            section,
            id: full.clone(),
        })
    })?;
    Ok(Referenced {
        section,
        id: full,
        label: String::new(),
        attachment,
    })
}
