//! The components `ferrokube server` runs beside the API server: each an
//! API client of it, reaching it inside the process (no TCP or TLS) under
//! Kubernetes' identity for it, with only its role's rights: the scheduler
//! as `system:kube-scheduler`; the controller manager's informers and
//! leader election as `system:kube-controller-manager` and each controller
//! as its service account `system:serviceaccount:kube-system:<name>` (as
//! `--use-service-account-credentials`); the node agent as
//! `system:node:<name>` in `system:nodes`; the proxy as `system:kube-proxy`;
//! the network policy controller as `system:k3s-controller` (k3s' user);
//! the cluster DNS as `system:serviceaccount:kube-system:coredns`; only the
//! API server's own setup (the `kubernetes` and `kube-dns` Services' endpoints, the
//! local-path StorageClass) as `system:apiserver` in `system:masters`. Each
//! is stopped before the API server on shutdown. An agent on another
//! machine reaches it over HTTPS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::ServerArgs;

/// What runs on a node, from `server` or `agent` flags.
pub(crate) struct NodeOptions {
    pub node_name: String,
    pub data_dir: std::path::PathBuf,
    pub container_runtime_endpoint: Option<String>,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub cluster_cidr: String,
    /// The pod network between nodes (`--flannel-backend`).
    pub flannel_backend: ferrokube_kubelet::podnet::Backend,
    pub proxy: bool,
    pub proxy_cleanup_on_exit: bool,
    /// Enforce NetworkPolicies for the node's pods.
    pub network_policy: bool,
    pub kubelet_port: u16,
    /// The cluster CA: client certificates it signed may use the kubelet port.
    pub cluster_ca_pem: Option<String>,
    /// Addresses, labels and taints the node registers with.
    pub flags: crate::cli::NodeFlags,
}

/// The service account the cluster DNS runs as (k3s' CoreDNS's), bound
/// to `system:coredns` by the bootstrap policy.
pub(crate) const DNS_SERVICE_ACCOUNT: &str = "coredns";

/// The clients of what runs on a node: the node agent's, as
/// `system:node:<name>`, the proxy's, as `system:kube-proxy`, and the
/// network policy controller's, as `system:k3s-controller` (k3s' user for it).
pub(crate) struct NodeClients {
    pub kubelet: kube::Client,
    pub proxy: kube::Client,
    pub netpol: kube::Client,
}

/// Creates the service account `kube-system/<name>` unless it exists.
async fn ensure_service_account(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, PostParams};
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-system");
    if api.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The controller manager's name in its clients' User-Agent.
pub(crate) const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// Clients of the API server inside this process, each acting as one user.
#[derive(Clone)]
struct InProcess {
    local: ferrokube_apiserver::Local,
}

impl InProcess {
    fn new(api: &ferrokube_apiserver::RunningServer) -> InProcess {
        InProcess {
            local: api.local(Default::default()),
        }
    }

    /// A client acting as the user `name` in `groups`, as the component
    /// `component` (its User-Agent, which names its writes in
    /// `managedFields`).
    fn user(&self, name: &str, groups: &[&str], component: &str) -> kube::Client {
        let user =
            ferrokube_apiserver::authn::UserInfo::authenticated(name, groups.iter().copied());
        let agent = ferrokube_client::user_agent(component, None);
        ferrokube_client::local_client_as(self.local.as_user(user), &agent)
    }

    /// A client acting as the service account `kube-system/<sa>`, as the
    /// component `component` (the controller manager's clients add the
    /// account to their User-Agent, as kube-controller-manager's do).
    fn service_account(&self, sa: &str, component: &str) -> kube::Client {
        let name = ferrokube_controllers::clients::user_name(sa);
        let user = ferrokube_apiserver::authn::UserInfo::authenticated(
            name.clone(),
            ferrokube_controllers::clients::groups(),
        );
        let agent = ferrokube_client::user_agent(component, Some(&name));
        ferrokube_client::local_client_as(self.local.as_user(user), &agent)
    }
}

/// The running components.
pub(crate) struct Components {
    cancel: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Components {
    /// Starts what `args` enables, beside the API server `api`.
    pub(crate) async fn start(
        args: &ServerArgs,
        node_name: &str,
        api: &ferrokube_apiserver::RunningServer,
    ) -> anyhow::Result<Components> {
        let kubeconfig = api.kubeconfig.as_path();
        let clients = InProcess::new(api);
        let client = clients.user("system:apiserver", &["system:masters"], "kube-apiserver");
        let mut components = Components::empty();
        if !args.disable_controller_manager {
            components
                .start_controller_manager(args, node_name, kubeconfig, &clients, &client)
                .await?;
        }
        if !args.disable_scheduler {
            components.start_scheduler(node_name, &clients);
        }
        publish_apiserver(&client, args)
            .await
            .context("publishing the kubernetes Service's endpoints")?;
        crate::localstorage::ensure_class(&client, args.local_storage_enabled())
            .await
            .context("making the local-path StorageClass")?;
        if args.dns_enabled() {
            components.start_dns(args, &clients, &client).await?;
        }
        if args.disable_agent {
            // No node here, but the API server still reaches pods (webhooks,
            // aggregated APIs, pods/proxy): with host-gw, routes to every node's pods.
            components.start_pod_network(
                clients.user("system:kube-proxy", &[], "ferrokube-podnet"),
                ferrokube_kubelet::podnet::PodNetConfig {
                    backend: flannel_backend(&args.flannel_backend)?,
                    node_name: None,
                },
            );
        } else {
            components.start_node(
                &NodeClients {
                    kubelet: clients.user(
                        &format!("system:node:{node_name}"),
                        &["system:nodes"],
                        "kubelet",
                    ),
                    proxy: clients.user("system:kube-proxy", &[], "kube-proxy"),
                    netpol: clients.user("system:k3s-controller", &[], "network-policy-controller"),
                },
                &node_options(args, node_name, kubeconfig)?,
            );
        }
        Ok(components)
    }

    /// Starts the controller manager, each controller as its service
    /// account (made first, with `client`).
    async fn start_controller_manager(
        &mut self,
        args: &ServerArgs,
        node_name: &str,
        kubeconfig: &std::path::Path,
        clients: &InProcess,
        client: &kube::Client,
    ) -> anyhow::Result<()> {
        ferrokube_controllers::clients::ensure_service_accounts(client)
            .await
            .context("creating the controllers' service accounts")?;
        let service_accounts = clients.clone();
        let config = ferrokube_controllers::ControllerConfig {
            identity: format!("{node_name}_{}", std::process::id()),
            cluster_cidr: args.cluster_cidr.clone(),
            node_monitor_grace_period: args.node_monitor_grace_period,
            hpa: args.hpa.config(),
            ca_pem: ferrokube_controllers::serviceaccount::ca_pem_from_kubeconfig(kubeconfig)
                .context("reading the cluster CA for kube-root-ca.crt")?,
            signing_ca: signing_ca(&args.data_dir),
            local_storage_path: args
                .local_storage_enabled()
                .then(|| args.data_dir.join("storage")),
            servicelb: args.servicelb_enabled(),
            clients: ferrokube_controllers::clients::ControllerClients::per_controller(
                move |sa: &str| service_accounts.service_account(sa, CONTROLLER_MANAGER),
            ),
            ..Default::default()
        };
        let client = clients.user("system:kube-controller-manager", &[], CONTROLLER_MANAGER);
        let cancel = self.cancel.child_token();
        self.tasks.push((
            "controller-manager",
            tokio::spawn(ferrokube_controllers::run(client, config, cancel)),
        ));
        Ok(())
    }

    /// Starts the scheduler (under its Lease).
    fn start_scheduler(&mut self, node_name: &str, clients: &InProcess) {
        let config = ferrokube_scheduler::SchedulerConfig {
            identity: format!("{node_name}_{}", std::process::id()),
            ..Default::default()
        };
        let client = clients.user("system:kube-scheduler", &[], "kube-scheduler");
        let cancel = self.cancel.child_token();
        self.tasks.push((
            "scheduler",
            tokio::spawn(ferrokube_scheduler::run(client, config, cancel)),
        ));
    }

    /// Starts the cluster DNS on this host's address, port 53, as its
    /// service account (made first, with `client`), and publishes the
    /// `kube-dns` Service in front of it.
    async fn start_dns(
        &mut self,
        args: &ServerArgs,
        clients: &InProcess,
        client: &kube::Client,
    ) -> anyhow::Result<()> {
        let ip = args.node.node_ip.first().copied().unwrap_or_else(node_ip);
        let listen = SocketAddr::new(ip, 53);
        let config = ferrokube_dns::DnsConfig {
            listen,
            domain: args.cluster_domain.clone(),
            upstreams: None,
        };
        ensure_service_account(client, DNS_SERVICE_ACCOUNT)
            .await
            .context("creating the cluster DNS's service account")?;
        let dns = ferrokube_dns::start(
            clients.service_account(DNS_SERVICE_ACCOUNT, "coredns"),
            config,
            self.cancel.child_token(),
        )
        .await
        .with_context(|| {
            format!("starting the cluster DNS on {listen} (--disable coredns turns it off)")
        })?;
        ferrokube_dns::publish(client.clone(), args.cluster_dns, dns.addr)
            .await
            .context("publishing the kube-dns Service")?;
        self.tasks.push(("dns", tokio::spawn(dns.join())));
        Ok(())
    }

    /// Runs `task` (given a token that fires on [`Components::stop`]) as one
    /// of the components, called `name`.
    pub(crate) fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.cancel.child_token());
        self.tasks.push((name, tokio::spawn(fut)));
    }

    /// Components with nothing started yet.
    pub(crate) fn empty() -> Components {
        Components {
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// Starts what runs on every node: the node agent (kubelet, with the
    /// containerd it supervises unless given a runtime), the service proxy
    /// and the network policy controller.
    pub(crate) fn start_node(&mut self, clients: &NodeClients, opts: &NodeOptions) {
        let client = &clients.kubelet;
        let mut kubelet = ferrokube_kubelet::KubeletConfig::new(&opts.node_name, &opts.data_dir);
        kubelet.container_runtime_endpoint = opts.container_runtime_endpoint.clone();
        kubelet.cluster_dns = opts.cluster_dns;
        kubelet.cluster_domain = opts.cluster_domain.clone();
        kubelet.kubelet_port = opts.kubelet_port;
        kubelet.client_ca_pem = opts.cluster_ca_pem.clone();
        kubelet.cluster_cidr = Some(opts.cluster_cidr.clone());
        kubelet.flannel_backend = opts.flannel_backend;
        self.start_pod_network(
            client.clone(),
            ferrokube_kubelet::podnet::PodNetConfig {
                backend: opts.flannel_backend,
                node_name: Some(opts.node_name.clone()),
            },
        );
        crate::identity::apply(&opts.flags, &mut kubelet);
        let (c, cancel) = (client.clone(), self.cancel.child_token());
        self.tasks.push((
            "kubelet",
            tokio::spawn(async move {
                if let Err(e) = ferrokube_kubelet::run(c, kubelet, cancel).await {
                    tracing::error!(error = format!("{e:#}"), "node agent stopped");
                }
            }),
        ));
        if opts.proxy {
            let config = ferrokube_proxy::ProxyConfig {
                node_name: opts.node_name.clone(),
                cluster_cidr: opts.cluster_cidr.clone(),
                cleanup_on_exit: opts.proxy_cleanup_on_exit,
                ..Default::default()
            };
            let (client, cancel) = (clients.proxy.clone(), self.cancel.child_token());
            self.tasks.push((
                "proxy",
                tokio::spawn(async move {
                    if let Err(e) = ferrokube_proxy::run(client, config, cancel, None).await {
                        tracing::error!(error = %e, "service proxy stopped");
                    }
                }),
            ));
        }
        if opts.network_policy {
            self.start_netpol(&clients.netpol, opts);
        }
    }

    /// Starts the network policy controller of the node.
    fn start_netpol(&mut self, client: &kube::Client, opts: &NodeOptions) {
        let config = ferrokube_netpol::NetpolConfig {
            node_name: opts.node_name.clone(),
            cleanup_on_exit: opts.proxy_cleanup_on_exit,
            ..Default::default()
        };
        let (client, cancel) = (client.clone(), self.cancel.child_token());
        self.tasks.push((
            "network-policy",
            tokio::spawn(async move {
                if let Err(e) = ferrokube_netpol::run(client, config, cancel, None).await {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "network policy controller stopped"
                    );
                }
            }),
        ));
    }

    /// Starts the keeper of the pod network between nodes (routes, VXLAN), unless the
    /// backend is `none`.
    pub(crate) fn start_pod_network(
        &mut self,
        client: kube::Client,
        config: ferrokube_kubelet::podnet::PodNetConfig,
    ) {
        if config.backend == ferrokube_kubelet::podnet::Backend::None {
            return;
        }
        let cancel = self.cancel.child_token();
        self.tasks.push((
            "pod-network",
            tokio::spawn(ferrokube_kubelet::podnet::run(client, config, cancel)),
        ));
    }

    /// Stops every component and waits for it.
    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        for (name, task) in self.tasks {
            match task.await {
                Ok(()) => tracing::debug!(component = name, "component stopped"),
                Err(e) => tracing::warn!(component = name, error = %e, "component task failed"),
            }
        }
    }
}

/// What runs on this server's own node, from its flags.
fn node_options(
    args: &ServerArgs,
    node_name: &str,
    kubeconfig: &std::path::Path,
) -> anyhow::Result<NodeOptions> {
    Ok(NodeOptions {
        node_name: node_name.to_string(),
        data_dir: args.data_dir.clone(),
        container_runtime_endpoint: args.container_runtime_endpoint.clone(),
        cluster_dns: args.cluster_dns,
        cluster_domain: args.cluster_domain.clone(),
        cluster_cidr: args.cluster_cidr.clone(),
        flannel_backend: flannel_backend(&args.flannel_backend)?,
        proxy: !args.disable_kube_proxy,
        proxy_cleanup_on_exit: args.proxy_cleanup_on_exit,
        network_policy: !args.disable_network_policy,
        kubelet_port: args.kubelet_port,
        cluster_ca_pem: Some(
            ferrokube_controllers::serviceaccount::ca_pem_from_kubeconfig(kubeconfig)
                .context("reading the cluster CA for the kubelet")?,
        ),
        flags: args.node.clone(),
    })
}

/// The `--flannel-backend` flag's backend.
pub(crate) fn flannel_backend(flag: &str) -> anyhow::Result<ferrokube_kubelet::podnet::Backend> {
    Ok(flag.parse()?)
}

/// The cluster CA under `DATA_DIR/tls` (made by the API server's PKI), for
/// the CSR signer; `None` when it cannot be read.
fn signing_ca(data_dir: &std::path::Path) -> Option<ferrokube_controllers::csrsigning::SigningCa> {
    let tls = data_dir.join("tls");
    let cert_pem = std::fs::read_to_string(tls.join("ca.crt")).ok()?;
    let key_pem = std::fs::read_to_string(tls.join("ca.key")).ok()?;
    Some(ferrokube_controllers::csrsigning::SigningCa { cert_pem, key_pem })
}

/// This host's primary address: the one its default route leaves from
/// (found by a routing lookup; no packet is sent), or loopback.
pub(crate) fn node_ip() -> IpAddr {
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
        args.node.node_ip.first().copied().unwrap_or_else(node_ip)
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
