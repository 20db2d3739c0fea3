//! `ferrokube server --tls-san`: the serving certificate names the extra
//! host names and addresses (repeatable, comma-separated, as k3s' flag), so
//! kubectl reaching the server by such a name trusts it; a restart with
//! another list gives a certificate with the new names.

mod common;

use common::Cluster;

/// The serving certificate's subject alternative names, as openssl prints them.
fn sans(c: &Cluster) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(c.data_dir().join("tls/serving.crt"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubectl reaching the server while checking its certificate for `name`.
fn get_as(c: &Cluster, name: &str) -> std::process::Output {
    c.kubectl(&[
        &format!("--tls-server-name={name}"),
        "get",
        "namespace",
        "default",
        "-o",
        "name",
    ])
}

#[test]
fn the_serving_certificate_names_the_tls_sans() {
    let mut c = Cluster::start_with(&[
        "--tls-san",
        "api.example.test,10.11.12.13",
        "--tls-san",
        "lb.example.test",
    ]);
    let names = sans(&c);
    for want in [
        "DNS:api.example.test",
        "DNS:lb.example.test",
        "IP Address:10.11.12.13",
    ] {
        assert!(names.contains(want), "{want} not in {names}");
    }
    let out = get_as(&c, "api.example.test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );
    let out = get_as(&c, "other.example.test");
    assert!(
        !out.status.success(),
        "a name not in the certificate is refused"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate is valid for"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Restarted with another list: a new certificate with the new names.
    c.stop();
    c.set_extra_args(&["--tls-san", "other.example.test"]);
    c.restart();
    let names = sans(&c);
    assert!(names.contains("DNS:other.example.test"), "{names}");
    assert!(!names.contains("api.example.test"), "{names}");
    let out = get_as(&c, "other.example.test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
