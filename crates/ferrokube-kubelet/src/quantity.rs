//! Kubernetes resource quantities ("100m", "64Mi", "1.5", "2G") as numbers: CPU in
//! millicores, everything else in whole units (bytes), rounded up as Kubernetes does.

pub use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity as a number of base units times 1000 (milli-units), or `None` if it
/// is not a valid quantity.
pub fn milli_value(q: &Quantity) -> Option<i128> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    // Decimal exponents like "1e3" are rare; handle them.
    let (mult_num, mult_den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1024 * 1000, 1),
        "Mi" => ((1 << 20) * 1000, 1),
        "Gi" => ((1 << 30) * 1000, 1),
        "Ti" => ((1i128 << 40) * 1000, 1),
        "Pi" => ((1i128 << 50) * 1000, 1),
        e if e.starts_with('e') || e.starts_with('E') => {
            let exp: u32 = e[1..].parse().ok()?;
            (10i128.checked_pow(exp)? * 1000, 1)
        }
        _ => return None,
    };
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let negative = int_part.starts_with('-');
    let int_digits = int_part.trim_start_matches(['+', '-']);
    if int_digits.is_empty() && frac_part.is_empty() {
        return None;
    }
    let int: i128 = if int_digits.is_empty() {
        0
    } else {
        int_digits.parse().ok()?
    };
    let frac_den = 10i128.checked_pow(frac_part.len() as u32)?;
    let frac: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().ok()?
    };
    let scaled = (int * frac_den + frac).checked_mul(mult_num)?;
    let den = frac_den * mult_den;
    let v = (scaled + den - 1) / den; // round up
    Some(if negative { -v } else { v })
}

/// Whole units (bytes, cores rounded up).
pub fn value(q: &Quantity) -> Option<i128> {
    milli_value(q).map(|m| (m + 999).div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn parses_cpu_and_memory() {
        assert_eq!(milli_value(&q("100m")), Some(100));
        assert_eq!(milli_value(&q("1.5")), Some(1500));
        assert_eq!(milli_value(&q("2")), Some(2000));
        assert_eq!(value(&q("64Mi")), Some(64 << 20));
        assert_eq!(value(&q("1G")), Some(1_000_000_000));
        assert_eq!(value(&q("1e3")), Some(1000));
        assert_eq!(value(&q("0.5Gi")), Some(1 << 29));
        assert_eq!(milli_value(&q("abc")), None);
        assert_eq!(milli_value(&q("")), None);
    }
}
