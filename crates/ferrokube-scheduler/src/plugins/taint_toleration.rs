//! TaintToleration: NoSchedule and NoExecute taints the pod does not
//! tolerate rule a node out; untolerated PreferNoSchedule taints lower its
//! score.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

/// Whether one toleration tolerates one taint (Kubernetes' ToleratesTaint).
pub(crate) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    let op = t.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        // An empty key with Exists tolerates everything.
        return op == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The filter's reason for the first untolerated NoSchedule/NoExecute taint.
pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<String> {
    let taint = node.taints.iter().find(|taint| {
        (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !pod.tolerations.iter().any(|t| tolerates(t, taint))
    })?;
    Some(format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    ))
}

/// Count of PreferNoSchedule taints the pod does not tolerate (normalized
/// reversed: fewer is better).
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    node.taints
        .iter()
        .filter(|taint| taint.effect == "PreferNoSchedule")
        .filter(|taint| {
            !pod.tolerations.iter().any(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                ) && tolerates(t, taint)
            })
        })
        .count() as i64
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

    fn taint(k: &str, v: &str, e: &str) -> Taint {
        Taint {
            key: k.into(),
            value: Some(v.into()),
            effect: e.into(),
            time_added: None,
        }
    }

    fn tol(k: &str, op: &str, v: Option<&str>, e: Option<&str>) -> Toleration {
        Toleration {
            key: Some(k.into()),
            operator: Some(op.into()),
            value: v.map(Into::into),
            effect: e.map(Into::into),
            toleration_seconds: None,
        }
    }

    #[test]
    fn toleration_rules() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        assert!(tolerates(&tol("dedicated", "Equal", Some("gpu"), None), &t));
        assert!(!tolerates(
            &tol("dedicated", "Equal", Some("cpu"), None),
            &t
        ));
        assert!(tolerates(
            &tol("dedicated", "Exists", None, Some("NoSchedule")),
            &t
        ));
        assert!(!tolerates(
            &tol("dedicated", "Exists", None, Some("NoExecute")),
            &t
        ));
        assert!(tolerates(&tol("", "Exists", None, None), &t));
        assert!(!tolerates(&tol("other", "Exists", None, None), &t));
    }

    #[test]
    fn filter_names_the_taint_and_score_counts_soft_ones() {
        let mut n = node("n1", "1", "1Gi");
        n.spec.as_mut().map(|s| {
            s.taints = Some(vec![
                taint("soft", "x", "PreferNoSchedule"),
                taint("dedicated", "gpu", "NoSchedule"),
            ])
        });
        let n = NodeInfo::from_node(Arc::new(n));
        let p = PodInfo::new(Arc::new(pod("d", "p", "", "")));
        assert_eq!(
            filter(&p, &n).as_deref(),
            Some("node(s) had untolerated taint {dedicated: gpu}")
        );
        assert_eq!(score(&p, &n), 1);
        let mut q = pod("d", "q", "", "");
        q.spec.as_mut().map(|s| {
            s.tolerations = Some(vec![
                tol("dedicated", "Equal", Some("gpu"), Some("NoSchedule")),
                tol("soft", "Exists", None, None),
            ])
        });
        let q = PodInfo::new(Arc::new(q));
        assert_eq!(filter(&q, &n), None);
        assert_eq!(score(&q, &n), 0);
    }
}
