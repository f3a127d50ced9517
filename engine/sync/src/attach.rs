//! Attaching a file to an entry: seal it into the blob store (or reuse an identical file's
//! blob), then write the reference into the entry through the replica, in one signed change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phr_model::attached::references;
use phr_model::attachment::{Attachment, SECTIONS, guess_media_type};
use phr_model::error::{AttachmentProblem, Error, Refusal, Result};
use phr_model::identity::RecordId;
use phr_model::section::Section;
use phr_store::blob_store::{BlobStore, digest_file, read_error};
use serde_json::Value;

use crate::replica::Replica;

/// What `attach` did.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Section of the entry.
    pub section: Section,
    /// The entry (new, or the one given).
    pub id: String,
    /// The reference written into it.
    pub attachment: Attachment,
    /// Whether an identical file was already stored, so its blob was reused.
    pub reused: bool,
}

/// How to attach a file.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The file.
    pub path: PathBuf,
    /// Section of the entry.
    pub section: Section,
    /// Attach to this existing entry (id or unique prefix), replacing its attachment; otherwise
    /// a new entry is made from `fields`.
    pub to: Option<String>,
    /// Fields of the new entry (`title`, `kind`, … as `phr add` parses them).
    pub fields: serde_json::Map<String, Value>,
    /// MIME type; guessed from the extension when `None`.
    pub media_type: Option<String>,
    /// The file's name to record (a browser's upload arrives in a file named otherwise); the
    /// path's own name when `None`.
    pub name: Option<String>,
}

/// Attach a file: seal it into the blob store (or reuse the blob of an identical file the
/// record already references), then write the reference into a new or existing entry in one
/// signed change. Writing the entry is the last step, so a failure leaves no entry pointing at
/// a blob that is not there (an orphaned blob is removed by the next collection).
pub async fn attach(
    replica: &Replica,
    blobs: &BlobStore,
    req: AttachRequest,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<Attached> {
    let media_type = checked_media_type(&req)?;
    let (record, target) = target_entry(replica, &req)?;
    let (path, rid) = (req.path.clone(), record);
    let (plain_hash, size) = tokio::task::spawn_blocking(move || digest_file(&path, &rid))
        .await
        .map_err(|_| Error::internal("the task hashing a file stopped"))??;
    let existing = {
        let device = replica.lock();
        references(device.record())?
            .into_iter()
            .map(|r| r.attachment)
            .find(|a| a.plain_hash == plain_hash && a.size == size)
    };
    let (mut attachment, reused) = match existing {
        Some(a) => {
            blobs.keep(&a.blob).await?;
            progress(size);
            (a, true)
        }
        None => (
            blobs
                .seal_file(&req.path, &record, &media_type, Some(plain_hash), progress)
                .await?,
            false,
        ),
    };
    attachment.media_type = media_type;
    attachment.name = file_name(&req);
    let section = req.section;
    let id = write_reference(replica, req, target, &attachment)?;
    Ok(Attached {
        section,
        id,
        attachment,
        reused,
    })
}

/// Check that the section takes files and the path is a file; returns the media type to
/// record (the one given, trimmed, or one guessed from the extension).
fn checked_media_type(req: &AttachRequest) -> Result<String> {
    if !SECTIONS.contains(&req.section) {
        return Err(Error::Attachment(AttachmentProblem::WrongSection {
            section: req.section,
        }));
    }
    let meta = std::fs::metadata(&req.path).map_err(|e| read_error(&req.path, e))?;
    if !meta.is_file() {
        return Err(Error::Attachment(AttachmentProblem::NotAFile {
            path: req.path.clone(),
        }));
    }
    Ok(match &req.media_type {
        Some(m) if !m.trim().is_empty() && m.len() <= 255 => m.trim().to_string(),
        Some(_) => return Err(Error::Attachment(AttachmentProblem::MediaTypeLength { max: 255 })),
        None => guess_media_type(Path::new(&file_name(req).unwrap_or_default())).to_string(),
    })
}

/// The file's name to record: the one given, or the path's.
fn file_name(req: &AttachRequest) -> Option<String> {
    match &req.name {
        Some(n) => Some(n.clone()),
        None => req.path.file_name().map(|n| n.to_string_lossy().into_owned()),
    }
}

/// The record, and the existing entry to attach to (if one was named), after checking that
/// this device may attach files to the section.
fn target_entry(replica: &Replica, req: &AttachRequest) -> Result<(RecordId, Option<String>)> {
    let device = replica.lock();
    let record = device.record();
    // Refuse before sealing anything: a holder's edit outside its grant would fail anyway.
    if let Some((label, scope)) = record.limits()
        && !scope
            .get(&req.section)
            .is_some_and(|r| r.covers(phr_model::capability::Right::Write))
    {
        return Err(Error::NotAllowed(Refusal::AttachOutsideGrant {
            label: label.clone(),
            section: req.section,
        }));
    }
    let target = match &req.to {
        Some(id) => Some(record.resolve_id(req.section, id)?),
        None => None,
    };
    Ok((record.id(), target))
}

/// Write the reference into the target entry, or into a new entry made from the request's
/// fields, in one signed change; returns the entry's id.
fn write_reference(
    replica: &Replica,
    req: AttachRequest,
    target: Option<String>,
    attachment: &Attachment,
) -> Result<String> {
    let value =
        serde_json::to_value(attachment).map_err(|_| Error::internal("an attachment reference would not encode"))?;
    let section = req.section;
    Ok(match target {
        Some(id) => {
            let mut change = serde_json::Map::new();
            change.insert("attachment".into(), value);
            if section == Section::Documents && !req.fields.contains_key("media_type") {
                change.insert("media_type".into(), Value::String(attachment.media_type.clone()));
            }
            change.extend(req.fields);
            let id2 = id.clone();
            replica.write(move |r| r.edit(section, &id2, change))?;
            id
        }
        None => {
            let mut fields = req.fields;
            if section == Section::Documents {
                fields
                    .entry("title")
                    .or_insert_with(|| Value::String(attachment.display_name().to_string()));
                fields
                    .entry("media_type")
                    .or_insert_with(|| Value::String(attachment.media_type.clone()));
            }
            fields.insert("attachment".into(), value);
            replica.write(move |r| r.add(section, fields))?
        }
    })
}
