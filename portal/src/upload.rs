//! A form sent with a file (`multipart/form-data`): its text fields, and its file streamed into
//! a private temporary file in the home (0600, in a 0700 directory), never held whole in
//! memory, refused past a limit. The temporary file is removed when its [`Upload`] is dropped,
//! whatever happened.

use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::forms::Submitted;

/// The largest request body the upload routes take (a document's file with its form): 100 MiB.
/// Every other route keeps the 256 KiB form limit (`routes.rs`).
pub const UPLOAD_LIMIT: u64 = 100 * 1024 * 1024;

/// The largest text field of an upload form (a title, a description).
const TEXT_LIMIT: usize = 64 * 1024;

/// Where uploads wait, inside the home, while they are read and sealed.
const TEMP_DIR: &str = "portal-uploads";

/// A file received, in its private temporary file.
#[derive(Debug)]
pub struct Upload {
    /// The temporary file.
    pub path: PathBuf,
    /// The name the browser gave (the person's own file name; may hold anything).
    pub name: String,
    /// The media type the browser gave, if any.
    pub media_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a multipart form held.
#[derive(Debug)]
pub struct Received {
    /// Its text fields.
    pub fields: Submitted,
    /// Its file, when one was chosen.
    pub file: Option<Upload>,
}

/// Why a multipart form was not taken.
#[derive(Debug)]
pub enum Refused {
    /// It was larger than the limit.
    TooLarge,
    /// It was not a well-formed form (an interrupted upload, a broken body).
    Broken(String),
    /// The temporary file could not be written.
    Disk(std::io::Error),
}

impl From<MultipartError> for Refused {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refused::TooLarge
        } else {
            Refused::Broken(e.body_text())
        }
    }
}

/// Read the form: text fields into memory (each bounded), the field named `file` into a
/// temporary file under `home`, at most `limit` bytes of it.
pub async fn receive(mut form: Multipart, home: &Path, limit: u64) -> Result<Received, Refused> {
    let mut fields = Vec::new();
    let mut file = None;
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" && file.is_none() {
            file = to_temp_file(field, home, limit).await?;
        } else {
            fields.push((name, text(field).await?));
        }
    }
    Ok(Received {
        fields: Submitted(fields),
        file,
    })
}

/// A text field, refused past [`TEXT_LIMIT`].
async fn text(mut field: Field<'_>) -> Result<String, Refused> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if bytes.len() + chunk.len() > TEXT_LIMIT {
            return Err(Refused::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The file field streamed into a new private temporary file; `None` when no file was chosen
/// (a browser sends an empty part without a name).
async fn to_temp_file(mut field: Field<'_>, home: &Path, limit: u64) -> Result<Option<Upload>, Refused> {
    let name = field.file_name().unwrap_or_default().to_string();
    let media_type = field.content_type().map(str::to_string);
    let dir = home.join(TEMP_DIR);
    phr_engine::private_file::create_dir(&dir).map_err(Refused::Disk)?;
    let random = crate::sessions::secret().map_err(|e| Refused::Disk(std::io::Error::other(e.to_string())))?;
    let path = dir.join(format!("{random}.part"));
    let std_file = phr_engine::private_file::create_file(&path).map_err(Refused::Disk)?;
    // From here on, dropping `upload` removes the file.
    let mut upload = Upload {
        path,
        name,
        media_type,
        size: 0,
    };
    let mut out = tokio::fs::File::from_std(std_file);
    while let Some(chunk) = field.chunk().await? {
        upload.size += chunk.len() as u64;
        if upload.size > limit {
            return Err(Refused::TooLarge);
        }
        out.write_all(&chunk).await.map_err(Refused::Disk)?;
    }
    out.sync_all().await.map_err(Refused::Disk)?;
    if upload.size == 0 && upload.name.is_empty() {
        return Ok(None);
    }
    Ok(Some(upload))
}
