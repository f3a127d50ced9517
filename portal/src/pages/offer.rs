//! `/offers/{id}`: a ticket made in the portal (a share, a new device) as a QR code to scan
//! from the other device and as text to copy, and whether someone used it yet. The page
//! redraws itself when someone joins (`live`); without JavaScript a reload shows the same.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_engine::sync::pair::{Inviter, PairTicket, TicketKind};

use crate::error::Error;

use crate::guard::SignedIn;
use crate::i18n::Arg;
use crate::offers::Offer;
use crate::people;
use crate::rights::Rights;
use crate::server::{App, html};
use crate::templates::Link;
use crate::templates::access::OfferPage;

/// Offer a ticket made by `make` and send the browser to its page (or say that tickets cannot
/// be made here).
pub fn make(app: &App, make: impl FnOnce(&Inviter) -> phr_engine::Result<PairTicket>) -> Result<Response, Error> {
    Ok(match app.offers.offer(make)? {
        Some(offer) => super::see_other(&format!("/offers/{}", offer.id)),
        None => super::refused(app, StatusCode::SERVICE_UNAVAILABLE, "sharing-unavailable"),
    })
}

/// `GET /offers/{id}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Response {
    app.blocking(move |app| {
        let rights = Rights::of(&app.replica.lock());
        let Some(offer) = app.offers.get(&id) else {
            return super::missing(app, &who, &rights);
        };
        let sharing = matches!(offer.ticket.kind, TicketKind::Share { .. });
        let (title, how, back) = if sharing {
            let label = match &offer.ticket.kind {
                TicketKind::Share { label, .. } => people::text(label),
                TicketKind::Device => String::new(),
            };
            let title = app.m.with("offer-share-title", &[("name", Arg::Text(label))]);
            (title, "offer-share-how", ("/sharing", "offer-back-sharing"))
        } else {
            (
                app.m.get("offer-device-title"),
                "offer-device-how",
                ("/devices", "offer-back-devices"),
            )
        };
        let (status, open) = status(app, &offer);
        let p = OfferPage {
            page: super::page(app, Some(&who), Some(&rights), title, ""),
            status,
            open,
            how: app.m.get(how),
            qr: format!("/offers/{}/qr.svg", offer.id),
            qr_alt: app.m.get("offer-qr-alt"),
            ticket_heading: app.m.get("offer-ticket"),
            ticket_hint: app.m.get("offer-ticket-hint"),
            ticket: offer.text.clone(),
            back: Link {
                href: back.0.into(),
                label: app.m.get(back.1),
                current: false,
            },
        };
        html(StatusCode::OK, &p)
    })
    .await
}

/// Whether the ticket was used (by whom, when), is waiting, or expired; and whether its code
/// is still worth showing.
fn status(app: &App, offer: &Offer) -> (String, bool) {
    if let Some((credential, at)) = app.offers.used(offer) {
        let args = [
            ("name", Arg::Text(people::text(credential.name()))),
            ("when", Arg::Text(people::unix(at))),
        ];
        return (app.m.with("offer-used", &args), false);
    }
    let until = Arg::Text(people::unix(offer.ticket.expires));
    if chrono::Utc::now().timestamp() > offer.ticket.expires {
        return (app.m.get("offer-expired"), false);
    }
    (app.m.with("offer-waiting", &[("when", until)]), true)
}

/// `GET /offers/{id}/qr.svg`: the ticket's QR code (an image of the portal's own, as the
/// Content-Security-Policy allows).
pub async fn qr(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(offer) = app.offers.get(&id) else {
        return super::refused(&app, StatusCode::NOT_FOUND, "error-not-found");
    };
    match phr_qr::svg(&offer.text) {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => {
            tracing::error!("portal: {e:#}");
            super::failure(&app)
        }
    }
}
