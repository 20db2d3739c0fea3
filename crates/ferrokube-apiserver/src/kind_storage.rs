//! What some kinds' storage does beside the generic REST storage, as
//! Kubernetes gives them their own REST storage (`pkg/registry/core/
//! {service,namespace,event}/storage`): a Service's cluster IP and node
//! ports are allocated, kept and released with it ([`crate::services`]);
//! a namespace waits for the finalizers of its spec and is `Terminating`
//! while it does; Events are written with a lease, so they expire; a
//! CustomResourceDefinition waits for its objects to go (the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer, `Terminating`
//! from the delete on, as Kubernetes' CRD storage). (A
//! Pod's binding and eviction are subresources of their own:
//! [`crate::binding`], [`crate::eviction`].)
//!
//! The generic path (`crate::rest`) asks [`KindStorage::of`] once and calls
//! the hooks here, so it never names a kind.

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use crate::options::WriteOptions;
use crate::rest::{ApiResult, Rest};
use crate::services::{Reallocation, Reserved};

/// The storage of a resource, where it is not only the generic one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindStorage {
    /// Nothing beside the generic storage.
    Generic,
    /// Services: their allocated addresses and ports.
    Services,
    /// Namespaces: their spec's finalizers and the `Terminating` phase.
    Namespaces,
    /// Events (both groups): written with a lease.
    Events,
    /// CustomResourceDefinitions: deleted after their objects.
    Crds,
}

/// The finalizer of a namespace's spec through which the namespace
/// controller empties it; a deletion waits for it, but it is never written
/// to the metadata.
const NAMESPACE_FINALIZER: &str = "kubernetes";

impl KindStorage {
    /// The storage of `def`'s resource.
    pub(crate) fn of(def: &ResourceDef) -> KindStorage {
        match (def.group, def.plural) {
            ("", "services") => KindStorage::Services,
            ("", "namespaces") => KindStorage::Namespaces,
            ("" | "events.k8s.io", "events") => KindStorage::Events,
            (group, plural) if crate::crd::is_crd(group, plural) => KindStorage::Crds,
            _ => KindStorage::Generic,
        }
    }

    /// Whether objects are written with a lease that ends their life.
    pub(crate) fn leased(self) -> bool {
        self == KindStorage::Events
    }

    /// The finalizers beside the metadata's a delete of `obj` waits for: a
    /// namespace's spec finalizers stand for `kubernetes`.
    pub(crate) fn spec_finalizers(self, obj: &Value) -> Option<String> {
        (self == KindStorage::Namespaces && has_spec_finalizers(obj))
            .then(|| NAMESPACE_FINALIZER.to_string())
    }

    /// The finalizer every delete of the kind adds to the metadata (a CRD's
    /// cleanup finalizer).
    pub(crate) fn deletion_finalizer(self) -> Option<&'static str> {
        (self == KindStorage::Crds).then_some(crate::crd::CLEANUP_FINALIZER)
    }

    /// Whether a finalizer is the kind's own (never written to metadata).
    pub(crate) fn is_spec_finalizer(self, finalizer: &str) -> bool {
        self == KindStorage::Namespaces && finalizer == NAMESPACE_FINALIZER
    }

    /// Whether a delete of an object already being deleted marks it again
    /// (a namespace: its phase).
    pub(crate) fn marks_again(self) -> bool {
        self == KindStorage::Namespaces
    }

    /// What marking `obj` as being deleted does beside the metadata: a
    /// namespace becomes `Terminating`, and so does a CRD (its condition).
    pub(crate) fn mark_deleting(self, obj: &mut Value) {
        match self {
            KindStorage::Namespaces => obj["status"] = json!({"phase": "Terminating"}),
            KindStorage::Crds => crate::crd::mark_terminating(obj),
            _ => {}
        }
    }

    /// Whether `obj`, being deleted with no metadata finalizers left, is
    /// still held (a namespace, by the finalizers of its spec).
    pub(crate) fn holds_deletion(self, obj: &Value) -> bool {
        self == KindStorage::Namespaces && has_spec_finalizers(obj)
    }
}

/// Whether a namespace's spec lists finalizers.
fn has_spec_finalizers(obj: &Value) -> bool {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

impl Rest {
    /// What a new object's storage reserves before it is written (a
    /// Service's cluster IP and node ports), released by the caller if the
    /// write fails.
    pub(crate) async fn reserve_for_create(
        &self,
        storage: KindStorage,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: &mut Value,
    ) -> ApiResult<Vec<Reserved>> {
        match storage {
            KindStorage::Services => self.allocate_service(def, ns, name, obj).await,
            _ => Ok(Vec::new()),
        }
    }

    /// What an update of the object itself reserves and gives up (a
    /// Service's addresses and ports as its type changes).
    #[allow(clippy::too_many_arguments, reason = "the update's parts")]
    pub(crate) async fn reserve_for_update(
        &self,
        storage: KindStorage,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: &Value,
        new: &mut Value,
        dry_run: bool,
    ) -> ApiResult<Reallocation> {
        match storage {
            KindStorage::Services => {
                self.reallocate_service(def, ns, name, old, new, dry_run)
                    .await
            }
            _ => Ok(Reallocation::default()),
        }
    }

    /// What the storage gives up once `obj` is deleted (a Service's
    /// addresses and ports).
    pub(crate) async fn release_deleted(&self, storage: KindStorage, obj: &Value) {
        if storage == KindStorage::Services {
            self.release(crate::services::service_reservations(obj))
                .await;
        }
    }

    /// Makes sure the built-in namespaces exist.
    pub async fn ensure_namespaces(&self, names: &[&str]) -> anyhow::Result<()> {
        let def = self
            .kinds
            .get("", "v1", "namespaces")
            .ok_or_else(|| anyhow::anyhow!("no namespaces resource"))?;
        for name in names {
            let obj = json!({"apiVersion": "v1", "kind": def.kind, "metadata": {"name": name}});
            match self.create(&def, "", obj, &WriteOptions::default()).await {
                Ok(_) => tracing::info!(namespace = name, "created namespace"),
                Err(e) if e.code == 409 => {}
                Err(e) => anyhow::bail!("creating namespace {name}: {e}"),
            }
        }
        Ok(())
    }
}
