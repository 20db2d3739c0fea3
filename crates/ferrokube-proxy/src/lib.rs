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

mod model;
mod render;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use ferrokube_nft::Nft;
use render::Ruleset;

/// How the proxy is set up.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// This node's name (for Local traffic policies).
    pub node_name: String,
    /// The pod network.
    pub cluster_cidr: String,
    /// The nftables table the proxy owns.
    pub table: String,
    /// How to run `nft` (e.g. inside a network namespace in tests).
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
            table: ferrokube_nft::PROXY_TABLE.into(),
            nft: Nft::default(),
            cleanup_on_exit: false,
            set_sysctls: true,
        }
    }
}

/// What one sync did, for logs and benchmarks.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// The whole table was rewritten (the first sync, and after a failed one);
    /// otherwise only the changed Services were sent.
    pub full: bool,
    /// Service ports programmed after this sync (all Services, not only the changed ones).
    pub service_ports: usize,
    /// Lines of the nft script this sync applied.
    pub script_lines: usize,
    /// From the start of the sync until nft accepted the script.
    pub took: Duration,
}

/// Runs the proxy until `cancel`. `on_sync` hears of every sync that
/// changed something (tests and benchmarks use it).
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    cancel: CancellationToken,
    on_sync: Option<UnboundedSender<SyncReport>>,
) -> anyhow::Result<()> {
    if config.set_sysctls {
        set_sysctls();
    }
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let changed = Notify::new();
    let dirty: Mutex<HashSet<ServiceKey>> = Mutex::default();
    let feed = feed_changes(client, services_writer, slices_writer, &changed, &dirty);
    let sync = sync_loop(
        &services,
        &slices,
        &config,
        &changed,
        &dirty,
        on_sync.as_ref(),
    );
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

/// Watches Services and EndpointSlices into the caches; notes the Service of
/// every object that changed in `dirty` and wakes the sync loop. Returns
/// only when the watches end (with the proxy).
async fn feed_changes(
    client: kube::Client,
    services: reflector::store::Writer<Service>,
    slices: reflector::store::Writer<EndpointSlice>,
    changed: &Notify,
    dirty: &Mutex<HashSet<ServiceKey>>,
) {
    let svc_stream = reflector(
        services,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let slice_stream = reflector(
        slices,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
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
            lock(dirty).insert(key);
        }
        changed.notify_one();
    }
}

/// What is in the kernel, per Service: its rules and port count.
type Programmed = HashMap<ServiceKey, (Ruleset, usize)>;

/// A Service's new rules and port count, or `None` when it is gone.
type Change = (ServiceKey, Option<(Ruleset, usize)>);

/// Syncs the table with the caches once they hold the whole cluster, then
/// again after every change; never returns.
async fn sync_loop(
    services: &reflector::Store<Service>,
    slices: &reflector::Store<EndpointSlice>,
    config: &ProxyConfig,
    changed: &Notify,
    dirty: &Mutex<HashSet<ServiceKey>>,
    on_sync: Option<&UnboundedSender<SyncReport>>,
) {
    // Nothing is programmed until both caches hold the whole cluster:
    // an early sync would briefly program an empty table.
    let _ = services.wait_until_ready().await;
    let _ = slices.wait_until_ready().await;
    let mut programmed = Programmed::new();
    let mut full = true;
    loop {
        let started = Instant::now();
        let (next, script) = plan_sync(services, slices, config, dirty, &programmed, full);
        if script.is_empty() {
            commit(&mut programmed, next);
        } else if let Err(e) = config.nft.apply(&script).await {
            // Start over from a whole table.
            tracing::warn!(error = %e, "programming nftables failed; retrying with a full sync");
            programmed.clear();
            full = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        } else {
            commit(&mut programmed, next);
            let report = SyncReport {
                full,
                service_ports: programmed.values().map(|(_, n)| n).sum(),
                script_lines: script.lines().count(),
                took: started.elapsed(),
            };
            tracing::debug!(?report, "proxy rules synced");
            if let Some(tx) = on_sync {
                let _ = tx.send(report);
            }
        }
        full = false;
        changed.notified().await;
        // Let a burst of changes land in one transaction.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The Services to recompute, their new rules, and the nft script that
/// takes the kernel there: the whole table when `full`, else only what
/// changed since `programmed`.
fn plan_sync(
    services: &reflector::Store<Service>,
    slices: &reflector::Store<EndpointSlice>,
    config: &ProxyConfig,
    dirty: &Mutex<HashSet<ServiceKey>>,
    programmed: &Programmed,
    full: bool,
) -> (Vec<Change>, String) {
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
    let mut todo: HashSet<ServiceKey> = std::mem::take(&mut *lock(dirty));
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
    let mut next: Vec<Change> = Vec::new();
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
    (next, script)
}

/// Records what the kernel now holds after `next` was applied.
fn commit(programmed: &mut Programmed, next: Vec<Change>) {
    for (key, new) in next {
        match new {
            Some(n) => programmed.insert(key, n),
            None => programmed.remove(&key),
        };
    }
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
