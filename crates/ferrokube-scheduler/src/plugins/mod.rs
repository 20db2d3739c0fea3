//! The default profile's filter and score plugins, one module each, as pure
//! functions over a pod's [`PodInfo`](crate::podinfo::PodInfo) and a node's
//! [`NodeInfo`](crate::cache::NodeInfo) (and, for the plugins that look
//! across nodes, state computed once per scheduling cycle).

pub(crate) mod image_locality;
pub(crate) mod inter_pod_affinity;
pub(crate) mod node_affinity;
pub(crate) mod node_name;
pub(crate) mod node_ports;
pub(crate) mod node_unschedulable;
pub(crate) mod preemption;
pub(crate) mod resources;
pub(crate) mod taint_toleration;
pub(crate) mod topology_spread;
pub(crate) mod volume_binding;

/// A plugin's top score for one node.
pub(crate) const MAX_NODE_SCORE: i64 = 100;

/// Kubernetes' DefaultNormalizeScore: scale so the best is 100 (or, reversed,
/// so the best is 0 and the rest 100 - that).
pub(crate) fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}
