//! Messages by thread: the threads (newest first), one thread's messages with who wrote each,
//! and the forms to reply or start a thread, written as `phr messages send` writes them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::record::EntryView;
use phr_engine::threads::{self, subject};
use phr_engine::{Device, Section};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::forms::{self, Submitted};
use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{Line, Said, ThreadPage, ThreadsPage};

/// Where the threads are listed.
pub const PATH: &str = "/messages";

/// `GET /messages`.
pub async fn list(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| draw_list(app, &who, &Submitted::default(), None))
        .await
}

/// `POST /messages`: a new thread (`thread`, `body`).
pub async fn start(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::posted(app, who, sent, |app, who, sent| {
        let subject = sent.text("thread");
        if subject.trim().is_empty() {
            let error = app.m.get("messages-needs-subject");
            return draw_list(app, who, sent, Some(("thread", error)));
        }
        match send(app, &subject, &sent.text("body")) {
            Ok(id) => Ok(super::see_other(&format!("{PATH}/{id}"))),
            Err(e) => draw_list(app, who, sent, Some(("body", forms::place(&e).1))),
        }
    })
    .await
}

/// `GET /messages/{id}`: the thread of message `id`.
pub async fn thread(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Response {
    app.blocking(move |app| draw_thread(app, &who, &id, &Submitted::default(), None))
        .await
}

/// `POST /messages/{id}`: a reply in the thread of message `id` (`body`).
pub async fn reply(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    super::action::posted(app, who, sent, move |app, who, sent| {
        let subject = {
            let device = app.replica.lock();
            match thread_of(&device, &id)? {
                Some(s) => s,
                None => return super::missing(app, who, &Rights::of(&device)),
            }
        };
        match send(app, &subject, &sent.text("body")) {
            Ok(_) => Ok(super::see_other(&format!("{PATH}/{id}"))),
            Err(e) => draw_thread(app, who, &id, sent, Some(forms::place(&e).1)),
        }
    })
    .await
}

/// Write a message in thread `subject`, signed as `phr messages send` signs it.
fn send(app: &App, subject: &str, body: &str) -> Result<String, phr_engine::Error> {
    let from = app.replica.lock().sender();
    let mut fields = Map::new();
    fields.insert("thread".into(), json!(subject.trim()));
    fields.insert("body".into(), json!(body.trim()));
    fields.insert("from".into(), json!(from));
    app.replica.write(|r| r.add(Section::Messages, fields))
}

/// The subject of the thread message `id` is in.
fn thread_of(device: &Device, id: &str) -> Result<Option<String>, Error> {
    let m = device.record().read_entry(Section::Messages, id)?;
    Ok(m.map(|m| subject(&m).to_string()))
}

fn draw_list(app: &App, who: &SignedIn, sent: &Submitted, error: Option<(&str, String)>) -> Result<Response, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    if !rights.reads(Section::Messages) {
        return super::missing(app, who, &rights);
    }
    let mut all = threads::threads(device.record())?;
    all.reverse();
    let rows = all
        .iter()
        .filter_map(|(s, msgs)| thread_line(app, &device, s, msgs))
        .collect();
    let err = |name: &str| error.as_ref().filter(|(n, _)| *n == name).map(|(_, e)| e.clone());
    let fields = vec![
        forms::plain(
            "thread",
            app.m.get("messages-subject"),
            "text",
            sent.text("thread"),
            true,
            err("thread"),
        ),
        forms::plain(
            "body",
            app.m.get("messages-body"),
            "textarea",
            sent.text("body"),
            false,
            err("body"),
        ),
    ];
    let p = ThreadsPage {
        page: super::page(
            app,
            Some(who),
            Some(&rights),
            people::section(app.m, Section::Messages),
            PATH,
        ),
        rows,
        may_write: rights.adds(Section::Messages),
        has_errors: error.is_some(),
        fields,
    };
    html(status(error.is_some()), &p)
}

fn status(refused: bool) -> StatusCode {
    if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// A thread in the list: its subject, how many messages, and the newest one's sender and time.
fn thread_line(app: &App, device: &Device, subject: &str, msgs: &[EntryView]) -> Option<Line> {
    let (first, newest) = (msgs.first()?, msgs.last()?);
    let count = app
        .m
        .with("messages-count", &[("count", Arg::Number(msgs.len() as f64))]);
    let last = app.m.with(
        "messages-latest",
        &[
            ("name", Arg::Text(sender(app, device, newest))),
            ("when", Arg::Text(people::datetime(&newest.created))),
        ],
    );
    Some(Line {
        href: format!("{PATH}/{}", first.id),
        title: title(app, subject),
        detail: format!("{count} · {last}"),
    })
}

fn title(app: &App, subject: &str) -> String {
    if subject.trim().is_empty() {
        app.m.get("messages-no-subject")
    } else {
        people::text(subject)
    }
}

/// Who a message is from: its `from` text, and the name of the key that wrote it when that
/// differs (the text is whatever the writer typed; the key is verified).
fn sender(app: &App, device: &Device, m: &EntryView) -> String {
    let author = people::who(app.m, device, &m.author);
    match m.fields.get("from").and_then(Value::as_str).map(str::trim) {
        Some(from) if !from.is_empty() && from != author && !from.ends_with(&format!(" via {author}")) => app.m.with(
            "messages-sent-by",
            &[("from", Arg::Text(people::text(from))), ("name", Arg::Text(author))],
        ),
        Some(from) if !from.is_empty() => people::text(from),
        _ => author,
    }
}

fn draw_thread(
    app: &App,
    who: &SignedIn,
    id: &str,
    sent: &Submitted,
    error: Option<String>,
) -> Result<Response, Error> {
    let device = app.replica.lock();
    let rights = Rights::of(&device);
    let Some(wanted) = thread_of(&device, id)?.filter(|_| rights.reads(Section::Messages)) else {
        return super::missing(app, who, &rights);
    };
    let all = threads::threads(device.record())?;
    let msgs = all
        .into_iter()
        .find(|(s, _)| threads::same_subject(s, &wanted))
        .map(|(_, m)| m)
        .unwrap_or_default();
    let said = msgs
        .iter()
        .map(|m| Said {
            from: sender(app, &device, m),
            when: people::datetime(&m.created),
            body: people::text(m.fields.get("body").and_then(Value::as_str).unwrap_or_default()),
        })
        .collect();
    let body = forms::plain(
        "body",
        app.m.get("messages-reply"),
        "textarea",
        sent.text("body"),
        true,
        error.clone(),
    );
    let p = ThreadPage {
        page: super::page(app, Some(who), Some(&rights), title(app, &wanted), PATH),
        said,
        action: format!("{PATH}/{id}"),
        reply: rights.adds(Section::Messages).then_some(body),
        has_errors: error.is_some(),
    };
    html(status(error.is_some()), &p)
}
