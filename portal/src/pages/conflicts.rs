//! Fields changed on two devices at once: both values, who wrote each and when, and the choice
//! of one, written as a new change that settles it (`Record::resolve`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::Device;
use phr_engine::record::{Conflict, HistoryItem};

use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{ConflictShown, ConflictsPage, Side};

/// Where the conflicts are listed.
pub const PATH: &str = "/conflicts";

/// `GET /conflicts`.
pub async fn show(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw(app, &who, None)).await
}

/// `POST /conflicts`: keep the value the person picked (`section`, `entry`, `field`, `pick`:
/// the value's place in the list shown).
pub async fn pick(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::posted(app, who, sent, settle).await
}

/// How many conflicts this home may see (for the home page's notice).
pub fn count(device: &Device, rights: &Rights) -> usize {
    device
        .record()
        .conflicts()
        .map(|all| all.iter().filter(|c| rights.reads(c.section)).count())
        .unwrap_or_default()
}

fn settle(app: &App, who: &SignedIn, sent: &Submitted) -> Result<Response, Error> {
    let wanted = |c: &&Conflict| {
        Some(c.section.name()) == sent.get("section")
            && Some(c.entry.as_str()) == sent.get("entry")
            && Some(c.field.as_str()) == sent.get("field")
    };
    let chosen = {
        let device = app.replica.lock();
        let rights = Rights::of(&device);
        let all = device.record().conflicts()?;
        let found = all.iter().find(wanted).filter(|c| settles(&rights, c));
        let at = sent.get("pick").and_then(|p| p.parse::<usize>().ok());
        found.and_then(|c| {
            Some((
                c.section,
                c.entry.clone(),
                c.field.clone(),
                c.values.get(at?)?.value.clone(),
            ))
        })
    };
    let Some((section, id, field, value)) = chosen else {
        // Settled meanwhile (on this or another device), or never offered: show what is left.
        return draw(app, who, Some(app.m.get("conflicts-gone")));
    };
    match app.replica.write(|r| r.resolve(section, &id, &field, value)) {
        Ok(()) => Ok(super::see_other(PATH)),
        Err(e) => draw(app, who, Some(crate::forms::place(&e).1)),
    }
}

/// Whether this home may settle `c`: it changes the entry's section, and the field is one of
/// the entry's own (not a part of a list or item inside it).
fn settles(rights: &Rights, c: &Conflict) -> bool {
    rights.edits(c.section) && !c.field.contains('.') && c.field != "(whole entry)"
}

fn draw(app: &App, who: &SignedIn, problem: Option<String>) -> Result<Response, Error> {
    let mut device = app.replica.lock();
    let rights = Rights::of(&device);
    let all: Vec<Conflict> = device
        .record()
        .conflicts()?
        .into_iter()
        .filter(|c| rights.reads(c.section))
        .collect();
    let history = device.record_mut().history(None);
    let mut shown = Vec::new();
    for c in &all {
        shown.push(one(app, &device, &rights, &history, c)?);
    }
    let p = ConflictsPage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("conflicts-title"), PATH),
        problem,
        conflicts: shown,
    };
    let status = if p.problem.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    html(status, &p)
}

fn one(
    app: &App,
    device: &Device,
    rights: &Rights,
    history: &[HistoryItem],
    c: &Conflict,
) -> Result<ConflictShown, Error> {
    let entry = device.record().read_entry(c.section, &c.entry)?;
    let title = entry
        .as_ref()
        .map(|e| super::summary(app, e).0)
        .unwrap_or_else(|| people::text(&c.entry));
    let top = c.field.split('.').next().unwrap_or_default();
    let kind = people::kind_of(c.section, top);
    let sides = c
        .values
        .iter()
        .map(|v| {
            let name = ("name", Arg::Text(people::who(app.m, device, &v.author)));
            let by = match when(history, c, &v.author) {
                Some(at) => app.m.with("conflicts-by-when", &[name, ("when", Arg::Text(at))]),
                None => app.m.with("conflicts-by", &[name]),
            };
            Side {
                value: people::value(app.m, kind, &v.value),
                by,
            }
        })
        .collect();
    Ok(ConflictShown {
        heading: app.m.with(
            "conflicts-heading",
            &[
                ("field", Arg::Text(people::label(app.m, c.section, top))),
                ("entry", Arg::Text(title)),
                ("section", Arg::Text(people::section(app.m, c.section))),
            ],
        ),
        href: format!("/s/{}/{}", c.section.name(), c.entry),
        section: c.section.name().to_string(),
        entry: c.entry.clone(),
        field: c.field.clone(),
        may_pick: settles(rights, c),
        sides,
    })
}

/// When `author` last changed the conflicting field: its latest change of the entry naming the
/// field, if the history says.
fn when(history: &[HistoryItem], c: &Conflict, author: &str) -> Option<String> {
    let top = c.field.split('.').next().unwrap_or_default();
    let about = |h: &&HistoryItem| {
        let mut words = h.message.split_whitespace();
        let (section, id) = (words.nth(1), words.next().map(|w| w.trim_end_matches(':')));
        let fields = h.message.split_once(": ").map(|(_, f)| f).unwrap_or_default();
        section == Some(c.section.name()) && id == Some(c.entry.as_str()) && fields.split(", ").any(|f| f == top)
    };
    history
        .iter()
        .rev()
        .filter(|h| h.author == author)
        .find(about)
        .map(|h| people::unix(h.time))
}
