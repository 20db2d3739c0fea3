//! Kubernetes resource quantities ("100m", "1.5", "64Mi", "2G", "1e3") as
//! numbers of milli-units, enough to add and compare them (the QoS class).

use ferrokube_api::quantity::parse_milli;
use serde_json::Value;

/// The quantity as base units × 1000, rounded up; `None` if it is not one.
/// JSON numbers count as quantities too (`cpu: 1`).
pub(crate) fn milli_value(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_milli(s.trim()),
        Value::Number(n) => parse_milli(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_in_milli_units() {
        assert_eq!(milli_value(&json!("100m")), Some(100));
        assert_eq!(milli_value(&json!("0.1")), Some(100));
        assert_eq!(milli_value(&json!("1.5")), Some(1500));
        assert_eq!(milli_value(&json!(2)), Some(2000));
        assert_eq!(milli_value(&json!("64Mi")), Some(64_000 << 20));
        assert_eq!(milli_value(&json!("1G")), Some(1_000_000_000_000));
        assert_eq!(milli_value(&json!("1e3")), Some(1_000_000));
        assert_eq!(milli_value(&json!("1Gi")), milli_value(&json!("1024Mi")));
        assert_eq!(milli_value(&json!("x")), None);
        assert_eq!(milli_value(&json!("1Q")), None);
    }
}
