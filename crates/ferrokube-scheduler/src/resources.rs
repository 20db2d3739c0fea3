//! The resource lists the scheduler adds up (requests, allocatable), their
//! quantities ("100m", "1Gi", "2e3") read by the API machinery's parser.

use std::collections::BTreeMap;

use ferrokube_api::quantity::{parse_milli, parse_value};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity in milli-units, 0 when unreadable or beyond `i64`.
fn milli(q: &str) -> i64 {
    parse_milli(q)
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(0)
}

/// A quantity in whole units, 0 when unreadable or beyond `i64`.
fn whole(q: &str) -> i64 {
    parse_value(q)
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(0)
}

pub(crate) const CPU: &str = "cpu";
pub(crate) const MEMORY: &str = "memory";
pub(crate) const EPHEMERAL: &str = "ephemeral-storage";
pub(crate) const PODS: &str = "pods";

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
            CPU => self.milli_cpu = milli(q),
            MEMORY => self.memory = whole(q),
            EPHEMERAL => self.ephemeral_storage = whole(q),
            PODS => self.pods = whole(q),
            other => {
                self.scalar.insert(other.to_string(), whole(q));
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
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;

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
