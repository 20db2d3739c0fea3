//! NodeName: a pod that names a node in `spec.nodeName` fits only there.

use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const REASON: &str = "node(s) didn't match the requested node name";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<&'static str> {
    if pod.node_name.is_empty() || pod.node_name == node.name {
        None
    } else {
        Some(REASON)
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
    use std::sync::Arc;

    #[test]
    fn only_the_named_node_fits() {
        let n1 = NodeInfo::from_node(Arc::new(node("n1", "1", "1Gi")));
        let n2 = NodeInfo::from_node(Arc::new(node("n2", "1", "1Gi")));
        let mut p = pod("d", "p", "", "");
        p.spec.as_mut().map(|s| s.node_name = Some("n2".into()));
        let p = PodInfo::new(Arc::new(p));
        assert_eq!(filter(&p, &n1), Some(REASON));
        assert_eq!(filter(&p, &n2), None);
        assert_eq!(
            filter(&PodInfo::new(Arc::new(pod("d", "q", "", ""))), &n1),
            None
        );
    }
}
