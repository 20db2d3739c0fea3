//! The built-in local-path provisioner, as k3s ships one: a claim of a
//! class whose provisioner is [`PROVISIONER`] gets a `hostPath` volume in a
//! directory of its own under the cluster's local storage directory
//! (`DATA_DIR/storage`) on the node the scheduler picked for its first
//! consumer (`volume.kubernetes.io/selected-node`), with node affinity to
//! that node. The node agent creates the directory when it mounts it
//! (`DirectoryOrCreate`), and removes it when the volume is reclaimed with
//! Delete: only that node can, and it does so for the volumes of its node
//! (crates/ferrokube-kubelet). A volume provisioned with reclaim policy
//! Delete carries [`CLEANUP_FINALIZER`] until then.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use super::{
    annotation, claim_reference, name_of, Controller, ANN_PROVISIONED_BY, ANN_SELECTED_NODE,
};

/// The provisioner's name: our own, not `rancher.io/local-path`, since this
/// is not Rancher's provisioner (no helper pods, no ConfigMap) and a
/// cluster that installs Rancher's must not have two provisioners acting on
/// the same claims.
pub const PROVISIONER: &str = "ferrokube.io/local-path";

/// The finalizer a Delete volume keeps until its node removed its
/// directory (the external provisioners' own).
pub const CLEANUP_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";

/// The node label the volume's node affinity names.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The name of the volume made for `claim` (`pvc-<claim uid>`).
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default())
}

/// The volume the provisioner makes for `claim` on `node`, under `base`:
/// the directory is `<volume>_<namespace>_<claim>` as k3s names it.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    base: &Path,
    node: &str,
) -> PersistentVolume {
    let name = volume_name(claim);
    let ns = claim.metadata.namespace.clone().unwrap_or_default();
    let dir = base.join(format!("{name}_{ns}_{}", name_of(claim)));
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "0".into());
    let policy = class
        .reclaim_policy
        .clone()
        .unwrap_or_else(|| "Delete".into());
    let finalizers = if policy == "Delete" {
        json!([CLEANUP_FINALIZER])
    } else {
        json!([])
    };
    let volume = json!({
        "metadata": {
            "name": name,
            "annotations": {ANN_PROVISIONED_BY: PROVISIONER},
            "finalizers": finalizers,
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes.clone().unwrap_or_default(),
            "persistentVolumeReclaimPolicy": policy,
            "storageClassName": class.metadata.name,
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
            "mountOptions": class.mount_options,
            "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
            "claimRef": claim_reference(claim),
        }
    });
    serde_json::from_value(volume).unwrap_or_default()
}

/// Makes the volume of `claim` once the scheduler picked its node.
pub(crate) async fn provision(
    ctrl: &Controller,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    base: &Path,
    volumes: &[Arc<PersistentVolume>],
) -> kube::Result<()> {
    let name = volume_name(claim);
    if volumes
        .iter()
        .any(|v| v.metadata.name.as_deref() == Some(name.as_str()))
    {
        // Made already; binding follows.
        return Ok(());
    }
    let Some(node) = annotation(claim, ANN_SELECTED_NODE).map(str::to_string) else {
        ctrl.event(
            claim,
            "Warning",
            "ProvisioningFailed",
            "failed to provision volume with StorageClass \"".to_string()
                + class.metadata.name.as_deref().unwrap_or_default()
                + "\": configuration error, no node was specified",
        );
        return Ok(());
    };
    let key = format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        name_of(claim)
    );
    ctrl.event(
        claim,
        "Normal",
        "Provisioning",
        format!("External provisioner is provisioning volume for claim {key:?}"),
    );
    let volume = volume_for(claim, class, base, &node);
    match Api::<PersistentVolume>::all(ctrl.client.clone())
        .create(&PostParams::default(), &volume)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
        Err(e) => {
            ctrl.event(
                claim,
                "Warning",
                "ProvisioningFailed",
                format!(
                    "failed to provision volume with StorageClass {:?}: {e}",
                    class.metadata.name.as_deref().unwrap_or_default()
                ),
            );
            return Err(e);
        }
    }
    ctrl.event(
        claim,
        "Normal",
        "ProvisioningSucceeded",
        format!("Successfully provisioned volume {name}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_made_for_the_node_of_the_first_consumer() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "apps", "uid": "1234"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "local-path"}
        }))
        .unwrap();
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "local-path"}, "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"
        }))
        .unwrap();
        let pv = volume_for(
            &claim,
            &class,
            Path::new("/var/lib/ferrokube/storage"),
            "node-1",
        );
        let v = serde_json::to_value(&pv).unwrap();
        assert_eq!(v["metadata"]["name"], "pvc-1234");
        assert_eq!(v["metadata"]["finalizers"], json!([CLEANUP_FINALIZER]));
        assert_eq!(
            v["spec"]["hostPath"]["path"],
            "/var/lib/ferrokube/storage/pvc-1234_apps_data"
        );
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["claimRef"]["uid"], "1234");
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"],
            json!(["node-1"])
        );
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    }
}
