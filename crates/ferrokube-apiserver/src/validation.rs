//! Defaulting and validation of objects on write, as Kubernetes does them for
//! the built-in kinds. So far: object names by each kind's rule, labels, and
//! the defaults users see most (namespace phase, pod restart and DNS policy,
//! service type, deployment strategy and limits).

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation;
use serde_json::{json, Value};

/// Checks what every object must satisfy, and the kind's own rules.
pub fn validate(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let mut errs = validation::validate_object_meta(
        &meta,
        validation::NameRule::for_kind(def.group, def.kind),
        def.namespaced,
    );
    match (def.group, def.kind) {
        ("", "Pod") => validate_pod_spec(obj.get("spec"), "spec", &mut errs),
        ("apps", "Deployment")
        | ("apps", "ReplicaSet")
        | ("apps", "StatefulSet")
        | ("apps", "DaemonSet") => {
            validate_pod_spec(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &mut errs,
            );
            if obj.pointer("/spec/selector").is_none() {
                errs.push(FieldError::required("spec.selector", ""));
            }
        }
        ("", "ConfigMap") => {
            if let Some(data) = obj.get("data").and_then(Value::as_object) {
                for (k, v) in data {
                    if !v.is_string() {
                        errs.push(FieldError::invalid(
                            format!("data[{k}]"),
                            v.clone(),
                            "must be a string",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    errs
}

/// What may not change on update, by kind: workload selectors, a Job's
/// template, a ConfigMap or Secret marked immutable.
pub fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> Vec<FieldError> {
    let changed = |ptr: &str| old.pointer(ptr) != new.pointer(ptr);
    let immutable = |field: &str, ptr: &str| {
        FieldError::invalid(
            field,
            new.pointer(ptr).cloned().unwrap_or(Value::Null),
            "field is immutable",
        )
    };
    let frozen = old.get("immutable").and_then(Value::as_bool) == Some(true);
    let mut errs = Vec::new();
    match (def.group, def.kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            if changed("/spec/selector") =>
        {
            errs.push(immutable("spec.selector", "/spec/selector"));
        }
        ("batch", "Job") => {
            if changed("/spec/selector") {
                errs.push(immutable("spec.selector", "/spec/selector"));
            }
            if changed("/spec/template") {
                errs.push(immutable("spec.template", "/spec/template"));
            }
        }
        ("", "ConfigMap" | "Secret") if frozen => {
            for f in ["data", "binaryData", "stringData"] {
                if old.get(f) != new.get(f) {
                    errs.push(FieldError::forbidden(
                        f,
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
            if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                errs.push(FieldError::forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        _ => {}
    }
    errs
}

fn validate_pod_spec(spec: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(spec) = spec else {
        errs.push(FieldError::required(path, ""));
        return;
    };
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => {
            errs.push(FieldError::required(format!("{path}.containers"), ""))
        }
        Some(cs) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    errs.push(FieldError::required(
                        format!("{path}.containers[{i}].name"),
                        "",
                    ));
                } else if !validation::is_dns1123_label(name).is_empty() {
                    errs.push(FieldError::invalid(format!("{path}.containers[{i}].name"), name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
                } else if !seen.insert(name.to_string()) {
                    errs.push(FieldError::duplicate(
                        format!("{path}.containers[{i}].name"),
                        name,
                    ));
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    errs.push(FieldError::required(
                        format!("{path}.containers[{i}].image"),
                        "",
                    ));
                }
            }
        }
    }
}

fn set_default(v: &mut Value, key: &str, default: Value) {
    if let Some(m) = v.as_object_mut() {
        m.entry(key.to_string()).or_insert(default);
    }
}

fn default_pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for c in cs {
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let tag_latest = !image.contains(':') || image.ends_with(":latest");
            let digest = image.contains('@');
            set_default(
                c,
                "imagePullPolicy",
                json!(if tag_latest && !digest {
                    "Always"
                } else {
                    "IfNotPresent"
                }),
            );
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            set_default(c, "resources", json!({}));
        }
    }
}

/// How long a pod stays on a not-ready or unreachable node before eviction,
/// unless it says otherwise (the DefaultTolerationSeconds admission plugin).
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Gives a new pod NoExecute tolerations of the not-ready and unreachable
/// taints for `DEFAULT_TOLERATION_SECONDS`, each unless one of its own
/// tolerations already covers that taint (same or empty key, NoExecute or
/// empty effect), as Kubernetes' DefaultTolerationSeconds admission does.
fn default_toleration_seconds(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        });
        if !covered {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
}

/// Fills in Kubernetes' defaults on a new object.
pub fn default_on_create(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Namespace") => {
            // Kubernetes' namespace strategy adds the `kubernetes` finalizer
            // to every new namespace, whatever the body held: an empty spec
            // (a protobuf body always carries one) or other finalizers.
            set_default(obj, "spec", json!({}));
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "finalizers", json!([]));
                if let Some(list) = spec.get_mut("finalizers").and_then(Value::as_array_mut) {
                    if !list.iter().any(|f| f == "kubernetes") {
                        list.push(json!("kubernetes"));
                    }
                }
            }
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
                default_toleration_seconds(spec);
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        _ => default_fields(def, obj),
    }
}

/// Fills in Kubernetes' defaults on an updated object: Kubernetes defaults
/// every object it decodes, so a template changed by an update or patch is
/// defaulted like a new one (the Deployment controller compares templates).
pub fn default_on_update(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Namespace") => {}
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        _ => default_fields(def, obj),
    }
}

/// The defaults of fields below `spec`, for create and update alike.
fn default_fields(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Service") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(spec, "strategy", json!({}));
                if let Some(strategy) = spec.get_mut("strategy") {
                    set_default(strategy, "type", json!("RollingUpdate"));
                    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                        set_default(strategy, "rollingUpdate", json!({}));
                        if let Some(ru) = strategy.get_mut("rollingUpdate") {
                            set_default(ru, "maxUnavailable", json!("25%"));
                            set_default(ru, "maxSurge", json!("25%"));
                        }
                    }
                }
                if let Some(t) = spec.pointer_mut("/template/spec") {
                    default_pod_spec(t);
                }
            }
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "replicas", json!(1));
                if let Some(t) = spec.pointer_mut("/template/spec") {
                    default_pod_spec(t);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_api::registry::Registry;

    #[test]
    fn names_by_kind() {
        let r = Registry::default();
        let ns = r.get("", "v1", "namespaces").unwrap();
        let cm = r.get("", "v1", "configmaps").unwrap();
        let svc = r.get("", "v1", "services").unwrap();
        // Cluster-scoped objects have no namespace, namespaced ones do.
        let obj = |n: &str| json!({"metadata": {"name": n}});
        let nsd = |n: &str| json!({"metadata": {"name": n, "namespace": "default"}});
        assert!(validate(ns, &obj("team-a")).is_empty());
        assert!(!validate(ns, &obj("team.a")).is_empty());
        assert!(validate(cm, &nsd("app.config")).is_empty());
        assert!(!validate(cm, &nsd("App")).is_empty());
        assert!(!validate(svc, &nsd("1web")).is_empty());
        assert!(validate(svc, &nsd("web1")).is_empty());
        let bad_label =
            json!({"metadata": {"name": "x", "namespace": "default", "labels": {"a b": "c"}}});
        assert_eq!(validate(cm, &bad_label)[0].field, "metadata.labels");
    }

    #[test]
    fn every_new_namespace_gets_the_kubernetes_finalizer() {
        let r = Registry::default();
        let ns = r.get("", "v1", "namespaces").unwrap();
        // A JSON body without spec, a protobuf body's empty spec, and a spec
        // with a finalizer of its own.
        for (body, want) in [
            (json!({"metadata": {"name": "a"}}), json!(["kubernetes"])),
            (
                json!({"metadata": {"name": "a"}, "spec": {}}),
                json!(["kubernetes"]),
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["example.com/x"]}}),
                json!(["example.com/x", "kubernetes"]),
            ),
        ] {
            let mut obj = body;
            default_on_create(ns, &mut obj);
            assert_eq!(obj["spec"]["finalizers"], want);
            assert_eq!(obj["status"]["phase"], "Active");
        }
    }

    #[test]
    fn pods_need_containers_with_images() {
        let r = Registry::default();
        let pods = r.get("", "v1", "pods").unwrap();
        let errs = validate(
            pods,
            &json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "x"}]}}),
        );
        let fields: Vec<_> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            fields.contains(&"spec.containers[0].image: Required value".to_string()),
            "{fields:?}"
        );
        assert!(fields
            .iter()
            .any(|f| f.starts_with("spec.containers[1].name: Duplicate value")));
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}, {"name": "d", "image": "busybox:1.36"}]}});
        default_on_create(pods, &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["status"]["phase"], "Pending");
    }

    #[test]
    fn new_pods_tolerate_not_ready_and_unreachable_nodes_for_five_minutes() {
        let r = Registry::default();
        let pods = r.get("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        default_on_create(pods, &mut pod);
        let tols = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tols.len(), 2);
        assert_eq!(tols[0]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(tols[1]["key"], "node.kubernetes.io/unreachable");
        assert!(tols.iter().all(|t| t["effect"] == "NoExecute"
            && t["operator"] == "Exists"
            && t["tolerationSeconds"] == 300));
        // A pod's own toleration of a taint is kept and not doubled.
        let mut own = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        default_on_create(pods, &mut own);
        let tols = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tols.len(), 2);
        assert_eq!(tols[0]["tolerationSeconds"], 5);
        assert_eq!(tols[1]["key"], "node.kubernetes.io/not-ready");
    }
}
