//! Service-account tokens through the real kubectl: `kubectl create token`
//! (TokenRequest), the token authenticating, and the checks that refuse it;
//! the ServiceAccount admission of pods.

mod common;

use std::time::Duration;

use base64::Engine;
use common::Cluster;
use ferrokube_client::testing::wait::wait_until_blocking;
use serde_json::Value;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Namespace `team` whose service accounts may read its pods (bound to
/// `view`; authorization is on), once its `default` account exists: what
/// the tokens are tried on.
fn team_that_may_view(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", "team"]);
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "sa-view",
        "-n",
        "team",
        "--clusterrole=view",
        "--group=system:serviceaccounts:team",
    ]);
    wait_for_default_sa(c, "team");
}

fn wait_for_default_sa(c: &Cluster, ns: &str) {
    wait_until_blocking(
        &format!("the default service account in {ns}"),
        Duration::from_secs(30),
        common::POLL,
        || {
            c.kubectl(&["get", "serviceaccount", "default", "-n", ns])
                .status
                .success()
        },
    );
}

fn assert_unauthorized(c: &Cluster, token: &str, why: &str) {
    let out = c.kubectl_as(token, &["get", "pods", "-n", "team"]);
    assert!(!out.status.success(), "{why}: the token still works");
    assert!(
        stderr(&out).contains("Unauthorized"),
        "{why}: {}",
        stderr(&out)
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: tokens are made, then used and checked in turn on the same cluster"
)]
fn kubectl_create_token_gives_a_token_that_authenticates() {
    let c = Cluster::start();
    team_that_may_view(&c);

    let token = c
        .kubectl_ok(&["create", "token", "default", "-n", "team"])
        .trim()
        .to_string();
    let cl = claims(&token);
    assert_eq!(cl["sub"], "system:serviceaccount:team:default");
    assert_eq!(cl["iss"], ISSUER);
    assert_eq!(cl["aud"], serde_json::json!([ISSUER]));
    let (iat, exp) = (cl["iat"].as_i64().unwrap(), cl["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600, "an hour by default");
    assert_eq!(cl["nbf"], cl["iat"]);
    assert!(cl["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let sa_uid = c.kubectl_ok(&[
        "get",
        "sa",
        "default",
        "-n",
        "team",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert_eq!(cl["kubernetes.io"]["namespace"], "team");
    assert_eq!(cl["kubernetes.io"]["serviceaccount"]["name"], "default");
    assert_eq!(
        cl["kubernetes.io"]["serviceaccount"]["uid"],
        sa_uid.as_str()
    );

    // The token authenticates, as the service account.
    let out = c.kubectl_as(&token, &["get", "pods", "-n", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c.kubectl_as(&token, &["auth", "whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["kind"], "SelfSubjectReview");
    assert_eq!(
        review["status"]["userInfo"],
        serde_json::json!({
            "username": "system:serviceaccount:team:default",
            "uid": sa_uid,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": [format!("JTI={}", cl["jti"].as_str().unwrap())]},
        })
    );
    let me = c.kubectl_ok(&["auth", "whoami"]);
    assert!(me.contains("system:admin"), "{me}");

    // A longer lifetime, and another audience (not the API's: refused).
    let long = c.kubectl_ok(&["create", "token", "default", "-n", "team", "--duration=2h"]);
    let cl = claims(long.trim());
    assert_eq!(
        cl["exp"].as_i64().unwrap() - cl["iat"].as_i64().unwrap(),
        7200
    );
    let vault = c.kubectl_ok(&[
        "create",
        "token",
        "default",
        "-n",
        "team",
        "--audience=vault",
    ]);
    assert_eq!(claims(vault.trim())["aud"], serde_json::json!(["vault"]));
    assert_unauthorized(&c, vault.trim(), "a token for another audience");

    // A changed token.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut body = claims(&token);
    body["kubernetes.io"]["namespace"] = "kube-system".into();
    body["sub"] = "system:serviceaccount:kube-system:default".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string());
    assert_unauthorized(&c, &parts.join("."), "changed claims");
    let mut sig: Vec<char> = token.rsplit('.').next().unwrap().chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let forged = format!(
        "{}.{}",
        token.rsplit_once('.').unwrap().0,
        sig.into_iter().collect::<String>()
    );
    assert_unauthorized(&c, &forged, "a changed signature");
    assert_unauthorized(&c, "not.a.token", "junk");

    // Too short a lifetime: refused as Kubernetes does (422 Invalid).
    let out = c.kubectl(&["create", "token", "default", "-n", "team", "--duration=5m"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
        ),
        "{}",
        stderr(&out)
    );

    // A service account that does not exist.
    let out = c.kubectl(&["create", "token", "nobody", "-n", "team"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("serviceaccounts \"nobody\" not found"),
        "{}",
        stderr(&out)
    );

    // The subresource is in discovery.
    let core: Value = serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/api/v1"])).unwrap();
    let token_sub = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("serviceaccounts/token in /api/v1");
    assert_eq!(token_sub["kind"], "TokenRequest");
    assert_eq!(token_sub["group"], "authentication.k8s.io");
    assert_eq!(token_sub["verbs"], serde_json::json!(["create"]));
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: each step deletes what the tokens made before it are bound to"
)]
fn tokens_end_with_their_service_account_and_bound_pod() {
    let c = Cluster::start();
    team_that_may_view(&c);

    // The service account deleted and made again: another uid.
    c.kubectl_ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    let robot = c
        .kubectl_ok(&["create", "token", "robot", "-n", "team"])
        .trim()
        .to_string();
    let out = c.kubectl_as(&robot, &["get", "pods", "-n", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.kubectl_ok(&["delete", "serviceaccount", "robot", "-n", "team"]);
    c.kubectl_ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    assert_unauthorized(&c, &robot, "the service account was made again");

    // A token bound to a pod.
    c.kubectl_ok(&[
        "run",
        "web",
        "-n",
        "team",
        "--image=busybox:1.36",
        "--restart=Never",
    ]);
    let pod_uid = c.kubectl_ok(&[
        "get",
        "pod",
        "web",
        "-n",
        "team",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let bound = c
        .kubectl_ok(&[
            "create",
            "token",
            "default",
            "-n",
            "team",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
        ])
        .trim()
        .to_string();
    let cl = claims(&bound);
    assert_eq!(cl["kubernetes.io"]["pod"]["name"], "web");
    assert_eq!(cl["kubernetes.io"]["pod"]["uid"], pod_uid.as_str());
    let out = c.kubectl_as(&bound, &["get", "pods", "-n", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A wrong uid, a missing pod, a kind that cannot be bound.
    let out = c.kubectl(&[
        "create",
        "token",
        "default",
        "-n",
        "team",
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
        "--bound-object-uid=0000",
    ]);
    assert!(
        stderr(&out).contains("does not match the UID in record"),
        "{} {}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let out = c.kubectl(&[
        "create",
        "token",
        "default",
        "-n",
        "team",
        "--bound-object-kind=Pod",
        "--bound-object-name=ghost",
    ]);
    assert!(
        stderr(&out).contains("pods \"ghost\" not found"),
        "{}",
        stderr(&out)
    );
    let out = c.kubectl(&[
        "create",
        "token",
        "robot",
        "-n",
        "team",
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
    ]);
    assert!(
        stderr(&out).contains(
            "cannot bind token for serviceaccount \"robot\" to pod running with different serviceaccount name"
        ),
        "{}",
        stderr(&out)
    );
    let out = c.kubectl(&[
        "create",
        "token",
        "default",
        "-n",
        "team",
        "--bound-object-kind=Node",
        "--bound-object-name=n1",
    ]);
    assert!(
        stderr(&out).contains(
            "cannot bind token for serviceaccount \"default\" to object of type /v1, Kind=Node"
        ),
        "{}",
        stderr(&out)
    );
    c.kubectl_ok(&["delete", "pod", "web", "-n", "team", "--wait"]);
    assert_unauthorized(&c, &bound, "the bound pod was deleted");

    // A token bound to a secret ends with the secret.
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "key",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    let by_secret = c
        .kubectl_ok(&[
            "create",
            "token",
            "default",
            "-n",
            "team",
            "--bound-object-kind=Secret",
            "--bound-object-name=key",
        ])
        .trim()
        .to_string();
    assert_eq!(claims(&by_secret)["kubernetes.io"]["secret"]["name"], "key");
    let out = c.kubectl_as(&by_secret, &["get", "pods", "-n", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.kubectl_ok(&["delete", "secret", "key", "-n", "team"]);
    assert_unauthorized(&c, &by_secret, "the bound secret was deleted");

    // The server restarted: the same key, the token still good.
    let token = c
        .kubectl_ok(&["create", "token", "default", "-n", "team"])
        .trim()
        .to_string();
    let mut c = c;
    c.restart();
    let out = c.kubectl_as(&token, &["get", "pods", "-n", "team"]);
    assert!(out.status.success(), "after a restart: {}", stderr(&out));
}

#[test]
fn pods_get_their_service_account_and_its_token_volume() {
    let c = Cluster::start();
    c.kubectl_ok(&["create", "namespace", "team"]);
    wait_for_default_sa(&c, "team");
    c.kubectl_ok(&[
        "run",
        "web",
        "-n",
        "team",
        "--image=busybox:1.36",
        "--restart=Never",
    ]);
    let pod: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "pod", "web", "-n", "team", "-o", "json"]))
            .unwrap();
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volumes = spec["volumes"].as_array().expect("volumes");
    assert_eq!(volumes.len(), 1);
    let name = volumes[0]["name"].as_str().unwrap();
    let suffix = name.strip_prefix("kube-api-access-").expect(name);
    assert_eq!(suffix.len(), 5);
    assert!(suffix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    let projected = &volumes[0]["projected"];
    assert_eq!(projected["defaultMode"], 420);
    assert_eq!(
        projected["sources"],
        serde_json::json!([
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ])
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        serde_json::json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );

    // Opted out on the pod, or on its service account.
    let manifest = c.data_dir().join("pods.yaml");
    std::fs::write(
        &manifest,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: quiet, namespace: team}
automountServiceAccountToken: false
---
apiVersion: v1
kind: Pod
metadata: {name: no-token, namespace: team}
spec:
  automountServiceAccountToken: false
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: quiet, namespace: team}
spec:
  serviceAccountName: quiet
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: ghost, namespace: team}
spec:
  serviceAccountName: ghost
  containers: [{name: c, image: busybox:1.36}]
"#,
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    for pod in ["no-token", "quiet", "ghost"] {
        let volumes = c.kubectl_ok(&[
            "get",
            "pod",
            pod,
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.volumes}",
        ]);
        assert_eq!(volumes, "", "{pod} gets no token volume");
    }
    let sa = c.kubectl_ok(&[
        "get",
        "pod",
        "ghost",
        "-n",
        "team",
        "-o",
        "jsonpath={.spec.serviceAccountName}",
    ]);
    assert_eq!(
        sa, "ghost",
        "a pod of a missing service account is admitted"
    );
}
