//! The portal's routes and the layers around them: Host and same-origin checks, sessions,
//! body limits (the forms', and the uploads' larger one), compression and the security headers every response carries.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::server::App;
use crate::{assets, guard, live, pages};

/// The largest form body accepted, on every route but the uploads.
const BODY_LIMIT: usize = 256 * 1024;

/// What the upload routes' multipart reader takes at most: the file's limit
/// ([`crate::upload::UPLOAD_LIMIT`], checked by the handlers against the declared length and
/// while the file streams, so the refusal names it) and room for the form around it.
const UPLOAD_BODY_LIMIT: u64 = crate::upload::UPLOAD_LIMIT + 1024 * 1024;

/// Scripts and styles only from the portal itself, nothing inline, no frames, forms only to
/// itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every route, behind its checks.
pub fn router(app: Arc<App>) -> Router {
    let signed_in = Router::new()
        .route("/", get(pages::home::show))
        .route("/s/{section}", get(pages::list::show))
        .route("/s/{section}/new", get(pages::edit::new_form).post(pages::edit::add))
        .route("/s/{section}/{id}", get(pages::entry::show))
        .route(
            "/s/{section}/{id}/edit",
            get(pages::edit::edit_form).post(pages::edit::save),
        )
        .route(
            "/s/{section}/{id}/amend",
            get(pages::note::form).post(pages::note::amend),
        )
        .route(
            "/s/{section}/{id}/progress",
            get(pages::goal::form).post(pages::goal::record),
        )
        .route(
            "/s/{section}/{id}/stop",
            get(pages::medication::form).post(pages::medication::stop),
        )
        .route("/s/{section}/{id}/file", get(pages::documents::file))
        .route("/documents/new", get(pages::documents::form))
        .route("/reports", get(pages::reports::form).post(pages::reports::download))
        .route("/transfer", get(pages::transfer::page))
        .route("/transfer/export", post(pages::transfer::export))
        .route("/sharing", get(pages::sharing::list))
        .route(
            "/sharing/new",
            get(pages::share_form::form).post(pages::share_form::create),
        )
        .route(
            "/sharing/{id}/revoke",
            get(pages::sharing::revoke_form).post(pages::sharing::revoke),
        )
        .route("/devices", get(pages::devices::list))
        .route("/devices/add", get(pages::devices::add_form).post(pages::devices::add))
        .route(
            "/devices/{key}/remove",
            get(pages::devices::remove_form).post(pages::devices::remove),
        )
        .route("/offers/{id}", get(pages::offer::show))
        .route("/offers/{id}/qr.svg", get(pages::offer::qr))
        .route("/activity", get(pages::activity::show))
        .route("/confirm", get(pages::confirm::form).post(pages::confirm::check))
        .route(
            pages::messages::PATH,
            get(pages::messages::list).post(pages::messages::start),
        )
        .route(
            "/messages/{id}",
            get(pages::messages::thread).post(pages::messages::reply),
        )
        .route(
            pages::conflicts::PATH,
            get(pages::conflicts::show).post(pages::conflicts::pick),
        )
        .route("/events", get(live::events))
        .route("/logout", post(pages::auth::logout))
        .route_layer(from_fn_with_state(app.clone(), guard::session));
    // The uploads stream their file to disk: the form limit does not hold them, theirs does.
    let uploads = Router::new()
        .route(pages::documents::UPLOAD, post(pages::documents::upload))
        .route(pages::transfer::IMPORT, post(pages::transfer::import))
        .route_layer(from_fn_with_state(app.clone(), guard::session))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT as usize));
    let header = |name, value: &'static str| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    let forms = Router::new()
        .merge(signed_in)
        .route("/login/{token}", get(pages::auth::login))
        .route("/signed-out", get(pages::auth::signed_out))
        .route("/static/{name}", get(assets::file))
        .fallback(pages::not_found)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT));
    Router::new()
        .merge(forms)
        .merge(uploads)
        .layer(from_fn_with_state(app.clone(), guard::origin))
        .layer(CompressionLayer::new())
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(header(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(app)
}
