//! The watch cache over the embedded store: lists as of now, watches from a
//! revision without gaps, selector transitions, and 410 for history it no
//! longer has.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_apiserver::watchcache::{CacheError, EventType, FieldsFn, WatchCache};
use ferrokube_apiserver::watchcache::{CacheEvent, CacheWatcher};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn next(w: &mut CacheWatcher) -> Arc<CacheEvent> {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("event in time")
        .expect("event")
}

fn cm(name: &str, app: &str) -> Bytes {
    Bytes::from(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "labels": {"app": app}}}).to_string())
}

fn no_fields() -> FieldsFn {
    Arc::new(|_| BTreeMap::new())
}

async fn setup(
    history: usize,
) -> (
    tempfile::TempDir,
    Arc<EmbeddedStore>,
    Arc<WatchCache>,
    CancellationToken,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    store
        .create("/registry/configmaps/ns/before", cm("before", "a"), None)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let cache = WatchCache::start(
        store.clone(),
        "/registry/",
        vec![
            ("/registry/configmaps/".into(), no_fields()),
            ("/registry/pods/".into(), no_fields()),
        ],
        history,
        cancel.clone(),
    )
    .await
    .unwrap();
    (dir, store, cache, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_current_and_carry_resource_versions() {
    let (_d, store, cache, cancel) = setup(100).await;
    let kv = store
        .create("/registry/configmaps/ns/new", cm("new", "b"), None)
        .await
        .unwrap();
    let rev = cache.sync(Duration::from_secs(5)).await.unwrap();
    assert!(rev >= kv.mod_revision);
    let cms = cache.resource("/registry/configmaps/").unwrap();
    let names: Vec<_> = cms
        .list("/registry/configmaps/ns/")
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(names, ["before", "new"]);
    let new = cms.get("/registry/configmaps/ns/new").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&new.json).unwrap();
    assert_eq!(
        v["metadata"]["resourceVersion"],
        kv.mod_revision.to_string()
    );
    assert_eq!(new.labels.get("app").map(String::as_str), Some("b"));
    assert!(cache.resource("/registry/pods/").unwrap().is_empty());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_revision_replays_then_follows() {
    let (_d, store, cache, cancel) = setup(100).await;
    let a = store
        .create("/registry/configmaps/ns/a", cm("a", "x"), None)
        .await
        .unwrap();
    let a2 = store
        .update(
            "/registry/configmaps/ns/a",
            cm("a", "y"),
            a.mod_revision,
            None,
        )
        .await
        .unwrap();
    cache
        .wait_for(a2.mod_revision, Duration::from_secs(5))
        .await
        .unwrap();
    let cms = cache.resource("/registry/configmaps/").unwrap().clone();
    let mut w = cms.watch_from(a.mod_revision - 1).unwrap();
    let e1 = next(&mut w).await;
    assert_eq!((e1.kind, e1.revision), (EventType::Added, a.mod_revision));
    let e2 = next(&mut w).await;
    assert_eq!(
        (e2.kind, e2.revision),
        (EventType::Modified, a2.mod_revision)
    );
    // Selector transitions: app=x matched before, not after → DELETED.
    let (t, _) = e2
        .filtered(|o| o.labels.get("app").map(String::as_str) == Some("x"))
        .unwrap();
    assert_eq!(t, EventType::Deleted);
    let (t, _) = e2
        .filtered(|o| o.labels.get("app").map(String::as_str) == Some("y"))
        .unwrap();
    assert_eq!(t, EventType::Added);
    assert!(e2
        .filtered(|o| o.labels.get("app").map(String::as_str) == Some("z"))
        .is_none());
    // Live.
    let d = store
        .delete("/registry/configmaps/ns/a", None)
        .await
        .unwrap();
    let e3 = next(&mut w).await;
    assert_eq!((e3.kind, e3.revision), (EventType::Deleted, d.revision));
    let v: serde_json::Value = serde_json::from_slice(&e3.object.json).unwrap();
    assert_eq!(
        v["metadata"]["resourceVersion"],
        d.revision.to_string(),
        "a delete carries its revision"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_beyond_the_window_is_too_old() {
    let (_d, store, cache, cancel) = setup(3).await;
    let first = store
        .create("/registry/configmaps/ns/k", cm("k", "0"), None)
        .await
        .unwrap();
    let mut last = first.clone();
    for i in 1..10 {
        last = store
            .update(
                "/registry/configmaps/ns/k",
                cm("k", &i.to_string()),
                last.mod_revision,
                None,
            )
            .await
            .unwrap();
    }
    cache
        .wait_for(last.mod_revision, Duration::from_secs(5))
        .await
        .unwrap();
    let cms = cache.resource("/registry/configmaps/").unwrap().clone();
    match cms.watch_from(first.mod_revision) {
        Err(CacheError::TooOld { requested, .. }) => assert_eq!(requested, first.mod_revision),
        Ok(_) => panic!("a watch from outside the window must be refused"),
        Err(e) => panic!("unexpected {e}"),
    }
    assert!(cms.watch_from(last.mod_revision - 2).is_ok());
    cancel.cancel();
}

/// An object primed by the writer for the revision its write gets is what the
/// cache serves for that revision; one primed for another revision is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primed_objects_are_served_for_their_revision_only() {
    let (_d, store, cache, cancel) = setup(100).await;
    let cms = cache.resource("/registry/configmaps/").unwrap().clone();
    let primed = |name: &str, rev: i64| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": name, "namespace": "ns", "labels": {"app": "primed"},
            "resourceVersion": rev.to_string()}})
    };

    // Primed for the revision the write gets: served as primed.
    let rev = store.current_revision().await.unwrap() + 1;
    let key = "/registry/configmaps/ns/p";
    assert!(
        cache.prime(key, rev, &primed("p", rev)),
        "kept for a revision to come"
    );
    let json = serde_json::to_vec(&primed("p", rev)).unwrap();
    let kv = store.create(key, cm("p", "stored"), None).await.unwrap();
    assert_eq!(kv.mod_revision, rev, "nothing else writes to this store");
    cache.sync(Duration::from_secs(5)).await.unwrap();
    let got = cms.get(key).unwrap();
    assert_eq!(got.labels.get("app").map(String::as_str), Some("primed"));
    assert_eq!(got.json, json);
    // A revision the cache has passed is not kept.
    assert!(!cache.prime(key, rev, &primed("p", rev)));
    assert_eq!(got.revision, rev);

    // Primed for a revision another write took first: the stored bytes win.
    let rev = store.current_revision().await.unwrap() + 1;
    let key = "/registry/configmaps/ns/q";
    assert!(cache.prime(key, rev, &primed("q", rev)));
    store
        .create("/registry/configmaps/ns/other", cm("other", "x"), None)
        .await
        .unwrap();
    let kv = store.create(key, cm("q", "stored"), None).await.unwrap();
    assert_eq!(kv.mod_revision, rev + 1);
    cache.sync(Duration::from_secs(5)).await.unwrap();
    let got = cms.get(key).unwrap();
    assert_eq!(got.labels.get("app").map(String::as_str), Some("stored"));
    let served: serde_json::Value = serde_json::from_slice(&got.json).unwrap();
    assert_eq!(
        served["metadata"]["resourceVersion"],
        json!((rev + 1).to_string())
    );
    cancel.cancel();
}
