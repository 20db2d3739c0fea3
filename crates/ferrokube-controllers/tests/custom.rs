//! Controllers over a kind the API server starts serving while it runs (as
//! a CustomResourceDefinition makes it do): the garbage collector and the
//! namespace controller find it through discovery.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod cluster;

use std::sync::Arc;
use std::time::Duration;

use cluster::{api, spawn};
use ferrokube_api::registry::intern;
use ferrokube_apiserver::served::Kind;
use ferrokube_apiserver::strategy::{Checked, Strategy};
use ferrokube_client::testing::wait::wait_for;
use ferrokube_client::testing::TestApi;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

/// The test kind's rules: every field accepted.
#[derive(Debug)]
struct AnyFields;

impl Strategy for AnyFields {
    fn check_fields(
        &self,
        _def: &ferrokube_api::registry::ResourceDef,
        obj: serde_json::Value,
    ) -> Result<Checked, String> {
        Ok(Checked {
            value: obj,
            unknown: Vec::new(),
        })
    }
}

/// Starts serving `widgets.example.com/v1` (namespaced), as a CRD would.
async fn serve_widgets(api: &TestApi) {
    let mut def = api.kinds().get("", "v1", "configmaps").unwrap();
    def.group = intern("example.com");
    def.kind = intern("Widget");
    def.plural = intern("widgets");
    def.singular = intern("widget");
    def.short_names = &[];
    def.categories = &[];
    def.storage_prefix = intern("/registry/example.com/widgets/");
    api.kinds()
        .add(vec![Kind {
            def,
            strategy: Arc::new(AnyFields),
            schema: None,
        }])
        .await
        .unwrap();
}

fn widgets(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    )
}

async fn widget(client: &Client, ns: &str, meta: serde_json::Value) -> DynamicObject {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta, "spec": {"size": 1},
    }))
    .unwrap();
    widgets(client, ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create widget")
}

fn owner(api_version: &str, kind: &str, meta: &kube::core::ObjectMeta) -> serde_json::Value {
    json!({"apiVersion": api_version, "kind": kind, "name": meta.name, "uid": meta.uid})
}

async fn gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(what, LIMIT, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_cascade_with_their_owners_and_cascade_to_pods() {
    let (api, client) = api().await;
    // The collector starts before the kind is served.
    let _gc = spawn(|c| {
        ferrokube_controllers::gc::run_with_rediscovery(client.clone(), c, Duration::from_secs(1))
    });
    // (Time for its first read of discovery, without widgets.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    serve_widgets(&api).await;

    // A widget owned by a Deployment goes with it.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "owner"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "owner"}},
            "template": {"metadata": {"labels": {"app": "owner"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let owned = json!([owner("apps/v1", "Deployment", &deployment.metadata)]);
    widget(
        &client,
        "default",
        json!({"name": "owned", "ownerReferences": owned}),
    )
    .await;
    // A pod owned by a widget goes with the widget.
    let parent = widget(&client, "default", json!({"name": "parent"})).await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "child", "ownerReferences": [owner("example.com/v1", "Widget", &parent.metadata)]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod).await.unwrap();

    deployments
        .delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    gone(
        &widgets(&client, "default"),
        "owned",
        "the widget whose Deployment was deleted",
    )
    .await;
    assert!(
        widgets(&client, "default")
            .get_opt("parent")
            .await
            .unwrap()
            .is_some(),
        "a widget without owners stays"
    );
    widgets(&client, "default")
        .delete("parent", &DeleteParams::background())
        .await
        .unwrap();
    gone(&pods, "child", "the pod whose widget was deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_custom_resources_is_emptied_of_them_then_goes() {
    let (api, client) = api().await;
    let _ns = spawn(|c| ferrokube_controllers::namespace::run(client.clone(), c));
    serve_widgets(&api).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    widget(&client, "doomed", json!({"name": "plain"})).await;
    // Held by a finalizer until the test lets it go.
    widget(
        &client,
        "doomed",
        json!({"name": "held", "finalizers": ["example.com/hold"]}),
    )
    .await;

    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let message = wait_for("the namespace naming the widget left", LIMIT, || async {
        let ns = nss.get("doomed").await.ok()?;
        let c = ns
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "NamespaceContentRemaining")?;
        (c.status == "True").then_some(c.message.unwrap_or_default())
    })
    .await;
    assert_eq!(
        message,
        "Some resources are remaining: widgets.example.com has 1 resource instances"
    );
    let doomed = widgets(&client, "doomed");
    gone(&doomed, "plain", "the widget without finalizers").await;
    assert!(nss.get_opt("doomed").await.unwrap().is_some());

    doomed
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    gone(&nss, "doomed", "the emptied namespace").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_count_custom_resources_and_see_them_go() {
    let (api, client) = api().await;
    serve_widgets(&api).await;
    widget(&client, "default", json!({"name": "a"})).await;
    widget(&client, "default", json!({"name": "b"})).await;
    // Recounts come from events only: the periodic one is an hour away.
    let _c = spawn(|c| {
        ferrokube_controllers::resourcequota::run_with_resync(
            client.clone(),
            c,
            Duration::from_secs(3600),
        )
    });
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "widgets"},
        "spec": {"hard": {"count/widgets.example.com": "5"}},
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let used = |n: &'static str| {
        let quotas = quotas.clone();
        async move {
            let q = quotas.get("widgets").await.ok()?;
            let used = q.status?.used?;
            (used.get("count/widgets.example.com")?.0 == n).then_some(())
        }
    };
    wait_for("two widgets counted", LIMIT, || used("2")).await;
    widgets(&client, "default")
        .delete("a", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("the deleted widget no longer counted", LIMIT, || used("1")).await;
}
