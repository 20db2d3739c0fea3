//! Resource metrics (issue 19): the cost of `ferrokube server`'s built-in
//! collector at many hollow nodes. Anchors: metrics-server needs about 1m
//! CPU and 3 MB per node; the goal is at most 1 ms of CPU per node per
//! scrape.
//!
//! An API server and the hollow nodes run in a child process (this binary's
//! hidden `metrics-hollow` subcommand), so the collector's process holds
//! nothing else. Each hollow node is the node agent's own HTTPS server (its
//! self-signed serving certificate, client certificates checked against the
//! cluster CA, the real `/metrics/resource` renderer) over a fake runtime
//! with `--pods` running pods whose CPU counters and working sets move every
//! second, and a Node object pointing at it (InternalIP 127.0.0.1,
//! `daemonEndpoints.kubeletEndpoint.Port`). The parent lists the Nodes,
//! takes the targets from them as the server does, and drives the
//! collector's scrape rounds with the API server's kubelet client
//! certificate, reading its own CPU time (getrusage) around each round and
//! its RSS before and after.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrokube_kubelet::cri::fake::FakeRuntime;
use ferrokube_kubelet::cri::{api, labels, Runtime};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeStatus,
};
use kube::api::{Api, ListParams, PostParams};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Hollow nodes (kubelets scraped).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Running pods (one container each) per hollow node.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Scrape rounds measured (after two unmeasured ones).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Seconds between rounds (the collector's resolution in the run).
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
}

/// The hidden subcommand serving the hollow kubelets.
#[derive(clap::Args)]
pub(crate) struct HollowOptions {
    #[arg(long)]
    nodes: usize,
    #[arg(long)]
    pods: usize,
}

/// The image the hollow containers claim to run.
const IMAGE: &str = "registry.k8s.io/pause:3.10";

/// Runs `pods` pods of one container each on a fake runtime; returns the
/// container IDs.
async fn populate(rt: &FakeRuntime, node: &str, pods: usize) -> anyhow::Result<Vec<String>> {
    rt.add_image(IMAGE);
    let mut ids = Vec::with_capacity(pods);
    for p in 0..pods {
        let (ns, name, uid) = (
            format!("bench-{}", p % 10),
            format!("{node}-pod-{p}"),
            format!("{node}-uid-{p}"),
        );
        let pod_labels = std::collections::HashMap::from([
            (labels::POD_NAME.to_string(), name.clone()),
            (labels::POD_NAMESPACE.to_string(), ns.clone()),
            (labels::POD_UID.to_string(), uid.clone()),
        ]);
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name,
                uid,
                namespace: ns,
                attempt: 0,
            }),
            labels: pod_labels.clone(),
            ..Default::default()
        };
        let sandbox = rt.run_pod_sandbox(config.clone()).await?;
        let mut l = pod_labels;
        l.insert(labels::CONTAINER_NAME.into(), "app".into());
        let id = rt
            .create_container(
                &sandbox,
                api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: IMAGE.into(),
                        ..Default::default()
                    }),
                    labels: l,
                    ..Default::default()
                },
                config,
            )
            .await?;
        rt.start_container(&id).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// `ferrokube-bench metrics-hollow`: an API server and the hollow kubelets
/// with their Nodes; prints `kubeconfig PATH` and `tls DIR` (the API
/// server's certificates), then `ready`, and serves until its stdin closes.
pub(crate) async fn hollow(o: HollowOptions) -> anyhow::Result<()> {
    let api = ferrokube_client::testing::TestApi::start().await?;
    let tls = api.dir.path().join("tls");
    let ca = std::fs::read_to_string(tls.join("ca.crt")).context("reading the cluster CA")?;
    let node_api: Api<Node> = Api::all(api.client().await?);
    let dir = tempfile::tempdir()?;
    let cancel = CancellationToken::new();
    let mut nodes = Vec::with_capacity(o.nodes);
    for i in 0..o.nodes {
        let name = format!("hollow-{i}");
        let rt = Arc::new(FakeRuntime::new());
        let ids = populate(&rt, &name, o.pods).await?;
        let addr = ferrokube_kubelet::serve_hollow_kubelet(
            &name,
            rt.clone(),
            &ca,
            dir.path().join(&name),
            cancel.clone(),
        )
        .await?;
        node_api
            .create(&PostParams::default(), &node_at(&name, addr.port()))
            .await
            .with_context(|| format!("creating node {name}"))?;
        nodes.push((rt, ids));
    }
    println!("kubeconfig {}", api.kubeconfig.display());
    println!("tls {}", tls.display());
    println!("ready");
    // Counters advance every second: 1-50 ms of CPU, working sets move.
    let ticker = tokio::spawn(async move {
        let mut tick = 0u64;
        loop {
            tick += 1;
            for (n, (rt, ids)) in nodes.iter().enumerate() {
                for (j, id) in ids.iter().enumerate() {
                    let k = (n * 131 + j * 17) as u64;
                    let cpu = tick * (1 + k % 50) * 1_000_000;
                    let ws = (8 + k % 120) * (1 << 20) + (tick % 7) * 4096;
                    rt.set_container_stats(id, cpu, ws);
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // Until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await;
    ticker.abort();
    cancel.cancel();
    Ok(())
}

/// A Node whose kubelet is the hollow one at 127.0.0.1:`port`.
fn node_at(name: &str, port: u16) -> Node {
    let mut node = crate::scheduler::hollow_node(0, 1);
    node.metadata.name = Some(name.to_string());
    if let Some(l) = node.metadata.labels.as_mut() {
        l.insert("kubernetes.io/hostname".into(), name.to_string());
    }
    let status = node.status.get_or_insert_with(NodeStatus::default);
    status.addresses = Some(vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: "127.0.0.1".into(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: name.to_string(),
        },
    ]);
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: i32::from(port),
        }),
    });
    node
}

/// This process's user and system CPU time.
#[expect(unsafe_code, reason = "getrusage(2): std has no process CPU time")]
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain old data: all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// This process's resident set (bytes).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The hollow kubelets: a child process and the Node objects for them.
struct Hollow {
    child: std::process::Child,
    /// Each Node as the API server returned it.
    nodes: Vec<serde_json::Value>,
    /// The API server's kubelet client certificate and key (PEM).
    cert: String,
    key: String,
}

impl Drop for Hollow {
    fn drop(&mut self) {
        // Closing its stdin ends it; killed (by pid) if it lingers.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the API server and hollow kubelets in a child process and reads
/// their Nodes.
async fn start_hollow(o: &Options) -> anyhow::Result<Hollow> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["metrics-hollow", "--nodes"])
        .arg(o.nodes.to_string())
        .arg("--pods")
        .arg(o.pods.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the hollow kubelets")?;
    let out = child.stdout.take().context("the hollow kubelets' stdout")?;
    let mut hollow = Hollow {
        child,
        nodes: Vec::new(),
        cert: String::new(),
        key: String::new(),
    };
    let said = tokio::task::spawn_blocking(move || {
        let mut said = BTreeMap::new();
        for line in BufReader::new(out).lines() {
            let line = line?;
            if line == "ready" {
                return anyhow::Ok(said);
            }
            let (k, v) = line.split_once(' ').context("a hollow kubelets' line")?;
            said.insert(k.to_string(), PathBuf::from(v));
        }
        anyhow::bail!("the hollow kubelets ended before they were ready")
    })
    .await??;
    let (Some(kubeconfig), Some(tls)) = (said.get("kubeconfig"), said.get("tls")) else {
        anyhow::bail!("the hollow kubelets did not say where their API server is");
    };
    hollow.cert = std::fs::read_to_string(tls.join("kubelet-client.crt"))?;
    hollow.key = std::fs::read_to_string(tls.join("kubelet-client.key"))?;
    let node_api: Api<Node> = Api::all(crate::apiserver::client(kubeconfig).await?);
    for n in node_api.list(&ListParams::default()).await? {
        hollow.nodes.push(serde_json::to_value(n)?);
    }
    anyhow::ensure!(
        hollow.nodes.len() == o.nodes,
        "{} Nodes, not {}",
        hollow.nodes.len(),
        o.nodes
    );
    Ok(hollow)
}

/// `ferrokube-bench metrics`.
pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let hollow = start_hollow(&o).await?;
    println!(
        "{} hollow nodes, {} pods each ({} pods); {} rounds measured, {} s apart",
        hollow.nodes.len(),
        o.pods,
        hollow.nodes.len() * o.pods,
        o.rounds,
        o.interval
    );
    collector_cost(&o, &hollow).await
}

/// The median of some durations.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Drives the collector over the hollow nodes and prints its cost.
async fn collector_cost(o: &Options, hollow: &Hollow) -> anyhow::Result<()> {
    use ferrokube_metrics::{node_target, Collector, Options as CollectorOptions, StaticNodes};
    let targets: Vec<_> = hollow.nodes.iter().filter_map(node_target).collect();
    anyhow::ensure!(
        targets.len() == hollow.nodes.len(),
        "{} of {} Nodes give a kubelet address",
        targets.len(),
        hollow.nodes.len()
    );
    let n = targets.len();
    let interval = Duration::from_secs_f64(o.interval.max(0.1));
    let rss_before = rss_bytes();
    let collector = Collector::new(
        Arc::new(StaticNodes(targets)),
        &hollow.cert,
        &hollow.key,
        CollectorOptions::with_resolution(interval),
    )?;
    // Two rounds unmeasured: connections made, then the first rates.
    for _ in 0..2 {
        let r = collector.scrape_round().await;
        anyhow::ensure!(r.failed == 0, "{} of {} scrapes failed", r.failed, r.nodes);
        tokio::time::sleep(interval).await;
    }
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        let before = cpu_time();
        let r = collector.scrape_round().await;
        cpu.push(cpu_time().saturating_sub(before));
        wall.push(r.elapsed);
        anyhow::ensure!(r.failed == 0, "{} of {} scrapes failed", r.failed, r.nodes);
        anyhow::ensure!(
            r.containers == n * o.pods,
            "{} container points, not {}",
            r.containers,
            n * o.pods
        );
        tokio::time::sleep(interval).await;
    }
    let snapshot = collector.snapshot();
    anyhow::ensure!(
        snapshot.nodes.len() == n && snapshot.pods.len() == n * o.pods,
        "the snapshot holds {} nodes and {} pods",
        snapshot.nodes.len(),
        snapshot.pods.len()
    );
    let rss_after = rss_bytes();
    let held = collector.stats();
    let per_node = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
    let (cpu_med, cpu_min, cpu_max) = (
        median(cpu.clone()),
        cpu.iter().min().copied().unwrap_or_default(),
        cpu.iter().max().copied().unwrap_or_default(),
    );
    let mib = |b: f64| b / (1u64 << 20) as f64;
    let rss_delta = rss_after.saturating_sub(rss_before) as f64;
    println!();
    println!("| figure | ferrokube collector | metrics-server (anchor) | goal |");
    println!("|---|---:|---:|---:|");
    println!(
        "| CPU per node per scrape, median (min-max) of {} rounds | {:.3} ms ({:.3}-{:.3}) | | <= 1 ms |",
        o.rounds,
        per_node(cpu_med),
        per_node(cpu_min),
        per_node(cpu_max)
    );
    println!(
        "| CPU per node at the default 15 s resolution | {:.3} m | about 1 m | |",
        per_node(cpu_med) / 15.0
    );
    println!(
        "| round wall time, median ({} nodes, {} pods) | {:.1} ms | | |",
        n,
        n * o.pods,
        median(wall).as_secs_f64() * 1e3
    );
    println!(
        "| memory per node: RSS growth / own estimate | {:.3} / {:.3} MiB | about 3 MB | |",
        mib(rss_delta) / n as f64,
        mib(held.approx_bytes as f64) / n as f64
    );
    println!(
        "| memory in all: RSS growth / own estimate ({} points) | {:.1} / {:.1} MiB | | |",
        held.points,
        mib(rss_delta),
        mib(held.approx_bytes as f64)
    );
    Ok(())
}
