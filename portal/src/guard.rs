//! What every request must pass before a page is drawn: the `Host` allow-list (421), the
//! same-origin rule for anything that changes something (403), and a live session (401).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::forms::Submitted;
use crate::pages;
use crate::server::App;

/// A signed-in browser's session, handed to the pages.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id: String,
    pub csrf: String,
    /// Whether the passphrase was typed again lately (see `unlock`).
    pub confirmed: bool,
}

/// The `Host` must be one this portal was started for, and a request that changes anything
/// must come from the portal's own pages.
pub async fn origin(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return pages::refused(&app, StatusCode::MISDIRECTED_REQUEST, "error-wrong-host");
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) && !same_origin(&app, req.headers()) {
        return pages::refused(&app, StatusCode::FORBIDDEN, "error-cross-site");
    }
    next.run(req).await
}

/// Whether the browser says the request came from this portal's own pages: `Sec-Fetch-Site`
/// and `Origin` each, when sent, must say so, and at least one must be sent.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if site.is_none() && origin.is_none() {
        return false;
    }
    site.is_none_or(|s| s == b"same-origin") && origin.is_none_or(|o| app.origins.iter().any(|x| x == o))
}

/// The session the request's cookie names, or the "not signed in" page.
pub async fn session(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let Some(id) = cookie(req.headers(), &app.cookie) else {
        return pages::refused(&app, StatusCode::UNAUTHORIZED, "login-needed");
    };
    let Some(s) = app.sessions.touch(&id) else {
        return pages::refused(&app, StatusCode::UNAUTHORIZED, "login-needed");
    };
    req.extensions_mut().insert(SignedIn {
        id,
        confirmed: s.confirmed(),
        csrf: s.csrf,
    });
    next.run(req).await
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A form must carry its session's token (`csrf`): the refusal if it does not.
pub fn without_token(app: &App, who: &SignedIn, sent: &Submitted) -> Option<Response> {
    match sent.get("csrf") {
        Some(t) if crate::sessions::same(t, &who.csrf) => None,
        _ => Some(pages::refused(app, StatusCode::FORBIDDEN, "form-expired")),
    }
}

/// The session cookie for `id`, or (with `None`) the one that deletes it.
pub fn set_cookie(app: &App, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{}={id}; HttpOnly; SameSite=Strict; Path=/", app.cookie),
        None => format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", app.cookie),
    }
}

/// The one door to exporting the record from a form's POST: unless this session typed the
/// passphrase again lately (`confirm::Confirmed`), the browser goes to the passphrase form,
/// which brings it back to `form` (the page the POST came from) to send it again.
pub fn sensitive(who: &SignedIn, form: &str) -> Option<Response> {
    (!who.confirmed).then(|| crate::pages::see_other(&format!("/confirm?next={form}")))
}
