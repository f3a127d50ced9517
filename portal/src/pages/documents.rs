//! Documents with their files: the upload form (a file, its title, kind and day), the file
//! streamed into a private temporary file and sealed into the home's encrypted blob store, the
//! same engine call as `phr attach`; and any attached file streamed back to be saved.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use phr_engine::Section;
use phr_engine::attachment::{self, AttachRequest, Held};
use phr_engine::entry::{self, FieldSpec};
use phr_engine::record::EntryView;

use crate::download;
use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{FilePage, Line};
use crate::upload::{self, Refused, UPLOAD_LIMIT};

/// Where the form is sent (drawn at `/documents/new`).
pub const UPLOAD: &str = "/documents/upload";

/// The document fields the upload form asks for (the file's type is the file's own).
const ASKED: [&str; 4] = ["title", "kind", "date", "description"];

fn specs() -> Vec<&'static FieldSpec> {
    entry::fields(Section::Documents)
        .iter()
        .filter(|s| ASKED.contains(&s.name))
        .collect()
}

/// `GET /documents/new`.
pub async fn form(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw(app, &who, Drawn::default())).await
}

/// What the form is drawn with after a refused upload.
#[derive(Default)]
struct Drawn {
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    general: Option<String>,
    status: Option<StatusCode>,
}

impl Drawn {
    /// The form as sent, with `text` beside field `at` (or above the form).
    fn refused(sent: &Submitted, at: Option<String>, text: String, status: StatusCode) -> Drawn {
        let values = ASKED.iter().map(|n| (n.to_string(), sent.text(n))).collect();
        let (errors, general) = match at {
            Some(f) if f == "file" || ASKED.contains(&f.as_str()) => (HashMap::from([(f, text)]), None),
            _ => (HashMap::new(), Some(text)),
        };
        Drawn {
            values,
            errors,
            general,
            status: Some(status),
        }
    }
}

/// The upload form, or "not allowed" where this home may not add documents.
fn draw(app: &App, who: &SignedIn, d: Drawn) -> Result<Response, Error> {
    let rights = Rights::of(&app.replica.lock());
    if !rights.adds(Section::Documents) {
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    }
    let limit = limit_words(app);
    let mut file = forms::plain(
        "file",
        app.m.get("upload-file"),
        "file",
        String::new(),
        true,
        d.errors.get("file").cloned(),
    );
    file.hint = app.m.with("upload-file-hint", &[("limit", Arg::Text(limit.clone()))]);
    file.described_by = ["h-file".to_string(), file.described_by].join(" ").trim().to_string();
    let mut fields = vec![file];
    fields.extend(forms::inputs(app.m, Section::Documents, &specs(), &d.values, &d.errors));
    let has_errors = !d.errors.is_empty() || d.general.is_some();
    let p = FilePage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("upload-title"), "/s/documents"),
        intro: Some(app.m.with("upload-intro", &[("limit", Arg::Text(limit))])),
        action: UPLOAD.into(),
        cancel: "/s/documents".into(),
        fields,
        general: d.general,
        has_errors,
        submit: app.m.get("upload-submit"),
        upload: true,
        export: None,
        form_heading: String::new(),
    };
    html(d.status.unwrap_or(StatusCode::OK), &p)
}

/// The limit as people read it ("100 MB").
pub fn limit_words(app: &App) -> String {
    people::size(app.m, UPLOAD_LIMIT)
}

/// Whether the request says it is larger than `limit` before anything is read.
pub fn declared_over(headers: &HeaderMap, limit: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

/// `POST /documents/upload`: the file streamed to a private temporary file, then sealed into
/// the blob store with a new documents entry referencing it, in one signed change.
pub async fn upload(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let too_large = |app: Arc<App>, who: SignedIn| async move {
        let text = app
            .m
            .with("upload-too-large", &[("limit", Arg::Text(limit_words(&app)))]);
        let d = Drawn::refused(
            &Submitted(Vec::new()),
            Some("file".into()),
            text,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        app.blocking(move |app| draw(app, &who, d)).await
    };
    if declared_over(&headers, UPLOAD_LIMIT) {
        return too_large(app, who).await;
    }
    let home = app.replica.lock().home().to_path_buf();
    let received = match upload::receive(form, &home, UPLOAD_LIMIT).await {
        Ok(r) => r,
        Err(Refused::TooLarge) => return too_large(app, who).await,
        Err(Refused::Broken(why)) => {
            tracing::info!("portal: an upload was not a whole form: {why}");
            return super::refused(&app, StatusCode::BAD_REQUEST, "upload-broken");
        }
        Err(Refused::Disk(e)) => {
            tracing::error!("portal: an upload could not be written: {e}");
            return super::failure(&app);
        }
    };
    if let Some(r) = guard::without_token(&app, &who, &received.fields) {
        return r;
    }
    let d = match store(&app, received).await {
        Ok(Ok(id)) => return super::see_other(&format!("/s/documents/{id}")),
        Ok(Err(d)) => d,
        Err(e) => {
            tracing::error!("portal: {e}");
            return super::failure(&app);
        }
    };
    app.blocking(move |app| draw(app, &who, d)).await
}

/// Seal the received file and add its entry; the new entry's id, or the form to draw again.
async fn store(app: &App, received: upload::Received) -> Result<Result<String, Drawn>, Error> {
    let sent = received.fields;
    let refuse =
        |at: Option<String>, text: String| Ok(Err(Drawn::refused(&sent, at, text, StatusCode::UNPROCESSABLE_ENTITY)));
    if !Rights::of(&app.replica.lock()).adds(Section::Documents) {
        return refuse(None, app.m.get("form-not-allowed"));
    }
    let Some(file) = received.file else {
        return refuse(Some("file".into()), app.m.get("upload-no-file"));
    };
    let (pairs, _) = forms::pairs(&specs(), &sent, None);
    let fields = match entry::parse_fields(Section::Documents, &pairs) {
        Ok(f) => f,
        Err(e) => {
            let (at, text) = forms::place(&e);
            return refuse(at, text);
        }
    };
    let blobs = app.blobs().await?;
    let req = AttachRequest {
        path: file.path.clone(),
        section: Section::Documents,
        to: None,
        fields,
        // A browser's guess of "bytes of some kind" says less than the file's extension.
        media_type: file
            .media_type
            .clone()
            .filter(|m| !m.trim().is_empty() && m != "application/octet-stream" && m.len() <= 255),
        name: Some(kept_name(&file.name)),
    };
    match attachment::attach(&app.replica, &blobs, req, Arc::new(|_| {})).await {
        Ok(done) => Ok(Ok(done.id)),
        Err(e @ (phr_engine::Error::InvalidField { .. } | phr_engine::Error::Attachment(_))) => {
            let (at, text) = forms::place(&e);
            refuse(at.or(Some("file".into())), text)
        }
        Err(e) => Err(e.into()),
    }
}

/// The name the person's file had, as recorded: only its last part, cut to what the engine
/// keeps (shown and saved later through `download::safe_name`).
fn kept_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut end = base.len().min(255);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base[..end].to_string()
}

/// The entry's attached file as a link to download it, with its size and kind.
pub fn file_line(app: &App, e: &EntryView) -> Option<Line> {
    let a = attachment::of_fields(&e.fields)?;
    Some(Line {
        href: format!("/s/{}/{}/file", e.section.name(), e.id),
        title: app
            .m
            .with("entry-download", &[("name", Arg::Text(people::text(a.display_name())))]),
        detail: format!("{} · {}", people::size(app.m, a.size), people::text(&a.media_type)),
    })
}

/// `GET /s/{section}/{id}/file`: the entry's file, decrypted and checked whole into a private
/// temporary file (removed at once: the open file is what is sent), then streamed to be saved.
pub async fn file(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    match send_file(&app, &who, &name, &id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("portal: {e}");
            super::failure(&app)
        }
    }
}

async fn send_file(app: &App, who: &SignedIn, name: &str, id: &str) -> Result<Response, Error> {
    let found = {
        let device = app.replica.lock();
        let rights = Rights::of(&device);
        let section = super::readable(&rights, name).filter(|s| attachment::SECTIONS.contains(s));
        let found = match section {
            Some(s) if device.record().read_entry(s, id)?.is_some() => {
                attachment::find(device.record(), id, Some(s)).ok()
            }
            _ => None,
        };
        match found {
            Some(f) => (f, device.record().id(), device.home().join("portal-uploads")),
            None => return super::missing(app, who, &rights),
        }
    };
    let (found, record, dir) = found;
    let a = found.attachment;
    let blobs = app.blobs().await?;
    if !matches!(blobs.held(&a.blob).await?, Held::Complete(_)) {
        return Ok(super::refused(app, StatusCode::CONFLICT, "download-not-here"));
    }
    phr_engine::private_file::create_dir(&dir).map_err(phr_engine::Error::from)?;
    let temp = dir.join(format!("{}.open", crate::sessions::secret()?));
    let opened = blobs.open_to(&a, &record, &temp, Arc::new(|_| {})).await;
    let file = opened.and_then(|()| std::fs::File::open(&temp).map_err(phr_engine::Error::from));
    // The open file is what is sent; its name is gone at once, whatever happened.
    let _ = std::fs::remove_file(&temp);
    match file {
        Ok(f) => Ok(download::file(
            tokio::fs::File::from_std(f),
            a.size,
            &a.media_type,
            a.display_name(),
        )),
        Err(e @ phr_engine::Error::AttachmentDamaged(_)) => {
            tracing::error!("portal: {e}");
            // A damaged copy is dropped so the next sync fetches an intact one (as `phr open`).
            let _ = blobs.forget(&a.blob).await;
            Ok(super::refused(app, StatusCode::CONFLICT, "download-damaged"))
        }
        Err(e) => Err(e.into()),
    }
}
