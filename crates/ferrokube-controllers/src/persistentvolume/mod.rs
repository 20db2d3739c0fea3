//! The PersistentVolume controller, as Kubernetes' `persistentvolume-binder`
//! (`pv_controller.go`) runs it: it binds claims to volumes and keeps both
//! sides' phases.
//!
//! A pass looks at every claim, then every volume, from the informers'
//! caches; every write carries the resourceVersion it was computed from, so
//! a stale cache costs a conflict and a later pass, never a wrong binding.
//!
//! - An unbound claim gets the smallest Available volume that fits it
//!   ([`ferrokube_client::volumes`]); the volume's `claimRef` is written first (with
//!   `pv.kubernetes.io/bound-by-controller` when the controller chose it),
//!   then the claim's `volumeName` with `pv.kubernetes.io/bind-completed`,
//!   then both statuses Bound (the claim's with the volume's capacity and
//!   access modes). A claim naming its volume is bound to it if the volume
//!   satisfies it, else it waits with a `VolumeMismatch` event.
//! - With no volume, a claim of a class whose binding waits for a first
//!   consumer (WaitForFirstConsumer) waits until the scheduler picks a node
//!   (`volume.kubernetes.io/selected-node`); a claim of a class with a
//!   provisioner is annotated `volume.kubernetes.io/storage-provisioner`
//!   and, for this cluster's own local-path provisioner ([`localpath`]),
//!   gets a volume made for it; a claim with no class waits
//!   (`FailedBinding`).
//! - An unbound claim naming no class at all gets the default class once
//!   one exists (retroactive default StorageClass assignment).
//! - A bound claim whose volume is gone, or bound elsewhere, is Lost.
//! - A volume without a claim is Available; one whose claim is gone is
//!   Released and then reclaimed: Retain keeps it; Delete of a volume this
//!   cluster provisioned is done by the node agent of the volume's node
//!   (which alone can remove the directory); Delete of any other volume
//!   fails (no plugin here can delete it), as do Recycle requests.

pub mod localpath;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use tokio_util::sync::CancellationToken;

use ferrokube_client::volumes as index;

use crate::controller::{self, Action, Context, Reconciler};
use crate::podutil::record_event;
use crate::util;
use crate::watchqueue::{Informers, Key};

/// The controller's name (Kubernetes' `persistentvolume-binder`).
pub const NAME: &str = "persistentvolume-binder";
/// Who its Events are from.
pub const COMPONENT: &str = "persistentvolume-controller";

/// On a claim: the binder finished binding it (Kubernetes' annotation).
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a claim or volume: the binder, not the user, made the binding.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a volume: the provisioner that made it.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// On a claim: the provisioner asked to make its volume.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// On a claim: the beta spelling of [`ANN_STORAGE_PROVISIONER`], also set.
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a claim: the node the scheduler picked for a `WaitForFirstConsumer`
/// volume.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// How often a whole pass runs without a change to wake it (Kubernetes'
/// `--pvclaimbinder-sync-period` is 15 s).
const RESYNC: Duration = Duration::from_secs(15);

/// What the controller needs beyond the API.
#[derive(Clone, Debug, Default)]
pub struct PvConfig {
    /// Where the local-path provisioner puts volumes on every node (`None`:
    /// the provisioner is off).
    pub local_path: Option<PathBuf>,
}

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    config: PvConfig,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let mut ctx = Context::new(NAME, cancel);
    let c = Arc::new(Controller {
        client: ctx.client(&client),
        config,
        claims: informers.get().pass_on_change(&mut ctx),
        volumes: informers.get().pass_on_change(&mut ctx),
        classes: informers.get().pass_on_change(&mut ctx),
        pods: informers.get().store(),
        events: Mutex::default(),
        ctx,
    });
    controller::run(c, 1)
}

/// The controller: a pass over claims and volumes on each change of
/// claims, volumes or classes.
pub(crate) struct Controller {
    ctx: Context,
    client: Client,
    config: PvConfig,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    pods: Store<Pod>,
    /// The last Event given each object (by uid), so a waiting claim says
    /// why once, not every pass.
    events: Mutex<HashMap<String, (String, String)>>,
}

impl Reconciler for Controller {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        self.pass().await;
        Ok(Action::requeue(RESYNC))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

fn has_annotation<K: Resource>(o: &K, key: &str) -> bool {
    o.meta()
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

fn annotation<'a, K: Resource>(o: &'a K, key: &str) -> Option<&'a str> {
    o.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn set_annotation<K: Resource>(o: &mut K, key: &str, value: &str) {
    o.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

fn name_of<K: Resource>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

fn claim_key(c: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        c.metadata.namespace.as_deref().unwrap_or_default(),
        name_of(c)
    )
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_volume_name(c: &PersistentVolumeClaim) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

fn claim_ref(v: &PersistentVolume) -> Option<&ObjectReference> {
    v.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
}

impl Controller {
    fn event<K: Resource<DynamicType = ()>>(
        &self,
        o: &K,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let uid = o.meta().uid.clone().unwrap_or_default();
        let said = (reason.to_string(), message.clone());
        if let Ok(mut seen) = self.events.lock() {
            if seen.get(&uid) == Some(&said) {
                return;
            }
            seen.insert(uid, said);
        }
        record_event(&self.client, COMPONENT, o, type_, reason, message);
    }

    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes
            .state()
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }

    /// Whether the claim's class waits for a first consumer.
    fn delays_binding(&self, claim: &PersistentVolumeClaim) -> bool {
        let class = index::claim_class(claim);
        !class.is_empty()
            && self
                .class(&class)
                .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"))
    }

    /// One pass over every claim, then every volume.
    pub(crate) async fn pass(&self) {
        let volumes: Vec<Arc<PersistentVolume>> = self.volumes.state();
        let mut taken = HashSet::new();
        let mut seen_claims = HashSet::new();
        for claim in self.claims.state() {
            seen_claims.insert(claim.metadata.uid.clone().unwrap_or_default());
            if claim.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Err(e) = self.sync_claim(&claim, &volumes, &mut taken).await {
                tracing::debug!(claim = claim_key(&claim), error = %e, "syncing claim");
            }
        }
        for volume in &volumes {
            if let Err(e) = self.sync_volume(volume).await {
                tracing::debug!(volume = name_of(&**volume), error = %e, "syncing volume");
            }
        }
        // Forget what was said about objects that are gone.
        if let Ok(mut seen) = self.events.lock() {
            let live: HashSet<String> = volumes
                .iter()
                .filter_map(|v| v.metadata.uid.clone())
                .chain(seen_claims)
                .collect();
            seen.retain(|uid, _| live.contains(uid));
        }
    }

    async fn sync_claim(
        &self,
        claim: &PersistentVolumeClaim,
        volumes: &[Arc<PersistentVolume>],
        taken: &mut HashSet<String>,
    ) -> kube::Result<()> {
        if has_annotation(claim, ANN_BIND_COMPLETED) {
            return self.sync_bound_claim(claim, volumes).await;
        }
        let wanted = claim_volume_name(claim).to_string();
        if wanted.is_empty() && self.assign_default_class(claim).await? {
            // The claim's next version comes round again.
            return Ok(());
        }
        if wanted.is_empty() {
            let delay = self.delays_binding(claim);
            let found = index::find_best(claim, volumes.iter().map(|v| &**v), None, delay, &|n| {
                taken.contains(n)
            });
            match found {
                Some(volume) => {
                    taken.insert(name_of(volume));
                    self.bind(volume, claim).await
                }
                None if delay && !has_annotation(claim, ANN_SELECTED_NODE) => {
                    self.say_waiting_for_consumer(claim);
                    self.claim_pending(claim).await
                }
                None if !index::claim_class(claim).is_empty() => {
                    self.provision(claim, volumes).await?;
                    self.claim_pending(claim).await
                }
                None => {
                    self.event(
                        claim,
                        "Normal",
                        "FailedBinding",
                        "no persistent volumes available for this claim and no storage class is set"
                            .into(),
                    );
                    self.claim_pending(claim).await
                }
            }
        } else {
            // The claim names its volume.
            let Some(volume) = volumes
                .iter()
                .find(|v| v.metadata.name.as_deref() == Some(wanted.as_str()))
            else {
                return self.claim_pending(claim).await;
            };
            match claim_ref(volume) {
                None => {
                    if let Some(why) = index::unsatisfied(volume, claim) {
                        self.event(
                            claim,
                            "Warning",
                            "VolumeMismatch",
                            format!("Cannot bind to requested volume {wanted:?}: {why}"),
                        );
                        return self.claim_pending(claim).await;
                    }
                    taken.insert(wanted);
                    self.bind(volume, claim).await
                }
                Some(_) if index::is_bound_to(volume, claim) => self.bind(volume, claim).await,
                Some(_) => {
                    self.event(
                        claim,
                        "Warning",
                        "FailedBinding",
                        format!("volume {wanted:?} already bound to a different claim."),
                    );
                    self.claim_pending(claim).await
                }
            }
        }
    }

    /// Retroactive default class assignment (Kubernetes 1.28): an unbound
    /// claim that names no class at all (no `storageClassName`, not even
    /// `""`, nor the beta annotation) gets the default class once there is
    /// one, the newest if several. True if the claim was updated.
    async fn assign_default_class(&self, claim: &PersistentVolumeClaim) -> kube::Result<bool> {
        let names_class = claim
            .spec
            .as_ref()
            .is_some_and(|s| s.storage_class_name.is_some())
            || has_annotation(claim, index::BETA_CLASS_ANNOTATION);
        if names_class {
            return Ok(false);
        }
        let is_default = |c: &StorageClass| {
            [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|k| annotation(c, k) == Some("true"))
        };
        let mut defaults: Vec<Arc<StorageClass>> = self
            .classes
            .state()
            .into_iter()
            .filter(|c| is_default(c))
            .collect();
        defaults.sort_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b)
                .cmp(&created(a))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let Some(class) = defaults.first().and_then(|c| c.metadata.name.clone()) else {
            return Ok(false);
        };
        let mut updated = claim.clone();
        if let Some(spec) = updated.spec.as_mut() {
            spec.storage_class_name = Some(class);
        }
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
            .replace(&name_of(claim), &PostParams::default(), &updated)
            .await?;
        Ok(true)
    }

    /// `WaitForFirstConsumer`, or `WaitForPodScheduled` when pods using the
    /// claim exist but are not scheduled yet.
    fn say_waiting_for_consumer(&self, claim: &PersistentVolumeClaim) {
        let ns = claim.metadata.namespace.as_deref();
        let name = name_of(claim);
        let mut waiting: Vec<String> = self
            .pods
            .state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == ns)
            .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_none()))
            .filter(|p| {
                p.spec
                    .iter()
                    .flat_map(|s| s.volumes.iter().flatten())
                    .any(|v| {
                        v.persistent_volume_claim
                            .as_ref()
                            .is_some_and(|c| c.claim_name == name)
                    })
            })
            .map(|p| name_of(&**p))
            .collect();
        waiting.sort();
        let (reason, message) = match waiting.len() {
            0 => (
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".to_string(),
            ),
            1 => (
                "WaitForPodScheduled",
                format!("waiting for pod {} to be scheduled", waiting[0]),
            ),
            _ => (
                "WaitForPodScheduled",
                format!("waiting for pods {} to be scheduled", waiting.join(",")),
            ),
        };
        self.event(claim, "Normal", reason, message);
    }

    /// Dynamic provisioning of a claim with a class and no volume.
    async fn provision(
        &self,
        claim: &PersistentVolumeClaim,
        volumes: &[Arc<PersistentVolume>],
    ) -> kube::Result<()> {
        let class_name = index::claim_class(claim);
        let Some(class) = self.class(&class_name) else {
            self.event(
                claim,
                "Warning",
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io {class_name:?} not found"),
            );
            return Ok(());
        };
        let provisioner = class.provisioner.clone();
        if provisioner == "kubernetes.io/no-provisioner" {
            // Static volumes only: wait for one.
            self.event(
                claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".into(),
            );
            return Ok(());
        }
        if annotation(claim, ANN_STORAGE_PROVISIONER) != Some(provisioner.as_str()) {
            let mut annotated = claim.clone();
            set_annotation(&mut annotated, ANN_STORAGE_PROVISIONER, &provisioner);
            set_annotation(&mut annotated, ANN_BETA_STORAGE_PROVISIONER, &provisioner);
            let ns = claim.metadata.namespace.clone().unwrap_or_default();
            Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
                .replace(&name_of(claim), &PostParams::default(), &annotated)
                .await?;
            // The claim's next version comes round again.
            return Ok(());
        }
        match &self.config.local_path {
            Some(base) if provisioner == localpath::PROVISIONER => {
                localpath::provision(self, claim, &class, base, volumes).await
            }
            _ => {
                self.event(
                    claim,
                    "Normal",
                    "ExternalProvisioning",
                    format!(
                        "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
                    ),
                );
                Ok(())
            }
        }
    }

    /// Binds `volume` to `claim` (each write only where still needed): the
    /// volume's claimRef, its phase, the claim's volumeName and
    /// annotations, its status.
    async fn bind(
        &self,
        volume: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> kube::Result<()> {
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let vname = name_of(volume);

        // 1. The volume points at the claim (its uid too).
        let mut volume = volume.clone();
        let want_ref = claim_reference(claim);
        let current = claim_ref(&volume);
        if current.map(|r| (&r.uid, &r.name, &r.namespace))
            != Some((&want_ref.uid, &want_ref.name, &want_ref.namespace))
        {
            if current.is_none() {
                set_annotation(&mut volume, ANN_BOUND_BY_CONTROLLER, "yes");
            }
            if let Some(spec) = volume.spec.as_mut() {
                spec.claim_ref = Some(want_ref);
            }
            volume = volumes
                .replace(&vname, &PostParams::default(), &volume)
                .await?;
        }
        // 2. The volume is Bound.
        if volume_phase(&volume) != "Bound" {
            volume = self.set_volume_phase(&volume, "Bound", None).await?;
        }
        let _ = volume;
        // 3. The claim names the volume and says binding is done.
        let mut claim = claim.clone();
        if claim_volume_name(&claim) != vname || !has_annotation(&claim, ANN_BIND_COMPLETED) {
            if claim_volume_name(&claim).is_empty() {
                set_annotation(&mut claim, ANN_BOUND_BY_CONTROLLER, "yes");
            }
            set_annotation(&mut claim, ANN_BIND_COMPLETED, "yes");
            if let Some(spec) = claim.spec.as_mut() {
                spec.volume_name = Some(vname.clone());
            }
            claim = claims
                .replace(&name_of(&claim), &PostParams::default(), &claim)
                .await?;
        }
        // 4. The claim is Bound, with the volume's capacity and modes.
        self.claim_bound_status(&claim, &vname).await
    }

    async fn claim_bound_status(
        &self,
        claim: &PersistentVolumeClaim,
        vname: &str,
    ) -> kube::Result<()> {
        let Some(volume) = self
            .volumes
            .state()
            .into_iter()
            .find(|v| v.metadata.name.as_deref() == Some(vname))
        else {
            return Ok(());
        };
        let spec = volume.spec.clone().unwrap_or_default();
        let status = claim.status.clone().unwrap_or_default();
        let want = PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            access_modes: spec.access_modes.clone(),
            capacity: spec.capacity.clone(),
            ..status.clone()
        };
        if want == status {
            return Ok(());
        }
        let mut claim = claim.clone();
        claim.status = Some(want);
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
            .replace_status(&name_of(&claim), &PostParams::default(), &claim)
            .await?;
        Ok(())
    }

    async fn claim_pending(&self, claim: &PersistentVolumeClaim) -> kube::Result<()> {
        self.set_claim_phase(claim, "Pending").await
    }

    async fn set_claim_phase(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
    ) -> kube::Result<()> {
        if claim_phase(claim) == phase {
            return Ok(());
        }
        let mut claim = claim.clone();
        claim.status.get_or_insert_with(Default::default).phase = Some(phase.into());
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
            .replace_status(&name_of(&claim), &PostParams::default(), &claim)
            .await?;
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        volume: &PersistentVolume,
        phase: &str,
        message: Option<String>,
    ) -> kube::Result<PersistentVolume> {
        let mut volume = volume.clone();
        let status = volume
            .status
            .get_or_insert_with(PersistentVolumeStatus::default);
        status.phase = Some(phase.into());
        status.message = message;
        status.last_phase_transition_time = Some(util::now());
        Api::<PersistentVolume>::all(self.client.clone())
            .replace_status(&name_of(&volume), &PostParams::default(), &volume)
            .await
    }

    /// A claim whose binding completed: it stays Bound while its volume
    /// points back at it, else it is Lost.
    async fn sync_bound_claim(
        &self,
        claim: &PersistentVolumeClaim,
        volumes: &[Arc<PersistentVolume>],
    ) -> kube::Result<()> {
        let vname = claim_volume_name(claim);
        if vname.is_empty() {
            if claim_phase(claim) != "Lost" {
                self.event(
                    claim,
                    "Warning",
                    "ClaimLost",
                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
                        .into(),
                );
            }
            return self.set_claim_phase(claim, "Lost").await;
        }
        let Some(volume) = volumes
            .iter()
            .find(|v| v.metadata.name.as_deref() == Some(vname))
        else {
            // Not in the cache: ask, as a volume made a moment ago may not
            // be there yet.
            let api: Api<PersistentVolume> = Api::all(self.client.clone());
            if api.get_opt(vname).await?.is_some() {
                return Ok(());
            }
            if claim_phase(claim) != "Lost" {
                self.event(
                    claim,
                    "Warning",
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into(),
                );
            }
            return self.set_claim_phase(claim, "Lost").await;
        };
        match claim_ref(volume) {
            None => self.bind(volume, claim).await,
            Some(_) if index::is_bound_to(volume, claim) => self.bind(volume, claim).await,
            Some(_) => {
                if claim_phase(claim) != "Lost" {
                    self.event(
                        claim,
                        "Warning",
                        "ClaimMisbound",
                        "Two claims are bound to the same volume, this one is bound incorrectly"
                            .into(),
                    );
                }
                self.set_claim_phase(claim, "Lost").await
            }
        }
    }

    async fn sync_volume(&self, volume: &PersistentVolume) -> kube::Result<()> {
        let Some(r) = claim_ref(volume) else {
            if volume_phase(volume) != "Available" {
                self.set_volume_phase(volume, "Available", None).await?;
            }
            return Ok(());
        };
        if r.uid.as_deref().unwrap_or("").is_empty() {
            // Pre-bound by a user to a claim that is not bound yet.
            if volume_phase(volume) != "Available" {
                self.set_volume_phase(volume, "Available", None).await?;
            }
            return Ok(());
        }
        let ns = r.namespace.clone().unwrap_or_default();
        let cname = r.name.clone().unwrap_or_default();
        let mut claim = self
            .claims
            .state()
            .into_iter()
            .find(|c| {
                c.metadata.namespace.as_deref() == Some(ns.as_str())
                    && c.metadata.name.as_deref() == Some(cname.as_str())
            })
            .map(|c| (*c).clone());
        if claim.is_none() {
            // The cache may lag a claim made a moment ago: ask.
            claim = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
                .get_opt(&cname)
                .await?;
        }
        let claim = claim.filter(|c| c.metadata.uid == r.uid);
        match claim {
            None => self.release(volume).await,
            Some(c) if claim_volume_name(&c).is_empty() => {
                // The claim is being bound to this volume: its sync finishes.
                Ok(())
            }
            Some(c) if claim_volume_name(&c) == name_of(volume) => {
                if volume_phase(volume) != "Bound" {
                    self.set_volume_phase(volume, "Bound", None).await?;
                }
                Ok(())
            }
            Some(_) => {
                // The claim went to another volume.
                if has_annotation(volume, ANN_BOUND_BY_CONTROLLER) {
                    let mut v = volume.clone();
                    if let Some(a) = v.metadata.annotations.as_mut() {
                        a.remove(ANN_BOUND_BY_CONTROLLER);
                    }
                    if let Some(spec) = v.spec.as_mut() {
                        spec.claim_ref = None;
                    }
                    let v = Api::<PersistentVolume>::all(self.client.clone())
                        .replace(&name_of(volume), &PostParams::default(), &v)
                        .await?;
                    self.set_volume_phase(&v, "Available", None).await?;
                }
                Ok(())
            }
        }
    }

    /// The volume's claim is gone: Released, then its reclaim policy.
    async fn release(&self, volume: &PersistentVolume) -> kube::Result<()> {
        let mut volume = volume.clone();
        let phase = volume_phase(&volume).to_string();
        if phase != "Released" && phase != "Failed" {
            volume = self.set_volume_phase(&volume, "Released", None).await?;
        }
        if phase == "Failed" {
            return Ok(());
        }
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.clone())
            .unwrap_or_else(|| "Retain".into());
        let vname = name_of(&volume);
        match policy.as_str() {
            "Retain" => Ok(()),
            "Delete" => {
                if has_annotation(&volume, ANN_PROVISIONED_BY) {
                    // Its provisioner deletes it (ours: the node agent of its
                    // node; see localpath).
                    return Ok(());
                }
                let message = format!(
                    "error getting deleter volume plugin for volume {vname:?}: no deletable volume plugin matched"
                );
                self.event(&volume, "Warning", "VolumeFailedDelete", message.clone());
                self.set_volume_phase(&volume, "Failed", Some(message))
                    .await?;
                Ok(())
            }
            _ => {
                let message = "No recycler plugin found for the volume!".to_string();
                self.event(&volume, "Warning", "VolumeFailedRecycle", message.clone());
                self.set_volume_phase(&volume, "Failed", Some(message))
                    .await?;
                Ok(())
            }
        }
    }
}

/// The claimRef a volume bound to `claim` carries.
pub fn claim_reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..Default::default()
    }
}
