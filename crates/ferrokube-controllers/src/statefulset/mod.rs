//! The StatefulSet controller, after Kubernetes' `pkg/controller/statefulset`:
//! each set owns pods with stable names `<set>-<ordinal>` (`identity`),
//! made and removed in order or all at once (`control`, which decides a
//! pass without touching the API), one claim per volumeClaimTemplate and
//! ordinal kept across the pod's restarts, whose owner references carry
//! the `persistentVolumeClaimRetentionPolicy` (`retention`), and a history
//! of pod templates in ControllerRevisions (`crate::history`): pods carry
//! the revision they were made from, and a RollingUpdate replaces those not
//! at the update revision from the highest ordinal down to the partition.
//! This module claims the pods and revisions, carries the plan out and
//! writes the status.

pub(crate) mod control;
pub(crate) mod identity;
pub(crate) mod retention;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Context, Reconciler};
use crate::history::{self, History};
use crate::podutil::{self, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};
use control::{Action, Inputs};

const COMPONENT: &str = "statefulset-controller";

/// The controller's name (kube-controller-manager's `--controllers`).
pub(crate) const NAME: &str = "statefulset";

/// The most actions of one group run at once (Kubernetes' MaxBatchSize).
const MAX_BATCH: usize = 500;

/// The StatefulSet controller.
pub(crate) struct StatefulSetController {
    client: kube::Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    history: History,
    ctx: Context,
}

impl Reconciler for StatefulSetController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.sets);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<controller::Action> {
        self.sync(key).await
    }
}

fn selector_of(set: &StatefulSet) -> Option<Selector> {
    let s = Selector::from_label_selector(Some(&set.spec.as_ref()?.selector)).ok()?;
    (!s.is_empty()).then_some(s)
}

/// What a revision of `set` holds: a patch that puts its pod template back
/// (Kubernetes stores `{"spec":{"template":{..., "$patch":"replace"}}}`).
pub(crate) fn revision_data(set: &StatefulSet) -> Value {
    let template = set
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut template = match template {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    template.insert("$patch".into(), json!("replace"));
    json!({"spec": {"template": template}})
}

/// `set` with the template `revision` holds (Kubernetes' ApplyRevision).
pub(crate) fn apply_revision(set: &StatefulSet, revision: &ControllerRevision) -> StatefulSet {
    let mut out = set.clone();
    let template = revision
        .data
        .as_ref()
        .and_then(|d| d.0.pointer("/spec/template"))
        .cloned()
        .map(|mut t| {
            if let Some(m) = t.as_object_mut() {
                m.remove("$patch");
            }
            t
        })
        .and_then(|t| serde_json::from_value::<PodTemplateSpec>(t).ok());
    if let (Some(t), Some(spec)) = (template, out.spec.as_mut()) {
        spec.template = t;
    }
    out
}

impl StatefulSetController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel);
        let sets: Store<StatefulSet> = ctx.watch(informers);
        let pods: Store<Pod> = ctx.watch(informers);
        let claims: Store<PersistentVolumeClaim> = ctx.watch(informers);
        let revisions: Store<ControllerRevision> = ctx.watch(informers);
        let client = ctx.client(&client);
        let this = Arc::new(StatefulSetController {
            history: History::new(client.clone()),
            client,
            sets,
            pods,
            claims,
            revisions,
            ctx,
        });
        informers.get::<StatefulSet>().queue_keys(&this);
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => me.pod_changed(p, false),
                Change::Deleted(p) => me.pod_changed(p, true),
                Change::Relisted => me.enqueue_all(),
            });
        // A claim going away may unblock a pod waiting for its stale claim
        // to be collected.
        let me = this.clone();
        informers
            .get::<PersistentVolumeClaim>()
            .on_change(&this.ctx, move |c| {
                if let Change::Deleted(pvc) = c {
                    me.claim_deleted(pvc);
                }
            });
        this
    }

    fn pod_changed(&self, p: &Pod, gone: bool) {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        match podutil::controller_ref(&p.metadata) {
            Some(r) if r.kind == "StatefulSet" && r.api_version.starts_with("apps/") => {
                self.ctx.add((ns, r.name.clone()))
            }
            Some(_) => {}
            None if !gone => {
                for s in self.sets.state() {
                    if s.metadata.namespace.as_deref() == Some(ns.as_str())
                        && identity::is_member(&s, p)
                        && selector_of(&s)
                            .is_some_and(|sel| sel.matches(p.metadata.labels.as_ref()))
                    {
                        self.ctx.add(key_of(s.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    fn claim_deleted(&self, pvc: &PersistentVolumeClaim) {
        let ns = pvc.metadata.namespace.as_deref();
        let name = pvc.metadata.name.as_deref().unwrap_or("");
        for s in self.sets.state() {
            if s.metadata.namespace.as_deref() != ns {
                continue;
            }
            let set_name = s.metadata.name.as_deref().unwrap_or("");
            let templates = s
                .spec
                .as_ref()
                .and_then(|sp| sp.volume_claim_templates.as_deref())
                .unwrap_or(&[]);
            if templates.iter().any(|t| {
                let prefix = format!("{}-{set_name}-", t.metadata.name.as_deref().unwrap_or(""));
                name.starts_with(&prefix)
            }) {
                self.ctx.add(key_of(s.as_ref()));
            }
        }
    }

    fn event(&self, set: &StatefulSet, type_: &str, reason: &str, message: String) {
        podutil::record_event(&self.client, COMPONENT, set, type_, reason, message);
    }

    /// Kubernetes' "<verb> Pod <pod> in StatefulSet <set> successful" (or
    /// "... failed error: ...") with reason Successful<Verb>/Failed<Verb>.
    fn pod_event(&self, set: &StatefulSet, verb: &str, pod: &str, err: Option<&str>) {
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        let title = title(verb);
        match err {
            None => self.event(
                set,
                "Normal",
                &format!("Successful{title}"),
                format!("{verb} Pod {pod} in StatefulSet {set_name} successful"),
            ),
            Some(e) => self.event(
                set,
                "Warning",
                &format!("Failed{title}"),
                format!("{verb} Pod {pod} in StatefulSet {set_name} failed error: {e}"),
            ),
        }
    }

    fn claim_event(&self, set: &StatefulSet, claim: &str, pod: &str, err: Option<&str>) {
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        match err {
            None => self.event(
                set,
                "Normal",
                "SuccessfulCreate",
                format!("create Claim {claim} Pod {pod} in StatefulSet {set_name} success"),
            ),
            Some(e) => self.event(
                set,
                "Warning",
                "FailedCreate",
                format!(
                    "create Claim {claim} for Pod {pod} in StatefulSet {set_name} failed error: {e}"
                ),
            ),
        }
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<controller::Action> {
        let (ns, name) = key;
        let Some(set) = self.sets.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(controller::Action::await_change());
        };
        let Some(selector) = selector_of(&set) else {
            tracing::debug!(%ns, %name, "statefulset without a usable selector");
            return Ok(controller::Action::await_change());
        };
        let in_ns: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .collect();
        let pods = crate::podclaim::claim_pods(&self.client, set.as_ref(), &selector, in_ns, |p| {
            identity::is_member(&set, p)
        })
        .await;

        let mut revisions = self
            .history
            .claim(&self.revisions, set.as_ref(), &selector)
            .await?;
        history::sort(&mut revisions);
        let (current, update, collision_count) = self.revisions_of(&set, &revisions).await?;
        let current_set = apply_revision(&set, &current);
        let update_set = apply_revision(&set, &update);
        let current_name = current.metadata.name.clone().unwrap_or_default();
        let update_name = update.metadata.name.clone().unwrap_or_default();

        let claims = self.claims.clone();
        let claim_ns = ns.clone();
        let claim = move |n: &str| claims.get(&ObjectRef::new(n).within(&claim_ns));
        let plan = control::plan(&Inputs {
            set: &set,
            current_set: &current_set,
            update_set: &update_set,
            current_revision: &current_name,
            update_revision: &update_name,
            collision_count,
            pods: &pods,
            claim: &claim,
            now: Timestamp::now(),
        });

        let mut result = Ok(());
        for group in &plan.groups {
            if let Err(e) = self.run_group(&set, &update_set, group).await {
                result = Err(e);
                break;
            }
        }
        self.write_status(&set, &plan.status).await?;

        // Keep the history within revisionHistoryLimit: the current and
        // update revisions and those of live pods stay.
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let live = |r: &ControllerRevision| {
            let n = r.metadata.name.as_deref().unwrap_or("");
            n == current_name
                || n == update_name
                || pods.iter().any(|p| identity::revision_of(p) == n)
        };
        history::truncate(&self.history, &revisions, live, limit).await?;

        result.map(|()| plan.requeue.into())
    }

    /// The current and update revisions and the collision count (Kubernetes'
    /// getStatefulSetRevisions): the update revision is the one equal to
    /// the set's template (renumbered to the newest if it is an older one
    /// come back), made if none is; the current one is the status's, or the
    /// update one at first.
    async fn revisions_of(
        &self,
        set: &StatefulSet,
        revisions: &[ControllerRevision],
    ) -> anyhow::Result<(ControllerRevision, ControllerRevision, i32)> {
        let mut collision_count = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let labels = set
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.as_ref());
        let mut candidate = history::new_revision(
            set,
            labels,
            revision_data(set),
            history::next_revision(revisions),
            Some(collision_count),
        );
        if let Some(a) = set.metadata.annotations.as_ref() {
            candidate
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(a.clone());
        }
        let equal = history::find_equal(revisions, &candidate);
        let update = match (equal.last(), revisions.last()) {
            (Some(eq), Some(last)) if history::equal_revision(last, eq) => last.clone(),
            (Some(eq), _) => self.history.update_revision(eq, candidate.revision).await?,
            (None, _) => {
                self.history
                    .create(set, &candidate, &mut collision_count)
                    .await?
            }
        };
        let current_name = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.as_deref())
            .unwrap_or("");
        let current = revisions
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(current_name))
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collision_count))
    }

    /// Runs one group: one at a time for a single action, in batches of 1,
    /// 2, 4, … (stopping at the first failed batch) for more.
    async fn run_group(
        &self,
        set: &StatefulSet,
        update_set: &StatefulSet,
        group: &[Action],
    ) -> anyhow::Result<()> {
        let mut done = 0;
        let mut batch = 1usize;
        while done < group.len() {
            let end = (done + batch).min(group.len());
            let results = futures::future::join_all(
                group[done..end]
                    .iter()
                    .map(|a| self.act(set, update_set, a)),
            )
            .await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
            done = end;
            batch = (batch * 2).min(MAX_BATCH);
        }
        Ok(())
    }

    async fn act(
        &self,
        set: &StatefulSet,
        update_set: &StatefulSet,
        a: &Action,
    ) -> anyhow::Result<()> {
        match a {
            Action::Create(pod) => self.create_pod(set, pod).await,
            Action::Delete(pod) => self.delete_pod(set, pod).await,
            Action::CreateClaims(pod) => {
                self.create_claims(set, pod).await?;
                self.fix_claims(set, pod).await
            }
            Action::Update(pod) => self.update_pod(update_set, pod).await,
            Action::FixClaims(pod) => self.fix_claims(update_set, pod).await,
        }
    }

    fn claim_api(&self, set: &StatefulSet) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn pod_api(&self, set: &StatefulSet) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn cached_claim(&self, set: &StatefulSet, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims
            .get(&ObjectRef::new(name).within(set.metadata.namespace.as_deref().unwrap_or("")))
    }

    /// Makes the pod's claims that are not there (Kubernetes'
    /// createPersistentVolumeClaims); a claim being deleted is an error.
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let api = self.claim_api(set);
        let pod_name = pod.metadata.name.as_deref().unwrap_or("");
        let mut errors = Vec::new();
        for (_, claim) in identity::claims_for(set, identity::ordinal(pod)) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            match self.cached_claim(set, &cname) {
                Some(c) if c.metadata.deletion_timestamp.is_some() => {
                    errors.push(format!("pvc {cname} is being deleted"));
                }
                Some(_) => {}
                None => match api.create(&PostParams::default(), &claim).await {
                    Ok(_) => self.claim_event(set, &cname, pod_name, None),
                    Err(e) if crate::util::conflict(&e) => {}
                    Err(e) => {
                        let msg = format!("failed to create PVC {cname}: {}", api_message(&e));
                        self.claim_event(set, &cname, pod_name, Some(&msg));
                        errors.push(msg);
                    }
                },
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(errors.join(", ")))
        }
    }

    async fn create_pod(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Err(e) = self.create_claims(set, pod).await {
            self.pod_event(set, "create", &name, Some(&e.to_string()));
            return Err(e);
        }
        match self.pod_api(set).create(&PostParams::default(), pod).await {
            Ok(created) => {
                if let Err(e) = self.fix_claims(set, &created).await {
                    self.pod_event(set, "update", &name, Some(&e.to_string()));
                    return Err(e);
                }
                self.pod_event(set, "create", &name, None);
                Ok(())
            }
            // The cache is behind: the pod's event will bring the set back.
            Err(e) if crate::util::conflict(&e) => Ok(()),
            Err(e) => {
                self.pod_event(set, "create", &name, Some(&api_message(&e)));
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match self
            .pod_api(set)
            .delete(&name, &crate::util::delete_uid(&uid, None))
            .await
        {
            Ok(_) => {
                self.pod_event(set, "delete", &name, None);
                Ok(())
            }
            Err(e) if crate::util::gone(&e) => Ok(()),
            Err(e) => {
                self.pod_event(set, "delete", &name, Some(&api_message(&e)));
                Err(e.into())
            }
        }
    }

    /// Gives the pod's claims the owner references the retention policy
    /// wants (Kubernetes' UpdatePodClaimForRetentionPolicy).
    async fn fix_claims(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let api = self.claim_api(set);
        for (_, claim) in identity::claims_for(set, identity::ordinal(pod)) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            let Some(have) = self.cached_claim(set, &cname) else {
                continue;
            };
            if retention::conflicting_controller(&have, set, pod) {
                self.event(
                    set,
                    "Warning",
                    "ConflictingController",
                    format!("PersistentVolumeClaim {cname} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"),
                );
            }
            if retention::up_to_date(&have, set, pod) {
                continue;
            }
            let refs = retention::wanted_refs(&have, set, pod);
            let refs = if refs.is_empty() {
                Value::Null
            } else {
                json!(refs)
            };
            let patch = json!({"metadata": {
                "ownerReferences": refs,
                "resourceVersion": have.metadata.resource_version,
            }});
            if let Err(e) = api
                .patch(&cname, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                return Err(anyhow::anyhow!(
                    "could not update claim {cname} for delete policy ownerRefs: {}",
                    api_message(&e)
                ));
            }
        }
        Ok(())
    }

    /// Gives the pod its identity labels and claims (Kubernetes'
    /// UpdateStatefulPod), retrying a conflict on a fresh read.
    async fn update_pod(&self, set: &StatefulSet, cached: &Pod) -> anyhow::Result<()> {
        let api = self.pod_api(set);
        let name = cached.metadata.name.clone().unwrap_or_default();
        let ord = identity::ordinal(cached);
        let mut pod = cached.clone();
        let mut attempted = false;
        let mut result: anyhow::Result<()> = Ok(());
        for attempt in 0..5 {
            let mut dirty = false;
            if !identity::identity_matches(set, &pod) {
                identity::update_identity(set, &mut pod, ord);
                dirty = true;
            }
            if !identity::storage_matches(set, &pod) {
                identity::update_storage(set, &mut pod, ord);
                dirty = true;
                if let Err(e) = self.create_claims(set, &pod).await {
                    self.pod_event(set, "update", &name, Some(&e.to_string()));
                    return Err(e);
                }
            }
            if let Err(e) = self.fix_claims(set, &pod).await {
                self.pod_event(set, "update", &name, Some(&e.to_string()));
                return Err(e);
            }
            if !dirty {
                break;
            }
            attempted = true;
            match api.replace(&name, &PostParams::default(), &pod).await {
                Ok(_) => {
                    result = Ok(());
                    break;
                }
                Err(e) if crate::util::conflict(&e) && attempt < 4 => {
                    pod = api.get(&name).await?;
                }
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if attempted {
            let err = result.as_ref().err().map(|e| e.to_string());
            self.pod_event(set, "update", &name, err.as_deref());
        }
        result
    }

    /// Writes the status when it differs from the stored one (Kubernetes'
    /// inconsistentStatus), through the status subresource.
    async fn write_status(&self, set: &StatefulSet, st: &StatefulSetStatus) -> anyhow::Result<()> {
        let old = set.status.clone().unwrap_or_default();
        let same = old.observed_generation.unwrap_or(0) >= st.observed_generation.unwrap_or(0)
            && old.replicas == st.replicas
            && old.ready_replicas.unwrap_or(0) == st.ready_replicas.unwrap_or(0)
            && old.current_replicas.unwrap_or(0) == st.current_replicas.unwrap_or(0)
            && old.updated_replicas.unwrap_or(0) == st.updated_replicas.unwrap_or(0)
            && old.available_replicas.unwrap_or(0) == st.available_replicas.unwrap_or(0)
            && old.current_revision == st.current_revision
            && old.update_revision == st.update_revision
            && old.collision_count.unwrap_or(0) == st.collision_count.unwrap_or(0);
        if same {
            return Ok(());
        }
        // Zero counts are left out, as Kubernetes' omitempty leaves them.
        let nz = |v: Option<i32>| match v.unwrap_or(0) {
            0 => Value::Null,
            n => json!(n),
        };
        let patch = json!({"status": {
            "observedGeneration": st.observed_generation,
            "replicas": st.replicas,
            "readyReplicas": nz(st.ready_replicas),
            "currentReplicas": nz(st.current_replicas),
            "updatedReplicas": nz(st.updated_replicas),
            "availableReplicas": st.available_replicas.unwrap_or(0),
            "currentRevision": st.current_revision,
            "updateRevision": st.update_revision,
            "collisionCount": st.collision_count,
        }});
        let api: Api<StatefulSet> = Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        );
        match api
            .patch_status(
                set.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::util::not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn title(verb: &str) -> String {
    let mut c = verb.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The API's message for an error (what Kubernetes' events quote).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
