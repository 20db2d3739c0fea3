//! Figures, not a timed test (`--run-ignored only`): how long the garbage
//! collector and the namespace controller take over a thousand dependents.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{api, spawn, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::Api;
use serde_json::json;

const N: usize = 1000;
const LIMIT: Duration = Duration::from_secs(300);

async fn create_many<K>(api: &Api<K>, make: impl Fn(usize) -> K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let objs: Vec<K> = (0..N).map(make).collect();
    futures::stream::iter(objs)
        .map(|o| async move {
            api.create(&PostParams::default(), &o)
                .await
                .expect("create")
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn count<K>(api: &Api<K>) -> usize
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test]
#[ignore]
async fn figures_for_a_thousand_dependents() {
    let (_api, client) = api().await;
    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    let _ns = spawn(|c| ferrokube_controllers::namespace::run(client.clone(), c));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Background: N pods of a deleted owner.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner.metadata.uid, "blockOwnerDeletion": true});
    create_many(&pods, |i| {
        serde_json::from_value(
            json!({"metadata": {"name": format!("p-{i}"), "ownerReferences": [oref]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .unwrap()
    })
    .await;
    let t = Instant::now();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    wait_for("the pods to go", LIMIT, || async {
        (count(&pods).await == 0).then_some(())
    })
    .await;
    println!("background: {N} dependents collected in {:?}", t.elapsed());

    // Foreground: the owner goes after its N blocking dependents.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner.metadata.uid, "blockOwnerDeletion": true});
    create_many(&cms, |i| {
        serde_json::from_value(
            json!({"metadata": {"name": format!("c-{i}"), "ownerReferences": [oref]}}),
        )
        .unwrap()
    })
    .await;
    let t = Instant::now();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    cms.delete("owner", &dp).await.unwrap();
    wait_for("the owner to go", LIMIT, || async {
        cms.get_opt("owner").await.ok()?.is_none().then_some(())
    })
    .await;
    println!(
        "foreground: owner gone after its {N} dependents in {:?}",
        t.elapsed()
    );

    // A namespace of N configmaps.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "big"}})).unwrap(),
    )
    .await
    .unwrap();
    let big: Api<ConfigMap> = Api::namespaced(client.clone(), "big");
    create_many(&big, |i| {
        serde_json::from_value(json!({"metadata": {"name": format!("c-{i}")}})).unwrap()
    })
    .await;
    let t = Instant::now();
    nss.delete("big", &DeleteParams::default()).await.unwrap();
    wait_for("the namespace to go", LIMIT, || async {
        nss.get_opt("big").await.ok()?.is_none().then_some(())
    })
    .await;
    println!(
        "namespace: emptied of {N} configmaps and gone in {:?}",
        t.elapsed()
    );
}
