//! Who is signed in: the one-time sign-in token the portal prints, and the sessions it was
//! traded for. Each session has its own form token (CSRF) and ends after a while without use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;

/// A random secret as 64 hex digits (32 bytes from the system's generator).
pub fn secret() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compare two secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token its forms carry.
    pub csrf: String,
    last_seen: Instant,
    /// Until when the passphrase typed again lets it do the sensitive acts (`unlock`).
    confirmed_until: Option<Instant>,
}

impl Session {
    /// Whether the passphrase was confirmed recently enough for a sensitive act.
    pub fn confirmed(&self) -> bool {
        self.confirmed_until.is_some_and(|t| Instant::now() < t)
    }
}

/// The sign-in token (until spent) and the live sessions.
#[derive(Debug)]
pub struct Sessions {
    login: Mutex<Option<String>>,
    live: Mutex<HashMap<String, Session>>,
    idle: Duration,
}

impl Sessions {
    /// Sessions that end after `idle` without a request, and a fresh sign-in token.
    pub fn new(idle: Duration) -> Result<(Sessions, String), Error> {
        let token = secret()?;
        let sessions = Sessions {
            login: Mutex::new(Some(token.clone())),
            live: Mutex::new(HashMap::new()),
            idle,
        };
        Ok((sessions, token))
    }

    /// Trade the sign-in token for a new session's id; `None` if the token is wrong or spent.
    pub fn sign_in(&self, token: &str) -> Result<Option<String>, Error> {
        let mut login = self.login.lock().unwrap_or_else(|p| p.into_inner());
        match login.as_deref() {
            Some(expected) if same(expected, token) => {}
            _ => return Ok(None),
        }
        *login = None;
        let id = secret()?;
        let session = Session {
            csrf: secret()?,
            last_seen: Instant::now(),
            confirmed_until: None,
        };
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), session);
        Ok(Some(id))
    }

    /// The session `id` names, if it is live; using it keeps it alive. An idle one ends here.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, s| now.duration_since(s.last_seen) < self.idle);
        let session = live.get_mut(id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// Whether session `id` is still live, without keeping it alive (an open page's event
    /// stream does not count as using the portal).
    pub fn alive(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(id)
            .is_some_and(|s| Instant::now().duration_since(s.last_seen) < self.idle)
    }

    /// How long a session lasts without a request.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Let session `id` do the sensitive acts for `lasts` (the passphrase was typed again).
    pub fn confirm(&self, id: &str, lasts: Duration) {
        if let Some(s) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
            s.confirmed_until = Some(Instant::now() + lasts);
        }
    }

    /// End session `id` (signing out).
    pub fn end(&self, id: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_token_works_once_and_a_forged_one_never() {
        let (s, token) = Sessions::new(Duration::from_secs(900)).unwrap();
        assert!(s.sign_in("0".repeat(64).as_str()).unwrap().is_none());
        let id = s.sign_in(&token).unwrap().expect("a session");
        assert!(s.sign_in(&token).unwrap().is_none(), "the token is spent");
        assert!(s.touch(&id).is_some());
        s.end(&id);
        assert!(s.touch(&id).is_none());
    }

    #[test]
    fn a_confirmed_passphrase_lasts_a_while_for_its_own_session_only() {
        let (s, token) = Sessions::new(Duration::from_secs(900)).unwrap();
        let id = s.sign_in(&token).unwrap().expect("a session");
        assert!(!s.touch(&id).unwrap().confirmed());
        s.confirm(&id, Duration::from_secs(300));
        assert!(s.touch(&id).unwrap().confirmed());
        s.confirm(&id, Duration::ZERO);
        assert!(!s.touch(&id).unwrap().confirmed());
    }

    #[test]
    fn an_idle_session_ends() {
        let (s, token) = Sessions::new(Duration::ZERO).unwrap();
        let id = s.sign_in(&token).unwrap().expect("a session");
        assert!(s.touch(&id).is_none());
    }
}
