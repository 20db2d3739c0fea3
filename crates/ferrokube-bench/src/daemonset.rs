//! The DaemonSet benchmark: hollow nodes (Node objects only) on an
//! in-process API server (embedded store), the scheduler and the workload
//! controllers in this process on the in-process clients `ferrokube server`
//! gives them, and a fake kubelet that marks every bound pod Running and
//! Ready and finishes every graceful deletion at once. Figures: the
//! scheduler's floor (as many pods pinned by `matchFields metadata.name`,
//! created directly, until all bound), then a DaemonSet's first rollout
//! and a rolling update over every node (until every pod is updated and
//! available), with the DaemonSet controller's API writes per pod.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrokube_controllers::metrics::Counts;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Hollow nodes.
    #[arg(long, default_value_t = 1_000)]
    nodes: usize,
    /// The rolling update's maxUnavailable.
    #[arg(long, default_value = "100%")]
    max_unavailable: String,
    /// Concurrent status writes of the fake kubelet.
    #[arg(long, default_value_t = 64)]
    kubelet_writers: usize,
    /// Give up on any phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// The fake kubelet: bound pods turn Running and Ready; pods being deleted
/// are removed at once. Counts the pods it readied.
fn fake_kubelet(
    client: kube::Client,
    writers: usize,
    cancel: CancellationToken,
) -> Arc<AtomicUsize> {
    let readied = Arc::new(AtomicUsize::new(0));
    let count = readied.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(String, bool)>();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let watch_api = pods.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { return };
            let p = match ev {
                Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => p,
                _ => continue,
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if p.metadata.deletion_timestamp.is_some() {
                let _ = tx.send((name, true));
                continue;
            }
            let bound = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty());
            if bound && seen.lock().map(|mut s| s.insert(uid)).unwrap_or(false) {
                let _ = tx.send((name, false));
            }
        }
    });
    tokio::spawn(async move {
        tokio_stream_of(rx)
            .for_each_concurrent(writers, |(name, delete)| {
                let pods = pods.clone();
                let count = count.clone();
                async move {
                    if delete {
                        let _ = pods
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                        return;
                    }
                    let now = k8s_openapi::jiff::Timestamp::now().to_string();
                    let status = json!({"status": {"phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                    if pods
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .is_ok()
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await;
    });
    readied
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Polls the DaemonSet until every pod of generation `gen` is updated and
/// available.
async fn wait_rolled_out(
    api: &Api<DaemonSet>,
    nodes: usize,
    gen: i64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let ds = api.get("bench").await?;
        let s = ds.status.clone().unwrap_or_default();
        let n = i32::try_from(nodes).unwrap_or(i32::MAX);
        if s.observed_generation.unwrap_or(0) >= gen
            && s.desired_number_scheduled == n
            && s.updated_number_scheduled == Some(n)
            && s.number_available == Some(n)
        {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "not rolled out in {timeout:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pinned_pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("floor-{i}"), "labels": {"app": "floor"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [format!("node-{i}")]}]}]}}}
        }
    }))
    .unwrap_or_default()
}

/// The floor: as many pinned pods as nodes, created directly, until all are
/// Ready (scheduler, API server and fake kubelet only); then removed.
async fn measure_floor(
    admin: &kube::Client,
    nodes: usize,
    readied: &AtomicUsize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let start = Instant::now();
    futures::stream::iter(0..nodes)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pinned_pod(i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .context("creating the floor's pods")?;
    while readied.load(Ordering::Relaxed) < nodes {
        anyhow::ensure!(start.elapsed() < timeout, "floor pods not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let floor = start.elapsed();
    pods.delete_collection(
        &DeleteParams::default().grace_period(0),
        &kube::api::ListParams::default().labels("app=floor"),
    )
    .await?;
    Ok(floor)
}

/// The benchmark's DaemonSet, rolling with `max_unavailable`.
fn bench_daemonset(max_unavailable: &str) -> anyhow::Result<DaemonSet> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "bench"},
        "spec": {
            "selector": {"matchLabels": {"app": "bench"}},
            "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": max_unavailable}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
            }
        }
    }))?)
}

/// The DaemonSet controller's counters in a metrics snapshot.
type Snapshot = BTreeMap<&'static str, Counts>;

/// The DaemonSet controller's API writes and reconciles from `b` to `a`.
fn daemonset_work(a: &Snapshot, b: &Snapshot) -> (u64, u64) {
    let counts = |s: &Snapshot| s.get("daemonset").copied().unwrap_or_default();
    let (x, y) = (counts(a), counts(b));
    (
        x.writes.saturating_sub(y.writes),
        x.reconciles.saturating_sub(y.reconciles),
    )
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(o.timeout_secs);
    let crate::hollow::Hollow { api, admin, cancel } = crate::hollow::start(o.nodes).await?;
    let readied = fake_kubelet(api.client().await?, o.kubelet_writers, cancel.clone());
    let floor = measure_floor(&admin, o.nodes, &readied, timeout).await?;

    // The controllers, on the controller manager's in-process client.
    tokio::spawn(ferrokube_controllers::workloads::run_as(
        api.in_process_client("system:kube-controller-manager"),
        ferrokube_controllers::clients::ControllerClients::per_service_account(
            &api.in_process_client("system:kube-controller-manager"),
            |sa| api.in_process_service_account("kube-system", sa),
        ),
        cancel.clone(),
    ));
    let dss: Api<DaemonSet> = Api::namespaced(admin.clone(), "default");
    let ds = bench_daemonset(&o.max_unavailable)?;
    let before = ferrokube_controllers::metrics::snapshot();
    dss.create(&PostParams::default(), &ds).await?;
    let first = wait_rolled_out(&dss, o.nodes, 1, timeout).await?;
    let mid = ferrokube_controllers::metrics::snapshot();
    dss.patch(
        "bench",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "busybox:2"}]}}}})),
    )
    .await?;
    let update = wait_rolled_out(&dss, o.nodes, 2, timeout).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = ferrokube_controllers::metrics::snapshot();
    cancel.cancel();

    let (first_writes, first_reconciles) = daemonset_work(&mid, &before);
    let (update_writes, update_reconciles) = daemonset_work(&after, &mid);
    let n = o.nodes as f64;
    println!(
        "DaemonSet over {} hollow nodes (in-process API server, scheduler and controllers; fake kubelet), maxUnavailable {}",
        o.nodes, o.max_unavailable
    );
    println!("| phase | time | pods/s | DaemonSet controller writes/pod | reconciles |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| floor: {} pinned pods created directly, all Ready | {:.2} s | {:.0} | - | - |",
        o.nodes,
        floor.as_secs_f64(),
        n / floor.as_secs_f64()
    );
    println!(
        "| DaemonSet created, all pods available | {:.2} s | {:.0} | {:.2} | {} |",
        first.as_secs_f64(),
        n / first.as_secs_f64(),
        first_writes as f64 / n,
        first_reconciles
    );
    println!(
        "| rolling update, all updated and available | {:.2} s | {:.0} | {:.2} | {} |",
        update.as_secs_f64(),
        n / update.as_secs_f64(),
        update_writes as f64 / n,
        update_reconciles
    );
    Ok(())
}
