//! `kubectl top` end to end on a one-node cluster whose server collects
//! resource metrics itself every 5 s (`--metric-resolution 5s`): a pod
//! burning CPU under a 250m limit shows about 250m, a pod holding 48 MiB
//! in a memory-backed emptyDir shows 48–64 Mi, the node shows, and
//! kubectl's options (`-l`, `-A`, `--containers`, `--sum`, `--sort-by`,
//! `--no-headers`) and its "not available yet" answers read as against
//! Kubernetes with metrics-server.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

const NODE: &str = "fk-top-e2e";

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: burn, labels: {app: burn, tier: load}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: busybox:1.35
    command: ["sh", "-c", "while :; do :; done"]
    resources: {limits: {cpu: 250m}}
---
apiVersion: v1
kind: Pod
metadata: {name: mem, labels: {app: mem, tier: load}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: mem
    image: busybox:1.35
    command: ["sh", "-c", "dd if=/dev/zero of=/cache/f bs=1M count=48 && exec sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - name: cache
    emptyDir: {medium: Memory}
---
apiVersion: v1
kind: Pod
metadata: {name: duo, labels: {app: duo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: first, image: "busybox:1.35", command: ["sleep", "3600"]}
  - {name: second, image: "busybox:1.35", command: ["sleep", "3600"]}
"#;

/// The rows of kubectl's output, split in columns.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

/// `250m` → 250; `1` → 1000.
fn millicores(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<u64>().ok().map(|c| c * 1000),
    }
}

/// `48Mi` → 48.
fn mebibytes(q: &str) -> Option<u64> {
    q.strip_suffix("Mi")?.parse().ok()
}

/// A window (Go's duration text) of about the resolution: 4-6 s.
fn about_5s(w: &str) -> bool {
    w.strip_suffix('s')
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(|s| (4.0..=6.0).contains(&s))
}

/// kubectl's stderr and stdout.
fn answer(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = c.kubectl(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (bounded) until `kubectl top pod <pod> --no-headers` shows a
/// value that `ok` accepts; returns the last row.
fn wait_for_pod(c: &Cluster, pod: &str, what: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (success, out, err) = answer(c, &["top", "pod", pod, "--no-headers"]);
        if success {
            if let Some(row) = rows(&out).into_iter().next() {
                if ok(&row) {
                    return row;
                }
            }
        }
        let last = format!("{out}{err}");
        assert!(
            Instant::now() < deadline,
            "{pod} never showed {what}; last: {last}\n--- server log ---\n{}",
            common::tail(&c.log(), 30)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario on one cluster, step by step"
)]
fn kubectl_top_shows_nodes_and_pods_as_against_metrics_server() {
    let mut args = common::NODE_ALONE.to_vec();
    args.extend(["--metric-resolution", "5s"]);
    let c = Cluster::start_ready_node(NODE, &args);

    // The API is there (discovery), and its APIService is local.
    let resources = c.kubectl_ok(&[
        "api-resources",
        "--api-group=metrics.k8s.io",
        "--no-headers",
    ]);
    let mut names: Vec<String> = rows(&resources).into_iter().map(|r| r[0].clone()).collect();
    names.sort();
    assert_eq!(names, ["nodes", "pods"], "{resources}");
    let svc = c.kubectl_ok(&[
        "get",
        "apiservice",
        "v1beta1.metrics.k8s.io",
        "--no-headers",
    ]);
    assert!(svc.contains("Local") && svc.contains("True"), "{svc}");

    // A brand new pod has no metrics yet: by name NotFound from the
    // metrics API, by selector kubectl's "not available yet".
    c.kubectl_ok(&[
        "run",
        "fresh",
        "--image=busybox:1.35",
        "--labels=app=fresh",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    let (ok, _, err) = answer(&c, &["top", "pod", "fresh"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"Error from server (NotFound): podmetrics.metrics.k8s.io "default/fresh" not found"#
    );
    let (ok, _, err) = answer(&c, &["top", "pod", "-l", "app=fresh"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: metrics not available yet");
    let (ok, _, err) = answer(&c, &["top", "pod", "nobody"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"Error from server (NotFound): pods "nobody" not found"#
    );

    let manifest = c.data_dir().join("top-pods.yaml");
    std::fs::write(&manifest, PODS).expect("write the manifest");
    c.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/burn",
        "pod/mem",
        "pod/duo",
        "pod/fresh",
        "--timeout=120s",
    ]);

    // CPU: a busy loop limited to 250m uses about 250m.
    let burn = wait_for_pod(&c, "burn", "215-265m", |r| {
        r.get(1)
            .and_then(|q| millicores(q))
            .is_some_and(|m| (215..=265).contains(&m))
    });
    assert_eq!(burn[0], "burn");
    assert!(
        burn[2].ends_with("Mi") || burn[2].ends_with("Ki"),
        "{burn:?}"
    );

    // Memory: 48 MiB in a memory-backed emptyDir counts in the working set.
    let mem = wait_for_pod(&c, "mem", "48-64Mi", |r| {
        r.get(2)
            .and_then(|q| mebibytes(q))
            .is_some_and(|m| (48..=64).contains(&m))
    });
    assert_eq!(mem[0], "mem");

    // The node.
    let top_node = c.kubectl_ok(&["top", "node"]);
    let t = rows(&top_node);
    assert_eq!(
        t[0],
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        "{top_node}"
    );
    assert_eq!(t.len(), 2, "{top_node}");
    assert_eq!(t[1][0], NODE);
    assert!(
        millicores(&t[1][1]).is_some_and(|m| m >= 200),
        "the node burns too: {top_node}"
    );
    assert!(
        t[1][2].ends_with('%') && t[1][4].ends_with('%'),
        "{top_node}"
    );
    let one = c.kubectl_ok(&["top", "node", NODE, "--no-headers"]);
    assert_eq!(rows(&one)[0][0], NODE);
    let (ok, _, err) = answer(&c, &["top", "node", "nowhere"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"Error from server (NotFound): node "nowhere" not found"#
    );

    // Selectors, namespaces, containers, sums, order.
    let load = c.kubectl_ok(&["top", "pod", "-l", "tier=load", "--sort-by=cpu"]);
    let t = rows(&load);
    assert_eq!(t[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"], "{load}");
    let order: Vec<&str> = t[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(order, ["burn", "mem"], "{load}");
    let by_memory = c.kubectl_ok(&[
        "top",
        "pod",
        "-l",
        "tier=load",
        "--sort-by=memory",
        "--no-headers",
    ]);
    let order: Vec<String> = rows(&by_memory).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(order, ["mem", "burn"], "{by_memory}");

    let all = wait_until_rows(&c, &["top", "pod", "-A"], 5);
    assert_eq!(all[0], ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]);
    for pod in ["burn", "mem", "duo", "fresh"] {
        assert!(
            all.iter().any(|r| r[0] == "default" && r[1] == pod),
            "{pod}: {all:?}"
        );
    }

    let containers = c.kubectl_ok(&["top", "pod", "duo", "--containers"]);
    let t = rows(&containers);
    assert_eq!(
        t[0],
        ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{containers}"
    );
    let names: Vec<(&str, &str)> = t[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(names, [("duo", "first"), ("duo", "second")], "{containers}");

    let sum = c.kubectl_ok(&["top", "pod", "-l", "tier=load", "--sum"]);
    let t = rows(&sum);
    assert!(
        t.iter()
            .any(|r| r.iter().all(|c| c.chars().all(|ch| ch == '_'))),
        "{sum}"
    );
    let total = t.last().expect("a sum row");
    assert!(millicores(&total[0]).is_some_and(|m| m >= 215), "{sum}");
    assert!(mebibytes(&total[1]).is_some_and(|m| m >= 48), "{sum}");

    // The metrics objects themselves, as `kubectl get` shows them.
    let get = c.kubectl_ok(&["get", "nodes.metrics.k8s.io"]);
    let t = rows(&get);
    assert_eq!(t[0], ["NAME", "CPU", "MEMORY", "SWAP", "WINDOW"], "{get}");
    assert_eq!(t[1][0], NODE);
    assert!(about_5s(&t[1][4]), "{get}");
    let pod = c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/mem",
    ]);
    let pod: serde_json::Value = serde_json::from_str(&pod).expect("JSON");
    assert_eq!(pod["kind"], "PodMetrics");
    assert_eq!(pod["metadata"]["labels"]["app"], "mem");
    assert!(pod["window"].as_str().is_some_and(about_5s), "{pod}");
    eprintln!("{top_node}{load}{containers}{sum}{get}");
    assert_eq!(pod["containers"][0]["name"], "mem");
}

/// Waits (bounded) until kubectl's output has at least `n` rows.
fn wait_until_rows(c: &Cluster, args: &[&str], n: usize) -> Vec<Vec<String>> {
    let mut last = Vec::new();
    wait_until_blocking("enough rows", Duration::from_secs(60), POLL, || {
        let (ok, out, _) = answer(c, args);
        last = rows(&out);
        ok && last.len() >= n
    });
    last
}

/// k3s' `--disable metrics-server`: no metrics API (kubectl's "Metrics API
/// not available") and its APIService goes; without it a server with no
/// node has the API and no metrics yet.
#[test]
fn disabling_metrics_server_removes_the_metrics_api() {
    let mut c = Cluster::start();
    let (ok, _, err) = answer(&c, &["top", "node"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: metrics not available yet");
    let apiservice = ["get", "apiservice", "v1beta1.metrics.k8s.io"];
    wait_until_blocking(
        "the local APIService",
        Duration::from_secs(30),
        POLL,
        || c.kubectl(&apiservice).status.success(),
    );

    c.set_extra_args(&["--disable", "metrics-server"]);
    c.restart();
    let (ok, _, err) = answer(&c, &["top", "pod", "-A"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: Metrics API not available");
    wait_until_blocking(
        "the APIService to go",
        Duration::from_secs(30),
        POLL,
        || {
            let (ok, _, err) = answer(&c, &apiservice);
            !ok && err.contains("NotFound")
        },
    );
}
