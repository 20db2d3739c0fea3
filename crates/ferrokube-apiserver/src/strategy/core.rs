//! The core (`v1`) kinds' strategies (Kubernetes' `pkg/registry/core/*`).
//! What is the kinds' storage rather than their strategy (a Service's
//! addresses, a namespace's finalize and deletion, Events' lease, a Pod's
//! binding and eviction) is in [`crate::kind_storage`] and its modules.

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{
    prepare_create, prepare_update, set_generation, set_or_remove, split_status, validate_metadata,
    Generic, ScalePaths, Strategy,
};
use crate::authn::UserInfo;
use crate::defaults::{core as defaults, object_at, pod as pod_defaults};
use crate::kinds::storage as volumes;
use crate::validation::validate_pod_spec;

/// The strategy of the core kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "Namespace" => Arc::new(Namespace),
        "Pod" => Arc::new(Pod),
        "Service" => Arc::new(Service),
        "Endpoints" => Arc::new(Endpoints),
        "ConfigMap" => Arc::new(ConfigMap),
        "Secret" => Arc::new(Secret),
        "Node" => Arc::new(Node),
        "ReplicationController" => Arc::new(ReplicationController),
        "LimitRange" => Arc::new(LimitRange),
        "ResourceQuota" => Arc::new(ResourceQuota),
        "PersistentVolume" => Arc::new(PersistentVolume),
        "PersistentVolumeClaim" => Arc::new(PersistentVolumeClaim),
        "PodTemplate" => Arc::new(PodTemplate),
        "ServiceAccount" => Arc::new(ServiceAccount),
        "Binding" | "Event" => Arc::new(Generic),
        _ => return None,
    })
}

/// ServiceAccounts: the generic rules, and a delete answered with the
/// deleted object.
#[derive(Debug)]
struct ServiceAccount;

impl Strategy for ServiceAccount {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }
}

/// The finalizer through which the namespace controller empties a
/// namespace before it goes.
const NAMESPACE_FINALIZER: &str = "kubernetes";

/// Namespaces: the `kubernetes` finalizer in the spec of every new one,
/// phase `Active`; their finalizers change only through `/finalize`.
#[derive(Debug)]
struct Namespace;

impl Strategy for Namespace {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::namespace(obj);
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        add_namespace_finalizer(obj);
        prepare_create(obj, false, Some(json!({"phase": "Active"})));
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        match sub {
            "finalize" => {
                // Only spec.finalizers changes through /finalize.
                let finalizers = new.pointer("/spec/finalizers").cloned();
                *new = old.clone();
                set_or_remove(new, "spec", "finalizers", finalizers);
            }
            _ => {
                split_status(def, old, new, sub);
                if sub.is_empty() {
                    let finalizers = old.pointer("/spec/finalizers").cloned();
                    set_or_remove(new, "spec", "finalizers", finalizers);
                }
            }
        }
        set_generation(false, old, new, false);
    }
}

/// Every new namespace gets the `kubernetes` finalizer in its spec, after
/// any it names, whatever the body held (a protobuf body always carries a
/// spec, empty or not).
fn add_namespace_finalizer(obj: &mut Value) {
    let Some(list) = object_at(obj, "spec").and_then(|spec| {
        let m = spec.as_object_mut()?;
        let slot = m.entry("finalizers").or_insert_with(|| json!([]));
        if slot.is_null() {
            *slot = json!([]);
        }
        slot.as_array_mut()
    }) else {
        return;
    };
    if !list.iter().any(|f| f == NAMESPACE_FINALIZER) {
        list.push(json!(NAMESPACE_FINALIZER));
    }
}

/// Pods: phase `Pending` and the QoS class on create (kept by every status
/// write), ephemeral containers only through `/ephemeralcontainers`, a
/// grace period when bound to a node.
#[derive(Debug)]
struct Pod;

impl Strategy for Pod {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        pod_defaults::pod(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        let status = initial_pod_status(obj.get("spec").unwrap_or(&Value::Null));
        prepare_create(obj, true, Some(status));
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        if sub == "ephemeralcontainers" {
            // Only spec.ephemeralContainers changes through it.
            *new = crate::pod_validation::take_ephemeral_containers(old, new);
            set_generation(true, old, new, false);
            return;
        }
        prepare_update(def, old, new, sub, true);
        if sub == "status" {
            // The QoS class is set on create and never changes.
            if let (Some(s), Some(qos)) = (new.get_mut("status"), old.pointer("/status/qosClass")) {
                if crate::defaults::is_empty_str(s.get("qosClass")) {
                    s["qosClass"] = qos.clone();
                }
            }
        }
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, obj);
        validate_pod_spec(obj.get("spec"), "spec", &mut errs);
        errs.extend(crate::pod_validation::validate_create(obj));
        errs
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        validate_pod_spec(new.get("spec"), "spec", &mut errs);
        if sub == "ephemeralcontainers" {
            errs.extend(crate::pod_validation::validate_ephemeral_update(old, new));
        }
        errs
    }

    fn deletion_grace_period(
        &self,
        _def: &ResourceDef,
        obj: &Value,
        requested: Option<i64>,
    ) -> Option<i64> {
        // A pod no kubelet runs yet goes at once.
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        bound.then(|| {
            requested
                .or_else(|| {
                    obj.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
        })
    }
}

/// A new pod's status: `Pending`, its QoS class, and `PodScheduled` false
/// while scheduling gates hold it.
fn initial_pod_status(spec: &Value) -> Value {
    let mut status = json!({"phase": "Pending", "qosClass": pod_defaults::qos_class(spec)});
    if pod_defaults::has_scheduling_gates(spec) {
        status["conditions"] = json!([{
            "type": "PodScheduled",
            "status": "False",
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }]);
    }
    status
}

/// Services: their defaults and an empty load balancer status. (Their
/// cluster IPs and node ports are their storage's: [`crate::services`].)
#[derive(Debug)]
struct Service;

impl Strategy for Service {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::service(obj);
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({"loadBalancer": {}}))
    }
}

/// A kind whose strategy is its defaults and the generic rules.
macro_rules! defaulted {
    ($name:ident, $doc:literal, $defaults:path) => {
        #[doc = $doc]
        #[derive(Debug)]
        struct $name;

        impl Strategy for $name {
            typed_fields!();

            fn default(&self, _def: &ResourceDef, obj: &mut Value) {
                $defaults(obj);
            }

            fn prepare_for_update(
                &self,
                def: &ResourceDef,
                old: &Value,
                new: &mut Value,
                sub: &str,
            ) {
                prepare_update(def, old, new, sub, false);
            }
        }
    };
}

defaulted!(
    Endpoints,
    "Endpoints: their ports' defaults.",
    defaults::endpoints
);
defaulted!(
    LimitRange,
    "LimitRanges: their limits' defaults.",
    defaults::limit_range
);

/// Nodes: their defaults; a new node keeps the status it is created with.
#[derive(Debug)]
struct Node;

impl Strategy for Node {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::node(obj);
    }
}

/// The errors of an update of a ConfigMap or Secret marked `immutable`:
/// its data, and the mark itself, may not change.
fn frozen_data(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    for f in ["data", "binaryData", "stringData"] {
        if old.get(f) != new.get(f) {
            errs.push(FieldError::forbidden(
                f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    errs
}

/// ConfigMaps: string data; frozen when `immutable`.
#[derive(Debug)]
struct ConfigMap;

impl ConfigMap {
    fn errors(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, obj);
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !v.is_string() {
                errs.push(FieldError::invalid(
                    format!("data[{k}]"),
                    v.clone(),
                    "must be a string",
                ));
            }
        }
        errs
    }
}

impl Strategy for ConfigMap {
    typed_fields!();

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        Self::errors(def, obj)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = Self::errors(def, new);
        if sub.is_empty() {
            errs.extend(frozen_data(old, new));
        }
        errs
    }
}

/// Secrets: `stringData` moved into `data`; frozen when `immutable`.
#[derive(Debug)]
struct Secret;

impl Strategy for Secret {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::secret(obj);
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        if sub.is_empty() {
            errs.extend(frozen_data(old, new));
        }
        errs
    }
}

/// Where the replicas of the workload kinds are, for `/scale`; the
/// selector is the spec's (a LabelSelector, or a ReplicationController's
/// map of labels).
pub(super) fn workload_scale() -> ScalePaths {
    ScalePaths {
        spec_replicas: "/spec/replicas".into(),
        status_replicas: "/status/replicas".into(),
        label_selector: Some("/spec/selector".into()),
    }
}

/// ReplicationControllers: a generation, `replicas: 0` to start, `/scale`.
#[derive(Debug)]
struct ReplicationController;

impl Strategy for ReplicationController {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::replication_controller(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({"replicas": 0}))
    }

    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
        Some(workload_scale())
    }
}

/// ResourceQuotas: an empty status to start; their `hard` resources
/// checked (see [`crate::quota`]).
#[derive(Debug)]
struct ResourceQuota;

impl Strategy for ResourceQuota {
    typed_fields!();

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({}))
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        super::metadata_and(def, obj, crate::quota::validate)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = super::metadata_and(def, new, crate::quota::validate);
        if sub.is_empty() {
            errs.extend(crate::quota::validate_update(old, new));
        }
        errs
    }
}

/// PersistentVolumes: phase `Pending` to start, their source checked.
#[derive(Debug)]
struct PersistentVolume;

impl Strategy for PersistentVolume {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::persistent_volume(obj);
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        let status = json!({
            "phase": "Pending",
            "lastPhaseTransitionTime": crate::objectmeta::now_rfc3339(),
        });
        prepare_create(obj, false, Some(status));
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        super::metadata_and(def, obj, volumes::validate_persistent_volume)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        super::metadata_and(def, new, volumes::validate_persistent_volume)
    }
}

/// PersistentVolumeClaims: phase `Pending` to start; what a bound claim's
/// update may change.
#[derive(Debug)]
struct PersistentVolumeClaim;

impl Strategy for PersistentVolumeClaim {
    typed_fields!();

    fn returns_deleted_object(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::persistent_volume_claim(obj);
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({"phase": "Pending"}))
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        super::metadata_and(def, obj, volumes::validate_claim)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        if sub.is_empty() {
            errs.extend(volumes::validate_claim_update(old, new));
        }
        errs
    }
}

/// PodTemplates: a generation, their template's pod defaults, a template
/// required.
#[derive(Debug)]
struct PodTemplate;

impl PodTemplate {
    fn errors(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, obj);
        if obj.get("template").is_none() {
            errs.push(FieldError::required("template", ""));
        }
        errs
    }
}

impl Strategy for PodTemplate {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        if let Some(t) = obj.get_mut("template") {
            pod_defaults::template(t)
        }
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        prepare_create(obj, true, None);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        Self::errors(def, obj)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        Self::errors(def, new)
    }
}
