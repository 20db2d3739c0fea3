//! ResourceQuota and LimitRange against a real API server: the quota
//! controller's status, admission's charges and refusals (Kubernetes'
//! messages), object counts through each kind's life, scopes, concurrent
//! creates, status updates, and LimitRanger's defaults and limits (the
//! behaviours of Kubernetes' ResourceQuota and LimitRange conformance
//! tests).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolumeClaim, Pod, ReplicationController,
    ResourceQuota, Secret, Service,
};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(20);

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

async fn try_create<K>(client: &Client, ns: &str, v: Value) -> Result<K, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).expect("object");
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
}

/// The refusal's (code, message).
fn refusal<K: std::fmt::Debug>(r: Result<K, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(e)) => (e.code, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn pod(name: &str, resources: Value) -> Value {
    json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}})
}

fn quota(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

/// The quota's status as `name -> amount` maps (hard, used).
async fn status(
    client: &Client,
    ns: &str,
    name: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let q = Api::<ResourceQuota>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("get quota");
    let m =
        |l: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            l.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect::<BTreeMap<_, _>>()
        };
    let s = q.status.unwrap_or_default();
    (m(s.hard), m(s.used))
}

/// Waits until the quota's used amounts include `want`.
async fn wait_used(client: &Client, ns: &str, name: &str, want: &[(&str, &str)]) {
    let what = format!("quota {name} to show used {want:?}");
    wait_for(&what, LIMIT, || async {
        let (_, used) = status(client, ns, name).await;
        want.iter()
            .all(|(k, v)| used.get(*k).map(String::as_str) == Some(*v))
            .then_some(())
    })
    .await
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn delete<K>(client: &Client, ns: &str, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::background().grace_period(0))
        .await
        .expect("delete");
}

#[tokio::test]
async fn a_quota_counts_pods_and_refuses_the_one_too_many() {
    let (_api, client) = api().await;
    let _c = spawn(|c| ferrokube_controllers::resourcequota::run(client.clone(), c));
    namespace(&client, "q1").await;
    try_create::<ResourceQuota>(
        &client,
        "q1",
        quota("q", json!({"hard": {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi", "count/pods": "5"}})),
    )
    .await
    .unwrap();
    wait_used(
        &client,
        "q1",
        "q",
        &[
            ("pods", "0"),
            ("requests.cpu", "0"),
            ("requests.memory", "0"),
        ],
    )
    .await;
    let (hard, _) = status(&client, "q1", "q").await;
    assert_eq!(
        hard,
        map(&[
            ("count/pods", "5"),
            ("pods", "2"),
            ("requests.cpu", "1"),
            ("requests.memory", "1Gi")
        ])
    );
    let small = json!({"requests": {"cpu": "250m", "memory": "64Mi"}});
    try_create::<Pod>(&client, "q1", pod("p1", small.clone()))
        .await
        .unwrap();
    // Charged at admission, before any recount.
    let (_, used) = status(&client, "q1", "q").await;
    assert_eq!(used["pods"], "1");
    assert_eq!(used["requests.cpu"], "250m");
    assert_eq!(used["requests.memory"], "64Mi");
    // Too much cpu: only the exceeded resource is named.
    let big = json!({"requests": {"cpu": "900m", "memory": "64Mi"}});
    assert_eq!(
        refusal(try_create::<Pod>(&client, "q1", pod("big", big)).await),
        (403, "pods \"big\" is forbidden: exceeded quota: q, requested: requests.cpu=900m, used: requests.cpu=250m, limited: requests.cpu=1".to_string())
    );
    // A pod without requests cannot be admitted under a cpu quota.
    assert_eq!(
        refusal(try_create::<Pod>(&client, "q1", pod("bare", json!({}))).await),
        (403, "pods \"bare\" is forbidden: failed quota: q: must specify requests.cpu for: c; requests.memory for: c".to_string())
    );
    try_create::<Pod>(&client, "q1", pod("p2", small.clone()))
        .await
        .unwrap();
    assert_eq!(
        refusal(try_create::<Pod>(&client, "q1", pod("p3", small.clone())).await),
        (403, "pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2".to_string())
    );
    // A pod that ends gives its compute quota back, not its count.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "q1");
    pods.patch_status(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    wait_used(
        &client,
        "q1",
        "q",
        &[("pods", "1"), ("count/pods", "2"), ("requests.cpu", "250m")],
    )
    .await;
    delete::<Pod>(&client, "q1", "p1").await;
    delete::<Pod>(&client, "q1", "p2").await;
    wait_used(
        &client,
        "q1",
        "q",
        &[("pods", "0"), ("count/pods", "0"), ("requests.memory", "0")],
    )
    .await;
}

#[tokio::test]
async fn concurrent_creates_never_overshoot_the_quota() {
    let (_api, client) = api().await;
    let _c = spawn(|c| ferrokube_controllers::resourcequota::run(client.clone(), c));
    namespace(&client, "q2").await;
    try_create::<ResourceQuota>(&client, "q2", quota("q", json!({"hard": {"pods": "2"}})))
        .await
        .unwrap();
    wait_used(&client, "q2", "q", &[("pods", "0")]).await;
    let creates = (0..10).map(|i| {
        let client = client.clone();
        async move { try_create::<Pod>(&client, "q2", pod(&format!("p{i}"), json!({}))).await }
    });
    let results = futures::future::join_all(creates).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, 2, "{results:?}");
    for r in results.into_iter().filter(|r| r.is_err()) {
        let (code, message) = refusal(r);
        assert_eq!(code, 403);
        assert!(
            message
                .ends_with("exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"),
            "{message}"
        );
    }
    let listed = Api::<Pod>::namespaced(client.clone(), "q2")
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(status(&client, "q2", "q").await.1, map(&[("pods", "2")]));
}

#[tokio::test]
async fn object_counts_follow_each_kind_through_its_life() {
    let (_api, client) = api().await;
    let _c = spawn(|c| ferrokube_controllers::resourcequota::run(client.clone(), c));
    namespace(&client, "q3").await;
    try_create::<ResourceQuota>(
        &client,
        "q3",
        quota("q", json!({"hard": {
            "configmaps": "2", "secrets": "2", "services": "1", "services.nodeports": "1",
            "services.loadbalancers": "0", "replicationcontrollers": "1",
            "count/replicasets.apps": "1", "persistentvolumeclaims": "1", "requests.storage": "1Gi",
            "gold.storageclass.storage.k8s.io/requests.storage": "1Gi", "resourcequotas": "1",
        }})),
    )
    .await
    .unwrap();
    wait_used(
        &client,
        "q3",
        "q",
        &[
            ("configmaps", "0"),
            ("resourcequotas", "1"),
            ("services", "0"),
        ],
    )
    .await;

    try_create::<ConfigMap>(&client, "q3", json!({"metadata": {"name": "cm"}}))
        .await
        .unwrap();
    try_create::<Secret>(&client, "q3", json!({"metadata": {"name": "s"}}))
        .await
        .unwrap();
    try_create::<Service>(
        &client,
        "q3",
        json!({"metadata": {"name": "np"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    assert_eq!(
        refusal(try_create::<Service>(&client, "q3", json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})).await).1,
        "services \"lb\" is forbidden: exceeded quota: q, requested: services=1,services.loadbalancers=1,services.nodeports=1, used: services=1,services.loadbalancers=0,services.nodeports=1, limited: services=1,services.loadbalancers=0,services.nodeports=1"
    );
    try_create::<ReplicationController>(&client, "q3", json!({"metadata": {"name": "rc"},
        "spec": {"replicas": 0, "selector": {"a": "b"}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await.unwrap();
    try_create::<ReplicaSet>(&client, "q3", json!({"metadata": {"name": "rs"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await.unwrap();
    assert!(refusal(try_create::<ReplicaSet>(&client, "q3", json!({"metadata": {"name": "rs2"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await).1
        .ends_with("exceeded quota: q, requested: count/replicasets.apps=1, used: count/replicasets.apps=1, limited: count/replicasets.apps=1"));
    try_create::<PersistentVolumeClaim>(&client, "q3", json!({"metadata": {"name": "c"},
        "spec": {"storageClassName": "gold", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "500Mi"}}}})).await.unwrap();
    wait_used(
        &client,
        "q3",
        "q",
        &[
            ("configmaps", "1"),
            ("secrets", "1"),
            ("services", "1"),
            ("services.nodeports", "1"),
            ("replicationcontrollers", "1"),
            ("count/replicasets.apps", "1"),
            ("persistentvolumeclaims", "1"),
            ("requests.storage", "500Mi"),
            ("gold.storageclass.storage.k8s.io/requests.storage", "500Mi"),
        ],
    )
    .await;

    delete::<ConfigMap>(&client, "q3", "cm").await;
    delete::<Secret>(&client, "q3", "s").await;
    delete::<Service>(&client, "q3", "np").await;
    delete::<ReplicationController>(&client, "q3", "rc").await;
    delete::<ReplicaSet>(&client, "q3", "rs").await;
    // The claim keeps its protection finalizer (no controller here): it is
    // being deleted but stored, so it still counts.
    wait_used(
        &client,
        "q3",
        "q",
        &[
            ("configmaps", "0"),
            ("secrets", "0"),
            ("services", "0"),
            ("services.nodeports", "0"),
            ("replicationcontrollers", "0"),
            ("count/replicasets.apps", "0"),
        ],
    )
    .await;
}

#[tokio::test]
async fn scopes_choose_the_pods_a_quota_counts() {
    let (_api, client) = api().await;
    let _c = spawn(|c| ferrokube_controllers::resourcequota::run(client.clone(), c));
    namespace(&client, "q4").await;
    for (name, spec) in [
        (
            "besteffort",
            json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]}),
        ),
        (
            "notbesteffort",
            json!({"hard": {"pods": "1", "requests.cpu": "1"}, "scopes": ["NotBestEffort"]}),
        ),
        (
            "terminating",
            json!({"hard": {"pods": "1"}, "scopes": ["Terminating"]}),
        ),
        (
            "notterminating",
            json!({"hard": {"pods": "5"}, "scopes": ["NotTerminating"]}),
        ),
        (
            "high",
            json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}),
        ),
    ] {
        try_create::<ResourceQuota>(&client, "q4", quota(name, spec))
            .await
            .unwrap();
        wait_used(&client, "q4", name, &[("pods", "0")]).await;
    }
    try_create::<Pod>(&client, "q4", pod("be", json!({})))
        .await
        .unwrap();
    try_create::<Pod>(
        &client,
        "q4",
        pod("burst", json!({"requests": {"cpu": "500m"}})),
    )
    .await
    .unwrap();
    let mut term = pod("term", json!({"requests": {"cpu": "100m"}}));
    term["spec"]["activeDeadlineSeconds"] = json!(60);
    let refused = refusal(try_create::<Pod>(&client, "q4", term.clone()).await).1;
    assert!(
        refused.contains(
            "exceeded quota: notbesteffort, requested: pods=1, used: pods=1, limited: pods=1"
        ),
        "{refused}"
    );
    assert_eq!(
        refusal(try_create::<Pod>(&client, "q4", pod("be2", json!({}))).await).1,
        "pods \"be2\" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1"
    );
    wait_used(&client, "q4", "besteffort", &[("pods", "1")]).await;
    wait_used(
        &client,
        "q4",
        "notbesteffort",
        &[("pods", "1"), ("requests.cpu", "500m")],
    )
    .await;
    wait_used(&client, "q4", "notterminating", &[("pods", "2")]).await;
    wait_used(&client, "q4", "terminating", &[("pods", "0")]).await;
    wait_used(&client, "q4", "high", &[("pods", "0")]).await;
    delete::<Pod>(&client, "q4", "burst").await;
    // The deletion is given back by the controller, not at once.
    wait_used(&client, "q4", "notbesteffort", &[("pods", "0")]).await;
    try_create::<Pod>(&client, "q4", term).await.unwrap();
    wait_used(&client, "q4", "terminating", &[("pods", "1")]).await;
    wait_used(&client, "q4", "notterminating", &[("pods", "1")]).await;
}

#[tokio::test]
async fn the_controller_restores_a_status_changed_by_hand() {
    let (_api, client) = api().await;
    let _c = spawn(|c| ferrokube_controllers::resourcequota::run(client.clone(), c));
    namespace(&client, "q5").await;
    try_create::<ResourceQuota>(
        &client,
        "q5",
        quota("q", json!({"hard": {"cpu": "1", "memory": "500Mi"}})),
    )
    .await
    .unwrap();
    wait_used(&client, "q5", "q", &[("cpu", "0"), ("memory", "0")]).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "q5");
    // A status patch is taken as given...
    let patched = quotas
        .patch_status(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"hard": {"cpu": "2", "memory": "1Gi"}, "used": {"cpu": "1", "memory": "1Gi"}}})),
        )
        .await
        .unwrap();
    assert!(patched.status.is_some());
    // ...and the controller counts again, its hard limits from the spec.
    wait_for("the status recounted", LIMIT, || async {
        let (hard, used) = status(&client, "q5", "q").await;
        (hard == map(&[("cpu", "1"), ("memory", "500Mi")])
            && used == map(&[("cpu", "0"), ("memory", "0")]))
        .then_some(())
    })
    .await;
    // Raising the limit in the spec shows in the status.
    quotas
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"cpu": "2"}}})),
        )
        .await
        .unwrap();
    wait_for("the new hard limit", LIMIT, || async {
        (status(&client, "q5", "q")
            .await
            .0
            .get("cpu")
            .map(String::as_str)
            == Some("2"))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_limit_range_fills_in_and_holds_pods_to_its_bounds() {
    let (_api, client) = api().await;
    namespace(&client, "lr").await;
    try_create::<LimitRange>(&client, "lr", json!({"metadata": {"name": "limits"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "500m", "memory": "500Mi"}, "min": {"cpu": "50m", "memory": "10Mi"},
         "default": {"cpu": "300m", "memory": "200Mi"}, "defaultRequest": {"cpu": "100m"}},
        {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}},
    ]}})).await.unwrap();
    // The LimitRange itself got its defaults (defaultRequest from default).
    let lr = Api::<LimitRange>::namespaced(client.clone(), "lr")
        .get("limits")
        .await
        .unwrap();
    let item = &lr.spec.unwrap().limits[0];
    assert_eq!(item.default_request.as_ref().unwrap()["memory"].0, "200Mi");
    let p = try_create::<Pod>(&client, "lr", pod("filled", json!({})))
        .await
        .unwrap();
    let r = p.spec.unwrap().containers[0].resources.clone().unwrap();
    let show =
        |l: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            l.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect::<BTreeMap<_, _>>()
        };
    assert_eq!(
        show(r.requests),
        map(&[("cpu", "100m"), ("memory", "200Mi")])
    );
    assert_eq!(show(r.limits), map(&[("cpu", "300m"), ("memory", "200Mi")]));
    assert_eq!(
        p.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );
    assert_eq!(
        refusal(
            try_create::<Pod>(
                &client,
                "lr",
                pod(
                    "greedy",
                    json!({"limits": {"cpu": "1"}, "requests": {"cpu": "100m"}})
                )
            )
            .await
        ),
        (
            403,
            "pods \"greedy\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1"
                .to_string()
        )
    );
    assert_eq!(
        refusal(
            try_create::<Pod>(
                &client,
                "lr",
                pod("tiny", json!({"requests": {"cpu": "10m"}}))
            )
            .await
        )
        .1,
        "pods \"tiny\" is forbidden: minimum cpu usage per Container is 50m, but request is 10m"
    );
    assert_eq!(
        refusal(try_create::<PersistentVolumeClaim>(&client, "lr", json!({"metadata": {"name": "huge"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "3Gi"}}}})).await).1,
        "persistentvolumeclaims \"huge\" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 3Gi"
    );
}
