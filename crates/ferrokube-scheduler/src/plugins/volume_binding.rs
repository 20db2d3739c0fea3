//! VolumeBinding (with the node-affinity part of VolumeRestrictions): a pod
//! goes only where its PersistentVolumeClaims can be.
//!
//! PreFilter refuses, on every node at once, a pod whose claim is missing
//! or being deleted, or whose claim is unbound though its class binds at
//! once (Immediate): that is the PV controller's work, not a node's. Per
//! node, a bound claim's volume must admit the node (its `nodeAffinity`);
//! a claim waiting for its first consumer (WaitForFirstConsumer) needs an
//! Available volume that fits it on the node, or a class that provisions.
//! After the pod is placed the binder reserves what was chosen (a static
//! volume's `claimRef`, or the claim's `volume.kubernetes.io/selected-node`
//! for its provisioner) and binds the pod only once every claim is bound
//! (see the scheduler's bind step).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ferrokube_client::volumes as index;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

pub(crate) const REASON_BIND_CONFLICT: &str =
    "node(s) didn't find available persistent volumes to bind";
pub(crate) const REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub(crate) const REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// Why VolumeBinding's PreFilter keeps a pod off every node, in
/// Kubernetes' words (they end the pod's FailedScheduling message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PreFilterError {
    /// A claim the pod names does not exist.
    #[error("persistentvolumeclaim {0:?} not found")]
    ClaimNotFound(String),
    /// A claim the pod names is being deleted.
    #[error("persistentvolumeclaim {0:?} is being deleted")]
    ClaimDeleting(String),
    /// A claim whose class binds at once (not WaitForFirstConsumer) is not
    /// bound yet.
    #[error("pod has unbound immediate PersistentVolumeClaims")]
    UnboundImmediate,
}

/// The claims, volumes and classes the scheduler has seen.
#[derive(Debug, Default)]
pub(crate) struct VolumeState {
    pub claims: HashMap<(String, String), Arc<PersistentVolumeClaim>>,
    pub volumes: HashMap<String, Arc<PersistentVolume>>,
    pub classes: HashMap<String, Arc<StorageClass>>,
}

/// A claim that waits for this pod's node.
#[derive(Debug, Clone)]
pub struct Delayed {
    pub claim: Arc<PersistentVolumeClaim>,
    /// Whether the class provisions volumes.
    pub can_provision: bool,
}

/// What a pod's claims ask of a node.
#[derive(Debug, Default, Clone)]
pub struct PodVolumes {
    pub bound: Vec<Arc<PersistentVolume>>,
    pub missing_volume: bool,
    pub delayed: Vec<Delayed>,
    /// The Available volumes of the delayed claims' classes.
    pub candidates: Vec<Arc<PersistentVolume>>,
}

/// What the binder does for a delayed claim on the chosen node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Give it this static volume.
    Volume {
        claim: (String, String),
        volume: String,
    },
    /// Ask its provisioner for a volume on the node.
    Provision { claim: (String, String) },
}

/// The claim names of the pod's volumes (a generic ephemeral volume's claim
/// is `<pod>-<volume>`).
pub(crate) fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

impl VolumeState {
    fn class_of(&self, claim: &PersistentVolumeClaim) -> Option<&Arc<StorageClass>> {
        let name = index::claim_class(claim);
        (!name.is_empty())
            .then(|| self.classes.get(&name))
            .flatten()
    }

    /// PreFilter: what the pod's claims ask of every node, or why no node
    /// will do. `Ok(None)`: the pod has no claims.
    pub(crate) fn pre_filter(&self, pod: &Pod) -> Result<Option<PodVolumes>, PreFilterError> {
        let names = claim_names(pod);
        if names.is_empty() {
            return Ok(None);
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut out = PodVolumes::default();
        let mut unbound_immediate = false;
        for name in names {
            let Some(claim) = self.claims.get(&(ns.clone(), name.clone())) else {
                return Err(PreFilterError::ClaimNotFound(name));
            };
            if claim.metadata.deletion_timestamp.is_some() {
                return Err(PreFilterError::ClaimDeleting(name));
            }
            let volume_name = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or("");
            if !volume_name.is_empty() {
                match self.volumes.get(volume_name) {
                    Some(v) => out.bound.push(v.clone()),
                    None => out.missing_volume = true,
                }
                continue;
            }
            let class = self.class_of(claim);
            let delay = class
                .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
            if !delay {
                unbound_immediate = true;
                continue;
            }
            let can_provision =
                class.is_some_and(|c| c.provisioner != "kubernetes.io/no-provisioner");
            out.delayed.push(Delayed {
                claim: claim.clone(),
                can_provision,
            });
        }
        if unbound_immediate {
            return Err(PreFilterError::UnboundImmediate);
        }
        if !out.delayed.is_empty() {
            out.candidates = self.volumes.values().cloned().collect();
        }
        Ok(Some(out))
    }
}

impl PodVolumes {
    /// Filter: why the node will not do, if it will not.
    pub fn filter(&self, labels: &BTreeMap<String, String>) -> Option<&'static str> {
        if self.missing_volume {
            return Some(REASON_PV_NOT_EXIST);
        }
        if self
            .bound
            .iter()
            .any(|v| !index::node_affinity_fits(v, labels))
        {
            return Some(REASON_NODE_CONFLICT);
        }
        self.reserve(labels).err()
    }

    /// What to reserve for the delayed claims on a node with `labels`
    /// (static volumes first, each once; else provisioning).
    pub fn reserve(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<Reservation>, &'static str> {
        let mut taken: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for d in &self.delayed {
            let key = (
                d.claim.metadata.namespace.clone().unwrap_or_default(),
                d.claim.metadata.name.clone().unwrap_or_default(),
            );
            let found = index::find_best(
                &d.claim,
                self.candidates.iter().map(|v| &**v),
                Some(labels),
                true,
                &|n| taken.contains(n),
            );
            match found {
                Some(v) => {
                    let name = v.metadata.name.clone().unwrap_or_default();
                    taken.insert(name.clone());
                    // A volume already pointing at the claim needs nothing.
                    if !index::is_bound_to(v, &d.claim) {
                        out.push(Reservation::Volume {
                            claim: key,
                            volume: name,
                        });
                    }
                }
                None if d.can_provision => out.push(Reservation::Provision { claim: key }),
                None => return Err(REASON_BIND_CONFLICT),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> VolumeState {
        let mut s = VolumeState::default();
        for (name, mode, prov) in [
            (
                "local-path",
                "WaitForFirstConsumer",
                "ferrokube.io/local-path",
            ),
            (
                "static",
                "WaitForFirstConsumer",
                "kubernetes.io/no-provisioner",
            ),
            ("now", "Immediate", "example.com/x"),
        ] {
            s.classes.insert(
                name.into(),
                Arc::new(
                    serde_json::from_value(json!({"metadata": {"name": name},
                    "provisioner": prov, "volumeBindingMode": mode}))
                    .unwrap(),
                ),
            );
        }
        s
    }

    fn claim(s: &mut VolumeState, name: &str, class: &str, volume: Option<&str>) {
        s.claims.insert(
            ("ns".into(), name.into()),
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                    "resources": {"requests": {"storage": "1Gi"}}, "volumeName": volume}}))
                .unwrap(),
            ),
        );
    }

    fn on_node(name: &str, node: &str, class: &str) -> Arc<PersistentVolume> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "local": {"path": "/mnt"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "status": {"phase": "Available"}})).unwrap())
    }

    fn pod(claims: &[&str]) -> Pod {
        let volumes: Vec<_> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [], "volumes": volumes}}))
        .unwrap()
    }

    fn labels(node: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("kubernetes.io/hostname".into(), node.into())])
    }

    #[test]
    fn prefilter_refuses_missing_and_unbound_immediate_claims() {
        let mut s = state();
        assert!(s.pre_filter(&pod(&[])).unwrap().is_none());
        assert_eq!(
            s.pre_filter(&pod(&["gone"])).unwrap_err().to_string(),
            "persistentvolumeclaim \"gone\" not found"
        );
        claim(&mut s, "soon", "now", None);
        assert_eq!(
            s.pre_filter(&pod(&["soon"])).unwrap_err().to_string(),
            "pod has unbound immediate PersistentVolumeClaims"
        );
    }

    #[test]
    fn volumes_go_where_their_nodes_are() {
        let mut s = state();
        s.volumes
            .insert("pv-n1".into(), on_node("pv-n1", "n1", "static"));
        claim(&mut s, "bound", "static", Some("pv-n1"));
        let v = s.pre_filter(&pod(&["bound"])).unwrap().unwrap();
        assert_eq!(v.filter(&labels("n1")), None);
        assert_eq!(v.filter(&labels("n2")), Some(REASON_NODE_CONFLICT));

        // Waiting for a consumer: a static volume on its node, or nothing.
        let mut s = state();
        s.volumes
            .insert("pv-n2".into(), on_node("pv-n2", "n2", "static"));
        claim(&mut s, "wait", "static", None);
        let v = s.pre_filter(&pod(&["wait"])).unwrap().unwrap();
        assert_eq!(v.filter(&labels("n1")), Some(REASON_BIND_CONFLICT));
        assert_eq!(
            v.reserve(&labels("n2")).unwrap(),
            [Reservation::Volume {
                claim: ("ns".into(), "wait".into()),
                volume: "pv-n2".into()
            }]
        );
        // A provisioning class fits anywhere.
        claim(&mut s, "dyn", "local-path", None);
        let v = s.pre_filter(&pod(&["dyn"])).unwrap().unwrap();
        assert_eq!(
            v.reserve(&labels("n1")).unwrap(),
            [Reservation::Provision {
                claim: ("ns".into(), "dyn".into())
            }]
        );
    }
}
