//! A three-member etcd on loopback: members are killed in the middle of a
//! stream of writes; every acknowledged write stays readable, and watches
//! opened before the failures deliver every acknowledged write exactly once,
//! in revision order (they resume on the members left).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_store::etcd::{EtcdOptions, EtcdStore};
use ferrokube_store::testing::EtcdCluster;
use ferrokube_store::{EventKind, RangeRequest, Store, StoreError};
use futures::StreamExt;
use parking_lot::Mutex;

const WRITERS: usize = 4;
const PER_WRITER: usize = 400;
const WATCHERS: usize = 6;

/// Writes `key` until the cluster acknowledges it (bounded). A retry after
/// an ambiguous failure may find the key already written by the attempt
/// that failed: that counts as acknowledged if the value is ours.
async fn write_acknowledged(s: &EtcdStore, key: &str, value: Bytes) -> Option<i64> {
    for _ in 0..100 {
        match s.create(key, value.clone(), None).await {
            Ok(kv) => return Some(kv.mod_revision),
            Err(StoreError::AlreadyExists { .. }) => {
                let kv = s.get(key, None).await.ok()?.kv?;
                assert_eq!(kv.value, value, "{key} holds another value");
                return Some(kv.mod_revision);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_member_loss() {
    let mut cluster = EtcdCluster::start_cluster(3).expect("start 3 etcd members");
    let opts = EtcdOptions {
        request_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let store = Arc::new(
        EtcdStore::connect(&cluster.endpoints(), opts)
            .await
            .expect("connect"),
    );
    let start = store.current_revision().await.unwrap() + 1;
    let mut watches = Vec::new();
    for _ in 0..WATCHERS {
        watches.push(store.watch("/stream/", start).await.expect("watch"));
    }

    let acked: Arc<Mutex<HashMap<String, (Bytes, i64)>>> = Arc::default();
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let acked = acked.clone();
        let written = written.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let key = format!("/stream/{w}/{i:04}");
                let value = Bytes::from(format!("value-{w}-{i}"));
                if let Some(rev) = write_acknowledged(&store, &key, value.clone()).await {
                    acked.lock().insert(key, (value, rev));
                }
                written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }

    // Kill a member a quarter of the way in, bring it back, kill another
    // at three quarters: quorum holds throughout.
    let total = WRITERS * PER_WRITER;
    let wait_for = |n: usize| {
        let written = written.clone();
        async move {
            for _ in 0..600 {
                if written.load(std::sync::atomic::Ordering::Relaxed) >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("writes stalled before {n}");
        }
    };
    wait_for(total / 4).await;
    cluster.stop_member(0);
    wait_for(total / 2).await;
    tokio::task::block_in_place(|| cluster.start_member(0)).expect("restart member 0");
    wait_for(total * 3 / 4).await;
    cluster.stop_member(1);
    for w in writers {
        w.await.unwrap();
    }

    let acked = acked.lock().clone();
    assert!(
        acked.len() >= total * 9 / 10,
        "only {} of {total} writes were acknowledged",
        acked.len()
    );

    // Every acknowledged write is readable.
    let all = store
        .range(RangeRequest {
            prefix: "/stream/".into(),
            ..Default::default()
        })
        .await
        .expect("range after failures");
    let stored: BTreeMap<_, _> = all
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    for (key, (value, _)) in &acked {
        assert_eq!(
            stored.get(key),
            Some(value),
            "acknowledged write {key} lost"
        );
    }

    // Every watch delivers every stored write exactly once, in order.
    let mut by_rev: Vec<(i64, String)> = all
        .kvs
        .iter()
        .map(|kv| (kv.mod_revision, kv.key.clone()))
        .collect();
    by_rev.sort();
    for (n, mut w) in watches.into_iter().enumerate() {
        let mut got = Vec::new();
        while got.len() < by_rev.len() {
            match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
                Ok(Some(Ok(ev))) => {
                    assert_eq!(ev.kind, EventKind::Put);
                    got.push((ev.kv.mod_revision, ev.kv.key));
                }
                other => panic!("watch {n} stopped after {} events: {other:?}", got.len()),
            }
        }
        assert_eq!(got, by_rev, "watch {n} saw a different sequence");
    }
}
