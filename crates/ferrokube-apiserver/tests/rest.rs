//! The generic REST storage over the embedded store, below HTTP: Events
//! expire after their TTL.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::registry::Registry;
use ferrokube_apiserver::allocator::{Allocator, ServiceCidr};
use ferrokube_apiserver::options::WriteOptions;
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
