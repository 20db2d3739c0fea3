//! ferrokube's node agent (the kubelet's part of Kubernetes): registers this machine
//! as a Node and keeps its Lease and status fresh, runs the pods bound to it through a
//! CRI runtime (a containerd it supervises, or one at `container_runtime_endpoint`),
//! with CNI networking, and reports their status through the API.

pub mod cni;
pub mod containerd;
pub mod cri;
mod events;
pub mod images;
pub mod killall;
mod localvolumes;
mod node;
mod pause;
pub mod podnet;
mod pods;
mod quantity;
mod registries;
mod server;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

pub use images::import_images;

/// The node's own sandbox image, made from the embedded pause program and
/// imported at start (see `pause`).
pub const DEFAULT_SANDBOX_IMAGE: &str = pause::IMAGE;

/// How the agent runs; `KubeletConfig::new` gives Kubernetes' defaults.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The Node this agent registers and runs the pods of.
    pub node_name: String,
    /// DATA_DIR: the agent keeps its files under DATA_DIR/agent/.
    pub data_dir: PathBuf,
    /// A running CRI runtime to use (`unix:///path`); `None` starts containerd.
    pub container_runtime_endpoint: Option<String>,
    /// The cluster DNS server's address, in pods' resolv.conf (ClusterFirst).
    pub cluster_dns: IpAddr,
    /// The cluster's DNS domain (`cluster.local`), in pods' search paths.
    pub cluster_domain: String,
    /// The image of pods' sandboxes (default: the node's own pause image).
    pub sandbox_image: String,
    /// Name of the pods' bridge.
    pub cni_bridge: String,
    /// Whether the node's masquerade rule for pods' egress is set (nftables). Off only
    /// where no real pod network exists (the in-memory runtime of tests).
    pub masquerade: bool,
    /// Registry mirrors (k3s' registries.yaml); default DATA_DIR/registries.yaml.
    pub registries: Option<PathBuf>,
    /// The pod CIDR to use when the Node has no `spec.podCIDR` (Kubernetes'
    /// `--pod-cidr`: for a node with no node IPAM controller in its cluster, such as
    /// tools and tests). `None`, the default: wait for the controller to assign one,
    /// so that no two nodes ever share a range.
    pub pod_cidr: Option<String>,
    /// How long to wait for `spec.podCIDR` before giving up (the agent then stops
    /// with an error that says so).
    pub pod_cidr_timeout: Duration,
    /// The cluster's pod network (`--cluster-cidr`): pods' traffic to it keeps its
    /// source address; only traffic leaving it is masqueraded. `None`: only the
    /// node's own pod CIDR is exempt.
    pub cluster_cidr: Option<String>,
    /// The pod network backend between nodes (`--flannel-backend`): with VXLAN the
    /// pods' interfaces get the overlay's smaller MTU.
    pub flannel_backend: podnet::Backend,
    /// This node's InternalIP (default: the address of the default route).
    pub node_ip: Option<IpAddr>,
    /// More InternalIPs (`--node-ip`'s second address, for dual stack).
    pub secondary_node_ips: Vec<IpAddr>,
    /// The node's ExternalIPs (`--node-external-ip`).
    pub node_external_ips: Vec<IpAddr>,
    /// Labels the Node is created with (`--node-label`), besides the
    /// well-known ones; as the kubelet's `--node-labels`, not applied again
    /// to a Node that exists.
    pub node_labels: std::collections::BTreeMap<String, String>,
    /// Taints the Node is created with (the kubelet's
    /// `--register-with-taints`, k3s' `--node-taint`).
    pub register_with_taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Lease renewal period (Kubernetes: 10 s).
    pub lease_interval: Duration,
    /// How often node conditions are recomputed (Kubernetes: 10 s).
    pub node_status_interval: Duration,
    /// Container restart back-off: first delay and cap (Kubernetes: 10 s, 300 s).
    pub backoff_initial: Duration,
    /// The cap of the container restart and image pull back-off.
    pub backoff_max: Duration,
    /// How often a pod worker looks at its containers when nothing else happens.
    pub pod_poll_interval: Duration,
    /// How often the runtime's sandboxes and containers are listed to wake the
    /// workers of pods whose containers changed state (Kubernetes' PLEG: 1 s).
    pub relist_interval: Duration,
    /// The port of the node's HTTPS server (logs, exec, attach, port-forward;
    /// Kubernetes: 10250); 0 takes a free one. The Node reports the one in use.
    pub kubelet_port: u16,
    /// The cluster CA (PEM): client certificates it signed may use the node's
    /// HTTPS server. `None`: only `/healthz` answers.
    pub client_ca_pem: Option<String>,
    /// Sysctls beyond the safe set that pods may set on this node: names, or
    /// prefixes ending in `*` (Kubernetes' `--allowed-unsafe-sysctls`).
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl KubeletConfig {
    /// The configuration of node `node_name` with its files under `data_dir`, and Kubernetes' defaults.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        KubeletConfig {
            node_name: node_name.into(),
            data_dir: data_dir.into(),
            container_runtime_endpoint: None,
            cluster_dns: IpAddr::V4(Ipv4Addr::new(10, 43, 0, 10)),
            cluster_domain: "cluster.local".into(),
            sandbox_image: DEFAULT_SANDBOX_IMAGE.into(),
            cni_bridge: "ferrokube0".into(),
            masquerade: true,
            registries: None,
            pod_cidr: None,
            pod_cidr_timeout: Duration::from_secs(300),
            cluster_cidr: None,
            flannel_backend: podnet::Backend::HostGw,
            node_ip: None,
            secondary_node_ips: Vec::new(),
            node_external_ips: Vec::new(),
            node_labels: Default::default(),
            register_with_taints: Vec::new(),
            lease_interval: Duration::from_secs(10),
            node_status_interval: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            pod_poll_interval: Duration::from_secs(10),
            relist_interval: Duration::from_secs(1),
            kubelet_port: 10250,
            client_ca_pem: None,
            allowed_unsafe_sysctls: Vec::new(),
        }
    }

    /// DATA_DIR/agent.
    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
}

/// Runs the agent until `cancel`: starts (or connects to) the runtime, registers the
/// node, then runs pods. On return a supervised containerd is stopped; containers
/// keep running (the next start adopts them).
pub async fn run(
    client: kube::Client,
    config: KubeletConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let (runtime, supervised, endpoint): (Arc<dyn cri::Runtime>, _, _) = match &config
        .container_runtime_endpoint
    {
        Some(ep) => (
            Arc::new(cri::remote::RemoteRuntime::connect(ep)?),
            None,
            ep.clone(),
        ),
        None => {
            let registries = config
                .registries
                .clone()
                .unwrap_or_else(|| config.data_dir.join("registries.yaml"));
            registries::write_hosts(
                &registries,
                &containerd::ContainerdPaths::new(&config.data_dir).certs_dir,
            )?;
            let c = containerd::Containerd::start(&config.data_dir, &config.sandbox_image, &cancel)
                .await?;
            let ep = c.endpoint();
            (
                Arc::new(cri::remote::RemoteRuntime::connect(&ep)?),
                Some(c),
                ep,
            )
        }
    };
    // The sandbox image first: every pod needs it.
    pause::import(&endpoint, &config.agent_dir())
        .await
        .with_context(|| format!("making the sandbox image {}", pause::IMAGE))?;
    let imported = images::import_dir(&endpoint, &images::auto_import_dir(&config.data_dir))
        .await
        .context("importing DATA_DIR/agent/images")?;
    if !imported.is_empty() {
        tracing::info!(?imported, "imported image archives");
    }
    let cni_conf_dir = match &config.container_runtime_endpoint {
        None => containerd::ContainerdPaths::new(&config.data_dir).cni_conf_dir,
        // An external runtime reads the system's CNI directory.
        Some(_) => PathBuf::from("/etc/cni/net.d"),
    };
    let result = run_with_runtime(client, config, runtime, cni_conf_dir, cancel).await;
    if let Some(c) = supervised {
        c.stop().await;
    }
    result
}

/// The node agent's HTTPS server alone, over `runtime`, on loopback at a
/// free port, accepting client certificates signed by `client_ca_pem`: a
/// hollow node's kubelet for benchmarks (the same routes, TLS and
/// authentication as a real node's; `/metrics/resource` and
/// `/stats/summary` from what `runtime` reports). Serves until `cancel`;
/// returns its address.
pub async fn serve_hollow_kubelet(
    node_name: &str,
    runtime: Arc<dyn cri::Runtime>,
    client_ca_pem: &str,
    agent_dir: PathBuf,
    cancel: CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    let https = server::KubeletServer::bind(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        vec![node_name.to_string(), "127.0.0.1".into()],
        Some(client_ca_pem),
    )
    .await?;
    let addr = https.addr;
    tokio::spawn(https.serve(
        Arc::new(server::State {
            runtime,
            client: None,
            stats: server::stats::Collector::new(node_name.to_string(), agent_dir),
        }),
        cancel,
    ));
    Ok(addr)
}

/// The agent over a given runtime (the unit tests pass the fake one).
pub async fn run_with_runtime(
    client: kube::Client,
    config: KubeletConfig,
    runtime: Arc<dyn cri::Runtime>,
    cni_conf_dir: PathBuf,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut config = config;
    let version = wait_runtime(runtime.as_ref(), &cancel).await?;
    let node_ip = config.node_ip.unwrap_or_else(node::detect_node_ip);
    let https = server::KubeletServer::bind(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        config.kubelet_port,
        vec![
            config.node_name.clone(),
            node::hostname(),
            node_ip.to_string(),
            "localhost".into(),
            "127.0.0.1".into(),
        ],
        config.client_ca_pem.as_deref(),
    )
    .await?;
    config.kubelet_port = https.addr.port();
    let server_task = tokio::spawn(https.serve(
        Arc::new(server::State {
            runtime: runtime.clone(),
            client: Some(client.clone()),
            stats: server::stats::Collector::new(config.node_name.clone(), config.agent_dir()),
        }),
        cancel.child_token(),
    ));
    let registered = node::register(&client, &config, node_ip, &version)
        .await
        .context("registering the node")?;
    let pod_cidr = match (registered.pod_cidr.clone(), &config.pod_cidr) {
        (Some(assigned), _) => assigned,
        (None, Some(configured)) => configured.clone(),
        (None, None) => node::wait_pod_cidr(&client, &config, &cancel).await?,
    };
    let mtu = match config.flannel_backend {
        podnet::Backend::Vxlan => podnet::vxlan::pod_mtu(node_ip),
        _ => None,
    };
    cni::write_conflist(
        &cni_conf_dir,
        &cni::Network {
            bridge: &config.cni_bridge,
            pod_cidr: &pod_cidr,
            mtu,
        },
        &config.agent_dir().join("cni").join("networks"),
    )?;
    if config.masquerade {
        let cluster = config.cluster_cidr.as_deref().unwrap_or(&pod_cidr);
        cni::set_masquerade(&config.cni_bridge, &pod_cidr, cluster).await?;
    }
    let config = Arc::new(config);
    let node_task = tokio::spawn(node::run(
        client.clone(),
        config.clone(),
        runtime.clone(),
        node_ip,
        version.clone(),
        cancel.clone(),
    ));
    let volumes_task = tokio::spawn(localvolumes::run(
        client.clone(),
        config.node_name.clone(),
        cancel.clone(),
    ));
    let pods = pods::PodManager::new(
        client,
        config,
        runtime,
        node_ip,
        pods::runtime_name(&version),
    );
    let result = pods.run(cancel.clone()).await;
    cancel.cancel();
    let _ = node_task.await;
    let _ = volumes_task.await;
    let _ = server_task.await;
    result
}

async fn wait_runtime(
    runtime: &dyn cri::Runtime,
    cancel: &CancellationToken,
) -> anyhow::Result<cri::api::VersionResponse> {
    let mut last = None;
    for _ in 0..120 {
        match runtime.version().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("cancelled"),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    anyhow::bail!("container runtime not answering: {:?}", last)
}
