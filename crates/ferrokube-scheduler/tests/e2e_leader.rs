//! End to end: two schedulers under the `kube-system/kube-scheduler` Lease;
//! only the leader binds, and the standby takes over when it stops.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferrokube_client::testing::TestApi;
use ferrokube_scheduler::SchedulerConfig;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

fn config(identity: &str) -> SchedulerConfig {
    SchedulerConfig {
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn holder(client: &kube::Client) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    api.get_opt("kube-scheduler")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn wait_holder(client: &kube::Client, not: Option<&str>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(h) = holder(client).await.filter(|h| !h.is_empty()) {
            if Some(h.as_str()) != not {
                return Some(h);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_stops() {
    let api = TestApi::start().await.expect("api server");
    let client = api.client().await.expect("client");
    let env = Env {
        api,
        client: client.clone(),
        cancel: CancellationToken::new(),
        task: None,
    };
    env.add_node(node("n1", "4", "8Gi")).await;

    let cancel_a = CancellationToken::new();
    let a = tokio::spawn(ferrokube_scheduler::run(
        client.clone(),
        config("sched-a"),
        cancel_a.clone(),
    ));
    assert_eq!(wait_holder(&client, None).await.as_deref(), Some("sched-a"));
    let cancel_b = CancellationToken::new();
    let b = tokio::spawn(ferrokube_scheduler::run(
        client.clone(),
        config("sched-b"),
        cancel_b.clone(),
    ));

    env.add_pod(pod("before", "100m", "")).await;
    assert_eq!(env.bound_node("before").await.as_deref(), Some("n1"));
    assert_eq!(
        holder(&client).await.as_deref(),
        Some("sched-a"),
        "b stays standby"
    );

    // The leader stops; b takes the Lease and schedules.
    cancel_a.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), a).await;
    assert_eq!(
        wait_holder(&client, Some("sched-a")).await.as_deref(),
        Some("sched-b")
    );
    env.pods()
        .create(&PostParams::default(), &pod("after", "100m", ""))
        .await
        .expect("create");
    assert_eq!(env.bound_node("after").await.as_deref(), Some("n1"));

    cancel_b.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), b).await;
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_vanishes_without_releasing() {
    let api = TestApi::start().await.expect("api server");
    let client = api.client().await.expect("client");
    let env = Env {
        api,
        client: client.clone(),
        cancel: CancellationToken::new(),
        task: None,
    };
    env.add_node(node("n1", "4", "8Gi")).await;
    let cancel_a = CancellationToken::new();
    let a = tokio::spawn(ferrokube_scheduler::run(
        client.clone(),
        config("sched-a"),
        cancel_a.clone(),
    ));
    assert_eq!(wait_holder(&client, None).await.as_deref(), Some("sched-a"));
    let cancel_b = CancellationToken::new();
    let b = tokio::spawn(ferrokube_scheduler::run(
        client.clone(),
        config("sched-b"),
        cancel_b.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The election loop dies without releasing the Lease (its scheduling
    // task, spawned by LeaderElection, lives until cancel_a below): the
    // standby must take the unrenewed Lease within the lease duration.
    a.abort();
    let _ = a.await;
    let t = Instant::now();
    assert_eq!(
        wait_holder(&client, Some("sched-a")).await.as_deref(),
        Some("sched-b")
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    env.add_pod(pod("after-crash", "100m", "")).await;
    assert_eq!(env.bound_node("after-crash").await.as_deref(), Some("n1"));
    cancel_a.cancel();
    cancel_b.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), b).await;
}
