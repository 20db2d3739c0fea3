//! The HorizontalPodAutoscaler's reaction time (issue 19) at default
//! settings (metric resolution 15 s, HPA sync 15 s, 5 min downscale
//! stabilization): a `ferrokube server` (the binary beside this one) with its node agent runs
//! a Deployment (100m requested, 200m limit) whose pod burns CPU while a
//! mounted ConfigMap says `on`, under an HPA at 50% CPU, 1 to 4 replicas.
//! Each pod logs the moment it starts or stops burning, so the times run
//! from the load's real start (the container log's timestamp), not from
//! the ConfigMap write: from load start to the first scale-up, and from
//! the last pod's load stop to the scale-down to 1.
//!
//! It runs pods on the node's bridge (`ferrokube0`): run it as root, alone
//! (as the node tests: `flock /tmp/ferrokube-node.lock`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Load on/off rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Extra `ferrokube server` flags (e.g. `--horizontal-pod-autoscaler-sync-period=5s`).
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
}

const NODE: &str = "fkbench-hpa";
const NS: &str = "default";
/// The node agent's pod bridge.
const BRIDGE: &str = "ferrokube0";

/// The server with its node agent, stopped (SIGTERM, then SIGKILL) on drop.
struct NodeServer {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        crate::kubelet::send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever the node left (a failed run): its containerd's shims, by
        // pid, then the pods' bridge and masquerade table, as the node
        // tests leave the machine.
        let marker = self.dir.path().to_string_lossy().into_owned();
        for pid in crate::kubelet::pids_with(&marker) {
            crate::kubelet::send_signal(pid, libc::SIGKILL);
        }
        ferrokube_kubelet::cni::remove_pod_network(BRIDGE);
    }
}

fn start(extra: &[String]) -> anyhow::Result<NodeServer> {
    anyhow::ensure!(
        crate::kubelet::is_root(),
        "the hpa benchmark runs pods: run it as root"
    );
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("ferrokube");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p ferrokube -p ferrokube-bench)",
        bin.display()
    );
    let dir = tempfile::Builder::new()
        .prefix("fkbench-hpa")
        .tempdir_in("/tmp")?;
    let images = dir.path().join("agent/images");
    std::fs::create_dir_all(&images)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/build-images.sh"))
        .arg(&images)
        .output()
        .context("running scripts/build-images.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/build-images.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let child = Command::new(&bin)
        .args(["server", "--bind-address", "127.0.0.1", "--node-name", NODE])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--https-listen-port", &port.to_string()])
        .args(["--cluster-cidr", "10.96.0.0/16", "--disable", "coredns"])
        .args([
            "--disable-kube-proxy",
            "--kubelet-port",
            "0",
            "--proxy-cleanup-on-exit",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let server = NodeServer { child, dir };
    let kubeconfig = server.dir.path().join("kubeconfig.yaml");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kubeconfig.exists() {
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

/// Polls `f` every `every` until it gives a value, for at most `within`.
async fn wait<T, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(every).await;
    }
}

fn objects() -> anyhow::Result<(ConfigMap, Deployment, HorizontalPodAutoscaler)> {
    let cm =
        serde_json::from_value(json!({"metadata": {"name": "load"}, "data": {"state": "off"}}))?;
    let script = r#"s=off
while :; do
  n=$(cat /load/state)
  if [ "$n" != "$s" ]; then echo "load $n"; s=$n; fi
  if [ "$s" = on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi
done"#;
    let dep = serde_json::from_value(json!({
        "metadata": {"name": "burn"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "burn"}},
            "template": {
                "metadata": {"labels": {"app": "burn"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "burn", "image": "busybox:1.35",
                        "command": ["sh", "-c", script],
                        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}},
                        "volumeMounts": [{"name": "load", "mountPath": "/load"}]
                    }],
                    "volumes": [{"name": "load", "configMap": {"name": "load"}}]
                }
            }
        }
    }))?;
    let hpa = serde_json::from_value(json!({
        "metadata": {"name": "burn"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))?;
    Ok((cm, dep, hpa))
}

/// When each `burn` pod logged `load <state>` (the latest such line).
async fn load_times(pods: &Api<Pod>, state: &str) -> Vec<Timestamp> {
    let list = pods
        .list(&ListParams::default().labels("app=burn"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in list {
        let name = p.metadata.name.unwrap_or_default();
        let lp = LogParams {
            timestamps: true,
            ..LogParams::default()
        };
        let Ok(text) = pods.logs(&name, &lp).await else {
            continue;
        };
        let at = text
            .lines()
            .filter(|l| l.ends_with(&format!("load {state}")))
            .filter_map(|l| l.split_whitespace().next()?.parse::<Timestamp>().ok())
            .next_back();
        out.extend(at);
    }
    out
}

async fn replicas(deps: &Api<Deployment>) -> Option<i32> {
    deps.get("burn").await.ok()?.spec?.replicas
}

fn secs(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let server = start(&o.server_arg)?;
    let result = measure(&o, &server).await;
    if result.is_err() {
        let log = std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("--- server log (last lines) ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }
    drop(server);
    result
}

async fn measure(o: &Options, server: &NodeServer) -> anyhow::Result<()> {
    let client = crate::apiserver::client(&server.dir.path().join("kubeconfig.yaml")).await?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    wait(
        "the node Ready",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let n = nodes.get_opt(NODE).await.ok().flatten()?;
            n.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        },
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let (cm, dep, hpa) = objects()?;
    let pp = PostParams::default();
    wait(
        "the default service account",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(client.clone(), NS);
            sa.get_opt("default").await.ok().flatten().map(|_| ())
        },
    )
    .await?;
    cms.create(&pp, &cm).await?;
    deps.create(&pp, &dep).await?;
    hpas.create(&pp, &hpa).await?;
    let result = rounds(o, &cms, &deps, &hpas, &pods).await;
    let _ = deps.delete("burn", &DeleteParams::default()).await;
    let _ = hpas.delete("burn", &DeleteParams::default()).await;
    let _ = wait(
        "the pods gone",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let l = pods
                .list(&ListParams::default().labels("app=burn"))
                .await
                .ok()?;
            l.items.is_empty().then_some(())
        },
    )
    .await;
    result
}

async fn rounds(
    o: &Options,
    cms: &Api<ConfigMap>,
    deps: &Api<Deployment>,
    hpas: &Api<HorizontalPodAutoscaler>,
    pods: &Api<Pod>,
) -> anyhow::Result<()> {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for round in 1..=o.rounds {
        // Settled: one replica, measured (a current utilization).
        wait(
            "the HPA measuring 1 replica",
            Duration::from_secs(600),
            Duration::from_secs(1),
            || async {
                let h = hpas.get("burn").await.ok()?;
                let st = h.status?;
                let measured = st.current_metrics?.iter().any(|m| {
                    m.resource
                        .as_ref()
                        .is_some_and(|r| r.current.average_utilization.is_some())
                });
                (measured && st.current_replicas == Some(1) && replicas(deps).await == Some(1))
                    .then_some(())
            },
        )
        .await?;
        let patch = |s: &str| Patch::Merge(json!({"data": {"state": s}}));
        cms.patch("load", &PatchParams::default(), &patch("on"))
            .await?;
        let scaled_at = wait(
            "a scale-up",
            Duration::from_secs(300),
            Duration::from_millis(200),
            || async { (replicas(deps).await? > 1).then(Timestamp::now) },
        )
        .await?;
        let started = load_times(pods, "on")
            .await
            .into_iter()
            .min()
            .context("no pod logged load on")?;
        let n = replicas(deps).await.unwrap_or(0);
        let u = secs(started, scaled_at);
        println!("round {round}: load start -> scale-up to {n}: {u:.1} s");
        up.push(u);
        wait(
            "4 replicas",
            Duration::from_secs(300),
            Duration::from_millis(500),
            || async { (replicas(deps).await? == 4).then_some(()) },
        )
        .await?;
        // All four burning before the stop.
        wait(
            "four pods burning",
            Duration::from_secs(120),
            Duration::from_secs(1),
            || async { (load_times(pods, "on").await.len() == 4).then_some(()) },
        )
        .await?;
        cms.patch("load", &PatchParams::default(), &patch("off"))
            .await?;
        let down_at = wait(
            "the scale-down",
            Duration::from_secs(900),
            Duration::from_millis(500),
            || async { (replicas(deps).await? == 1).then(Timestamp::now) },
        )
        .await?;
        // The stop time: the last pod to stop burning.
        let stopped = load_times(pods, "off").await.into_iter().max();
        let stopped = match stopped {
            Some(t) => t,
            None => anyhow::bail!("no pod logged load off"),
        };
        let d = secs(stopped, down_at);
        println!("round {round}: load stop -> scale-down to 1: {d:.1} s");
        down.push(d);
    }
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!();
    println!("| HPA reaction (defaults: resolution 15 s, sync 15 s, stabilization 300 s) | ferrokube | Kubernetes (anchor) |");
    println!("|---|---|---|");
    println!(
        "| load start -> first scale-up | {:.1} s (mean of {}) | 15-30 s + the metrics window |",
        avg(&up),
        up.len()
    );
    println!(
        "| load stop -> scale-down to 1 | {:.1} s (mean of {}) | 300 s window + 15-30 s |",
        avg(&down),
        down.len()
    );
    Ok(())
}
