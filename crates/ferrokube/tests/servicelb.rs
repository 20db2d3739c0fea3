//! ServiceLB end to end on a whole one-node cluster, with the real kubectl:
//! a LoadBalancer Service gets its node's address as EXTERNAL-IP (with k3s'
//! `UpdatedLoadBalancer` Event) and answers on that address and its port;
//! with `externalTrafficPolicy: Local` a Service no node has a ready
//! endpoint for stays `<pending>`; a Service that stops being a
//! LoadBalancer loses its address and its port; `--disable servicelb`
//! leaves LoadBalancers `<pending>`.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-servicelb";
/// The Services' port: nothing else on this machine listens on it.
const PORT: u16 = 18089;

/// A busybox httpd answering "hello from servicelb" on 8080.
const WEB: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
      "terminationGracePeriodSeconds": 1,
      "containers": [{"name": "web", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", "mkdir -p /www && echo hello from servicelb > /www/index.html && exec httpd -f -p 8080 -h /www"],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}}"#;

fn service(name: &str, selector: &str, policy: &str, port: u16) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Service", "metadata": {{"name": "{name}"}},
  "spec": {{"type": "LoadBalancer", "externalTrafficPolicy": "{policy}",
    "selector": {{"app": "{selector}"}}, "ports": [{{"port": {port}, "targetPort": 8080}}]}}}}"#
    )
}

fn apply(c: &Cluster, name: &str, manifest: &str) {
    let file = c.data_dir().join(format!("{name}.json"));
    std::fs::write(&file, manifest).expect("write manifest");
    c.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
}

/// The EXTERNAL-IP column of `kubectl get svc NAME`.
fn external_ip(c: &Cluster, name: &str) -> String {
    let out = c.kubectl_ok(&["get", "svc", name, "--no-headers"]);
    out.split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

fn node_ip(c: &Cluster) -> String {
    let path = "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}";
    c.kubectl_ok(&["get", "node", NODE, "-o", path])
}

fn curl(url: &str) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["-sS", "-m", "5", url])
        .output()
        .expect("run curl")
}

#[test]
fn a_load_balancer_gets_its_nodes_address_and_answers_there() {
    let c = Cluster::start_ready_node(NODE, &["--kubelet-port", "0"]);
    let ip = node_ip(&c);
    assert!(!ip.is_empty());
    apply(
        &c,
        "nobody",
        &service("nobody", "nothing", "Local", PORT + 1),
    );
    apply(&c, "web", WEB);
    apply(&c, "svc", &service("web", "web", "Cluster", PORT));
    wait_until_blocking("web's EXTERNAL-IP", Duration::from_secs(60), POLL, || {
        external_ip(&c, "web") == ip
    });
    let ingress = c.kubectl_ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[*].ip}",
    ]);
    assert_eq!(ingress, ip);
    // k3s' Event for it.
    wait_until_blocking(
        "the UpdatedLoadBalancer Event",
        Duration::from_secs(20),
        POLL,
        || {
            let out = c.kubectl_ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=web,reason=UpdatedLoadBalancer",
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            out.contains(&format!("Updated LoadBalancer with new IPs: [] -> [{ip}]"))
        },
    );
    // Local, and no ready endpoint anywhere: no node serves it.
    assert_eq!(external_ip(&c, "nobody"), "<pending>");
    // The node's port is held by `web`: a younger Service on it is not
    // served there (as k3s' svclb pod would not fit beside the other's).
    apply(&c, "late", &service("late", "web", "Cluster", PORT));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(external_ip(&c, "late"), "<pending>");
    c.kubectl_ok(&["delete", "svc", "late"]);

    // The port answers on the node's address.
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let url = format!("http://{ip}:{PORT}/");
    wait_until_blocking(
        "the load balancer to answer",
        Duration::from_secs(30),
        POLL,
        || {
            let out = curl(&url);
            String::from_utf8_lossy(&out.stdout) == "hello from servicelb\n"
        },
    );

    // No longer a LoadBalancer: the address and the port go.
    c.kubectl_ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec": {"type": "ClusterIP"}}"#,
    ]);
    wait_until_blocking(
        "web's ingress to be cleared",
        Duration::from_secs(30),
        POLL,
        || {
            let out = c.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.status.loadBalancer}"]);
            !out.contains(&ip)
        },
    );
    assert_eq!(external_ip(&c, "web"), "<none>");
    wait_until_blocking("the port to close", Duration::from_secs(30), POLL, || {
        !curl(&url).status.success()
    });
}

#[test]
fn disable_servicelb_leaves_load_balancers_pending() {
    let c = Cluster::start_ready_node(NODE, &["--kubelet-port", "0", "--disable", "servicelb"]);
    apply(&c, "svc", &service("web", "web", "Cluster", PORT));
    // The Service is there, with its node port, and stays pending.
    let node_port = c.kubectl_ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    assert!(
        node_port.parse::<u16>().is_ok_and(|p| p >= 30000),
        "{node_port}"
    );
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(external_ip(&c, "web"), "<pending>");
        std::thread::sleep(POLL);
    }
}
