//! ResourceQuota and LimitRange with the real kubectl: a quota's third pod
//! is refused with Kubernetes' message, concurrent creates never overshoot
//! it, `kubectl get` / `describe` show its usage, and a LimitRange fills in
//! a pod's requests and limits and refuses one over its maximum.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{kubectl_with, Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Waits until the quota's `status.used` of `resource` reads `want`.
fn wait_used(c: &Cluster, ns: &str, quota: &str, resource: &str, want: &str) {
    let path = format!("jsonpath={{.status.used.{}}}", resource.replace('.', "\\."));
    wait_until_blocking(
        &format!("quota {quota} to show {resource} used {want}"),
        Duration::from_secs(20),
        POLL,
        || {
            let out = c.kubectl(&["get", "quota", quota, "-n", ns, "-o", &path]);
            out.status.success() && String::from_utf8_lossy(&out.stdout) == want
        },
    );
}

fn run_pod(c: &Cluster, ns: &str, name: &str) -> Output {
    c.kubectl(&[
        "run",
        name,
        "-n",
        ns,
        "--image=busybox:1.36",
        "--restart=Never",
    ])
}

#[test]
fn a_pod_quota_refuses_the_third_pod_and_shows_its_usage() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "team"]);
    c.kubectl_ok(&["create", "quota", "q", "-n", "team", "--hard=pods=2"]);
    wait_used(&c, "team", "q", "pods", "0");
    for name in ["p1", "p2"] {
        let out = run_pod(&c, "team", name);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run_pod(&c, "team", "p3");
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    let table = c.kubectl_ok(&["get", "quota", "-n", "team"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "AGE", "REQUEST", "LIMIT"], "{table}");
    assert_eq!(lines[1][0], "q");
    assert_eq!(lines[1][2..], ["pods:", "2/2"], "{table}");
    let described = c.kubectl_ok(&["describe", "quota", "q", "-n", "team"]);
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().any(|r| r[..] == ["Resource", "Used", "Hard"]),
        "{described}"
    );
    assert!(
        rows.iter().any(|r| r[..] == ["pods", "2", "2"]),
        "{described}"
    );
    // A pod deleted gives its place back.
    c.kubectl_ok(&["delete", "pod", "p1", "-n", "team", "--wait=false"]);
    wait_used(&c, "team", "q", "pods", "1");
    let out = run_pod(&c, "team", "p3");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn ten_concurrent_creates_leave_exactly_the_quota() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "rush"]);
    c.kubectl_ok(&["create", "quota", "q", "-n", "rush", "--hard=pods=2"]);
    wait_used(&c, "rush", "q", "pods", "0");
    let kubeconfig = c.kubeconfig();
    let runs: Vec<_> = (0..10)
        .map(|i| {
            let kubeconfig = kubeconfig.clone();
            std::thread::spawn(move || {
                kubectl_with(
                    &kubeconfig,
                    &[
                        "run",
                        &format!("p{i}"),
                        "-n",
                        "rush",
                        "--image=busybox:1.36",
                        "--restart=Never",
                    ],
                )
            })
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let admitted = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(admitted, 2);
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            stderr(o).ends_with(
                "is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
            ),
            "{}",
            stderr(o)
        );
    }
    let pods = c.kubectl_ok(&["get", "pods", "-n", "rush", "--no-headers"]);
    assert_eq!(pods.lines().count(), 2, "{pods}");
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "quota",
            "q",
            "-n",
            "rush",
            "-o",
            "jsonpath={.status.used.pods}/{.status.hard.pods}"
        ]),
        "2/2"
    );
}

const LIMITS: &str = r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    max: {cpu: 500m, memory: 512Mi}
    default: {cpu: 300m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
"#;

const GREEDY: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: greedy
spec:
  containers:
  - name: c
    image: busybox:1.36
    resources:
      limits: {cpu: "1"}
      requests: {cpu: 100m}
"#;

#[test]
fn a_limit_range_fills_in_a_pod_and_refuses_one_over_its_maximum() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "lr"]);
    let limits = c.data_dir().join("limits.yaml");
    std::fs::write(&limits, LIMITS).unwrap();
    c.kubectl_ok(&["apply", "-n", "lr", "-f", &limits.to_string_lossy()]);
    let out = run_pod(&c, "lr", "filled");
    assert!(out.status.success(), "{}", stderr(&out));
    let resources = c.kubectl_ok(&[
        "get",
        "pod",
        "filled",
        "-n",
        "lr",
        "-o",
        "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.limits.memory}",
    ]);
    assert_eq!(resources, "100m 256Mi 300m 256Mi");
    let note = c.kubectl_ok(&[
        "get",
        "pod",
        "filled",
        "-n",
        "lr",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
    ]);
    assert_eq!(
        note,
        "LimitRanger plugin set: cpu, memory request for container filled; cpu, memory limit for container filled"
    );
    let greedy = c.data_dir().join("greedy.yaml");
    std::fs::write(&greedy, GREEDY).unwrap();
    let path = greedy.to_string_lossy().into_owned();
    let out = c.kubectl(&["create", "-n", "lr", "-f", &path]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!("Error from server (Forbidden): error when creating \"{path}\": pods \"greedy\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1")
    );
}
