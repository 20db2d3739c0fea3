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
    agent_with(c, token, dir, &[])
}

/// The agent `agent-1` (plus `--with-node-id` when in `extra`).
fn agent_with(
    c: &Cluster,
    token: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> std::process::Child {
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
            "--kubelet-port",
            "0",
        ])
        .args(extra)
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
    // Node certificates of 30 s: the agent renews them as it runs.
    let c = Cluster::start_with(&["--cluster-signing-duration", "30s"]);
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
    let child = agent_with(
        &c,
        token,
        dir.path(),
        &[
            "--node-external-ip",
            "203.0.113.7",
            "--node-label",
            "tier=edge,zone=lab",
            "--node-taint",
            "dedicated=edge:NoSchedule",
        ],
    );
    let pid = child.id();
    let started = Instant::now();
    // Its node agent registers the node, as system:node:agent-1.
    wait_until_blocking(
        "the agent's node to register with its addresses",
        Duration::from_secs(60),
        POLL,
        || {
            c.kubectl(&[
                "get",
                "node",
                "agent-1",
                "-o",
                "jsonpath={.status.addresses}",
            ])
            .stdout
            .windows(11)
            .any(|w| w == b"203.0.113.7")
        },
    );
    let got = c.kubectl_ok(&[
        "get",
        "node",
        "agent-1",
        "-o",
        r#"jsonpath={.metadata.labels.tier} {.metadata.labels.zone} {.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect} {.status.addresses[?(@.type=="ExternalIP")].address}"#,
    ]);
    assert_eq!(got, "edge lab dedicated=edge:NoSchedule 203.0.113.7");

    a_second_machine_cannot_take_the_name(&c, token);

    // Past the first certificates' 30 s, the node still writes its Lease
    // (with renewed certificates).
    let past = Duration::from_secs(40).saturating_sub(started.elapsed());
    std::thread::sleep(past);
    wait_until_blocking(
        "the node's Lease to be renewed after its first certificates expired",
        Duration::from_secs(30),
        POLL,
        || {
            let out = c.kubectl(&[
                "get",
                "lease",
                "agent-1",
                "-n",
                "kube-node-lease",
                "-o",
                "jsonpath={.spec.renewTime}",
            ]);
            lease_age_seconds(&String::from_utf8_lossy(&out.stdout)).is_some_and(|a| a < 15)
        },
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
    assert!(err.contains("renewed the node's certificates"), "{err}");
}

/// Another machine (another data dir, so another password) claiming
/// `agent-1` is refused with a message saying why; with `--with-node-id` it
/// joins under a name of its own.
fn a_second_machine_cannot_take_the_name(c: &Cluster, token: &str) {
    // Another machine (another data dir, so another password) claiming the
    // name: refused, with a message saying why.
    let other = tempfile::tempdir().expect("dir");
    let (status, err) = exit_of(agent(c, token, other.path()));
    assert!(!status.success());
    assert!(
        err.contains(r#"node password rejected: the node name \"agent-1\" is taken"#)
            || err.contains(r#"node password rejected: the node name "agent-1" is taken"#),
        "{err}"
    );
    assert!(err.contains("403") || err.contains("Forbidden"), "{err}");
    // With --with-node-id it joins under a name of its own.
    let (id_status, id_err, id_name) = {
        let child = agent_with(c, token, other.path(), &["--with-node-id"]);
        let id = wait_for_file(&other.path().join("agent/node-id"));
        let name = format!("agent-1-{id}");
        wait_until_blocking(
            "the second node to register",
            Duration::from_secs(60),
            POLL,
            || c.kubectl(&["get", "node", &name]).status.success(),
        );
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let (s, e) = exit_of(child);
        (s, e, name)
    };
    assert!(id_status.success(), "{id_err}");
    assert_eq!(id_name.len(), "agent-1-".len() + 8, "{id_name}");
}

/// The trimmed content of `path` once it exists (bounded wait).
fn wait_for_file(path: &std::path::Path) -> String {
    let mut out = String::new();
    wait_until_blocking("a file of the agent", Duration::from_secs(30), POLL, || {
        out = std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string();
        !out.is_empty()
    });
    out
}

/// Seconds since an RFC 3339 MicroTime (`date` reads it), if it parses.
fn lease_age_seconds(t: &str) -> Option<i64> {
    let out = Command::new("date")
        .args(["-d", t.trim(), "+%s"])
        .output()
        .ok()?;
    let then: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(i64::try_from(now).ok()? - then)
}
