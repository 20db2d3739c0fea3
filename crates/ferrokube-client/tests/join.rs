//! Joining with a token: the agent's client trusts the CA only when it
//! matches the token's hash, and the token's secret authenticates it; with
//! it, a node fetches client certificates under which its node agent and
//! proxy act.

use ferrokube_client::testing::TestApi;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;

#[tokio::test]
async fn join_token_gives_a_working_client_and_wrong_ones_are_refused() {
    let api = TestApi::start().await.expect("api");
    let token = std::fs::read_to_string(api.dir.path().join("token")).expect("token file");
    let server = format!("https://{}", api.addr);
    let client = ferrokube_client::client_from_join_token(&server, &token)
        .await
        .expect("join client");
    client
        .list_core_api_versions()
        .await
        .expect("the token authenticates");

    // The node's own credentials.
    let node = ferrokube_client::join::node_clients(&server, &token, "joiner-1")
        .await
        .expect("node credentials");
    Api::<Node>::all(node.kubelet.clone())
        .list(&Default::default())
        .await
        .expect("the node agent reads nodes");
    assert_eq!(
        node.ca_pem,
        std::fs::read_to_string(api.dir.path().join("tls/ca.crt")).unwrap()
    );
    let bad = ferrokube_client::join::node_clients(&server, &token, "Not A Name")
        .await
        .err()
        .expect("a node name that is not a DNS subdomain is refused");
    assert!(format!("{bad:#}").contains("nodeName"), "{bad:#}");

    // A token naming another CA: refused before any credential is sent.
    let other = format!("K10{}::server:whatever", "0".repeat(64));
    let err = ferrokube_client::client_from_join_token(&server, &other)
        .await
        .err()
        .expect("a foreign CA hash is refused");
    assert!(err.to_string().contains("does not match"), "{err:#}");

    // The right CA with a wrong secret: 401 from the server.
    let (hash, _) = ferrokube_pki::jointoken::parse(&token).expect("parse");
    let wrong = format!("K10{hash}::server:not-the-secret");
    let client = ferrokube_client::client_from_join_token(&server, &wrong)
        .await
        .expect("client builds");
    let err = Api::<Namespace>::all(client)
        .get("default")
        .await
        .expect_err("a wrong secret is not authenticated");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );

    // Not a token at all.
    assert!(ferrokube_client::client_from_join_token(&server, "hello")
        .await
        .is_err());
}
