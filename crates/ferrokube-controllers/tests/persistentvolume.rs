//! The PersistentVolume controller against a real API server: static
//! binding (size, modes, class, selector, volumeName, claimRef), phases,
//! reclaim policies and the local-path provisioner's volumes.

mod common;

use common::{obj, WAIT};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_client::testing::TestApi;
use ferrokube_controllers::persistentvolume::{self, localpath, PvConfig};
use ferrokube_controllers::watchqueue::Informers;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Env {
    _api: TestApi,
    client: kube::Client,
    ns: String,
    cancel: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start(ns: &str) -> Env {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let api = TestApi::start().await.expect("test API server");
    let client = api.client().await.expect("client");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": ns}})),
        )
        .await
        .expect("namespace");
    let cancel = CancellationToken::new();
    let mut informers = Informers::new(client.clone());
    let run = persistentvolume::start(
        &mut informers,
        client.clone(),
        PvConfig {
            local_path: Some("/var/lib/ferrokube/storage".into()),
        },
        cancel.clone(),
    );
    tokio::spawn(run);
    // Claims are deleted once no pod uses them (their finalizer).
    tokio::spawn(ferrokube_controllers::volumeprotection::start(
        &mut informers,
        client.clone(),
        cancel.clone(),
    ));
    informers.spawn(&cancel);
    Env {
        _api: api,
        client,
        ns: ns.to_string(),
        cancel,
    }
}

impl Env {
    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }
    async fn claim(&self, name: &str) -> PersistentVolumeClaim {
        self.claims().get(name).await.expect("claim")
    }
    async fn volume(&self, name: &str) -> Option<PersistentVolume> {
        self.volumes().get_opt(name).await.expect("volume")
    }
    async fn reasons(&self, name: &str) -> Vec<(String, String)> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }
}

fn pv(name: &str, size: &str, modes: &[&str], extra: serde_json::Value) -> PersistentVolume {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": modes,
            "hostPath": {"path": format!("/tmp/{name}")}}
    });
    merge(&mut v, extra);
    obj(v)
}

fn pvc(name: &str, size: &str, extra: serde_json::Value) -> PersistentVolumeClaim {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
            "storageClassName": ""}
    });
    merge(&mut v, extra);
    obj(v)
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn phase_of_claim(c: &PersistentVolumeClaim) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn phase_of_volume(v: &PersistentVolume) -> String {
    v.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn annotation(o: &impl kube::Resource, key: &str) -> Option<String> {
    o.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key).cloned())
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_volumes_bind_to_the_smallest_fitting_claim_and_are_released() {
    let env = start("pv-static").await;
    let pp = PostParams::default();
    for v in [
        pv("big", "10Gi", &["ReadWriteOnce"], json!({})),
        pv("small", "1Gi", &["ReadWriteOnce"], json!({})),
        pv(
            "fits",
            "2Gi",
            &["ReadWriteOnce"],
            json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}}),
        ),
        pv(
            "gold",
            "5Gi",
            &["ReadWriteOnce"],
            json!({"metadata": {"labels": {"tier": "gold"}},
            "spec": {"persistentVolumeReclaimPolicy": "Delete"}}),
        ),
        pv("rwx", "5Gi", &["ReadWriteMany"], json!({})),
    ] {
        env.volumes().create(&pp, &v).await.expect("volume");
    }
    wait_for("volumes Available", WAIT, || async {
        let all = env.volumes().list(&ListParams::default()).await.ok()?.items;
        all.iter()
            .all(|v| phase_of_volume(v) == "Available")
            .then_some(())
    })
    .await;

    env.claims()
        .create(&pp, &pvc("data", "1500Mi", json!({})))
        .await
        .expect("claim");
    env.claims()
        .create(
            &pp,
            &pvc(
                "gold",
                "1Gi",
                json!({"spec": {"selector": {"matchLabels": {"tier": "gold"}}}}),
            ),
        )
        .await
        .expect("claim");
    env.claims()
        .create(
            &pp,
            &pvc(
                "shared",
                "1Gi",
                json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
            ),
        )
        .await
        .expect("claim");
    let data = wait_for("data Bound", WAIT, || async {
        let c = env.claim("data").await;
        (phase_of_claim(&c) == "Bound").then_some(c)
    })
    .await;
    let spec = data.spec.clone().unwrap_or_default();
    assert_eq!(spec.volume_name.as_deref(), Some("fits"));
    let status = data.status.clone().unwrap_or_default();
    assert_eq!(status.capacity.unwrap()["storage"].0, "2Gi");
    assert_eq!(status.access_modes.unwrap(), ["ReadWriteOnce"]);
    assert_eq!(
        annotation(&data, persistentvolume::ANN_BIND_COMPLETED).as_deref(),
        Some("yes")
    );
    assert_eq!(
        annotation(&data, persistentvolume::ANN_BOUND_BY_CONTROLLER).as_deref(),
        Some("yes")
    );
    let fits = wait_for("fits Bound", WAIT, || async {
        let v = env.volume("fits").await?;
        (phase_of_volume(&v) == "Bound").then_some(v)
    })
    .await;
    let r = fits.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_deref()),
        (Some("pv-static"), Some("data"))
    );
    assert_eq!(r.uid, data.metadata.uid);
    assert_eq!(
        annotation(&fits, persistentvolume::ANN_BOUND_BY_CONTROLLER).as_deref(),
        Some("yes")
    );
    for (claim, volume) in [("gold", "gold"), ("shared", "rwx")] {
        let c = wait_for(&format!("{claim} Bound"), WAIT, || async {
            let c = env.claim(claim).await;
            (phase_of_claim(&c) == "Bound").then_some(c)
        })
        .await;
        assert_eq!(c.spec.unwrap().volume_name.as_deref(), Some(volume));
    }

    // No volume left for a 20Gi claim: it waits, saying why.
    env.claims()
        .create(&pp, &pvc("huge", "20Gi", json!({})))
        .await
        .expect("claim");
    wait_for("FailedBinding", WAIT, || async {
        env.reasons("huge")
            .await
            .iter()
            .any(|(r, m)| {
                r == "FailedBinding"
                && m == "no persistent volumes available for this claim and no storage class is set"
            })
            .then_some(())
    })
    .await;
    assert_eq!(phase_of_claim(&env.claim("huge").await), "Pending");

    // The claim goes: its Retain volume is Released and stays; a static
    // Delete volume cannot be deleted here and Fails.
    env.claims()
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    env.claims()
        .delete("gold", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("fits Released", WAIT, || async {
        (phase_of_volume(&env.volume("fits").await?) == "Released").then_some(())
    })
    .await;
    let gold = wait_for("gold Failed", WAIT, || async {
        let v = env.volume("gold").await?;
        (phase_of_volume(&v) == "Failed").then_some(v)
    })
    .await;
    assert_eq!(
        gold.status.unwrap().message.as_deref(),
        Some("error getting deleter volume plugin for volume \"gold\": no deletable volume plugin matched")
    );
    // A new claim of the same name does not get the Released volume.
    env.claims()
        .create(&pp, &pvc("data", "1500Mi", json!({})))
        .await
        .expect("claim");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        phase_of_volume(&env.volume("fits").await.unwrap()),
        "Released"
    );
    let _ = WAIT;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_naming_a_volume_and_volumes_naming_a_claim() {
    let env = start("pv-prebound").await;
    let pp = PostParams::default();
    // A volume reserved for a claim (claimRef without uid) goes to it only.
    env.volumes()
        .create(
            &pp,
            &pv(
                "reserved",
                "1Gi",
                &["ReadWriteOnce"],
                json!({"spec": {"claimRef": {"namespace": "pv-prebound", "name": "mine"}}}),
            ),
        )
        .await
        .expect("volume");
    env.volumes()
        .create(&pp, &pv("named", "5Gi", &["ReadWriteOnce"], json!({})))
        .await
        .expect("volume");
    // (Asking for a mode no volume has, so it takes neither.)
    env.claims()
        .create(
            &pp,
            &pvc(
                "other",
                "1Gi",
                json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
            ),
        )
        .await
        .expect("claim");
    env.claims()
        .create(&pp, &pvc("mine", "1Gi", json!({})))
        .await
        .expect("claim");
    env.claims()
        .create(
            &pp,
            &pvc("by-name", "1Gi", json!({"spec": {"volumeName": "named"}})),
        )
        .await
        .expect("claim");
    env.claims()
        .create(
            &pp,
            &pvc("too-big", "50Gi", json!({"spec": {"volumeName": "named"}})),
        )
        .await
        .expect("claim");
    let mine = wait_for("mine Bound", WAIT, || async {
        let c = env.claim("mine").await;
        (phase_of_claim(&c) == "Bound").then_some(c)
    })
    .await;
    assert_eq!(mine.spec.unwrap().volume_name.as_deref(), Some("reserved"));
    let by_name = wait_for("by-name Bound", WAIT, || async {
        let c = env.claim("by-name").await;
        (phase_of_claim(&c) == "Bound").then_some(c)
    })
    .await;
    // Named by the user: bound, but not chosen by the controller.
    assert_eq!(
        annotation(&by_name, persistentvolume::ANN_BOUND_BY_CONTROLLER),
        None
    );
    let reserved = env.volume("reserved").await.unwrap();
    assert_eq!(
        annotation(&reserved, persistentvolume::ANN_BOUND_BY_CONTROLLER),
        None
    );
    wait_for("the too-big claim's mismatch", WAIT, || async {
        env.reasons("too-big")
            .await
            .iter()
            .any(|(r, m)| {
                r == "FailedBinding" && m == "volume \"named\" already bound to a different claim."
            })
            .then_some(())
    })
    .await;
    assert_eq!(phase_of_claim(&env.claim("other").await), "Pending");
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_path_claims_wait_for_a_node_then_get_a_volume_there() {
    let env = start("pv-local").await;
    let pp = PostParams::default();
    let class: StorageClass = obj(json!({
        "metadata": {"name": "local-path"},
        "provisioner": localpath::PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer"
    }));
    Api::<StorageClass>::all(env.client.clone())
        .create(&pp, &class)
        .await
        .expect("class");
    env.claims()
        .create(
            &pp,
            &pvc(
                "data",
                "1Gi",
                json!({"spec": {"storageClassName": "local-path"}}),
            ),
        )
        .await
        .expect("claim");
    wait_for("WaitForFirstConsumer", WAIT, || async {
        env.reasons("data")
            .await
            .iter()
            .any(|(r, m)| {
                r == "WaitForFirstConsumer"
                    && m == "waiting for first consumer to be created before binding"
            })
            .then_some(())
    })
    .await;
    assert!(env
        .volumes()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // The scheduler picks the node.
    env.claims()
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {
            persistentvolume::ANN_SELECTED_NODE: "node-1"}}})),
        )
        .await
        .expect("selecting the node");
    let claim = wait_for("data Bound", WAIT, || async {
        let c = env.claim("data").await;
        (phase_of_claim(&c) == "Bound").then_some(c)
    })
    .await;
    assert_eq!(
        annotation(&claim, persistentvolume::ANN_STORAGE_PROVISIONER).as_deref(),
        Some(localpath::PROVISIONER)
    );
    let name = claim.spec.unwrap().volume_name.unwrap();
    assert_eq!(name, format!("pvc-{}", claim.metadata.uid.clone().unwrap()));
    let volume = env.volume(&name).await.unwrap();
    let spec = volume.spec.clone().unwrap();
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(
        spec.host_path.unwrap().path,
        format!("/var/lib/ferrokube/storage/{name}_pv-local_data")
    );
    assert_eq!(
        annotation(&volume, persistentvolume::ANN_PROVISIONED_BY).as_deref(),
        Some(localpath::PROVISIONER)
    );
    wait_for("ProvisioningSucceeded", WAIT, || async {
        env.reasons("data")
            .await
            .iter()
            .any(|(r, m)| {
                r == "ProvisioningSucceeded"
                    && *m == format!("Successfully provisioned volume {name}")
            })
            .then_some(())
    })
    .await;
    // The claim goes: the volume is Released and waits for its node to
    // remove the directory.
    env.claims()
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("Released", WAIT, || async {
        (phase_of_volume(&env.volume(&name).await?) == "Released").then_some(())
    })
    .await;

    // A claim made while there was no default class gets the default
    // class once one appears.
    let mut none = pvc("late", "1Gi", json!({}));
    none.spec.as_mut().unwrap().storage_class_name = None;
    env.claims().create(&pp, &none).await.expect("claim");
    let default: StorageClass = obj(json!({
        "metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "example.com/elsewhere"
    }));
    Api::<StorageClass>::all(env.client.clone())
        .create(&pp, &default)
        .await
        .expect("class");
    wait_for("the default class assigned", WAIT, || async {
        let c = env.claim("late").await;
        (c.spec?.storage_class_name.as_deref() == Some("standard")).then_some(())
    })
    .await;
    wait_for("ExternalProvisioning", WAIT, || async {
        env.reasons("late")
            .await
            .iter()
            .any(|(r, _)| r == "ExternalProvisioning")
            .then_some(())
    })
    .await;

    // A claim of a class that does not exist says so.
    env.claims()
        .create(
            &pp,
            &pvc(
                "nowhere",
                "1Gi",
                json!({"spec": {"storageClassName": "missing"}}),
            ),
        )
        .await
        .expect("claim");
    wait_for("ProvisioningFailed", WAIT, || async {
        env.reasons("nowhere")
            .await
            .iter()
            .any(|(r, m)| {
                r == "ProvisioningFailed"
                    && m == "storageclass.storage.k8s.io \"missing\" not found"
            })
            .then_some(())
    })
    .await;
}
