//! The Endpoints and EndpointSlice controllers against a real API server,
//! the test acting as the kubelet.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{obj, pod_ip, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn pod(name: &str, app: &str, port_name: &str, port: i32) -> Pod {
    obj(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "ports": [{"name": port_name, "containerPort": port}]}]}
    }))
}

fn service(name: &str, selector: Option<&str>, publish_not_ready: bool) -> Service {
    let mut spec = json!({
        "ports": [{"name": "http", "port": 80, "targetPort": "web"}],
        "publishNotReadyAddresses": publish_not_ready,
    });
    if let Some(app) = selector {
        spec["selector"] = json!({"app": app});
    }
    obj(json!({"metadata": {"name": name, "labels": {"tier": "front"}}, "spec": spec}))
}

/// (ready ip:port, not-ready ip:port) in an Endpoints object.
fn addresses(e: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    for s in e.subsets.iter().flatten() {
        for p in s.ports.iter().flatten() {
            for a in s.addresses.iter().flatten() {
                ready.insert(format!("{}:{}", a.ip, p.port));
            }
            for a in s.not_ready_addresses.iter().flatten() {
                not_ready.insert(format!("{}:{}", a.ip, p.port));
            }
        }
    }
    (ready, not_ready)
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

async fn endpoints_are(env: &Env, name: &str, ready: &[String], not_ready: &[String]) -> Endpoints {
    let (r, n) = (set(ready), set(not_ready));
    wait_for(
        &format!("endpoints ready {r:?} not ready {n:?}"),
        WAIT,
        || async {
            let e = env.api::<Endpoints>().get(name).await.ok()?;
            (addresses(&e) == (r.clone(), n.clone())).then_some(e)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_readiness_and_resolve_named_ports_per_pod() {
    let env = Env::start("ep-ready").await;
    let pods = env.api::<Pod>();
    let mut a = pod("a", "web", "web", 8080);
    if let Some(s) = a.spec.as_mut() {
        s.node_name = Some("node-1".into());
    }
    let a = pods
        .create(&PostParams::default(), &a)
        .await
        .expect("pod a");
    let b = pods
        .create(&PostParams::default(), &pod("b", "web", "web", 9090))
        .await
        .expect("pod b");
    pods.create(&PostParams::default(), &pod("other", "db", "web", 7070))
        .await
        .expect("other pod");
    env.api::<Service>()
        .create(&PostParams::default(), &service("web", Some("web"), false))
        .await
        .expect("service");
    env.set_ready(&a, true).await;
    env.set_ready(&b, false).await;
    let (ia, ib) = (pod_ip("a"), pod_ip("b"));
    let e = endpoints_are(
        &env,
        "web",
        &[format!("{ia}:8080")],
        &[format!("{ib}:9090")],
    )
    .await;
    let addr = e
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .next()
        .expect("an address");
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let r = addr.target_ref.as_ref().expect("targetRef");
    assert_eq!(
        (r.kind.as_deref(), r.name.as_deref()),
        (Some("Pod"), Some("a"))
    );
    assert_eq!(r.uid, a.metadata.uid);
    let port = e
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.ports.iter().flatten())
        .next()
        .expect("port");
    assert_eq!(port.name.as_deref(), Some("http"));
    assert_eq!(
        e.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("front")
    );

    // b turns ready, a turns not ready.
    env.set_ready(&b, true).await;
    env.set_ready(&a, false).await;
    endpoints_are(
        &env,
        "web",
        &[format!("{ib}:9090")],
        &[format!("{ia}:8080")],
    )
    .await;

    // b goes away (unbound: deleted at once).
    pods.delete("b", &DeleteParams::default())
        .await
        .expect("deleting b");
    endpoints_are(&env, "web", &[], &[format!("{ia}:8080")]).await;
    // a is bound to a node: deleting it leaves it terminating, and a
    // terminating pod is no longer an endpoint.
    pods.delete("a", &DeleteParams::default())
        .await
        .expect("deleting a");
    endpoints_are(&env, "web", &[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_not_ready_addresses_and_selectorless_services() {
    let env = Env::start("ep-publish").await;
    let p = env
        .api::<Pod>()
        .create(&PostParams::default(), &pod("p", "api", "web", 8080))
        .await
        .expect("pod");
    env.set_ready(&p, false).await;
    env.api::<Service>()
        .create(&PostParams::default(), &service("api", Some("api"), true))
        .await
        .expect("service");
    endpoints_are(&env, "api", &[format!("{}:8080", pod_ip("p"))], &[]).await;

    // A Service without a selector: its Endpoints are the user's.
    env.api::<Service>()
        .create(&PostParams::default(), &service("external", None, false))
        .await
        .expect("selectorless service");
    let mine: Endpoints = obj(json!({
        "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80}]}]
    }));
    env.api::<Endpoints>()
        .create(&PostParams::default(), &mine)
        .await
        .expect("user endpoints");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let e = env
        .api::<Endpoints>()
        .get("external")
        .await
        .expect("still there");
    assert_eq!(
        addresses(&e),
        (set(&["192.0.2.10:80".into()]), BTreeSet::new())
    );
    let slices = env
        .api::<EndpointSlice>()
        .list(&ListParams::default().labels("kubernetes.io/service-name=external"))
        .await
        .expect("slices");
    assert!(slices.items.is_empty());

    // Deleting the Service with a selector removes its Endpoints.
    env.api::<Service>()
        .delete("api", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("endpoints gone", WAIT, || async {
        env.api::<Endpoints>()
            .get("api")
            .await
            .is_err()
            .then_some(())
    })
    .await;
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_are_labelled_owned_and_hold_at_most_100() {
    let env = Env::start("ep-slices").await;
    let svc = env
        .api::<Service>()
        .create(&PostParams::default(), &service("big", Some("big"), false))
        .await
        .expect("service");
    const N: usize = 130;
    let pods = env.api::<Pod>();
    for i in 0..N {
        let p = pods
            .create(
                &PostParams::default(),
                &pod(&format!("big-{i}"), "big", "web", 8080),
            )
            .await
            .expect("pod");
        // All but the last ten ready.
        env.set_ready(&p, i < N - 10).await;
    }
    let slices = wait_for("130 endpoints in two slices", WAIT, || async {
        let l = env
            .api::<EndpointSlice>()
            .list(&ListParams::default().labels("kubernetes.io/service-name=big"))
            .await
            .ok()?
            .items;
        let n: usize = l.iter().map(|s| s.endpoints.len()).sum();
        (n == N && l.len() == 2).then_some(l)
    })
    .await;
    assert_eq!(slices.len(), 2);
    let mut ready = 0;
    let mut ips = BTreeSet::new();
    for s in &slices {
        assert!(s.endpoints.len() <= 100);
        assert_eq!(s.address_type, "IPv4");
        let labels = s.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        let owner = s
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .expect("owner");
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Service", "big")
        );
        assert_eq!(owner.uid, svc.metadata.uid.clone().unwrap_or_default());
        let ports = s.ports.clone().unwrap_or_default();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("http"), Some(8080))
        );
        for e in &s.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            assert_eq!(c.ready, c.serving);
            assert_eq!(c.terminating, Some(false));
            if c.ready == Some(true) {
                ready += 1;
            }
            ips.extend(e.addresses.iter().cloned());
        }
    }
    assert_eq!(ready, N - 10);
    assert_eq!(ips.len(), N);

    // A pod turning ready updates its endpoint's conditions.
    let last = pods.get(&format!("big-{}", N - 1)).await.expect("pod");
    env.set_ready(&last, true).await;
    wait_for("one more ready endpoint", WAIT, || async {
        let l = env
            .api::<EndpointSlice>()
            .list(&ListParams::default().labels("kubernetes.io/service-name=big"))
            .await
            .ok()?
            .items;
        let n = l
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        (n == N - 9).then_some(())
    })
    .await;
    // Relabel a pod out of the Service: its endpoint goes.
    pods.patch(
        "big-0",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .expect("relabel");
    wait_for("129 endpoints", WAIT, || async {
        let l = env
            .api::<EndpointSlice>()
            .list(&ListParams::default().labels("kubernetes.io/service-name=big"))
            .await
            .ok()?
            .items;
        let n: usize = l.iter().map(|s| s.endpoints.len()).sum();
        (n == N - 1).then_some(())
    })
    .await;
}
