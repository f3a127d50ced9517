//! `/confirm`: typing the record's passphrase again before a sensitive act. Checked with argon2
//! against the store, as opening it does; a client that keeps guessing waits longer each time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};

use crate::confirm::{LASTS, next_path};
use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::{FormPage, Input};

/// `GET /confirm?next=PATH`: the passphrase form.
pub async fn form(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = next_path(q.get("next").map(String::as_str));
    app.blocking(move |app| draw(app, &who, &next, None, StatusCode::OK))
        .await
}

/// `POST /confirm`: the passphrase; right, and the session may do the sensitive acts for a
/// while (then back to `next`); wrong, and the form says so; too many wrong, and it must wait.
pub async fn check(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    let next = next_path(q.get("next").map(String::as_str));
    let client = client.ip();
    if let Err(wait) = app.attempts.begin(client) {
        let seconds = wait.as_secs().max(1);
        let text = app.m.with("confirm-wait", &[("seconds", Arg::Number(seconds as f64))]);
        return app
            .blocking(move |app| draw(app, &who, &next, Some(text), StatusCode::TOO_MANY_REQUESTS))
            .await;
    }
    let passphrase = sent.get("passphrase").unwrap_or_default().to_string();
    app.blocking(move |app| {
        // The key slot is read under the lock; the slow derivation runs without it.
        let check = app.replica.lock().store().passphrase_check()?;
        match check.verify(&passphrase) {
            Ok(()) => {
                app.attempts.right(client);
                app.sessions.confirm(&who.id, LASTS);
                Ok(super::see_other(&next))
            }
            Err(phr_engine::Error::WrongPassphrase) => {
                tracing::warn!(%client, "portal: a wrong passphrase");
                let text = app.m.get("confirm-wrong");
                draw(app, &who, &next, Some(text), StatusCode::UNPROCESSABLE_ENTITY)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The form, with `problem` beside the field.
fn draw(app: &App, who: &SignedIn, next: &str, problem: Option<String>, status: StatusCode) -> Result<Response, Error> {
    let rights = Rights::of(&app.replica.lock());
    let minutes = Arg::Number((LASTS.as_secs() / 60) as f64);
    let passphrase = Input {
        name: "passphrase".into(),
        label: app.m.get("confirm-passphrase"),
        hint: String::new(),
        required: true,
        input: "password",
        inputmode: "",
        // What was typed is never sent back.
        value: String::new(),
        options: Vec::new(),
        described_by: if problem.is_some() {
            "e-passphrase".into()
        } else {
            String::new()
        },
        error: problem,
    };
    let p = FormPage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("confirm-title"), ""),
        intro: Some(app.m.with("confirm-intro", &[("minutes", minutes)])),
        // `next` holds only the characters `next_path` lets through.
        action: format!("/confirm?next={next}"),
        cancel: "/".into(),
        has_errors: passphrase.error.is_some(),
        fields: vec![passphrase],
        general: None,
    };
    html(status, &p)
}
