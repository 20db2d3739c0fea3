//! DefaultPreemption, for resources and host ports: when a pod fits
//! nowhere, find the node where evicting the fewest, least important
//! lower-priority pods makes room (keeping every lower-priority pod that can
//! stay), so the scheduler can delete those victims and nominate the node.
//! Nodes refused for other reasons (taints, affinity, cordon, inter-pod
//! rules, spread) are not candidates.

use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::plugins::{
    node_affinity, node_name, node_ports, node_unschedulable, resources, taint_toleration,
};
use crate::podinfo::PodInfo;

/// A node and the pods to evict from it.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

fn fits(pod: &PodInfo, node: &NodeInfo) -> bool {
    resources::filter(pod, node).is_empty() && node_ports::filter(pod, node).is_none()
}

/// Whether the pod may preempt at all (`preemptionPolicy: Never` may not).
pub(crate) fn eligible(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        != Some("Never")
}

fn victims_on(pod: &PodInfo, priority: i32, node: &NodeInfo) -> Option<Vec<Arc<PodInfo>>> {
    let n = node.node.clone()?;
    if node_unschedulable::filter(pod, node).is_some()
        || node_name::filter(pod, node).is_some()
        || taint_toleration::filter(pod, node).is_some()
        || !node_affinity::matches(pod, node)
    {
        return None;
    }
    let (mut lower, higher): (Vec<_>, Vec<_>) = node
        .pods
        .iter()
        .cloned()
        .partition(|p| p.priority < priority);
    if lower.is_empty() {
        return None;
    }
    let mut trial = NodeInfo::from_node(n);
    for p in higher {
        trial.add_pod(p);
    }
    if !fits(pod, &trial) {
        return None;
    }
    // Give back as many as possible, most important first.
    lower.sort_by_key(|p| std::cmp::Reverse(p.priority));
    let mut victims = Vec::new();
    for p in lower {
        trial.add_pod(p.clone());
        if !fits(pod, &trial) {
            trial_remove_last(&mut trial);
            victims.push(p);
        }
    }
    (!victims.is_empty()).then_some(victims)
}

fn trial_remove_last(n: &mut NodeInfo) {
    if let Some(p) = n.pods.last().cloned() {
        n.remove_pod(&p.key);
    }
}

/// The best node to preempt on: lowest top victim priority, then lowest
/// priority sum, then fewest victims.
pub(crate) fn find_candidate(cache: &Cache, pod: &PodInfo, priority: i32) -> Option<Candidate> {
    let mut best: Option<((i64, i64, usize), Candidate)> = None;
    for node in cache.nodes() {
        let Some(victims) = victims_on(pod, priority, node) else {
            continue;
        };
        let top = victims
            .iter()
            .map(|v| v.priority as i64)
            .max()
            .unwrap_or(i64::MIN);
        let sum: i64 = victims.iter().map(|v| v.priority as i64).sum();
        let rank = (top, sum, victims.len());
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((
                rank,
                Candidate {
                    node: node.name.clone(),
                    victims,
                },
            ));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};

    fn prio(name: &str, cpu: &str, p: i32) -> Arc<PodInfo> {
        let mut x = pod("d", name, cpu, "");
        x.spec.as_mut().map(|s| s.priority = Some(p));
        Arc::new(PodInfo::new(Arc::new(x)))
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut c = Cache::new();
        c.set_node(Arc::new(node("a", "4", "8Gi")));
        c.set_node(Arc::new(node("b", "4", "8Gi")));
        // a: two low pods of 2 cpu; b: one pod of 1 cpu at 50 and one of 3 at 10
        c.assume(prio("a1", "2", 10), "a");
        c.assume(prio("a2", "2", 10), "a");
        c.assume(prio("b1", "1", 50), "b");
        c.assume(prio("b2", "3", 10), "b");
        let hi = prio("hi", "2", 100);
        let cand = find_candidate(&c, &hi, 100).expect("candidate");
        let names: Vec<&str> = cand.victims.iter().map(|v| v.name.as_str()).collect();
        // On a one victim of priority 10 suffices; on b too (b2), same rank
        // except b2 is also one victim at 10: the first found wins on ties.
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0] == "a1" || names[0] == "a2" || names[0] == "b2");
        // equal or higher priority pods are never victims
        let mid = prio("mid", "2", 10);
        assert!(find_candidate(&c, &mid, 10).is_none());
    }
}
