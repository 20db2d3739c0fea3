//! `ferrokube agent`: a node joining a cluster with the server's join
//! token. It checks the server's CA against the token, fetches its node's
//! client certificates with the token (which allows nothing else), then
//! runs what every node runs as an API client of that server: the node
//! agent as `system:node:<name>` and the service proxy as
//! `system:kube-proxy`.
//!
//! Why certificates fetched with the token rather than Kubernetes' TLS
//! bootstrap (a CertificateSigningRequest approved and signed by the
//! controller manager): the join token already names the cluster CA and
//! stands for the right to join as a node, as k3s' node token does; asking
//! the server directly needs no approver and no running controller manager
//! before the node can start, and the token itself stays limited to that
//! one request (and CSRs) by the bootstrap policy.

use crate::cli::AgentArgs;
use crate::components::{Components, NodeClients, NodeOptions};
use crate::server::{hostname, shutdown_signal};

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&args.data_dir)?;
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    // Fails at once on a server that does not take the token.
    let joined = ferrokube_client::join::node_clients(&args.server, &args.token, &node_name)
        .await
        .map_err(|e| anyhow::anyhow!("joining {}: {e:#}", args.server))?;
    joined
        .kubelet
        .list_core_api_versions()
        .await
        .map_err(|e| anyhow::anyhow!("joining {}: {e}", args.server))?;
    let mut components = Components::empty();
    components.start_node(
        &NodeClients {
            kubelet: joined.kubelet,
            proxy: joined.proxy,
        },
        &NodeOptions {
            node_name: node_name.clone(),
            data_dir: args.data_dir.clone(),
            container_runtime_endpoint: args.container_runtime_endpoint.clone(),
            cluster_dns: args.cluster_dns,
            cluster_domain: args.cluster_domain.clone(),
            cluster_cidr: args.cluster_cidr.clone(),
            flannel_backend: crate::components::flannel_backend(&args.flannel_backend)?,
            proxy: !args.disable_kube_proxy,
            proxy_cleanup_on_exit: args.proxy_cleanup_on_exit,
            kubelet_port: args.kubelet_port,
            cluster_ca_pem: Some(joined.ca_pem),
        },
    );
    tracing::info!(server = %args.server, node = %node_name, "ferrokube agent joined");
    shutdown.await;
    tracing::info!("shutting down");
    components.stop().await;
    Ok(())
}
