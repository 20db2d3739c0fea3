//! End to end: a higher-priority pod that fits nowhere evicts a
//! lower-priority one, is nominated to its node and then bound there.
//! Priorities come from PriorityClasses, as the Priority admission gives
//! them (a pod may not state a number of its own).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn higher_priority_pod_preempts_a_lower_one() {
    let env = Env::start().await;
    env.add_node(node("only", "2", "4Gi")).await;
    let mut low = pod("low", "1500m", "");
    // No kubelet: a zero grace period lets the deletion finish at once.
    spec(&mut low).termination_grace_period_seconds = Some(0);
    env.add_pod(low).await;
    assert_eq!(env.bound_node("low").await.as_deref(), Some("only"));

    env.add_priority_class("important", 1000, None).await;
    let mut high = pod("high", "1", "");
    spec(&mut high).priority_class_name = Some("important".into());
    env.add_pod(high).await;
    assert_eq!(env.bound_node("high").await.as_deref(), Some("only"));

    // The victim is gone and was told why.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.pods().get_opt("low").await.ok().flatten().is_some() {
        assert!(Instant::now() < deadline, "victim still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msgs = env.event_messages("low", "Preempted").await;
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Preempted by pod ") && m.ends_with(" on node only")),
        "{msgs:?}"
    );
    let high = env.pods().get("high").await.expect("high");
    assert_eq!(
        high.status.and_then(|s| s.nominated_node_name).as_deref(),
        Some("only")
    );
    env.stop().await;
}

#[tokio::test]
async fn equal_priority_and_never_policy_do_not_preempt() {
    let env = Env::start().await;
    env.add_node(node("only", "2", "4Gi")).await;
    let mut low = pod("low", "1500m", "");
    spec(&mut low).termination_grace_period_seconds = Some(0);
    env.add_pod(low).await;
    assert_eq!(env.bound_node("low").await.as_deref(), Some("only"));

    let same = pod("same", "1", "");
    env.add_pod(same).await;
    env.add_priority_class("important-never", 1000, Some("Never"))
        .await;
    let mut never = pod("never", "1", "");
    spec(&mut never).priority_class_name = Some("important-never".into());
    env.add_pod(never).await;
    for name in ["same", "never"] {
        let (_, msg) = env.unschedulable_condition(name).await.expect("condition");
        assert_eq!(msg, "0/1 nodes are available: 1 Insufficient cpu.");
    }
    assert!(env.stays_pending("never", Duration::from_secs(1)).await);
    assert!(
        env.pods().get_opt("low").await.ok().flatten().is_some(),
        "no victim"
    );
    env.stop().await;
}
