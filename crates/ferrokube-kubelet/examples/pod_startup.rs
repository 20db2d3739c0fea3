//! Pod startup latency on one node, as Kubernetes defines it (pod created → all its
//! containers running, seen through a watch): N busybox pods created at once against
//! an in-process API server and the agent with its own containerd. Prints p50/p99.
//! Run as root: `cargo run -p ferrokube-kubelet --example pod_startup -- 50`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferrokube_client::testing::TestApi;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let api = TestApi::start().await?;
    let client = api.client().await?;
    let data = tempfile::Builder::new()
        .prefix("fk-bench")
        .tempdir_in("/tmp")?;
    let images = data.path().join("agent/images");
    std::fs::create_dir_all(&images)?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    anyhow::ensure!(
        std::process::Command::new("bash")
            .arg(script)
            .arg(&images)
            .status()?
            .success(),
        "build-images failed"
    );
    let mut config = ferrokube_kubelet::KubeletConfig::new("bench-node", data.path());
    config.cni_bridge = "fkbench0".into();
    config.kubelet_port = 0; // any free port: tests run side by side
    config.fallback_pod_cidr = "10.198.0.0/24".into();
    let cancel = CancellationToken::new();
    let agent = tokio::spawn(ferrokube_kubelet::run(
        client.clone(),
        config,
        cancel.clone(),
    ));
    // Wait for the node.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.get_opt("bench-node").await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "node not registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut watch = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut created: HashMap<String, Instant> = HashMap::new();
    let mut running: HashMap<String, Duration> = HashMap::new();
    let t0 = Instant::now();
    for i in 0..n {
        let name = format!("bench-{i}");
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "bench-node", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}
        }))?;
        created.insert(name, Instant::now());
        pods.create(&PostParams::default(), &p).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while running.len() < n && Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), watch.next()).await else {
            continue;
        };
        let pods_seen: Vec<Pod> = match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
            _ => vec![],
        };
        for p in pods_seen {
            let name = p.metadata.name.clone().unwrap_or_default();
            let all_running = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    !cs.is_empty()
                        && cs
                            .iter()
                            .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                });
            if all_running && !running.contains_key(&name) {
                if let Some(c) = created.get(&name) {
                    running.insert(name, c.elapsed());
                }
            }
        }
    }
    let mut lat: Vec<Duration> = running.values().copied().collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "pods: {n}, running: {}, all running after {:?}",
        lat.len(),
        t0.elapsed()
    );
    println!(
        "startup latency p50 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or_default()
    );

    // Clean up: delete the pods through the agent, then stop it.
    for i in 0..n {
        let _ = pods
            .delete(
                &format!("bench-{i}"),
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await;
    }
    let rt = ferrokube_kubelet::cri::remote::RemoteRuntime::connect(
        &ferrokube_kubelet::images::endpoint_for_data_dir(data.path()),
    )?;
    use ferrokube_kubelet::cri::Runtime;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !rt.list_pod_sandbox(None).await?.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cancel.cancel();
    let _ = agent.await;
    ferrokube_kubelet::cni::remove_pod_network("fkbench0");
    Ok(())
}
