//! `ferrokube controller-manager`: the controller manager alone, as an API
//! client of a server reached through a kubeconfig (the server then runs
//! with `--disable-controller-manager`), like kube-controller-manager. It
//! runs `ferrokube_controllers::run` (under the same Lease as a server's)
//! and serves the controllers' counters at `/metrics` (and `/healthz`) over
//! plain HTTP on a loopback address by default.
//!
//! Its kubeconfig is the one the server writes for it
//! (`DATA_DIR/controller-manager.kubeconfig`, a client certificate for
//! `system:kube-controller-manager`); with it, as kube-controller-manager
//! with `--use-service-account-credentials`, it makes each controller's
//! service account in `kube-system` if missing and asks for a token of it
//! (TokenRequest), and each controller acts with its own token. The tokens
//! last a year and are asked for again at every start.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::ControllerManagerArgs;
use crate::components::CONTROLLER_MANAGER;
use crate::server::{hostname, shutdown_signal};

pub(crate) async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let metrics_addr = parse_bind(&args.metrics_bind_address)
        .map_err(|e| anyhow::anyhow!("--metrics-bind-address: {e}"))?;
    let shutdown = shutdown_signal()?;
    let agent = ferrokube_client::user_agent(CONTROLLER_MANAGER, None);
    let client = ferrokube_client::client_from_kubeconfig_as(&args.kubeconfig, &agent)
        .await
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    client
        .list_core_api_versions()
        .await
        .map_err(|e| anyhow::anyhow!("reaching the API server: {e}"))?;
    let clients = controller_clients(&args.kubeconfig, &client)
        .await
        .context("getting the controllers' service-account tokens")?;
    let config = ferrokube_controllers::ControllerConfig {
        clients,
        identity: format!("{}_{}", hostname(), std::process::id()),
        cluster_cidr: args.cluster_cidr.clone(),
        node_monitor_grace_period: args.node_monitor_grace_period,
        hpa: args.hpa.config(),
        ca_pem: ferrokube_controllers::serviceaccount::ca_pem_from_kubeconfig(&args.kubeconfig)
            .context("reading the cluster CA for kube-root-ca.crt")?,
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let metrics = match &metrics_addr {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} for /metrics"))?;
            tracing::info!(address = %listener.local_addr()?, "serving /metrics");
            Some(tokio::spawn(serve_metrics(listener, cancel.clone())))
        }
        None => None,
    };
    let controllers = tokio::spawn(ferrokube_controllers::run(client, config, cancel.clone()));
    tracing::info!("ferrokube controller manager started");
    shutdown.await;
    tracing::info!("shutting down");
    cancel.cancel();
    let _ = controllers.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    Ok(())
}

/// How long the controllers' service-account tokens are asked for.
const TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// A client per controller, each with a token of its service account,
/// reaching the server `kubeconfig` names.
async fn controller_clients(
    kubeconfig: &std::path::Path,
    client: &kube::Client,
) -> anyhow::Result<ferrokube_controllers::clients::ControllerClients> {
    use ferrokube_controllers::clients;
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, PostParams};

    clients::ensure_service_accounts(client).await?;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let base = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), clients::NAMESPACE);
    let mut by_name = std::collections::HashMap::new();
    for sa in clients::SERVICE_ACCOUNTS {
        let request: TokenRequest = serde_json::from_value(serde_json::json!({
            "spec": {"audiences": [], "expirationSeconds": TOKEN_SECONDS}
        }))?;
        let token = api
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .with_context(|| format!("a token of the service account {sa}"))?
            .status
            .map(|s| s.token)
            .with_context(|| format!("no token for {sa}"))?;
        let mut config = base.clone();
        config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))?;
        // As kube-controller-manager's: the account after the component.
        let who = clients::user_name(sa);
        let agent = ferrokube_client::user_agent(CONTROLLER_MANAGER, Some(&who));
        ferrokube_client::set_user_agent(&mut config, &agent)?;
        by_name.insert(sa.to_string(), kube::Client::try_from(config)?);
    }
    let root = client.clone();
    Ok(clients::ControllerClients::per_controller(move |sa| {
        by_name.get(sa).cloned().unwrap_or_else(|| {
            tracing::warn!(
                service_account = sa,
                "no token for this controller: using the controller manager's"
            );
            root.clone()
        })
    }))
}

/// Serves `/metrics` and `/healthz` until `cancel`.
async fn serve_metrics(listener: TcpListener, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a /metrics connection");
                    continue;
                }
            },
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(req.uri().path()))
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a /metrics connection");
            }
        });
    }
}

fn answer(path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, ferrokube_controllers::metrics::render()),
        "/healthz" => (StatusCode::OK, "ok".to_string()),
        _ => (StatusCode::NOT_FOUND, "404 page not found\n".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `--metrics-bind-address` is neither empty, `0` nor an address:port.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not an address:port ({source})")]
struct BadBindAddress {
    value: String,
    source: std::net::AddrParseError,
}

/// The address `--metrics-bind-address` names (`""` or `0`: none).
fn parse_bind(s: &str) -> Result<Option<SocketAddr>, BadBindAddress> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|source| BadBindAddress {
        value: s.to_string(),
        source,
    })
}
