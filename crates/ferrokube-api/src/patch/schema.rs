//! What the strategic merge patch knows of the built-in types: a table of
//! rows (Go type, JSON field) → (patch strategy, merge key, type of the
//! field's value or list elements), read off the `patchStrategy` and
//! `patchMergeKey` struct tags of `k8s.io/api`, and a table of kinds → their
//! top-level type. New kinds and types are new rows.
//!
//! Fields without a row behave as Kubernetes' untagged fields do: maps
//! merge, lists are replaced. Kinds without a row (custom resources) get no
//! type at all, so every list in them is replaced, as Kubernetes does.

/// How a list (or map) field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The patch value replaces the current one (untagged lists, or
    /// `patchStrategy:"replace"`).
    Replace,
    /// Lists merge: elements of objects by `merge_key`, scalars as a set.
    Merge,
}

/// The patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMeta {
    /// How the field's list is patched. Object fields always merge.
    pub strategy: Strategy,
    /// The field of list elements that identifies them (`name`, `port`, ...);
    /// `None` for lists of scalars.
    pub merge_key: Option<&'static str>,
    /// Whether the tag also carries `retainKeys` (clients send `$retainKeys`
    /// for it; the server honours that directive wherever it appears).
    pub retain_keys: bool,
    /// The type of the field's value (or of each list element), to look
    /// nested fields up in; `None` when nothing below it has a row.
    pub ty: Option<&'static str>,
}

/// Something that knows patch metadata of (type, field) pairs.
pub trait SchemaLookup {
    /// The metadata of `field` in type `ty`, if the table has it.
    fn field(&self, ty: &str, field: &str) -> Option<FieldMeta>;
}

use Strategy::{Merge, Replace};

const fn nav(ty: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Replace,
        merge_key: None,
        retain_keys: false,
        ty: Some(ty),
    }
}
const fn keyed(key: &'static str, ty: Option<&'static str>) -> FieldMeta {
    FieldMeta {
        strategy: Merge,
        merge_key: Some(key),
        retain_keys: false,
        ty,
    }
}
const fn keyed_retain(key: &'static str, ty: Option<&'static str>) -> FieldMeta {
    FieldMeta {
        strategy: Merge,
        merge_key: Some(key),
        retain_keys: true,
        ty,
    }
}
const SET: FieldMeta = FieldMeta {
    strategy: Merge,
    merge_key: None,
    retain_keys: false,
    ty: None,
};
const ATOMIC: FieldMeta = FieldMeta {
    strategy: Replace,
    merge_key: None,
    retain_keys: false,
    ty: None,
};
const RETAIN: FieldMeta = FieldMeta {
    strategy: Replace,
    merge_key: None,
    retain_keys: true,
    ty: None,
};

/// (type, JSON field, metadata). Types are named as in `k8s.io/api`.
/// Untagged lists listed as `ATOMIC` are there to record that they were
/// checked (tolerations, readinessGates, taints, subsets, ...).
pub static FIELDS: &[(&str, &str, FieldMeta)] = &[
    // metadata
    ("ObjectMeta", "ownerReferences", keyed("uid", None)),
    ("ObjectMeta", "finalizers", SET),
    ("ObjectMeta", "managedFields", ATOMIC),
    // core/v1 Pod and its parts
    ("Pod", "metadata", nav("ObjectMeta")),
    ("Pod", "spec", nav("PodSpec")),
    ("Pod", "status", nav("PodStatus")),
    ("PodTemplate", "metadata", nav("ObjectMeta")),
    ("PodTemplate", "template", nav("PodTemplateSpec")),
    ("PodTemplateSpec", "metadata", nav("ObjectMeta")),
    ("PodTemplateSpec", "spec", nav("PodSpec")),
    ("PodSpec", "volumes", keyed_retain("name", Some("Volume"))),
    (
        "PodSpec",
        "initContainers",
        keyed("name", Some("Container")),
    ),
    ("PodSpec", "containers", keyed("name", Some("Container"))),
    (
        "PodSpec",
        "ephemeralContainers",
        keyed("name", Some("Container")),
    ),
    ("PodSpec", "imagePullSecrets", keyed("name", None)),
    ("PodSpec", "hostAliases", keyed("ip", None)),
    (
        "PodSpec",
        "topologySpreadConstraints",
        keyed("topologyKey", None),
    ),
    ("PodSpec", "resourceClaims", keyed_retain("name", None)),
    ("PodSpec", "schedulingGates", keyed("name", None)),
    ("PodSpec", "tolerations", ATOMIC),
    ("PodSpec", "readinessGates", ATOMIC),
    ("Container", "ports", keyed("containerPort", None)),
    ("Container", "env", keyed("name", None)),
    ("Container", "volumeMounts", keyed("mountPath", None)),
    ("Container", "volumeDevices", keyed("devicePath", None)),
    ("Container", "envFrom", ATOMIC),
    ("PodStatus", "conditions", keyed("type", None)),
    ("PodStatus", "podIPs", keyed("ip", None)),
    ("PodStatus", "hostIPs", keyed("ip", None)),
    (
        "PodStatus",
        "resourceClaimStatuses",
        keyed_retain("name", None),
    ),
    // workloads: everything that holds a pod template
    ("ReplicationController", "metadata", nav("ObjectMeta")),
    (
        "ReplicationController",
        "spec",
        nav("ReplicationControllerSpec"),
    ),
    ("ReplicationController", "status", nav("ConditionsStatus")),
    (
        "ReplicationControllerSpec",
        "template",
        nav("PodTemplateSpec"),
    ),
    ("Deployment", "metadata", nav("ObjectMeta")),
    ("Deployment", "spec", nav("DeploymentSpec")),
    ("Deployment", "status", nav("ConditionsStatus")),
    ("DeploymentSpec", "template", nav("PodTemplateSpec")),
    ("DeploymentSpec", "strategy", RETAIN),
    ("ReplicaSet", "metadata", nav("ObjectMeta")),
    ("ReplicaSet", "spec", nav("WorkloadSpec")),
    ("ReplicaSet", "status", nav("ConditionsStatus")),
    ("StatefulSet", "metadata", nav("ObjectMeta")),
    ("StatefulSet", "spec", nav("StatefulSetSpec")),
    ("StatefulSet", "status", nav("ConditionsStatus")),
    ("StatefulSetSpec", "template", nav("PodTemplateSpec")),
    ("StatefulSetSpec", "volumeClaimTemplates", ATOMIC),
    ("DaemonSet", "metadata", nav("ObjectMeta")),
    ("DaemonSet", "spec", nav("WorkloadSpec")),
    ("DaemonSet", "status", nav("ConditionsStatus")),
    ("WorkloadSpec", "template", nav("PodTemplateSpec")),
    ("Job", "metadata", nav("ObjectMeta")),
    ("Job", "spec", nav("WorkloadSpec")),
    ("Job", "status", nav("ConditionsStatus")),
    ("CronJob", "metadata", nav("ObjectMeta")),
    ("CronJob", "spec", nav("CronJobSpec")),
    ("CronJobSpec", "jobTemplate", nav("JobTemplateSpec")),
    ("JobTemplateSpec", "metadata", nav("ObjectMeta")),
    ("JobTemplateSpec", "spec", nav("WorkloadSpec")),
    ("ConditionsStatus", "conditions", keyed("type", None)),
    // autoscaling: v2's conditions merge by type; its metrics and behavior
    // policies are atomic lists (v1 has neither)
    ("HorizontalPodAutoscaler", "metadata", nav("ObjectMeta")),
    ("HorizontalPodAutoscaler", "status", nav("ConditionsStatus")),
    // services and networking
    ("Service", "metadata", nav("ObjectMeta")),
    ("Service", "spec", nav("ServiceSpec")),
    ("Service", "status", nav("ConditionsStatus")),
    ("ServiceSpec", "ports", keyed("port", None)),
    ("Endpoints", "metadata", nav("ObjectMeta")),
    ("Endpoints", "subsets", ATOMIC),
    // cluster objects
    ("Node", "metadata", nav("ObjectMeta")),
    ("Node", "spec", nav("NodeSpec")),
    ("Node", "status", nav("NodeStatus")),
    ("NodeSpec", "podCIDRs", SET),
    ("NodeSpec", "taints", ATOMIC),
    ("NodeStatus", "conditions", keyed("type", None)),
    ("NodeStatus", "addresses", keyed("type", None)),
    ("Namespace", "metadata", nav("ObjectMeta")),
    ("Namespace", "spec", nav("NamespaceSpec")),
    ("Namespace", "status", nav("ConditionsStatus")),
    ("NamespaceSpec", "finalizers", ATOMIC),
    ("ConfigMap", "metadata", nav("ObjectMeta")),
    ("Secret", "metadata", nav("ObjectMeta")),
    ("ServiceAccount", "metadata", nav("ObjectMeta")),
    ("ServiceAccount", "secrets", keyed("name", None)),
    ("PersistentVolumeClaim", "metadata", nav("ObjectMeta")),
    ("PersistentVolumeClaim", "status", nav("ConditionsStatus")),
    ("PersistentVolume", "metadata", nav("ObjectMeta")),
    ("Event", "metadata", nav("ObjectMeta")),
];

/// (API group, kind) → top-level type in [`FIELDS`].
pub static KINDS: &[(&str, &str, &str)] = &[
    ("", "Pod", "Pod"),
    ("", "PodTemplate", "PodTemplate"),
    ("", "ReplicationController", "ReplicationController"),
    ("", "Service", "Service"),
    ("", "Endpoints", "Endpoints"),
    ("", "Node", "Node"),
    ("", "Namespace", "Namespace"),
    ("", "ConfigMap", "ConfigMap"),
    ("", "Secret", "Secret"),
    ("", "ServiceAccount", "ServiceAccount"),
    ("", "PersistentVolumeClaim", "PersistentVolumeClaim"),
    ("", "PersistentVolume", "PersistentVolume"),
    ("", "Event", "Event"),
    ("apps", "Deployment", "Deployment"),
    ("apps", "ReplicaSet", "ReplicaSet"),
    ("apps", "StatefulSet", "StatefulSet"),
    ("apps", "DaemonSet", "DaemonSet"),
    ("batch", "Job", "Job"),
    ("batch", "CronJob", "CronJob"),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "HorizontalPodAutoscaler",
    ),
];

/// The built-in table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

impl SchemaLookup for Builtin {
    fn field(&self, ty: &str, field: &str) -> Option<FieldMeta> {
        FIELDS
            .iter()
            .find(|(t, f, _)| *t == ty && *f == field)
            .map(|(_, _, m)| *m)
    }
}

/// The top-level type of a built-in kind; `None` for kinds the table does
/// not know (custom resources), whose lists are all replaced.
pub fn root_type(group: &str, kind: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, t)| *t)
}

/// The top-level type for an object's `apiVersion` (`v1`, `apps/v1`) and
/// `kind`.
pub fn root_type_for(api_version: &str, kind: &str) -> Option<&'static str> {
    let group = match api_version.rsplit_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    root_type(group, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_type_is_defined_or_a_leaf() {
        // A row pointing at a type that has no rows of its own would make
        // its nested lists silently fall back to replace.
        let leaves = ["Volume"];
        for (t, f, m) in FIELDS {
            if let Some(ty) = m.ty {
                assert!(
                    leaves.contains(&ty) || FIELDS.iter().any(|(t2, _, _)| *t2 == ty),
                    "{t}.{f} points at {ty}, which has no rows"
                );
            }
        }
        for (_, k, t) in KINDS {
            assert!(FIELDS.iter().any(|(t2, _, _)| t2 == t), "{k} has no rows");
        }
    }

    #[test]
    fn rows_are_unique() {
        for (i, (t, f, _)) in FIELDS.iter().enumerate() {
            assert!(
                !FIELDS[i + 1..].iter().any(|(t2, f2, _)| t2 == t && f2 == f),
                "duplicate row {t}.{f}"
            );
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(root_type_for("apps/v1", "Deployment"), Some("Deployment"));
        assert_eq!(root_type_for("v1", "Pod"), Some("Pod"));
        assert_eq!(root_type_for("example.com/v1", "Pod"), None);
        assert_eq!(root_type_for("v1", "Widget"), None);
        let c = Builtin.field("Container", "ports").unwrap();
        assert_eq!((c.strategy, c.merge_key), (Merge, Some("containerPort")));
        let s = Builtin.field("ServiceSpec", "ports").unwrap();
        assert_eq!(s.merge_key, Some("port"));
        assert_eq!(
            Builtin.field("PodSpec", "tolerations").unwrap().strategy,
            Replace
        );
        assert!(Builtin.field("PodSpec", "volumes").unwrap().retain_keys);
        assert!(Builtin.field("PodSpec", "nodeSelector").is_none());
    }
}
