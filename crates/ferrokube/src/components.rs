//! The components `ferrokube server` runs beside the API server: each an
//! API client of it over loopback HTTPS with the admin kubeconfig, as in
//! k3s, and each stopped before the API server on shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::ServerArgs;

/// The running components.
pub struct Components {
    cancel: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Components {
    /// Starts what `args` enables, talking to the API server through the
    /// kubeconfig at `kubeconfig`.
    pub async fn start(
        args: &ServerArgs,
        node_name: &str,
        kubeconfig: &Path,
    ) -> anyhow::Result<Components> {
        let client = ferrokube_client::client_from_kubeconfig(kubeconfig)
            .await
            .context("building the components' API client")?;
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        if !args.disable_controller_manager {
            let config = ferrokube_controllers::ControllerConfig {
                identity: format!("{node_name}_{}", std::process::id()),
                cluster_cidr: args.cluster_cidr.clone(),
                ..Default::default()
            };
            let (client, cancel) = (client.clone(), cancel.child_token());
            tasks.push((
                "controller-manager",
                tokio::spawn(ferrokube_controllers::run(client, config, cancel)),
            ));
        }
        publish_apiserver(&client, args)
            .await
            .context("publishing the kubernetes Service's endpoints")?;
        if args.dns_enabled() {
            let listen = SocketAddr::new(node_ip(), 53);
            let config = ferrokube_dns::DnsConfig {
                listen,
                domain: args.cluster_domain.clone(),
                upstreams: None,
            };
            let dns = ferrokube_dns::start(client.clone(), config, cancel.child_token())
                .await
                .with_context(|| {
                    format!("starting the cluster DNS on {listen} (--disable coredns turns it off)")
                })?;
            ferrokube_dns::publish(client.clone(), args.cluster_dns, dns.addr)
                .await
                .context("publishing the kube-dns Service")?;
            tasks.push(("dns", tokio::spawn(dns.join())));
        }
        if !args.disable_agent && !args.disable_kube_proxy {
            let config = ferrokube_proxy::ProxyConfig {
                node_name: node_name.to_string(),
                cluster_cidr: args.cluster_cidr.clone(),
                cleanup_on_exit: args.proxy_cleanup_on_exit,
                ..Default::default()
            };
            let (client, cancel) = (client.clone(), cancel.child_token());
            tasks.push((
                "proxy",
                tokio::spawn(async move {
                    if let Err(e) = ferrokube_proxy::run(client, config, cancel, None).await {
                        tracing::error!(error = %e, "service proxy stopped");
                    }
                }),
            ));
        }
        Ok(Components { cancel, tasks })
    }

    /// Stops every component and waits for it.
    pub async fn stop(self) {
        self.cancel.cancel();
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(component = name, error = %e, "component task failed");
            }
        }
    }
}

/// This host's primary address: the one its default route leaves from
/// (found by a routing lookup; no packet is sent), or loopback.
pub fn node_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        // A documentation address: only the route to it matters.
        s.connect("198.51.100.1:53")?;
        Ok(s.local_addr()?.ip())
    };
    probe()
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The `kubernetes` Service's endpoints: the address pods reach the API
/// server on (this host's address when it listens on all of them), as
/// Kubernetes' API server keeps them.
async fn publish_apiserver(client: &kube::Client, args: &ServerArgs) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Endpoints;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Api, Patch, PatchParams};
    let ip = if args.bind_address.is_unspecified() {
        node_ip()
    } else {
        args.bind_address
    };
    let port = args.https_listen_port;
    let params = PatchParams::apply("ferrokube-apiserver").force();
    let slice = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {
            "kubernetes.io/service-name": "kubernetes",
            "endpointslice.kubernetes.io/managed-by": "ferrokube-apiserver"
        }},
        "addressType": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
    });
    Api::<EndpointSlice>::namespaced(client.clone(), "default")
        .patch("kubernetes", &params, &Patch::Apply(&slice))
        .await?;
    let endpoints = serde_json::json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": ip.to_string()}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    });
    Api::<Endpoints>::namespaced(client.clone(), "default")
        .patch("kubernetes", &params, &Patch::Apply(&endpoints))
        .await?;
    Ok(())
}
