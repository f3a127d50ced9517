//! `/devices`: the patient's devices; adding one (a one-time pairing code, shown by `offer`)
//! and removing one, each after the passphrase is typed again.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use phr_engine::PublicKey;
use phr_engine::access::Statement;

use crate::confirm::Confirmed;
use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::i18n::Arg;
use crate::offers::TICKET_LASTS;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::Link;
use crate::templates::access::{ActPage, Holder};

use super::sharing::{Listing, listing, owner_act, owner_only};

/// `GET /devices`.
pub async fn list(State(app): State<Arc<App>>, Extension(who): Extension<SignedIn>) -> Response {
    app.blocking(move |app| {
        let rights = match owner_only(app) {
            Ok(r) => r,
            Err(refusal) => return Ok(*refusal),
        };
        let (me, devices) = {
            let device = app.replica.lock();
            (device.device_id(), device.access().devices())
        };
        let rows = devices
            .iter()
            .map(|(cert, removed)| {
                let state = match (removed, cert.device == me) {
                    (Some(_), _) => "devices-removed",
                    (None, true) => "devices-this",
                    (None, false) => "devices-active",
                };
                let added = app
                    .m
                    .with("devices-added", &[("when", Arg::Text(people::unix(cert.issued_at)))]);
                Holder {
                    title: people::text(&cert.name),
                    detail: format!("{} · {added}", app.m.get(state)),
                    lines: Vec::new(),
                    act: (state == "devices-active").then(|| Link {
                        href: format!("/devices/{}/remove", cert.device),
                        label: app
                            .m
                            .with("devices-remove", &[("name", Arg::Text(people::text(&cert.name)))]),
                        current: false,
                    }),
                }
            })
            .collect();
        let words = Listing {
            path: "/devices",
            title: "devices-title",
            intro: "devices-intro",
            add: ("/devices/add", "devices-add"),
            heading: "devices-heading",
            empty: None,
        };
        listing(app, &who, &rights, &words, rows)
    })
    .await
}

/// `GET /devices/add`: what adding a device means, and the button that makes its code.
pub async fn add_form(State(app): State<Arc<App>>, Confirmed(who): Confirmed) -> Response {
    app.blocking(move |app| {
        let rights = match owner_only(app) {
            Ok(r) => r,
            Err(refusal) => return Ok(*refusal),
        };
        let p = ActPage {
            page: super::page(app, Some(&who), Some(&rights), app.m.get("devices-add"), ""),
            lines: vec![app.m.get("devices-add-what"), app.m.get("devices-add-trust")],
            action: "/devices/add".into(),
            button: app.m.get("devices-add-button"),
            danger: false,
            cancel: "/devices".into(),
        };
        html(StatusCode::OK, &p)
    })
    .await
}

/// `POST /devices/add`: a one-time pairing code, shown on its page.
pub async fn add(
    State(app): State<Arc<App>>,
    Confirmed(who): Confirmed,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = guard::without_token(&app, &who, &Submitted(sent)) {
        return r;
    }
    app.blocking(move |app| {
        if let Err(refusal) = owner_only(app) {
            return Ok(*refusal);
        }
        super::offer::make(app, |i| i.device(TICKET_LASTS))
    })
    .await
}

/// The other, still active device `key` names.
fn other_device(app: &App, key: &str) -> Option<(PublicKey, String)> {
    let device = app.replica.lock();
    let me = device.device_id();
    device
        .access()
        .devices()
        .into_iter()
        .find(|(c, r)| r.is_none() && c.device != me && c.device.to_string() == key)
        .map(|(c, _)| (c.device, c.name))
}

/// `GET /devices/{key}/remove`: what removing it means, and its button.
pub async fn remove_form(State(app): State<Arc<App>>, Confirmed(who): Confirmed, Path(key): Path<String>) -> Response {
    app.blocking(move |app| {
        let rights = match owner_only(app) {
            Ok(r) => r,
            Err(refusal) => return Ok(*refusal),
        };
        let Some((_, name)) = other_device(app, &key) else {
            return super::missing(app, &who, &rights);
        };
        remove_page(app, &who, &rights, &key, &name)
    })
    .await
}

fn remove_page(app: &App, who: &SignedIn, rights: &Rights, key: &str, name: &str) -> Result<Response, Error> {
    let name = Arg::Text(people::text(name));
    let p = ActPage {
        page: super::page(app, Some(who), Some(rights), app.m.get("devices-remove-title"), ""),
        lines: vec![app.m.with("devices-remove-what", &[("name", name.clone())])],
        action: format!("/devices/{key}/remove"),
        button: app.m.with("devices-remove", &[("name", name)]),
        danger: true,
        cancel: "/devices".into(),
    };
    html(StatusCode::OK, &p)
}

/// `POST /devices/{key}/remove`: it can no longer sync; connected peers hear of it at once.
pub async fn remove(
    State(app): State<Arc<App>>,
    Confirmed(who): Confirmed,
    Path(key): Path<String>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    owner_act(app, who, sent, move |app, who, rights| {
        let Some((device, _)) = other_device(app, &key) else {
            return super::missing(app, who, rights);
        };
        let removal = app.replica.lock().remove_device(&device)?;
        app.replica.publish_access(None, vec![Statement::Removal(removal)]);
        Ok(super::see_other("/devices"))
    })
    .await
}
