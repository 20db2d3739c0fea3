//! A client for an agent joining a cluster with a join token: fetch the
//! cluster CA from `/cacerts` without trusting the connection, check it
//! against the hash the token carries, then talk to the server trusting
//! only that CA, authenticated by the token's secret.

use anyhow::{bail, Context};
use base64::Engine as _;
use ferrokube_api::jointoken;

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
