//! Requests for a group version an extension API server serves, sent on
//! to it as Kubernetes' aggregator sends them: the same method, path,
//! query and body; the caller's credentials (`Authorization`,
//! impersonation headers) and any `X-Remote-*` header it sent dropped; the
//! user this server authenticated (and authorized) told in `X-Remote-User`,
//! `X-Remote-Group` and `X-Remote-Extra-<key>`, trusted by the extension
//! server because our client certificate is the request-header CA's. The
//! answer comes back as it is, streamed (watches included).

use bytes::Bytes;
use ferrokube_api::status::ApiError;
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt};

use super::{backend, Remote};
use crate::authn::UserInfo;
use crate::rest::Rest;
use crate::server::RequestBody;

type Body = BoxBody<Bytes, std::io::Error>;

/// The request-header names extension servers read (`requestheader-*`).
pub(crate) const USER_HEADER: &str = "X-Remote-User";
pub(crate) const GROUP_HEADER: &str = "X-Remote-Group";
pub(crate) const EXTRA_PREFIX: &str = "X-Remote-Extra-";

/// `user` in request headers, as the aggregator writes them (extra keys
/// escaped as URL path segments).
fn user_headers(user: &UserInfo, to: &mut HeaderMap) {
    to.retain_remote_free();
    if let Ok(v) = HeaderValue::from_str(&user.name) {
        to.insert(USER_HEADER, v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            to.append(GROUP_HEADER, v);
        }
    }
    for (key, values) in &user.extra {
        let name = format!("{EXTRA_PREFIX}{}", escape_key(key));
        let Ok(name) = header::HeaderName::try_from(name) else {
            continue;
        };
        for value in values {
            if let Ok(v) = HeaderValue::from_str(value) {
                to.append(name.clone(), v);
            }
        }
    }
}

/// Dropping what a caller may not say about itself.
trait RemoteFree {
    fn retain_remote_free(&mut self);
}

impl RemoteFree for HeaderMap {
    fn retain_remote_free(&mut self) {
        let names: Vec<header::HeaderName> = self
            .keys()
            .filter(|k| k.as_str().starts_with("x-remote-"))
            .cloned()
            .collect();
        for n in names {
            self.remove(n);
        }
    }
}

/// An extra key as a header name carries it: Go's `url.PathEscape`.
fn escape_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-._~$&+:=@".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `req` on to `remote`'s server and its answer back.
pub(crate) async fn serve(
    rest: &Rest,
    remote: &Remote,
    mut req: Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    let unavailable = |why: &dyn std::fmt::Display| {
        tracing::debug!(apiservice = %remote.name, error = %why, "aggregated request failed");
        ApiError::service_unavailable("service unavailable")
    };
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .ok_or_else(ApiError::unauthorized)?;
    let addr = backend::resolve(rest, &remote.service)
        .await
        .map_err(|e| unavailable(&e))?;
    let tls = remote.tls.clone().map_err(|e| unavailable(&e))?;
    let uri = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut out = Request::builder()
        .method(req.method())
        .uri(uri)
        .header(header::HOST, addr.to_string());
    if let Some(h) = out.headers_mut() {
        crate::proxy::copy_headers(req.headers(), h, false);
        user_headers(&user, h);
    }
    let body = std::mem::take(req.body_mut());
    let out = out
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("bad request headers: {e}")))?;
    let mut sender = backend::connect(addr, &remote.service.server_name(), tls)
        .await
        .map_err(|e| unavailable(&e))?;
    let resp = sender
        .send_request(out)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut answer = Response::builder().status(resp.status());
    if let Some(h) = answer.headers_mut() {
        crate::proxy::copy_headers(resp.headers(), h, false);
    }
    answer
        .body(resp.into_body().map_err(std::io::Error::other).boxed())
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_goes_in_request_headers_and_callers_cannot_forge_them() {
        let mut user = UserInfo::authenticated("jane", ["dev"]);
        user.extra
            .insert("scopes/x y".into(), vec!["a".into(), "b".into()]);
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", HeaderValue::from_static("admin"));
        h.insert("x-remote-group", HeaderValue::from_static("system:masters"));
        user_headers(&user, &mut h);
        assert_eq!(h.get_all(USER_HEADER).iter().collect::<Vec<_>>(), ["jane"]);
        assert_eq!(
            h.get_all(GROUP_HEADER).iter().collect::<Vec<_>>(),
            ["dev", "system:authenticated"]
        );
        assert_eq!(
            h.get_all("x-remote-extra-scopes%2Fx%20y")
                .iter()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
