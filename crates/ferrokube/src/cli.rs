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
    /// Print the version.
    Version,
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

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The server to join, e.g. https://10.0.0.1:6443.
    #[arg(long, env = "FERROKUBE_URL")]
    pub server: String,

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

    /// Remove the service proxy's nftables table when the agent stops.
    #[arg(long)]
    pub proxy_cleanup_on_exit: bool,

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

    /// Cluster domain served by the cluster DNS.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Packaged components not to run (k3s' names): `coredns` (the cluster
    /// DNS; `dns` also works), `local-storage` (the local-path provisioner
    /// and its default StorageClass). Repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = ["coredns", "dns", "local-storage"])]
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

    /// Remove the service proxy's nftables table when the server stops.
    #[arg(long)]
    pub proxy_cleanup_on_exit: bool,

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
}

/// A duration as Kubernetes' flags take it (Go's form): numbers with units
/// `ms`, `s`, `m` or `h`, e.g. `40s`, `1m30s`, `500ms`.
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
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
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
}
