//! Signing in with the one-time link, and signing out.

use std::sync::Arc;

use axum::Extension;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::server::{App, html};
use crate::templates::MessagePage;

/// `GET /login/{token}`: the token (once) for a session cookie, then the home page.
pub async fn login(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    match app.sessions.sign_in(&token) {
        Ok(Some(id)) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, guard::set_cookie(&app, Some(&id))),
                (header::LOCATION, "/".to_string()),
            ],
        )
            .into_response(),
        Ok(None) => super::refused(&app, StatusCode::FORBIDDEN, "login-bad-link"),
        Err(e) => {
            tracing::error!("portal: {e}");
            super::failure(&app)
        }
    }
}

/// `POST /logout`: end the session and forget the cookie.
pub async fn logout(
    State(app): State<Arc<App>>,
    Extension(who): Extension<SignedIn>,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = guard::without_token(&app, &who, &Submitted(sent)) {
        return r;
    }
    app.sessions.end(&who.id);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, guard::set_cookie(&app, None)),
            (header::LOCATION, "/signed-out".to_string()),
        ],
    )
        .into_response()
}

/// `GET /signed-out`.
pub async fn signed_out(State(app): State<Arc<App>>) -> Response {
    let p = MessagePage {
        page: super::page(&app, None, None, app.m.get("nav-sign-out"), ""),
        text: app.m.get("logout-done"),
        link: None,
    };
    html(StatusCode::OK, &p).unwrap_or_else(|_| super::failure(&app))
}
