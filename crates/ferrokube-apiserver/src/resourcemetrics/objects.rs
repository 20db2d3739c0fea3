//! NodeMetrics and PodMetrics as metrics-server writes them
//! (`k8s.io/metrics` v1beta1 types, `pkg/storage/node.go`, `pod.go`): the
//! object's name, namespace and labels with a creationTimestamp of now,
//! the usage's timestamp and window, and `cpu`, `memory` and `swap` in
//! canonical quantities; their lists; and the Table metrics-server's
//! `ConvertToTable` makes (`pkg/api/table.go`): Name, one column per usage
//! (sorted), Window.

use std::collections::BTreeMap;

use ferrokube_metrics::format::{bytes_quantity, cpu_quantity, go_duration, rfc3339};
use ferrokube_metrics::{PodUsage, TimeInfo, Usage};
use serde_json::{json, Value};

use crate::table::IncludeObject;

/// The group version served.
pub(crate) const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// A usage as a `ResourceList`.
fn usage_json(u: &Usage) -> Value {
    json!({
        "cpu": cpu_quantity(u.cpu),
        "memory": bytes_quantity(u.memory),
        "swap": bytes_quantity(u.swap),
    })
}

fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    now: &str,
) -> Value {
    let mut m = json!({"name": name, "creationTimestamp": now});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    if !labels.is_empty() {
        m["labels"] = json!(labels);
    }
    m
}

/// A NodeMetrics.
pub(crate) fn node_metrics(
    name: &str,
    labels: &BTreeMap<String, String>,
    usage: &Usage,
    time: &TimeInfo,
    now: &str,
) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(name, None, labels, now),
        "timestamp": rfc3339(time.timestamp),
        "window": go_duration(time.window),
        "usage": usage_json(usage),
    })
}

/// A PodMetrics.
pub(crate) fn pod_metrics(
    namespace: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    usage: &PodUsage,
    now: &str,
) -> Value {
    let containers: Vec<Value> = usage
        .containers
        .iter()
        .map(|(c, u)| json!({"name": c, "usage": usage_json(u)}))
        .collect();
    let timestamp = if usage.time.timestamp == 0 {
        ferrokube_metrics::format::ZERO_TIME.to_string()
    } else {
        rfc3339(usage.time.timestamp)
    };
    json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(name, Some(namespace), labels, now),
        "timestamp": timestamp,
        "window": go_duration(usage.time.window),
        "containers": containers,
    })
}

/// A list of `kind` (`NodeMetricsList`, `PodMetricsList`).
pub(crate) fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items})
}

/// The usage a Table row shows: a node's, or the sum of a pod's
/// containers'.
fn row_usage(obj: &Value) -> BTreeMap<String, u128> {
    let mut sum = BTreeMap::new();
    let mut add = |usage: &Value| {
        for (k, v) in usage.as_object().into_iter().flatten() {
            let n = v
                .as_str()
                .and_then(ferrokube_api::quantity::parse_milli)
                .unwrap_or(0)
                .max(0) as u128;
            // Nanocores for CPU: milli is too coarse, so CPU is re-read.
            let n = if k == "cpu" {
                v.as_str().and_then(nanos).unwrap_or(n * 1_000_000)
            } else {
                n / 1000
            };
            *sum.entry(k.clone()).or_insert(0) += n;
        }
    };
    if let Some(u) = obj.get("usage") {
        add(u);
    }
    for c in obj
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(u) = c.get("usage") {
            add(u);
        }
    }
    sum
}

/// A CPU quantity written by [`cpu_quantity`] in nanocores.
fn nanos(q: &str) -> Option<u128> {
    let (digits, scale) = match q.as_bytes().last()? {
        b'n' => (&q[..q.len() - 1], 1),
        b'u' => (&q[..q.len() - 1], 1_000),
        b'm' => (&q[..q.len() - 1], 1_000_000),
        b'k' => (&q[..q.len() - 1], 1_000_000_000_000),
        b'0'..=b'9' => (q, 1_000_000_000),
        _ => return None,
    };
    digits.parse::<u128>().ok().map(|d| d * scale)
}

fn cell(name: &str, amount: u128) -> String {
    let v = u64::try_from(amount).unwrap_or(u64::MAX);
    if name == "cpu" {
        cpu_quantity(v)
    } else {
        bytes_quantity(v)
    }
}

/// The Table of `objects` (NodeMetrics or PodMetrics), as metrics-server
/// makes it, rows' objects as `include` asks. No objects: no columns.
pub(crate) fn table(objects: &[Value], include: IncludeObject, with_columns: bool) -> Value {
    let mut names: Option<Vec<String>> = None;
    let mut columns = Value::Null;
    let mut rows = Vec::new();
    for obj in objects {
        let usage = row_usage(obj);
        let names = names.get_or_insert_with(|| usage.keys().cloned().collect());
        if columns.is_null() {
            let mut cols = vec![
                json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0}),
            ];
            for n in names.iter() {
                cols.push(json!({"name": n, "type": "string", "format": "quantity", "description": "", "priority": 0}));
            }
            cols.push(json!({"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0}));
            columns = Value::Array(cols);
        }
        let mut cells = vec![obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null)];
        for n in names.iter() {
            cells.push(json!(cell(n, usage.get(n).copied().unwrap_or(0))));
        }
        cells.push(obj.get("window").cloned().unwrap_or(Value::Null));
        let mut row = json!({"cells": cells});
        match include {
            IncludeObject::None => row["object"] = Value::Null,
            IncludeObject::Object => row["object"] = obj.clone(),
            IncludeObject::Metadata => {
                row["object"] = json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
                })
            }
        }
        rows.push(row);
    }
    if !with_columns {
        columns = Value::Null;
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": if rows.is_empty() { Value::Null } else { Value::Array(rows) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn usage(cpu: u64, memory: u64) -> Usage {
        Usage {
            cpu,
            memory,
            swap: 0,
        }
    }

    #[test]
    fn node_metrics_as_metrics_server_writes_them() {
        let labels = BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())]);
        let time = TimeInfo {
            timestamp: 1_733_526_000 * S + 5,
            window: 15_002_000_000,
        };
        let v = node_metrics(
            "n1",
            &labels,
            &usage(123_456_789, 1_264_640),
            &time,
            "2024-12-06T23:00:05Z",
        );
        assert_eq!(
            v,
            json!({
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": "n1", "creationTimestamp": "2024-12-06T23:00:05Z", "labels": {"kubernetes.io/os": "linux"}},
                "timestamp": "2024-12-06T23:00:00Z",
                "window": "15.002s",
                "usage": {"cpu": "123456789n", "memory": "1235Ki", "swap": "0"},
            })
        );
    }

    #[test]
    fn a_pod_table_sums_its_containers() {
        let u = PodUsage {
            containers: vec![
                ("a".into(), usage(250_000_000, 48 << 20)),
                ("b".into(), usage(1_000_000, 16 << 20)),
            ],
            time: TimeInfo {
                timestamp: 100 * S,
                window: 5 * S,
            },
        };
        let pod = pod_metrics("default", "web", &BTreeMap::new(), &u, "now");
        assert_eq!(pod["containers"][1]["usage"]["cpu"], "1m");
        let t = table(&[pod], IncludeObject::Metadata, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "cpu", "memory", "swap", "Window"]);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "251m", "64Mi", "0", "5s"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        let empty = table(&[], IncludeObject::Metadata, true);
        assert!(empty["columnDefinitions"].is_null() && empty["rows"].is_null());
    }
}
