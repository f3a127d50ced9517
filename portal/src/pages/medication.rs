//! Stopping a medication: it stays in the record, with the day it was stopped and why.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::{Section, entry};

use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::SignedIn;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::FormPage;

/// `GET /s/medications/{id}/stop`.
pub async fn form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
) -> Response {
    super::action::show(app, who, path, submit).await
}

/// `POST /s/medications/{id}/stop`.
pub async fn stop(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::take(app, who, path, sent, submit).await
}

fn submit(app: &App, who: &SignedIn, name: &str, id: &str, sent: Option<Submitted>) -> Result<Response, Error> {
    let rights = match super::action::allowed(app, who, (name, id), Section::Medications, Rights::edits)? {
        Ok(rights) => rights,
        Err(page) => return Ok(page),
    };
    let Some(sent) = sent else {
        let today = chrono::Local::now().date_naive().to_string();
        return draw(app, who, &rights, id, &Submitted(vec![("date".into(), today)]), None);
    };
    let date = match entry::parse_date(&sent.text("date")) {
        Ok(d) => d,
        Err(e) => return draw(app, who, &rights, id, &sent, Some(forms::place(&e).1)),
    };
    let reason = sent.text("reason");
    let reason = Some(reason.trim()).filter(|r| !r.is_empty());
    match app.replica.write(|r| r.stop_medication(id, date, reason)) {
        Ok(()) => Ok(super::see_other(&format!("/s/medications/{id}"))),
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
            "date",
            app.m.get("form-stop-date"),
            "date",
            sent.text("date"),
            true,
            error,
        ),
        forms::plain(
            "reason",
            app.m.get("form-stop-reason"),
            "text",
            sent.text("reason"),
            false,
            None,
        ),
    ];
    let p = FormPage {
        page: super::page(
            app,
            Some(who),
            Some(rights),
            app.m.get("form-stop-title"),
            "/s/medications",
        ),
        intro: Some(app.m.get("form-stop-kept")),
        action: format!("/s/medications/{id}/stop"),
        cancel: format!("/s/medications/{id}"),
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
