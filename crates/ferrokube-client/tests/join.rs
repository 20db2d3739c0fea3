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
    let node = ferrokube_client::join::node_clients(&server, &token, "joiner-1", "pw-1")
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
    let bad = ferrokube_client::join::node_clients(&server, &token, "Not A Name", "pw")
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

/// The Status code and message of a refused join.
fn refusal(err: &anyhow::Error) -> (u16, String) {
    let api = err
        .chain()
        .find_map(|e| match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
            _ => None,
        });
    api.unwrap_or_else(|| panic!("not a Status: {err:#}"))
}

#[tokio::test]
async fn a_node_name_is_kept_by_its_password_until_the_node_is_deleted() {
    use ferrokube_client::join::{node_clients, node_credentials};
    let api = TestApi::start().await.expect("api");
    let token = std::fs::read_to_string(api.dir.path().join("token")).expect("token file");
    let server = format!("https://{}", api.addr);
    let first = node_clients(&server, &token, "node-a", "the-first-password")
        .await
        .expect("the first join");
    // The same machine again (a restart, a renewal): the same password.
    node_credentials(&server, &token, "node-a", "the-first-password")
        .await
        .expect("the same password joins again");
    // Another machine claiming the name: refused with a Status.
    let err = node_credentials(&server, &token, "node-a", "another-password")
        .await
        .err()
        .expect("another password is refused");
    let (code, message) = refusal(&err);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(r#"node password rejected: the node name "node-a" is taken"#),
        "{message}"
    );
    // No password at all: a bad request.
    let err = node_credentials(&server, &token, "node-b", "")
        .await
        .err()
        .expect("no password");
    assert_eq!(refusal(&err).0, 400);

    // The server keeps only a hash, in kube-system.
    let admin = api.client().await.expect("admin");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(admin.clone(), "kube-system");
    let secret = secrets
        .get("node-a.node-password.ferrokube")
        .await
        .expect("the password's secret");
    assert_eq!(secret.immutable, Some(true));
    let hash = String::from_utf8(secret.data.expect("data")["hash"].0.clone()).expect("text");
    assert!(hash.starts_with("$pbkdf2-sha256$"), "{hash}");
    assert!(!hash.contains("the-first-password"));

    // Once the Node registered and then deleted, the name is free again.
    let node: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "node-a"}})).expect("node");
    Api::<Node>::all(first.kubelet.clone())
        .create(&Default::default(), &node)
        .await
        .expect("the node registers itself");
    Api::<Node>::all(admin.clone())
        .delete("node-a", &Default::default())
        .await
        .expect("kubectl delete node");
    ferrokube_client::testing::wait::wait_for(
        "the deleted node's password secret to go",
        std::time::Duration::from_secs(20),
        || {
            let secrets = secrets.clone();
            async move {
                matches!(
                    secrets.get_opt("node-a.node-password.ferrokube").await,
                    Ok(None)
                )
                .then_some(())
            }
        },
    )
    .await;
    node_credentials(&server, &token, "node-a", "another-password")
        .await
        .expect("a new machine takes the freed name");
}

#[tokio::test]
async fn the_join_token_alone_may_do_nothing_but_join() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let api = TestApi::start().await.expect("api");
    let token = std::fs::read_to_string(api.dir.path().join("token")).expect("token file");
    let server = format!("https://{}", api.addr);
    let joiner = ferrokube_client::client_from_join_token(&server, &token)
        .await
        .expect("join client");
    let forbidden = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{what}: {s:?}");
            assert!(
                s.message.contains("system:bootstrap:join-token"),
                "{what}: {}",
                s.message
            );
        }
        other => panic!("{what}: {other:?}"),
    };
    let nodes: Api<Node> = Api::all(joiner.clone());
    forbidden(
        nodes.list(&Default::default()).await.map(drop),
        "list nodes",
    );
    forbidden(nodes.get("test-node").await.map(drop), "get a node");
    let secrets: Api<Secret> = Api::namespaced(joiner.clone(), "kube-system");
    forbidden(
        secrets.list(&Default::default()).await.map(drop),
        "list secrets",
    );
    forbidden(
        secrets
            .get("node-a.node-password.ferrokube")
            .await
            .map(drop),
        "read a node password",
    );
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).expect("cm");
    forbidden(
        Api::<ConfigMap>::namespaced(joiner.clone(), "default")
            .create(&Default::default(), &cm)
            .await
            .map(drop),
        "create a configmap",
    );
    let node: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).expect("node");
    forbidden(
        nodes.create(&Default::default(), &node).await.map(drop),
        "create a node",
    );
    forbidden(
        Api::<Namespace>::all(joiner)
            .delete("default", &Default::default())
            .await
            .map(drop),
        "delete a namespace",
    );
}

#[tokio::test]
async fn short_lived_node_certificates_are_due_for_renewal_early() {
    let lifetime = std::time::Duration::from_secs(120);
    let api = TestApi::start_configured(|c| c.node_cert_lifetime = lifetime)
        .await
        .expect("api");
    let token = std::fs::read_to_string(api.dir.path().join("token")).expect("token file");
    let server = format!("https://{}", api.addr);
    let creds = ferrokube_client::join::node_credentials(&server, &token, "short", "pw")
        .await
        .expect("credentials");
    let life = creds
        .not_after
        .duration_since(creds.fetched)
        .expect("in the future");
    assert!(
        life <= lifetime + std::time::Duration::from_secs(2)
            && life > lifetime - std::time::Duration::from_secs(10),
        "{life:?}"
    );
    let at = creds
        .renew_at()
        .duration_since(creds.fetched)
        .expect("after");
    assert!(
        at >= life.mul_f64(0.69) && at <= life.mul_f64(0.91),
        "{at:?} of {life:?}"
    );
    // The renewed ones (same token and password) work as the first did.
    let again = ferrokube_client::join::node_credentials(&server, &token, "short", "pw")
        .await
        .expect("renewed");
    assert_ne!(again.kubelet.0, creds.kubelet.0, "a new certificate");
    let clients = again.clients(&server).expect("clients");
    Api::<Node>::all(clients.kubelet)
        .list(&Default::default())
        .await
        .expect("the renewed certificate authenticates");
}
