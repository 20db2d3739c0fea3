//! NodeUnschedulable: a cordoned node takes only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::cache::NodeInfo;
use crate::plugins::taint_toleration::tolerates;
use crate::podinfo::PodInfo;

pub(crate) const REASON: &str = "node(s) were unschedulable";
pub(crate) const TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<&'static str> {
    if !node.unschedulable {
        return None;
    }
    let taint = Taint {
        key: TAINT_KEY.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if pod.tolerations.iter().any(|t| tolerates(t, &taint)) {
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
    use k8s_openapi::api::core::v1::Toleration;
    use std::sync::Arc;

    #[test]
    fn cordoned_node_refuses_unless_tolerated() {
        let mut n = node("n1", "1", "1Gi");
        n.spec.as_mut().map(|s| s.unschedulable = Some(true));
        let n = NodeInfo::from_node(Arc::new(n));
        let p = PodInfo::new(Arc::new(pod("d", "p", "", "")));
        assert_eq!(filter(&p, &n), Some(REASON));
        let mut tp = pod("d", "p", "", "");
        tp.spec.as_mut().map(|s| {
            s.tolerations = Some(vec![Toleration {
                key: Some(TAINT_KEY.into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }])
        });
        assert_eq!(filter(&PodInfo::new(Arc::new(tp)), &n), None);
    }
}
