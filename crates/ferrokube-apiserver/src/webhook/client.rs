//! HTTPS to webhooks: the server's certificate checked against the
//! webhook's `caBundle` only, for `<service>.<namespace>.svc` (or the URL's
//! host); connections kept per host and CA bundle for the next calls, the
//! TLS configuration (the CA bundle parsed) kept per CA bundle. Where a new
//! connection goes is found only when it is made, as Kubernetes' dialer
//! does: one of the Service's ready endpoints picked at random (its
//! endpoint service resolver), or the URL's host (looked up if a name).
//! Errors read as Go's HTTP client writes them, after `Post "<url>": `.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use super::config::Endpoint;
use crate::rest::Rest;

/// Where one call goes.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The URL as errors show it, `?timeout=` included.
    pub(super) shown: String,
    /// The name the certificate must carry.
    pub(super) server_name: String,
    /// `Host` header, and what connections are kept under.
    pub(super) host: String,
    /// Path and query of the request.
    pub(super) path: String,
    /// How the address is found when a connection is made.
    pub(super) dial: Dial,
}

/// What a new connection is made to: found when it is made only (as
/// Kubernetes' dialer does), not for each call over a kept connection.
#[derive(Debug, Clone)]
pub(super) enum Dial {
    /// One ready endpoint of a Service's port.
    Service {
        namespace: String,
        name: String,
        port: u16,
    },
    /// A URL's host (an address, or a name looked up).
    Host { host: String, port: u16 },
}

/// The `timeout` query parameter: whole seconds, rounded up.
fn timeout_param(timeout: Duration) -> String {
    format!("timeout={}s", timeout.as_secs_f64().ceil() as u64)
}

/// Where calls to `endpoint` go.
pub(super) fn target(endpoint: &Endpoint, timeout: Duration) -> Target {
    match endpoint {
        Endpoint::Service {
            namespace,
            name,
            port,
            path,
        } => {
            let server_name = format!("{name}.{namespace}.svc");
            let host = format!("{server_name}:{port}");
            let path = format!(
                "{}?{}",
                if path.is_empty() { "/" } else { path },
                timeout_param(timeout)
            );
            Target {
                shown: format!("https://{host}{path}"),
                server_name,
                host,
                path,
                dial: Dial::Service {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port: *port,
                },
            }
        }
        Endpoint::Url(url) => url_target(url, timeout),
    }
}

fn url_target(url: &str, timeout: Duration) -> Target {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = format!("{path}?{}", timeout_param(timeout));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => (authority, 443),
        },
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Target {
        shown: format!("https://{authority}{path}"),
        server_name: host.to_string(),
        host: authority.to_string(),
        path,
        dial: Dial::Host {
            host: host.to_string(),
            port,
        },
    }
}

impl Dial {
    /// The address to connect to now. The error is the resolver's (shown
    /// after the URL, as Kubernetes' dialer shows it).
    pub(super) async fn address(&self, rest: &Rest) -> Result<SocketAddr, String> {
        match self {
            Dial::Service {
                namespace,
                name,
                port,
            } => service_endpoint(rest, namespace, name, *port),
            Dial::Host { host, port } => match host.parse::<IpAddr>() {
                Ok(ip) => Ok(SocketAddr::new(ip, *port)),
                Err(_) => tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| format!("dial tcp: lookup {host}: no such host")),
            },
        }
    }
}

/// One ready endpoint of Service `namespace/name` for its port `port`,
/// picked at random (Kubernetes' `ResolveEndpoint` messages).
fn service_endpoint(
    rest: &Rest,
    namespace: &str,
    name: &str,
    port: u16,
) -> Result<SocketAddr, String> {
    let read = |plural: &str| -> Option<Value> {
        let def = rest.kinds.get("", "v1", plural)?;
        let cache = rest.cache.resource(def.storage_prefix)?;
        let o = cache.get(&format!("{}{namespace}/{name}", def.storage_prefix))?;
        serde_json::from_slice(&o.json).ok()
    };
    let svc = read("services").ok_or_else(|| format!("service {name:?} not found"))?;
    let port_name =
        crate::proxy::endpoint_port_name(&svc, name, &port.to_string()).map_err(|e| e.message)?;
    let no_endpoints = || format!("no endpoints available for service {name:?}");
    let eps = read("endpoints").ok_or_else(no_endpoints)?;
    let addrs = crate::proxy::endpoint_addrs(&eps, &port_name);
    if addrs.is_empty() {
        return Err(no_endpoints());
    }
    Ok(addrs[rand::random::<u32>() as usize % addrs.len()])
}

/// Idle connections are kept by host (the URL's, or the Service's name
/// and port) and CA bundle.
type PoolKey = (String, Arc<Vec<u8>>);

/// Connections and TLS configurations to webhooks.
#[derive(Default)]
pub(super) struct Client {
    idle: Mutex<HashMap<PoolKey, Vec<SendRequest<Full<Bytes>>>>>,
    tls: Mutex<HashMap<Arc<Vec<u8>>, Arc<rustls::ClientConfig>>>,
}

/// At most this many idle connections are kept per webhook address.
const IDLE_PER_KEY: usize = 16;

impl Client {
    /// POSTs `body` (JSON) and returns the answer's body; `address` is
    /// awaited only when a new connection is needed. The error is the text
    /// Kubernetes shows after `failed to call webhook: `.
    pub(super) async fn post(
        &self,
        to: &Target,
        address: impl Future<Output = Result<SocketAddr, String>>,
        ca: &Arc<Vec<u8>>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let call = self.call(to, address, ca, Bytes::from(body));
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(format!("Post {:?}: {e}", to.shown)),
            Err(_) => Err(format!("Post {:?}: context deadline exceeded", to.shown)),
        }
    }

    async fn call(
        &self,
        to: &Target,
        address: impl Future<Output = Result<SocketAddr, String>>,
        ca: &Arc<Vec<u8>>,
        body: Bytes,
    ) -> Result<Bytes, String> {
        let key: PoolKey = (to.host.clone(), ca.clone());
        let mut sender = match self.take_idle(&key).await {
            Some(s) => s,
            None => self.dial(to, address.await?, ca).await?,
        };
        let req = hyper::Request::post(&to.path)
            .header(hyper::header::HOST, &to.host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json, */*")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !sender.is_closed() {
            let mut idle = self.idle.lock();
            let list = idle.entry(key).or_default();
            if list.len() < IDLE_PER_KEY {
                list.push(sender);
            }
        }
        if !status.is_success() {
            return Err(status_error(status.as_u16(), &bytes));
        }
        Ok(bytes)
    }

    async fn take_idle(&self, key: &PoolKey) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let mut s = self.idle.lock().get_mut(key)?.pop()?;
            if !s.is_closed() && s.ready().await.is_ok() {
                return Some(s);
            }
        }
    }

    fn tls_config(&self, ca: &Arc<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(cfg) = self.tls.lock().get(ca) {
            return Ok(cfg.clone());
        }
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca).flatten() {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        self.tls.lock().insert(ca.clone(), cfg.clone());
        Ok(cfg)
    }

    async fn dial(
        &self,
        to: &Target,
        addr: SocketAddr,
        ca: &Arc<Vec<u8>>,
    ) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {}", connect_error(&e)))?;
        let _ = tcp.set_nodelay(true);
        let name = match to.server_name.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(to.server_name.clone()).map_err(|e| e.to_string())?,
        };
        let tls = tokio_rustls::TlsConnector::from(self.tls_config(ca)?)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(&e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a webhook connection ended");
            }
        });
        Ok(sender)
    }
}

/// Go's words for a failed connect.
fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => format!("connect: {e}"),
    }
}

/// Go's words for a certificate the CA bundle does not vouch for, or that
/// names another host.
fn tls_error(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error};
    let failed = "tls: failed to verify certificate: x509:";
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            format!("{failed} certificate signed by unknown authority")
        }
        Some(Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            presented,
        })) => format!(
            "{failed} {}",
            name_mismatch(expected.to_str().as_ref(), presented)
        ),
        Some(Error::InvalidCertificate(CertificateError::NotValidForName)) => {
            format!("{failed} certificate is not valid for the requested name")
        }
        _ => format!("tls: {e}"),
    }
}

/// Go's `HostnameError`: the names the certificate holds of the kind of
/// `host` (DNS names or IP addresses), from webpki's `DnsName("...")` and
/// `IpAddress(...)`.
fn name_mismatch(host: &str, presented: &[String]) -> String {
    let ip = host.parse::<IpAddr>().is_ok();
    let names: Vec<&str> = presented
        .iter()
        .filter_map(|p| match ip {
            true => p.strip_prefix("IpAddress(")?.strip_suffix(')'),
            false => p.strip_prefix("DnsName(\"")?.strip_suffix("\")"),
        })
        .collect();
    match (names.is_empty(), ip) {
        (true, true) => {
            format!("cannot validate certificate for {host} because it doesn't contain any IP SANs")
        }
        (true, false) => {
            format!("certificate is not valid for any names, but wanted to match {host}")
        }
        _ => format!("certificate is valid for {}, not {host}", names.join(", ")),
    }
}

/// client-go's error for an answer that is not a success.
fn status_error(code: u16, body: &[u8]) -> String {
    if code == 404 {
        return "the server could not find the requested resource".to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!(
            "the server responded with the status code {code} but did not return more information"
        )
    } else {
        format!("an error on the server ({text:?}) has prevented the request from succeeding")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(t: &Target) -> (&str, u16) {
        match &t.dial {
            Dial::Host { host, port } => (host, *port),
            Dial::Service { .. } => panic!("a URL's target dials its host"),
        }
    }

    #[test]
    fn urls_are_shown_with_the_timeout_and_reached_at_their_host() {
        let r = url_target("https://127.0.0.1:8443/validate", Duration::from_secs(10));
        assert_eq!(r.shown, "https://127.0.0.1:8443/validate?timeout=10s");
        assert_eq!(host_of(&r), ("127.0.0.1", 8443));
        assert_eq!(r.server_name, "127.0.0.1");
        assert_eq!(r.path, "/validate?timeout=10s");
        let r = url_target("https://127.0.0.1", Duration::from_millis(2500));
        assert_eq!(r.shown, "https://127.0.0.1/?timeout=3s");
        assert_eq!(host_of(&r), ("127.0.0.1", 443));
        let r = url_target("https://[::1]:9443/v", Duration::from_secs(1));
        assert_eq!(host_of(&r), ("::1", 9443));
        assert_eq!(r.server_name, "::1");
        assert_eq!(r.host, "[::1]:9443");
    }

    #[test]
    fn services_are_shown_by_their_dns_name() {
        let svc = Endpoint::Service {
            namespace: "ns".into(),
            name: "hook".into(),
            port: 8443,
            path: "/v".into(),
        };
        let t = target(&svc, Duration::from_secs(5));
        assert_eq!(t.shown, "https://hook.ns.svc:8443/v?timeout=5s");
        assert_eq!(t.server_name, "hook.ns.svc");
        assert_eq!(t.host, "hook.ns.svc:8443");
    }

    #[test]
    fn a_certificate_for_another_name_reads_as_gos() {
        let dns = |n: &str| format!("DnsName({n:?})");
        assert_eq!(
            name_mismatch(
                "alias.hooks.svc",
                &[
                    dns("hook.hooks.svc"),
                    dns("hook"),
                    "IpAddress(10.0.0.1)".into()
                ]
            ),
            "certificate is valid for hook.hooks.svc, hook, not alias.hooks.svc"
        );
        assert_eq!(
            name_mismatch("10.0.0.2", &["IpAddress(10.0.0.1)".into()]),
            "certificate is valid for 10.0.0.1, not 10.0.0.2"
        );
        assert_eq!(
            name_mismatch("10.0.0.2", &[dns("hook")]),
            "cannot validate certificate for 10.0.0.2 because it doesn't contain any IP SANs"
        );
        assert_eq!(
            name_mismatch("hook", &[]),
            "certificate is not valid for any names, but wanted to match hook"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_reads_as_gos() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let to = url_target(
            &format!("https://127.0.0.1:{port}/v"),
            Duration::from_secs(1),
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let err = Client::default()
            .post(
                &to,
                std::future::ready(Ok(addr)),
                &Arc::new(Vec::new()),
                b"{}".to_vec(),
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            format!("Post \"https://127.0.0.1:{port}/v?timeout=1s\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }
}
