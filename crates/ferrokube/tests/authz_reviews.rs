//! The review APIs, impersonation and service-account issuer discovery
//! through the real kubectl (and the official Python client): `kubectl auth
//! can-i` (SelfSubjectAccessReview, sent as protobuf), `can-i --list`
//! (SelfSubjectRulesReview), `--as` / `--as-group` / `--as-uid` with `kubectl
//! auth whoami`, TokenReview of a pod's service-account token,
//! LocalSubjectAccessReview's namespace check, and the OIDC discovery
//! document and key set that verify a token `kubectl create token` made.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{kubectl_with, Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::{json, Value};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kubectl create -f` of `obj` (written to a file), answered as JSON.
/// Client-side validation is off: kubectl would look the create-only kinds
/// up among CustomResourceDefinitions, which are not served.
fn create(c: &Cluster, obj: &Value, extra: &[&str]) -> Output {
    let path = c.data_dir().join(format!("review-{}.json", rand_suffix()));
    std::fs::write(&path, obj.to_string()).expect("write the review");
    let file = path.display().to_string();
    let mut args = vec!["create", "--validate=false", "-f", file.as_str()];
    args.extend_from_slice(extra);
    let out = c.kubectl(&args);
    let _ = std::fs::remove_file(&path);
    out
}

fn create_ok(c: &Cluster, obj: &Value) -> Value {
    let out = create(c, obj, &["-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("a JSON review")
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn token_review(c: &Cluster, token: &str, audiences: &[&str]) -> Value {
    let mut spec = json!({"token": token});
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    create_ok(
        c,
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}),
    )
}

fn wait_for_default_sa(c: &Cluster, ns: &str) {
    wait_until_blocking(
        &format!("the default service account of {ns}"),
        Duration::from_secs(30),
        POLL,
        || {
            c.kubectl(&["get", "serviceaccount", "default", "-n", ns])
                .status
                .success()
        },
    );
}

#[test]
fn can_i_whoami_and_impersonation() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "a"]);

    // SelfSubjectAccessReview: kubectl prints yes and exits 0.
    let out = c.kubectl(&["auth", "can-i", "list", "pods", "-n", "a"]);
    assert_eq!(stdout(&out), "yes\n", "{}", stderr(&out));
    assert!(out.status.success());
    let out = c.kubectl(&["auth", "can-i", "get", "/healthz"]);
    assert_eq!(stdout(&out), "yes\n", "{}", stderr(&out));

    // SelfSubjectRulesReview: the admin's rules, as kubectl tabulates them.
    let list = c.kubectl_ok(&["auth", "can-i", "--list", "-n", "a"]);
    let mut lines = list.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ]),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "{list}"
    );

    // Impersonation: whoami as jane, with groups and a uid.
    let who = c.kubectl_ok(&["auth", "whoami", "--as", "jane", "--as-group", "devs"]);
    assert_eq!(
        who,
        "ATTRIBUTE   VALUE\nUsername    jane\nGroups      [devs system:authenticated]\n"
    );
    let who = c.kubectl_ok(&[
        "auth",
        "whoami",
        "--as",
        "jane",
        "--as-uid",
        "1234",
        "-o",
        "jsonpath={.status.userInfo}",
    ]);
    let info: Value = serde_json::from_str(&who).expect("userInfo");
    assert_eq!(
        info,
        json!({"username": "jane", "uid": "1234", "groups": ["system:authenticated"]})
    );
    // A service account: its groups.
    let who = c.kubectl_ok(&[
        "auth",
        "whoami",
        "--as",
        "system:serviceaccount:a:robot",
        "-o",
        "jsonpath={.status.userInfo.groups}",
    ]);
    assert_eq!(
        who,
        r#"["system:serviceaccounts","system:serviceaccounts:a","system:authenticated"]"#
    );
    // Requests go on as the impersonated user (allowed by her binding
    // when the server runs RBAC).
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "jane-edit",
        "-n",
        "a",
        "--clusterrole=edit",
        "--user=jane",
    ]);
    c.kubectl_ok(&[
        "create",
        "configmap",
        "made-by-jane",
        "-n",
        "a",
        "--as",
        "jane",
    ]);
    let out = c.kubectl(&["auth", "can-i", "create", "pods", "-n", "a", "--as", "jane"]);
    assert_eq!(stdout(&out), "yes\n", "{}", stderr(&out));

    // A group without a user: kubectl refuses it itself; the server as
    // Kubernetes does (a plain-text 500).
    let out = c.kubectl(&["get", "pods", "--as-group", "devs"]);
    assert!(!out.status.success());
    let token = std::fs::read_to_string(c.data_dir().join("tls/admin.token"))
        .expect("the admin token")
        .trim()
        .to_string();
    let url = format!("https://127.0.0.1:{}/api/v1/namespaces/a/pods", c.port);
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(c.data_dir().join("tls/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Impersonate-Group: system:masters", &url])
        .output()
        .expect("run curl");
    assert_eq!(
        stdout(&out),
        "Internal Server Error: \"/api/v1/namespaces/a/pods\": requested [{Group  system:masters    }] without impersonating a user\n\n500"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: reviews of the tokens made earlier in the test, on one server"
)]
fn token_reviews_local_reviews_and_issuer_discovery() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "a"]);
    wait_for_default_sa(&c, "a");
    c.kubectl_ok(&["run", "p", "-n", "a", "--image=busybox:1.35"]);
    let pod_uid = c.kubectl_ok(&[
        "get",
        "pod",
        "p",
        "-n",
        "a",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let sa_uid = c.kubectl_ok(&[
        "get",
        "sa",
        "default",
        "-n",
        "a",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);

    // A pod's token authenticates as its service account, with the pod.
    let token = c.kubectl_ok(&[
        "create",
        "token",
        "default",
        "-n",
        "a",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "p",
    ]);
    let token = token.trim();
    let jti = {
        let claims = token.split('.').nth(1).expect("a JWT");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64url"))
                .expect("claims");
        claims["jti"].as_str().expect("jti").to_string()
    };
    let review = token_review(&c, token, &[]);
    assert_eq!(review["kind"], "TokenReview");
    assert_eq!(
        review["status"],
        json!({
            "authenticated": true,
            "audiences": [ISSUER],
            "user": {
                "username": "system:serviceaccount:a:default",
                "uid": sa_uid,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/credential-id": [format!("JTI={jti}")],
                    "authentication.kubernetes.io/pod-name": ["p"],
                    "authentication.kubernetes.io/pod-uid": [pod_uid],
                },
            },
        })
    );
    // A bad token does not.
    let review = token_review(&c, "not-a-token", &[]);
    assert_eq!(
        review["status"],
        json!({"user": {}, "error": "invalid bearer token"})
    );
    let mut forged = token.to_string();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let review = token_review(&c, &forged, &[]);
    assert_eq!(review["status"]["authenticated"], Value::Null, "{review}");
    // Audiences: a token for another audience is valid for it only.
    let vault = c.kubectl_ok(&[
        "create",
        "token",
        "default",
        "-n",
        "a",
        "--audience",
        "vault",
    ]);
    let review = token_review(&c, vault.trim(), &["vault", "other"]);
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(review["status"]["audiences"], json!(["vault"]));
    let review = token_review(&c, vault.trim(), &[]);
    assert_eq!(
        review["status"],
        json!({"user": {}, "error": format!("token audiences [\"vault\"] is invalid for the target audiences [\"{ISSUER}\"]")})
    );

    // SubjectAccessReview about another user, and the local one.
    let sar = create_ok(
        &c,
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "jane", "groups": ["devs"],
                         "resourceAttributes": {"namespace": "a", "verb": "get", "resource": "pods"}}}),
    );
    assert_eq!(sar["kind"], "SubjectAccessReview");
    assert!(sar["status"]["allowed"].is_boolean(), "{sar}");
    let lsar = |ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
               "spec": {"user": "jane",
                        "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}}})
    };
    let out = create(
        &c,
        &lsar("a"),
        &["-n", "a", "-o", "jsonpath={.metadata.namespace}"],
    );
    assert_eq!(stdout(&out), "a", "{}", stderr(&out));
    let out = create(&c, &lsar("b"), &["-n", "a"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "The request is invalid: spec.resourceAttributes.namespace: Invalid value: \"b\": must match metadata.namespace\n"
    );
    // Without a user or group, as Kubernetes words it.
    let out = create(
        &c,
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}),
        &[],
    );
    assert_eq!(
        stderr(&out),
        "The request is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified\n"
    );

    // Issuer discovery: the document names our issuer and the key set,
    // whose key verifies the token kubectl made.
    let config: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/.well-known/openid-configuration"]))
            .expect("the discovery document");
    assert_eq!(
        config,
        json!({
            "issuer": ISSUER,
            "jwks_uri": format!("https://127.0.0.1:{}/openid/v1/jwks", c.port),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    );
    let jwks: Value = serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"]))
        .expect("the key set");
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64url"))
            .expect("header");
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .expect("the token's key is served");
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
    let coord = |c: &str| {
        URL_SAFE_NO_PAD
            .decode(key[c].as_str().expect("a coordinate"))
            .expect("base64url")
    };
    let mut point = vec![4u8];
    point.extend(coord("x"));
    point.extend(coord("y"));
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the served key verifies kubectl's token");
    assert!(
        public
            .verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &signature)
            .is_err(),
        "and nothing else"
    );

    // The official Python client asks the same questions.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/reviews_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .arg(token)
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && stdout(&out).contains("python reviews: ok"),
        "python client failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A kubeconfig for `user`, with a client certificate of the cluster CA.
fn kubeconfig_for(c: &Cluster, user: &str) -> PathBuf {
    let dir = c.data_dir().join(format!("user-{user}"));
    std::fs::create_dir_all(&dir).expect("user dir");
    let (cert, key) = ferrokube_apiserver::pki::issue_client_certificate(c.data_dir(), user, &[])
        .expect("client certificate");
    std::fs::write(dir.join("user.crt"), cert).expect("write cert");
    std::fs::write(dir.join("user.key"), key).expect("write key");
    let kubeconfig = dir.join("kubeconfig.yaml");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": format!("https://127.0.0.1:{}", c.port),
            "certificate-authority": c.data_dir().join("tls/ca.crt"),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate": dir.join("user.crt"),
            "client-key": dir.join("user.key"),
        }}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": user}}],
        "current-context": "c",
    });
    std::fs::write(&kubeconfig, config.to_string()).expect("write kubeconfig");
    kubeconfig
}

/// The rows of a `kubectl auth can-i --list` table, each as its cells.
fn rows(table: &str) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or("");
    // Cells start where the header's columns start.
    let starts: Vec<usize> = ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]
        .iter()
        .map(|h| header.find(h).expect("a column of kubectl's table"))
        .collect();
    lines
        .map(|l| {
            (0..starts.len())
                .map(|i| {
                    let end = starts.get(i + 1).copied().unwrap_or(l.len()).min(l.len());
                    l.get(starts[i].min(l.len())..end)
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: roles granted step by step, each checked with kubectl auth can-i"
)]
fn rbac_answers_can_i_and_guards_impersonation() {
    let c = Cluster::start_with(&["--authorization-mode", "Node,RBAC"]);
    c.kubectl_ok(&["create", "namespace", "a"]);
    c.kubectl_ok(&["create", "namespace", "b"]);
    c.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "a",
        "--verb=get,list",
        "--resource=pods",
    ]);
    c.kubectl_ok(&[
        "create",
        "role",
        "one-config",
        "-n",
        "a",
        "--verb=get",
        "--resource=configmaps",
        "--resource-name=settings",
    ]);
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "jane-pods",
        "-n",
        "a",
        "--role=pod-reader",
        "--user=jane",
    ]);
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "jane-config",
        "-n",
        "a",
        "--role=one-config",
        "--user=jane",
    ]);

    // can-i: yes and exit 0 where the binding lets her, no and exit 1
    // elsewhere.
    let out = c.kubectl(&["auth", "can-i", "list", "pods", "--as", "jane", "-n", "a"]);
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("yes\n", Some(0)),
        "{}",
        stderr(&out)
    );
    let out = c.kubectl(&["auth", "can-i", "list", "pods", "--as", "jane", "-n", "b"]);
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("no\n", Some(1)),
        "{}",
        stderr(&out)
    );
    let out = c.kubectl(&[
        "auth",
        "can-i",
        "get",
        "configmaps/other",
        "--as",
        "jane",
        "-n",
        "a",
    ]);
    assert_eq!(stdout(&out), "no\n", "{}", stderr(&out));
    let out = c.kubectl(&[
        "auth",
        "can-i",
        "get",
        "configmaps/settings",
        "--as",
        "jane",
        "-n",
        "a",
    ]);
    assert_eq!(stdout(&out), "yes\n", "{}", stderr(&out));

    // can-i --list: her rules in a, with those every authenticated user
    // holds (system:basic-user, system:discovery, system:public-info-viewer).
    let list = c.kubectl_ok(&["auth", "can-i", "--list", "--as", "jane", "-n", "a"]);
    assert!(
        list.starts_with("Resources ") && list.lines().next().unwrap_or("").ends_with("Verbs"),
        "{list}"
    );
    let mut got = rows(&list);
    got.sort();
    let row = |r: &str, u: &str, n: &str, v: &str| -> Vec<String> {
        [r, u, n, v].iter().map(|s| s.to_string()).collect()
    };
    let mut want = vec![
        row(
            "selfsubjectreviews.authentication.k8s.io",
            "[]",
            "[]",
            "[create]",
        ),
        row(
            "selfsubjectaccessreviews.authorization.k8s.io",
            "[]",
            "[]",
            "[create]",
        ),
        row(
            "selfsubjectrulesreviews.authorization.k8s.io",
            "[]",
            "[]",
            "[create]",
        ),
        row("pods", "[]", "[]", "[get list]"),
        row("configmaps", "[]", "[settings]", "[get]"),
    ];
    for url in [
        "/api/*",
        "/api",
        "/apis/*",
        "/apis",
        "/openapi/*",
        "/openapi",
        "/version/",
        "/version",
        "/healthz",
        "/livez",
        "/readyz",
    ] {
        want.push(row("", &format!("[{url}]"), "[]", "[get]"));
    }
    for url in ["/healthz", "/livez", "/readyz", "/version/", "/version"] {
        want.push(row("", &format!("[{url}]"), "[]", "[get]"));
    }
    want.sort();
    assert_eq!(got, want, "{list}");

    // Impersonation is authorized: bob may not act as jane until a role
    // lets him, and then only as her.
    let bob = kubeconfig_for(&c, "bob");
    let out = kubectl_with(&bob, &["get", "pods", "-n", "a", "--as", "jane"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "Error from server (Forbidden): users \"jane\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope\n"
    );
    let out = kubectl_with(
        &bob,
        &[
            "get",
            "pods",
            "-n",
            "a",
            "--as",
            "system:serviceaccount:a:robot",
        ],
    );
    assert_eq!(
        stderr(&out),
        "Error from server (Forbidden): serviceaccounts \"robot\" is forbidden: User \"bob\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"a\"\n"
    );
    c.kubectl_ok(&[
        "create",
        "clusterrole",
        "impersonate-jane",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=jane",
    ]);
    c.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "bob-as-jane",
        "--clusterrole=impersonate-jane",
        "--user=bob",
    ]);
    let out = kubectl_with(&bob, &["get", "pods", "-n", "a", "--as", "jane"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kubectl_with(&bob, &["get", "pods", "-n", "b", "--as", "jane"]);
    assert_eq!(
        stderr(&out),
        "Error from server (Forbidden): pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"b\"\n"
    );
    let out = kubectl_with(
        &bob,
        &[
            "get",
            "pods",
            "-n",
            "a",
            "--as",
            "jane",
            "--as-group",
            "admins",
        ],
    );
    assert_eq!(
        stderr(&out),
        "Error from server (Forbidden): groups \"admins\" is forbidden: User \"bob\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope\n"
    );
    let out = kubectl_with(
        &bob,
        &[
            "auth",
            "whoami",
            "--as",
            "jane",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(stdout(&out), "jane", "{}", stderr(&out));

    // Issuer discovery is for service accounts
    // (system:service-account-issuer-discovery), not for jane.
    wait_for_default_sa(&c, "a");
    let token = c.kubectl_ok(&["create", "token", "default", "-n", "a"]);
    for path in ["/.well-known/openid-configuration", "/openid/v1/jwks"] {
        let out = c.kubectl_as(token.trim(), &["get", "--raw", path]);
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let out = c.kubectl(&["get", "--raw", path, "--as", "jane"]);
        assert_eq!(
            stderr(&out),
            format!("Error from server (Forbidden): forbidden: User \"jane\" cannot get path \"{path}\"\n")
        );
    }
}
