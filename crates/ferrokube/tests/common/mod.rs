//! A cluster for end-to-end tests: the real `ferrokube` binary started on a
//! free loopback port with a data dir of its own, driven with the real
//! `kubectl`. Dropping it kills the server (by pid) and removes the data dir.

#![allow(
    dead_code,
    reason = "each test binary uses the part of these helpers it needs"
)]

pub(crate) mod lab;
pub(crate) mod python_pod;
pub(crate) mod servers;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferrokube_client::testing::wait::wait_until_blocking;

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Cluster {
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    pub port: u16,
    extra_args: Vec<String>,
    /// Runs the node's components too (agent, proxy, DNS).
    node: bool,
    /// The proxy leaves its nftables table when the server stops (the
    /// server's default, as kube-proxy's); tests otherwise have it removed.
    keep_proxy_rules: bool,
    /// The network namespaces there were before a node cluster started
    /// (node tests run one at a time: any other is its pods').
    netns_before: BTreeSet<String>,
}

/// The names in /run/netns.
pub(crate) fn netns() -> BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes the pods' network namespaces (`cni-*`) made since `before`
/// that no process holds any more: what a stopped node left.
pub(crate) fn remove_pod_netns_since(before: &BTreeSet<String>) {
    for name in netns().difference(before) {
        if !name.starts_with("cni-") {
            continue;
        }
        let held = Command::new("ip")
            .args(["netns", "pids", name])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        if !held {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
    }
}

/// Waits (10 s at most) until the network namespaces are only those of
/// `before`: a deleted pod's sandbox, and its namespace, outlive its API
/// object by a moment, and a node stopped then leaves the namespace behind.
pub(crate) fn wait_pod_netns_gone(before: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !netns().is_subset(before) {
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Server flags for a node test that needs neither cluster DNS nor the
/// proxy; its kubelet takes any free port, as other nodes may run beside it.
pub(crate) const NODE_ALONE: &[&str] = &[
    "--cluster-cidr",
    "10.97.0.0/16",
    "--disable",
    "coredns",
    "--disable-kube-proxy",
    "--kubelet-port",
    "0",
];

/// The repository's root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How often the tests look again at what they wait for
/// (`ferrokube_client::testing::wait::wait_until_blocking`): each look runs
/// kubectl, so not too often.
pub(crate) const POLL: Duration = Duration::from_millis(300);

/// A free loopback port (bound, then released for the server to take).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Cluster {
    /// Starts a server on the embedded store and waits until it is ready.
    pub(crate) fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub(crate) fn start_with(extra: &[&str]) -> Cluster {
        let data_dir = tempfile::Builder::new()
            .prefix("ferrokube-e2e")
            .tempdir()
            .expect("temp dir");
        let mut cluster = Cluster {
            child: None,
            data_dir,
            port: free_port(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            node: false,
            keep_proxy_rules: false,
            netns_before: BTreeSet::new(),
        };
        cluster.spawn();
        cluster
    }

    /// Starts a whole one-node cluster (node agent, proxy and DNS too) with
    /// extra flags; `prepare` sees the data dir before the server starts.
    pub(crate) fn start_node(extra: &[&str], prepare: impl FnOnce(&Path)) -> Cluster {
        Cluster::start_node_with(extra, prepare, false)
    }

    /// As [`Cluster::start_node`], with the server's default of leaving the
    /// proxy's table when it stops (for tests of what cleans it up then).
    pub(crate) fn start_node_keeping_proxy_rules(
        extra: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Cluster {
        Cluster::start_node_with(extra, prepare, true)
    }

    fn start_node_with(
        extra: &[&str],
        prepare: impl FnOnce(&Path),
        keep_proxy_rules: bool,
    ) -> Cluster {
        let data_dir = tempfile::Builder::new()
            .prefix("ferrokube-node")
            .tempdir()
            .expect("temp dir");
        prepare(data_dir.path());
        let netns_before = netns();
        let mut cluster = Cluster {
            child: None,
            data_dir,
            port: free_port(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            node: true,
            keep_proxy_rules,
            netns_before,
        };
        cluster.spawn();
        cluster
    }

    /// A one-node cluster (`--node-name node`, then `extra`) whose node imports the
    /// project's busybox image (built by `scripts/build-images.sh`) at
    /// start; returned once the node is registered and Ready.
    pub(crate) fn start_ready_node(node: &str, extra: &[&str]) -> Cluster {
        let images = tempfile::tempdir().expect("images dir");
        build_images(images.path());
        let mut args = vec!["--node-name", node];
        args.extend_from_slice(extra);
        let c = Cluster::start_node(&args, |data| {
            let dir = data.join("agent/images");
            std::fs::create_dir_all(&dir).expect("images dir");
            let f = "busybox.tar";
            std::fs::copy(images.path().join(f), dir.join(f)).expect("copy image");
        });
        wait_until_blocking(
            "the node to register",
            Duration::from_secs(120),
            POLL,
            || c.kubectl(&["get", "node", node]).status.success(),
        );
        c.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{node}"),
            "--timeout=120s",
        ]);
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.data_dir.path().join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrokube"))
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &self.port.to_string()])
            .args(if self.node {
                &[][..]
            } else {
                &["--disable-agent", "--disable", "coredns"][..]
            })
            .args(&self.extra_args)
            .args(
                (self.node
                    && !self.keep_proxy_rules
                    && !self
                        .extra_args
                        .iter()
                        .any(|a| a == "--proxy-cleanup-on-exit"))
                .then_some("--proxy-cleanup-on-exit"),
            )
            // FK_TEST_RUST_LOG (e.g. `info,ferrokube_apiserver::wsstream=debug`)
            // to see more of the server in a failing test's log.
            .env(
                "RUST_LOG",
                std::env::var("FK_TEST_RUST_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start ferrokube server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and starts it
    /// again on the same data dir and port.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Replaces the extra flags the server starts with (for the next
    /// [`Cluster::restart`]).
    pub(crate) fn set_extra_args(&mut self, extra: &[&str]) {
        self.extra_args = extra.iter().map(|s| s.to_string()).collect();
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks the server to stop and waits for it (bounded).
    pub(crate) fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        stop_child(&mut c, Duration::from_secs(10));
    }

    /// Whether the server process has exited, and how.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("kubeconfig.yaml")
    }

    /// The server's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs the real kubectl against this cluster.
    pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig(), args)
    }

    /// Runs the real kubectl as the holder of a bearer `token` (no client
    /// certificate), trusting the cluster CA.
    pub(crate) fn kubectl_as(&self, token: &str, args: &[&str]) -> Output {
        let empty = self.data_dir().join("empty-kubeconfig.yaml");
        std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").expect("write a kubeconfig");
        let server = format!("--server=https://127.0.0.1:{}", self.port);
        let ca = format!(
            "--certificate-authority={}",
            self.data_dir().join("tls/ca.crt").display()
        );
        let token = format!("--token={token}");
        let mut all = vec![server.as_str(), ca.as_str(), token.as_str()];
        all.extend_from_slice(args);
        kubectl_with(&empty, &all)
    }

    /// Runs kubectl and returns its stdout, failing the test (with stderr
    /// and the server log) if it fails.
    pub(crate) fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                panic!("ferrokube server exited early ({status}):\n{}", self.log());
            }
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready within {READY_TIMEOUT:?}:\n{}",
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.node {
            // The workloads first, so that no controller makes a pod again
            // while the node goes (a pod started then would keep its
            // network namespace); then the pods, through the node agent (it
            // stops their containers and releases their network), then the
            // server, which stops its containerd and removes its proxy rules.
            let _ = self.kubectl(&[
                "delete",
                "deployments,replicasets,statefulsets,daemonsets,cronjobs,jobs,replicationcontrollers",
                "--all",
                "-A",
                "--wait=false",
            ]);
            let _ = self.kubectl(&[
                "delete",
                "pods",
                "--all",
                "-A",
                "--grace-period=1",
                "--timeout=60s",
            ]);
            wait_pod_netns_gone(&self.netns_before);
            self.stop();
            // Whatever the node left running (a failed test), by pid: the
            // shims of this data dir's containerd and their processes.
            let marker = self.data_dir.path().join("agent/containerd");
            let marker = marker.to_string_lossy();
            if let Ok(procs) = std::fs::read_dir("/proc") {
                for p in procs.flatten() {
                    let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    if cmd.contains("containerd-shim") && cmd.contains(marker.as_ref()) {
                        let _ = Command::new("pkill")
                            .args(["-9", "-P", &pid.to_string()])
                            .status();
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
            }
            // Pod network namespaces the node left (a pod whose sandbox it
            // never removed), now held by no process.
            remove_pod_netns_since(&self.netns_before);
            // The pods' bridge and masquerade table the node agent made.
            ferrokube_kubelet::cni::remove_pod_network("ferrokube0");
        } else {
            self.kill();
        }
    }
}

/// A kubectl (`bin`) command for a kubeconfig; never reads the user's own
/// config.
pub(crate) fn kubectl_command(bin: &Path, kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    cmd
}

/// Runs kubectl with a kubeconfig.
pub(crate) fn kubectl_with(kubeconfig: &Path, args: &[&str]) -> Output {
    kubectl_command(Path::new("kubectl"), kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("run kubectl")
}

/// The last `n` lines of a text.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Builds the project's images (the busybox of `scripts/build-images.sh`)
/// into `dir`, as archives a node imports.
pub(crate) fn build_images(dir: &Path) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/build-images.sh"))
        .arg(dir)
        .output()
        .expect("run scripts/build-images.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops a process the test started: SIGTERM, up to `grace` for it to exit,
/// then SIGKILL.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
