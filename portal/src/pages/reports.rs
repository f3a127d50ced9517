//! Reports: the printable summary for a school's IEP team, a specialist or an insurer, as a PDF
//! or an HTML page, downloaded (the same `phr-report` calls as `phr report`), with the
//! disclosure recorded in the activity log before the file leaves.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::NaiveDate;
use phr_engine::summary::{Audience, Options};
use phr_report::Format;

use crate::download;
use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::{self, SignedIn};
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Choice, FilePage, Input};

/// `GET /reports`.
pub async fn form(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw(app, &who, &Submitted(Vec::new()), HashMap::new(), StatusCode::OK))
        .await
}

/// `POST /reports`: the report as a file to save, or the form with what is wrong.
pub async fn download(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| make(app, &who, &sent)).await
}

/// Only the patient's own devices print reports: a grant holder sees part of the record.
fn allowed(app: &App) -> Option<Rights> {
    let rights = Rights::of(&app.replica.lock());
    rights.owns().then_some(rights)
}

fn make(app: &App, who: &SignedIn, sent: &Submitted) -> Result<Response, Error> {
    if allowed(app).is_none() {
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    }
    let today = chrono::Local::now().date_naive();
    let (opts, format) = match read(app, sent, today) {
        Ok(chosen) => chosen,
        Err(errors) => return draw(app, who, sent, errors, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let summary = {
        let device = app.replica.lock();
        phr_report::summarize(device.record(), device.access(), &opts)
    };
    let rendered = summary.and_then(|s| phr_report::render(&phr_report::document(&s), format).map(|r| (s, r)));
    let (summary, rendered) = match rendered {
        Ok(done) => done,
        Err(e) => {
            let errors = HashMap::from([("audience".to_string(), crate::people::text(&e.to_string()))]);
            return draw(app, who, sent, errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let detail = summary.disclosure("downloaded from the portal");
    // Recorded first: a report never leaves the device unrecorded.
    app.replica
        .write(|r| r.audit("export", &detail, None, &opts.sections()))?;
    let (ext, media) = match format {
        Format::Pdf => ("pdf", "application/pdf"),
        Format::Html => ("html", "text/html"),
    };
    let name = format!("report-{}-{today}.{ext}", summary.audience);
    Ok(download::bytes(rendered.bytes, media, &name))
}

/// The audience, format and first day chosen, or the errors beside the fields.
fn read(app: &App, sent: &Submitted, today: NaiveDate) -> Result<(Options, Format), HashMap<String, String>> {
    let mut errors = HashMap::new();
    let audience = sent.text("audience").parse::<Audience>().ok();
    if audience.is_none() {
        errors.insert("audience".into(), app.m.get("report-choose-audience"));
    }
    let format = match sent.text("format").as_str() {
        "pdf" => Some(Format::Pdf),
        "html" => Some(Format::Html),
        _ => {
            errors.insert("format".into(), app.m.get("report-choose-format"));
            None
        }
    };
    let since = match sent.text("since").trim() {
        "" => None,
        raw => match phr_engine::entry::parse_date(raw) {
            Ok(d) if d > today => {
                errors.insert("since".into(), app.m.get("report-since-future"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.insert("since".into(), crate::people::text(&e.to_string()));
                None
            }
        },
    };
    // Immunizations go in a school's report only when the family chooses so.
    let with_immunizations = sent.text("immunizations") == "yes";
    if with_immunizations && audience.is_some_and(|a| a != Audience::Iep) {
        errors.insert("immunizations".into(), app.m.get("report-immunizations-iep-only"));
    }
    match (audience, format) {
        (Some(audience), Some(format)) if errors.is_empty() => Ok((
            Options {
                audience,
                since,
                today,
                with_immunizations,
            },
            format,
        )),
        _ => Err(errors),
    }
}

fn draw(
    app: &App,
    who: &SignedIn,
    sent: &Submitted,
    errors: HashMap<String, String>,
    status: StatusCode,
) -> Result<Response, Error> {
    let Some(rights) = allowed(app) else {
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    };
    let select = |name: &str, options: Vec<(&str, String)>| {
        let mut input = forms::plain(
            name,
            app.m.get(&format!("report-{name}")),
            "select",
            sent.text(name),
            true,
            errors.get(name).cloned(),
        );
        input.options = choices(&input, options);
        input
    };
    let audience = select(
        "audience",
        Audience::ALL
            .iter()
            .map(|a| (a.name(), app.m.get(&format!("report-for-{}", a.name()))))
            .collect(),
    );
    let mut audience = audience;
    audience.hint = app.m.get("report-audience-hint");
    audience.described_by = format!("h-audience {}", audience.described_by).trim().to_string();
    let format = select(
        "format",
        vec![("pdf", app.m.get("report-pdf")), ("html", app.m.get("report-html"))],
    );
    let mut immunizations = select(
        "immunizations",
        vec![
            ("no", app.m.get("report-immunizations-no")),
            ("yes", app.m.get("report-immunizations-yes")),
        ],
    );
    immunizations.required = false;
    immunizations.hint = app.m.get("report-immunizations-hint");
    immunizations.described_by = format!("h-immunizations {}", immunizations.described_by)
        .trim()
        .to_string();
    let mut since = forms::plain(
        "since",
        app.m.get("report-since"),
        "date",
        sent.text("since"),
        false,
        errors.get("since").cloned(),
    );
    since.hint = app.m.get("report-since-hint");
    since.described_by = format!("h-since {}", since.described_by).trim().to_string();
    let p = FilePage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("report-title"), "/reports"),
        intro: Some(app.m.get("report-intro")),
        action: "/reports".into(),
        cancel: "/".into(),
        has_errors: !errors.is_empty(),
        fields: vec![audience, format, immunizations, since],
        general: None,
        submit: app.m.get("report-submit"),
        upload: false,
        export: None,
        form_heading: String::new(),
    };
    html(status, &p)
}

/// A select's options, the one sent marked.
fn choices(input: &Input, options: Vec<(&str, String)>) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: input.value == value,
            value: value.to_string(),
            label,
        })
        .collect()
}
