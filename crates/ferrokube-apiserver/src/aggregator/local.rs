//! The local APIServices: one for every group version this server serves
//! itself, as Kubernetes' autoregister controller keeps them (named
//! `<version>.<group>`, `v1.` for the core group; no service; Available
//! with reason `Local`), with Kubernetes' group and version priorities.
//! Built-in ones are labelled `automanaged: onstart` and made if missing;
//! those of CustomResourceDefinitions' groups are labelled `automanaged:
//! "true"` (priority 1000/100, as the CRD registration controller gives
//! them) and deleted when their group version is no longer served.

use std::collections::BTreeSet;

use ferrokube_api::registry::Registry;
use serde_json::{json, Value};

/// The label the autoregister controller marks its APIServices with.
pub(crate) const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// Kubernetes' group and version priorities of its built-in group
/// versions (`apiVersionPriorities`).
const PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// What the group versions this server serves outside the registry get:
/// `v1beta1.metrics.k8s.io` as metrics-server's manifest registers it.
const OWN_PRIORITY: (i64, i64) = (100, 100);

/// What CustomResourceDefinitions' group versions get.
const CRD_PRIORITY: (i64, i64) = (1000, 100);

/// The APIService of a group version served here, as it should be: its
/// name, the object, and whether it is a built-in's (`onstart`).
/// Those this server serves outside the registry (`own`: the resource
/// metrics API) are local too, labelled `true` like CustomResourceDefinitions'
/// (so one no longer served, `--disable metrics-server`, is deleted).
pub(crate) fn desired(
    registry: &Registry,
    own: &[crate::discovery::RemoteGroupVersion],
) -> Vec<(String, Value, bool)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for gv in own {
        if !seen.insert((gv.group.as_str(), gv.version.as_str())) {
            continue;
        }
        let name = format!("{}.{}", gv.version, gv.group);
        let obj = json!({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": name, "labels": {AUTOMANAGED: "true"}},
            "spec": {
                "group": gv.group,
                "version": gv.version,
                "groupPriorityMinimum": OWN_PRIORITY.0,
                "versionPriority": OWN_PRIORITY.1,
            },
        });
        out.push((name, obj, false));
    }
    for r in registry.all() {
        if r.group == "apiregistration.k8s.io" || !seen.insert((r.group, r.version)) {
            continue;
        }
        let known = PRIORITIES
            .iter()
            .find(|(g, v, _, _)| *g == r.group && *v == r.version);
        let (group_priority, version_priority, builtin) = match known {
            Some((_, _, g, v)) => (*g, *v, true),
            None => (CRD_PRIORITY.0, CRD_PRIORITY.1, false),
        };
        let name = format!("{}.{}", r.version, r.group);
        let obj = json!({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {
                "name": name,
                "labels": {AUTOMANAGED: if builtin { "onstart" } else { "true" }},
            },
            "spec": {
                "group": r.group,
                "version": r.version,
                "groupPriorityMinimum": group_priority,
                "versionPriority": version_priority,
            },
        });
        out.push((name, obj, builtin));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_group_version_has_its_local_apiservice() {
        let d = desired(&Registry::default(), &[]);
        let names: Vec<&str> = d.iter().map(|(n, _, _)| n.as_str()).collect();
        assert!(names.contains(&"v1."));
        assert!(names.contains(&"v1.apps"));
        assert!(names.contains(&"v2.autoscaling"));
        assert!(!names.contains(&"v1.apiregistration.k8s.io"));
        let apps = &d.iter().find(|(n, _, _)| n == "v1.apps").unwrap().1;
        assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
        assert_eq!(apps["spec"]["versionPriority"], 15);
        assert_eq!(apps["metadata"]["labels"][AUTOMANAGED], "onstart");
        assert!(
            d.iter().all(|(_, _, builtin)| *builtin),
            "no custom group in the built-in table"
        );
    }
}
