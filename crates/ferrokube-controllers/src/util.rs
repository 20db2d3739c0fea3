//! Pieces the cluster controllers (gc, namespace, serviceaccount, node
//! lifecycle, node IPAM, pod GC) share: their error policy, caches of
//! untyped objects (the collector's) and watches without a cache, starting
//! them together, and small API helpers.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::controller::{pass_key, Action, Context, DEBOUNCE};
use crate::metrics::ControllerMetrics;
use crate::watchqueue::Informers;

/// How long a pass waits for its caches' first lists before working anyway.
pub(crate) const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a reflector over `api` of objects of any type (the [`Informers`]
/// serve the typed ones) for the whole-pass controller `ctx`, until `stop`
/// (a token the controller's cancels too), and returns its cache. An update queues the pass (after the
/// debounce) only when `fingerprint` of the object changed (creations,
/// deletions and relists always do), for controllers that care about a few
/// fields of objects that change often; each counts as an event of the
/// controller. `managedFields` are not kept.
pub(crate) fn spawn_cache_until<K, F>(
    api: Api<K>,
    dyntype: K::DynamicType,
    config: watcher::Config,
    ctx: &Context,
    stop: &CancellationToken,
    fingerprint: F,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
    F: Fn(&K) -> u64 + Send + 'static,
{
    let writer: Writer<K> = Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None);
    let stream = reflector::reflector(writer, stream);
    let (queue, cancel) = (ctx.queue().clone(), ctx.cancel().clone());
    let changed = move || queue.add_after(pass_key(), DEBOUNCE, &cancel);
    follow(stream, changed, ctx.metrics().clone(), stop, fingerprint);
    store
}

/// Drives a reflector's stream until `cancel`, calling `wake` on changes
/// of `fingerprint`.
fn follow<K, S, F>(
    stream: S,
    wake: impl Fn() + Send + 'static,
    metrics: Arc<ControllerMetrics>,
    cancel: &CancellationToken,
    fp: F,
) where
    K: Resource + Send + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    F: Fn(&K) -> u64 + Send + 'static,
{
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut seen: std::collections::HashMap<String, u64> = Default::default();
        let uid = |o: &K| o.meta().uid.clone().unwrap_or_default();
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => break,
                ev = stream.next() => ev,
            };
            let ev = match ev {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "watch error; retrying");
                    continue;
                }
                None => break,
            };
            match ev {
                watcher::Event::Apply(o) => {
                    let f = fp(&o);
                    if seen.insert(uid(&o), f) != Some(f) {
                        metrics.event();
                        wake();
                    }
                }
                watcher::Event::Delete(o) => {
                    seen.remove(&uid(&o));
                    metrics.event();
                    wake();
                }
                watcher::Event::Init => seen.clear(),
                watcher::Event::InitApply(o) => {
                    seen.insert(uid(&o), fp(&o));
                }
                watcher::Event::InitDone => wake(),
            }
        }
    });
}

/// Waits (bounded) until `store` has had its first list, or `cancel`.
pub(crate) async fn wait_synced<K>(store: &Store<K>, cancel: &CancellationToken)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::timeout(CACHE_SYNC_TIMEOUT, store.wait_until_ready()) => {}
    }
}

/// The error policy of the whole-pass controllers: the failure is logged
/// and the pass tried again a second later.
pub(crate) fn pass_failed(name: &str, error: &anyhow::Error) -> Action {
    tracing::warn!(
        controller = name,
        error = format!("{error:#}"),
        "reconcile failed"
    );
    Action::requeue(Duration::from_secs(1))
}

/// Delete options that only delete the object with this uid (not one
/// recreated under the same name).
pub(crate) fn delete_uid(uid: &str, propagation: Option<PropagationPolicy>) -> DeleteParams {
    DeleteParams {
        propagation_policy: propagation,
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// Whether an API error means the object is already gone (or was replaced:
/// a failed uid precondition).
pub(crate) fn gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

/// Whether an API error is a 404.
pub(crate) fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a conflict (a stale resourceVersion or an
/// object that exists already).
pub(crate) fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The current time as Kubernetes writes timestamps.
pub(crate) fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}

/// Sets up the cluster controllers (garbage collector, namespace, default
/// ServiceAccount and root CA, node lifecycle, node IPAM, pod GC, storage
/// in-use protection) over the shared `informers` (spawn them after) and
/// starts them, one task each, until `cancel`.
pub(crate) fn start_cluster_controllers(
    informers: &mut Informers,
    client: &kube::Client,
    config: &crate::ControllerConfig,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::{gc, namespace, nodeipam, nodelifecycle, podgc, serviceaccount, volumeprotection};
    let k = cancel;
    let c = |sa: &str| config.clients.client(client, sa);
    let pod_gc = podgc::PodGcConfig {
        threshold: config.terminated_pod_gc_threshold,
        quarantine: config.pod_gc_quarantine,
        period: config.pod_gc_period,
    };
    let i = informers;
    vec![
        tokio::spawn(gc::run(c("generic-garbage-collector"), k.clone())),
        tokio::spawn(namespace::start(i, c("namespace-controller"), k.clone())),
        tokio::spawn(serviceaccount::start_with(
            i,
            c("service-account-controller"),
            c("root-ca-cert-publisher"),
            config.ca_pem.clone(),
            k.clone(),
        )),
        tokio::spawn(nodelifecycle::start(
            i,
            c("node-controller"),
            config.node_monitor_grace_period,
            k.clone(),
        )),
        tokio::spawn(nodeipam::start(
            i,
            c("node-controller"),
            config.cluster_cidr.clone(),
            k.clone(),
        )),
        tokio::spawn(podgc::start(
            i,
            c("pod-garbage-collector"),
            pod_gc,
            k.clone(),
        )),
        tokio::spawn(volumeprotection::start_with(
            i,
            c("pvc-protection-controller"),
            c("pv-protection-controller"),
            k.clone(),
        )),
        tokio::spawn(crate::persistentvolume::start(
            i,
            c("persistent-volume-binder"),
            crate::persistentvolume::PvConfig {
                local_path: config.local_storage_path.clone(),
            },
            k.clone(),
        )),
    ]
}

/// Records on a pod, before it is deleted, why: the `DisruptionTarget`
/// condition (and phase Failed if `fail` and it had not ended), as
/// Kubernetes' pod GC and taint eviction do. Best effort: the deletion
/// follows whatever happens here.
pub(crate) async fn mark_disrupted(
    client: &kube::Client,
    pod: &k8s_openapi::api::core::v1::Pod,
    reason: &str,
    message: &str,
    fail: bool,
) {
    use k8s_openapi::api::core::v1::{Pod, PodCondition};
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return;
    };
    let status = pod.status.clone().unwrap_or_default();
    let mut conditions = status.conditions.unwrap_or_default();
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(now()),
        ..PodCondition::default()
    });
    let mut patch = serde_json::json!({"status": {"conditions": conditions}});
    let ended = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if fail && !ended {
        patch["status"]["phase"] = serde_json::json!("Failed");
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    if let Err(e) = api
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(namespace = ns, pod = name, error = %e, "recording DisruptionTarget");
    }
}

/// Watches `api` in a task of its own and calls `changed` on every change,
/// until `cancel` (for controllers that list on each pass instead of
/// keeping an informer).
pub(crate) fn on_watch<K>(
    api: Api<K>,
    changed: impl Fn() + Send + 'static,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .touched_objects();
        futures::pin_mut!(stream);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                ev = stream.next() => match ev {
                    Some(_) => changed(),
                    None => return,
                },
            }
        }
    })
}
