//! Files the portal hands to the browser to save (a document, a report, an export): sent as an
//! attachment under a safe file name, with a media type that is a media type, and streamed from
//! a file rather than held whole when they are large.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

/// How much of a file is read and sent at once.
const PIECE: usize = 256 * 1024;

/// Bytes made here (a report, an export) as a download named `name`.
pub fn bytes(bytes: Vec<u8>, media_type: &str, name: &str) -> Response {
    let len = bytes.len() as u64;
    respond(Body::from(bytes), len, media_type, name)
}

/// An open file as a download named `name`, read piece by piece as the browser takes it.
pub fn file(file: tokio::fs::File, len: u64, media_type: &str, name: &str) -> Response {
    let pieces = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; PIECE];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            // The browser sees the download break off rather than end as if whole.
            Err(e) => Some((Err(e), None)),
        }
    });
    // Fused: a layer may poll a stream again after its end, which `unfold` alone forbids.
    respond(Body::from_stream(pieces.fuse()), len, media_type, name)
}

fn respond(body: Body, len: u64, media_type: &str, name: &str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(safe_media_type(media_type)).unwrap_or(HeaderValue::from_static(OCTETS)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // Sent as they are: a document is mostly compressed already (PDF, JPEG) and a large one
    // would cost its size in CPU to gzip again; the compression layer leaves an encoded body be.
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
    if let Ok(v) = HeaderValue::from_str(&disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

const OCTETS: &str = "application/octet-stream";

/// `type/subtype` of token characters (RFC 9110), else bytes of no stated kind: a media type a
/// peer wrote is data, and never a header injection or parameters.
fn safe_media_type(m: &str) -> &str {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            && s.len() <= 127
    };
    match m.split_once('/') {
        Some((t, s)) if token(t) && token(s) => m,
        _ => OCTETS,
    }
}

/// `attachment` with the name as plain ASCII (`filename=`) and in full (`filename*=`, RFC 6266
/// and 8187), both made safe by [`safe_name`].
fn disposition(name: &str) -> String {
    let name = safe_name(name);
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && c != '"' && c != '%' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A file name a person (or a peer) gave, made safe to save: no path (only what follows the
/// last `/` or `\`), no control or quoting characters, no leading dots, at most 120 characters;
/// `document` when nothing is left.
pub fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/' | ':' | '*' | '?' | '<' | '>' | '|' | ';'))
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "document".to_string()
    } else {
        cleaned.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_becomes_a_safe_file_name() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Users\\x\\IEP.pdf"), "IEP.pdf");
        assert_eq!(
            safe_name("IEP <script>alert(1)<script>.pdf"),
            "IEP scriptalert(1)script.pdf"
        );
        assert_eq!(safe_name("a\"b\r\nSet-Cookie: x.pdf"), "abSet-Cookie x.pdf");
        assert_eq!(safe_name("..."), "document");
        assert_eq!(safe_name(""), "document");
    }

    #[test]
    fn the_header_keeps_the_name_and_never_breaks_out_of_it() {
        let d = disposition("Évaluation \"final\".pdf");
        assert_eq!(
            d,
            "attachment; filename=\"_valuation final.pdf\"; filename*=UTF-8''%C3%89valuation%20final.pdf"
        );
        assert!(HeaderValue::from_str(&disposition("x\r\ny")).is_ok());
    }

    #[test]
    fn only_a_media_type_is_sent_as_one() {
        assert_eq!(safe_media_type("application/pdf"), "application/pdf");
        assert_eq!(safe_media_type("text/html; charset=x"), OCTETS);
        assert_eq!(safe_media_type("nonsense"), OCTETS);
        assert_eq!(safe_media_type("a/b\r\nX: y"), OCTETS);
    }
}
