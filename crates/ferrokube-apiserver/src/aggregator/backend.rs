//! Reaching a Service's backend over HTTPS, as the aggregator reaches an
//! extension API server: the Service's port found by number, a ready
//! address of its Endpoints on that port picked at random (Kubernetes'
//! endpoint routing, which k3s turns on), the serving certificate checked
//! against the caller's CA bundle under the name `<service>.<namespace>.svc`,
//! and a client certificate of ours.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

use crate::rest::Rest;

/// How long connecting and the TLS handshake may take, each.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A Service and the port of it to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceRef {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) port: u16,
}

impl ServiceRef {
    /// The name its serving certificate must carry.
    pub(crate) fn server_name(&self) -> String {
        format!("{}.{}.svc", self.name, self.namespace)
    }
}

/// Why a Service has no backend to reach, with the reason and message
/// Kubernetes' availability controller reports for it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// No such Service.
    #[error("service/{name} in {namespace:?} is not present")]
    ServiceNotFound { namespace: String, name: String },
    /// The Service has no port with that number.
    #[error("service/{name} in {namespace:?} is not listening on port {port}")]
    ServicePortError {
        namespace: String,
        name: String,
        port: u16,
    },
    /// The Service has no Endpoints object.
    #[error("cannot find endpoints for service/{name} in {namespace:?}")]
    EndpointsNotFound { namespace: String, name: String },
    /// No ready address serves the port.
    #[error("endpoints for service/{name} in {namespace:?} have no addresses with port name {port_name:?}")]
    MissingEndpoints {
        namespace: String,
        name: String,
        port_name: String,
    },
}

impl ResolveError {
    /// The condition reason (`ServiceNotFound`, ...).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ResolveError::ServiceNotFound { .. } => "ServiceNotFound",
            ResolveError::ServicePortError { .. } => "ServicePortError",
            ResolveError::EndpointsNotFound { .. } => "EndpointsNotFound",
            ResolveError::MissingEndpoints { .. } => "MissingEndpoints",
        }
    }
}

/// A ready backend address of `svc`.
pub(crate) async fn resolve(rest: &Rest, svc: &ServiceRef) -> Result<SocketAddr, ResolveError> {
    let read = |plural: &str| {
        let def = rest.kinds.get("", "v1", plural)?;
        let cached = rest
            .cache
            .resource(def.storage_prefix)?
            .get(&def.key(&svc.namespace, &svc.name))?;
        serde_json::from_slice::<Value>(&cached.json).ok()
    };
    let Some(service) = read("services") else {
        return Err(ResolveError::ServiceNotFound {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
        });
    };
    let port_name = crate::proxy::endpoint_port_name(&service, &svc.name, &svc.port.to_string())
        .map_err(|_| ResolveError::ServicePortError {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
            port: svc.port,
        })?;
    let Some(endpoints) = read("endpoints") else {
        return Err(ResolveError::EndpointsNotFound {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
        });
    };
    let addrs = crate::proxy::endpoint_addrs(&endpoints, &port_name);
    if addrs.is_empty() {
        return Err(ResolveError::MissingEndpoints {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
            port_name,
        });
    }
    Ok(addrs[rand::random::<u32>() as usize % addrs.len()])
}

/// The TLS client configuration toward one backend: its serving
/// certificate checked against `ca_bundle` (PEM), or not checked at all
/// when `insecure`, and `client` (certificate and key PEM) presented.
pub(crate) fn tls_config(
    ca_bundle: &[u8],
    insecure: bool,
    client: (&str, &str),
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ferrokube_pki::tls::AnyServerCert::new(
                provider,
            )))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_bundle) {
            roots
                .add(cert.map_err(|e| format!("reading the CA bundle: {e}"))?)
                .map_err(|e| format!("reading the CA bundle: {e}"))?;
        }
        builder.with_root_certificates(roots)
    };
    let certs = CertificateDer::pem_slice_iter(client.0.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(client.1.as_bytes()).map_err(|e| e.to_string())?;
    let mut cfg = builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// An HTTP/1.1 connection over TLS to `addr`, whose certificate must name
/// `server_name`.
pub(crate) async fn connect<B>(
    addr: SocketAddr,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<hyper::client::conn::http1::SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| "net/http: TLS handshake timeout".to_string())?
    .map_err(|e| format!("tls: {e}"))?;
    crate::streaming::http1(tls)
        .await
        .map_err(|e| e.to_string())
}
