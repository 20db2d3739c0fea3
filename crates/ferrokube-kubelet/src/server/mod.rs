//! The node's HTTPS server (the kubelet's port, 10250 by default), which the
//! API server reaches for `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward`. Routes as in Kubernetes' kubelet:
//!
//! - `/healthz`: `ok`, open to anyone;
//! - `/containerLogs/{ns}/{pod}/{container}` (`logs`);
//! - `/metrics/resource`: CPU and memory of the node, its pods and their
//!   containers in Prometheus text (`metrics`);
//! - `/stats/summary`: the Summary API's JSON (`stats`);
//! - `/exec/{ns}/{pod}[/{uid}]/{container}`, `/attach/...`,
//!   `/portForward/{ns}/{pod}[/{uid}]` (`stream`).
//!
//! Serving certificate: self-signed, made at each start for the node's name,
//! address and loopback (Kubernetes' kubelet does the same without
//! `--tls-cert-file`); the API server does not verify it, like Kubernetes'
//! without `--kubelet-certificate-authority`.
//!
//! Authentication: every route but `/healthz` needs a client certificate
//! signed by the cluster CA (the API server's `kube-apiserver-kubelet-client`),
//! else 401. As in the API server, the TLS layer only asks for a certificate
//! and the chain is judged after the handshake, so a certificate from another
//! CA gets a 401, not a failed handshake. There is no authorization beyond
//! that (Kubernetes' kubelet asks the API server with SubjectAccessReviews, for
//! `/stats/` and `/metrics/` the `nodes/stats` subresource; the client
//! certificate the API server uses is the one allowed here).

pub(crate) mod host;
pub(crate) mod logs;
pub(crate) mod lookup;
pub(crate) mod metrics;
pub(crate) mod stats;
pub(crate) mod stream;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use tokio_util::sync::CancellationToken;

use ferrokube_pki::tls::RequestClientCert;

use crate::cri::Runtime;

type Body = BoxBody<Bytes, std::io::Error>;

/// What handlers use.
pub(crate) struct State {
    pub runtime: Arc<dyn Runtime>,
    /// To read a pod's status (why a container has no logs yet).
    pub client: Option<kube::Client>,
    /// The node's and pods' stats (`/stats/summary`, `/metrics/resource`).
    pub stats: stats::Collector,
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(msg.into()))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The listening server.
pub(crate) struct KubeletServer {
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    authenticator: Option<Arc<dyn ClientCertVerifier>>,
}

impl KubeletServer {
    /// Binds `bind:port` (port 0: any free port) and makes the serving
    /// certificate for `names` (DNS names and addresses). `client_ca_pem`: the
    /// CA whose client certificates are accepted (`None`: nobody is).
    pub(crate) async fn bind(
        bind: IpAddr,
        port: u16,
        names: Vec<String>,
        client_ca_pem: Option<&str>,
    ) -> anyhow::Result<KubeletServer> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let authenticator = match client_ca_pem {
            Some(pem) => {
                use rustls::pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(c.context("reading the cluster CA")?)?;
                }
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .allow_unauthenticated()
                .build()?;
                Some(v)
            }
            None => None,
        };
        let (cert, key) = self_signed(names)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?;
        let mut tls = match &authenticator {
            Some(ca) => {
                builder.with_client_cert_verifier(Arc::new(RequestClientCert::new(ca.clone())))
            }
            None => builder.with_no_client_auth(),
        }
        .with_single_cert(vec![cert], key)?;
        // Upgrades (exec, port-forward) need HTTP/1.1.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("listening on {bind}:{port} (the kubelet port)"))?;
        let addr = listener.local_addr()?;
        Ok(KubeletServer {
            addr,
            listener,
            tls: Arc::new(tls),
            authenticator,
        })
    }

    /// Serves until `cancel`.
    pub(crate) async fn serve(self, state: Arc<State>, cancel: CancellationToken) {
        tracing::info!(addr = %self.addr, "kubelet server listening");
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let state = state.clone();
            let authn = self.authenticator.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let authenticated = match (&authn, tls.get_ref().1.peer_certificates()) {
                    (Some(ca), Some(chain)) => chain.split_first().is_some_and(|(leaf, rest)| {
                        ca.verify_client_cert(leaf, rest, UnixTime::now()).is_ok()
                    }),
                    _ => false,
                };
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req, authenticated).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    _ = cancel.cancelled() => {}
                }
            });
        }
    }
}

fn self_signed(
    names: Vec<String>,
) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let key = rcgen::KeyPair::generate()?;
    let mut p = rcgen::CertificateParams::new(names)?;
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("ferrokube-kubelet@{}", jiff::Timestamp::now().as_second()),
    );
    let cert = p.self_signed(&key)?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

async fn handle(state: &State, req: Request<Incoming>, authenticated: bool) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    if !authenticated {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = stream::query_pairs(&req);
    let method = req.method().clone();
    let get_or_post = method == Method::GET || method == Method::POST;
    match segs.as_slice() {
        ["containerLogs", ns, pod, container] if method == Method::GET => {
            container_logs(state, ns, pod, container, &query).await
        }
        [op @ ("exec" | "attach"), ns, pod, rest @ ..]
            if get_or_post && (rest.len() == 1 || rest.len() == 2) =>
        {
            let container = rest[rest.len() - 1];
            let (ns, pod, attach) = (ns.to_string(), pod.to_string(), *op == "attach");
            stream::exec_or_attach(state, req, attach, &ns, &pod, container, &query).await
        }
        ["metrics", "resource"] if method == Method::GET => {
            let summary = state.stats.collect(state.runtime.as_ref(), false).await;
            if let Err(e) = &summary {
                tracing::debug!(error = %e, "resource metrics");
            }
            let mut r = text(StatusCode::OK, metrics::render(&summary));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        ["stats", "summary"] if method == Method::GET => {
            summary(
                state,
                query
                    .iter()
                    .any(|(k, v)| k == "only_cpu_and_memory" && v == "true"),
            )
            .await
        }
        ["portForward", ns, pod, ..] if get_or_post && segs.len() <= 4 => {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            stream::port_forward(state, req, &ns, &pod, &query).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `/stats/summary` (`?only_cpu_and_memory=true`: without the network and
/// filesystem figures, as Kubernetes' kubelet), 500 with the runtime's error.
async fn summary(state: &State, only_cpu_and_memory: bool) -> Response<Body> {
    match state
        .stats
        .collect(state.runtime.as_ref(), !only_cpu_and_memory)
        .await
    {
        Ok(s) => match serde_json::to_vec(&s) {
            Ok(body) => {
                let mut r = text(StatusCode::OK, String::new());
                *r.body_mut() = Full::new(Bytes::from(body))
                    .map_err(|never: Infallible| match never {})
                    .boxed();
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                r
            }
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Internal Error: failed to get summary stats: {}",
                e.message()
            ),
        ),
    }
}

/// Whether a container instance is still running (asked while following).
struct InstanceLiveness {
    runtime: Arc<dyn Runtime>,
    id: String,
}

#[async_trait::async_trait]
impl logs::Liveness for InstanceLiveness {
    async fn running(&self) -> bool {
        self.runtime
            .container_status(&self.id)
            .await
            .is_ok_and(|s| s.state == crate::cri::api::ContainerState::ContainerRunning as i32)
    }
}

async fn container_logs(
    state: &State,
    ns: &str,
    pod: &str,
    container: &str,
    query: &[(String, String)],
) -> Response<Body> {
    let opts = match logs::LogOptions::from_query(query, jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let instances = match lookup::containers(state.runtime.as_ref(), ns, pod, container).await {
        Ok(l) => l,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    };
    if instances.is_empty() {
        let reason = waiting_reason(state, ns, pod, container).await;
        return text(
            StatusCode::BAD_REQUEST,
            format!("container {container:?} in pod {pod:?} is waiting to start: {reason}"),
        );
    }
    let Some(instance) = lookup::pick(&instances, opts.previous) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container {container:?} in pod {pod:?} not found"),
        );
    };
    let status = match state.runtime.container_status(&instance.id).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    };
    if status.log_path.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            format!("container {container:?} in pod {pod:?} has no log file"),
        );
    }
    let path = std::path::PathBuf::from(&status.log_path);
    if let Err(e) = tokio::fs::metadata(&path).await {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log of container {container:?} in pod {pod:?}: {e}"),
        );
    }
    let live = InstanceLiveness {
        runtime: state.runtime.clone(),
        id: instance.id.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if let Err(e) = logs::stream_file(path, opts, Box::new(live), tx).await {
            tracing::debug!(error = %e, "log stream ended");
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(body)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Why a container has not started, from the pod's status (Kubernetes'
/// `ContainerCreating` when it does not say).
async fn waiting_reason(state: &State, ns: &str, pod: &str, container: &str) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let default = "ContainerCreating".to_string();
    let Some(client) = &state.client else {
        return default;
    };
    let Ok(Some(p)) = kube::Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(pod)
        .await
    else {
        return default;
    };
    let status = p.status.unwrap_or_default();
    status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .chain(status.container_statuses.unwrap_or_default())
        .find(|s| s.name == container)
        .and_then(|s| s.state?.waiting?.reason)
        .unwrap_or(default)
}
