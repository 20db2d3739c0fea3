//! NetworkPolicies end to end on a whole one-node cluster (the node's
//! network policy controller programming nftables, real busybox pods on the
//! CNI bridge, the real kubectl): ingress isolation with pod, namespace and
//! ipBlock peers and a named port, egress isolation with a DNS exception,
//! reactions to label changes, probes from the node that keep working, and
//! traffic restored when the policies go.

mod common;

use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-netpol-e2e";
const CLUSTER_CIDR: &str = "10.93.0.0/16";
/// The network policy controller's nftables table.
const TABLE: &str = "ferrokube-netpol";

/// How long a policy change may take to show.
const CONVERGE: Duration = Duration::from_secs(30);

/// Removes the controller's table if the server could not (a failed test).
struct TableGuard;

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", TABLE])
            .output();
    }
}

const PODS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: blue, labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && httpd -p 9000 -h /www && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}, {name: other, containerPort: 9000}]
    readinessProbe:
      httpGet: {path: /, port: http}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {role: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox, imagePullPolicy: Never, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {role: other}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox, imagePullPolicy: Never, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: visitor, namespace: blue, labels: {role: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox, imagePullPolicy: Never, command: ["sleep", "3600"]}
"#;

/// Ingress to `app=web` only from `role=client` pods of its namespace.
const ONLY_CLIENTS: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
"#;

/// Ingress to `app=web` from namespaces labelled `team=blue`, on the named
/// port `http` only.
const FROM_BLUE: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-blue}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
    ports: [{port: http}]
"#;

/// Egress of `role=client` pods: DNS only.
const CLIENT_DNS_ONLY: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-dns-only}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
"#;

struct Net<'a> {
    c: &'a Cluster,
    server: String,
}

impl Net<'_> {
    /// Whether pod `ns/from` gets the page of the server on `port`.
    fn reaches(&self, ns: &str, from: &str, port: u16) -> bool {
        let url = format!("http://{}:{port}/", self.server);
        // (Debian's static busybox wget crashes on `-T`: `timeout` bounds it.)
        let out = self.c.kubectl(&[
            "exec", "-n", ns, from, "--", "timeout", "3", "wget", "-q", "-O", "-", &url,
        ]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello")
    }

    /// Waits until `ns/from` reaches the server on `port` (or, with
    /// `reach` false, is blocked).
    fn expect(&self, ns: &str, from: &str, port: u16, reach: bool) {
        let what = format!(
            "{ns}/{from} {} the server on port {port}",
            if reach {
                "to reach"
            } else {
                "to be blocked from"
            }
        );
        wait_until_blocking(&what, CONVERGE, POLL, || {
            self.reaches(ns, from, port) == reach
        });
    }

    fn apply(&self, name: &str, manifest: &str) {
        let f = self.c.data_dir().join(format!("{name}.yaml"));
        std::fs::write(&f, manifest).expect("manifest");
        self.c
            .kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);
    }
}

/// The controller's table as `nft` lists it ("" when there is none).
fn table() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", TABLE])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pod_ip(c: &Cluster, ns: &str, name: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "pod",
        "-n",
        ns,
        name,
        "-o",
        "jsonpath={.status.podIP}",
    ])
    .trim()
    .to_string()
}

#[test]
fn network_policies_isolate_pods_and_let_allowed_traffic_through() {
    let _table = TableGuard;
    let c = Cluster::start_ready_node(NODE, &["--cluster-cidr", CLUSTER_CIDR]);
    let net = Net {
        c: &c,
        server: String::new(),
    };
    net.apply("pods", PODS);
    for (ns, pod) in [
        ("default", "server"),
        ("default", "client"),
        ("default", "other"),
        ("blue", "visitor"),
    ] {
        c.kubectl_ok(&[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=120s",
        ]);
    }
    let net = Net {
        server: pod_ip(&c, "default", "server"),
        ..net
    };
    let other_ip = pod_ip(&c, "default", "other");

    // No policy: everyone gets through.
    for (ns, pod) in [
        ("default", "client"),
        ("default", "other"),
        ("blue", "visitor"),
    ] {
        assert!(net.reaches(ns, pod, 8080), "{ns}/{pod} before any policy");
    }
    ingress_by_pods_and_namespaces(&net);
    ingress_by_blocks_and_pod_labels(&net, &other_ip);
    egress_then_no_policy(&net);

    // The server stops (the harness passes --proxy-cleanup-on-exit): the
    // table goes with it.
    drop(c);
    let gone = std::process::Command::new("nft")
        .args(["list", "table", "inet", TABLE])
        .output()
        .expect("nft");
    assert!(!gone.status.success(), "the table is removed on exit");
}

/// Ingress from pods of the namespace, then of a namespace by its labels on
/// a named port; probes from the node pass.
fn ingress_by_pods_and_namespaces(net: &Net) {
    let c = net.c;
    // Only clients of the server's namespace.
    let applied = std::time::Instant::now();
    net.apply("only-clients", ONLY_CLIENTS);
    // How long from kubectl's apply to the server's chain in the kernel.
    wait_until_blocking(
        "the server's chain",
        CONVERGE,
        Duration::from_millis(20),
        || table().contains(&format!("{} : jump", net.server)),
    );
    println!(
        "policy in the kernel {:?} after kubectl apply returned",
        applied.elapsed()
    );
    net.expect("default", "other", 8080, false);
    net.expect("default", "client", 8080, true);
    net.expect("default", "client", 9000, true);
    net.expect("blue", "visitor", 8080, false);
    // The node's probes still reach the isolated server: it stays Ready.
    std::thread::sleep(Duration::from_secs(3));
    let ready = c.kubectl_ok(&[
        "get",
        "pod",
        "server",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready.trim(), "True", "probes from the node pass");

    // A second policy adds the blue namespace, on the named port only.
    net.apply("from-blue", FROM_BLUE);
    net.expect("blue", "visitor", 8080, true);
    net.expect("blue", "visitor", 9000, false);
    net.expect("default", "other", 8080, false);

    // The namespace loses its label, then gets it back.
    c.kubectl_ok(&["label", "namespace", "blue", "team-"]);
    net.expect("blue", "visitor", 8080, false);
    c.kubectl_ok(&["label", "namespace", "blue", "team=blue"]);
    net.expect("blue", "visitor", 8080, true);
}

/// Ingress from an ipBlock with an exception; a pod's labels change.
fn ingress_by_blocks_and_pod_labels(net: &Net, other_ip: &str) {
    let c = net.c;
    // An ipBlock: the pods' /16 except `other`.
    let octets: Vec<&str> = other_ip.split('.').collect();
    let pods_net = format!("{}.{}.0.0/16", octets[0], octets[1]);
    let block = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: from-block}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: web}}}}\n  ingress:\n\
         \x20 - from: [{{ipBlock: {{cidr: {pods_net}, except: [{other_ip}/32]}}}}]\n    ports: [{{port: 9000}}]\n"
    );
    net.apply("from-block", &block);
    net.expect("blue", "visitor", 9000, true);
    net.expect("default", "other", 9000, false);

    // A pod's labels change: `other` becomes a client.
    c.kubectl_ok(&["label", "pod", "other", "role=client", "--overwrite"]);
    net.expect("default", "other", 8080, true);
    c.kubectl_ok(&["label", "pod", "other", "role=other", "--overwrite"]);
    net.expect("default", "other", 8080, false);
}

/// Egress allowed only to DNS; then every policy deleted.
fn egress_then_no_policy(net: &Net) {
    let c = net.c;
    // Egress: clients may only ask the cluster DNS.
    net.apply("client-dns-only", CLIENT_DNS_ONLY);
    net.expect("default", "client", 8080, false);
    let dns = c.kubectl(&[
        "exec",
        "client",
        "--",
        "timeout",
        "5",
        "nslookup",
        "kubernetes.default.svc.cluster.local",
    ]);
    assert!(
        dns.status.success(),
        "DNS passes the egress policy: {}{}",
        String::from_utf8_lossy(&dns.stdout),
        String::from_utf8_lossy(&dns.stderr)
    );
    // The visitor (also role=client, but in blue) is not isolated for egress.
    net.expect("blue", "visitor", 8080, true);

    // Every policy gone: traffic is as before.
    c.kubectl_ok(&["delete", "networkpolicy", "--all"]);
    for (ns, pod, port) in [
        ("default", "client", 8080),
        ("default", "other", 8080),
        ("blue", "visitor", 9000),
    ] {
        net.expect(ns, pod, port, true);
    }
}

/// `--disable-network-policy`: policies are stored but nothing is enforced
/// (no table), as k3s' flag.
#[test]
fn disable_network_policy_leaves_policies_unenforced() {
    // A table another node left (started to keep its rules) goes first.
    drop(TableGuard);
    let _table = TableGuard;
    let c = Cluster::start_ready_node(
        NODE,
        &["--cluster-cidr", CLUSTER_CIDR, "--disable-network-policy"],
    );
    let net = Net {
        c: &c,
        server: String::new(),
    };
    net.apply("only-clients", ONLY_CLIENTS);
    c.kubectl_ok(&["get", "networkpolicy", "only-clients"]);
    // The node's other components do their work meanwhile; the controller
    // would have written its table well within this.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        table(),
        "",
        "no network policy table with --disable-network-policy"
    );
}
