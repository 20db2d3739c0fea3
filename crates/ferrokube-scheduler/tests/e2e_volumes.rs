//! End to end, VolumeBinding: pods whose claims cannot be anywhere say so
//! as Kubernetes does; a pod goes where its bound volume is; a claim that
//! waits for its first consumer gets the chosen node (a static volume
//! there, or `volume.kubernetes.io/selected-node` for its provisioner) and
//! the pod is bound only once the claim is. The test plays the PV
//! controller's part.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn with_claim(mut p: Pod, claim: &str) -> Pod {
    spec(&mut p).volumes = Some(vec![serde_json::from_value(
        json!({"name": "data", "persistentVolumeClaim": {"claimName": claim}}),
    )
    .unwrap()]);
    p
}

/// A volume, made Available (as the PV controller would).
async fn create_volume(env: &Env, v: serde_json::Value) {
    let api = Api::<PersistentVolume>::all(env.client.clone());
    let pv = api
        .create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .expect("volume");
    let name = pv.metadata.name.unwrap_or_default();
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Available"}})),
    )
    .await
    .expect("Available");
}

fn claims(env: &Env) -> Api<PersistentVolumeClaim> {
    Api::namespaced(env.client.clone(), "default")
}

async fn class(env: &Env, name: &str, mode: &str, provisioner: &str) {
    let c: StorageClass = serde_json::from_value(json!({"metadata": {"name": name},
        "provisioner": provisioner, "volumeBindingMode": mode}))
    .unwrap();
    Api::<StorageClass>::all(env.client.clone())
        .create(&PostParams::default(), &c)
        .await
        .expect("class");
}

async fn claim(env: &Env, name: &str, class: &str) {
    let c: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
            "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    claims(env)
        .create(&PostParams::default(), &c)
        .await
        .expect("claim");
}

/// What the PV controller does once a claim has a volume: Bound.
async fn mark_bound(env: &Env, name: &str, volume: &str) {
    claims(env)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"volumeName": volume}})),
        )
        .await
        .expect("volumeName");
    claims(env)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Bound"}})),
        )
        .await
        .expect("status");
}

fn local_volume(name: &str, node: &str, class: &str) -> serde_json::Value {
    json!({"metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": class, "local": {"path": "/mnt/disk"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}})
}

#[tokio::test]
async fn claims_that_cannot_be_anywhere_say_why() {
    let env = Env::start().await;
    env.add_node(labeled(
        node("n1", "4", "4Gi"),
        &[("kubernetes.io/hostname", "n1")],
    ))
    .await;
    env.add_pod(with_claim(pod("orphan", "", ""), "missing"))
        .await;
    let (_, msg) = env
        .unschedulable_condition("orphan")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/1 nodes are available: persistentvolumeclaim \"missing\" not found."
    );
    class(&env, "now", "Immediate", "example.com/disk").await;
    claim(&env, "later", "now").await;
    env.add_pod(with_claim(pod("waiting", "", ""), "later"))
        .await;
    let (_, msg) = env
        .unschedulable_condition("waiting")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    );
    // Bound elsewhere: the volume's node affinity keeps the pod off n1.
    create_volume(&env, local_volume("on-n2", "n2", "now")).await;
    mark_bound(&env, "later", "on-n2").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, msg) = env
            .unschedulable_condition("waiting")
            .await
            .expect("condition");
        if msg == "0/1 nodes are available: 1 node(s) had volume node affinity conflict." {
            break;
        }
        assert!(Instant::now() < deadline, "{msg}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.add_node(labeled(
        node("n2", "4", "4Gi"),
        &[("kubernetes.io/hostname", "n2")],
    ))
    .await;
    assert_eq!(env.bound_node("waiting").await.as_deref(), Some("n2"));
    env.stop().await;
}

#[tokio::test]
async fn claims_waiting_for_a_consumer_get_the_chosen_node() {
    let env = Env::start().await;
    env.add_node(labeled(
        node("n1", "4", "4Gi"),
        &[("kubernetes.io/hostname", "n1")],
    ))
    .await;
    env.add_node(labeled(
        node("n2", "4", "4Gi"),
        &[("kubernetes.io/hostname", "n2")],
    ))
    .await;

    // A provisioning class: the claim learns the node; the pod waits for
    // the claim to be bound.
    class(
        &env,
        "local-path",
        "WaitForFirstConsumer",
        "ferrokube.io/local-path",
    )
    .await;
    claim(&env, "dyn", "local-path").await;
    env.add_pod(with_claim(pod("dyn-user", "", ""), "dyn"))
        .await;
    let node = wait_for("selected-node", Duration::from_secs(20), || async {
        claims(&env)
            .get("dyn")
            .await
            .ok()?
            .metadata
            .annotations?
            .get("volume.kubernetes.io/selected-node")
            .cloned()
    })
    .await;
    assert!(
        env.stays_pending("dyn-user", Duration::from_millis(500))
            .await
    );
    mark_bound(&env, "dyn", "pvc-dyn").await;
    assert_eq!(env.bound_node("dyn-user").await, Some(node));

    // Static local volumes: only n2 has one, so the pod goes there and the
    // volume is reserved for the claim.
    class(
        &env,
        "local",
        "WaitForFirstConsumer",
        "kubernetes.io/no-provisioner",
    )
    .await;
    create_volume(&env, local_volume("disk-n2", "n2", "local")).await;
    claim(&env, "static", "local").await;
    env.add_pod(with_claim(pod("static-user", "", ""), "static"))
        .await;
    let volumes: Api<PersistentVolume> = Api::all(env.client.clone());
    wait_for("the volume reserved", Duration::from_secs(20), || async {
        let v = volumes.get("disk-n2").await.ok()?;
        let r = v.spec?.claim_ref?;
        (r.name.as_deref() == Some("static")).then_some(())
    })
    .await;
    mark_bound(&env, "static", "disk-n2").await;
    assert_eq!(env.bound_node("static-user").await.as_deref(), Some("n2"));

    // No volume left anywhere for another claim of that class.
    claim(&env, "none", "local").await;
    env.add_pod(with_claim(pod("none-user", "", ""), "none"))
        .await;
    let (_, msg) = env
        .unschedulable_condition("none-user")
        .await
        .expect("condition");
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."
    );
    env.stop().await;
}
