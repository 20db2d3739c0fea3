//! A small HTTPS server written in Python, run as a pod the way a user runs
//! an extension server or a webhook: busybox chroots into the host's root
//! (mounted read-only) for its `python3`, and serves with a certificate the
//! test makes for the name the API server will ask for (`<svc>.<ns>.svc`),
//! signed by a CA of the test's own that goes into `caBundle`.

use std::path::Path;

/// A CA (`ca_name`) and a serving certificate for `dns_name` signed by it,
/// written as `ca.crt`, `tls.crt` and `tls.key` under `dir`; returns the
/// CA's PEM.
pub(crate) fn serving_certificate(dir: &Path, ca_name: &str, dns_name: &str) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("a CA certificate");
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).expect("the CA as issuer");
    let key = KeyPair::generate().expect("a serving key");
    let leaf = CertificateParams::new(vec![dns_name.to_string()])
        .expect("serving parameters")
        .signed_by(&key, &issuer)
        .expect("a serving certificate");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write ca.crt");
    std::fs::write(dir.join("tls.crt"), leaf.pem()).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write tls.key");
    ca_cert.pem()
}

/// The manifest of pod `namespace/name`, labelled `app: <app>`, running the
/// repository's `script` (a path from the repository's root) with `args`
/// under the host's python3; it is Ready once `port` accepts connections
/// and stops within a second of being deleted.
pub(crate) fn python_pod(
    namespace: &str,
    name: &str,
    app: &str,
    script: &str,
    args: &[&str],
    port: u16,
) -> String {
    let script = super::repo_root()
        .join(script)
        .canonicalize()
        .expect("the server's script");
    let command: Vec<String> = ["chroot", "/host", "/usr/bin/python3"]
        .into_iter()
        .map(str::to_string)
        .chain(std::iter::once(script.display().to_string()))
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    let command = serde_json::to_string(&command).expect("the command as JSON");
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{app: {app}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: busybox:1.35
    command: {command}
    ports: [{{containerPort: {port}}}]
    readinessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
    volumeMounts: [{{name: host, mountPath: /host, readOnly: true}}]
  volumes:
  - name: host
    hostPath: {{path: /, type: Directory}}
"#
    )
}
