//! The APIService kind's rules (`apiregistration.k8s.io/v1`, Kubernetes'
//! `kube-aggregator/pkg/registry/apiservice` and its validation): the name
//! is `<version>.<group>`, priorities in range, a local APIService has no
//! CA bundle; the status splits from the spec; `kubectl get apiservices`
//! shows SERVICE and AVAILABLE.

use ferrokube_api::printers::Column;
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation::is_dns1123_subdomain;
use serde_json::{json, Value};

use crate::strategy::{validate_metadata, Checked, Strategy};

/// The APIService strategy.
#[derive(Debug)]
pub(crate) struct ApiServiceStrategy;

fn spec_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn spec_int(obj: &Value, field: &str) -> i64 {
    obj.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// A DNS-1035 label's errors, Kubernetes' words.
fn dns1035_label_errors(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let ok = !v.is_empty()
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        out.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    out
}

/// `ValidateAPIService`: the spec's errors (the name's come with the
/// metadata).
fn validate_spec(obj: &Value) -> Vec<FieldError> {
    let (group, version) = (spec_str(obj, "group"), spec_str(obj, "version"));
    let mut errs = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let required_name = format!("{version}.{group}");
    if !name.is_empty() && name != required_name {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be `spec.version+\".\"+spec.group`: {required_name:?}"),
        ));
    }
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for e in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, e));
        }
    }
    for e in dns1035_label_errors(version) {
        errs.push(FieldError::invalid("spec.version", version, e));
    }
    let gpm = spec_int(obj, "groupPriorityMinimum");
    if gpm <= 0 || gpm > 20000 {
        errs.push(FieldError::invalid(
            "spec.groupPriorityMinimum",
            gpm,
            "must be positive and less than 20000",
        ));
    }
    let vp = spec_int(obj, "versionPriority");
    if vp <= 0 || vp > 1000 {
        errs.push(FieldError::invalid(
            "spec.versionPriority",
            vp,
            "must be positive and less than 1000",
        ));
    }
    let ca = spec_str(obj, "caBundle");
    let insecure = obj
        .pointer("/spec/insecureSkipTLSVerify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ca_len = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(ca)
            .map_or(ca.len(), |b| b.len())
    };
    match obj.pointer("/spec/service").filter(|s| !s.is_null()) {
        None => {
            if !ca.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.caBundle",
                    format!("{ca_len} bytes"),
                    "local APIServices may not have a caBundle",
                ));
            }
            if insecure {
                errs.push(FieldError::invalid(
                    "spec.insecureSkipTLSVerify",
                    true,
                    "local APIServices may not have insecureSkipTLSVerify",
                ));
            }
        }
        Some(svc) => {
            for field in ["namespace", "name"] {
                if svc
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    errs.push(FieldError::required(format!("spec.service.{field}"), ""));
                }
            }
            if insecure && !ca.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.insecureSkipTLSVerify",
                    true,
                    "may not be true if caBundle is present",
                ));
            }
        }
    }
    errs
}

/// `ValidateAPIServiceStatus`: condition statuses.
fn validate_status(obj: &Value) -> Vec<FieldError> {
    let conditions = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            (!matches!(status, "True" | "False" | "Unknown")).then(|| {
                FieldError::not_supported(
                    format!("status.conditions[{i}].status"),
                    status,
                    &["True", "False", "Unknown"],
                )
            })
        })
        .collect()
}

/// The `Available` condition as kubectl's AVAILABLE column shows it:
/// `True`, or `False (Reason)`.
fn available_cell(obj: &Value) -> String {
    let cond = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"));
    match cond {
        None => "Unknown".to_string(),
        Some(c) => {
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
            if status == "True" || reason.is_empty() {
                status.to_string()
            } else {
                format!("{status} ({reason})")
            }
        }
    }
}

impl Strategy for ApiServiceStrategy {
    fn check_fields(&self, def: &ResourceDef, obj: Value) -> Result<Checked, String> {
        crate::strategy::typed_check(def, obj)
    }

    fn prepare_for_create(
        &self,
        _def: &ResourceDef,
        obj: &mut Value,
        _user: Option<&crate::authn::UserInfo>,
    ) {
        // As the registry's PrepareForCreate: a new APIService starts with
        // no conditions; the availability controller sets them.
        obj["status"] = json!({});
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        crate::strategy::split_status(def, old, new, sub);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, obj);
        errs.extend(validate_spec(obj));
        errs
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        subresource: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        if subresource == "status" {
            errs.extend(validate_status(new));
        } else {
            errs.extend(validate_spec(new));
        }
        errs
    }

    fn table_columns(&self, _def: &ResourceDef) -> Vec<Column> {
        vec![
            Column {
                name: "Name",
                ty: "string",
                format: "name",
                priority: 0,
            },
            Column {
                name: "Service",
                ty: "string",
                format: "",
                priority: 0,
            },
            Column {
                name: "Available",
                ty: "string",
                format: "",
                priority: 0,
            },
            Column {
                name: "Age",
                ty: "date",
                format: "",
                priority: 0,
            },
        ]
    }

    fn table_cells(&self, _def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let service = match obj.pointer("/spec/service").filter(|s| !s.is_null()) {
            None => "Local".to_string(),
            Some(s) => format!(
                "{}/{}",
                s.get("namespace").and_then(Value::as_str).unwrap_or(""),
                s.get("name").and_then(Value::as_str).unwrap_or("")
            ),
        };
        vec![
            json!(name),
            json!(service),
            json!(available_cell(obj)),
            json!(ferrokube_api::printers::age(obj, now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(errs: &[FieldError]) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.detail_message()))
            .collect()
    }

    #[test]
    fn an_apiservice_is_validated_as_kubernetes_validates_it() {
        let good = json!({"metadata": {"name": "v1beta1.wardle.example.com"},
            "spec": {"group": "wardle.example.com", "version": "v1beta1", "groupPriorityMinimum": 1000,
                     "versionPriority": 15, "service": {"namespace": "w", "name": "api", "port": 443}}});
        assert!(validate_spec(&good).is_empty());
        let bad = json!({"metadata": {"name": "v1.wardle.example.com"},
            "spec": {"group": "", "version": "V1", "groupPriorityMinimum": 0, "versionPriority": 1001,
                     "insecureSkipTLSVerify": true, "caBundle": "Y2E=", "service": {"namespace": "w"}}});
        assert_eq!(
            shown(&validate_spec(&bad)),
            [
                "metadata.name: Invalid value: \"v1.wardle.example.com\": must be `spec.version+\".\"+spec.group`: \"V1.\"",
                "spec.group: Required value: only v1 may have an empty group and it better be legacy kube",
                "spec.version: Invalid value: \"V1\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
                "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000",
                "spec.service.name: Required value",
                "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present",
            ]
        );
        let local = json!({"metadata": {"name": "v1.apps"},
            "spec": {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15, "caBundle": "Y2E="}});
        assert_eq!(
            shown(&validate_spec(&local)),
            ["spec.caBundle: Invalid value: \"2 bytes\": local APIServices may not have a caBundle"]
        );
    }

    #[test]
    fn kubectl_shows_where_an_apiservice_is_served_and_whether_it_is_available() {
        let s = ApiServiceStrategy;
        let def = ferrokube_api::registry::Registry::default()
            .get("apiregistration.k8s.io", "v1", "apiservices")
            .cloned()
            .expect("served");
        let remote = json!({"metadata": {"name": "v1.wardle.example.com", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"service": {"namespace": "w", "name": "api"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "ServiceNotFound"}]}});
        let cells = s.table_cells(&def, &remote, 1_767_225_660);
        assert_eq!(cells[1], "w/api");
        assert_eq!(cells[2], "False (ServiceNotFound)");
        let local = json!({"metadata": {"name": "v1.apps", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"group": "apps"},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        let cells = s.table_cells(&def, &local, 1_767_225_660);
        assert_eq!(
            (cells[1].as_str(), cells[2].as_str()),
            (Some("Local"), Some("True"))
        );
    }
}
