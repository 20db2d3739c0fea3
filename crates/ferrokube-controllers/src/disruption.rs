//! The disruption controller: keeps every PodDisruptionBudget's status, as
//! Kubernetes' `pkg/controller/disruption` does, so that the API server's
//! `pods/eviction` can tell whether one more pod may go.
//!
//! For a budget, the pods of its namespace its selector matches count:
//! `expectedPods` is their number (`minAvailable` as an integer) or the
//! sum of the scales of their controllers (`maxUnavailable`, or
//! `minAvailable` as a percentage), found through the ReplicationController,
//! the Deployment over a ReplicaSet, the ReplicaSet, the StatefulSet, or any
//! kind that serves `/scale` (found through discovery);
//! `desiredHealthy` follows from the budget; `currentHealthy` counts the
//! Ready pods that are neither being deleted nor listed in
//! `disruptedPods` (evictions the API server approved, kept until the pod
//! is seen going or [`DELETION_TIMEOUT`] passes); `disruptionsAllowed` is
//! their difference when positive and something is expected. The
//! `DisruptionAllowed` condition says `SufficientPods` / `InsufficientPods`,
//! or `SyncFailed` (with no disruption allowed) when the numbers cannot be
//! worked out, such as a pod whose controller has no scale.
//!
//! A pod left with a `DisruptionTarget` condition but never deleted (an
//! eviction whose deletion failed) has the condition turned `False` once
//! [`STALE_DISRUPTION_TIMEOUT`] has passed since it was set.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Pod, PodCondition, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::podutil::{self, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The controller's name in kube-controller-manager's `--controllers`.
pub(crate) const NAME: &str = "disruption";

/// The name of its second queue's counters (stale `DisruptionTarget`
/// conditions).
const STALE_NAME: &str = "disruption-stale";

/// The event source, as Kubernetes' disruption controller names itself.
const COMPONENT: &str = "controllermanager";

/// How long an eviction listed in `disruptedPods` keeps its pod out of the
/// healthy count without the pod being seen deleted.
pub(crate) const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a `DisruptionTarget` condition may stay on a pod that is not
/// being deleted before it is turned `False`.
pub(crate) const STALE_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The budgets' condition and its reasons.
pub(crate) const CONDITION: &str = "DisruptionAllowed";
pub(crate) const SUFFICIENT_PODS: &str = "SufficientPods";
pub(crate) const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub(crate) const SYNC_FAILED: &str = "SyncFailed";

pub(crate) struct DisruptionController {
    client: kube::Client,
    budgets: Store<PodDisruptionBudget>,
    pods: Store<Pod>,
    rcs: Store<ReplicationController>,
    replica_sets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    stateful_sets: Store<StatefulSet>,
    ctx: Context,
    /// Pods whose `DisruptionTarget` condition may have gone stale.
    stale: Context,
    /// Pods already told they match several budgets (by uid).
    told_multiple: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Reconciler for DisruptionController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.budgets);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await
    }
}

/// The controller's second queue: pods whose `DisruptionTarget` condition
/// may have gone stale.
pub(crate) struct StaleConditions(pub Arc<DisruptionController>);

impl Reconciler for StaleConditions {
    fn context(&self) -> &Context {
        &self.0.stale
    }
    fn enqueue_all(&self) {
        for p in self.0.pods.state() {
            self.0.check_stale(&p);
        }
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.0.sync_stale(key).await
    }
}

impl DisruptionController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut stale = Context::new(STALE_NAME, cancel.clone());
        stale.wait_for(informers.get::<Pod>().ready());
        let mut ctx = Context::new(NAME, cancel);
        let this = Arc::new(DisruptionController {
            client: ctx.client(&client),
            budgets: ctx.watch(informers),
            pods: ctx.watch(informers),
            rcs: ctx.watch(informers),
            replica_sets: ctx.watch(informers),
            deployments: ctx.watch(informers),
            stateful_sets: ctx.watch(informers),
            stale,
            told_multiple: Default::default(),
            ctx,
        });
        informers.get::<PodDisruptionBudget>().queue_keys(&this);
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => {
                    me.queue_budgets_of(p, true);
                    me.check_stale(p);
                }
                Change::Deleted(p) => {
                    me.queue_budgets_of(p, false);
                    if let Some(uid) = &p.metadata.uid {
                        me.told().remove(uid);
                    }
                }
                Change::Relisted => me.enqueue_all(),
            });
        this
    }

    fn told(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.told_multiple.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the budgets that select `p`; a live pod several select is
    /// told so once (Kubernetes' MultiplePodDisruptionBudgets warning).
    fn queue_budgets_of(&self, p: &Pod, live: bool) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        let mut names = Vec::new();
        for b in self.budgets.state() {
            if b.metadata.namespace.as_deref() == Some(ns)
                && budget_selector(&b).is_some_and(|s| s.matches(p.metadata.labels.as_ref()))
            {
                self.ctx.add(key_of(b.as_ref()));
                names.push(b.metadata.name.clone().unwrap_or_default());
            }
        }
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if live && names.len() > 1 && self.told().insert(uid) {
            names.sort();
            podutil::record_event(
                &self.client,
                COMPONENT,
                p,
                "Warning",
                "MultiplePodDisruptionBudgets",
                format!(
                    "Pod {ns:?}/{:?} matches multiple PodDisruptionBudgets.  Chose {:?} arbitrarily.",
                    p.metadata.name.as_deref().unwrap_or(""),
                    names[0]
                ),
            );
        }
    }

    /// Queues `p` for when its `DisruptionTarget` condition goes stale.
    fn check_stale(&self, p: &Pod) {
        if let Some(wait) = stale_condition_wait(p, STALE_DISRUPTION_TIMEOUT, Timestamp::now()) {
            self.stale.add_after(key_of(p), wait);
        }
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let (ns, name) = key;
        let Some(pdb) = self.budgets.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(Action::await_change());
        };
        match self.try_sync(key, &pdb).await {
            Ok(next) => Ok(next),
            Err(SyncError::Api(e)) if podutil::api_code(&e) == Some(409) => Err(e.into()),
            Err(e) => {
                tracing::debug!(%ns, %name, error = %e, "disruption budget sync failed");
                self.fail_safe(&pdb, &e.to_string()).await?;
                Ok(Action::await_change())
            }
        }
    }

    async fn try_sync(&self, key: &Key, pdb: &PodDisruptionBudget) -> Result<Action, SyncError> {
        let pods = self.pods_of(pdb);
        let counts = self.expected_pod_count(pdb, &pods).await;
        let (expected, desired, unmanaged) = match counts {
            Ok(c) => c,
            Err(e) => {
                podutil::record_event(
                    &self.client,
                    COMPONENT,
                    pdb,
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {e}"),
                );
                return Err(e);
            }
        };
        let now = Timestamp::now();
        let (disrupted, recheck) = disrupted_pod_map(pdb, &pods, now);
        let expired: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                let n = p.metadata.name.as_deref().unwrap_or("");
                listed_disrupted(pdb).contains(&n) && !disrupted.contains_key(n)
            })
            .collect();
        let current = count_healthy(&pods, &disrupted, now);
        let written = self
            .update_status(pdb, current, desired, expected, disrupted, now)
            .await?;
        if written {
            for p in &expired {
                podutil::record_event(
                    &self.client,
                    COMPONENT,
                    p.as_ref(),
                    "Warning",
                    "NotDeleted",
                    format!(
                        "Pod was expected by PDB {}/{} to be deleted but it wasn't",
                        key.0, key.1
                    ),
                );
            }
            // Said when the status is written, not on every pass.
            if pods.is_empty() {
                podutil::record_event(
                    &self.client,
                    COMPONENT,
                    pdb,
                    "Normal",
                    "NoPods",
                    "No matching pods found".into(),
                );
            }
            if !unmanaged.is_empty() {
                podutil::record_event(
                    &self.client,
                    COMPONENT,
                    pdb,
                    "Warning",
                    "UnmanagedPods",
                    format!(
                        "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                        selector_text(pdb)
                    ),
                );
            }
        }
        Ok(recheck
            .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default())
            .into())
    }

    /// The pods of the budget's namespace its selector matches (a missing
    /// selector matches none, an empty one all, as Kubernetes' lister).
    fn pods_of(&self, pdb: &PodDisruptionBudget) -> Vec<Arc<Pod>> {
        let Some(sel) = budget_selector(pdb) else {
            return Vec::new();
        };
        let ns = pdb.metadata.namespace.as_deref();
        let mut pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == ns)
            .filter(|p| sel.matches(p.metadata.labels.as_ref()))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }

    /// expectedPods, desiredHealthy and the pods no controller owns.
    async fn expected_pod_count(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, i32, Vec<String>), SyncError> {
        let spec = pdb.spec.clone().unwrap_or_default();
        if let Some(max) = &spec.max_unavailable {
            let (expected, unmanaged) = self.expected_scale(pods).await?;
            let max = scaled_value(max, expected)?;
            return Ok((expected, (expected - max).max(0), unmanaged));
        }
        match &spec.min_available {
            Some(IntOrString::Int(n)) => Ok((len_i32(pods.len()), *n, Vec::new())),
            Some(pct @ IntOrString::String(_)) => {
                let (expected, unmanaged) = self.expected_scale(pods).await?;
                Ok((expected, scaled_value(pct, expected)?, unmanaged))
            }
            None => Ok((0, 0, Vec::new())),
        }
    }

    /// The sum of the scales of the pods' controllers, and the pods that
    /// have none.
    async fn expected_scale(&self, pods: &[Arc<Pod>]) -> Result<(i32, Vec<String>), SyncError> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for p in pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            let Some(r) = podutil::controller_ref(&p.metadata) else {
                unmanaged.push(name);
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let ns = p.metadata.namespace.as_deref().unwrap_or("");
            match self.find_controller(r, ns).await? {
                Some((uid, scale)) => {
                    scales.insert(uid, scale);
                }
                None => {
                    return Err(SyncError::Other(format!(
                        "found no controllers for pod {name:?}"
                    )))
                }
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    /// The controller `r` names and its scale, tried as Kubernetes' finders
    /// are: ReplicationController, Deployment (through its ReplicaSet),
    /// ReplicaSet, StatefulSet, then any kind with `/scale`.
    async fn find_controller(
        &self,
        r: &OwnerReference,
        ns: &str,
    ) -> Result<Option<(String, i32)>, SyncError> {
        let group = group_of(&r.api_version);
        let found = |uid: &Option<String>| uid.as_deref() == Some(r.uid.as_str());
        match (group, r.kind.as_str()) {
            ("", "ReplicationController") => {
                return Ok(self
                    .rcs
                    .get(&ObjectRef::new(&r.name).within(ns))
                    .and_then(|rc| {
                        found(&rc.metadata.uid).then(|| {
                            let n = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                            (r.uid.clone(), n)
                        })
                    }))
            }
            ("apps" | "extensions", "ReplicaSet") => {
                let Some(rs) = self.replica_sets.get(&ObjectRef::new(&r.name).within(ns)) else {
                    return Ok(None);
                };
                if !found(&rs.metadata.uid) {
                    return Ok(None);
                }
                match podutil::controller_ref(&rs.metadata) {
                    Some(d) if d.kind == "Deployment" => {
                        if matches!(group_of(&d.api_version), "apps" | "extensions") {
                            if let Some(dep) =
                                self.deployments.get(&ObjectRef::new(&d.name).within(ns))
                            {
                                if dep.metadata.uid.as_deref() == Some(d.uid.as_str()) {
                                    let n = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                                    return Ok(Some((d.uid.clone(), n)));
                                }
                            }
                        }
                        // A ReplicaSet of a Deployment not found: its scale,
                        // as Kubernetes' last finder would read it.
                    }
                    _ => {
                        let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        return Ok(Some((r.uid.clone(), n)));
                    }
                }
            }
            ("apps", "StatefulSet") => {
                return Ok(self
                    .stateful_sets
                    .get(&ObjectRef::new(&r.name).within(ns))
                    .and_then(|ss| {
                        found(&ss.metadata.uid).then(|| {
                            let n = ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                            (r.uid.clone(), n)
                        })
                    }))
            }
            _ => {}
        }
        self.scale_of(r, ns).await
    }

    /// The `/scale` of the object `r` names, found through discovery.
    async fn scale_of(
        &self,
        r: &OwnerReference,
        ns: &str,
    ) -> Result<Option<(String, i32)>, SyncError> {
        let group = group_of(&r.api_version);
        let resources = if group.is_empty() {
            self.client
                .list_core_api_resources(&r.api_version)
                .await
                .map_err(SyncError::Api)?
        } else {
            self.client
                .list_api_group_resources(&r.api_version)
                .await
                .map_err(SyncError::Api)?
        };
        let Some(res) = resources
            .resources
            .iter()
            .find(|x| x.kind == r.kind && !x.name.contains('/'))
        else {
            return Err(SyncError::Other(format!(
                "no matches for kind {:?} in version {:?}",
                r.kind, r.api_version
            )));
        };
        let base = if group.is_empty() {
            format!("/api/{}", r.api_version)
        } else {
            format!("/apis/{}", r.api_version)
        };
        let path = if res.namespaced {
            format!("{base}/namespaces/{ns}/{}/{}/scale", res.name, r.name)
        } else {
            format!("{base}/{}/{}/scale", res.name, r.name)
        };
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| SyncError::Other(e.to_string()))?;
        match self.client.request::<Scale>(req).await {
            Ok(scale) => Ok(
                (scale.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| {
                    let n = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
                    (r.uid.clone(), n)
                }),
            ),
            Err(e) if podutil::api_code(&e) == Some(404) => {
                let sub = format!("{}/scale", res.name);
                if resources.resources.iter().any(|x| x.name == sub) {
                    Ok(None)
                } else {
                    let gr = if group.is_empty() {
                        res.name.clone()
                    } else {
                        format!("{}.{group}", res.name)
                    };
                    Err(SyncError::Other(format!(
                        "{gr} does not implement the scale subresource"
                    )))
                }
            }
            Err(e) => Err(SyncError::Api(e)),
        }
    }

    /// Writes the status if any of it changed; whether it wrote.
    async fn update_status(
        &self,
        pdb: &PodDisruptionBudget,
        current: i32,
        desired: i32,
        expected: i32,
        disrupted: BTreeMap<String, Time>,
        now: Timestamp,
    ) -> Result<bool, SyncError> {
        let allowed = if expected <= 0 {
            0
        } else {
            (current - desired).max(0)
        };
        let old = pdb.status.clone().unwrap_or_default();
        let generation = pdb.metadata.generation;
        let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
        if old.current_healthy == current
            && old.desired_healthy == desired
            && old.expected_pods == expected
            && old.disruptions_allowed == allowed
            && old_disrupted == disrupted
            && old.observed_generation == generation
            && conditions_up_to_date(pdb)
        {
            return Ok(false);
        }
        let mut status = PodDisruptionBudgetStatus {
            current_healthy: current,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: allowed,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            observed_generation: generation,
            conditions: old.conditions.clone(),
        };
        let (cond_status, reason) = if allowed > 0 {
            ("True", SUFFICIENT_PODS)
        } else {
            ("False", INSUFFICIENT_PODS)
        };
        let observed = status.observed_generation;
        set_condition(
            status.conditions.get_or_insert_with(Vec::new),
            cond_status,
            reason,
            "",
            observed,
            now,
        );
        self.write_status(pdb, status).await?;
        Ok(true)
    }

    /// When the numbers cannot be worked out: no disruption allowed, and
    /// the condition says why.
    async fn fail_safe(&self, pdb: &PodDisruptionBudget, why: &str) -> anyhow::Result<()> {
        let mut status = pdb.status.clone().unwrap_or_default();
        status.disruptions_allowed = 0;
        let observed = status.observed_generation;
        set_condition(
            status.conditions.get_or_insert_with(Vec::new),
            "False",
            SYNC_FAILED,
            why,
            observed,
            Timestamp::now(),
        );
        if Some(&status) == pdb.status.as_ref() {
            // Already saying so; retried by the queue's back-off.
            anyhow::bail!("{why}");
        }
        self.write_status(pdb, status)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::bail!("{why}")
    }

    /// An update of the status subresource of the budget as read (a
    /// conflict if it changed meanwhile).
    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<(), SyncError> {
        let ns = pdb.metadata.namespace.as_deref().unwrap_or("");
        let name = pdb.metadata.name.as_deref().unwrap_or("");
        let mut new = pdb.clone();
        new.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
        match api.replace_status(name, &PostParams::default(), &new).await {
            Ok(_) => Ok(()),
            Err(e) if podutil::api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(SyncError::Api(e)),
        }
    }

    /// Turns a pod's stale `DisruptionTarget` condition `False`.
    async fn sync_stale(&self, key: &Key) -> anyhow::Result<Action> {
        let (ns, name) = key;
        let Some(pod) = self.pods.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(Action::await_change());
        };
        match stale_condition_wait(&pod, STALE_DISRUPTION_TIMEOUT, Timestamp::now()) {
            None => return Ok(Action::await_change()),
            Some(w) if !w.is_zero() => return Ok(Action::requeue(w)),
            Some(_) => {}
        }
        let mut new = (*pod).clone();
        let Some(conds) = new.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
            return Ok(Action::await_change());
        };
        for c in conds.iter_mut().filter(|c| c.type_ == "DisruptionTarget") {
            *c = PodCondition {
                type_: "DisruptionTarget".into(),
                status: "False".into(),
                last_transition_time: Some(Time(Timestamp::now())),
                ..PodCondition::default()
            };
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match api.replace_status(name, &PostParams::default(), &new).await {
            Ok(_) => {
                tracing::info!(%ns, pod = %name, "reset a stale DisruptionTarget condition to False");
                Ok(Action::await_change())
            }
            Err(e) if podutil::api_code(&e) == Some(404) => Ok(Action::await_change()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Why a budget's numbers could not be worked out.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{0}")]
    Api(kube::Error),
    #[error("{0}")]
    Other(String),
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The budget's pod selector: `None` (nothing) if missing or unusable.
fn budget_selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    Selector::from_label_selector(Some(pdb.spec.as_ref()?.selector.as_ref()?)).ok()
}

/// The selector as Go's `%v` of a `*metav1.LabelSelector` prints it,
/// roughly: `&LabelSelector{MatchLabels:map[app:web],...}`.
fn selector_text(pdb: &PodDisruptionBudget) -> String {
    let Some(sel) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return "nil".into();
    };
    let labels: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[{}],MatchExpressions:[]LabelSelectorRequirement{{}},}}",
        labels.join(" ")
    )
}

/// An integer, or a percentage of `total` rounded up (Kubernetes'
/// `GetScaledValueFromIntOrPercent` with roundUp).
pub(crate) fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, SyncErrorText> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    SyncErrorText(format!(
                        "invalid value for IntOrString: invalid value {s:?}: strconv.Atoi: parsing {:?}: invalid syntax",
                        s.trim_end_matches('%')
                    ))
                })?;
            let scaled = (pct * i64::from(total) + 99).div_euclid(100);
            Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
        }
    }
}

/// A percentage that is not one.
#[derive(Debug)]
pub(crate) struct SyncErrorText(pub String);

impl From<SyncErrorText> for SyncError {
    fn from(e: SyncErrorText) -> Self {
        SyncError::Other(e.0)
    }
}

/// The entries of `disruptedPods` still awaited (pod there, not yet being
/// deleted, within [`DELETION_TIMEOUT`]), and when the first expires.
pub(crate) fn disrupted_pod_map(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let mut out = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let Some(listed) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (out, None);
    };
    let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or(SignedDuration::ZERO);
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some(at) = listed.get(&name) else {
            continue;
        };
        let expires = at.0 + timeout;
        if expires < now {
            tracing::info!(pod = %name, "pod was expected to be deleted but it wasn't");
            continue;
        }
        recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
        out.insert(name, at.clone());
    }
    (out, recheck)
}

/// The pods the budget's status lists in `disruptedPods`.
fn listed_disrupted(pdb: &PodDisruptionBudget) -> Vec<&str> {
    pdb.status
        .as_ref()
        .and_then(|s| s.disrupted_pods.as_ref())
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Ready pods not being deleted and not about to be (in `disrupted`).
pub(crate) fn count_healthy(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    now: Timestamp,
) -> i32 {
    let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or(SignedDuration::ZERO);
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            disrupted.get(name).is_none_or(|t| t.0 + timeout <= now)
        })
        .filter(|p| podutil::is_ready(p))
        .count();
    len_i32(n)
}

/// Whether the budget's `DisruptionAllowed` condition matches its numbers.
pub(crate) fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == CONDITION)
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// apimachinery's `meta.SetStatusCondition`: the transition time moves
/// only with the status.
fn set_condition(
    conds: &mut Vec<Condition>,
    status: &str,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    match conds.iter_mut().find(|c| c.type_ == CONDITION) {
        Some(c) => {
            if c.status != status {
                c.status = status.into();
                c.last_transition_time = Time(now);
            }
            c.reason = reason.into();
            c.message = message.into();
            c.observed_generation = observed_generation;
        }
        None => conds.push(Condition {
            type_: CONDITION.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation,
            last_transition_time: Time(now),
        }),
    }
}

/// For a pod with a `DisruptionTarget=True` condition it did not get from
/// its kubelet, that is not being deleted and has not finished: how long
/// until the condition is stale (zero: now). `None` for any other pod.
pub(crate) fn stale_condition_wait(p: &Pod, timeout: Duration, now: Timestamp) -> Option<Duration> {
    if p.metadata.deletion_timestamp.is_some() {
        return None;
    }
    if matches!(podutil::phase(p), "Succeeded" | "Failed") {
        return None;
    }
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")?;
    if c.status != "True" || c.reason.as_deref() == Some("TerminationByKubelet") {
        return None;
    }
    let since = c.last_transition_time.as_ref().map_or(now, |t| t.0);
    let passed = Duration::try_from(now.duration_since(since)).unwrap_or_default();
    Some(timeout.saturating_sub(passed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    #[test]
    fn percentages_round_up() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&pct("50%"), 3).unwrap(), 2);
        assert_eq!(scaled_value(&pct("10%"), 10).unwrap(), 1);
        assert_eq!(scaled_value(&pct("1%"), 10).unwrap(), 1);
        assert_eq!(scaled_value(&pct("0%"), 10).unwrap(), 0);
        assert_eq!(scaled_value(&pct("100%"), 7).unwrap(), 7);
        assert_eq!(scaled_value(&IntOrString::Int(2), 7).unwrap(), 2);
        assert!(scaled_value(&pct("half"), 7).is_err());
    }

    #[test]
    fn disrupted_pods_stay_out_of_the_healthy_count_until_they_expire() {
        let now = Timestamp::now();
        let fresh = Time(now - SignedDuration::from_secs(10));
        let old = Time(now - SignedDuration::from_secs(300));
        let pdb = PodDisruptionBudget {
            spec: Some(PodDisruptionBudgetSpec::default()),
            status: Some(PodDisruptionBudgetStatus {
                disrupted_pods: Some(BTreeMap::from([
                    ("a".to_string(), fresh.clone()),
                    ("b".to_string(), old),
                    ("gone".to_string(), fresh.clone()),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pods = vec![
            pod("a", true),
            pod("b", true),
            pod("c", true),
            pod("d", false),
        ];
        let (map, recheck) = disrupted_pod_map(&pdb, &pods, now);
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            recheck,
            Some(fresh.0 + SignedDuration::try_from(DELETION_TIMEOUT).unwrap())
        );
        // a is about to go, d is not ready: b and c count.
        assert_eq!(count_healthy(&pods, &map, now), 2);
    }

    #[test]
    fn stale_disruption_conditions() {
        let now = Timestamp::now();
        let mut p = (*pod("a", true)).clone();
        assert_eq!(
            stale_condition_wait(&p, STALE_DISRUPTION_TIMEOUT, now),
            None
        );
        let cond = |reason: &str, ago: i64| PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            last_transition_time: Some(Time(now - SignedDuration::from_secs(ago))),
            ..Default::default()
        };
        let set = |p: &mut Pod, c: PodCondition| {
            p.status.as_mut().unwrap().conditions = Some(vec![c]);
        };
        set(&mut p, cond("EvictionByEvictionAPI", 30));
        assert_eq!(
            stale_condition_wait(&p, STALE_DISRUPTION_TIMEOUT, now),
            Some(Duration::from_secs(90))
        );
        set(&mut p, cond("EvictionByEvictionAPI", 500));
        assert_eq!(
            stale_condition_wait(&p, STALE_DISRUPTION_TIMEOUT, now),
            Some(Duration::ZERO)
        );
        set(&mut p, cond("TerminationByKubelet", 500));
        assert_eq!(
            stale_condition_wait(&p, STALE_DISRUPTION_TIMEOUT, now),
            None
        );
        set(&mut p, cond("EvictionByEvictionAPI", 500));
        p.status.as_mut().unwrap().phase = Some("Failed".into());
        assert_eq!(
            stale_condition_wait(&p, STALE_DISRUPTION_TIMEOUT, now),
            None
        );
    }

    #[test]
    fn the_condition_follows_the_numbers() {
        let mut pdb = PodDisruptionBudget::default();
        pdb.metadata.generation = Some(2);
        pdb.status = Some(PodDisruptionBudgetStatus {
            disruptions_allowed: 1,
            observed_generation: Some(2),
            ..Default::default()
        });
        assert!(!conditions_up_to_date(&pdb));
        let now = Timestamp::now();
        let st = pdb.status.as_mut().unwrap();
        set_condition(
            st.conditions.get_or_insert_with(Vec::new),
            "True",
            SUFFICIENT_PODS,
            "",
            Some(2),
            now,
        );
        assert!(conditions_up_to_date(&pdb));
        pdb.status.as_mut().unwrap().disruptions_allowed = 0;
        assert!(!conditions_up_to_date(&pdb));
        pdb.status.as_mut().unwrap().disruptions_allowed = 1;
        pdb.metadata.generation = Some(3);
        assert!(!conditions_up_to_date(&pdb));
    }
}
