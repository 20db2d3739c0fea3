//! Pod defaults (`SetDefaults_Pod`, `SetDefaults_PodSpec` and those of
//! every type a pod spec holds: containers, ports, probes, handlers,
//! volumes, field selectors), and the pod's QoS class as Kubernetes
//! computes it on create.

use serde_json::{json, Map, Value};

use ferrokube_api::quantity;

use super::{default_int, default_nil, default_str, each, is_zero, object_at, with};

/// The defaults of a Pod: those of its spec, plus what only a Pod gets
/// (requests from limits, service links, host-network ports).
pub(crate) fn pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    pod_spec(spec);
    // Requests default to limits, per container, only in a Pod (not in
    // templates), as `SetDefaults_Pod` does.
    for list in ["containers", "initContainers"] {
        each(spec, list, requests_from_limits);
    }
    default_nil(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            each(spec, list, |c| {
                each(c, "ports", |p| {
                    if is_zero(p.get("hostPort")) {
                        if let Some(port) = p.get("containerPort").cloned() {
                            p["hostPort"] = port;
                        }
                    }
                })
            });
        }
    }
}

/// The defaults of a pod template (`spec.template` of the workload kinds):
/// those of its pod spec only.
pub(crate) fn template(template: &mut Value) {
    if let Some(spec) = template.get_mut("spec").filter(|s| s.is_object()) {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything in a pod spec.
pub(crate) fn pod_spec(spec: &mut Value) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_nil(spec, "securityContext", json!({}));
    default_nil(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each(spec, list, container);
    }
    each(spec, "volumes", volume);
}

/// `SetDefaults_Container`, and the defaults of its ports, probes,
/// lifecycle handlers and environment.
fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = if image_tag(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    default_str(c, "imagePullPolicy", policy);
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // A Go struct, always written: `resources: {}`.
    object_at(c, "resources");
    each(c, "ports", |p| default_str(p, "protocol", "TCP"));
    for probe_field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        with(c, probe_field, probe);
    }
    with(c, "lifecycle", |l| {
        with(l, "postStart", handler);
        with(l, "preStop", handler);
    });
    each(c, "env", |e| {
        with(e, "valueFrom", |from| with(from, "fieldRef", field_ref))
    });
}

/// The tag of an image reference as Kubernetes' `ParseImageName` gives it:
/// the tag written, else `latest` unless a digest pins the image.
fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => Some(tag),
        _ if digest.is_some() => None,
        _ => Some("latest"),
    }
}

/// `SetDefaults_Probe`, and its handler's.
fn probe(p: &mut Value) {
    default_int(p, "timeoutSeconds", 1);
    default_int(p, "periodSeconds", 10);
    default_int(p, "successThreshold", 1);
    default_int(p, "failureThreshold", 3);
    handler(p);
}

/// The defaults of a probe's or lifecycle hook's action.
fn handler(h: &mut Value) {
    with(h, "httpGet", |g| {
        default_str(g, "path", "/");
        default_str(g, "scheme", "HTTP");
    });
    // `service` is written even when empty (`+default=""`).
    with(h, "grpc", |g| default_nil(g, "service", json!("")));
}

/// `SetDefaults_ObjectFieldSelector`.
fn field_ref(f: &mut Value) {
    default_str(f, "apiVersion", "v1");
}

/// The file mode Kubernetes gives secret, configMap, downwardAPI and
/// projected volumes (0644).
const DEFAULT_MODE: i64 = 0o644;

/// A volume's defaults: an emptyDir when it names no source, the default
/// modes, a projected token's lifetime, a hostPath's type.
fn volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else {
        return;
    };
    if !m.iter().any(|(k, val)| k != "name" && !val.is_null()) {
        m.insert("emptyDir".into(), Value::Object(Map::new()));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        with(v, source, |s| {
            default_nil(s, "defaultMode", json!(DEFAULT_MODE))
        });
    }
    with(v, "downwardAPI", |d| {
        each(d, "items", |i| with(i, "fieldRef", field_ref))
    });
    with(v, "projected", |p| {
        each(p, "sources", |s| {
            with(s, "serviceAccountToken", |t| {
                default_nil(t, "expirationSeconds", json!(3600))
            });
            with(s, "downwardAPI", |d| {
                each(d, "items", |i| with(i, "fieldRef", field_ref))
            });
        })
    });
    with(v, "hostPath", host_path);
    with(v, "ephemeral", |e| {
        with(e, "volumeClaimTemplate", |t| {
            with(t, "spec", super::core::persistent_volume_claim_spec)
        })
    });
}

/// `SetDefaults_HostPathVolumeSource`: the type is written, empty.
pub(crate) fn host_path(h: &mut Value) {
    default_nil(h, "type", json!(""));
}

/// Gives a container a request for each resource it limits but does not
/// request.
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(resources) = object_at(c, "resources") else {
        return;
    };
    let Some(requests) = object_at(resources, "requests").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// The resources the QoS class looks at.
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// The pod's QoS class as Kubernetes' `GetPodQOS` computes it from its
/// (defaulted) spec: BestEffort with no CPU or memory requests or limits,
/// Guaranteed when every container limits both and requests what it
/// limits, Burstable otherwise.
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let mut requests = [0i128; 2];
    let mut limits = [0i128; 2];
    let mut requested = [false; 2];
    let mut limited = [false; 2];
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let amount = |kind: &str, res: &str| {
            c.pointer(&format!("/resources/{kind}/{res}"))
                .and_then(quantity::json_milli)
                .filter(|v| *v > 0)
        };
        let mut both_limited = true;
        for (i, res) in QOS_RESOURCES.iter().enumerate() {
            if let Some(v) = amount("requests", res) {
                requests[i] += v;
                requested[i] = true;
            }
            match amount("limits", res) {
                Some(v) => {
                    limits[i] += v;
                    limited[i] = true;
                }
                None => both_limited = false,
            }
        }
        if !both_limited {
            guaranteed = false;
        }
    }
    if !requested.iter().any(|r| *r) && !limited.iter().any(|l| *l) {
        return "BestEffort";
    }
    if guaranteed {
        for i in 0..QOS_RESOURCES.len() {
            if requested[i] && (!limited[i] || limits[i] != requests[i]) {
                guaranteed = false;
            }
        }
    }
    if guaranteed && requested == limited {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Whether a pod spec's `schedulingGates` hold any gate.
pub(crate) fn has_scheduling_gates(spec: &Value) -> bool {
    spec.get("schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty())
}
