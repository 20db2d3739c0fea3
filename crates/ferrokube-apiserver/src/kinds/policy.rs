//! `policy/v1` PodDisruptionBudget validation, as Kubernetes'
//! `ValidatePodDisruptionBudgetSpec`: minAvailable and maxUnavailable are
//! exclusive, each a non-negative integer or a percentage of at most 100%;
//! the selector is a valid label selector; `unhealthyPodEvictionPolicy` is
//! `IfHealthyBudget` or `AlwaysAllow`.

use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::meta;

const PERCENT_MESSAGE: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The errors of a PodDisruptionBudget.
pub(crate) fn validate_pod_disruption_budget(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let min = spec.get("minAvailable").filter(|v| !v.is_null());
    let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
    if let (Some(a), Some(b)) = (min, max) {
        errs.push(FieldError::invalid_shown(
            "spec",
            json!({"minAvailable": a, "maxUnavailable": b}).to_string(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if let Some(v) = v {
            int_or_percent(v, &format!("spec.{field}"), &mut errs);
        }
    }
    if let Some(sel) = spec.get("selector") {
        meta::label_selector(sel, "spec.selector", &mut errs);
    }
    match spec.get("unhealthyPodEvictionPolicy") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p == "IfHealthyBudget" || p == "AlwaysAllow" => {}
        Some(other) => errs.push(FieldError::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            other.clone(),
            &["AlwaysAllow", "IfHealthyBudget"],
        )),
    }
    errs
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
fn int_or_percent(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Value::Number(n) => {
            if n.as_i64().is_some_and(|i| i < 0) {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        Value::String(s) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                errs.push(FieldError::invalid(path, v.clone(), PERCENT_MESSAGE));
            } else if digits.parse::<u64>().map_or(true, |p| p > 100) {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    "must not be greater than 100%",
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            path,
            v.clone(),
            "must be an integer or percentage (e.g '5%')",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        validate_pod_disruption_budget(&json!({"spec": spec}))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn budgets_as_kubernetes_validates_them() {
        let sel = json!({"matchLabels": {"app": "web"}});
        assert!(messages(json!({"minAvailable": 2, "selector": sel})).is_empty());
        assert!(messages(json!({"maxUnavailable": "25%", "selector": sel})).is_empty());
        assert!(messages(
            json!({"minAvailable": "100%", "unhealthyPodEvictionPolicy": "AlwaysAllow"})
        )
        .is_empty());
        assert_eq!(
            messages(json!({"minAvailable": 1, "maxUnavailable": 1})),
            [
                r#"spec: Invalid value: {"maxUnavailable":1,"minAvailable":1}: minAvailable and maxUnavailable cannot be both set"#
            ]
        );
        assert_eq!(
            messages(json!({"minAvailable": -1})),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            messages(json!({"maxUnavailable": "150%"})),
            [r#"spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%"#]
        );
        assert_eq!(
            messages(json!({"maxUnavailable": "half"})),
            [format!(
                r#"spec.maxUnavailable: Invalid value: "half": {PERCENT_MESSAGE}"#
            )]
        );
        assert_eq!(
            messages(json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Sometimes"})),
            [
                r#"spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", "IfHealthyBudget""#
            ]
        );
    }
}
