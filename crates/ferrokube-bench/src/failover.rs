//! Failover benchmarks (issue 18): the pause in acknowledged writes when
//! the etcd leader under a `ferrokube server` is killed (`etcd-failover`),
//! and on the multi-node lab the time from a node agent's death to its pod
//! running on another node (`node-loss`; as root, one lab at a time).
//!
//! ```text
//! cargo build --release -p ferrokube -p ferrokube-bench
//! target/release/ferrokube-bench etcd-failover
//! target/release/ferrokube-bench node-loss
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;

use ferrokube_store::testing::EtcdCluster;

use crate::apiserver::{client, start_server};

#[derive(clap::Args)]
pub(crate) struct EtcdOptions {
    /// Leader kills, each followed by the killed member's return.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent writers (ConfigMap creates, one after another each).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Seconds of writes before each kill.
    #[arg(long, default_value_t = 5)]
    before: u64,
    /// Seconds of writes after each kill.
    #[arg(long, default_value_t = 10)]
    after: u64,
}

/// Creates ConfigMaps until `stop`, each retried until acknowledged;
/// notes when each acknowledgement came.
async fn write(api: Api<ConfigMap>, tag: String, acks: Arc<Mutex<Vec<Instant>>>, stop: Instant) {
    let mut n = 0usize;
    while Instant::now() < stop {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{tag}-{n}")}, "data": {"n": n.to_string()}
        }))
        .expect("a ConfigMap");
        loop {
            match api.create(&PostParams::default(), &cm).await {
                // A retry after an unknown outcome may find its own write.
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 => break,
                Err(_) if Instant::now() > stop + Duration::from_secs(60) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        acks.lock().push(Instant::now());
        n += 1;
    }
}

/// One round: writes, the leader killed, writes; returns the longest gap
/// between acknowledgements and the writes made.
async fn round(
    etcd: &mut EtcdCluster,
    api: &Api<ConfigMap>,
    opts: &EtcdOptions,
    r: usize,
) -> anyhow::Result<(Duration, usize)> {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Instant::now() + Duration::from_secs(opts.before + opts.after);
    let tasks: Vec<_> = (0..opts.writers)
        .map(|w| tokio::spawn(write(api.clone(), format!("r{r}w{w}"), acks.clone(), stop)))
        .collect();
    tokio::time::sleep(Duration::from_secs(opts.before)).await;
    let leader = etcd.leader().context("no etcd leader")?;
    etcd.stop_member(leader);
    for t in tasks {
        t.await?;
    }
    etcd.start_member(leader)?;
    let mut times = acks.lock().clone();
    times.sort();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    Ok((gap, times.len()))
}

pub(crate) async fn etcd(opts: EtcdOptions) -> anyhow::Result<()> {
    let mut etcd = EtcdCluster::start_cluster(3).context("starting 3 etcd members")?;
    let endpoints = etcd.endpoints().join(",");
    let server = start_server(&["--datastore-endpoint", &endpoints])?;
    let client = client(&server.kubeconfig).await?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    // Ready: a write goes through.
    let probe: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "probe"}}))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.create(&PostParams::default(), &probe).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the server does not take writes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{}; 3 members on loopback, {} writers of ConfigMap creates",
        etcd.version(),
        opts.writers
    );
    println!(
        "{:>5} {:>8} {:>22}",
        "round", "writes", "longest pause (ms)"
    );
    let mut worst = Duration::ZERO;
    for r in 0..opts.rounds {
        let (gap, writes) = round(&mut etcd, &api, &opts, r).await?;
        worst = worst.max(gap);
        println!(
            "{:>5} {:>8} {:>22.0}",
            r + 1,
            writes,
            gap.as_secs_f64() * 1000.0
        );
        // The returned member catches up before the next kill.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "longest pause over {} leader kills: {:.2} s (goal: <= 5 s)",
        opts.rounds,
        worst.as_secs_f64()
    );
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct NodeLossOptions {
    /// Node losses, each on a lab of its own.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The pods' tolerationSeconds for the unreachable taint.
    #[arg(long, default_value_t = 10)]
    toleration_seconds: u32,
}

/// A Deployment of one busybox pod tolerating unreachable/not-ready for
/// `secs` seconds.
fn deployment(secs: u32) -> String {
    let tol = |key: &str| {
        serde_json::json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                           "tolerationSeconds": secs})
    };
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
          "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1,
              "tolerations": [tol("node.kubernetes.io/unreachable"), tol("node.kubernetes.io/not-ready")],
              "containers": [{"name": "c", "image": "busybox:1.35",
                "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}}
    })
    .to_string()
}

/// The web pods: (node, running and not being deleted).
fn web_pods(lab: &ferrokube_lab::Lab) -> anyhow::Result<Vec<(String, bool)>> {
    let out = lab.kubectl(&["get", "pods", "-l", "app=web", "-o", "json"]);
    anyhow::ensure!(out.status.success(), "kubectl get pods failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            let up =
                p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null();
            (node, up)
        })
        .collect())
}

/// One loss: returns (seconds to Ready=Unknown, seconds to the pod
/// running on another node), both from the agent's death.
fn node_loss_round(opts: &NodeLossOptions) -> anyhow::Result<(f64, f64)> {
    let exe = std::env::current_exe()?.with_file_name("ferrokube");
    let mut lab = ferrokube_lab::Lab::up(ferrokube_lab::LabOptions {
        nodes: 3,
        ferrokube: exe,
        rust_log: "warn".into(),
        ..Default::default()
    })?;
    let file = lab.dir().join("web.json");
    std::fs::write(&file, deployment(opts.toleration_seconds))?;
    lab.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
    lab.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let node = web_pods(&lab)?
        .into_iter()
        .find(|p| p.1)
        .map(|p| p.0)
        .context("no running pod")?;
    let i = lab
        .nodes()
        .iter()
        .position(|n| n.name == node)
        .context("the pod's node is not a lab node")?;
    lab.kill_agent(i);
    lab.cut_link(i);
    let dead = Instant::now();
    let mut unknown = None;
    while dead.elapsed() < Duration::from_secs(300) {
        if unknown.is_none() {
            let out = lab.kubectl(&[
                "get",
                "node",
                &node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            if out.stdout == b"Unknown" {
                unknown = Some(dead.elapsed());
            }
        }
        if web_pods(&lab)?.iter().any(|p| p.1 && p.0 != node) {
            let moved = dead.elapsed();
            let unknown = unknown.unwrap_or(moved);
            return Ok((unknown.as_secs_f64(), moved.as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("the pod did not run elsewhere within 300 s")
}

pub(crate) fn node_loss(opts: NodeLossOptions) -> anyhow::Result<()> {
    println!(
        "a 3-node lab; one busybox pod (tolerationSeconds {}) whose node's agent is killed and link cut",
        opts.toleration_seconds
    );
    println!(
        "{:>5} {:>18} {:>28}",
        "round", "Ready=Unknown (s)", "running on another node (s)"
    );
    let mut worst: f64 = 0.0;
    for r in 0..opts.rounds {
        let (unknown, moved) = node_loss_round(&opts)?;
        worst = worst.max(moved);
        println!("{:>5} {:>18.1} {:>28.1}", r + 1, unknown, moved);
    }
    println!(
        "slowest: {worst:.1} s from the agent's death to its pod running elsewhere (goal: <= 60 s)"
    );
    Ok(())
}
