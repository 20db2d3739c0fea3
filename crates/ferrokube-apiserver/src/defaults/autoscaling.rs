//! Defaults of HorizontalPodAutoscalers: `autoscaling/v2`
//! (`pkg/apis/autoscaling/v2/defaults.go`): one replica at least, 80% CPU
//! utilization when no metric is named, and a behavior's unset rules filled
//! from the defaults; `autoscaling/v1` (`pkg/apis/autoscaling/v1/defaults.go`):
//! one replica at least (its CPU target is left unset: the conversion to
//! v2 supplies the 80%).

use serde_json::{json, Value};

use super::{default_nil, is_empty_collection};

/// The CPU utilization an HPA aims at when it names no metric
/// (`autoscaling.DefaultCPUUtilization`).
pub(crate) const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// `SetDefaults_HorizontalPodAutoscaler` of `autoscaling/v1`.
pub(crate) fn horizontal_pod_autoscaler_v1(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        default_nil(spec, "minReplicas", json!(1));
    }
}

/// `SetDefaults_HorizontalPodAutoscaler` of `autoscaling/v2`.
pub(crate) fn horizontal_pod_autoscaler(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_nil(spec, "minReplicas", json!(1));
    if is_empty_collection(spec.get("metrics")) {
        spec["metrics"] = json!([{
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
            },
        }]);
    }
    if let Some(behavior) = spec.get_mut("behavior").filter(|b| b.is_object()) {
        let up = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        });
        // Scale-down's stabilization window is left to the controller's flag.
        let down = json!({
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        });
        fill_rules(behavior, "scaleUp", up);
        fill_rules(behavior, "scaleDown", down);
    }
}

/// `behavior[key]`: the defaults, with each field the object sets kept.
fn fill_rules(behavior: &mut Value, key: &str, defaults: Value) {
    let mut rules = defaults;
    if let Some(given) = behavior.get(key).and_then(Value::as_object) {
        for (k, v) in given {
            if !v.is_null() {
                rules[k.as_str()] = v.clone();
            }
        }
    }
    behavior[key] = rules;
}
