//! The pod network across nodes, on the multi-node lab (`ferrokube-lab`: a
//! server in the host's namespace with `--disable-agent`, each node an agent
//! in a namespace of its own), seen through the real kubectl: every node
//! gets a pod CIDR of its own, a pod reaches a pod on another node by its IP
//! and is seen there with its own address (no masquerade inside the cluster
//! CIDR), and the API server reaches pods through `pods/proxy`; with the
//! default host-gw backend (routes between nodes) and with VXLAN.

mod common;

use std::time::Duration;

use ferrokube_client::testing::wait::wait_until_blocking;
use ferrokube_lab::{busybox_pod_on, Lab};
use serde_json::json;

const POLL: Duration = Duration::from_millis(500);

/// An HTTP server whose `/cgi-bin/ip` answers the address the request came from.
const WHOAMI: &str = "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www";

fn jsonpath(lab: &Lab, args: &[&str], path: &str) -> String {
    let mut a = args.to_vec();
    let p = format!("jsonpath={path}");
    a.extend(["-o", &p]);
    lab.kubectl_ok(&a).trim().to_string()
}

/// The address in WHOAMI's answer (busybox httpd listens on IPv6 and writes
/// an IPv4 client as `[::ffff:a.b.c.d]`).
fn remote_addr(answer: &str) -> String {
    let addr = answer.trim().trim_start_matches('[').trim_end_matches(']');
    addr.trim_start_matches("::ffff:").to_string()
}

/// What the client pod on node-0 gets from the server pod at `server_ip`
/// (retried for 30 s); on failure, the nodes' routes and the agents' pod
/// network logs.
fn reach(lab: &Lab, server_ip: &str) -> String {
    let url = format!("http://{server_ip}:8080/cgi-bin/ip");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last;
    loop {
        let out = lab.kubectl(&[
            "exec", "client", "--", "timeout", "5", "wget", "-q", "-O-", &url,
        ]);
        if out.status.success() {
            return remote_addr(&String::from_utf8_lossy(&out.stdout));
        }
        last = String::from_utf8_lossy(&out.stderr).to_string();
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    let mut diag = String::new();
    for i in 0..lab.nodes().len() {
        for cmd in [
            &["ip", "route"][..],
            &["ip", "addr"],
            &["nft", "list", "ruleset"],
        ] {
            let out = lab.in_node(i, cmd);
            diag += &format!(
                "--- node-{i}: {} ---\n{}{}\n",
                cmd.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log: String = lab
            .agent_log(i)
            .lines()
            .filter(|l| {
                l.contains("pod network")
                    || l.contains("podnet")
                    || l.contains("ERROR")
                    || l.contains("WARN")
            })
            .collect::<Vec<_>>()
            .join("\n");
        diag += &format!("--- node-{i} agent log ---\n{log}\n");
    }
    panic!("the client pod did not reach {url}: {last}\n{diag}");
}

/// The server pod (WHOAMI) on node-1 and a client pod on node-0, both Ready.
fn start_server_and_client(lab: &Lab) {
    lab.apply(
        "server",
        &busybox_pod_on("server", "node-1", json!({}), WHOAMI),
    );
    lab.apply(
        "client",
        &busybox_pod_on("client", "node-0", json!({}), "sleep 3600"),
    );
    for pod in ["server", "client"] {
        lab.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=120s",
        ]);
    }
}

/// A server pod on node-1 and a client pod on node-0: the client reaches the
/// server by pod IP and the server sees the client pod's own address; the API
/// server (on the host, no node of its own) reaches the server pod too.
fn pod_to_pod_across_nodes(lab: &Lab) {
    // Every node has a pod CIDR of its own.
    let cidrs = jsonpath(lab, &["get", "nodes"], "{.items[*].spec.podCIDR}");
    let cidrs: Vec<&str> = cidrs.split_whitespace().collect();
    assert_eq!(cidrs.len(), 2, "{cidrs:?}");
    assert_ne!(cidrs[0], cidrs[1]);
    start_server_and_client(lab);
    let server_ip = jsonpath(lab, &["get", "pod", "server"], "{.status.podIP}");
    let client_ip = jsonpath(lab, &["get", "pod", "client"], "{.status.podIP}");
    assert_eq!(
        jsonpath(lab, &["get", "pod", "server"], "{.spec.nodeName}"),
        "node-1"
    );
    assert_eq!(
        jsonpath(lab, &["get", "pod", "client"], "{.spec.nodeName}"),
        "node-0"
    );
    let seen = reach(lab, &server_ip);
    assert_eq!(
        seen, client_ip,
        "the server pod saw the client pod's own address"
    );

    // The API server, on the host with no node of its own, reaches the pod.
    let raw = lab.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/server:8080/proxy/cgi-bin/ip",
    ]);
    assert_eq!(remote_addr(&raw), lab.server_ip().to_string());
}

#[test]
fn host_gw_pods_on_different_nodes_see_each_others_own_address() {
    let lab = common::lab::up(2, &[]);
    pod_to_pod_across_nodes(&lab);
    // Node-0 routes node-1's pod CIDR via node-1's address, with the keeper's mark.
    let cidr1 = jsonpath(&lab, &["get", "node", "node-1"], "{.spec.podCIDR}");
    let out = lab.in_node(0, &["ip", "route", "show", "proto", "151"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{cidr1} via {} dev eth0", lab.nodes()[1].ip)
    );
    assert_eq!(
        jsonpath(
            &lab,
            &["get", "node", "node-1"],
            "{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-type}"
        ),
        "host-gw"
    );
}

#[test]
fn vxlan_pods_on_different_nodes_see_each_others_own_address() {
    let mut lab = common::lab::up(2, &["--flannel-backend", "vxlan"]);
    // Each node publishes its VTEP; the other routes its pods through the overlay.
    let data = jsonpath(
        &lab,
        &["get", "node", "node-1"],
        "{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-data}",
    );
    let mac = serde_json::from_str::<serde_json::Value>(&data).expect("backend data")["VtepMAC"]
        .as_str()
        .expect("VtepMAC")
        .to_string();
    let cidr1 = jsonpath(&lab, &["get", "node", "node-1"], "{.spec.podCIDR}");
    let net1 = cidr1.split('/').next().expect("cidr").to_string();
    wait_until_blocking(
        "node-0 to route node-1's pods through flannel.1",
        Duration::from_secs(40),
        POLL,
        || {
            let out = lab.in_node(0, &["ip", "route", "show", "proto", "151"]);
            String::from_utf8_lossy(&out.stdout).trim()
                == format!("{cidr1} via {net1} dev flannel.1 onlink")
        },
    );
    let fdb = lab.in_node(0, &["bridge", "fdb", "show", "dev", "flannel.1"]);
    assert!(
        String::from_utf8_lossy(&fdb.stdout)
            .contains(&format!("{mac} dst {} self permanent", lab.nodes()[1].ip)),
        "{fdb:?}"
    );
    // With VXLAN the host has no VTEP: pods/proxy from the server is not part of
    // this backend (see ARCHITECTURE); pod to pod is.
    start_server_and_client(&lab);
    let server_ip = jsonpath(&lab, &["get", "pod", "server"], "{.status.podIP}");
    let client_ip = jsonpath(&lab, &["get", "pod", "client"], "{.status.podIP}");
    let seen = reach(&lab, &server_ip);
    assert_eq!(
        seen, client_ip,
        "the server pod saw the client pod's own address"
    );
    // The pods' interfaces have the overlay's MTU (the lab's 1500 less 50).
    let mtu = lab.kubectl_ok(&["exec", "client", "--", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1450");

    // `ferrokube killall` on node-0 removes the overlay: the device and the routes.
    lab.kill_agent(0);
    let data_dir = lab.node_data_dir(0).to_string_lossy().into_owned();
    let out = lab.in_node(
        0,
        &[
            env!("CARGO_BIN_EXE_ferrokube"),
            "killall",
            "--data-dir",
            &data_dir,
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("removed flannel.1"), "{said}");
    assert!(said.contains("pod network route(s) (proto 151)"), "{said}");
    let out = lab.in_node(0, &["ip", "route", "show", "proto", "151"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    assert!(!lab
        .in_node(0, &["ip", "link", "show", "flannel.1"])
        .status
        .success());
}
