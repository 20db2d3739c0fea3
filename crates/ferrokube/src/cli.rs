//! Command-line flags, with k3s' names where k3s has one.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferrokube",
    about = "A Kubernetes-compatible cluster in one binary"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a cluster: the control plane and, unless --disable-agent, a node.
    Server(Box<ServerArgs>),
    /// Join a cluster as a node (kubelet and service proxy).
    Agent(Box<AgentArgs>),
    /// Run the controller manager alone, against a server started with
    /// --disable-controller-manager (or beside one: they share a Lease).
    ControllerManager(Box<ControllerManagerArgs>),
    /// Manage images in the node's container runtime.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Stop this machine's node and remove what it made, as k3s' killall script:
    /// the ferrokube process and containerd of --data-dir, its shims, pods'
    /// containers and mounts, the pods' network namespaces, veths and bridge, and
    /// the node's nftables tables. Nothing of other runtimes is touched.
    Killall(KillallArgs),
    /// The web dashboard the server serves under /dashboard/.
    #[command(subcommand)]
    Dashboard(DashboardCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DashboardCommand {
    /// Print a link that logs in to the dashboard as the kubeconfig's user:
    /// https://<server>/dashboard/#code=<one-time code> (good once, for 5 minutes).
    Url(DashboardUrlArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DashboardUrlArgs {
    /// The kubeconfig whose user the link logs in as (default: the server's
    /// admin kubeconfig, DATA_DIR/kubeconfig.yaml).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// The data dir of the server whose admin kubeconfig is the default.
    #[arg(long, default_value = "/var/lib/ferrokube", env = "FERROKUBE_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct KillallArgs {
    /// The data dir of the node to stop and clean up.
    #[arg(long, default_value = "/var/lib/ferrokube", env = "FERROKUBE_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Load OCI or `docker save` archives into the runtime's k8s.io namespace.
    Import(ImageImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImageImportArgs {
    /// The data dir of the node whose supervised containerd receives the images.
    #[arg(long, default_value = "/var/lib/ferrokube", env = "FERROKUBE_DATA_DIR")]
    pub data_dir: PathBuf,

    /// A CRI runtime socket to import into instead (unix:///path).
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,

    /// Image archives.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// How a node names itself and what it registers with (k3s' flags).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct NodeFlags {
    /// The node's address(es), reported as its InternalIP (default: the
    /// address of the default route's interface). Repeat or separate with
    /// commas (one IPv4 and one IPv6 for dual stack).
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,

    /// The node's external address(es), reported as its ExternalIP.
    /// Repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub node_external_ip: Vec<IpAddr>,

    /// A label `key=value` the node registers with (applied when the Node
    /// is created, as k3s does). Repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    pub node_label: Vec<(String, String)>,

    /// A taint `key=value:Effect` or `key:Effect` (NoSchedule,
    /// PreferNoSchedule, NoExecute) the node registers with. Repeat or
    /// separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = parse_taint)]
    pub node_taint: Vec<Taint>,

    /// Append a random id (made once, kept in DATA_DIR/agent/node-id) to
    /// the node name, so that machines with one host name stay apart.
    #[arg(long)]
    pub with_node_id: bool,
}

/// A taint of `--node-taint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// `key=value` of `--node-label`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not a label key=value")),
    }
}

/// `key=value:Effect` or `key:Effect` of `--node-taint`, as the kubelet's
/// `--register-with-taints` reads them.
fn parse_taint(s: &str) -> Result<Taint, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not a taint key=value:Effect (no effect)"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!(
            "invalid taint effect {effect:?} in {s:?}: NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err(format!("{s:?} is not a taint key=value:Effect (no key)"));
    }
    Ok(Taint {
        key: key.to_string(),
        value: value.to_string(),
        effect: effect.to_string(),
    })
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The server(s) to join, e.g. https://10.0.0.1:6443; several,
    /// comma-separated, for a control plane of several servers: the agent's
    /// clients go through a local balancer that fails over between them.
    #[arg(long, env = "FERROKUBE_URL", value_delimiter = ',', required = true)]
    pub server: Vec<String>,

    #[command(flatten)]
    pub node: NodeFlags,

    /// The join token (the server's DATA_DIR/token).
    #[arg(long, env = "FERROKUBE_TOKEN")]
    pub token: String,

    /// Where this node keeps its state.
    #[arg(long, default_value = "/var/lib/ferrokube", env = "FERROKUBE_DATA_DIR")]
    pub data_dir: PathBuf,

    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,

    /// The cluster's pod network: pods' traffic to it is not masqueraded (and
    /// the proxy's masquerading reads it).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,

    /// The pod network between nodes (k3s' flag): `host-gw` (routes to each
    /// node's pod CIDR via its address; nodes share a layer 2 network),
    /// `vxlan` (an overlay over UDP 8472), or `none` (left to the user).
    #[arg(long, default_value = "host-gw", value_parser = ["host-gw", "vxlan", "none"])]
    pub flannel_backend: String,

    /// Address of the cluster DNS service.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,

    /// Cluster domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Use this container runtime (CRI socket) instead of starting containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,

    /// Do not run the service proxy on this node.
    #[arg(long)]
    pub disable_kube_proxy: bool,

    /// Remove the service proxy's and the network policy controller's
    /// nftables tables when the agent stops.
    #[arg(long)]
    pub proxy_cleanup_on_exit: bool,

    /// Do not enforce NetworkPolicies on this node (k3s' flag; a k3s agent
    /// takes it from its server, a ferrokube agent from its own flags).
    #[arg(long)]
    pub disable_network_policy: bool,

    /// The port of the node's HTTPS server (logs, exec, attach,
    /// port-forward); 0 takes a free one.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct ControllerManagerArgs {
    /// The kubeconfig to reach the API server with (a server writes its
    /// admin one to DATA_DIR/kubeconfig.yaml).
    #[arg(long)]
    pub kubeconfig: PathBuf,

    /// Pod network, split into one /24 per node.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,

    /// Where to serve /metrics and /healthz over plain HTTP ("" or 0: not
    /// served).
    #[arg(long, default_value = "127.0.0.1:10257")]
    pub metrics_bind_address: String,

    /// How long a node may go without posting its status (its Lease or
    /// its Ready heartbeat) before its conditions turn Unknown and it is
    /// tainted unreachable (Kubernetes' `--node-monitor-grace-period`,
    /// a duration such as `40s` or `1m30s`).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,

    #[command(flatten)]
    pub hpa: HpaFlags,
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Where the cluster keeps its state (datastore, certificates, kubeconfig).
    #[arg(long, default_value = "/var/lib/ferrokube", env = "FERROKUBE_DATA_DIR")]
    pub data_dir: PathBuf,

    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Port the API server listens on (HTTPS).
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,

    /// Also write the admin kubeconfig here.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,

    /// Use a real etcd cluster instead of the embedded store
    /// (comma-separated, e.g. http://h1:2379,http://h2:2379).
    #[arg(long, value_delimiter = ',')]
    pub datastore_endpoint: Vec<String>,

    /// Pod network, split into one /24 per node.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,

    /// The pod network between nodes (k3s' flag): `host-gw` (routes to each
    /// node's pod CIDR via its address; nodes share a layer 2 network),
    /// `vxlan` (an overlay over UDP 8472), or `none` (left to the user).
    #[arg(long, default_value = "host-gw", value_parser = ["host-gw", "vxlan", "none"])]
    pub flannel_backend: String,

    /// Service network; the first address is the `kubernetes` Service.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,

    /// Address of the cluster DNS service.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,

    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,

    /// Run only the control plane, no node agent.
    #[arg(long)]
    pub disable_agent: bool,

    #[command(flatten)]
    pub node: NodeFlags,

    /// More host names or addresses the serving certificate is valid for
    /// (k3s' flag). Repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// How long the certificates issued to joining nodes last (Kubernetes'
    /// flag, e.g. 8760h; at most a year); agents renew theirs before.
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    pub cluster_signing_duration: std::time::Duration,

    /// How often the built-in resource metrics collector scrapes every
    /// node's kubelet (metrics-server's flag; `kubectl top` and the
    /// HorizontalPodAutoscaler read `metrics.k8s.io`). At least 1s.
    #[arg(long, default_value = "15s", value_parser = parse_metric_resolution)]
    pub metric_resolution: std::time::Duration,

    /// Cluster domain served by the cluster DNS.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Packaged components not to run (k3s' names): `coredns` (the cluster
    /// DNS; `dns` also works), `local-storage` (the local-path provisioner
    /// and its default StorageClass), `servicelb` (addresses for
    /// LoadBalancer Services), `metrics-server` (the built-in resource
    /// metrics: no `metrics.k8s.io`), `dashboard` (the web dashboard under
    /// /dashboard/ and its sessions). Repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = ["coredns", "dns", "local-storage", "servicelb", "metrics-server", "dashboard"])]
    pub disable: Vec<String>,

    /// Do not run the service proxy on this node.
    #[arg(long)]
    pub disable_kube_proxy: bool,

    /// Do not run the scheduler (another process schedules).
    #[arg(long)]
    pub disable_scheduler: bool,

    /// Do not run the controller manager (another process runs it).
    #[arg(long)]
    pub disable_controller_manager: bool,

    /// Use this container runtime (CRI socket) instead of starting containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,

    /// Remove the service proxy's and the network policy controller's
    /// nftables tables when the server stops.
    #[arg(long)]
    pub proxy_cleanup_on_exit: bool,

    /// Do not run the network policy controller (NetworkPolicies are then
    /// stored but not enforced on this server's node), as k3s' flag.
    #[arg(long)]
    pub disable_network_policy: bool,

    /// The port of the node's HTTPS server (logs, exec, attach,
    /// port-forward); 0 takes a free one.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,

    /// Kubernetes' limit on non-mutating requests served at once; with
    /// `--max-mutating-requests-inflight`, the seats API priority and
    /// fairness shares among the priority levels (long-running requests
    /// excepted); requests beyond a level's share queue or get 429.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,

    /// Kubernetes' limit on mutating requests served at once (see
    /// `--max-requests-inflight`).
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,

    /// Seconds between automatic compactions of the datastore's history.
    #[arg(long, default_value_t = 300)]
    pub compaction_interval_seconds: u64,

    /// Authorization modes, in order, comma-separated (Kubernetes' names:
    /// AlwaysAllow, AlwaysDeny, Node, RBAC). Members of system:masters are
    /// always allowed.
    #[arg(long, default_value = "Node,RBAC", value_parser = parse_authorization_modes)]
    pub authorization_mode: AuthorizationModes,

    /// An AdmissionConfiguration file (YAML or JSON), as Kubernetes'
    /// `--admission-control-config-file`: the PodSecurity plugin's default
    /// levels and exemptions.
    #[arg(long)]
    pub admission_control_config_file: Option<PathBuf>,

    /// How long a node may go without posting its status (its Lease or
    /// its Ready heartbeat) before its conditions turn Unknown and it is
    /// tainted unreachable (Kubernetes' `--node-monitor-grace-period`,
    /// a duration such as `40s` or `1m30s`).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,

    #[command(flatten)]
    pub hpa: HpaFlags,
}

/// The HorizontalPodAutoscaler controller's flags (kube-controller-manager's
/// names and defaults), on `ferrokube server` and `ferrokube
/// controller-manager`.
#[derive(Debug, Args, Clone)]
pub(crate) struct HpaFlags {
    /// How often each HorizontalPodAutoscaler is synced.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_sync_period: std::time::Duration,

    /// The minimum change (from 1.0) in the desired-to-actual metrics
    /// ratio for the autoscaler to consider scaling.
    #[arg(long, default_value_t = 0.1, value_parser = parse_tolerance)]
    pub horizontal_pod_autoscaler_tolerance: f64,

    /// How far back the autoscaler looks, and does not scale down below
    /// any recommendation it made there.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_downscale_stabilization: std::time::Duration,

    /// How long after a pod starts its CPU samples may be skipped.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: std::time::Duration,

    /// How long after a pod starts a readiness change makes it count as
    /// never ready.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: std::time::Duration,
}

impl HpaFlags {
    /// The controller's settings.
    pub(crate) fn config(&self) -> ferrokube_controllers::podautoscaler::HpaConfig {
        ferrokube_controllers::podautoscaler::HpaConfig {
            sync_period: self.horizontal_pod_autoscaler_sync_period,
            tolerance: self.horizontal_pod_autoscaler_tolerance,
            downscale_stabilization: self.horizontal_pod_autoscaler_downscale_stabilization,
            cpu_initialization_period: self.horizontal_pod_autoscaler_cpu_initialization_period,
            initial_readiness_delay: self.horizontal_pod_autoscaler_initial_readiness_delay,
        }
    }
}

/// `--horizontal-pod-autoscaler-tolerance`: a number, not negative.
fn parse_tolerance(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t >= 0.0 && t.is_finite() => Ok(t),
        _ => Err(format!(
            "invalid tolerance {s:?} (a number, 0 or more, e.g. 0.1)"
        )),
    }
}

/// A duration as Kubernetes' flags take it (Go's form): numbers with units
/// `ms`, `s`, `m` or `h`, e.g. `40s`, `1m30s`, `500ms`.
/// `--metric-resolution`: a duration of at least a second.
fn parse_metric_resolution(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!(
            "metric-resolution should be a time duration at least 1s, but value {s} provided"
        ));
    }
    Ok(d)
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 40s, 1m30s, 500ms)");
    let mut total = std::time::Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    }
    Ok(total)
}

/// The value of `--authorization-mode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthorizationModes(pub Vec<ferrokube_apiserver::authz::Mode>);

/// `--authorization-mode`'s modes; the error says, in the API server's words,
/// whether it names no mode, an unknown one, or one twice.
fn parse_authorization_modes(
    s: &str,
) -> Result<AuthorizationModes, ferrokube_apiserver::authz::ModeError> {
    ferrokube_apiserver::authz::Mode::parse_list(s).map(AuthorizationModes)
}

impl ServerArgs {
    /// Whether the cluster DNS runs.
    pub(crate) fn dns_enabled(&self) -> bool {
        !self.disable.iter().any(|d| d == "coredns" || d == "dns")
    }

    /// Whether the built-in local-path provisioner (and its default
    /// StorageClass `local-path`) runs.
    pub(crate) fn local_storage_enabled(&self) -> bool {
        !self.disable.iter().any(|d| d == "local-storage")
    }

    /// Whether ServiceLB gives LoadBalancer Services their nodes'
    /// addresses.
    pub(crate) fn servicelb_enabled(&self) -> bool {
        !self.disable.iter().any(|d| d == "servicelb")
    }

    /// Whether the server collects resource metrics and serves
    /// `metrics.k8s.io` (k3s' packaged metrics-server).
    pub(crate) fn metrics_enabled(&self) -> bool {
        !self.disable.iter().any(|d| d == "metrics-server")
    }

    /// Whether the API server serves the dashboard (`/dashboard/`, its
    /// sessions and login codes).
    pub(crate) fn dashboard_enabled(&self) -> bool {
        !self.disable.iter().any(|d| d == "dashboard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_kubernetes_flags_write_them() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "40", "s", "4x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn taints_labels_and_durations_read_as_k3s_and_kubernetes_write_them() {
        assert_eq!(
            parse_taint("dedicated=gpu:NoSchedule"),
            Ok(Taint {
                key: "dedicated".into(),
                value: "gpu".into(),
                effect: "NoSchedule".into()
            })
        );
        assert_eq!(
            parse_taint("example.com/special:NoExecute").map(|t| (t.key, t.value)),
            Ok(("example.com/special".into(), String::new()))
        );
        assert!(parse_taint("k=v").is_err());
        assert!(parse_taint("k=v:Sometimes")
            .unwrap_err()
            .contains("invalid taint effect"));
        assert!(parse_taint(":NoSchedule").is_err());
        assert_eq!(parse_label("tier=edge"), Ok(("tier".into(), "edge".into())));
        assert!(parse_label("tier").is_err());
        assert_eq!(
            parse_duration("8760h"),
            Ok(Duration::from_secs(8760 * 3600))
        );
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }
}
