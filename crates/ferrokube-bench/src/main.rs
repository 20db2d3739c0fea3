//! `ferrokube-bench`: benchmarks that print tables of figures, each comparing
//! ferrokube with the peer its issue names, measured in the same run.
//!
//! ```text
//! cargo run --release -p ferrokube-bench -- store
//! ```
//!
//! Those that start a `ferrokube server` (`apiserver`, `crd`, `webhook`,
//! ...) take the release `ferrokube` beside their own binary:
//!
//! ```text
//! cargo build --release -p ferrokube -p ferrokube-bench
//! target/release/ferrokube-bench crd      # custom resources against ConfigMaps
//! target/release/ferrokube-bench webhook  # a validating webhook's added latency
//! target/release/ferrokube-bench etcd-failover  # write pause at an etcd leader's loss
//! target/release/ferrokube-bench node-loss      # a node's death to its pod elsewhere (lab)
//! target/release/ferrokube-bench hpa            # HPA reaction time (root, node)
//! target/release/ferrokube-bench dashboard      # the dashboard at 10,000 pods (chromium)
//! ```

mod apiserver;
mod authz;
mod controllers;
mod crd;
mod daemonset;
mod dashboard;
mod engines;
mod failover;
mod gc;
mod hollow;
mod hpa;
mod job;
mod kubelet;
mod metrics;
mod network;
mod podnet;
mod scheduler;
mod stats;
mod store;
mod webhook;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrokube-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The datastore: embedded backend, etcd backend and a raw etcd client.
    Store(store::Options),
    /// The embedded store's engine against redb, both with group commit.
    Engines(engines::Options),
    /// The API server, driven by kube-rs.
    Apiserver(apiserver::Options),
    /// Custom resources against ConfigMaps: create, get and list.
    Crd(crd::Options),
    /// A validating admission webhook's added latency per create.
    Webhook(webhook::Options),
    /// The workload controllers: a big Deployment, many rolling at once.
    Controllers(controllers::Options),
    /// A DaemonSet rolled over many hollow nodes.
    Daemonset(daemonset::Options),
    /// A Job of many completions on hollow nodes whose pods end at once.
    Job(job::Options),
    /// Garbage collection and namespace deletion of many objects.
    Gc(gc::Options),
    /// The service proxy: programming latency, cluster IP against direct.
    Proxy(network::ProxyOptions),
    /// The cluster DNS: queries/s and latency.
    Dns(network::DnsOptions),
    /// (internal) the receiving end of the proxy's traffic measurement.
    #[command(hide = true)]
    TcpSink(network::TcpOptions),
    /// (internal) the sending end of the proxy's traffic measurement.
    #[command(hide = true)]
    TcpLoad(network::TcpOptions),
    /// Authorization on the hot path: SchedulingBasic and API creates with
    /// AlwaysAllow and with Node,RBAC, clients outside system:masters.
    Authz(authz::Options),
    /// The scheduler, in the manner of scheduler_perf (hollow nodes, real API server).
    Scheduler(scheduler::Options),
    /// The longest pause in acknowledged API writes when the etcd leader
    /// under the server is killed (3 members).
    EtcdFailover(failover::EtcdOptions),
    /// On the multi-node lab: from a node agent's death (and its link cut)
    /// to its pod running on another node (tolerationSeconds 10).
    NodeLoss(failover::NodeLossOptions),
    /// The node agent: pod start-up against containerd's floor, idle RSS and CPU.
    Kubelet(kubelet::Options),
    /// The pod network: pod-to-pod throughput and connection rate across two lab
    /// nodes against within one, with host-gw and with vxlan.
    Podnet(podnet::Options),
    /// The built-in resource metrics collector's CPU and memory per node at
    /// hollow nodes (100 nodes, 10,000 pods by default).
    Metrics(metrics::Options),
    /// (internal) the hollow kubelets the metrics benchmark scrapes.
    #[command(hide = true)]
    MetricsHollow(metrics::HollowOptions),
    /// The HorizontalPodAutoscaler's reaction time at default settings:
    /// load start to the first scale-up, load stop to the scale-down
    /// (root, one node: run alone).
    Hpa(hpa::Options),
    /// The dashboard in headless chromium at 10,000 pods (hollow node): time
    /// to first rows and complete count, update latency, memory, idle requests.
    Dashboard(dashboard::Options),
    /// (internal) the node agent alone, for the kubelet benchmark.
    #[command(hide = true)]
    KubeletNode(kubelet::NodeOptions),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.bench {
        Bench::Store(opts) => rt.block_on(store::run(opts)),
        Bench::Engines(opts) => rt.block_on(engines::run(opts)),
        Bench::Apiserver(opts) => rt.block_on(apiserver::run(opts)),
        Bench::Crd(opts) => rt.block_on(crd::run(opts)),
        Bench::Webhook(opts) => rt.block_on(webhook::run(opts)),
        Bench::Controllers(opts) => rt.block_on(controllers::run(opts)),
        Bench::Daemonset(opts) => rt.block_on(daemonset::run(opts)),
        Bench::Job(opts) => rt.block_on(job::run(opts)),
        Bench::Gc(opts) => rt.block_on(gc::run(opts)),
        Bench::Proxy(opts) => rt.block_on(network::proxy(opts)),
        Bench::Dns(opts) => rt.block_on(network::dns(opts)),
        Bench::TcpSink(opts) => rt.block_on(network::tcp_sink(opts)),
        Bench::TcpLoad(opts) => rt.block_on(network::tcp_load(opts)),
        Bench::Scheduler(opts) => rt.block_on(scheduler::run(opts)),
        Bench::Authz(opts) => rt.block_on(authz::run(opts)),
        Bench::EtcdFailover(opts) => rt.block_on(failover::etcd(opts)),
        Bench::NodeLoss(opts) => failover::node_loss(opts),
        Bench::Kubelet(opts) => rt.block_on(kubelet::run(opts)),
        Bench::KubeletNode(opts) => rt.block_on(kubelet::node(opts)),
        Bench::Podnet(opts) => podnet::run(opts),
        Bench::Metrics(opts) => rt.block_on(metrics::run(opts)),
        Bench::Hpa(opts) => rt.block_on(hpa::run(opts)),
        Bench::Dashboard(opts) => rt.block_on(dashboard::run(opts)),
        Bench::MetricsHollow(opts) => rt.block_on(metrics::hollow(opts)),
    }
}
