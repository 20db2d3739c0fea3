//! The node agent (issue 6): pod startup latency of N pods created at once on one
//! node, as Kubernetes defines it (from the create request to the watch seeing every
//! container started; image already present), against two floors measured in the same
//! run on the same containerd: `ctr run -d` of the same containers (no pod, no
//! network), and CRI straight (RunPodSandbox with CNI, CreateContainer,
//! StartContainer) with no agent in between. Then the agent's RSS and CPU while idle
//! with the pods running.
//!
//! The API server is a release `ferrokube server` without agent or controllers; the
//! agent is this binary's hidden `kubelet-node` subcommand (the kubelet crate alone,
//! with the containerd it supervises), so its figures are the kubelet's own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrokube_kubelet::cri::{api, remote::RemoteRuntime, Runtime};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::stats::{ms, Samples};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Pods (and floor containers) started at once.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Seconds over which the idle agent's CPU is measured.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
}

/// The hidden subcommand that runs the node agent alone.
#[derive(clap::Args)]
pub(crate) struct NodeOptions {
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    node_name: String,
    #[arg(long)]
    bridge: String,
    #[arg(long)]
    pod_cidr: String,
}

const NODE: &str = "fkbench-node";
const BRIDGE: &str = "fkbench0";
const POD_CIDR: &str = "10.198.0.0/24";
const FLOOR_NS: &str = "fkbench-floor";
const IMAGE: &str = "docker.io/library/busybox:1.35";
const LIMIT: Duration = Duration::from_secs(300);

/// `ferrokube-bench kubelet-node`: the kubelet until SIGTERM.
pub(crate) async fn node(o: NodeOptions) -> anyhow::Result<()> {
    let client = crate::apiserver::client(&o.kubeconfig).await?;
    let mut config = ferrokube_kubelet::KubeletConfig::new(o.node_name, o.data_dir);
    config.cni_bridge = o.bridge;
    config.pod_cidr = Some(o.pod_cidr);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        term.recv().await;
        stop.cancel();
    });
    ferrokube_kubelet::run(client, config, cancel).await
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn proc_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// utime + stime of a process, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    get(11) + get(12)
}

#[expect(
    unsafe_code,
    reason = "sysconf(3) through libc: std does not give the clock tick rate"
)]
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf takes an integer, touches no memory of ours and has no
    // preconditions; an unknown name gives -1, handled below.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// PIDs of processes whose command line contains `marker`.
pub(crate) fn pids_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

struct Agent {
    child: Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SIGTERM: the kubelet stops its containerd; SIGKILL if it does not end.
        send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctr(endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ctr");
    c.args(["-a", endpoint.trim_start_matches("unix://"), "-n", FLOOR_NS]);
    c.args(args);
    c
}

/// Starts `n` containers at once with `ctr run -d`; each one's time from the start
/// of the batch until its `ctr` returned.
async fn ctr_floor(endpoint: &str, n: usize) -> anyhow::Result<Samples> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut cmd = tokio::process::Command::from(ctr(
            endpoint,
            &["run", "-d", IMAGE, &format!("floor-{i}"), "sleep", "3600"],
        ));
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        tasks.push(tokio::spawn(async move {
            let out = cmd.output().await?;
            anyhow::ensure!(
                out.status.success(),
                "ctr run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(t0.elapsed())
        }));
    }
    let mut s = Samples::with_capacity(n);
    for t in tasks {
        s.push(t.await??);
    }
    Ok(s)
}

async fn ctr_cleanup(endpoint: &str, n: usize) {
    for i in 0..n {
        let id = format!("floor-{i}");
        let _ = ctr(endpoint, &["task", "kill", "-s", "KILL", &id]).output();
    }
    for i in 0..n {
        let id = format!("floor-{i}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = ctr(endpoint, &["task", "rm", "-f", &id]).output();
            match out {
                Ok(o) if o.status.success() => break,
                Ok(o) if String::from_utf8_lossy(&o.stderr).contains("not found") => break,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = ctr(endpoint, &["container", "rm", &id]).output();
    }
}

fn floor_sandbox(i: usize) -> api::PodSandboxConfig {
    let uid = format!("fkbench-floor-{i}");
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: format!("floor-{i}"),
            uid,
            namespace: "fkbench".into(),
            attempt: 0,
        }),
        hostname: format!("floor-{i}"),
        log_directory: String::new(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// RunPodSandbox + CreateContainer + StartContainer for `n` pods at once, straight
/// through CRI; each one's time from the start of the batch.
async fn cri_floor(rt: Arc<RemoteRuntime>, n: usize) -> anyhow::Result<(Samples, Vec<String>)> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let sb = floor_sandbox(i);
            let id = rt.run_pod_sandbox(sb.clone()).await?;
            let cfg = api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "3600".into()],
                ..Default::default()
            };
            let c = rt.create_container(&id, cfg, sb).await?;
            rt.start_container(&c).await?;
            anyhow::Ok((t0.elapsed(), id))
        }));
    }
    let mut s = Samples::with_capacity(n);
    let mut ids = Vec::new();
    for t in tasks {
        let (d, id) = t.await??;
        s.push(d);
        ids.push(id);
    }
    Ok((s, ids))
}

async fn cri_cleanup(rt: &RemoteRuntime, ids: &[String]) {
    let stops = ids.iter().map(|id| async move {
        let _ = rt.stop_pod_sandbox(id).await;
        let _ = rt.remove_pod_sandbox(id).await;
    });
    futures::stream::iter(stops)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn bench_pod(i: usize) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("startup-{i}"), "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]
            }]
        }
    }))?)
}

fn all_started(p: &Pod) -> bool {
    let Some(st) = p.status.as_ref() else {
        return false;
    };
    let n = p.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let cs = st.container_statuses.as_deref().unwrap_or_default();
    st.phase.as_deref() == Some("Running")
        && cs.len() == n
        && cs
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
}

/// Creates `n` pods at once and measures each one's start-up as the watch sees it.
async fn pod_startup(client: &kube::Client, n: usize) -> anyhow::Result<Samples> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let watch = {
        let seen = seen.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
            let mut ready_tx = Some(ready_tx);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(Event::InitDone) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Apply(p)) if all_started(&p) => {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        let mut s = seen.lock();
                        s.entry(name).or_insert_with(Instant::now);
                        if s.len() >= n {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    ready_rx.await.context("the watch did not start")?;
    let mut created: HashMap<String, Instant> = HashMap::new();
    let mut creates = Vec::new();
    for i in 0..n {
        let pods = pods.clone();
        let p = bench_pod(i)?;
        creates.push(async move {
            let t = Instant::now();
            pods.create(&PostParams::default(), &p).await?;
            anyhow::Ok((format!("startup-{i}"), t))
        });
    }
    for r in futures::future::join_all(creates).await {
        let (name, t) = r?;
        created.insert(name, t);
    }
    let deadline = Instant::now() + LIMIT;
    while !watch.is_finished() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} pods started within {LIMIT:?}",
            seen.lock().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock();
    let mut s = Samples::with_capacity(n);
    for (name, t) in &created {
        let end = seen.get(name).context("a pod was never seen started")?;
        s.push(end.saturating_duration_since(*t));
    }
    Ok(s)
}

/// Deletes the bench's pods and waits (bounded) for the agent to remove them.
async fn delete_pods(client: &kube::Client, rt: &RemoteRuntime) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let _ = pods.delete_collection(&dp, &Default::default()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match rt.list_pod_sandbox(None).await {
            Ok(l) if l.is_empty() => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(_) => return,
        }
    }
    eprintln!("kubelet bench: the agent left sandboxes behind; removing them through CRI");
    if let Ok(l) = rt.list_pod_sandbox(None).await {
        for sb in l {
            let _ = rt.stop_pod_sandbox(&sb.id).await;
            let _ = rt.remove_pod_sandbox(&sb.id).await;
        }
    }
}

/// Sends `signal` to process `pid`; a process that is already gone is no error.
#[expect(
    unsafe_code,
    reason = "kill(2) through libc: std's Child can only send SIGKILL, and only to its own children"
)]
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill takes plain integers and touches no memory of ours; a PID
    // that no longer exists makes it fail with ESRCH, which is ignored.
    unsafe { libc::kill(pid as i32, signal) };
}

/// Whether this process runs as root (effective user id 0).
#[expect(
    unsafe_code,
    reason = "geteuid(2) through libc: std does not give the user id"
)]
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments, cannot fail and has no preconditions.
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

fn require_tools() -> anyhow::Result<()> {
    anyhow::ensure!(
        is_root(),
        "the kubelet benchmark runs containers: run it as root"
    );
    for bin in ["containerd", "ctr", "runc"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false);
        anyhow::ensure!(found, "{bin} not found: run scripts/install-deps.sh");
    }
    Ok(())
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    require_tools()?;
    let n = o.pods;
    let server =
        crate::apiserver::start_server(&["--disable-controller-manager", "--disable-scheduler"])?;
    let client = crate::apiserver::client(&server.kubeconfig).await?;
    let data = tempfile::Builder::new()
        .prefix("fkbench")
        .tempdir_in("/tmp")?;
    let images = data.path().join("agent").join("images");
    std::fs::create_dir_all(&images)?;
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/build-images.sh"))
        .arg(&images)
        .output()
        .context("running scripts/build-images.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/build-images.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ferrokube_kubelet::cni::remove_pod_network(BRIDGE);
    let exe = std::env::current_exe()?;
    let child = Command::new(&exe)
        .arg("kubelet-node")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "--node-name",
            NODE,
            "--bridge",
            BRIDGE,
            "--pod-cidr",
            POD_CIDR,
        ])
        .env(
            "RUST_LOG",
            std::env::var("FKBENCH_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("FKBENCH_AGENT_LOG") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        })
        .spawn()?;
    let agent_pid = child.id();
    let agent = Agent { child };
    let endpoint = ferrokube_kubelet::containerd::ContainerdPaths::new(data.path()).endpoint();
    let result = measure(&o, n, &client, &endpoint, &images, agent_pid).await;

    // Clean up: pods through the agent, then whatever is left through CRI, the agent
    // and its containerd, shims by PID, the bridge.
    if let Ok(rt) = RemoteRuntime::connect(&endpoint) {
        delete_pods(&client, &rt).await;
    }
    drop(agent);
    let marker = data.path().to_string_lossy().into_owned();
    for pid in pids_with(&marker) {
        // Shims of the containerd this run started.
        send_signal(pid, libc::SIGKILL);
    }
    ferrokube_kubelet::cni::remove_pod_network(BRIDGE);
    drop(server);
    result
}

async fn wait_node(client: &kube::Client, endpoint: &str) -> anyhow::Result<Arc<RemoteRuntime>> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = nodes.get_opt(NODE).await.ok().flatten().is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if ready {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node was not Ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rt = Arc::new(RemoteRuntime::connect(endpoint)?);
    // The images are imported before the node registers; check the one we run.
    anyhow::ensure!(
        rt.image_status(IMAGE).await?.is_some(),
        "{IMAGE} is not in the agent's containerd"
    );
    Ok(rt)
}

async fn measure(
    o: &Options,
    n: usize,
    client: &kube::Client,
    endpoint: &str,
    images: &Path,
    agent_pid: u32,
) -> anyhow::Result<()> {
    let rt = wait_node(client, endpoint).await?;
    // Floor 1: ctr run -d, the image imported into a namespace of its own.
    let out = ctr(endpoint, &["images", "import", "--all-platforms"])
        .arg(images.join("busybox.tar"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ctr images import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctr_result = ctr_floor(endpoint, n).await;
    ctr_cleanup(endpoint, n).await;
    let _ = ctr(endpoint, &["images", "rm", IMAGE]).output();
    let mut ctr_s = ctr_result?;

    // Floor 2: CRI straight, with the agent's CNI configuration.
    let (mut cri_s, ids) = match cri_floor(rt.clone(), n).await {
        Ok(v) => v,
        Err(e) => {
            // Remove what did start before failing.
            if let Ok(l) = rt.list_pod_sandbox(None).await {
                let ids: Vec<String> = l.into_iter().map(|s| s.id).collect();
                cri_cleanup(&rt, &ids).await;
            }
            return Err(e);
        }
    };
    cri_cleanup(&rt, &ids).await;

    // The agent.
    let mut pod_s = pod_startup(client, n).await?;

    // Idle with the pods running.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let c0 = proc_cpu_ticks(agent_pid);
    let t0 = Instant::now();
    let mut rss_max: f64 = 0.0;
    while t0.elapsed() < Duration::from_secs(o.idle_seconds) {
        rss_max = rss_max.max(proc_rss_mib(agent_pid));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu =
        (proc_cpu_ticks(agent_pid) - c0) as f64 / ticks_per_sec() / t0.elapsed().as_secs_f64();
    let rss_now = proc_rss_mib(agent_pid);
    let data_dir = images
        .ancestors()
        .nth(2)
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let containerd_rss: f64 = pids_with(&data_dir)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "containerd")
        })
        .map(proc_rss_mib)
        .sum();

    let (p50, p99) = (pod_s.quantile(0.5), pod_s.quantile(0.99));
    let (c50, c99) = (ctr_s.quantile(0.5), ctr_s.quantile(0.99));
    let (r50, r99) = (cri_s.quantile(0.5), cri_s.quantile(0.99));
    println!(
        "kubelet: {n} pods (busybox:1.35, sleep 3600, image present) created at once on one node"
    );
    println!();
    println!("| start-up of {n} at once | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    println!(
        "| ferrokube pods (create → watch sees all containers started) | {} | {} |",
        ms(p50),
        ms(p99)
    );
    println!(
        "| floor: CRI straight (RunPodSandbox + CNI, CreateContainer, StartContainer) | {} | {} |",
        ms(r50),
        ms(r99)
    );
    println!(
        "| floor: `ctr run -d` (no sandbox, no network) | {} | {} |",
        ms(c50),
        ms(c99)
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "| ratio pods / CRI floor | {:.2}× | {:.2}× |",
        ratio(p50, r50),
        ratio(p99, r99)
    );
    println!(
        "| ratio pods / ctr floor | {:.2}× | {:.2}× |",
        ratio(p50, c50),
        ratio(p99, c99)
    );
    println!();
    println!(
        "| agent idle with {n} pods ({} s) | value |",
        o.idle_seconds
    );
    println!("|---|---:|");
    println!("| agent RSS MiB (max / end) | {rss_max:.1} / {rss_now:.1} |");
    println!("| agent CPU (% of one core) | {:.2} |", cpu * 100.0);
    println!("| its containerd's RSS MiB | {containerd_rss:.1} |");
    println!();
    println!("command: cargo build --release -p ferrokube -p ferrokube-bench && sudo target/release/ferrokube-bench kubelet --pods {n}");
    Ok(())
}
