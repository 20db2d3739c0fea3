//! End to end against a real API server: binding with its event, the
//! failure summary on the pod (condition and event), and retry when a node
//! that fits arrives.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn pod_is_bound_with_a_scheduled_event() {
    let env = Env::start().await;
    env.add_node(node("n1", "2", "4Gi")).await;
    env.add_pod(pod("web", "500m", "256Mi")).await;
    assert_eq!(env.bound_node("web").await.as_deref(), Some("n1"));
    let p = env.pods().get("web").await.expect("pod");
    let cond = p
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("PodScheduled");
    assert_eq!(cond.status, "True");
    assert_eq!(
        env.event_messages("web", "Scheduled").await,
        vec!["Successfully assigned default/web to n1".to_string()]
    );
    env.stop().await;
}

#[tokio::test]
async fn failure_summary_on_the_condition_and_the_event() {
    let env = Env::start().await;
    env.add_node(tainted(
        node("gpu", "8", "8Gi"),
        "dedicated",
        "gpu",
        "NoSchedule",
    ))
    .await;
    for i in 0..3 {
        env.add_node(node(&format!("small-{i}"), "1", "8Gi")).await;
    }
    env.add_pod(pod("big", "2", "1Gi")).await;
    let want = "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu.";
    let (reason, message) = env.unschedulable_condition("big").await.expect("condition");
    assert_eq!(reason, "Unschedulable");
    assert_eq!(message, want);
    let events = env.event_messages("big", "FailedScheduling").await;
    assert!(events.iter().any(|m| m == want), "{events:?}");
    env.stop().await;
}

#[tokio::test]
async fn pending_pod_is_scheduled_once_a_fitting_node_is_added() {
    let env = Env::start().await;
    env.add_node(node("small", "1", "1Gi")).await;
    env.add_pod(pod("big", "3", "1Gi")).await;
    let (_, message) = env.unschedulable_condition("big").await.expect("condition");
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
    assert!(env.stays_pending("big", Duration::from_millis(1500)).await);
    env.add_node(node("large", "4", "8Gi")).await;
    assert_eq!(env.bound_node("big").await.as_deref(), Some("large"));
    env.stop().await;
}

#[tokio::test]
async fn pending_pod_is_scheduled_once_a_pod_is_deleted() {
    let env = Env::start().await;
    env.add_node(node("only", "2", "4Gi")).await;
    env.add_pod(pod("first", "1500m", "")).await;
    assert_eq!(env.bound_node("first").await.as_deref(), Some("only"));
    env.add_pod(pod("second", "1", "")).await;
    let (_, message) = env
        .unschedulable_condition("second")
        .await
        .expect("condition");
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
    // No kubelet here: delete at once rather than waiting for the grace period.
    env.pods()
        .delete("first", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    assert_eq!(env.bound_node("second").await.as_deref(), Some("only"));
    env.stop().await;
}
