//! One entry in full: its fields, who wrote it, corrections and progress, and its history
//! (who changed what, when), with the changes this home may make.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use phr_engine::record::EntryView;
use phr_engine::{Device, Section};
use serde_json::Value;

use crate::error::Error;
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Amendment, Change, EntryPage, Line, Link, Shown};

/// Keys shown in their own parts of the page, or not at all here.
const APART: [&str; 8] = [
    "amendments",
    "progress",
    "milestones",
    "author",
    "created",
    "updated",
    "source",
    "attachment",
];

/// `GET /s/{section}/{id}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path((section, id)): Path<(String, String)>,
) -> Response {
    app.blocking(move |app| draw(app, &who, &section, &id)).await
}

fn draw(app: &App, who: &SignedIn, name: &str, id: &str) -> Result<Response, Error> {
    let mut device = app.replica.lock();
    let rights = Rights::of(&device);
    let Some(section) = super::readable(&rights, name) else {
        return super::missing(app, who, &rights);
    };
    let Some(e) = device.record().read_entry(section, id)? else {
        return super::missing(app, who, &rights);
    };
    let (title, _) = super::summary(app, &e);
    let fields = in_spec_order(section, &e)
        .into_iter()
        .map(|(k, v)| Shown {
            label: people::label(app.m, section, k),
            value: people::value(app.m, people::kind_of(section, k), v),
        })
        .collect();
    let p = EntryPage {
        notice: (section == Section::Notes).then(|| app.m.get("entry-original-kept")),
        actions: actions(app, &rights, &e),
        fields,
        author: people::who(app.m, &device, &e.author),
        created: people::datetime(&e.created),
        updated: people::datetime(&e.updated),
        amendments: amendments(app, &device, &e),
        progress: progress(app, &device, &e),
        history: history(app, &mut device, section, id),
        back: format!("/s/{}", section.name()),
        file: super::documents::file_line(app, &e),
        goal: super::goal::parts(app, &e, rights.logs_progress(section)),
        page: super::page(app, Some(who), Some(&rights), title, &format!("/s/{}", section.name())),
    };
    html(StatusCode::OK, &p)
}

/// The entry's fields in the order its section's form has them, then any others it holds.
fn in_spec_order(section: Section, e: &EntryView) -> Vec<(&str, &Value)> {
    let mut keys: Vec<&str> = phr_engine::entry::fields(section).iter().map(|s| s.name).collect();
    let stored: Vec<String> = phr_engine::entry::fields(section)
        .iter()
        .map(phr_engine::entry::storage_key)
        .collect();
    keys.extend(
        e.fields
            .keys()
            .map(String::as_str)
            .filter(|k| !stored.iter().any(|s| s == k)),
    );
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let stored_key = stored.get(i).map(String::as_str).unwrap_or(key);
        if APART.contains(&stored_key) {
            continue;
        }
        if let Some((k, v)) = e.fields.get_key_value(stored_key) {
            out.push((k.as_str(), v));
        }
    }
    out
}

/// The changes this home may make to the entry.
fn actions(app: &App, rights: &Rights, e: &EntryView) -> Vec<Link> {
    let base = format!("/s/{}/{}", e.section.name(), e.id);
    let mut out = Vec::new();
    let mut offer = |yes: bool, path: &str, id: &str| {
        if yes {
            out.push(Link {
                href: format!("{base}/{path}"),
                label: app.m.get(id),
                current: false,
            });
        }
    };
    offer(rights.edits(e.section), "edit", "entry-edit");
    offer(rights.amends(e.section), "amend", "entry-amend");
    offer(rights.logs_progress(e.section), "progress", "entry-progress");
    let active = e.fields.get("status").and_then(Value::as_str) != Some("stopped");
    offer(
        e.section == Section::Medications && rights.edits(e.section) && active,
        "stop",
        "entry-stop",
    );
    out
}

fn items<'a>(e: &'a EntryView, key: &str) -> &'a [Value] {
    e.fields
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A note's corrections, oldest first, each with who wrote it and when.
fn amendments(app: &App, device: &Device, e: &EntryView) -> Vec<Amendment> {
    items(e, "amendments")
        .iter()
        .map(|a| Amendment {
            text: people::text(field(a, "text")),
            reason: people::text(field(a, "reason")),
            by: app.m.with(
                "entry-amended-by",
                &[
                    ("name", Arg::Text(people::who(app.m, device, field(a, "author")))),
                    ("when", Arg::Text(people::datetime(field(a, "at")))),
                ],
            ),
        })
        .collect()
}

/// A goal's measurements, latest first.
fn progress(app: &App, device: &Device, e: &EntryView) -> Vec<Line> {
    let mut all: Vec<&Value> = items(e, "progress").iter().collect();
    all.sort_by(|a, b| field(b, "date").cmp(field(a, "date")));
    all.into_iter()
        .map(|p| {
            let value = p["value"].as_f64().map(people::number).unwrap_or_default();
            let mut detail = vec![
                people::date(field(p, "date")),
                people::who(app.m, device, field(p, "author")),
            ];
            if !field(p, "note").is_empty() {
                detail.insert(0, people::text(field(p, "note")));
            }
            Line {
                href: String::new(),
                title: format!(
                    "{value} {}",
                    people::text(e.fields.get("unit").and_then(Value::as_str).unwrap_or_default())
                ),
                detail: detail.join(" · "),
            }
        })
        .collect()
}

/// The changes of the section that touched entry `id`, newest first, in plain words.
fn history(app: &App, device: &mut Device, section: Section, id: &str) -> Vec<Change> {
    let items = device.record_mut().history(Some(section));
    let mut out: Vec<Change> = items
        .into_iter()
        .filter(|h| h.message.split_whitespace().nth(2).map(|w| w.trim_end_matches(':')) == Some(id))
        .map(|h| Change {
            what: what(app, section, &h.message),
            who: people::who(app.m, device, &h.author),
            when: people::unix(h.time),
        })
        .collect();
    out.reverse();
    out
}

/// An engine change message (`edit medications ID: dose, schedule`) in plain words.
fn what(app: &App, section: Section, message: &str) -> String {
    let verb = message.split_whitespace().next().unwrap_or_default();
    let id = match verb {
        "add" | "edit" | "stop" | "amend" | "progress" | "resolve" => format!("history-{verb}"),
        _ => "history-other".into(),
    };
    let mut text = app.m.get(&id);
    if let Some((_, fields)) = message.split_once(": ") {
        let labels: Vec<String> = fields
            .split(", ")
            .map(|f| people::label(app.m, section, f.trim()))
            .collect();
        text = format!(
            "{text}. {}",
            app.m
                .with("history-fields", &[("fields", Arg::Text(labels.join(", ")))])
        );
    }
    text
}
