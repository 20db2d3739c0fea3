//! An agent joined to two servers on one etcd (`--server URL1,URL2`) keeps
//! its node working when the server it was using dies: its clients reach
//! the other server through the agent's balancer, the node stays Ready,
//! and a new pod on it runs (scheduled by the surviving server once it
//! holds the scheduler's Lease). The failover time (first server killed to
//! the node's Lease renewed through the second) is printed.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::TwoServers;
use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

/// The agent process; dropping it deletes its pods (through the surviving
/// server), stops it (SIGTERM, then SIGKILL) and removes the pods' network.
struct Agent {
    child: Option<Child>,
    kubeconfig: std::path::PathBuf,
    /// Its data dir (removed after it stopped).
    data: tempfile::TempDir,
    /// The network namespaces there were before it started (node tests run
    /// one at a time, so any other is its pods').
    netns_before: BTreeSet<String>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = common::kubectl_with(
            &self.kubeconfig,
            &[
                "delete",
                "pods",
                "--all",
                "--grace-period=1",
                "--timeout=60s",
            ],
        );
        common::wait_pod_netns_gone(&self.netns_before);
        if let Some(mut c) = self.child.take() {
            common::stop_child(&mut c, Duration::from_secs(20));
        }
        // What it still left goes as `ferrokube killall` removes it.
        match ferrokube_kubelet::killall::killall(self.data.path(), "ferrokube0") {
            Ok(report) => eprintln!("cleaned up the agent's node: {report:?}"),
            Err(e) => eprintln!("cleaning up the agent's node: {e:#}"),
        }
        common::remove_pod_netns_since(&self.netns_before);
    }
}

fn ready(c: &Cluster, node: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "node",
        node,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn phase(c: &Cluster, pod: &str) -> String {
    let out = c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The node's Lease renewTime, as text.
fn renew_time(c: &Cluster, node: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "lease",
        node,
        "-n",
        "kube-node-lease",
        "-o",
        "jsonpath={.spec.renewTime}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts the agent `node` joined to `urls` (its busybox image imported at
/// start); the [`Agent`] stops it, and cleans up through `kubeconfig`.
fn start_agent(urls: &str, token: &str, node: &str, kubeconfig: std::path::PathBuf) -> Agent {
    let netns_before = common::netns();
    let data = tempfile::Builder::new()
        .prefix("ferrokube-agent")
        .tempdir()
        .expect("agent dir");
    // The project's busybox image, imported by the node at start.
    let images = data.path().join("agent/images");
    std::fs::create_dir_all(&images).expect("images dir");
    common::build_images(&images);
    let log = std::fs::File::create(data.path().join("agent.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args(["agent", "--server", urls, "--token", token])
        .args([
            "--node-name",
            node,
            "--kubelet-port",
            "0",
            "--proxy-cleanup-on-exit",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the agent");
    Agent {
        child: Some(child),
        kubeconfig,
        data,
        netns_before,
    }
}

#[test]
fn an_agent_fails_over_to_the_surviving_server() {
    let node = "failover-1";
    let mut two = TwoServers::start(&[], &[]);
    let token = std::fs::read_to_string(two.servers[0].data_dir().join("token")).expect("token");
    let agent = start_agent(&two.urls(), token.trim(), node, two.servers[1].kubeconfig());
    let data = &agent.data;
    let agent_log = || {
        common::tail(
            &std::fs::read_to_string(data.path().join("agent.log")).unwrap_or_default(),
            30,
        )
    };
    let (first, rest) = two.servers.split_at_mut(1);
    let survivor = &rest[0];
    wait_until_blocking(
        "the node to be Ready",
        Duration::from_secs(120),
        POLL,
        || ready(survivor, node) == "True",
    );
    let pod = |name: &str| {
        survivor.kubectl_ok(&[
            "run",
            name,
            "--image=busybox:1.35",
            "--restart=Never",
            "--",
            "sleep",
            "3600",
        ]);
    };
    pod("before");
    wait_until_blocking(
        "the first pod to run",
        Duration::from_secs(120),
        POLL,
        || phase(survivor, "before") == "Running",
    );

    // The first server dies.
    let lease_before = renew_time(survivor, node);
    first[0].kill();
    let killed = Instant::now();
    wait_until_blocking(
        "the node's Lease to be renewed through the second server",
        Duration::from_secs(40),
        Duration::from_millis(200),
        || {
            let t = renew_time(survivor, node);
            !t.is_empty() && t != lease_before
        },
    );
    let failover = killed.elapsed();
    // The node stays Ready past the node monitor's grace period (40 s).
    while killed.elapsed() < Duration::from_secs(50) {
        assert_eq!(ready(survivor, node), "True", "{}", agent_log());
        std::thread::sleep(Duration::from_secs(2));
    }
    pod("after");
    let created = Instant::now();
    wait_until_blocking(
        "a new pod to run on the node",
        Duration::from_secs(120),
        POLL,
        || phase(survivor, "after") == "Running",
    );
    let pod_time = created.elapsed();
    assert_eq!(
        survivor.kubectl_ok(&["get", "pod", "after", "-o", "jsonpath={.spec.nodeName}"]),
        node
    );
    assert!(agent_log().contains("switched servers"), "{}", agent_log());
    println!(
        "failover: node Lease renewed through the second server {:.1} s after the first was killed; \
         a new pod Running {:.1} s after creation",
        failover.as_secs_f64(),
        pod_time.as_secs_f64()
    );
}
