//! Namespace deletion and per-namespace defaults against a real API server.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod cluster;

use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_controllers::serviceaccount::{ca_pem_from_kubeconfig, ROOT_CA_CONFIGMAP};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

async fn create<K>(client: &Client, ns: &str, v: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).expect("object");
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create")
}

fn condition(ns: &Namespace, ty: &str) -> Option<(String, String, String)> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn a_deleted_namespace_is_emptied_then_goes() {
    let (_api, client) = api().await;
    let _ns = spawn(|c| ferrokube_controllers::namespace::run(client.clone(), c));
    let _gc = spawn(|c| ferrokube_controllers::gc::run(client.clone(), c));
    let nss: Api<Namespace> = Api::all(client.clone());
    namespace(&client, "doomed").await;
    create::<ConfigMap>(
        &client,
        "doomed",
        json!({"metadata": {"name": "settings"}, "data": {"a": "1"}}),
    )
    .await;
    create::<Service>(
        &client,
        "doomed",
        json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    create::<Pod>(
        &client,
        "doomed",
        json!({"metadata": {"name": "web-0"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    // Held by a finalizer until the test lets it go.
    create::<ConfigMap>(
        &client,
        "doomed",
        json!({"metadata": {"name": "held",
        "finalizers": ["example.com/hold"]}}),
    )
    .await;
    // Another namespace is left alone.
    namespace(&client, "bystander").await;
    create::<ConfigMap>(
        &client,
        "bystander",
        json!({"metadata": {"name": "settings"}}),
    )
    .await;

    nss.delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let ns = wait_for("conditions naming what is left", LIMIT, || async {
        let ns = nss.get("doomed").await.ok()?;
        let (s, _, _) = condition(&ns, "NamespaceContentRemaining")?;
        (s == "True").then_some(ns)
    })
    .await;
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.clone()).as_deref(),
        Some("Terminating")
    );
    assert_eq!(
        condition(&ns, "NamespaceContentRemaining").unwrap(),
        (
            "True".into(),
            "SomeResourcesRemain".into(),
            "Some resources are remaining: configmaps. has 1 resource instances".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceFinalizersRemaining").unwrap(),
        ("True".into(), "SomeFinalizersRemain".into(),
         "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into())
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionContentFailure").unwrap().1,
        "ContentDeleted"
    );
    for name in ["web-0"] {
        assert!(Api::<Pod>::namespaced(client.clone(), "doomed")
            .get_opt(name)
            .await
            .unwrap()
            .is_none());
    }
    assert!(Api::<Service>::namespaced(client.clone(), "doomed")
        .get_opt("web")
        .await
        .unwrap()
        .is_none());

    // The holder finishes: the namespace goes.
    Api::<ConfigMap>::namespaced(client.clone(), "doomed")
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the finalizer");
    wait_for("the namespace to go", LIMIT, || async {
        nss.get_opt("doomed").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(Api::<ConfigMap>::namespaced(client.clone(), "bystander")
        .get_opt("settings")
        .await
        .unwrap()
        .is_some());
    assert!(nss.get_opt("bystander").await.unwrap().is_some());
}

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let (api, client) = api().await;
    let ca = ca_pem_from_kubeconfig(&api.kubeconfig).expect("ca from kubeconfig");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let _sa = spawn(|c| ferrokube_controllers::serviceaccount::run(client.clone(), ca.clone(), c));
    namespace(&client, "team-a").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    wait_for("the default service account", LIMIT, || async {
        sas.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    let cm = wait_for("kube-root-ca.crt", LIMIT, || async {
        cms.get_opt(ROOT_CA_CONFIGMAP).await.ok()?
    })
    .await;
    assert_eq!(cm.data.unwrap_or_default().get("ca.crt"), Some(&ca));
    // The namespaces made at start have them too.
    let kube_system: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-system");
    wait_for("kube-system's default service account", LIMIT, || async {
        kube_system.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;

    // Deleted or changed, they come back.
    sas.delete("default", &DeleteParams::default())
        .await
        .expect("delete sa");
    cms.patch(
        ROOT_CA_CONFIGMAP,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "junk"}})),
    )
    .await
    .expect("spoil the CA");
    wait_for(
        "the service account and the CA to come back",
        LIMIT,
        || async {
            let sa = sas.get_opt("default").await.ok()??;
            let cm = cms.get_opt(ROOT_CA_CONFIGMAP).await.ok()??;
            (sa.metadata.uid.is_some() && cm.data?.get("ca.crt") == Some(&ca)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_leader_elected_controller_manager_runs_these_controllers() {
    let (api, client) = api().await;
    let config = ferrokube_controllers::ControllerConfig {
        identity: "test".into(),
        ca_pem: ca_pem_from_kubeconfig(&api.kubeconfig).expect("ca"),
        ..Default::default()
    };
    let _cm = spawn(|c| ferrokube_controllers::run(client.clone(), config, c));
    namespace(&client, "team-b").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-b");
    wait_for("kube-root-ca.crt in the new namespace", LIMIT, || async {
        cms.get_opt(ROOT_CA_CONFIGMAP).await.ok()?.map(|_| ())
    })
    .await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete("team-b", &DeleteParams::default())
        .await
        .expect("delete namespace");
    wait_for("the namespace to go", LIMIT, || async {
        nss.get_opt("team-b").await.ok()?.is_none().then_some(())
    })
    .await;
}
