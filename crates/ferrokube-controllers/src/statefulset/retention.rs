//! `persistentVolumeClaimRetentionPolicy`: which owner references a
//! StatefulSet's claims carry so that the garbage collector deletes them
//! when the policy says so, as Kubernetes' controller sets them:
//!
//! - Retain / Retain: no reference to the set or the pod;
//! - whenDeleted Delete: a controller reference to the set (while the
//!   ordinal is wanted, with whenScaled Delete);
//! - whenScaled Delete: a controller reference to the pod once its ordinal
//!   is scaled away (the claim goes with the pod).
//!
//! Claims whose references name an older set or pod of the same name, or
//! another controller, are left alone.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::identity;

const RETAIN: &str = "Retain";
const DELETE: &str = "Delete";

/// (whenDeleted, whenScaled), unknown values read as Retain.
pub(crate) fn policy(set: &StatefulSet) -> (&'static str, &'static str) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let read = |v: Option<&String>| match v.map(String::as_str) {
        Some(DELETE) => DELETE,
        _ => RETAIN,
    };
    (
        read(p.and_then(|p| p.when_deleted.as_ref())),
        read(p.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// Who may own a claim: the set or one pod (named, with the uid it has or
/// an empty one before it exists).
struct Owner<'a> {
    api_version: &'static str,
    kind: &'static str,
    name: &'a str,
    uid: &'a str,
}

fn set_owner(set: &StatefulSet) -> Owner<'_> {
    Owner {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: set.metadata.name.as_deref().unwrap_or(""),
        uid: set.metadata.uid.as_deref().unwrap_or(""),
    }
}

fn pod_owner(p: &Pod) -> Owner<'_> {
    Owner {
        api_version: "v1",
        kind: "Pod",
        name: p.metadata.name.as_deref().unwrap_or(""),
        uid: p.metadata.uid.as_deref().unwrap_or(""),
    }
}

fn refs(c: &PersistentVolumeClaim) -> &[OwnerReference] {
    c.metadata.owner_references.as_deref().unwrap_or(&[])
}

fn names(r: &OwnerReference, o: &Owner) -> bool {
    r.api_version == o.api_version && r.kind == o.kind && r.name == o.name
}

fn has_ref(c: &PersistentVolumeClaim, o: &Owner) -> bool {
    !o.uid.is_empty() && refs(c).iter().any(|r| r.uid == o.uid)
}

/// A reference naming the owner with another uid (an earlier object of
/// the same name).
fn has_stale_ref(c: &PersistentVolumeClaim, o: &Owner) -> bool {
    refs(c)
        .iter()
        .find(|r| names(r, o))
        .is_some_and(|r| r.uid != o.uid)
}

/// Another controller of the claim (or one of ours with the wrong uid),
/// under a policy that deletes anything.
fn has_unexpected_controller(
    c: &PersistentVolumeClaim,
    set: &Owner,
    pod: &Owner,
    policy: (&str, &str),
) -> bool {
    if policy == (RETAIN, RETAIN) {
        return false;
    }
    refs(c).iter().any(|r| {
        if names(r, set) {
            return r.uid != set.uid;
        }
        if names(r, pod) {
            return r.uid != pod.uid;
        }
        r.controller == Some(true)
    })
}

fn has_non_controller_owner(c: &PersistentVolumeClaim, set: &Owner, pod: &Owner) -> bool {
    refs(c).iter().any(|r| {
        (r.uid == set.uid || (!pod.uid.is_empty() && r.uid == pod.uid))
            && r.controller != Some(true)
    })
}

/// Whether the claim's references already say what the policy wants for
/// `pod` (Kubernetes' isClaimOwnerUpToDate).
pub(crate) fn up_to_date(c: &PersistentVolumeClaim, set: &StatefulSet, p: &Pod) -> bool {
    let (so, po) = (set_owner(set), pod_owner(p));
    if has_stale_ref(c, &so) || has_stale_ref(c, &po) {
        return true;
    }
    let pol = policy(set);
    if has_unexpected_controller(c, &so, &po, pol) {
        return !(has_ref(c, &so) || has_ref(c, &po));
    }
    if has_non_controller_owner(c, &so, &po) {
        return false;
    }
    let scaled_down = !identity::in_range(identity::ordinal(p), set);
    let (set_ref, pod_ref) = (has_ref(c, &so), has_ref(c, &po));
    match pol {
        (DELETE, RETAIN) => set_ref && !pod_ref,
        (RETAIN, DELETE) => !set_ref && scaled_down == pod_ref,
        (DELETE, DELETE) => scaled_down != set_ref && scaled_down == pod_ref,
        _ => !set_ref && !pod_ref,
    }
}

fn controller_ref(o: &Owner) -> OwnerReference {
    OwnerReference {
        api_version: o.api_version.into(),
        kind: o.kind.into(),
        name: o.name.into(),
        uid: o.uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The claim's owner references as the policy wants them for `pod`
/// (Kubernetes' updateClaimOwnerRefForSetAndPod).
pub(crate) fn wanted_refs(
    c: &PersistentVolumeClaim,
    set: &StatefulSet,
    p: &Pod,
) -> Vec<OwnerReference> {
    let (so, po) = (set_owner(set), pod_owner(p));
    let pol = policy(set);
    let unexpected = has_unexpected_controller(c, &so, &po, pol);
    let mut out: Vec<OwnerReference> = refs(c)
        .iter()
        .filter(|r| !names(r, &so) && !names(r, &po))
        .cloned()
        .collect();
    if unexpected {
        return out;
    }
    let scaled_down = !identity::in_range(identity::ordinal(p), set);
    let add_set = matches!(pol, (DELETE, RETAIN)) || (pol == (DELETE, DELETE) && !scaled_down);
    let add_pod = pol.1 == DELETE && scaled_down && !po.uid.is_empty();
    if add_set {
        out.push(controller_ref(&so));
    }
    if add_pod {
        out.push(controller_ref(&po));
    }
    out
}

/// Whether an existing claim of a pod about to be made still belongs to an
/// earlier pod of that name (whenScaled Delete: the collector is about to
/// delete it, so the new pod must wait).
pub(crate) fn claim_is_stale(c: &PersistentVolumeClaim, set: &StatefulSet, p: &Pod) -> bool {
    policy(set).1 == DELETE && has_stale_ref(c, &pod_owner(p))
}

/// Whether another controller (or an earlier set or pod of the same name)
/// controls the claim, so the retention policy leaves it alone (Kubernetes
/// warns with `ConflictingController`).
pub(crate) fn conflicting_controller(
    c: &PersistentVolumeClaim,
    set: &StatefulSet,
    p: &Pod,
) -> bool {
    has_unexpected_controller(c, &set_owner(set), &pod_owner(p), policy(set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(when_deleted: &str, when_scaled: &str, replicas: i32) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {"replicas": replicas, "serviceName": "web",
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}},
                     "persistentVolumeClaimRetentionPolicy":
                        {"whenDeleted": when_deleted, "whenScaled": when_scaled}}
        }))
        .expect("set")
    }

    fn pod(ord: i32) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": format!("web-{ord}"), "uid": format!("pod-{ord}")}}),
        )
        .expect("pod")
    }

    fn claim(refs: Vec<OwnerReference>) -> PersistentVolumeClaim {
        let mut c = PersistentVolumeClaim::default();
        c.metadata.owner_references = Some(refs);
        c
    }

    fn uids(refs: &[OwnerReference]) -> Vec<&str> {
        refs.iter().map(|r| r.uid.as_str()).collect()
    }

    #[test]
    fn retain_retain_wants_no_refs() {
        let s = set("Retain", "Retain", 3);
        let c = claim(vec![]);
        assert!(up_to_date(&c, &s, &pod(1)));
        assert!(wanted_refs(&c, &s, &pod(1)).is_empty());
    }

    #[test]
    fn when_deleted_delete_refs_the_set() {
        let s = set("Delete", "Retain", 3);
        let c = claim(vec![]);
        assert!(!up_to_date(&c, &s, &pod(1)));
        let refs = wanted_refs(&c, &s, &pod(1));
        assert_eq!(uids(&refs), ["set-uid"]);
        assert_eq!(refs[0].controller, Some(true));
        assert!(up_to_date(&claim(refs), &s, &pod(1)));
    }

    #[test]
    fn when_scaled_delete_refs_the_pod_once_scaled_away() {
        let s = set("Retain", "Delete", 2);
        let c = claim(vec![]);
        // In range: nothing.
        assert!(up_to_date(&c, &s, &pod(1)));
        // Scaled away (ordinal 2 of 2 replicas): the pod.
        assert!(!up_to_date(&c, &s, &pod(2)));
        let refs = wanted_refs(&c, &s, &pod(2));
        assert_eq!(uids(&refs), ["pod-2"]);
    }

    #[test]
    fn delete_delete_moves_the_ref_from_set_to_pod() {
        let s = set("Delete", "Delete", 2);
        let c = claim(vec![]);
        let refs = wanted_refs(&c, &s, &pod(1));
        assert_eq!(uids(&refs), ["set-uid"]);
        let c = claim(refs);
        assert!(up_to_date(&c, &s, &pod(1)));
        assert!(!up_to_date(&c, &s, &pod(2)));
        assert_eq!(uids(&wanted_refs(&c, &s, &pod(2))), ["pod-2"]);
    }

    #[test]
    fn stale_and_foreign_refs_are_left_alone() {
        let s = set("Retain", "Delete", 2);
        let mut old = controller_ref(&pod_owner(&pod(2)));
        old.uid = "older-pod".into();
        let c = claim(vec![old]);
        assert!(up_to_date(&c, &s, &pod(2)));
        // A pod not yet created sees the claim as stale.
        let mut fresh = pod(2);
        fresh.metadata.uid = None;
        assert!(claim_is_stale(&c, &s, &fresh));
        let other = OwnerReference {
            api_version: "example.com/v1".into(),
            kind: "Thing".into(),
            name: "t".into(),
            uid: "t".into(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let c = claim(vec![other]);
        assert!(conflicting_controller(&c, &s, &pod(2)));
        assert!(up_to_date(&c, &s, &pod(2)));
    }
}
