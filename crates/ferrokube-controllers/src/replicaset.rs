//! The ReplicaSet and ReplicationController controllers: one reconcile,
//! generic over the two kinds ([`ReplicaOwner`]), that converges the pods
//! matching an owner's selector to its `replicas` as Kubernetes'
//! `pkg/controller/replicaset` does: claim (adopt matching orphans, release
//! pods that stopped matching), create from the template in slow-start
//! batches or delete the pods Kubernetes would delete first, and report
//! status through the status subresource.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::expectations::Expectations;
use crate::podutil::{self, api_code, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The most pods one reconcile creates or deletes (Kubernetes' burstReplicas).
pub(crate) const BURST_REPLICAS: usize = 500;

/// What the reconcile needs to know of a ReplicaSet or ReplicationController.
pub(crate) trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The event source, as Kubernetes names the controller.
    const COMPONENT: &'static str;
    /// The controller's name in kube-controller-manager's `--controllers`
    /// (and in this crate's metrics).
    const NAME: &'static str;
    /// The pod selector; `None` if it cannot be parsed.
    fn selector(&self) -> Option<Selector>;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The status as JSON (to compare with a newly computed one).
    fn status_value(&self) -> Value;
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const NAME: &'static str = "replicaset";
    fn selector(&self) -> Option<Selector> {
        let s = Selector::from_label_selector(Some(&self.spec.as_ref()?.selector)).ok()?;
        // apps/v1 forbids an empty selector; never let one match everything.
        (!s.is_empty()).then_some(s)
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const NAME: &'static str = "replicationcontroller";
    fn selector(&self) -> Option<Selector> {
        let spec = self.spec.as_ref()?;
        // The selector defaults to the template's labels.
        let map = match spec.selector.as_ref().filter(|m| !m.is_empty()) {
            Some(m) => m.clone(),
            None => spec.template.as_ref()?.metadata.as_ref()?.labels.clone()?,
        };
        (!map.is_empty()).then(|| Selector::from_map(&map))
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

/// The controller for one kind `K`.
pub(crate) struct ReplicaController<K: ReplicaOwner> {
    client: kube::Client,
    owners: Store<K>,
    pods: Store<Pod>,
    expectations: Expectations,
    ctx: Context,
}

impl<K: ReplicaOwner> Reconciler for ReplicaController<K> {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.owners);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await
    }
}

/// Whether `r` names an object of kind `K` (group and kind; any version).
fn ref_is<K: ReplicaOwner>(
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> bool {
    let group = |av: &str| {
        av.rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    r.kind == K::kind(&()) && group(&r.api_version) == K::group(&())
}

impl<K: ReplicaOwner> ReplicaController<K> {
    /// Sets the controller up over the shared informers of `K` and pods,
    /// registering its handlers on them (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(K::NAME, cancel);
        let this = Arc::new(ReplicaController {
            client: ctx.client(&client),
            owners: ctx.watch::<K>(informers),
            pods: ctx.watch::<Pod>(informers),
            expectations: Expectations::new(),
            ctx,
        });
        informers.get::<K>().queue_keys(&this);
        let pods = informers.get::<Pod>();
        let me = this.clone();
        pods.on_change(&this.ctx, move |c| match c {
            Change::Applied(p) => me.pod_changed(p, p.metadata.deletion_timestamp.is_some()),
            Change::Deleted(p) => me.pod_changed(p, true),
            Change::Relisted => me.enqueue_all(),
        });
        this
    }

    fn pod_changed(&self, p: &Pod, gone: bool) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        self.expectations.observe(
            ns,
            p.metadata.name.as_deref().unwrap_or(""),
            p.metadata.uid.as_deref().unwrap_or(""),
            gone,
        );
        match podutil::controller_ref(&p.metadata) {
            Some(r) if ref_is::<K>(r) => self.ctx.add((ns.to_string(), r.name.clone())),
            Some(_) => {}
            None if !gone => {
                // An orphan: every owner that could adopt it looks.
                for o in self.owners.state() {
                    if o.meta().namespace.as_deref() == Some(ns)
                        && o.selector()
                            .is_some_and(|s| s.matches(p.metadata.labels.as_ref()))
                    {
                        self.ctx.add(key_of(o.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let (ns, name) = key;
        let Some(owner) = self.owners.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.forget(key);
            return Ok(Action::await_change());
        };
        tracing::debug!(kind = %K::kind(&()), %ns, %name, "reconciling");
        let Some(selector) = owner.selector() else {
            tracing::debug!(%ns, %name, "unusable selector");
            return Ok(Action::await_change());
        };
        let pods_in_cache: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .collect();
        let need_sync = self.expectations.satisfied(
            key,
            |n| {
                pods_in_cache
                    .iter()
                    .any(|p| p.metadata.name.as_deref() == Some(n))
            },
            |u| {
                pods_in_cache.iter().any(|p| {
                    p.metadata.uid.as_deref() == Some(u) && p.metadata.deletion_timestamp.is_none()
                })
            },
        );
        let active: Vec<Arc<Pod>> = pods_in_cache
            .into_iter()
            .filter(|p| podutil::is_active(p))
            .collect();
        let claimed =
            crate::podclaim::claim_pods(&self.client, owner.as_ref(), &selector, active, |_| true)
                .await;

        let mut manage_err = None;
        let mut claimed = claimed;
        if need_sync && owner.meta().deletion_timestamp.is_none() {
            match self.manage(key, &owner, &claimed).await {
                // Pods just deleted no longer count in the status.
                Ok(deleted) => claimed.retain(|p| !deleted.contains(&p.metadata.uid)),
                Err(e) => manage_err = Some(e),
            }
        }
        let requeue = self.update_status(&owner, &claimed).await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(requeue.into())
    }

    /// Creates or deletes pods so that `replicas` match; returns the uids
    /// of the pods deleted.
    async fn manage(
        &self,
        key: &Key,
        owner: &K,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<Vec<Option<String>>> {
        let want = owner.replicas().max(0) as usize;
        let have = pods.len();
        if have < want {
            let n = (want - have).min(BURST_REPLICAS);
            self.create_pods(key, owner, n).await.map(|_| Vec::new())
        } else if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            self.delete_pods(key, owner, pods, n).await
        } else {
            Ok(Vec::new())
        }
    }

    fn pod_from_template(owner: &K) -> anyhow::Result<Pod> {
        let t = owner
            .template()
            .ok_or_else(|| anyhow::anyhow!("no pod template"))?;
        let tm = t.metadata.clone().unwrap_or_default();
        let mut pod = Pod {
            metadata: Default::default(),
            spec: t.spec.clone(),
            status: None,
        };
        pod.metadata.generate_name = Some(format!(
            "{}-",
            owner.meta().name.as_deref().unwrap_or_default()
        ));
        pod.metadata.labels = tm.labels;
        pod.metadata.annotations = tm.annotations;
        pod.metadata.finalizers = tm.finalizers;
        pod.metadata.owner_references = Some(vec![podutil::owner_ref_to(owner)]);
        Ok(pod)
    }

    /// Creates `n` pods in batches of 1, 2, 4, … stopping at the first
    /// batch with an error (Kubernetes' slowStartBatch).
    async fn create_pods(&self, key: &Key, owner: &K, n: usize) -> anyhow::Result<()> {
        let pod = Self::pod_from_template(owner)?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        self.expectations.expect_creations(key, n);
        let mut remaining = n;
        let pp = PostParams::default();
        let mut batch = 1usize.min(remaining);
        while batch > 0 {
            let results =
                futures::future::join_all((0..batch).map(|_| api.create(&pp, &pod))).await;
            let mut first_err = None;
            for r in results {
                match r {
                    Ok(created) => {
                        let name = created.metadata.name.clone().unwrap_or_default();
                        self.expectations.creation_answered(key, Some(name.clone()));
                        podutil::record_event(
                            &self.client,
                            K::COMPONENT,
                            owner,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {name}"),
                        );
                    }
                    Err(e) => {
                        self.expectations.creation_answered(key, None);
                        podutil::record_event(
                            &self.client,
                            K::COMPONENT,
                            owner,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {}", podutil::error_message(&e)),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
            remaining -= batch;
            if let Some(e) = first_err {
                // The creations not attempted will not be observed.
                for _ in 0..remaining {
                    self.expectations.creation_answered(key, None);
                }
                return Err(e.into());
            }
            batch = (batch * 2).min(remaining);
        }
        Ok(())
    }

    /// Deletes the `n` pods Kubernetes would delete first.
    async fn delete_pods(
        &self,
        key: &Key,
        owner: &K,
        pods: &[Arc<Pod>],
        n: usize,
    ) -> anyhow::Result<Vec<Option<String>>> {
        let mut on_node: HashMap<&str, usize> = HashMap::new();
        for p in pods {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            *on_node.entry(node).or_default() += 1;
        }
        let rank = |p: &Pod| {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            on_node.get(node).copied().unwrap_or(0)
        };
        let now = Timestamp::now();
        let mut ranked: Vec<&Arc<Pod>> = pods.iter().collect();
        ranked.sort_by(|a, b| podutil::deletion_order((a, rank(a)), (b, rank(b)), now));
        let victims: Vec<&Arc<Pod>> = ranked.into_iter().take(n).collect();
        self.expectations
            .expect_deletions(key, victims.iter().filter_map(|p| p.metadata.uid.clone()));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let results = futures::future::join_all(victims.iter().map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let api = api.clone();
            async move { (api.delete(&name, &DeleteParams::default()).await, name) }
        }))
        .await;
        let mut first_err = None;
        let mut deleted = Vec::new();
        for ((r, name), p) in results.into_iter().zip(victims) {
            match r {
                Ok(_) => {
                    deleted.push(p.metadata.uid.clone());
                    podutil::record_event(
                        &self.client,
                        K::COMPONENT,
                        owner,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    )
                }
                Err(e) if api_code(&e) == Some(404) => deleted.push(p.metadata.uid.clone()),
                Err(e) => {
                    self.expectations
                        .deletion_failed(key, p.metadata.uid.as_deref().unwrap_or(""));
                    podutil::record_event(
                        &self.client,
                        K::COMPONENT,
                        owner,
                        "Warning",
                        "FailedDelete",
                        format!("Error deleting: {e}"),
                    );
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(deleted),
        }
    }

    /// Writes status when it changed; returns when to look again for pods
    /// that will become available (minReadySeconds).
    async fn update_status(
        &self,
        owner: &K,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<Option<Duration>> {
        let now = Timestamp::now();
        let min_ready = owner.min_ready_seconds();
        let template_labels: BTreeMap<String, String> = owner
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let mut fully = 0;
        let mut ready = 0;
        let mut available = 0;
        let mut next: Option<Duration> = None;
        for p in pods {
            let labels = p.metadata.labels.as_ref();
            if template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            {
                fully += 1;
            }
            if podutil::is_ready(p) {
                ready += 1;
                if podutil::is_available(p, min_ready, now) {
                    available += 1;
                } else if let Some(d) = podutil::available_in(p, min_ready, now) {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
        }
        let current = owner.status_value();
        let mut status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": owner.meta().generation.unwrap_or(0),
        });
        if let Some(c) = current.get("conditions") {
            status["conditions"] = c.clone();
        }
        let same = [
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ]
        .iter()
        .all(|f| {
            current.get(*f).and_then(Value::as_i64).unwrap_or(0) == status[*f].as_i64().unwrap_or(0)
        });
        if !same {
            let api: Api<K> = Api::namespaced(
                self.client.clone(),
                owner.meta().namespace.as_deref().unwrap_or(""),
            );
            let name = owner.meta().name.clone().unwrap_or_default();
            match api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(next)
    }
}
