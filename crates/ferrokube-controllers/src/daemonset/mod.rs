//! The DaemonSet controller, as Kubernetes' `pkg/controller/daemon`: one
//! pod on every node the DaemonSet's placement admits ([`placement`]),
//! made with a `matchFields metadata.name` node-affinity term so the
//! scheduler binds it there; a pod on a node that should not run one (an
//! untolerated NoExecute taint, a label that stopped matching) is deleted,
//! and one that failed is deleted and made again with a per-node back-off.
//! Templates are kept as ControllerRevisions ([`revisions`], over the
//! shared [`crate::history`]); pods carry their revision's hash in
//! `controller-revision-hash`, which RollingUpdate ([`rolling`]) replaces
//! within maxUnavailable / maxSurge and OnDelete leaves to the user. The
//! status reports the numbers Kubernetes does.

pub(crate) mod placement;
mod revisions;
pub(crate) mod rolling;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::expectations::Expectations;
use crate::history::{History, REVISION_LABEL};
use crate::podutil::{self, api_code, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};
use placement::Placement;

/// The event source and controller name, as Kubernetes names them.
const COMPONENT: &str = "daemonset-controller";
const NAME: &str = "daemonset";

/// The most pods one reconcile creates or deletes (Kubernetes'
/// BurstReplicas for DaemonSets).
pub(crate) const BURST_REPLICAS: usize = 250;

/// The back-off before a failed daemon pod on a node is deleted again
/// (kube-controller-manager's: 1 s doubling to 15 min).
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// Per-key exponential back-off (client-go's `flowcontrol.Backoff`).
#[derive(Default)]
struct Backoff {
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Duration, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The delay still to wait for `key`, if it is backing off.
    fn waiting(&self, key: &str, now: Instant) -> Option<Duration> {
        let m = self.lock();
        let (delay, since) = m.get(key)?;
        let passed = now.saturating_duration_since(*since);
        (passed < *delay).then(|| *delay - passed)
    }

    /// Records an attempt: the delay doubles (from the initial one after a
    /// long quiet).
    fn next(&self, key: &str, now: Instant) {
        let mut m = self.lock();
        let delay = match m.get(key) {
            Some((d, since)) if now.saturating_duration_since(*since) <= 2 * BACKOFF_MAX => {
                (*d * 2).min(BACKOFF_MAX)
            }
            _ => BACKOFF_INITIAL,
        };
        m.insert(key.to_string(), (delay, now));
    }

    /// Forgets entries quiet for longer than twice the longest delay.
    fn gc(&self, now: Instant) {
        self.lock()
            .retain(|_, (_, since)| now.saturating_duration_since(*since) <= 2 * BACKOFF_MAX);
    }
}

pub(crate) struct DaemonSetController {
    client: kube::Client,
    dss: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    ctx: Context,
    expectations: Expectations,
    history: History,
    failed_backoff: Backoff,
    /// What each node looked like the last time (labels, taints), so that
    /// heartbeats do not wake every DaemonSet.
    node_prints: Mutex<HashMap<String, u64>>,
    /// The revisions seen so far (by uid), to tell a new one from a change.
    revisions_seen: Mutex<HashSet<String>>,
}

impl Reconciler for DaemonSetController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.dss);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await
    }
}

fn selector_of(ds: &DaemonSet) -> Option<Selector> {
    Selector::from_label_selector(Some(&ds.spec.as_ref()?.selector)).ok()
}

fn is_daemonset_ref(r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference) -> bool {
    r.kind == "DaemonSet" && r.api_version.starts_with("apps/")
}

/// What of a node decides placement: its labels and taints.
fn node_print(n: &Node) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    n.metadata.labels.hash(&mut h);
    if let Some(taints) = n.spec.as_ref().and_then(|s| s.taints.as_ref()) {
        for t in taints {
            (&t.key, &t.value, &t.effect).hash(&mut h);
        }
    }
    h.finish()
}

fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Kubernetes' `podByCreationTimestampAndPhase`: scheduled first, then
/// older first, then by name.
fn oldest_first(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    let scheduled = |p: &Pod| node_name(p).is_empty();
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Unscheduled pods meant for nodes that are gone: nothing else removes
/// them.
fn unscheduled_on_gone_nodes(
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
) -> Vec<Arc<Pod>> {
    let existing: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    by_node
        .iter()
        .filter(|(n, _)| !existing.contains(n.as_str()))
        .flat_map(|(_, pods)| pods.iter())
        .filter(|p| node_name(p).is_empty() && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect()
}

impl DaemonSetController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let dss: Store<DaemonSet> = ctx.watch(informers);
        let pods: Store<Pod> = ctx.watch(informers);
        let nodes: Store<Node> = ctx.watch(informers);
        let revisions: Store<ControllerRevision> = ctx.watch(informers);
        let client = ctx.client(&client);
        let this = Arc::new(DaemonSetController {
            history: History::new(client.clone()),
            client,
            dss,
            pods,
            nodes,
            revisions,
            expectations: Expectations::new(),
            failed_backoff: Backoff::default(),
            node_prints: Mutex::new(HashMap::new()),
            revisions_seen: Mutex::new(HashSet::new()),
            ctx,
        });
        let me = this.clone();
        informers
            .get::<DaemonSet>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(ds) => me.ctx.add(key_of(ds)),
                Change::Deleted(ds) => {
                    me.expectations.forget(&key_of(ds));
                    me.ctx.add(key_of(ds));
                }
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => me.pod_changed(p, p.metadata.deletion_timestamp.is_some()),
                Change::Deleted(p) => me.pod_changed(p, true),
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<Node>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(n) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let print = node_print(n);
                    let changed = {
                        let mut m = me.node_prints.lock().unwrap_or_else(|p| p.into_inner());
                        m.insert(name, print) != Some(print)
                    };
                    if changed {
                        me.enqueue_all();
                    }
                }
                Change::Deleted(n) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    me.node_prints
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&name);
                    me.enqueue_all();
                }
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<ControllerRevision>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(r) => {
                    let uid = r.metadata.uid.clone().unwrap_or_default();
                    let new = me
                        .revisions_seen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(uid);
                    // As Kubernetes: a new revision with a controller wakes
                    // no one (its owner made it, or someone wrote it by
                    // hand); a new orphan wakes the DaemonSets that select
                    // it; a changed one wakes its owner.
                    if !new || podutil::controller_ref(&r.metadata).is_none() {
                        me.owner_changed(&r.metadata);
                    }
                }
                Change::Deleted(r) => {
                    if let Some(uid) = r.metadata.uid.as_deref() {
                        me.revisions_seen
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(uid);
                    }
                    if podutil::controller_ref(&r.metadata).is_some() {
                        me.owner_changed(&r.metadata);
                    }
                }
                Change::Relisted => {}
            });
        this
    }

    /// Queues the DaemonSet controlling an object, or, for an orphan, every
    /// DaemonSet of its namespace that selects it.
    fn owner_changed(&self, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
        let ns = meta.namespace.as_deref().unwrap_or("");
        match podutil::controller_ref(meta) {
            Some(r) if is_daemonset_ref(r) => self.ctx.add((ns.to_string(), r.name.clone())),
            Some(_) => {}
            None => {
                for ds in self.dss.state() {
                    if ds.metadata.namespace.as_deref() == Some(ns)
                        && selector_of(&ds).is_some_and(|s| s.matches(meta.labels.as_ref()))
                    {
                        self.ctx.add(key_of(ds.as_ref()));
                    }
                }
            }
        }
    }

    fn pod_changed(&self, p: &Pod, gone: bool) {
        self.expectations.observe(
            p.metadata.namespace.as_deref().unwrap_or(""),
            p.metadata.name.as_deref().unwrap_or(""),
            p.metadata.uid.as_deref().unwrap_or(""),
            gone,
        );
        if gone && podutil::controller_ref(&p.metadata).is_none() {
            return;
        }
        self.owner_changed(&p.metadata);
    }

    fn event(&self, ds: &DaemonSet, type_: &str, reason: &str, message: String) {
        podutil::record_event(&self.client, COMPONENT, ds, type_, reason, message);
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let Some(ds) = self
            .dss
            .get(&ObjectRef::<DaemonSet>::new(&key.1).within(&key.0))
        else {
            self.expectations.forget(key);
            return Ok(Action::await_change());
        };
        let ds = ds.as_ref().clone();
        let Some(selector) = selector_of(&ds) else {
            return Ok(Action::await_change());
        };
        if selector.is_empty() {
            self.event(
                &ds,
                "Warning",
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(Action::await_change());
        }
        // Being deleted: its revisions may be going too; leave it be.
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let nodes = self.nodes.state();
        let in_ns: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(key.0.as_str()))
            .collect();
        let need_sync = self.expectations.satisfied(
            key,
            |n| in_ns.iter().any(|p| p.metadata.name.as_deref() == Some(n)),
            |u| {
                in_ns.iter().any(|p| {
                    p.metadata.uid.as_deref() == Some(u) && p.metadata.deletion_timestamp.is_none()
                })
            },
        );
        let claimed =
            crate::podclaim::claim_pods(&self.client, &ds, &selector, in_ns, |_| true).await;
        let (cur, old) = self.construct_history(&ds, &selector, &claimed).await?;
        let hash = cur
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .cloned()
            .unwrap_or_default();
        let placement = Placement::of(&ds);
        // Deleted pods that had finished no longer hold their node.
        let live: Vec<Arc<Pod>> = claimed
            .iter()
            .filter(|p| {
                !(p.metadata.deletion_timestamp.is_some()
                    && matches!(podutil::phase(p), "Succeeded" | "Failed"))
            })
            .cloned()
            .collect();
        if !need_sync {
            return self
                .update_status(&ds, &nodes, &placement, &live, &hash, false)
                .await;
        }
        let res = self
            .update_daemon_set(key, &ds, &nodes, &placement, &live, &hash, &old, &claimed)
            .await;
        let status = self
            .update_status(&ds, &nodes, &placement, &live, &hash, true)
            .await;
        self.failed_backoff.gc(Instant::now());
        Ok(res?.sooner(status?))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one DaemonSet sync: the object, its nodes, placement, live pods and hash all come from the same pass"
    )]
    async fn update_daemon_set(
        &self,
        key: &Key,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        placement: &Placement,
        live: &[Arc<Pod>],
        hash: &str,
        old: &[ControllerRevision],
        claimed: &[Arc<Pod>],
    ) -> anyhow::Result<Action> {
        let (acted, next) = self.manage(key, ds, nodes, placement, live, hash).await?;
        if !acted && rolling::is_rolling(ds) {
            self.rolling_update(key, ds, nodes, placement, live, hash)
                .await?;
        }
        self.cleanup_history(ds, old, claimed)
            .await
            .map_err(|e| anyhow::anyhow!("failed to clean up revisions of DaemonSet: {e}"))?;
        Ok(next)
    }

    /// Pods by the node they are for.
    fn by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
        let mut m: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in pods {
            if let Some(n) = placement::target_node(p) {
                m.entry(n).or_default().push(p.clone());
            }
        }
        m
    }

    /// Makes the missing pods and deletes the ones that should go; returns
    /// whether it asked for anything and when to look again.
    async fn manage(
        &self,
        key: &Key,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        placement: &Placement,
        live: &[Arc<Pod>],
        hash: &str,
    ) -> anyhow::Result<(bool, Action)> {
        let by_node = Self::by_node(live);
        let surge = rolling::limits(ds, 1).map(|(s, _)| s > 0).unwrap_or(false);
        let mut create = Vec::new();
        let mut delete: Vec<Arc<Pod>> = Vec::new();
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Timestamp::now();
        let mut requeue: Option<Duration> = None;
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let (should_run, should_continue) = placement.decide(node);
            let pods = by_node.get(&name);
            match pods {
                None if should_run => create.push(name),
                Some(pods) if should_continue => {
                    let mut running = Vec::new();
                    for p in pods
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                    {
                        let ns = p.metadata.namespace.as_deref().unwrap_or("");
                        let pname = p.metadata.name.as_deref().unwrap_or("");
                        match podutil::phase(p) {
                            "Failed" => {
                                let bkey = format!(
                                    "{}/{}/{name}",
                                    ds.metadata.uid.as_deref().unwrap_or(""),
                                    ds.status
                                        .as_ref()
                                        .and_then(|s| s.observed_generation)
                                        .unwrap_or(0)
                                );
                                let t = Instant::now();
                                if let Some(wait) = self.failed_backoff.waiting(&bkey, t) {
                                    requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
                                    continue;
                                }
                                self.failed_backoff.next(&bkey, t);
                                self.event(ds, "Warning", "FailedDaemonPod", format!(
                                    "Found failed daemon pod {ns}/{pname} on node {name}, will try to kill it"));
                                delete.push(p.clone());
                            }
                            "Succeeded" => {
                                self.event(ds, "Normal", "SucceededDaemonPod", format!(
                                    "Found succeeded daemon pod {ns}/{pname} on node {name}, will try to delete it"));
                                delete.push(p.clone());
                            }
                            _ => running.push(p.clone()),
                        }
                    }
                    running.sort_by(oldest_first);
                    if !surge {
                        // One pod per node: all but the oldest go.
                        delete.extend(running.into_iter().skip(1));
                        continue;
                    }
                    if running.len() <= 1 {
                        if running.is_empty() && should_run {
                            create.push(name);
                        }
                        continue;
                    }
                    // Surging: keep the oldest new and the oldest old pod
                    // while the new one is not yet available.
                    let (mut newest, mut oldest_old) = (None, None);
                    for p in running {
                        let slot = if rolling::is_updated(&p, hash) {
                            &mut newest
                        } else {
                            &mut oldest_old
                        };
                        if slot.is_none() {
                            *slot = Some(p);
                        } else {
                            delete.push(p);
                        }
                    }
                    if let (Some(n), Some(o)) = (newest, oldest_old) {
                        if !podutil::is_ready(&o) || podutil::is_available(&n, min_ready, now) {
                            delete.push(o);
                        }
                    }
                }
                Some(pods) if !should_continue => {
                    delete.extend(
                        pods.iter()
                            .filter(|p| p.metadata.deletion_timestamp.is_none())
                            .cloned(),
                    );
                }
                _ => {}
            }
        }
        delete.extend(unscheduled_on_gone_nodes(nodes, &by_node));
        let acted = !create.is_empty() || !delete.is_empty();
        self.sync_nodes(key, ds, delete, create, hash).await?;
        Ok((acted, requeue.into()))
    }

    /// One rolling update step.
    async fn rolling_update(
        &self,
        key: &Key,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        placement: &Placement,
        live: &[Arc<Pod>],
        hash: &str,
    ) -> anyhow::Result<()> {
        let mut by_node = Self::by_node(live);
        let mut wanted = HashSet::new();
        for n in nodes {
            if placement.decide(n).0 {
                let name = n.metadata.name.clone().unwrap_or_default();
                by_node.entry(name.clone()).or_default();
                wanted.insert(name);
            }
        }
        let desired = i32::try_from(wanted.len()).unwrap_or(i32::MAX);
        let (max_surge, max_unavailable) = rolling::limits(ds, desired)?;
        let step = rolling::Step {
            by_node: &by_node,
            hash,
            max_surge,
            max_unavailable,
            desired,
            min_ready_seconds: ds
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0),
            now: Timestamp::now(),
        };
        let plan = step.plan(|n| wanted.contains(n));
        let by_name: HashMap<&str, &Arc<Pod>> = live
            .iter()
            .filter_map(|p| Some((p.metadata.name.as_deref()?, p)))
            .collect();
        let delete = plan
            .delete
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).map(|p| (*p).clone()))
            .collect();
        self.sync_nodes(key, ds, delete, plan.create, hash).await
    }

    /// The pod a DaemonSet makes for `node`.
    fn pod_for(template: &Pod, node: &str) -> Pod {
        let mut pod = template.clone();
        if let Some(spec) = pod.spec.as_mut() {
            spec.affinity = Some(placement::pin_to_node(spec.affinity.take(), node));
        }
        pod
    }

    /// The pod template with the daemon tolerations and the revision label.
    fn template(ds: &DaemonSet, hash: &str) -> Pod {
        let t = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let tm = t.metadata.unwrap_or_default();
        let mut spec = t.spec.unwrap_or_default();
        placement::add_daemon_tolerations(&mut spec);
        let mut labels = tm.labels.unwrap_or_default();
        if !hash.is_empty() {
            labels.insert(REVISION_LABEL.into(), hash.to_string());
        }
        let mut pod = Pod {
            metadata: Default::default(),
            spec: Some(spec),
            status: None,
        };
        pod.metadata.generate_name = Some(format!(
            "{}-",
            ds.metadata.name.as_deref().unwrap_or_default()
        ));
        pod.metadata.labels = Some(labels);
        pod.metadata.annotations = tm.annotations;
        pod.metadata.finalizers = tm.finalizers;
        pod.metadata.owner_references = Some(vec![podutil::owner_ref_to(ds)]);
        pod
    }

    /// Deletes `delete` and makes a pod on each of `create` (at most
    /// [`BURST_REPLICAS`] of each), creations in slow-start batches.
    async fn sync_nodes(
        &self,
        key: &Key,
        ds: &DaemonSet,
        mut delete: Vec<Arc<Pod>>,
        mut create: Vec<String>,
        hash: &str,
    ) -> anyhow::Result<()> {
        create.truncate(BURST_REPLICAS);
        delete.truncate(BURST_REPLICAS);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let mut first_err: Option<anyhow::Error> = None;
        if !create.is_empty() {
            let template = Self::template(ds, hash);
            self.expectations.expect_creations(key, create.len());
            let pp = PostParams::default();
            let mut pos = 0;
            let mut batch = 1usize.min(create.len());
            while batch > 0 {
                let results =
                    futures::future::join_all(create[pos..pos + batch].iter().map(|node| {
                        let pod = Self::pod_for(&template, node);
                        let api = api.clone();
                        let pp = pp.clone();
                        async move { api.create(&pp, &pod).await }
                    }))
                    .await;
                let mut failed = false;
                for r in results {
                    match r {
                        Ok(created) => {
                            let name = created.metadata.name.clone().unwrap_or_default();
                            self.expectations.creation_answered(key, Some(name.clone()));
                            self.event(
                                ds,
                                "Normal",
                                "SuccessfulCreate",
                                format!("Created pod: {name}"),
                            );
                        }
                        Err(e) => {
                            self.expectations.creation_answered(key, None);
                            // A namespace being deleted refuses them all.
                            let terminating = matches!(&e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"));
                            if !terminating {
                                self.event(
                                    ds,
                                    "Warning",
                                    "FailedCreate",
                                    format!("Error creating: {e}"),
                                );
                                failed = true;
                                first_err.get_or_insert(e.into());
                            }
                        }
                    }
                }
                pos += batch;
                if failed {
                    // The creations not attempted will not be observed.
                    for _ in pos..create.len() {
                        self.expectations.creation_answered(key, None);
                    }
                    break;
                }
                batch = (batch * 2).min(create.len() - pos);
            }
        }
        if !delete.is_empty() {
            self.expectations
                .expect_deletions(key, delete.iter().filter_map(|p| p.metadata.uid.clone()));
            let results = futures::future::join_all(delete.iter().map(|p| {
                let name = p.metadata.name.clone().unwrap_or_default();
                let api = api.clone();
                async move { (api.delete(&name, &DeleteParams::default()).await, name) }
            }))
            .await;
            for ((r, name), p) in results.into_iter().zip(&delete) {
                match r {
                    Ok(_) => self.event(
                        ds,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    ),
                    Err(e) => {
                        self.expectations
                            .deletion_failed(key, p.metadata.uid.as_deref().unwrap_or(""));
                        if api_code(&e) != Some(404) {
                            self.event(
                                ds,
                                "Warning",
                                "FailedDelete",
                                format!("Error deleting: {e}"),
                            );
                            first_err.get_or_insert(e.into());
                        }
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the status when it changed (`observedGeneration` only after
    /// a full pass).
    async fn update_status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        placement: &Placement,
        live: &[Arc<Pod>],
        hash: &str,
        observed: bool,
    ) -> anyhow::Result<Action> {
        let by_node = Self::by_node(live);
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Timestamp::now();
        let (mut desired, mut current, mut misscheduled) = (0i64, 0i64, 0i64);
        let (mut ready, mut updated, mut available) = (0i64, 0i64, 0i64);
        for node in nodes {
            let name = node.metadata.name.as_deref().unwrap_or("");
            let (should_run, _) = placement.decide(node);
            let pods = by_node.get(name).filter(|p| !p.is_empty());
            match (should_run, pods) {
                (true, None) => desired += 1,
                (true, Some(pods)) => {
                    desired += 1;
                    current += 1;
                    let Some(pod) = pods.iter().min_by(|a, b| oldest_first(a, b)) else {
                        continue;
                    };
                    if podutil::is_ready(pod) {
                        ready += 1;
                        if podutil::is_available(pod, min_ready, now) {
                            available += 1;
                        }
                    }
                    if rolling::is_updated(pod, hash) {
                        updated += 1;
                    }
                }
                (false, Some(_)) => misscheduled += 1,
                (false, None) => {}
            }
        }
        let generation = ds.metadata.generation.unwrap_or(0);
        let status = ds.status.clone().unwrap_or_default();
        let observed_gen = status.observed_generation.unwrap_or(0);
        let same = i64::from(status.desired_number_scheduled) == desired
            && i64::from(status.current_number_scheduled) == current
            && i64::from(status.number_misscheduled) == misscheduled
            && i64::from(status.number_ready) == ready
            && i64::from(status.updated_number_scheduled.unwrap_or(0)) == updated
            && i64::from(status.number_available.unwrap_or(0)) == available
            && i64::from(status.number_unavailable.unwrap_or(0)) == desired - available
            && observed_gen >= generation;
        if !same {
            let mut s = json!({
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": current,
                "numberMisscheduled": misscheduled,
                "numberReady": ready,
                "updatedNumberScheduled": updated,
                "numberAvailable": available,
                "numberUnavailable": desired - available,
            });
            if observed {
                s["observedGeneration"] = json!(generation);
            }
            let api: Api<DaemonSet> = Api::namespaced(
                self.client.clone(),
                ds.metadata.namespace.as_deref().unwrap_or(""),
            );
            let name = ds.metadata.name.as_deref().unwrap_or("");
            match api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": s})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "error storing status for daemon set {name}: {e}"
                    ))
                }
            }
        }
        // Look again when pods become available (minReadySeconds).
        if min_ready > 0 && ready != available {
            return Ok(Action::requeue(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(Action::await_change())
    }
}
