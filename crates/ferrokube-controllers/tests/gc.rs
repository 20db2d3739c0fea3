//! The garbage collector against a real API server: background, foreground
//! and orphan cascades as `kubectl delete --cascade=...` asks for them.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod cluster;

use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, Client, Resource};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> serde_json::Value {
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "name": owner.meta().name,
        "uid": owner.meta().uid,
        "controller": true,
        "blockOwnerDeletion": block,
    })
}

async fn replicaset(client: &Client, name: &str, owner: Option<serde_json::Value>) -> ReplicaSet {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owner.into_iter().collect::<Vec<_>>()},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset")
}

async fn pod(
    client: &Client,
    name: &str,
    owners: Vec<serde_json::Value>,
    node: Option<&str>,
) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners},
        "spec": spec,
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &p)
        .await
        .expect("create pod")
}

async fn exists<K>(api: &Api<K>, name: &str) -> bool
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.expect("get").is_some()
}

fn delete_with(policy: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(policy),
        ..DeleteParams::default()
    }
}

#[tokio::test]
async fn background_deletion_removes_dependents_of_a_gone_owner() {
    let (_api, client) = api().await;
    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    let rs = replicaset(&client, "web", None).await;
    pod(&client, "web-a", vec![owner_ref(&rs, true)], None).await;
    pod(&client, "web-b", vec![owner_ref(&rs, true)], None).await;
    pod(&client, "loner", vec![], None).await;
    // A pod whose owner reference names "web" but another uid: that owner
    // does not exist, so the pod goes even while a "web" does.
    let mut stale = owner_ref(&rs, false);
    stale["uid"] = json!("00000000-0000-0000-0000-000000000000");
    pod(&client, "stale-owner", vec![stale], None).await;
    wait_for("the pod with a dangling owner to go", LIMIT, || async {
        (!exists(&pods, "stale-owner").await).then_some(())
    })
    .await;
    assert!(
        exists(&pods, "web-a").await,
        "owned pods stay while the owner lives"
    );

    rss.delete("web", &delete_with(PropagationPolicy::Background))
        .await
        .expect("delete rs");
    wait_for("the owner's pods to go", LIMIT, || async {
        (!exists(&pods, "web-a").await && !exists(&pods, "web-b").await).then_some(())
    })
    .await;
    assert!(exists(&pods, "loner").await, "a pod without owners stays");
    assert!(!exists(&rss, "web").await);

    // A dependent with two owners loses only the reference to the gone one.
    let a = replicaset(&client, "a", None).await;
    let b = replicaset(&client, "b", None).await;
    pod(
        &client,
        "shared",
        vec![owner_ref(&a, false), owner_ref(&b, false)],
        None,
    )
    .await;
    rss.delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    let left = wait_for(
        "the reference to the gone owner to be dropped",
        LIMIT,
        || async {
            let p = pods.get("shared").await.ok()?;
            let refs = p.metadata.owner_references.clone().unwrap_or_default();
            (refs.len() == 1).then_some(refs)
        },
    )
    .await;
    assert_eq!(left[0].name, "b");
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let (_api, client) = api().await;
    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    let d = deps
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment");
    let rs = replicaset(&client, "app-1", Some(owner_ref(&d, true))).await;
    // A pod on a node: its deletion waits for the kubelet (here, the test).
    pod(
        &client,
        "app-1-bound",
        vec![owner_ref(&rs, true)],
        Some("node-1"),
    )
    .await;
    pod(&client, "app-1-free", vec![owner_ref(&rs, true)], None).await;

    deps.delete("app", &delete_with(PropagationPolicy::Foreground))
        .await
        .expect("delete");
    wait_for("the bound pod to be terminating", LIMIT, || async {
        let p = pods.get("app-1-bound").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    wait_for("the unbound pod to go", LIMIT, || async {
        (!exists(&pods, "app-1-free").await).then_some(())
    })
    .await;
    // The owners wait while a blocking dependent is still there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d_now = deps.get("app").await.expect("deployment still there");
    assert!(d_now.metadata.deletion_timestamp.is_some());
    assert!(d_now
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));
    let rs_now = rss.get("app-1").await.expect("replicaset still there");
    assert!(rs_now.metadata.deletion_timestamp.is_some());

    // The "kubelet" finishes the pod; then the owners go, innermost first.
    pods.delete(
        "app-1-bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("finish pod");
    wait_for("the replicaset and the deployment to go", LIMIT, || async {
        (!exists(&rss, "app-1").await && !exists(&deps, "app").await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_drops_their_references() {
    let (_api, client) = api().await;
    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let rs = replicaset(&client, "keep", None).await;
    pod(&client, "keep-a", vec![owner_ref(&rs, true)], None).await;
    pod(&client, "keep-b", vec![owner_ref(&rs, true)], None).await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "keep-config", "ownerReferences": [owner_ref(&rs, false)]},
        "data": {"k": "v"},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("configmap");

    rss.delete("keep", &delete_with(PropagationPolicy::Orphan))
        .await
        .expect("delete");
    wait_for("the replicaset to go", LIMIT, || async {
        (!exists(&rss, "keep").await).then_some(())
    })
    .await;
    for name in ["keep-a", "keep-b"] {
        let p = pods.get(name).await.expect("orphaned pod stays");
        assert!(
            p.metadata.owner_references.unwrap_or_default().is_empty(),
            "{name} still owned"
        );
        assert!(p.metadata.deletion_timestamp.is_none());
    }
    let cm = cms
        .get("keep-config")
        .await
        .expect("orphaned configmap stays");
    assert!(cm.metadata.owner_references.unwrap_or_default().is_empty());
    // And they stay: nothing comes back for them later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(exists(&pods, "keep-a").await);
}

#[tokio::test]
async fn a_collector_started_later_finishes_every_pending_cascade() {
    let (_api, client) = api().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    // Deletions asked for while no collector runs.
    let gone = replicaset(&client, "gone", None).await;
    pod(&client, "gone-0", vec![owner_ref(&gone, true)], None).await;
    let fg = replicaset(&client, "fg", None).await;
    pod(&client, "fg-0", vec![owner_ref(&fg, true)], None).await;
    let orphan = replicaset(&client, "orphan", None).await;
    pod(&client, "orphan-0", vec![owner_ref(&orphan, true)], None).await;
    rss.delete("gone", &DeleteParams::default())
        .await
        .expect("delete");
    rss.delete("fg", &delete_with(PropagationPolicy::Foreground))
        .await
        .expect("delete");
    rss.delete("orphan", &delete_with(PropagationPolicy::Orphan))
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        exists(&pods, "gone-0").await && exists(&rss, "fg").await && exists(&rss, "orphan").await
    );

    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    wait_for("every cascade to finish", LIMIT, || async {
        let done = !exists(&pods, "gone-0").await
            && !exists(&pods, "fg-0").await
            && !exists(&rss, "fg").await
            && !exists(&rss, "orphan").await;
        done.then_some(())
    })
    .await;
    let kept = pods.get("orphan-0").await.expect("orphaned pod stays");
    assert!(kept
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());
}
