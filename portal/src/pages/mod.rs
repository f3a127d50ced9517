//! The pages: each module draws one kind of page from the record, and handles its form.

pub mod action;
pub mod activity;
pub mod auth;
pub mod confirm;
pub mod conflicts;
pub mod devices;
pub mod documents;
pub mod edit;
pub mod entry;
pub mod goal;
pub mod home;
pub mod list;
pub mod medication;
pub mod messages;
pub mod note;
pub mod offer;
pub mod reports;
pub mod share_form;
pub mod sharing;
pub mod transfer;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_engine::Section;
use phr_engine::entry::FieldKind;
use phr_engine::record::EntryView;
use serde_json::Value;

use crate::error::Error;
use crate::guard::SignedIn;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Link, MessagePage, Page};

/// The frame of a page: for a signed-in person with navigation (`current` marked).
pub fn page(app: &App, who: Option<&SignedIn>, rights: Option<&Rights>, title: String, current: &str) -> Page {
    let mut nav = Vec::new();
    if let (Some(_), Some(rights)) = (who, rights) {
        nav.push(Link {
            href: "/".into(),
            label: app.m.get("nav-home"),
            current: current == "/",
        });
        if rights.reads(Section::Profile) {
            let href = format!("/s/profile/{}", phr_engine::entry::PATIENT_ENTRY);
            nav.push(Link {
                current: current == href || current == "/s/profile",
                label: people::section(app.m, Section::Profile),
                href,
            });
        }
        for s in rights.listed() {
            // Messages are read by thread, at their own place.
            let href = match s {
                Section::Messages => messages::PATH.to_string(),
                _ => format!("/s/{}", s.name()),
            };
            nav.push(Link {
                current: current == href,
                label: people::section(app.m, s),
                href,
            });
        }
        // Documents are listed with the sections already.
        nav.extend(
            places(app, rights, current)
                .into_iter()
                .filter(|l| !l.href.starts_with("/s/")),
        );
        nav.extend(access_links(app, rights, current));
    }
    let idle = app.sessions.idle();
    Page {
        m: app.m,
        lang: "en",
        title,
        signed_in: who.is_some(),
        csrf: who.map(|w| w.csrf.clone()).unwrap_or_default(),
        nav,
        idle_seconds: idle.as_secs(),
        session_ends: session_ends(app, idle),
    }
}

/// The places for files: documents (where this home reads them), then reports and import /
/// export (on the patient's own devices).
pub fn places(app: &App, rights: &Rights, current: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut place = |yes: bool, href: &str, id: &str| {
        if yes {
            out.push(Link {
                href: href.into(),
                label: app.m.get(id),
                current: current == href,
            });
        }
    };
    place(rights.reads(Section::Documents), "/s/documents", "nav-documents");
    place(rights.owns(), "/reports", "nav-reports");
    place(rights.owns(), "/transfer", "nav-transfer");
    out
}

/// The navigation to sharing, devices and the activity log, as far as this home may see them.
fn access_links(app: &App, rights: &Rights, current: &str) -> Vec<Link> {
    let mut shown = Vec::new();
    if rights.shares() {
        shown.extend([("/sharing", "nav-sharing"), ("/devices", "nav-devices")]);
    }
    if rights.sees_activity() {
        shown.push(("/activity", "nav-activity"));
    }
    shown
        .into_iter()
        .map(|(href, id)| Link {
            current: current == href,
            label: app.m.get(id),
            href: href.into(),
        })
        .collect()
}

/// "If you do nothing, you will be signed out at …", from now.
fn session_ends(app: &App, idle: std::time::Duration) -> String {
    let at = chrono::Utc::now()
        .timestamp()
        .saturating_add(i64::try_from(idle.as_secs()).unwrap_or(i64::MAX / 2));
    app.m
        .with("idle-ends", &[("when", crate::i18n::Arg::Text(people::unix(at)))])
}

/// A refusal page with `status` and message `id` (no navigation: the person may not be in).
pub fn refused(app: &App, status: StatusCode, id: &str) -> Response {
    let draw = || {
        let p = MessagePage {
            page: page(app, None, None, app.m.get("error-title"), ""),
            text: app.m.get(id),
            link: None,
        };
        html(status, &p)
    };
    draw().unwrap_or_else(|_| (status, app.m.get(id)).into_response())
}

/// The page for a failure of the record or of phr itself (500).
pub fn failure(app: &App) -> Response {
    refused(app, StatusCode::INTERNAL_SERVER_ERROR, "error-internal")
}

/// Any address the portal does not serve.
pub async fn not_found(axum::extract::State(app): axum::extract::State<std::sync::Arc<App>>) -> Response {
    refused(&app, StatusCode::NOT_FOUND, "error-not-found")
}

/// The section a path names, if the portal shows it to this home.
pub fn readable(rights: &Rights, name: &str) -> Option<Section> {
    name.parse::<Section>().ok().filter(|s| rights.reads(*s))
}

/// "See other": where a browser goes after a form was saved.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// The not-found page, signed in.
pub fn missing(app: &App, who: &SignedIn, rights: &Rights) -> Result<Response, Error> {
    let p = MessagePage {
        page: page(app, Some(who), Some(rights), app.m.get("error-title"), ""),
        text: app.m.get("entry-not-found"),
        link: Some(Link {
            href: "/".into(),
            label: app.m.get("error-back-home"),
            current: false,
        }),
    };
    html(StatusCode::NOT_FOUND, &p)
}

/// The day an entry is about (a session's date, a medication's start), if it has one.
pub fn day(e: &EntryView) -> Option<&str> {
    let field = phr_engine::entry::day_field(e.section)?;
    e.fields
        .get(field)
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
}

/// An entry's title (its first field) and a line of detail (the next few, its day, its
/// status), as people read them.
pub fn summary(app: &App, e: &EntryView) -> (String, String) {
    let specs = phr_engine::entry::fields(e.section);
    let mut shown = specs
        .iter()
        // A bare number (minutes, a range's end) says little without its label.
        .filter(|s| !matches!(s.kind, FieldKind::List | FieldKind::Items(_) | FieldKind::Number))
        .filter_map(|s| e.fields.get(s.name).map(|v| people::value(app.m, Some(s.kind), v)))
        .filter(|v| !v.is_empty());
    let title = shown.next().unwrap_or_else(|| people::text(&e.id));
    let mut detail: Vec<String> = shown.take(3).map(|v| first_line(&v)).collect();
    if let Some(status) = e.fields.get("status").and_then(Value::as_str) {
        let status = people::choice(app.m, status);
        if !detail.contains(&status) && title != status {
            detail.push(status);
        }
    }
    (first_line(&title), detail.join(" · "))
}

/// The first line of a text, cut at 120 characters.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}
