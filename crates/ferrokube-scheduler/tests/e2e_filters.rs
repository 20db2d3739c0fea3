//! End to end, one test per filter: each pod can go to exactly one of the
//! hand-made nodes, and a pod that fits nowhere says why.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PodAffinity, PodAffinityTerm, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[tokio::test]
async fn cordoned_node_is_skipped() {
    let env = Env::start().await;
    let mut cordoned = node("cordoned", "8", "8Gi");
    cordoned
        .spec
        .get_or_insert_with(Default::default)
        .unschedulable = Some(true);
    env.add_node(cordoned).await;
    env.add_pod(pod("p0", "", "")).await;
    let (_, msg) = env.unschedulable_condition("p0").await.expect("condition");
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );
    env.add_node(node("open", "1", "1Gi")).await;
    assert_eq!(env.bound_node("p0").await.as_deref(), Some("open"));
    env.stop().await;
}

#[tokio::test]
async fn node_selector_and_required_node_affinity() {
    let env = Env::start().await;
    env.add_node(labeled(
        node("a", "4", "4Gi"),
        &[("disk", "ssd"), ("zone", "z1")],
    ))
    .await;
    env.add_node(labeled(
        node("b", "4", "4Gi"),
        &[("disk", "hdd"), ("zone", "z2")],
    ))
    .await;
    env.add_node(labeled(
        node("c", "4", "4Gi"),
        &[("disk", "hdd"), ("zone", "z3")],
    ))
    .await;

    let mut sel = pod("selector", "", "");
    spec(&mut sel).node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
    env.add_pod(sel).await;

    let mut aff = pod("affinity", "", "");
    spec(&mut aff).affinity = Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "zone".into(),
                        operator: "In".into(),
                        values: Some(vec!["z3".into()]),
                    }]),
                    match_fields: None,
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    env.add_pod(aff).await;

    let mut none = pod("nowhere", "", "");
    spec(&mut none).node_selector = Some([("disk".to_string(), "nvme".to_string())].into());
    env.add_pod(none).await;

    assert_eq!(env.bound_node("selector").await.as_deref(), Some("a"));
    assert_eq!(env.bound_node("affinity").await.as_deref(), Some("c"));
    let (_, msg) = env
        .unschedulable_condition("nowhere")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    );
    env.stop().await;
}

#[tokio::test]
async fn taints_need_tolerations() {
    let env = Env::start().await;
    env.add_node(tainted(
        node("gpu", "4", "4Gi"),
        "dedicated",
        "gpu",
        "NoSchedule",
    ))
    .await;
    env.add_node(tainted(
        node("evicting", "4", "4Gi"),
        "maintenance",
        "",
        "NoExecute",
    ))
    .await;
    env.add_pod(pod("plain", "", "")).await;
    let mut tol = pod("tolerant", "", "");
    spec(&mut tol).tolerations = Some(vec![Toleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("gpu".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    }]);
    env.add_pod(tol).await;
    assert_eq!(env.bound_node("tolerant").await.as_deref(), Some("gpu"));
    let (_, msg) = env
        .unschedulable_condition("plain")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {maintenance: }."
    );
    env.stop().await;
}

#[tokio::test]
async fn resources_count_init_containers_and_pod_slots() {
    let env = Env::start().await;
    env.add_node(node("small", "1", "1Gi")).await;
    env.add_node(node("large", "4", "4Gi")).await;
    // App containers need 500m, the init container 2: the pod needs 2.
    let mut p = pod("init-heavy", "500m", "");
    spec(&mut p).init_containers = Some(vec![k8s_openapi::api::core::v1::Container {
        name: "setup".into(),
        image: Some("busybox".into()),
        resources: pod("x", "2", "")
            .spec
            .and_then(|s| s.containers.into_iter().next())
            .and_then(|c| c.resources),
        ..Default::default()
    }]);
    env.add_pod(p).await;
    assert_eq!(env.bound_node("init-heavy").await.as_deref(), Some("large"));
    env.add_pod(pod("too-much-memory", "", "5Gi")).await;
    let (_, msg) = env
        .unschedulable_condition("too-much-memory")
        .await
        .expect("condition");
    assert_eq!(msg, "0/2 nodes are available: 2 Insufficient memory.");
    env.stop().await;
}

#[tokio::test]
async fn host_ports_are_exclusive() {
    let env = Env::start().await;
    env.add_node(node("a", "4", "4Gi")).await;
    env.add_node(node("b", "4", "4Gi")).await;
    let with_port = |name: &str| {
        let mut p = pod(name, "", "");
        spec(&mut p).containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        p
    };
    env.add_pod(with_port("one")).await;
    let first = env.bound_node("one").await.expect("bound");
    env.add_pod(with_port("two")).await;
    let second = env.bound_node("two").await.expect("bound");
    assert_ne!(first, second);
    env.add_pod(with_port("three")).await;
    let (_, msg) = env
        .unschedulable_condition("three")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
    env.stop().await;
}

#[tokio::test]
async fn required_pod_affinity_follows_the_matching_pod() {
    let env = Env::start().await;
    env.add_node(labeled(node("a", "4", "4Gi"), &[("zone", "z1")]))
        .await;
    env.add_node(labeled(node("b", "4", "4Gi"), &[("zone", "z2")]))
        .await;
    let mut cache = with_labels(pod("cache", "", ""), &[("app", "cache")]);
    spec(&mut cache).node_name = None;
    spec(&mut cache).node_selector = Some([("zone".to_string(), "z2".to_string())].into());
    env.add_pod(cache).await;
    assert_eq!(env.bound_node("cache").await.as_deref(), Some("b"));
    let mut web = pod("web", "", "");
    spec(&mut web).affinity = Some(Affinity {
        pod_affinity: Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                label_selector: Some(LabelSelector {
                    match_labels: Some([("app".to_string(), "cache".to_string())].into()),
                    ..Default::default()
                }),
                topology_key: "zone".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    env.add_pod(web).await;
    assert_eq!(env.bound_node("web").await.as_deref(), Some("b"));
    env.stop().await;
}

#[tokio::test]
async fn topology_spread_do_not_schedule_balances_zones() {
    let env = Env::start().await;
    env.add_node(labeled(node("a1", "8", "8Gi"), &[("zone", "z1")]))
        .await;
    env.add_node(labeled(node("a2", "8", "8Gi"), &[("zone", "z1")]))
        .await;
    env.add_node(labeled(node("b1", "1", "8Gi"), &[("zone", "z2")]))
        .await;
    let spread = |name: &str| {
        let mut p = with_labels(pod(name, "400m", ""), &[("app", "web")]);
        spec(&mut p).topology_spread_constraints = Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "zone".into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        p
    };
    let mut zones = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..4 {
        let name = format!("w{i}");
        env.add_pod(spread(&name)).await;
        if let Some(n) = env.bound_node(&name).await {
            *zones
                .entry(if n.starts_with('a') { "z1" } else { "z2" }.into())
                .or_default() += 1;
        }
    }
    // z2 holds two pods of 400m on its 1 cpu; z1 may be at most one ahead.
    assert_eq!(zones.get("z1"), Some(&2), "{zones:?}");
    assert_eq!(zones.get("z2"), Some(&2), "{zones:?}");
    env.add_pod(spread("w4")).await;
    assert_eq!(
        env.bound_node("w4").await.as_deref().map(|n| &n[..1]),
        Some("a")
    );
    env.add_pod(spread("w5")).await;
    let (_, msg) = env.unschedulable_condition("w5").await.expect("condition");
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match pod topology spread constraints."
    );
    env.stop().await;
}
