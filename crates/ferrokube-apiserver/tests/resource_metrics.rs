//! `metrics.k8s.io/v1beta1` as the real kubectl sees it, served from a
//! collector fed with fake scrapes (two rounds of kubelet text at known
//! times): discovery and "Metrics API not available" before it is served,
//! `kubectl top node|pod` with selectors, namespaces, containers and order,
//! the objects' exact JSON, field selectors, metrics-server's NotFound
//! answers, its Table columns, and a watch pushed a new round.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::{start, ServerConfig};
use ferrokube_metrics::{decode, Collector, Options, StaticNodes};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const S: i64 = 1_000_000_000;
/// 2024-12-06T23:00:00Z.
const T0: i64 = 1_733_526_000;

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

/// What a kubelet would say at `t` seconds: the node's CPU counter and
/// working set, and its pods' containers'.
fn kubelet(
    t: i64,
    node_cpu: f64,
    node_mem: u64,
    containers: &[(&str, &str, &str, f64, u64)],
) -> String {
    let ms = t * 1000;
    let mut s = format!(
        "node_cpu_usage_seconds_total {node_cpu} {ms}\nnode_memory_working_set_bytes {node_mem} {ms}\n"
    );
    for (ns, pod, c, cpu, mem) in containers {
        let l = format!("{{container=\"{c}\",namespace=\"{ns}\",pod=\"{pod}\"}}");
        s.push_str(&format!(
            "container_cpu_usage_seconds_total{l} {cpu} {ms}\n\
             container_memory_working_set_bytes{l} {mem} {ms}\n\
             container_start_time_seconds{l} {} {ms}\n",
            T0 - 3600
        ));
    }
    s
}

const MI: u64 = 1 << 20;

/// One scrape round of both nodes at `t`, `k` rounds after the first.
fn round(c: &Collector, now: &AtomicI64, t: i64, k: f64) {
    now.store(t * S, Ordering::SeqCst);
    let n1 = kubelet(
        t,
        1000.0 + 0.5 * 15.0 * k,
        1024 * MI,
        &[
            ("default", "web", "app", 10.0 + 0.25 * 15.0 * k, 48 * MI),
            ("default", "web", "sidecar", 1.0 + 0.375 * k, 4 * MI),
            ("default", "db", "db", 5.0 + 1.5 * k, 200 * MI),
            ("default", "ghost", "g", 1.0 + k, MI),
        ],
    );
    let n2 = kubelet(
        t,
        2000.0 + 15.0 * k,
        2048 * MI,
        &[("kube-system", "dns", "coredns", 3.0 + 0.75 * k, 16 * MI)],
    );
    c.ingest(vec![
        ("n1".into(), decode(&n1, t * S).unwrap()),
        ("n2".into(), decode(&n2, t * S).unwrap()),
    ]);
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: n1, labels: {role: a}}
  status: {allocatable: {cpu: "4", memory: 8Gi}, capacity: {cpu: "4", memory: 8Gi}}
- apiVersion: v1
  kind: Node
  metadata: {name: n2, labels: {role: b}}
  status: {allocatable: {cpu: "2", memory: 4Gi}, capacity: {cpu: "2", memory: 4Gi}}
- apiVersion: v1
  kind: Node
  metadata: {name: n3}
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: default, labels: {app: web}}
  spec: {containers: [{name: app, image: x}, {name: sidecar, image: x}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: db, namespace: default, labels: {app: db}}
  spec: {containers: [{name: db, image: x}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: idle, namespace: default, labels: {app: idle}}
  spec: {containers: [{name: idle, image: x}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: dns, namespace: kube-system, labels: {app: dns}}
  spec: {containers: [{name: coredns, image: x}]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn kubectl_top_and_the_metrics_api_read_as_against_metrics_server() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ferrokube_store::Store> =
        EmbeddedStore::open(&dir.path().join("db"), EmbeddedOptions::default())
            .await
            .unwrap();
    let cancel = CancellationToken::new();
    let _stop = scopeguard(cancel.clone());
    let server = start(
        ServerConfig::for_tests(dir.path().to_path_buf()),
        store,
        cancel.clone(),
    )
    .await
    .unwrap();
    let kc = server.kubeconfig.clone();

    let kc2 = kc.clone();
    let blocking = move |f: fn(&Path)| {
        let kc = kc2.clone();
        tokio::task::spawn_blocking(move || f(&kc))
    };
    // Not served until the collector is.
    blocking(|kc| {
        assert_eq!(
            err(kc, &["top", "node"]),
            "error: Metrics API not available"
        );
    })
    .await
    .unwrap();

    let now = Arc::new(AtomicI64::new(T0 * S));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let collector = Arc::new(
        Collector::with_clock(
            Arc::new(StaticNodes::default()),
            &cert.pem(),
            &key.serialize_pem(),
            Options::with_resolution(Duration::from_secs(15)),
            clock,
        )
        .unwrap(),
    );
    server.serve_resource_metrics(collector.clone()).await;

    let manifest = dir.path().join("objects.yaml");
    std::fs::write(&manifest, OBJECTS).unwrap();
    let m = manifest.clone();
    let kc3 = kc.clone();
    tokio::task::spawn_blocking(move || {
        ok(&kc3, &["apply", "-f", &m.to_string_lossy()]);
        // Status is the kubelet's to write; nodes get theirs through /status.
        for (n, cpu, mem) in [("n1", "4", "8Gi"), ("n2", "2", "4Gi")] {
            let patch = json!({"status": {"allocatable": {"cpu": cpu, "memory": mem}, "capacity": {"cpu": cpu, "memory": mem}}});
            ok(&kc3, &["patch", "node", n, "--subresource=status", "--type=merge", "-p", &patch.to_string()]);
        }
    })
    .await
    .unwrap();

    // Discovery, as metrics-server's.
    blocking(|kc| {
        let doc: Value = serde_json::from_str(&ok(kc, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1"])).unwrap();
        assert_eq!(
            doc,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1", "resources": [
                {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list", "watch"]},
                {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list", "watch"]},
            ]})
        );
        // One round: nothing can report yet (kubectl's own message).
    })
    .await
    .unwrap();

    round(&collector, &now, T0, 0.0);
    blocking(|kc| {
        assert_eq!(
            err(kc, &["top", "node"]),
            "error: metrics not available yet"
        );
        assert_eq!(
            err(kc, &["top", "pod", "web"]),
            r#"Error from server (NotFound): podmetrics.metrics.k8s.io "default/web" not found"#
        );
        assert_eq!(err(kc, &["top", "pod"]), "error: metrics not available yet");
    })
    .await
    .unwrap();

    round(&collector, &now, T0 + 15, 1.0);
    blocking(|kc| {
        let t = rows(&ok(kc, &["top", "node"]));
        assert_eq!(
            t,
            [
                vec!["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
                vec!["n1", "500m", "12%", "1024Mi", "12%"],
                vec!["n2", "1000m", "50%", "2048Mi", "50%"],
                // kubectl's row for a node the list left out.
                vec!["n3", "<unknown>", "<unknown>", "<unknown>", "<unknown>"],
            ]
        );
        let t = rows(&ok(kc, &["top", "node", "-l", "role=b", "--no-headers"]));
        assert_eq!(t, [["n2", "1000m", "50%", "2048Mi", "50%"]]);
        // A node without metrics, one that does not exist.
        assert_eq!(
            err(kc, &["top", "node", "n3"]),
            r#"Error from server (NotFound): nodemetrics.metrics.k8s.io "n3" not found"#
        );
        assert_eq!(
            err(kc, &["top", "node", "n9"]),
            r#"Error from server (NotFound): node "n9" not found"#
        );

        // Pods: the kubelet's "ghost" is no pod of the API; "idle" has no metrics.
        let t = rows(&ok(kc, &["top", "pod"]));
        assert_eq!(
            t,
            [
                vec!["NAME", "CPU(cores)", "MEMORY(bytes)"],
                vec!["db", "100m", "200Mi"],
                vec!["web", "275m", "52Mi"],
            ]
        );
        let t = rows(&ok(kc, &["top", "pod", "-A", "--sort-by=memory"]));
        assert_eq!(
            t,
            [
                vec!["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"],
                vec!["default", "db", "100m", "200Mi"],
                vec!["default", "web", "275m", "52Mi"],
                vec!["kube-system", "dns", "50m", "16Mi"],
            ]
        );
        let t = rows(&ok(kc, &["top", "pod", "-l", "app=web", "--containers"]));
        assert_eq!(
            t,
            [
                vec!["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
                vec!["web", "app", "250m", "48Mi"],
                vec!["web", "sidecar", "25m", "4Mi"],
            ]
        );
        let t = rows(&ok(kc, &["top", "pod", "--sum", "--sort-by=cpu"]));
        assert_eq!(
            t,
            [
                vec!["NAME", "CPU(cores)", "MEMORY(bytes)"],
                vec!["web", "275m", "52Mi"],
                vec!["db", "100m", "200Mi"],
                vec!["________", "________"],
                vec!["375m", "252Mi"],
            ]
        );
        assert_eq!(
            err(kc, &["top", "pod", "-l", "app=idle"]),
            "error: metrics not available yet"
        );
        assert_eq!(
            err(kc, &["top", "pod", "nobody"]),
            r#"Error from server (NotFound): pods "nobody" not found"#
        );

        // The objects.
        let mut web: Value = serde_json::from_str(&ok(
            kc,
            &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web"],
        ))
        .unwrap();
        assert!(web["metadata"]["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        web["metadata"]["creationTimestamp"] = json!("now");
        assert_eq!(
            web,
            json!({
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "creationTimestamp": "now"},
                "timestamp": "2024-12-06T23:00:15Z",
                "window": "15s",
                "containers": [
                    {"name": "app", "usage": {"cpu": "250m", "memory": "48Mi", "swap": "0"}},
                    {"name": "sidecar", "usage": {"cpu": "25m", "memory": "4Mi", "swap": "0"}},
                ],
            })
        );
        let list: Value = serde_json::from_str(&ok(
            kc,
            &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.namespace%3Dkube-system"],
        ))
        .unwrap();
        assert_eq!(list["kind"], "PodMetricsList");
        assert_eq!(list["metadata"], json!({}));
        let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["dns"]);
        let list: Value = serde_json::from_str(&ok(
            kc,
            &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes?fieldSelector=metadata.name%3Dn1"],
        ))
        .unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0]["usage"], json!({"cpu": "500m", "memory": "1Gi", "swap": "0"}));
        // kubectl get: metrics-server's Table.
        let t = rows(&ok(kc, &["get", "nodes.metrics.k8s.io"]));
        assert_eq!(
            t,
            [
                vec!["NAME", "CPU", "MEMORY", "SWAP", "WINDOW"],
                vec!["n1", "500m", "1Gi", "0", "15s"],
                vec!["n2", "1", "2Gi", "0", "15s"],
            ]
        );
        let t = rows(&ok(kc, &["get", "podmetrics", "-n", "kube-system"]));
        assert_eq!(t, [vec!["NAME", "CPU", "MEMORY", "SWAP", "WINDOW"], vec!["dns", "50m", "16Mi", "0", "15s"]]);
    })
    .await
    .unwrap();

    // A watch is pushed the next round.
    let kc4 = kc.clone();
    let watching = tokio::task::spawn_blocking(move || {
        ok(&kc4, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes?watch=1&timeoutSeconds=3&labelSelector=role%3Da"])
    });
    // And kubectl's `get -w` (a Table watch) prints the new round's row.
    let kc5 = kc.clone();
    let get_w = tokio::task::spawn_blocking(move || {
        let out = Command::new("timeout")
            .arg("4")
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(&kc5)
            .args(["get", "nodes.metrics.k8s.io", "-l", "role=a", "-w"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    round(&collector, &now, T0 + 30, 2.0);
    assert_eq!(
        rows(&get_w.await.unwrap()),
        [
            vec!["NAME", "CPU", "MEMORY", "SWAP", "WINDOW"],
            vec!["n1", "500m", "1Gi", "0", "15s"],
            vec!["n1", "500m", "1Gi", "0", "15s"],
        ]
    );
    let events = watching.await.unwrap();
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "n1");
    assert_eq!(events[0]["object"]["timestamp"], "2024-12-06T23:00:30Z");
}

/// Cancels the server when the test ends, also on failure.
fn scopeguard(c: CancellationToken) -> impl Drop {
    struct Stop(CancellationToken);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    Stop(c)
}
