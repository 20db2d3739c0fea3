//! A StatefulSet pod's identity, as Kubernetes' `stateful_set_utils.go`
//! gives it: the ordinal in its name (`<set>-<ordinal>`), its hostname and
//! subdomain (the set's `serviceName`), the labels naming it
//! (`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`)
//! and its revision (`controller-revision-hash`), and its stable storage:
//! one claim per template, `<template>-<set>-<ordinal>`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::podutil;

/// The label naming a StatefulSet pod (for per-pod Services).
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal.
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label holding the name of the ControllerRevision a pod was made from.
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

/// The set name and ordinal in a pod name `<parent>-<ordinal>` (the
/// ordinal must fit an int32, as Kubernetes parses it).
pub(crate) fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()?))
}

/// The pod's ordinal, or -1 when its name has none.
pub(crate) fn ordinal(p: &Pod) -> i32 {
    parent_and_ordinal(p.metadata.name.as_deref().unwrap_or(""))
        .map(|(_, o)| o)
        .unwrap_or(-1)
}

fn name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// `spec.replicas` (default 1).
pub(crate) fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

/// The first ordinal (`spec.ordinals.start`, default 0).
pub(crate) fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

/// Whether `ordinal` is one the set wants now.
pub(crate) fn in_range(ordinal: i32, set: &StatefulSet) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start.saturating_add(replicas(set))
}

pub(crate) fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", name(set))
}

/// The claim of template `template` for ordinal `ordinal`.
pub(crate) fn claim_name(template: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", name(set))
}

/// Whether the pod's name says it belongs to `set`.
pub(crate) fn is_member(set: &StatefulSet, p: &Pod) -> bool {
    parent_and_ordinal(p.metadata.name.as_deref().unwrap_or(""))
        .is_some_and(|(parent, _)| parent == name(set))
}

/// Whether the pod has its identity: name, namespace and the pod-name label.
pub(crate) fn identity_matches(set: &StatefulSet, p: &Pod) -> bool {
    let Some((parent, ord)) = parent_and_ordinal(p.metadata.name.as_deref().unwrap_or("")) else {
        return false;
    };
    let label = p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_NAME_LABEL));
    ord >= 0
        && parent == name(set)
        && p.metadata.namespace == set.metadata.namespace
        && label == p.metadata.name.as_ref()
}

fn templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[])
}

/// Whether the pod mounts every claim of the set's templates under the
/// template's name.
pub(crate) fn storage_matches(set: &StatefulSet, p: &Pod) -> bool {
    let ord = ordinal(p);
    if ord < 0 {
        return false;
    }
    let volumes = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    templates(set).iter().all(|t| {
        let tname = t.metadata.name.as_deref().unwrap_or("");
        volumes.iter().any(|v| {
            v.name == tname
                && v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim_name(tname, set, ord))
        })
    })
}

/// The claims of ordinal `ordinal`, by template name: each template with the
/// claim's name, the set's namespace and the selector's labels added.
pub(crate) fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    templates(set)
        .iter()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut claim = t.clone();
            claim.metadata.name = Some(claim_name(&tname, set, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata.labels = Some(labels);
            claim.status = None;
            (tname, claim)
        })
        .collect()
}

/// Sets the pod's name, namespace and identity labels.
pub(crate) fn update_identity(set: &StatefulSet, p: &mut Pod, ordinal: i32) {
    let name = pod_name(set, ordinal);
    p.metadata.namespace = set.metadata.namespace.clone();
    let labels = p.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    p.metadata.name = Some(name);
}

/// Makes the pod mount its claims under the templates' names (replacing
/// volumes of those names), keeping its other volumes.
pub(crate) fn update_storage(set: &StatefulSet, p: &mut Pod, ordinal: i32) {
    let claims = claims_for(set, ordinal);
    let spec = p.spec.get_or_insert_with(PodSpec::default);
    let old = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(tname, c)| Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: c.metadata.name.clone().unwrap_or_default(),
                read_only: Some(false),
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(
        old.into_iter()
            .filter(|v| !claims.iter().any(|(t, _)| *t == v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// The revision a pod was made from (its `controller-revision-hash`).
pub(crate) fn revision_of(p: &Pod) -> &str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

/// A new pod of `set` (whose template is the revision's) for `ordinal`,
/// labelled with `revision`: the template's labels, annotations and
/// finalizers, a controller reference to the set, its identity (hostname
/// and subdomain too) and storage.
pub(crate) fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let template = set.spec.as_ref().and_then(|s| s.template.metadata.clone());
    let tm = template.unwrap_or_default();
    let mut spec = set
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let name = pod_name(set, ordinal);
    spec.hostname = Some(name.clone());
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let mut pod = Pod {
        metadata: ObjectMeta {
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![podutil::owner_ref_to(set)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    };
    update_identity(set, &mut pod, ordinal);
    update_storage(set, &mut pod, ordinal);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.into(), revision.into());
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {
                "replicas": 3,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                             "volumes": [{"name": "www", "emptyDir": {}},
                                         {"name": "cfg", "emptyDir": {}}]}
                },
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"k": "v"}},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .expect("set")
    }

    #[test]
    fn ordinals_come_from_the_name() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-1a"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn a_new_pod_has_its_identity_and_claims() {
        let s = set();
        let p = new_pod(&s, 1, "web-abc");
        assert_eq!(p.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[POD_NAME_LABEL], "web-1");
        assert_eq!(labels[POD_INDEX_LABEL], "1");
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let vols = spec.volumes.unwrap_or_default();
        // The template's claim replaces the volume of the same name.
        assert_eq!(vols.len(), 2);
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-1")
        );
        assert_eq!(vols[1].name, "cfg");
        assert!(identity_matches(&s, &p));
        assert!(storage_matches(&s, &p));
        let r = &p.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!((r.kind.as_str(), r.uid.as_str()), ("StatefulSet", "u1"));
    }

    #[test]
    fn claims_carry_the_selector_labels() {
        let s = set();
        let claims = claims_for(&s, 2);
        assert_eq!(claims.len(), 1);
        let (t, c) = &claims[0];
        assert_eq!(t, "www");
        assert_eq!(c.metadata.name.as_deref(), Some("www-web-2"));
        let labels = c.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["k"], "v");
        assert_eq!(labels["app"], "web");
    }

    #[test]
    fn the_range_starts_at_ordinals_start() {
        let mut s = set();
        assert!(in_range(0, &s) && in_range(2, &s) && !in_range(3, &s));
        if let Some(spec) = s.spec.as_mut() {
            spec.ordinals =
                Some(k8s_openapi::api::apps::v1::StatefulSetOrdinals { start: Some(5) });
        }
        assert!(!in_range(0, &s) && in_range(5, &s) && in_range(7, &s) && !in_range(8, &s));
    }
}
