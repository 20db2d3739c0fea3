//! Kubernetes' validation of HorizontalPodAutoscalers
//! (`pkg/apis/autoscaling/validation/validation.go` of Kubernetes 1.33), on
//! the v2 form (which has the internal type's field names, so a v1 object's
//! errors name the paths Kubernetes names for it too): replica bounds (the
//! HPAScaleToZero gate is off, as by default), the scale target reference,
//! each metric's source and target, and the behavior's rules and policies.
//! Messages and their order are Kubernetes'; values are shown as Go's
//! `field.Error` shows them (a quantity as Go's `%#v` of `resource.Quantity`).

use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1123_label, is_qualified_name, is_valid_path_segment_name};
use serde_json::Value;

/// `MaxPeriodSeconds`.
const MAX_PERIOD_SECONDS: i64 = 1800;
/// `MaxStabilizationWindowSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;

/// `validMetricSourceTypesList` (sorted, as Go's `sets.List`).
const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
/// `validSelectPolicyTypesList`.
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
/// `validPolicyTypesList`.
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];

/// `ValidateHorizontalPodAutoscaler` (metadata aside).
pub(super) fn validate_create(hpa: &Value) -> Vec<FieldError> {
    validate_spec(hpa.get("spec").unwrap_or(&Value::Null), "spec", 1)
}

/// `ValidateHorizontalPodAutoscalerUpdate` (metadata aside): an object
/// that already scales to zero may keep doing so.
pub(super) fn validate_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let old_min = old.pointer("/spec/minReplicas").and_then(Value::as_i64);
    let lower = if old_min == Some(0) { 0 } else { 1 };
    validate_spec(new.get("spec").unwrap_or(&Value::Null), "spec", lower)
}

/// `ValidateHorizontalPodAutoscalerStatusUpdate` (metadata aside).
pub(super) fn validate_status_update(new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["currentReplicas", "desiredReplicas"] {
        let n = new
            .pointer(&format!("/status/{field}"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if n < 0 {
            errs.push(FieldError::invalid(
                format!("status.{field}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn validate_spec(spec: &Value, path: &str, min_lower_bound: i64) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < min_lower_bound) {
        errs.push(FieldError::invalid(
            format!("{path}.minReplicas"),
            m,
            format!("must be greater than or equal to {min_lower_bound}"),
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            format!("{path}.maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            format!("{path}.maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_reference(
        spec.get("scaleTargetRef").unwrap_or(&Value::Null),
        &format!("{path}.scaleTargetRef"),
    ));
    errs.extend(validate_metrics(
        spec.get("metrics")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        &format!("{path}.metrics"),
        min,
    ));
    if let Some(b) = present(spec, "behavior") {
        let at = format!("{path}.behavior");
        for key in ["scaleUp", "scaleDown"] {
            if let Some(rules) = present(b, key) {
                errs.extend(validate_rules(rules, &format!("{at}.{key}")));
            }
        }
    }
    errs
}

/// `ValidateCrossVersionObjectReference`.
fn validate_reference(r: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in ["kind", "name"] {
        let v = text(r, key);
        let at = format!("{path}.{key}");
        if v.is_empty() {
            errs.push(FieldError::required(at, ""));
        } else {
            for msg in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(&at, v, msg));
            }
        }
    }
    errs
}

fn validate_metrics(metrics: &[Value], path: &str, min: Option<i64>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut object_or_external = false;
    for (i, m) in metrics.iter().enumerate() {
        errs.extend(validate_metric(m, &format!("{path}[{i}]")));
        object_or_external |= matches!(text(m, "type"), "Object" | "External");
    }
    if min == Some(0) && !object_or_external {
        errs.push(FieldError::forbidden(
            path,
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    errs
}

/// The checks of one metric source at its path.
type SourceCheck = fn(&Value, &str) -> Vec<FieldError>;

/// `validateMetricSpec`: the type, the one source it names (only the first
/// source present is checked), and no other.
fn validate_metric(m: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = text(m, "type");
    if ty.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            ty,
            METRIC_SOURCE_TYPES,
        ));
    }
    let sources: [(&str, SourceCheck); 5] = [
        ("object", validate_object_source),
        ("external", validate_external_source),
        ("pods", validate_pods_source),
        ("resource", validate_resource_source),
        ("containerResource", validate_container_resource_source),
    ];
    let mut present_sources = Vec::new();
    for (key, check) in sources {
        if let Some(src) = present(m, key) {
            present_sources.push(key);
            if present_sources.len() == 1 {
                errs.extend(check(src, &format!("{path}.{key}")));
            }
        }
    }
    let expected = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            errs.push(FieldError::not_supported(
                format!("{path}.type"),
                ty,
                METRIC_SOURCE_TYPES,
            ));
            ""
        }
    };
    if !expected.is_empty() && !present_sources.contains(&expected) {
        errs.push(FieldError::required(
            format!("{path}.{expected}"),
            "must populate information for the given metric source",
        ));
    }
    if present_sources.len() != 1 {
        let mut others: Vec<&str> = present_sources
            .into_iter()
            .filter(|k| *k != expected)
            .collect();
        others.sort_unstable();
        for k in others {
            errs.push(FieldError::forbidden(
                format!("{path}.{k}"),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

fn validate_object_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_reference(
        src.get("describedObject").unwrap_or(&Value::Null),
        &format!("{path}.describedObject"),
    );
    errs.extend(validate_identifier(src, &format!("{path}.metric")));
    let target = src.get("target").unwrap_or(&Value::Null);
    errs.extend(validate_target(target, &format!("{path}.target")));
    if present(target, "value").is_none() && present(target, "averageValue").is_none() {
        errs.push(FieldError::required(
            format!("{path}.target.averageValue"),
            "must set either a target value or averageValue",
        ));
    }
    errs
}

fn validate_external_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_identifier(src, &format!("{path}.metric"));
    let target = src.get("target").unwrap_or(&Value::Null);
    errs.extend(validate_target(target, &format!("{path}.target")));
    let (value, average) = (present(target, "value"), present(target, "averageValue"));
    if value.is_none() && average.is_none() {
        errs.push(FieldError::required(
            format!("{path}.target.averageValue"),
            "must set either a target value for metric or a per-pod target",
        ));
    }
    if value.is_some() && average.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.target.value"),
            "may not set both a target value for metric and a per-pod target",
        ));
    }
    errs
}

fn validate_pods_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_identifier(src, &format!("{path}.metric"));
    let target = src.get("target").unwrap_or(&Value::Null);
    errs.extend(validate_target(target, &format!("{path}.target")));
    if present(target, "averageValue").is_none() {
        errs.push(FieldError::required(
            format!("{path}.target.averageValue"),
            "must specify a positive target averageValue",
        ));
    }
    errs
}

/// What a Resource and a ContainerResource target share.
fn validate_utilization_or_value(target: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_target(target, &format!("{path}.target"));
    let (utilization, average) = (
        present(target, "averageUtilization"),
        present(target, "averageValue"),
    );
    if utilization.is_none() && average.is_none() {
        errs.push(FieldError::required(
            format!("{path}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if utilization.is_some() && average.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

fn validate_resource_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if text(src, "name").is_empty() {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "must specify a resource name",
        ));
    }
    errs.extend(validate_utilization_or_value(
        src.get("target").unwrap_or(&Value::Null),
        path,
    ));
    errs
}

fn validate_container_resource_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = text(src, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "must specify a resource name",
        ));
    } else {
        errs.extend(validate_container_resource_name(
            name,
            &format!("{path}.name"),
        ));
    }
    let container = text(src, "container");
    if container.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.container"),
            "must specify a container",
        ));
    } else {
        for msg in is_dns1123_label(container) {
            errs.push(FieldError::invalid(
                format!("{path}.container"),
                container,
                msg,
            ));
        }
    }
    errs.extend(validate_utilization_or_value(
        src.get("target").unwrap_or(&Value::Null),
        path,
    ));
    errs
}

/// `validateMetricTarget`.
fn validate_target(target: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = text(target, "type");
    if ty.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for key in ["value", "averageValue"] {
        if let Some(q) = present(target, key).and_then(Value::as_str) {
            if sign(q) != 1 {
                errs.push(FieldError::invalid_shown(
                    format!("{path}.{key}"),
                    go_quantity(q),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(u) = present(target, "averageUtilization")
        .and_then(Value::as_i64)
        .filter(|u| *u < 1)
    {
        errs.push(FieldError::invalid(
            format!("{path}.averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

/// `validateMetricIdentifier` of `src.metric`.
fn validate_identifier(src: &Value, path: &str) -> Vec<FieldError> {
    let name = src
        .pointer("/metric/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return vec![FieldError::required(
            format!("{path}.name"),
            "must specify a metric name",
        )];
    }
    is_valid_path_segment_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(format!("{path}.name"), name, msg))
        .collect()
}

/// `validateScalingRules`.
fn validate_rules(rules: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(w) = present(rules, "stabilizationWindowSeconds").and_then(Value::as_i64) {
        let at = format!("{path}.stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid(
                &at,
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &at,
                w,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(p) = present(rules, "selectPolicy").and_then(Value::as_str) {
        if !SELECT_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                format!("{path}.selectPolicy"),
                p,
                SELECT_POLICIES,
            ));
        }
    }
    let policies = rules
        .get("policies")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if policies.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        errs.extend(validate_policy(p, &format!("{path}.policies[{i}]")));
    }
    if let Some(t) = present(rules, "tolerance").and_then(Value::as_str) {
        if sign(t) < 0 {
            errs.push(FieldError::invalid_shown(
                format!("{path}.tolerance"),
                go_quantity(t),
                "must be greater than or equal to zero",
            ));
        }
    }
    errs
}

/// `validateScalingPolicy`.
fn validate_policy(p: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = text(p, "type");
    if !POLICY_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            ty,
            POLICY_TYPES,
        ));
    }
    let value = p.get("value").and_then(Value::as_i64).unwrap_or(0);
    if value <= 0 {
        errs.push(FieldError::invalid(
            format!("{path}.value"),
            value,
            "must be greater than zero",
        ));
    }
    let period = p.get("periodSeconds").and_then(Value::as_i64).unwrap_or(0);
    if period <= 0 {
        errs.push(FieldError::invalid(
            format!("{path}.periodSeconds"),
            period,
            "must be greater than zero",
        ));
    }
    if period > MAX_PERIOD_SECONDS {
        errs.push(FieldError::invalid(
            format!("{path}.periodSeconds"),
            period,
            format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
        ));
    }
    errs
}

/// The container resources (`standardContainerResources`).
const CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
/// Kubernetes' `standardResources` (core/v1 helper).
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// core/v1's `ValidateResourceName`: a qualified name, and a standard one
/// unless it names a domain.
fn validate_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let errs: Vec<FieldError> = is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    let quota_huge_pages =
        name.starts_with("hugepages-") || name.starts_with("requests.hugepages-");
    if !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !quota_huge_pages {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    errs
}

/// core/v1's `ValidateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !CONTAINER_RESOURCES.contains(&name) && !name.starts_with("hugepages-") {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !name.contains("kubernetes.io/") {
        // Not native: an extended resource, whose quota name is qualified.
        let extended = !name.starts_with("requests.")
            && is_qualified_name(&format!("requests.{name}")).is_empty();
        if !extended {
            errs.push(FieldError::invalid(
                path,
                name,
                "doesn't have a resource type",
            ));
        }
    }
    errs
}

/// The sign of a quantity written as `q`.
fn sign(q: &str) -> i32 {
    let digits = q.trim_start_matches(['+', '-']);
    let mantissa: String = digits
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    if mantissa.chars().all(|c| c == '0' || c == '.') {
        0
    } else if q.starts_with('-') {
        -1
    } else {
        1
    }
}

/// A quantity as Go's `%#v` prints the `resource.Quantity` Kubernetes
/// parsed from `q` (its int64 form: integers and decimals with a decimal
/// or binary SI suffix); other forms are shown quoted.
pub(super) fn go_quantity(q: &str) -> String {
    go_quantity_int64(q).unwrap_or_else(|| format!("{q:?}"))
}

fn go_quantity_int64(q: &str) -> Option<String> {
    let (negative, body) = match q.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, q.strip_prefix('+').unwrap_or(q)),
    };
    let end = body
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let (num, denom) = number.split_once('.').unwrap_or((number, ""));
    if num.is_empty() && denom.is_empty() {
        return None;
    }
    let decimal = |e: i32| Some(("DecimalSI", e));
    let binary = |e: i32| Some(("BinarySI", e));
    let (format, exponent) = match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => None,
    }?;
    let digits = (num.len() + denom.len()) as i32;
    let (mut scale, mantissa, precision) = if format == "BinarySI" {
        if !denom.is_empty() {
            return None;
        }
        let precision = 15 - num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
        (0, 1i64.checked_shl(exponent as u32)?, precision)
    } else {
        (exponent, 1, 18 - digits)
    };
    if precision < 0 {
        return None;
    }
    scale -= denom.len() as i32;
    if scale < -9 {
        return None;
    }
    let shifted = format!("{num}{denom}");
    let value: i64 = shifted.parse().ok()?;
    let mut result = value.checked_mul(mantissa)?;
    if negative {
        result = -result;
    }
    let canonical = if format == "BinarySI" {
        exponent % 10 == 0 && value & 0x07 != 0
    } else {
        scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
    };
    let s = if canonical { q } else { "" };
    Some(format!(
        "resource.Quantity{{i:resource.int64Amount{{value:{result}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{s:?}, Format:{format:?}}}"
    ))
}

#[cfg(test)]
mod tests;
