//! `/sharing`: who the record is shared with, until when, and taking access away (after a
//! confirmation and the passphrase typed again). Making a new share is `share_form`'s.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::access::Statement;
use phr_engine::capability::{Capability, Revocation, Right};

use crate::confirm::Confirmed;
use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::Link;
use crate::templates::access::{ActPage, Holder, SharingPage};

/// This home's rights if it may share (it holds the patient's root key); else the refusal.
pub fn owner_only(app: &App) -> Result<Rights, Box<Response>> {
    let rights = Rights::of(&app.replica.lock());
    if rights.shares() {
        Ok(rights)
    } else {
        Err(Box::new(super::refused(app, StatusCode::FORBIDDEN, "form-not-allowed")))
    }
}

/// A confirmed POST that only the record's owner may make (stopping a share, removing a
/// device): the form's token checked, then `act` run on a blocking thread with this home's
/// rights, or the refusal.
pub async fn owner_act<F>(app: Arc<App>, who: SignedIn, sent: Vec<(String, String)>, act: F) -> Response
where
    F: FnOnce(&App, &SignedIn, &Rights) -> Result<Response, Error> + Send + 'static,
{
    if let Some(r) = guard::without_token(&app, &who, &Submitted(sent)) {
        return r;
    }
    app.blocking(move |app| match owner_only(app) {
        Ok(rights) => act(app, &who, &rights),
        Err(refusal) => Ok(*refusal),
    })
    .await
}

/// `GET /sharing`.
pub async fn list(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| {
        let rights = match owner_only(app) {
            Ok(r) => r,
            Err(refusal) => return Ok(*refusal),
        };
        let now = chrono::Utc::now().timestamp();
        let mut grants = app.replica.lock().access().grants();
        grants.sort_by_key(|(c, _)| std::cmp::Reverse(c.not_before));
        let rows = grants.iter().map(|(c, r)| holder(app, c, r.as_ref(), now)).collect();
        let words = Listing {
            path: "/sharing",
            title: "sharing-title",
            intro: "sharing-intro",
            add: ("/sharing/new", "sharing-add"),
            heading: "sharing-who",
            empty: Some("sharing-none"),
        };
        listing(app, &who, &rights, &words, rows)
    })
    .await
}

/// The words of a page listing who has access (`SharingPage`): message ids and paths.
pub struct Listing {
    pub path: &'static str,
    pub title: &'static str,
    /// Said when tickets can be made here (else that they cannot).
    pub intro: &'static str,
    /// Where adding someone goes, and its words.
    pub add: (&'static str, &'static str),
    pub heading: &'static str,
    pub empty: Option<&'static str>,
}

/// A page listing `rows`, with the button that adds someone when tickets can be made here.
pub fn listing(
    app: &App,
    who: &SignedIn,
    rights: &Rights,
    words: &Listing,
    rows: Vec<Holder>,
) -> Result<Response, Error> {
    let add = app.offers.available().then(|| Link {
        href: words.add.0.into(),
        label: app.m.get(words.add.1),
        current: false,
    });
    let p = SharingPage {
        page: super::page(app, Some(who), Some(rights), app.m.get(words.title), words.path),
        intro: app.m.get(if add.is_some() {
            words.intro
        } else {
            "sharing-unavailable"
        }),
        add,
        heading: app.m.get(words.heading),
        empty: words.empty.map(|id| app.m.get(id)).unwrap_or_default(),
        rows,
    };
    html(StatusCode::OK, &p)
}

/// One grant as listed: who, until when, its state, the sections and what they may do.
fn holder(app: &App, c: &Capability, revoked: Option<&Revocation>, now: i64) -> Holder {
    let until = match c.expires {
        Some(e) => app.m.with("sharing-until", &[("when", Arg::Text(people::unix(e)))]),
        None => app.m.get("sharing-no-end"),
    };
    let state = if revoked.is_some() {
        "sharing-revoked"
    } else if !c.chain_valid_at(now) {
        "sharing-expired"
    } else {
        "sharing-active"
    };
    let live = state == "sharing-active";
    Holder {
        title: people::text(&c.label),
        detail: format!("{} · {}", app.m.get(state), until),
        lines: c
            .scope
            .iter()
            .map(|(s, r)| format!("{}: {}", people::section(app.m, *s), right_words(app, *r)))
            .collect(),
        act: live.then(|| Link {
            href: format!("/sharing/{}/revoke", hex_id(c)),
            label: app
                .m
                .with("sharing-revoke", &[("name", Arg::Text(people::text(&c.label)))]),
            current: false,
        }),
    }
}

/// What a right lets the holder do, in words.
pub fn right_words(app: &App, r: Right) -> String {
    app.m.get(&format!("share-right-{r}"))
}

fn hex_id(c: &Capability) -> String {
    c.id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The live grant `id` names (its full id), if this home may revoke it.
fn grant(app: &App, id: &str) -> Option<Capability> {
    let now = chrono::Utc::now().timestamp();
    app.replica
        .lock()
        .access()
        .grants()
        .into_iter()
        .find(|(c, r)| r.is_none() && c.chain_valid_at(now) && hex_id(c) == id)
        .map(|(c, _)| c)
}

/// `GET /sharing/{id}/revoke`: what taking access away means, and its button.
pub async fn revoke_form(State(app): State<Arc<App>>, Confirmed(who): Confirmed, Path(id): Path<String>) -> Response {
    app.blocking(move |app| {
        let rights = match owner_only(app) {
            Ok(r) => r,
            Err(refusal) => return Ok(*refusal),
        };
        let Some(c) = grant(app, &id) else {
            return super::missing(app, &who, &rights);
        };
        let name = Arg::Text(people::text(&c.label));
        let p = ActPage {
            page: super::page(app, Some(&who), Some(&rights), app.m.get("revoke-title"), ""),
            lines: vec![
                app.m.with("revoke-what", &[("name", name.clone())]),
                app.m.get("revoke-kept"),
            ],
            action: format!("/sharing/{id}/revoke"),
            button: app.m.with("revoke-button", &[("name", name)]),
            danger: true,
            cancel: "/sharing".into(),
        };
        html(StatusCode::OK, &p)
    })
    .await
}

/// `POST /sharing/{id}/revoke`: take the access away; connected peers hear of it at once.
pub async fn revoke(
    State(app): State<Arc<App>>,
    Confirmed(who): Confirmed,
    Path(id): Path<String>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    owner_act(app, who, sent, move |app, who, rights| {
        if grant(app, &id).is_none() {
            return super::missing(app, who, rights);
        }
        let rev = app.replica.lock().revoke(&id)?;
        app.replica.publish_access(None, vec![Statement::Revocation(rev)]);
        Ok(super::see_other("/sharing"))
    })
    .await
}
