//! Correcting a session note: notes are never rewritten; a correction is added with the
//! original kept.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::Section;

use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::SignedIn;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::FormPage;

/// `GET /s/notes/{id}/amend`.
pub async fn form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
) -> Response {
    super::action::show(app, who, path, submit).await
}

/// `POST /s/notes/{id}/amend`.
pub async fn amend(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::take(app, who, path, sent, submit).await
}

fn submit(app: &App, who: &SignedIn, name: &str, id: &str, sent: Option<Submitted>) -> Result<Response, Error> {
    let rights = match super::action::allowed(app, who, (name, id), Section::Notes, Rights::amends)? {
        Ok(rights) => rights,
        Err(page) => return Ok(page),
    };
    let Some(sent) = sent else {
        return draw(app, who, &rights, id, &Submitted::default(), None);
    };
    let text = sent.text("text");
    let reason = sent.text("reason");
    let reason = Some(reason.trim()).filter(|r| !r.is_empty());
    match app.replica.write(|r| r.amend_note(id, &text, reason)) {
        Ok(()) => Ok(super::see_other(&format!("/s/notes/{id}"))),
        Err(e) => draw(app, who, &rights, id, &sent, Some(forms::place(&e).1)),
    }
}

fn draw(
    app: &App,
    who: &SignedIn,
    rights: &Rights,
    id: &str,
    sent: &Submitted,
    error: Option<String>,
) -> Result<Response, Error> {
    let has_errors = error.is_some();
    let fields = vec![
        forms::plain(
            "text",
            app.m.get("form-amend-text"),
            "textarea",
            sent.text("text"),
            true,
            error,
        ),
        forms::plain(
            "reason",
            app.m.get("form-amend-reason"),
            "text",
            sent.text("reason"),
            false,
            None,
        ),
    ];
    let p = FormPage {
        page: super::page(app, Some(who), Some(rights), app.m.get("form-amend-title"), "/s/notes"),
        intro: Some(app.m.get("entry-original-kept")),
        action: format!("/s/notes/{id}/amend"),
        cancel: format!("/s/notes/{id}"),
        fields,
        general: None,
        has_errors,
    };
    let status = if has_errors {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(status, &p)
}
