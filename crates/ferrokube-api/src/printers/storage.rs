//! Table columns and cells of the storage kinds: PersistentVolume,
//! PersistentVolumeClaim and `storage.k8s.io` (StorageClass, CSIDriver,
//! CSINode, VolumeAttachment, CSIStorageCapacity), laid out as upstream's
//! printers lay them out.

use serde_json::{json, Value};

use super::{age, array, c, name, text};
use super::{Column, AGE, NAME};

/// The annotation marking the cluster's default StorageClass (and its beta
/// spelling, which Kubernetes still honours).
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The beta spelling of [`DEFAULT_CLASS_ANNOTATION`], still honoured.
pub const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The beta annotation naming a claim's or volume's class, read before the
/// spec field as Kubernetes reads it.
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Whether a StorageClass is annotated as the default (`IsDefaultAnnotation`).
pub fn is_default_class(class: &Value) -> bool {
    let annotation = |k: &str| {
        class
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            == Some("true")
    };
    annotation(DEFAULT_CLASS_ANNOTATION) || annotation(BETA_DEFAULT_CLASS_ANNOTATION)
}

/// The class of a PersistentVolume or claim: the beta annotation, else
/// `spec.storageClassName`, else `""` (`GetPersistentVolumeClass`).
pub fn class_of(obj: &Value) -> String {
    if let Some(c) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
        .and_then(Value::as_str)
    {
        return c.to_string();
    }
    text(obj, "/spec/storageClassName").to_string()
}

/// Access modes as kubectl abbreviates them, in Kubernetes' fixed order,
/// each once (`GetAccessModesAsString`).
pub fn access_modes_text(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, s)| *s)
    .collect::<Vec<_>>()
    .join(",")
}

fn phase_or_terminating(obj: &Value) -> String {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating".to_string()
    } else {
        text(obj, "/status/phase").to_string()
    }
}

fn unset_or(obj: &Value, ptr: &str) -> String {
    match obj.pointer(ptr).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => "<unset>".to_string(),
    }
}

fn bool_or(obj: &Value, ptr: &str, default: bool) -> Value {
    json!(obj.pointer(ptr).and_then(Value::as_bool).unwrap_or(default))
}

/// The columns of `kind`, or `None` if it is not one of these kinds.
pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    Some(match (group, kind) {
        ("", "PersistentVolume") => vec![
            NAME,
            c("Capacity", "string", 0),
            c("Access Modes", "string", 0),
            c("Reclaim Policy", "string", 0),
            c("Status", "string", 0),
            c("Claim", "string", 0),
            c("StorageClass", "string", 0),
            c("VolumeAttributesClass", "string", 0),
            c("Reason", "string", 0),
            AGE,
            c("VolumeMode", "string", 1),
        ],
        ("", "PersistentVolumeClaim") => vec![
            NAME,
            c("Status", "string", 0),
            c("Volume", "string", 0),
            c("Capacity", "string", 0),
            c("Access Modes", "string", 0),
            c("StorageClass", "string", 0),
            c("VolumeAttributesClass", "string", 0),
            AGE,
            c("VolumeMode", "string", 1),
        ],
        ("storage.k8s.io", "StorageClass") => vec![
            NAME,
            c("Provisioner", "string", 0),
            c("ReclaimPolicy", "string", 0),
            c("VolumeBindingMode", "string", 0),
            c("AllowVolumeExpansion", "string", 0),
            AGE,
        ],
        ("storage.k8s.io", "CSIDriver") => vec![
            NAME,
            c("AttachRequired", "boolean", 0),
            c("PodInfoOnMount", "boolean", 0),
            c("StorageCapacity", "boolean", 0),
            c("TokenRequests", "string", 0),
            c("RequiresRepublish", "boolean", 0),
            c("Modes", "string", 0),
            AGE,
        ],
        ("storage.k8s.io", "CSINode") => vec![NAME, c("Drivers", "integer", 0), AGE],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            NAME,
            Column {
                format: "name",
                ..c("Attacher", "string", 0)
            },
            c("PV", "string", 0),
            c("Node", "string", 0),
            c("Attached", "boolean", 0),
            AGE,
        ],
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            NAME,
            c("StorageClassName", "string", 0),
            c("Capacity", "string", 0),
        ],
        _ => return None,
    })
}

/// The cells of one object of `kind`, or `None` if it is not one of these
/// kinds.
#[expect(clippy::too_many_lines, reason = "a table: one row of cells per kind")]
pub(super) fn cells(group: &str, kind: &str, obj: &Value, now: i64) -> Option<Vec<Value>> {
    Some(match (group, kind) {
        ("", "PersistentVolume") => {
            let claim = match obj.pointer("/spec/claimRef") {
                Some(r) if r.is_object() => {
                    format!("{}/{}", text(r, "/namespace"), text(r, "/name"))
                }
                _ => String::new(),
            };
            vec![
                name(obj),
                json!(text(obj, "/spec/capacity/storage")),
                json!(access_modes_text(array(obj, "/spec/accessModes"))),
                json!(text(obj, "/spec/persistentVolumeReclaimPolicy")),
                json!(phase_or_terminating(obj)),
                json!(claim),
                json!(class_of(obj)),
                json!(unset_or(obj, "/spec/volumeAttributesClassName")),
                json!(text(obj, "/status/reason")),
                json!(age(obj, now)),
                json!(unset_or(obj, "/spec/volumeMode")),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let bound = !text(obj, "/spec/volumeName").is_empty();
            let (capacity, modes) = if bound {
                (
                    text(obj, "/status/capacity/storage").to_string(),
                    access_modes_text(array(obj, "/status/accessModes")),
                )
            } else {
                (String::new(), String::new())
            };
            vec![
                name(obj),
                json!(phase_or_terminating(obj)),
                json!(text(obj, "/spec/volumeName")),
                json!(capacity),
                json!(modes),
                json!(class_of(obj)),
                json!(unset_or(obj, "/spec/volumeAttributesClassName")),
                json!(age(obj, now)),
                json!(unset_or(obj, "/spec/volumeMode")),
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let mut shown = text(obj, "/metadata/name").to_string();
            if is_default_class(obj) {
                shown.push_str(" (default)");
            }
            let or = |ptr: &str, d: &str| {
                obj.pointer(ptr)
                    .and_then(Value::as_str)
                    .unwrap_or(d)
                    .to_string()
            };
            vec![
                json!(shown),
                json!(text(obj, "/provisioner")),
                json!(or("/reclaimPolicy", "Delete")),
                json!(or("/volumeBindingMode", "Immediate")),
                bool_or(obj, "/allowVolumeExpansion", false),
                json!(age(obj, now)),
            ]
        }
        ("storage.k8s.io", "CSIDriver") => {
            let modes: Vec<&str> = array(obj, "/spec/volumeLifecycleModes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let modes = if modes.is_empty() {
                "<none>".to_string()
            } else {
                modes.join(",")
            };
            let tokens = match obj.pointer("/spec/tokenRequests").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|t| text(t, "/audience"))
                    .collect::<Vec<_>>()
                    .join(","),
                None => "<unset>".to_string(),
            };
            vec![
                name(obj),
                bool_or(obj, "/spec/attachRequired", true),
                bool_or(obj, "/spec/podInfoOnMount", false),
                bool_or(obj, "/spec/storageCapacity", false),
                json!(tokens),
                bool_or(obj, "/spec/requiresRepublish", false),
                json!(modes),
                json!(age(obj, now)),
            ]
        }
        ("storage.k8s.io", "CSINode") => vec![
            name(obj),
            json!(array(obj, "/spec/drivers").len()),
            json!(age(obj, now)),
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            name(obj),
            json!(text(obj, "/spec/attacher")),
            json!(text(obj, "/spec/source/persistentVolumeName")),
            json!(text(obj, "/spec/nodeName")),
            bool_or(obj, "/status/attached", false),
            json!(age(obj, now)),
        ],
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            name(obj),
            json!(text(obj, "/storageClassName")),
            json!(unset_or(obj, "/capacity")),
        ],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(group: &str, kind: &str) -> Vec<&'static str> {
        columns(group, kind)
            .unwrap()
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn headers_are_upstream_ones() {
        assert_eq!(
            headers("", "PersistentVolume"),
            [
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age"
            ]
        );
        assert_eq!(
            headers("", "PersistentVolumeClaim"),
            [
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age"
            ]
        );
        assert_eq!(
            headers("storage.k8s.io", "StorageClass"),
            [
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age"
            ]
        );
        assert_eq!(
            headers("storage.k8s.io", "VolumeAttachment"),
            ["Name", "Attacher", "PV", "Node", "Attached", "Age"]
        );
        assert_eq!(headers("storage.k8s.io", "CSIDriver").len(), 8);
    }

    #[test]
    fn rows_read_as_kubectl_prints_them() {
        let now = 1_700_000_100;
        let created = "2023-11-14T22:13:20Z"; // now - 100 s
        let class = json!({"metadata": {"name": "local-path", "creationTimestamp": created,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", &class, now).unwrap(),
            vec![
                json!("local-path (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("100s")
            ]
        );
        let pv = json!({"metadata": {"name": "pv1", "creationTimestamp": created},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "slow",
                "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        let row = cells("", "PersistentVolume", &pv, now).unwrap();
        assert_eq!(
            row[..9],
            [
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("slow"),
                json!("<unset>"),
                json!("")
            ]
        );
        let pending = json!({"metadata": {"name": "c", "creationTimestamp": created},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}});
        let row = cells("", "PersistentVolumeClaim", &pending, now).unwrap();
        assert_eq!(
            row[..6],
            [
                json!("c"),
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("local-path")
            ]
        );
    }
}
