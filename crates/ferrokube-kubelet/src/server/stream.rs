//! `/exec`, `/attach` and `/portForward`: the runtime's streaming server does
//! the protocol work. For each request the agent asks CRI (`Exec`, `Attach`,
//! `PortForward`) for a one-time URL on that server (containerd's, on
//! loopback) and proxies the client's upgrade request to it unchanged: the
//! request line and headers go through (the `Upgrade`, `Connection` and
//! `X-Stream-Protocol-Version` headers say what the client speaks), the
//! runtime's answer comes back, and after a `101 Switching Protocols` the two
//! connections are joined byte for byte until either side closes.
//!
//! So this node speaks whatever the runtime does. containerd 1.6 serves SPDY/3.1
//! with the `v4.channel.k8s.io` (and older) exec protocols and
//! `portforward.k8s.io`, and WebSockets with the `v4` and older channel
//! protocols; it does not know `v5.channel.k8s.io` nor port-forward tunnelled
//! over WebSockets. The API server answers those newer WebSocket requests
//! itself and comes here with SPDY/3.1 (see ferrokube-apiserver's
//! `streaming` and `wsstream`), so kubectl 1.30+ works over WebSockets without
//! the node knowing.

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{text, Body, State};
use crate::cri::api;
use crate::server::lookup;

/// Headers that are not passed on to the runtime.
fn skipped(name: &header::HeaderName) -> bool {
    name == header::HOST
        || name == header::AUTHORIZATION
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name.as_str().starts_with("proxy-")
}

/// Proxies an upgrade request to `url` (`http://host:port/path`), then joins
/// the two connections.
pub(crate) async fn proxy_upgrade(mut req: Request<Incoming>, url: &str) -> Response<Body> {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the runtime returned a bad streaming URL {url:?}: {e}"),
            )
        }
    };
    let (Some(authority), Some(path)) = (uri.authority().cloned(), uri.path_and_query().cloned())
    else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime returned a bad streaming URL {url:?}"),
        );
    };
    if uri.scheme_str() != Some("http") {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("streaming URL {url:?}: only http is supported"),
        );
    }
    let tcp = match tokio::net::TcpStream::connect(authority.as_str()).await {
        Ok(t) => t,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("connecting to the runtime's streaming server: {e}"),
            )
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(x) => x,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("the runtime's streaming server: {e}"),
            )
        }
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "streaming connection to the runtime ended");
        }
    });
    let mut out = Request::builder().method(req.method()).uri(path.as_str());
    for (k, v) in req.headers() {
        if !skipped(k) {
            out = out.header(k, v);
        }
    }
    let out = match out
        .header(header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad request headers: {e}")),
    };
    let client_side = hyper::upgrade::on(&mut req);
    let mut resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("the runtime's streaming server: {e}"),
            )
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The runtime's refusal, as it is.
        let (parts, body) = resp.into_parts();
        return Response::from_parts(parts, body.map_err(std::io::Error::other).boxed());
    }
    tracing::debug!(url, "the runtime's streaming server upgraded");
    let runtime_side = hyper::upgrade::on(&mut resp);
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        answer = answer.header(k, v);
    }
    tokio::spawn(async move {
        match (client_side.await, runtime_side.await) {
            (Ok(c), Ok(r)) => {
                let (mut c, mut r) = (TokioIo::new(c), TokioIo::new(r));
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut r).await {
                    tracing::debug!(error = %e, "stream ended");
                }
            }
            (Err(e), _) | (_, Err(e)) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    answer
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The streams a request asks for, from the kubelet's query names (`input`,
/// `output`, `error`, `tty`) or the API's (`stdin`, `stdout`, `stderr`).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
    pub ports: Vec<i32>,
}

/// Why an exec, attach or port-forward request's options are refused (a 400
/// with this text, Kubernetes' words).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum StreamOptionsError {
    /// A `port` parameter is not a number from 1 to 65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// An exec or attach asks for none of stdin, stdout and stderr.
    #[error("you must specify at least 1 of stdin, stdout, stderr")]
    NoStreams,
}

impl StreamOptions {
    pub(crate) fn from_query(
        pairs: &[(String, String)],
    ) -> Result<StreamOptions, StreamOptionsError> {
        let on = |v: &str| matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T");
        let mut o = StreamOptions::default();
        for (k, v) in pairs {
            match k.as_str() {
                "input" | "stdin" => o.stdin = on(v),
                "output" | "stdout" => o.stdout = on(v),
                "error" | "stderr" => o.stderr = on(v),
                "tty" => o.tty = on(v),
                "command" => o.command.push(v.clone()),
                "port" | "ports" => {
                    for p in v.split(',').filter(|p| !p.is_empty()) {
                        let port: i32 =
                            p.trim()
                                .parse()
                                .ok()
                                .filter(|n| (1..=65535).contains(n))
                                .ok_or_else(|| StreamOptionsError::InvalidPort(p.to_string()))?;
                        o.ports.push(port);
                    }
                }
                _ => {}
            }
        }
        Ok(o)
    }

    fn check_streams(&self) -> Result<(), StreamOptionsError> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(StreamOptionsError::NoStreams);
        }
        Ok(())
    }
}

/// The running instance of a container, or the answer Kubernetes' kubelet gives
/// when it has none (the container has exited, or never ran): a 500 whose text
/// is its `GetAttach` or `GetExec` error, which the API server passes on.
async fn running_container(
    state: &State,
    ns: &str,
    pod: &str,
    container: &str,
    attach: bool,
) -> Result<api::Container, Response<Body>> {
    let list = lookup::containers(state.runtime.as_ref(), ns, pod, container)
        .await
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()))?;
    list.into_iter().find(lookup::is_running).ok_or_else(|| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            not_running(ns, pod, container, attach),
        )
    })
}

/// Kubernetes' words for a container with no running instance.
fn not_running(ns: &str, pod: &str, container: &str, attach: bool) -> String {
    if attach {
        format!("container {container} not found in pod {pod}_{ns}")
    } else {
        format!("container not found ({container:?})")
    }
}

/// `/exec/{ns}/{pod}/{container}` and `/attach/...`.
pub(crate) async fn exec_or_attach(
    state: &State,
    req: Request<Incoming>,
    attach: bool,
    ns: &str,
    pod: &str,
    container: &str,
    query: &[(String, String)],
) -> Response<Body> {
    let mut opts = match StreamOptions::from_query(query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = opts.check_streams() {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    if opts.tty {
        // A terminal has one output stream.
        opts.stderr = false;
    }
    if !attach && opts.command.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command for the container",
        );
    }
    let c = match running_container(state, ns, pod, container, attach).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    tracing::debug!(ns, pod, container, id = %c.id, attach, "streaming to a running container");
    let url = if attach {
        state
            .runtime
            .attach(api::AttachRequest {
                container_id: c.id,
                stdin: opts.stdin,
                tty: opts.tty,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
    } else {
        state
            .runtime
            .exec(api::ExecRequest {
                container_id: c.id,
                cmd: opts.command,
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
    };
    match url {
        Ok(url) => proxy_upgrade(req, &url).await,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    }
}

/// `/portForward/{ns}/{pod}`.
pub(crate) async fn port_forward(
    state: &State,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    query: &[(String, String)],
) -> Response<Body> {
    let opts = match StreamOptions::from_query(query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let sandbox = match lookup::sandbox(state.runtime.as_ref(), ns, pod).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod {pod:?} in namespace {ns:?} has no running sandbox on this node"),
            )
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    };
    match state
        .runtime
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: opts.ports,
        })
        .await
    {
        Ok(url) => proxy_upgrade(req, &url).await,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    }
}

/// Query pairs of a request.
pub(crate) fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_options_take_both_spellings() {
        let o = StreamOptions::from_query(&q(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("input", "1"),
            ("stdout", "true"),
            ("tty", "false"),
        ]))
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo hi"]);
        assert!(o.stdin && o.stdout && !o.stderr && !o.tty);
        assert!(o.check_streams().is_ok());
        let none = StreamOptions::from_query(&q(&[("command", "ls")])).unwrap();
        assert_eq!(
            none.check_streams().unwrap_err().to_string(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        let ports = StreamOptions::from_query(&q(&[("port", "80,8080")])).unwrap();
        assert_eq!(ports.ports, [80, 8080]);
        assert!(StreamOptions::from_query(&q(&[("port", "0")])).is_err());
        assert!(StreamOptions::from_query(&q(&[("port", "http")])).is_err());
    }

    #[test]
    fn a_container_not_running_is_said_as_kubernetes_says_it() {
        assert_eq!(
            not_running("default", "web", "app", true),
            "container app not found in pod web_default"
        );
        assert_eq!(
            not_running("default", "web", "app", false),
            r#"container not found ("app")"#
        );
    }
}
