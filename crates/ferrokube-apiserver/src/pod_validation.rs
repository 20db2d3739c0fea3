//! Pod spec rules that Kubernetes' `pkg/apis/core/validation` applies and
//! clients meet with its exact messages: volume mounts' `subPath` and
//! `subPathExpr` (relative, no `..`), sysctl names (and namespaced sysctls
//! refused beside the host's network or IPC namespace), ephemeral containers
//! (unique names, an existing target, only the fields a debugging container
//! may carry), and what an update through `pods/ephemeralcontainers` may
//! change (it may only add).

use ferrokube_api::status::FieldError;
use serde_json::{json, Map, Value};

/// Longest sysctl name Kubernetes accepts.
const SYSCTL_MAX_LENGTH: usize = 253;

/// The sysctl name pattern as Kubernetes prints it in its message.
const SYSCTL_PATTERN: &str =
    r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// Fields an ephemeral container may set; the rest are refused.
const EPHEMERAL_ALLOWED: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "volumeMounts",
    "volumeDevices",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "targetContainerName",
];

/// Whether `name` is a sysctl name Kubernetes accepts: segments of lower-case
/// alphanumerics with inner `-` or `_`, joined by `.` or `/`.
pub(crate) fn is_valid_sysctl_name(name: &str) -> bool {
    if name.is_empty() || name.len() > SYSCTL_MAX_LENGTH {
        return false;
    }
    name.split(['.', '/']).all(|seg| {
        let b = seg.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => {
                edge(f) && edge(l) && b.iter().all(|&c| edge(c) || c == b'-' || c == b'_')
            }
            _ => false,
        }
    })
}

fn sysctl_errors(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(list) = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
    else {
        return;
    };
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let host_ipc = spec.get("hostIPC").and_then(Value::as_bool) == Some(true);
    let mut seen = std::collections::HashSet::new();
    for (i, s) in list.iter().enumerate() {
        let field = format!("{path}.securityContext.sysctls[{i}].name");
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(&field, ""));
        } else if !is_valid_sysctl_name(name) {
            errs.push(FieldError::invalid(
                &field,
                name,
                format!(
                    "must have at most {SYSCTL_MAX_LENGTH} characters and match regex {SYSCTL_PATTERN}"
                ),
            ));
        } else if seen.contains(name) {
            errs.push(FieldError::duplicate(&field, name));
        }
        match ferrokube_api::sysctl::namespace(name) {
            Some("net") if host_network => errs.push(FieldError::invalid(
                &field,
                name,
                "may not be specified when 'hostNetwork' is true",
            )),
            Some("ipc") if host_ipc => errs.push(FieldError::invalid(
                &field,
                name,
                "may not be specified when 'hostIPC' is true",
            )),
            _ => {}
        }
        seen.insert(name.to_string());
    }
}

/// Kubernetes' check of a path that must stay inside its volume: relative, and
/// no `..` element.
fn local_descending_path(value: &str, field: &str, errs: &mut Vec<FieldError>) {
    if value.starts_with('/') {
        errs.push(FieldError::invalid(field, value, "must be a relative path"));
    }
    if value.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(field, value, "must not contain '..'"));
    }
}

fn volume_mount_errors(c: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) else {
        return;
    };
    // Kubernetes names these two fields without the mount's index.
    let list_path = format!("{path}.volumeMounts");
    for (i, m) in mounts.iter().enumerate() {
        let sub = m.get("subPath").and_then(Value::as_str).unwrap_or_default();
        let expr = m
            .get("subPathExpr")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !sub.is_empty() {
            local_descending_path(sub, &format!("{list_path}.subPath"), errs);
        }
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{list_path}[{i}].subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_descending_path(expr, &format!("{list_path}.subPathExpr"), errs);
        }
    }
}

fn names_of(spec: &Value, key: &str) -> Vec<String> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

fn ephemeral_errors(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(list) = spec.get("ephemeralContainers").and_then(Value::as_array) else {
        return;
    };
    let others: Vec<String> = names_of(spec, "containers")
        .into_iter()
        .chain(names_of(spec, "initContainers"))
        .collect();
    let mut all: std::collections::HashSet<String> = others.iter().cloned().collect();
    for (i, ec) in list.iter().enumerate() {
        let idx = format!("{path}.ephemeralContainers[{i}]");
        let name = ec.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(format!("{idx}.name"), ""));
        } else if !ferrokube_api::validation::is_dns1123_label(name).is_empty() {
            errs.push(FieldError::invalid(format!("{idx}.name"), name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
        } else if !all.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{idx}.name"), name));
        }
        if ec
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            errs.push(FieldError::required(format!("{idx}.image"), ""));
        }
        if let Some(t) = ec.get("targetContainerName").and_then(Value::as_str) {
            if !t.is_empty() && !others.iter().any(|o| o == t) {
                errs.push(FieldError::not_found(
                    format!("{idx}.targetContainerName"),
                    t,
                ));
            }
        }
        if let Some(fields) = ec.as_object() {
            for (k, v) in fields {
                if !EPHEMERAL_ALLOWED.contains(&k.as_str()) && !is_zero(v) {
                    errs.push(FieldError::forbidden(
                        format!("{idx}.{k}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
        for (j, m) in ec
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for f in ["subPath", "subPathExpr"] {
                if m.get(f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                {
                    errs.push(FieldError::forbidden(
                        format!("{idx}.volumeMounts[{j}].{f}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
}

/// The rules above for one pod spec at `path` (`spec`, `spec.template.spec`).
pub(crate) fn validate_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            volume_mount_errors(c, &format!("{path}.{key}[{i}]"), errs);
        }
    }
    sysctl_errors(spec, path, errs);
    ephemeral_errors(spec, path, errs);
}

/// A new pod: Kubernetes adds ephemeral containers only through the
/// `ephemeralcontainers` subresource.
pub(crate) fn validate_create(pod: &Value) -> Vec<FieldError> {
    match pod
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
    {
        Some(list) if !list.is_empty() => vec![FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        )],
        _ => Vec::new(),
    }
}

/// An update through `pods/{name}/ephemeralcontainers`: existing ephemeral
/// containers stay as they were (the new list itself is checked with the rest
/// of the spec).
pub(crate) fn validate_ephemeral_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }
    let list = |v: &Value| -> Vec<Value> {
        v.pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let new_list = list(new);
    for o in list(old) {
        let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
        match new_list
            .iter()
            .find(|n| n.get("name").and_then(Value::as_str) == Some(name))
        {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if *n != o => errs.push(FieldError::forbidden(
                format!("spec.ephemeralContainers[{name}]"),
                format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// What an update through `pods/{name}/ephemeralcontainers` writes: the pod
/// as it was, with the request's ephemeral containers (defaulted as
/// Kubernetes defaults a container).
pub(crate) fn take_ephemeral_containers(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let mut list = new
        .pointer("/spec/ephemeralContainers")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(items) = list.as_array_mut() {
        for c in items.iter_mut().filter_map(Value::as_object_mut) {
            default_container(c);
        }
    }
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        if list.is_null() {
            spec.remove("ephemeralContainers");
        } else {
            spec.insert("ephemeralContainers".into(), list);
        }
    }
    out
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let last = image.rsplit('/').next().unwrap_or(&image);
    let tagged = last.split_once(':').is_some_and(|(_, t)| t != "latest");
    let policy = if tagged || image.contains('@') {
        "IfNotPresent"
    } else {
        "Always"
    };
    c.entry("imagePullPolicy").or_insert_with(|| json!(policy));
    c.entry("terminationMessagePath")
        .or_insert_with(|| json!("/dev/termination-log"));
    c.entry("terminationMessagePolicy")
        .or_insert_with(|| json!("File"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        let mut errs = Vec::new();
        validate_spec(&spec, "spec", &mut errs);
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn sub_paths_stay_inside_the_volume() {
        let got = messages(
            json!({"containers": [{"name": "c", "image": "i", "volumeMounts": [
                {"name": "v", "mountPath": "/a", "subPath": "/etc"},
                {"name": "v", "mountPath": "/b", "subPath": "x/../../y"},
                {"name": "v", "mountPath": "/c", "subPathExpr": "$(POD)/.."},
                {"name": "v", "mountPath": "/d", "subPath": "ok", "subPathExpr": "$(POD)"},
                {"name": "v", "mountPath": "/e", "subPath": "a..b/c"}
            ]}]}),
        );
        assert_eq!(
            got,
            vec![
                "spec.containers[0].volumeMounts.subPath: Invalid value: \"/etc\": must be a relative path",
                "spec.containers[0].volumeMounts.subPath: Invalid value: \"x/../../y\": must not contain '..'",
                "spec.containers[0].volumeMounts.subPathExpr: Invalid value: \"$(POD)/..\": must not contain '..'",
                "spec.containers[0].volumeMounts[3].subPathExpr: Invalid value: \"$(POD)\": subPathExpr and subPath are mutually exclusive",
            ]
        );
    }

    #[test]
    fn sysctl_names_follow_kubernetes_rules() {
        for ok in [
            "net.ipv4.ip_forward",
            "kernel.shm_rmid_forced",
            "net/ipv4/conf/eth0.1/rp_filter",
            "a",
        ] {
            assert!(is_valid_sysctl_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Net.ipv4",
            "net..ipv4",
            "net.ipv4.",
            "-net",
            "net.ipv4_",
            "net.ip v4",
        ] {
            assert!(!is_valid_sysctl_name(bad), "{bad}");
        }
        assert!(!is_valid_sysctl_name(&"a".repeat(254)));
        let got = messages(
            json!({"hostNetwork": true, "containers": [], "securityContext": {"sysctls": [
                {"name": "kernel.shm_rmid_forced", "value": "1"},
                {"name": "foo..bar", "value": "1"},
                {"name": "kernel.shm_rmid_forced", "value": "0"},
                {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                {"name": "", "value": "1"}
            ]}}),
        );
        assert_eq!(
            got,
            vec![
                format!("spec.securityContext.sysctls[1].name: Invalid value: \"foo..bar\": must have at most 253 characters and match regex {SYSCTL_PATTERN}"),
                "spec.securityContext.sysctls[2].name: Duplicate value: \"kernel.shm_rmid_forced\"".to_string(),
                "spec.securityContext.sysctls[3].name: Invalid value: \"net.ipv4.tcp_syncookies\": may not be specified when 'hostNetwork' is true".to_string(),
                "spec.securityContext.sysctls[4].name: Required value".to_string(),
            ]
        );
    }

    #[test]
    fn ephemeral_containers_carry_only_debugging_fields() {
        let got = messages(json!({
            "containers": [{"name": "app", "image": "i"}],
            "ephemeralContainers": [
                {"name": "dbg", "image": "busybox", "targetContainerName": "app", "resources": {}},
                {"name": "app", "image": "busybox", "targetContainerName": "nope",
                 "ports": [{"containerPort": 80}], "readinessProbe": {"exec": {"command": ["true"]}},
                 "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}]}
            ]
        }));
        assert_eq!(
            got,
            vec![
                "spec.ephemeralContainers[1].name: Duplicate value: \"app\"",
                "spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\"",
                "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[1].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[1].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            ]
        );
    }

    #[test]
    fn ephemeral_updates_only_add() {
        let pod = |list: Value| json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "i"}], "ephemeralContainers": list}});
        let one = pod(json!([{"name": "d1", "image": "busybox"}]));
        let two =
            pod(json!([{"name": "d1", "image": "busybox"}, {"name": "d2", "image": "busybox"}]));
        assert!(validate_ephemeral_update(&one, &two).is_empty());
        let removed = validate_ephemeral_update(&two, &one);
        assert_eq!(removed[0].to_string(), "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"d2\" may not be removed\n");
        let changed =
            pod(json!([{"name": "d1", "image": "other"}, {"name": "d2", "image": "busybox"}]));
        assert_eq!(
            validate_ephemeral_update(&two, &changed)[0].field,
            "spec.ephemeralContainers[d1]"
        );
        // Only the ephemeral containers are taken from the request.
        let mut asked = two.clone();
        asked["spec"]["containers"][0]["image"] = json!("changed");
        let written = take_ephemeral_containers(&one, &asked);
        assert_eq!(written["spec"]["containers"][0]["image"], "i");
        assert_eq!(
            written["spec"]["ephemeralContainers"][1]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            written["spec"]["ephemeralContainers"][1]["terminationMessagePolicy"],
            "File"
        );
    }
}
