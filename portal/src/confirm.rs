//! The passphrase typed again before a sensitive act (sharing, pairing a device, taking access
//! away, exporting, restoring): [`Confirmed`], one extractor a handler names to require it, and
//! [`Attempts`], which slows down whoever keeps guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use crate::guard::SignedIn;
use crate::pages;
use crate::server::App;

/// How long a confirmed passphrase lets a session do the sensitive acts.
pub const LASTS: Duration = Duration::from_secs(5 * 60);

/// Wrong passphrases a client may type in a row before it must wait.
const FREE_TRIES: u32 = 3;

/// The longest wait between two tries.
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

/// A handler argument that lets the request through only if its session confirmed the
/// passphrase in the last [`LASTS`]; otherwise the browser is sent to the passphrase form,
/// which brings it back here. A handler adopts it with one argument: `_: Confirmed`.
pub struct Confirmed(pub SignedIn);

impl FromRequestParts<Arc<App>> for Confirmed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        match parts.extensions.get::<SignedIn>() {
            Some(who) if who.confirmed => Ok(Confirmed(who.clone())),
            Some(_) => Err(pages::see_other(&format!("/confirm?next={}", parts.uri.path()))),
            None => Err(pages::refused(app, StatusCode::UNAUTHORIZED, "login-needed")),
        }
    }
}

/// Where the passphrase form sends the browser back to: a path of the portal's own, of plain
/// characters only (never another site), else the home page.
pub fn next_path(asked: Option<&str>) -> String {
    match asked {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b)) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// One client's wrong passphrases in a row, and when its last try began.
#[derive(Debug, Clone, Copy)]
struct Record {
    wrong: u32,
    last: Instant,
}

/// Wrong passphrases per client address. A try counts as wrong from the moment it begins (so
/// tries sent at once cannot slip past the wait) until it turns out right.
#[derive(Debug, Default)]
pub struct Attempts {
    by_client: Mutex<HashMap<IpAddr, Record>>,
}

impl Attempts {
    /// Begin a try from `client`: `Err(wait)` if it must wait that long first (nothing is
    /// checked then), else the try is counted as wrong until [`Attempts::right`].
    pub fn begin(&self, client: IpAddr) -> Result<(), Duration> {
        let mut all = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let rec = all.entry(client).or_insert(Record { wrong: 0, last: now });
        let until = rec.last + wait_after(rec.wrong);
        if until > now {
            return Err(until - now);
        }
        rec.wrong = rec.wrong.saturating_add(1);
        rec.last = now;
        Ok(())
    }

    /// The try from `client` was right: its count starts again.
    pub fn right(&self, client: IpAddr) {
        self.by_client.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
    }
}

/// How long a client waits after `wrong` wrong passphrases in a row: nothing for the first
/// few, then 2, 4, 8… seconds, at most a quarter of an hour.
fn wait_after(wrong: u32) -> Duration {
    match wrong.checked_sub(FREE_TRIES) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(2u64.saturating_pow(over.saturating_add(1))).min(LONGEST_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_after_a_few_wrong_tries_and_stop_growing() {
        assert_eq!(wait_after(0), Duration::ZERO);
        assert_eq!(wait_after(FREE_TRIES - 1), Duration::ZERO);
        assert_eq!(wait_after(FREE_TRIES), Duration::from_secs(2));
        assert_eq!(wait_after(FREE_TRIES + 1), Duration::from_secs(4));
        assert_eq!(wait_after(200), LONGEST_WAIT);
    }

    #[test]
    fn a_client_that_keeps_guessing_must_wait_and_a_right_try_clears_it() {
        let a = Attempts::default();
        let me: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..FREE_TRIES {
            assert!(a.begin(me).is_ok());
        }
        assert!(a.begin(me).is_err(), "the fourth try in a row waits");
        assert!(a.begin(other).is_ok(), "another client is not slowed down");
        a.right(me);
        assert!(a.begin(me).is_ok());
    }

    #[test]
    fn only_paths_of_the_portal_are_gone_back_to() {
        assert_eq!(next_path(Some("/sharing/new")), "/sharing/new");
        for bad in ["//evil.example", "https://evil.example", "/a?b", "/a\\b", "x"] {
            assert_eq!(next_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(next_path(None), "/");
    }
}
