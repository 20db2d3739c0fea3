//! The built-in local-path storage, as k3s packages it: the StorageClass
//! `local-path`, annotated as the cluster's default, whose claims wait for
//! their first consumer and whose volumes are deleted with their claims.
//! The provisioner itself runs in the controller manager (and the node
//! agent removes a deleted volume's directory); `--disable local-storage`
//! turns it off and takes the class away, as k3s removes a disabled addon.

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::json;

use ferrokube_controllers::persistentvolume::localpath::PROVISIONER;

/// The class's name.
pub(crate) const CLASS: &str = "local-path";

/// Makes the class if `enabled` and it is missing; removes ours if not.
pub(crate) async fn ensure_class(client: &kube::Client, enabled: bool) -> anyhow::Result<()> {
    let api: Api<StorageClass> = Api::all(client.clone());
    let existing = api.get_opt(CLASS).await?;
    if !enabled {
        if existing.is_some_and(|c| c.provisioner == PROVISIONER) {
            match api.delete(CLASS, &DeleteParams::default()).await {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    }
    if existing.is_some() {
        return Ok(());
    }
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {
            "name": CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
    }))?;
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
