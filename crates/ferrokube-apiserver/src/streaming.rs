//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: checked
//! here (the container is one of the pod's, the pod is on a node), then
//! proxied to the kubelet of the pod's node, at the Node's address
//! (`status.addresses`: InternalIP first) and port
//! (`status.daemonEndpoints.kubeletEndpoint.Port`), over HTTPS with the
//! `kube-apiserver-kubelet-client` certificate. The kubelet's serving
//! certificate is not verified (Kubernetes without
//! `--kubelet-certificate-authority` does the same).
//!
//! Logs stream back as `text/plain`, or, to a WebSocket request, as
//! WebSocket messages (`binary.k8s.io` or `base64.binary.k8s.io`, see
//! `wsstream::send_log`). exec, attach and port-forward are
//! upgrade requests: the request goes to the kubelet with its `Upgrade`,
//! `Connection` and `X-Stream-Protocol-Version` headers, the kubelet's answer
//! comes back, and after `101 Switching Protocols` both connections are
//! joined byte for byte. The kubelet's refusals come back as `Status`
//! errors; nothing here panics on a failed upgrade.
//!
//! WebSockets: kubectl 1.30+ first asks for a WebSocket with
//! `v5.channel.k8s.io` (exec, attach) or `SPDY/3.1+portforward.k8s.io`
//! (port-forward tunnelled over a WebSocket), protocols containerd 1.6's
//! streaming server does not speak. As Kubernetes' API server does, this
//! server answers those itself (`101` with the chosen subprotocol) after
//! opening a SPDY/3.1 upgrade to the kubelet (`v4.channel.k8s.io` or
//! `portforward.k8s.io`, a POST to the same URL), and translates between
//! the two (`wsstream`, with the SPDY client in `spdy`). Errors before the
//! upgrades (bad options, an unreachable kubelet, its refusal) are `Status`
//! errors as for SPDY. SPDY/3.1 and the older WebSocket protocols
//! (`v4.channel.k8s.io` and before) still go to the node byte for byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_api::status::ApiError;
use ferrokube_pki::tls::AnyServerCert;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;

use crate::options::Query;
use crate::request_info::RequestInfo;
use crate::rest::Rest;

type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) use ferrokube_metrics::kubelet_addr;

/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTPS to kubelets with the API server's client certificate.
#[derive(Clone)]
pub(crate) struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    pub(crate) fn new(cert_pem: &str, key_pem: &str) -> anyhow::Result<KubeletClient> {
        let cfg = ferrokube_pki::tls::kubelet_client_config(cert_pem, key_pem)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(KubeletClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// An HTTP/1.1 connection (upgrades allowed) to the kubelet at `addr`.
    pub(crate) async fn connect<B>(
        &self,
        addr: SocketAddr,
    ) -> Result<hyper::client::conn::http1::SendRequest<B>, ApiError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let unreachable = |e: &dyn std::fmt::Display| {
            ApiError::internal(format!("dialing the kubelet at {addr}: {e}"))
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable(&"timed out"))?
            .map_err(|e| unreachable(&e))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
            .await
            .map_err(|_| unreachable(&"TLS handshake timed out"))?
            .map_err(|e| unreachable(&e))?;
        http1(tls).await.map_err(|e| unreachable(&e))
    }
}

/// An HTTP/1.1 connection (upgrades allowed) to `addr`, over TLS when
/// `https` (any serving certificate accepted, no client certificate), for
/// the proxy subresources' pods and service endpoints.
pub(crate) async fn dial<B>(
    addr: SocketAddr,
    https: bool,
) -> Result<hyper::client::conn::http1::SendRequest<B>, DialError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| DialError::ConnectTimeout(addr))?
        .map_err(|e| DialError::Connect(addr, e))?;
    let _ = tcp.set_nodelay(true);
    if !https {
        return http1(tcp).await.map_err(DialError::Http);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(DialError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert::new(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| DialError::HandshakeTimeout(addr))?
    .map_err(DialError::Handshake)?;
    http1(tls).await.map_err(DialError::Http)
}

/// Why a proxied pod or endpoint could not be reached (the proxy's 503 says
/// `error trying to reach service: ` and this).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    /// No TCP connection within the connect timeout (Go's words).
    #[error("dial tcp {0}: i/o timeout")]
    ConnectTimeout(SocketAddr),
    /// The TCP connection was refused or failed.
    #[error("dial tcp {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// No TLS configuration for the client (no protocol version in common
    /// with the crypto provider).
    #[error("{0}")]
    Tls(rustls::Error),
    /// No TLS handshake within the connect timeout.
    #[error("TLS handshake with {0} timed out")]
    HandshakeTimeout(SocketAddr),
    /// The TLS handshake failed.
    #[error("{0}")]
    Handshake(std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error("{0}")]
    Http(hyper::Error),
}

/// An HTTP/1.1 client over `io` (upgrades allowed), the connection driven by
/// a task of its own.
pub(crate) async fn http1<IO, B>(
    io: IO,
) -> Result<hyper::client::conn::http1::SendRequest<B>, hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "an upstream connection ended");
        }
    });
    Ok(sender)
}

/// The names of a pod's containers: regular, init, ephemeral.
fn container_names(pod: &Value) -> (Vec<String>, Vec<String>) {
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let mut all = names("initContainers");
    all.extend(names("containers"));
    all.extend(names("ephemeralContainers"));
    (names("containers"), all)
}

/// The container a request is about, as Kubernetes picks and checks it.
pub(crate) fn pick_container(pod: &Value, name: &str, requested: &str) -> Result<String, ApiError> {
    let (regular, all) = container_names(pod);
    if requested.is_empty() {
        return match regular.len() {
            1 => Ok(regular[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                all.join(" ")
            ))),
        };
    }
    if !all.iter().any(|c| c == requested) {
        return Err(ApiError::bad_request(format!(
            "container {requested} is not valid for pod {name}"
        )));
    }
    Ok(requested.to_string())
}

/// `pods/log` query options, checked as Kubernetes does, as the kubelet's
/// query.
pub(crate) fn log_query(query: &Query) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let int = |k: &str, min: i64, msg: &str| -> Result<Option<i64>, ApiError> {
        match query.get(k) {
            None => Ok(None),
            Some(v) => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!("{k}: Invalid value: {v:?}: must be an integer"))
                })?;
                if n < min {
                    return Err(ApiError::bad_request(format!(
                        "{k}: Invalid value: {n}: {msg}"
                    )));
                }
                Ok(Some(n))
            }
        }
    };
    for (k, min, msg) in [
        ("tailLines", 0, "must be greater than or equal to 0"),
        ("limitBytes", 1, "must be greater than 0"),
        ("sinceSeconds", 1, "must be greater than 0"),
    ] {
        if let Some(n) = int(k, min, msg)? {
            out.push((k.to_string(), n.to_string()));
        }
    }
    if let Some(t) = query.get("sinceTime") {
        if t.parse::<jiff::Timestamp>().is_err() {
            return Err(ApiError::bad_request(format!(
                "sinceTime: Invalid value: {t:?}: must be an RFC 3339 time"
            )));
        }
        if query.get("sinceSeconds").is_some() {
            return Err(ApiError::bad_request(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        out.push(("sinceTime".into(), t.to_string()));
    }
    for k in ["follow", "previous", "timestamps"] {
        match query.get(k) {
            None | Some("false" | "0") => {}
            Some("true" | "1" | "") => out.push((k.to_string(), "true".into())),
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "{k}: Invalid value: {v:?}: must be a boolean"
                )))
            }
        }
    }
    Ok(out)
}

fn truthy(query: &Query, k: &str) -> bool {
    matches!(
        query.get(k),
        Some("true" | "1" | "True" | "TRUE" | "t" | "T")
    )
}

/// exec and attach options as the kubelet's query (`input`, `output`,
/// `error`, `tty`, `command`).
pub(crate) fn stream_query(query: &Query, exec: bool) -> Result<Vec<(String, String)>, ApiError> {
    let (stdin, stdout, stderr, tty) = (
        truthy(query, "stdin"),
        truthy(query, "stdout"),
        truthy(query, "stderr"),
        truthy(query, "tty"),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let mut out = Vec::new();
    for (k, on) in [
        ("input", stdin),
        ("output", stdout),
        ("error", stderr),
        ("tty", tty),
    ] {
        if on {
            out.push((k.to_string(), "1".into()));
        }
    }
    if exec {
        let command = query.all("command");
        if command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        out.extend(command.iter().map(|c| ("command".into(), c.to_string())));
    }
    Ok(out)
}

/// Headers not passed to the kubelet.
fn skipped(name: &header::HeaderName) -> bool {
    name == header::HOST
        || name == header::AUTHORIZATION
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name.as_str().starts_with("impersonate-")
        || name.as_str().starts_with("proxy-")
}

/// The error a kubelet's non-success answer becomes.
async fn kubelet_error(resp: Response<Incoming>) -> ApiError {
    let status = resp.status();
    error_of(status, &error_body(resp).await)
}

/// The error a kubelet's refusal of an upgrade becomes: its Status as it is,
/// else its text as Kubernetes' stream client reports it (`unable to upgrade
/// connection: container not found ("app")`), an internal error.
async fn kubelet_upgrade_error(resp: Response<Incoming>) -> ApiError {
    let status = resp.status();
    let body = error_body(resp).await;
    if status == StatusCode::BAD_REQUEST || status_message(&body).is_some() {
        return error_of(status, &body);
    }
    let msg = String::from_utf8_lossy(&body).trim().to_string();
    ApiError::internal(format!("unable to upgrade connection: {msg}"))
}

async fn error_body(resp: Response<Incoming>) -> Bytes {
    http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// The message of a Status body.
fn status_message(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    (v.get("kind").and_then(Value::as_str) == Some("Status")).then(|| {
        v.get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    })
}

fn error_of(status: StatusCode, body: &[u8]) -> ApiError {
    if let Some(msg) = status_message(body) {
        return match status.as_u16() {
            400 | 404 => ApiError::bad_request(msg),
            _ => ApiError::internal(msg),
        };
    }
    let msg = String::from_utf8_lossy(body).trim().to_string();
    match status.as_u16() {
        400 | 404 => ApiError::bad_request(msg),
        code => ApiError::internal(format!("the kubelet answered {code}: {msg}")),
    }
}

fn kubelet_path(base: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return base.to_string();
    }
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{base}?{q}")
}

fn seg(s: &str) -> String {
    // Names are DNS labels/subdomains; anything else is escaped anyway.
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Once both connections have upgraded, copies bytes between them until
/// either ends (in a task of its own).
pub(crate) fn join_upgraded(
    client_side: hyper::upgrade::OnUpgrade,
    node_side: hyper::upgrade::OnUpgrade,
) {
    tokio::spawn(async move {
        match (client_side.await, node_side.await) {
            (Ok(c), Ok(n)) => {
                let (mut c, mut n) = (TokioIo::new(c), TokioIo::new(n));
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut n).await {
                    tracing::debug!(error = %e, "upgraded connection ended");
                }
            }
            (Err(e), _) | (_, Err(e)) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
}

/// `101 Switching Protocols` to the WebSocket `ws` (with its subprotocol,
/// unless that is none).
fn switching_to_websocket(ws: &crate::wsstream::WsRequest) -> Result<Response<Body>, ApiError> {
    let mut r = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, &ws.accept);
    if !ws.protocol.is_empty() {
        r = r.header(header::SEC_WEBSOCKET_PROTOCOL, ws.protocol);
    }
    r.body(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    )
    .map_err(ApiError::internal)
}

/// The kubelet's path and query for subresource `sub` of `pod`: the pod's
/// ports to forward, or the container's logs, exec or attach.
fn kubelet_target(
    pod: &Value,
    info: &RequestInfo,
    query: &Query,
) -> Result<(String, Vec<(String, String)>), ApiError> {
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    if info.subresource == "portforward" {
        let ports: Vec<(String, String)> = query
            .all("ports")
            .iter()
            .map(|p| ("port".to_string(), p.to_string()))
            .collect();
        return Ok((format!("/portForward/{}/{}", seg(ns), seg(name)), ports));
    }
    let container = pick_container(pod, name, query.get("container").unwrap_or(""))?;
    let (base, pairs) = match info.subresource.as_str() {
        "log" => ("containerLogs", log_query(query)?),
        "exec" => ("exec", stream_query(query, true)?),
        _ => ("attach", stream_query(query, false)?),
    };
    Ok((
        format!("/{base}/{}/{}/{}", seg(ns), seg(name), seg(&container)),
        pairs,
    ))
}

/// The address of the kubelet of the node pod `name` runs on.
async fn pod_kubelet_addr(rest: &Rest, pod: &Value, name: &str) -> Result<SocketAddr, ApiError> {
    let nodes = rest
        .kinds
        .get("", "v1", "nodes")
        .ok_or_else(ApiError::no_such_path)?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = rest.get(&nodes, "", node_name).await?;
    kubelet_addr(&node).ok_or_else(|| {
        ApiError::internal(format!(
            "node {node_name:?} reports no address for its kubelet"
        ))
    })
}

/// The request to the kubelet at `addr` for `uri`: a POST upgrading to
/// SPDY/3.1 with `spdy` as stream protocol when a WebSocket is translated,
/// else the client's method (and, for an upgrade, its headers).
fn kubelet_request(
    req: &Request<crate::server::RequestBody>,
    spdy: Option<&str>,
    upgrade: bool,
    addr: SocketAddr,
    uri: &str,
) -> Result<Request<Empty<Bytes>>, ApiError> {
    let mut out = Request::builder()
        .method(if spdy.is_some() {
            &http::Method::POST
        } else {
            req.method()
        })
        .uri(uri)
        .header(header::HOST, addr.to_string());
    if let Some(spdy_version) = spdy {
        out = out
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", spdy_version);
    } else if upgrade {
        for (k, v) in req.headers() {
            if !skipped(k) {
                out = out.header(k, v);
            }
        }
    }
    out.body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::bad_request(format!("bad request headers: {e}")))
}

/// The kubelet's answer to a log request passed on: as text, or over the
/// client's WebSocket when it asked for one.
async fn log_response(
    mut req: Request<crate::server::RequestBody>,
    resp: Response<Incoming>,
    log_socket: Option<crate::wsstream::WsRequest>,
) -> Result<Response<Body>, ApiError> {
    if !resp.status().is_success() {
        return Err(kubelet_error(resp).await);
    }
    if let Some(ws) = log_socket {
        let client_side = hyper::upgrade::on(&mut req);
        let body = resp.into_body();
        let protocol = ws.protocol;
        tokio::spawn(async move {
            match client_side.await {
                Ok(c) => {
                    let socket = crate::wsstream::server_socket(c).await;
                    crate::wsstream::send_log(socket, body, protocol).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        return switching_to_websocket(&ws);
    }
    let body = resp.into_body().map_err(std::io::Error::other).boxed();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

/// Answers a WebSocket translated to SPDY: checks the kubelet speaks the
/// stream protocol asked for, then joins the client's WebSocket and the
/// node's SPDY connection once both are upgraded.
fn translate_upgrade(
    ws: &crate::wsstream::WsRequest,
    resp: &Response<Incoming>,
    node_side: hyper::upgrade::OnUpgrade,
    client_side: Option<hyper::upgrade::OnUpgrade>,
    (sub, spdy_version, addr): (&str, &str, SocketAddr),
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    // The translation speaks v4 to the node (its error stream carries a
    // Status); a node that picked something else is refused here, before
    // the client's upgrade.
    let picked = resp
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if picked != spdy_version {
        return Err(ApiError::internal(format!(
            "the kubelet at {addr} answered with stream protocol {picked:?}, not {spdy_version}"
        )));
    }
    let Some(client_side) = client_side else {
        return Err(ApiError::internal("no upgrade on the client's connection"));
    };
    let streams = crate::wsstream::Streams {
        stdin: truthy(query, "stdin"),
        stdout: truthy(query, "stdout"),
        stderr: truthy(query, "stderr"),
        tty: truthy(query, "tty"),
    };
    let portforward = sub == "portforward";
    tokio::spawn(async move {
        match (client_side.await, node_side.await) {
            (Ok(c), Ok(n)) => {
                let socket = crate::wsstream::server_socket(c).await;
                let node = TokioIo::new(n);
                if portforward {
                    crate::wsstream::tunnel(socket, node).await;
                } else {
                    crate::wsstream::exec(socket, node, streams).await;
                }
            }
            (Err(e), _) | (_, Err(e)) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    switching_to_websocket(ws)
}

/// Serves one of the four subresources of pod `ns/name`.
pub(crate) async fn serve(
    rest: &Rest,
    kubelet: &KubeletClient,
    info: &RequestInfo,
    mut req: Request<crate::server::RequestBody>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (sub, verb) = (info.subresource.as_str(), info.verb.as_str());
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    let upgrade = matches!(sub, "exec" | "attach" | "portforward");
    match (sub, verb) {
        ("log", "get") => {}
        (_, "get" | "create") if upgrade => {}
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the {sub} subresource of pods does not allow {verb}"
            )))
        }
    }
    // WebSockets for v5.channel.k8s.io and port-forward tunnelling are
    // answered here and translated to SPDY towards the kubelet.
    let translate = if upgrade {
        crate::wsstream::translated(req.headers(), sub)
            .map_err(|e| ApiError::bad_request(e.to_string()))?
    } else {
        None
    };
    // Logs over a WebSocket are answered here too (the kubelet streams text).
    let log_socket = if sub == "log" {
        crate::wsstream::log_socket(req.headers())
            .map_err(|e| ApiError::bad_request(e.to_string()))?
    } else {
        None
    };
    let pods = rest
        .kinds
        .get("", "v1", "pods")
        .ok_or_else(ApiError::no_such_path)?;
    let pod = rest.get(&pods, ns, name).await?;
    let (path, pairs) = kubelet_target(&pod, info, query)?;
    if upgrade {
        let user = req.extensions().get::<crate::authn::UserInfo>();
        crate::webhook::admit_connect(rest, &pods, sub, ns, name, user, query).await?;
    }
    if upgrade && !req.headers().contains_key(header::UPGRADE) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let addr = pod_kubelet_addr(rest, &pod, name).await?;
    let mut sender = kubelet.connect(addr).await?;
    // What a translated request speaks to the kubelet (SPDY/3.1).
    let spdy_version = if sub == "portforward" {
        "portforward.k8s.io"
    } else {
        "v4.channel.k8s.io"
    };
    let spdy = translate.is_some().then_some(spdy_version);
    let out = kubelet_request(&req, spdy, upgrade, addr, &kubelet_path(&path, &pairs))?;
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|e| ApiError::internal(format!("the kubelet at {addr}: {e}")))?;
    if !upgrade {
        return log_response(req, resp, log_socket).await;
    }
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(kubelet_upgrade_error(resp).await);
    }
    let node_side = hyper::upgrade::on(&mut resp);
    let mut client_side = client_side;
    if let Some(ws) = translate {
        let to_node = (sub, spdy_version, addr);
        return translate_upgrade(&ws, &resp, node_side, client_side.take(), to_node, query);
    }
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        answer = answer.header(k, v);
    }
    if let Some(client_side) = client_side {
        join_upgraded(client_side, node_side);
    }
    answer
        .body(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed(),
        )
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_are_picked_and_checked_as_kubernetes_does() {
        let one = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(pick_container(&one, "p", "").unwrap(), "app");
        assert_eq!(pick_container(&one, "p", "app").unwrap(), "app");
        let e = pick_container(&one, "p", "foo").unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(e.message, "container foo is not valid for pod p");
        let two = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(pick_container(&two, "p", "init").unwrap(), "init");
        assert_eq!(
            pick_container(&two, "p", "").unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
    }

    #[test]
    fn the_kubelet_address_comes_from_the_node_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"},
                          {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(kubelet_addr(&node), Some("10.0.0.5:12345".parse().unwrap()));
        let no_port =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        assert_eq!(
            kubelet_addr(&no_port).unwrap().port(),
            ferrokube_metrics::DEFAULT_KUBELET_PORT
        );
        assert_eq!(kubelet_addr(&json!({})), None);
    }

    #[test]
    fn log_options_are_checked_and_passed_on() {
        let q = Query::parse(Some("follow=true&tailLines=5&timestamps=1&container=c"));
        assert_eq!(
            log_query(&q).unwrap(),
            vec![
                ("tailLines".to_string(), "5".to_string()),
                ("follow".to_string(), "true".to_string()),
                ("timestamps".to_string(), "true".to_string()),
            ]
        );
        for bad in [
            "tailLines=-1",
            "limitBytes=0",
            "sinceSeconds=0",
            "sinceSeconds=x",
            "sinceTime=yesterday",
            "sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z",
            "follow=maybe",
        ] {
            let e = log_query(&Query::parse(Some(bad))).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    #[test]
    fn exec_options_become_the_kubelets() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true&stderr=false&tty=true",
        ));
        assert_eq!(
            stream_query(&q, true).unwrap(),
            vec![
                ("input".to_string(), "1".to_string()),
                ("output".to_string(), "1".to_string()),
                ("tty".to_string(), "1".to_string()),
                ("command".to_string(), "sh".to_string()),
                ("command".to_string(), "-c".to_string()),
                ("command".to_string(), "echo hi".to_string()),
            ]
        );
        assert!(stream_query(&Query::parse(Some("command=ls")), true).is_err());
        assert!(stream_query(&Query::parse(Some("stdout=true")), true).is_err());
        assert!(stream_query(&Query::parse(Some("stdout=true")), false).is_ok());
    }
}
