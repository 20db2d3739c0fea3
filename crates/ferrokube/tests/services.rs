//! Services end to end on a whole one-node cluster (`ferrokube server` with
//! its node agent, containerd, the scheduler, the controllers, the proxy
//! and the DNS): a Deployment of three busybox httpd replicas behind a
//! Service, reached by name from a client pod; scaling, readiness, NodePort
//! and deletion change who answers; names resolve through the cluster DNS.
//!
//! There is no `kubectl exec` yet, so the client pod runs the scripts the
//! test drops in a hostPath directory and writes their output beside them.
//! (Debian's static busybox wget crashes on `-T`, so `timeout` bounds it.)

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-svc-e2e";

/// Runs scripts in the client pod through the shared directory.
struct Client {
    dir: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Client {
    fn run(&self, script: &str) -> String {
        let n = self.n.get() + 1;
        self.n.set(n);
        let tmp = self.dir.join(format!("{n}.tmp"));
        std::fs::write(&tmp, script).expect("write script");
        std::fs::rename(&tmp, self.dir.join(format!("{n}.sh"))).expect("publish script");
        let out = self.dir.join(format!("{n}.out"));
        let deadline = Instant::now() + Duration::from_secs(90);
        while !out.exists() {
            assert!(
                Instant::now() < deadline,
                "the client pod did not run: {script}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(&out).expect("read output")
    }

    /// Who answers `n` requests to `url`.
    fn who(&self, url: &str, n: usize) -> Vec<String> {
        let out = self.run(&format!(
            "for i in $(seq {n}); do timeout 5 wget -q -O - {url} || echo FAILED; done\n"
        ));
        out.lines().map(|l| l.trim().to_string()).collect()
    }
}

/// The web pods that are not being deleted.
fn web_pods(c: &Cluster) -> BTreeSet<String> {
    let list: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "json"]))
            .expect("pod list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Every web pod, terminating ones too.
fn any_web_pods(c: &Cluster) -> usize {
    c.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .count()
}

fn ready_endpoints(c: &Cluster) -> usize {
    c.kubectl_ok(&[
        "get",
        "endpoints",
        "web",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ])
    .split_whitespace()
    .count()
}

#[test]
fn services_route_and_resolve_through_real_pods() {
    let shared = tempfile::tempdir().expect("shared dir");
    let ready_dir = tempfile::tempdir().expect("ready dir");

    let c = Cluster::start_ready_node(
        NODE,
        &["--cluster-cidr", "10.99.0.0/16", "--proxy-cleanup-on-exit"],
    );

    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /ready/$(hostname) && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          exec: {{command: ["sh", "-c", "test -f /ready/$(hostname)"]}}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{{name: ready, mountPath: /ready}}]
      volumes:
      - name: ready
        hostPath: {{path: {ready}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-np}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: runner
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "while true; do for f in /jobs/*.sh; do [ -e \"$f\" ] || continue; sh \"$f\" > \"$f.part\" 2>&1; mv \"$f.part\" \"${{f%.sh}}.out\"; rm -f \"$f\"; done; sleep 0.2; done"]
    volumeMounts: [{{name: jobs, mountPath: /jobs}}]
  volumes:
  - name: jobs
    hostPath: {{path: {jobs}}}
"#,
        ready = ready_dir.path().display(),
        jobs = shared.path().display()
    );
    let f = c.data_dir().join("app.yaml");
    std::fs::write(&f, manifest).expect("manifest");
    c.kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=120s",
    ]);
    wait_until_blocking("3 ready endpoints", Duration::from_secs(60), POLL, || {
        ready_endpoints(&c) == 3
    });
    let client = Client {
        dir: shared.path().to_path_buf(),
        n: Default::default(),
    };

    // The client pod started after the Services: it has their link
    // variables (headless ones have none), and the API server's.
    let env = client.run("env | sort\n");
    let web_ip = c.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    for want in [
        format!("WEB_SERVICE_HOST={web_ip}"),
        "WEB_SERVICE_PORT=80".to_string(),
        "WEB_SERVICE_PORT_HTTP=80".to_string(),
        format!("WEB_PORT=tcp://{web_ip}:80"),
        format!("WEB_PORT_80_TCP=tcp://{web_ip}:80"),
        "WEB_PORT_80_TCP_PROTO=tcp".to_string(),
        "WEB_PORT_80_TCP_PORT=80".to_string(),
        format!("WEB_PORT_80_TCP_ADDR={web_ip}"),
        "WEB_NP_SERVICE_PORT_HTTP=80".to_string(),
        "KUBERNETES_SERVICE_PORT_HTTPS=".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(&want)),
            "{want} not in the client's environment:\n{env}"
        );
    }
    assert!(!env.contains("WEB_HEADLESS_SERVICE_HOST"), "{env}");

    // 60 requests by the Service's short name reach all three replicas.
    let pods = web_pods(&c);
    assert_eq!(pods.len(), 3);
    let seen: BTreeSet<String> = client.who("http://web", 60).into_iter().collect();
    assert_eq!(seen, pods, "who answered http://web");

    // Scaled to one, one answers; back to three, three do.
    c.kubectl_ok(&["scale", "deployment/web", "--replicas=1"]);
    wait_until_blocking("one endpoint", Duration::from_secs(60), POLL, || {
        ready_endpoints(&c) == 1
    });
    let one = web_pods(&c);
    let seen: BTreeSet<String> = client.who("http://web", 20).into_iter().collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(one.is_superset(&seen), "{seen:?} not in {one:?}");
    c.kubectl_ok(&["scale", "deployment/web", "--replicas=3"]);
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    wait_until_blocking(
        "3 ready endpoints again",
        Duration::from_secs(60),
        POLL,
        || ready_endpoints(&c) == 3,
    );
    let pods = web_pods(&c);
    let seen: BTreeSet<String> = client.who("http://web", 60).into_iter().collect();
    assert_eq!(seen, pods);

    // A pod that fails readiness stops receiving traffic.
    let sick = pods.iter().next().expect("a pod").clone();
    std::fs::remove_file(ready_dir.path().join(&sick)).expect("unready the pod");
    wait_until_blocking(
        "the pod to leave the endpoints",
        Duration::from_secs(60),
        POLL,
        || ready_endpoints(&c) == 2,
    );
    let seen: BTreeSet<String> = client.who("http://web", 30).into_iter().collect();
    assert!(!seen.contains(&sick), "{sick} still answers: {seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // NodePort on the node's address.
    let node_ip = c.kubectl_ok(&[
        "get",
        "node",
        NODE,
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    let port = c.kubectl_ok(&[
        "get",
        "svc",
        "web-np",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    let answers = client.who(&format!("http://{node_ip}:{port}"), 5);
    assert!(
        answers.iter().all(|a| pods.contains(a)),
        "NodePort answers: {answers:?}"
    );

    // Names through the cluster DNS.
    let cluster_ip = c.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let out = client.run("nslookup web.default.svc.cluster.local\n");
    assert!(out.contains(&cluster_ip), "FQDN lookup: {out}");
    let out = client.run("nslookup web\n");
    assert!(out.contains(&cluster_ip), "short name lookup: {out}");
    let pod_ips = c.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    let out = client.run("nslookup web-headless\n");
    let ready_ips: Vec<&str> = pod_ips.split_whitespace().collect();
    assert!(
        ready_ips.iter().filter(|ip| out.contains(*ip)).count() >= 2,
        "headless lookup gives the ready pods' addresses: {out} ({pod_ips})"
    );
    let out = client.run("nslookup -type=srv _http._tcp.web.default.svc.cluster.local\n");
    assert!(
        out.contains("web.default.svc.cluster.local") && out.contains("80"),
        "SRV: {out}"
    );
    let out = client.run("nslookup nope.default.svc.cluster.local; echo rc=$?\n");
    assert!(
        out.contains("NXDOMAIN") || out.contains("can't find"),
        "NXDOMAIN: {out}"
    );

    // A deleted Service stops answering.
    c.kubectl_ok(&["delete", "svc", "web"]);
    let out = client.run(&format!(
        "sleep 2; timeout 5 wget -q -O - http://{cluster_ip}/ && echo ANSWERED; echo done\n"
    ));
    assert!(
        !out.contains("ANSWERED"),
        "the deleted Service answered: {out}"
    );

    // Clean up what ran: pods first, so the node stops their containers.
    c.kubectl_ok(&["delete", "deployment", "web", "--wait=false"]);
    c.kubectl_ok(&["delete", "pod", "client", "--grace-period=1"]);
    wait_until_blocking("the web pods to go", Duration::from_secs(60), POLL, || {
        any_web_pods(&c) == 0
    });
}
