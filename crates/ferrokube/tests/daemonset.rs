//! DaemonSets end to end on a whole one-node cluster with the real
//! kubectl: the DaemonSet runs one pod on the node (placed by the scheduler
//! through its `matchFields metadata.name` term); a NoSchedule taint added
//! later leaves it running, a NoExecute one it does not tolerate removes
//! it, and it comes back when the taint goes; a rolling update replaces it;
//! `kubectl rollout status|history|undo daemonset` print and act as against
//! Kubernetes.

mod common;

use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

const NODE: &str = "fk-ds-e2e";

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: agent
        image: busybox
        imagePullPolicy: Never
        command: ["sh", "-c", "exec sleep 100000"]
        env: [{name: VERSION, value: "1"}]
"#;

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl json")
}

/// The agent pods not being deleted.
fn pods(c: &Cluster) -> Vec<Value> {
    json(c, &["get", "pods", "-l", "app=agent"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

/// The one running agent pod's (name, VERSION), once there is exactly one.
fn running_one(c: &Cluster, what: &str) -> (String, String) {
    let mut found = None;
    wait_until_blocking(what, Duration::from_secs(90), POLL, || {
        let p = pods(c);
        let all = json(c, &["get", "pods", "-l", "app=agent"]);
        let total = all["items"].as_array().map_or(0, Vec::len);
        if p.len() == 1 && total == 1 && p[0]["status"]["phase"] == "Running" {
            let env = &p[0]["spec"]["containers"][0]["env"][0]["value"];
            found = Some((
                p[0]["metadata"]["name"].as_str().unwrap_or("").to_string(),
                env.as_str().unwrap_or("").to_string(),
            ));
            return true;
        }
        false
    });
    found.unwrap_or_default()
}

fn status(c: &Cluster) -> Value {
    json(c, &["get", "daemonset", "agent"])["status"].clone()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: a DaemonSet's life on one node in order (taints, rollout, undo)"
)]
fn daemonset_follows_taints_rolls_and_undoes() {
    let c = Cluster::start_ready_node(NODE, &["--cluster-cidr", "10.95.0.0/16"]);
    let f = c.data_dir().join("ds.yaml");
    std::fs::write(&f, MANIFEST).expect("manifest");
    c.kubectl_ok(&["apply", "-f", f.to_str().expect("path")]);

    let out = c.kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=120s"]);
    assert!(
        out.ends_with("daemon set \"agent\" successfully rolled out\n"),
        "{out}"
    );
    let (first, version) = running_one(&c, "the agent pod running");
    assert_eq!(version, "1");
    let p = json(&c, &["get", "pod", &first]);
    assert_eq!(p["spec"]["nodeName"], NODE);
    assert_eq!(
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0],
        NODE
    );
    let s = status(&c);
    for f in [
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "numberReady",
        "updatedNumberScheduled",
        "numberAvailable",
    ] {
        assert_eq!(s[f], 1, "{f}: {s}");
    }
    assert_eq!(s["numberMisscheduled"], 0, "{s}");

    // A NoSchedule taint added later leaves the running pod alone.
    c.kubectl_ok(&["taint", "node", NODE, "e2e=x:NoSchedule"]);
    wait_until_blocking(
        "the pod counted misscheduled",
        Duration::from_secs(30),
        POLL,
        || {
            let s = status(&c);
            s["desiredNumberScheduled"] == 0 && s["numberMisscheduled"] == 1
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let (still, _) = running_one(&c, "the pod still running");
    assert_eq!(still, first);
    c.kubectl_ok(&["taint", "node", NODE, "e2e=x:NoSchedule-"]);

    // A NoExecute taint it does not tolerate removes it...
    c.kubectl_ok(&["taint", "node", NODE, "e2e=x:NoExecute"]);
    wait_until_blocking("the pod gone", Duration::from_secs(60), POLL, || {
        json(&c, &["get", "pods", "-l", "app=agent"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    wait_until_blocking("desired 0", Duration::from_secs(30), POLL, || {
        status(&c)["desiredNumberScheduled"] == 0
    });
    // ...and it comes back when the taint goes.
    c.kubectl_ok(&["taint", "node", NODE, "e2e=x:NoExecute-"]);
    let (back, _) = running_one(&c, "the pod back");
    assert_ne!(back, first);

    // A rolling update replaces it.
    c.kubectl_ok(&["set", "env", "daemonset/agent", "VERSION=2"]);
    let out = c.kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let (updated, version) = running_one(&c, "the updated pod");
    assert_eq!(version, "2");
    assert_ne!(updated, back);

    let history = c.kubectl_ok(&["rollout", "history", "daemonset/agent"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines[0], "daemonset.apps/agent ", "{history}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["REVISION", "CHANGE-CAUSE"],
        "{history}"
    );
    let revs: Vec<&str> = lines[2..]
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, ["1", "2"], "{history}");
    let one = c.kubectl_ok(&["rollout", "history", "daemonset/agent", "--revision=1"]);
    assert!(
        one.starts_with("daemonset.apps/agent with revision #1\nPod Template:\n"),
        "{one}"
    );
    assert!(one.contains("VERSION:\t1"), "{one}");

    // Undo restores the previous template.
    let out = c.kubectl_ok(&["rollout", "undo", "daemonset/agent"]);
    assert_eq!(out, "daemonset.apps/agent rolled back\n");
    let out = c.kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let (_, version) = running_one(&c, "the rolled back pod");
    assert_eq!(version, "1");
    let history = c.kubectl_ok(&["rollout", "history", "daemonset/agent"]);
    let revs: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, ["2", "3"], "{history}");
    let out = c.kubectl_ok(&["rollout", "undo", "daemonset/agent", "--to-revision=3"]);
    assert!(out.contains("skipped rollback"), "{out}");

    c.kubectl_ok(&[
        "delete",
        "daemonset",
        "agent",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_until_blocking("the pods gone", Duration::from_secs(60), POLL, || {
        json(&c, &["get", "pods", "-l", "app=agent"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
}
