//! Storage object in-use protection, as Kubernetes' `pvc-protection` and
//! `pv-protection` controllers do it. The API server gives every new claim
//! the `kubernetes.io/pvc-protection` finalizer and every new volume
//! `kubernetes.io/pv-protection`; once one is being deleted, this controller
//! takes its finalizer off when nothing uses it any more: a claim when no
//! pod that has not ended names it, a volume when it is not bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

/// The controller's name.
pub const NAME: &str = "storage-object-in-use-protection";

/// The finalizer of claims.
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";

/// The finalizer of volumes.
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// How often a whole pass runs without a change to wake it.
const RESYNC: Duration = Duration::from_secs(30);

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    start_with(informers, client.clone(), client, cancel)
}

/// As [`start`], releasing claims with `claims_client` (Kubernetes'
/// pvc-protection-controller) and volumes with `volumes_client`
/// (pv-protection-controller).
pub fn start_with(
    informers: &mut Informers,
    claims_client: Client,
    volumes_client: Client,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
    let c = Arc::new(VolumeProtection {
        client: ctx.client(&claims_client),
        volumes_client: ctx.client(&volumes_client),
        claims: informers.get().pass_on_change(&mut ctx),
        volumes: informers.get().pass_on_change(&mut ctx),
        pods: informers.get().pass_on_change(&mut ctx),
        ctx,
    });
    controller::run(c, 1)
}

/// The controller: a pass over claims and volumes on each change.
struct VolumeProtection {
    ctx: Context,
    /// Releases claims.
    client: Client,
    /// Releases volumes.
    volumes_client: Client,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    pods: Store<Pod>,
}

impl Reconciler for VolumeProtection {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let pods = self.pods.state();
        for claim in self.claims.state() {
            if !releasable(&*claim, PVC_FINALIZER) {
                continue;
            }
            let ns = claim.metadata.namespace.as_deref().unwrap_or_default();
            let name = claim.metadata.name.as_deref().unwrap_or_default();
            if pods.iter().any(|p| uses_claim(p, ns, name)) {
                continue;
            }
            let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns);
            release(&api, &*claim, PVC_FINALIZER).await;
        }
        for volume in self.volumes.state() {
            let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            if bound || !releasable(&*volume, PV_FINALIZER) {
                continue;
            }
            release(
                &Api::all(self.volumes_client.clone()),
                &*volume,
                PV_FINALIZER,
            )
            .await;
        }
        Ok(Action::requeue(RESYNC))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

/// Whether `o` is being deleted and still carries `finalizer`.
fn releasable<K: Resource>(o: &K, finalizer: &str) -> bool {
    let meta = o.meta();
    meta.deletion_timestamp.is_some() && meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// Whether `pod`, in `ns` and not ended, names the claim `claim` (directly
/// or as its generic ephemeral volume's claim, `<pod>-<volume>`).
fn uses_claim(pod: &Pod, ns: &str, claim: &str) -> bool {
    if pod.metadata.namespace.as_deref() != Some(ns) {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
                || (v.ephemeral.is_some() && format!("{pod_name}-{}", v.name) == claim)
        })
}

/// Takes `finalizer` off `o`, if `o` is still as read (its resourceVersion).
async fn release<K>(api: &Api<K>, o: &K, finalizer: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = o.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    let left: Vec<&String> = meta
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let patch = json!({"metadata": {"finalizers": left,
        "resourceVersion": meta.resource_version}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => tracing::debug!(name, finalizer, "released"),
        Err(e) if util::gone(&e) => {}
        Err(e) => tracing::debug!(name, error = %e, "releasing {finalizer}"),
    }
}
