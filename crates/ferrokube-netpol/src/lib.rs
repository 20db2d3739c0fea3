//! ferrokube's network policy controller, one per node, as k3s embeds
//! kube-router's: it watches NetworkPolicies, Pods and Namespaces and
//! enforces the policies for the pods of its node in one nftables table of
//! its own (`inet ferrokube-netpol`), rewritten whole in one transaction
//! after every change that alters it (see [`model`] for the semantics and
//! the ruleset).
//!
//! Where the rules hook: pods of one node talk through the CNI bridge, and
//! bridged frames reach the IP hooks only with `br_netfilter` and
//! `bridge-nf-call-iptables` set (kube-router relies on the same; the
//! service proxy sets it too, so that replies from a Service's endpoint on
//! the same bridge are translated back). The controller loads the module
//! and sets the switch. With it, traffic between two pods of the node and
//! traffic routed to and from other nodes both cross the `forward` hook,
//! after the proxy's DNAT: policies see pod IPs, as in Kubernetes. A table
//! of family `bridge` would see the same-node traffic before the proxy's
//! DNAT (a Service address, not the pod's) and not the routed traffic; hooks
//! on each pod's veth would need rules per interface kept in step with the
//! runtime. Traffic from a pod to its node (the cluster DNS listens there)
//! crosses `input`, where the pod's egress rules apply too; traffic from the
//! node to its pods (probes) is never filtered.
//!
//! The table stays when the controller stops (policies keep holding while
//! the node restarts), unless the configuration asks to clean up;
//! `ferrokube killall` removes it.

pub mod model;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use ferrokube_nft::Nft;

/// How the controller is set up.
#[derive(Clone, Debug)]
pub struct NetpolConfig {
    /// This node's name: the pods it enforces policies for.
    pub node_name: String,
    /// The nftables table (family `inet`) it owns.
    pub table: String,
    /// How to run `nft`.
    pub nft: Nft,
    /// Remove the table when stopping.
    pub cleanup_on_exit: bool,
    /// Load `br_netfilter` and set `bridge-nf-call-iptables` in this
    /// process's network namespace.
    pub set_sysctls: bool,
}

impl Default for NetpolConfig {
    fn default() -> Self {
        NetpolConfig {
            node_name: String::new(),
            table: ferrokube_nft::NETPOL_TABLE.into(),
            nft: Nft::default(),
            cleanup_on_exit: false,
            set_sysctls: true,
        }
    }
}

/// What one sync did, for logs and tests.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// Pods of this node isolated for ingress.
    pub ingress_isolated: usize,
    /// Pods of this node isolated for egress.
    pub egress_isolated: usize,
    /// Lines of the script applied.
    pub script_lines: usize,
    /// From the start of the sync until nft accepted the script.
    pub took: Duration,
}

/// The caches the controller plans from.
struct Caches {
    pods: reflector::Store<Pod>,
    namespaces: reflector::Store<Namespace>,
    policies: reflector::Store<NetworkPolicy>,
}

/// Runs the controller until `cancel`. `on_sync` hears of every sync that
/// changed the table.
pub async fn run(
    client: kube::Client,
    config: NetpolConfig,
    cancel: CancellationToken,
    on_sync: Option<UnboundedSender<SyncReport>>,
) -> anyhow::Result<()> {
    if config.set_sysctls {
        set_sysctls().await;
    }
    let (pods, pods_w) = reflector::store::<Pod>();
    let (namespaces, ns_w) = reflector::store::<Namespace>();
    let (policies, pol_w) = reflector::store::<NetworkPolicy>();
    let changed = Arc::new(Notify::new());
    let caches = Caches {
        pods,
        namespaces,
        policies,
    };
    let feed = async {
        tokio::join!(
            watch(Api::<Pod>::all(client.clone()), pods_w, &changed),
            watch(Api::<Namespace>::all(client.clone()), ns_w, &changed),
            watch(Api::<NetworkPolicy>::all(client.clone()), pol_w, &changed),
        )
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = feed => {}
        _ = sync_loop(&caches, &config, &changed, on_sync.as_ref()) => {}
    }
    if config.cleanup_on_exit {
        config
            .nft
            .apply(&format!(
                "add table inet {t}\ndelete table inet {t}\n",
                t = config.table
            ))
            .await?;
    }
    Ok(())
}

/// Keeps a cache of `api`'s objects and wakes the sync loop on every
/// change. Errors are retried with back-off by the watcher.
async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, changed: &Notify)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let mut stream = std::pin::pin!(stream);
    while stream.next().await.is_some() {
        changed.notify_one();
    }
}

/// Syncs the table once the caches hold the whole cluster, then after
/// every change (a burst of changes in one sync); never returns.
async fn sync_loop(
    caches: &Caches,
    config: &NetpolConfig,
    changed: &Notify,
    on_sync: Option<&UnboundedSender<SyncReport>>,
) {
    let _ = caches.pods.wait_until_ready().await;
    let _ = caches.namespaces.wait_until_ready().await;
    let _ = caches.policies.wait_until_ready().await;
    let mut applied: Option<String> = None;
    loop {
        let started = Instant::now();
        let rules = plan(caches, &config.node_name);
        let script = model::script(&config.table, &rules);
        if applied.as_deref() != Some(script.as_str()) {
            if let Err(e) = config.nft.apply(&script).await {
                tracing::warn!(error = %e, "programming the network policies failed; retrying");
                applied = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let report = SyncReport {
                ingress_isolated: rules.ingress.len(),
                egress_isolated: rules.egress.len(),
                script_lines: script.lines().count(),
                took: started.elapsed(),
            };
            tracing::debug!(?report, "network policies synced");
            if let Some(tx) = on_sync {
                let _ = tx.send(report);
            }
            applied = Some(script);
        }
        changed.notified().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node's ruleset from the caches. Every pod event anywhere wakes the
/// sync, so a cluster without policies (nothing can be isolated, the ruleset
/// is empty whatever the pods) is answered without reading the pods.
fn plan(caches: &Caches, node: &str) -> model::Ruleset {
    let policies = caches.policies.state();
    if policies.is_empty() {
        return model::Ruleset::default();
    }
    let pods: Vec<model::PodInfo> = caches
        .pods
        .state()
        .iter()
        .filter_map(|p| model::PodInfo::from_pod(p))
        .collect();
    let namespaces = model::namespace_labels(caches.namespaces.state().iter().map(|n| n.as_ref()));
    let policies: Vec<NetworkPolicy> = policies.iter().map(|p| p.as_ref().clone()).collect();
    model::plan(node, &pods, &namespaces, &policies)
}

/// Loads `br_netfilter` when its switches are missing, and sets
/// `bridge-nf-call-iptables` so that traffic between pods on the bridge
/// crosses the IP hooks. Failures are logged: policies then hold only for
/// routed traffic.
async fn set_sysctls() {
    const SWITCH: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if !std::path::Path::new(SWITCH).exists() {
        match tokio::process::Command::new("modprobe")
            .arg("br_netfilter")
            .output()
            .await
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => tracing::warn!(
                stderr = %String::from_utf8_lossy(&o.stderr).trim(),
                "could not load br_netfilter: policies will not hold between pods of one node"
            ),
            Err(e) => tracing::warn!(error = %e, "could not run modprobe br_netfilter"),
        }
    }
    if let Err(e) = std::fs::write(SWITCH, "1") {
        tracing::warn!(path = SWITCH, error = %e, "could not set a kernel switch network policies need");
    }
}
