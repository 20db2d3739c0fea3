//! Pod startup latency on one node, as Kubernetes defines it (pod created → all its
//! containers running, seen through a watch): N busybox pods created at once against
//! an in-process API server and the agent with its own containerd. Prints p50/p99.
//! Run as root: `cargo run -p ferrokube-kubelet --example pod_startup -- 50`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferrokube_client::testing::{wait, TestApi};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

const NODE: &str = "bench-node";
const BRIDGE: &str = "fkbench0";

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
    build_images(data.path())?;
    let cancel = CancellationToken::new();
    let agent = start_agent(&client, data.path(), &cancel).await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let watch = watcher(pods.clone(), watcher::Config::default()).boxed();
    let t0 = Instant::now();
    let created = create_pods(&pods, n).await?;
    let running = startup_latencies(watch, &created, n).await;
    print_latencies(n, running, t0.elapsed());

    clean_up(&pods, n, data.path()).await?;
    cancel.cancel();
    let _ = agent.await;
    ferrokube_kubelet::cni::remove_pod_network(BRIDGE);
    Ok(())
}

/// The test images, built into the node's import directory.
fn build_images(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let images = data_dir.join("agent/images");
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
    Ok(())
}

/// Starts the agent (with its own containerd) and waits for its Node.
async fn start_agent(
    client: &kube::Client,
    data_dir: &std::path::Path,
    cancel: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let mut config = ferrokube_kubelet::KubeletConfig::new(NODE, data_dir);
    config.cni_bridge = BRIDGE.into();
    config.kubelet_port = 0; // any free port: tests run side by side
    config.pod_cidr = Some("10.198.0.0/24".into());
    let agent = tokio::spawn(ferrokube_kubelet::run(
        client.clone(),
        config,
        cancel.clone(),
    ));
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let registered = wait::poll(Duration::from_secs(60), wait::EVERY, || async {
        nodes.get_opt(NODE).await.ok().flatten()
    })
    .await;
    anyhow::ensure!(registered.is_some(), "node not registered");
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(agent)
}

/// Creates `n` busybox pods at once; returns when each was created.
async fn create_pods(pods: &Api<Pod>, n: usize) -> anyhow::Result<HashMap<String, Instant>> {
    let mut created = HashMap::new();
    for i in 0..n {
        let name = format!("bench-{i}");
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}
        }))?;
        created.insert(name, Instant::now());
        pods.create(&PostParams::default(), &p).await?;
    }
    Ok(created)
}

/// Watches the pods until all `n` run (at most 5 minutes); returns how long each
/// took from its creation.
async fn startup_latencies(
    mut watch: futures::stream::BoxStream<'_, Result<watcher::Event<Pod>, watcher::Error>>,
    created: &HashMap<String, Instant>,
    n: usize,
) -> HashMap<String, Duration> {
    let mut running: HashMap<String, Duration> = HashMap::new();
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
            if all_running(&p) && !running.contains_key(&name) {
                if let Some(c) = created.get(&name) {
                    running.insert(name, c.elapsed());
                }
            }
        }
    }
    running
}

/// Whether every container of the pod is running.
fn all_running(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            !cs.is_empty()
                && cs
                    .iter()
                    .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

fn print_latencies(n: usize, running: HashMap<String, Duration>, all_after: Duration) {
    let mut lat: Vec<Duration> = running.values().copied().collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "pods: {n}, running: {}, all running after {all_after:?}",
        lat.len(),
    );
    println!(
        "startup latency p50 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or_default()
    );
}

/// Deletes the pods through the agent and waits (at most 2 minutes) for their
/// sandboxes to go.
async fn clean_up(pods: &Api<Pod>, n: usize, data_dir: &std::path::Path) -> anyhow::Result<()> {
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
        &ferrokube_kubelet::images::endpoint_for_data_dir(data_dir),
    )?;
    use ferrokube_kubelet::cri::Runtime;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !rt.list_pod_sandbox(None).await?.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
