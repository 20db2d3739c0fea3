//! Defaults of the `apps/v1` workloads (`pkg/apis/apps/v1/defaults.go`):
//! Deployment, ReplicaSet, StatefulSet and DaemonSet, each with its pod
//! template's.

use serde_json::{json, Value};

use super::{default_nil, default_str, each, object_at, with};

/// `SetDefaults_Deployment`.
pub(crate) fn deployment(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_nil(spec, "replicas", json!(1));
    if let Some(strategy) = object_at(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = object_at(strategy, "rollingUpdate") {
                default_nil(ru, "maxUnavailable", json!("25%"));
                default_nil(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default_nil(spec, "revisionHistoryLimit", json!(10));
    default_nil(spec, "progressDeadlineSeconds", json!(600));
    with(spec, "template", super::pod::template);
}

/// `SetDefaults_ReplicaSet`.
pub(crate) fn replica_set(obj: &mut Value) {
    with(obj, "spec", |spec| {
        default_nil(spec, "replicas", json!(1));
        with(spec, "template", super::pod::template);
    });
}

/// `SetDefaults_StatefulSet`, with the claim templates' defaults.
pub(crate) fn stateful_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = object_at(spec, "updateStrategy") {
        let untyped = super::is_empty_str(strategy.get("type"));
        if untyped {
            strategy["type"] = json!("RollingUpdate");
            object_at(strategy, "rollingUpdate");
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                default_nil(ru, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = object_at(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(policy, "whenDeleted", "Retain");
        default_str(policy, "whenScaled", "Retain");
    }
    default_nil(spec, "replicas", json!(1));
    default_nil(spec, "revisionHistoryLimit", json!(10));
    with(spec, "template", super::pod::template);
    each(
        spec,
        "volumeClaimTemplates",
        super::core::persistent_volume_claim,
    );
}

/// `SetDefaults_DaemonSet`.
pub(crate) fn daemon_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if let Some(strategy) = object_at(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = object_at(strategy, "rollingUpdate") {
                default_nil(ru, "maxUnavailable", json!(1));
                default_nil(ru, "maxSurge", json!(0));
            }
        }
    }
    default_nil(spec, "revisionHistoryLimit", json!(10));
    with(spec, "template", super::pod::template);
}
