//! Which PersistentVolume a claim may have, as Kubernetes' volume index
//! (`index.go`) decides it, for the PV controller (which binds) and the
//! scheduler (which places pods whose claims wait for them): the volume must offer every access mode the
//! claim asks for, be of the claim's class and volume mode, match its
//! selector, hold at least the requested size and be Available and
//! unclaimed; of those the smallest wins. A volume already pointing at the
//! claim (`claimRef`, pre-bound by a user or by a provisioner) always wins.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use ferrokube_api::labels::Selector;

/// The beta annotation naming a class, read before `storageClassName`.
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The class a claim asks for (`""`: none).
pub fn claim_class(claim: &PersistentVolumeClaim) -> String {
    if let Some(c) = annotation(&claim.metadata, BETA_CLASS_ANNOTATION) {
        return c.to_string();
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The class of a volume (`""`: none).
pub fn volume_class(volume: &PersistentVolume) -> String {
    if let Some(c) = annotation(&volume.metadata, BETA_CLASS_ANNOTATION) {
        return c.to_string();
    }
    volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The storage a claim requests, in bytes × 1000 (0 if none).
pub fn requested(claim: &PersistentVolumeClaim) -> i128 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| ferrokube_api::quantity::parse_milli(&q.0))
        .unwrap_or(0)
}

/// A volume's capacity, in bytes × 1000 (0 if none).
pub fn capacity(volume: &PersistentVolume) -> i128 {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| ferrokube_api::quantity::parse_milli(&q.0))
        .unwrap_or(0)
}

fn claim_modes(claim: &PersistentVolumeClaim) -> Vec<String> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

fn volume_modes(volume: &PersistentVolume) -> Vec<String> {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

/// Whether the volume offers every access mode the claim asks for.
pub fn access_modes_fit(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let offered = volume_modes(volume);
    claim_modes(claim).iter().all(|m| offered.contains(m))
}

fn claim_volume_mode(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

fn volume_volume_mode(volume: &PersistentVolume) -> &str {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

/// Whether `volume`'s claimRef names `claim` (its uid too, when set).
pub fn is_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name.as_deref() == claim.metadata.name.as_deref()
        && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && (r.uid.as_deref().unwrap_or("").is_empty() || r.uid == claim.metadata.uid)
}

/// Why `volume` cannot be the one a claim names in `spec.volumeName`
/// (`checkVolumeSatisfyClaim`), or `None` if it can.
pub fn unsatisfied(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Option<&'static str> {
    if capacity(volume) < requested(claim) {
        return Some("requested PV is too small");
    }
    if volume_class(volume) != claim_class(claim) {
        return Some("storageClassName does not match");
    }
    if claim_volume_mode(claim) != volume_volume_mode(volume) {
        return Some("incompatible volumeMode");
    }
    if !access_modes_fit(claim, volume) {
        return Some("incompatible accessMode");
    }
    None
}

/// Whether the volume's node affinity (if any) admits a node with `labels`.
pub fn node_affinity_fits(volume: &PersistentVolume, labels: &BTreeMap<String, String>) -> bool {
    let Some(terms) = volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| &r.node_selector_terms)
    else {
        return true;
    };
    // ORed terms, each of ANDed expressions (matchFields are not used for
    // volumes).
    terms.iter().any(|t| {
        t.match_expressions.iter().flatten().all(|e| {
            let have = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or(&[]);
            match e.operator.as_str() {
                "In" => have.is_some_and(|v| values.contains(v)),
                "NotIn" => !have.is_some_and(|v| values.contains(v)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                "Gt" | "Lt" => {
                    let (Some(h), Some(v)) = (
                        have.and_then(|h| h.parse::<i64>().ok()),
                        values.first().and_then(|v| v.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if e.operator == "Gt" {
                        h > v
                    } else {
                        h < v
                    }
                }
                _ => false,
            }
        })
    })
}

/// The best volume for `claim` among `volumes` (`findMatchingVolume`).
/// `node`: the labels of the node the claim's pod goes to (the scheduler's
/// question), `None` for the PV controller's. `delay_binding`: the claim's
/// class waits for its first consumer, so without a node only a volume
/// already pointing at the claim counts. `taken`: volumes this pass has
/// already given away.
pub fn find_best<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    node: Option<&BTreeMap<String, String>>,
    delay_binding: bool,
    taken: &dyn Fn(&str) -> bool,
) -> Option<&'a PersistentVolume> {
    let class = claim_class(claim);
    let want = requested(claim);
    let selector = claim
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| Selector::from_label_selector(Some(s)).ok());
    let mut best: Option<&PersistentVolume> = None;
    for volume in volumes {
        if claim_volume_mode(claim) != volume_volume_mode(volume)
            || volume.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let affinity_ok = node.is_none_or(|labels| node_affinity_fits(volume, labels));
        if is_bound_to(volume, claim) {
            return affinity_ok.then_some(volume);
        }
        if node.is_none() && delay_binding {
            continue;
        }
        let name = volume.metadata.name.as_deref().unwrap_or_default();
        let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Available")
            || volume
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_some()
            || taken(name)
        {
            continue;
        }
        match &selector {
            // An invalid selector matches nothing.
            Some(None) => continue,
            Some(Some(s)) if !s.matches(volume.metadata.labels.as_ref()) => continue,
            _ => {}
        }
        if volume_class(volume) != class || !affinity_ok || !access_modes_fit(claim, volume) {
            continue;
        }
        let size = capacity(volume);
        if size < want {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                let (bs, bm) = (capacity(b), volume_modes(b).len());
                size < bs || (size == bs && volume_modes(volume).len() < bm)
            }
        };
        if better {
            best = Some(volume);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        name: &str,
        size: &str,
        modes: &[&str],
        class: &str,
        labels: serde_json::Value,
    ) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": size}, "accessModes": modes,
                "storageClassName": class, "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"}
        }))
        .unwrap()
    }

    fn pvc(
        size: &str,
        modes: &[&str],
        class: Option<&str>,
        selector: serde_json::Value,
    ) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}},
                "storageClassName": class, "selector": selector}
        }))
        .unwrap()
    }

    fn names(v: Option<&PersistentVolume>) -> Option<&str> {
        v.and_then(|v| v.metadata.name.as_deref())
    }

    #[test]
    fn the_smallest_fitting_volume_wins() {
        let vols = [
            pv("big", "10Gi", &["ReadWriteOnce"], "", json!({})),
            pv("small", "1Gi", &["ReadWriteOnce"], "", json!({})),
            pv(
                "fits",
                "2Gi",
                &["ReadWriteOnce", "ReadWriteMany"],
                "",
                json!({}),
            ),
            pv("fits-fewer-modes", "2Gi", &["ReadWriteOnce"], "", json!({})),
            pv("other-class", "2Gi", &["ReadWriteOnce"], "fast", json!({})),
        ];
        let claim = pvc("1500Mi", &["ReadWriteOnce"], Some(""), json!(null));
        assert_eq!(
            names(find_best(&claim, &vols, None, false, &|_| false)),
            Some("fits-fewer-modes")
        );
        let rwx = pvc("1500Mi", &["ReadWriteMany"], Some(""), json!(null));
        assert_eq!(
            names(find_best(&rwx, &vols, None, false, &|_| false)),
            Some("fits")
        );
        let fast = pvc("1Gi", &["ReadWriteOnce"], Some("fast"), json!(null));
        assert_eq!(
            names(find_best(&fast, &vols, None, false, &|_| false)),
            Some("other-class")
        );
        // Taken this pass, or waiting for a consumer: not offered.
        assert_eq!(
            names(find_best(&fast, &vols, None, false, &|n| n == "other-class")),
            None
        );
        assert_eq!(names(find_best(&fast, &vols, None, true, &|_| false)), None);
        let huge = pvc("20Gi", &["ReadWriteOnce"], Some(""), json!(null));
        assert!(find_best(&huge, &vols, None, false, &|_| false).is_none());
    }

    #[test]
    fn selectors_claim_refs_and_node_affinity() {
        let mut vols = vec![
            pv("a", "1Gi", &["ReadWriteOnce"], "", json!({"tier": "gold"})),
            pv(
                "b",
                "1Gi",
                &["ReadWriteOnce"],
                "",
                json!({"tier": "silver"}),
            ),
        ];
        let gold = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            Some(""),
            json!({"matchLabels": {"tier": "gold"}}),
        );
        assert_eq!(
            names(find_best(&gold, &vols, None, false, &|_| false)),
            Some("a")
        );
        // A volume pre-bound to the claim wins over any other, even waiting
        // for a consumer.
        vols[1].spec.as_mut().unwrap().claim_ref =
            Some(serde_json::from_value(json!({"namespace": "default", "name": "data"})).unwrap());
        assert_eq!(
            names(find_best(&gold, &vols, None, true, &|_| false)),
            Some("b")
        );
        vols[1].spec.as_mut().unwrap().node_affinity = Some(
            serde_json::from_value(json!({
            "required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}))
            .unwrap(),
        );
        let n2 = BTreeMap::from([("kubernetes.io/hostname".to_string(), "n2".to_string())]);
        assert!(find_best(&gold, &vols, Some(&n2), true, &|_| false).is_none());
        assert_eq!(
            unsatisfied(
                &vols[0],
                &pvc("2Gi", &["ReadWriteOnce"], Some(""), json!(null))
            ),
            Some("requested PV is too small")
        );
    }
}
