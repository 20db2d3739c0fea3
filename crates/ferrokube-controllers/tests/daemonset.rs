//! The DaemonSet controller against a real API server, over fake Node
//! objects; the test plays the scheduler (binding pods to the node their
//! `matchFields` term names) and the kubelets (pods Running and Ready,
//! terminating pods removed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_controllers::history::REVISION_LABEL;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Binding, Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn daemonset(name: &str, extra_spec: Value, pod_spec: Value) -> DaemonSet {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "img:1"}]}
        }
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    if let (Some(s), Some(e)) = (
        spec["template"]["spec"].as_object_mut(),
        pod_spec.as_object(),
    ) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

async fn add_node(env: &Env, name: &str, labels: Value) {
    Api::<Node>::all(env.client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name, "labels": labels}})),
        )
        .await
        .expect("creating a node");
}

async fn patch_node(env: &Env, name: &str, patch: Value) {
    Api::<Node>::all(env.client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching a node");
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn target_of(p: &Pod) -> Option<String> {
    let v = serde_json::to_value(p.spec.as_ref()?.affinity.as_ref()?).ok()?;
    let f = &v["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"][0];
    (f["key"] == "metadata.name").then(|| f["values"][0].as_str().map(String::from))?
}

fn hash_of(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .cloned()
        .unwrap_or_default()
}

fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The scheduler and kubelets: binds pods to the node they name, marks
/// bound pods Running and Ready (not those that finished), and removes
/// terminating pods. `hold` names nodes (or images) whose pods stay
/// unready.
fn fake_nodes(env: &Env, hold: Vec<String>) -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let list = pods.list(&ListParams::default()).await.map(|l| l.items);
            for p in list.unwrap_or_default() {
                let name = p.metadata.name.clone().unwrap_or_default();
                if p.metadata.deletion_timestamp.is_some() {
                    let _ = pods
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let node = node_of(&p);
                if node.is_empty() {
                    if let Some(target) = target_of(&p) {
                        let b: Binding = obj(json!({
                            "metadata": {"name": name},
                            "target": {"kind": "Node", "name": target}
                        }));
                        let _ = pods
                            .create_subresource::<Binding, Value>(
                                "binding",
                                &name,
                                &PostParams::default(),
                                &b,
                            )
                            .await;
                    }
                    continue;
                }
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                if phase == "Failed"
                    || phase == "Succeeded"
                    || hold.contains(&node)
                    || hold.contains(&image_of(&p))
                {
                    continue;
                }
                if !common::is_ready(&p) {
                    let ip = common::pod_ip(&name);
                    let now = jiff::Timestamp::now().to_string();
                    let status = json!({"status": {
                        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                    }});
                    let _ = pods
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    cancel
}

async fn get_ds(env: &Env, name: &str) -> DaemonSet {
    env.api::<DaemonSet>()
        .get(name)
        .await
        .expect("getting the daemon set")
}

fn status_tuple(ds: &DaemonSet) -> [i64; 7] {
    let s = ds.status.clone().unwrap_or_default();
    [
        s.desired_number_scheduled.into(),
        s.current_number_scheduled.into(),
        s.number_ready.into(),
        s.updated_number_scheduled.unwrap_or(0).into(),
        s.number_available.unwrap_or(0).into(),
        s.number_unavailable.unwrap_or(0).into(),
        s.number_misscheduled.into(),
    ]
}

/// Live pods by node.
async fn pods_by_node(env: &Env, app: &str) -> BTreeMap<String, Vec<Pod>> {
    let mut m: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in env.live_pods(&format!("app={app}")).await {
        let n = if node_of(&p).is_empty() {
            target_of(&p).unwrap_or_default()
        } else {
            node_of(&p)
        };
        m.entry(n).or_default().push(p);
    }
    m
}

async fn wait_nodes(env: &Env, app: &str, want: &[&str]) -> BTreeMap<String, Vec<Pod>> {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    wait_for(
        &format!("pods of {app} on exactly {want:?}"),
        WAIT,
        || async {
            let m = pods_by_node(env, app).await;
            let have: BTreeSet<String> = m.keys().cloned().collect();
            (have == want && m.values().all(|p| p.len() == 1)).then_some(m)
        },
    )
    .await
}

async fn revisions(env: &Env) -> Vec<ControllerRevision> {
    let mut r = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .expect("listing revisions")
        .items;
    r.sort_by_key(|r| r.revision);
    r
}

async fn events(env: &Env, reason: &str) -> Vec<Event> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn set_image(env: &Env, name: &str, image: &str) {
    env.api::<DaemonSet>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": image}]}}}})),
        )
        .await
        .expect("setting the image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_eligible_node_pinned_by_match_fields() {
    let env = Env::start("ds-place").await;
    add_node(&env, "n1", json!({"role": "w"})).await;
    add_node(&env, "n2", json!({"role": "w"})).await;
    add_node(&env, "n3", json!({"role": "db"})).await;
    let _nodes = fake_nodes(&env, vec![]);
    let ds = env
        .api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({"nodeSelector": {"role": "w"}})),
        )
        .await
        .expect("creating");
    let m = wait_nodes(&env, "agent", &["n1", "n2"]).await;
    let revs = revisions(&env).await;
    assert_eq!(revs.len(), 1);
    let rev = &revs[0];
    assert_eq!(rev.revision, 1);
    let hash = rev
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .cloned()
        .unwrap_or_default();
    assert_eq!(rev.metadata.name, Some(format!("agent-{hash}")));
    assert_eq!(
        rev.data
            .as_ref()
            .map(|d| d.0["spec"]["template"]["$patch"].clone()),
        Some(json!("replace"))
    );
    for (node, pods) in &m {
        let p = &pods[0];
        assert_eq!(target_of(p).as_deref(), Some(node.as_str()));
        assert_eq!(hash_of(p), hash);
        assert!(p
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("agent-"));
        let r = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str()),
            ("DaemonSet", ds.metadata.uid.as_deref().unwrap_or(""))
        );
        let tolerations: Vec<(String, String)> = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.effect.unwrap_or_default()))
            .collect();
        for want in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ] {
            assert!(
                tolerations.contains(&(want.0.into(), want.1.into())),
                "{want:?} in {tolerations:?}"
            );
        }
    }
    let ds = wait_for("status of 2 ready", WAIT, || async {
        let d = get_ds(&env, "agent").await;
        (status_tuple(&d) == [2, 2, 2, 2, 2, 0, 0]).then_some(d)
    })
    .await;
    let s = ds.status.clone().unwrap_or_default();
    assert_eq!(s.observed_generation, ds.metadata.generation);
    assert!(!events(&env, "SuccessfulCreate").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_joining_leaving_and_taints() {
    let env = Env::start("ds-nodes").await;
    add_node(&env, "n1", json!({"role": "w"})).await;
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({"nodeSelector": {"role": "w"}})),
        )
        .await
        .expect("creating");
    wait_nodes(&env, "agent", &["n1"]).await;
    // A node that joins gets its pod.
    add_node(&env, "n2", json!({"role": "w"})).await;
    let before = wait_nodes(&env, "agent", &["n1", "n2"]).await;
    // A node that stops matching loses it.
    patch_node(&env, "n2", json!({"metadata": {"labels": {"role": "db"}}})).await;
    wait_nodes(&env, "agent", &["n1"]).await;
    // A NoSchedule taint added later does not remove a running pod.
    let p1 = before["n1"][0].metadata.uid.clone();
    patch_node(
        &env,
        "n1",
        json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = wait_nodes(&env, "agent", &["n1"]).await;
    assert_eq!(m["n1"][0].metadata.uid, p1);
    wait_for(
        "desired 0, misscheduled 0 under NoSchedule",
        WAIT,
        || async {
            let d = get_ds(&env, "agent").await;
            let t = status_tuple(&d);
            (t[0] == 0 && t[6] == 1).then_some(())
        },
    )
    .await;
    // A NoExecute one does.
    patch_node(
        &env,
        "n1",
        json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]}}),
    )
    .await;
    wait_nodes(&env, "agent", &[]).await;
    // Back when the taint goes.
    patch_node(&env, "n1", json!({"spec": {"taints": null}})).await;
    let m = wait_nodes(&env, "agent", &["n1"]).await;
    assert_ne!(m["n1"][0].metadata.uid, p1);
    // Troubled-node taints are tolerated.
    patch_node(
        &env,
        "n1",
        json!({"spec": {"unschedulable": true, "taints": [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
    )
    .await;
    wait_for("desired 1 on a cordoned, not-ready node", WAIT, || async {
        let d = get_ds(&env, "agent").await;
        (status_tuple(&d)[0] == 1 && status_tuple(&d)[6] == 0).then_some(())
    })
    .await;
    wait_nodes(&env, "agent", &["n1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pods_are_replaced_with_an_event() {
    let env = Env::start("ds-failed").await;
    add_node(&env, "n1", json!({})).await;
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({})),
        )
        .await
        .expect("creating");
    let m = wait_nodes(&env, "agent", &["n1"]).await;
    let p = &m["n1"][0];
    let name = p.metadata.name.clone().unwrap_or_default();
    wait_for("the pod running", WAIT, || async {
        let p = env.api::<Pod>().get(&name).await.ok()?;
        common::is_ready(&p).then_some(())
    })
    .await;
    env.api::<Pod>()
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .expect("failing the pod");
    wait_for("a new pod", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        m.get("n1")
            .filter(|p| p.len() == 1 && p[0].metadata.name.as_deref() != Some(&name))
            .map(|_| ())
    })
    .await;
    let ev = events(&env, "FailedDaemonPod").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0].message.as_deref(),
        Some(&*format!(
            "Found failed daemon pod ds-failed/{name} on node n1, will try to kill it"
        ))
    );
    assert_eq!(ev[0].type_.as_deref(), Some("Warning"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_within_max_unavailable_and_rollback() {
    let env = Env::start("ds-roll").await;
    for n in ["n1", "n2", "n3", "n4"] {
        add_node(&env, n, json!({})).await;
    }
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset(
                "agent",
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}),
                json!({}),
            ),
        )
        .await
        .expect("creating");
    wait_for("4 ready", WAIT, || async {
        (status_tuple(&get_ds(&env, "agent").await)[4] == 4).then_some(())
    })
    .await;
    set_image(&env, "agent", "img:2").await;
    // Watch the rollout: never more than 2 nodes without an available pod.
    let worst = std::sync::atomic::AtomicUsize::new(0);
    wait_for("all updated", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        let up = ["n1", "n2", "n3", "n4"]
            .iter()
            .filter(|n| m.get(**n).is_some_and(|p| p.iter().any(common::is_ready)))
            .count();
        worst.fetch_max(4 - up, std::sync::atomic::Ordering::Relaxed);
        let d = get_ds(&env, "agent").await;
        let done = d.metadata.generation == d.status.as_ref().and_then(|s| s.observed_generation)
            && status_tuple(&d)[3] == 4
            && status_tuple(&d)[4] == 4
            && m.values().flatten().all(|p| image_of(p) == "img:2");
        done.then_some(())
    })
    .await;
    let worst = worst.into_inner();
    assert!(worst <= 2, "{worst} nodes were unavailable at once");
    let revs = revisions(&env).await;
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);
    // Rollback as kubectl does: the old revision's data as a patch.
    let old = revs[0].data.clone().map(|d| d.0).unwrap_or_default();
    env.api::<DaemonSet>()
        .patch("agent", &PatchParams::default(), &Patch::Strategic(old))
        .await
        .expect("rolling back");
    wait_for("back on img:1", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        let d = get_ds(&env, "agent").await;
        (m.len() == 4
            && m.values().flatten().all(|p| image_of(p) == "img:1")
            && status_tuple(&d)[3] == 4)
            .then_some(())
    })
    .await;
    // The old revision is renumbered the newest; no new one is made.
    let revs = revisions(&env).await;
    let nums: Vec<i64> = revs.iter().map(|r| r.revision).collect();
    assert_eq!(nums, [2, 3]);
    assert_eq!(revs[1].metadata.name, revisions_name_of(&revs, 3));
}

fn revisions_name_of(revs: &[ControllerRevision], n: i64) -> Option<String> {
    revs.iter()
        .find(|r| r.revision == n)
        .and_then(|r| r.metadata.name.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_starts_the_new_pod_before_removing_the_old() {
    let env = Env::start("ds-surge").await;
    add_node(&env, "n1", json!({})).await;
    add_node(&env, "n2", json!({})).await;
    let nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset(
                "agent",
                json!({"updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}),
                json!({}),
            ),
        )
        .await
        .expect("creating");
    wait_for("2 ready", WAIT, || async {
        (status_tuple(&get_ds(&env, "agent").await)[4] == 2).then_some(())
    })
    .await;
    // New pods stay unready: the old ones must stay, one surge pod only.
    nodes.cancel();
    let _held = fake_nodes(&env, vec!["n1".into(), "n2".into()]);
    set_image(&env, "agent", "img:2").await;
    let m = wait_for("one node with old and new pod", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        (m.values().filter(|p| p.len() == 2).count() == 1).then_some(m)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m2 = pods_by_node(&env, "agent").await;
    assert_eq!(
        m2.values().map(Vec::len).sum::<usize>(),
        3,
        "one surge pod at a time: {m:?}"
    );
    assert!(
        m2.values()
            .flatten()
            .filter(|p| image_of(p) == "img:1")
            .count()
            == 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_replaces_only_deleted_pods() {
    let env = Env::start("ds-ondelete").await;
    add_node(&env, "n1", json!({})).await;
    add_node(&env, "n2", json!({})).await;
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset(
                "agent",
                json!({"updateStrategy": {"type": "OnDelete"}}),
                json!({}),
            ),
        )
        .await
        .expect("creating");
    let m = wait_nodes(&env, "agent", &["n1", "n2"]).await;
    set_image(&env, "agent", "img:2").await;
    wait_for("the new generation observed", WAIT, || async {
        let d = get_ds(&env, "agent").await;
        (d.metadata.generation == d.status.as_ref().and_then(|s| s.observed_generation))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = pods_by_node(&env, "agent").await;
    assert_eq!(still["n1"][0].metadata.uid, m["n1"][0].metadata.uid);
    assert_eq!(still["n2"][0].metadata.uid, m["n2"][0].metadata.uid);
    let name = m["n1"][0].metadata.name.clone().unwrap_or_default();
    env.api::<Pod>()
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting");
    let m = wait_for("n1 replaced with img:2", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        m.get("n1")
            .is_some_and(|p| p.len() == 1 && image_of(&p[0]) == "img:2")
            .then_some(m)
    })
    .await;
    assert_eq!(image_of(&m["n2"][0]), "img:1");
    let d = wait_for("1 of 2 updated", WAIT, || async {
        let d = get_ds(&env, "agent").await;
        (status_tuple(&d)[3] == 1 && status_tuple(&d)[0] == 2).then_some(d)
    })
    .await;
    assert_eq!(d.status.and_then(|s| s.observed_generation), Some(2));
}

/// Runs the real kubectl against the test server; `None` if it is not
/// installed.
async fn kubectl(env: &Env, args: &[&str]) -> Option<(bool, String)> {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&env.api.kubeconfig)
        .arg("-n")
        .arg(&env.ns)
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("kubectl timed out")
        .ok()?;
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_history_and_undo() {
    let env = Env::start("ds-kubectl").await;
    add_node(&env, "n1", json!({})).await;
    add_node(&env, "n2", json!({})).await;
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({})),
        )
        .await
        .expect("creating");
    let Some((ok, out)) = kubectl(
        &env,
        &["rollout", "status", "daemonset/agent", "--timeout=20s"],
    )
    .await
    else {
        eprintln!("kubectl not installed: skipped");
        return;
    };
    assert!(ok, "{out}");
    assert!(
        out.ends_with("daemon set \"agent\" successfully rolled out\n"),
        "{out}"
    );
    set_image(&env, "agent", "img:2").await;
    let (ok, out) = kubectl(
        &env,
        &["rollout", "status", "daemonset/agent", "--timeout=20s"],
    )
    .await
    .unwrap_or_default();
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = kubectl(&env, &["rollout", "history", "daemonset/agent"])
        .await
        .unwrap_or_default();
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "daemonset.apps/agent ", "{out}");
    let revs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revs, ["1", "2"], "{out}");
    let (ok, out) = kubectl(
        &env,
        &["rollout", "history", "daemonset/agent", "--revision=1"],
    )
    .await
    .unwrap_or_default();
    assert!(
        ok && out.contains("img:1") && !out.contains("img:2"),
        "{out}"
    );
    let (ok, out) = kubectl(&env, &["rollout", "undo", "daemonset/agent"])
        .await
        .unwrap_or_default();
    assert!(ok, "{out}");
    assert_eq!(out, "daemonset.apps/agent rolled back\n");
    let (ok, out) = kubectl(
        &env,
        &["rollout", "status", "daemonset/agent", "--timeout=20s"],
    )
    .await
    .unwrap_or_default();
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let m = pods_by_node(&env, "agent").await;
    assert!(
        m.values().flatten().all(|p| image_of(p) == "img:1"),
        "{m:?}"
    );
    let (ok, out) = kubectl(&env, &["rollout", "history", "daemonset/agent"])
        .await
        .unwrap_or_default();
    let revs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert!(ok);
    assert_eq!(revs, ["2", "3"], "{out}");
    // Undo to the template it already has: kubectl says it skipped.
    let (ok, out) = kubectl(
        &env,
        &["rollout", "undo", "daemonset/agent", "--to-revision=3"],
    )
    .await
    .unwrap_or_default();
    assert!(ok, "{out}");
    assert!(out.contains("skipped rollback"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_without_unnecessary_restarts() {
    let env = Env::start("ds-rollback").await;
    for n in ["n1", "n2", "n3"] {
        add_node(&env, n, json!({})).await;
    }
    let _nodes = fake_nodes(&env, vec!["img:bad".into()]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({})),
        )
        .await
        .expect("creating");
    wait_for("3 available", WAIT, || async {
        (status_tuple(&get_ds(&env, "agent").await)[4] == 3).then_some(())
    })
    .await;
    let before = pods_by_node(&env, "agent").await;
    // An image that never turns ready: the rollout stops after one node.
    set_image(&env, "agent", "img:bad").await;
    let bad = wait_for("one pod on the bad image", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        let bad: Vec<String> = m
            .iter()
            .filter(|(_, p)| p.iter().any(|p| image_of(p) == "img:bad"))
            .map(|(n, _)| n.clone())
            .collect();
        (bad.len() == 1 && m.len() == 3).then(|| bad[0].clone())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = pods_by_node(&env, "agent").await;
    assert_eq!(
        m.values()
            .flatten()
            .filter(|p| image_of(p) == "img:bad")
            .count(),
        1,
        "the rollout waits for the unavailable pod"
    );
    // Roll back: only the bad pod is replaced.
    set_image(&env, "agent", "img:1").await;
    wait_for("all on img:1 and available", WAIT, || async {
        let m = pods_by_node(&env, "agent").await;
        let d = get_ds(&env, "agent").await;
        (m.len() == 3
            && m.values().flatten().all(|p| image_of(p) == "img:1")
            && status_tuple(&d)[4] == 3
            && status_tuple(&d)[3] == 3)
            .then_some(())
    })
    .await;
    let after = pods_by_node(&env, "agent").await;
    for n in ["n1", "n2", "n3"] {
        if n == bad {
            continue;
        }
        assert_eq!(
            after[n][0].metadata.uid, before[n][0].metadata.uid,
            "{n} restarted"
        );
    }
}

async fn count_revisions(env: &Env, selector: &str) -> usize {
    env.api::<ControllerRevision>()
        .list(&ListParams::default().labels(selector))
        .await
        .expect("listing revisions")
        .items
        .len()
}

/// Kubernetes' conformance test "should manage the lifecycle of a
/// ControllerRevision", step by step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_revision_lifecycle_as_conformance() {
    let env = Env::start("ds-crlife").await;
    add_node(&env, "n1", json!({})).await;
    let _nodes = fake_nodes(&env, vec![]);
    let ds = env
        .api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({})),
        )
        .await
        .expect("creating");
    wait_for("1 available", WAIT, || async {
        (status_tuple(&get_ds(&env, "agent").await)[4] == 1).then_some(())
    })
    .await;
    let crs = env.api::<ControllerRevision>();
    let initial = wait_for("one revision", WAIT, || async {
        let r = revisions(&env).await;
        (r.len() == 1).then(|| r[0].clone())
    })
    .await;
    let initial_name = initial.metadata.name.clone().unwrap_or_default();
    crs.patch(
        &initial_name,
        &PatchParams::default(),
        &Patch::Strategic(json!({"metadata": {"labels": {&initial_name: "patched"}}})),
    )
    .await
    .expect("patching the revision");
    // (The change wakes the DaemonSet; let it look before the next step.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A revision made by hand, owned by the DaemonSet, with the same data.
    let manual: ControllerRevision = obj(json!({
        "metadata": {
            "name": "agent-manual",
            "labels": {"app": "agent", REVISION_LABEL: "manual"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                "uid": ds.metadata.uid, "controller": true, "blockOwnerDeletion": true}]
        },
        "data": initial.data.clone().map(|d| d.0),
        "revision": initial.revision + 1
    }));
    crs.create(&PostParams::default(), &manual)
        .await
        .expect("creating a revision");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_revisions(&env, "app=agent").await, 2);
    crs.delete(&initial_name, &DeleteParams::default())
        .await
        .expect("deleting the first revision");
    wait_for("one revision left", WAIT, || async {
        (count_revisions(&env, "app=agent").await == 1).then_some(())
    })
    .await;
    let mut current = crs.get("agent-manual").await.expect("the manual revision");
    current
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("agent-manual".into(), "updated".into());
    crs.replace("agent-manual", &PostParams::default(), &current)
        .await
        .expect("updating the revision");
    env.api::<DaemonSet>()
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 1}}}}),
            ),
        )
        .await
        .expect("patching the daemon set");
    wait_for("two revisions", WAIT, || async {
        (count_revisions(&env, "app=agent").await == 2).then_some(())
    })
    .await;
    crs.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("agent-manual=updated"),
    )
    .await
    .expect("deleting by label");
    let left = wait_for("one revision left again", WAIT, || async {
        let r = revisions(&env).await;
        (r.len() == 1).then(|| r[0].clone())
    })
    .await;
    assert_eq!(left.revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conditions_written_by_others_stay() {
    let env = Env::start("ds-status").await;
    add_node(&env, "n1", json!({})).await;
    let _nodes = fake_nodes(&env, vec![]);
    env.api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), json!({})),
        )
        .await
        .expect("creating");
    wait_for("1 available", WAIT, || async {
        (status_tuple(&get_ds(&env, "agent").await)[4] == 1).then_some(())
    })
    .await;
    env.api::<DaemonSet>()
        .patch_status(
            "agent",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
                {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"}]}})),
        )
        .await
        .expect("patching the status");
    // A change that makes the controller write status again.
    add_node(&env, "n2", json!({})).await;
    let d = wait_for("2 available", WAIT, || async {
        let d = get_ds(&env, "agent").await;
        (status_tuple(&d)[4] == 2).then_some(d)
    })
    .await;
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].type_, "StatusUpdate");
}
