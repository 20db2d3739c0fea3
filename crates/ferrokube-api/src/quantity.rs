//! Kubernetes resource quantities ("100m", "1.5", "64Mi", "2G", "1e3") as
//! numbers of milli-units or whole units: the one parser of the API server
//! (defaulting, validation, quotas), the scheduler (requests, allocatable),
//! the node agent (limits, allocatable) and the volume binder.

use serde_json::Value;

/// The quantity `s` as base units × 1000, rounded up as Kubernetes rounds
/// (`Quantity.MilliValue`); `None` if it is not a quantity. Surrounding
/// whitespace is ignored, as Kubernetes ignores it when decoding JSON.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    // What one unit of the suffix is, in milli-units, as a fraction.
    let (scale_num, scale_den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000i128 << 40, 1),
        "Pi" => (1000i128 << 50, 1),
        "Ei" => (1000i128 << 60, 1),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            if exp >= 0 {
                (10i128.checked_pow(exp as u32)?.checked_mul(1000)?, 1)
            } else {
                (1000, 10i128.checked_pow(exp.unsigned_abs())?)
            }
        }
        _ => return None,
    };
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let frac_den = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    let frac: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().ok()?
    };
    let num = int
        .checked_mul(frac_den)?
        .checked_add(frac)?
        .checked_mul(scale_num)?;
    let den = frac_den.checked_mul(scale_den)?;
    let value = (num + den - 1) / den;
    Some(if negative { -value } else { value })
}

/// The quantity `s` in whole base units (bytes, cores), rounded up
/// (`Quantity.Value`); `None` if it is not a quantity.
pub fn parse_value(s: &str) -> Option<i128> {
    parse_milli(s).map(|m| (m + 999).div_euclid(1000))
}

/// A quantity in a JSON object as base units × 1000, rounded up: a string,
/// or a JSON number (`cpu: 1`); `None` for anything else.
pub fn json_milli(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_milli(s),
        Value::Number(n) => parse_milli(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_milli_units() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("0.1"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("64Mi"), Some(64_000 << 20));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1e-3"), Some(1));
        assert_eq!(parse_milli("0.5Gi"), Some(500 << 30));
        assert_eq!(parse_milli("1Gi"), parse_milli("1024Mi"));
        assert_eq!(parse_milli("-1"), Some(-1000));
        for bad in ["x", "1Q", "", "abc", "1.2.3"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_kubernetes_quantities() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("0.1"), Some(100));
        assert_eq!(parse_value("1Gi"), Some(1 << 30));
        assert_eq!(parse_value("128Mi"), Some(128 << 20));
        assert_eq!(parse_value("1k"), Some(1000));
        assert_eq!(parse_value("1M"), Some(1_000_000));
        assert_eq!(parse_value("2e3"), Some(2000));
        assert_eq!(parse_value("1E3"), Some(1000));
        assert_eq!(parse_milli("1u"), Some(1), "rounds up");
        assert_eq!(parse_value("110"), Some(110));
        assert_eq!(parse_value("64Mi"), Some(64 << 20));
        assert_eq!(parse_value("1G"), Some(1_000_000_000));
        assert_eq!(parse_value("1e3"), Some(1000));
        assert_eq!(parse_value("0.5Gi"), Some(1 << 29));
        assert_eq!(parse_value("100m"), Some(1), "whole units round up");
        assert_eq!(parse_value("-1500m"), Some(-1));
        assert_eq!(parse_milli(" 250m "), Some(250));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Qi"), None);
        assert_eq!(parse_milli(""), None);
        assert_eq!(parse_milli("."), None);
    }

    #[test]
    fn json_quantities_in_milli_units() {
        use serde_json::json;
        assert_eq!(json_milli(&json!("100m")), Some(100));
        assert_eq!(json_milli(&json!("0.1")), Some(100));
        assert_eq!(json_milli(&json!("1.5")), Some(1500));
        assert_eq!(json_milli(&json!(2)), Some(2000));
        assert_eq!(json_milli(&json!(" 2 ")), Some(2000));
        assert_eq!(json_milli(&json!("64Mi")), Some(64_000 << 20));
        assert_eq!(json_milli(&json!("1G")), Some(1_000_000_000_000));
        assert_eq!(json_milli(&json!("1e3")), Some(1_000_000));
        assert_eq!(json_milli(&json!("1Gi")), json_milli(&json!("1024Mi")));
        assert_eq!(json_milli(&json!("x")), None);
        assert_eq!(json_milli(&json!("1Q")), None);
        assert_eq!(json_milli(&json!(null)), None);
    }
}
