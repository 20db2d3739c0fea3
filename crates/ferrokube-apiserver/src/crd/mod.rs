//! CustomResourceDefinitions, as Kubernetes' apiextensions-apiserver serves
//! them (in the same process as the API server, as Kubernetes does):
//!
//! - the `apiextensions.k8s.io/v1` kind itself: its defaults
//!   (`defaults`), its validation with Kubernetes' messages
//!   (`validation`), and its strategy, the status split and the stored
//!   versions (`strategy`);
//! - the controllers Kubernetes runs for CRDs, here background tasks of the
//!   API server over its watch cache (`controller`): names
//!   (`naming`: `status.acceptedNames` and the `NamesAccepted`
//!   condition), `Established`, and deletion (the
//!   `customresourcecleanup.apiextensions.k8s.io` finalizer: the custom
//!   objects are deleted first);
//! - serving the custom resources: each served version becomes a row of the
//!   runtime registry (`serve`) with a [`CustomResourceStrategy`]
//!   (`resource`: pruning, defaulting, schema and CEL validation, the
//!   status split, generation, printer columns, `/scale`, selectable
//!   fields), and the conversion between versions (`conversion`: `None`
//!   or a webhook; reads in the version asked, writes in the storage
//!   version).
//!
//! What a schema does to an object (structural checks, pruning, defaults,
//! validation, CEL) is the `ferrokube-schema` crate's, behind `schema`.

pub(crate) mod conditions;
pub(crate) mod controller;
pub(crate) mod conversion;
pub(crate) mod defaults;
pub(crate) mod naming;
pub(crate) mod resource;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod spec;
pub(crate) mod strategy;
pub(crate) mod validation;

pub(crate) use strategy::CrdStrategy;

/// The group of CustomResourceDefinitions.
pub(crate) const GROUP: &str = "apiextensions.k8s.io";

/// The finalizer that holds a deleted CRD until its objects are gone.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Whether `(group, plural)` is the CRD resource.
pub(crate) fn is_crd(group: &str, plural: &str) -> bool {
    group == GROUP && plural == "customresourcedefinitions"
}

/// Marks a CRD being deleted (Kubernetes' CRD storage on delete): its
/// `Terminating` condition, until the controller deletes its objects.
pub(crate) fn mark_terminating(crd: &mut serde_json::Value) {
    let cond = conditions::Condition::new(
        "Terminating",
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    );
    conditions::set(crd, &cond, &conditions::now());
}
