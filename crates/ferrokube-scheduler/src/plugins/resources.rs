//! NodeResourcesFit (filter: requests against allocatable; score:
//! LeastAllocated over cpu and memory) and NodeResourcesBalancedAllocation
//! (score: how evenly cpu and memory would be used).

use crate::cache::NodeInfo;
use crate::plugins::MAX_NODE_SCORE;
use crate::podinfo::PodInfo;

/// Every resource the node lacks for the pod, in Kubernetes' order: pods,
/// cpu, memory, ephemeral-storage, then other resources by name.
pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut out = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        out.push("Too many pods".to_string());
    }
    let r = &pod.requests;
    if r.is_zero() {
        return out;
    }
    let a = &node.allocatable;
    let u = &node.requested;
    if r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu {
        out.push("Insufficient cpu".into());
    }
    if r.memory > 0 && r.memory > a.memory - u.memory {
        out.push("Insufficient memory".into());
    }
    if r.ephemeral_storage > 0 && r.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage {
        out.push("Insufficient ephemeral-storage".into());
    }
    for (name, want) in &r.scalar {
        if *want == 0 {
            continue;
        }
        let have = a.scalar.get(name).copied().unwrap_or(0);
        let used = u.scalar.get(name).copied().unwrap_or(0);
        if *want > have - used {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated: free share of cpu and memory after placing the pod
/// (unset requests counted as 100m / 200 MiB), weights 1 and 1.
pub(crate) fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = least_requested(
        node.non_zero_cpu + pod.non_zero_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = least_requested(
        node.non_zero_memory + pod.non_zero_memory,
        node.allocatable.memory,
    );
    (cpu + mem) / 2
}

/// Whether BalancedAllocation has anything to say (the pod requests cpu or memory).
pub(crate) fn balanced_applies(pod: &PodInfo) -> bool {
    pod.requests.milli_cpu > 0 || pod.requests.memory > 0
}

/// BalancedAllocation: 100 × (1 − standard deviation of the cpu and memory
/// fractions the node would have in use).
pub(crate) fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fraction =
        |req: i64, alloc: i64| (alloc != 0).then(|| (req as f64 / alloc as f64).min(1.0));
    let cpu = fraction(
        node.requested.milli_cpu + pod.requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let memory = fraction(
        node.requested.memory + pod.requests.memory,
        node.allocatable.memory,
    );
    // The standard deviation of two fractions; of one or none, zero.
    let std = match (cpu, memory) {
        (Some(c), Some(m)) => ((c - m) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::sync::Arc;

    fn info(p: k8s_openapi::api::core::v1::Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn insufficient_resources_are_each_named() {
        let mut n = NodeInfo::from_node(Arc::new(node("n1", "2", "2Gi")));
        n.add_pod(info(pod("d", "a", "1500m", "1Gi")));
        assert!(filter(&info(pod("d", "b", "500m", "1Gi")), &n).is_empty());
        assert_eq!(
            filter(&info(pod("d", "b", "501m", "1Gi")), &n),
            vec!["Insufficient cpu"]
        );
        assert_eq!(
            filter(&info(pod("d", "b", "1", "2Gi")), &n),
            vec!["Insufficient cpu", "Insufficient memory"]
        );
        let mut gpu = pod("d", "g", "", "");
        gpu.spec.as_mut().map(|s| {
            s.containers[0]
                .resources
                .as_mut()
                .and_then(|r| r.requests.as_mut())
                .map(|r| r.insert("example.com/gpu".into(), Quantity("1".into())))
        });
        assert_eq!(filter(&info(gpu), &n), vec!["Insufficient example.com/gpu"]);
    }

    #[test]
    fn pod_count_is_a_resource() {
        let mut nd = node("n1", "2", "2Gi");
        nd.status
            .as_mut()
            .and_then(|s| s.allocatable.as_mut())
            .map(|a| a.insert("pods".into(), Quantity("1".into())));
        let mut n = NodeInfo::from_node(Arc::new(nd));
        assert!(filter(&info(pod("d", "a", "", "")), &n).is_empty());
        n.add_pod(info(pod("d", "a", "", "")));
        assert_eq!(
            filter(&info(pod("d", "b", "", "")), &n),
            vec!["Too many pods"]
        );
    }

    #[test]
    fn least_allocated_and_balanced_scores() {
        let n = NodeInfo::from_node(Arc::new(node("n1", "4", "4Gi")));
        // 1 of 4 cpu, 1 of 4 GiB: 75 free each
        let p = info(pod("d", "a", "1", "1Gi"));
        assert_eq!(least_allocated(&p, &n), 75);
        assert_eq!(balanced_allocation(&p, &n), 100);
        // 2 of 4 cpu, 0 memory (scoring counts 200 MiB)
        let q = info(pod("d", "b", "2", ""));
        assert_eq!(
            least_allocated(&q, &n),
            (50 + (4096 - 200) * 100 / 4096) / 2
        );
        assert_eq!(balanced_allocation(&q, &n), 75);
    }
}
