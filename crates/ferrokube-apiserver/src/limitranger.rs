//! LimitRanger admission (Kubernetes' `plugin/pkg/admission/limitranger`):
//! the LimitRanges of a namespace give a new pod's containers and init
//! containers their `default` limits and `defaultRequest` requests where
//! they set none (recorded in the `kubernetes.io/limit-ranger`
//! annotation), then hold each container, the pod as a whole and each
//! claim (created or resized) to their `min`, `max` and
//! `maxLimitRequestRatio`, refusing with Kubernetes' messages, such as
//! `pods "p" is forbidden: maximum cpu usage per Container is 500m, but
//! limit is 1` (several as `[a, b]`).
//!
//! The namespace's LimitRanges come from the watch cache (Kubernetes reads
//! an informer).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use ferrokube_api::quota::{self as q, Qty, ResourceList};
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;

use crate::rest::{ApiResult, Rest};

/// The annotation saying what LimitRanger set.
pub(crate) const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The LimitRanges of `namespace`, from the watch cache.
fn limit_ranges(rest: &Rest, namespace: &str) -> Vec<Value> {
    let Some(def) = rest.kinds.get("", "v1", "limitranges") else {
        return Vec::new();
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return Vec::new();
    };
    cache
        .list(&format!("{}{namespace}/", def.storage_prefix))
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.json).ok())
        .collect()
}

fn items<'a>(range: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

/// Admits a new pod or claim of `def` in `namespace` (mutating it with
/// defaults, then checking it).
pub(crate) fn admit_create(
    rest: &Rest,
    def: &ResourceDef,
    namespace: &str,
    obj: &mut Value,
) -> ApiResult<()> {
    let kind = match (def.group, def.plural) {
        ("", "pods") => "pods",
        ("", "persistentvolumeclaims") => "claims",
        _ => return Ok(()),
    };
    let ranges = limit_ranges(rest, namespace);
    if ranges.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for range in &ranges {
        let result = if kind == "pods" {
            apply_defaults(range, obj);
            validate_pod(range, obj)
        } else {
            validate_claim(range, obj)
        };
        result.map_err(|why| ApiError::forbidden_on(def.group, def.plural, &name, &why))?;
    }
    Ok(())
}

/// Admits an update of a claim (its size may change); pods' resources are
/// not changed by updates, and objects being deleted are left alone.
pub(crate) fn admit_update(
    rest: &Rest,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    old: &Value,
    obj: &Value,
) -> ApiResult<()> {
    if (def.group, def.plural) != ("", "persistentvolumeclaims")
        || old.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Ok(());
    }
    for range in &limit_ranges(rest, namespace) {
        validate_claim(range, obj)
            .map_err(|why| ApiError::forbidden_on(def.group, def.plural, name, &why))?;
    }
    Ok(())
}

/// Sets the container defaults of `range` on every container and init
/// container of `pod` that lacks them, and records what was set.
pub(crate) fn apply_defaults(range: &Value, pod: &mut Value) {
    let mut limits = ResourceList::new();
    let mut requests = ResourceList::new();
    let mut raw: BTreeMap<(bool, String), Value> = BTreeMap::new();
    for item in items(range, "Container") {
        for (key, is_limit, into) in [
            ("defaultRequest", false, &mut requests),
            ("default", true, &mut limits),
        ] {
            for (k, v) in item
                .get(key)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(qty) = Qty::parse(v) {
                    into.insert(k.clone(), qty);
                    raw.insert((is_limit, k.clone()), json!(qty.to_string()));
                }
            }
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (list, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers.iter_mut() {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(c) = c.as_object_mut() else { continue };
            let resources = c.entry("resources").or_insert_with(|| json!({}));
            if !resources.is_object() {
                *resources = json!({});
            }
            let mut set = |key: &str, defaults: &ResourceList, is_limit: bool| -> Vec<String> {
                let entry = &mut resources[key];
                if !entry.is_object() {
                    *entry = json!({});
                }
                let mut added = Vec::new();
                for k in defaults.keys() {
                    if entry.get(k).is_none() {
                        entry[k] = raw[&(is_limit, k.clone())].clone();
                        added.push(k.clone());
                    }
                }
                added
            };
            let set_limits = set("limits", &limits, true);
            let set_requests = set("requests", &requests, false);
            // Empty maps are not kept (Go's omitempty).
            for key in ["limits", "requests"] {
                if resources[key].as_object().is_some_and(|m| m.is_empty()) {
                    if let Some(r) = resources.as_object_mut() {
                        r.remove(key);
                    }
                }
            }
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {label} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {label} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    if let Some(meta) = crate::objectmeta::metadata_mut(pod) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[ANNOTATION] = json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

/// The constraint maps of a limit item (`min`, `max`, ...), sorted.
fn constraint(item: &Value, key: &str) -> Vec<(String, Qty)> {
    q::resource_list(item.get(key)).into_iter().collect()
}

fn min_constraint(
    kind: &str,
    resource: &str,
    enforced: Qty,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(req) = requests.get(resource) else {
        return Some(format!(
            "minimum {resource} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if req.milli < enforced.milli {
        return Some(format!(
            "minimum {resource} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    match limits.get(resource) {
        Some(lim) if lim.milli < enforced.milli => Some(format!(
            "minimum {resource} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    resource: &str,
    enforced: Qty,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(lim) = limits.get(resource) else {
        return Some(format!(
            "maximum {resource} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if lim.milli > enforced.milli {
        return Some(format!(
            "maximum {resource} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    match requests.get(resource) {
        Some(req) if req.milli > enforced.milli => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    resource: &str,
    enforced: Qty,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let req = requests.get(resource).map_or(0, |q| q.milli);
    let lim = limits.get(resource).map_or(0, |q| q.milli);
    if req == 0 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"));
    }
    if lim == 0 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"));
    }
    let observed = lim as f64 / req as f64;
    if observed * 1000.0 > enforced.milli as f64 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}"));
    }
    None
}

/// Every min, max and ratio constraint of `item` (of type `kind`) over
/// the given requests and limits.
fn check_item(
    item: &Value,
    kind: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    errors: &mut Vec<String>,
) {
    for (r, v) in constraint(item, "min") {
        errors.extend(min_constraint(kind, &r, v, requests, limits));
    }
    for (r, v) in constraint(item, "max") {
        errors.extend(max_constraint(kind, &r, v, requests, limits));
    }
    for (r, v) in constraint(item, "maxLimitRequestRatio") {
        errors.extend(ratio_constraint(kind, &r, v, requests, limits));
    }
}

/// Kubernetes' error aggregate: one message alone, several in brackets
/// (repeats dropped).
fn aggregate(errors: Vec<String>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    let errors: Vec<String> = errors
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().unwrap_or_default()),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// Checks `pod` against the Container and Pod items of `range`.
fn validate_pod(range: &Value, pod: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    let containers = |list: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for item in range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("Container") => {
                for c in containers("containers")
                    .iter()
                    .chain(containers("initContainers").iter())
                {
                    let requests = q::resource_list(c.pointer("/resources/requests"));
                    let limits = q::resource_list(c.pointer("/resources/limits"));
                    check_item(item, "Container", &requests, &limits, &mut errors);
                }
            }
            Some("Pod") => {
                let mut requests = q::container_resources(pod, "requests");
                let mut limits = q::container_resources(pod, "limits");
                // Pod-level resources override the containers' sum.
                for (key, into) in [("requests", &mut requests), ("limits", &mut limits)] {
                    for (k, v) in q::resource_list(pod.pointer(&format!("/spec/resources/{key}"))) {
                        if k == "cpu" || k == "memory" {
                            into.insert(k, v);
                        }
                    }
                }
                check_item(item, "Pod", &requests, &limits, &mut errors);
            }
            _ => {}
        }
    }
    aggregate(errors)
}

/// Checks a claim's storage request against the PersistentVolumeClaim
/// items of `range` (only requests count; claims get no defaults).
fn validate_claim(range: &Value, pvc: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    let requests = q::resource_list(pvc.pointer("/spec/resources/requests"));
    let kind = "PersistentVolumeClaim";
    for item in items(range, kind) {
        for (r, v) in constraint(item, "min") {
            errors.extend(min_constraint(kind, &r, v, &requests, &ResourceList::new()));
        }
        for (r, enforced) in constraint(item, "max") {
            match requests.get(&r) {
                None => errors.push(format!(
                    "maximum {r} usage per {kind} is {enforced}.  No request is specified"
                )),
                Some(req) if req.milli > enforced.milli => errors.push(format!(
                    "maximum {r} usage per {kind} is {enforced}, but request is {req}"
                )),
                _ => {}
            }
        }
    }
    aggregate(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Value {
        json!({"spec": {"limits": limits}})
    }

    #[test]
    fn containers_get_the_defaults_they_lack_and_the_annotation_says_so() {
        let r = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]));
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "web", "resources": {"limits": {"cpu": "1"}}}],
            "initContainers": [{"name": "init"}]}});
        apply_defaults(&r, &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}})
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["resources"]["limits"],
            json!({"cpu": "500m", "memory": "128Mi"})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container web; memory limit for container web; cpu, memory request for init container init; cpu, memory limit for init container init"
        );
    }

    #[test]
    fn over_the_max_is_refused_with_kubernetes_message() {
        let r = range(json!([{"type": "Container", "max": {"cpu": "500m"}}]));
        let pod = |lim: &str| {
            json!({"spec": {"containers": [{"name": "c",
            "resources": {"limits": {"cpu": lim}, "requests": {"cpu": "100m"}}}]}})
        };
        assert_eq!(
            validate_pod(&r, &pod("1")),
            Err("maximum cpu usage per Container is 500m, but limit is 1".into())
        );
        assert_eq!(validate_pod(&r, &pod("500m")), Ok(()));
        let none = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            validate_pod(&r, &none),
            Err("maximum cpu usage per Container is 500m.  No limit is specified".into())
        );
    }

    #[test]
    fn minimums_ratios_and_pods_are_checked_together() {
        let r = range(json!([
            {"type": "Container", "min": {"memory": "10Mi"}, "maxLimitRequestRatio": {"cpu": "2"}},
            {"type": "Pod", "max": {"cpu": "1"}},
        ]));
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "300m", "memory": "20Mi"}, "limits": {"cpu": "900m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "300m", "memory": "5Mi"}, "limits": {"cpu": "300m"}}},
        ]}});
        assert_eq!(
            validate_pod(&r, &pod),
            Err("[cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000, minimum memory usage per Container is 10Mi, but request is 5Mi, maximum cpu usage per Pod is 1, but limit is 1200m]".into())
        );
    }

    #[test]
    fn claims_are_held_to_their_storage_bounds() {
        let r = range(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}}]),
        );
        let claim = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        assert_eq!(validate_claim(&r, &claim("1Gi")), Ok(()));
        assert_eq!(
            validate_claim(&r, &claim("3Gi")),
            Err(
                "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 3Gi".into()
            )
        );
        assert_eq!(
            validate_claim(&r, &claim("500Mi")),
            Err(
                "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
                    .into()
            )
        );
    }
}
