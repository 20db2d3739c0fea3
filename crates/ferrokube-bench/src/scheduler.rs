//! The scheduler benchmark, in the manner of Kubernetes' scheduler_perf:
//! hollow nodes (Node objects only, no kubelet) and pods created through a
//! real API server (in this process, on the embedded store) over HTTPS,
//! scheduled by ferrokube-scheduler on the in-process client `ferrokube
//! server` gives it. Prints pods/s end to end (first pod
//! created to last pod bound, median of runs) and pods/s of the placement
//! algorithm alone (the same workload on an in-memory snapshot), for
//! SchedulingBasic, required pod anti-affinity and topology spread; then
//! checks placement quality (no node over-committed, rules honoured).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    Affinity, Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodAffinityTerm,
    PodAntiAffinity, PodSpec, ResourceRequirements, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use tokio_util::sync::CancellationToken;

use ferrokube_scheduler::Cache;
use ferrokube_scheduler::PodInfo;
use ferrokube_scheduler::{Algorithm, SchedulerConfig};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Hollow nodes.
    #[arg(long, default_value_t = 5_000)]
    nodes: usize,
    /// Pods for SchedulingBasic.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Pods with required anti-affinity (one per node at most).
    #[arg(long, default_value_t = 2_000)]
    anti_affinity_pods: usize,
    /// Pods with a zone topology spread constraint.
    #[arg(long, default_value_t = 5_000)]
    spread_pods: usize,
    /// Zones the nodes are spread over.
    #[arg(long, default_value_t = 10)]
    zones: usize,
    /// Runs per workload (the median is printed).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent pod creations.
    #[arg(long, default_value_t = 128)]
    creators: usize,
    /// Binding requests in flight. kube-scheduler binds each pod in a
    /// goroutine of its own, without a cap; with 128 creators and 16 Event
    /// writers, 192 stays under the test server's 400 requests in flight.
    /// (More in flight also means bigger group commits in the store: about
    /// 580 µs of CPU per pod against 630 to 700 with 64.)
    #[arg(long, default_value_t = 192)]
    binds: usize,
    /// Only this workload (basic, anti-affinity, spread).
    #[arg(long)]
    only: Option<String>,
    /// The scheduler's client goes over HTTPS (as a scheduler in another
    /// process, or kube-scheduler in scheduler_perf, talks to its API
    /// server) instead of the in-process transport `ferrokube server`
    /// gives the scheduler it runs.
    #[arg(long)]
    scheduler_over_https: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Basic,
    AntiAffinity,
    Spread,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Basic => "SchedulingBasic",
            Workload::AntiAffinity => "SchedulingPodAntiAffinity",
            Workload::Spread => "TopologySpreading",
        }
    }
    fn flag(self) -> &'static str {
        match self {
            Workload::Basic => "basic",
            Workload::AntiAffinity => "anti-affinity",
            Workload::Spread => "spread",
        }
    }
}

/// A hollow node like scheduler_perf's: 4 cpu, 32 GiB, 110 pods, Ready.
pub(crate) fn hollow_node(i: usize, zones: usize) -> Node {
    let name = format!("node-{i}");
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), Quantity("4".into()));
    alloc.insert("memory".to_string(), Quantity("32Gi".into()));
    alloc.insert("pods".to_string(), Quantity("110".into()));
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(
                [
                    ("kubernetes.io/hostname".to_string(), name),
                    (
                        "topology.kubernetes.io/zone".to_string(),
                        format!("zone-{}", i % zones.max(1)),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(alloc.clone()),
            capacity: Some(alloc),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some([("color".to_string(), "green".to_string())].into()),
        ..Default::default()
    }
}

/// scheduler_perf's default pod: 100m cpu, 500 MiB memory.
fn bench_pod(i: usize, w: Workload) -> Pod {
    let mut req = BTreeMap::new();
    req.insert("cpu".to_string(), Quantity("100m".into()));
    req.insert("memory".to_string(), Quantity("500Mi".into()));
    let mut spec = PodSpec {
        containers: vec![Container {
            name: "pause".into(),
            image: Some("registry.k8s.io/pause:3.10".into()),
            resources: Some(ResourceRequirements {
                requests: Some(req),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    match w {
        Workload::Basic => {}
        Workload::AntiAffinity => {
            spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![
                        PodAffinityTerm {
                            label_selector: Some(selector()),
                            topology_key: "kubernetes.io/hostname".into(),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
        Workload::Spread => {
            spec.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                max_skew: 5,
                topology_key: "topology.kubernetes.io/zone".into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                label_selector: Some(selector()),
                ..Default::default()
            }])
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod-{i}")),
            namespace: Some("default".into()),
            labels: Some([("color".to_string(), "green".to_string())].into()),
            uid: Some(format!("uid-{i}")),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// What the measuring watcher reads of a pod: its name and node. Parsing
/// only these keeps the measurement's own cost (it runs in the same process
/// as the API server and the scheduler) small.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct BoundPod {
    #[serde(deserialize_with = "ferrokube_client::slim::object_meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: BoundPodSpec,
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
struct BoundPodSpec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

ferrokube_client::pod_resource!(BoundPod, |p| p.metadata);

struct RunResult {
    end_to_end: f64,
    /// CPU time of this whole process (API server, store, scheduler, pod
    /// creators and the watcher) per pod, microseconds: the figure that does
    /// not move with the machine's load.
    cpu_us_per_pod: f64,
    in_loop_placement: f64,
    bind_errors: u64,
    violations: Vec<String>,
}

/// Checks what a user would check: no node's requests above allocatable,
/// at most one anti-affinity pod per node, zone skew within maxSkew.
fn check_placement(
    w: Workload,
    placed: &HashMap<String, String>,
    nodes: usize,
    zones: usize,
) -> Vec<String> {
    let mut bad = Vec::new();
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for n in placed.values() {
        *per_node.entry(n.as_str()).or_default() += 1;
    }
    for (n, c) in &per_node {
        // 4 cpu / 100m = 40 pods, 32 GiB / 500 MiB = 65, 110 pods.
        if *c > 40 {
            bad.push(format!("{n} holds {c} pods: over 4 cpu"));
        }
        if w == Workload::AntiAffinity && *c > 1 {
            bad.push(format!("{n} holds {c} anti-affinity pods"));
        }
    }
    if w == Workload::Spread {
        let mut per_zone = vec![0usize; zones.max(1)];
        for n in placed.values() {
            let i: usize = n.trim_start_matches("node-").parse().unwrap_or(0);
            per_zone[i % zones.max(1)] += 1;
        }
        let (min, max) = (
            per_zone.iter().min().copied().unwrap_or(0),
            per_zone.iter().max().copied().unwrap_or(0),
        );
        if max - min > 5 {
            bad.push(format!("zone skew {} > 5: {per_zone:?}", max - min));
        }
    }
    let _ = nodes;
    bad
}

/// SchedulingBasic once, on a server authorizing with `modes`, pods
/// created and watched by a user outside `system:masters` (see
/// [`crate::authz`]): pods/s end to end and CPU µs per pod.
pub(crate) async fn basic_run(
    nodes: usize,
    pods: usize,
    modes: &[ferrokube_apiserver::authz::Mode],
) -> anyhow::Result<(f64, f64)> {
    let o = Options {
        nodes,
        pods,
        anti_affinity_pods: 0,
        spread_pods: 0,
        zones: 10,
        runs: 1,
        creators: 128,
        binds: 192,
        only: None,
        scheduler_over_https: false,
    };
    let r = one_run_as(&o, Workload::Basic, pods, Some(modes)).await?;
    anyhow::ensure!(
        r.violations.is_empty() && r.bind_errors == 0,
        "SchedulingBasic went wrong: {:?}, {} bind errors",
        r.violations,
        r.bind_errors
    );
    Ok((r.end_to_end, r.cpu_us_per_pod))
}

async fn one_run(o: &Options, w: Workload, pods: usize) -> anyhow::Result<RunResult> {
    one_run_as(o, w, pods, None).await
}

/// One run; with `modes`, on a server authorizing with them, the pods
/// created and watched by [`crate::authz::USER`] (else by the admin).
async fn one_run_as(
    o: &Options,
    w: Workload,
    pods: usize,
    modes: Option<&[ferrokube_apiserver::authz::Mode]>,
) -> anyhow::Result<RunResult> {
    let api = match modes {
        Some(m) => ferrokube_client::testing::TestApi::start_with_authorization(m).await?,
        None => ferrokube_client::testing::TestApi::start().await?,
    };
    let admin = api.client().await?;
    let user = match modes {
        Some(_) => {
            crate::authz::grant(&admin).await?;
            crate::authz::user_client(api.dir.path(), &api.kubeconfig).await?
        }
        None => admin.clone(),
    };
    // Nodes first (as scheduler_perf's createNodes).
    create_nodes(&admin, o.nodes, o.zones).await?;
    // The scheduler, on the in-process client `ferrokube server` gives the
    // scheduler it runs, or over HTTPS (pods are created over HTTPS, as
    // users do).
    let sched_client = if o.scheduler_over_https {
        api.client().await?
    } else {
        api.in_process_client("system:kube-scheduler")
    };
    let cancel = CancellationToken::new();
    let config = SchedulerConfig {
        identity: "bench".into(),
        parallel_binds: o.binds,
        ..Default::default()
    };
    let sched = ferrokube_scheduler::Scheduler::new(sched_client, config);
    let stats = sched.stats();
    let task = tokio::spawn(sched.run(cancel.clone()));
    let pod_api: Api<Pod> = Api::namespaced(user.clone(), "default");
    let (watch_task, ready_rx, done_rx) = watch_bound(&user, pods);
    let _ = ready_rx.await;
    // Let the scheduler finish its initial list of the nodes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stats.ready.load(Ordering::Relaxed) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the scheduler did not sync in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let cpu_start = process_cpu();
    let start = Instant::now();
    create_pods(&user, pods, w, o.creators).await?;
    let created = start.elapsed();
    let (end, placed) = tokio::time::timeout(Duration::from_secs(300), done_rx)
        .await
        .context("pods not all bound within 300 s")??;
    let elapsed = end.duration_since(start);
    let cpu = process_cpu().saturating_sub(cpu_start);
    let runs = stats.algorithm_runs.load(Ordering::Relaxed).max(1);
    let nanos = stats.algorithm_nanos.load(Ordering::Relaxed).max(1);
    eprintln!(
        "  run: {} pods created in {:.2}s ({:.0}/s), all bound after {:.2}s; {} algorithm runs; {:.2}s CPU ({:.0} us/pod)",
        pods,
        created.as_secs_f64(),
        pods as f64 / created.as_secs_f64(),
        elapsed.as_secs_f64(),
        runs,
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / pods as f64,
    );
    let mut violations = check_placement(w, &placed, o.nodes, o.zones);
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    watch_task.abort();
    // Keep the list API honest: everything is bound in the store too.
    let unbound = pod_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
        .count();
    if unbound > 0 {
        violations.push(format!("{unbound} pods unbound in the store"));
    }
    Ok(RunResult {
        end_to_end: pods as f64 / elapsed.as_secs_f64(),
        cpu_us_per_pod: cpu.as_secs_f64() * 1e6 / pods as f64,
        in_loop_placement: runs as f64 / (nanos as f64 / 1e9),
        bind_errors: stats.bind_errors.load(Ordering::Relaxed),
        violations,
    })
}

/// Creates `nodes` hollow nodes spread over `zones`, 64 at a time.
async fn create_nodes(admin: &kube::Client, nodes: usize, zones: usize) -> anyhow::Result<()> {
    let node_api: Api<Node> = Api::all(admin.clone());
    futures::stream::iter(0..nodes)
        .map(|i| {
            let node_api = node_api.clone();
            async move {
                node_api
                    .create(&PostParams::default(), &hollow_node(i, zones))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .context("creating nodes")?;
    Ok(())
}

/// Creates the workload's `pods` pods as `user`, `creators` at a time.
async fn create_pods(
    user: &kube::Client,
    pods: usize,
    w: Workload,
    creators: usize,
) -> anyhow::Result<()> {
    let create_api = Api::<Pod>::namespaced(user.clone(), "default");
    futures::stream::iter(0..pods)
        .map(|i| {
            let create_api = create_api.clone();
            async move {
                let mut p = bench_pod(i, w);
                p.metadata.uid = None;
                create_api
                    .create(&PostParams::default(), &p)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(creators)
        .try_collect::<Vec<()>>()
        .await
        .context("creating pods")?;
    Ok(())
}

/// Where bound pods went, and when the last of `pods` was bound.
type Bound = (Instant, HashMap<String, String>);

/// A watcher that sees pods get bound: only bound pods (a pod shows up
/// when its binding lands, as an ADDED event), and only name and node
/// parsed, as scheduler_perf counts scheduled pods from an informer. Says
/// when its initial list is done, then when `pods` pods are bound.
fn watch_bound(
    user: &kube::Client,
    pods: usize,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<Bound>,
) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Bound>();
    let watch_api: Api<BoundPod> = Api::namespaced(user.clone(), "default");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let watch_task = tokio::spawn(async move {
        let mut placed: HashMap<String, String> = HashMap::with_capacity(pods);
        let cfg = watcher::Config::default().fields("spec.nodeName!=");
        let mut stream = watcher(watch_api, cfg).boxed();
        let mut ready = Some(ready_tx);
        let mut done = Some(done_tx);
        while let Some(ev) = stream.next().await {
            let pod = match ev {
                Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => p,
                Ok(Event::InitDone) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(n) = pod.spec.node_name.filter(|n| !n.is_empty()) {
                placed.insert(pod.metadata.name.unwrap_or_default(), n);
                if placed.len() >= pods {
                    if let Some(d) = done.take() {
                        let _ = d.send((Instant::now(), std::mem::take(&mut placed)));
                    }
                    return;
                }
            }
        }
    });
    (watch_task, ready_rx, done_rx)
}

/// The placement algorithm alone: the same nodes and pods on an in-memory
/// snapshot, each pod placed and assumed in turn.
fn placement_only(o: &Options, w: Workload, pods: usize) -> (f64, Vec<String>) {
    let mut cache = Cache::new();
    for i in 0..o.nodes {
        cache.set_node(Arc::new(hollow_node(i, o.zones)));
    }
    let infos: Vec<Arc<PodInfo>> = (0..pods)
        .map(|i| Arc::new(PodInfo::new(Arc::new(bench_pod(i, w)))))
        .collect();
    let mut algo = Algorithm::new();
    let mut placed = HashMap::with_capacity(pods);
    let mut failed = 0;
    let t = Instant::now();
    for p in &infos {
        match algo.schedule(&cache, p) {
            Ok(pl) => {
                cache.assume(p.clone(), &pl.node);
                placed.insert(p.name.clone(), pl.node);
            }
            Err(_) => failed += 1,
        }
    }
    let rate = pods as f64 / t.elapsed().as_secs_f64();
    let mut bad = check_placement(w, &placed, o.nodes, o.zones);
    if failed > 0 {
        bad.push(format!("{failed} pods found no node"));
    }
    (rate, bad)
}

/// User and system CPU time of this process so far (all threads, also
/// finished ones), from `/proc/self/stat`; zero where that is not readable.
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 (from 0)
    // after ')', which is followed by field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // In USER_HZ, which is 100 on Linux.
    let hz = 100u64;
    Duration::from_millis(ticks * 1000 / hz)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let workloads = [
        (Workload::Basic, o.pods),
        (Workload::AntiAffinity, o.anti_affinity_pods),
        (Workload::Spread, o.spread_pods),
    ];
    println!(
        "ferrokube-scheduler on {} hollow nodes, in-process API server (embedded store), {} run(s) each, {} concurrent creators, {} binds in flight, scheduler's client {}",
        o.nodes,
        o.runs,
        o.creators,
        o.binds,
        if o.scheduler_over_https {
            "over HTTPS"
        } else {
            "in process"
        }
    );
    println!(
        "{:<28} {:>7} {:>11} {:>12} {:>18} {:>20} {:>8}  quality",
        "workload",
        "pods",
        "e2e pods/s",
        "CPU us/pod",
        "in-loop placement",
        "placement-only pods/s",
        "bind err"
    );
    let mut seen = HashSet::new();
    for (w, pods) in workloads {
        if o.only.as_deref().is_some_and(|f| f != w.flag()) || !seen.insert(w.flag()) {
            continue;
        }
        eprintln!("{}:", w.name());
        let mut e2e = Vec::new();
        let mut in_loop = Vec::new();
        let mut cpu = Vec::new();
        let mut errs = 0;
        let mut quality = Vec::new();
        for _ in 0..o.runs.max(1) {
            let r = one_run(&o, w, pods).await?;
            e2e.push(r.end_to_end);
            in_loop.push(r.in_loop_placement);
            cpu.push(r.cpu_us_per_pod);
            errs += r.bind_errors;
            quality.extend(r.violations);
        }
        let (alone, bad) = placement_only(&o, w, pods);
        quality.extend(bad);
        println!(
            "{:<28} {:>7} {:>11.0} {:>12.0} {:>18.0} {:>20.0} {:>8}  {}",
            w.name(),
            pods,
            median(e2e),
            median(cpu),
            median(in_loop),
            alone,
            errs,
            if quality.is_empty() {
                "ok: no node over-committed, rules honoured".to_string()
            } else {
                quality.join("; ")
            }
        );
    }
    Ok(())
}
