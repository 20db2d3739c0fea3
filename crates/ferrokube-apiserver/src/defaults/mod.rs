//! Defaulting and write preparation of the built-in kinds, as Kubernetes
//! does them: its `SetDefaults_*` functions (`pkg/apis/*/v*/defaults.go`,
//! run on every object it decodes, so on create and update alike) in
//! [`apply`], and its registry strategies' `PrepareForCreate` and
//! `PrepareForUpdate` (initial status, `metadata.generation` where the kind
//! keeps one, the status/spec split, a Job's selector) in [`strategy`].
//!
//! Every write reaches these through `Rest::create_encoded` and
//! `Rest::write_update`, whatever the body's encoding (JSON, YAML, protobuf)
//! and whichever verb (create, update, patch, server-side apply), so no path
//! can skip them.

mod apps;
mod autoscaling;
mod batch;
mod core;
mod discovery;
mod pod;
mod rbac;
mod scheduling;
pub(crate) mod strategy;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Map, Value};

pub(crate) use strategy::{prepare_for_create, prepare_for_update};

/// Fills in the defaults of `obj`, an object of `def`'s kind, as
/// Kubernetes' defaulting functions do when they decode it.
pub(crate) fn apply(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Pod") => pod::pod(obj),
        ("", "Service") => core::service(obj),
        ("", "Secret") => core::secret(obj),
        ("", "Namespace") => core::namespace(obj),
        ("", "PersistentVolume") => core::persistent_volume(obj),
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "Endpoints") => core::endpoints(obj),
        ("", "LimitRange") => core::limit_range(obj),
        ("", "ReplicationController") => core::replication_controller(obj),
        ("", "PodTemplate") => {
            if let Some(t) = obj.get_mut("template") {
                pod::template(t)
            }
        }
        ("", "Node") => core::node(obj),
        ("apps", "Deployment") => apps::deployment(obj),
        ("apps", "ReplicaSet") => apps::replica_set(obj),
        ("apps", "StatefulSet") => apps::stateful_set(obj),
        ("apps", "DaemonSet") => apps::daemon_set(obj),
        ("batch", "Job") => batch::job(obj),
        ("batch", "CronJob") => batch::cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::horizontal_pod_autoscaler(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => rbac::binding(obj),
        ("discovery.k8s.io", "EndpointSlice") => discovery::endpoint_slice(obj),
        ("scheduling.k8s.io", "PriorityClass") => scheduling::priority_class(obj),
        _ => {}
    }
}

/// Whether a value counts as unset for a pointer field: absent or null.
fn is_nil(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// Whether a value counts as unset for a string field: absent, null or "".
fn is_empty_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Whether a value counts as unset for an integer field: absent, null or 0.
fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Whether a list or map field is empty (absent, null, [] or {}).
fn is_empty_collection(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

/// Sets `v[key]` to `default` when it is absent or null (a pointer field).
fn default_nil(v: &mut Value, key: &str, default: Value) {
    if let Some(m) = v.as_object_mut() {
        if is_nil(m.get(key)) {
            m.insert(key.to_string(), default);
        }
    }
}

/// Sets `v[key]` to `default` when it is absent, null or "" (a string).
fn default_str(v: &mut Value, key: &str, default: &str) {
    if let Some(m) = v.as_object_mut() {
        if is_empty_str(m.get(key)) {
            m.insert(key.to_string(), json!(default));
        }
    }
}

/// Sets `v[key]` to `default` when it is absent, null or 0 (an integer).
fn default_int(v: &mut Value, key: &str, default: i64) {
    if let Some(m) = v.as_object_mut() {
        if is_zero(m.get(key)) {
            m.insert(key.to_string(), json!(default));
        }
    }
}

/// `v[key]` as an object, made an empty one when absent or null (a Go
/// struct field, or a pointer the defaults fill in). `None` when `v` is not
/// an object or `v[key]` is something else.
fn object_at<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Runs `f` on every element of the list `v[key]`, if there is one.
fn each(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(list) = v.get_mut(key).and_then(Value::as_array_mut) {
        list.iter_mut().for_each(&mut f);
    }
}

/// Runs `f` on `v[key]` when it is an object.
fn with(v: &mut Value, key: &str, f: impl FnOnce(&mut Value)) {
    if let Some(inner) = v.get_mut(key).filter(|i| i.is_object()) {
        f(inner)
    }
}

#[cfg(test)]
mod tests;
