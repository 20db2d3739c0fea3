//! The `apps` kinds' strategies (Kubernetes' `pkg/registry/apps/*`):
//! Deployments, ReplicaSets, StatefulSets and DaemonSets keep a generation,
//! start with their controllers' empty status, need a selector that never
//! changes and a pod template that validates; all but DaemonSets serve
//! `/scale`.

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::core::workload_scale;
use super::{
    set_generation, set_or_remove, spec_changed, split_status, validate_metadata, Generic,
    ScalePaths, Strategy,
};
use crate::defaults::apps as defaults;
use crate::kinds::meta::immutable;
use crate::validation::validate_pod_spec;

/// The strategy of the `apps` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "Deployment" => Arc::new(Deployment),
        "ReplicaSet" => Arc::new(Workload {
            defaults: defaults::replica_set,
            status: || json!({"replicas": 0}),
            scale: true,
        }),
        "StatefulSet" => Arc::new(Workload {
            defaults: defaults::stateful_set,
            status: || json!({"replicas": 0, "availableReplicas": 0}),
            scale: true,
        }),
        "DaemonSet" => Arc::new(Workload {
            defaults: defaults::daemon_set,
            status: || {
                json!({
                    "currentNumberScheduled": 0,
                    "numberMisscheduled": 0,
                    "desiredNumberScheduled": 0,
                    "numberReady": 0,
                })
            },
            scale: false,
        }),
        "ControllerRevision" => Arc::new(Generic),
        _ => return None,
    })
}

/// A workload's errors: metadata, its template's pod spec, a selector.
fn workload_errors(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_metadata(def, obj);
    validate_pod_spec(
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
        &mut errs,
    );
    if obj.pointer("/spec/selector").is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs
}

/// A workload update's errors: those of the object, and (on the object
/// itself) a selector that changed.
fn workload_update_errors(
    def: &ResourceDef,
    old: &Value,
    new: &Value,
    sub: &str,
) -> Vec<FieldError> {
    let mut errs = workload_errors(def, new);
    if sub.is_empty() {
        errs.extend(immutable(old, new, "spec.selector"));
    }
    errs
}

/// ReplicaSets, StatefulSets and DaemonSets: their defaults and initial
/// status, the rest shared.
#[derive(Debug)]
struct Workload {
    defaults: fn(&mut Value),
    status: fn() -> Value,
    scale: bool,
}

impl Strategy for Workload {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        (self.defaults)(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some((self.status)())
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        workload_errors(def, obj)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        workload_update_errors(def, old, new, sub)
    }

    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
        self.scale.then(workload_scale)
    }
}

/// Deployments: as the other workloads, and their annotations change with
/// the status too (the controller writes the revision so) and move the
/// generation on the object itself.
#[derive(Debug)]
struct Deployment;

impl Strategy for Deployment {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::deployment(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({}))
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        let annotations = new.pointer("/metadata/annotations").cloned();
        split_status(def, old, new, sub);
        if matches!(sub, "status" | "approval") {
            set_or_remove(new, "metadata", "annotations", annotations);
        }
        let changed = sub.is_empty()
            && (spec_changed(old, new)
                || old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations"));
        set_generation(true, old, new, changed);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        workload_errors(def, obj)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        workload_update_errors(def, old, new, sub)
    }

    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
        Some(workload_scale())
    }
}
