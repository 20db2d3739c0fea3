//! The RollingUpdate plan of a DaemonSet, as Kubernetes' `rollingUpdate`
//! makes it: without surge, old pods are deleted (and the next pass
//! recreates them) while no more than `maxUnavailable` nodes lack an
//! available pod; with surge, a new pod is made beside an available old
//! one on at most `maxSurge` nodes at a time, and the old one is deleted
//! once the new one is available. Old pods that are not available are
//! replaced at once either way.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::deployment::util::scaled_value;
use crate::history::REVISION_LABEL;
use crate::podutil;

/// Whether the DaemonSet updates by RollingUpdate (the default).
pub(crate) fn is_rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// `(max_surge, max_unavailable)` out of `desired` nodes (Kubernetes'
/// `SurgeCount`, `UnavailableCount`, both percentages rounded up; both
/// zero means one unavailable).
pub(crate) fn limits(ds: &DaemonSet, desired: i32) -> anyhow::Result<(i32, i32)> {
    if !is_rolling(ds) {
        return Ok((0, 0));
    }
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let surge = match ru.and_then(|r| r.max_surge.as_ref()) {
        Some(v) => scaled_value(v, desired, true)
            .map_err(|e| anyhow::anyhow!("invalid value for MaxSurge: {e}"))?,
        None => 0,
    };
    let unavailable = match ru.and_then(|r| r.max_unavailable.as_ref()) {
        Some(v) => scaled_value(v, desired, true)
            .map_err(|e| anyhow::anyhow!("invalid value for MaxUnavailable: {e}"))?,
        None => 0,
    };
    if desired > 0 && surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge.max(0), unavailable.max(0)))
}

/// Whether a pod was made from the revision whose hash is `hash`.
pub(crate) fn is_updated(p: &Pod, hash: &str) -> bool {
    !hash.is_empty()
        && p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .is_some_and(|h| h == hash)
}

/// The one new and one old live pod on a node; `None` if there are more
/// than one of either (the manage pass prunes those first).
fn new_and_old<'a>(pods: &'a [Arc<Pod>], hash: &str) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_updated(p, hash) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.as_ref());
    }
    Some((new, old))
}

/// What a rolling update step does.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Names of old pods to delete.
    pub delete: Vec<String>,
    /// Nodes to make a new pod on (surge).
    pub create: Vec<String>,
}

/// The next step of a rolling update. `by_node` holds the pods of every
/// node that has some plus an empty entry for every node that should run
/// one; `should_run` says whether a node should run a pod at all.
pub(crate) struct Step<'a> {
    pub by_node: &'a BTreeMap<String, Vec<Arc<Pod>>>,
    pub hash: &'a str,
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub desired: i32,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

impl Step<'_> {
    fn available(&self, p: &Pod) -> bool {
        podutil::is_available(p, self.min_ready_seconds, self.now)
    }

    pub(crate) fn plan(&self, should_run: impl Fn(&str) -> bool) -> Plan {
        if self.max_surge == 0 {
            self.plan_without_surge()
        } else {
            self.plan_with_surge(should_run)
        }
    }

    fn plan_without_surge(&self) -> Plan {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for pods in self.by_node.values() {
            let Some((new, old)) = new_and_old(pods, self.hash) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(n), None) => {
                    if !self.available(n) {
                        unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !self.available(o) {
                        replace.push(name(o));
                        unavailable += 1;
                    } else if unavailable < self.max_unavailable {
                        candidates.push(name(o));
                    }
                }
            }
        }
        let room = (self.max_unavailable - unavailable).max(0) as usize;
        candidates.truncate(room);
        replace.extend(candidates);
        Plan {
            delete: replace,
            create: Vec::new(),
        }
    }

    fn plan_with_surge(&self, should_run: impl Fn(&str) -> bool) -> Plan {
        let mut plan = Plan::default();
        let mut not_wanted = Vec::new();
        let mut candidates = Vec::new();
        let mut surge = 0;
        let mut available = 0;
        for (node, pods) in self.by_node {
            let Some((new, old)) = new_and_old(pods, self.hash) else {
                surge += 1;
                continue;
            };
            if let Some(p) = old.or(new) {
                if self.available(p) {
                    available += 1;
                }
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(o)) => {
                    if !self.available(o) {
                        if should_run(node) {
                            plan.create.push(node.clone());
                        } else {
                            plan.delete.push(name(o));
                        }
                    } else if !should_run(node) {
                        not_wanted.push(name(o));
                    } else if surge < self.max_surge {
                        candidates.push(node.clone());
                    }
                }
                (Some(n), Some(o)) => {
                    if self.available(n) {
                        plan.delete.push(name(o));
                    } else {
                        surge += 1;
                    }
                }
            }
        }
        // Pods on nodes that should no longer run one go only while as many
        // pods as wanted stay available elsewhere.
        let deletable = (available - self.desired).max(0) as usize;
        plan.delete.extend(not_wanted.into_iter().take(deletable));
        let room = (self.max_surge - surge).max(0) as usize;
        plan.create.extend(candidates.into_iter().take(room));
        plan
    }
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {REVISION_LABEL: hash}},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready {"True"} else {"False"},
                     "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
            }))
            .unwrap_or_default(),
        )
    }

    fn nodes(v: Vec<(&str, Vec<Arc<Pod>>)>) -> BTreeMap<String, Vec<Arc<Pod>>> {
        v.into_iter().map(|(n, p)| (n.to_string(), p)).collect()
    }

    fn step(by_node: &BTreeMap<String, Vec<Arc<Pod>>>, surge: i32, unavailable: i32) -> Step<'_> {
        Step {
            by_node,
            hash: "new",
            max_surge: surge,
            max_unavailable: unavailable,
            desired: by_node.len() as i32,
            min_ready_seconds: 0,
            now: Timestamp::now(),
        }
    }

    #[test]
    fn without_surge_deletes_up_to_max_unavailable() {
        let m = nodes(vec![
            ("a", vec![pod("a1", "old", true)]),
            ("b", vec![pod("b1", "old", true)]),
            ("c", vec![pod("c1", "old", true)]),
        ]);
        assert_eq!(step(&m, 0, 1).plan(|_| true).delete, ["a1"]);
        assert_eq!(step(&m, 0, 2).plan(|_| true).delete, ["a1", "b1"]);
        // A node already down (no pod, being recreated) uses the budget.
        let m = nodes(vec![
            ("a", vec![]),
            ("b", vec![pod("b1", "old", true)]),
            ("c", vec![pod("c1", "new", false)]),
        ]);
        assert!(step(&m, 0, 2).plan(|_| true).delete.is_empty());
        // Unavailable old pods are replaced regardless.
        let m = nodes(vec![
            ("a", vec![pod("a1", "old", false)]),
            ("b", vec![pod("b1", "old", false)]),
            ("c", vec![pod("c1", "new", false)]),
        ]);
        assert_eq!(step(&m, 0, 1).plan(|_| true).delete, ["a1", "b1"]);
    }

    #[test]
    fn with_surge_creates_then_deletes_the_old() {
        let m = nodes(vec![
            ("a", vec![pod("a1", "old", true)]),
            ("b", vec![pod("b1", "old", true)]),
            ("c", vec![pod("c1", "old", false)]),
        ]);
        let p = step(&m, 1, 0).plan(|_| true);
        assert_eq!(p.create, ["c", "a"]);
        assert!(p.delete.is_empty());
        let m = nodes(vec![
            ("a", vec![pod("a1", "old", true), pod("a2", "new", true)]),
            ("b", vec![pod("b1", "old", true), pod("b2", "new", false)]),
            ("c", vec![pod("c1", "old", true)]),
        ]);
        let p = step(&m, 1, 0).plan(|_| true);
        assert_eq!(p.delete, ["a1"]);
        assert!(p.create.is_empty(), "b is surging and uses the one slot");
    }

    #[test]
    fn limits_round_up_and_default_to_one_unavailable() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "spec": {"selector": {}, "template": {},
                "updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}}}
        }))
        .unwrap_or_default();
        assert_eq!(limits(&ds, 15).ok(), Some((0, 2)));
        assert_eq!(limits(&ds, 0).ok(), Some((0, 0)));
        let ds: DaemonSet = serde_json::from_value(json!({
            "spec": {"selector": {}, "template": {},
                "updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}
        }))
        .unwrap_or_default();
        assert_eq!(limits(&ds, 3).ok(), Some((0, 1)));
        let ds: DaemonSet = serde_json::from_value(json!({
            "spec": {"selector": {}, "template": {}, "updateStrategy": {"type": "OnDelete"}}
        }))
        .unwrap_or_default();
        assert!(!is_rolling(&ds));
    }
}
