//! The dashboard's server side, on the API server's own listener:
//!
//! - `/dashboard/...`: the pages' static files ([`assets`]), open to all;
//! - `POST/GET/DELETE /dashboard/session`: logging in (a token, a
//!   kubeconfig, a one-time code: [`login`]), who the session is, logging
//!   out. A session is an `HttpOnly; Secure; SameSite=Strict` cookie the
//!   server maps to the identity the login proved ([`session`]);
//! - `POST /dashboard/codes`: a one-time login code for the caller
//!   (`ferrokube dashboard url`), by ordinary credentials only;
//! - [`Dashboard::authenticate`]: a request to the API with neither a client
//!   certificate nor an `Authorization` header is authenticated by the
//!   cookie, writes and upgrades then checked against CSRF ([`csrf`]).
//!
//! The pages are a pure client of the Kubernetes API: a session's requests
//! go through impersonation, priority and fairness, authorization and
//! admission as any user's. `--disable dashboard` turns all of it off:
//! `/dashboard...` answers 404 and cookies are ignored.

pub(crate) mod assets;
pub(crate) mod csrf;
pub(crate) mod login;
pub(crate) mod session;

use std::path::PathBuf;
use std::time::SystemTime;

use bytes::Bytes;
use ferrokube_api::status::ApiError;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::authn::{CertNotAfter, ClientCertAuthenticator, TokenAuthenticator, UserInfo};
use crate::server::{Body, RequestBody};
use session::{Credential, Live, Login, Sessions};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ferrokube-session";

/// The environment variable naming a directory to serve the pages from
/// instead of the embedded copy (read on every request).
pub(crate) const DIR_ENV: &str = "FERROKUBE_DASHBOARD_DIR";

/// The dashboard of one API server.
pub(crate) struct Dashboard {
    enabled: bool,
    dir: Option<PathBuf>,
    certs: ClientCertAuthenticator,
    sessions: Sessions,
}

/// Whether `path` is the dashboard's.
pub(crate) fn is_dashboard_path(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// Whether `path` is a proxy subresource (`.../{resource}/{name}/proxy...`
/// of services, pods and nodes): what it serves is a backend's, on this
/// server's origin, so a session cookie must never reach it nor
/// authenticate it (a page served there could read the session's CSRF
/// token).
pub(crate) fn is_proxy_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return false,
    };
    let rest = match rest {
        ["namespaces", _ns, more @ ..] if more.len() >= 3 => more,
        other => other,
    };
    matches!(rest, [_resource, _name, "proxy", ..])
}

/// Removes the session cookie and the CSRF token from `headers`, so that
/// nothing the request is passed on to (a kubelet, a proxied backend, an
/// extension API server) sees them.
pub(crate) fn strip_session(headers: &mut HeaderMap) {
    headers.remove(csrf::CSRF_HEADER);
    if session_cookie(headers).is_none() {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split_once('=').map(|(n, _)| n) != Some(COOKIE))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// The session cookie's value among the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

fn session_json(live: &Live) -> Value {
    json!({
        "username": live.user.name,
        "groups": live.user.groups,
        "csrfToken": live.csrf,
    })
}

fn with_header(mut r: Response<Body>, name: header::HeaderName, value: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(name, v);
    }
    r
}

fn empty_body() -> RequestBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync()
}

fn no_store(r: Response<Body>) -> Response<Body> {
    with_header(r, header::CACHE_CONTROL, "no-store")
}

fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

/// RFC 3339 in whole seconds, UTC.
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

impl Dashboard {
    /// The dashboard, served unless `enabled` is false; its pages from
    /// `FERROKUBE_DASHBOARD_DIR` when the environment names one.
    pub(crate) fn new(enabled: bool, certs: ClientCertAuthenticator) -> Dashboard {
        let dir = std::env::var_os(DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if let (true, Some(d)) = (enabled, &dir) {
            tracing::info!(dir = %d.display(), "serving the dashboard's pages from a directory");
        }
        Dashboard {
            enabled,
            dir,
            certs,
            sessions: Sessions::default(),
        }
    }

    /// The user of a request's session cookie: `Ok(None)` without one (or
    /// with the dashboard off), 401 for a session that is not (or no
    /// longer) live, 403 for a write or upgrade that fails the CSRF check.
    pub(crate) fn authenticate(
        &self,
        tokens: &TokenAuthenticator,
        req: &Request<RequestBody>,
    ) -> Result<Option<UserInfo>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let Some(id) = session_cookie(req.headers()) else {
            return Ok(None);
        };
        if is_proxy_path(req.uri().path()) {
            return Ok(None);
        }
        let live = self
            .sessions
            .get(id, tokens)
            .ok_or_else(ApiError::unauthorized)?;
        csrf::check(req.method(), req.uri(), req.headers(), &live.csrf)?;
        Ok(Some(live.user))
    }

    /// Serves a `/dashboard...` path.
    pub(crate) async fn serve(
        &self,
        tokens: &TokenAuthenticator,
        req: Request<RequestBody>,
        cert_user: Option<UserInfo>,
    ) -> Response<Body> {
        let path = req.uri().path().to_string();
        let login = self.enabled && path == "/dashboard/session" && req.method() == Method::POST;
        let req = if login {
            req
        } else {
            // Nothing else reads a body: it is drained before the answer.
            let (parts, body) = req.into_parts();
            crate::server::drain(body).await;
            Request::from_parts(parts, empty_body())
        };
        if !self.enabled {
            return assets::not_found();
        }
        let mut r = match path.as_str() {
            "/dashboard" => {
                let r = crate::server::full(
                    StatusCode::MOVED_PERMANENTLY,
                    "text/html; charset=utf-8",
                    Bytes::from_static(b"<a href=\"/dashboard/\">Moved Permanently</a>.\n"),
                );
                with_header(r, header::LOCATION, "/dashboard/")
            }
            "/dashboard/session" => self
                .session(tokens, req)
                .await
                .unwrap_or_else(|e| no_store(crate::server::error_response(&e))),
            "/dashboard/codes" => self
                .codes(tokens, req, cert_user)
                .await
                .unwrap_or_else(|e| no_store(crate::server::error_response(&e))),
            _ => {
                let rel = path.strip_prefix("/dashboard/").unwrap_or("");
                assets::serve(req.method(), req.headers(), rel, self.dir.as_deref())
            }
        };
        assets::secure_headers(&mut r);
        r
    }

    /// `/dashboard/session`: log in (POST), who (GET), log out (DELETE).
    async fn session(
        &self,
        tokens: &TokenAuthenticator,
        req: Request<RequestBody>,
    ) -> Result<Response<Body>, ApiError> {
        let method = req.method().clone();
        match method {
            Method::POST => self.log_in(tokens, req).await,
            Method::GET | Method::HEAD => {
                let live = session_cookie(req.headers())
                    .and_then(|id| self.sessions.get(id, tokens))
                    .ok_or_else(ApiError::unauthorized)?;
                Ok(no_store(crate::server::json_response(
                    StatusCode::OK,
                    &session_json(&live),
                )))
            }
            Method::DELETE => {
                let id = session_cookie(req.headers()).ok_or_else(ApiError::unauthorized)?;
                let live = self
                    .sessions
                    .get(id, tokens)
                    .ok_or_else(ApiError::unauthorized)?;
                csrf::check(req.method(), req.uri(), req.headers(), &live.csrf)?;
                self.sessions.remove(id);
                tracing::info!(user = %live.user.name, "dashboard session ended (logout)");
                let status = json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "code": 200,
                });
                let r = crate::server::json_response(StatusCode::OK, &status);
                Ok(no_store(with_header(
                    r,
                    header::SET_COOKIE,
                    &cleared_cookie(),
                )))
            }
            _ => Err(method_not_allowed()),
        }
    }

    async fn log_in(
        &self,
        tokens: &TokenAuthenticator,
        req: Request<RequestBody>,
    ) -> Result<Response<Body>, ApiError> {
        // A login from another site's page would sign the browser in as
        // someone else: browsers name the page's origin on a POST.
        let other_origin = csrf::same_origin(req.headers(), req.uri()) == Some(false);
        let body = crate::server::read_body(req.into_body()).await?;
        if other_origin {
            return Err(ApiError::forbidden(
                "a dashboard login must come from the server's own origin",
            ));
        }
        let auth = login::Authenticators {
            tokens,
            certs: &self.certs,
        };
        let login = login::login(&body, &auth, &self.sessions).inspect_err(|e| {
            tracing::info!(code = e.code, reason = %e.message, "dashboard login refused");
        })?;
        let (id, live) = self
            .sessions
            .create(login)
            .ok_or_else(|| ApiError::internal("no random bytes for a session id"))?;
        tracing::info!(user = %live.user.name, "dashboard session started");
        let r = crate::server::json_response(StatusCode::CREATED, &session_json(&live));
        Ok(no_store(with_header(
            r,
            header::SET_COOKIE,
            &set_cookie(&id),
        )))
    }

    /// `POST /dashboard/codes`: a one-time code logging in as the caller,
    /// who is authenticated by a client certificate or a bearer token (not
    /// by a session: a code outlives no session it could extend).
    async fn codes(
        &self,
        tokens: &TokenAuthenticator,
        req: Request<RequestBody>,
        cert_user: Option<UserInfo>,
    ) -> Result<Response<Body>, ApiError> {
        if req.method() != Method::POST {
            return Err(method_not_allowed());
        }

        let login = match cert_user {
            Some(user) => Login {
                user,
                credential: Credential::Proven,
                not_after: req.extensions().get::<CertNotAfter>().map(|n| n.0),
            },
            None => {
                let authorization = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let user = tokens
                    .authenticate(authorization)
                    .ok_or_else(ApiError::unauthorized)?;
                let token = authorization
                    .split_once(' ')
                    .map(|(_, t)| t.trim().to_string())
                    .unwrap_or_default();
                Login {
                    user,
                    credential: Credential::Token(token),
                    not_after: None,
                }
            }
        };
        let who = login.user.name.clone();
        let (code, expires) = self
            .sessions
            .create_code(login)
            .ok_or_else(|| ApiError::internal("no random bytes for a code"))?;
        tracing::info!(user = %who, "dashboard login code issued");
        let answer = json!({"code": code, "expiresAt": rfc3339(expires)});
        Ok(no_store(crate::server::json_response(
            StatusCode::CREATED,
            &answer,
        )))
    }
}

/// Request headers from name/value pairs, for the modules' tests.
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; ferrokube-session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        let mut h2 = HeaderMap::new();
        h2.append(header::COOKIE, "a=1".parse().unwrap());
        h2.append(header::COOKIE, "ferrokube-session=xyz".parse().unwrap());
        assert_eq!(session_cookie(&h2), Some("xyz"), "HTTP/2 splits cookies");
        let mut h3 = HeaderMap::new();
        h3.append(header::COOKIE, "ferrokube-session=".parse().unwrap());
        assert_eq!(session_cookie(&h3), None);
    }

    #[test]
    fn proxy_paths() {
        assert!(is_proxy_path("/api/v1/namespaces/d/services/web:80/proxy/"));
        assert!(is_proxy_path("/api/v1/namespaces/d/pods/p/proxy"));
        assert!(is_proxy_path("/api/v1/nodes/n/proxy/metrics"));
        assert!(!is_proxy_path("/api/v1/namespaces/d/configmaps/proxy"));
        assert!(!is_proxy_path("/api/v1/namespaces/proxy/pods/proxy"));
        assert!(!is_proxy_path("/api/v1/namespaces/d/pods/p/log"));
        assert!(!is_proxy_path("/dashboard/proxy/x/proxy"));
    }

    #[test]
    fn the_session_is_stripped_before_passing_a_request_on() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; ferrokube-session=abc".parse().unwrap(),
        );
        h.append(header::COOKIE, "b=2".parse().unwrap());
        h.insert(csrf::CSRF_HEADER, "t".parse().unwrap());
        strip_session(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
        assert!(h.get(csrf::CSRF_HEADER).is_none());
        let mut only = HeaderMap::new();
        only.append(header::COOKIE, "ferrokube-session=abc".parse().unwrap());
        strip_session(&mut only);
        assert!(only.get(header::COOKIE).is_none());
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("id");
        for a in ["Path=/", "HttpOnly", "Secure", "SameSite=Strict"] {
            assert!(c.contains(a), "{c}");
        }
        assert!(cleared_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        assert_eq!(rfc3339(t), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn paths() {
        assert!(is_dashboard_path("/dashboard"));
        assert!(is_dashboard_path("/dashboard/js/app.js"));
        assert!(!is_dashboard_path("/dashboards"));
        assert!(!is_dashboard_path("/api"));
    }
}
