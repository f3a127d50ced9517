//! A goal's own parts of its page (the progress chart, drawn on the server as the printed
//! report draws it; its milestones; the short form to add a measurement), and recording a
//! goal's progress: a measured value on a day, with a note.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::entry::Goal;
use phr_engine::record::EntryView;
use phr_engine::{Section, entry};

use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{FormPage, GoalParts, Line};

/// The chart, milestones and short progress form of goal `e` (`progress`: whether this home
/// may add a measurement); `None` for an entry that is not a goal, or one that does not read
/// as one.
pub fn parts(app: &App, e: &EntryView, progress: bool) -> Option<GoalParts> {
    if e.section != Section::Goals {
        return None;
    }
    let mut goal = e.typed::<Goal>().ok()?;
    goal.progress.sort_by_key(|p| p.date);
    let milestones = goal
        .milestones
        .iter()
        .map(|m| Line {
            href: String::new(),
            title: people::text(&m.text),
            detail: milestone_state(app, m.done, m.due),
        })
        .collect();
    Some(GoalParts {
        chart: phr_report::chart(&goal).map(|c| phr_report::html::svg(&c)),
        milestones,
        quick: progress.then(|| format!("/s/goals/{}/progress", e.id)),
        today: chrono::Local::now().date_naive().to_string(),
        unit: goal.unit.as_deref().map(people::text).unwrap_or_default(),
    })
}

/// "Reached", or "Open, due 3 June 2024".
fn milestone_state(app: &App, done: bool, due: Option<chrono::NaiveDate>) -> String {
    match (done, due.map(|d| people::date(&d.to_string()))) {
        (true, _) => app.m.get("goal-milestone-reached"),
        (false, Some(day)) => app.m.with("goal-milestone-due", &[("date", Arg::Text(day))]),
        (false, None) => app.m.get("goal-milestone-open"),
    }
}

/// `GET /s/goals/{id}/progress`.
pub async fn form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
) -> Response {
    super::action::show(app, who, path, submit).await
}

/// `POST /s/goals/{id}/progress`.
pub async fn record(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(path): Path<(String, String)>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::take(app, who, path, sent, submit).await
}

fn submit(app: &App, who: &SignedIn, name: &str, id: &str, sent: Option<Submitted>) -> Result<Response, Error> {
    let rights = match super::action::allowed(app, who, (name, id), Section::Goals, Rights::logs_progress)? {
        Ok(rights) => rights,
        Err(page) => return Ok(page),
    };
    let Some(sent) = sent else {
        let today = chrono::Local::now().date_naive().to_string();
        let blank = Submitted(vec![("date".into(), today)]);
        return draw(app, who, &rights, id, &blank, Vec::new());
    };
    let value = sent.text("value");
    let Ok(number) = value.trim().parse::<f64>() else {
        return draw(
            app,
            who,
            &rights,
            id,
            &sent,
            vec![("value", app.m.get("form-not-a-number"))],
        );
    };
    let date = match entry::parse_date(&sent.text("date")) {
        Ok(d) => d,
        Err(e) => return draw(app, who, &rights, id, &sent, vec![("date", forms::place(&e).1)]),
    };
    let note = sent.text("note");
    let note = Some(note.trim()).filter(|n| !n.is_empty());
    match app.replica.write(|r| r.goal_progress(id, date, number, note)) {
        Ok(()) => Ok(super::see_other(&format!("/s/goals/{id}"))),
        Err(e) => draw(app, who, &rights, id, &sent, vec![("value", forms::place(&e).1)]),
    }
}

fn draw(
    app: &App,
    who: &SignedIn,
    rights: &Rights,
    id: &str,
    sent: &Submitted,
    errors: Vec<(&str, String)>,
) -> Result<Response, Error> {
    let error = |name: &str| errors.iter().find(|(n, _)| *n == name).map(|(_, e)| e.clone());
    let fields = vec![
        forms::plain(
            "value",
            app.m.get("form-progress-value"),
            "text",
            sent.text("value"),
            true,
            error("value"),
        ),
        forms::plain(
            "date",
            app.m.get("form-progress-date"),
            "date",
            sent.text("date"),
            true,
            error("date"),
        ),
        forms::plain(
            "note",
            app.m.get("form-progress-note"),
            "text",
            sent.text("note"),
            false,
            None,
        ),
    ];
    let p = FormPage {
        page: super::page(
            app,
            Some(who),
            Some(rights),
            app.m.get("form-progress-title"),
            "/s/goals",
        ),
        intro: None,
        action: format!("/s/goals/{id}/progress"),
        cancel: format!("/s/goals/{id}"),
        fields,
        general: None,
        has_errors: !errors.is_empty(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(status, &p)
}
