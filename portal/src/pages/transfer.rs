//! Import / export: the record out as a FHIR R4 Bundle (the same bundle as
//! `phr export --format fhir`), and a bundle from elsewhere in, with what was mapped and what
//! was not (the engine's import summary). A bundle that cannot be read changes nothing and says
//! why beside the file field.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::Section;
use phr_engine::fhir::{self, ImportReport};

use crate::download;
use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Choice, ExportForm, FilePage, ImportRow, ImportedPage, Line};
use crate::upload::{self, Refused};

/// Where a bundle is sent.
pub const IMPORT: &str = "/transfer/import";

/// The largest bundle taken: it is read whole (JSON), so it has a limit of its own, below the
/// upload routes' body limit.
const BUNDLE_LIMIT: u64 = 20 * 1024 * 1024;

/// `GET /transfer`.
pub async fn page(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw(app, &who, None, false, StatusCode::OK))
        .await
}

/// Only the patient's own devices import and export the whole record.
fn allowed(app: &App) -> Option<Rights> {
    let rights = Rights::of(&app.replica.lock());
    rights.owns().then_some(rights)
}

/// The page: export, then the import form (with `error` beside its file field).
fn draw(app: &App, who: &SignedIn, error: Option<String>, check: bool, status: StatusCode) -> Result<Response, Error> {
    let Some(rights) = allowed(app) else {
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    };
    let limit = people::size(app.m, BUNDLE_LIMIT);
    let mut file = forms::plain("file", app.m.get("import-file"), "file", String::new(), true, error);
    file.hint = app.m.with("import-file-hint", &[("limit", Arg::Text(limit))]);
    file.described_by = format!("h-file {}", file.described_by).trim().to_string();
    let mut dry = forms::plain(
        "check",
        app.m.get("import-check"),
        "select",
        if check { "yes" } else { "no" }.into(),
        false,
        None,
    );
    dry.options = [("no", "import-check-no"), ("yes", "import-check-yes")]
        .into_iter()
        .map(|(v, id)| Choice {
            selected: dry.value == v,
            value: v.into(),
            label: app.m.get(id),
        })
        .collect();
    let has_errors = file.error.is_some();
    let p = FilePage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("transfer-title"), "/transfer"),
        intro: None,
        action: IMPORT.into(),
        cancel: "/".into(),
        fields: vec![file, dry],
        general: None,
        has_errors,
        submit: app.m.get("import-submit"),
        upload: true,
        export: Some(ExportForm {
            heading: app.m.get("export-heading"),
            text: app.m.get("export-text"),
            action: "/transfer/export".into(),
            button: app.m.get("export-submit"),
        }),
        form_heading: app.m.get("import-heading"),
    };
    html(status, &p)
}

/// `POST /transfer/export`: the whole record as a FHIR R4 Bundle to save, the disclosure
/// recorded first.
pub async fn export(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = guard::without_token(&app, &who, &Submitted(sent)).or_else(|| guard::sensitive(&who, "/transfer"))
    {
        return r;
    }
    app.blocking(|app| {
        if allowed(app).is_none() {
            return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
        }
        let exported = {
            let device = app.replica.lock();
            // Wall-clock times go out in this device's zone, as `phr export` writes them.
            let local = |t| fhir::offset_at(&chrono::Local, t);
            fhir::export_bundle(device.record(), device.access(), &Section::ALL, fhir::Zone::new(&local))?
        };
        let text = serde_json::to_vec_pretty(&exported.bundle)
            .map_err(|_| phr_engine::Error::internal("the FHIR bundle would not encode"))?;
        let detail = "exported the record as a FHIR bundle, downloaded from the portal";
        app.replica.write(|r| r.audit("export", detail, None, &Section::ALL))?;
        let today = chrono::Local::now().date_naive();
        Ok(download::bytes(
            text,
            "application/fhir+json",
            &format!("record-fhir-{today}.json"),
        ))
    })
    .await
}

/// `POST /transfer/import`: the bundle read (bounded), mapped, and imported (or only checked).
pub async fn import(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let refuse = |app: Arc<App>, who: SignedIn, text: String, status: StatusCode| async move {
        app.blocking(move |app| draw(app, &who, Some(text), false, status))
            .await
    };
    let too_large = app.m.with(
        "upload-too-large",
        &[("limit", Arg::Text(people::size(app.m, BUNDLE_LIMIT)))],
    );
    if super::documents::declared_over(&headers, upload::UPLOAD_LIMIT) {
        return refuse(app, who, too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    let home = app.replica.lock().home().to_path_buf();
    let received = match upload::receive(form, &home, BUNDLE_LIMIT).await {
        Ok(r) => r,
        Err(Refused::TooLarge) => return refuse(app, who, too_large, StatusCode::PAYLOAD_TOO_LARGE).await,
        Err(Refused::Broken(_)) => return super::refused(&app, StatusCode::BAD_REQUEST, "upload-broken"),
        Err(Refused::Disk(e)) => {
            tracing::error!("portal: an upload could not be written: {e}");
            return super::failure(&app);
        }
    };
    if let Some(r) = guard::without_token(&app, &who, &received.fields) {
        return r;
    }
    app.blocking(move |app| take(app, &who, received)).await
}

/// Read, map and import (or check) the received bundle.
fn take(app: &App, who: &SignedIn, received: upload::Received) -> Result<Response, Error> {
    let check = received.fields.get("check") == Some("yes");
    let Some(file) = received.file else {
        return draw(
            app,
            who,
            Some(app.m.get("upload-no-file")),
            check,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    if allowed(app).is_none() {
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    }
    let refused = |text: String| draw(app, who, Some(text), check, StatusCode::UNPROCESSABLE_ENTITY);
    let Ok(text) = std::fs::read_to_string(&file.path) else {
        return refused(app.m.get("import-not-text"));
    };
    let origin = crate::download::safe_name(&file.name);
    let report = fhir::read_bundle(&text).and_then(|mapped| {
        if check {
            mapped.preview(app.replica.lock().record())
        } else {
            app.replica.write(|r| mapped.import(r, &origin))
        }
    });
    match report {
        Ok(report) => shown(app, who, &origin, &report, check),
        Err(e) => refused(
            app.m
                .with("import-refused", &[("why", Arg::Text(people::text(&e.to_string())))]),
        ),
    }
}

/// What the import did, or would do.
fn shown(app: &App, who: &SignedIn, origin: &str, report: &ImportReport, check: bool) -> Result<Response, Error> {
    let rights = Rights::of(&app.replica.lock());
    let n = |x: usize| people::number(x as f64);
    let rows = report
        .sections
        .iter()
        .map(|(section, c)| ImportRow {
            section: people::section(app.m, *section),
            created: n(c.created),
            updated: n(c.updated),
            unchanged: n(c.unchanged),
        })
        .collect();
    let kept: usize = report.sections.values().map(|c| c.kept).sum();
    let outcome = match (check, report.written) {
        (true, _) => "import-checked",
        (false, true) => "import-done",
        (false, false) => "import-nothing-new",
    };
    let about = app.m.with(
        "import-about",
        &[
            ("file", Arg::Text(people::text(origin))),
            ("count", Arg::Number(report.resources as f64)),
            ("kind", Arg::Text(people::text(&report.bundle_type))),
        ],
    );
    let unmapped = report
        .unmapped
        .iter()
        .map(|(kind, count)| Line {
            href: String::new(),
            title: people::text(kind),
            detail: app
                .m
                .with("import-unmapped-count", &[("count", Arg::Number(*count as f64))]),
        })
        .collect();
    let p = ImportedPage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("import-title"), "/transfer"),
        outcome: app.m.get(outcome),
        about,
        rows,
        kept: (kept > 0).then(|| app.m.with("import-kept", &[("count", Arg::Number(kept as f64))])),
        unmapped,
    };
    html(StatusCode::OK, &p)
}
