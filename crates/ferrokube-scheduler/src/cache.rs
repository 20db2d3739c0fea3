//! The scheduler's snapshot of the cluster: every node with the pods placed
//! on it (bound ones from the watch and assumed ones the scheduler just
//! bound), with per-node aggregates (requested resources, host ports, image
//! sizes) kept up to date incrementally as pods come and go.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::podinfo::{normalize_image, HostPort, PodInfo};
use crate::resources::Resources;
use crate::selectors::Labels;

/// One node and what is placed on it.
#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// None while pods name a node the watch has not shown (or that was deleted).
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Normalized image name → size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub used_ports: Vec<HostPort>,
    /// Pods here with required anti-affinity terms.
    pub pods_with_required_anti_affinity: usize,
    /// Pods here with any inter-pod affinity or anti-affinity term.
    pub pods_with_affinity: usize,
}

impl NodeInfo {
    fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// A node as the scheduler sees it (used by tests and the benchmark too).
    pub fn from_node(node: Arc<Node>) -> NodeInfo {
        let mut n = NodeInfo::new(node.metadata.name.as_deref().unwrap_or_default());
        n.set_node(node);
        n
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let spec = node.spec.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.taints = spec.taints.unwrap_or_default();
        self.unschedulable = spec.unschedulable.unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = Resources::from_list(status.and_then(|s| s.allocatable.as_ref()));
        self.images.clear();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                self.images
                    .insert(normalize_image(name), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_cpu += p.non_zero_cpu;
        self.non_zero_memory += p.non_zero_memory;
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity += 1;
        }
        if p.has_affinity_terms() {
            self.pods_with_affinity += 1;
        }
        self.pods.push(p);
    }

    /// Takes a pod off this node (aggregates updated).
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_cpu -= p.non_zero_cpu;
        self.non_zero_memory -= p.non_zero_memory;
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if p.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity -= 1;
        }
        if p.has_affinity_terms() {
            self.pods_with_affinity -= 1;
        }
        Some(p)
    }
}

#[derive(Debug)]
struct PodEntry {
    node: String,
    assumed: bool,
    uid: String,
}

/// Nodes, pods placed on them, namespaces' labels.
#[derive(Debug, Default)]
pub struct Cache {
    /// Node slots, in the order the scheduler walks them. A slot whose
    /// `node` is None holds pods of a node not (or no longer) known.
    slots: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    existing: usize,
    pods: HashMap<String, PodEntry>,
    /// Image → how many nodes have it.
    image_nodes: HashMap<String, usize>,
    /// Placed pods with required anti-affinity terms / any inter-pod term.
    pods_with_required_anti_affinity: usize,
    pods_with_affinity: usize,
    /// Namespace name → its labels (for namespaceSelector).
    pub(crate) namespaces: HashMap<String, Labels>,
}

impl Cache {
    /// An empty snapshot.
    pub fn new() -> Cache {
        Cache::default()
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        self.slots.push(NodeInfo::new(name));
        let i = self.slots.len() - 1;
        self.index.insert(name.to_string(), i);
        i
    }

    /// Drops a slot with neither node nor pods.
    fn maybe_drop(&mut self, i: usize) {
        if self.slots[i].node.is_some() || !self.slots[i].pods.is_empty() {
            return;
        }
        let gone = self.slots.swap_remove(i);
        self.index.remove(&gone.name);
        if i < self.slots.len() {
            let moved = self.slots[i].name.clone();
            self.index.insert(moved, i);
        }
    }

    /// Adds or replaces a node. Returns true when it was new.
    pub fn set_node(&mut self, node: Arc<Node>) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let i = self.slot(&name);
        let info = &mut self.slots[i];
        let new = info.node.is_none();
        for img in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(img) {
                *c = c.saturating_sub(1);
            }
        }
        info.set_node(node);
        for img in info.images.keys() {
            *self.image_nodes.entry(img.clone()).or_insert(0) += 1;
        }
        if new {
            self.existing += 1;
        }
        new
    }

    pub(crate) fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let info = &mut self.slots[i];
        if info.node.is_none() {
            return;
        }
        for img in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(img) {
                *c = c.saturating_sub(1);
            }
        }
        info.images.clear();
        info.node = None;
        self.existing -= 1;
        self.maybe_drop(i);
    }

    fn place(&mut self, p: Arc<PodInfo>, node: &str, assumed: bool) {
        self.remove_pod(&p.key);
        self.pods.insert(
            p.key.clone(),
            PodEntry {
                node: node.to_string(),
                assumed,
                uid: p.uid.clone(),
            },
        );
        if p.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity += 1;
        }
        if p.has_affinity_terms() {
            self.pods_with_affinity += 1;
        }
        let i = self.slot(node);
        self.slots[i].add_pod(p);
    }

    /// A bound pod from the watch (confirms an assumed one).
    pub(crate) fn add_pod(&mut self, p: Arc<PodInfo>) {
        let node = p.node_name.clone();
        self.place(p, &node, false);
    }

    /// Places a pod the scheduler is binding, before the watch shows it bound.
    pub fn assume(&mut self, p: Arc<PodInfo>, node: &str) {
        self.place(p, node, true);
    }

    /// Drops an assumed pod whose binding failed (a confirmed one stays).
    pub(crate) fn forget(&mut self, key: &str, uid: &str) {
        if self
            .pods
            .get(key)
            .is_some_and(|e| e.assumed && e.uid == uid)
        {
            self.remove_pod(key);
        }
    }

    pub(crate) fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|e| e.assumed)
    }

    pub(crate) fn remove_pod(&mut self, key: &str) {
        let Some(e) = self.pods.remove(key) else {
            return;
        };
        let Some(&i) = self.index.get(&e.node) else {
            return;
        };
        if let Some(p) = self.slots[i].remove_pod(key) {
            if p.has_required_anti_affinity() {
                self.pods_with_required_anti_affinity -= 1;
            }
            if p.has_affinity_terms() {
                self.pods_with_affinity -= 1;
            }
        }
        self.maybe_drop(i);
    }

    pub(crate) fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Keys of every pod placed (bound or assumed).
    pub(crate) fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Names of the nodes that exist, in walking order.
    pub(crate) fn node_names(&self) -> Vec<String> {
        self.nodes().map(|n| n.name.clone()).collect()
    }

    pub(crate) fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index
            .get(name)
            .map(|i| &self.slots[*i])
            .filter(|n| n.node.is_some())
    }

    /// How many nodes exist.
    pub(crate) fn node_count(&self) -> usize {
        self.existing
    }

    /// Number of slots (walk positions), some of which may hold no node.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The node at a walk position, if one exists there.
    pub(crate) fn node_at(&self, i: usize) -> Option<&NodeInfo> {
        self.slots.get(i).filter(|n| n.node.is_some())
    }

    /// Every existing node's info, in walking order.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.slots.iter().filter(|n| n.node.is_some())
    }

    pub(crate) fn nodes_having_image(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Placed pods with required anti-affinity terms.
    pub(crate) fn pods_with_required_anti_affinity(&self) -> usize {
        self.pods_with_required_anti_affinity
    }

    /// Placed pods with any inter-pod affinity or anti-affinity term.
    pub(crate) fn pods_with_affinity(&self) -> usize {
        self.pods_with_affinity
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};

    #[test]
    fn assumed_pods_count_until_forgotten_and_confirmation_replaces_them() {
        let mut c = Cache::new();
        c.set_node(Arc::new(node("n1", "4", "8Gi")));
        let p = Arc::new(PodInfo::new(Arc::new(pod("default", "a", "1", "1Gi"))));
        c.assume(p.clone(), "n1");
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(1000));
        assert!(c.is_assumed("default/a"));
        c.forget("default/a", &p.uid);
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(0));
        c.assume(p.clone(), "n1");
        let mut bound = pod("default", "a", "1", "1Gi");
        bound.spec.as_mut().map(|s| s.node_name = Some("n1".into()));
        c.add_pod(Arc::new(PodInfo::new(Arc::new(bound))));
        assert!(!c.is_assumed("default/a"));
        assert_eq!(c.node("n1").map(|n| n.pods.len()), Some(1));
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(1000));
        c.remove_pod("default/a");
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(0));
    }

    #[test]
    fn nodes_come_and_go() {
        let mut c = Cache::new();
        assert!(c.set_node(Arc::new(node("n1", "4", "8Gi"))));
        assert!(!c.set_node(Arc::new(node("n1", "8", "8Gi"))));
        assert_eq!(c.node("n1").map(|n| n.allocatable.milli_cpu), Some(8000));
        c.remove_node("n1");
        assert!(c.node("n1").is_none());
        assert_eq!(c.node_count(), 0);
    }
}
