//! Validation of objects on write, as Kubernetes does it for the built-in
//! kinds. So far: object names by each kind's rule, labels, pod specs and
//! templates, and what may not change on update. (Defaults are
//! [`crate::defaults`]'.)

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation;
use serde_json::Value;

/// Checks what every object must satisfy, and the kind's own rules.
pub(crate) fn validate(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
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
pub(crate) fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> Vec<FieldError> {
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

pub(crate) fn validate_pod_spec(spec: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
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
    crate::pod_validation::validate_spec(spec, path, errs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_api::registry::Registry;
    use serde_json::json;

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
    }
}
