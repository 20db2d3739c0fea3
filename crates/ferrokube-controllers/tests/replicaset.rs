//! The ReplicaSet and ReplicationController controllers against a real API
//! server, the test acting as the kubelet.

mod common;

use std::collections::BTreeSet;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn rs(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
}

fn owned_by(p: &Pod, uid: &str) -> bool {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

async fn scale(env: &Env, name: &str, replicas: i32) {
    env.api::<ReplicaSet>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("scaling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_pods_with_owner_references_and_reports_status() {
    let env = Env::start("rs-create").await;
    let created = env
        .api::<ReplicaSet>()
        .create(&PostParams::default(), &rs("web", "web", 3))
        .await
        .expect("creating the replica set");
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let pods = wait_for("3 pods", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    for p in &pods {
        let name = p.metadata.name.as_deref().unwrap_or("");
        assert!(name.starts_with("web-"), "{name}");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        let r = p
            .metadata
            .owner_references
            .as_ref()
            .and_then(|r| r.first())
            .expect("owner reference");
        assert_eq!(
            (r.kind.as_str(), r.name.as_str(), r.uid.as_str()),
            ("ReplicaSet", "web", uid.as_str())
        );
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
    }
    // No more than 3 are ever made.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.pods("app=web").await.len(), 3);

    let st = wait_for("status replicas 3", WAIT, || async {
        let r = env.api::<ReplicaSet>().get("web").await.ok()?;
        let s = r.status?;
        (s.replicas == 3 && s.fully_labeled_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(st.ready_replicas.unwrap_or(0), 0);
    assert_eq!(st.observed_generation, created.metadata.generation);

    env.ready_all("app=web").await;
    wait_for("ready and available 3", WAIT, || async {
        let s = env.api::<ReplicaSet>().get("web").await.ok()?.status?;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(())
    })
    .await;

    let events = wait_for("3 SuccessfulCreate events", WAIT, || async {
        let evs: Vec<Event> = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
            .collect();
        (evs.len() == 3).then_some(evs)
    })
    .await;
    let names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    for e in events {
        assert_eq!(e.involved_object.kind.as_deref(), Some("ReplicaSet"));
        assert_eq!(e.involved_object.name.as_deref(), Some("web"));
        let msg = e.message.unwrap_or_default();
        let pod = msg.strip_prefix("Created pod: ").expect("message wording");
        assert!(names.contains(pod), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_deletes_not_ready_pods_first_and_scale_up_adds() {
    let env = Env::start("rs-scale").await;
    env.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs("web", "web", 4))
        .await
        .expect("creating");
    let pods = wait_for("4 pods", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 4).then_some(p)
    })
    .await;
    // Two ready, one running not ready, one left Pending.
    env.set_ready(&pods[0], true).await;
    env.set_ready(&pods[1], true).await;
    env.set_ready(&pods[2], false).await;
    wait_for("2 ready", WAIT, || async {
        let s = env.api::<ReplicaSet>().get("web").await.ok()?.status?;
        (s.ready_replicas == Some(2)).then_some(())
    })
    .await;
    scale(&env, "web", 3).await;
    let left = wait_for("3 pods", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    let names: BTreeSet<_> = left
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert!(
        !names.contains(pods[3].metadata.name.as_deref().unwrap_or("")),
        "the Pending pod goes first"
    );
    scale(&env, "web", 2).await;
    let left = wait_for("2 pods", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let names: BTreeSet<_> = left
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let ready: BTreeSet<_> = pods[..2]
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ready, "the not-ready pod goes next");

    let deleted = wait_for("2 SuccessfulDelete events", WAIT, || async {
        let evs: Vec<String> = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulDelete"))
            .filter_map(|e| e.message)
            .collect();
        (evs.len() == 2).then_some(evs)
    })
    .await;
    for m in &deleted {
        assert!(m.starts_with("Deleted pod: web-"), "{m}");
    }

    scale(&env, "web", 5).await;
    wait_for("5 pods", WAIT, || async {
        (env.live_pods("app=web").await.len() == 5).then_some(())
    })
    .await;
    env.ready_all("app=web").await;
    wait_for("status 5 ready", WAIT, || async {
        let s = env.api::<ReplicaSet>().get("web").await.ok()?.status?;
        (s.replicas == 5 && s.ready_replicas == Some(5)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_failed_pods_are_replaced() {
    let env = Env::start("rs-replace").await;
    env.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs("web", "web", 2))
        .await
        .expect("creating");
    let pods = wait_for("2 pods", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let gone = pods[0].metadata.name.clone().unwrap_or_default();
    env.api::<Pod>()
        .delete(&gone, &DeleteParams::default())
        .await
        .expect("deleting a pod");
    let now = wait_for("a replacement", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 2
            && p.iter()
                .all(|p| p.metadata.name.as_deref() != Some(gone.as_str())))
        .then_some(p)
    })
    .await;
    // A failed pod is not counted and is replaced too.
    let failed = now[0].metadata.name.clone().unwrap_or_default();
    env.api::<Pod>()
        .patch_status(
            &failed,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Failed"}})),
        )
        .await
        .expect("failing a pod");
    wait_for("2 active pods beside the failed one", WAIT, || async {
        let p = env.live_pods("app=web").await;
        let active = p
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed"))
            .count();
        (p.len() == 3 && active == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_orphans_and_releases_pods_that_stop_matching() {
    let env = Env::start("rs-adopt").await;
    let orphan: Pod = obj(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }));
    env.api::<Pod>()
        .create(&PostParams::default(), &orphan)
        .await
        .expect("creating the orphan");
    let created = env
        .api::<ReplicaSet>()
        .create(&PostParams::default(), &rs("web", "web", 2))
        .await
        .expect("creating");
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let pods = wait_for("2 pods, the orphan adopted", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 2 && p.iter().all(|p| owned_by(p, &uid))).then_some(p)
    })
    .await;
    assert!(pods
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some("orphan")));

    // Relabel the orphan: it is released and replaced.
    env.api::<Pod>()
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabelling");
    wait_for("the pod released", WAIT, || async {
        let p = env.api::<Pod>().get("orphan").await.ok()?;
        (!owned_by(&p, &uid)).then_some(())
    })
    .await;
    wait_for("a replacement", WAIT, || async {
        let p = env.live_pods("app=web").await;
        (p.len() == 2 && p.iter().all(|p| owned_by(p, &uid))).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_converges_and_survives_a_restart() {
    let mut env = Env::start("rc").await;
    let rc: ReplicationController = obj(json!({
        "metadata": {"name": "old"},
        "spec": {
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": "old"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }));
    env.api::<ReplicationController>()
        .create(&PostParams::default(), &rc)
        .await
        .expect("creating");
    let pods = wait_for("3 pods", WAIT, || async {
        let p = env.live_pods("app=old").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    for p in &pods {
        let r = p
            .metadata
            .owner_references
            .as_ref()
            .and_then(|r| r.first())
            .expect("owner");
        assert_eq!(
            (r.kind.as_str(), r.api_version.as_str()),
            ("ReplicationController", "v1")
        );
    }
    env.ready_all("app=old").await;
    wait_for("rc status", WAIT, || async {
        let s = env
            .api::<ReplicationController>()
            .get("old")
            .await
            .ok()?
            .status?;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(())
    })
    .await;
    // A restarted controller manager changes nothing.
    env.stop_controllers().await;
    env.restart_controllers();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = env.pods("app=old").await;
    let a: BTreeSet<_> = after
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let b: BTreeSet<_> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(a, b);
}
