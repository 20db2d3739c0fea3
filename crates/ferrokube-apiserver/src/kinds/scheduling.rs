//! Validation of `scheduling.k8s.io` PriorityClasses, as Kubernetes'
//! scheduling validation: names with the `system-` prefix are the system
//! classes' alone (with their values), user classes stay at or below
//! 1000000000, and `value` and `preemptionPolicy` never change.

use ferrokube_api::status::FieldError;
use serde_json::Value;

use super::meta;

/// The prefix of names reserved for the system classes.
pub(crate) const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";

/// The highest value of a class users may make.
pub(crate) const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// The system classes: name and value (neither is a global default).
pub(crate) const SYSTEM_PRIORITY_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// `IsKnownSystemPriorityClass`: `Err` says what differs.
fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    let Some((_, expected)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if value != *expected {
        return Err(format!("value of {name} PriorityClass must be {expected}"));
    }
    if global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    Ok(())
}

/// `ValidatePriorityClass` (the name's own rules are checked with every
/// object's metadata).
pub(crate) fn validate_priority_class(pc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = pc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = pc.get("value").and_then(Value::as_i64).unwrap_or(0);
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        let global_default = pc.get("globalDefault").and_then(Value::as_bool) == Some(true);
        if let Err(e) = known_system_class(name, value, global_default) {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    match pc.get("preemptionPolicy") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p == "PreemptLowerPriority" || p == "Never" => {}
        Some(Value::String(p)) if p.is_empty() => {
            errs.push(FieldError::required("preemptionPolicy", ""))
        }
        Some(other) => errs.push(FieldError::not_supported(
            "preemptionPolicy",
            other.clone(),
            &["PreemptLowerPriority", "Never"],
        )),
    }
    errs
}

/// `ValidatePriorityClassUpdate`: the create rules, and `value` and
/// `preemptionPolicy` unchanged.
pub(crate) fn validate_priority_class_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_priority_class(new);
    if old.get("value") != new.get("value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    errs.extend(meta::immutable(old, new, "preemptionPolicy"));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn system_names_are_reserved() {
        let pc = |name: &str, value: i64, default: bool| json!({"metadata": {"name": name}, "value": value, "globalDefault": default});
        assert!(
            validate_priority_class(&pc("system-node-critical", 2_000_001_000, false)).is_empty()
        );
        assert!(validate_priority_class(&pc("high", 1_000_000_000, false)).is_empty());
        assert_eq!(
            shown(&validate_priority_class(&pc("system-mine", 5, false))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"]
        );
        assert_eq!(
            shown(&validate_priority_class(&pc("system-cluster-critical", 5, false))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-cluster-critical PriorityClass must be 2000000000"]
        );
        assert_eq!(
            shown(&validate_priority_class(&pc("system-node-critical", 2_000_001_000, true))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-node-critical PriorityClass must be false"]
        );
        assert_eq!(
            shown(&validate_priority_class(&pc("huge", 1_000_000_001, false))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
    }

    #[test]
    fn value_and_preemption_policy_are_immutable() {
        let old = json!({"metadata": {"name": "p"}, "value": 10, "preemptionPolicy": "PreemptLowerPriority"});
        let new = json!({"metadata": {"name": "p"}, "value": 11, "preemptionPolicy": "Never"});
        assert_eq!(
            shown(&validate_priority_class_update(&old, &new)),
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
        let described = json!({"metadata": {"name": "p"}, "value": 10, "preemptionPolicy": "PreemptLowerPriority", "description": "now described"});
        assert!(validate_priority_class_update(&old, &described).is_empty());
        let bad = json!({"metadata": {"name": "p"}, "value": 1, "preemptionPolicy": "Sometimes"});
        assert_eq!(
            shown(&validate_priority_class(&bad)),
            ["preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\""]
        );
    }
}
