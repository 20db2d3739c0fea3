//! Node loss and recovery on the multi-node lab (`ferrokube-lab`), seen
//! through the real kubectl: a node whose agent dies and whose link is cut
//! turns Ready=Unknown ("Kubelet stopped posting node status.") after the
//! node monitor grace period, is tainted unreachable, its pod is evicted
//! after its tolerationSeconds and the ReplicaSet's replacement runs on
//! another node; when the node comes back its taints go, the evicted pod's
//! container is stopped and it runs a new pod. `kubectl cordon`, `drain`
//! and `uncordon` move pods between nodes.

mod common;

use std::time::{Duration, Instant};

use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_lab::Lab;
use serde_json::Value;

const POLL: Duration = Duration::from_millis(500);
/// The lost node's pod sleeps this long: its processes are found by it.
const MARK: u32 = 3607;

fn json(lab: &Lab, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&lab.kubectl_ok(&all)).expect("kubectl json")
}

/// A Deployment of busybox pods sleeping `secs` (a mark to find their
/// processes by), tolerating the unreachable and not-ready NoExecute
/// taints for `toleration` seconds.
fn deployment(name: &str, replicas: u32, secs: u32, toleration: u32) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "{name}"}},
  "spec": {{"replicas": {replicas}, "selector": {{"matchLabels": {{"app": "{name}"}}}},
    "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
      "spec": {{"terminationGracePeriodSeconds": 1,
        "tolerations": [
          {{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": {toleration}}},
          {{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": {toleration}}}],
        "containers": [{{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
          "command": ["sleep", "{secs}"]}}]}}}}}}}}"#
    )
}

/// The pods of `app=<app>`: (name, node, phase, terminating).
fn pods(lab: &Lab, app: &str) -> Vec<(String, String, String, bool)> {
    let v = json(lab, &["get", "pods", "-l", &format!("app={app}")]);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&p["metadata"]["name"]),
                s(&p["spec"]["nodeName"]),
                s(&p["status"]["phase"]),
                !p["metadata"]["deletionTimestamp"].is_null(),
            )
        })
        .collect()
}

/// Whether a process runs `sleep <secs>` on this machine (the nodes share
/// its PID namespace).
fn sleeping(secs: u32) -> bool {
    let out = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("run ps");
    let want = format!("sleep {secs}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == want)
}

fn taint_keys(lab: &Lab, node: &str) -> Vec<String> {
    let v = json(lab, &["get", "node", node]);
    v["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}:{}",
                t["key"].as_str().unwrap_or(""),
                t["effect"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_lost_node_is_tainted_its_pod_moves_and_it_comes_back() {
    let mut lab = common::lab::up(3, &[]);
    lab.apply("web", &deployment("web", 1, MARK, 10));
    lab.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let first = pods(&lab, "web");
    let (old_pod, node) = (first[0].0.clone(), first[0].1.clone());
    let i = lab
        .nodes()
        .iter()
        .position(|n| n.name == node)
        .expect("the pod's node is a lab node");
    assert!(sleeping(MARK), "the pod's container runs");

    // The node's agent dies and its link is cut.
    lab.kill_agent(i);
    lab.cut_link(i);
    let lost = Instant::now();
    wait_until_blocking(
        "the node to turn Unknown",
        Duration::from_secs(50),
        POLL,
        || {
            let v = json(&lab, &["get", "node", &node]);
            v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Ready"
                        && c["status"] == "Unknown"
                        && c["reason"] == "NodeStatusUnknown"
                        && c["message"] == "Kubelet stopped posting node status."
                })
        },
    );
    let unknown_after = lost.elapsed();
    wait_until_blocking(
        "the unreachable taints",
        Duration::from_secs(10),
        POLL,
        || {
            let keys = taint_keys(&lab, &node);
            keys.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string())
                && keys.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
        },
    );

    // Evicted after its 10 s, replaced on another node.
    let mut moved_to = String::new();
    wait_until_blocking(
        "the replacement to run elsewhere",
        Duration::from_secs(60),
        POLL,
        || {
            let now = pods(&lab, "web");
            let evicted =
                now.iter().any(|p| p.0 == old_pod && p.3) || !now.iter().any(|p| p.0 == old_pod);
            let running: Vec<_> = now.iter().filter(|p| !p.3 && p.2 == "Running").collect();
            if evicted && running.len() == 1 && running[0].1 != node {
                moved_to = running[0].1.clone();
                return true;
            }
            false
        },
    );
    println!(
        "{node}: Unknown {:.1} s after its agent died; its pod ran on {moved_to} {:.1} s after",
        unknown_after.as_secs_f64(),
        lost.elapsed().as_secs_f64()
    );

    comes_back(&mut lab, i, &node, &old_pod);
}

/// Node `i` (`node`) comes back: Ready, untainted, the evicted pod gone with
/// its container, and it runs a new pod.
fn comes_back(lab: &mut Lab, i: usize, node: &str, old_pod: &str) {
    lab.restore_link(i);
    lab.start_agent(i);
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("node/{node}"),
        "--timeout=90s",
    ]);
    assert!(
        out.status.success(),
        "{node} is not Ready again:\n{}\n--- its agent ---\n{}",
        String::from_utf8_lossy(&lab.kubectl(&["describe", "node", node]).stdout),
        ferrokube_lab::tail(&lab.agent_log(i), 60)
    );
    wait_until_blocking("the taints to go", Duration::from_secs(30), POLL, || {
        taint_keys(lab, node)
            .iter()
            .all(|k| !k.starts_with("node.kubernetes.io/unreachable"))
    });
    wait_until_blocking(
        "the evicted pod to be gone",
        Duration::from_secs(60),
        POLL,
        || !pods(lab, "web").iter().any(|p| p.0 == old_pod),
    );
    // The replacement (on another node) runs the same command: one left.
    wait_until_blocking(
        "the evicted pod's container to stop",
        Duration::from_secs(30),
        POLL,
        || {
            let out = std::process::Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .expect("ps");
            let want = format!("sleep {MARK}");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.trim() == want)
                .count()
                == 1
        },
    );
    let pinned = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "back"}},
  "spec": {{"nodeSelector": {{"kubernetes.io/hostname": "{node}"}}, "terminationGracePeriodSeconds": 1,
    "containers": [{{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
      "command": ["sleep", "3608"]}}]}}}}"#
    );
    lab.apply("back", &pinned);
    let out = lab.kubectl(&["wait", "--for=condition=Ready", "pod/back", "--timeout=90s"]);
    assert!(
        out.status.success(),
        "the pod on the node that came back does not run:\n{}\n--- {node}'s agent ---\n{}",
        String::from_utf8_lossy(&lab.kubectl(&["describe", "pod", "back"]).stdout),
        ferrokube_lab::tail(&lab.agent_log(i), 80)
    );
    let out = lab.kubectl_ok(&["exec", "back", "--", "echo", "back on", node]);
    assert_eq!(out, format!("back on {node}\n"));
}

#[test]
fn cordon_drain_and_uncordon_move_pods_between_nodes() {
    let lab = common::lab::up(3, &[]);
    lab.apply("app", &deployment("app", 3, 3609, 300));
    lab.kubectl_ok(&["rollout", "status", "deployment/app", "--timeout=120s"]);
    let node = "node-0";

    let out = lab.kubectl_ok(&["cordon", node]);
    assert_eq!(out, format!("node/{node} cordoned\n"));
    let status = lab.kubectl_ok(&["get", "node", node, "--no-headers"]);
    assert!(status.contains("Ready,SchedulingDisabled"), "{status}");

    let out = lab.kubectl_ok(&["drain", node, "--ignore-daemonsets", "--timeout=120s"]);
    assert!(out.contains(&format!("node/{node} drained")), "{out}");
    lab.kubectl_ok(&["rollout", "status", "deployment/app", "--timeout=120s"]);
    wait_until_blocking(
        "the pods to run off the drained node",
        Duration::from_secs(60),
        POLL,
        || {
            let p = pods(&lab, "app");
            p.len() == 3 && p.iter().all(|p| p.1 != node && p.2 == "Running" && !p.3)
        },
    );
    // New pods keep off a cordoned node.
    lab.kubectl_ok(&["scale", "deployment/app", "--replicas=6"]);
    lab.kubectl_ok(&["rollout", "status", "deployment/app", "--timeout=120s"]);
    assert!(
        pods(&lab, "app").iter().all(|p| p.1 != node),
        "a pod went to the cordoned node"
    );

    let out = lab.kubectl_ok(&["uncordon", node]);
    assert_eq!(out, format!("node/{node} uncordoned\n"));
    let pinned = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "again"}},
  "spec": {{"nodeSelector": {{"kubernetes.io/hostname": "{node}"}}, "terminationGracePeriodSeconds": 1,
    "containers": [{{"name": "c", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
      "command": ["sleep", "3610"]}}]}}}}"#
    );
    lab.apply("again", &pinned);
    lab.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/again",
        "--timeout=90s",
    ]);
}
