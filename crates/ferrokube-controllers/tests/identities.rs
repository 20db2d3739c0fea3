//! The components' identities under the bootstrap policy (`Node,RBAC`, the
//! default): a pod's service-account token may not list secrets nor reach
//! another namespace; the scheduler, the proxy and a controller may do
//! their work and nothing else, each refusal in Kubernetes' words.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use ferrokube_apiserver::authz::Mode;
use ferrokube_client::testing::TestApi;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

/// A server authorizing as `ferrokube server` does (`Node,RBAC`), and an
/// admin client.
async fn api() -> (TestApi, kube::Client) {
    let api = TestApi::start_with_authorization(&[Mode::Node, Mode::Rbac])
        .await
        .expect("test api server");
    let client = api.client().await.expect("client");
    (api, client)
}

/// The 403 message of a refused request.
fn refusal(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("expected a 403, got {other:?}"),
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_token_reads_nothing_it_was_not_given() {
    let (api, admin) = api().await;
    namespace(&admin, "a").await;
    namespace(&admin, "b").await;
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "a");
    accounts.create(&PostParams::default(), &sa).await.unwrap();
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = accounts
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    // Over HTTPS with the token, as a pod's client would.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&api.kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.auth_info = serde_json::from_value(json!({ "token": token })).unwrap();
    let pod_client = kube::Client::try_from(config).unwrap();

    let err = Api::<Secret>::namespaced(pod_client.clone(), "a")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"secrets is forbidden: User "system:serviceaccount:a:default" cannot list resource "secrets" in API group "" in the namespace "a""#
    );
    let err = Api::<Pod>::namespaced(pod_client.clone(), "b")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"pods is forbidden: User "system:serviceaccount:a:default" cannot list resource "pods" in API group "" in the namespace "b""#
    );
    // What every authenticated user may: discovery.
    pod_client
        .list_core_api_versions()
        .await
        .expect("discovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_may_do_their_work_and_nothing_more() {
    let (api, admin) = api().await;
    namespace(&admin, "team").await;

    // The scheduler reads nodes and pods, and may not delete a namespace.
    let scheduler = api.in_process_client("system:kube-scheduler");
    Api::<Node>::all(scheduler.clone())
        .list(&ListParams::default())
        .await
        .expect("the scheduler lists nodes");
    Api::<Pod>::all(scheduler.clone())
        .list(&ListParams::default())
        .await
        .expect("the scheduler lists pods");
    let err = Api::<Namespace>::all(scheduler)
        .delete("team", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"namespaces "team" is forbidden: User "system:kube-scheduler" cannot delete resource "namespaces" in API group "" at the cluster scope"#
    );

    // The proxy watches services and slices, and reads no secrets.
    let proxy = api.in_process_client("system:kube-proxy");
    Api::<k8s_openapi::api::discovery::v1::EndpointSlice>::all(proxy.clone())
        .list(&ListParams::default())
        .await
        .expect("the proxy lists EndpointSlices");
    let err = Api::<Secret>::all(proxy)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"secrets is forbidden: User "system:kube-proxy" cannot list resource "secrets" in API group "" at the cluster scope"#
    );

    // A controller's service account: pods yes, nodes no.
    let rs = api.in_process_service_account("kube-system", "replicaset-controller");
    Api::<Pod>::all(rs.clone())
        .list(&ListParams::default())
        .await
        .expect("the ReplicaSet controller lists pods");
    let err = Api::<Node>::all(rs)
        .delete("test-node", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"nodes "test-node" is forbidden: User "system:serviceaccount:kube-system:replicaset-controller" cannot delete resource "nodes" in API group "" at the cluster scope"#
    );

    // The controller manager itself lists everything but writes no pods.
    let cm = api.in_process_client("system:kube-controller-manager");
    Api::<Secret>::all(cm.clone())
        .list(&ListParams::default())
        .await
        .expect("the controller manager's informers list everything");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    let err = Api::<Pod>::namespaced(cm, "team")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        r#"pods is forbidden: User "system:kube-controller-manager" cannot create resource "pods" in API group "" in the namespace "team""#
    );
}
