//! The ClusterRole aggregation controller, as Kubernetes'
//! `pkg/controller/clusterroleaggregation`: a ClusterRole with an
//! `aggregationRule` gets as its rules the union of the rules of the
//! ClusterRoles its selectors match (each selector's matches taken in name
//! order, the role itself left out, a rule already there not added twice),
//! and keeps it as those roles change: any ClusterRole's change queues every
//! aggregated role again.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::podutil::{api_code, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The controller's name (metrics, `--controllers`).
pub const NAME: &str = "clusterrole-aggregation";

/// The rules `role` aggregates from `all` (`None`: it aggregates nothing).
pub fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Option<Vec<PolicyRule>> {
    let rule = role.aggregation_rule.as_ref()?;
    let me = role.metadata.name.as_deref().unwrap_or_default();
    let mut sorted: Vec<&Arc<ClusterRole>> = all.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for ls in rule.cluster_role_selectors.iter().flatten() {
        // A selector that cannot be read selects nothing.
        let Ok(selector) = Selector::from_label_selector(Some(ls)) else {
            continue;
        };
        for other in &sorted {
            if other.metadata.name.as_deref() == Some(me)
                || !selector.matches(other.metadata.labels.as_ref())
            {
                continue;
            }
            for r in other.rules.iter().flatten() {
                if !rules.contains(r) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Some(rules)
}

/// The controller.
pub struct ClusterRoleAggregationController {
    client: kube::Client,
    roles: Store<ClusterRole>,
    ctx: Context,
}

impl Reconciler for ClusterRoleAggregationController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        for r in self.roles.state() {
            if r.aggregation_rule.is_some() {
                self.ctx.add(key_of(r.as_ref()));
            }
        }
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await?;
        Ok(Action::await_change())
    }
}

impl ClusterRoleAggregationController {
    /// Sets the controller up over the shared ClusterRole informer.
    pub fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let roles: Store<ClusterRole> = ctx.watch(informers);
        let this = Arc::new(ClusterRoleAggregationController {
            client: ctx.client(&client),
            roles,
            ctx,
        });
        // Any role's change may change what an aggregated role collects.
        let me = this.clone();
        informers
            .get::<ClusterRole>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(_) | Change::Deleted(_) | Change::Relisted => me.enqueue_all(),
            });
        this
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<()> {
        let Some(role) = self.roles.get(&ObjectRef::new(&key.1)) else {
            return Ok(());
        };
        let Some(rules) = aggregated_rules(&role, &self.roles.state()) else {
            return Ok(());
        };
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(());
        }
        // Conditional on the version read, so a role changed meanwhile is
        // looked at again rather than overwritten.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": role.metadata.resource_version},
            "rules": rules,
        });
        let api: Api<ClusterRole> = Api::all(self.client.clone());
        match api
            .patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
