//! What Kubernetes' registry strategies do to an object before it is
//! stored: on create (`PrepareForCreate`) the initial status, generation 1
//! for the kinds that keep a generation, a namespace's finalizer, a Job's
//! selector; on update (`PrepareForUpdate`) the split between the object and
//! its `/status` (each keeps the other's part as stored; a Deployment's
//! annotations may change through either), a namespace's
//! finalizers changed only through `/finalize`, and the generation bumped
//! only when the spec changes.

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use super::{batch, object_at, pod};
use crate::objectmeta;

/// Whether Kubernetes keeps `metadata.generation` for the kind: set to 1 on
/// create and bumped when the spec changes. Other kinds (Service,
/// ConfigMap, Secret, Role, Lease, ...) have none.
pub(crate) fn has_generation(def: &ResourceDef) -> bool {
    matches!(
        (def.group, def.kind),
        ("", "Pod" | "ReplicationController" | "PodTemplate")
            | (
                "apps",
                "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
            )
            | ("batch", "Job" | "CronJob")
            | ("policy", "PodDisruptionBudget")
            | ("discovery.k8s.io", "EndpointSlice")
            | (
                "networking.k8s.io",
                "NetworkPolicy" | "Ingress" | "IngressClass"
            )
            | (
                "flowcontrol.apiserver.k8s.io",
                "FlowSchema" | "PriorityLevelConfiguration"
            )
    )
}

/// The status a new object of the kind starts with, written as Kubernetes
/// writes its empty status (fields Go always encodes included); `None` for
/// kinds whose create keeps the status given (Node) or that have none.
fn initial_status(def: &ResourceDef, obj: &Value) -> Option<Value> {
    Some(match (def.group, def.kind) {
        ("", "Pod") => {
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            let mut status = json!({"phase": "Pending", "qosClass": pod::qos_class(&spec)});
            if pod::has_scheduling_gates(&spec) {
                status["conditions"] = json!([{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }]);
            }
            status
        }
        ("", "Service") => json!({"loadBalancer": {}}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "PersistentVolume") => {
            json!({"phase": "Pending", "lastPhaseTransitionTime": objectmeta::now_rfc3339()})
        }
        ("", "ReplicationController") | ("apps", "ReplicaSet") => json!({"replicas": 0}),
        ("apps", "StatefulSet") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "DaemonSet") => json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }),
        ("policy", "PodDisruptionBudget") => json!({
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        }),
        ("autoscaling", "HorizontalPodAutoscaler") => json!({"desiredReplicas": 0}),
        ("", "ResourceQuota") | ("apps", "Deployment") | ("batch", "Job" | "CronJob") => json!({}),
        ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        ("flowcontrol.apiserver.k8s.io", _) | ("certificates.k8s.io", _) => json!({}),
        ("storage.k8s.io", "VolumeAttachment") => json!({"attached": false}),
        _ => return None,
    })
}

/// `PrepareForCreate` of `def`'s kind, on a defaulted new object whose
/// name and uid are set.
pub(crate) fn prepare_for_create(def: &ResourceDef, obj: &mut Value) {
    if has_generation(def) {
        if let Some(meta) = objectmeta::metadata_mut(obj) {
            meta.insert("generation".into(), json!(1));
        }
    }
    match (def.group, def.kind) {
        ("", "Namespace") => add_namespace_finalizer(obj),
        ("batch", "Job") => batch::generate_selector(obj),
        _ => {}
    }
    if let Some(status) = initial_status(def, obj) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), status);
        }
    }
}

/// The finalizer through which the namespace controller empties a
/// namespace before it goes.
const NAMESPACE_FINALIZER: &str = "kubernetes";

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

/// Everything but metadata and status: what a kind's spec change means.
fn spec_part(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `PrepareForUpdate` of `def`'s kind (or of its `subresource`, "" for the
/// object itself) on `new`, a defaulted update of `old`: takes from `old`
/// what the write may not change, and sets `metadata.generation`.
pub(crate) fn prepare_for_update(
    def: &ResourceDef,
    old: &Value,
    new: &mut Value,
    subresource: &str,
) {
    match subresource {
        "finalize" => {
            // Only spec.finalizers changes through namespaces/{name}/finalize.
            let finalizers = new.pointer("/spec/finalizers").cloned();
            *new = old.clone();
            set_or_remove(new, "spec", "finalizers", finalizers);
        }
        "ephemeralcontainers" => {
            // Only spec.ephemeralContainers changes through pods/ephemeralcontainers.
            *new = crate::pod_validation::take_ephemeral_containers(old, new);
        }
        "status" | "approval" => {
            // Only status changes through /status (and a CSR's /approval,
            // whose rules are in crate::kinds).
            let mut status = new.get("status").cloned();
            if def.group.is_empty() && def.kind == "Pod" {
                // The QoS class is set on create and never changes.
                if let (Some(s), Some(qos)) = (status.as_mut(), old.pointer("/status/qosClass")) {
                    if super::is_empty_str(s.get("qosClass")) {
                        s["qosClass"] = qos.clone();
                    }
                }
            }
            // A Deployment's annotations may change with its status (its
            // controller writes the revision so, without a new generation).
            let annotations = (def.group == "apps" && def.kind == "Deployment")
                .then(|| new.pointer("/metadata/annotations").cloned());
            *new = old.clone();
            set_or_remove_top(new, "status", status);
            if let Some(annotations) = annotations {
                set_or_remove(new, "metadata", "annotations", annotations);
            }
        }
        _ => {
            if def.subresource("status").is_some() {
                // Status does not change through the object itself.
                set_or_remove_top(new, "status", old.get("status").cloned());
            }
            if def.group.is_empty() && def.kind == "Namespace" {
                // A namespace's finalizers change only through /finalize.
                let finalizers = old.pointer("/spec/finalizers").cloned();
                set_or_remove(new, "spec", "finalizers", finalizers);
            }
        }
    }
    set_generation(def, old, new, subresource.is_empty());
}

/// The generation an update stores: the old one (a request cannot set
/// it), bumped by a write of the object itself (`main`, not a subresource)
/// that changed the spec, for kinds that keep one (a Deployment's
/// annotations and an EndpointSlice's labels count too).
fn set_generation(def: &ResourceDef, old: &Value, new: &mut Value, main: bool) {
    let old_generation = old.pointer("/metadata/generation").cloned();
    let mut changed = main && spec_part(old) != spec_part(new);
    match (def.group, def.kind) {
        ("apps", "Deployment") if main => {
            changed |= old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
        }
        ("discovery.k8s.io", "EndpointSlice") if main => {
            changed |= old.pointer("/metadata/labels") != new.pointer("/metadata/labels")
        }
        _ => {}
    }
    let generation = if has_generation(def) && changed {
        let n = old_generation.as_ref().and_then(Value::as_i64).unwrap_or(0);
        Some(json!(n + 1))
    } else {
        old_generation
    };
    if let Some(meta) = objectmeta::metadata_mut(new) {
        match generation {
            Some(g) => meta.insert("generation".into(), g),
            None => meta.remove("generation"),
        };
    }
}

fn set_or_remove_top(obj: &mut Value, key: &str, value: Option<Value>) {
    if let Some(m) = obj.as_object_mut() {
        match value {
            Some(v) => m.insert(key.into(), v),
            None => m.remove(key),
        };
    }
}

fn set_or_remove(obj: &mut Value, parent: &str, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            if let Some(p) = object_at(obj, parent) {
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
