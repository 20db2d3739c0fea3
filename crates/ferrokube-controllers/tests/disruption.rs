//! PodDisruptionBudgets against a real API server: the disruption
//! controller's status, and `pods/eviction` deciding by it (the test acts
//! as the kubelet: pods are bound to a node no kubelet runs, so deletions
//! wait, and the test marks them Ready).

mod common;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

/// A template bound to a node with no kubelet: deletions are graceful and
/// stay visible.
fn template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {
            "nodeName": "test-node",
            "containers": [{"name": "c", "image": "busybox"}],
        }
    })
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name),
        }
    }))
}

fn budget(name: &str, app: &str, spec: Value) -> PodDisruptionBudget {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": app}});
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

fn condition(pdb: &PodDisruptionBudget) -> Option<(String, String, String)> {
    let c = pdb
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the budget's status has these numbers: expectedPods,
/// desiredHealthy, currentHealthy, disruptionsAllowed.
async fn wait_numbers(env: &Env, name: &str, want: (i32, i32, i32, i32)) -> PodDisruptionBudget {
    wait_for(&format!("budget {name} at {want:?}"), WAIT, || async {
        let b = env.api::<PodDisruptionBudget>().get(name).await.ok()?;
        let s = b.status.clone()?;
        let have = (
            s.expected_pods,
            s.desired_healthy,
            s.current_healthy,
            s.disruptions_allowed,
        );
        (have == want && s.observed_generation == b.metadata.generation).then_some(b)
    })
    .await
}

/// A client that does not retry 429s by itself (kube's default does; a
/// test of refusals must see them).
async fn plain_client(env: &Env) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&env.api.kubeconfig).expect("kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

/// The eviction's HTTP status and body, as a client sees them.
async fn evict_raw(env: &Env, pod: &str, body: Value) -> (u16, Value) {
    let uri = format!("/api/v1/namespaces/{}/pods/{pod}/eviction", env.ns);
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&body).expect("json"),
        ))
        .expect("request");
    let resp = plain_client(env)
        .await
        .send(req)
        .await
        .expect("sending the eviction");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (code, serde_json::from_slice(&bytes).expect("a JSON body"))
}

fn eviction(pod: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}})
}

fn live(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_status_follows_the_deployment_and_evictions_spend_it() {
    let env = Env::start("pdb-drain").await;
    env.api::<Deployment>()
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .expect("deployment");
    let created = env
        .api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("web", "web", json!({"minAvailable": 2})),
        )
        .await
        .expect("budget");
    assert_eq!(created.metadata.generation, Some(1));
    // Nothing ready yet: none allowed.
    let b = wait_numbers(&env, "web", (3, 2, 0, 0)).await;
    assert_eq!(
        condition(&b),
        Some(("False".into(), "InsufficientPods".into(), String::new()))
    );
    env.ready_all("app=web").await;
    let b = wait_numbers(&env, "web", (3, 2, 3, 1)).await;
    assert_eq!(
        condition(&b),
        Some(("True".into(), "SufficientPods".into(), String::new()))
    );

    // A dry run changes nothing.
    let pods = live(env.pods("app=web").await);
    let first = name(&pods[0]);
    let mut dry = eviction(&first);
    dry["deleteOptions"] = json!({"dryRun": ["All"]});
    let (code, st) = evict_raw(&env, &first, dry).await;
    assert_eq!(
        (code, st["status"].as_str()),
        (201, Some("Success")),
        "{st}"
    );
    let p = env.api::<Pod>().get(&first).await.expect("pod");
    assert!(p.metadata.deletion_timestamp.is_none());
    let b = env
        .api::<PodDisruptionBudget>()
        .get("web")
        .await
        .expect("pdb");
    assert_eq!(b.status.as_ref().map(|s| s.disruptions_allowed), Some(1));

    // One eviction goes: the pod is marked and deleted (gracefully).
    env.api::<Pod>()
        .evict(&first, &EvictParams::default())
        .await
        .expect("the first eviction");
    let p = env.api::<Pod>().get(&first).await.expect("pod");
    assert!(p.metadata.deletion_timestamp.is_some());
    let c = p
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget");
    assert_eq!(c.status, "True");
    assert_eq!(c.reason.as_deref(), Some("EvictionByEvictionAPI"));
    assert_eq!(c.message.as_deref(), Some("Eviction API: evicting"));

    // The next is refused while the budget is spent, with Kubernetes' Status.
    let second = name(&pods[1]);
    let (code, st) = evict_raw(&env, &second, eviction(&second)).await;
    assert_eq!(code, 429, "{st}");
    assert_eq!(
        st,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {"causes": [{
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
            }]},
            "code": 429,
        })
    );
    let p = env.api::<Pod>().get(&second).await.expect("pod");
    assert!(p.metadata.deletion_timestamp.is_none());

    // The replacement turns Ready: one more is allowed.
    wait_for("a replacement pod", WAIT, || async {
        (live(env.pods("app=web").await).len() == 3).then_some(())
    })
    .await;
    env.ready_all("app=web").await;
    // 4 pods match (one terminating): 3 healthy of the 4 expected.
    wait_numbers(&env, "web", (4, 2, 3, 1)).await;
    env.api::<Pod>()
        .evict(&second, &EvictParams::default())
        .await
        .expect("the second eviction");

    // The controller said nothing about unmanaged pods.
    let events = env
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(!events
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some("UnmanagedPods")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentages_take_the_scale_of_the_pods_controllers() {
    let env = Env::start("pdb-scale").await;
    env.api::<ReplicaSet>()
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 4,
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": template("db"),
                }
            })),
        )
        .await
        .expect("replica set");
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("db", "db", json!({"maxUnavailable": "50%"})),
        )
        .await
        .expect("budget");
    wait_for("4 pods", WAIT, || async {
        (env.pods("app=db").await.len() == 4).then_some(())
    })
    .await;
    env.ready_all("app=db").await;
    wait_numbers(&env, "db", (4, 2, 4, 2)).await;

    // A new spec is observed: the generation moves, the numbers follow.
    env.api::<PodDisruptionBudget>()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxUnavailable": null, "minAvailable": "75%"}})),
        )
        .await
        .expect("patching the budget");
    let b = wait_numbers(&env, "db", (4, 3, 4, 1)).await;
    assert_eq!(b.metadata.generation, Some(2));
    assert_eq!(b.status.and_then(|s| s.observed_generation), Some(2));

    // Scaling the controller changes what is expected.
    env.api::<ReplicaSet>()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scaling");
    wait_numbers(&env, "db", (2, 2, 2, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_a_usable_controller() {
    let env = Env::start("pdb-unmanaged").await;
    let pods = env.api::<Pod>();
    let bare: Pod = obj(json!({
        "metadata": {"name": "bare", "labels": {"app": "bare"}},
        "spec": {"nodeName": "test-node", "containers": [{"name": "c", "image": "busybox"}]},
    }));
    pods.create(&PostParams::default(), &bare)
        .await
        .expect("pod");
    env.ready_all("app=bare").await;
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("bare", "bare", json!({"maxUnavailable": 1})),
        )
        .await
        .expect("budget");
    // No controller: nothing is expected, so nothing may go.
    wait_numbers(&env, "bare", (0, 0, 1, 0)).await;
    wait_for("the UnmanagedPods event", WAIT, || async {
        let evs = env.api::<Event>().list(&ListParams::default()).await.ok()?;
        evs.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("UnmanagedPods")
                && e.involved_object.name.as_deref() == Some("bare")
        })
    })
    .await;

    // A controller that has no scale: the sync fails, safely.
    let cm = env
        .api::<ConfigMap>()
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "owner"}})),
        )
        .await
        .expect("config map");
    let owned: Pod = obj(json!({
        "metadata": {
            "name": "owned",
            "labels": {"app": "owned"},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": cm.metadata.uid, "controller": true,
            }],
        },
        "spec": {"nodeName": "test-node", "containers": [{"name": "c", "image": "busybox"}]},
    }));
    pods.create(&PostParams::default(), &owned)
        .await
        .expect("pod");
    env.ready_all("app=owned").await;
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("owned", "owned", json!({"maxUnavailable": "10%"})),
        )
        .await
        .expect("budget");
    let b = wait_for("SyncFailed", WAIT, || async {
        let b = env.api::<PodDisruptionBudget>().get("owned").await.ok()?;
        (condition(&b)?.1 == "SyncFailed").then_some(b)
    })
    .await;
    assert_eq!(
        condition(&b),
        Some((
            "False".into(),
            "SyncFailed".into(),
            "configmaps does not implement the scale subresource".into()
        ))
    );
    assert_eq!(b.status.map(|s| s.disruptions_allowed), Some(0));
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_pending_and_doubly_covered_pods() {
    let env = Env::start("pdb-unhealthy").await;
    env.api::<Deployment>()
        .create(&PostParams::default(), &deployment("app", 3))
        .await
        .expect("deployment");
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("app", "app", json!({"minAvailable": 3})),
        )
        .await
        .expect("budget");
    let pods = wait_for("3 pods", WAIT, || async {
        let p = env.pods("app=app").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    // Two Ready, one Running but not Ready.
    env.set_ready(&pods[0], true).await;
    env.set_ready(&pods[1], true).await;
    env.set_ready(&pods[2], false).await;
    wait_numbers(&env, "app", (3, 3, 2, 0)).await;
    let unready = name(&pods[2]);
    // IfHealthyBudget (the default): the application is short, so no.
    let (code, st) = evict_raw(&env, &unready, eviction(&unready)).await;
    assert_eq!(code, 429, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["message"],
        "The disruption budget app needs 3 healthy pods and has 2 currently"
    );
    // AlwaysAllow: an unhealthy pod may always go, spending nothing.
    env.api::<PodDisruptionBudget>()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}})),
        )
        .await
        .expect("patching the budget");
    wait_for("generation 2 observed", WAIT, || async {
        let b = env.api::<PodDisruptionBudget>().get("app").await.ok()?;
        (b.status?.observed_generation == Some(2)).then_some(())
    })
    .await;
    let (code, st) = evict_raw(&env, &unready, eviction(&unready)).await;
    assert_eq!(
        (code, st["status"].as_str()),
        (201, Some("Success")),
        "{st}"
    );

    // A pod not yet running goes whatever the budget says.
    let pending = wait_for("the replacement, pending", WAIT, || async {
        live(env.pods("app=app").await)
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
    })
    .await;
    let pn = name(&pending);
    let (code, st) = evict_raw(&env, &pn, eviction(&pn)).await;
    assert_eq!(
        (code, st["status"].as_str()),
        (201, Some("Success")),
        "{st}"
    );

    // A second budget over the same pods: Kubernetes refuses to choose.
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("app-too", "app", json!({"maxUnavailable": 1})),
        )
        .await
        .expect("second budget");
    let ready = name(&pods[0]);
    let (code, st) = evict_raw(&env, &ready, eviction(&ready)).await;
    assert_eq!(code, 500, "{st}");
    assert_eq!(
        st["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    // The controller warns the pod, once (on its next change), when it
    // knows both budgets: wait until it has written the second one's status.
    wait_for("the second budget's status", WAIT, || async {
        let b = env.api::<PodDisruptionBudget>().get("app-too").await.ok()?;
        (b.status?.observed_generation == Some(1)).then_some(())
    })
    .await;
    env.api::<Pod>()
        .patch(
            &ready,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "yes"}}})),
        )
        .await
        .expect("touching the pod");
    let e = wait_for("the MultiplePodDisruptionBudgets event", WAIT, || async {
        let evs = env.api::<Event>().list(&ListParams::default()).await.ok()?;
        evs.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("MultiplePodDisruptionBudgets")
                && e.involved_object.name.as_deref() == Some(ready.as_str())
        })
    })
    .await;
    assert_eq!(
        e.message.unwrap_or_default(),
        format!(
            "Pod \"pdb-unhealthy\"/\"{ready}\" matches multiple PodDisruptionBudgets.  Chose \"app\" arbitrarily."
        )
    );
    // A name that does not match the URL.
    let (code, st) = evict_raw(&env, &ready, eviction("other")).await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(
        st["message"],
        "name in URL does not match name in Eviction object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_disruption_target_is_cleared() {
    let env = Env::start("pdb-stale").await;
    let pods = env.api::<Pod>();
    let p: Pod = obj(json!({
        "metadata": {"name": "kept", "labels": {"app": "kept"}},
        "spec": {"nodeName": "test-node", "containers": [{"name": "c", "image": "busybox"}]},
    }));
    pods.create(&PostParams::default(), &p).await.expect("pod");
    let long_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)).to_string();
    pods.patch_status(
        "kept",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "conditions": [{
            "type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
            "lastTransitionTime": long_ago,
        }]}})),
    )
    .await
    .expect("status");
    let c = wait_for("the condition turned False", WAIT, || async {
        let p = pods.get("kept").await.ok()?;
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "DisruptionTarget" && c.status == "False")
    })
    .await;
    assert_eq!(c.reason, None);
    // A pod being deleted keeps it.
    pods.delete("kept", &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disrupted_pods_written_through_the_status_api() {
    let env = Env::start("pdb-status").await;
    env.api::<ReplicaSet>()
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "kv"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "kv"}},
                    "template": template("kv"),
                }
            })),
        )
        .await
        .expect("replica set");
    let pdbs = env.api::<PodDisruptionBudget>();
    pdbs.create(
        &PostParams::default(),
        &budget("kv", "kv", json!({"minAvailable": 1})),
    )
    .await
    .expect("budget");
    let pods = wait_for("2 pods", WAIT, || async {
        let p = env.pods("app=kv").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    env.ready_all("app=kv").await;
    let b = wait_numbers(&env, "kv", (2, 1, 2, 1)).await;

    // An eviction recorded through the status API (as the conformance test
    // does): the pod no longer counts until it goes or the entry expires.
    let first = name(&pods[0]);
    let mut updated = b.clone();
    let now = jiff::Timestamp::now();
    updated.status.as_mut().expect("status").disrupted_pods = Some(
        [(
            first.clone(),
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        )]
        .into(),
    );
    let written = pdbs
        .replace_status("kv", &PostParams::default(), &updated)
        .await
        .expect("status update");
    assert!(written
        .status
        .and_then(|s| s.disrupted_pods)
        .is_some_and(|m| m.contains_key(&first)));
    let b = wait_numbers(&env, "kv", (2, 1, 1, 0)).await;
    assert!(b
        .status
        .and_then(|s| s.disrupted_pods)
        .is_some_and(|m| m.contains_key(&first)));

    // Patched away: the pod counts again.
    let patched = pdbs
        .patch_status(
            "kv",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"disruptedPods": null}})),
        )
        .await
        .expect("status patch");
    assert!(patched
        .status
        .and_then(|s| s.disrupted_pods)
        .is_none_or(|m| m.is_empty()));
    wait_numbers(&env, "kv", (2, 1, 2, 1)).await;

    // An entry older than the deletion timeout: dropped, and the pod told.
    let second = name(&pods[1]);
    let long_ago = now - jiff::SignedDuration::from_secs(600);
    pdbs.patch_status(
        "kv",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"disruptedPods": {&second: long_ago.to_string()}}})),
    )
    .await
    .expect("status patch");
    let e = wait_for("the NotDeleted event", WAIT, || async {
        let evs = env.api::<Event>().list(&ListParams::default()).await.ok()?;
        evs.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("NotDeleted"))
    })
    .await;
    assert_eq!(e.involved_object.name.as_deref(), Some(second.as_str()));
    assert_eq!(
        e.message.as_deref(),
        Some("Pod was expected by PDB pdb-status/kv to be deleted but it wasn't")
    );
    let b = wait_numbers(&env, "kv", (2, 1, 2, 1)).await;
    assert!(b
        .status
        .and_then(|s| s.disrupted_pods)
        .is_none_or(|m| m.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_set_pods_take_its_scale() {
    let env = Env::start("pdb-sts").await;
    env.api::<k8s_openapi::api::apps::v1::StatefulSet>()
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "ss"},
                "spec": {
                    "replicas": 2,
                    "serviceName": "ss",
                    "selector": {"matchLabels": {"app": "ss"}},
                    "template": template("ss"),
                }
            })),
        )
        .await
        .expect("stateful set");
    env.api::<PodDisruptionBudget>()
        .create(
            &PostParams::default(),
            &budget("ss", "ss", json!({"maxUnavailable": "50%"})),
        )
        .await
        .expect("budget");
    // OrderedReady: each pod Ready before the next is made.
    wait_for("2 Ready pods", WAIT, || async {
        env.ready_all("app=ss").await;
        let pods = live(env.pods("app=ss").await);
        (pods.len() == 2 && pods.iter().all(common::is_ready)).then_some(())
    })
    .await;
    wait_numbers(&env, "ss", (2, 1, 2, 1)).await;
}
