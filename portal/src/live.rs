//! Live updates: `GET /events`, a server-sent event stream that tells an open page when a
//! change from another device (a peer's live sync, a clinic's node) has entered the record, so
//! its script (`static/live.js`) redraws the page without a reload; also when someone used a
//! ticket offered from the portal (a share's page then says who joined). The events carry no record
//! data: the page fetches itself again through the usual checks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use phr_engine::sync::replica::Entered;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::guard::SignedIn;
use crate::server::App;

/// What one open stream waits on.
struct Listening {
    app: Arc<App>,
    session: String,
    feed: Receiver<Arc<Entered>>,
    closing: watch::Receiver<bool>,
    /// Someone used a ticket offered from the portal (a share page shows it).
    joins: watch::Receiver<u64>,
}

/// `GET /events`: one `changed` event each time changes from another device enter the record,
/// until the browser leaves, its session ends or the portal stops.
pub async fn events(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = Listening {
        feed: app.replica.subscribe(),
        closing: app.closing.clone(),
        joins: app.offers.joins(),
        session: who.id,
        app,
    };
    let stream = futures_util::stream::unfold(start, |mut l| async move {
        next_change(&mut l).await?;
        Some((Ok(Event::default().event("changed").data("record")), l))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
}

/// Wait for the next change from a peer; `None` when the stream should end.
async fn next_change(l: &mut Listening) -> Option<()> {
    loop {
        let got = tokio::select! {
            _ = l.closing.changed() => return None,
            joined = l.joins.changed() => {
                if joined.is_err() || !l.app.sessions.alive(&l.session) {
                    return None;
                }
                return Some(());
            }
            got = l.feed.recv() => got,
        };
        let from_peer = match got {
            Ok(entered) => entered.from.is_some() && entered.batch().is_some(),
            // Fell behind: something changed, so redraw.
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return None,
        };
        if !l.app.sessions.alive(&l.session) {
            return None;
        }
        if from_peer {
            return Some(());
        }
    }
}
