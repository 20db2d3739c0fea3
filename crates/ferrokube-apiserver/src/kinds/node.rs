//! `node.k8s.io/v1` RuntimeClass: its validation, and Kubernetes'
//! RuntimeClass admission of pods (a pod's `runtimeClassName` must name an
//! existing RuntimeClass; its overhead becomes the pod's `spec.overhead`,
//! its scheduling node selector is merged into the pod's and its
//! tolerations are added, each refused on conflict with Kubernetes' message).

use ferrokube_api::quantity::parse_milli;
use ferrokube_api::status::{ApiError, FieldError};
use ferrokube_api::validation::{is_dns1123_label, validate_labels};
use serde_json::{json, Map, Value};

use super::meta::{array, text};
use crate::rest::Rest;

pub(crate) fn validate_runtime_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handler = text(obj, "/handler");
    for msg in is_dns1123_label(handler) {
        errs.push(FieldError::invalid("handler", handler, msg));
    }
    if let Some(fixed) = obj.pointer("/overhead/podFixed").and_then(Value::as_object) {
        for (name, q) in fixed {
            if !matches!(name.as_str(), "cpu" | "memory")
                && !name.contains('/')
                && !name.starts_with("hugepages-")
            {
                errs.push(FieldError::invalid(
                    format!("overhead.podFixed[{name}]"),
                    name.as_str(),
                    "must be a standard resource type or fully qualified",
                ));
            }
            if q.as_str().is_some_and(|s| s.starts_with('-')) {
                errs.push(FieldError::invalid(
                    format!("overhead.podFixed[{name}]"),
                    q.clone(),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    if let Some(s) = obj.get("scheduling").filter(|s| !s.is_null()) {
        errs.extend(validate_labels(
            s.get("nodeSelector"),
            "scheduling.nodeSelector",
        ));
        for (i, t) in array(s, "/tolerations").iter().enumerate() {
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            if !matches!(op, "Equal" | "Exists") {
                errs.push(FieldError::not_supported(
                    format!("scheduling.tolerations[{i}].operator"),
                    op,
                    &["Equal", "Exists"],
                ));
            }
        }
    }
    errs
}

/// `pods "NAME" is forbidden: WHY`.
fn forbidden(pod: &Value, why: &str) -> ApiError {
    ApiError::forbidden_on("", "pods", text(pod, "/metadata/name"), why)
}

/// The RuntimeClass admission of a pod being created.
pub(super) async fn admit_pod(rest: &Rest, pod: &mut Value) -> Result<(), ApiError> {
    let class_name = text(pod, "/spec/runtimeClassName").to_string();
    let class = if class_name.is_empty() {
        None
    } else {
        let Some(def) = rest.kinds.get("node.k8s.io", "v1", "runtimeclasses") else {
            return Ok(());
        };
        let found = match rest.get(&def, "", &class_name).await {
            Ok(c) if c.pointer("/metadata/deletionTimestamp").is_none() => Some(c),
            Ok(_) => None,
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        match found {
            Some(c) => Some(c),
            None => {
                return Err(forbidden(
                    pod,
                    &format!("pod rejected: RuntimeClass {class_name:?} not found"),
                ))
            }
        }
    };
    admit_with(pod, class.as_ref()).map_err(|why| forbidden(pod, &why))
}

/// The admission with the pod's RuntimeClass looked up (`None`: the pod
/// names none).
fn admit_with(pod: &mut Value, class: Option<&Value>) -> Result<(), String> {
    let class_overhead = class
        .and_then(|c| c.pointer("/overhead/podFixed"))
        .filter(|o| !o.is_null());
    let pod_overhead = pod
        .pointer("/spec/overhead")
        .filter(|o| o.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    match (class_overhead, &pod_overhead) {
        (Some(want), Some(have)) if !same_resources(want, have) => {
            return Err(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead".into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "pod rejected: Overhead set without corresponding RuntimeClass defined Overhead"
                    .into(),
            )
        }
        _ => {}
    }
    let Some(class) = class else {
        return Ok(());
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(o) = class_overhead {
        spec.insert("overhead".into(), o.clone());
    }
    let Some(scheduling) = class.get("scheduling").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    if let Some(wanted) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let mut selector = spec
            .get("nodeSelector")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new);
        for (k, v) in wanted {
            if let Some(have) = selector.get(k) {
                if have != v {
                    return Err(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {}",
                        v.as_str().unwrap_or(""),
                        have.as_str().unwrap_or("")
                    ));
                }
            }
            selector.insert(k.clone(), v.clone());
        }
        spec.insert("nodeSelector".into(), Value::Object(selector));
    }
    let extra = array(scheduling, "/tolerations");
    if !extra.is_empty() {
        let list = spec.entry("tolerations").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            for t in extra {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

/// Two resource lists with the same quantities (`1000m` is `1`).
fn same_resources(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k).is_some_and(|w| {
                v == w
                    || match (v.as_str(), w.as_str()) {
                        (Some(x), Some(y)) => {
                            parse_milli(x).is_some() && parse_milli(x) == parse_milli(y)
                        }
                        _ => false,
                    }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_classes_need_a_handler_label() {
        assert!(validate_runtime_class(&json!({"handler": "runc"})).is_empty());
        let errs = validate_runtime_class(&json!({"handler": "Run_C"}));
        assert_eq!(errs[0].field, "handler");
        assert!(errs[0]
            .to_string()
            .contains("a lowercase RFC 1123 label must consist of"));
    }

    #[test]
    fn the_admission_sets_overhead_and_merges_scheduling() {
        let class = json!({"handler": "runc", "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
            "scheduling": {"nodeSelector": {"sandbox": "true"},
                "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}});
        let mut pod = json!({"spec": {"runtimeClassName": "gvisor", "nodeSelector": {"zone": "a"},
            "containers": [{"name": "c", "image": "i"}]}});
        admit_with(&mut pod, Some(&class)).unwrap();
        assert_eq!(
            pod["spec"]["overhead"],
            json!({"cpu": "250m", "memory": "64Mi"})
        );
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"zone": "a", "sandbox": "true"})
        );
        assert_eq!(pod["spec"]["tolerations"][0]["key"], "sandbox");
        // Admitting again changes nothing (equal overhead is fine).
        let before = pod.clone();
        admit_with(&mut pod, Some(&class)).unwrap();
        assert_eq!(pod, before);

        let mut conflict = json!({"spec": {"nodeSelector": {"sandbox": "false"}}});
        assert_eq!(
            admit_with(&mut conflict, Some(&class)).unwrap_err(),
            "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = true; pod.spec.nodeSelector[sandbox] = false"
        );
        let mut other = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert_eq!(
            admit_with(&mut other, Some(&class)).unwrap_err(),
            "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
        );
        let mut same = json!({"spec": {"overhead": {"cpu": "0.25", "memory": "64Mi"}}});
        assert!(admit_with(&mut same, Some(&class)).is_ok());
        let mut stray = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert_eq!(
            admit_with(&mut stray, None).unwrap_err(),
            "pod rejected: Overhead set without corresponding RuntimeClass defined Overhead"
        );
    }
}
