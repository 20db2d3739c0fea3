//! The API server benchmark: a release `ferrokube server` on the embedded
//! store, driven by kube-rs (a client nobody here wrote) over HTTPS.
//! Requests/s and p50/p99 latency for create, get and update of pods at 1,
//! 16 and 64 concurrent clients; a list of 10,000 pods; 1,000 concurrent
//! watchers receiving a stream of changes; the server's RSS idle and with
//! 10,000 pods stored.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use ferrokube_client::testing::wait::{poll, EVERY};

use crate::stats::{ms, Samples};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Requests per client for each create/get/update measurement.
    #[arg(long, default_value_t = 200)]
    per_client: usize,
    /// Pods stored for the list and RSS measurements.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent watchers.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Changes the watchers receive.
    #[arg(long, default_value_t = 200)]
    changes: usize,
}

pub(crate) struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server process's user and system CPU time so far.
    pub(crate) fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return Duration::ZERO;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime (fields 14 and 15), in USER_HZ (100 on Linux).
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        Duration::from_millis(ticks * 10)
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }
}

/// Starts a release `ferrokube server` on a free loopback port, with the
/// API server alone (no node, DNS, scheduler or controllers) plus `extra`
/// flags.
pub(crate) fn start_server(extra: &[&str]) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("ferrokube");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p ferrokube -p ferrokube-bench)",
        bin.display()
    );
    let dir = tempfile::Builder::new()
        .prefix("ferrokube-apibench")
        .tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&bin)
        .args([
            "server",
            "--bind-address",
            "127.0.0.1",
            "--disable-agent",
            "--disable",
            "coredns",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--https-listen-port", &port.to_string()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let server = Server {
        child,
        _dir: dir,
        kubeconfig,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.kubeconfig.exists() {
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

pub(crate) async fn client(kubeconfig: &PathBuf) -> anyhow::Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    }))
    .expect("a valid pod")
}

#[derive(Clone, Copy)]
enum Op {
    Create,
    Get,
    Update,
}

/// Creates of pods: `per_client` from each of `clients` tasks (names
/// start with `tag`).
pub(crate) async fn measure_creates(
    api: &Api<Pod>,
    clients: usize,
    per_client: usize,
    tag: &str,
) -> anyhow::Result<(f64, Samples)> {
    measure(api, Op::Create, clients, per_client, tag).await
}

/// Runs `per_client` operations from each of `clients` tasks.
async fn measure(
    api: &Api<Pod>,
    op: Op,
    clients: usize,
    per_client: usize,
    tag: &str,
) -> anyhow::Result<(f64, Samples)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api = api.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(per_client);
            for i in 0..per_client {
                let name = format!("{tag}-{c}-{i}");
                let t = Instant::now();
                match op {
                    Op::Create => {
                        api.create(&PostParams::default(), &pod(&name)).await?;
                    }
                    Op::Get => {
                        api.get(&name).await?;
                    }
                    Op::Update => {
                        let mut p = api.get(&name).await?;
                        p.metadata
                            .labels
                            .get_or_insert_with(Default::default)
                            .insert("round".into(), i.to_string());
                        api.replace(&name, &PostParams::default(), &p).await?;
                    }
                }
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all.len() as f64 / start.elapsed().as_secs_f64(), all))
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let rss_control_plane = control_plane_idle_rss().await?;
    // The API server alone: nothing else reacts to the pods it is given.
    let server = start_server(&["--disable-scheduler", "--disable-controller-manager"])?;
    let client = client(&server.kubeconfig).await.context("connecting")?;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_ready(&api).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = server.rss_mib();
    let lists = measure_lists(&client, opts.pods).await?;
    let rss_full = server.rss_mib();

    println!();
    println!("API server benchmark (cargo build --release -p ferrokube -p ferrokube-bench && target/release/ferrokube-bench apiserver)");
    println!("ferrokube server on the embedded store (--disable-scheduler --disable-controller-manager: the API server alone), kube-rs client over HTTPS");
    println!();
    let count = lists.count;
    lists.print();
    println!("server RSS: idle {rss_idle:.1} MiB, with {count} pods stored {rss_full:.1} MiB");
    println!("whole control plane (API server, controllers, scheduler) idle RSS: {rss_control_plane:.1} MiB");
    println!();
    request_table(&api, opts.per_client).await?;
    println!();
    watch_delivery(&api, opts.watchers, opts.changes).await
}

/// RSS of the whole control plane (controllers and scheduler too), idle.
async fn control_plane_idle_rss() -> anyhow::Result<f64> {
    let server = start_server(&[])?;
    let client = client(&server.kubeconfig).await.context("connecting")?;
    let api: Api<Pod> = Api::namespaced(client, "default");
    wait_ready(&api).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(server.rss_mib())
}

/// Waits (30 s at most) until the server answers a list of pods.
async fn wait_ready(api: &Api<Pod>) -> anyhow::Result<()> {
    poll(Duration::from_secs(30), EVERY, || async {
        api.list(&ListParams::default().limit(1)).await.ok()
    })
    .await
    .context("the server did not become ready")?;
    Ok(())
}

/// How long lists of one namespace's pods take.
struct ListFigures {
    /// Pods in the namespace.
    count: usize,
    /// Pods created to fill it, and how long that took (64 clients).
    filled: usize,
    fill_secs: f64,
    /// Lists decoded by kube-rs.
    decoded: Samples,
    /// Lists read as raw JSON, and the size of the last one.
    raw: Samples,
    raw_bytes: usize,
}

impl ListFigures {
    fn print(mut self) {
        println!(
            "list of {} pods: median {} ms, p99 {} ms as raw JSON ({:.1} MB); median {} ms decoded by kube-rs",
            self.count,
            ms(self.raw.quantile(0.5)),
            ms(self.raw.quantile(0.99)),
            self.raw_bytes as f64 / 1e6,
            ms(self.decoded.quantile(0.5))
        );
        println!(
            "({} pods created by 64 clients in {:.1} s)",
            self.filled, self.fill_secs
        );
    }
}

/// Fills a namespace with `pods` pods, then lists it ten times decoded and
/// ten times as raw JSON.
async fn measure_lists(client: &kube::Client, pods: usize) -> anyhow::Result<ListFigures> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "listed"}}))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let listed: Api<Pod> = Api::namespaced(client.clone(), "listed");
    let per = pods.div_ceil(64);
    let fill_start = Instant::now();
    measure(&listed, Op::Create, 64, per, "fill").await?;
    let fill_secs = fill_start.elapsed().as_secs_f64();
    let mut decoded = Samples::default();
    let mut count = 0;
    for _ in 0..10 {
        let t = Instant::now();
        count = listed.list(&ListParams::default()).await?.items.len();
        decoded.push(t.elapsed());
    }
    let mut raw = Samples::default();
    let mut raw_bytes = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/listed/pods").body(Vec::new())?;
        raw_bytes = client.request_text(req).await?.len();
        raw.push(t.elapsed());
    }
    Ok(ListFigures {
        count,
        filled: per * 64,
        fill_secs,
        decoded,
        raw,
        raw_bytes,
    })
}

/// Prints the table of create, get and update rates and latencies at 1, 16
/// and 64 clients.
async fn request_table(api: &Api<Pod>, per_client: usize) -> anyhow::Result<()> {
    println!("| operation | clients | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for clients in [1usize, 16, 64] {
        let tag = format!("c{clients}");
        for (name, op) in [
            ("create", Op::Create),
            ("get", Op::Get),
            ("update (PUT)", Op::Update),
        ] {
            let (rate, mut s) = measure(api, op, clients, per_client, &tag).await?;
            println!(
                "| {name} pod | {clients} | {rate:.0} | {} | {} |",
                ms(s.quantile(0.5)),
                ms(s.quantile(0.99))
            );
        }
    }
    Ok(())
}

/// The watchers' tasks, and the name of each pod they hear of with when.
type Watchers = (
    Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>,
);

/// Starts `watchers` watches of the pods labelled `bench=watch`, from
/// resource version `rv`.
fn start_watchers(api: &Api<Pod>, watchers: usize, rv: &str) -> Watchers {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut handles = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let rv = rv.to_string();
        let tx = tx.clone();
        handles.push(tokio::spawn(async move {
            let stream = api
                .watch(
                    &WatchParams::default().labels("bench=watch").timeout(290),
                    &rv,
                )
                .await?;
            let mut stream = stream.boxed();
            while let Some(ev) = stream.try_next().await? {
                if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev {
                    let name = p.metadata.name.unwrap_or_default();
                    if tx.send((name, Instant::now())).is_err() {
                        break;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    (handles, rx)
}

/// Creates `changes` labelled pods, 10 ms apart, noting when each was sent.
fn start_writer(
    api: &Api<Pod>,
    changes: usize,
    started: Arc<parking_lot::Mutex<std::collections::HashMap<String, Instant>>>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let api = api.clone();
    tokio::spawn(async move {
        for i in 0..changes {
            let name = format!("watched-{i}");
            let mut p = pod(&name);
            p.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("bench".into(), "watch".into());
            started.lock().insert(name, Instant::now());
            api.create(&PostParams::default(), &p).await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::Ok(())
    })
}

/// `watchers` watches and a stream of `changes` pods: how many events
/// arrive, how fast, and how long after each create.
async fn watch_delivery(api: &Api<Pod>, watchers: usize, changes: usize) -> anyhow::Result<()> {
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let (handles, mut rx) = start_watchers(api, watchers, &rv);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started: Arc<parking_lot::Mutex<std::collections::HashMap<String, Instant>>> =
        Arc::default();
    let writer = start_writer(api, changes, started.clone());
    let expected = watchers * changes;
    let mut delivery = Samples::with_capacity(expected);
    let t0 = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivery.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(s) = started.lock().get(&name) {
                    delivery.push(at.saturating_duration_since(*s));
                }
            }
            _ => break,
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    writer.await??;
    for h in handles {
        h.abort();
    }
    println!(
        "{watchers} watchers, {changes} changes: {} of {expected} events delivered, {:.0} events/s, delivery p50 {} ms, p99 {} ms",
        delivery.len(),
        delivery.len() as f64 / elapsed,
        ms(delivery.quantile(0.5)),
        ms(delivery.quantile(0.99))
    );
    Ok(())
}
