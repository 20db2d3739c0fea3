//! Kubernetes resource quantities ("100m", "64Mi", "1.5", "2G") as numbers: CPU in
//! millicores, everything else in whole units (bytes), rounded up as Kubernetes does.

pub(crate) use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity as a number of base units times 1000 (milli-units), or `None` if it
/// is not a valid quantity.
pub(crate) fn milli_value(q: &Quantity) -> Option<i128> {
    ferrokube_api::quantity::parse_milli(&q.0)
}

/// Whole units (bytes, cores rounded up).
pub(crate) fn value(q: &Quantity) -> Option<i128> {
    ferrokube_api::quantity::parse_value(&q.0)
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
