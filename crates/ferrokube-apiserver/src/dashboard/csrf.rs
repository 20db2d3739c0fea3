//! What a request authenticated by the session cookie must also carry: a
//! browser sends the cookie with any request to this origin, so a write
//! (any method but GET, HEAD and OPTIONS) must show the session's CSRF
//! token in `X-CSRF-Token`, which another site's page cannot read, and an
//! `Origin` of this server; a WebSocket upgrade (which cannot carry the
//! header) must come from this server's origin.

use ferrokube_api::status::ApiError;
use http::{header, HeaderMap, Method, Uri};

use super::session::same_secret;

/// The header carrying the session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Whether `headers` ask for a WebSocket upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// Whether `method` changes nothing (and needs no CSRF token).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The host the client addressed: `Host`, else the URI's authority (the
/// `:authority` of HTTP/2).
fn host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.as_str().to_string()))
}

/// Whether the request's `Origin` is this server's (`https://<Host>`).
/// `None` when it has no `Origin`.
pub(crate) fn same_origin(headers: &HeaderMap, uri: &Uri) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok();
    let expected = host(headers, uri).map(|h| format!("https://{h}"));
    Some(match (origin, expected) {
        (Some(o), Some(e)) => o.eq_ignore_ascii_case(&e),
        _ => false,
    })
}

fn forbidden(why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "a request authenticated by the dashboard's session cookie {why}"
    ))
}

/// Whether a cookie-authenticated request may go on: a 403 `Status` when
/// it is a write without the session's CSRF token or from another origin,
/// or an upgrade from another origin.
pub(crate) fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(), ApiError> {
    let upgrade = is_upgrade(headers);
    if is_safe(method) && !upgrade {
        return Ok(());
    }
    if same_origin(headers, uri) != Some(true) {
        let expected = host(headers, uri).unwrap_or_default();
        return Err(forbidden(&format!(
            "must {} from the server's own origin (Origin: https://{expected})",
            if upgrade { "upgrade" } else { "come" }
        )));
    }
    if is_safe(method) {
        return Ok(());
    }
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given.is_empty() || !same_secret(given, csrf) {
        return Err(forbidden(
            "must carry the session's token in X-CSRF-Token for this method",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    use crate::dashboard::test_headers as headers;

    #[test]
    fn reads_pass_writes_need_token_and_origin() {
        let uri: Uri = "/api/v1/pods".parse().unwrap();
        let host = ("host", "127.0.0.1:6443");
        let origin = ("origin", "https://127.0.0.1:6443");
        assert!(check(&Method::GET, &uri, &headers(&[host]), "t").is_ok());
        assert!(check(&Method::HEAD, &uri, &headers(&[]), "t").is_ok());
        let post = |h: &[(&str, &str)]| check(&Method::POST, &uri, &headers(h), "tok");
        assert!(post(&[host, origin, ("x-csrf-token", "tok")]).is_ok());
        assert_eq!(post(&[host, origin]).unwrap_err().code, 403);
        assert_eq!(
            post(&[host, origin, ("x-csrf-token", "bad")])
                .unwrap_err()
                .code,
            403
        );
        assert_eq!(
            post(&[host, ("x-csrf-token", "tok")]).unwrap_err().code,
            403
        );
        assert_eq!(
            post(&[
                host,
                ("origin", "https://evil.example"),
                ("x-csrf-token", "tok")
            ])
            .unwrap_err()
            .code,
            403
        );
        assert_eq!(
            post(&[
                host,
                ("origin", "http://127.0.0.1:6443"),
                ("x-csrf-token", "tok")
            ])
            .unwrap_err()
            .code,
            403,
            "plain http is another origin"
        );
    }

    #[test]
    fn upgrades_need_the_origin() {
        let uri: Uri = "/api/v1/namespaces/d/pods/p/exec".parse().unwrap();
        let up = ("upgrade", "websocket");
        let host = ("host", "h:1");
        assert!(check(
            &Method::GET,
            &uri,
            &headers(&[up, host, ("origin", "https://h:1")]),
            "t"
        )
        .is_ok());
        assert_eq!(
            check(&Method::GET, &uri, &headers(&[up, host]), "t")
                .unwrap_err()
                .code,
            403
        );
        // HTTP/2: the authority instead of Host.
        let uri2: Uri = "https://h:1/api".parse().unwrap();
        assert_eq!(
            same_origin(&headers(&[("origin", "https://h:1")]), &uri2),
            Some(true)
        );
    }
}
