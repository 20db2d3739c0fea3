//! `ferrokube agent`: a node joining a cluster with the server's join
//! token. It checks the server's CA against the token, then runs what every
//! node runs (the service proxy and the node agent) as an API client of
//! that server.

use crate::cli::AgentArgs;
use crate::components::{Components, NodeOptions};
use crate::server::{hostname, shutdown_signal};

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&args.data_dir)?;
    let (client, ca_pem) = ferrokube_client::join::join(&args.server, &args.token).await?;
    // Fail at once on a server that does not take the token (`/api`
    // needs credentials; `/version` does not).
    client
        .list_core_api_versions()
        .await
        .map_err(|e| anyhow::anyhow!("joining {}: {e}", args.server))?;
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let mut components = Components::empty();
    components.start_node(
        &client,
        &NodeOptions {
            node_name: node_name.clone(),
            data_dir: args.data_dir.clone(),
            container_runtime_endpoint: args.container_runtime_endpoint.clone(),
            cluster_dns: args.cluster_dns,
            cluster_domain: args.cluster_domain.clone(),
            cluster_cidr: args.cluster_cidr.clone(),
            proxy: !args.disable_kube_proxy,
            proxy_cleanup_on_exit: args.proxy_cleanup_on_exit,
            kubelet_port: args.kubelet_port,
            cluster_ca_pem: Some(ca_pem),
        },
    );
    tracing::info!(server = %args.server, node = %node_name, "ferrokube agent joined");
    shutdown.await;
    tracing::info!("shutting down");
    components.stop().await;
    Ok(())
}
