//! Node lifecycle, node IPAM and pod GC against a real API server; the test
//! plays the kubelet (node Lease renewals, Ready condition, pod status).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::HashSet;
use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_controllers::podgc::PodGcConfig;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_secs(2);

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

async fn node(client: &Client, name: &str, pod_cidr: Option<&str>) -> Node {
    let mut spec = json!({});
    if let Some(c) = pod_cidr {
        spec = json!({"podCIDR": c, "podCIDRs": [c]});
    }
    let n: Node =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &n)
        .await
        .expect("create node")
}

/// The kubelet's status report: Ready with a fresh heartbeat.
async fn post_ready(client: &Client, name: &str, ready: &str) {
    let t = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": ready,
        "reason": "KubeletReady", "message": "kubelet is posting ready status",
        "lastHeartbeatTime": t, "lastTransitionTime": t}]}});
    Api::<Node>::all(client.clone())
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("post node status");
}

/// The kubelet's heartbeat: its Lease renewed now.
async fn renew_lease(client: &Client, name: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()}});
    match leases.get_opt(name).await.expect("get lease") {
        None => {
            let l: Lease = serde_json::from_value(lease).unwrap();
            leases
                .create(&PostParams::default(), &l)
                .await
                .expect("create lease");
        }
        Some(_) => {
            leases
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"renewTime": now()}})),
                )
                .await
                .expect("renew lease");
        }
    }
}

fn ready(n: &Node) -> Option<(String, String)> {
    let c = n
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn taints(n: &Node) -> HashSet<(String, String)> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> HashSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn bound_pod(client: &Client, name: &str, node: &str, tolerations: serde_json::Value) -> Pod {
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &p)
        .await
        .expect("create pod")
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test]
async fn a_silent_node_turns_unknown_and_tainted_then_recovers() {
    let (_api, client) = api().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    node(&client, "n1", None).await;
    renew_lease(&client, "n1").await;
    post_ready(&client, "n1", "True").await;
    node(&client, "n2", None).await;
    renew_lease(&client, "n2").await;
    post_ready(&client, "n2", "False").await;
    // Pods on n1: one tolerating the unreachable taint for 1 s, one with the
    // 300 s every pod gets by default.
    bound_pod(
        &client,
        "short",
        "n1",
        json!([{"key": "node.kubernetes.io/unreachable",
        "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
    )
    .await;
    bound_pod(&client, "patient", "n1", json!([])).await;
    let t = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    pods.patch_status("patient", &PatchParams::default(), &Patch::Merge(json!({"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}})))
        .await
        .expect("pod ready");

    let _lc = spawn(|c| ferrokube_controllers::nodelifecycle::run(client.clone(), GRACE, c));
    // n2 reports NotReady: not-ready taints.
    wait_for("n2's not-ready taints", LIMIT, || async {
        let n = nodes.get("n2").await.ok()?;
        (taints(&n)
            == set(&[
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
            ]))
        .then_some(())
    })
    .await;
    // n1 is ready and heard from: no taints, while it stays fresh.
    let started = tokio::time::Instant::now();
    while started.elapsed() < GRACE / 2 {
        renew_lease(&client, "n1").await;
        assert!(taints(&nodes.get("n1").await.unwrap()).is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // n1 falls silent: Unknown and unreachable after the grace period.
    let n = wait_for("n1 to turn Unknown", LIMIT, || async {
        let n = nodes.get("n1").await.ok()?;
        (ready(&n)?.0 == "Unknown").then_some(n)
    })
    .await;
    let c = n
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .clone();
    assert_eq!(c.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        c.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    wait_for("n1's unreachable taints", LIMIT, || async {
        let n = nodes.get("n1").await.ok()?;
        (taints(&n)
            == set(&[
                ("node.kubernetes.io/unreachable", "NoSchedule"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
            ]))
        .then_some(())
    })
    .await;
    // The pod tolerating it for 1 s is evicted; the other is not yet.
    let short = wait_for("the 1 s pod to be evicted", LIMIT, || async {
        let p = pods.get_opt("short").await.ok()??;
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    // A bound pod waits for its kubelet; it says why it is going.
    let why = short
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget condition");
    assert_eq!(why.reason.as_deref(), Some("DeletionByTaintManager"));
    let patient = pods.get("patient").await.expect("patient pod");
    assert!(
        patient.metadata.deletion_timestamp.is_none(),
        "a 300 s toleration was cut short"
    );
    // Its kubelet being silent, the pod is no longer Ready.
    wait_for(
        "the pod on the silent node to be marked not ready",
        LIMIT,
        || async {
            let p = pods.get("patient").await.ok()?;
            let c = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (c.status == "False").then_some(())
        },
    )
    .await;
    // Events as Kubernetes' node lifecycle and taint eviction write them.
    for (kind, name, type_, reason, message) in [
        (
            "Node",
            "n1",
            "Normal",
            "RegisteredNode",
            "Node n1 event: Registered Node n1 in Controller",
        ),
        (
            "Node",
            "n1",
            "Normal",
            "NodeNotReady",
            "Node n1 status is now: NodeNotReady",
        ),
        (
            "Pod",
            "patient",
            "Warning",
            "NodeNotReady",
            "Node is not ready",
        ),
        (
            "Pod",
            "short",
            "Normal",
            "TaintManagerEviction",
            "Marking for deletion Pod default/short",
        ),
    ] {
        wait_for(
            &format!("a {reason} event on {kind} {name}"),
            LIMIT,
            || async {
                let events = Api::<Event>::namespaced(client.clone(), "default")
                    .list(&Default::default())
                    .await
                    .ok()?;
                events
                    .items
                    .iter()
                    .any(|e| {
                        e.involved_object.kind.as_deref() == Some(kind)
                            && e.involved_object.name.as_deref() == Some(name)
                            && e.type_.as_deref() == Some(type_)
                            && e.reason.as_deref() == Some(reason)
                            && e.message.as_deref() == Some(message)
                    })
                    .then_some(())
            },
        )
        .await;
    }
    // n2 was never Ready: it went NotReady without this controller's doing.
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .expect("list events");
    assert!(!events.items.iter().any(|e| {
        e.involved_object.name.as_deref() == Some("n2")
            && e.reason.as_deref() == Some("NodeNotReady")
    }));

    // The kubelet is back: lease and Ready; the taints go.
    renew_lease(&client, "n1").await;
    post_ready(&client, "n1", "True").await;
    wait_for("n1's taints to go", LIMIT, || async {
        let n = nodes.get("n1").await.ok()?;
        (taints(&n).is_empty() && ready(&n)?.0 == "True").then_some(())
    })
    .await;
    // A pod with no toleration on a NoExecute-tainted node goes at once.
    post_ready(&client, "n2", "False").await;
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "intolerant"},
        "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    let mut p = serde_json::to_value(p).unwrap();
    // Tolerates not-ready only under another effect: not a match.
    p["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
    let p: Pod = serde_json::from_value(p).unwrap();
    let created = pods.create(&PostParams::default(), &p).await.expect("pod");
    // Admission gave it the not-ready toleration (300 s): it stays.
    let tols = created.spec.unwrap().tolerations.unwrap();
    assert!(tols
        .iter()
        .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
            && t.effect.as_deref() == Some("NoExecute")
            && t.toleration_seconds == Some(300)));
    // Add a NoExecute taint nothing tolerates: evicted at once.
    let mut n2 = nodes.get("n2").await.unwrap();
    let mut ts = n2
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    ts.push(
        serde_json::from_value(json!({"key": "example.com/drain", "effect": "NoExecute"})).unwrap(),
    );
    n2.spec.get_or_insert_with(Default::default).taints = Some(ts);
    nodes
        .replace("n2", &PostParams::default(), &n2)
        .await
        .expect("taint n2");
    wait_for("the intolerant pod to be evicted", LIMIT, || async {
        let p = pods.get_opt("intolerant").await.ok()?;
        p.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn nodes_get_unique_pod_cidrs_across_restarts() {
    let (_api, client) = api().await;
    let nodes: Api<Node> = Api::all(client.clone());
    node(&client, "preset", Some("10.42.0.0/24")).await;
    for n in ["a", "b", "c"] {
        node(&client, n, None).await;
    }
    let cidr = |n: &Node| n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
    {
        let _ipam = spawn(|c| {
            ferrokube_controllers::nodeipam::run(client.clone(), "10.42.0.0/16".into(), c)
        });
        wait_for("every node to have a pod CIDR", LIMIT, || async {
            let list = nodes.list(&Default::default()).await.ok()?;
            list.items.iter().all(|n| cidr(n).is_some()).then_some(())
        })
        .await;
    }
    // A second allocator (a restart) sees what the first gave out.
    let _ipam =
        spawn(|c| ferrokube_controllers::nodeipam::run(client.clone(), "10.42.0.0/16".into(), c));
    node(&client, "d", None).await;
    let list = wait_for("the new node's pod CIDR", LIMIT, || async {
        let list = nodes.list(&Default::default()).await.ok()?;
        list.items.iter().all(|n| cidr(n).is_some()).then_some(list)
    })
    .await;
    let mut seen = HashSet::new();
    for n in &list.items {
        let c = cidr(n).unwrap();
        assert!(c.starts_with("10.42.") && c.ends_with(".0/24"), "{c}");
        assert_eq!(
            n.spec.as_ref().unwrap().pod_cidrs.as_deref(),
            Some(&[c.clone()][..])
        );
        assert!(seen.insert(c.clone()), "{c} given twice");
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.contains("10.42.0.0/24") && seen.contains("10.42.4.0/24"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn pod_gc_removes_surplus_terminated_and_orphaned_pods() {
    let (_api, client) = api().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    node(&client, "alive", None).await;
    for (name, phase) in [
        ("done-1", "Succeeded"),
        ("done-2", "Failed"),
        ("done-3", "Succeeded"),
        ("done-4", "Succeeded"),
    ] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"nodeName": "alive", "containers": [{"name": "c", "image": "busybox"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.expect("pod");
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .expect("status");
        // creationTimestamp has a resolution of a second.
        tokio::time::sleep(Duration::from_millis(1050)).await;
    }
    bound_pod(&client, "running", "alive", json!([])).await;
    bound_pod(&client, "on-ghost", "ghost", json!([])).await;
    let config = PodGcConfig {
        threshold: 2,
        quarantine: Duration::from_secs(1),
        period: Duration::from_millis(300),
    };
    let _gc = spawn(|c| ferrokube_controllers::podgc::run(client.clone(), config, c));
    wait_for(
        "the two oldest terminated pods and the orphan to go",
        LIMIT,
        || async {
            let names: HashSet<String> = pods
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            (names
                == ["done-3", "done-4", "running"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect())
            .then_some(())
        },
    )
    .await;
    // A node that goes takes its pods with it after the quarantine.
    Api::<Node>::all(client.clone())
        .delete("alive", &DeleteParams::default())
        .await
        .expect("delete node");
    wait_for("the gone node's pods to go", LIMIT, || async {
        pods.list(&Default::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}
