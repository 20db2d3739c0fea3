//! `ferrokube agent`: a node joining a cluster with the server's join
//! token. It checks the server's CA against the token, fetches its node's
//! client certificates with the token and its node password (which allow
//! nothing else; see [`crate::identity`]), then runs what every node runs
//! as an API client of the servers: the node agent as
//! `system:node:<name>`, the service proxy as `system:kube-proxy` and the
//! network policy controller as `system:k3s-controller`.
//!
//! Why certificates fetched with the token rather than Kubernetes' TLS
//! bootstrap (a CertificateSigningRequest approved and signed by the
//! controller manager): the join token already names the cluster CA and
//! stands for the right to join as a node, as k3s' node token does; asking
//! the server directly needs no approver and no running controller manager
//! before the node can start, and the token itself stays limited to that
//! one request (and CSRs) by the bootstrap policy.
//!
//! The clients reach the servers through a local balancer
//! ([`ferrokube_client::balancer`]) over the `--server` URLs and the
//! servers the `default/kubernetes` Endpoints name, so the node keeps
//! working when one server dies. The certificates are asked for again at
//! 70-90% of their lifetime (as the kubelet's certificate manager does);
//! the node's components are then restarted with the new ones (their
//! containers keep running and are adopted again).

use std::time::{Duration, SystemTime};

use ferrokube_client::balancer::Balancer;
use ferrokube_client::join::NodeCredentials;
use tokio_util::sync::CancellationToken;

use crate::cli::AgentArgs;
use crate::components::{Components, NodeClients, NodeOptions};
use crate::server::shutdown_signal;

/// How often the servers are learned again from the `kubernetes` Endpoints.
const LEARN_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    std::fs::create_dir_all(&args.data_dir)?;
    let node_name =
        crate::identity::node_name(args.node_name.as_deref(), &args.node, &args.data_dir)?;
    let password = crate::identity::node_password(&args.data_dir)?;
    let cancel = CancellationToken::new();
    let lb = Balancer::start(&args.server, cancel.child_token()).await?;
    let servers = args.server.join(",");
    // Fails at once on a server that does not take the token, or a node
    // name another machine holds.
    let fetch = || async {
        ferrokube_client::join::node_credentials(&lb.url(), &args.token, &node_name, &password)
            .await
            .map_err(|e| anyhow::anyhow!("joining {servers}: {e:#}"))
    };
    let mut creds = fetch().await?;
    let mut components = start(&args, &node_name, &creds, &lb, true).await?;
    tracing::info!(server = %servers, node = %node_name, "ferrokube agent joined");
    loop {
        let wait = creds
            .renew_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
        match fetch().await {
            Ok(new) => {
                creds = new;
                components.stop().await;
                components = start(&args, &node_name, &creds, &lb, false).await?;
                tracing::info!(node = %node_name, "renewed the node's certificates");
            }
            Err(e) => {
                // Again in a while, before the old ones expire if possible.
                let left = creds
                    .not_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                let retry = (left / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
                tracing::warn!(error = %e, ?retry, "renewing the node's certificates");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(retry) => {}
                }
                continue;
            }
        }
    }
    tracing::info!("shutting down");
    components.stop().await;
    cancel.cancel();
    Ok(())
}

/// Starts the node's components with `creds`, through the balancer; the
/// `first` time, only once the server answers them.
async fn start(
    args: &AgentArgs,
    node_name: &str,
    creds: &NodeCredentials,
    lb: &Balancer,
    first: bool,
) -> anyhow::Result<Components> {
    let joined = creds.clients(&lb.url())?;
    if first {
        joined
            .kubelet
            .list_core_api_versions()
            .await
            .map_err(|e| anyhow::anyhow!("joining {}: {e}", args.server.join(",")))?;
    }
    let mut components = Components::empty();
    let learner = joined.proxy.clone();
    let learned = lb.servers_handle();
    components.spawn("server-learner", move |cancel| async move {
        learn_servers(learner, learned, cancel).await;
    });
    components.start_node(
        &NodeClients {
            kubelet: joined.kubelet,
            proxy: joined.proxy,
            netpol: joined.controller,
        },
        &NodeOptions {
            node_name: node_name.to_string(),
            data_dir: args.data_dir.clone(),
            container_runtime_endpoint: args.container_runtime_endpoint.clone(),
            cluster_dns: args.cluster_dns,
            cluster_domain: args.cluster_domain.clone(),
            cluster_cidr: args.cluster_cidr.clone(),
            flannel_backend: crate::components::flannel_backend(&args.flannel_backend)?,
            proxy: !args.disable_kube_proxy,
            proxy_cleanup_on_exit: args.proxy_cleanup_on_exit,
            network_policy: !args.disable_network_policy,
            kubelet_port: args.kubelet_port,
            cluster_ca_pem: Some(joined.ca_pem),
            flags: args.node.clone(),
        },
    );
    Ok(components)
}

/// Adds the API servers the `default/kubernetes` Endpoints name to the
/// balancer, now and every [`LEARN_INTERVAL`], as k3s' agent does.
async fn learn_servers(
    client: kube::Client,
    lb: ferrokube_client::balancer::Servers,
    cancel: CancellationToken,
) {
    use k8s_openapi::api::core::v1::Endpoints;
    let api: kube::Api<Endpoints> = kube::Api::namespaced(client, "default");
    loop {
        let params = kube::api::ListParams::default().fields("metadata.name=kubernetes");
        match api.list(&params).await {
            Ok(list) => lb.add(list.items.into_iter().flat_map(|ep| {
                ep.subsets
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|s| {
                        let ports: Vec<i32> = s.ports.iter().flatten().map(|p| p.port).collect();
                        s.addresses
                            .iter()
                            .flatten()
                            .flat_map(move |a| {
                                let ip = a.ip.clone();
                                ports
                                    .clone()
                                    .into_iter()
                                    .map(move |p| match ip.contains(':') {
                                        true => format!("[{ip}]:{p}"),
                                        false => format!("{ip}:{p}"),
                                    })
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })),
            Err(e) => tracing::debug!(error = %e, "reading the kubernetes Endpoints"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(LEARN_INTERVAL) => {}
        }
    }
}
