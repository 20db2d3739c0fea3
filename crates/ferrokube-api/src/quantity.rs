//! Kubernetes resource quantities ("100m", "1.5", "64Mi", "2G", "1e3") as
//! numbers of milli-units: the API server's defaulting (QoS classes) and the
//! node agent (limits, allocatable) read them the same way.

/// The quantity `s` as base units × 1000, rounded up as Kubernetes rounds;
/// `None` if it is not a quantity.
pub fn parse_milli(s: &str) -> Option<i128> {
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
}
