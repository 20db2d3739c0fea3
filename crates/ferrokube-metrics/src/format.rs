//! How NodeMetrics and PodMetrics write their values, as metrics-server's
//! objects serialize: CPU as a `resource.Quantity` of scale -9 in
//! DecimalSI (`250m`, `1234567n`), bytes as BinarySI (`48Mi`, `1234Ki`),
//! both in Kubernetes' canonical form; windows as Go's
//! `time.Duration.String()` (`15.002s`, `1m0s`); timestamps as
//! `metav1.Time` (RFC 3339, whole seconds, UTC).

use crate::point::Nanos;

/// A DecimalSI quantity `value × 10^exponent` in canonical form: trailing
/// zeros taken into the exponent, the exponent a multiple of 3 with its SI
/// suffix.
fn decimal_si(mut value: u64, mut exponent: i32) -> String {
    if value == 0 {
        return "0".to_string();
    }
    while value.is_multiple_of(10) {
        value /= 10;
        exponent += 1;
    }
    // Down to a multiple of 3 (towards smaller units, as Kubernetes does).
    let extra = exponent.rem_euclid(3);
    let mut value = u128::from(value);
    for _ in 0..extra {
        value *= 10;
    }
    exponent -= extra;
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return format!("{value}e{exponent}"),
    };
    format!("{value}{suffix}")
}

/// CPU in nanocores, as metrics-server's quantity of scale -9.
pub fn cpu_quantity(nanocores: u64) -> String {
    // Above int64 metrics-server drops a digit to fit; so does this.
    if nanocores > i64::MAX as u64 {
        return decimal_si(nanocores / 10, -8);
    }
    decimal_si(nanocores, -9)
}

/// Bytes, as a BinarySI quantity in canonical form (DecimalSI below 1024).
pub fn bytes_quantity(bytes: u64) -> String {
    let bytes = bytes.min(i64::MAX as u64);
    if bytes < 1024 {
        return decimal_si(bytes, 0);
    }
    let mut value = bytes;
    let mut power = 0;
    while value.is_multiple_of(1024) && power < 6 {
        value /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{value}{suffix}")
}

/// Go's `time.Duration.String()`.
pub fn go_duration(d: Nanos) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let body = if u < 1_000_000_000 {
        // Below a second: ns, µs or ms with a fraction.
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", fraction(u, scale))
    } else {
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let s = fraction(secs % 60 * 1_000_000_000 + frac, 1_000_000_000);
        let minutes = secs / 60;
        if minutes == 0 {
            format!("{s}s")
        } else if minutes < 60 {
            format!("{minutes}m{s}s")
        } else {
            format!("{}h{}m{s}s", minutes / 60, minutes % 60)
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// `v / scale` with the fraction's trailing zeros cut.
fn fraction(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let rest = v % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A `metav1.Time`: RFC 3339 in UTC, whole seconds.
pub fn rfc3339(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000);
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Go's zero `metav1.Time` as metrics-server writes an unset timestamp.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_canonical_decimal_of_scale_minus_9() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(1_500_000_000), "1500m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(123_456_789), "123456789n");
        assert_eq!(cpu_quantity(1_230_000), "1230u");
        assert_eq!(cpu_quantity(50), "50n");
    }

    #[test]
    fn bytes_are_canonical_binary() {
        assert_eq!(bytes_quantity(0), "0");
        assert_eq!(bytes_quantity(1000), "1k");
        assert_eq!(bytes_quantity(48 << 20), "48Mi");
        assert_eq!(bytes_quantity(1_264_640), "1235Ki");
        assert_eq!(bytes_quantity(1_264_641), "1264641");
        assert_eq!(bytes_quantity(3 << 30), "3Gi");
    }

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(15_000_000_000), "15s");
        assert_eq!(go_duration(15_002_000_000), "15.002s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(7), "7ns");
    }

    #[test]
    fn times_are_whole_seconds_in_utc() {
        assert_eq!(rfc3339(1_733_526_000_999_000_000), "2024-12-06T23:00:00Z");
    }
}
