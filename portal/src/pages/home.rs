//! The home page: whose record it is, upcoming appointments, recent notes and messages, goals
//! at a glance (each only where this home may read it).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
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
use crate::templates::{HomeBlock, HomePage, Line, Link};

/// `GET /`.
pub async fn show(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw(app, &who)).await
}

fn draw(app: &App, who: &SignedIn) -> Result<Response, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    let name = patient_name(&device);
    let title = match &name {
        Some(n) => app.m.with("home-title", &[("name", Arg::Text(n.clone()))]),
        None => app.m.get("home-unnamed"),
    };
    let mut blocks = Vec::new();
    let parts: [(Section, &'static str, &str, &str, Picker); 4] = [
        (
            Section::Appointments,
            "upcoming",
            "home-upcoming",
            "home-upcoming-none",
            upcoming,
        ),
        (Section::Notes, "notes", "home-notes", "home-notes-none", recent_notes),
        (
            Section::Messages,
            "messages",
            "home-messages",
            "home-messages-none",
            recent_messages,
        ),
        (Section::Goals, "goals", "home-goals", "home-goals-none", goals),
    ];
    for (section, id, heading, empty, pick) in parts {
        if !rights.reads(section) {
            continue;
        }
        let entries = device.record().list(section)?;
        blocks.push(HomeBlock {
            id,
            heading: app.m.get(heading),
            empty: app.m.get(empty),
            lines: pick(app, entries),
            all_href: format!("/s/{}", section.name()),
        });
    }
    let page = super::page(app, Some(who), Some(&rights), title, "/");
    let places = super::places(app, &rights, "/");
    let n = super::conflicts::count(&device, &rights);
    let conflicts = (n > 0).then(|| Link {
        href: super::conflicts::PATH.into(),
        label: app.m.with("home-conflicts", &[("count", Arg::Number(n as f64))]),
        current: false,
    });
    html(
        StatusCode::OK,
        &HomePage {
            page,
            blocks,
            places,
            conflicts,
        },
    )
}

type Picker = fn(&App, Vec<EntryView>) -> Vec<Line>;

/// The patient's name from the profile, once it has synced.
fn patient_name(device: &Device) -> Option<String> {
    let e = device
        .record()
        .read_entry(Section::Profile, phr_engine::entry::PATIENT_ENTRY)
        .ok()??;
    e.fields.get("name").and_then(Value::as_str).map(people::text)
}

fn text<'a>(e: &'a EntryView, field: &str) -> &'a str {
    e.fields.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn line(e: &EntryView, title: String, detail: String) -> Line {
    Line {
        href: format!("/s/{}/{}", e.section.name(), e.id),
        title,
        detail,
    }
}

/// Appointments from now on that are not cancelled or done, soonest first.
fn upcoming(app: &App, mut entries: Vec<EntryView>) -> Vec<Line> {
    let now = chrono::Local::now()
        .naive_local()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    entries.retain(|e| text(e, "start") >= now.as_str() && !matches!(text(e, "status"), "cancelled" | "completed"));
    entries.sort_by(|a, b| text(a, "start").cmp(text(b, "start")));
    entries
        .iter()
        .take(5)
        .map(|e| {
            let when = people::datetime(text(e, "start"));
            let status = people::choice(app.m, text(e, "status"));
            line(e, people::text(text(e, "reason")), format!("{when} · {status}"))
        })
        .collect()
}

/// The three latest session notes.
fn recent_notes(app: &App, mut entries: Vec<EntryView>) -> Vec<Line> {
    entries.sort_by(|a, b| text(b, "date").cmp(text(a, "date")));
    entries
        .iter()
        .take(3)
        .map(|e| {
            let title = format!(
                "{} · {}",
                people::choice(app.m, text(e, "discipline")),
                people::text(text(e, "clinician"))
            );
            line(e, title, people::date(text(e, "date")))
        })
        .collect()
}

/// The three latest messages.
fn recent_messages(_: &App, mut entries: Vec<EntryView>) -> Vec<Line> {
    entries.sort_by(|a, b| b.created.cmp(&a.created));
    entries
        .iter()
        .take(3)
        .map(|e| {
            let body: String = text(e, "body").chars().take(100).collect();
            line(e, people::text(text(e, "thread")), people::text(&body))
        })
        .collect()
}

/// Active goals with their latest measure.
fn goals(app: &App, entries: Vec<EntryView>) -> Vec<Line> {
    entries
        .iter()
        .filter(|e| matches!(text(e, "status"), "" | "active"))
        .map(|e| line(e, people::text(text(e, "goal")), goal_progress(app, e)))
        .collect()
}

fn goal_progress(app: &App, e: &EntryView) -> String {
    let latest = e
        .fields
        .get("progress")
        .and_then(Value::as_array)
        .and_then(|p| p.iter().max_by(|a, b| a["date"].as_str().cmp(&b["date"].as_str())))
        .and_then(|p| p["value"].as_f64());
    let unit = Arg::Text(people::text(text(e, "unit")));
    match (latest, e.fields.get("target").and_then(Value::as_f64)) {
        (None, _) => app.m.get("home-goal-none"),
        (Some(v), Some(target)) => app.m.with(
            "home-goal-progress",
            &[
                ("value", Arg::Text(people::number(v))),
                ("target", Arg::Text(people::number(target))),
                ("unit", unit),
            ],
        ),
        (Some(v), None) => app.m.with(
            "home-goal-latest",
            &[("value", Arg::Text(people::number(v))), ("unit", unit)],
        ),
    }
}
