//! One scheduling cycle over the snapshot: filter nodes (walking from where
//! the last cycle stopped, and stopping once enough feasible nodes are found,
//! by Kubernetes' percentageOfNodesToScore rule), score the feasible ones
//! with the default profile's plugins and weights, pick the best (ties at
//! random). A pod that fits nowhere gets a [`FitError`] whose text is
//! Kubernetes' per-reason summary.

use std::collections::BTreeMap;
use std::fmt;

use crate::cache::{Cache, NodeInfo};
use crate::plugins::volume_binding::PreFilterError;
use crate::plugins::{
    default_normalize, image_locality, inter_pod_affinity, node_affinity, node_name, node_ports,
    node_unschedulable, resources, taint_toleration, topology_spread, volume_binding,
};
use crate::podinfo::PodInfo;

/// Below this many nodes, every node is filtered.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to look for among `all` (adaptive when
/// `percentage` is None: 50% minus 1% per 125 nodes, at least 5%, and never
/// fewer than 100 nodes).
pub(crate) fn num_feasible_nodes_to_find(all: usize, percentage: Option<u32>) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let pct = match percentage {
        Some(p) if p >= 100 => return all,
        Some(p) if p > 0 => p as usize,
        _ => (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where a pod goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The chosen node's name.
    pub node: String,
    /// Nodes the filters ran on (fewer than all with percentageOfNodesToScore).
    pub(crate) evaluated: usize,
    /// Of those, the nodes the pod fits on.
    pub(crate) feasible: usize,
}

/// Why a pod fits on no node: how many nodes gave each reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    /// Nodes in the snapshot (the `0/N nodes are available` of the message).
    pub(crate) num_nodes: usize,
    /// Each filter's reason and how many nodes gave it.
    pub(crate) reasons: BTreeMap<String, usize>,
    /// Why a PreFilter plugin refused the pod on every node.
    pub(crate) pre_filter: Option<PreFilterError>,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_nodes == 0 {
            return write!(f, "no nodes available to schedule pods");
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        write!(f, "0/{} nodes are available", self.num_nodes)?;
        if let Some(why) = &self.pre_filter {
            return write!(f, ": {why}.");
        }
        if parts.is_empty() {
            write!(f, ":")
        } else {
            write!(f, ": {}.", parts.join(", "))
        }
    }
}

/// Score weights of the default profile.
pub(crate) mod weights {
    pub(crate) const TAINT_TOLERATION: i64 = 3;
    pub(crate) const NODE_AFFINITY: i64 = 2;
    pub(crate) const RESOURCES_FIT: i64 = 1;
    pub(crate) const TOPOLOGY_SPREAD: i64 = 2;
    pub(crate) const INTER_POD_AFFINITY: i64 = 2;
    pub(crate) const BALANCED_ALLOCATION: i64 = 1;
    pub(crate) const IMAGE_LOCALITY: i64 = 1;
}

/// The scheduling algorithm and the little state it keeps between cycles.
#[derive(Debug)]
pub struct Algorithm {
    next_start: usize,
    rng: u64,
    /// percentageOfNodesToScore; None = adaptive.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::new()
    }
}

/// Per-cycle state of the plugins that look across nodes.
struct CycleState<'a> {
    affinity: inter_pod_affinity::FilterState<'a>,
    spread: Option<topology_spread::FilterState<'a>>,
    volumes: Option<&'a volume_binding::PodVolumes>,
}

/// Runs the filters in the default profile's order; the first plugin that
/// refuses gives the node's reasons.
fn run_filters(
    st: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    cache: &Cache,
) -> Result<(), Vec<String>> {
    if let Some(r) = node_unschedulable::filter(pod, node) {
        return Err(vec![r.into()]);
    }
    if let Some(r) = node_name::filter(pod, node) {
        return Err(vec![r.into()]);
    }
    if let Some(r) = taint_toleration::filter(pod, node) {
        return Err(vec![r]);
    }
    if let Some(r) = node_affinity::filter(pod, node) {
        return Err(vec![r.into()]);
    }
    if let Some(r) = node_ports::filter(pod, node) {
        return Err(vec![r.into()]);
    }
    let r = resources::filter(pod, node);
    if !r.is_empty() {
        return Err(r);
    }
    if let Some(v) = st.volumes {
        if let Some(r) = v.filter(&node.labels) {
            return Err(vec![r.into()]);
        }
    }
    if let Some(s) = &st.spread {
        if let Some(r) = topology_spread::filter(s, pod, node) {
            return Err(vec![r.into()]);
        }
    }
    if let Some(r) = inter_pod_affinity::filter(&st.affinity, pod, node, cache) {
        return Err(vec![r.into()]);
    }
    Ok(())
}

impl Algorithm {
    /// The default profile, with a sampling start seeded from the clock.
    pub fn new() -> Algorithm {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Algorithm {
            next_start: 0,
            rng: seed | 1,
            percentage_of_nodes_to_score: None,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Finds a node for `pod` in `cache`.
    pub fn schedule(&mut self, cache: &Cache, pod: &PodInfo) -> Result<Placement, FitError> {
        self.schedule_with_volumes(cache, pod, None)
    }

    /// Finds a node for `pod` in `cache` where its claims can be
    /// (`volumes`: VolumeBinding's PreFilter result, `None` if the pod has
    /// no claims).
    pub fn schedule_with_volumes(
        &mut self,
        cache: &Cache,
        pod: &PodInfo,
        volumes: Option<&volume_binding::PodVolumes>,
    ) -> Result<Placement, FitError> {
        let all = cache.node_count();
        let slots = cache.slot_count();
        if all == 0 {
            return Err(FitError::default());
        }
        let st = CycleState {
            affinity: inter_pod_affinity::prefilter(pod, cache),
            spread: topology_spread::prefilter(pod, cache),
            volumes,
        };
        if let Some(names) = &pod.node_names {
            return self.schedule_among(cache, pod, &st, names);
        }
        let want = num_feasible_nodes_to_find(all, self.percentage_of_nodes_to_score);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(all));
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let start = self.next_start % slots;
        let mut walked = 0;
        let mut evaluated = 0;
        for i in 0..slots {
            walked = i + 1;
            let Some(node) = cache.node_at((start + i) % slots) else {
                continue;
            };
            evaluated += 1;
            match run_filters(&st, pod, node, cache) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                }
            }
        }
        self.next_start = (start + walked) % slots;
        if feasible.is_empty() {
            return Err(FitError {
                num_nodes: all,
                reasons,
                pre_filter: None,
            });
        }
        let n_feasible = feasible.len();
        if n_feasible == 1 {
            return Ok(Placement {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            });
        }
        let totals = self.score(cache, pod, &feasible);
        // Highest total; ties broken uniformly at random.
        let mut best = 0usize;
        let mut ties = 0u64;
        let mut best_score = i64::MIN;
        for (i, s) in totals.iter().enumerate() {
            if *s > best_score {
                best_score = *s;
                best = i;
                ties = 1;
            } else if *s == best_score {
                ties += 1;
                if self.next_rand().is_multiple_of(ties) {
                    best = i;
                }
            }
        }
        Ok(Placement {
            node: feasible[best].name.clone(),
            evaluated,
            feasible: n_feasible,
        })
    }

    /// Finds a node among the few the pod's node affinity names (its
    /// PreFilter result): only those are filtered and scored; the others
    /// count as not matching the node affinity.
    fn schedule_among(
        &mut self,
        cache: &Cache,
        pod: &PodInfo,
        st: &CycleState,
        names: &std::collections::BTreeSet<String>,
    ) -> Result<Placement, FitError> {
        let all = cache.node_count();
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut evaluated = 0;
        for name in names {
            let Some(node) = cache.node(name) else {
                continue;
            };
            evaluated += 1;
            match run_filters(st, pod, node, cache) {
                Ok(()) => feasible.push(node),
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                }
            }
        }
        if all > evaluated {
            *reasons
                .entry(node_affinity::REASON.to_string())
                .or_default() += all - evaluated;
        }
        if feasible.is_empty() {
            return Err(FitError {
                num_nodes: all,
                reasons,
                pre_filter: None,
            });
        }
        let n_feasible = feasible.len();
        let best = if n_feasible == 1 {
            0
        } else {
            let totals = self.score(cache, pod, &feasible);
            let top = totals.iter().copied().max().unwrap_or(0);
            totals.iter().position(|s| *s == top).unwrap_or(0)
        };
        Ok(Placement {
            node: feasible[best].name.clone(),
            evaluated,
            feasible: n_feasible,
        })
    }

    /// Weighted sum of the normalized plugin scores, per feasible node.
    pub fn score(&mut self, cache: &Cache, pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
        use weights::*;
        let n = nodes.len();
        let mut total = vec![0i64; n];
        let mut add = |scores: &[i64], w: i64| {
            for (t, s) in total.iter_mut().zip(scores) {
                *t += s * w;
            }
        };
        // TaintToleration: untolerated PreferNoSchedule taints, fewer is better.
        let mut s: Vec<i64> = nodes
            .iter()
            .map(|nd| taint_toleration::score(pod, nd))
            .collect();
        default_normalize(&mut s, true);
        add(&s, TAINT_TOLERATION);
        if !pod.preferred_node_affinity.is_empty() {
            let mut s: Vec<i64> = nodes
                .iter()
                .map(|nd| node_affinity::score(pod, nd))
                .collect();
            default_normalize(&mut s, false);
            add(&s, NODE_AFFINITY);
        }
        let s: Vec<i64> = nodes
            .iter()
            .map(|nd| resources::least_allocated(pod, nd))
            .collect();
        add(&s, RESOURCES_FIT);
        if let Some(st) = topology_spread::prescore(pod, cache, nodes) {
            let raw: Vec<Option<i64>> = nodes
                .iter()
                .map(|nd| topology_spread::score(&st, pod, nd))
                .collect();
            add(&topology_spread::normalize(&raw), TOPOLOGY_SPREAD);
        }
        if let Some(st) = inter_pod_affinity::prescore(pod, cache) {
            let mut s: Vec<i64> = nodes
                .iter()
                .map(|nd| inter_pod_affinity::score(&st, nd))
                .collect();
            inter_pod_affinity::normalize(&mut s);
            add(&s, INTER_POD_AFFINITY);
        }
        if resources::balanced_applies(pod) {
            let s: Vec<i64> = nodes
                .iter()
                .map(|nd| resources::balanced_allocation(pod, nd))
                .collect();
            add(&s, BALANCED_ALLOCATION);
        }
        if !pod.images.is_empty() {
            let all = cache.node_count();
            let s: Vec<i64> = nodes
                .iter()
                .map(|nd| image_locality::score(pod, nd, all, |i| cache.nodes_having_image(i)))
                .collect();
            add(&s, IMAGE_LOCALITY);
        }
        total
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use k8s_openapi::api::core::v1::Taint;
    use std::sync::Arc;

    fn info(p: k8s_openapi::api::core::v1::Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn feasible_nodes_to_find_follows_kubernetes() {
        assert_eq!(num_feasible_nodes_to_find(50, None), 50);
        assert_eq!(num_feasible_nodes_to_find(100, None), 100);
        assert_eq!(num_feasible_nodes_to_find(1000, None), 420);
        assert_eq!(num_feasible_nodes_to_find(5000, None), 500);
        assert_eq!(num_feasible_nodes_to_find(6000, None), 300);
        assert_eq!(num_feasible_nodes_to_find(100_000, None), 5000);
        assert_eq!(num_feasible_nodes_to_find(300, Some(10)), 100);
        assert_eq!(num_feasible_nodes_to_find(300, Some(100)), 300);
    }

    #[test]
    fn failure_summary_is_kubernetes_text() {
        let mut c = Cache::new();
        let mut gpu = node("gpu", "8", "8Gi");
        gpu.spec.as_mut().map(|s| {
            s.taints = Some(vec![Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }])
        });
        c.set_node(Arc::new(gpu));
        for i in 0..3 {
            c.set_node(Arc::new(node(&format!("n{i}"), "1", "8Gi")));
        }
        let mut a = Algorithm::new();
        let err = a
            .schedule(&c, &info(pod("d", "big", "2", "1Gi")))
            .expect_err("fits nowhere");
        assert_eq!(
            err.to_string(),
            "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
        );
        assert_eq!(
            FitError::default().to_string(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn prefers_the_emptier_node_and_never_overcommits() {
        let mut c = Cache::new();
        c.set_node(Arc::new(node("a", "4", "4Gi")));
        c.set_node(Arc::new(node("b", "4", "4Gi")));
        c.assume(info(pod("d", "x", "2", "2Gi")), "a");
        let mut a = Algorithm::new();
        let p = a
            .schedule(&c, &info(pod("d", "y", "1", "1Gi")))
            .expect("fits");
        assert_eq!(p.node, "b");
        // fill both nodes: 8 pods of 1 cpu fit, the 9th does not
        let mut c = Cache::new();
        c.set_node(Arc::new(node("a", "4", "4Gi")));
        c.set_node(Arc::new(node("b", "4", "4Gi")));
        for i in 0..8 {
            let p = info(pod("d", &format!("p{i}"), "1", "100Mi"));
            let at = a.schedule(&c, &p).expect("fits");
            c.assume(p, &at.node);
        }
        assert_eq!(c.node("a").map(|n| n.requested.milli_cpu), Some(4000));
        assert_eq!(c.node("b").map(|n| n.requested.milli_cpu), Some(4000));
        let err = a
            .schedule(&c, &info(pod("d", "p9", "1", "100Mi")))
            .expect_err("full");
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
    }

    #[test]
    fn large_clusters_stop_after_enough_feasible_nodes() {
        let mut c = Cache::new();
        for i in 0..1000 {
            c.set_node(Arc::new(node(&format!("n{i}"), "4", "4Gi")));
        }
        let mut a = Algorithm::new();
        let p = a
            .schedule(&c, &info(pod("d", "p", "1", "1Gi")))
            .expect("fits");
        assert_eq!(p.feasible, 420);
        assert_eq!(p.evaluated, 420);
        let q = a
            .schedule(&c, &info(pod("d", "q", "1", "1Gi")))
            .expect("fits");
        let qi: usize = q.node[1..].parse().expect("index");
        assert!(
            (420..840).contains(&qi),
            "the next cycle starts where the last stopped: {qi}"
        );
    }
}
