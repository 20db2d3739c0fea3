//! The dashboard's server side over real HTTPS (curl, and kubectl where a
//! real client matters): its pages, logging in and out (token, kubeconfig
//! with a token or a client certificate and key, one-time code), the
//! session cookie as an identity RBAC judges, CSRF and Origin checks,
//! `--disable dashboard`, gzip of large answers, and the WebSocket bearer
//! subprotocol.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ferrokube_apiserver::authn::UserInfo;
use ferrokube_apiserver::{start, RunningServer, ServerConfig};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A server on a free loopback port (Node,RBAC), stopped when dropped.
struct Api {
    dir: tempfile::TempDir,
    cancel: CancellationToken,
    server: RunningServer,
    base: String,
    ca: PathBuf,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn api(dashboard: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("db"), EmbeddedOptions::default())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let server = start(
        ServerConfig {
            dashboard,
            ..ServerConfig::for_tests(dir.path().to_path_buf())
        },
        store,
        cancel.clone(),
    )
    .await
    .unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let ca = dir.path().join("tls/ca.crt");
    Api {
        dir,
        cancel,
        server,
        base,
        ca,
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `ferrokube-session=...` pair of `Set-Cookie`.
    fn cookie(&self) -> String {
        let c = self.header("set-cookie").unwrap();
        c.split(';').next().unwrap().trim().to_string()
    }
}

impl Api {
    /// curl `path` with `args`, trusting the cluster CA.
    fn curl(&self, path: &str, args: &[&str]) -> Reply {
        let url = format!("{}{path}", self.base);
        tokio::task::block_in_place(|| curl(&self.ca, &url, args))
    }

    fn admin_token(&self) -> String {
        self.server.pki.admin_token.clone()
    }

    fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Authorization: Bearer {}", self.admin_token());
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let mut args = vec!["-X", method, "-H", &auth];
        if body.is_some() {
            args.extend([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &data,
            ]);
        }
        self.curl(path, &args)
    }

    fn login(&self, body: &Value) -> Reply {
        let data = body.to_string();
        self.curl(
            "/dashboard/session",
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &data,
            ],
        )
    }

    /// Logs in with `body`: the cookie and the CSRF token.
    fn session(&self, body: &Value) -> (String, String) {
        let r = self.login(body);
        assert_eq!(r.status, 201, "{r:?}");
        let csrf = r.json()["csrfToken"].as_str().unwrap().to_string();
        (r.cookie(), csrf)
    }

    fn origin(&self) -> String {
        format!("Origin: {}", self.base)
    }

    fn admin_kubeconfig(&self) -> String {
        std::fs::read_to_string(&self.server.kubeconfig).unwrap()
    }
}

fn curl(ca: &Path, url: &str, args: &[&str]) -> Reply {
    let tmp = tempfile::tempdir().unwrap();
    let (h, b) = (tmp.path().join("h"), tmp.path().join("b"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(ca)
        .arg("-D")
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let text = std::fs::read_to_string(&h).unwrap_or_default();
    // The last response's headers (after any 1xx).
    let last = text
        .split("\r\n\r\n")
        .filter(|s| !s.trim().is_empty())
        .last()
        .unwrap_or("");
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = std::fs::read(&b).unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

fn inflate(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig for the server whose user is `user` (YAML lines under
/// `user:`, indented by four).
fn kubeconfig(base: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {base}\n\
         contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n\
         current-context: ctx\nusers:\n- name: u\n  user:\n{user}"
    )
}

fn cert_kubeconfig(base: &str, cert_pem: &str, key_pem: &str) -> String {
    kubeconfig(
        base,
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert_pem),
            b64(key_pem)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_without_login_with_gzip_etag_and_csp() {
    let api = api(true).await;
    let r = api.curl("/dashboard", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/dashboard/"));

    let plain = api.curl("/dashboard/", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("cache-control"), Some("no-cache"));
    assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
    let csp = plain.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let etag = plain.header("etag").unwrap().to_string();
    let index = ferrokube_dashboard::asset("index.html").unwrap();
    assert_eq!(plain.body, index.body);

    let zipped = api.curl("/dashboard/index.html", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert_eq!(inflate(&zipped.body), index.body);

    let again = api.curl("/dashboard/", &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    assert_eq!(api.curl("/dashboard/no-such-file.js", &[]).status, 404);
    assert_eq!(
        api.curl("/dashboard/../version", &["--path-as-is"]).status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_every_data_path_answers_401() {
    let api = api(true).await;
    for path in [
        "/api",
        "/apis",
        "/api/v1/pods",
        "/api/v1/namespaces/default/secrets",
        "/apis/apps/v1/deployments",
        "/openapi/v2",
        "/metrics",
        "/dashboard/session",
    ] {
        let r = api.curl(path, &[]);
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_eq!(r.json()["reason"], "Unauthorized", "{path}");
        let r = api.curl(path, &["-H", "Cookie: ferrokube-session=made-up"]);
        assert_eq!(r.status, 401, "{path} with an unknown session");
    }
    // Codes need ordinary credentials.
    let r = api.curl("/dashboard/codes", &["-X", "POST"]);
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_token_and_by_kubeconfig_token_or_certificate() {
    let api = api(true).await;
    // A token.
    let r = api.login(&json!({"token": api.admin_token()}));
    assert_eq!(r.status, 201, "{r:?}");
    let who = r.json();
    assert_eq!(who["username"], "system:admin");
    assert_eq!(
        who["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert!(who["csrfToken"].as_str().unwrap().len() >= 43);
    let set_cookie = r.header("set-cookie").unwrap();
    let value = set_cookie
        .strip_prefix("ferrokube-session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert_eq!(value.len(), 43, "256 random bits, base64url: {set_cookie}");
    for attr in ["Path=/", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = r.cookie();
    let me = api.curl("/dashboard/session", &["-H", &format!("Cookie: {cookie}")]);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "system:admin");
    assert_eq!(me.json()["csrfToken"], who["csrfToken"]);
    let pods = api.curl("/api/v1/pods", &["-H", &format!("Cookie: {cookie}")]);
    assert_eq!(pods.status, 200, "{pods:?}");

    // A wrong token: 401, saying why but not echoing it.
    let r = api.login(&json!({"token": "not-a-token"}));
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains("not-a-token"));
    // Malformed bodies: 400.
    assert_eq!(api.login(&json!({"tokn": "x"})).status, 400);
    let r = api.curl(
        "/dashboard/session",
        &["-X", "POST", "--data-binary", "{not json"],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["kind"], "Status");

    // A kubeconfig with a token.
    let kc = kubeconfig(&api.base, &format!("    token: {}\n", api.admin_token()));
    let r = api.login(&json!({ "kubeconfig": kc }));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["username"], "system:admin");

    // The admin kubeconfig: a client certificate and its key.
    let r = api.login(&json!({ "kubeconfig": api.admin_kubeconfig() }));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["username"], "system:admin");
    assert!(!String::from_utf8_lossy(&r.body).contains("PRIVATE"));
}

/// Where the cluster CA's certificate and key are.
fn ca_files(api: &Api) -> (PathBuf, PathBuf) {
    let tls = api.dir.path().join("tls");
    (tls.join("ca.crt"), tls.join("ca.key"))
}

/// A key made by openssl with `genkey` args, and a certificate for `cn`
/// signed by the cluster CA.
fn openssl_credentials(api: &Api, cn: &str, genkey: &[&str]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, ca_key) = ca_files(api);
    let key = tmp.path().join("k.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key_s = key.to_str().unwrap();
    // `openssl <command> -out FILE <options...>`: options before operands.
    let mut g: Vec<&str> = genkey[..1].to_vec();
    g.extend(["-out", key_s]);
    g.extend_from_slice(&genkey[1..]);
    run(&g);
    let csr = tmp.path().join("c.csr");
    let crt = tmp.path().join("c.crt");
    let ext = tmp.path().join("ext");
    std::fs::write(
        &ext,
        "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    let subj = format!("/CN={cn}/O=dev");
    run(&[
        "req",
        "-new",
        "-key",
        key_s,
        "-subj",
        &subj,
        "-out",
        csr.to_str().unwrap(),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        ca.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-days",
        "1",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    (
        std::fs::read_to_string(&crt).unwrap(),
        std::fs::read_to_string(&key).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_logins_need_the_matching_key_and_the_cluster_ca() {
    let api = api(true).await;
    // PKCS#1 RSA and SEC1 EC keys, as openssl writes them.
    let (rsa_cert, rsa_key) =
        openssl_credentials(&api, "rsa-user", &["genrsa", "-traditional", "2048"]);
    assert!(rsa_key.contains("BEGIN RSA PRIVATE KEY"), "{rsa_key}");
    let r = api.login(&json!({"kubeconfig": cert_kubeconfig(&api.base, &rsa_cert, &rsa_key)}));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["username"], "rsa-user");
    assert_eq!(r.json()["groups"], json!(["dev", "system:authenticated"]));
    let (ec_cert, ec_key) = openssl_credentials(
        &api,
        "ec-user",
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
    );
    assert!(ec_key.contains("BEGIN EC PRIVATE KEY"), "{ec_key}");
    let r = api.login(&json!({"kubeconfig": cert_kubeconfig(&api.base, &ec_cert, &ec_key)}));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["username"], "ec-user");

    // A key that is not the certificate's.
    let r = api.login(&json!({"kubeconfig": cert_kubeconfig(&api.base, &ec_cert, &rsa_key)}));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{r:?}"
    );
    // A certificate (with its own key) from another CA.
    let (foreign_cert, foreign_key) = foreign_credentials();
    let r =
        api.login(&json!({"kubeconfig": cert_kubeconfig(&api.base, &foreign_cert, &foreign_key)}));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.json()["message"].as_str().unwrap().contains("cluster CA"));
    // Files a browser cannot send.
    let kc = kubeconfig(
        &api.base,
        "    client-certificate: /etc/ferrokube/admin.crt\n    client-key: /etc/ferrokube/admin.key\n",
    );
    let r = api.login(&json!({ "kubeconfig": kc }));
    assert_eq!(r.status, 400, "{r:?}");
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("client-certificate") && msg.contains("--flatten"),
        "{msg}"
    );
}

/// A client certificate for `system:admin` in `system:masters` and its key,
/// signed by a CA the server has never seen.
fn foreign_credentials() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "other-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "system:admin");
    p.distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    (
        p.signed_by(&key, &issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_codes_log_in_once_as_their_maker() {
    let api = api(true).await;
    let r = api.admin("POST", "/dashboard/codes", Some(&json!({})));
    assert_eq!(r.status, 201, "{r:?}");
    let code = r.json()["code"].as_str().unwrap().to_string();
    let expires = r.json()["expiresAt"].as_str().unwrap().to_string();
    let at: jiff::Timestamp = expires.parse().unwrap();
    let left = at.as_second() - jiff::Timestamp::now().as_second();
    assert!((240..=301).contains(&left), "{expires}: {left}s");
    let r = api.login(&json!({ "code": code }));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["username"], "system:admin");
    let r = api.login(&json!({ "code": code }));
    assert_eq!(r.status, 401, "used once");
    assert_eq!(api.login(&json!({"code": "made-up"})).status, 401);

    // A session cannot make codes (a code would outlive nothing but could
    // be made by a page's script).
    let (cookie, csrf) = api.session(&json!({"token": api.admin_token()}));
    let r = api.curl(
        "/dashboard/codes",
        &[
            "-X",
            "POST",
            "-H",
            &format!("Cookie: {cookie}"),
            "-H",
            &format!("X-CSRF-Token: {csrf}"),
            "-H",
            &api.origin(),
        ],
    );
    assert_eq!(r.status, 401, "{r:?}");
}

/// The admin kubeconfig's certificate and key as files in `dir`, for curl.
fn kubeconfig_file(api: &Api, dir: &Path) -> (PathBuf, PathBuf) {
    let tls = api.dir.path().join("tls");
    let (crt, key) = (dir.join("admin.crt"), dir.join("admin.key"));
    std::fs::copy(tls.join("admin.crt"), &crt).unwrap();
    std::fs::copy(tls.join("admin.key"), &key).unwrap();
    (crt, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_by_a_client_certificate() {
    let api = api(true).await;
    let tmp = tempfile::tempdir().unwrap();
    let (crt, key) = kubeconfig_file(&api, tmp.path());
    let r = api.curl(
        "/dashboard/codes",
        &[
            "-X",
            "POST",
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 201, "{r:?}");
    let code = r.json()["code"].as_str().unwrap().to_string();
    let r = api.login(&json!({ "code": code }));
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["username"], "system:admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_its_user_to_rbac() {
    let api = api(true).await;
    // What `view` grants once aggregated (no controller manager runs here
    // to aggregate it): reading pods, not secrets.
    let role = json!({
        "metadata": {"name": "pod-viewer"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    });
    let r = api.admin(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        Some(&role),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let binding = json!({
        "metadata": {"name": "viewer-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-viewer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}],
    });
    let r = api.admin(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        Some(&binding),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let (cert, key) =
        ferrokube_apiserver::pki::issue_client_certificate(api.dir.path(), "viewer", &[]).unwrap();
    let (cookie, _) = api.session(&json!({"kubeconfig": cert_kubeconfig(&api.base, &cert, &key)}));
    let c = format!("Cookie: {cookie}");
    let pods = api.curl("/api/v1/namespaces/default/pods", &["-H", &c]);
    assert_eq!(pods.status, 200, "{pods:?}");
    let secrets = api.curl("/api/v1/namespaces/default/secrets", &["-H", &c]);
    assert_eq!(secrets.status, 403, "{secrets:?}");
    let s = secrets.json();
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["reason"], "Forbidden");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("User \"viewer\" cannot list resource \"secrets\""),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_csrf_token_and_the_origin() {
    let api = api(true).await;
    let (cookie, csrf) = api.session(&json!({"token": api.admin_token()}));
    let c = format!("Cookie: {cookie}");
    let t = format!("X-CSRF-Token: {csrf}");
    let origin = api.origin();
    let cm = json!({"metadata": {"name": "from-dashboard"}, "data": {"a": "1"}}).to_string();
    let path = "/api/v1/namespaces/default/configmaps";
    let post = |extra: &[&str]| {
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            &c,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &cm,
        ];
        args.extend_from_slice(extra);
        api.curl(path, &args)
    };
    let none = post(&[]);
    assert_eq!(none.status, 403, "{none:?}");
    assert_eq!(none.json()["reason"], "Forbidden");
    let no_token = post(&["-H", &origin]);
    assert_eq!(no_token.status, 403);
    let wrong_token = post(&["-H", &origin, "-H", "X-CSRF-Token: wrong"]);
    assert_eq!(wrong_token.status, 403);
    let wrong_origin = post(&["-H", &t, "-H", "Origin: https://evil.example"]);
    assert_eq!(wrong_origin.status, 403);
    let no_origin = post(&["-H", &t]);
    assert_eq!(no_origin.status, 403);
    let get = api.curl(&format!("{path}/from-dashboard"), &["-H", &c]);
    assert_eq!(get.status, 404, "nothing was created: {get:?}");
    let ok = post(&["-H", &t, "-H", &origin]);
    assert_eq!(ok.status, 201, "{ok:?}");
    let get = api.curl(&format!("{path}/from-dashboard"), &["-H", &c]);
    assert_eq!(get.status, 200);
    assert_eq!(get.json()["data"]["a"], "1");

    // Another site's page cannot log the browser in.
    let body = json!({"token": api.admin_token()}).to_string();
    let r = api.curl(
        "/dashboard/session",
        &[
            "-X",
            "POST",
            "-H",
            "Origin: https://evil.example",
            "--data-binary",
            &body,
        ],
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("set-cookie").is_none());

    // Logging out needs them too; then the cookie is dead.
    let out = api.curl("/dashboard/session", &["-X", "DELETE", "-H", &c]);
    assert_eq!(out.status, 403);
    let out = api.curl(
        "/dashboard/session",
        &["-X", "DELETE", "-H", &c, "-H", &t, "-H", &origin],
    );
    assert_eq!(out.status, 200, "{out:?}");
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("ferrokube-session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(api.curl(path, &["-H", &c]).status, 401);
    assert_eq!(api.curl("/dashboard/session", &["-H", &c]).status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_service_account_ends_its_session() {
    let api = api(true).await;
    let sa = json!({"metadata": {"name": "dash"}});
    let r = api.admin(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        Some(&sa),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}});
    let r = api.admin(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/dash/token",
        Some(&req),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let token = r.json()["status"]["token"].as_str().unwrap().to_string();
    let (cookie, _) = api.session(&json!({ "token": token }));
    let c = format!("Cookie: {cookie}");
    let me = api.curl("/dashboard/session", &["-H", &c]);
    assert_eq!(me.json()["username"], "system:serviceaccount:default:dash");
    let r = api.admin(
        "DELETE",
        "/api/v1/namespaces/default/serviceaccounts/dash",
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let me = api.curl("/dashboard/session", &["-H", &c]);
        if me.status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its token: {me:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(api.curl("/api/v1/pods", &["-H", &c]).status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_dashboard_is_not_there() {
    let api = api(false).await;
    assert_eq!(api.curl("/dashboard/", &[]).status, 404);
    assert_eq!(api.curl("/dashboard", &[]).status, 404);
    assert_eq!(api.login(&json!({"token": api.admin_token()})).status, 404);
    assert_eq!(
        api.admin("POST", "/dashboard/codes", Some(&json!({})))
            .status,
        404
    );
    // Ordinary credentials still work.
    assert_eq!(api.admin("GET", "/api/v1/pods", None).status, 200);
}

/// The in-process answer to GET `path` as the admin, with
/// `Accept-Encoding: gzip`: its headers and bytes.
async fn in_process(api: &Api, path: &str) -> (http::HeaderMap, Vec<u8>) {
    let local = api
        .server
        .local(UserInfo::authenticated("system:admin", ["system:masters"]));
    let req = http::Request::get(path)
        .header("accept-encoding", "gzip")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = local.call(req).await;
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_are_gzipped_for_clients_that_take_it() {
    let api = api(true).await;
    let filler = "x".repeat(4096);
    for i in 0..48 {
        let cm = json!({"metadata": {"name": format!("big-{i}")}, "data": {"filler": filler}});
        let r = api.admin("POST", "/api/v1/namespaces/default/configmaps", Some(&cm));
        assert_eq!(r.status, 201, "{r:?}");
    }
    let path = "/api/v1/namespaces/default/configmaps";
    let auth = format!("Authorization: Bearer {}", api.admin_token());
    let plain = api.curl(path, &["-H", &auth]);
    assert_eq!(plain.status, 200);
    assert!(plain.body.len() > 128 * 1024, "{}", plain.body.len());
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), None);
    let zipped = api.curl(path, &["-H", &auth, "-H", "Accept-Encoding: gzip"]);
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert!(zipped.body.len() < plain.body.len() / 4);
    assert_eq!(inflate(&zipped.body), plain.body, "the same answer");

    // The in-process transport is never compressed: the same bytes.
    let (headers, local) = in_process(&api, path).await;
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(local, plain.body);

    // A small answer, a watch: not compressed.
    let small = api.curl(
        "/api/v1/namespaces",
        &["-H", &auth, "-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(small.status, 200);
    assert_eq!(small.header("content-encoding"), None);
    let watch = api.curl(
        &format!("{path}?watch=1&timeoutSeconds=1"),
        &["-H", &auth, "-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(watch.status, 200);
    assert_eq!(watch.header("content-encoding"), None);
    assert!(watch.body.len() > 128 * 1024, "the initial events");

    // kubectl (Go's transport asks for gzip and inflates it).
    let out = tokio::task::block_in_place(|| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&api.server.kubeconfig)
            .args(["get", "--raw", path])
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (Go's transport inflates it and hides the header.)
    let via_kubectl: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(via_kubectl, plain.json());
}

/// curl's WebSocket upgrade headers (HTTP/1.1), offering `protocols`.
fn upgrade_args(protocols: &str) -> Vec<String> {
    [
        "--http1.1",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "-H",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("Sec-WebSocket-Protocol: {protocols}")])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_authenticate_by_the_bearer_subprotocol_or_the_session() {
    let api = api(true).await;
    let exec = "/api/v1/namespaces/default/pods/nowhere/exec?command=sh&stdout=1";
    let bearer = |token: &str| {
        format!(
            "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
        )
    };
    let run = |protocols: &str, extra: &[&str]| {
        let mut args = upgrade_args(protocols);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        api.curl(exec, &args)
    };
    // Authenticated and authorized: the pod is the only thing missing.
    let r = run(&bearer(&api.admin_token()), &[]);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["reason"], "NotFound");
    assert_eq!(run(&bearer("wrong"), &[]).status, 401);
    assert_eq!(run("v5.channel.k8s.io", &[]).status, 401);
    // The token alone leaves no protocol to choose.
    let alone = format!(
        "base64url.bearer.authorization.k8s.io.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(api.admin_token())
    );
    assert_eq!(run(&alone, &[]).status, 401);

    // A session's upgrade must come from the server's origin.
    let (cookie, _) = api.session(&json!({"token": api.admin_token()}));
    let c = format!("Cookie: {cookie}");
    let r = run("v5.channel.k8s.io", &["-H", &c]);
    assert_eq!(r.status, 403, "{r:?}");
    let r = run(
        "v5.channel.k8s.io",
        &["-H", &c, "-H", "Origin: https://evil.example"],
    );
    assert_eq!(r.status, 403);
    let origin = api.origin();
    let r = run("v5.channel.k8s.io", &["-H", &c, "-H", &origin]);
    assert_eq!(r.status, 404, "{r:?}");
}

/// A kubelet stand-in on loopback TLS: answers one WebSocket upgrade with
/// the first protocol offered, sends `[1]hello` (stdout, v4 channel), and
/// hands over the request head it received.
async fn fake_kubelet() -> (u16, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok(Ok((tcp, _))) =
            tokio::time::timeout(std::time::Duration::from_secs(30), listener.accept()).await
        else {
            return;
        };
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            let n = tls.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let accept = {
            let mut k = field("sec-websocket-key");
            k.push_str("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
            let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, k.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        };
        let protocol = field("sec-websocket-protocol")
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        tls.write_all(answer.as_bytes()).await.unwrap();
        tls.write_all(&[0x82, 6, 1, b'h', b'e', b'l', b'l', b'o'])
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let _ = tx.send(text);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_upgrade_authenticated_by_the_subprotocol_reaches_the_kubelet_without_credentials()
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = api(true).await;
    let (kubelet_port, seen) = fake_kubelet().await;
    let r = api.admin(
        "POST",
        "/api/v1/nodes",
        Some(&json!({"metadata": {"name": "fake-node"}})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
    }})
    .to_string();
    let auth = format!("Authorization: Bearer {}", api.admin_token());
    let r = api.curl(
        "/api/v1/nodes/fake-node/status",
        &[
            "-X",
            "PATCH",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            &status,
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let pod = json!({"metadata": {"name": "p"}, "spec": {
        "nodeName": "fake-node",
        "automountServiceAccountToken": false,
        "containers": [{"name": "c", "image": "busybox"}],
    }});
    let r = api.admin("POST", "/api/v1/namespaces/default/pods", Some(&pod));
    assert_eq!(r.status, 201, "{r:?}");
    let (cookie, _) = api.session(&json!({"token": api.admin_token()}));

    // A WebSocket client as a browser's: the token among the subprotocols,
    // the session cookie sent along.
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&api.ca).unwrap();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(api.server.addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(api.admin_token());
    let request = format!(
        "GET /api/v1/namespaces/default/pods/p/exec?command=sh&stdout=1&container=c HTTP/1.1\r\n\
         Host: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.{token}\r\n\
         Cookie: {cookie}\r\n\r\n",
        api.server.addr.port()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !got.ends_with(b"hello") {
        let n = tokio::time::timeout_at(deadline, tls.read(&mut buf))
            .await
            .expect("the exec stream within 20 s")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-protocol: v4.channel.k8s.io"),
        "{text}"
    );
    let at_kubelet = seen.await.unwrap();
    assert!(
        at_kubelet.starts_with("GET /exec/default/p/c?"),
        "{at_kubelet}"
    );
    assert!(
        !at_kubelet.contains("base64url.bearer"),
        "the token was passed on: {at_kubelet}"
    );
    assert!(!at_kubelet.contains(&api.admin_token()), "{at_kubelet}");
    assert!(
        !at_kubelet.contains("ferrokube-session"),
        "the cookie was passed on: {at_kubelet}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_does_not_authenticate_proxied_backends() {
    let api = api(true).await;
    let (cookie, _) = api.session(&json!({"token": api.admin_token()}));
    let c = format!("Cookie: {cookie}");
    for path in [
        "/api/v1/namespaces/default/services/web:80/proxy/",
        "/api/v1/namespaces/default/pods/p/proxy/index.html",
        "/api/v1/nodes/n/proxy/metrics",
    ] {
        let r = api.curl(path, &["-H", &c]);
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
    assert_eq!(
        api.curl("/api/v1/namespaces/default/pods", &["-H", &c])
            .status,
        200
    );
}

/// A client certificate for `cn` signed by the cluster CA that ends in
/// `secs` seconds, and its key (PEM).
fn short_lived_credentials(api: &Api, cn: &str, secs: i64) -> (String, String) {
    use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
    let (ca, ca_key) = ca_files(api);
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(ca_key).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&std::fs::read_to_string(ca).unwrap(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(1);
    p.not_after = now + time::Duration::seconds(secs);
    (
        p.signed_by(&key, &issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_session_and_code_end_with_the_certificate() {
    let api = api(true).await;
    let (cert, key) = short_lived_credentials(&api, "brief", 4);
    let (cookie, _) = api.session(&json!({"kubeconfig": cert_kubeconfig(&api.base, &cert, &key)}));
    let c = format!("Cookie: {cookie}");
    assert_eq!(api.curl("/dashboard/session", &["-H", &c]).status, 200);
    // A code made by the certificate's holder.
    let tmp = tempfile::tempdir().unwrap();
    let (crt_file, key_file) = (tmp.path().join("c.crt"), tmp.path().join("c.key"));
    std::fs::write(&crt_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let r = api.curl(
        "/dashboard/codes",
        &[
            "-X",
            "POST",
            "--cert",
            crt_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 201, "{r:?}");
    let code = r.json()["code"].as_str().unwrap().to_string();
    let expires: jiff::Timestamp = r.json()["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(
        expires.as_second() - jiff::Timestamp::now().as_second() <= 5,
        "the code ends with the certificate: {expires}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        api.curl("/dashboard/session", &["-H", &c]).status,
        401,
        "the session ended"
    );
    assert_eq!(api.curl("/api/v1/pods", &["-H", &c]).status, 401);
    assert_eq!(
        api.login(&json!({ "code": code })).status,
        401,
        "the code expired"
    );
}
