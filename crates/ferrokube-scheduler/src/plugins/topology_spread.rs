//! PodTopologySpread: DoNotSchedule constraints as a filter (the skew a
//! placement would cause within each topology key); ScheduleAnyway
//! constraints as a score (fewer matching pods in the node's domain is
//! better).

use std::collections::HashMap;

use crate::fasthash::FastMap;

use crate::cache::{Cache, NodeInfo};
use crate::plugins::{node_affinity, taint_toleration, MAX_NODE_SCORE};
use crate::podinfo::{PodInfo, SpreadConstraint};

pub(crate) const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub(crate) const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
pub(crate) const HOSTNAME: &str = "kubernetes.io/hostname";

fn count_matching(node: &NodeInfo, c: &SpreadConstraint, ns: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == ns && c.selector.matches(&p.labels))
        .count() as i64
}

/// Whether a node takes part in counting for these constraints.
fn eligible(pod: &PodInfo, node: &NodeInfo, cs: &[&SpreadConstraint]) -> bool {
    let Some(c0) = cs.first() else { return false };
    if c0.honor_node_affinity && !node_affinity::matches(pod, node) {
        return false;
    }
    if c0.honor_taints && taint_toleration::filter(pod, node).is_some() {
        return false;
    }
    cs.iter().all(|c| node.labels.contains_key(&c.topology_key))
}

/// Per hard constraint: matching pods per domain, and the smallest count.
#[derive(Debug, Default)]
pub(crate) struct FilterState<'a> {
    counts: Vec<FastMap<&'a str, i64>>,
    min: Vec<i64>,
}

pub(crate) fn prefilter<'a>(pod: &PodInfo, cache: &'a Cache) -> Option<FilterState<'a>> {
    let hard: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| c.hard).collect();
    if hard.is_empty() {
        return None;
    }
    let mut counts: Vec<FastMap<&'a str, i64>> = vec![FastMap::default(); hard.len()];
    for node in cache.nodes() {
        if !eligible(pod, node, &hard) {
            continue;
        }
        for (i, c) in hard.iter().enumerate() {
            let v = node
                .labels
                .get(&c.topology_key)
                .map(String::as_str)
                .unwrap_or("");
            *counts[i].entry(v).or_default() += count_matching(node, c, &pod.namespace);
        }
    }
    let min = counts
        .iter()
        .zip(&hard)
        .map(|(m, c)| {
            if (m.len() as i32) < c.min_domains {
                0
            } else {
                m.values().copied().min().unwrap_or(0)
            }
        })
        .collect();
    Some(FilterState { counts, min })
}

pub(crate) fn filter(st: &FilterState<'_>, pod: &PodInfo, node: &NodeInfo) -> Option<&'static str> {
    for (i, c) in pod.spread.iter().filter(|c| c.hard).enumerate() {
        let Some(v) = node.labels.get(&c.topology_key) else {
            return Some(REASON_MISSING_LABEL);
        };
        let self_match = c.selector.matches(&pod.labels) as i64;
        let here = st
            .counts
            .get(i)
            .and_then(|m| m.get(v.as_str()))
            .copied()
            .unwrap_or(0);
        let min = st.min.get(i).copied().unwrap_or(0);
        if here + self_match - min > c.max_skew as i64 {
            return Some(REASON);
        }
    }
    None
}

/// Per soft constraint: matching pods per domain (hostname counted per
/// node when scoring) and the constraint's weight, log(domains + 2).
#[derive(Debug, Default)]
pub(crate) struct ScoreState {
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

pub(crate) fn prescore(pod: &PodInfo, cache: &Cache, feasible: &[&NodeInfo]) -> Option<ScoreState> {
    let soft: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).collect();
    if soft.is_empty() {
        return None;
    }
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); soft.len()];
    let mut weights = Vec::with_capacity(soft.len());
    for (i, c) in soft.iter().enumerate() {
        let mut domains = std::collections::HashSet::new();
        for n in feasible {
            if soft.iter().all(|c| n.labels.contains_key(&c.topology_key)) {
                if let Some(v) = n.labels.get(&c.topology_key) {
                    domains.insert(v.clone());
                    counts[i].entry(v.clone()).or_insert(0);
                }
            }
        }
        weights.push(((domains.len() + 2) as f64).ln());
    }
    for node in cache.nodes() {
        if !eligible(pod, node, &soft) {
            continue;
        }
        for (i, c) in soft.iter().enumerate() {
            if c.topology_key == HOSTNAME {
                continue;
            }
            if let Some(v) = node.labels.get(&c.topology_key) {
                if let Some(e) = counts[i].get_mut(v) {
                    *e += count_matching(node, c, &pod.namespace);
                }
            }
        }
    }
    Some(ScoreState { counts, weights })
}

/// The raw score (lower is better); None for a node without the keys.
pub(crate) fn score(st: &ScoreState, pod: &PodInfo, node: &NodeInfo) -> Option<i64> {
    let soft: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).collect();
    if !soft
        .iter()
        .all(|c| node.labels.contains_key(&c.topology_key))
    {
        return None;
    }
    let mut s = 0.0;
    for (i, c) in soft.iter().enumerate() {
        let Some(v) = node.labels.get(&c.topology_key) else {
            continue;
        };
        let cnt = if c.topology_key == HOSTNAME {
            count_matching(node, c, &pod.namespace)
        } else {
            st.counts[i].get(v).copied().unwrap_or(0)
        };
        s += cnt as f64 * st.weights[i] + (c.max_skew - 1) as f64;
    }
    Some(s.round() as i64)
}

/// Reverses raw scores into 0..100; nodes without the keys get 0.
pub(crate) fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let vals: Vec<i64> = raw.iter().flatten().copied().collect();
    let max = vals.iter().copied().max().unwrap_or(0);
    let min = vals.iter().copied().min().unwrap_or(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, node_with_labels, pod, with_labels};
    use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::sync::Arc;

    fn spread(p: Pod, key: &str, skew: i32, when: &str) -> Pod {
        let mut p = with_labels(p, &[("app", "web")]);
        p.spec.as_mut().map(|s| {
            s.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                max_skew: skew,
                topology_key: key.into(),
                when_unsatisfiable: when.into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }])
        });
        p
    }

    fn info(p: Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn cluster() -> Cache {
        let mut c = Cache::new();
        c.set_node(Arc::new(node_with_labels(
            node("a", "4", "4Gi"),
            &[("zone", "z1")],
        )));
        c.set_node(Arc::new(node_with_labels(
            node("b", "4", "4Gi"),
            &[("zone", "z2")],
        )));
        c.set_node(Arc::new(node("nolabel", "4", "4Gi")));
        c
    }

    #[test]
    fn hard_constraint_limits_skew() {
        let mut c = cluster();
        c.assume(
            info(with_labels(pod("d", "w0", "", ""), &[("app", "web")])),
            "a",
        );
        let p = info(spread(pod("d", "w1", "", ""), "zone", 1, "DoNotSchedule"));
        let st = prefilter(&p, &c).expect("state");
        assert_eq!(filter(&st, &p, c.node("a").expect("a")), Some(REASON));
        assert_eq!(filter(&st, &p, c.node("b").expect("b")), None);
        assert_eq!(
            filter(&st, &p, c.node("nolabel").expect("n")),
            Some(REASON_MISSING_LABEL)
        );
        // skew 2 allows one more in z1
        let p2 = info(spread(pod("d", "w2", "", ""), "zone", 2, "DoNotSchedule"));
        let st = prefilter(&p2, &c).expect("state");
        assert_eq!(filter(&st, &p2, c.node("a").expect("a")), None);
    }

    #[test]
    fn soft_constraint_prefers_emptier_domains() {
        let mut c = cluster();
        c.assume(
            info(with_labels(pod("d", "w0", "", ""), &[("app", "web")])),
            "a",
        );
        let p = info(spread(pod("d", "w1", "", ""), "zone", 1, "ScheduleAnyway"));
        let feasible: Vec<&NodeInfo> = ["a", "b", "nolabel"]
            .iter()
            .filter_map(|n| c.node(n))
            .collect();
        let st = prescore(&p, &c, &feasible).expect("state");
        let raw: Vec<Option<i64>> = feasible.iter().map(|n| score(&st, &p, n)).collect();
        let s = normalize(&raw);
        assert!(s[1] > s[0], "{s:?}");
        assert_eq!(s[2], 0);
    }
}
