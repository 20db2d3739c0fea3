//! The node's part of the built-in local-path storage: removing a deleted
//! volume's directory. A volume the local-path provisioner made lives in a
//! directory on one node (its node affinity names it), so only that node's
//! agent can remove it: once such a volume is Released with reclaim policy
//! Delete (its claim is gone), or is itself being deleted, the agent of its
//! node removes the directory, then the volume object (or the
//! `external-provisioner.volume.kubernetes.io/finalizer` holding it), as a
//! CSI driver's node-local provisioner does. Volumes with Retain keep their
//! directories.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The provisioner whose volumes this cleans up.
pub(crate) const PROVISIONER: &str = "ferrokube.io/local-path";
/// What holds such a volume until its directory is gone.
pub(crate) const CLEANUP_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";

const PERIOD: Duration = Duration::from_secs(2);

/// Looks for volumes of `node` to clean up, until `cancel`.
pub(crate) async fn run(client: kube::Client, node: String, cancel: CancellationToken) {
    let api: Api<PersistentVolume> = Api::all(client);
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for pv in list.items.iter().filter(|pv| due(pv, &node)) {
                    if let Err(e) = clean_up(&api, pv).await {
                        tracing::warn!(
                            volume = pv.metadata.name.as_deref().unwrap_or_default(),
                            "removing a local volume: {e}"
                        );
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "listing volumes"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}

/// Whether `pv` is a local-path volume of `node` whose directory should go.
pub(crate) fn due(pv: &PersistentVolume, node: &str) -> bool {
    let ours = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("pv.kubernetes.io/provisioned-by"))
        .map(String::as_str)
        == Some(PROVISIONER);
    let Some(spec) = pv.spec.as_ref() else {
        return false;
    };
    let on_node = spec
        .node_affinity
        .as_ref()
        .and_then(|a| a.required.as_ref())
        .is_some_and(|r| {
            r.node_selector_terms.iter().any(|t| {
                t.match_expressions.iter().flatten().any(|e| {
                    e.key == "kubernetes.io/hostname"
                        && e.operator == "In"
                        && e.values.iter().flatten().any(|v| v == node)
                })
            })
        });
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
        && spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete");
    let deleting = pv.metadata.deletion_timestamp.is_some()
        && pv
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == CLEANUP_FINALIZER);
    ours && on_node && spec.host_path.is_some() && (released || deleting)
}

/// Whether `dir` is a directory the provisioner made for the volume
/// `name` (`<base>/<name>_<namespace>_<claim>`): nothing else is removed.
fn is_volume_dir(dir: &Path, name: &str) -> bool {
    !name.is_empty()
        && dir.is_absolute()
        && dir
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with(&format!("{name}_")))
}

async fn clean_up(api: &Api<PersistentVolume>, pv: &PersistentVolume) -> anyhow::Result<()> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let path = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| h.path.clone())
        .unwrap_or_default();
    let dir = Path::new(&path);
    if is_volume_dir(dir, &name) {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {
                tracing::info!(volume = %name, path = %dir.display(), "removed the volume's directory")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("removing {}: {e}", dir.display()),
        }
    }
    let left: Vec<&String> = pv
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != CLEANUP_FINALIZER)
        .collect();
    if pv.metadata.deletion_timestamp.is_none() {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let patch = json!({"metadata": {"finalizers": left}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(phase: &str, policy: &str, node: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "pvc-1", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                "finalizers": [CLEANUP_FINALIZER]},
            "spec": {"persistentVolumeReclaimPolicy": policy,
                "hostPath": {"path": "/var/lib/ferrokube/storage/pvc-1_default_data"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn only_released_delete_volumes_of_this_node_go() {
        assert!(due(&pv("Released", "Delete", "n1"), "n1"));
        assert!(!due(&pv("Released", "Delete", "n1"), "n2"));
        assert!(!due(&pv("Released", "Retain", "n1"), "n1"));
        assert!(!due(&pv("Bound", "Delete", "n1"), "n1"));
        assert!(is_volume_dir(
            Path::new("/var/lib/ferrokube/storage/pvc-1_default_data"),
            "pvc-1"
        ));
        assert!(!is_volume_dir(Path::new("/var/lib"), "pvc-1"));
        assert!(!is_volume_dir(Path::new("/x/pvc-10_a_b"), "pvc-1"));
    }
}
