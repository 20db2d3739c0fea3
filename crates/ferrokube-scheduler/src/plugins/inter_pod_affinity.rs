//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's terms and existing pods' anti-affinity towards it) as a filter over
//! topology domains; preferred terms (both directions) as a score.

use crate::fasthash::FastMap;

use crate::cache::{Cache, NodeInfo};
use crate::plugins::MAX_NODE_SCORE;
use crate::podinfo::{AffinityTerm, PodInfo};

pub(crate) const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub(crate) const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub(crate) const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Weight given to existing pods' required affinity terms when scoring.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts per topology key, then value (strings borrowed from the snapshot
/// for the length of one cycle).
#[derive(Debug, Default)]
pub(crate) struct TopologyCounts<'a>(FastMap<&'a str, FastMap<&'a str, i64>>);

impl<'a> TopologyCounts<'a> {
    fn add(&mut self, key: &'a str, value: &'a str, n: i64) {
        *self.0.entry(key).or_default().entry(value).or_default() += n;
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Counts per topology (key, value), computed once per cycle.
#[derive(Debug, Default)]
pub(crate) struct FilterState<'a> {
    existing_anti: TopologyCounts<'a>,
    affinity: TopologyCounts<'a>,
    anti: TopologyCounts<'a>,
    active: bool,
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, cache: &Cache) -> bool {
    terms.iter().all(|t| t.matches(pod, &cache.namespaces))
}

pub(crate) fn prefilter<'a>(pod: &'a PodInfo, cache: &'a Cache) -> FilterState<'a> {
    let mut st = FilterState::default();
    let own = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
    if !own && cache.pods_with_required_anti_affinity() == 0 {
        return st;
    }
    for node in cache.nodes() {
        if node.pods_with_required_anti_affinity == 0 && !own {
            continue;
        }
        for existing in &node.pods {
            for t in &existing.required_anti_affinity {
                if let Some(v) = node.labels.get(&t.topology_key) {
                    if t.matches(pod, &cache.namespaces) {
                        st.existing_anti.add(&t.topology_key, v, 1);
                    }
                }
            }
            if !own {
                continue;
            }
            if !pod.required_affinity.is_empty()
                && pod
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(existing, &cache.namespaces))
            {
                for t in &pod.required_affinity {
                    if let Some(v) = node.labels.get(&t.topology_key) {
                        st.affinity.add(&t.topology_key, v, 1);
                    }
                }
            }
            for t in &pod.required_anti_affinity {
                if let Some(v) = node.labels.get(&t.topology_key) {
                    if t.matches(existing, &cache.namespaces) {
                        st.anti.add(&t.topology_key, v, 1);
                    }
                }
            }
        }
    }
    st.active = own || !st.existing_anti.is_empty();
    st
}

pub(crate) fn filter(
    st: &FilterState,
    pod: &PodInfo,
    node: &NodeInfo,
    cache: &Cache,
) -> Option<&'static str> {
    if !st.active {
        return None;
    }
    // The pod's own required affinity.
    let mut pods_exist = true;
    for t in &pod.required_affinity {
        let Some(v) = node.labels.get(&t.topology_key) else {
            return Some(REASON_AFFINITY);
        };
        if st.affinity.get(&t.topology_key, v) <= 0 {
            pods_exist = false;
        }
    }
    // The first of a series of pods that attract each other may go anywhere
    // the topology keys exist, when nothing else matches.
    let first_of_series = st.affinity.is_empty() && matches_all(&pod.required_affinity, pod, cache);
    if !pods_exist && !first_of_series {
        return Some(REASON_AFFINITY);
    }
    for t in &pod.required_anti_affinity {
        if let Some(v) = node.labels.get(&t.topology_key) {
            if st.anti.get(&t.topology_key, v) > 0 {
                return Some(REASON_ANTI_AFFINITY);
            }
        }
    }
    if !st.existing_anti.is_empty() {
        for (k, v) in &node.labels {
            if st.existing_anti.get(k, v) > 0 {
                return Some(REASON_EXISTING_ANTI_AFFINITY);
            }
        }
    }
    None
}

/// Preferred-term weights per topology (key, value); None when the pod and
/// the cluster give this plugin nothing to score.
pub(crate) fn prescore<'a>(pod: &'a PodInfo, cache: &'a Cache) -> Option<TopologyCounts<'a>> {
    let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    if !own && cache.pods_with_affinity() == 0 {
        return None;
    }
    let mut scores = TopologyCounts::default();
    let mut any = false;
    for node in cache.nodes() {
        if !own && node.pods_with_affinity == 0 {
            continue;
        }
        for existing in &node.pods {
            let mut add = |t: &'a AffinityTerm, w: i64| {
                if let Some(v) = node.labels.get(&t.topology_key) {
                    scores.add(&t.topology_key, v, w);
                }
            };
            for t in &pod.preferred_affinity {
                if t.matches(existing, &cache.namespaces) {
                    add(t, t.weight as i64);
                }
            }
            for t in &pod.preferred_anti_affinity {
                if t.matches(existing, &cache.namespaces) {
                    add(t, -(t.weight as i64));
                }
            }
            for t in &existing.required_affinity {
                if t.matches(pod, &cache.namespaces) {
                    add(t, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            for t in &existing.preferred_affinity {
                if t.matches(pod, &cache.namespaces) {
                    add(t, t.weight as i64);
                }
            }
            for t in &existing.preferred_anti_affinity {
                if t.matches(pod, &cache.namespaces) {
                    add(t, -(t.weight as i64));
                }
            }
            any = true;
        }
    }
    (own || any).then_some(scores)
}

pub(crate) fn score(scores: &TopologyCounts<'_>, node: &NodeInfo) -> i64 {
    if scores.is_empty() {
        return 0;
    }
    scores
        .0
        .iter()
        .filter_map(|(k, m)| node.labels.get(*k).and_then(|v| m.get(v.as_str())))
        .sum()
}

/// Min-max normalization to 0..100 (all 0 when every node scored the same).
pub(crate) fn normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied())
    else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, node_with_labels, pod, with_labels};
    use k8s_openapi::api::core::v1::{
        Affinity, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::sync::Arc;

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some([("app".to_string(), app.to_string())].into()),
                ..Default::default()
            }),
            topology_key: key.into(),
            ..Default::default()
        }
    }

    fn anti(p: Pod, app: &str, key: &str) -> Pod {
        let mut p = p;
        p.spec.as_mut().map(|s| {
            s.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![term(app, key)]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        p
    }

    fn aff(p: Pod, app: &str, key: &str) -> Pod {
        let mut p = p;
        p.spec.as_mut().map(|s| {
            s.affinity = Some(Affinity {
                pod_affinity: Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![term(app, key)]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        p
    }

    fn cluster() -> Cache {
        let mut c = Cache::new();
        c.set_node(Arc::new(node_with_labels(
            node("a", "4", "4Gi"),
            &[("zone", "z1")],
        )));
        c.set_node(Arc::new(node_with_labels(
            node("b", "4", "4Gi"),
            &[("zone", "z1")],
        )));
        c.set_node(Arc::new(node_with_labels(
            node("c", "4", "4Gi"),
            &[("zone", "z2")],
        )));
        c
    }

    fn info(p: Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn check(c: &Cache, p: &PodInfo, n: &str) -> Option<&'static str> {
        let st = prefilter(p, c);
        filter(&st, p, c.node(n).expect("node"), c)
    }

    #[test]
    fn anti_affinity_keeps_replicas_apart_by_zone() {
        let mut c = cluster();
        c.assume(
            info(with_labels(
                anti(pod("d", "w1", "", ""), "web", "zone"),
                &[("app", "web")],
            )),
            "a",
        );
        let w2 = info(with_labels(
            anti(pod("d", "w2", "", ""), "web", "zone"),
            &[("app", "web")],
        ));
        assert_eq!(check(&c, &w2, "b"), Some(REASON_ANTI_AFFINITY));
        assert_eq!(check(&c, &w2, "c"), None);
        // a pod without terms is kept off by the existing pod's anti-affinity
        let plain = info(with_labels(pod("d", "x", "", ""), &[("app", "web")]));
        assert_eq!(check(&c, &plain, "b"), Some(REASON_EXISTING_ANTI_AFFINITY));
        let other = info(with_labels(pod("d", "y", "", ""), &[("app", "db")]));
        assert_eq!(check(&c, &other, "b"), None);
        // another namespace is not selected by default
        let elsewhere = info(with_labels(pod("e", "x", "", ""), &[("app", "web")]));
        assert_eq!(check(&c, &elsewhere, "b"), None);
    }

    #[test]
    fn affinity_follows_matching_pods_and_lets_the_first_one_in() {
        let mut c = cluster();
        let first = info(with_labels(
            aff(pod("d", "f", "", ""), "cache", "zone"),
            &[("app", "cache")],
        ));
        assert_eq!(check(&c, &first, "c"), None, "first of its series");
        let lonely = info(aff(pod("d", "l", "", ""), "cache", "zone"));
        assert_eq!(check(&c, &lonely, "c"), Some(REASON_AFFINITY));
        c.assume(
            info(with_labels(pod("d", "cache", "", ""), &[("app", "cache")])),
            "c",
        );
        assert_eq!(check(&c, &lonely, "c"), None);
        assert_eq!(check(&c, &lonely, "a"), Some(REASON_AFFINITY));
    }

    #[test]
    fn preferred_terms_score_by_domain() {
        let mut c = cluster();
        c.assume(
            info(with_labels(pod("d", "cache", "", ""), &[("app", "cache")])),
            "c",
        );
        let mut p = pod("d", "p", "", "");
        p.spec.as_mut().map(|s| {
            s.affinity = Some(Affinity {
                pod_affinity: Some(PodAffinity {
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        k8s_openapi::api::core::v1::WeightedPodAffinityTerm {
                            weight: 5,
                            pod_affinity_term: term("cache", "zone"),
                        },
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        let p = info(p);
        let st = prescore(&p, &c).expect("scores");
        let mut s: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|n| score(&st, c.node(n).expect("node")))
            .collect();
        assert_eq!(s, vec![0, 0, 5]);
        normalize(&mut s);
        assert_eq!(s, vec![0, 0, 100]);
    }
}
