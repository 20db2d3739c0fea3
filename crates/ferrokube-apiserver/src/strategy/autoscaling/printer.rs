//! HorizontalPodAutoscalers' Table, as Kubernetes' printer
//! (`pkg/printers/internalversion/printers.go`, `printHorizontalPodAutoscaler`
//! and `formatHPAMetrics` of Kubernetes 1.32/1.33): NAME, REFERENCE,
//! TARGETS (`cpu: 45%/50%`, `<unknown>` before any metric, at most two
//! metrics then `+ N more...`), MINPODS, MAXPODS, REPLICAS, AGE. Objects
//! are printed in their v2 form.

use ferrokube_api::printers::Column;
use serde_json::{json, Value};

const fn string(name: &'static str) -> Column {
    Column {
        name,
        ty: "string",
        format: "",
        priority: 0,
    }
}

/// The columns.
pub(super) fn columns() -> Vec<Column> {
    vec![
        Column {
            name: "Name",
            ty: "string",
            format: "name",
            priority: 0,
        },
        string("Reference"),
        string("Targets"),
        string("MinPods"),
        string("MaxPods"),
        string("Replicas"),
        string("Age"),
    ]
}

/// One v2 object's cells.
pub(super) fn cells(hpa: &Value, now: i64) -> Vec<Value> {
    let text = |p: &str| hpa.pointer(p).and_then(Value::as_str).unwrap_or("");
    let int = |p: &str| hpa.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let reference = format!(
        "{}/{}",
        text("/spec/scaleTargetRef/kind"),
        text("/spec/scaleTargetRef/name")
    );
    let min_pods = match hpa.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => n.to_string(),
        None => "<unset>".to_string(),
    };
    let list = |p: &str| {
        hpa.pointer(p)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    vec![
        json!(text("/metadata/name")),
        json!(reference),
        json!(format_metrics(
            &list("/spec/metrics"),
            &list("/status/currentMetrics")
        )),
        json!(min_pods),
        json!(int("/spec/maxReplicas")),
        json!(int("/status/currentReplicas")),
        json!(ferrokube_api::printers::age(hpa, now)),
    ]
}

/// A quantity as printed; an unset one is a nil `*Quantity`, which Go
/// prints as `<nil>`.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".to_string(),
    }
}

/// `formatHPAMetrics`: the targets and, where the status has them at the
/// same index, the current values.
pub(super) fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAXIMUM: usize = 2;
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // The status of the same index, of the same source.
        let status = |source: &str| {
            statuses
                .get(i)
                .and_then(|s| s.get(source))
                .filter(|s| !s.is_null())
        };
        let source = |key: &str| spec.get(key).cloned().unwrap_or(Value::Null);
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("");
        let entry = match ty {
            "External" | "Object" => {
                let key = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let src = source(key);
                match src.pointer("/target/averageValue").filter(|v| !v.is_null()) {
                    Some(avg) => {
                        let current = status(key)
                            .and_then(|s| s.pointer("/current/averageValue"))
                            .filter(|v| !v.is_null())
                            .map_or("<unknown>".to_string(), |v| quantity(Some(v)));
                        format!("{current}/{} (avg)", quantity(Some(avg)))
                    }
                    None => {
                        let current = status(key).map_or("<unknown>".to_string(), |s| {
                            quantity(s.pointer("/current/value"))
                        });
                        format!("{current}/{}", quantity(src.pointer("/target/value")))
                    }
                }
            }
            "Pods" => {
                let src = source("pods");
                let current = status("pods").map_or("<unknown>".to_string(), |s| {
                    quantity(s.pointer("/current/averageValue"))
                });
                format!(
                    "{current}/{}",
                    quantity(src.pointer("/target/averageValue"))
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = source(key);
                let name = src.get("name").and_then(Value::as_str).unwrap_or("");
                match src.pointer("/target/averageValue").filter(|v| !v.is_null()) {
                    Some(avg) => {
                        let current = status(key).map_or("<unknown>".to_string(), |s| {
                            quantity(s.pointer("/current/averageValue"))
                        });
                        format!("{name}: {current}/{}", quantity(Some(avg)))
                    }
                    None => {
                        let current = status(key)
                            .and_then(|s| s.pointer("/current/averageUtilization"))
                            .and_then(Value::as_i64)
                            .map_or("<unknown>".to_string(), |u| format!("{u}%"));
                        let target = src
                            .pointer("/target/averageUtilization")
                            .and_then(Value::as_i64)
                            .map_or("<auto>".to_string(), |u| format!("{u}%"));
                        format!("{name}: {current}/{target}")
                    }
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAXIMUM {
        list.truncate(MAXIMUM);
        return format!("{} + {} more...", list.join(", "), count - MAXIMUM);
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(target: i64) -> Value {
        json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target}}})
    }

    fn cpu_now(current: i64) -> Value {
        json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": current, "averageValue": "45m"}}})
    }

    #[test]
    fn targets_read_as_kubectl_prints_them() {
        assert_eq!(format_metrics(&[], &[]), "<none>");
        assert_eq!(format_metrics(&[cpu(50)], &[]), "cpu: <unknown>/50%");
        assert_eq!(format_metrics(&[cpu(50)], &[cpu_now(45)]), "cpu: 45%/50%");
        let memory = json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let memory_now = json!({"type": "Resource", "resource": {"name": "memory",
            "current": {"averageValue": "52Mi"}}});
        assert_eq!(
            format_metrics(&[cpu(50), memory.clone()], &[cpu_now(45), memory_now]),
            "cpu: 45%/50%, memory: 52Mi/100Mi"
        );
        let pods = json!({"type": "Pods", "pods": {"metric": {"name": "qps"},
            "target": {"type": "AverageValue", "averageValue": "1k"}}});
        let external = json!({"type": "External", "external": {"metric": {"name": "queue"},
            "target": {"type": "AverageValue", "averageValue": "30"}}});
        assert_eq!(
            format_metrics(&[cpu(50), memory.clone(), pods.clone(), external], &[]),
            "cpu: <unknown>/50%, memory: <unknown>/100Mi + 2 more..."
        );
        assert_eq!(
            format_metrics(&[pods], &[]),
            "<unknown>/1k",
            "Pods metrics print no name"
        );
        let object = json!({"type": "Object", "object": {"metric": {"name": "rps"},
            "describedObject": {"kind": "Ingress", "name": "main"},
            "target": {"type": "Value", "value": "10"}}});
        let object_now = json!({"type": "Object", "object": {"current": {"value": "7"}}});
        assert_eq!(format_metrics(&[object], &[object_now]), "7/10");
        let container = json!({"type": "ContainerResource", "containerResource": {
            "name": "cpu", "container": "app", "target": {"type": "Utilization"}}});
        assert_eq!(format_metrics(&[container], &[]), "cpu: <unknown>/<auto>");
        assert_eq!(
            format_metrics(&[json!({"type": "Bogus"})], &[]),
            "<unknown type>"
        );
    }

    #[test]
    fn a_row_has_the_reference_and_replica_counts() {
        let hpa = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "maxReplicas": 4, "metrics": [cpu(50)]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}});
        let now = 1_767_225_600 + 90;
        assert_eq!(
            cells(&hpa, now),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: <unknown>/50%"),
                json!("<unset>"),
                json!(4),
                json!(2),
                json!("90s")
            ]
        );
    }
}
