//! Adding and changing entries with forms built from the engine's field specs; a refused save
//! shows the form again with the engine's words beside the field at fault.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::Section;
use phr_engine::entry::{self, FieldSpec};

use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::FormPage;

/// What a form is for.
enum Purpose {
    /// A new entry (`request`: only an appointment request).
    Add { request: bool },
    /// Changing entry `id`.
    Edit { id: String },
}

/// The fields a form offers: all of the section's, or a request's (no status).
fn specs(section: Section, request: bool) -> Vec<&'static FieldSpec> {
    entry::fields(section)
        .iter()
        .filter(|s| !(request && s.name == "status"))
        .collect()
}

/// `GET /s/{section}/new`.
pub async fn new_form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(section): Path<String>,
) -> Response {
    app.blocking(move |app| submit(app, &who, &section, None, None)).await
}

/// `POST /s/{section}/new`.
pub async fn add(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(section): Path<String>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| submit(app, &who, &section, None, Some(sent)))
        .await
}

/// `GET /s/{section}/{id}/edit`.
pub async fn edit_form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path((section, id)): Path<(String, String)>,
) -> Response {
    app.blocking(move |app| submit(app, &who, &section, Some(id), None))
        .await
}

/// `POST /s/{section}/{id}/edit`.
pub async fn save(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path((section, id)): Path<(String, String)>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| submit(app, &who, &section, Some(id), Some(sent)))
        .await
}

/// Draw the form (`sent` is `None`) or save what was sent: on success to the entry's page,
/// else the form again with the errors.
fn submit(
    app: &App,
    who: &SignedIn,
    name: &str,
    id: Option<String>,
    sent: Option<Submitted>,
) -> Result<Response, Error> {
    let (rights, purpose, before) = {
        let device = app.replica.lock();
        let rights = Rights::of(&device);
        let Some(section) = super::readable(&rights, name) else {
            return super::missing(app, who, &rights);
        };
        let purpose = match id {
            Some(id) if rights.edits(section) => Purpose::Edit { id },
            None if rights.adds(section) => Purpose::Add { request: false },
            None if rights.requests(section) => Purpose::Add { request: true },
            _ => return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed")),
        };
        let before = match &purpose {
            Purpose::Edit { id } => match device.record().read_entry(section, id)? {
                Some(e) => Some(
                    specs(section, false)
                        .iter()
                        .map(|s| {
                            (
                                s.name.to_string(),
                                forms::form_value(s, e.fields.get(&entry::storage_key(s))),
                            )
                        })
                        .collect::<HashMap<_, _>>(),
                ),
                None => return super::missing(app, who, &rights),
            },
            Purpose::Add { .. } => None,
        };
        (rights, (section, purpose), before)
    };
    let (section, purpose) = purpose;
    let request = matches!(purpose, Purpose::Add { request: true });
    let specs = specs(section, request);
    let Some(sent) = sent else {
        return draw(
            app,
            who,
            &rights,
            section,
            &purpose,
            &specs,
            before.unwrap_or_default(),
            HashMap::new(),
            None,
        );
    };
    let (mut pairs, cleared) = forms::pairs(&specs, &sent, before.as_ref());
    if request {
        pairs.push(("status".into(), "requested".into()));
    }
    let saved = forms::changes(section, &pairs, &cleared).and_then(|changes| match &purpose {
        Purpose::Add { .. } => app.replica.write(|r| r.add(section, changes)),
        Purpose::Edit { id } if changes.is_empty() => Ok(id.clone()),
        Purpose::Edit { id } => app.replica.write(|r| r.edit(section, id, changes)).map(|()| id.clone()),
    });
    match saved {
        Ok(id) => Ok(super::see_other(&format!("/s/{}/{id}", section.name()))),
        Err(e) => {
            let values = specs.iter().map(|s| (s.name.to_string(), sent.text(s.name))).collect();
            let (at, text) = forms::place(&e);
            let (errors, general) = match at {
                Some(f) if specs.iter().any(|s| s.name == f) => (HashMap::from([(f, text)]), None),
                _ => (HashMap::new(), Some(text)),
            };
            draw(app, who, &rights, section, &purpose, &specs, values, errors, general)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn draw(
    app: &App,
    who: &SignedIn,
    rights: &Rights,
    section: Section,
    purpose: &Purpose,
    specs: &[&FieldSpec],
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    general: Option<String>,
) -> Result<Response, Error> {
    let name = Arg::Text(people::section(app.m, section));
    let (title, action, cancel) = match purpose {
        Purpose::Add { request: true } => (
            app.m.get("form-request-title"),
            format!("/s/{}/new", section.name()),
            format!("/s/{}", section.name()),
        ),
        Purpose::Add { request: false } => (
            app.m.with("form-add-title", &[("section", name)]),
            format!("/s/{}/new", section.name()),
            format!("/s/{}", section.name()),
        ),
        Purpose::Edit { id } => (
            app.m.with("form-edit-title", &[("section", name)]),
            format!("/s/{}/{id}/edit", section.name()),
            format!("/s/{}/{id}", section.name()),
        ),
    };
    let has_errors = !errors.is_empty() || general.is_some();
    let p = FormPage {
        page: super::page(app, Some(who), Some(rights), title, &format!("/s/{}", section.name())),
        intro: None,
        action,
        cancel,
        fields: forms::inputs(app.m, section, specs, &values, &errors),
        general,
        has_errors,
    };
    let status = if has_errors {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(status, &p)
}
