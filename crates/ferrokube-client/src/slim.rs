//! Objects read without their `metadata.managedFields`. The field sets a
//! server keeps there are the biggest part of many objects, and no
//! component but the API server uses them; client-go's informers drop them
//! after decoding (a transform), here they are skipped while decoding, so
//! they are never built.
//!
//! [`object_meta`] is a `deserialize_with` for an `ObjectMeta` field;
//! [`SlimPod`] is a Pod read that way, for watchers of many pods.

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// `ObjectMeta`'s members but managedFields (which is skipped unread).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct MetaWire {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

/// Reads an `ObjectMeta` leaving out managedFields.
pub fn object_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = Option::<MetaWire>::deserialize(d)?.unwrap_or_default();
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: m.self_link,
        uid: m.uid,
    })
}

/// A Pod read without managedFields; `.0` is the Pod.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(transparent)]
pub struct SlimPod(pub Pod);

impl<'de> Deserialize<'de> for SlimPod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "object_meta")]
            metadata: ObjectMeta,
            #[serde(default)]
            spec: Option<PodSpec>,
            #[serde(default)]
            status: Option<PodStatus>,
        }
        let w = Wire::deserialize(d)?;
        Ok(SlimPod(Pod {
            metadata: w.metadata,
            spec: w.spec,
            status: w.status,
        }))
    }
}

/// Makes `$ty`, a partial reading of core/v1 Pod whose `ObjectMeta` is at
/// `|p| p.<path>`, a Kubernetes resource for `kube::Api` and watchers.
#[macro_export]
macro_rules! pod_resource {
    ($ty:ty, |$p:ident| $meta:expr) => {
        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = "v1";
            const GROUP: &'static str = "";
            const KIND: &'static str = "Pod";
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = "pods";
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::Metadata for $ty {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                let $p = self;
                &$meta
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                let $p = self;
                &mut $meta
            }
        }
    };
}

pod_resource!(SlimPod, |p| p.0.metadata);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_is_read_whole_but_for_managed_fields() {
        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "9",
                "labels": {"a": "b"}, "annotations": {"k": "v"}, "generation": 2,
                "creationTimestamp": "2026-12-03T10:00:00Z",
                "deletionTimestamp": "2026-12-03T10:01:00Z", "deletionGracePeriodSeconds": 30,
                "finalizers": ["f"], "generateName": "p-",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "ru"}],
                "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:containers": {}}}}]
            },
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        });
        let slim: SlimPod = serde_json::from_value(v.clone()).unwrap();
        let mut whole: Pod = serde_json::from_value(v).unwrap();
        assert!(whole.metadata.managed_fields.is_some());
        whole.metadata.managed_fields = None;
        assert_eq!(slim.0, whole);
        // No metadata at all, or null: empty metadata.
        let bare: SlimPod = serde_json::from_value(json!({"metadata": null})).unwrap();
        assert_eq!(bare.0.metadata, ObjectMeta::default());
        // Wrong types are still errors.
        assert!(serde_json::from_value::<SlimPod>(json!({"metadata": {"name": 3}})).is_err());
    }
}
