//! A section's entries, most recent first, with the way to add one where this home may.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use phr_engine::Section;

use crate::error::Error;
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Line, Link, ListPage};

/// `GET /s/{section}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(section): Path<String>,
) -> Response {
    app.blocking(move |app| draw(app, &who, &section)).await
}

fn draw(app: &App, who: &SignedIn, name: &str) -> Result<Response, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    let Some(section) = super::readable(&rights, name) else {
        return super::missing(app, who, &rights);
    };
    if section == Section::Messages {
        // Messages are read by thread.
        return Ok(super::see_other(super::messages::PATH));
    }
    let mut entries = device.record().list(section)?;
    entries.sort_by(|a, b| (super::day(b), &b.created).cmp(&(super::day(a), &a.created)));
    let rows = entries
        .iter()
        .map(|e| {
            let (title, mut detail) = super::summary(app, e);
            let by = app.m.with(
                "list-by",
                &[("name", Arg::Text(people::who(app.m, &device, &e.author)))],
            );
            detail = [detail, by]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · ");
            Line {
                href: format!("/s/{}/{}", section.name(), e.id),
                title,
                detail,
            }
        })
        .collect();
    let add = add_link(app, &rights, section);
    let count = app
        .m
        .with("list-count", &[("count", Arg::Number(entries.len() as f64))]);
    let href = format!("/s/{}", section.name());
    let page = super::page(app, Some(who), Some(&rights), people::section(app.m, section), &href);
    html(StatusCode::OK, &ListPage { page, count, add, rows })
}

/// "Add" (or "Request an appointment"), where this home may.
fn add_link(app: &App, rights: &Rights, section: Section) -> Option<Link> {
    if section == Section::Documents && rights.adds(section) {
        return Some(Link {
            href: "/documents/new".into(),
            label: app.m.get("list-upload"),
            current: false,
        });
    }
    let label = if rights.adds(section) {
        app.m
            .with("list-add", &[("section", Arg::Text(people::section(app.m, section)))])
    } else if rights.requests(section) {
        app.m.get("list-request")
    } else {
        return None;
    };
    Some(Link {
        href: format!("/s/{}/new", section.name()),
        label,
        current: false,
    })
}
