//! An action on one entry (amend a note, record a goal's progress, stop a medication): its form
//! (GET) and the form sent back (POST), behind the same checks, so each action's page holds only
//! what is its own.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use phr_engine::Section;

use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::rights::Rights;
use crate::server::App;

/// An action's page: its form when nothing was sent, else the form taken in (`name` and `id` are
/// the section and entry of the request's path).
pub type Submit = fn(&App, &SignedIn, &str, &str, Option<Submitted>) -> Result<Response, Error>;

/// `GET`: the action's form.
pub async fn show(app: Arc<App>, who: SignedIn, (name, id): (String, String), submit: Submit) -> Response {
    app.blocking(move |app| submit(app, &who, &name, &id, None)).await
}

/// `POST`: the form sent back, refused without its session's form token.
pub async fn take(
    app: Arc<App>,
    who: SignedIn,
    (name, id): (String, String),
    sent: Vec<(String, String)>,
    submit: Submit,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| submit(app, &who, &name, &id, Some(sent))).await
}

/// `POST` of a form that is not about one entry: refused without its session's form token,
/// else `handle`d on a blocking thread.
pub async fn posted<F>(app: Arc<App>, who: SignedIn, sent: Vec<(String, String)>, handle: F) -> Response
where
    F: FnOnce(&App, &SignedIn, &Submitted) -> Result<Response, Error> + Send + 'static,
{
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| handle(app, &who, &sent)).await
}

/// The home's rights when `name`/`id` is an entry of `section` and `may` lets this home act on
/// it; otherwise the page to answer with (not found, or not allowed).
pub fn allowed(
    app: &App,
    who: &SignedIn,
    (name, id): (&str, &str),
    section: Section,
    may: fn(&Rights, Section) -> bool,
) -> Result<Result<Rights, Response>, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    if name != section.name() || device.record().read_entry(section, id)?.is_none() {
        return super::missing(app, who, &rights).map(Err);
    }
    if !may(&rights, section) {
        return Ok(Err(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed")));
    }
    Ok(Ok(rights))
}
