//! Two `ferrokube server` processes on one etcd (a highly available
//! control plane, as k3s runs with an external datastore): both serve the
//! API; the scheduler and the controller manager run where their Leases
//! are held, and move to the surviving server when the other is killed.

mod common;

use std::time::{Duration, Instant};

use common::servers::TwoServers;
use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

/// The holder of the Lease `kube-system/<name>`, as kubectl shows it.
fn lease_holder(c: &Cluster, name: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A node object with no agent behind it (Ready, room for pods), so that
/// what the scheduler does is seen in the pods' `spec.nodeName`.
fn add_fake_node(c: &Cluster, name: &str) {
    let node = format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}"}}}}"#);
    let file = c.data_dir().join("node.json");
    std::fs::write(&file, node).expect("write the node");
    c.kubectl_ok(&["create", "-f", &file.to_string_lossy()]);
    let now = jiff_now();
    let status = format!(
        r#"{{"status":{{"capacity":{{"cpu":"8","memory":"16Gi","pods":"110"}},
            "allocatable":{{"cpu":"8","memory":"16Gi","pods":"110"}},
            "conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady",
            "message":"fake","lastHeartbeatTime":"{now}","lastTransitionTime":"{now}"}}]}}}}"#
    );
    c.kubectl_ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
}

/// Now, in RFC 3339 (seconds), from the system clock.
fn jiff_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The pods of `app=web` bound to a node.
fn bound_pods(c: &Cluster) -> usize {
    let out = c.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn the_surviving_server_takes_over_scheduling_and_controllers() {
    // The fake node posts no heartbeat: a long grace keeps it untainted.
    let flags = |name| ["--node-name", name, "--node-monitor-grace-period", "10m"];
    let mut two = TwoServers::start(&flags("server-a"), &flags("server-b"));
    let (a, b) = match two.servers.as_mut_slice() {
        [a, b] => (a, b),
        _ => panic!("two servers"),
    };
    // Both serve the same cluster, trusting the same admin credentials.
    a.kubectl_ok(&["create", "configmap", "shared", "--from-literal=k=v"]);
    assert_eq!(
        b.kubectl_ok(&["get", "configmap", "shared", "-o", "jsonpath={.data.k}"]),
        "v"
    );

    // The first server leads both (it started first and keeps renewing).
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        wait_until_blocking(
            &format!("{lease} to be held"),
            Duration::from_secs(60),
            POLL,
            || lease_holder(b, lease).starts_with("server-"),
        );
    }
    let cm_holder = lease_holder(b, "kube-controller-manager");
    let sched_holder = lease_holder(b, "kube-scheduler");
    assert!(cm_holder.starts_with("server-a_"), "{cm_holder}");
    assert!(sched_holder.starts_with("server-a_"), "{sched_holder}");

    add_fake_node(b, "worker");
    b.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=1",
    ]);
    wait_until_blocking(
        "the first pod to be scheduled",
        Duration::from_secs(60),
        POLL,
        || bound_pods(b) == 1,
    );

    // The leader dies without giving its Leases up.
    a.kill();
    let killed = Instant::now();
    b.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    wait_until_blocking(
        "the surviving server to create and schedule the scaled pods",
        Duration::from_secs(90),
        POLL,
        || bound_pods(b) == 3,
    );
    println!(
        "scaled Deployment acted on {:.1} s after the leading server was killed",
        killed.elapsed().as_secs_f64()
    );
    let cm_holder = lease_holder(b, "kube-controller-manager");
    let sched_holder = lease_holder(b, "kube-scheduler");
    assert!(cm_holder.starts_with("server-b_"), "{cm_holder}");
    assert!(sched_holder.starts_with("server-b_"), "{sched_holder}");
    let ready = b.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.status.replicas}",
    ]);
    assert_eq!(ready, "3", "the Deployment's status counts its pods");
}
