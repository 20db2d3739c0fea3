//! The serving layer seen by the real kubectl: a client certificate the
//! cluster CA did not sign is not a handshake failure but an unauthenticated
//! request (401 `Unauthorized`, as Kubernetes answers), the open endpoints
//! stay open to it, and a valid bearer token next to it still authenticates.
//! And, through curl: HTTP/2 by ALPN, the exact 401 `Status` body, open
//! health and version endpoints.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use ferrokube_apiserver::{start, ServerConfig};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::{
    DeleteResponse, GetResponse, KeyValue, LeaseId, RangeRequest, RangeResponse,
    Result as StoreResult, Revision, Store, StoreError, WatchStream,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_util::sync::CancellationToken;

/// Cancels the server when the test ends, also on failure.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A client certificate for `system:admin` in `system:masters`, signed by a
/// CA of its own that the server has never seen.
fn foreign_client_cert() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "someone-else-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "system:admin");
    p.distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The server's kubeconfig with its client certificate and key replaced.
fn kubeconfig_with_cert(original: &Path, dir: &Path, cert: &str, key: &str) -> PathBuf {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let text = std::fs::read_to_string(original).unwrap();
    let replaced: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("client-certificate-data:") {
                format!("    client-certificate-data: {}", b64(cert))
            } else if l.trim_start().starts_with("client-key-data:") {
                format!("    client-key-data: {}", b64(key))
            } else {
                l.to_string()
            }
        })
        .collect();
    let path = dir.join("foreign.kubeconfig");
    std::fs::write(&path, replaced.join("\n") + "\n").unwrap();
    path
}

/// The embedded store, with a switch that makes `current_revision` fail as
/// an unreachable datastore would.
struct Switchable {
    inner: Arc<dyn Store>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for Switchable {
    async fn get(&self, key: &str, revision: Option<Revision>) -> StoreResult<GetResponse> {
        self.inner.get(key, revision).await
    }
    async fn range(&self, req: RangeRequest) -> StoreResult<RangeResponse> {
        self.inner.range(req).await
    }
    async fn count(&self, prefix: &str) -> StoreResult<(i64, Revision)> {
        self.inner.count(prefix).await
    }
    async fn create(
        &self,
        key: &str,
        value: bytes::Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<KeyValue> {
        self.inner.create(key, value, lease).await
    }
    async fn update(
        &self,
        key: &str,
        value: bytes::Bytes,
        expected: Revision,
        lease: Option<LeaseId>,
    ) -> StoreResult<KeyValue> {
        self.inner.update(key, value, expected, lease).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<DeleteResponse> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, start: Revision) -> StoreResult<WatchStream> {
        self.inner.watch(prefix, start).await
    }
    async fn current_revision(&self) -> StoreResult<Revision> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("switched off by the test".into()));
        }
        self.inner.current_revision().await
    }
    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.inner.compact(revision).await
    }
    async fn compacted_revision(&self) -> StoreResult<Revision> {
        self.inner.compacted_revision().await
    }
    async fn lease_grant(&self, ttl: i64) -> StoreResult<LeaseId> {
        self.inner.lease_grant(ttl).await
    }
    async fn lease_revoke(&self, lease: LeaseId) -> StoreResult<()> {
        self.inner.lease_revoke(lease).await
    }
    fn backend_name(&self) -> &'static str {
        "switchable"
    }
}

async fn start_server() -> (
    tempfile::TempDir,
    CancellationToken,
    ferrokube_apiserver::RunningServer,
) {
    let (dir, cancel, server, _) = start_switchable_server().await;
    (dir, cancel, server)
}

async fn start_switchable_server() -> (
    tempfile::TempDir,
    CancellationToken,
    ferrokube_apiserver::RunningServer,
    Arc<Switchable>,
) {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> =
        EmbeddedStore::open(&dir.path().join("db"), EmbeddedOptions::default())
            .await
            .unwrap();
    let switchable = Arc::new(Switchable {
        inner,
        down: Default::default(),
    });
    let store: Arc<dyn Store> = switchable.clone();
    let cancel = CancellationToken::new();
    let server = start(
        ServerConfig {
            authorization_modes: vec![ferrokube_apiserver::authz::Mode::AlwaysAllow],
            ..ServerConfig::for_tests(dir.path().to_path_buf())
        },
        store,
        cancel.clone(),
    )
    .await
    .unwrap();
    (dir, cancel, server, switchable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_datastore_does_not_answer() {
    let (dir, cancel, server, store) = start_switchable_server().await;
    let _stop = StopOnDrop(cancel.clone());
    let ca = dir.path().join("tls/ca.crt");
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ca2, base2) = (ca.clone(), base.clone());
    let (readyz, livez) = tokio::task::spawn_blocking(move || {
        (
            curl(&ca2, &format!("{base2}/readyz"), &[]),
            curl(&ca2, &format!("{base2}/livez"), &[]),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        (readyz.1, readyz.2.as_str()),
        (
            500,
            "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n"
        ),
        "{readyz:?}"
    );
    assert_eq!(
        (livez.1, livez.2.as_str()),
        (200, "ok"),
        "the process is alive"
    );
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let again = tokio::task::spawn_blocking(move || curl(&ca, &format!("{base}/readyz"), &[]))
        .await
        .unwrap();
    assert_eq!((again.1, again.2.as_str()), (200, "ok"), "{again:?}");
    cancel.cancel();
    server.join().await;
}

/// curl against the server, trusting the cluster CA; returns the HTTP
/// version, the status code and the body.
fn curl(ca: &Path, url: &str, extra: &[&str]) -> (String, u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_version} %{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (version, code) = tail.split_once(' ').unwrap();
    (version.to_string(), code.parse().unwrap(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_status_bodies_and_open_endpoints_over_curl() {
    let (dir, cancel, server) = start_server().await;
    let _stop = StopOnDrop(cancel.clone());
    let ca = dir.path().join("tls/ca.crt");
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let token = server.pki.admin_token.clone();
    let results = tokio::task::spawn_blocking(move || {
        let auth = format!("Authorization: Bearer {token}");
        (
            curl(&ca, &format!("{base}/version"), &["--http2"]),
            curl(&ca, &format!("{base}/api"), &["--http2"]),
            curl(&ca, &format!("{base}/api"), &["--http1.1", "-H", &auth]),
            curl(&ca, &format!("{base}/readyz?verbose"), &[]),
            curl(&ca, &format!("{base}/livez"), &[]),
            curl(&ca, &format!("{base}/healthz?verbose&exclude=etcd"), &[]),
            curl(&ca, &format!("{base}/readyz/etcd"), &[]),
            curl(&ca, &format!("{base}/readyz/nonsense"), &[]),
        )
    })
    .await
    .unwrap();
    let (version, unauth, authed, readyz, livez, healthz_ex, etcd, nonsense) = results;

    // HTTP/2 is negotiated by ALPN; /version needs no credentials.
    assert_eq!((version.0.as_str(), version.1), ("2", 200), "{version:?}");
    let v: serde_json::Value = serde_json::from_str(&version.2).unwrap();
    assert_eq!(v["major"], "1");
    assert_eq!(
        v["gitVersion"],
        format!("v1.{}.0+ferrokube", v["minor"].as_str().unwrap())
    );
    assert_eq!(
        v["platform"].as_str().map(|p| p.starts_with("linux/")),
        Some(true)
    );

    // Without credentials: Kubernetes' 401 Status, to the letter.
    assert_eq!(unauth.1, 401, "{unauth:?}");
    let status: serde_json::Value = serde_json::from_str(&unauth.2).unwrap();
    assert_eq!(
        status,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    // The admin token over HTTP/1.1 reads the API versions.
    assert_eq!((authed.0.as_str(), authed.1), ("1.1", 200), "{authed:?}");
    let api: serde_json::Value = serde_json::from_str(&authed.2).unwrap();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], serde_json::json!(["v1"]));

    // Health: Kubernetes' check listings.
    assert_eq!(
        (readyz.1, readyz.2.as_str()),
        (200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"),
        "{readyz:?}"
    );
    assert_eq!((livez.1, livez.2.as_str()), (200, "ok"), "{livez:?}");
    assert_eq!(
        (healthz_ex.1, healthz_ex.2.as_str()),
        (200, "[+]ping ok\nhealthz check passed\n"),
        "{healthz_ex:?}"
    );
    assert_eq!((etcd.1, etcd.2.as_str()), (200, "ok"), "{etcd:?}");
    assert_eq!(nonsense.1, 404, "{nonsense:?}");

    cancel.cancel();
    server.join().await;
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_unauthorized_not_a_tls_error() {
    let (dir, cancel, server) = start_server().await;
    let _stop = StopOnDrop(cancel.clone());
    let (cert, key) = foreign_client_cert();
    let foreign = kubeconfig_with_cert(&server.kubeconfig, dir.path(), &cert, &key);
    let admin_kubeconfig = server.kubeconfig.clone();
    let token = server.pki.admin_token.clone();

    let outputs = tokio::task::spawn_blocking(move || {
        (
            kubectl(
                &admin_kubeconfig,
                &["get", "namespace", "default", "-o", "name"],
            ),
            kubectl(&foreign, &["get", "namespaces"]),
            kubectl(&foreign, &["get", "--raw", "/api"]),
            kubectl(&foreign, &["get", "--raw", "/healthz"]),
            kubectl(
                &foreign,
                &[
                    "--token",
                    &token,
                    "get",
                    "namespace",
                    "default",
                    "-o",
                    "name",
                ],
            ),
        )
    })
    .await
    .unwrap();
    let (admin, get_ns, raw_api, healthz, with_token) = outputs;
    let text = |o: &std::process::Output| {
        format!(
            "status {:?}\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // The cluster's own admin certificate works.
    assert!(admin.status.success(), "{}", text(&admin));
    assert_eq!(
        String::from_utf8_lossy(&admin.stdout).trim(),
        "namespace/default"
    );

    // The foreign certificate is refused as Kubernetes refuses it.
    assert!(!get_ns.status.success(), "{}", text(&get_ns));
    let err = String::from_utf8_lossy(&get_ns.stderr);
    assert!(
        err.contains("You must be logged in to the server")
            && err.contains("Unauthorized")
            && !err.contains("tls:"),
        "{}",
        text(&get_ns)
    );
    // kubectl --raw prints the Status body of the 401.
    assert!(!raw_api.status.success(), "{}", text(&raw_api));
    let raw_err = String::from_utf8_lossy(&raw_api.stderr);
    assert!(raw_err.contains("Unauthorized"), "{}", text(&raw_api));

    // Open endpoints answer it.
    assert!(healthz.status.success(), "{}", text(&healthz));
    assert_eq!(String::from_utf8_lossy(&healthz.stdout).trim(), "ok");

    // A valid bearer token authenticates even with the foreign certificate.
    assert!(with_token.status.success(), "{}", text(&with_token));
    assert_eq!(
        String::from_utf8_lossy(&with_token.stdout).trim(),
        "namespace/default"
    );

    cancel.cancel();
    server.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_answer_with_kubernetes_statuses() {
    let (dir, cancel, server) = start_server().await;
    let _stop = StopOnDrop(cancel.clone());
    let ca = dir.path().join("tls/ca.crt");
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let admin = server.pki.admin_token.clone();
    let results = tokio::task::spawn_blocking(move || {
        let auth = format!("Authorization: Bearer {admin}");
        let post = |path: &str, body: &str| {
            curl(
                &ca,
                &format!("{base}{path}"),
                &[
                    "-X",
                    "POST",
                    "-H",
                    &auth,
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    body,
                ],
            )
        };
        let token_path = "/api/v1/namespaces/default/serviceaccounts/robot/token";
        let sa = post(
            "/api/v1/namespaces/default/serviceaccounts",
            r#"{"metadata": {"name": "robot"}}"#,
        );
        let short = post(token_path, r#"{"spec": {"expirationSeconds": 300}}"#);
        let missing = post(
            "/api/v1/namespaces/default/serviceaccounts/nobody/token",
            "{}",
        );
        let ok = post(
            token_path,
            r#"{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}"#,
        );
        let get = curl(&ca, &format!("{base}{token_path}"), &["-H", &auth]);
        // Without the controller manager nobody makes `default`: the pod is
        // admitted without a token volume.
        let pod = post(
            "/api/v1/namespaces/default/pods",
            r#"{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}"#,
        );
        let token: serde_json::Value = serde_json::from_str(&ok.2).unwrap_or_default();
        let token = token["status"]["token"].as_str().unwrap_or("").to_string();
        let as_robot = curl(
            &ca,
            &format!("{base}/api/v1/namespaces/default/pods"),
            &["-H", &format!("Authorization: Bearer {token}")],
        );
        let mut forged = token.clone();
        forged.push('A');
        let as_forged = curl(
            &ca,
            &format!("{base}/api/v1/namespaces/default/pods"),
            &["-H", &format!("Authorization: Bearer {forged}")],
        );
        (sa, short, missing, ok, get, pod, as_robot, as_forged)
    })
    .await
    .unwrap();
    let (sa, short, missing, ok, get, pod, as_robot, as_forged) = results;
    let json = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap() };
    assert_eq!(sa.1, 201, "{sa:?}");

    assert_eq!(short.1, 422, "{short:?}");
    let status = json(&short.2);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
    );

    assert_eq!(missing.1, 404, "{missing:?}");
    assert_eq!(
        json(&missing.2)["message"],
        "serviceaccounts \"nobody\" not found"
    );

    assert_eq!(ok.1, 201, "{ok:?}");
    let issued = json(&ok.2);
    assert_eq!(issued["kind"], "TokenRequest");
    assert_eq!(issued["metadata"]["name"], "robot");
    assert_eq!(issued["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        issued["spec"]["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let expires: jiff::Timestamp = issued["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = expires.as_second() - jiff::Timestamp::now().as_second();
    assert!((3590..=3600).contains(&left), "{left}");

    assert_eq!(get.1, 405, "{get:?}");

    assert_eq!(pod.1, 201, "{pod:?}");
    let pod = json(&pod.2);
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert!(pod["spec"].get("volumes").is_none(), "{pod}");

    assert_eq!(as_robot.1, 200, "{as_robot:?}");
    assert_eq!(as_forged.1, 401, "{as_forged:?}");

    cancel.cancel();
    server.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_watch_sends_the_column_definitions_once() {
    let (dir, cancel, server) = start_server().await;
    let _stop = StopOnDrop(cancel.clone());
    let ca = dir.path().join("tls/ca.crt");
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let token = server.pki.admin_token.clone();
    let lines = tokio::task::spawn_blocking(move || {
        let auth = format!("Authorization: Bearer {token}");
        for name in ["one", "two", "three"] {
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#
            );
            let made = curl(
                &ca,
                &format!("{base}/api/v1/namespaces/default/configmaps"),
                &[
                    "-H",
                    &auth,
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    &body,
                ],
            );
            assert_eq!(made.1, 201, "{made:?}");
        }
        // The server ends the watch after timeoutSeconds.
        curl(
            &ca,
            &format!(
                "{base}/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true\
                 &resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2"
            ),
            &[
                "-H",
                &auth,
                "-H",
                "Accept: application/json;as=Table;v=v1;g=meta.k8s.io",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(lines.1, 200, "{lines:?}");
    let events: Vec<serde_json::Value> = lines
        .2
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tables: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| &e["object"])
        .collect();
    assert_eq!(tables.len(), 3, "{events:?}");
    assert!(tables
        .iter()
        .all(|t| t["kind"] == "Table" && t["rows"].as_array().map(Vec::len) == Some(1)));
    // As Kubernetes: the first Table names the columns, the later ones leave them out.
    let names: Vec<&str> = tables[0]["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Name", "Data", "Age"]);
    assert!(
        tables[1..].iter().all(|t| t["columnDefinitions"].is_null()),
        "{tables:?}"
    );

    cancel.cancel();
    server.join().await;
}
