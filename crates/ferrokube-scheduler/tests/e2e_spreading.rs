//! End to end: required pod anti-affinity puts replicas one per node, and
//! the one too many waits with Kubernetes' reason.

mod common;

use std::collections::BTreeSet;

use common::*;
use k8s_openapi::api::core::v1::{Affinity, PodAffinityTerm, PodAntiAffinity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[tokio::test]
async fn anti_affinity_spreads_replicas_one_per_node() {
    let env = Env::start().await;
    for i in 0..3 {
        env.add_node(node(&format!("n{i}"), "8", "8Gi")).await;
    }
    let replica = |name: &str| {
        let mut p = with_labels(pod(name, "100m", "64Mi"), &[("app", "db")]);
        spec(&mut p).affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some([("app".to_string(), "db".to_string())].into()),
                        ..Default::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    };
    // All at once: the scheduler must see its own assumed placements.
    for i in 0..4 {
        env.add_pod(replica(&format!("db-{i}"))).await;
    }
    let mut nodes = BTreeSet::new();
    let mut pending = vec![];
    for i in 0..4 {
        let name = format!("db-{i}");
        match env.unschedulable_condition_or_node(&name).await {
            Ok(n) => {
                assert!(nodes.insert(n.clone()), "two replicas on {n}");
            }
            Err(msg) => pending.push((name, msg)),
        }
    }
    assert_eq!(nodes.len(), 3);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        pending[0].1,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    );
    env.stop().await;
}
