//! The kinds served beside the workloads, each with Kubernetes' own rules:
//! `networking.k8s.io` (NetworkPolicy, Ingress, IngressClass and the
//! DefaultIngressClass admission), `node.k8s.io` RuntimeClass (and its pod
//! admission), `flowcontrol.apiserver.k8s.io` (FlowSchema,
//! PriorityLevelConfiguration, the mandatory objects made at start),
//! `policy` PodDisruptionBudget, `certificates.k8s.io` CertificateSigningRequest (the requester recorded on
//! create, `/approval` and `/status`), PodTemplate, and `storage.k8s.io`
//! (StorageClass, CSIDriver, CSINode, VolumeAttachment, CSIStorageCapacity,
//! and the DefaultStorageClass admission of claims).
//!
//! Their defaults, validation and update rules are called by their
//! registry strategies (`crate::strategy`); the REST handlers call in here
//! only for the admission these modules hold ([`admit_create`]).

pub(crate) mod admissionregistration;
pub(crate) mod batch;
pub(crate) mod certificates;
pub(crate) mod flowcontrol;
pub(crate) mod meta;
pub(crate) mod networking;
pub(crate) mod node;
pub(crate) mod policy;
pub(crate) mod scheduling;
pub(crate) mod storage;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use serde_json::Value;

use crate::rest::Rest;

pub(crate) use flowcontrol::mandatory_objects;

/// The admission of new objects these modules hold, as Kubernetes'
/// plugins of the same names: RuntimeClass for pods, DefaultIngressClass
/// for Ingresses, DefaultStorageClass for claims.
pub(crate) async fn admit_create(
    rest: &Rest,
    def: &ResourceDef,
    ns: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    match (def.group, def.kind) {
        ("", "Pod") => node::admit_pod(rest, obj).await?,
        ("networking.k8s.io", "Ingress") => networking::admit_ingress(rest, ns, obj).await?,
        ("", "PersistentVolumeClaim") => storage::admit_claim(rest, obj).await?,
        _ => {}
    }
    Ok(())
}
