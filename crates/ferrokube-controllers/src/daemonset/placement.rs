//! Where a DaemonSet's pods belong, as Kubernetes'
//! `NodeShouldRunDaemonPod` decides: the template's `nodeName`, node
//! selector and required node affinity, and the node's taints against the
//! template's tolerations plus those Kubernetes adds to every daemon pod.
//! Also the `matchFields metadata.name` affinity term that pins a new pod
//! to its node for the scheduler, and reading that node back.

use std::collections::BTreeMap;

use ferrokube_scheduler::NodeSelectorTerms;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

use crate::nodelifecycle::tolerates;

/// The tolerations every daemon pod gets (Kubernetes'
/// `AddOrUpdateDaemonPodTolerations`): it survives a node going not-ready
/// or unreachable, and is placed despite pressure and cordoning (and a
/// missing network, for host-network pods).
pub(crate) fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut add = |key: &str, effect: &str| {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        let list = spec.tolerations.get_or_insert_with(Vec::new);
        // One with the same key, operator, value and effect is replaced
        // (so a time limit on it goes away).
        let same = |x: &Toleration| {
            x.key == t.key
                && x.operator.as_deref().unwrap_or("Equal") == "Exists"
                && x.value.as_deref().unwrap_or("").is_empty()
                && x.effect == t.effect
        };
        match list.iter().position(same) {
            Some(i) => list[i] = t,
            None => list.push(t),
        }
    };
    add("node.kubernetes.io/not-ready", "NoExecute");
    add("node.kubernetes.io/unreachable", "NoExecute");
    add("node.kubernetes.io/disk-pressure", "NoSchedule");
    add("node.kubernetes.io/memory-pressure", "NoSchedule");
    add("node.kubernetes.io/pid-pressure", "NoSchedule");
    add("node.kubernetes.io/unschedulable", "NoSchedule");
    if spec.host_network == Some(true) {
        add("node.kubernetes.io/network-unavailable", "NoSchedule");
    }
}

/// A DaemonSet's placement rules, read once per reconcile and asked for
/// every node.
pub(crate) struct Placement {
    node_name: Option<String>,
    node_selector: BTreeMap<String, String>,
    required: Option<NodeSelectorTerms>,
    tolerations: Vec<Toleration>,
}

impl Placement {
    pub(crate) fn of(ds: &DaemonSet) -> Placement {
        let mut spec = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .unwrap_or_default();
        add_daemon_tolerations(&mut spec);
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(NodeSelectorTerms::from_selector);
        Placement {
            node_name: spec.node_name.filter(|n| !n.is_empty()),
            node_selector: spec.node_selector.unwrap_or_default(),
            required,
            tolerations: spec.tolerations.unwrap_or_default(),
        }
    }

    fn untolerated(&self, taints: &[Taint], effects: &[&str]) -> bool {
        taints.iter().any(|taint| {
            effects.contains(&taint.effect.as_str())
                && !self.tolerations.iter().any(|t| tolerates(t, taint))
        })
    }

    /// `(should_run, should_continue_running)` on `node`: whether a pod
    /// should be made there, and whether one already there may stay (a
    /// NoSchedule taint added later keeps it; an untolerated NoExecute one
    /// does not).
    pub(crate) fn decide(&self, node: &Node) -> (bool, bool) {
        let name = node.metadata.name.as_deref().unwrap_or("");
        if self.node_name.as_deref().is_some_and(|n| n != name) {
            return (false, false);
        }
        let empty = BTreeMap::new();
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        let selected = self
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        if !selected
            || self
                .required
                .as_ref()
                .is_some_and(|r| !r.matches(name, labels))
        {
            return (false, false);
        }
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[]);
        if self.untolerated(taints, &["NoSchedule", "NoExecute"]) {
            return (false, !self.untolerated(taints, &["NoExecute"]));
        }
        (true, true)
    }
}

/// The affinity of a new daemon pod: the required node affinity replaced
/// by one term, `metadata.name In [node]`, so the scheduler places it there
/// (Kubernetes' `ReplaceDaemonSetPodNodeNameNodeAffinity`; preferred terms
/// and pod (anti-)affinity are kept).
pub(crate) fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// The node a daemon pod is for: its `nodeName`, or, before it is
/// scheduled, the node its `metadata.name` affinity term names (Kubernetes'
/// `GetTargetNodeName`).
pub(crate) fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            let values = r.values.as_deref().unwrap_or(&[]);
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "ns"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}
            }
        }))
        .unwrap_or_default()
    }

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .unwrap_or_default()
    }

    fn containers() -> serde_json::Value {
        json!([{"name": "c", "image": "i"}])
    }

    #[test]
    fn default_tolerations_are_added_once_and_replace_limited_ones() {
        let mut spec: PodSpec = serde_json::from_value(json!({
            "containers": containers(),
            "hostNetwork": true,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 30}]
        }))
        .unwrap_or_default();
        add_daemon_tolerations(&mut spec);
        add_daemon_tolerations(&mut spec);
        let t = spec.tolerations.unwrap_or_default();
        assert_eq!(t.len(), 7);
        assert!(t.iter().all(|t| t.toleration_seconds.is_none()));
        assert!(t.iter().any(|t| t.key.as_deref()
            == Some("node.kubernetes.io/network-unavailable")
            && t.effect.as_deref() == Some("NoSchedule")));
        let mut plain = PodSpec::default();
        add_daemon_tolerations(&mut plain);
        assert_eq!(plain.tolerations.map(|t| t.len()), Some(6));
    }

    #[test]
    fn selectors_affinity_and_node_name_decide() {
        let p = Placement::of(&ds(json!({
            "containers": containers(),
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}
        })));
        let yes = node("n1", json!({"disk": "ssd", "zone": "a"}), json!([]));
        let wrong_zone = node("n2", json!({"disk": "ssd", "zone": "c"}), json!([]));
        let no_disk = node("n3", json!({"zone": "a"}), json!([]));
        assert_eq!(p.decide(&yes), (true, true));
        assert_eq!(p.decide(&wrong_zone), (false, false));
        assert_eq!(p.decide(&no_disk), (false, false));
        let named = Placement::of(&ds(json!({"containers": containers(), "nodeName": "n9"})));
        assert_eq!(named.decide(&yes), (false, false));
    }

    #[test]
    fn taints_noschedule_keeps_running_noexecute_does_not() {
        let p = Placement::of(&ds(json!({"containers": containers()})));
        let t = |e: &str| {
            node(
                "n",
                json!({}),
                json!([{"key": "k", "value": "v", "effect": e}]),
            )
        };
        assert_eq!(p.decide(&t("NoSchedule")), (false, true));
        assert_eq!(p.decide(&t("NoExecute")), (false, false));
        assert_eq!(p.decide(&t("PreferNoSchedule")), (true, true));
        // The taints Kubernetes puts on troubled nodes are tolerated.
        for (k, e) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ] {
            let n = node("n", json!({}), json!([{"key": k, "effect": e}]));
            assert_eq!(p.decide(&n), (true, true), "{k}");
        }
        let net = node(
            "n",
            json!({}),
            json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
        );
        assert_eq!(p.decide(&net), (false, true));
        let host = Placement::of(&ds(
            json!({"containers": containers(), "hostNetwork": true}),
        ));
        assert_eq!(host.decide(&net), (true, true));
        let tolerant = Placement::of(&ds(json!({"containers": containers(),
            "tolerations": [{"key": "k", "operator": "Exists"}]})));
        assert_eq!(tolerant.decide(&t("NoExecute")), (true, true));
    }

    #[test]
    fn pinning_replaces_required_terms_and_reads_back() {
        let a: Affinity = serde_json::from_value(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [
                    {"key": "x", "operator": "Exists"}]}}]}}))
        .unwrap_or_default();
        let pinned = pin_to_node(Some(a), "n7");
        let v = serde_json::to_value(&pinned).unwrap_or_default();
        assert_eq!(
            v["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]})
        );
        assert!(v["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
        let mut pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pinned),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        if let Some(s) = pod.spec.as_mut() {
            s.node_name = Some("other".into());
        }
        assert_eq!(target_node(&pod).as_deref(), Some("other"));
        assert_eq!(target_node(&Pod::default()), None);
    }
}
