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

use ferrokube_api::printers::{self, Column};
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{validate_object_meta, NameRule};
use serde_json::Value;

use crate::authn::UserInfo;

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
    fn prepare_for_create(&self, _def: &ResourceDef, _obj: &mut Value, _user: Option<&UserInfo>) {}

    /// `PrepareForUpdate`: what a write through `subresource` (`""` for
    /// the object itself, `status`, `approval`, ...) keeps of `old` (the
    /// status on a main write, everything else on a status write), and the
    /// generation bumped when the spec changes.
    fn prepare_for_update(
        &self,
        _def: &ResourceDef,
        _old: &Value,
        _new: &mut Value,
        _subresource: &str,
    ) {
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

    /// Where `/scale` finds the replicas, for kinds that serve it.
    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
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

/// The strategy of a built-in resource.
pub(crate) fn builtin(_def: &ResourceDef) -> std::sync::Arc<dyn Strategy> {
    std::sync::Arc::new(Typed)
}

/// The rules every built-in kind shares: its fields checked against its
/// type.
#[derive(Debug)]
struct Typed;

impl Strategy for Typed {
    fn check_fields(&self, def: &ResourceDef, obj: Value) -> Result<Checked, String> {
        crate::typed::check(def.group, def.kind, &obj)
            .map(|c| Checked {
                value: c.value,
                unknown: c.unknown,
            })
            .map_err(|e| e.to_string())
    }
}
