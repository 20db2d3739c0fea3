//! `ferrokube server` on a three-member etcd (Debian's etcd, as
//! `--datastore-endpoint`): the etcd leader is killed under a steady load
//! of ConfigMap creates through the API server. No acknowledged write is
//! lost, the longest pause between acknowledged writes is measured and
//! printed, every watch opened before the kill sees every acknowledged
//! write once and in order (resuming from its last resourceVersion when
//! its stream ends, as a client does), and the node keeps running its pod
//! and runs a pod created after the kill.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_store::testing::EtcdCluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

const NODE: &str = "fk-etcd-e2e";
const NS: &str = "load";
/// Concurrent writers of the load.
const WRITERS: usize = 3;
/// Watches opened before the kill.
const WATCHERS: usize = 3;

/// A pod that sleeps on the node.
fn sleeper(c: &Cluster, name: &str) {
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    \
         image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '100000']\n"
    );
    let file = c.data_dir().join(format!("{name}.yaml"));
    std::fs::write(&file, manifest).expect("write the pod");
    c.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
}

fn wait_running(c: &Cluster, name: &str, within: Duration) {
    wait_until_blocking(&format!("pod {name} to run"), within, POLL, || {
        let out = c.kubectl(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
        out.stdout == b"Running"
    });
}

/// What the writers saw: acknowledged names with their resourceVersions,
/// and when each acknowledgement came.
#[derive(Default)]
struct Load {
    acked: HashMap<String, String>,
    times: Vec<Instant>,
}

/// Creates ConfigMaps `w<w>-<n>` until `stop`, retrying each until it is
/// acknowledged. After a failure whose outcome is unknown, a retry may find
/// the ConfigMap made by the attempt that failed: that one counts (its
/// data says it is ours).
async fn writer(api: Api<ConfigMap>, w: usize, load: Arc<Mutex<Load>>, stop: Instant) {
    let mut n = 0usize;
    while Instant::now() < stop {
        let name = format!("w{w}-{n}");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "data": {"writer": w.to_string(), "n": n.to_string()}
        }))
        .expect("a ConfigMap");
        let mut acked = None;
        for _ in 0..300 {
            match api.create(&PostParams::default(), &cm).await {
                Ok(made) => acked = made.metadata.resource_version,
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    if let Ok(found) = api.get(&name).await {
                        assert_eq!(found.data, cm.data, "{name} holds another writer's data");
                        acked = found.metadata.resource_version;
                    }
                }
                Err(_) => {}
            }
            if acked.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rv = acked.unwrap_or_else(|| panic!("{name} was never acknowledged"));
        let mut l = load.lock().unwrap_or_else(|p| p.into_inner());
        l.acked.insert(name, rv);
        l.times.push(Instant::now());
        n += 1;
    }
}

/// Follows ConfigMaps in the namespace from `rv` until `until`, resuming
/// from the last resourceVersion seen whenever the stream ends or fails;
/// returns the ADDED names in the order they came. A 410 Gone (a gap) fails
/// the test.
async fn follow(api: Api<ConfigMap>, mut rv: String, until: Instant) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while Instant::now() < until {
        let params = WatchParams::default().timeout(30);
        let Ok(stream) = api.watch(&params, &rv).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = stream.boxed();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(next) = tokio::time::timeout(left, stream.next()).await else {
                return seen;
            };
            match next {
                Some(Ok(WatchEvent::Added(cm))) => {
                    let name = cm.metadata.name.clone().unwrap_or_default();
                    rv = cm.metadata.resource_version.clone().unwrap_or_default();
                    seen.push((name, rv.clone()));
                }
                Some(Ok(WatchEvent::Modified(cm) | WatchEvent::Deleted(cm))) => {
                    rv = cm.metadata.resource_version.clone().unwrap_or(rv);
                }
                Some(Ok(WatchEvent::Bookmark(b))) => rv = b.metadata.resource_version,
                Some(Ok(WatchEvent::Error(e))) => {
                    assert_ne!(e.code, 410, "the watch lost events from {rv}: {e:?}");
                    break;
                }
                Some(Err(_)) | None => break,
            }
        }
    }
    seen
}

async fn load_through_leader_loss(c: &Cluster, etcd: &mut EtcdCluster) {
    let client = ferrokube_client::client_from_kubeconfig(&c.kubeconfig())
        .await
        .expect("a client");
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    let start_rv = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("list ConfigMaps")
        .metadata
        .resource_version
        .expect("a list resourceVersion");
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Instant::now() + Duration::from_secs(25);
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| {
            let follow_until = stop + Duration::from_secs(20);
            tokio::spawn(follow(api.clone(), start_rv.clone(), follow_until))
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(api.clone(), w, load.clone(), stop)))
        .collect();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let leader = etcd.leader().expect("an etcd leader");
    let before = load.lock().unwrap_or_else(|p| p.into_inner()).acked.len();
    etcd.stop_member(leader);
    println!("killed etcd member {leader} (the leader) after {before} acknowledged writes");
    // The node keeps running pods: one created right after the kill (a
    // create the election fails with 503 is retried, as a user would; one
    // that went through before it failed leaves the pod there).
    let kubeconfig = c.kubeconfig();
    let created = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for _ in 0..40 {
            let out = common::kubectl_with(
                &kubeconfig,
                &[
                    "run",
                    "after",
                    "--image=busybox",
                    "--image-pull-policy=Never",
                    "--restart=Never",
                    "--",
                    "sleep",
                    "100000",
                ],
            );
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() || err.contains("AlreadyExists") {
                return Ok(());
            }
            last = Some(err);
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(last.unwrap_or_default())
    })
    .await
    .expect("kubectl run");
    created.expect("create a pod after the kill");
    for w in writers {
        w.await.expect("a writer");
    }
    let load = Arc::try_unwrap(load)
        .ok()
        .expect("the writers are done")
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    check_load(&api, &load).await;
    let mut times = load.times.clone();
    times.sort();
    let pause = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "{} acknowledged ConfigMap creates; longest pause between acknowledged writes across the \
         etcd leader's loss: {:.2} s",
        load.acked.len(),
        pause.as_secs_f64()
    );
    assert!(
        load.acked.len() > before,
        "no write was acknowledged after the kill"
    );
    for w in watchers {
        let seen = w.await.expect("a watcher");
        check_watch(&seen, &load.acked);
    }
}

/// Every acknowledged write is there, at the resourceVersion it was
/// acknowledged with.
async fn check_load(api: &Api<ConfigMap>, load: &Load) {
    let listed = api
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps");
    let found: HashMap<String, String> = listed
        .items
        .into_iter()
        .filter_map(|cm| Some((cm.metadata.name?, cm.metadata.resource_version?)))
        .collect();
    for (name, rv) in &load.acked {
        assert_eq!(
            found.get(name),
            Some(rv),
            "acknowledged write {name} lost or changed"
        );
    }
}

/// The watch saw every acknowledged write once, in resourceVersion order.
fn check_watch(seen: &[(String, String)], acked: &HashMap<String, String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in seen {
        *counts.entry(name).or_default() += 1;
    }
    for name in acked.keys() {
        assert_eq!(
            counts.get(name.as_str()),
            Some(&1),
            "watch saw {name} not exactly once"
        );
    }
    let rvs: Vec<u64> = seen.iter().map(|(_, rv)| rv.parse().unwrap_or(0)).collect();
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]),
        "watch events out of order"
    );
}

#[test]
fn etcd_leader_loss_loses_no_write_and_keeps_pods_running() {
    let mut etcd = EtcdCluster::start_cluster(3).expect("start 3 etcd members");
    let endpoints = etcd.endpoints().join(",");
    let c = Cluster::start_ready_node(
        NODE,
        &[common::NODE_ALONE, &["--datastore-endpoint", &endpoints]].concat(),
    );
    c.kubectl_ok(&["create", "namespace", NS]);
    sleeper(&c, "before");
    wait_running(&c, "before", Duration::from_secs(90));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(load_through_leader_loss(&c, &mut etcd));
    wait_running(&c, "after", Duration::from_secs(90));
    let phase = c.kubectl_ok(&["get", "pod", "before", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Running", "the pod from before the kill stopped");
    let restarts = c.kubectl_ok(&[
        "get",
        "pod",
        "before",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(restarts, "0", "the pod from before the kill was restarted");
}
