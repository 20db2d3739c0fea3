//! The HorizontalPodAutoscaler controller against a real API server (no
//! node, so no metrics: what does not need them): targets' scales found
//! through discovery and written as the controller's service account,
//! min/max clamping, the conditions and Events of a target that cannot be
//! measured or found.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_controllers::podautoscaler::{clock::SystemClock, HorizontalController, HpaConfig};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as Hpa;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Runs the HPA controller as its service account, syncing every second.
fn start_hpa(env: &Env) -> CancellationToken {
    let cancel = CancellationToken::new();
    let root = env.api.in_process_client("system:kube-controller-manager");
    let own = env
        .api
        .in_process_service_account("kube-system", "horizontal-pod-autoscaler");
    let config = HpaConfig {
        sync_period: Duration::from_secs(1),
        ..HpaConfig::default()
    };
    let c = cancel.clone();
    tokio::spawn(ferrokube_controllers::controller::run_standalone(
        root,
        2,
        move |informers| {
            HorizontalController::new(own, informers, config, Arc::new(SystemClock), c)
        },
    ));
    cancel
}

fn workload(kind: &str, name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeName": "no-node", "containers": [{"name": "c", "image": "busybox",
                    "resources": {"requests": {"cpu": "100m"}}}]}
            }
        }
    })
}

fn hpa(name: &str, kind: &str, min: i32, max: i32) -> Hpa {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))
}

fn condition(h: &Hpa, type_: &str) -> Option<(String, String, String)> {
    let c = h
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn events(env: &Env, name: &str) -> Vec<(String, String)> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn targets_below_min_or_above_max_are_scaled_through_their_scale() {
    let env = Env::start("hpa-clamp").await;
    let cancel = start_hpa(&env);
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &obj(workload("Deployment", "web", 1)),
        )
        .await
        .unwrap();
    env.api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &obj(workload("StatefulSet", "db", 5)),
        )
        .await
        .unwrap();
    env.api::<Hpa>()
        .create(&PostParams::default(), &hpa("web", "Deployment", 2, 4))
        .await
        .unwrap();
    env.api::<Hpa>()
        .create(&PostParams::default(), &hpa("db", "StatefulSet", 1, 3))
        .await
        .unwrap();
    wait_for("the Deployment scaled to its minimum", WAIT, || async {
        let d = env.api::<Deployment>().get("web").await.ok()?;
        (d.spec?.replicas == Some(2)).then_some(())
    })
    .await;
    wait_for("the StatefulSet scaled to its maximum", WAIT, || async {
        let s = env.api::<StatefulSet>().get("db").await.ok()?;
        (s.spec?.replicas == Some(3)).then_some(())
    })
    .await;
    let h = wait_for("the HPA's status after the rescale", WAIT, || async {
        let h = env.api::<Hpa>().get("web").await.ok()?;
        h.status.as_ref()?.last_scale_time.as_ref()?;
        Some(h)
    })
    .await;
    let st = h.status.clone().unwrap_or_default();
    assert_eq!((st.current_replicas, st.desired_replicas), (Some(1), 2));
    assert_eq!(
        condition(&h, "AbleToScale"),
        Some((
            "True".into(),
            "SucceededRescale".into(),
            "the HPA controller was able to update the target scale to 2".into()
        ))
    );
    let ev = wait_for("the rescale events", WAIT, || async {
        let e = events(&env, "web").await;
        e.iter().any(|(r, _)| r == "SuccessfulRescale").then_some(e)
    })
    .await;
    assert!(ev.contains(&(
        "SuccessfulRescale".into(),
        "New size: 2; reason: Current number of replicas below Spec.MinReplicas".into()
    )));
    // Within the range now, the next syncs read metrics: none are served
    // for pods that never ran.
    let h = wait_for("ScalingActive False", WAIT, || async {
        let h = env.api::<Hpa>().get("web").await.ok()?;
        (condition(&h, "ScalingActive")?.0 == "False").then_some(h)
    })
    .await;
    let (_, reason, message) = condition(&h, "ScalingActive").unwrap_or_default();
    assert_eq!(reason, "FailedGetResourceMetric");
    assert!(
        message.starts_with(
            "the HPA was unable to compute the replica count: failed to get cpu utilization: "
        ),
        "{message}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_target_that_is_not_there_or_has_no_scale_is_reported() {
    let env = Env::start("hpa-missing").await;
    let cancel = start_hpa(&env);
    env.api::<Hpa>()
        .create(&PostParams::default(), &hpa("gone", "Deployment", 1, 3))
        .await
        .unwrap();
    let mut odd = hpa("odd", "Gizmo", 1, 3);
    if let Some(s) = odd.spec.as_mut() {
        s.scale_target_ref.api_version = Some("example.com/v1".into());
    }
    env.api::<Hpa>()
        .create(&PostParams::default(), &odd)
        .await
        .unwrap();
    let h = wait_for("FailedGetScale", WAIT, || async {
        let h = env.api::<Hpa>().get("gone").await.ok()?;
        (condition(&h, "AbleToScale")?.1 == "FailedGetScale").then_some(h)
    })
    .await;
    assert_eq!(
        condition(&h, "AbleToScale").map(|c| (c.0, c.2)),
        Some((
            "False".into(),
            "the HPA controller was unable to get the target's current scale: deployments.apps \"gone\" not found".into()
        ))
    );
    let h = wait_for("FailedGetScale of an unknown kind", WAIT, || async {
        let h = env.api::<Hpa>().get("odd").await.ok()?;
        (condition(&h, "AbleToScale")?.1 == "FailedGetScale").then_some(h)
    })
    .await;
    assert_eq!(
        condition(&h, "AbleToScale").map(|c| c.2),
        Some(
            "the HPA controller was unable to get the target's current scale: no matches for kind \"Gizmo\" in group \"example.com\""
                .into()
        )
    );
    let ev = wait_for("the event", WAIT, || async {
        let e = events(&env, "gone").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(
        ev[0],
        (
            "FailedGetScale".into(),
            "deployments.apps \"gone\" not found".into()
        )
    );
    cancel.cancel();
}
