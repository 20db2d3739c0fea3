//! NetworkPolicies across nodes, on the multi-node lab (`ferrokube-lab`:
//! the server in the host's namespace, two agents each in a namespace of its
//! own): a server pod on node-0, a client and another pod on node-1. A
//! policy that admits only `role=client` pods into the server, enforced by
//! node-0's agent, lets the client through across the nodes and blocks the
//! other pod; an egress policy enforced by node-1's agent stops the client;
//! deleting both restores traffic.

mod common;

use std::time::Duration;

use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_lab::{busybox_pod_on, Lab};
use serde_json::json;

const POLL: Duration = Duration::from_millis(500);

/// How long a policy change may take to show.
const CONVERGE: Duration = Duration::from_secs(30);

const ONLY_CLIENTS: &str = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
  "metadata": {"name": "only-clients"},
  "spec": {"podSelector": {"matchLabels": {"app": "web"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}"#;

const CLIENT_NO_EGRESS: &str = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
  "metadata": {"name": "client-no-egress"},
  "spec": {"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"]}}"#;

/// Whether pod `from` gets the server's page at `ip`.
fn reaches(lab: &Lab, from: &str, ip: &str) -> bool {
    let url = format!("http://{ip}:8080/");
    let out = lab.kubectl(&[
        "exec", from, "--", "timeout", "3", "wget", "-q", "-O", "-", &url,
    ]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello")
}

fn expect(lab: &Lab, from: &str, ip: &str, reach: bool) {
    let what = format!(
        "{from} {} the server across nodes",
        if reach {
            "to reach"
        } else {
            "to be blocked from"
        }
    );
    wait_until_blocking(&what, CONVERGE, POLL, || reaches(lab, from, ip) == reach);
}

#[test]
fn a_policy_admits_only_clients_across_nodes() {
    let lab = common::lab::up(2, &[]);
    let (n0, n1) = (lab.nodes()[0].name.clone(), lab.nodes()[1].name.clone());
    let web = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www";
    lab.apply(
        "server",
        &busybox_pod_on("server", &n0, json!({"app": "web"}), web),
    );
    lab.apply(
        "client",
        &busybox_pod_on("client", &n1, json!({"role": "client"}), "sleep 3600"),
    );
    lab.apply(
        "other",
        &busybox_pod_on("other", &n1, json!({"role": "other"}), "sleep 3600"),
    );
    for pod in ["server", "client", "other"] {
        lab.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=120s",
        ]);
    }
    let ip = lab.kubectl_ok(&["get", "pod", "server", "-o", "jsonpath={.status.podIP}"]);
    let ip = ip.trim();

    // Pod to pod across the nodes, before any policy.
    expect(&lab, "client", ip, true);
    expect(&lab, "other", ip, true);

    // node-0 admits only clients into the server.
    lab.apply("only-clients", ONLY_CLIENTS);
    expect(&lab, "other", ip, false);
    expect(&lab, "client", ip, true);
    let rules = lab.in_node(0, &["nft", "list", "table", "inet", "ferrokube-netpol"]);
    assert!(
        String::from_utf8_lossy(&rules.stdout).contains(ip),
        "node-0's table isolates the server: {rules:?}"
    );

    // node-1 stops the client's egress.
    lab.apply("client-no-egress", CLIENT_NO_EGRESS);
    expect(&lab, "client", ip, false);

    // No policy: both get through again.
    lab.kubectl_ok(&["delete", "networkpolicy", "--all"]);
    expect(&lab, "client", ip, true);
    expect(&lab, "other", ip, true);
}
