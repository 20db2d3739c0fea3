//! Small checks these kinds share, with Kubernetes' messages: label
//! selectors, port names and numbers, immutable fields.

use ferrokube_api::status::FieldError;
use ferrokube_api::validation;
use serde_json::Value;

/// The string at `ptr`, or `""`.
pub(crate) fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The list at `ptr`, or none.
pub(crate) fn array<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `field: Invalid value: ...: field is immutable` when the dotted `field`
/// differs between `old` and `new`.
pub(crate) fn immutable(old: &Value, new: &Value, field: &str) -> Vec<FieldError> {
    let ptr = format!("/{}", field.replace('.', "/"));
    if old.pointer(&ptr) == new.pointer(&ptr) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        field,
        new.pointer(&ptr).cloned().unwrap_or(Value::Null),
        "field is immutable",
    )]
}

/// `IsValidPortNum`.
pub(crate) fn port_number_errors(n: i64) -> Vec<String> {
    if (1..=65535).contains(&n) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPortName` (an IANA service name).
pub(crate) fn port_name_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `ValidateLabelSelector` of the `metav1.LabelSelector` at `path`.
pub(crate) fn label_selector(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if sel.is_null() {
        return;
    }
    for (i, req) in array(sel, "/matchExpressions").iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        let values = array(req, "/values");
        match text(req, "/operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{at}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{at}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = text(req, "/key");
        for msg in validation::is_qualified_name(key) {
            errs.push(FieldError::invalid(format!("{at}.key"), key, msg));
        }
    }
    errs.extend(validation::validate_labels(
        sel.get("matchLabels"),
        &format!("{path}.matchLabels"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_and_selectors() {
        assert!(port_number_errors(80).is_empty());
        assert_eq!(
            port_number_errors(0),
            ["must be between 1 and 65535, inclusive"]
        );
        assert!(port_name_errors("http").is_empty());
        assert_eq!(
            port_name_errors("8080"),
            ["must contain at least one letter (a-z)"]
        );
        let mut errs = Vec::new();
        label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Has"}]}),
            "spec.podSelector",
            &mut errs,
        );
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.podSelector.matchExpressions[1].operator: Invalid value: \"Has\": not a valid selector operator",
            ]
        );
        assert_eq!(
            immutable(
                &json!({"handler": "a"}),
                &json!({"handler": "b"}),
                "handler"
            )[0]
            .to_string(),
            "handler: Invalid value: \"b\": field is immutable"
        );
    }
}
