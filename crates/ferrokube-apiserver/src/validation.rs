//! Validation of pod specs, as Kubernetes does it, shared by the
//! strategies of Pods and of the kinds with pod templates
//! (`crate::strategy`). Each kind's other rules are its strategy's.

use ferrokube_api::status::FieldError;
use ferrokube_api::validation;
use serde_json::Value;

/// The errors in a pod spec at `path` (a Pod's `spec`, a template's
/// `spec.template.spec`): containers with names and images, and the rules
/// of [`crate::pod_validation`].
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
    use ferrokube_api::registry::{Registry, ResourceDef};
    use serde_json::{json, Value};

    fn validate(def: &ResourceDef, obj: &Value) -> Vec<ferrokube_api::status::FieldError> {
        crate::strategy::builtin(def).validate_create(def, obj)
    }

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
