//! A client for an agent joining a cluster with a join token: fetch the
//! cluster CA from `/cacerts` without trusting the connection, check it
//! against the hash the token carries, then talk to the server trusting
//! only that CA, authenticated by the token's secret. The token only lets
//! a joining agent fetch its node's credentials ([`node_clients`]): client
//! certificates for `system:node:<name>` and `system:kube-proxy`, with
//! which its node agent and proxy then act.

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

/// A joining node's clients: the node agent's and the proxy's.
pub struct NodeClients {
    /// As `system:node:<name>` (group `system:nodes`).
    pub kubelet: kube::Client,
    /// As `system:kube-proxy`.
    pub proxy: kube::Client,
    /// The cluster CA (PEM), checked against the token.
    pub ca_pem: String,
}

/// Joins `server` with the join `token` as the node `node_name`: fetches
/// the node's client certificates with the token, and returns clients that
/// use them.
pub async fn node_clients(
    server: &str,
    token: &str,
    node_name: &str,
) -> anyhow::Result<NodeClients> {
    let (joiner, ca_pem) = join(server, token).await?;
    let body = serde_json::to_vec(&serde_json::json!({ "nodeName": node_name }))?;
    let req = http::Request::post(NODE_CREDENTIALS_PATH)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)?;
    let text = joiner
        .request_text(req)
        .await
        .with_context(|| format!("fetching the node's credentials from {server}"))?;
    let creds: serde_json::Value =
        serde_json::from_str(&text).context("the node's credentials are not JSON")?;
    let url: http::Uri = server.parse()?;
    let client = |who: &str| -> anyhow::Result<kube::Client> {
        let b64 = |k: &str| {
            creds[who][k]
                .as_str()
                .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
                .with_context(|| format!("no {who} {k} in the node's credentials"))
        };
        let mut config = kube::Config::new(url.clone());
        config.root_cert = Some(pem_certificates(&ca_pem)?);
        config.auth_info = serde_json::from_value(serde_json::json!({
            "client-certificate-data": b64("certificate")?,
            "client-key-data": b64("key")?,
        }))?;
        // Named as Kubernetes' node components name their writes.
        let component = if who == "kubelet" {
            "kubelet"
        } else {
            "kube-proxy"
        };
        crate::set_user_agent(&mut config, &crate::user_agent(component, None))?;
        kube::Client::try_from(config).context("building the API client")
    };
    Ok(NodeClients {
        kubelet: client("kubelet")?,
        proxy: client("proxy")?,
        ca_pem: ca_pem.clone(),
    })
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
