//! The ClusterRole aggregation controller against the bootstrap policy: the
//! `view`, `edit` and `admin` roles hold the rules of the roles their
//! labels select, a role labelled into `view` later adds its rules to all
//! three within seconds, and taking the label off takes them away.

mod cluster;

use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_controllers::clusterroleaggregation::ClusterRoleAggregationController;
use ferrokube_controllers::controller;
use ferrokube_controllers::watchqueue::Informers;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn has_rule_on(role: &ClusterRole, resource: &str) -> bool {
    role.rules
        .iter()
        .flatten()
        .any(|r| r.resources.iter().flatten().any(|x| x == resource))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_roles_follow_the_roles_their_labels_select() {
    let (api, admin) = api().await;
    // As in `ferrokube server`: the controller writes as its service account.
    let sa = api.in_process_client_in(
        "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    let manager = api.in_process_client("system:kube-controller-manager");
    let _running = spawn(|cancel| async move {
        let mut informers = Informers::new(manager);
        let c = ClusterRoleAggregationController::new(sa, &mut informers, cancel.clone());
        let tasks = informers.spawn(&cancel);
        controller::run(c, 1).await;
        for t in tasks {
            let _ = t.await;
        }
    });
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let limit = Duration::from_secs(10);

    // The bootstrap roles are aggregated: view reads pods, edit writes them.
    for (name, resource) in [
        ("view", "pods/log"),
        ("edit", "pods/exec"),
        ("admin", "roles"),
    ] {
        let roles = roles.clone();
        wait_for(&format!("{name} to hold its rules"), limit, || {
            let roles = roles.clone();
            async move {
                let r = roles.get(name).await.ok()?;
                has_rule_on(&r, resource).then_some(())
            }
        })
        .await;
    }

    // A role labelled into view: its rule reaches view, edit and admin.
    let widgets: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "widget-viewer", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    roles
        .create(&PostParams::default(), &widgets)
        .await
        .unwrap();
    for name in ["view", "edit", "admin"] {
        let roles = roles.clone();
        wait_for(&format!("{name} to gain the widgets rule"), limit, || {
            let roles = roles.clone();
            async move {
                let r = roles.get(name).await.ok()?;
                has_rule_on(&r, "widgets").then_some(())
            }
        })
        .await;
    }

    // The label taken off: the rule goes.
    roles
        .patch(
            "widget-viewer",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"rbac.authorization.k8s.io/aggregate-to-view": null}}})),
        )
        .await
        .unwrap();
    for name in ["view", "edit", "admin"] {
        let roles = roles.clone();
        wait_for(&format!("{name} to lose the widgets rule"), limit, || {
            let roles = roles.clone();
            async move {
                let r = roles.get(name).await.ok()?;
                (!has_rule_on(&r, "widgets") && has_rule_on(&r, "pods")).then_some(())
            }
        })
        .await;
    }
}
