//! Resource quantities ("100m", "1Gi", "2e3") read into integers, and the
//! resource lists the scheduler adds up (requests, allocatable).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity's value times 1000, rounded up (Kubernetes' `MilliValue`).
/// `None` when the text is not a quantity.
pub fn parse_milli(q: &str) -> Option<i64> {
    let s = q.trim();
    if s.is_empty() {
        return None;
    }
    let (neg, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    if num.is_empty() || num == "." {
        return None;
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if frac_part.contains('.') {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().ok()?;
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut mult: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => mult = 1 << 10,
        "Mi" => mult = 1 << 20,
        "Gi" => mult = 1 << 30,
        "Ti" => mult = 1 << 40,
        "Pi" => mult = 1 << 50,
        "Ei" => mult = 1 << 60,
        e if e.starts_with('e') || e.starts_with('E') => {
            let x: i32 = e[1..].parse().ok()?;
            exp10 += x;
        }
        _ => return None,
    }
    // value * 1000 = mantissa * mult * 10^(exp10 + 3)
    let e = exp10 + 3;
    let base = mantissa.checked_mul(mult)?;
    let v: i128 = if e >= 0 {
        if e > 30 {
            return None;
        }
        base.checked_mul(10i128.checked_pow(e as u32)?)?
    } else {
        let d = 10i128.checked_pow((-e).min(38) as u32)?;
        (base + d - 1) / d
    };
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// A quantity's value rounded up to a whole number (Kubernetes' `Value`).
pub fn parse_value(q: &str) -> Option<i64> {
    let m = parse_milli(q)?;
    Some(if m >= 0 { (m + 999) / 1000 } else { m / 1000 })
}

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// CPU in millicores; memory, ephemeral storage, pod count and every other
/// (scalar) resource in whole units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a resource list (requests, allocatable); unreadable values count as 0.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        if let Some(list) = list {
            for (name, q) in list {
                r.set(name, &q.0);
            }
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            CPU => self.milli_cpu = parse_milli(q).unwrap_or(0),
            MEMORY => self.memory = parse_value(q).unwrap_or(0),
            EPHEMERAL => self.ephemeral_storage = parse_value(q).unwrap_or(0),
            PODS => self.pods = parse_value(q).unwrap_or(0),
            other => {
                self.scalar
                    .insert(other.to_string(), parse_value(q).unwrap_or(0));
            }
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Each resource the larger of the two.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.pods = self.pods.max(o.pods);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

#[cfg(test)]
#[allow(clippy::option_map_unit_fn)]
mod tests {
    use super::*;

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
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Qi"), None);
        assert_eq!(parse_milli(""), None);
    }

    #[test]
    fn resource_lists_add_and_compare() {
        let mut l = BTreeMap::new();
        l.insert("cpu".to_string(), Quantity("250m".into()));
        l.insert("memory".to_string(), Quantity("1Mi".into()));
        l.insert("example.com/gpu".to_string(), Quantity("2".into()));
        let r = Resources::from_list(Some(&l));
        assert_eq!(r.milli_cpu, 250);
        assert_eq!(r.memory, 1 << 20);
        assert_eq!(r.scalar["example.com/gpu"], 2);
        let mut s = r.clone();
        s.add(&r);
        assert_eq!(s.milli_cpu, 500);
        s.sub(&r);
        assert_eq!(s, r);
    }
}
