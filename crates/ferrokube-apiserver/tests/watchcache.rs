//! The watch cache over the embedded store: lists as of now, watches from a
//! revision without gaps, selector transitions, and 410 for history it no
//! longer has.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

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

/// A write the cache was told to expect is applied from what the writer
/// said (its labels here differ from the stored bytes' to tell them apart),
/// with the event's resourceVersion put into the stored bytes; the same
/// content in other bytes, or an expectation withdrawn, is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_writes_are_applied_without_decoding() {
    let (_d, store, cache, cancel) = setup(100).await;
    let cms = cache.resource("/registry/configmaps/").unwrap().clone();
    let said = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": name, "namespace": "ns", "labels": {"app": "said"}}})
    };
    // `{"apiVersion":"v1","kind":"ConfigMap","metadata":{` is 50 bytes.
    let metadata_at = 50;
    let served = |key: &str| {
        let o = cms.get(key).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.json).unwrap();
        (
            o.labels.get("app").cloned().unwrap_or_default(),
            v,
            o.revision,
        )
    };

    // Expected and written: taken as said.
    let key = "/registry/configmaps/ns/p";
    let bytes = cm("p", "stored");
    assert_eq!(
        &bytes[..metadata_at],
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"#
    );
    let e = cache.expect(key, &bytes, metadata_at, &said("p")).unwrap();
    let kv = store.create(key, bytes.clone(), None).await.unwrap();
    e.written();
    cache.sync(Duration::from_secs(5)).await.unwrap();
    let (app, v, rev) = served(key);
    assert_eq!(app, "said");
    assert_eq!(rev, kv.mod_revision);
    let mut want: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    want["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
    assert_eq!(v, want);

    // The same content in another allocation: decoded from the store.
    let key = "/registry/configmaps/ns/q";
    let bytes = cm("q", "stored");
    let e = cache.expect(key, &bytes, metadata_at, &said("q")).unwrap();
    store
        .create(key, Bytes::copy_from_slice(&bytes), None)
        .await
        .unwrap();
    e.written();
    cache.sync(Duration::from_secs(5)).await.unwrap();
    assert_eq!(served(key).0, "stored");

    // Withdrawn (the write failed, as far as the writer knows): decoded.
    let key = "/registry/configmaps/ns/r";
    let bytes = cm("r", "stored");
    drop(cache.expect(key, &bytes, metadata_at, &said("r")).unwrap());
    store.create(key, bytes, None).await.unwrap();
    cache.sync(Duration::from_secs(5)).await.unwrap();
    let (app, v, rev) = served(key);
    assert_eq!(app, "stored");
    assert_eq!(v["metadata"]["resourceVersion"], json!(rev.to_string()));
    cancel.cancel();
}
