//! Service networking benchmarks (issue 7): how fast the proxy programs a
//! change into nftables with 1,000 and 10,000 Services of 10 endpoints;
//! connections and bytes through a cluster IP against straight to the pod
//! in the same run; and cluster DNS queries per second with their latency.
//!
//! The proxy runs against a release `ferrokube server` and programs a
//! network namespace this benchmark makes (removed after); traffic stays
//! inside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrokube_proxy::testing::Lab;
use ferrokube_proxy::{Nft, ProxyConfig, SyncReport};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::apiserver::{client, start_server};
use crate::stats::{ms, Samples};

#[derive(clap::Args)]
pub(crate) struct ProxyOptions {
    /// Service counts to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000, 10_000])]
    services: Vec<usize>,
    /// Endpoints per Service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Endpoint changes timed at each size.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Seconds per traffic measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds of the traffic comparison (the median is printed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(clap::Args)]
pub(crate) struct DnsOptions {
    /// Services in the zone.
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// `tcp-sink` / `tcp-load`: the two ends of the traffic measurement, run
/// by the benchmark inside the lab's pods.
#[derive(clap::Args)]
pub(crate) struct TcpOptions {
    /// sink: listen on this port; load: connect to this address.
    #[arg(long)]
    addr: String,
    /// load: `conn` (connect, one byte each way, close) or `bulk`.
    #[arg(long, default_value = "conn")]
    mode: String,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// Serves the traffic measurement: each connection sends one byte; `c`
/// gets one byte back, `b` is drained to the end.
pub(crate) async fn tcp_sink(o: TcpOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&o.addr).await?;
    println!("ready");
    loop {
        let (mut s, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            if s.read_exact(&mut first).await.is_err() {
                return;
            }
            if first[0] == b'c' {
                // The client closes first, so the TIME_WAIT state stays on
                // its side, where it picks its ports around it.
                let _ = s.write_all(b"k").await;
                let mut rest = [0u8; 1];
                let _ = s.read(&mut rest).await;
            } else {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        });
    }
}

/// Drives load at a sink and prints one number: connections/s (`conn`)
/// or MiB/s (`bulk`).
pub(crate) async fn tcp_load(o: TcpOptions) -> anyhow::Result<()> {
    let addr: SocketAddr = o.addr.parse().context("--addr")?;
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let mode = o.mode.clone();
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            if mode == "bulk" {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(b"b").await?;
                let buf = vec![7u8; 256 * 1024];
                while Instant::now() < deadline {
                    s.write_all(&buf).await?;
                    count += buf.len() as u64;
                }
            } else {
                while Instant::now() < deadline {
                    let mut s = tokio::net::TcpStream::connect(addr).await?;
                    s.write_all(b"c").await?;
                    let mut one = [0u8; 1];
                    s.read_exact(&mut one).await?;
                    count += 1;
                }
            }
            anyhow::Ok(count)
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    if o.mode == "bulk" {
        println!("{:.1}", total as f64 / secs / (1024.0 * 1024.0));
    } else {
        println!("{:.0}", total as f64 / secs);
    }
    Ok(())
}

fn slice_body(svc: &str, base: usize, endpoints: usize, generation: usize) -> serde_json::Value {
    let eps: Vec<_> = (0..endpoints)
        .map(|j| {
            let n = base * endpoints + j + generation;
            json!({
                "addresses": [format!("10.{}.{}.{}", 100 + (n >> 16) % 100, (n >> 8) & 255, n & 255)],
                "conditions": {"ready": true}
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-1"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

/// Creates Services `svc-<from>..svc-<to>` with `endpoints` each.
async fn create_services(
    client: &kube::Client,
    from: usize,
    to: usize,
    endpoints: usize,
) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(from..to)
        .map(|i| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                let name = format!("svc-{i}");
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
                }))?;
                services.create(&PostParams::default(), &svc).await?;
                let slice: EndpointSlice =
                    serde_json::from_value(slice_body(&name, i, endpoints, 0))?;
                slices.create(&PostParams::default(), &slice).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// Waits for a sync report that programs at least `ports` Service ports.
async fn synced_with(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SyncReport>,
    ports: usize,
) -> anyhow::Result<SyncReport> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(left, rx.recv())
            .await
            .context("the proxy did not catch up")?
            .context("the proxy stopped")?;
        if r.service_ports >= ports {
            return Ok(r);
        }
    }
}

/// A proxy running in this process against the benchmark's server,
/// programming the lab's node namespace.
struct RunningProxy {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Its sync reports.
    rx: tokio::sync::mpsc::UnboundedReceiver<SyncReport>,
}

impl RunningProxy {
    fn start(kube: kube::Client, nft: &[String]) -> RunningProxy {
        let cancel = CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = ProxyConfig {
            node_name: "bench".into(),
            table: "ferrokube-bench".into(),
            nft: Nft {
                command: nft.to_vec(),
            },
            set_sysctls: false,
            ..Default::default()
        };
        let task = tokio::spawn(ferrokube_proxy::run(kube, config, cancel.clone(), Some(tx)));
        RunningProxy { cancel, task, rx }
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

pub(crate) async fn proxy(o: ProxyOptions) -> anyhow::Result<()> {
    let server = start_server(&["--disable-scheduler", "--disable-controller-manager"])?;
    let kube = client(&server.kubeconfig).await?;
    let mut lab = Lab::new("bench", 240, 2);
    let nft = lab.nft();
    let mut proxy = RunningProxy::start(kube.clone(), &nft);

    println!("Network programming latency: an EndpointSlice change acknowledged by the API server to the nftables transaction committed (cargo run --release -p ferrokube-bench -- proxy)");
    println!("| services | endpoints each | whole table at proxy start (ms) | changes | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let mut have = 0;
    for (round, &n) in o.services.iter().enumerate() {
        if n > have {
            create_services(&kube, have, n, o.endpoints).await?;
            have = n;
        }
        // `kubernetes` is there too: n + 1 ports.
        synced_with(&mut proxy.rx, n + 1).await?;
        // A restart programs the whole table in one transaction.
        proxy.stop().await;
        proxy = RunningProxy::start(kube.clone(), &nft);
        let full = synced_with(&mut proxy.rx, n + 1).await?;
        anyhow::ensure!(full.full, "the first sync after a start is a full one");
        let mut samples = change_latencies(&kube, &mut proxy.rx, &o, n, round).await?;
        let max = samples.quantile(1.0);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            o.endpoints,
            ms(full.took),
            o.changes,
            ms(samples.quantile(0.5)),
            ms(samples.quantile(0.99)),
            ms(max)
        );
    }

    let (cluster_ip, pod_ip) = create_sink(&kube, &lab).await?;
    synced_with(&mut proxy.rx, have + 2).await?;
    traffic_table(&mut lab, &o, &cluster_ip, &pod_ip)?;
    proxy.stop().await;
    // The lab goes with its namespace (and the table in it).
    drop(lab);
    drop(server);
    Ok(())
}

/// Times `o.changes` EndpointSlice changes among the first `n` Services,
/// each from the API server's answer to the proxy's next sync.
async fn change_latencies(
    kube: &kube::Client,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SyncReport>,
    o: &ProxyOptions,
    n: usize,
    round: usize,
) -> anyhow::Result<Samples> {
    let slices: Api<EndpointSlice> = Api::namespaced(kube.clone(), "default");
    let mut samples = Samples::with_capacity(o.changes);
    let params = PatchParams::apply("bench").force();
    for c in 0..o.changes {
        let i = (c * 7919) % n;
        let name = format!("svc-{i}");
        // One endpoint out, one in (a Service changed in an earlier
        // round moves one step further).
        let body = slice_body(&name, i, o.endpoints, round + 1);
        let t = Instant::now();
        slices
            .patch(&format!("{name}-1"), &params, &Patch::Apply(&body))
            .await?;
        // The next report with a change is this one (nothing else moves).
        let r = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .context("no sync after a change")?
            .context("proxy stopped")?;
        anyhow::ensure!(!r.full, "unexpected full resync");
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// The `sink` Service, whose one endpoint is the lab's pod 0 on port 9000:
/// its cluster IP and the pod's IP.
async fn create_sink(kube: &kube::Client, lab: &Lab) -> anyhow::Result<(String, String)> {
    let services: Api<Service> = Api::namespaced(kube.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(kube.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "sink"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9000}]}
    }))?;
    let svc = services.create(&PostParams::default(), &svc).await?;
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .context("no cluster IP")?;
    let pod_ip = lab.pods[0].1.clone();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "sink-1", "labels": {"kubernetes.io/service-name": "sink"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [pod_ip], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 9000, "protocol": "TCP"}]
    }))?;
    slices.create(&PostParams::default(), &slice).await?;
    Ok((cluster_ip, pod_ip))
}

/// Traffic: pod 1 to pod 0, through the cluster IP and straight,
/// interleaved; prints the medians.
fn traffic_table(
    lab: &mut Lab,
    o: &ProxyOptions,
    cluster_ip: &str,
    pod_ip: &str,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let exe = exe.to_string_lossy().to_string();
    {
        use std::io::BufRead;
        let sink = lab.spawn_in(0, &[&exe, "tcp-sink", "--addr", "0.0.0.0:9000"]);
        let out = sink.stdout.take().context("sink output")?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "the sink did not start");
    }
    let run_load = |target: String, mode: &str| -> anyhow::Result<f64> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.pods[1].0, &exe, "tcp-load"])
            .args(["--addr", &target, "--mode", mode])
            .args(["--seconds", &o.seconds.to_string()])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "tcp-load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    println!();
    println!("Traffic from one pod to another, through the cluster IP and straight to the pod IP, interleaved; median of {} rounds of {} s, 8 connections at once", o.rounds, o.seconds);
    println!("| measure | via cluster IP | direct to pod | ratio |");
    println!("|---|---|---|---|");
    for (mode, unit) in [("conn", "connections/s"), ("bulk", "MiB/s")] {
        let (mut via, mut direct) = (Vec::new(), Vec::new());
        for r in 0..o.rounds {
            // Alternate which goes first.
            if r % 2 == 0 {
                via.push(run_load(format!("{cluster_ip}:80"), mode)?);
                direct.push(run_load(format!("{pod_ip}:9000"), mode)?);
            } else {
                direct.push(run_load(format!("{pod_ip}:9000"), mode)?);
                via.push(run_load(format!("{cluster_ip}:80"), mode)?);
            }
        }
        let (v, d) = (median(&mut via), median(&mut direct));
        println!(
            "| {unit} | {v:.0} | {d:.0} | {:.0}% |",
            if d > 0.0 { v / d * 100.0 } else { 0.0 }
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) async fn dns(o: DnsOptions) -> anyhow::Result<()> {
    use ferrokube_dns::{ServiceInfo, Zone};
    use hickory_proto::rr::RecordType;
    let mut zone = Zone::new("cluster.local");
    for i in 0..o.services {
        zone.add_service(
            &ServiceInfo {
                namespace: format!("ns-{}", i % 100),
                name: format!("svc-{i}"),
                cluster_ips: vec![std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                    10,
                    43,
                    (i >> 8) as u8,
                    i as u8,
                ))],
                ports: vec![("http".into(), "TCP".into(), 80)],
                ..Default::default()
            },
            &[],
        );
    }
    let resolver = Arc::new(ferrokube_dns::Resolver::new(zone, vec![]));
    let cancel = CancellationToken::new();
    let addr = ferrokube_dns::serve(resolver, "127.0.0.1:0".parse()?, cancel.clone()).await?;
    let services = o.services;
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..o.clients {
        tasks.push(tokio::spawn(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(addr).await?;
            let mut samples = Samples::with_capacity(4096);
            let mut i = 0usize;
            let mut buf = [0u8; 512];
            while Instant::now() < deadline {
                let n = (w * 7919 + i) % services;
                let name = format!("svc-{n}.ns-{}.svc.cluster.local", n % 100);
                let packet = ferrokube_dns::query_packet((i & 0xffff) as u16, &name, RecordType::A)
                    .context("query")?;
                let t = Instant::now();
                socket.send(&packet).await?;
                tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
                    .await
                    .context("no answer")??;
                anyhow::ensure!(buf[3] & 0x0f == 0, "error answer for {name}");
                samples.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = (all.quantile(0.5), all.quantile(0.99));
    println!("Cluster DNS: A queries for {services} Services from {} concurrent clients over UDP on loopback, {} s (cargo run --release -p ferrokube-bench -- dns)", o.clients, o.seconds);
    println!("| queries/s | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!("| {rate:.0} | {} | {} |", ms(p50), ms(p99));
    cancel.cancel();
    Ok(())
}
