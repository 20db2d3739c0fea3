//! The controllers' benchmark: an in-process API server on the embedded
//! store (`ferrokube_client::testing::TestApi`), the controller manager in
//! a process of its own (`ferrokube controller-manager`, every controller,
//! as in a cluster) talking to it over HTTPS, and a fake kubelet in this
//! process that marks every new pod Running and Ready through the status
//! subresource. Figures: the time for a Deployment of N replicas to have
//! all its pods created, and for a rolling update of many small
//! Deployments at once to complete; per phase, each controller's work
//! (watch events, reconciles, API writes, read from its `/metrics`), the
//! controller manager's CPU time and its RSS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokube_client::testing::wait::poll;
use ferrokube_controllers::metrics::Counts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Replicas of the one big Deployment.
    #[arg(long, default_value_t = 1_000)]
    replicas: i32,
    /// Deployments rolled at once.
    #[arg(long, default_value_t = 100)]
    deployments: usize,
    /// Replicas of each of them.
    #[arg(long, default_value_t = 10)]
    each: i32,
    /// Give up on any phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// The `ferrokube` binary whose `controller-manager` runs the
    /// controllers (default: the one next to this benchmark).
    #[arg(long)]
    ferrokube: Option<PathBuf>,
}

/// The controller manager, a child process.
struct ControllerManager {
    child: tokio::process::Child,
    pid: u32,
    metrics: std::net::SocketAddr,
    command: String,
}

impl ControllerManager {
    async fn start(
        bin: &std::path::Path,
        api: &ferrokube_client::testing::TestApi,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let args = [
            "controller-manager".to_string(),
            "--kubeconfig".into(),
            api.kubeconfig.display().to_string(),
            "--metrics-bind-address".into(),
            metrics.to_string(),
        ];
        let log = std::fs::File::create(api.dir.path().join("controller-manager.log"))?;
        let child = tokio::process::Command::new(bin)
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "starting {} (build it with `cargo build --release -p ferrokube`): {e}",
                    bin.display()
                )
            })?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the controller manager exited at once"))?;
        Ok(ControllerManager {
            child,
            pid,
            metrics,
            command: format!("{} {}", bin.display(), args.join(" ")),
        })
    }

    /// Fails if it has exited (with where its log is).
    fn check_running(&mut self, log: &std::path::Path) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().take(20).collect();
            anyhow::bail!(
                "the controller manager exited ({status}):\n{}",
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Its counters, from `/metrics`.
    async fn counts(&self) -> anyhow::Result<BTreeMap<String, Counts>> {
        let mut s = tokio::net::TcpStream::connect(self.metrics).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut text = String::new();
        s.read_to_string(&mut text).await?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        Ok(ferrokube_controllers::metrics::parse(body))
    }

    /// Its resident set (MiB).
    fn rss_mib(&self) -> f64 {
        rss_mib(&format!("/proc/{}/status", self.pid))
    }

    /// Its CPU time so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
        let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        Duration::from_secs_f64(ticks as f64 / clock_ticks())
    }

    /// Waits until the counters stop moving for a second (bounded), so a
    /// phase's figures hold all the work it caused.
    async fn settle(&self, timeout: Duration) -> anyhow::Result<BTreeMap<String, Counts>> {
        let start = Instant::now();
        let mut last = self.counts().await?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.counts().await?;
            if now == last || start.elapsed() > timeout {
                return Ok(now);
            }
            last = now;
        }
    }

    async fn stop(mut self) {
        // Only this child, by its own handle.
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn rss_mib(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What the controller manager did in one phase.
struct Phase {
    name: String,
    pods_created: usize,
    counts: BTreeMap<String, Counts>,
    cpu: Duration,
    rss_mib: f64,
}

fn delta(
    after: &BTreeMap<String, Counts>,
    before: &BTreeMap<String, Counts>,
) -> BTreeMap<String, Counts> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before.get(name).copied().unwrap_or_default();
            (
                name.clone(),
                Counts {
                    events: a.events - b.events.min(a.events),
                    reconciles: a.reconciles - b.reconciles.min(a.reconciles),
                    errors: a.errors - b.errors.min(a.errors),
                    reconcile_seconds: (a.reconcile_seconds - b.reconcile_seconds).max(0.0),
                    writes: a.writes - b.writes.min(a.writes),
                    reads: a.reads - b.reads.min(a.reads),
                },
            )
        })
        .collect()
}

fn print_phase(p: &Phase) {
    println!();
    println!("{} ({} pods created):", p.name, p.pods_created);
    println!(
        "  {:<22} {:>8} {:>10} {:>7} {:>7} {:>10} {:>10} {:>12}",
        "controller",
        "events",
        "reconciles",
        "writes",
        "reads",
        "rec/event",
        "writes/rec",
        "ms/reconcile"
    );
    let mut total = Counts::default();
    for (name, c) in &p.counts {
        if c.events == 0 && c.reconciles == 0 && c.writes == 0 {
            continue;
        }
        total.events += c.events;
        total.reconciles += c.reconciles;
        total.writes += c.writes;
        total.reads += c.reads;
        total.reconcile_seconds += c.reconcile_seconds;
        let per = |a: f64, b: u64| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.2}", a / b as f64)
            }
        };
        println!(
            "  {:<22} {:>8} {:>10} {:>7} {:>7} {:>10} {:>10} {:>12}",
            name,
            c.events,
            c.reconciles,
            c.writes,
            c.reads,
            per(c.reconciles as f64, c.events),
            per(c.writes as f64, c.reconciles),
            per(c.reconcile_seconds * 1e3, c.reconciles),
        );
    }
    let per_pod = |x: u64| x as f64 / p.pods_created.max(1) as f64;
    println!(
        "  all: {} events, {} reconciles, {} API writes = {:.2} writes per pod created ({:.2} reconciles per event)",
        total.events,
        total.reconciles,
        total.writes,
        per_pod(total.writes),
        total.reconciles as f64 / total.events.max(1) as f64,
    );
    println!(
        "  controller-manager CPU: {:.2} s = {:.0} µs per reconcile, {:.0} µs per event (whole process: watch decoding, caches, reconciles); RSS after: {:.1} MiB",
        p.cpu.as_secs_f64(),
        p.cpu.as_secs_f64() * 1e6 / total.reconciles.max(1) as f64,
        p.cpu.as_secs_f64() * 1e6 / total.events.max(1) as f64,
        p.rss_mib,
    );
}

fn deployment(name: &str, replicas: i32, image: &str) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "bench": "yes"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))?)
}

/// Marks every pod that appears (and is not ready) Running and Ready.
fn fake_kubelet(
    client: kube::Client,
    ns: &str,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(32));
        let stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            let p = tokio::select! {
                _ = cancel.cancelled() => return,
                p = stream.next() => p,
            };
            let Some(Ok(p)) = p else {
                if p.is_none() {
                    return;
                }
                continue;
            };
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready || p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(name) = p.metadata.name.clone() else {
                continue;
            };
            let Ok(permit) = sem.clone().acquire_owned().await else {
                return;
            };
            let api = api.clone();
            tokio::spawn(async move {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let st = json!({"status": {"phase": "Running", "podIP": "10.42.0.1",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&st))
                    .await;
                drop(permit);
            });
        }
    })
}

fn done(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    d.status.as_ref().is_some_and(|s| {
        s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(want)
            && s.replicas == Some(want)
            && s.available_replicas == Some(want)
    })
}

/// Polls `check` every 50 ms until it holds, for at most `timeout`: how long
/// that took. An error of `check` ends the wait at once.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let outcome = poll(timeout, Duration::from_millis(50), || {
        let holds = check();
        async move {
            match holds.await {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            }
        }
    })
    .await;
    match outcome {
        Some((Ok(()), took)) => Ok(took),
        Some((Err(e), _)) => Err(e),
        None => anyhow::bail!("timed out waiting for {what}"),
    }
}

/// Waits until the controller manager holds its Lease (it is working);
/// fails at once if it exits.
async fn wait_for_lease(
    cm: &mut ControllerManager,
    client: &kube::Client,
    log: &std::path::Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    let start = Instant::now();
    while leases.get_opt("kube-controller-manager").await?.is_none() {
        cm.check_running(log)?;
        if start.elapsed() > timeout {
            anyhow::bail!("timed out waiting for the controller manager's Lease");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The controller manager's counters and CPU time at the end of the last
/// phase, to measure the next one from.
struct Meter {
    before: BTreeMap<String, Counts>,
    cpu_before: Duration,
}

impl Meter {
    /// Ends a phase once the controller manager has settled: what it did
    /// since the last one.
    async fn end_phase(
        &mut self,
        cm: &ControllerManager,
        timeout: Duration,
        name: String,
        pods: usize,
    ) -> anyhow::Result<Phase> {
        let after = cm.settle(timeout).await?;
        let cpu = cm.cpu();
        let p = Phase {
            name,
            pods_created: pods,
            counts: delta(&after, &self.before),
            cpu: cpu.saturating_sub(self.cpu_before),
            rss_mib: cm.rss_mib(),
        };
        self.before = after;
        self.cpu_before = cpu;
        Ok(p)
    }
}

/// Phase 1: one big Deployment; prints how fast all its pods were created
/// and gives their number.
async fn big_deployment(
    client: &kube::Client,
    replicas: i32,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "big");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "big");
    deps.create(
        &PostParams::default(),
        &deployment("big", replicas, "img:1")?,
    )
    .await?;
    let want = replicas as usize;
    let lp = ListParams::default().labels("app=big");
    let created = wait_until("all pods created", timeout, || async {
        Ok(pods.list_metadata(&lp).await?.items.len() >= want)
    })
    .await?;
    println!(
        "Deployment of {} replicas: all pods created in {:.2} s ({:.0} pods/s)",
        replicas,
        created.as_secs_f64(),
        want as f64 / created.as_secs_f64()
    );
    Ok(want)
}

/// Whether there are `n` Deployments, all rolled out and available.
async fn all_done(deps: &Api<Deployment>, n: usize) -> anyhow::Result<bool> {
    let l = deps.list(&ListParams::default()).await?;
    Ok(l.items.len() == n && l.items.iter().all(done))
}

/// Phase 2: the Deployments `names` of `each` replicas created at once; how
/// long until all are available.
async fn many_deployments(
    deps: &Api<Deployment>,
    names: &[String],
    each: i32,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for n in names {
        deps.create(&PostParams::default(), &deployment(n, each, "img:1")?)
            .await?;
    }
    wait_until("the first rollout", timeout, || all_done(deps, names.len())).await?;
    Ok(start.elapsed())
}

/// Phase 3: a new image for every Deployment of `names`; how long until
/// all have rolled.
async fn rolling_update(
    deps: &Api<Deployment>,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}});
    for n in names {
        deps.patch(n, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    wait_until("the rolling update", timeout, || {
        all_done(deps, names.len())
    })
    .await?;
    Ok(start.elapsed())
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(opts.timeout_secs);
    let bin = match &opts.ferrokube {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("ferrokube"),
    };
    let api = ferrokube_client::testing::TestApi::start().await?;
    let client = api.client().await?;
    let cancel = CancellationToken::new();
    let mut cm = ControllerManager::start(&bin, &api).await?;
    println!("controllers: every one, in a controller manager of their own, against an in-process API server on the embedded store (release build)");
    println!("  {}", cm.command);
    let log = api.dir.path().join("controller-manager.log");
    wait_for_lease(&mut cm, &client, &log, timeout).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in ["big", "many"] {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    }
    let before = cm.settle(timeout).await?;
    let idle_rss = cm.rss_mib();
    println!("controller-manager RSS idle: {idle_rss:.1} MiB");
    let mut meter = Meter {
        before,
        cpu_before: cm.cpu(),
    };
    let mut phases = Vec::new();

    // 1. One big Deployment: pods created.
    let want = big_deployment(&client, opts.replicas, timeout).await?;
    let name = format!("Deployment of {} replicas", opts.replicas);
    phases.push(meter.end_phase(&cm, timeout, name, want).await?);

    // 2. Many small Deployments rolled at once, a fake kubelet readying pods.
    let kubelet = fake_kubelet(client.clone(), "many", cancel.clone());
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "many");
    let names: Vec<String> = (0..opts.deployments).map(|i| format!("web-{i}")).collect();
    let first = many_deployments(&deps, &names, opts.each, timeout).await?;
    println!(
        "{} Deployments x {} replicas created and available in {:.2} s",
        opts.deployments,
        opts.each,
        first.as_secs_f64()
    );
    let small = opts.deployments * opts.each as usize;
    let name = format!(
        "{} Deployments x {} created and available",
        opts.deployments, opts.each
    );
    phases.push(meter.end_phase(&cm, timeout, name, small).await?);
    let rolled = rolling_update(&deps, &names, timeout).await?;
    println!(
        "rolling update of {} Deployments x {} replicas (25%/25%): complete in {:.2} s ({:.0} pods replaced/s)",
        opts.deployments,
        opts.each,
        rolled.as_secs_f64(),
        small as f64 / rolled.as_secs_f64()
    );
    let name = format!(
        "rolling update of {} Deployments x {}",
        opts.deployments, opts.each
    );
    phases.push(meter.end_phase(&cm, timeout, name, small).await?);

    for p in &phases {
        print_phase(p);
    }
    println!();
    println!(
        "controller-manager RSS: idle {:.1} MiB, after {} replicas {:.1} MiB, after {}x{} created {:.1} MiB, after the rolling update {:.1} MiB ({} pods in the cluster)",
        idle_rss,
        opts.replicas,
        phases[0].rss_mib,
        opts.deployments,
        opts.each,
        phases[1].rss_mib,
        phases[2].rss_mib,
        want + small,
    );
    println!(
        "this process's RSS (API server + store + fake kubelet): {:.1} MiB",
        rss_mib("/proc/self/status")
    );

    cancel.cancel();
    let _ = kubelet.await;
    cm.stop().await;
    Ok(())
}
