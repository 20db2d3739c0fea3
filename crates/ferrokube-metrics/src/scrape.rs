//! Reaching kubelets: `GET /metrics/resource` over HTTPS with a client
//! certificate (the API server's `kube-apiserver-kubelet-client`), the
//! kubelet's serving certificate not verified (as Kubernetes' API server
//! and metrics-server's `--kubelet-insecure-tls`), one kept-alive
//! HTTP/1.1 connection per kubelet, each request bounded in time and size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;

/// The largest answer read from a kubelet.
const MAX_BODY: usize = 64 << 20;

/// The path scraped.
pub const PATH: &str = "/metrics/resource";

type Conn = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// A scrape's failure.
#[derive(Debug)]
pub struct ScrapeError(pub String);

impl std::fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScrapeError {}

/// HTTPS to kubelets with a client certificate.
pub(crate) struct Scraper {
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<HashMap<SocketAddr, Conn>>,
}

impl Scraper {
    /// A scraper presenting `cert_pem` (with its chain) and `key_pem`.
    pub(crate) fn new(cert_pem: &str, key_pem: &str) -> anyhow::Result<Scraper> {
        let cfg = ferrokube_pki::tls::kubelet_client_config(cert_pem, key_pem)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Scraper {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            idle: Mutex::new(HashMap::new()),
        })
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Conn, ScrapeError> {
        let err = |e: &dyn std::fmt::Display| ScrapeError(format!("dialing {addr}: {e}"));
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| err(&e))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .map_err(|e| err(&e))?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| err(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// The kubelet's answer to `GET /metrics/resource`, within `timeout`.
    pub(crate) async fn fetch(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Bytes, ScrapeError> {
        tokio::time::timeout(timeout, self.fetch_now(addr))
            .await
            .unwrap_or_else(|_| {
                Err(ScrapeError(format!(
                    "scraping {addr}: timed out after {timeout:?}"
                )))
            })
    }

    async fn fetch_now(&self, addr: SocketAddr) -> Result<Bytes, ScrapeError> {
        let idle = self.idle.lock().remove(&addr);
        let mut conn = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.connect(addr).await?,
        };
        let err = |e: &dyn std::fmt::Display| ScrapeError(format!("scraping {addr}: {e}"));
        conn.ready().await.map_err(|e| err(&e))?;
        let req = http::Request::get(PATH)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::ACCEPT, "text/plain")
            .body(Empty::new())
            .map_err(|e| err(&e))?;
        let resp = conn.send_request(req).await.map_err(|e| err(&e))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| err(&e))?
            .to_bytes();
        if !status.is_success() {
            return Err(ScrapeError(format!(
                "request failed, status: {:?}",
                status.as_str()
            )));
        }
        self.idle.lock().insert(addr, conn);
        Ok(body)
    }

    /// Closes the kept connections to kubelets not in `keep`.
    pub(crate) fn retain(&self, keep: &[SocketAddr]) {
        self.idle.lock().retain(|a, _| keep.contains(a));
    }
}
