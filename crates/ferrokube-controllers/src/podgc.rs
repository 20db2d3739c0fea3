//! Pod garbage collection, every period:
//!
//! - terminated pods (Succeeded or Failed) beyond the threshold are
//!   deleted, evicted ones first, then oldest first (a threshold of 0
//!   keeps them all);
//! - pods bound to a node that no longer exists are deleted once the node
//!   has been missing for the quarantine time and the API server confirms
//!   it is gone (marked Failed with a `DisruptionTarget` condition first);
//! - terminating pods that were never scheduled are deleted at once.
//!
//! Deletions are forced (grace period 0): no kubelet will act on them.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DeleteParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

/// The pod GC's settings.
#[derive(Clone, Debug)]
pub struct PodGcConfig {
    /// Terminated pods kept; 0 keeps them all.
    pub threshold: usize,
    /// How long a node must be missing before its pods go.
    pub quarantine: Duration,
    /// How often to look.
    pub period: Duration,
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "podgc";

/// Runs the pod GC until `cancel`.
pub async fn run(client: Client, config: PodGcConfig, cancel: CancellationToken) {
    controller::run_standalone(client.clone(), 1, |informers| {
        PodGc::new(informers, &client, config, cancel)
    })
    .await;
}

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    config: PodGcConfig,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    controller::run(PodGc::new(informers, &client, config, cancel), 1)
}

/// The pod GC: one pass every period over the pod and node caches.
struct PodGc {
    ctx: Context,
    client: Client,
    config: PodGcConfig,
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// When each missing node was first seen missing.
    missing_since: Mutex<HashMap<String, Instant>>,
}

impl PodGc {
    fn new(
        informers: &mut Informers,
        client: &Client,
        config: PodGcConfig,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        // Events do not drive this controller: it looks every period.
        let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        Arc::new(PodGc {
            client: ctx.client(client),
            config,
            pods: ctx.watch(informers),
            nodes: ctx.watch(informers),
            missing_since: Mutex::default(),
            ctx,
        })
    }
}

impl Reconciler for PodGc {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let pods = self.pods.state();
        let nodes: HashSet<String> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let config = &self.config;
        gc_terminated(&self.client, &pods, config.threshold).await;
        gc_orphaned(
            &self.client,
            &pods,
            &nodes,
            config.quarantine,
            &self.missing_since,
        )
        .await;
        gc_unscheduled_terminating(&self.client, &pods).await;
        Ok(Action::requeue(config.period))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Deletes a pod at once (grace period 0), only the one with its uid.
async fn force_delete(client: &Client, pod: &Pod, why: &str) {
    let (Some(ns), Some(name), Some(uid)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
        pod.metadata.uid.as_deref(),
    ) else {
        return;
    };
    tracing::info!(namespace = ns, pod = name, why, "pod GC deleting a pod");
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..util::delete_uid(uid, None)
    };
    if let Err(e) = Api::<Pod>::namespaced(client.clone(), ns)
        .delete(name, &dp)
        .await
    {
        if !util::gone(&e) {
            tracing::warn!(namespace = ns, pod = name, error = %e, "pod GC delete failed");
        }
    }
}

async fn gc_terminated(client: &Client, pods: &[Arc<Pod>], threshold: usize) {
    if threshold == 0 {
        return;
    }
    let mut done: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    if done.len() <= threshold {
        return;
    }
    let evicted = |p: &Pod| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
    done.sort_by_key(|p| {
        (
            !evicted(p),
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            p.metadata.name.clone(),
        )
    });
    let surplus = done.len() - threshold;
    for pod in done.into_iter().take(surplus) {
        force_delete(client, pod, "terminated pods over the threshold").await;
    }
}

async fn gc_orphaned(
    client: &Client,
    pods: &[Arc<Pod>],
    nodes: &HashSet<String>,
    quarantine: Duration,
    missing_since: &Mutex<HashMap<String, Instant>>,
) {
    let now = Instant::now();
    let mut due = Vec::new();
    {
        let mut missing = missing_since.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = HashSet::new();
        for pod in pods {
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            if node.is_empty() || nodes.contains(node) {
                continue;
            }
            seen.insert(node.to_string());
            let since = *missing.entry(node.to_string()).or_insert(now);
            if now.saturating_duration_since(since) >= quarantine {
                due.push(node.to_string());
            }
        }
        missing.retain(|n, _| seen.contains(n));
    }
    due.sort();
    due.dedup();
    let api: Api<Node> = Api::all(client.clone());
    for node in due {
        // The cache may lag: only a node the API server says is gone counts.
        match api.get_opt(&node).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(e) => {
                tracing::debug!(node, error = %e, "pod GC: checking a node");
                continue;
            }
        }
        for pod in pods {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str()) {
                util::mark_disrupted(
                    client,
                    pod,
                    "DeletionByPodGC",
                    "PodGC: node no longer exists",
                    true,
                )
                .await;
                force_delete(client, pod, "bound to a node that no longer exists").await;
            }
        }
    }
}

async fn gc_unscheduled_terminating(client: &Client, pods: &[Arc<Pod>]) {
    for pod in pods {
        let unscheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty);
        // (One held by a finalizer waits for it: deleting again would not help.)
        let held = pod
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty());
        if unscheduled && pod.metadata.deletion_timestamp.is_some() && !held {
            force_delete(client, pod, "terminating and never scheduled").await;
        }
    }
}
