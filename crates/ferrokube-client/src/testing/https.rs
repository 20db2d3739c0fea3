//! A JSON server over HTTPS on loopback, for tests and benchmarks that play
//! a webhook the API server calls (admission, conversion): a CA of its own
//! (the `caBundle` to configure), a handler from a request's path and JSON
//! body to the JSON answer, and a thread of its own, so that its work never
//! waits behind the caller's. Dropped, it stops, and every connection to it
//! closes (the API server's kept connections too).

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use serde_json::Value;

/// A CA, and a serving certificate for `127.0.0.1` signed by it (PEM).
#[derive(Clone, Debug)]
pub struct Certificates {
    /// The CA's certificate: the `caBundle`.
    pub ca: String,
    /// The server's certificate.
    pub cert: String,
    /// The server's private key.
    pub key: String,
}

impl Certificates {
    /// A new CA and a certificate for `127.0.0.1`.
    pub fn loopback() -> anyhow::Result<Certificates> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "ferrokube-test-webhook-ca");
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key)?;
        let key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?
            .signed_by(&key, &issuer)?;
        Ok(Certificates {
            ca: ca_cert.pem(),
            cert: leaf.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// What the server answers: from the request's path and its body (JSON, or
/// `null` when it is not), the answer's body.
pub type Handler = Arc<dyn Fn(&str, Value) -> Value + Send + Sync>;

/// A running server. See the module documentation.
pub struct JsonServer {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JsonServer {
    /// Serves `handler` on `127.0.0.1:port` (0: a free port) with `certs`,
    /// HTTP/1.1 and HTTP/2.
    pub fn start(
        certs: &Certificates,
        port: u16,
        handler: impl Fn(&str, Value) -> Value + Send + Sync + 'static,
    ) -> anyhow::Result<JsonServer> {
        let acceptor = acceptor(certs)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handler: Handler = Arc::new(handler);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(serve(listener, acceptor, handler, stopped));
            // Dropping the runtime drops every connection's task.
            rt.shutdown_background();
        });
        Ok(JsonServer {
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn acceptor(certs: &Certificates) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(certs.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(certs.key.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handler: Handler,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| answer(handler.clone(), req));
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

async fn answer(
    handler: Handler,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let value = body
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let out = serde_json::to_vec(&handler(&path, value)).unwrap_or_default();
    let mut resp = hyper::Response::new(Full::new(Bytes::from(out)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
