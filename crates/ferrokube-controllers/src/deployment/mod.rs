//! The Deployment controller, after Kubernetes' `pkg/controller/deployment`:
//! each Deployment owns one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), rolls from the old ones to the new
//! one by its strategy (`rolling`, `recreate`), scales them proportionally
//! when its size changes mid-rollout (`sync`), and reports rollout progress
//! as conditions and status (`progress`). Rollback needs nothing special:
//! `kubectl rollout undo` writes an old template back, which matches an old
//! ReplicaSet, and that one becomes the new one with the next revision.

mod progress;
mod recreate;
mod rolling;
mod sync;
pub(crate) mod util;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::podutil::{self, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

const COMPONENT: &str = "deployment-controller";

/// The controller's name (kube-controller-manager's `--controllers`).
pub(crate) const NAME: &str = "deployment";

/// The Deployment controller.
pub(crate) struct DeploymentController {
    client: kube::Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    ctx: Context,
}

impl Reconciler for DeploymentController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.deployments);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync_deployment(key).await
    }
}

fn selector_of(d: &Deployment) -> Option<Selector> {
    Selector::from_label_selector(Some(&d.spec.as_ref()?.selector)).ok()
}

impl DeploymentController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let this = Arc::new(DeploymentController {
            client: ctx.client(&client),
            deployments: ctx.watch(informers),
            replicasets: ctx.watch(informers),
            pods: ctx.watch(informers),
            ctx,
        });
        informers.get::<Deployment>().queue_keys(&this);
        let me = this.clone();
        informers
            .get::<ReplicaSet>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(rs) => me.rs_changed(rs, false),
                Change::Deleted(rs) => me.rs_changed(rs, true),
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers.get::<Pod>().on_change(&this.ctx, move |c| {
            // Recreate waits for old pods to go: a pod going away wakes its
            // Deployment.
            if let Change::Deleted(p) = c {
                me.pod_deleted(p);
            }
        });
        this
    }

    fn rs_changed(&self, rs: &ReplicaSet, gone: bool) {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        match podutil::controller_ref(&rs.metadata) {
            Some(r) if r.kind == "Deployment" => self.ctx.add((ns, r.name.clone())),
            Some(_) => {}
            None if !gone => {
                for d in self.deployments.state() {
                    if d.metadata.namespace.as_deref() == Some(ns.as_str())
                        && selector_of(&d).is_some_and(|s| {
                            !s.is_empty() && s.matches(rs.metadata.labels.as_ref())
                        })
                    {
                        self.ctx.add(key_of(d.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    fn pod_deleted(&self, p: &Pod) {
        let Some(r) = podutil::controller_ref(&p.metadata) else {
            return;
        };
        if r.kind != "ReplicaSet" {
            return;
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        if let Some(rs) = self.replicasets.get(&ObjectRef::new(&r.name).within(&ns)) {
            if let Some(dr) = podutil::controller_ref(&rs.metadata) {
                if dr.kind == "Deployment" {
                    self.ctx.add((ns, dr.name.clone()));
                }
            }
        }
    }

    fn event(&self, d: &Deployment, type_: &str, reason: &str, message: String) {
        podutil::record_event(&self.client, COMPONENT, d, type_, reason, message);
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn d_api(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Kubernetes' syncDeployment.
    async fn sync_deployment(&self, key: &Key) -> anyhow::Result<Action> {
        let (ns, name) = key;
        let Some(cached) = self.deployments.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(Action::await_change());
        };
        let mut d: Deployment = (*cached).clone();
        let selector = selector_of(&d);
        let Some(selector) = selector.filter(|s| !s.is_empty()) else {
            self.event(
                &d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let st = d.status.clone().unwrap_or_default();
            if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                let mut st = st;
                st.observed_generation = d.metadata.generation;
                d.status = Some(st);
                self.write_status(&mut d).await?;
            }
            return Ok(Action::await_change());
        };
        let mut rss = self.claim_replicasets(&d, &selector).await?;

        if d.metadata.deletion_timestamp.is_some() {
            return self
                .sync_status_only(&mut d, &mut rss)
                .await
                .map(|()| Action::await_change());
        }
        self.check_paused_conditions(&mut d).await?;
        if util::paused(&d) {
            return self
                .sync(&mut d, &mut rss)
                .await
                .map(|()| Action::await_change());
        }
        if self.is_scaling_event(&mut d, &mut rss).await? {
            return self
                .sync(&mut d, &mut rss)
                .await
                .map(|()| Action::await_change());
        }
        let requeue = if util::is_recreate(&d) {
            self.rollout_recreate(&mut d, &mut rss, &selector).await?
        } else {
            self.rollout_rolling(&mut d, &mut rss).await?
        };
        Ok(requeue.into())
    }

    /// The replica sets this Deployment owns, adopting matching orphans and
    /// releasing owned ones that no longer match.
    async fn claim_replicasets(
        &self,
        d: &Deployment,
        selector: &Selector,
    ) -> anyhow::Result<Vec<ReplicaSet>> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let api = self.rs_api(&ns);
        let mut out = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for rs in self.replicasets.state() {
            if rs.metadata.namespace.as_deref() != Some(ns.as_str()) {
                continue;
            }
            let matches = selector.matches(rs.metadata.labels.as_ref());
            let name = rs.metadata.name.clone().unwrap_or_default();
            match podutil::controller_ref(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        out.push((*rs).clone());
                    } else {
                        let refs: Vec<_> = rs
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .filter(|r| r.uid != uid)
                            .cloned()
                            .collect();
                        let refs = if refs.is_empty() {
                            Value::Null
                        } else {
                            json!(refs)
                        };
                        let patch = json!({"metadata": {"ownerReferences": refs,
                            "resourceVersion": rs.metadata.resource_version}});
                        if let Err(e) = api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            tracing::debug!(rs = %name, error = %e, "releasing");
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if !matches || deleting || rs.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    if can_adopt.is_none() {
                        let fresh = self
                            .d_api(&ns)
                            .get(d.metadata.name.as_deref().unwrap_or(""))
                            .await;
                        can_adopt = Some(fresh.is_ok_and(|f| {
                            f.metadata.uid == d.metadata.uid
                                && f.metadata.deletion_timestamp.is_none()
                        }));
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(podutil::owner_ref_to(d));
                    let patch = json!({"metadata": {"ownerReferences": refs,
                        "resourceVersion": rs.metadata.resource_version}});
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(adopted) => out.push(adopted),
                        Err(e) => tracing::debug!(rs = %name, error = %e, "adopting"),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes `d.status` through the status subresource; `d` becomes what
    /// the server answered.
    async fn write_status(&self, d: &mut Deployment) -> anyhow::Result<()> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let updated = self
            .d_api(&ns)
            .replace_status(&name, &Default::default(), &*d)
            .await?;
        *d = updated;
        Ok(())
    }

    /// Sets the Deployment's revision annotation through the status
    /// subresource, as Kubernetes' controller does: a Deployment's status
    /// writes may change its annotations, and leave its generation alone
    /// (a write of the Deployment itself would bump it).
    async fn write_revision(&self, d: &mut Deployment, revision: i64) -> anyhow::Result<()> {
        let rev = revision.to_string();
        if d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION))
            == Some(&rev)
        {
            return Ok(());
        }
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {util::REVISION: rev},
            "resourceVersion": d.metadata.resource_version}});
        let updated = self
            .d_api(&ns)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        // Keep the status being worked on; take the new metadata.
        d.metadata = updated.metadata;
        Ok(())
    }
}
