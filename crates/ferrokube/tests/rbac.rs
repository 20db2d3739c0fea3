//! RBAC with the real kubectl, on a server run with
//! `--authorization-mode Node,RBAC` and the bootstrap policy: a user with a client certificate of
//! the cluster CA (`CN=jane`), or the admin with `--as jane`, sees
//! Kubernetes' refusals word for word; jane works where a RoleBinding lets
//! her, and cannot grant herself more.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{kubectl_with, Cluster};

/// A kubeconfig for `user`, with a client certificate signed by the
/// cluster CA.
fn kubeconfig_for(c: &Cluster, user: &str) -> PathBuf {
    let dir = c.data_dir().join(format!("user-{user}"));
    std::fs::create_dir_all(&dir).expect("user dir");
    let (cert, key) = ferrokube_apiserver::pki::issue_client_certificate(c.data_dir(), user, &[])
        .expect("client certificate");
    std::fs::write(dir.join("user.crt"), cert).expect("write cert");
    std::fs::write(dir.join("user.key"), key).expect("write key");
    let kubeconfig = dir.join("kubeconfig.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {dir}/user.crt
    client-key: {dir}/user.key
contexts:
- name: c
  context: {{cluster: c, user: {user}}}
current-context: c
",
            port = c.port,
            ca = c.data_dir().join("tls/ca.crt").display(),
            dir = dir.display(),
        ),
    )
    .expect("write kubeconfig");
    kubeconfig
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_string()
}

fn refused(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr(&out)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "kubectl failed: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(c: &Cluster, name: &str, yaml: &str) {
    let path = c.data_dir().join(name);
    std::fs::write(&path, yaml).expect("write manifest");
    c.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]);
}

/// The right to write RoleBindings in `a`, which `edit` does not give.
const BINDER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: a}
rules:
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["create", "get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-binds, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
"#;

#[test]
fn jane_works_where_a_binding_lets_her_and_cannot_grant_herself_more() {
    let c = Cluster::start_with(&["--authorization-mode", "Node,RBAC"]);
    c.kubectl_ok(&["create", "namespace", "a"]);
    c.kubectl_ok(&["create", "namespace", "b"]);
    let jane = kubeconfig_for(&c, "jane");

    // Nothing is granted to jane yet.
    assert_eq!(
        refused(kubectl_with(&jane, &["-n", "b", "get", "pods"])),
        r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b""#
    );
    // The admin acting as jane (`--as`) sees the same.
    assert_eq!(
        refused(c.kubectl(&["--as", "jane", "-n", "b", "get", "pods"])),
        r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b""#
    );
    assert_eq!(
        refused(kubectl_with(&jane, &["get", "nodes"])),
        r#"Error from server (Forbidden): nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#
    );

    // The bootstrap policy's `edit` in a, and the right to bind there.
    apply(&c, "binder.yaml", BINDER);
    let edit = "--clusterrole=edit";
    c.kubectl_ok(&[
        "-n",
        "a",
        "create",
        "rolebinding",
        "jane-edits",
        edit,
        "--user=jane",
    ]);

    ok(kubectl_with(
        &jane,
        &[
            "-n",
            "a",
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=fast",
        ],
    ));
    let listed = ok(kubectl_with(
        &jane,
        &["-n", "a", "get", "configmaps", "-o", "name"],
    ));
    assert!(listed.contains("configmap/settings"), "{listed}");
    ok(kubectl_with(
        &jane,
        &["-n", "a", "delete", "configmap", "settings"],
    ));
    // Nowhere else.
    assert_eq!(
        refused(kubectl_with(
            &jane,
            &[
                "-n",
                "b",
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=fast"
            ]
        )),
        // (kubectl's own wording around the server's message)
        r#"error: failed to create configmap: configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "b""#
    );
    assert_eq!(
        refused(kubectl_with(
            &jane,
            &["-n", "b", "get", "configmap", "kube-root-ca.crt"]
        )),
        r#"Error from server (Forbidden): configmaps "kube-root-ca.crt" is forbidden: User "jane" cannot get resource "configmaps" in API group "" in the namespace "b""#
    );

    // Granting herself cluster-admin: no ClusterRoleBinding at all, and a
    // RoleBinding only of what she holds.
    assert_eq!(
        refused(kubectl_with(
            &jane,
            &[
                "create",
                "clusterrolebinding",
                "jane-admin",
                "--clusterrole=cluster-admin",
                "--user=jane"
            ]
        )),
        r#"error: failed to create clusterrolebinding: clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "jane" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#
    );
    assert_eq!(
        refused(kubectl_with(&jane, &["-n", "a", "create", "rolebinding", "jane-admin", "--clusterrole=cluster-admin", "--user=jane"])),
        "error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io \"jane-admin\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"
    );
    // Binding someone to what she holds herself is hers to do.
    ok(kubectl_with(
        &jane,
        &[
            "-n",
            "a",
            "create",
            "rolebinding",
            "joe-edits",
            edit,
            "--user=joe",
        ],
    ));
}
