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
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
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
    let dirty: Arc<Mutex<HashSet<ServiceKey>>> = Default::default();
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
        let (changed, dirty) = (changed.clone(), dirty.clone());
        async move {
            let mut svc_stream = std::pin::pin!(svc_stream);
            let mut slice_stream = std::pin::pin!(slice_stream);
            loop {
                // Errors are logged and retried with back-off by the
                // watcher; the streams end only with the proxy.
                let key = tokio::select! {
                    Some(svc) = svc_stream.next() => svc.ok().and_then(|s| service_key(&s)),
                    Some(slice) = slice_stream.next() => slice.ok().and_then(|s| slice_service_key(&s)),
                    else => return,
                };
                if let Some(key) = key {
                    lock(&dirty).insert(key);
                }
                changed.notify_one();
            }
        }
    };
    let sync = async {
        // Nothing is programmed until both caches hold the whole cluster:
        // an early sync would briefly program an empty table.
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        // What is in the kernel, per Service: its rules and port count.
        let mut programmed: HashMap<ServiceKey, (Ruleset, usize)> = HashMap::new();
        let mut full = true;
        loop {
            let started = Instant::now();
            let svcs = services.state();
            let mut by_key: HashMap<ServiceKey, &Service> = HashMap::with_capacity(svcs.len());
            for s in &svcs {
                if let Some(k) = service_key(s) {
                    by_key.insert(k, s.as_ref());
                }
            }
            // Services to recompute: all on a full sync; else those whose
            // objects changed, and any programmed one that is gone (a
            // watch that restarted may not report a deletion).
            let mut todo: HashSet<ServiceKey> = std::mem::take(&mut *lock(&dirty));
            if full {
                todo.extend(by_key.keys().cloned());
            }
            todo.extend(
                programmed
                    .keys()
                    .filter(|k| !by_key.contains_key(*k))
                    .cloned(),
            );
            let sls = slices.state();
            let mut slices_of: HashMap<&ServiceKey, Vec<&EndpointSlice>> = HashMap::new();
            for sl in &sls {
                if let Some(k) = slice_service_key(sl) {
                    if let Some(k) = todo.get(&k) {
                        slices_of.entry(k).or_default().push(sl.as_ref());
                    }
                }
            }
            let mut next: Vec<(ServiceKey, Option<(Ruleset, usize)>)> = Vec::new();
            let mut script = String::new();
            let empty = Ruleset::default();
            for key in &todo {
                let new = by_key.get(key).map(|svc| {
                    let sls = slices_of.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    let ports = model::plan(&[*svc], sls, &config.node_name);
                    (render::render(&ports, &config.cluster_cidr), ports.len())
                });
                if !full {
                    let old = programmed.get(key).map(|(r, _)| r).unwrap_or(&empty);
                    let new_rules = new.as_ref().map(|(r, _)| r).unwrap_or(&empty);
                    script.push_str(&render::diff_script(&config.table, old, new_rules));
                }
                next.push((key.clone(), new));
            }
            if full {
                script = render::full_script(
                    &config.table,
                    next.iter().filter_map(|(_, n)| n.as_ref().map(|(r, _)| r)),
                );
            }
            if !script.is_empty() {
                match config.nft.apply(&script).await {
                    Ok(()) => {
                        for (key, new) in next {
                            match new {
                                Some(n) => programmed.insert(key, n),
                                None => programmed.remove(&key),
                            };
                        }
                        let report = SyncReport {
                            full,
                            service_ports: programmed.values().map(|(_, n)| n).sum(),
                            script_lines: script.lines().count(),
                            took: started.elapsed(),
                        };
                        tracing::debug!(?report, "proxy rules synced");
                        if let Some(tx) = &on_sync {
                            let _ = tx.send(report);
                        }
                        full = false;
                    }
                    Err(e) => {
                        // Start over from a whole table.
                        tracing::warn!(error = %e, "programming nftables failed; retrying with a full sync");
                        programmed.clear();
                        full = true;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            } else {
                for (key, new) in next {
                    match new {
                        Some(n) => programmed.insert(key, n),
                        None => programmed.remove(&key),
                    };
                }
                full = false;
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

/// A Service's namespace and name.
type ServiceKey = (String, String);

fn service_key(svc: &Service) -> Option<ServiceKey> {
    Some((svc.metadata.namespace.clone()?, svc.metadata.name.clone()?))
}

fn slice_service_key(slice: &EndpointSlice) -> Option<ServiceKey> {
    let svc = slice
        .metadata
        .labels
        .as_ref()?
        .get(model::SERVICE_NAME_LABEL)?;
    Some((slice.metadata.namespace.clone()?, svc.clone()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
