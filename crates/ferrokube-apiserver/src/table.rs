//! `meta.k8s.io/v1` Tables: what `kubectl get` prints, computed by the
//! server. Columns follow upstream's printers for the kinds users look at
//! most; every other kind gets NAME and AGE.

use serde_json::{json, Value};

/// Human age, as Kubernetes' `duration.HumanDuration` prints it.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    let d = h / 24;
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        let rest = d % 365;
        if rest == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rest}d")
        }
    } else {
        format!("{y}y")
    }
}

fn age(obj: &Value, now: i64) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| human_duration(now - t.as_second()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn n(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn col(name: &str, ty: &str, priority: i32) -> Value {
    let mut c =
        json!({"name": name, "type": ty, "format": "", "description": "", "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

type Row = fn(&Value, i64) -> Vec<Value>;

fn pod_row(p: &Value, now: i64) -> Vec<Value> {
    let statuses = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    let total = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.len())
        .unwrap_or(0);
    let ready = statuses
        .map(|v| {
            v.iter()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count()
        })
        .unwrap_or(0);
    let restarts: i64 = statuses
        .map(|v| {
            v.iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let mut status = s(p, "/status/phase").to_string();
    if let Some(reason) = statuses.and_then(|v| {
        v.iter()
            .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
    }) {
        status = reason.to_string();
    }
    if status.is_empty() {
        status = "Pending".into();
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        status = "Terminating".into();
    }
    let ip = s(p, "/status/podIP");
    let node = s(p, "/spec/nodeName");
    let nominated = s(p, "/status/nominatedNodeName");
    vec![
        json!(s(p, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        json!(age(p, now)),
        json!(if ip.is_empty() { "<none>" } else { ip }),
        json!(if node.is_empty() { "<none>" } else { node }),
        json!(if nominated.is_empty() {
            "<none>"
        } else {
            nominated
        }),
        json!("<none>"),
    ]
}

fn deployment_row(d: &Value, now: i64) -> Vec<Value> {
    vec![
        json!(s(d, "/metadata/name")),
        json!(format!(
            "{}/{}",
            n(d, "/status/readyReplicas"),
            n(d, "/spec/replicas")
        )),
        json!(n(d, "/status/updatedReplicas")),
        json!(n(d, "/status/availableReplicas")),
        json!(age(d, now)),
    ]
}

fn service_row(svc: &Value, now: i64) -> Vec<Value> {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let port = p["port"].as_i64().unwrap_or(0);
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "<none>".into());
    let cluster_ip = s(svc, "/spec/clusterIP");
    vec![
        json!(s(svc, "/metadata/name")),
        json!(s(svc, "/spec/type")),
        json!(if cluster_ip.is_empty() {
            "<none>"
        } else {
            cluster_ip
        }),
        json!("<none>"),
        json!(ports),
        json!(age(svc, now)),
    ]
}

fn namespace_row(ns: &Value, now: i64) -> Vec<Value> {
    let phase = s(ns, "/status/phase");
    vec![
        json!(s(ns, "/metadata/name")),
        json!(if phase.is_empty() { "Active" } else { phase }),
        json!(age(ns, now)),
    ]
}

fn configmap_row(cm: &Value, now: i64) -> Vec<Value> {
    let count = |k: &str| {
        cm.get(k)
            .and_then(Value::as_object)
            .map(|m| m.len())
            .unwrap_or(0)
    };
    vec![
        json!(s(cm, "/metadata/name")),
        json!(count("data") + count("binaryData")),
        json!(age(cm, now)),
    ]
}

fn secret_row(sec: &Value, now: i64) -> Vec<Value> {
    let data = sec
        .get("data")
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0);
    vec![
        json!(s(sec, "/metadata/name")),
        json!(s(sec, "/type")),
        json!(data),
        json!(age(sec, now)),
    ]
}

fn node_row(node: &Value, now: i64) -> Vec<Value> {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.keys()
                .filter_map(|k| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    vec![
        json!(s(node, "/metadata/name")),
        json!(status),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(node, now)),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
    ]
}

fn replicaset_row(rs: &Value, now: i64) -> Vec<Value> {
    vec![
        json!(s(rs, "/metadata/name")),
        json!(n(rs, "/spec/replicas")),
        json!(n(rs, "/status/replicas")),
        json!(n(rs, "/status/readyReplicas")),
        json!(age(rs, now)),
    ]
}

fn default_row(o: &Value, now: i64) -> Vec<Value> {
    vec![json!(s(o, "/metadata/name")), json!(age(o, now))]
}

/// The columns and row printer of a kind.
fn printer(group: &str, kind: &str) -> (Vec<Value>, Row) {
    match (group, kind) {
        ("", "Pod") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
                col("Nominated Node", "string", 1),
                col("Readiness Gates", "string", 1),
            ],
            pod_row,
        ),
        ("apps", "Deployment") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
            ],
            deployment_row,
        ),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Age", "string", 0),
            ],
            replicaset_row,
        ),
        ("", "Service") => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
            ],
            service_row,
        ),
        ("", "Namespace") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            namespace_row,
        ),
        ("", "ConfigMap") => (
            vec![
                col("Name", "string", 0),
                col("Data", "string", 0),
                col("Age", "string", 0),
            ],
            configmap_row,
        ),
        ("", "Secret") => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Data", "string", 0),
                col("Age", "string", 0),
            ],
            secret_row,
        ),
        ("", "Node") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Roles", "string", 0),
                col("Age", "string", 0),
                col("Version", "string", 0),
            ],
            node_row,
        ),
        _ => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            default_row,
        ),
    }
}

/// What each row carries of its object (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(v: Option<&str>) -> Result<Self, String> {
        match v {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!("includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\"")),
        }
    }
}

/// Whether an `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"as=Table") && p.contains(&"g=meta.k8s.io")
    })
}

/// A Table of `objects` of one kind.
pub fn table(
    group: &str,
    kind: &str,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    continue_token: Option<&str>,
) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let (columns, row) = printer(group, kind);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut r = json!({"cells": row(o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => r["object"] = o.clone(),
                IncludeObject::Metadata => {
                    r["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(Value::Null),
                    })
                }
            }
            r
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_like_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (800 * 86400, "2y70d"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn pod_table() {
        let pod = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "containerStatuses": [
                {"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let t = table("", "Pod", &[pod], "9", IncludeObject::Metadata, None);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["columnDefinitions"][1]["name"], "Ready");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], 3);
        assert_eq!(cells[5], "10.42.0.5");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
