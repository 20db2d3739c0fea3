//! The generic REST storage over the embedded store, below HTTP: Events
//! expire after their TTL; a Terminating namespace goes only through its
//! `finalize` subresource.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::registry::Registry;
use ferrokube_apiserver::allocator::{Allocator, ServiceCidr};
use ferrokube_apiserver::options::{DeleteOptions, WriteOptions};
use ferrokube_apiserver::rest::Rest;
use ferrokube_apiserver::watchcache::WatchCache;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = store;
    let registry = Registry::default();
    let cancel = CancellationToken::new();
    let cache = WatchCache::start(store.clone(), "/registry/", vec![], 100, cancel.clone())
        .await
        .unwrap();
    let rest = Rest {
        registry: registry.clone(),
        allocator: Allocator::new(store.clone(), ServiceCidr::parse("10.43.0.0/16").unwrap()),
        store: store.clone(),
        cache,
        event_lease: Default::default(),
        event_ttl_seconds: 2,
    };
    rest.ensure_namespaces(&["default"]).await.unwrap();
    let events = registry.get("", "v1", "events").unwrap().clone();
    let cms = registry.get("", "v1", "configmaps").unwrap().clone();
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test", "message": "hello", "type": "Normal"});
    rest.create(&events, "default", ev, &WriteOptions::default())
        .await
        .unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "default"}});
    rest.create(&cms, "default", cm, &WriteOptions::default())
        .await
        .unwrap();
    assert!(rest.get(&events, "default", "e1").await.is_ok());
    // Gone within the TTL plus the reuse window and the expiry check, bounded.
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if rest
            .get(&events, "default", "e1")
            .await
            .is_err_and(|e| e.code == 404)
        {
            gone = true;
            break;
        }
    }
    assert!(gone, "the event outlived its TTL");
    assert!(
        rest.get(&cms, "default", "keep").await.is_ok(),
        "other objects do not expire"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_namespace_goes_when_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = store;
    let registry = Registry::default();
    let cancel = CancellationToken::new();
    let cache = WatchCache::start(store.clone(), "/registry/", vec![], 100, cancel.clone())
        .await
        .unwrap();
    let rest = Rest {
        registry: registry.clone(),
        allocator: Allocator::new(store.clone(), ServiceCidr::parse("10.43.0.0/16").unwrap()),
        store: store.clone(),
        cache,
        event_lease: Default::default(),
        event_ttl_seconds: 60,
    };
    let nss = registry.get("", "v1", "namespaces").unwrap().clone();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    let created = rest
        .create(&nss, "", ns, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    let deleting = rest
        .delete(&nss, "", "team", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleting["status"]["phase"], "Terminating");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());

    // A status update (the namespace controller's conditions) keeps it.
    let mut with_status = rest.get(&nss, "", "team").await.unwrap();
    with_status["status"]["conditions"] = json!([{"type": "NamespaceContentRemaining",
        "status": "False", "reason": "ContentRemoved", "message": "All content successfully removed"}]);
    rest.update(
        &nss,
        "",
        "team",
        with_status,
        "status",
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let still = rest.get(&nss, "", "team").await.unwrap();
    assert_eq!(still["status"]["conditions"][0]["reason"], "ContentRemoved");

    // With no finalizer left, the namespace is gone.
    let mut fin = still.clone();
    fin["spec"]["finalizers"] = json!([]);
    rest.update(&nss, "", "team", fin, "finalize", &WriteOptions::default())
        .await
        .unwrap();
    assert!(rest
        .get(&nss, "", "team")
        .await
        .is_err_and(|e| e.code == 404));

    // A namespace not being deleted keeps living when finalized, and
    // finalize changes only spec.finalizers.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alive"}});
    let created = rest
        .create(&nss, "", ns, &WriteOptions::default())
        .await
        .unwrap();
    let mut fin = created.clone();
    fin["spec"]["finalizers"] = json!([]);
    fin["metadata"]["labels"] = json!({"ignored": "yes"});
    let after = rest
        .update(&nss, "", "alive", fin, "finalize", &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(after["spec"]["finalizers"], json!([]));
    assert!(after["metadata"].get("labels").is_none());
    assert!(rest.get(&nss, "", "alive").await.is_ok());
    cancel.cancel();
}
