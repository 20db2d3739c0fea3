//! The store conformance suite: one set of tests that every [`Store`] backend
//! must pass, so the apiserver can rely on etcd v3's semantics whichever
//! backend it runs on.
//!
//! A backend's test file provides a [`Harness`] and expands
//! [`conformance_tests!`](crate::conformance_tests) with it:
//!
//! ```ignore
//! ferrokube_store::conformance_tests!(MyHarness::new().await);
//! ```
//!
//! Every wait in here is bounded ([`STEP`]); a test never hangs.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::{
    EventKind, KeyValue, RangeRequest, Revision, Store, StoreError, WatchEvent, WatchStream,
    MAX_VALUE_BYTES,
};

/// The longest any single step (one read, one watch event) may take.
pub const STEP: Duration = Duration::from_secs(10);

/// Opens a backend for one test, on data of its own.
#[async_trait]
pub trait Harness: Send {
    /// Opens the store; the first call creates it empty.
    async fn open(&mut self) -> Arc<dyn Store>;
    /// Shuts `store` down cleanly and opens it again on the same data.
    async fn restart(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store>;
}

/// Expands into one `#[tokio::test]` per conformance test, each making its
/// own harness with `$make` (an expression that may `.await`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            revisions_and_key_counters,
            get_at_past_revision,
            create_if_absent,
            update_compare_and_swap,
            delete_with_precondition,
            recreate_resets_counters,
            range_pagination_at_one_revision,
            range_at_past_revision,
            count_prefix,
            watch_replays_history_with_prev,
            watch_filters_by_prefix,
            watch_from_now,
            written_values_in_events,
            watch_ordering_under_concurrent_writers,
            concurrent_cas_exactly_one_wins,
            compaction,
            restart_keeps_everything,
            lease_revoke_deletes_keys,
            lease_expiry_deletes_keys,
            value_size_limit,
            bad_keys_change_nothing,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let mut harness = $make;
                $crate::conformance::$name(&mut harness).await;
            }
        )*
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(STEP, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {STEP:?}"),
    }
}

async fn get_value(s: &dyn Store, key: &str) -> Option<KeyValue> {
    s.get(key, None).await.expect("get").kv
}

async fn put_new(s: &dyn Store, key: &str, value: &str) -> KeyValue {
    s.create(key, b(value), None).await.expect("create")
}

/// Every write increments the one revision by exactly one; keys carry
/// create_revision, mod_revision and version as etcd does.
pub async fn revisions_and_key_counters(h: &mut dyn Harness) {
    let s = h.open().await;
    let start = s.current_revision().await.unwrap();
    let a = put_new(&*s, "/t/a", "1").await;
    assert_eq!(a.mod_revision, start + 1);
    assert_eq!(a.create_revision, start + 1);
    assert_eq!(a.version, 1);
    assert_eq!(a.value, b("1"));
    let bkv = put_new(&*s, "/t/b", "x").await;
    assert_eq!(bkv.mod_revision, start + 2);
    let a2 = s
        .update("/t/a", b("2"), a.mod_revision, None)
        .await
        .unwrap();
    assert_eq!(a2.mod_revision, start + 3);
    assert_eq!(a2.create_revision, start + 1);
    assert_eq!(a2.version, 2);
    let del = s.delete("/t/b", None).await.unwrap();
    assert_eq!(del.revision, start + 4);
    assert_eq!(del.prev, bkv);
    assert_eq!(s.current_revision().await.unwrap(), start + 4);
    let got = s.get("/t/a", None).await.unwrap();
    assert_eq!(got.kv, Some(a2));
    assert_eq!(got.revision, start + 4);
    assert_eq!(s.get("/t/b", None).await.unwrap().kv, None);
}

/// A key can be read as it was at any revision not yet compacted.
pub async fn get_at_past_revision(h: &mut dyn Harness) {
    let s = h.open().await;
    let before = s.current_revision().await.unwrap();
    let v1 = put_new(&*s, "/t/k", "v1").await;
    let v2 = s
        .update("/t/k", b("v2"), v1.mod_revision, None)
        .await
        .unwrap();
    let gone = s.delete("/t/k", None).await.unwrap();
    let at = |r| {
        let s = s.clone();
        async move { s.get("/t/k", Some(r)).await.unwrap().kv }
    };
    if before > 0 {
        assert_eq!(at(before).await, None, "the key did not exist yet");
    }
    assert_eq!(at(v1.mod_revision).await, Some(v1.clone()));
    assert_eq!(at(v2.mod_revision).await, Some(v2.clone()));
    assert_eq!(at(gone.revision).await, None, "deleted at that revision");
    match s.get("/t/k", Some(gone.revision + 100)).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!(requested, gone.revision + 100);
            assert_eq!(current, gone.revision);
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// Create fails on an existing key and writes nothing.
pub async fn create_if_absent(h: &mut dyn Harness) {
    let s = h.open().await;
    let first = put_new(&*s, "/t/c", "first").await;
    let rev = s.current_revision().await.unwrap();
    match s.create("/t/c", b("second"), None).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/t/c"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        s.current_revision().await.unwrap(),
        rev,
        "a refused create wrote"
    );
    assert_eq!(get_value(&*s, "/t/c").await, Some(first));
}

/// Update is a compare-and-swap on mod_revision: a stale writer gets a
/// conflict carrying the current value, and nothing is written.
pub async fn update_compare_and_swap(h: &mut dyn Harness) {
    let s = h.open().await;
    let v1 = put_new(&*s, "/t/u", "v1").await;
    let v2 = s
        .update("/t/u", b("v2"), v1.mod_revision, None)
        .await
        .unwrap();
    let rev = s.current_revision().await.unwrap();
    match s.update("/t/u", b("stale"), v1.mod_revision, None).await {
        Err(StoreError::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!(key, "/t/u");
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(current.as_deref(), Some(&v2));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(get_value(&*s, "/t/u").await, Some(v2.clone()));
    match s.update("/t/missing", b("x"), 1, None).await {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "/t/missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), rev);
    // The winner's value can be updated again from the revision it holds.
    let v3 = s
        .update("/t/u", b("v3"), v2.mod_revision, None)
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
}

/// Delete honours its optional mod_revision precondition.
pub async fn delete_with_precondition(h: &mut dyn Harness) {
    let s = h.open().await;
    let v1 = put_new(&*s, "/t/d", "v1").await;
    let v2 = s
        .update("/t/d", b("v2"), v1.mod_revision, None)
        .await
        .unwrap();
    let rev = s.current_revision().await.unwrap();
    match s.delete("/t/d", Some(v1.mod_revision)).await {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(current.as_deref(), Some(&v2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), rev);
    let del = s.delete("/t/d", Some(v2.mod_revision)).await.unwrap();
    assert_eq!(del.prev, v2);
    assert_eq!(del.revision, rev + 1);
    match s.delete("/t/d", None).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), rev + 1);
}

/// A key deleted and created again starts over at version 1.
pub async fn recreate_resets_counters(h: &mut dyn Harness) {
    let s = h.open().await;
    let v1 = put_new(&*s, "/t/r", "a").await;
    s.update("/t/r", b("b"), v1.mod_revision, None)
        .await
        .unwrap();
    s.delete("/t/r", None).await.unwrap();
    let again = put_new(&*s, "/t/r", "c").await;
    assert_eq!(again.version, 1);
    assert_eq!(again.create_revision, again.mod_revision);
    assert!(again.create_revision > v1.create_revision);
}

/// Paginated ranges: every page is read at the first page's revision, even
/// when writes land between pages; `count` and `more` are right.
pub async fn range_pagination_at_one_revision(h: &mut dyn Harness) {
    let s = h.open().await;
    let mut expected = BTreeMap::new();
    for i in 0..25 {
        let key = format!("/p/items/{i:03}");
        put_new(&*s, &key, &format!("v{i}")).await;
        expected.insert(key, format!("v{i}"));
    }
    // Neighbours that must not appear under the prefix.
    put_new(&*s, "/p/itemsX", "no").await;
    put_new(&*s, "/p/item", "no").await;
    put_new(&*s, "/q/items/000", "no").await;

    let prefix = "/p/items/".to_string();
    let mut seen = BTreeMap::new();
    let mut start: Option<String> = None;
    let mut at: Option<Revision> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "pagination did not end");
        let page = s
            .range(RangeRequest {
                prefix: prefix.clone(),
                start: start.clone(),
                limit: 10,
                revision: at,
                count_only: false,
            })
            .await
            .unwrap();
        let remaining = 25 - seen.len() as i64;
        assert_eq!(page.count, remaining, "count of the rest of the range");
        assert_eq!(page.more, remaining > 10);
        assert_eq!(page.kvs.len() as i64, remaining.min(10));
        let keys: Vec<_> = page.kvs.iter().map(|kv| kv.key.clone()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "keys in order");
        for kv in &page.kvs {
            seen.insert(
                kv.key.clone(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            );
        }
        if at.is_none() {
            at = Some(page.revision);
            // Writes between pages must not show in later pages.
            put_new(&*s, "/p/items/999", "late").await;
            s.delete("/p/items/024", None).await.unwrap();
        } else {
            assert_eq!(Some(page.revision), at);
        }
        if !page.more {
            break;
        }
        start = Some(format!("{}\0", page.kvs.last().unwrap().key));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // Count only.
    let c = s
        .range(RangeRequest {
            prefix: prefix.clone(),
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(c.count, 25, "24 old + 1 late");
    assert!(c.kvs.is_empty());
    // A start outside the prefix is a clear error.
    match s
        .range(RangeRequest {
            prefix,
            start: Some("/a".into()),
            ..Default::default()
        })
        .await
    {
        Err(StoreError::InvalidRequest(_)) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

/// A range at a past revision shows the keys as they were.
pub async fn range_at_past_revision(h: &mut dyn Harness) {
    let s = h.open().await;
    let a = put_new(&*s, "/h/a", "a1").await;
    put_new(&*s, "/h/b", "b1").await;
    let then = s.current_revision().await.unwrap();
    s.update("/h/a", b("a2"), a.mod_revision, None)
        .await
        .unwrap();
    s.delete("/h/b", None).await.unwrap();
    put_new(&*s, "/h/c", "c1").await;
    let past = s
        .range(RangeRequest {
            prefix: "/h/".into(),
            revision: Some(then),
            ..Default::default()
        })
        .await
        .unwrap();
    let vals: Vec<_> = past
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(vals, vec![("/h/a", b("a1")), ("/h/b", b("b1"))]);
    assert_eq!(past.revision, then);
    let now = s
        .range(RangeRequest {
            prefix: "/h/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let vals: Vec<_> = now
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(vals, vec![("/h/a", b("a2")), ("/h/c", b("c1"))]);
}

/// `count` counts the keys under a prefix now.
pub async fn count_prefix(h: &mut dyn Harness) {
    let s = h.open().await;
    for i in 0..7 {
        put_new(&*s, &format!("/n/x/{i}"), "v").await;
    }
    put_new(&*s, "/n/y/0", "v").await;
    s.delete("/n/x/3", None).await.unwrap();
    let (n, rev) = s.count("/n/x/").await.unwrap();
    assert_eq!(n, 6);
    assert_eq!(rev, s.current_revision().await.unwrap());
    assert_eq!(s.count("/n/z/").await.unwrap().0, 0);
}

/// A watch from a past revision replays every change since, with previous
/// values on updates and deletes, then carries on with live changes.
pub async fn watch_replays_history_with_prev(h: &mut dyn Harness) {
    let s = h.open().await;
    let a1 = put_new(&*s, "/w/a", "1").await;
    let a2 = s
        .update("/w/a", b("2"), a1.mod_revision, None)
        .await
        .unwrap();
    let del = s.delete("/w/a", None).await.unwrap();
    let mut w = s.watch("/w/", a1.mod_revision).await.unwrap();
    let e1 = next_event(&mut w).await;
    assert_eq!(
        (e1.kind, e1.kv.clone(), e1.prev.clone()),
        (EventKind::Put, a1.clone(), None)
    );
    let e2 = next_event(&mut w).await;
    assert_eq!((e2.kind, e2.kv.clone()), (EventKind::Put, a2.clone()));
    assert_eq!(e2.prev, Some(a1.clone()));
    let e3 = next_event(&mut w).await;
    assert_eq!(e3.kind, EventKind::Delete);
    assert_eq!(e3.kv.key, "/w/a");
    assert_eq!(e3.kv.mod_revision, del.revision);
    assert_eq!(e3.revision(), del.revision);
    assert_eq!(e3.prev, Some(a2.clone()));
    // Live.
    let b1 = put_new(&*s, "/w/b", "live").await;
    let e4 = next_event(&mut w).await;
    assert_eq!((e4.kind, e4.kv, e4.prev), (EventKind::Put, b1, None));
}

/// A watch sees only keys under its prefix.
pub async fn watch_filters_by_prefix(h: &mut dyn Harness) {
    let s = h.open().await;
    let mut w = s.watch("/f/in/", 0).await.unwrap();
    put_new(&*s, "/f/out/1", "no").await;
    put_new(&*s, "/f/in", "no").await;
    let yes = put_new(&*s, "/f/in/1", "yes").await;
    put_new(&*s, "/f/inx", "no").await;
    let yes2 = put_new(&*s, "/f/in/2", "yes").await;
    assert_eq!(next_event(&mut w).await.kv, yes);
    assert_eq!(next_event(&mut w).await.kv, yes2);
    // Nothing else arrives.
    let extra = tokio::time::timeout(Duration::from_millis(300), w.next()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");
}

/// A watch from revision 0 starts after the current revision.
pub async fn watch_from_now(h: &mut dyn Harness) {
    let s = h.open().await;
    put_new(&*s, "/z/old", "old").await;
    let mut w = s.watch("/z/", 0).await.unwrap();
    let new = put_new(&*s, "/z/new", "new").await;
    let ev = next_event(&mut w).await;
    assert_eq!(ev.kv, new, "the watch must not replay the old key");
}

/// A store that says its events carry the values written
/// (`events_share_written_values`) gives a write's event the very `Bytes`
/// the write was handed, for a create and an update; every store gives
/// equal contents.
pub async fn written_values_in_events(h: &mut dyn Harness) {
    let s = h.open().await;
    let mut w = s.watch("/v/", 0).await.unwrap();
    let created = b("first");
    let kv = s.create("/v/a", created.clone(), None).await.unwrap();
    let updated = b("second");
    s.update("/v/a", updated.clone(), kv.mod_revision, None)
        .await
        .unwrap();
    for written in [created, updated] {
        let ev = next_event(&mut w).await;
        assert_eq!(ev.kv.value, written);
        if s.events_share_written_values() {
            assert_eq!(
                ev.kv.value.as_ptr(),
                written.as_ptr(),
                "{}: the event must carry the written allocation",
                s.backend_name()
            );
        }
    }
}

/// Under concurrent writers a watch delivers every change exactly once, in
/// strictly increasing revision order.
pub async fn watch_ordering_under_concurrent_writers(h: &mut dyn Harness) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let s = h.open().await;
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s.watch("/c/", start).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            let key = format!("/c/{t}");
            let mut kv = s.create(&key, Bytes::from("0"), None).await.unwrap();
            revs.push(kv.mod_revision);
            for i in 1..EACH {
                kv = s
                    .update(&key, Bytes::from(i.to_string()), kv.mod_revision, None)
                    .await
                    .unwrap();
                revs.push(kv.mod_revision);
            }
            revs
        }));
    }
    let mut written = HashSet::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    assert_eq!(
        written.len(),
        WRITERS * EACH,
        "every write got its own revision"
    );
    let mut last = 0;
    let mut per_key: BTreeMap<String, i64> = BTreeMap::new();
    for _ in 0..WRITERS * EACH {
        let ev = next_event(&mut w).await;
        assert!(
            ev.revision() > last,
            "revision {} after {last}",
            ev.revision()
        );
        last = ev.revision();
        assert!(
            written.remove(&ev.revision()),
            "unknown or repeated revision {}",
            ev.revision()
        );
        let version = per_key.entry(ev.kv.key.clone()).or_insert(0);
        *version += 1;
        assert_eq!(
            ev.kv.version, *version,
            "versions of {} in order",
            ev.kv.key
        );
        assert_eq!(ev.kv.value, Bytes::from((*version - 1).to_string()));
    }
    assert!(written.is_empty());
}

/// Writers racing on one key with the same expected revision: exactly one
/// wins each round, the others get a conflict.
pub async fn concurrent_cas_exactly_one_wins(h: &mut dyn Harness) {
    const RACERS: usize = 8;
    const ROUNDS: usize = 20;
    let s = h.open().await;
    let mut kv = put_new(&*s, "/race/k", "start").await;
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for r in 0..RACERS {
            let s = s.clone();
            let expected = kv.mod_revision;
            tasks.push(tokio::spawn(async move {
                s.update(
                    "/race/k",
                    Bytes::from(format!("{round}-{r}")),
                    expected,
                    None,
                )
                .await
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(won) => winners.push(won),
                Err(StoreError::Conflict { current, .. }) => {
                    assert!(current.is_some(), "conflict carries the current value");
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let now = get_value(&*s, "/race/k").await.unwrap();
        assert_eq!(now, winners[0], "the winner's value is what is stored");
        assert_eq!(now.version, round as i64 + 2);
        kv = now;
    }
}

/// Compaction discards history below a revision: reads, ranges and watches
/// there fail with Compacted; current values stay.
pub async fn compaction(h: &mut dyn Harness) {
    let s = h.open().await;
    let a1 = put_new(&*s, "/k/a", "1").await;
    let a2 = s
        .update("/k/a", b("2"), a1.mod_revision, None)
        .await
        .unwrap();
    let bkv = put_new(&*s, "/k/b", "1").await;
    let a3 = s
        .update("/k/a", b("3"), a2.mod_revision, None)
        .await
        .unwrap();
    s.compact(bkv.mod_revision).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), bkv.mod_revision);
    match s.get("/k/a", Some(a1.mod_revision)).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, a1.mod_revision);
            assert_eq!(compacted, bkv.mod_revision);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The compacted revision itself is still readable.
    assert_eq!(
        s.get("/k/a", Some(bkv.mod_revision)).await.unwrap().kv,
        Some(a2.clone())
    );
    assert!(matches!(
        s.range(RangeRequest {
            prefix: "/k/".into(),
            revision: Some(a2.mod_revision),
            ..Default::default()
        })
        .await,
        Err(StoreError::Compacted { .. })
    ));
    match s.watch("/k/", a2.mod_revision).await {
        Err(StoreError::Compacted { .. }) => {}
        Ok(_) => panic!("watch from a compacted revision must fail"),
        Err(e) => panic!("expected Compacted, got {e}"),
    }
    let mut w = s.watch("/k/", bkv.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv, bkv);
    assert_eq!(next_event(&mut w).await.kv, a3);
    assert_eq!(get_value(&*s, "/k/a").await, Some(a3.clone()));
    assert_eq!(get_value(&*s, "/k/b").await, Some(bkv.clone()));
    // Compacting again to the same or an older revision is refused.
    assert!(matches!(
        s.compact(a1.mod_revision).await,
        Err(StoreError::Compacted { .. })
    ));
    let now = s.current_revision().await.unwrap();
    assert!(matches!(
        s.compact(now + 10).await,
        Err(StoreError::FutureRevision { .. })
    ));
    // Writes go on after compaction with the revision sequence unbroken.
    let c = put_new(&*s, "/k/c", "1").await;
    assert_eq!(c.mod_revision, now + 1);
}

/// Everything written survives a restart: values, counters, the revision, the
/// history (a watch from an old revision still replays) and the compaction
/// point.
pub async fn restart_keeps_everything(h: &mut dyn Harness) {
    let s = h.open().await;
    let mut expected = BTreeMap::new();
    let first = put_new(&*s, "/s/0", "v0").await;
    for i in 1..50 {
        let kv = put_new(&*s, &format!("/s/{i:02}"), &format!("v{i}")).await;
        expected.insert(kv.key.clone(), kv);
    }
    let upd = s
        .update("/s/0", b("v0b"), first.mod_revision, None)
        .await
        .unwrap();
    expected.insert(upd.key.clone(), upd.clone());
    s.compact(first.mod_revision + 1).await.unwrap();
    let deleted = s.delete("/s/01", None).await.unwrap();
    expected.remove("/s/01");
    let rev = s.current_revision().await.unwrap();

    let s = h.restart(s).await;
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(
        s.compacted_revision().await.unwrap(),
        first.mod_revision + 1
    );
    let all = s
        .range(RangeRequest {
            prefix: "/s/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let got: BTreeMap<_, _> = all.kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
    assert_eq!(got, expected);
    // History after the compaction point is still there.
    let mut w = s.watch("/s/0", upd.mod_revision).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.kv, upd);
    assert_eq!(ev.prev, Some(first.clone()));
    assert!(matches!(
        s.get("/s/0", Some(first.mod_revision)).await,
        Err(StoreError::Compacted { .. })
    ));
    assert_eq!(
        s.get("/s/01", Some(deleted.revision - 1)).await.unwrap().kv,
        Some(deleted.prev)
    );
    // The revision sequence continues.
    let next = put_new(&*s, "/s/new", "n").await;
    assert_eq!(next.mod_revision, rev + 1);
}

/// Revoking a lease deletes its keys, as ordinary delete events.
pub async fn lease_revoke_deletes_keys(h: &mut dyn Harness) {
    let s = h.open().await;
    let lease = s.lease_grant(60).await.unwrap();
    assert_ne!(lease, 0);
    let mut w = s.watch("/l/", 0).await.unwrap();
    let k1 = s.create("/l/1", b("a"), Some(lease)).await.unwrap();
    assert_eq!(k1.lease, lease);
    let k2 = s.create("/l/2", b("b"), Some(lease)).await.unwrap();
    let plain = s.create("/l/3", b("c"), None).await.unwrap();
    for _ in 0..3 {
        next_event(&mut w).await;
    }
    s.lease_revoke(lease).await.unwrap();
    let mut deleted = Vec::new();
    for _ in 0..2 {
        let ev = next_event(&mut w).await;
        assert_eq!(ev.kind, EventKind::Delete);
        deleted.push(ev.prev.expect("delete carries prev"));
    }
    deleted.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(deleted, vec![k1, k2]);
    assert_eq!(get_value(&*s, "/l/1").await, None);
    assert_eq!(get_value(&*s, "/l/3").await, Some(plain));
    assert!(matches!(
        s.lease_revoke(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        s.create("/l/4", b("d"), Some(lease)).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert_eq!(get_value(&*s, "/l/4").await, None);
}

/// Keys attached to a lease go when it expires.
pub async fn lease_expiry_deletes_keys(h: &mut dyn Harness) {
    let s = h.open().await;
    let lease = s.lease_grant(2).await.unwrap();
    let kv = s
        .create("/e/1", b("short-lived"), Some(lease))
        .await
        .unwrap();
    let mut w = s.watch("/e/", kv.mod_revision + 1).await.unwrap();
    // etcd may round short TTLs up to its minimum; allow for it, bounded.
    let ev = match tokio::time::timeout(Duration::from_secs(15), w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        other => panic!("no expiry within 15s: {other:?}"),
    };
    assert_eq!(ev.kind, EventKind::Delete);
    assert_eq!(ev.prev, Some(kv));
    assert_eq!(get_value(&*s, "/e/1").await, None);
}

/// Values up to the limit are stored; larger ones are refused with a clear
/// error and nothing is written.
pub async fn value_size_limit(h: &mut dyn Harness) {
    let s = h.open().await;
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES]);
    let kv = s.create("/big/ok", big.clone(), None).await.unwrap();
    assert_eq!(get_value(&*s, "/big/ok").await.unwrap().value, big);
    let rev = s.current_revision().await.unwrap();
    let too_big = Bytes::from(vec![b'y'; MAX_VALUE_BYTES + 1]);
    match s.create("/big/no", too_big.clone(), None).await {
        Err(StoreError::ValueTooLarge { size, limit }) => {
            assert_eq!(size, MAX_VALUE_BYTES + 1);
            assert_eq!(limit, MAX_VALUE_BYTES);
        }
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    assert!(matches!(
        s.update("/big/ok", too_big, kv.mod_revision, None).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(get_value(&*s, "/big/no").await, None);
    assert_eq!(get_value(&*s, "/big/ok").await.unwrap().value, big);
}

/// Empty and malformed keys are refused with a clear error; nothing changes.
pub async fn bad_keys_change_nothing(h: &mut dyn Harness) {
    let s = h.open().await;
    put_new(&*s, "/ok", "v").await;
    let rev = s.current_revision().await.unwrap();
    let long = format!("/{}", "k".repeat(crate::MAX_KEY_BYTES));
    for key in ["", "no-slash", "/nul\0byte", "/new\nline", long.as_str()] {
        match s.create(key, b("v"), None).await {
            Err(StoreError::InvalidKey(msg)) => assert!(!msg.is_empty()),
            other => panic!("key {key:?}: expected InvalidKey, got {other:?}"),
        }
        assert!(matches!(
            s.get(key, None).await,
            Err(StoreError::InvalidKey(_))
        ));
        assert!(matches!(
            s.delete(key, None).await,
            Err(StoreError::InvalidKey(_))
        ));
        assert!(matches!(
            s.update(key, b("v"), 1, None).await,
            Err(StoreError::InvalidKey(_))
        ));
    }
    assert!(matches!(
        s.watch("", 0).await,
        Err(StoreError::InvalidKey(_))
    ));
    assert!(matches!(
        s.range(RangeRequest::default()).await,
        Err(StoreError::InvalidKey(_))
    ));
    assert_eq!(s.current_revision().await.unwrap(), rev);
}
