//! Node lifecycle: watches each node's heartbeat (its Lease in
//! `kube-node-lease` and its Ready condition). A node not heard from for
//! the grace period gets its conditions set to Unknown
//! (`NodeStatusUnknown`); nodes whose Ready is Unknown get the
//! `node.kubernetes.io/unreachable` taints, Ready=False the
//! `node.kubernetes.io/not-ready` taints (NoSchedule and NoExecute), and
//! both go when Ready is True again. Pods on a node with NoExecute taints
//! are deleted at once if they do not tolerate one, or once the shortest
//! `tolerationSeconds` of the tolerations they use has passed. Pods on a
//! node not heard from are marked Ready=False (their kubelet cannot).
//!
//! Heartbeats are timed on this process's clock from when it saw them
//! change (as Kubernetes does), so a restart gives every node a fresh
//! grace period rather than acting on old timestamps.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::podutil;
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

pub(crate) const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub(crate) const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const NO_SCHEDULE: &str = "NoSchedule";
const NO_EXECUTE: &str = "NoExecute";
const RESYNC: Duration = Duration::from_secs(5);
/// The event source of node status changes, as Kubernetes names it.
const NODE_COMPONENT: &str = "node-controller";
/// The event source of taint evictions, as Kubernetes names it.
const TAINT_COMPONENT: &str = "taint-eviction-controller";

/// The last heartbeat seen from a node and when this process saw it.
struct Health {
    lease: Option<String>,
    heartbeat: Option<String>,
    probe: Instant,
}

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "nodelifecycle";

/// Runs the node lifecycle controller until `cancel`.
pub async fn run(client: Client, grace: Duration, cancel: CancellationToken) {
    controller::run_standalone(client.clone(), 1, |informers| {
        NodeLifecycle::new(informers, &client, grace, cancel)
    })
    .await;
}

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    grace: Duration,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    controller::run(NodeLifecycle::new(informers, &client, grace, cancel), 1)
}

/// The controller: a pass over every node on each change of nodes, their
/// Leases or pods, and at least a few times per grace period.
struct NodeLifecycle {
    ctx: Context,
    client: Client,
    /// How long a node may stay silent before it turns Unknown.
    grace: Duration,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// What was last heard from each node.
    health: Mutex<HashMap<String, Health>>,
}

impl NodeLifecycle {
    fn new(
        informers: &mut Informers,
        client: &Client,
        grace: Duration,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        let nodes = informers.get::<Node>().pass_on_change(&mut ctx);
        let api = Api::<Lease>::namespaced(informers.client().clone(), "kube-node-lease");
        let leases = informers
            .scoped("kube-node-lease", api, watcher::Config::default())
            .pass_on_change(&mut ctx);
        let pods = informers.get::<Pod>().pass_on_change(&mut ctx);
        Arc::new(NodeLifecycle {
            client: ctx.client(client),
            grace,
            nodes,
            leases,
            pods,
            health: Mutex::default(),
            ctx,
        })
    }

    /// Notes what each node last said (its Lease's renewal, its Ready
    /// heartbeat); returns the nodes silent for the grace period, and when
    /// the next one would be.
    fn silent_nodes(
        &self,
        node_list: &[Arc<Node>],
        now: Instant,
    ) -> (Vec<String>, Option<Duration>) {
        let mut next: Option<Duration> = None;
        let mut soonest = |d: Duration| {
            next = Some(next.map_or(d, |n: Duration| n.min(d)));
        };
        let lease_list = self.leases.state();
        let renewals: HashMap<&str, Option<String>> = lease_list
            .iter()
            .filter_map(|l| {
                let renew = l.spec.as_ref().and_then(|s| s.renew_time.as_ref());
                Some((
                    l.metadata.name.as_deref()?,
                    renew.map(|t| format!("{:?}", t.0)),
                ))
            })
            .collect();
        let mut stale_nodes = Vec::new();
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.retain(|name, _| {
            node_list
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(name))
        });
        for node in node_list {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let lease = renewals.get(name.as_str()).cloned().flatten();
            let heartbeat = ready_condition(node)
                .and_then(|c| c.last_heartbeat_time.clone())
                .map(|t| format!("{:?}", t.0));
            let h = health.entry(name.clone()).or_insert_with(|| {
                // First seen by this controller (Kubernetes says so
                // for every node it starts to follow).
                podutil::record_event(
                    &self.client,
                    NODE_COMPONENT,
                    node.as_ref(),
                    "Normal",
                    "RegisteredNode",
                    format!("Node {name} event: Registered Node {name} in Controller"),
                );
                Health {
                    lease: lease.clone(),
                    heartbeat: heartbeat.clone(),
                    probe: now,
                }
            });
            if h.lease != lease || h.heartbeat != heartbeat {
                h.lease = lease;
                h.heartbeat = heartbeat;
                h.probe = now;
            }
            let silent = now.saturating_duration_since(h.probe);
            if silent >= self.grace {
                stale_nodes.push(name);
            } else {
                soonest(self.grace - silent + Duration::from_millis(10));
            }
        }
        (stale_nodes, next)
    }

    /// Marks a silent node's conditions Unknown, keeps its taints, marks
    /// its pods not ready and evicts what its taints say; returns when to
    /// look again.
    async fn update_node(
        &self,
        api: &Api<Node>,
        node: &Node,
        silent: bool,
        pods: &[Arc<Pod>],
    ) -> Option<Duration> {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let mut node = node.clone();
        let was_ready = ready_condition(&node).is_some_and(|c| c.status == "True");
        if silent && mark_unknown(&mut node) {
            tracing::info!(
                node = name,
                "node stopped posting status: conditions Unknown"
            );
            match api
                .replace_status(name, &PostParams::default(), &node)
                .await
            {
                Ok(n) => {
                    node = n;
                    if was_ready {
                        podutil::record_event(
                            &self.client,
                            NODE_COMPONENT,
                            &node,
                            "Normal",
                            "NodeNotReady",
                            format!("Node {name} status is now: NodeNotReady"),
                        );
                    }
                }
                Err(e) => {
                    tracing::debug!(node = name, error = %e, "marking the node Unknown");
                    return Some(Duration::from_millis(200));
                }
            }
        }
        if set_taints(&mut node) {
            match api.replace(name, &PostParams::default(), &node).await {
                Ok(n) => node = n,
                Err(e) => {
                    tracing::debug!(node = name, error = %e, "updating the node's taints");
                    return Some(Duration::from_millis(200));
                }
            }
        }
        if ready_condition(&node).is_some_and(|c| c.status == "Unknown") {
            mark_pods_not_ready(&self.client, name, pods).await;
        }
        evict(&self.client, &node, pods).await
    }
}

impl Reconciler for NodeLifecycle {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let node_list = self.nodes.state();
        let (silent, mut next) = self.silent_nodes(&node_list, Instant::now());
        let api: Api<Node> = Api::all(self.client.clone());
        let pods = self.pods.state();
        for node in &node_list {
            let name = node.metadata.name.as_deref().unwrap_or("");
            let is_silent = silent.iter().any(|n| n == name);
            let after = self.update_node(&api, node, is_silent, &pods).await;
            next = Action::from(next)
                .sooner(Action::from(after))
                .requeue_after();
        }
        // Never look less often than a fraction of the grace period.
        let resync = RESYNC.min(self.grace / 4).max(Duration::from_millis(100));
        Ok(Action::from(next).sooner(Action::requeue(resync)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The conditions a silent node's are set Unknown for (Kubernetes leaves
/// NetworkUnavailable to whoever manages the network).
const SILENT_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Sets the node's conditions to Unknown, as Kubernetes' node lifecycle
/// controller does for a kubelet that stopped posting status: a condition
/// it never posted is added (`NodeStatusNeverUpdated`, heartbeat at the
/// node's creation), one it posted turns Unknown (`NodeStatusUnknown`,
/// keeping its last heartbeat). Returns whether anything changed.
fn mark_unknown(node: &mut Node) -> bool {
    let created = node.metadata.creation_timestamp.clone();
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let now = util::now();
    let mut changed = false;
    for kind in SILENT_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            None => {
                conditions.push(NodeCondition {
                    type_: kind.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

/// Makes the node's not-ready/unreachable taints match its Ready
/// condition. Returns whether they changed.
fn set_taints(node: &mut Node) -> bool {
    let ready = ready_condition(node).map(|c| c.status.clone());
    let key = match ready.as_deref() {
        Some("False") => Some(TAINT_NOT_READY),
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => None,
    };
    let spec = node.spec.get_or_insert_with(Default::default);
    let old = spec.taints.clone().unwrap_or_default();
    let mut taints: Vec<Taint> = old
        .iter()
        .filter(|t| {
            let ours = t.key == TAINT_NOT_READY || t.key == TAINT_UNREACHABLE;
            !ours || Some(t.key.as_str()) == key
        })
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in [NO_SCHEDULE, NO_EXECUTE] {
            if !taints.iter().any(|t| t.key == key && t.effect == effect) {
                taints.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == NO_EXECUTE).then(util::now),
                    value: None,
                });
            }
        }
    }
    if taints == old {
        return false;
    }
    spec.taints = (!taints.is_empty()).then_some(taints);
    true
}

/// Sets Ready=False on the pods of a node that is not heard from (its
/// kubelet cannot), so that endpoints stop sending them traffic.
async fn mark_pods_not_ready(client: &Client, node: &str, pods: &[Arc<Pod>]) {
    for pod in pods {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let Some(mut conditions) = pod.status.as_ref().and_then(|s| s.conditions.clone()) else {
            continue;
        };
        let Some(ready) = conditions
            .iter_mut()
            .find(|c| c.type_ == "Ready" && c.status == "True")
        else {
            continue;
        };
        ready.status = "False".into();
        ready.last_transition_time = Some(util::now());
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        match api
            .patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(namespace = ns, pod = name, node, "marked the pod not ready");
                podutil::record_event(
                    client,
                    NODE_COMPONENT,
                    pod.as_ref(),
                    "Warning",
                    "NodeNotReady",
                    "Node is not ready".into(),
                );
            }
            Err(e) => tracing::debug!(pod = name, error = %e, "marking a pod not ready"),
        }
    }
}

/// Whether `t` tolerates `taint`.
pub(crate) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        "Equal" => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// How long pod `tolerations` let a pod stay under `taints` (NoExecute):
/// `None` if some taint is not tolerated (evict now), `Some(None)` forever,
/// `Some(Some(secs))` that long.
pub(crate) fn stay_for(tolerations: &[Toleration], taints: &[&Taint]) -> Option<Option<i64>> {
    let mut min: Option<i64> = None;
    for taint in taints {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return None;
        }
        for t in used {
            if let Some(s) = t.toleration_seconds {
                let s = s.max(0);
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    Some(min)
}

/// Deletes the pods that the node's NoExecute taints evict now; returns how
/// soon the next one is due.
async fn evict(client: &Client, node: &Node, pods: &[Arc<Pod>]) -> Option<Duration> {
    let name = node.metadata.name.as_deref()?;
    let taints: Vec<&Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| ts.iter().filter(|t| t.effect == NO_EXECUTE).collect())
        .unwrap_or_default();
    if taints.is_empty() {
        return None;
    }
    // Counted from when the newest NoExecute taint was added.
    let since = taints
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
        .max()
        .unwrap_or_else(jiff::Timestamp::now);
    let elapsed = (jiff::Timestamp::now() - since)
        .total(jiff::Unit::Millisecond)
        .unwrap_or(0.0)
        .max(0.0) as u64;
    let mut next: Option<Duration> = None;
    for pod in pods {
        let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name);
        if !on_node || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let due = match stay_for(&tolerations, &taints) {
            None => true,
            Some(None) => false,
            Some(Some(secs)) => {
                let wait = (secs as u64).saturating_mul(1000);
                if elapsed >= wait {
                    true
                } else {
                    let left = Duration::from_millis(wait - elapsed + 10);
                    next = Some(next.map_or(left, |n| n.min(left)));
                    false
                }
            }
        };
        if !due {
            continue;
        }
        let (Some(ns), Some(pname), Some(uid)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
            pod.metadata.uid.as_deref(),
        ) else {
            continue;
        };
        tracing::info!(
            namespace = ns,
            pod = pname,
            node = name,
            "evicting a pod from a NoExecute-tainted node"
        );
        podutil::record_event(
            client,
            TAINT_COMPONENT,
            pod.as_ref(),
            "Normal",
            "TaintManagerEviction",
            format!("Marking for deletion Pod {ns}/{pname}"),
        );
        util::mark_disrupted(
            client,
            pod,
            "DeletionByTaintManager",
            "Taint manager: deleting due to NoExecute taint",
            false,
        )
        .await;
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        if let Err(e) = api.delete(pname, &util::delete_uid(uid, None)).await {
            if !util::gone(&e) {
                tracing::warn!(pod = pname, error = %e, "evicting a pod");
                next = Some(Duration::from_secs(1));
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: NO_EXECUTE.into(),
            ..Taint::default()
        }
    }

    fn tol(key: &str, op: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            effect: Some(NO_EXECUTE.into()),
            toleration_seconds: secs,
            value: None,
        }
    }

    #[test]
    fn tolerations_decide_how_long_a_pod_stays() {
        let t = taint(TAINT_UNREACHABLE);
        assert_eq!(stay_for(&[], &[&t]), None);
        assert_eq!(
            stay_for(&[tol(TAINT_UNREACHABLE, "Exists", None)], &[&t]),
            Some(None)
        );
        assert_eq!(
            stay_for(
                &[
                    tol(TAINT_UNREACHABLE, "Exists", Some(300)),
                    tol("", "Exists", Some(20))
                ],
                &[&t]
            ),
            Some(Some(20))
        );
        assert_eq!(
            stay_for(&[tol(TAINT_NOT_READY, "Exists", Some(5))], &[&t]),
            None
        );
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let mut node = Node::default();
        assert!(mark_unknown(&mut node));
        assert!(set_taints(&mut node));
        let keys: Vec<_> = node
            .spec
            .as_ref()
            .unwrap()
            .taints
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (TAINT_UNREACHABLE.to_string(), NO_SCHEDULE.to_string()),
                (TAINT_UNREACHABLE.to_string(), NO_EXECUTE.to_string()),
            ]
        );
        assert!(!set_taints(&mut node));
        let conds = node.status.as_mut().unwrap().conditions.as_mut().unwrap();
        conds[0].status = "True".into();
        assert!(set_taints(&mut node));
        assert!(node.spec.as_ref().unwrap().taints.is_none());
    }
}
