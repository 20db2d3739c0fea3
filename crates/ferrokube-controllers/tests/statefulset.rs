//! The StatefulSet controller against a real API server, the test acting
//! as the kubelet: ordered creation with identities and claims, scaling
//! down in reverse order, partitioned rolling updates and rollback through
//! ControllerRevisions, failed pods replaced, Parallel management, claim
//! retention, status and events.

mod common;

use std::collections::BTreeMap;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn sts(name: &str, replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    });
    if let (Some(spec), Some(e)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            spec.insert(k.clone(), x.clone());
        }
    }
    obj(v)
}

fn names(pods: &[Pod]) -> Vec<String> {
    let mut n: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    n.sort();
    n
}

fn label<'a>(p: &'a Pod, k: &str) -> &'a str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(k))
        .map(String::as_str)
        .unwrap_or("")
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

async fn status(env: &Env, name: &str) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    env.api::<StatefulSet>()
        .get(name)
        .await
        .expect("get statefulset")
        .status
        .unwrap_or_default()
}

/// Waits until exactly the pods `want` (sorted names) exist alive.
async fn wait_pods(env: &Env, sel: &str, want: &[&str]) -> Vec<Pod> {
    wait_for(&format!("pods {want:?}"), WAIT, || async {
        let p = env.live_pods(sel).await;
        (names(&p) == want).then_some(p)
    })
    .await
}

/// The fake kubelet: readies pods one at a time, checking each time that
/// no pod of a higher ordinal exists before the lower ones are ready.
async fn ready_in_order(env: &Env, sel: &str, n: usize) {
    ready_in_order_from(env, sel, 0, n).await
}

/// As [`ready_in_order`], for ordinals `from..n` (the ones below ready).
async fn ready_in_order_from(env: &Env, sel: &str, from: usize, n: usize) {
    for i in from..n {
        let want: Vec<String> = (0..=i).map(|k| format!("{}-{k}", sel_name(sel))).collect();
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        let pods = wait_pods(env, sel, &want).await;
        // Nothing beyond ordinal i while i is not ready.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(names(&env.live_pods(sel).await), want);
        let p = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(want[i]))
            .expect("the newest pod");
        env.set_ready(p, true).await;
    }
}

async fn scale_to(env: &Env, name: &str, n: i32) {
    env.api::<StatefulSet>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": n}})),
        )
        .await
        .expect("scaling");
}

fn sel_name(sel: &str) -> &str {
    sel.strip_prefix("app=").unwrap_or(sel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_come_up_in_order_with_identity_claims_revision_and_events() {
    let env = Env::start("sts-order").await;
    let created = env
        .api::<StatefulSet>()
        .create(&PostParams::default(), &sts("web", 3, json!({})))
        .await
        .expect("creating");
    ready_in_order(&env, "app=web", 3).await;
    let pods = wait_pods(&env, "app=web", &["web-0", "web-1", "web-2"]).await;

    let st = wait_for("status 3 ready", WAIT, || async {
        let s = status(&env, "web").await;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(st.replicas, 3);
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));
    assert_eq!(st.observed_generation, created.metadata.generation);
    assert_eq!(st.collision_count, Some(0));
    let rev = st.update_revision.clone().unwrap_or_default();
    assert_eq!(st.current_revision.as_deref(), Some(rev.as_str()));
    assert!(rev.starts_with("web-"), "{rev}");

    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let ord = name.trim_start_matches("web-");
        assert_eq!(label(p, "statefulset.kubernetes.io/pod-name"), name);
        assert_eq!(label(p, "apps.kubernetes.io/pod-index"), ord);
        assert_eq!(label(p, "controller-revision-hash"), rev);
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let claim = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "data")
            .and_then(|v| v.persistent_volume_claim)
            .map(|c| c.claim_name);
        assert_eq!(claim, Some(format!("data-web-{ord}")));
        let r = &p.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!((r.kind.as_str(), r.name.as_str()), ("StatefulSet", "web"));
        assert_eq!(r.controller, Some(true));
    }
    let claims = env
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("claims");
    let mut cn: Vec<String> = claims
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    cn.sort();
    assert_eq!(cn, ["data-web-0", "data-web-1", "data-web-2"]);
    // Retain/Retain: the claims belong to nobody.
    assert!(claims
        .items
        .iter()
        .all(|c| c.metadata.owner_references.is_none()));

    let revs = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .expect("revisions");
    assert_eq!(revs.items.len(), 1);
    let r = &revs.items[0];
    assert_eq!(r.metadata.name.as_deref(), Some(rev.as_str()));
    assert_eq!(r.revision, 1);
    let owner = &r.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(owner.kind, "StatefulSet");
    assert_eq!(
        r.data
            .as_ref()
            .and_then(|d| d.0.pointer("/spec/template/$patch")),
        Some(&json!("replace"))
    );

    let events = wait_for("create events", WAIT, || async {
        let evs: Vec<Event> = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items;
        let msgs: Vec<String> = evs
            .iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
            .filter_map(|e| e.message.clone())
            .collect();
        (msgs.len() >= 6).then_some(msgs)
    })
    .await;
    assert!(
        events.contains(&"create Pod web-0 in StatefulSet web successful".to_string()),
        "{events:?}"
    );
    assert!(
        events
            .contains(&"create Claim data-web-1 Pod web-1 in StatefulSet web success".to_string()),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_goes_in_reverse_order_and_claims_stay() {
    let env = Env::start("sts-scale").await;
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &sts("db", 3, json!({})))
        .await
        .expect("creating");
    ready_in_order(&env, "app=db", 3).await;
    env.api::<StatefulSet>()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scaling");
    // db-2 goes first; db-1 only after (the events' names hold their
    // times in nanoseconds).
    wait_pods(&env, "app=db", &["db-0"]).await;
    let deletes = wait_for("delete events", WAIT, || async {
        let evs = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items;
        let mut d: Vec<(String, String)> = evs
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulDelete"))
            .map(|e| {
                let t = e.metadata.name.unwrap_or_default();
                (t, e.message.unwrap_or_default())
            })
            .collect();
        d.sort();
        (d.len() == 2).then_some(d)
    })
    .await;
    assert_eq!(deletes[0].1, "delete Pod db-2 in StatefulSet db successful");
    assert_eq!(deletes[1].1, "delete Pod db-1 in StatefulSet db successful");
    // The claims stay (Retain) and are used again on scale up.
    let claims = env
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .expect("claims");
    assert_eq!(claims.items.len(), 3);
    let st = wait_for("status 1", WAIT, || async {
        let s = status(&env, "db").await;
        (s.replicas == 1).then_some(s)
    })
    .await;
    assert_eq!(st.ready_replicas, Some(1));

    // The scale subresource reads and writes replicas.
    let scale = env
        .api::<StatefulSet>()
        .get_scale("db")
        .await
        .expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    env.api::<StatefulSet>()
        .patch_scale(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scaling up");
    let pods = wait_pods(&env, "app=db", &["db-0", "db-1"]).await;
    let vol = pods[1]
        .spec
        .clone()
        .unwrap_or_default()
        .volumes
        .unwrap_or_default();
    assert_eq!(
        vol[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("data-db-1")
    );
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_update_and_rollback() {
    let env = Env::start("sts-update").await;
    let ru =
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}});
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &sts("web", 3, ru))
        .await
        .expect("creating");
    ready_in_order(&env, "app=web", 3).await;
    let first = wait_for("revision", WAIT, || async {
        let s = status(&env, "web").await;
        (s.ready_replicas == Some(3)).then_some(s.update_revision?)
    })
    .await;
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})),
        )
        .await
        .expect("updating the template");
    // web-2 then web-1 are replaced (each once the one before is ready);
    // web-0 stays below the partition.
    let updated = wait_for("web-1 and web-2 at busybox:2", WAIT, || async {
        let mut updated = Vec::new();
        for p in env.live_pods("app=web").await {
            if image(&p) == "busybox:2" && !common::is_ready(&p) {
                env.set_ready(&p, true).await;
            }
            if image(&p) == "busybox:2" {
                updated.push(p.metadata.name.clone().unwrap_or_default());
            }
        }
        updated.sort();
        (updated.len() == 2).then_some(updated)
    })
    .await;
    assert_eq!(updated, ["web-1", "web-2"]);
    let st = wait_for("2 updated", WAIT, || async {
        let s = status(&env, "web").await;
        (s.updated_replicas == Some(2) && s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    let second = st.update_revision.clone().unwrap_or_default();
    assert_ne!(second, first);
    assert_eq!(st.current_revision.as_deref(), Some(first.as_str()));
    assert_eq!(st.current_replicas, Some(1));
    let pods = env.live_pods("app=web").await;
    let p0 = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("web-0"))
        .expect("web-0");
    assert_eq!(image(p0), "busybox:1");
    assert_eq!(label(p0, "controller-revision-hash"), first);

    // A deleted pod comes back at the revision its ordinal belongs to:
    // web-0 (below the partition) at the first, web-2 at the second.
    for name in ["web-0", "web-2"] {
        let old = env.api::<Pod>().get(name).await.expect("pod").metadata.uid;
        env.api::<Pod>()
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleting");
        let back = wait_for(&format!("{name} recreated"), WAIT, || async {
            let p = env.api::<Pod>().get(name).await.ok()?;
            (p.metadata.uid != old).then_some(p)
        })
        .await;
        env.set_ready(&back, true).await;
        let want = if name == "web-0" { &first } else { &second };
        assert_eq!(
            label(&back, "controller-revision-hash"),
            want.as_str(),
            "{name}"
        );
    }

    // Partition 0 finishes the rollout; the update revision becomes current.
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
            ),
        )
        .await
        .expect("partition 0");
    wait_for("rollout complete", WAIT, || async {
        for p in env.live_pods("app=web").await {
            if image(&p) == "busybox:2" && !common::is_ready(&p) {
                env.set_ready(&p, true).await;
            }
        }
        let s = status(&env, "web").await;
        (s.current_revision.as_deref() == Some(second.as_str()) && s.current_replicas == Some(3))
            .then_some(())
    })
    .await;

    // Rollback: the first template again renumbers the first revision.
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}})),
        )
        .await
        .expect("rolling back");
    let st = wait_for("update revision back to the first", WAIT, || async {
        let s = status(&env, "web").await;
        (s.update_revision.as_deref() == Some(first.as_str())).then_some(s)
    })
    .await;
    assert_eq!(st.collision_count, Some(0));
    let revs = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .expect("revisions");
    let by_name: BTreeMap<String, i64> = revs
        .items
        .iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r.revision))
        .collect();
    assert_eq!(by_name.len(), 2);
    assert_eq!(by_name[&first], 3);
    assert_eq!(by_name[&second], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pods_are_replaced_and_parallel_creates_all() {
    let env = Env::start("sts-parallel").await;
    env.api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &sts("par", 3, json!({"podManagementPolicy": "Parallel"})),
        )
        .await
        .expect("creating");
    // All three at once, none ready.
    let pods = wait_pods(&env, "app=par", &["par-0", "par-1", "par-2"]).await;
    let p1 = pods[1].clone();
    let uid = p1.metadata.uid.clone();
    env.api::<Pod>()
        .patch_status(
            "par-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Failed"}})),
        )
        .await
        .expect("failing par-1");
    wait_for("par-1 replaced", WAIT, || async {
        let p = env.api::<Pod>().get("par-1").await.ok()?;
        (p.metadata.uid != uid && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_policy_sets_claim_owners() {
    let env = Env::start("sts-retain").await;
    let policy = json!({"podManagementPolicy": "Parallel",
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}});
    let set = env
        .api::<StatefulSet>()
        .create(&PostParams::default(), &sts("r", 2, policy))
        .await
        .expect("creating");
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let pods = wait_pods(&env, "app=r", &["r-0", "r-1"]).await;
    for p in &pods {
        env.set_ready(p, true).await;
    }
    wait_for("claims owned by the set", WAIT, || async {
        let c = env
            .api::<PersistentVolumeClaim>()
            .get("data-r-1")
            .await
            .ok()?;
        let refs = c.metadata.owner_references.unwrap_or_default();
        (refs.len() == 1 && refs[0].uid == set_uid && refs[0].controller == Some(true))
            .then_some(())
    })
    .await;
    let r1_uid = pods[1].metadata.uid.clone().unwrap_or_default();
    env.api::<StatefulSet>()
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scaling down");
    // Scaled away: the claim moves to the pod (the collector deletes it with
    // the pod); r-0's stays with the set.
    wait_for("data-r-1 owned by r-1", WAIT, || async {
        let c = env
            .api::<PersistentVolumeClaim>()
            .get("data-r-1")
            .await
            .ok()?;
        let refs = c.metadata.owner_references.unwrap_or_default();
        (refs.len() == 1 && refs[0].uid == r1_uid && refs[0].kind == "Pod").then_some(())
    })
    .await;
    let c0 = env
        .api::<PersistentVolumeClaim>()
        .get("data-r-0")
        .await
        .expect("data-r-0");
    assert_eq!(
        c0.metadata.owner_references.unwrap_or_default()[0].uid,
        set_uid
    );
    let _ = env
        .api::<StatefulSet>()
        .delete("r", &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_halts_while_a_pod_is_unhealthy() {
    let env = Env::start("sts-halt").await;
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &sts("h", 1, json!({})))
        .await
        .expect("creating");
    let pods = wait_pods(&env, "app=h", &["h-0"]).await;
    env.set_ready(&pods[0], false).await;
    // Scale up halts behind the unready h-0.
    scale_to(&env, "h", 3).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(names(&env.live_pods("app=h").await), ["h-0"]);
    env.set_ready(&pods[0], true).await;
    ready_in_order_from(&env, "app=h", 1, 3).await;
    // Scale down halts while h-0 (not the one to go) is unready.
    let all = env.live_pods("app=h").await;
    for p in &all {
        env.set_ready(p, false).await;
    }
    wait_for("0 ready", WAIT, || async {
        (status(&env, "h").await.ready_replicas.unwrap_or(0) == 0).then_some(())
    })
    .await;
    scale_to(&env, "h", 0).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // h-2 is not the first unhealthy pod: nothing goes.
    assert_eq!(names(&env.live_pods("app=h").await), ["h-0", "h-1", "h-2"]);
    env.ready_all("app=h").await;
    wait_pods(&env, "app=h", &[]).await;
    wait_for("status 0", WAIT, || async {
        (status(&env, "h").await.replicas == 0).then_some(())
    })
    .await;
}
