//! The Deployment controller against a real API server, the test acting as
//! a (slow) kubelet that marks one pod ready at a time, checking the
//! rollout's bounds at every step.

mod common;

use std::time::{Duration, Instant};

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(name: &str, replicas: i32, strategy: Value, image: &str) -> Deployment {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
}

fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

async fn replicasets(env: &Env, app: &str) -> Vec<ReplicaSet> {
    env.api::<ReplicaSet>()
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("listing replica sets")
        .items
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    k: &str,
) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(k)).cloned()
}

fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// What `kubectl rollout status` waits for: observed, all updated, no old
/// replicas, all available.
fn rollout_done(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
}

fn condition(d: &Deployment, t: &str) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

async fn set_image(env: &Env, name: &str, image: &str) {
    env.api::<Deployment>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})),
        )
        .await
        .expect("setting the image");
}

/// Drives a rollout to completion as a kubelet that readies one pod per
/// step, checking at every step that the replica sets never ask for more
/// than `replicas + surge` pods and that ready pods never drop below
/// `replicas - unavailable` once they reached it (a new Deployment starts
/// from none). Returns the number of steps.
async fn drive_rollout(
    env: &Env,
    name: &str,
    replicas: i32,
    surge: i32,
    unavailable: i32,
    image: &str,
) -> usize {
    let start = Instant::now();
    let mut steps = 0;
    let sel = format!("app={name}");
    let mut floor_reached = false;
    loop {
        let rss = replicasets(env, name).await;
        if start.elapsed() > WAIT * 2 {
            let d = env.api::<Deployment>().get(name).await.ok();
            let all: Vec<_> = env
                .api::<Pod>()
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.metadata.name, p.metadata.labels))
                .collect();
            let evs: Vec<_> = env
                .api::<Event>()
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.reason, e.message))
                .collect();
            eprintln!("all pods {all:?}\nevents {evs:?}");
            for r in &rss {
                let g = env
                    .api::<ReplicaSet>()
                    .get(r.metadata.name.as_deref().unwrap_or(""))
                    .await
                    .ok();
                eprintln!(
                    "get rs {:?} rv {:?} status {:?}; listed rv {:?}",
                    r.metadata.name,
                    g.as_ref().map(|g| g.metadata.resource_version.clone()),
                    g.map(|g| g.status),
                    r.metadata.resource_version
                );
            }
            panic!(
                "rollout of {name} did not finish: deployment {:?} status {:?}; replica sets {:?}; pods {}",
                d.as_ref().map(|d| (&d.metadata.generation, &d.metadata.annotations)),
                d.as_ref().map(|d| &d.status),
                rss.iter().map(|r| (r.metadata.name.clone(), rs_replicas(r), r.status.clone())).collect::<Vec<_>>(),
                env.live_pods(&sel).await.len()
            );
        }
        let total: i32 = rss.iter().map(rs_replicas).sum();
        assert!(
            total <= replicas + surge,
            "replica sets ask for {total} > {replicas}+{surge}: {:?}",
            rss.iter()
                .map(|r| (r.metadata.name.clone(), rs_replicas(r)))
                .collect::<Vec<_>>()
        );
        let pods = env.live_pods(&sel).await;
        let ready = pods.iter().filter(|p| common::is_ready(p)).count() as i32;
        if ready >= replicas - unavailable {
            floor_reached = true;
        }
        assert!(
            !floor_reached || ready >= replicas - unavailable,
            "only {ready} ready pods, min {}",
            replicas - unavailable
        );
        let d = env.api::<Deployment>().get(name).await.expect("deployment");
        if rollout_done(&d)
            && pods.len() as i32 == replicas
            && pods.iter().all(|p| image_of(p) == image)
        {
            return steps;
        }
        // The kubelet readies one new pod per step.
        if let Some(p) = pods.iter().find(|p| !common::is_ready(p)) {
            if env.set_ready(p, true).await {
                steps += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_stays_within_surge_and_unavailable() {
    let env = Env::start("dep-rolling").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 4, rolling(json!(1), json!(1)), "img:1"),
        )
        .await
        .expect("creating");
    drive_rollout(&env, "web", 4, 1, 1, "img:1").await;
    let d = env.api::<Deployment>().get("web").await.expect("get");
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("1"));
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    let rss = replicasets(&env, "web").await;
    assert_eq!(rss.len(), 1);
    let first = rss[0].clone();
    let hash = first
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .expect("hash label");
    assert_eq!(
        first.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        annotation(&first.metadata, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("4")
    );
    assert_eq!(
        annotation(&first.metadata, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("5")
    );
    for p in env.live_pods("app=web").await {
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash")),
            Some(&hash)
        );
    }

    set_image(&env, "web", "img:2").await;
    let steps = drive_rollout(&env, "web", 4, 1, 1, "img:2").await;
    assert!(
        steps >= 4,
        "every new pod was readied by the test ({steps} steps)"
    );
    let d = env.api::<Deployment>().get("web").await.expect("get");
    let s = d.status.clone().expect("status");
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas
        ),
        (Some(4), Some(4), Some(4), Some(4))
    );
    assert_eq!(s.unavailable_replicas.unwrap_or(0), 0);
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("2"));
    let rss = replicasets(&env, "web").await;
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|r| r.metadata.name == first.metadata.name)
        .expect("old rs kept");
    assert_eq!(rs_replicas(old), 0);

    let msgs: Vec<String> = wait_for("scaling events", WAIT, || async {
        let evs: Vec<String> = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
            .filter_map(|e| e.message)
            .collect();
        evs.iter()
            .any(|m| m.starts_with("Scaled down"))
            .then_some(evs)
    })
    .await;
    let first_name = first.metadata.name.clone().unwrap_or_default();
    assert!(
        msgs.contains(&format!("Scaled up replica set {first_name} from 0 to 4")),
        "{msgs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentages_round_surge_up_and_unavailable_down() {
    let env = Env::start("dep-percent").await;
    // 10 replicas: 25% surge is 3 (up), 25% unavailable is 2 (down).
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("api", 10, rolling(json!("25%"), json!("25%")), "img:1"),
        )
        .await
        .expect("creating");
    drive_rollout(&env, "api", 10, 3, 2, "img:1").await;
    set_image(&env, "api", "img:2").await;
    // The first step surges to 13 at once.
    wait_for("the surge", WAIT, || async {
        let total: i32 = replicasets(&env, "api").await.iter().map(rs_replicas).sum();
        (total == 13).then_some(())
    })
    .await;
    drive_rollout(&env, "api", 10, 3, 2, "img:2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_reuses_the_old_replica_set_with_the_next_revision() {
    let env = Env::start("dep-undo").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 2, rolling(json!(1), json!(0)), "img:1"),
        )
        .await
        .expect("creating");
    drive_rollout(&env, "web", 2, 1, 0, "img:1").await;
    set_image(&env, "web", "img:2").await;
    drive_rollout(&env, "web", 2, 1, 0, "img:2").await;
    let rss = replicasets(&env, "web").await;
    let rev1 = rss
        .iter()
        .find(|r| annotation(&r.metadata, REVISION).as_deref() == Some("1"))
        .expect("revision 1")
        .clone();

    // `kubectl rollout undo --to-revision=1` writes revision 1's template back.
    let mut template = rev1
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .expect("template");
    if let Some(l) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove("pod-template-hash");
    }
    env.api::<Deployment>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": template}})),
        )
        .await
        .expect("undo");
    drive_rollout(&env, "web", 2, 1, 0, "img:1").await;
    let rss = replicasets(&env, "web").await;
    assert_eq!(rss.len(), 2, "no third replica set");
    let reused = rss
        .iter()
        .find(|r| r.metadata.uid == rev1.metadata.uid)
        .expect("same replica set");
    assert_eq!(annotation(&reused.metadata, REVISION).as_deref(), Some("3"));
    assert_eq!(
        annotation(
            &reused.metadata,
            "deployment.kubernetes.io/revision-history"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(rs_replicas(reused), 2);
    let d = env.api::<Deployment>().get("web").await.expect("get");
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployment_scales_but_does_not_roll_out() {
    let env = Env::start("dep-pause").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 2, rolling(json!(1), json!(0)), "img:1"),
        )
        .await
        .expect("creating");
    drive_rollout(&env, "web", 2, 1, 0, "img:1").await;
    env.api::<Deployment>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pausing");
    wait_for("Progressing DeploymentPaused", WAIT, || async {
        let d = env.api::<Deployment>().get("web").await.ok()?;
        (condition(&d, "Progressing") == Some(("Unknown".into(), "DeploymentPaused".into())))
            .then_some(())
    })
    .await;
    set_image(&env, "web", "img:2").await;
    env.api::<Deployment>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scaling");
    wait_for("the old replica set scaled to 3", WAIT, || async {
        let rss = replicasets(&env, "web").await;
        (rss.len() == 1 && rs_replicas(&rss[0]) == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        replicasets(&env, "web").await.len(),
        1,
        "no new replica set while paused"
    );
    env.ready_all("app=web").await;

    env.api::<Deployment>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": false}})),
        )
        .await
        .expect("resuming");
    drive_rollout(&env, "web", 3, 1, 0, "img:2").await;
    assert_eq!(replicasets(&env, "web").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_removes_old_pods_before_creating_new_ones() {
    let env = Env::start("dep-recreate").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("db", 3, json!({"type": "Recreate"}), "img:1"),
        )
        .await
        .expect("creating");
    drive_rollout(&env, "db", 3, 0, 3, "img:1").await;
    set_image(&env, "db", "img:2").await;
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < WAIT, "recreate did not finish");
        let pods = env.pods("app=db").await;
        let old = pods.iter().filter(|p| image_of(p) == "img:1").count();
        let new = pods.iter().filter(|p| image_of(p) == "img:2").count();
        assert!(
            old == 0 || new == 0,
            "old ({old}) and new ({new}) pods together"
        );
        let d = env.api::<Deployment>().get("db").await.expect("get");
        if new == 3 && rollout_done(&d) {
            break;
        }
        env.ready_all("app=db").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_exceeds_its_progress_deadline() {
    let env = Env::start("dep-deadline").await;
    let mut d = deployment("slow", 2, rolling(json!(1), json!(0)), "img:1");
    if let Some(s) = d.spec.as_mut() {
        s.progress_deadline_seconds = Some(2);
    }
    env.api::<Deployment>()
        .create(&PostParams::default(), &d)
        .await
        .expect("creating");
    // No pod ever becomes ready.
    let d = wait_for("ProgressDeadlineExceeded", WAIT, || async {
        let d = env.api::<Deployment>().get("slow").await.ok()?;
        (condition(&d, "Progressing") == Some(("False".into(), "ProgressDeadlineExceeded".into())))
            .then_some(d)
    })
    .await;
    assert_eq!(
        condition(&d, "Available"),
        Some(("False".into(), "MinimumReplicasUnavailable".into()))
    );
    let s = d.status.expect("status");
    assert_eq!(s.unavailable_replicas, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_makes_a_new_replica_set_and_history_is_limited() {
    let env = Env::start("dep-history").await;
    let mut d = deployment("web", 1, rolling(json!(1), json!(0)), "img:1");
    if let Some(s) = d.spec.as_mut() {
        s.revision_history_limit = Some(1);
    }
    env.api::<Deployment>()
        .create(&PostParams::default(), &d)
        .await
        .expect("creating");
    drive_rollout(&env, "web", 1, 1, 0, "img:1").await;
    for i in 0..3 {
        // What `kubectl rollout restart` writes.
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": format!("2026-01-01T00:00:0{i}Z")}}}}});
        env.api::<Deployment>()
            .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("restarting");
        drive_rollout(&env, "web", 1, 1, 0, "img:1").await;
    }
    let rss = wait_for("history cut to one old replica set", WAIT, || async {
        let rss: Vec<_> = replicasets(&env, "web")
            .await
            .into_iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        (rss.len() == 2).then_some(rss)
    })
    .await;
    let mut revs: Vec<String> = rss
        .iter()
        .filter_map(|r| annotation(&r.metadata, REVISION))
        .collect();
    revs.sort();
    assert_eq!(revs, ["3", "4"]);
}

/// Runs the real kubectl against the test server.
fn kubectl(env: &Env, args: &[&str]) -> std::process::Child {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.api.kubeconfig)
        .arg("-n")
        .arg(&env.ns)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl")
}

/// Waits for kubectl to exit (bounded), readying pods meanwhile as a
/// kubelet would; returns its success and output.
async fn kubectl_while_readying(
    env: &Env,
    sel: &str,
    mut child: std::process::Child,
) -> (bool, String) {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > WAIT => {
                let _ = child.kill();
                break;
            }
            Ok(None) => {}
            Err(e) => panic!("waiting for kubectl: {e}"),
        }
        env.ready_all(sel).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().expect("kubectl output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_and_undo_to_revision() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not installed: skipped");
        return;
    }
    let env = Env::start("dep-kubectl").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 3, rolling(json!(1), json!(1)), "img:1"),
        )
        .await
        .expect("creating");
    let child = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let (ok, out) = kubectl_while_readying(&env, "app=web", child).await;
    assert!(ok, "kubectl rollout status failed: {out}");
    assert!(out.contains("successfully rolled out"), "{out}");

    set_image(&env, "web", "img:2").await;
    let child = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let (ok, out) = kubectl_while_readying(&env, "app=web", child).await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");

    let child = kubectl(
        &env,
        &["rollout", "undo", "deployment/web", "--to-revision=1"],
    );
    let (ok, out) = kubectl_while_readying(&env, "app=web", child).await;
    assert!(ok, "kubectl rollout undo failed: {out}");
    let child = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let (ok, out) = kubectl_while_readying(&env, "app=web", child).await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let pods = env.live_pods("app=web").await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| image_of(p) == "img:1"));
    let d = env.api::<Deployment>().get("web").await.expect("get");
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("3"));
    assert_eq!(replicasets(&env, "web").await.len(), 2);

    // kubectl's history lists revisions 2 and 3.
    let child = kubectl(&env, &["rollout", "history", "deployment/web"]);
    let (ok, out) = kubectl_while_readying(&env, "app=web", child).await;
    assert!(ok, "{out}");
    let revs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revs, ["2", "3"], "{out}");
}
