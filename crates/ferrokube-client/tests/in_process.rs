//! The in-process client (`local_client`), as `ferrokube server`'s
//! components use it: the same API as over HTTPS (writes, reads, errors as
//! Kubernetes Status, watches) under the identity it was made for.

use std::time::Duration;

use ferrokube_client::testing::TestApi;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{watcher, Config, Event};

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_client_is_a_client_like_any_other() {
    let api = TestApi::start().await.expect("api server");
    let local = api.in_process_client_in("system:apiserver", &["system:masters"]);
    let https = api.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::namespaced(local.clone(), "default");

    // A write in process is what a client over HTTPS reads.
    let made = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = made
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");
    let seen = Api::<ConfigMap>::namespaced(https.clone(), "default")
        .get("a")
        .await
        .unwrap();
    assert_eq!(seen.metadata.resource_version.as_deref(), Some(rv.as_str()));
    assert_eq!(seen.data, made.data);

    // Errors are Kubernetes Status, as over HTTPS.
    match cms.create(&PostParams::default(), &cm("a")).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
        }
        other => panic!("a second create of a must be 409, got {other:?}"),
    }
    match cms.get("missing").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("get of a missing object must be 404, got {other:?}"),
    }

    // A watch in process sees a write made over HTTPS.
    let mut stream = Box::pin(
        cms.watch(&WatchParams::default().timeout(10), &rv)
            .await
            .unwrap(),
    );
    Api::<ConfigMap>::namespaced(https.clone(), "default")
        .create(&PostParams::default(), &cm("b"))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
        .unwrap();
    match ev {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED b, got {other:?}"),
    }

    // The runtime's watcher (list, then watch) works over it.
    let mut w = Box::pin(watcher(cms.clone(), Config::default()));
    let mut names = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watcher events within 10 s")
    {
        match ev.unwrap() {
            Event::InitApply(o) => names.push(o.metadata.name.unwrap_or_default()),
            Event::InitDone => break,
            _ => {}
        }
    }
    names.sort();
    assert_eq!(names, ["a", "b"]);

    // The server knows it as the user it was made for.
    let review: serde_json::Value = local
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    serde_json::to_vec(&serde_json::json!({
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "SelfSubjectReview"
                    }))
                    .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "system:apiserver");
}
