//! PodDisruptionBudgets and `kubectl drain` end to end on a whole one-node
//! cluster with the real kubectl: a Deployment of 3 with a budget
//! `minAvailable: 2`; `kubectl drain NODE --ignore-daemonsets` cordons the
//! node, evicts one pod, and is refused (429, "Cannot evict pod as it would
//! violate the pod's disruption budget") while the budget is spent; it
//! retries and finishes once the replacements are Ready, never leaving
//! fewer than 2 Ready pods.
//!
//! With the only real node cordoned, the replacements need somewhere to
//! go: a second Node object, `SPARE`, for which the test is the kubelet (it
//! keeps the node's heartbeat fresh and marks the pods bound to it Running
//! and Ready). Until that node exists the replacement stays Pending, so the
//! budget is spent for certain, and a direct eviction gets the 429 kubectl
//! prints. An evicted pod carries the `DisruptionTarget` condition
//! (`EvictionByEvictionAPI`) in every version a watch sees until it is gone.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{kubectl_command, Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

const NODE: &str = "fk-pdb-e2e";
const SPARE: &str = "fk-pdb-spare";

const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "exec sleep 100000"]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"#;

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl json")
}

fn write(c: &Cluster, name: &str, text: &str) -> String {
    let p = c.data_dir().join(name);
    std::fs::write(&p, text).expect("write a manifest");
    p.to_string_lossy().into_owned()
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn web_pods(c: &Cluster) -> Vec<Value> {
    json(c, &["get", "pods", "-l", "app=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn live(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn name(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The spare node's kubelet: a fresh heartbeat, and every pod bound to it
/// Running and Ready.
fn act_as_spare_kubelet(c: &Cluster) {
    let beat = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"the test is this node's kubelet","lastHeartbeatTime":"{t}","lastTransitionTime":"{t}"}}]}}}}"#,
        t = now()
    );
    let _ = c.kubectl(&[
        "patch",
        "node",
        SPARE,
        "--subresource=status",
        "--type=merge",
        "-p",
        &beat,
    ]);
    for p in web_pods(c) {
        if p["spec"]["nodeName"] != SPARE
            || is_ready(&p)
            || !p["metadata"]["deletionTimestamp"].is_null()
        {
            continue;
        }
        let t = now();
        let status = format!(
            r#"{{"status":{{"phase":"Running","podIP":"10.97.250.{n}","podIPs":[{{"ip":"10.97.250.{n}"}}],"startTime":"{t}","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"{t}"}},{{"type":"ContainersReady","status":"True","lastTransitionTime":"{t}"}},{{"type":"PodScheduled","status":"True","lastTransitionTime":"{t}"}}]}}}}"#,
            n = 10 + name(&p).len() % 200,
        );
        let _ = c.kubectl(&[
            "patch",
            "pod",
            &name(&p),
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }
}

/// `kubectl drain` in the background, its output in `log`.
fn start_drain(c: &Cluster, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("drain log");
    kubectl_command(Path::new("kubectl"), &c.kubeconfig())
        .args(["drain", NODE, "--ignore-daemonsets", "--timeout=150s"])
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start kubectl drain")
}

/// Checks, on every look, that the budget holds: at least 2 Ready pods
/// that are not being deleted.
fn assert_budget_holds(pods: &[Value], drain_log: &str) {
    let ready = live(pods).into_iter().filter(|p| is_ready(p)).count();
    assert!(
        ready >= 2,
        "only {ready} Ready pods during the drain: {pods:#?}\n--- drain ---\n{drain_log}"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: a drain followed step by step against the budget on one node"
)]
fn drain_respects_a_disruption_budget() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let app = write(&c, "app.yaml", APP);
    c.kubectl_ok(&["apply", "-f", &app]);
    wait_until_blocking("3 Ready web pods", Duration::from_secs(90), POLL, || {
        let pods = web_pods(&c);
        live(&pods).iter().filter(|p| is_ready(p)).count() == 3
    });
    wait_until_blocking(
        "the budget to allow 1",
        Duration::from_secs(30),
        POLL,
        || json(&c, &["get", "pdb", "web"])["status"]["disruptionsAllowed"] == 1,
    );
    let pdb = json(&c, &["get", "pdb", "web"]);
    let st = &pdb["status"];
    assert_eq!(
        (
            &st["expectedPods"],
            &st["desiredHealthy"],
            &st["currentHealthy"]
        ),
        (&Value::from(3), &Value::from(2), &Value::from(3)),
        "{pdb:#}"
    );
    assert_eq!(st["observedGeneration"], pdb["metadata"]["generation"]);
    let cond = st["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"))
        .expect("DisruptionAllowed condition");
    assert_eq!(
        (&cond["status"], &cond["reason"]),
        (&"True".into(), &"SufficientPods".into())
    );

    // kubectl get pdb: Kubernetes' columns.
    let table = c.kubectl_ok(&["get", "pdb"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..4], ["web", "2", "N/A", "1"], "{table}");

    let originals: Vec<String> = live(&web_pods(&c)).into_iter().map(name).collect();
    let drain_log = c.data_dir().join("drain.log");
    let mut drain = start_drain(&c, &drain_log);
    let read_log = || std::fs::read_to_string(&drain_log).unwrap_or_default();

    // One pod goes; its replacement cannot be placed (the node is
    // cordoned, no other exists): the budget is spent.
    wait_until_blocking("one pod evicted", Duration::from_secs(60), POLL, || {
        let pods = web_pods(&c);
        assert_budget_holds(&pods, &read_log());
        let left = live(&pods)
            .iter()
            .filter(|p| originals.contains(&name(p)))
            .count();
        left == 2
    });
    let node = json(&c, &["get", "node", NODE]);
    assert_eq!(node["spec"]["unschedulable"], true, "cordoned");

    // A direct eviction is refused with the Status kubectl prints.
    let remaining: Vec<String> = live(&web_pods(&c))
        .into_iter()
        .map(name)
        .filter(|n| originals.contains(n))
        .collect();
    let victim = &remaining[0];
    let ev = write(
        &c,
        "eviction.json",
        &format!(
            r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{victim}","namespace":"default"}}}}"#
        ),
    );
    let out = c.kubectl(&[
        "create",
        "--raw",
        &format!("/api/v1/namespaces/default/pods/{victim}/eviction"),
        "-f",
        &ev,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("Error from server (TooManyRequests): {VIOLATION}")),
        "{err}"
    );

    // Drain keeps trying, every 5 s, and says why.
    wait_until_blocking(
        "drain to report the budget",
        Duration::from_secs(30),
        POLL,
        || read_log().contains(VIOLATION),
    );
    let log = read_log();
    assert!(log.contains(&format!("node/{NODE} cordoned")), "{log}");
    assert!(log.contains("(will retry after 5s)"), "{log}");
    assert!(
        drain.try_wait().expect("drain").is_none(),
        "drain ended: {log}"
    );
    let still: usize = live(&web_pods(&c))
        .iter()
        .filter(|p| originals.contains(&name(p)))
        .count();
    assert_eq!(still, 2, "a second pod went while the budget was spent");

    // Somewhere to go: the replacements land on the spare node and turn
    // Ready; the drain finishes, one pod at a time.
    let spare = write(
        &c,
        "spare.yaml",
        &format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {SPARE}
  labels: {{kubernetes.io/hostname: {SPARE}}}
status:
  capacity: {{cpu: "4", memory: 8Gi, pods: "110"}}
  allocatable: {{cpu: "4", memory: 8Gi, pods: "110"}}
  conditions:
  - {{type: Ready, status: "True", reason: KubeletReady, lastHeartbeatTime: "{t}", lastTransitionTime: "{t}"}}
"#,
            t = now()
        ),
    );
    c.kubectl_ok(&["create", "-f", &spare]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        act_as_spare_kubelet(&c);
        let pods = web_pods(&c);
        assert_budget_holds(&pods, &read_log());
        if let Some(s) = drain.try_wait().expect("drain") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "drain did not finish: {}\n{pods:#?}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let log = read_log();
    eprintln!("--- kubectl drain ---\n{log}");
    assert!(status.success(), "drain failed: {log}");
    assert!(log.contains(&format!("node/{NODE} drained")), "{log}");
    for o in &originals {
        assert!(log.contains(&format!("pod/{o} evicted")), "{o}: {log}");
    }
    let pods = web_pods(&c);
    let on_spare = live(&pods)
        .iter()
        .filter(|p| p["spec"]["nodeName"] == SPARE && is_ready(p))
        .count();
    assert_eq!(on_spare, 3, "{pods:#?}");
    wait_until_blocking(
        "the budget to allow 1 again",
        Duration::from_secs(30),
        POLL,
        || json(&c, &["get", "pdb", "web"])["status"]["disruptionsAllowed"] == 1,
    );

    // Clean up what no kubelet will finish: pods on the spare node.
    c.kubectl_ok(&["delete", "deployment", "web", "--wait=false"]);
    wait_until_blocking(
        "the spare node's pods gone",
        Duration::from_secs(60),
        POLL,
        || {
            let _ = c.kubectl(&[
                "delete",
                "pods",
                "-l",
                "app=web",
                "--grace-period=0",
                "--force",
                "--wait=false",
            ]);
            web_pods(&c).iter().all(|p| p["spec"]["nodeName"] != SPARE)
        },
    );
    c.kubectl_ok(&["delete", "node", SPARE]);
    c.kubectl_ok(&["uncordon", NODE]);

    // An evicted pod keeps its DisruptionTarget condition while its kubelet
    // stops it (a pod that ignores SIGTERM, so stopping takes its grace
    // period) until it is deleted.
    let slow = write(
        &c,
        "slow.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 4
  containers:
  - name: slow
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"#,
    );
    c.kubectl_ok(&["apply", "-f", &slow]);
    c.kubectl_ok(&["wait", "--for=condition=Ready", "pod/slow", "--timeout=60s"]);
    let ev = write(
        &c,
        "eviction-slow.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"slow"}}"#,
    );
    // Every change to the pod until it is gone, as a watch sees them.
    let watch_log = c.data_dir().join("watch.json");
    let mut watch = kubectl_command(Path::new("kubectl"), &c.kubeconfig())
        .args([
            "get",
            "pod",
            "slow",
            "--watch",
            "-o",
            "json",
            "--output-watch-events",
        ])
        .stdout(std::fs::File::create(&watch_log).expect("watch log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get --watch");
    std::thread::sleep(Duration::from_millis(1500));
    c.kubectl_ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/slow/eviction",
        "-f",
        &ev,
    ]);
    wait_until_blocking(
        "the evicted pod gone",
        Duration::from_secs(60),
        POLL,
        || {
            std::fs::read_to_string(&watch_log)
                .unwrap_or_default()
                .contains("\"DELETED\"")
        },
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let text = std::fs::read_to_string(&watch_log).unwrap_or_default();
    let events: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .collect();
    // From the first change that marks it, every version of the pod keeps
    // the condition, to the one deleted.
    let marked: Vec<&Value> = events
        .iter()
        .map(|e| &e["object"])
        .skip_while(|p| {
            !p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "DisruptionTarget")
        })
        .collect();
    assert!(!marked.is_empty(), "never marked: {text}");
    for p in &marked {
        let target = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "DisruptionTarget")
            .unwrap_or_else(|| panic!("DisruptionTarget lost: {p:#}"));
        assert_eq!(
            (&target["status"], &target["reason"], &target["message"]),
            (
                &"True".into(),
                &"EvictionByEvictionAPI".into(),
                &"Eviction API: evicting".into()
            ),
            "{p:#}"
        );
    }
    assert_eq!(
        events.last().map(|e| &e["type"]),
        Some(&Value::from("DELETED")),
        "{text}"
    );
}
