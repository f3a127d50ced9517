//! The static files, embedded in the binary: the style sheet, the vendored htmx, our
//! live-update and idle-warning scripts and the upload form's progress and drag-and-drop.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every static file: its name under `/static/`, content type and bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "portal.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/portal.css"),
    ),
    (
        "htmx-2.0.8.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/htmx-2.0.8.min.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/live.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/upload.js"),
    ),
    (
        "idle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/idle.js"),
    ),
];

/// `GET /static/{name}`.
pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored htmx is the file static/README.md names, byte for byte.
    #[test]
    fn the_vendored_htmx_is_the_pinned_release() {
        use sha2::Digest;
        use std::fmt::Write;
        let (_, _, bytes) = FILES[1];
        let digest = sha2::Sha256::digest(bytes);
        let mut hex = String::new();
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        assert_eq!(hex, "22283ef68cb7545914f0a88a1bdedc7256a703d1d580c1d255217d0a50d31313");
    }
}
