//! The bootstrap RBAC policy with the real kubectl: its roles carry
//! Kubernetes' label and annotation; a restart puts back the rules someone
//! removed and keeps those they added, but leaves alone a role annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"`; and a role
//! labelled to aggregate into `view` gives `view` its rule within seconds.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::Duration;

use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

fn role(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.kubectl_ok(&["get", "clusterrole", name, "-o", "json"])).unwrap()
}

fn urls(role: &Value) -> Vec<String> {
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["nonResourceURLs"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u.as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_bootstrap_policy_is_reconciled_at_start_and_view_aggregates() {
    let mut c = Cluster::start();
    let info = role(&c, "system:public-info-viewer");
    assert_eq!(
        info["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    assert_eq!(
        info["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    assert!(urls(&info).contains(&"/healthz".to_string()));

    // One role stripped, with a rule of our own; another stripped and
    // marked not to be updated.
    let mine = r#"[{"op": "replace", "path": "/rules", "value": [{"nonResourceURLs": ["/mine"], "verbs": ["get"]}]}]"#;
    c.kubectl_ok(&[
        "patch",
        "clusterrole",
        "system:public-info-viewer",
        "--type=json",
        "-p",
        mine,
    ]);
    c.kubectl_ok(&[
        "patch",
        "clusterrole",
        "system:monitoring",
        "--type=json",
        "-p",
        mine,
    ]);
    c.kubectl_ok(&[
        "annotate",
        "--overwrite",
        "clusterrole",
        "system:monitoring",
        "rbac.authorization.kubernetes.io/autoupdate=false",
    ]);
    c.restart();
    let info = urls(&role(&c, "system:public-info-viewer"));
    assert!(info.contains(&"/mine".to_string()), "{info:?}");
    assert!(info.contains(&"/healthz".to_string()), "put back: {info:?}");
    assert_eq!(
        urls(&role(&c, "system:monitoring")),
        ["/mine"],
        "left alone"
    );

    // Aggregation: a role labelled into view.
    let manifest = c.data_dir().join("widgets.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widget-viewer
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: [get, list, watch]
"#,
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    wait_until_blocking(
        "view to gain the widgets rule",
        Duration::from_secs(10),
        POLL,
        || {
            c.kubectl_ok(&["get", "clusterrole", "view", "-o", "json"])
                .contains("\"widgets\"")
        },
    );
}
