//! `ferrokube agent` joining a server with its join token: a token naming
//! another CA or carrying a wrong secret is refused with a clear message;
//! the right one joins and keeps running until told to stop, its node
//! agent acting as `system:node:<name>` (it registers its Node), while the
//! token itself may do nothing but fetch a node's credentials.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

fn agent(c: &Cluster, token: &str, dir: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args([
            "agent",
            "--server",
            &format!("https://127.0.0.1:{}", c.port),
        ])
        .args([
            "--token",
            token,
            "--node-name",
            "agent-1",
            "--disable-kube-proxy",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent")
}

/// Removes the node network the agent set up, whatever the test's outcome.
struct RemovePodNetworkOnDrop;

impl Drop for RemovePodNetworkOnDrop {
    fn drop(&mut self) {
        ferrokube_kubelet::cni::remove_pod_network("ferrokube0");
    }
}

/// Waits (bounded) for the agent to exit; its status and stderr.
fn exit_of(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agent_joins_with_the_token_and_refuses_wrong_ones() {
    // The joined agent's node sets up the pods' network (its masquerade table).
    let _network = RemovePodNetworkOnDrop;
    let c = Cluster::start();
    let dir = tempfile::tempdir().expect("dir");
    let token = std::fs::read_to_string(c.data_dir().join("token")).expect("token");
    let token = token.trim();

    // Another CA's hash: refused before anything is sent.
    let foreign = format!("K10{}::server:x", "0".repeat(64));
    let (status, err) = exit_of(agent(&c, &foreign, dir.path()));
    assert!(!status.success());
    assert!(err.contains("does not match the join token"), "{err}");

    // The right CA, a wrong secret: the server says no.
    let (prefix, _) = token.split_once("::").expect("token shape");
    let (status, err) = exit_of(agent(&c, &format!("{prefix}::server:wrong"), dir.path()));
    assert!(!status.success());
    assert!(err.contains("Unauthorized") || err.contains("401"), "{err}");

    // The token alone reads nothing.
    let out = c.kubectl_as(token, &["get", "pods"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"Error from server (Forbidden): pods is forbidden: User "system:bootstrap:join-token" cannot list resource "pods" in API group "" in the namespace "default""#
    );

    // The right token: it joins and runs until SIGTERM, then exits cleanly.
    let child = agent(&c, token, dir.path());
    let pid = child.id();
    // Its node agent registers the node, as system:node:agent-1.
    wait_until_blocking(
        "the agent's node to register",
        Duration::from_secs(60),
        POLL,
        || c.kubectl(&["get", "node", "agent-1"]).status.success(),
    );
    let mut child = child;
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the agent exited on its own"
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let (status, err) = exit_of(child);
    assert!(status.success(), "{err}");
    assert!(err.contains("ferrokube agent joined"), "{err}");
}
