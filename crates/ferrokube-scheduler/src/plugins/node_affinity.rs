//! NodeAffinity: `nodeSelector` and required node affinity as a filter;
//! preferred node affinity terms' weights as a score.

use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether the pod's nodeSelector and required node affinity admit the node.
pub(crate) fn matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    if !pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
    {
        return false;
    }
    match &pod.required_node_affinity {
        Some(terms) => terms.matches(&node.name, &node.labels),
        None => true,
    }
}

/// The node names the required node affinity restricts a pod to, when
/// every term has `matchFields metadata.name In [...]` requirements
/// (Kubernetes' NodeAffinity PreFilter: a term's requirements intersect,
/// terms unite); `None` when some term admits nodes by other means.
pub(crate) fn prefilter_node_names(
    required: &k8s_openapi::api::core::v1::NodeSelector,
) -> Option<std::collections::BTreeSet<String>> {
    use std::collections::BTreeSet;
    let mut all: BTreeSet<String> = BTreeSet::new();
    for t in &required.node_selector_terms {
        let mut term: Option<BTreeSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let s: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term = Some(match term {
                    None => s,
                    Some(t) => t.intersection(&s).cloned().collect(),
                });
            }
        }
        all.extend(term?);
    }
    (!required.node_selector_terms.is_empty()).then_some(all)
}

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<&'static str> {
    (!matches(pod, node)).then_some(REASON)
}

/// Sum of the weights of the preferred terms the node matches.
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    pod.preferred_node_affinity
        .iter()
        .filter(|(_, t)| t.matches(&node.name, &node.labels))
        .map(|(w, _)| *w as i64)
        .sum()
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, node_with_labels, pod};
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
        PreferredSchedulingTerm,
    };
    use std::sync::Arc;

    fn term(key: &str, op: &str, vals: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(vals.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        }
    }

    #[test]
    fn match_fields_names_restrict_the_nodes() {
        let sel = |terms: serde_json::Value| -> NodeSelector {
            serde_json::from_value(serde_json::json!({"nodeSelectorTerms": terms}))
                .unwrap_or_default()
        };
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        let f = |vals: &[&str]| serde_json::json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": vals}]});
        assert_eq!(
            prefilter_node_names(&sel(serde_json::json!([f(&["n1"])]))),
            names(&["n1"])
        );
        assert_eq!(
            prefilter_node_names(&sel(serde_json::json!([f(&["n1"]), f(&["n2"])]))),
            names(&["n1", "n2"])
        );
        let both = serde_json::json!([{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]},
            {"key": "metadata.name", "operator": "In", "values": ["n2", "n3"]}]}]);
        assert_eq!(prefilter_node_names(&sel(both)), names(&["n2"]));
        let labels = serde_json::json!([f(&["n1"]),
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]}]);
        assert_eq!(prefilter_node_names(&sel(labels)), None);
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let ssd = NodeInfo::from_node(Arc::new(node_with_labels(
            node("a", "1", "1Gi"),
            &[("disk", "ssd"), ("zone", "z1")],
        )));
        let hdd = NodeInfo::from_node(Arc::new(node_with_labels(
            node("b", "1", "1Gi"),
            &[("disk", "hdd"), ("zone", "z2")],
        )));
        let mut p = pod("d", "p", "", "");
        p.spec
            .as_mut()
            .map(|s| s.node_selector = Some([("disk".to_string(), "ssd".to_string())].into()));
        let p = PodInfo::new(Arc::new(p));
        assert_eq!(filter(&p, &ssd), None);
        assert_eq!(filter(&p, &hdd), Some(REASON));

        let mut q = pod("d", "q", "", "");
        q.spec.as_mut().map(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![term("zone", "In", &["z2", "z3"])],
                    }),
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        PreferredSchedulingTerm {
                            weight: 7,
                            preference: term("disk", "In", &["hdd"]),
                        },
                        PreferredSchedulingTerm {
                            weight: 3,
                            preference: term("zone", "Exists", &[]),
                        },
                    ]),
                }),
                ..Default::default()
            })
        });
        let q = PodInfo::new(Arc::new(q));
        assert_eq!(filter(&q, &ssd), Some(REASON));
        assert_eq!(filter(&q, &hdd), None);
        assert_eq!(score(&q, &hdd), 10);
        assert_eq!(score(&q, &ssd), 3);
    }
}
