//! The dashboard's static files under `/dashboard/`: embedded in the binary
//! (with a gzip copy and an ETag made at build time), or read from
//! `FERROKUBE_DASHBOARD_DIR` on every request while working on them.
//! They need no login: they hold no data, only the code of the pages.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::server::Body;

/// The Content-Security-Policy of every file: only this origin's scripts,
/// styles and connections, images also as `data:` URLs, never framed.
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// A file's bytes as served.
struct File {
    content_type: &'static str,
    body: Bytes,
    gzip: Option<Bytes>,
    etag: String,
}

/// Whether the client takes gzip (`Accept-Encoding` names it with a
/// non-zero weight).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !zero
        })
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn embedded(path: &str) -> Option<File> {
    let a = ferrokube_dashboard::asset(path)?;
    Some(File {
        content_type: a.content_type,
        body: Bytes::from_static(a.body),
        gzip: Some(Bytes::from_static(a.gzip)),
        etag: a.etag.to_string(),
    })
}

fn from_dir(dir: &Path, path: &str) -> Option<File> {
    let (bytes, content_type) = ferrokube_dashboard::asset_from_dir(dir, path)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let etag = format!(
        "\"{}\"",
        digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gzip = gz
        .write_all(&bytes)
        .ok()
        .and_then(|()| gz.finish().ok())
        .map(Bytes::from);
    Some(File {
        content_type,
        body: Bytes::from(bytes),
        gzip,
        etag,
    })
}

fn set(r: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// The headers of every answer under `/dashboard/`.
pub(crate) fn secure_headers(r: &mut Response<Body>) {
    set(r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(r, header::CONTENT_SECURITY_POLICY, CSP);
    set(r, header::REFERRER_POLICY, "no-referrer");
}

/// The file at `rel` (relative to `ui/`; empty: `index.html`) for a GET or
/// HEAD with `headers`, from `dir` when set, else embedded.
pub(crate) fn serve(
    method: &Method,
    headers: &HeaderMap,
    rel: &str,
    dir: Option<&Path>,
) -> Response<Body> {
    if *method != Method::GET && *method != Method::HEAD {
        let mut r = crate::server::full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"405 method not allowed\n"),
        );
        set(&mut r, header::ALLOW, "GET, HEAD");
        return r;
    }
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let file = match dir {
        Some(d) => from_dir(d, rel),
        None => embedded(rel),
    };
    let Some(file) = file else {
        return not_found();
    };
    if not_modified(headers, &file.etag) {
        let mut r = crate::server::full(StatusCode::NOT_MODIFIED, file.content_type, Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        set(&mut r, header::ETAG, &file.etag);
        set(&mut r, header::CACHE_CONTROL, "no-cache");
        set(&mut r, header::VARY, "Accept-Encoding");
        return r;
    }
    let gzip = file.gzip.filter(|_| accepts_gzip(headers));
    let compressed = gzip.is_some();
    let body = gzip.unwrap_or(file.body);
    let body = if *method == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut r = crate::server::full(StatusCode::OK, file.content_type, body);
    if compressed {
        set(&mut r, header::CONTENT_ENCODING, "gzip");
    }
    set(&mut r, header::VARY, "Accept-Encoding");
    set(&mut r, header::ETAG, &file.etag);
    set(&mut r, header::CACHE_CONTROL, "no-cache");
    r
}

/// Go's answer for a path nothing serves.
pub(crate) fn not_found() -> Response<Body> {
    crate::server::full(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"404 page not found\n"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    use crate::dashboard::test_headers as headers;

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, gzip;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn index_with_etag_gzip_and_304() {
        let r = serve(&Method::GET, &headers(&[]), "", None);
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        let r = serve(
            &Method::GET,
            &headers(&[("accept-encoding", "gzip")]),
            "index.html",
            None,
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let r = serve(
            &Method::GET,
            &headers(&[("if-none-match", &etag)]),
            "",
            None,
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            serve(&Method::GET, &headers(&[]), "nope.js", None).status(),
            404
        );
        assert_eq!(serve(&Method::POST, &headers(&[]), "", None).status(), 405);
    }

    #[test]
    fn a_development_directory_is_read_on_every_request() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "one").unwrap();
        let r = serve(&Method::GET, &headers(&[]), "", Some(dir.path()));
        let first = r.headers()[header::ETAG].clone();
        std::fs::write(dir.path().join("index.html"), "two").unwrap();
        let r = serve(&Method::GET, &headers(&[]), "", Some(dir.path()));
        assert_ne!(r.headers()[header::ETAG], first);
        assert_eq!(
            serve(
                &Method::GET,
                &headers(&[]),
                "../etc/passwd",
                Some(dir.path())
            )
            .status(),
            404
        );
    }
}
