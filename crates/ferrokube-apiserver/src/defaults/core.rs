//! Defaults of the core (`v1`) kinds other than Pod: Service, Secret,
//! Namespace, PersistentVolume(Claim), Endpoints, LimitRange,
//! ReplicationController and Node.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{
    default_nil, default_str, each, is_empty_collection, is_empty_str, is_nil, is_zero, object_at,
    with,
};

/// How long a ClientIP session sticks by default (3 hours).
const CLIENT_IP_TIMEOUT_SECONDS: i64 = 10800;

/// `SetDefaults_Service`.
pub(crate) fn service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP") => {
            let timeout = spec.pointer("/sessionAffinityConfig/clientIP/timeoutSeconds");
            if is_nil(timeout) {
                spec["sessionAffinityConfig"] =
                    json!({"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT_SECONDS}});
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    each(spec, "ports", |p| {
        default_str(p, "protocol", "TCP");
        let target = p.get("targetPort");
        if is_zero(target) || is_empty_str(target) {
            if let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let external_ips = !is_empty_collection(spec.get("externalIPs"));
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && external_ips);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_nil(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_nil(spec, "allocateLoadBalancerNodePorts", json!(true));
        if let Some(ingress) = obj
            .pointer_mut("/status/loadBalancer/ingress")
            .and_then(Value::as_array_mut)
        {
            for i in ingress {
                if !is_empty_str(i.get("ip")) {
                    default_nil(i, "ipMode", json!("VIP"));
                }
            }
        }
    }
}

/// `SetDefaults_Secret`, and the conversion that folds `stringData` into
/// `data` (base64), overwriting keys both name, and drops it.
pub(crate) fn secret(obj: &mut Value) {
    default_str(obj, "type", "Opaque");
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(string_data) = m.remove("stringData") else {
        return;
    };
    let Value::Object(string_data) = string_data else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if data.is_null() {
        *data = Value::Object(Map::new());
    }
    let Some(data) = data.as_object_mut() else {
        return;
    };
    for (k, v) in string_data {
        let text = match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        data.insert(
            k,
            json!(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

/// The label every namespace carries with its own name.
pub(super) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `SetDefaults_Namespace` (the name label) and `SetDefaults_NamespaceStatus`.
pub(crate) fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !name.is_empty() {
        if let Some(labels) = object_at(obj, "metadata").and_then(|m| object_at(m, "labels")) {
            labels[NAMESPACE_NAME_LABEL] = json!(name);
        }
    }
    with(obj, "status", |s| default_str(s, "phase", "Active"));
}

/// `SetDefaults_PersistentVolume`.
pub(crate) fn persistent_volume(obj: &mut Value) {
    if let Some(status) = object_at(obj, "status") {
        default_str(status, "phase", "Pending");
    }
    with(obj, "spec", |spec| {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_nil(spec, "volumeMode", json!("Filesystem"));
        with(spec, "hostPath", super::pod::host_path);
    });
}

/// `SetDefaults_PersistentVolumeClaim` and its spec's.
pub(crate) fn persistent_volume_claim(obj: &mut Value) {
    if let Some(status) = object_at(obj, "status") {
        default_str(status, "phase", "Pending");
    }
    with(obj, "spec", persistent_volume_claim_spec);
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub(crate) fn persistent_volume_claim_spec(spec: &mut Value) {
    default_nil(spec, "volumeMode", json!("Filesystem"));
}

/// `SetDefaults_Endpoints`: ports speak TCP unless they say otherwise.
pub(crate) fn endpoints(obj: &mut Value) {
    each(obj, "subsets", |s| {
        each(s, "ports", |p| default_str(p, "protocol", "TCP"))
    });
}

/// `SetDefaults_LimitRangeItem`: for containers, the default limit from
/// the max, the default request from the default limit, else the min.
pub(crate) fn limit_range(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    each(spec, "limits", |item| {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            return;
        }
        let resources = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let max = resources(item, "max");
        let min = resources(item, "min");
        let mut default = resources(item, "default");
        let mut default_request = resources(item, "defaultRequest");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        for (k, v) in default.iter() {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, v) in min {
            default_request.entry(k).or_insert(v);
        }
        // Empty maps are not written (Go's omitempty).
        if !default.is_empty() {
            item["default"] = Value::Object(default);
        }
        if !default_request.is_empty() {
            item["defaultRequest"] = Value::Object(default_request);
        }
    });
}

/// `SetDefaults_ReplicationController`: selector and labels from the
/// template's labels when unset, one replica, and the template's defaults.
pub(crate) fn replication_controller(obj: &mut Value) {
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = obj.get_mut("spec") {
            if is_empty_collection(spec.get("selector")) {
                spec["selector"] = labels.clone();
            }
        }
        if is_empty_collection(obj.pointer("/metadata/labels")) {
            if let Some(meta) = object_at(obj, "metadata") {
                meta["labels"] = labels;
            }
        }
    }
    with(obj, "spec", |spec| {
        default_nil(spec, "replicas", json!(1));
        with(spec, "template", super::pod::template);
    });
}

/// `SetDefaults_NodeStatus`: allocatable is the capacity unless given.
pub(crate) fn node(obj: &mut Value) {
    with(obj, "status", |status| {
        if is_nil(status.get("allocatable")) {
            if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                status["allocatable"] = capacity;
            }
        }
    });
}
