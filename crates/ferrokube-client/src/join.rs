//! A client for an agent joining a cluster with a join token: fetch the
//! cluster CA from `/cacerts` without trusting the connection, check it
//! against the hash the token carries, then talk to the server trusting
//! only that CA, authenticated by the token's secret. The token only lets
//! a joining agent fetch its node's credentials ([`node_clients`]): client
//! certificates for `system:node:<name>`, `system:kube-proxy` and
//! `system:k3s-controller`, with which its node agent, proxy and network
//! policy controller then act.

use anyhow::{bail, Context};
use base64::Engine as _;
use ferrokube_pki::jointoken;

/// A client for `server` (`https://host:port`) from a join token.
pub async fn client_from_join_token(server: &str, token: &str) -> anyhow::Result<kube::Client> {
    Ok(join(server, token).await?.0)
}

/// A client for `server` from a join token, and the cluster CA (PEM) it
/// checked against the token (the node's HTTPS server trusts the client
/// certificates that CA signs).
pub async fn join(server: &str, token: &str) -> anyhow::Result<(kube::Client, String)> {
    let (hash, secret) = jointoken::parse(token)
        .context("the token is not a join token (K10<ca hash>::server:<secret>, from the server's DATA_DIR/token)")?;
    let url: http::Uri = server
        .parse()
        .with_context(|| format!("the server address {server:?}"))?;
    let mut probe = kube::Config::new(url.clone());
    probe.accept_invalid_certs = true;
    let pem = kube::Client::try_from(probe)?
        .request_text(http::Request::get("/cacerts").body(Vec::new())?)
        .await
        .with_context(|| format!("fetching the cluster CA from {server}/cacerts"))?;
    if jointoken::sha256_hex(pem.as_bytes()) != hash {
        bail!("the CA served by {server} does not match the join token: refusing to trust it");
    }
    let mut config = kube::Config::new(url);
    config.root_cert = Some(pem_certificates(&pem)?);
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": secret }))?;
    let client = kube::Client::try_from(config).context("building the API client")?;
    Ok((client, pem))
}

/// The path the API server serves joining nodes' credentials at.
pub const NODE_CREDENTIALS_PATH: &str = "/ferrokube/v1/node-credentials";

/// A joining node's clients: the node agent's, the proxy's and the network
/// policy controller's.
pub struct NodeClients {
    /// As `system:node:<name>` (group `system:nodes`).
    pub kubelet: kube::Client,
    /// As `system:kube-proxy`.
    pub proxy: kube::Client,
    /// As `system:k3s-controller` (the network policy controller).
    pub controller: kube::Client,
    /// The cluster CA (PEM), checked against the token.
    pub ca_pem: String,
}

/// A joining node's credentials, as the server issued them.
#[derive(Clone)]
pub struct NodeCredentials {
    /// The node agent's certificate and key (PEM).
    pub kubelet: (String, String),
    /// The proxy's certificate and key (PEM).
    pub proxy: (String, String),
    /// The network policy controller's certificate and key (PEM).
    pub controller: (String, String),
    /// The cluster CA (PEM), checked against the token.
    pub ca_pem: String,
    /// When they were fetched.
    pub fetched: std::time::SystemTime,
    /// When the first of them expires.
    pub not_after: std::time::SystemTime,
}

/// Joins `server` with the join `token` as the node `node_name`: fetches
/// the node's client certificates with the token and the node's
/// `password` (see [`node_credentials`]), and returns clients of `server`
/// that use them.
pub async fn node_clients(
    server: &str,
    token: &str,
    node_name: &str,
    password: &str,
) -> anyhow::Result<NodeClients> {
    node_credentials(server, token, node_name, password)
        .await?
        .clients(server)
}

/// Fetches the node's client certificates from `server` with the join
/// `token`, sending the node's `password`: the server refuses (403) a node
/// name that another password already holds.
pub async fn node_credentials(
    server: &str,
    token: &str,
    node_name: &str,
    password: &str,
) -> anyhow::Result<NodeCredentials> {
    let (joiner, ca_pem) = join(server, token).await?;
    let body = serde_json::to_vec(&serde_json::json!({
        "nodeName": node_name,
        "nodePassword": password,
    }))?;
    let req = http::Request::post(NODE_CREDENTIALS_PATH)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)?;
    let fetched = std::time::SystemTime::now();
    let text = joiner
        .request_text(req)
        .await
        .with_context(|| format!("fetching the node's credentials from {server}"))?;
    let creds: serde_json::Value =
        serde_json::from_str(&text).context("the node's credentials are not JSON")?;
    let pair = |who: &str| -> anyhow::Result<(String, String)> {
        let get = |k: &str| {
            creds[who][k]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("no {who} {k} in the node's credentials"))
        };
        Ok((get("certificate")?, get("key")?))
    };
    let (kubelet, proxy, controller) = (pair("kubelet")?, pair("proxy")?, pair("controller")?);
    let not_after = not_after(&kubelet.0)?
        .min(not_after(&proxy.0)?)
        .min(not_after(&controller.0)?);
    Ok(NodeCredentials {
        kubelet,
        proxy,
        controller,
        ca_pem,
        fetched,
        not_after,
    })
}

/// When the PEM certificate `pem` expires.
pub fn not_after(pem: &str) -> anyhow::Result<std::time::SystemTime> {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("a certificate that is not PEM: {e}"))?;
    let cert = der
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("a certificate that is not X.509: {e}"))?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

impl NodeCredentials {
    /// When to ask for new credentials: as the kubelet's certificate
    /// manager, at a random point between 70% and 90% of their lifetime.
    pub fn renew_at(&self) -> std::time::SystemTime {
        let life = self
            .not_after
            .duration_since(self.fetched)
            .unwrap_or_default();
        let share = 0.7 + rand::random::<f64>() * 0.2;
        self.fetched + life.mul_f64(share)
    }

    /// Clients of the API server at `url` with these credentials, trusting
    /// only the cluster CA.
    pub fn clients(&self, url: &str) -> anyhow::Result<NodeClients> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("the server address {url:?}"))?;
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let client = |(cert, key): &(String, String), component: &str| {
            let mut config = kube::Config::new(uri.clone());
            config.root_cert = Some(pem_certificates(&self.ca_pem)?);
            config.auth_info = serde_json::from_value(serde_json::json!({
                "client-certificate-data": b64(cert),
                "client-key-data": b64(key),
            }))?;
            // Named as Kubernetes' node components name their writes.
            crate::set_user_agent(&mut config, &crate::user_agent(component, None))?;
            kube::Client::try_from(config).context("building the API client")
        };
        Ok(NodeClients {
            kubelet: client(&self.kubelet, "kubelet")?,
            proxy: client(&self.proxy, "kube-proxy")?,
            controller: client(&self.controller, "network-policy-controller")?,
            ca_pem: self.ca_pem.clone(),
        })
    }
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b = body.take().context("a PEM end without a begin")?;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .context("a PEM certificate that is not base64")?,
            );
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if out.is_empty() {
        bail!("no certificate in the CA bundle");
    }
    Ok(out)
}
