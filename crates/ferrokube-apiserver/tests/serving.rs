//! The serving layer seen by the real kubectl: a client certificate the
//! cluster CA did not sign is not a handshake failure but an unauthenticated
//! request (401 `Unauthorized`, as Kubernetes answers), the open endpoints
//! stay open to it, and a valid bearer token next to it still authenticates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use ferrokube_apiserver::{start, ServerConfig};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
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
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        EmbeddedStore::open(&dir.path().join("db"), EmbeddedOptions::default())
            .await
            .unwrap();
    let cancel = CancellationToken::new();
    let _stop = StopOnDrop(cancel.clone());
    let server = start(
        ServerConfig {
            data_dir: dir.path().to_path_buf(),
            bind_address: "127.0.0.1".parse().unwrap(),
            port: 0,
            write_kubeconfig: None,
            node_name: "test-node".into(),
            service_cidr: "10.43.0.0/16".into(),
            max_in_flight: 400,
        },
        store,
        cancel.clone(),
    )
    .await
    .unwrap();
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
