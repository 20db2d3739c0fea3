//! Authorization on a real API server (`--authorization-mode Node,RBAC`),
//! through the in-process client as users other than the admin: who may do
//! what, Kubernetes' refusals word for word, and escalation prevention.

use ferrokube_apiserver::authz::Mode;
use ferrokube_client::testing::TestApi;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

async fn authorized_api() -> TestApi {
    TestApi::start_with_authorization(&[Mode::Node, Mode::Rbac])
        .await
        .expect("api server")
}

/// The refusal's message, or a panic naming what came instead.
fn refusal<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn create<K>(api: &Api<K>, v: serde_json::Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &obj).await
}

async fn namespace(admin: &kube::Client, name: &str) {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    create(&ns, json!({"metadata": {"name": name}}))
        .await
        .expect("namespace");
}

fn role(ns: &str, name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn binding(
    ns: &str,
    name: &str,
    kind: &str,
    role: &str,
    subjects: serde_json::Value,
) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    })
}

fn user(name: &str) -> serde_json::Value {
    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_binding_grants_its_rules_in_its_namespace_only() {
    let api = authorized_api().await;
    let admin = api.client().await.expect("admin");
    namespace(&admin, "a").await;
    namespace(&admin, "b").await;
    let jane = api.in_process_client("jane");

    let pods_b: Api<Pod> = Api::namespaced(jane.clone(), "b");
    assert_eq!(
        refusal(pods_b.list(&ListParams::default()).await),
        (
            403,
            r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b""#
                .to_string()
        )
    );
    let nodes: Api<Node> = Api::all(jane.clone());
    assert_eq!(
        refusal(nodes.get("n1").await).1,
        r#"nodes "n1" is forbidden: User "jane" cannot get resource "nodes" in API group "" at the cluster scope"#
    );

    create(
        &Api::<Role>::namespaced(admin.clone(), "a"),
        role("a", "pod-reader", json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}])),
    )
    .await
    .expect("role");
    create(
        &Api::<RoleBinding>::namespaced(admin.clone(), "a"),
        binding("a", "jane-reads", "Role", "pod-reader", user("jane")),
    )
    .await
    .expect("binding");

    // At once: the binding just written is seen.
    let pods_a: Api<Pod> = Api::namespaced(jane.clone(), "a");
    pods_a
        .list(&ListParams::default())
        .await
        .expect("jane lists pods in a");
    pods_b
        .list(&ListParams::default())
        .await
        .expect_err("but not in b");
    // Only the verbs and subresources granted.
    let cms: Api<ConfigMap> = Api::namespaced(jane.clone(), "a");
    assert_eq!(
        refusal(create(&cms, json!({"metadata": {"name": "c"}})).await).1,
        r#"configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "a""#
    );
    assert_eq!(
        refusal(pods_a.get_subresource("exec", "p").await).1,
        r#"pods "p" is forbidden: User "jane" cannot get resource "pods/exec" in API group "" in the namespace "a""#
    );
    // pods/log is granted: the refusal is the server's, not authorization's.
    assert_eq!(refusal(pods_a.logs("p", &Default::default()).await).0, 404);
    // Someone else gets nothing from jane's binding.
    let joe: Api<Pod> = Api::namespaced(api.in_process_client("joe"), "a");
    joe.list(&ListParams::default())
        .await
        .expect_err("joe is not jane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_service_accounts_and_cluster_bindings() {
    let api = authorized_api().await;
    let admin = api.client().await.expect("admin");
    namespace(&admin, "a").await;
    create(
        &Api::<ClusterRole>::all(admin.clone()),
        json!({"metadata": {"name": "cm-reader"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
            {"nonResourceURLs": ["/apis", "/apis/*"], "verbs": ["get"]},
        ]}),
    )
    .await
    .expect("clusterrole");
    // A group, cluster-wide.
    create(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        json!({
            "metadata": {"name": "devs-read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-reader"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}],
        }),
    )
    .await
    .expect("clusterrolebinding");
    let dev = api.in_process_client_in("ann", &["devs"]);
    Api::<ConfigMap>::all(dev.clone())
        .list(&ListParams::default())
        .await
        .expect("a dev lists configmaps everywhere");
    // Non-resource URLs: `/apis/*` covers the groups' discovery (as the
    // bootstrap policy's system:discovery does for everyone), not
    // `/metrics` (system:monitoring's).
    let get = |path: &str| http::Request::get(path).body(Vec::new()).expect("request");
    dev.request_text(get("/apis/apps"))
        .await
        .expect("discovery");
    assert_eq!(
        refusal(dev.request_text(get("/metrics")).await),
        (
            403,
            r#"forbidden: User "ann" cannot get path "/metrics""#.to_string()
        )
    );

    // A service account in a RoleBinding of its own namespace, without
    // naming the namespace; a ClusterRole referred to from a RoleBinding.
    create(
        &Api::<RoleBinding>::namespaced(admin.clone(), "a"),
        binding(
            "a",
            "builder-reads",
            "ClusterRole",
            "cm-reader",
            json!([{"kind": "ServiceAccount", "name": "builder"}]),
        ),
    )
    .await
    .expect("rolebinding");
    let sa = api.in_process_client_in(
        "system:serviceaccount:a:builder",
        &["system:serviceaccounts", "system:serviceaccounts:a"],
    );
    Api::<ConfigMap>::namespaced(sa.clone(), "a")
        .list(&ListParams::default())
        .await
        .expect("the service account reads configmaps in a");
    Api::<ConfigMap>::namespaced(sa.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect_err("and only in a");

    // A binding to a role that does not exist says so.
    create(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        json!({
            "metadata": {"name": "ghost"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "missing"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "kim"}],
        }),
    )
    .await
    .expect("clusterrolebinding");
    let kim: Api<Pod> = Api::namespaced(api.in_process_client("kim"), "a");
    assert_eq!(
        refusal(kim.list(&ListParams::default()).await).1,
        r#"pods is forbidden: User "kim" cannot list resource "pods" in API group "" in the namespace "a": RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#
    );

    // The admin (system:masters) needs no binding.
    Api::<Pod>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .expect("the admin lists pods");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_the_rules_of_system_node() {
    let api = authorized_api().await;
    let admin = api.client().await.expect("admin");
    let node = api.in_process_client_in("system:node:n1", &["system:nodes"]);
    let nodes: Api<Node> = Api::all(node.clone());
    // The bootstrap policy's system:node, replaced by one of this test's.
    Api::<ClusterRole>::all(admin.clone())
        .delete("system:node", &Default::default())
        .await
        .expect("deleting the bootstrap system:node");
    nodes.get("n1").await.expect_err("no system:node role yet");
    create(
        &Api::<ClusterRole>::all(admin.clone()),
        json!({"metadata": {"name": "system:node"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
        ]}),
    )
    .await
    .expect("clusterrole");
    nodes
        .list(&ListParams::default())
        .await
        .expect("a node lists nodes");
    // Only a node: the same name outside the nodes group, or a node with
    // no name, gets nothing.
    let not_a_node: Api<Node> = Api::all(api.in_process_client("system:node:n1"));
    not_a_node
        .list(&ListParams::default())
        .await
        .expect_err("not in system:nodes");
    let unnamed: Api<Node> = Api::all(api.in_process_client_in("system:node:", &["system:nodes"]));
    assert_eq!(
        refusal(unnamed.list(&ListParams::default()).await).1,
        r#"nodes is forbidden: User "system:node:" cannot list resource "nodes" in API group "" at the cluster scope: unknown node for user "system:node:""#
    );
    Api::<Pod>::all(node)
        .list(&ListParams::default())
        .await
        .expect_err("system:node here grants nodes only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one long scenario: each escalation path in turn"
)]
async fn nobody_grants_what_they_do_not_hold() {
    let api = authorized_api().await;
    let admin = api.client().await.expect("admin");
    namespace(&admin, "a").await;
    // jane may manage roles and bindings in a, and read pods there (not
    // `*`, which would include `escalate` and `bind`).
    create(
        &Api::<Role>::namespaced(admin.clone(), "a"),
        role("a", "rbac-manager", json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "create", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        ])),
    )
    .await
    .expect("role");
    create(
        &Api::<RoleBinding>::namespaced(admin.clone(), "a"),
        binding("a", "jane-manages", "Role", "rbac-manager", user("jane")),
    )
    .await
    .expect("binding");
    create(
        &Api::<ClusterRole>::all(admin.clone()),
        json!({"metadata": {"name": "everything"}, "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ]}),
    )
    .await
    .expect("clusterrole");
    let jane = api.in_process_client("jane");
    let roles: Api<Role> = Api::namespaced(jane.clone(), "a");
    let bindings: Api<RoleBinding> = Api::namespaced(jane.clone(), "a");

    // A role with what she holds: fine.
    create(
        &roles,
        role(
            "a",
            "reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
        ),
    )
    .await
    .expect("a role within jane's rights");
    // More than she holds: refused, the missing rules listed.
    assert_eq!(
        refusal(
            create(&roles, role("a", "deleter", json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}])))
                .await
        ),
        (
            403,
            "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}".to_string()
        )
    );
    // An update is checked as a create.
    let mut reader = roles.get("reader").await.expect("reader");
    reader.rules.as_mut().expect("rules")[0].verbs = vec!["*".into()];
    let (code, msg) = refusal(
        roles
            .replace("reader", &PostParams::default(), &reader)
            .await,
    );
    assert_eq!(code, 403);
    assert!(
        msg.ends_with(
            "not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"*\"]}"
        ),
        "{msg}"
    );

    // Binding herself to everything: refused.
    let (code, msg) = refusal(
        create(
            &bindings,
            binding("a", "jane-all", "ClusterRole", "everything", user("jane")),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert!(
        msg.starts_with("rolebindings.rbac.authorization.k8s.io \"jane-all\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"),
        "{msg}"
    );
    // To a role that does not exist: not found.
    assert_eq!(
        refusal(
            create(
                &bindings,
                binding("a", "ghost", "ClusterRole", "missing", user("jane"))
            )
            .await
        ),
        (
            404,
            r#"clusterrole.rbac.authorization.k8s.io "missing" not found"#.to_string()
        )
    );
    // To a role she holds: fine.
    create(
        &bindings,
        binding("a", "joe-reads", "Role", "reader", user("joe")),
    )
    .await
    .expect("a binding within jane's rights");

    // With `bind` on the ClusterRole, she may bind it though she does not
    // hold it; with `escalate` on roles, she may write any role.
    create(
        &Api::<Role>::namespaced(admin.clone(), "a"),
        role("a", "delegate", json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["everything"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
        ])),
    )
    .await
    .expect("role");
    create(
        &Api::<RoleBinding>::namespaced(admin.clone(), "a"),
        binding("a", "jane-delegates", "Role", "delegate", user("jane")),
    )
    .await
    .expect("binding");
    create(
        &bindings,
        binding("a", "joe-all", "ClusterRole", "everything", user("joe")),
    )
    .await
    .expect("bind allows the binding");
    create(
        &roles,
        role(
            "a",
            "deleter",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]),
        ),
    )
    .await
    .expect("escalate allows the role");

    // Cluster-wide, jane holds nothing: no ClusterRoleBinding to anything.
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    create(
        &Api::<ClusterRole>::all(admin.clone()),
        json!({"metadata": {"name": "crb-writer"}, "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create"]},
        ]}),
    )
    .await
    .expect("clusterrole");
    create(
        &crbs,
        json!({
            "metadata": {"name": "jane-writes-crbs"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "crb-writer"},
            "subjects": user("jane"),
        }),
    )
    .await
    .expect("clusterrolebinding");
    let (code, msg) = refusal(
        create(
            &Api::<ClusterRoleBinding>::all(jane.clone()),
            json!({
                "metadata": {"name": "jane-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "everything"},
                "subjects": user("jane"),
            }),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "clusterrolebindings.rbac.authorization.k8s.io \"jane-admin\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"
    );
}
