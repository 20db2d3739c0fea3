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
    canonical_quantities(obj);
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
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

/// The metric sources of a MetricSpec or MetricStatus.
const SOURCES: &[&str] = &[
    "object",
    "pods",
    "resource",
    "containerResource",
    "external",
];

/// Quantities written in Kubernetes' canonical form, as its API server
/// encodes every `resource.Quantity` (`0.5` is `500m`, `1.5Gi` is
/// `1536Mi`): metric targets, current values and behavior tolerances.
fn canonical_quantities(obj: &mut Value) {
    let mut at = |list: &str, member: &str| {
        for m in obj
            .pointer_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for source in SOURCES {
                if let Some(v) = m
                    .get_mut(*source)
                    .and_then(|s| s.get_mut(member))
                    .and_then(Value::as_object_mut)
                {
                    for key in ["value", "averageValue"] {
                        if let Some(q) = v.get_mut(key) {
                            canonical(q);
                        }
                    }
                }
            }
        }
    };
    at("/spec/metrics", "target");
    at("/status/currentMetrics", "current");
    for rules in ["scaleUp", "scaleDown"] {
        if let Some(t) = obj.pointer_mut(&format!("/spec/behavior/{rules}/tolerance")) {
            canonical(t);
        }
    }
}

/// `q` in canonical form, where this server's milli-unit arithmetic holds
/// it exactly (not below a milli-unit, not in exponent form).
fn canonical(q: &mut Value) {
    let Some(s) = q.as_str() else {
        return;
    };
    let body = s.trim().trim_start_matches(['+', '-']);
    let end = body
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
    let exact = match suffix {
        "" => fraction <= 3,
        "m" => fraction == 0,
        "k" => fraction <= 6,
        "M" | "G" | "T" | "P" | "E" => fraction <= 9,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => fraction <= 3,
        _ => false,
    };
    if !exact {
        return;
    }
    if let Some(qty) = ferrokube_api::quota::Qty::parse(q) {
        *q = Value::String(qty.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Value {
        let mut v = json!(s);
        canonical(&mut v);
        v
    }

    #[test]
    fn quantities_are_canonical_where_exact() {
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("100Mi"), "100Mi");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1500"), "1500");
        // Below a milli-unit and exponents stay as written.
        assert_eq!(canon("1n"), "1n");
        assert_eq!(canon("0.0005"), "0.0005");
        assert_eq!(canon("1e3"), "1e3");
        let mut hpa = json!({"spec": {"maxReplicas": 2, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "0.5"}}}]},
            "status": {"currentMetrics": [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                "current": {"averageValue": "1000m"}}}]}});
        horizontal_pod_autoscaler(&mut hpa);
        assert_eq!(
            hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"],
            "500m"
        );
        assert_eq!(
            hpa["status"]["currentMetrics"][0]["pods"]["current"]["averageValue"],
            "1"
        );
    }
}
