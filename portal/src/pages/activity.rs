//! `/activity`: the record's activity log (the audit section: shares, revocations, devices
//! joining and leaving, syncs, refused changes, exports), newest first, filtered by who and
//! what, with plain links (a GET form), so it works without JavaScript.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use phr_engine::Section;
use phr_engine::record::EntryView;
use serde_json::Value;

use crate::error::Error;
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::Choice;
use crate::templates::access::{ActivityPage, Event};

/// The kinds of event the engine writes, each with its words (`activity-kind-KIND`).
const KINDS: [&str; 9] = [
    "grant",
    "revoke",
    "join",
    "remove",
    "sync",
    "reject",
    "export",
    "import",
    "attachment",
];

/// `GET /activity?who=KEY&what=KIND`.
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.blocking(move |app| draw(app, &who, &q)).await
}

fn draw(app: &App, who: &SignedIn, q: &HashMap<String, String>) -> Result<Response, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    if !rights.sees_activity() {
        drop(device);
        return Ok(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed"));
    }
    let mut all = device.record().list(Section::Audit)?;
    all.sort_by(|a, b| b.created.cmp(&a.created));
    let by = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (want_who, want_what) = (by("who"), by("what"));
    // Everyone who wrote an event, named as the record names them.
    let authors: BTreeMap<String, String> = all
        .iter()
        .map(|e| (e.author.clone(), people::who(app.m, &device, &e.author)))
        .collect();
    let events: Vec<Event> = all
        .iter()
        .filter(|e| want_who.is_none_or(|w| e.author == w))
        .filter(|e| want_what.is_none_or(|w| kind(e) == w))
        .map(|e| Event {
            what: kind_words(app, kind(e)),
            when: people::datetime(&e.created),
            who: authors.get(&e.author).cloned().unwrap_or_default(),
            detail: e
                .fields
                .get("detail")
                .and_then(Value::as_str)
                .map(people::text)
                .unwrap_or_default(),
        })
        .collect();
    drop(device);
    let who_options = authors
        .into_iter()
        .map(|(key, name)| Choice {
            selected: want_who == Some(key.as_str()),
            value: key,
            label: name,
        })
        .collect();
    let what_options = KINDS
        .iter()
        .map(|k| Choice {
            value: (*k).into(),
            label: kind_words(app, k),
            selected: want_what == Some(*k),
        })
        .collect();
    let p = ActivityPage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("activity-title"), "/activity"),
        who: who_options,
        what: what_options,
        count: app
            .m
            .with("activity-count", &[("count", Arg::Number(events.len() as f64))]),
        events,
    };
    html(StatusCode::OK, &p)
}

/// An event's kind, as the engine wrote it.
fn kind(e: &EntryView) -> &str {
    e.fields.get("kind").and_then(Value::as_str).unwrap_or_default()
}

/// A kind in words (one the portal does not know, as written).
fn kind_words(app: &App, kind: &str) -> String {
    if KINDS.contains(&kind) {
        app.m.get(&format!("activity-kind-{kind}"))
    } else {
        people::text(kind)
    }
}
