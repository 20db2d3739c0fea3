//! End-to-end harness: an in-process API server, the agent with the containerd it
//! supervises in a temporary data dir (its own bridge and pod subnet per test), the
//! images from scripts/build-images.sh, and cleanup of everything they created.

#![allow(
    dead_code,
    reason = "each test binary that includes this harness uses only part of it"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrokube_client::testing::{wait, TestApi};
use ferrokube_kubelet::cri::{labels, remote::RemoteRuntime, Runtime};
use ferrokube_kubelet::{containerd::ContainerdPaths, KubeletConfig};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) const NODE: &str = "e2e-node";

/// Fails loudly when something the tests need is not installed.
#[expect(unsafe_code, reason = "geteuid(2): the tests need root")]
pub(crate) fn require_tools() {
    let mut missing = Vec::new();
    for (bin, pkg) in [
        ("containerd", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
        ("gcc", "gcc"),
        ("python3", "python3"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("nft", "nftables"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(format!("{bin} (package {pkg})"));
        }
    }
    for (path, pkg) in [
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/usr/lib/cni/host-local", "containernetworking-plugins"),
        ("/usr/lib/cni/loopback", "containernetworking-plugins"),
        ("/usr/lib/cni/portmap", "containernetworking-plugins"),
        ("/bin/busybox", "busybox-static"),
    ] {
        if !Path::new(path).exists() {
            missing.push(format!("{path} (package {pkg})"));
        }
    }
    assert!(
        missing.is_empty(),
        "end-to-end tests need: {} — run scripts/install-deps.sh",
        missing.join(", ")
    );
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "end-to-end tests run containers: run them as root");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the images into `dir` with the project's script.
pub(crate) fn build_images(dir: &Path) {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/build-images.sh"))
        .arg(dir)
        .output()
        .expect("running scripts/build-images.sh");
    assert!(
        out.status.success(),
        "scripts/build-images.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) struct Env {
    pub api: TestApi,
    pub client: kube::Client,
    pub data: tempfile::TempDir,
    pub bridge: String,
    pub subnet: String,
    pub cancel: parking_lot::Mutex<CancellationToken>,
    pub agent: parking_lot::Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
    pub config: KubeletConfig,
    pub started: Instant,
}

impl Env {
    /// Starts the API and the agent; `n` (1..=250) picks this test's bridge and subnet.
    pub(crate) async fn start(n: u8) -> Env {
        Self::start_with(n, |_| {}).await
    }

    /// Like `start`, with `prepare` run on the data dir before the agent starts.
    pub(crate) async fn start_with(n: u8, prepare: impl FnOnce(&Path)) -> Env {
        require_tools();
        let _ = tracing_subscriber_init();
        let started = Instant::now();
        let api = TestApi::start().await.expect("starting the API server");
        let client = api.client().await.expect("API client");
        let data = tempfile::Builder::new()
            .prefix("fk-e2e")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let images = data.path().join("agent").join("images");
        std::fs::create_dir_all(&images).expect("images dir");
        build_images(&images);
        prepare(data.path());
        let bridge = format!("fke2e{n}");
        let subnet = format!("10.199.{n}.0/24");
        // A bridge left by an earlier crashed run of this test would have the old address.
        ferrokube_kubelet::cni::remove_pod_network(&bridge);
        let mut config = KubeletConfig::new(NODE, data.path());
        config.cni_bridge = bridge.clone();
        config.kubelet_port = 0; // any free port: tests run side by side
        config.pod_cidr = Some(subnet.clone()); // no node IPAM controller here
        let cancel = CancellationToken::new();
        let agent = tokio::spawn(ferrokube_kubelet::run(
            client.clone(),
            config.clone(),
            cancel.clone(),
        ));
        let env = Env {
            api,
            client,
            data,
            bridge,
            subnet,
            cancel: parking_lot::Mutex::new(cancel),
            agent: parking_lot::Mutex::new(Some(agent)),
            config,
            started,
        };
        env.wait_node_ready().await;
        eprintln!("e2e: agent ready after {:?}", env.started.elapsed());
        env
    }

    pub(crate) fn endpoint(&self) -> String {
        ContainerdPaths::new(self.data.path()).endpoint()
    }

    async fn wait_node_ready(&self) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(agent) = self.agent.lock().as_ref() {
                assert!(
                    !agent.is_finished(),
                    "the agent stopped before its node was ready"
                );
            }
            if let Ok(Some(n)) = nodes.get_opt(NODE).await {
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node not Ready within 90 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (bounded) until `check` returns Some for the pod.
    pub(crate) async fn wait_pod<T>(
        &self,
        ns: &str,
        name: &str,
        secs: u64,
        what: &str,
        check: impl Fn(&Pod) -> Option<T>,
    ) -> T {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let last = std::sync::Mutex::new(None);
        let found = wait::poll(
            Duration::from_secs(secs),
            Duration::from_millis(200),
            || async {
                let p = pods.get(name).await.ok()?;
                let v = check(&p);
                *last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p);
                v
            },
        )
        .await;
        match found {
            Some((v, _)) => v,
            None => panic!(
                "pod {ns}/{name}: {what} not reached within {secs} s; last status: {}",
                serde_json::to_string_pretty(
                    &last
                        .into_inner()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .and_then(|p: Pod| p.status)
                )
                .unwrap_or_default()
            ),
        }
    }

    /// Stops the agent (and its containerd); containers keep running.
    pub(crate) async fn stop_agent(&self) {
        self.cancel.lock().cancel();
        let agent = self.agent.lock().take();
        if let Some(agent) = agent {
            match tokio::time::timeout(Duration::from_secs(30), agent).await {
                Ok(Ok(Ok(()))) => {}
                other => eprintln!("e2e: agent ended with {other:?}"),
            }
        }
    }

    /// Starts the agent again on the same data dir and waits for its node.
    pub(crate) async fn start_agent(&self) {
        let cancel = CancellationToken::new();
        let agent = tokio::spawn(ferrokube_kubelet::run(
            self.client.clone(),
            self.config.clone(),
            cancel.clone(),
        ));
        *self.cancel.lock() = cancel;
        *self.agent.lock() = Some(agent);
        // The Node still says Ready from before: wait for the new runtime to answer.
        let rt = RemoteRuntime::connect(&self.endpoint()).expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        while rt.version().await.is_err() {
            assert!(Instant::now() < deadline, "containerd not back within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_node_ready().await;
    }

    /// Waits (bounded) until the pod is no longer in the API.
    pub(crate) async fn wait_gone(&self, ns: &str, name: &str, secs: u64) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(None) = pods.get_opt(name).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pod {ns}/{name} still in the API after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runtime sandboxes of a pod UID.
    pub(crate) async fn sandboxes_of(&self, uid: &str) -> usize {
        let rt = RemoteRuntime::connect(&self.endpoint()).expect("client");
        let list = rt.list_pod_sandbox(None).await.expect("list sandboxes");
        list.iter()
            .filter(|s| s.labels.get(labels::POD_UID).map(String::as_str) == Some(uid))
            .count()
    }

    /// Removes every sandbox and container, stops the agent and its containerd,
    /// deletes the bridge.
    pub(crate) async fn shutdown(self) {
        // Pods first, through the agent (deleted at once, so it cleans up)...
        let pods: Api<Pod> = Api::all(self.client.clone());
        if let Ok(list) = pods.list(&Default::default()).await {
            for p in list {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let name = p.metadata.name.clone().unwrap_or_default();
                let _ = Api::<Pod>::namespaced(self.client.clone(), &ns)
                    .delete(
                        &name,
                        &kube::api::DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await;
            }
        }
        if let Ok(rt) = RemoteRuntime::connect(&self.endpoint()) {
            // A just-restarted agent may still be bringing its containerd up.
            let deadline = Instant::now() + Duration::from_secs(30);
            while rt.version().await.is_err() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                match rt.list_pod_sandbox(None).await {
                    Ok(l) if !l.is_empty() => tokio::time::sleep(Duration::from_millis(200)).await,
                    _ => break,
                }
            }
        }
        // ...then whatever is left, straight through the runtime.
        if let Ok(rt) = RemoteRuntime::connect(&self.endpoint()) {
            if let Ok(list) = rt.list_pod_sandbox(None).await {
                for sb in list {
                    let _ = rt.stop_pod_sandbox(&sb.id).await;
                    let _ = rt.remove_pod_sandbox(&sb.id).await;
                }
            }
        }
        self.stop_agent().await;
        ferrokube_kubelet::cni::remove_pod_network(&self.bridge);
        eprintln!("e2e: total {:?}", self.started.elapsed());
    }
}

fn tracing_subscriber_init() -> Result<(), ()> {
    // Logs help when a test fails; RUST_LOG picks the level.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ferrokube_kubelet=info".into()),
        )
        .with_test_writer()
        .try_init()
        .map_err(|_| ())
}

/// Runs `body` and always shuts the environment down, then re-raises a failure.
pub(crate) async fn with_env<F>(n: u8, body: F)
where
    F: AsyncFnOnce(&Env),
{
    with_env_prepared(n, |_| {}, body).await
}

/// `with_env` with files placed in the data dir before the agent starts.
pub(crate) async fn with_env_prepared<F>(n: u8, prepare: impl FnOnce(&Path), body: F)
where
    F: AsyncFnOnce(&Env),
{
    let env = Env::start_with(n, prepare).await;
    let result = std::panic::AssertUnwindSafe(body(&env))
        .catch_unwind()
        .await;
    env.shutdown().await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
