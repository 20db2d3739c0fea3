//! Column definitions and row cells of `meta.k8s.io/v1` Tables, what
//! `kubectl get` prints when it asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`. Columns follow upstream's
//! printers (name, type, format, priority: priority 1 columns show only with
//! `-o wide`); kinds without a printer get Kubernetes' default table, NAME and
//! CREATED AT. Cells are computed from the object as JSON and the time `now`.

use serde_json::{json, Value};

mod admission;
mod kinds;
mod storage;

pub use kinds::csr_condition;
pub use storage::{
    access_modes_text, class_of, is_default_class, BETA_CLASS_ANNOTATION,
    BETA_DEFAULT_CLASS_ANNOTATION, DEFAULT_CLASS_ANNOTATION,
};

/// One column of a Table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's header, as kubectl shows it.
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    pub ty: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// 0 always shown; 1 only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The `columnDefinitions` entry.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": "",
            "priority": self.priority,
        })
    }
}

const fn c(name: &'static str, ty: &'static str, priority: i32) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
};
const AGE: Column = c("Age", "string", 0);
const CONTAINERS: Column = c("Containers", "string", 1);
const IMAGES: Column = c("Images", "string", 1);
const SELECTOR: Column = c("Selector", "string", 1);

/// Age as Kubernetes' `duration.HumanDuration` prints it: `45s`, `2m3s`,
/// `10m`, `3h5m`, `30h`, `2d4h`, `20d`, `2y30d`, `9y`; up to one second in
/// the future reads `0s`, further is `<invalid>`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

fn text<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

fn seconds_of(ts: &str) -> Option<i64> {
    ts.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` if unset.
fn since(obj: &Value, ptr: &str, now: i64) -> String {
    match seconds_of(text(obj, ptr)) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

/// An object's AGE cell: the time since its creation, as kubectl prints
/// it (`now` in Unix seconds).
pub fn age(obj: &Value, now: i64) -> String {
    since(obj, "/metadata/creationTimestamp", now)
}

fn name(obj: &Value) -> Value {
    json!(text(obj, "/metadata/name"))
}

fn array<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(obj: &Value, ptr: &str) -> usize {
    obj.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Containers' names and images, comma-joined (the wide columns).
fn containers_and_images(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let join = |field: &str| {
        containers
            .iter()
            .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("name"), join("image"))
}

/// A `metav1.LabelSelector` as text: `app=web,tier in (a,b)`, `<none>`
/// when empty.
fn selector_text(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return "<none>".to_string();
    };
    match crate::labels::Selector::from_value(sel) {
        Ok(Some(s)) if !s.is_empty() => s.to_string(),
        Ok(_) => "<none>".to_string(),
        Err(_) => "<error>".to_string(),
    }
}

/// A plain `map[string]string` selector (services): `a=b,c=d`.
fn map_selector_text(sel: Option<&Value>) -> String {
    match sel.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".to_string(),
    }
}

/// The columns of a kind's Table.
#[expect(
    clippy::too_many_lines,
    reason = "a table: one row of columns per kind"
)]
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    match (group, kind) {
        ("", "Pod") => vec![
            NAME,
            c("Ready", "string", 0),
            c("Status", "string", 0),
            c("Restarts", "string", 0),
            AGE,
            c("IP", "string", 1),
            c("Node", "string", 1),
            c("Nominated Node", "string", 1),
            c("Readiness Gates", "string", 1),
        ],
        ("apps", "Deployment") => vec![
            NAME,
            c("Ready", "string", 0),
            c("Up-to-date", "integer", 0),
            c("Available", "integer", 0),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "ReplicaSet") | ("", "ReplicationController") => vec![
            NAME,
            c("Desired", "integer", 0),
            c("Current", "integer", 0),
            c("Ready", "integer", 0),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "DaemonSet") => vec![
            NAME,
            c("Desired", "integer", 0),
            c("Current", "integer", 0),
            c("Ready", "integer", 0),
            c("Up-to-date", "integer", 0),
            c("Available", "integer", 0),
            c("Node Selector", "string", 0),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "StatefulSet") => vec![NAME, c("Ready", "string", 0), AGE, CONTAINERS, IMAGES],
        ("apps", "ControllerRevision") => vec![
            NAME,
            c("Controller", "string", 0),
            c("Revision", "integer", 0),
            AGE,
        ],
        ("batch", "Job") => vec![
            NAME,
            c("Status", "string", 0),
            c("Completions", "string", 0),
            c("Duration", "string", 0),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("batch", "CronJob") => vec![
            NAME,
            c("Schedule", "string", 0),
            c("Timezone", "string", 0),
            c("Suspend", "boolean", 0),
            c("Active", "integer", 0),
            c("Last Schedule", "string", 0),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("", "Service") => vec![
            NAME,
            c("Type", "string", 0),
            c("Cluster-IP", "string", 0),
            c("External-IP", "string", 0),
            c("Port(s)", "string", 0),
            AGE,
            SELECTOR,
        ],
        ("", "Node") => vec![
            NAME,
            c("Status", "string", 0),
            c("Roles", "string", 0),
            AGE,
            c("Version", "string", 0),
            c("Internal-IP", "string", 1),
            c("External-IP", "string", 1),
            c("OS-Image", "string", 1),
            c("Kernel-Version", "string", 1),
            c("Container-Runtime", "string", 1),
        ],
        ("", "Namespace") => vec![NAME, c("Status", "string", 0), AGE],
        ("", "ConfigMap") => vec![NAME, c("Data", "string", 0), AGE],
        ("", "Secret") => vec![NAME, c("Type", "string", 0), c("Data", "string", 0), AGE],
        ("", "Endpoints") => vec![NAME, c("Endpoints", "string", 0), AGE],
        ("", "ServiceAccount") => vec![NAME, c("Secrets", "string", 0), AGE],
        ("coordination.k8s.io", "Lease") => vec![NAME, c("Holder", "string", 0), AGE],
        ("", "Event") => vec![
            c("Last Seen", "string", 0),
            c("Type", "string", 0),
            c("Reason", "string", 0),
            c("Object", "string", 0),
            c("Subobject", "string", 1),
            c("Source", "string", 1),
            c("Message", "string", 0),
            c("First Seen", "string", 1),
            c("Count", "string", 1),
            Column {
                format: "name",
                ..c("Name", "string", 1)
            },
        ],
        _ => kinds::columns(group, kind)
            .or_else(|| storage::columns(group, kind))
            .or_else(|| admission::columns(group, kind))
            .unwrap_or_else(|| vec![NAME, c("Created At", "date", 0)]),
    }
}

/// The `columnDefinitions` of a kind's Table.
pub fn column_definitions(group: &str, kind: &str) -> Value {
    Value::Array(columns(group, kind).iter().map(Column::to_json).collect())
}

/// The cells of one object's row, matching [`columns`]; `now` is in Unix
/// seconds.
#[expect(clippy::too_many_lines, reason = "a table: one row of cells per kind")]
pub fn cells(group: &str, kind: &str, obj: &Value, now: i64) -> Vec<Value> {
    match (group, kind) {
        ("", "Pod") => pod_cells(obj, now),
        ("apps", "Deployment") => {
            let (cs, is) = containers_and_images(obj.pointer("/spec/template/spec"));
            vec![
                name(obj),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    int(obj, "/spec/replicas")
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                json!(age(obj, now)),
                json!(cs),
                json!(is),
                json!(selector_text(obj.pointer("/spec/selector"))),
            ]
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            let (cs, is) = containers_and_images(obj.pointer("/spec/template/spec"));
            let selector = if kind == "ReplicaSet" {
                selector_text(obj.pointer("/spec/selector"))
            } else {
                map_selector_text(obj.pointer("/spec/selector"))
            };
            vec![
                name(obj),
                json!(int(obj, "/spec/replicas")),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                json!(age(obj, now)),
                json!(cs),
                json!(is),
                json!(selector),
            ]
        }
        ("apps", "DaemonSet") => {
            let (cs, is) = containers_and_images(obj.pointer("/spec/template/spec"));
            vec![
                name(obj),
                json!(int(obj, "/status/desiredNumberScheduled")),
                json!(int(obj, "/status/currentNumberScheduled")),
                json!(int(obj, "/status/numberReady")),
                json!(int(obj, "/status/updatedNumberScheduled")),
                json!(int(obj, "/status/numberAvailable")),
                json!(map_selector_text(
                    obj.pointer("/spec/template/spec/nodeSelector")
                )),
                json!(age(obj, now)),
                json!(cs),
                json!(is),
                json!(selector_text(obj.pointer("/spec/selector"))),
            ]
        }
        ("apps", "ControllerRevision") => {
            // `<kind>.<group>/<name>` of the controller, lower-cased kind.
            let controller = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == json!(true))
                .map(|r| {
                    let kind = r["kind"].as_str().unwrap_or("").to_lowercase();
                    let group = r["apiVersion"]
                        .as_str()
                        .and_then(|av| av.rsplit_once('/'))
                        .map(|(g, _)| g)
                        .unwrap_or("");
                    let name = r["name"].as_str().unwrap_or("");
                    if group.is_empty() {
                        format!("{kind}/{name}")
                    } else {
                        format!("{kind}.{group}/{name}")
                    }
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name(obj),
                json!(controller),
                json!(int(obj, "/revision")),
                json!(age(obj, now)),
            ]
        }
        ("apps", "StatefulSet") => {
            let (cs, is) = containers_and_images(obj.pointer("/spec/template/spec"));
            vec![
                name(obj),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    int(obj, "/spec/replicas")
                )),
                json!(age(obj, now)),
                json!(cs),
                json!(is),
            ]
        }
        ("batch", "Job") => job_cells(obj, now),
        ("batch", "CronJob") => {
            let (cs, is) =
                containers_and_images(obj.pointer("/spec/jobTemplate/spec/template/spec"));
            vec![
                name(obj),
                json!(text(obj, "/spec/schedule")),
                json!(or_none(text(obj, "/spec/timeZone"))),
                json!(obj
                    .pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
                json!(array(obj, "/status/active").len()),
                json!(match seconds_of(text(obj, "/status/lastScheduleTime")) {
                    Some(t) => human_duration(now - t),
                    None => "<none>".to_string(),
                }),
                json!(age(obj, now)),
                json!(cs),
                json!(is),
                json!(selector_text(
                    obj.pointer("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        ("", "Service") => service_cells(obj, now),
        ("", "Node") => node_cells(obj, now),
        ("", "Namespace") => vec![
            name(obj),
            json!(text(obj, "/status/phase")),
            json!(age(obj, now)),
        ],
        ("", "ConfigMap") => vec![
            name(obj),
            json!(map_len(obj, "/data") + map_len(obj, "/binaryData")),
            json!(age(obj, now)),
        ],
        ("", "Secret") => vec![
            name(obj),
            json!(text(obj, "/type")),
            json!(map_len(obj, "/data")),
            json!(age(obj, now)),
        ],
        ("", "Endpoints") => vec![name(obj), json!(endpoints_text(obj)), json!(age(obj, now))],
        ("", "ServiceAccount") => vec![
            name(obj),
            json!(array(obj, "/secrets").len()),
            json!(age(obj, now)),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            name(obj),
            json!(text(obj, "/spec/holderIdentity")),
            json!(age(obj, now)),
        ],
        ("", "Event") => event_cells(obj, now),
        _ => kinds::cells(group, kind, obj, now)
            .or_else(|| storage::cells(group, kind, obj, now))
            .or_else(|| admission::cells(group, kind, obj, now))
            .unwrap_or_else(|| vec![name(obj), json!(text(obj, "/metadata/creationTimestamp"))]),
    }
}

/// The pod's STATUS as kubectl shows it: the pod's reason, else the first
/// init container still working (`Init:1/2`, `Init:CrashLoopBackOff`), else
/// the last container's waiting or terminated reason, else the phase;
/// `Terminating` once deleted.
fn pod_status(p: &Value) -> String {
    let mut reason = text(p, "/status/phase").to_string();
    if let Some(r) = p
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        reason = r.to_string();
    }
    let init_specs = array(p, "/spec/initContainers").len();
    let mut initializing = false;
    for (i, st) in array(p, "/status/initContainerStatuses").iter().enumerate() {
        let term = st.pointer("/state/terminated");
        if term.and_then(|t| t.get("exitCode")).and_then(Value::as_i64) == Some(0) {
            continue;
        }
        if let Some(t) = term {
            let r = t.get("reason").and_then(Value::as_str).unwrap_or("");
            reason = if r.is_empty() {
                match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!(
                        "Init:ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    ),
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(r) = st
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_specs}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for st in array(p, "/status/containerStatuses").iter().rev() {
            if let Some(r) = st
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if let Some(t) = st.pointer("/state/terminated") {
                let r = t.get("reason").and_then(Value::as_str).unwrap_or("");
                reason = if !r.is_empty() {
                    r.to_string()
                } else {
                    match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        ),
                    }
                };
            } else if st.get("ready").and_then(Value::as_bool) == Some(true)
                && st.pointer("/state/running").is_some()
            {
                has_running = true;
            }
        }
        // A pod whose containers finished but one still runs is Running.
        if reason == "Completed" && has_running {
            reason = "Running".to_string();
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if text(p, "/status/reason") == "NodeLost" {
            "Unknown".to_string()
        } else {
            "Terminating".to_string()
        };
    }
    reason
}

fn pod_cells(p: &Value, now: i64) -> Vec<Value> {
    let total = array(p, "/spec/containers").len();
    let statuses = array(p, "/status/containerStatuses");
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|s| s.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    // The latest time a container last finished, for "3 (5m ago)".
    let last_restart = statuses
        .iter()
        .filter_map(|s| {
            s.pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
                .and_then(seconds_of)
        })
        .max();
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let ip = text(p, "/status/podIP");
    let gates = array(p, "/spec/readinessGates");
    let gates_text = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = array(p, "/status/conditions");
        let met = gates
            .iter()
            .filter(|g| {
                let t = g.get("conditionType").and_then(Value::as_str);
                conditions.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == t
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        name(p),
        json!(format!("{ready}/{total}")),
        json!(pod_status(p)),
        json!(restarts),
        json!(age(p, now)),
        json!(or_none(ip)),
        json!(or_none(text(p, "/spec/nodeName"))),
        json!(or_none(text(p, "/status/nominatedNodeName"))),
        json!(gates_text),
    ]
}

fn job_cells(j: &Value, now: i64) -> Vec<Value> {
    let (cs, is) = containers_and_images(j.pointer("/spec/template/spec"));
    let completions = match j.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{}/{n}", int(j, "/status/succeeded")),
        None => {
            let parallelism = j
                .pointer("/spec/parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if parallelism > 1 {
                format!("{}/1 of {parallelism}", int(j, "/status/succeeded"))
            } else {
                format!("{}/1", int(j, "/status/succeeded"))
            }
        }
    };
    let condition = |ty: &str| {
        array(j, "/status/conditions").iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(ty)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    let status = if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if j.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if condition("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if condition("FailureTarget") {
        "FailureTarget"
    } else if condition("Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    let start = seconds_of(text(j, "/status/startTime"));
    let end = seconds_of(text(j, "/status/completionTime"));
    let duration = match (start, end) {
        (Some(s), Some(e)) => human_duration(e - s),
        (Some(s), None) => human_duration(now - s),
        _ => String::new(),
    };
    vec![
        name(j),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(j, now)),
        json!(cs),
        json!(is),
        json!(selector_text(j.pointer("/spec/selector"))),
    ]
}

fn service_cells(svc: &Value, now: i64) -> Vec<Value> {
    let ty = text(svc, "/spec/type");
    let ty = if ty.is_empty() { "ClusterIP" } else { ty };
    let cluster_ip = or_none(text(svc, "/spec/clusterIP"));
    let mut external: Vec<String> = array(svc, "/spec/externalIPs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let external = match ty {
        "ExternalName" => text(svc, "/spec/externalName").to_string(),
        "LoadBalancer" => {
            for ing in array(svc, "/status/loadBalancer/ingress") {
                for f in ["ip", "hostname"] {
                    if let Some(v) = ing.get(f).and_then(Value::as_str) {
                        external.push(v.to_string());
                    }
                }
            }
            if external.is_empty() {
                "<pending>".to_string()
            } else {
                external.join(",")
            }
        }
        _ if external.is_empty() => "<none>".to_string(),
        _ => external.join(","),
    };
    let ports: Vec<String> = array(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|n| *n != 0)
            {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        name(svc),
        json!(ty),
        json!(cluster_ip),
        json!(external),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(age(svc, now)),
        json!(map_selector_text(svc.pointer("/spec/selector"))),
    ]
}

fn node_cells(node: &Value, now: i64) -> Vec<Value> {
    let ready = array(node, "/status/conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str));
    let mut status = vec![match ready {
        Some("True") => "Ready",
        _ => "NotReady",
    }
    .to_string()];
    if ready.is_none() {
        status = vec!["Unknown".to_string()];
    }
    if node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().filter(|r| !r.is_empty()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let address = |ty: &str| {
        array(node, "/status/addresses")
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(ty))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |f: &str| {
        let v = text(node, &format!("/status/nodeInfo/{f}"));
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(node, now)),
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// `10.42.0.5:80,10.42.0.6:80 + 3 more...`: at most three addresses, as
/// kubectl lists them.
fn endpoints_text(ep: &Value) -> String {
    let mut list = Vec::new();
    let mut count = 0;
    for subset in array(ep, "/subsets") {
        let ports = subset
            .get("ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for addr in subset
            .get("addresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
            if ports.is_empty() {
                count += 1;
                if list.len() < 3 {
                    list.push(ip.to_string());
                }
            }
            for p in ports {
                count += 1;
                if list.len() < 3 {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    if list.is_empty() {
        return "<none>".to_string();
    }
    let mut out = list.join(",");
    if count > list.len() {
        out.push_str(&format!(" + {} more...", count - list.len()));
    }
    out
}

fn event_cells(e: &Value, now: i64) -> Vec<Value> {
    let first = if text(e, "/firstTimestamp").is_empty() {
        text(e, "/eventTime")
    } else {
        text(e, "/firstTimestamp")
    };
    let last = if !text(e, "/lastTimestamp").is_empty() {
        text(e, "/lastTimestamp")
    } else if !text(e, "/series/lastObservedTime").is_empty() {
        text(e, "/series/lastObservedTime")
    } else {
        first
    };
    let ago = |ts: &str| match seconds_of(ts) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    };
    let count = match e.pointer("/series/count").and_then(Value::as_i64) {
        Some(n) => n,
        None => int(e, "/count"),
    };
    let kind = text(e, "/involvedObject/kind").to_ascii_lowercase();
    let object = format!("{kind}/{}", text(e, "/involvedObject/name"));
    let component = if text(e, "/source/component").is_empty() {
        text(e, "/reportingComponent")
    } else {
        text(e, "/source/component")
    };
    let host = text(e, "/source/host");
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(ago(last)),
        json!(text(e, "/type")),
        json!(text(e, "/reason")),
        json!(object),
        json!(text(e, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(e, "/message").trim()),
        json!(ago(first)),
        json!(count),
        name(e),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-01T12:00:00Z";

    fn now() -> i64 {
        seconds_of(NOW).unwrap()
    }

    fn ago(secs: i64) -> String {
        jiff::Timestamp::from_second(now() - secs)
            .unwrap()
            .to_string()
    }

    fn headers(group: &str, kind: &str, wide: bool) -> Vec<&'static str> {
        columns(group, kind)
            .into_iter()
            .filter(|c| wide || c.priority == 0)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn ages_read_like_kubectl() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (760 * 86400, "2y30d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    #[expect(
        clippy::too_many_lines,
        reason = "a table of every kind's headers against upstream's"
    )]
    fn column_headers_match_upstream_printers() {
        assert_eq!(
            headers("", "Pod", false),
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        assert_eq!(
            headers("", "Pod", true),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            headers("apps", "Deployment", false),
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
        assert_eq!(
            headers("apps", "Deployment", true)[5..],
            ["Containers", "Images", "Selector"]
        );
        assert_eq!(
            headers("apps", "ReplicaSet", false),
            ["Name", "Desired", "Current", "Ready", "Age"]
        );
        assert_eq!(
            headers("", "Service", false),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age"
            ]
        );
        assert_eq!(
            headers("", "Node", false),
            ["Name", "Status", "Roles", "Age", "Version"]
        );
        assert_eq!(headers("", "Namespace", false), ["Name", "Status", "Age"]);
        assert_eq!(headers("", "ConfigMap", false), ["Name", "Data", "Age"]);
        assert_eq!(
            headers("", "Secret", false),
            ["Name", "Type", "Data", "Age"]
        );
        assert_eq!(
            headers("", "Endpoints", false),
            ["Name", "Endpoints", "Age"]
        );
        assert_eq!(
            headers("", "ServiceAccount", false),
            ["Name", "Secrets", "Age"]
        );
        assert_eq!(
            headers("batch", "Job", false),
            ["Name", "Status", "Completions", "Duration", "Age"]
        );
        assert_eq!(
            headers("batch", "CronJob", false),
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age"
            ]
        );
        assert_eq!(
            headers("apps", "DaemonSet", false),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age"
            ]
        );
        assert_eq!(
            headers("apps", "StatefulSet", false),
            ["Name", "Ready", "Age"]
        );
        assert_eq!(
            headers("coordination.k8s.io", "Lease", false),
            ["Name", "Holder", "Age"]
        );
        assert_eq!(
            headers("", "Event", false),
            ["Last Seen", "Type", "Reason", "Object", "Message"]
        );
        assert_eq!(
            headers("rbac.authorization.k8s.io", "Role", false),
            ["Name", "Created At"]
        );
        let defs = column_definitions("", "Pod");
        assert_eq!(
            defs[0],
            json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0})
        );
        assert_eq!(defs[5]["priority"], 1);
    }

    #[test]
    fn every_row_fits_its_columns() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(30)}});
        for (g, k) in [
            ("", "Pod"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("", "ReplicationController"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("apps", "StatefulSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("", "Service"),
            ("", "Node"),
            ("", "Namespace"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "Endpoints"),
            ("", "ServiceAccount"),
            ("coordination.k8s.io", "Lease"),
            ("", "Event"),
            ("", "LimitRange"),
        ] {
            assert_eq!(cells(g, k, &obj, now()).len(), columns(g, k).len(), "{k}");
        }
    }

    #[test]
    fn pod_rows() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(125)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.42.0.7", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": ago(300)}}},
                {"name": "b", "ready": false, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        assert_eq!(
            cells("", "Pod", &pod, now()),
            vec![
                json!("web"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("3 (5m ago)"),
                json!("2m5s"),
                json!("10.42.0.7"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"}});
        let row = cells("", "Pod", &pending, now());
        assert_eq!(row[2], "Pending");
        assert_eq!(row[3], "0");
        assert_eq!(row[4], "<unknown>");
        let init = json!({"metadata": {"name": "i"}, "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0}}},
            {"name": "b", "state": {"running": {}}}
        ]}});
        assert_eq!(cells("", "Pod", &init, now())[2], "Init:1/2");
        let done = json!({"metadata": {"name": "d"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(cells("", "Pod", &done, now())[2], "Completed");
        let killed = json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(cells("", "Pod", &killed, now())[2], "Signal:9");
        let evicted =
            json!({"metadata": {"name": "e"}, "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(cells("", "Pod", &evicted, now())[2], "Evicted");
        let deleting = json!({"metadata": {"name": "t", "deletionTimestamp": ago(1)}, "status": {"phase": "Running"}});
        assert_eq!(cells("", "Pod", &deleting, now())[2], "Terminating");
        let gated = json!({"metadata": {"name": "g"}, "spec": {"readinessGates": [{"conditionType": "x/ready"}, {"conditionType": "y"}]},
            "status": {"conditions": [{"type": "x/ready", "status": "True"}]}});
        assert_eq!(cells("", "Pod", &gated, now())[8], "1/2");
    }

    #[test]
    fn workload_rows() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(3 * 3600)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            cells("apps", "Deployment", &d, now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3h"),
                json!("nginx,side"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": ago(100)},
            "spec": {"completions": 1},
            "status": {"succeeded": 1, "startTime": ago(90), "completionTime": ago(60),
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        let row = cells("batch", "Job", &job, now());
        assert_eq!(row[1..4], [json!("Complete"), json!("1/1"), json!("30s")]);
        let running = json!({"metadata": {"name": "r"}, "spec": {"parallelism": 2}, "status": {"startTime": ago(10)}});
        let row = cells("batch", "Job", &running, now());
        assert_eq!(
            row[1..4],
            [json!("Running"), json!("0/1 of 2"), json!("10s")]
        );
        let cj = json!({"metadata": {"name": "c", "creationTimestamp": ago(600)},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
            "status": {"active": [{"name": "c-1"}], "lastScheduleTime": ago(65)}});
        assert_eq!(
            cells("batch", "CronJob", &cj, now())[..7],
            [
                json!("c"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!(false),
                json!(1),
                json!("65s"),
                json!("10m")
            ]
        );
        let ds = json!({"metadata": {"name": "agent"}, "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            cells("apps", "DaemonSet", &ds, now())[1..7],
            [
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux")
            ]
        );
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(cells("apps", "StatefulSet", &sts, now())[1], "3/3");
        let cr = json!({"metadata": {"name": "db-5f7c", "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}]}, "revision": 2});
        assert_eq!(
            cells("apps", "ControllerRevision", &cr, now())[..3],
            [json!("db-5f7c"), json!("statefulset.apps/db"), json!(2)]
        );
    }

    #[test]
    fn service_node_and_small_kinds() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.43.0.12",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"}}});
        assert_eq!(
            cells("", "Service", &svc, now())[1..5],
            [
                json!("NodePort"),
                json!("10.43.0.12"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.9", "ports": []}});
        assert_eq!(cells("", "Service", &lb, now())[3], "<pending>");
        let headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            cells("", "Service", &headless, now())[1..5],
            [
                json!("ClusterIP"),
                json!("None"),
                json!("<none>"),
                json!("<none>")
            ]
        );

        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.4"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://1.6"}}});
        assert_eq!(
            cells("", "Node", &node, now())[1..],
            [
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("<unknown>"),
                json!("v1.33.0"),
                json!("192.0.2.4"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("containerd://1.6")
            ]
        );
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(cells("", "ConfigMap", &cm, now())[1], 3);
        let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(
            cells("", "Secret", &sec, now())[1..3],
            [json!("Opaque"), json!(1)]
        );
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            cells("", "Endpoints", &ep, now())[1],
            "10.0.0.1:80,10.0.0.1:443,10.0.0.2:80 + 1 more..."
        );
        assert_eq!(
            cells("", "Endpoints", &json!({"metadata": {"name": "e"}}), now())[1],
            "<none>"
        );
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}});
        assert_eq!(
            cells("coordination.k8s.io", "Lease", &lease, now())[1],
            "n1"
        );
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T00:00:00Z"}});
        assert_eq!(
            cells("rbac.authorization.k8s.io", "Role", &role, now()),
            vec![json!("r"), json!("2024-05-01T00:00:00Z")]
        );
    }

    #[test]
    fn event_rows() {
        let ev = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Scheduled",
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
            "source": {"component": "kubelet", "host": "n1"}, "message": "ok\n",
            "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 4});
        assert_eq!(
            cells("", "Event", &ev, now()),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("ok"),
                json!("10m"),
                json!(4),
                json!("web.1")
            ]
        );
        let new_style = json!({"metadata": {"name": "e"}, "eventTime": ago(5), "reportingComponent": "sched",
            "involvedObject": {"kind": "Pod", "name": "p"}, "series": {"count": 7, "lastObservedTime": ago(2)}});
        let row = cells("", "Event", &new_style, now());
        assert_eq!(row[0], "2s");
        assert_eq!(row[5], "sched");
        assert_eq!(row[7], "5s");
        assert_eq!(row[8], 7);
    }
}
