//! Registry strategies: everything one kind does differently on the way
//! into and out of storage, in the manner of Kubernetes' registry
//! strategies (`pkg/registry/*/strategy.go`): field defaults, the check of
//! the object against its kind's schema, create and update preparation
//! (initial status, generation, what a subresource may change),
//! validation, warnings, the Table, selectable fields and the `/scale`
//! mapping.
//!
//! The generic REST path (`rest.rs`) calls only these methods, so a
//! built-in kind and a custom resource go through the same code. Admission
//! (quota, limit ranges, Pod Security, webhooks, ...) is not a strategy's:
//! it is the admission chain's, as in Kubernetes.
//!
//! A strategy is pure and synchronous: it reads nothing but its arguments.
//! Every method but [`Strategy::check_fields`] has the generic behaviour as
//! its default, so a kind overrides only what it does differently.

use std::collections::BTreeMap;
use std::fmt::Debug;

use ferrokube_api::fields::{FieldSelector, FieldSelectorError};
use ferrokube_api::printers::{self, Column};
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{validate_object_meta, NameRule};
use serde_json::Value;

use crate::authn::UserInfo;

/// The field check and typed decoding of a built-in kind: its
/// `k8s-openapi` type (see [`crate::typed`]). Used inside an
/// `impl Strategy for ...` block.
macro_rules! typed_fields {
    () => {
        fn check_fields(
            &self,
            def: &ferrokube_api::registry::ResourceDef,
            obj: serde_json::Value,
        ) -> Result<$crate::strategy::Checked, String> {
            $crate::strategy::typed_check(def, obj)
        }

        fn decode_typed(
            &self,
            def: &ferrokube_api::registry::ResourceDef,
            body: &[u8],
        ) -> Option<serde_json::Value> {
            $crate::typed::decode_known(def.group, def.version, def.kind, body)
        }
    };
}

mod admissionregistration;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod core;
mod discovery;
mod events;
mod flowcontrol;
mod networking;
mod node;
mod policy;
mod rbac;
mod scheduling;
mod storage;
#[cfg(test)]
mod tests;

/// An object after [`Strategy::check_fields`]: unknown fields dropped, and
/// where they were (`spec.foo`, as Kubernetes' strict decoding names them).
#[derive(Debug, Default)]
pub struct Checked {
    /// The object, with only the fields its kind knows.
    pub value: Value,
    /// The paths of the fields that were dropped.
    pub unknown: Vec<String>,
}

/// Where `/scale` reads and writes a kind's replicas (JSON pointers), as a
/// CustomResourceDefinition's `subresources.scale` names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// The desired replicas (`/spec/replicas`).
    pub spec_replicas: String,
    /// The observed replicas (`/status/replicas`).
    pub status_replicas: String,
    /// The label selector in its string form (`/status/selector`), if any.
    pub label_selector: Option<String>,
}

/// A kind's lists and maps as server-side apply merges and owns them,
/// where the strategic merge patch's table does not know the kind: a
/// custom resource's schema. Paths are field names from the object's root,
/// `*` standing for a list's items.
pub trait ApplyShapes: Send + Sync + Debug {
    /// The list type of the list at `path` (`x-kubernetes-list-type` and
    /// its map keys); `None` when the schema has no list there.
    fn list_type(&self, path: &[&str]) -> Option<ferrokube_schema::ListType>;
    /// The map type of the object at `path` (`x-kubernetes-map-type`);
    /// `None` when the schema has no object there.
    fn map_type(&self, path: &[&str]) -> Option<ferrokube_schema::MapType>;
    /// Whether the object at `path` is an embedded resource
    /// (`x-kubernetes-embedded-resource`): its `metadata` is an ObjectMeta.
    fn embedded(&self, _path: &[&str]) -> bool {
        false
    }
}

/// One kind's rules. See the module documentation.
pub trait Strategy: Send + Sync + Debug {
    /// Field defaults (Kubernetes' `SetDefaults_*`), applied to every
    /// object decoded from a request: create, update, patch and apply.
    fn default(&self, _def: &ResourceDef, _obj: &mut Value) {}

    /// Checks `obj` against the kind's schema: field types, and the fields
    /// the kind does not know (dropped and reported; the caller refuses
    /// them under `fieldValidation=Strict` and warns under `Warn`). An
    /// `Err` is the decoding error Kubernetes reports as
    /// `<Kind> in version "<v>" cannot be handled as a <Kind>: <err>`.
    fn check_fields(&self, def: &ResourceDef, obj: Value) -> Result<Checked, String>;

    /// `PrepareForCreate`: what the server sets on a new object (initial
    /// status, generation 1 where the kind keeps one, a namespace's
    /// finalizer, a Job's selector, a CSR's requester), after defaults and
    /// mutating admission. `user` is who creates it, when known.
    /// The generic one sets generation 1 where the kind keeps one and the
    /// kind's [`Strategy::initial_status`].
    fn prepare_for_create(&self, def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        prepare_create(obj, self.has_generation(def), self.initial_status(def));
    }

    /// The status a new object starts with (its `status` as sent is
    /// replaced), or `None` to keep what was sent.
    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        None
    }

    /// `PrepareForUpdate`: what a write through `subresource` (`""` for
    /// the object itself, `status`, `approval`, ...) keeps of `old` (the
    /// status on a main write, everything else on a status write), and the
    /// generation bumped when the spec changes.
    /// The generic one is [`prepare_update`].
    fn prepare_for_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &mut Value,
        subresource: &str,
    ) {
        prepare_update(def, old, new, subresource, self.has_generation(def));
    }

    /// `Validate`: the errors in a new object, metadata included.
    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        validate_metadata(def, obj)
    }

    /// `ValidateUpdate`: the errors in an update of `old` to `new` through
    /// `subresource`, metadata and what may not change included.
    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _subresource: &str,
    ) -> Vec<FieldError> {
        validate_metadata(def, new)
    }

    /// `WarningsOnCreate`: `Warning` headers for a new object.
    fn warnings_on_create(&self, _def: &ResourceDef, _obj: &Value) -> Vec<String> {
        Vec::new()
    }

    /// `WarningsOnUpdate`: `Warning` headers for an update.
    fn warnings_on_update(&self, _def: &ResourceDef, _old: &Value, _new: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Whether the kind keeps `metadata.generation`.
    fn has_generation(&self, _def: &ResourceDef) -> bool {
        false
    }

    /// The kind's Table columns.
    fn table_columns(&self, def: &ResourceDef) -> Vec<Column> {
        printers::columns(def.group, def.kind)
    }

    /// One object's Table cells (`now` in Unix seconds), one per column.
    fn table_cells(&self, def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
        printers::cells(def.group, def.kind, obj, now)
    }

    /// The values of the kind's selectable fields (`metadata.name`,
    /// `metadata.namespace` and the kind's own), for field selectors.
    fn selectable_fields(&self, def: &ResourceDef, obj: &Value) -> BTreeMap<String, String> {
        ferrokube_api::fields::field_set(def.group, def.plural, obj)
    }

    /// The patch types a PATCH of the kind takes (Kubernetes' custom
    /// resources take no strategic merge patch).
    fn patch_types(&self) -> &'static [&'static str] {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }

    /// How server-side apply merges the kind's lists and maps, when its
    /// own schema says so (custom resources); `None`: the strategic merge
    /// patch's table of built-in types.
    fn apply_shapes(&self, _def: &ResourceDef) -> Option<std::sync::Arc<dyn ApplyShapes>> {
        None
    }

    /// Where `/scale` finds the replicas, for kinds that serve it.
    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
        None
    }

    /// A create's body decoded straight into the kind's type, when the
    /// type knows every field of it: the object [`Strategy::check_fields`]
    /// would give, made without the JSON tree. `None` sends the body down
    /// the JSON path, which names what is unknown or wrong.
    fn decode_typed(&self, _def: &ResourceDef, _body: &[u8]) -> Option<Value> {
        None
    }

    /// A field selector checked against the kind's selectable fields, with
    /// old or other-group names mapped to the stored ones (Kubernetes'
    /// field label conversion); the error is Kubernetes' words for the kind.
    fn convert_field_selector(
        &self,
        def: &ResourceDef,
        selector: &FieldSelector,
    ) -> Result<FieldSelector, FieldSelectorError> {
        selector.convert(def.group, def.plural)
    }

    /// Puts a Table's objects in the order the kind prints them (the order
    /// they were listed in, unless the kind's printer sorts).
    fn sort_table_rows(&self, _def: &ResourceDef, _objects: &mut Vec<&Value>) {}

    /// How the objects of this resource change version, for a custom
    /// resource whose CRD has several versions (Kubernetes' CRD
    /// converter) and a built-in kind served at several versions
    /// (HorizontalPodAutoscalers); `None` for kinds stored and served in
    /// one version.
    #[expect(
        private_interfaces,
        reason = "only strategies made in this crate have a converter"
    )]
    fn converter(&self) -> Option<&std::sync::Arc<crate::crd::conversion::Converter>> {
        None
    }

    /// Why a create is refused before it is read (a custom resource whose
    /// CRD is being deleted); `None` for most kinds.
    fn create_refused(&self, _def: &ResourceDef) -> Option<ferrokube_api::status::ApiError> {
        None
    }

    /// Whether a DELETE that removes the object answers with the object
    /// (Kubernetes' `ReturnDeletedObject`, set by pods, services,
    /// namespaces, service accounts, persistent volumes and their claims,
    /// storage classes, CSI drivers and nodes, volume attachments); the
    /// other kinds answer a success `Status` naming it. A delete that waits
    /// (finalizers, a grace period) answers the object either way.
    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        false
    }

    /// `CheckGracefulDelete`: the grace period a delete of `obj` waits for
    /// (`requested` is the delete's `gracePeriodSeconds`), or `None` when
    /// the kind's objects go at once (most kinds; a Pod bound to a node
    /// waits for its kubelet).
    fn deletion_grace_period(
        &self,
        _def: &ResourceDef,
        _obj: &Value,
        _requested: Option<i64>,
    ) -> Option<i64> {
        None
    }
}

/// The metadata errors every object can have: its name by the kind's rule,
/// labels, annotations, and the namespace by the kind's scope.
pub(crate) fn validate_metadata(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    validate_object_meta(
        obj.get("metadata").unwrap_or(&Value::Null),
        NameRule::for_kind(def.group, def.kind),
        def.namespaced,
    )
}

/// The strategy of the built-in resource `def`: its kind's own, or
/// [`Generic`] (the typed field check, Kubernetes' generic rules) for kinds
/// with nothing of their own (ServiceAccount, Lease, Role, the reviews,
/// ...).
pub(crate) fn builtin(def: &ResourceDef) -> std::sync::Arc<dyn Strategy> {
    if crate::crd::is_crd(def.group, def.plural) {
        return std::sync::Arc::new(crate::crd::CrdStrategy);
    }
    let by_group = match def.group {
        "" => core::strategy(def.kind),
        "apps" => apps::strategy(def.kind),
        "batch" => batch::strategy(def.kind),
        "autoscaling" => autoscaling::strategy(def.kind),
        "discovery.k8s.io" => discovery::strategy(def.kind),
        "events.k8s.io" => events::strategy(def.kind),
        "rbac.authorization.k8s.io" => rbac::strategy(def.kind),
        "policy" => policy::strategy(def.kind),
        "scheduling.k8s.io" => scheduling::strategy(def.kind),
        "networking.k8s.io" => networking::strategy(def.kind),
        "node.k8s.io" => node::strategy(def.kind),
        "flowcontrol.apiserver.k8s.io" => flowcontrol::strategy(def.kind),
        "storage.k8s.io" => storage::strategy(def.kind),
        "certificates.k8s.io" => certificates::strategy(def.kind),
        "admissionregistration.k8s.io" => admissionregistration::strategy(def.kind),
        _ => None,
    };
    by_group.unwrap_or_else(|| std::sync::Arc::new(Generic))
}

/// The rules of a built-in kind with nothing of its own: the typed field
/// check, the status split of kinds with `/status`, no generation.
#[derive(Debug, Default)]
pub(crate) struct Generic;

impl Strategy for Generic {
    typed_fields!();
}

/// [`Strategy::check_fields`] by the kind's `k8s-openapi` type.
pub(crate) fn typed_check(def: &ResourceDef, obj: Value) -> Result<Checked, String> {
    let checked =
        crate::typed::check(def.group, def.version, def.kind, &obj).map_err(|e| e.to_string())?;
    Ok(Checked {
        value: checked.value,
        unknown: checked.unknown,
    })
}

/// The generic `PrepareForCreate`: generation 1 for a kind that keeps one
/// (`generation`), and `status` as the initial status (Kubernetes writes
/// its empty status, fields Go always encodes included); `None` keeps the
/// status the body gave (a Node's) or none.
pub(crate) fn prepare_create(obj: &mut Value, generation: bool, status: Option<Value>) {
    if generation {
        if let Some(meta) = crate::objectmeta::metadata_mut(obj) {
            meta.insert("generation".into(), serde_json::json!(1));
        }
    }
    if let (Some(status), Some(m)) = (status, obj.as_object_mut()) {
        m.insert("status".into(), status);
    }
}

/// The generic `PrepareForUpdate`: [`split_status`], then
/// [`set_generation`] moved by a spec change of the object itself.
pub(crate) fn prepare_update(
    def: &ResourceDef,
    old: &Value,
    new: &mut Value,
    subresource: &str,
    generation: bool,
) {
    split_status(def, old, new, subresource);
    let changed = subresource.is_empty() && spec_changed(old, new);
    set_generation(generation, old, new, changed);
}

/// What a write through `subresource` keeps of `old`: a write to `/status`
/// (or a CSR's `/approval`) changes only the status; a write to the object
/// itself keeps the stored status, for kinds with a `/status`.
pub(crate) fn split_status(def: &ResourceDef, old: &Value, new: &mut Value, subresource: &str) {
    match subresource {
        "status" | "approval" => {
            let status = new.get("status").cloned();
            *new = old.clone();
            set_or_remove_top(new, "status", status);
        }
        "" if def.subresource("status").is_some() => {
            set_or_remove_top(new, "status", old.get("status").cloned());
        }
        _ => {}
    }
}

/// Whether anything but metadata and status differs: what a kind's spec
/// change means.
pub(crate) fn spec_changed(old: &Value, new: &Value) -> bool {
    let outside = |(k, _): &(&String, &Value)| !matches!(k.as_str(), "metadata" | "status");
    match (old.as_object(), new.as_object()) {
        (Some(a), Some(b)) => !a.iter().filter(outside).eq(b.iter().filter(outside)),
        _ => old != new,
    }
}

/// The generation an update stores: the old one (a request cannot set
/// it), bumped when `changed` for a kind that keeps one (`generation`).
pub(crate) fn set_generation(generation: bool, old: &Value, new: &mut Value, changed: bool) {
    let old_generation = old.pointer("/metadata/generation").cloned();
    let next = if generation && changed {
        let n = old_generation.as_ref().and_then(Value::as_i64).unwrap_or(0);
        Some(serde_json::json!(n + 1))
    } else {
        old_generation
    };
    if let Some(meta) = crate::objectmeta::metadata_mut(new) {
        match next {
            Some(g) => meta.insert("generation".into(), g),
            None => meta.remove("generation"),
        };
    }
}

/// Sets (or, for `None`, removes) the top-level member `key`.
pub(crate) fn set_or_remove_top(obj: &mut Value, key: &str, value: Option<Value>) {
    if let Some(m) = obj.as_object_mut() {
        match value {
            Some(v) => m.insert(key.into(), v),
            None => m.remove(key),
        };
    }
}

/// Sets (or, for `None`, removes) `parent.key`, making `parent` if needed.
pub(crate) fn set_or_remove(obj: &mut Value, parent: &str, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            if let Some(p) = crate::defaults::object_at(obj, parent) {
                p[key] = v;
            }
        }
        None => {
            if let Some(p) = obj.get_mut(parent).and_then(Value::as_object_mut) {
                p.remove(key);
            }
        }
    }
}

/// The metadata errors of `obj`, then those `rules` find in it.
pub(crate) fn metadata_and(
    def: &ResourceDef,
    obj: &Value,
    rules: impl FnOnce(&Value) -> Vec<FieldError>,
) -> Vec<FieldError> {
    let mut errs = validate_metadata(def, obj);
    errs.extend(rules(obj));
    errs
}
