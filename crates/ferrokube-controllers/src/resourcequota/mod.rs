//! The ResourceQuota controller (Kubernetes' `pkg/controller/resourcequota`):
//! keeps each quota's `status.hard` equal to its `spec.hard` and
//! `status.used` equal to what its namespace holds of every resource it
//! limits, counted with Kubernetes' evaluators ([`ferrokube_api::quota`]):
//! pods (not those in a terminal phase or past their deletion grace),
//! services, claims, any kind's `count/<resource>.<group>`, each within
//! the quota's scopes.
//!
//! As in Kubernetes, a quota is recounted when it needs it (new, its hard
//! limits changed, or a limited resource has no usage yet), when something
//! it counts goes away (deleted, or a pod ending), and on a periodic full
//! resync; admission charges new objects itself, so a create does not
//! trigger a recount. Kinds other controllers watch anyway are counted
//! from the shared informers; other `count/` resources (custom resources
//! among them) are listed (metadata only) when counted, and their deletions
//! followed while discovery lists them (`counted`). The controller only lists, watches and updates
//! `resourcequotas/status`, the rights of Kubernetes'
//! `system:controller:resourcequota-controller` role.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{Api, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use ferrokube_api::quota::{self as q, ResourceList};

mod counted;

use crate::controller::{self, Action, Context, Reconciler};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The event source and service account name of the controller.
pub const COMPONENT: &str = "resourcequota-controller";

/// How often every quota is recounted (Kubernetes'
/// `--resource-quota-sync-period`).
pub const RESYNC_PERIOD: Duration = Duration::from_secs(300);

/// Objects of one kind in a namespace, as JSON when their content is
/// priced (pods, services, claims), else as nulls to be counted.
type Lister = Box<dyn Fn(&str) -> Vec<Value> + Send + Sync>;

/// The controller.
pub struct QuotaController {
    client: kube::Client,
    quotas: Store<ResourceQuota>,
    /// Kinds counted from informers, by (group, resource).
    kinds: HashMap<(&'static str, &'static str), Lister>,
    ctx: Context,
    /// How often every quota is recounted.
    resync: Duration,
}

impl Reconciler for QuotaController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.quotas);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        // A quota that exists is recounted every resync period.
        match self.sync(key).await? {
            true => Ok(Action::requeue(self.resync)),
            false => Ok(Action::await_change()),
        }
    }
}

fn lister<K>(store: Store<K>, priced: bool) -> Lister
where
    K: Resource<DynamicType = ()> + Clone + Serialize + Send + Sync + 'static,
{
    Box::new(move |ns| {
        store
            .state()
            .iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(ns))
            .map(|o| {
                if priced {
                    serde_json::to_value(o.as_ref()).unwrap_or(Value::Null)
                } else {
                    Value::Null
                }
            })
            .collect()
    })
}

/// Whether a quota must be counted now: its hard limits are not yet its
/// status's, or a limited resource has no usage.
fn needs_sync(quota: &ResourceQuota) -> bool {
    let spec = hard_of(quota);
    let status = quota.status.as_ref();
    let status_hard = status
        .and_then(|s| s.hard.as_ref())
        .map(to_list)
        .unwrap_or_default();
    let used = status
        .and_then(|s| s.used.as_ref())
        .map(to_list)
        .unwrap_or_default();
    !q::equals(&spec, &status_hard) || spec.keys().any(|k| !used.contains_key(k))
}

fn to_list(
    m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> ResourceList {
    m.iter()
        .filter_map(|(k, v)| Some((k.clone(), q::Qty::parse(&Value::String(v.0.clone()))?)))
        .collect()
}

fn hard_of(quota: &ResourceQuota) -> ResourceList {
    quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .map(to_list)
        .unwrap_or_default()
}

/// The kind a quota resource name is about: pods, services and claims
/// for their own names, the counted kind for object counts.
pub fn kind_of(name: &str) -> Option<(String, String)> {
    for (g, r) in [
        ("", "pods"),
        ("", "services"),
        ("", "persistentvolumeclaims"),
    ] {
        if !q::matching_resources(g, r, &[name]).is_empty() {
            return Some((g.to_string(), r.to_string()));
        }
    }
    if let Some(gr) = q::parse_object_count_name(name) {
        return Some(gr);
    }
    [
        "configmaps",
        "secrets",
        "replicationcontrollers",
        "resourcequotas",
    ]
    .into_iter()
    .find(|r| *r == name)
    .map(|r| (String::new(), r.to_string()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The usage of `objects` (of `group`/`resource`) within `scopes`, for
/// the resources `limited`: each limited resource at zero, plus what every
/// object in scope costs (Kubernetes' `CalculateUsageStats`).
pub fn usage_of(
    group: &str,
    resource: &str,
    objects: &[Value],
    scopes: &[q::ScopeRequirement],
    limited: &BTreeSet<String>,
    now: i64,
) -> ResourceList {
    let mut used: ResourceList = limited
        .iter()
        .map(|k| (k.clone(), q::Qty::default()))
        .collect();
    for o in objects {
        if scopes
            .iter()
            .all(|s| q::matches_scope(group, resource, s, o))
        {
            used = q::add(&used, &q::usage(group, resource, o, now));
        }
    }
    q::mask(&used, limited)
}

/// Runs the controller alone over its own informers, until `cancel`.
pub async fn run(client: kube::Client, cancel: CancellationToken) {
    run_with_resync(client, cancel, RESYNC_PERIOD).await
}

/// [`run`], recounting every quota each `resync`.
pub async fn run_with_resync(client: kube::Client, cancel: CancellationToken, resync: Duration) {
    controller::run_standalone(client.clone(), WORKERS, |informers| {
        QuotaController::with_resync(client, informers, cancel, resync)
    })
    .await;
}

/// Concurrent recounts (Kubernetes' `--concurrent-resource-quota-syncs`).
pub const WORKERS: usize = 5;

impl QuotaController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Self::with_resync(client, informers, cancel, RESYNC_PERIOD)
    }

    /// [`QuotaController::new`] recounting every quota each `resync`.
    pub fn with_resync(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
        resync: Duration,
    ) -> Arc<Self> {
        let mut kinds: HashMap<(&'static str, &'static str), Lister> = HashMap::new();
        let mut ctx = Context::new("resourcequota", cancel);
        macro_rules! kind {
            ($k:ty, $group:expr, $resource:expr, $priced:expr) => {{
                let store = ctx.watch::<$k>(informers);
                kinds.insert(($group, $resource), lister(store, $priced));
            }};
        }
        kind!(Pod, "", "pods", true);
        kind!(Service, "", "services", true);
        kind!(PersistentVolumeClaim, "", "persistentvolumeclaims", true);
        kind!(ConfigMap, "", "configmaps", false);
        kind!(Secret, "", "secrets", false);
        kind!(ReplicationController, "", "replicationcontrollers", false);
        kind!(ResourceQuota, "", "resourcequotas", false);
        kind!(ReplicaSet, "apps", "replicasets", false);
        kind!(Deployment, "apps", "deployments", false);
        kind!(StatefulSet, "apps", "statefulsets", false);
        kind!(DaemonSet, "apps", "daemonsets", false);
        kind!(Job, "batch", "jobs", false);
        kind!(CronJob, "batch", "cronjobs", false);
        let quotas = informers.get::<ResourceQuota>().store();
        let this = Arc::new(QuotaController {
            client: ctx.client(&client),
            quotas,
            kinds,
            ctx,
            resync,
        });
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(counted::follow(this.clone(), client));
            }
            Err(_) => tracing::warn!(
                "resource quota: no runtime; deletions of custom resources not followed"
            ),
        }
        let me = this.clone();
        informers
            .get::<ResourceQuota>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(quota) if needs_sync(quota) => me.ctx.add(key_of(quota)),
                Change::Applied(_) | Change::Deleted(_) => {}
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => {
                    let ended = p.metadata.deletion_timestamp.is_some()
                        || matches!(
                            p.status.as_ref().and_then(|s| s.phase.as_deref()),
                            Some("Succeeded" | "Failed")
                        );
                    if ended {
                        me.replenish(p.metadata.namespace.as_deref(), "", "pods");
                    }
                }
                Change::Deleted(p) => me.replenish(p.metadata.namespace.as_deref(), "", "pods"),
                Change::Relisted => me.enqueue_all(),
            });
        this.replenish_on_delete::<Service>(informers, "", "services");
        this.replenish_on_delete::<PersistentVolumeClaim>(informers, "", "persistentvolumeclaims");
        this.replenish_on_delete::<ConfigMap>(informers, "", "configmaps");
        this.replenish_on_delete::<Secret>(informers, "", "secrets");
        this.replenish_on_delete::<ReplicationController>(informers, "", "replicationcontrollers");
        this.replenish_on_delete::<ResourceQuota>(informers, "", "resourcequotas");
        this.replenish_on_delete::<ReplicaSet>(informers, "apps", "replicasets");
        this.replenish_on_delete::<Deployment>(informers, "apps", "deployments");
        this.replenish_on_delete::<StatefulSet>(informers, "apps", "statefulsets");
        this.replenish_on_delete::<DaemonSet>(informers, "apps", "daemonsets");
        this.replenish_on_delete::<Job>(informers, "batch", "jobs");
        this.replenish_on_delete::<CronJob>(informers, "batch", "cronjobs");
        this
    }

    /// Recounts the quotas of the namespace an object of `K` left.
    fn replenish_on_delete<K>(
        self: &Arc<Self>,
        informers: &mut Informers,
        group: &'static str,
        resource: &'static str,
    ) where
        K: Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let me = self.clone();
        informers.get::<K>().on_change(&self.ctx, move |c| {
            if let Change::Deleted(o) = c {
                me.replenish(o.meta().namespace.as_deref(), group, resource);
            }
        });
    }

    /// Queues the quotas of `ns` that limit something of `group`/`resource`.
    fn replenish(&self, ns: Option<&str>, group: &str, resource: &str) {
        let Some(ns) = ns else { return };
        for quota in self.quotas.state() {
            if quota.metadata.namespace.as_deref() != Some(ns) {
                continue;
            }
            let hard = hard_of(&quota);
            let names: Vec<&str> = hard.keys().map(String::as_str).collect();
            if !q::matching_resources(group, resource, &names).is_empty() {
                self.ctx.add(key_of(quota.as_ref()));
            }
        }
    }

    /// Queues every quota that limits something of `group`/`resource`.
    fn replenish_everywhere(&self, group: &str, resource: &str) {
        for quota in self.quotas.state() {
            let hard = hard_of(&quota);
            let names: Vec<&str> = hard.keys().map(String::as_str).collect();
            if !q::matching_resources(group, resource, &names).is_empty() {
                self.ctx.add(key_of(quota.as_ref()));
            }
        }
    }

    /// The objects of `group`/`resource` in `ns`: from an informer, else
    /// listed (metadata only; every object costs the same count).
    async fn objects(&self, group: &str, resource: &str, ns: &str) -> anyhow::Result<Vec<Value>> {
        if let Some(list) = self.kinds.get(&(group, resource)) {
            return Ok(list(ns));
        }
        let version = if group.is_empty() {
            "v1".to_string()
        } else {
            kube::discovery::group(&self.client, group)
                .await?
                .preferred_version_or_latest()
                .to_string()
        };
        let gvk = GroupVersionKind::gvk(group, &version, "");
        let ar = ApiResource::from_gvk_with_plural(&gvk, resource);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let list = api.list_metadata(&ListParams::default()).await?;
        Ok(vec![Value::Null; list.items.len()])
    }

    /// The usage the quota's namespace holds of each resource it limits;
    /// resources it cannot count keep what they had.
    async fn count(&self, quota: &ResourceQuota) -> anyhow::Result<ResourceList> {
        let ns = quota.metadata.namespace.as_deref().unwrap_or("");
        let hard = hard_of(quota);
        let value = serde_json::to_value(quota)?;
        let scopes = q::scope_requirements(&value);
        let mut by_kind: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for name in hard.keys() {
            if let Some(kind) = kind_of(name) {
                by_kind.entry(kind).or_default().insert(name.clone());
            }
        }
        let mut used = quota
            .status
            .as_ref()
            .and_then(|s| s.used.as_ref())
            .map(to_list)
            .unwrap_or_default();
        let now = now();
        for ((group, resource), limited) in by_kind {
            if q::ignored(&group, &resource) {
                continue;
            }
            let objects = match self.objects(&group, &resource, ns).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(%group, %resource, error = %e, "cannot count");
                    continue;
                }
            };
            let counted = usage_of(&group, &resource, &objects, &scopes, &limited, now);
            used.extend(counted);
        }
        let names: BTreeSet<String> = hard.keys().cloned().collect();
        Ok(q::mask(&used, &names))
    }

    /// Recounts the quota `key`; false if it is gone.
    async fn sync(&self, key: &Key) -> anyhow::Result<bool> {
        let (ns, name) = key;
        let Some(quota) = self.quotas.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(false);
        };
        let hard = hard_of(&quota);
        let used = self.count(&quota).await?;
        let status = quota.status.clone().unwrap_or_default();
        let same = q::equals(
            &hard,
            &status.hard.as_ref().map(to_list).unwrap_or_default(),
        ) && q::equals(
            &used,
            &status.used.as_ref().map(to_list).unwrap_or_default(),
        );
        if same {
            return Ok(true);
        }
        let mut updated = (*quota).clone();
        let to_map = |l: &ResourceList| {
            l.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.to_string()),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        updated.status = Some(k8s_openapi::api::core::v1::ResourceQuotaStatus {
            hard: Some(to_map(&hard)),
            used: Some(to_map(&used)),
        });
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        // The cached resourceVersion is the precondition: a quota changed
        // meanwhile (an admission charge) is counted again.
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if crate::util::not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_lead_to_their_kinds() {
        let kind = |n| kind_of(n).map(|(g, r)| format!("{g}/{r}"));
        assert_eq!(kind("requests.cpu").as_deref(), Some("/pods"));
        assert_eq!(kind("pods").as_deref(), Some("/pods"));
        assert_eq!(kind("services.nodeports").as_deref(), Some("/services"));
        assert_eq!(
            kind("gold.storageclass.storage.k8s.io/requests.storage").as_deref(),
            Some("/persistentvolumeclaims")
        );
        assert_eq!(
            kind("count/deployments.apps").as_deref(),
            Some("apps/deployments")
        );
        assert_eq!(kind("configmaps").as_deref(), Some("/configmaps"));
        assert_eq!(kind("unknown"), None);
    }

    #[test]
    fn usage_counts_objects_in_scope_and_zero_for_none() {
        let limited: BTreeSet<String> = ["pods".to_string(), "requests.cpu".to_string()].into();
        let pods = [
            json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "250m"}}}]}}),
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"status": {"phase": "Succeeded"}, "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}}),
        ];
        let all = usage_of("", "pods", &pods, &[], &limited, 0);
        assert_eq!(
            q::to_json(&all),
            json!({"pods": "2", "requests.cpu": "250m"})
        );
        let best = q::ScopeRequirement {
            scope_name: "BestEffort".into(),
            operator: "Exists".into(),
            values: vec![],
        };
        let be = usage_of("", "pods", &pods, &[best], &limited, 0);
        assert_eq!(q::to_json(&be), json!({"pods": "1", "requests.cpu": "0"}));
        let none = usage_of("", "pods", &[], &[], &limited, 0);
        assert_eq!(q::to_json(&none), json!({"pods": "0", "requests.cpu": "0"}));
    }
}
