//! Tickets the portal offered (a share with someone, a new device), each shown on its own page
//! as a QR code and text until it is used, and the background wait for someone to use one.
//! The serving process's endpoint answers the other side (`Inviter`), as `phr share` does.

use std::sync::Mutex;
use std::time::Duration;

use phr_engine::access::Credential;
use phr_engine::sync::pair::{Inviter, PairTicket};
use tokio::sync::watch;

use crate::error::Error;

/// How long a ticket made in the portal stays usable.
pub const TICKET_LASTS: Duration = Duration::from_secs(30 * 60);

/// One ticket offered from the portal.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Its page's id (random, so one session cannot guess another's).
    pub id: String,
    pub ticket: PairTicket,
    /// The ticket's text (what the QR code holds).
    pub text: String,
}

/// The tickets offered, and the endpoint that answers them (`None`: the portal was started
/// without one, as the demo does, and cannot share or pair).
pub struct Offers {
    inviter: Option<Inviter>,
    offered: Mutex<Vec<Offer>>,
    /// Counts joins, so open pages redraw when someone used a ticket (`live`).
    joins: watch::Sender<u64>,
}

impl Offers {
    /// Offers answered by `inviter`.
    pub fn new(inviter: Option<Inviter>) -> Offers {
        Offers {
            inviter,
            offered: Mutex::new(Vec::new()),
            joins: watch::Sender::new(0),
        }
    }

    /// Whether tickets can be made here.
    pub fn available(&self) -> bool {
        self.inviter.is_some()
    }

    /// Offer a ticket made by `make` (a share or a device), kept for its page.
    pub fn offer(&self, make: impl FnOnce(&Inviter) -> phr_engine::Result<PairTicket>) -> Result<Option<Offer>, Error> {
        let Some(inviter) = &self.inviter else {
            return Ok(None);
        };
        let ticket = make(inviter)?;
        let offer = Offer {
            id: crate::sessions::secret()?,
            text: ticket.to_text(),
            ticket,
        };
        let now = chrono::Utc::now().timestamp();
        let mut offered = self.offered.lock().unwrap_or_else(|p| p.into_inner());
        // Expired tickets no one used are forgotten.
        offered.retain(|o| o.ticket.expires >= now || self.used(o).is_some());
        offered.push(offer.clone());
        Ok(Some(offer))
    }

    /// The offer `id` names.
    pub fn get(&self, id: &str) -> Option<Offer> {
        let offered = self.offered.lock().unwrap_or_else(|p| p.into_inner());
        offered.iter().find(|o| crate::sessions::same(&o.id, id)).cloned()
    }

    /// Who used `offer`, and when (unix seconds).
    pub fn used(&self, offer: &Offer) -> Option<(Credential, i64)> {
        self.inviter.as_ref()?.joined(&offer.ticket)
    }

    /// A feed that changes each time someone joins with a ticket.
    pub fn joins(&self) -> watch::Receiver<u64> {
        self.joins.subscribe()
    }

    /// Wait for joins until `closing` says the portal stops, telling [`Offers::joins`].
    pub async fn watch(&self, mut closing: watch::Receiver<bool>) {
        let Some(inviter) = &self.inviter else { return };
        loop {
            tokio::select! {
                _ = closing.wait_for(|c| *c) => return,
                _ = inviter.wait_joined() => self.joins.send_modify(|n| *n += 1),
            }
        }
    }
}
