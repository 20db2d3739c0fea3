//! ferrokube's service proxy.
//!
//! Watches Services and EndpointSlices and programs them into one nftables
//! table of its own (`ip ferrokube-proxy`): cluster IPs and NodePorts to
//! ready endpoints, spread evenly at random, with ClientIP affinity, Local
//! traffic policies, hairpin and masquerading, and an immediate reject for
//! Services without endpoints.
//!
//! The first sync after start replaces the whole table in one transaction
//! (so a restart never leaves a moment without rules); later syncs send
//! only what changed. Stopping leaves the rules in place, as kube-proxy
//! does, unless the configuration asks to clean up.

pub mod model;
pub mod nft;
pub mod render;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use nft::Nft;
pub use render::Ruleset;

/// How the proxy is set up.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// This node's name (for Local traffic policies).
    pub node_name: String,
    /// The pod network.
    pub cluster_cidr: String,
    /// The nftables table the proxy owns.
    pub table: String,
    pub nft: Nft,
    /// Remove the table when stopping.
    pub cleanup_on_exit: bool,
    /// Set the kernel switches the proxy needs (IPv4 forwarding, bridged
    /// traffic through netfilter) in this process's network namespace.
    pub set_sysctls: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: String::new(),
            cluster_cidr: "10.42.0.0/16".into(),
            table: "ferrokube-proxy".into(),
            nft: Nft::default(),
            cleanup_on_exit: false,
            set_sysctls: true,
        }
    }
}

/// What one sync did, for logs and benchmarks.
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub full: bool,
    pub service_ports: usize,
    pub script_lines: usize,
    pub took: Duration,
}

/// Runs the proxy until `cancel`. `on_sync` hears of every sync that
/// changed something (tests and benchmarks use it).
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    cancel: CancellationToken,
    on_sync: Option<tokio::sync::mpsc::UnboundedSender<SyncReport>>,
) -> anyhow::Result<()> {
    if config.set_sysctls {
        set_sysctls();
    }
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());
    let svc_stream = reflector(
        services_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let slice_stream = reflector(
        slices_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let feed = {
        let changed = changed.clone();
        async move {
            let mut svc_stream = std::pin::pin!(svc_stream);
            let mut slice_stream = std::pin::pin!(slice_stream);
            loop {
                tokio::select! {
                    Some(_) = svc_stream.next() => changed.notify_one(),
                    Some(_) = slice_stream.next() => changed.notify_one(),
                    else => return,
                }
            }
        }
    };
    let sync = async {
        // Nothing is programmed until both caches hold the whole cluster:
        // an early sync would briefly program an empty table.
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let mut applied: Option<Ruleset> = None;
        loop {
            let svcs = services.state();
            let sls = slices.state();
            let svc_refs: Vec<&Service> = svcs.iter().map(|s| s.as_ref()).collect();
            let slice_refs: Vec<&EndpointSlice> = sls.iter().map(|s| s.as_ref()).collect();
            let plan = model::plan(&svc_refs, &slice_refs, &config.node_name);
            let wanted = render::render(&plan, &config.cluster_cidr);
            let started = Instant::now();
            let (script, full) = match &applied {
                Some(old) => (render::diff_script(&config.table, old, &wanted), false),
                None => (render::full_script(&config.table, &wanted), true),
            };
            if !script.is_empty() {
                match config.nft.apply(&script).await {
                    Ok(()) => {
                        let report = SyncReport {
                            full,
                            service_ports: plan.len(),
                            script_lines: script.lines().count(),
                            took: started.elapsed(),
                        };
                        tracing::debug!(?report, "proxy rules synced");
                        if let Some(tx) = &on_sync {
                            let _ = tx.send(report);
                        }
                        applied = Some(wanted);
                    }
                    Err(e) => {
                        // Start over from a whole table next time.
                        tracing::warn!(error = %e, "programming nftables failed; retrying with a full sync");
                        applied = None;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            changed.notified().await;
            // Let a burst of changes land in one transaction.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = feed => {}
        _ = sync => {}
    }
    if config.cleanup_on_exit {
        config.nft.delete_table(&config.table).await?;
    }
    Ok(())
}

/// IPv4 forwarding on, and bridged pod traffic through netfilter so that
/// replies from a Service's endpoint on the same bridge are translated
/// back. Failures are logged: the proxy still works for other paths.
fn set_sysctls() {
    for (path, value) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
    ] {
        if let Err(e) = std::fs::write(path, value) {
            tracing::warn!(path, error = %e, "could not set a kernel switch the proxy needs");
        }
    }
}
