//! The cluster's certificates and credentials, made at first start and
//! reused after: a CA, the API server's serving certificate, the admin's
//! client certificate and bearer token, the client certificate the API
//! server shows nodes' kubelets (`kube-apiserver-kubelet-client`), the join
//! token, and the admin kubeconfig.
//!
//! Files live under `DATA_DIR/tls/` (keys 0600). The CA lasts ten years; leaf
//! certificates last one year and are issued again at start when less than
//! 90 days remain, so a cluster that is restarted now and then never meets
//! an expired certificate. The serving certificate is issued at every start,
//! so it always names the host's current addresses.

use ferrokube_pki::jointoken;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// Leaf certificates are issued again when fewer days than this remain.
pub(crate) const RENEW_BEFORE_DAYS: i64 = 90;

/// How long leaf certificates are issued for.
const LEAF_DAYS: i64 = 365;

/// The cluster's credentials, as PEM and tokens.
#[derive(Clone)]
pub struct Pki {
    pub(crate) ca_cert_pem: String,
    pub(crate) serving_cert_pem: String,
    pub(crate) serving_key_pem: String,
    pub(crate) admin_cert_pem: String,
    pub(crate) admin_key_pem: String,
    /// The API server's client certificate toward kubelets (logs, exec,
    /// attach, port-forward).
    pub(crate) kubelet_client_cert_pem: String,
    pub(crate) kubelet_client_key_pem: String,
    /// The controller manager's client certificate
    /// (`system:kube-controller-manager`), for `ferrokube controller-manager`
    /// run as a process of its own.
    pub(crate) controller_manager_cert_pem: String,
    pub(crate) controller_manager_key_pem: String,
    /// The request-header (front-proxy) CA: extension API servers trust the
    /// `X-Remote-*` headers of requests whose client certificate it signed.
    pub(crate) front_proxy_ca_pem: String,
    /// The aggregator's client certificate toward extension API servers
    /// (`front-proxy-client`), signed by the request-header CA.
    pub(crate) front_proxy_client_cert_pem: String,
    pub(crate) front_proxy_client_key_pem: String,
    /// A bearer token for `system:admin` (group `system:masters`), read
    /// from `DATA_DIR/tls/admin.token` (made at the first start).
    pub admin_token: String,
    pub(crate) join_token: String,
}

pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Days left before the PEM certificate expires (negative: expired).
pub(crate) fn days_left(pem: &str) -> Option<i64> {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = der.parse_x509().ok()?;
    let not_after = cert.validity().not_after.timestamp();
    Some((not_after - OffsetDateTime::now_utc().unix_timestamp()) / 86_400)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn leaf_params(
    cn: &str,
    orgs: &[&str],
    sans: Vec<String>,
    server: bool,
    lifetime: Duration,
) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + lifetime;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// The names the serving certificate is valid for.
pub(crate) fn serving_names(node_name: &str, service_ip: Option<IpAddr>) -> Vec<String> {
    let mut names: Vec<String> = vec![
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    if !node_name.is_empty() {
        names.push(node_name.to_string());
    }
    if let Some(ip) = service_ip {
        names.push(ip.to_string());
    }
    for ip in host_addresses() {
        names.push(ip.to_string());
    }
    names.sort();
    names.dedup();
    names
}

/// The host's interface addresses, link-local ones left out.
#[expect(
    unsafe_code,
    reason = "getifaddrs(3) is the only way to list the interfaces' addresses; std has none"
)]
pub(crate) fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: on success getifaddrs sets `ifap` to a list it allocated, which
    // stays valid until the one freeifaddrs below; the loop only reads it,
    // following `ifa_next` until null. `ifa_addr` may be null (checked) and
    // otherwise points to a sockaddr whose `sa_family` says which struct it
    // is (sockaddr_in for AF_INET, sockaddr_in6 for AF_INET6), so each cast
    // reads a struct of the right type. Nothing read is kept past the free
    // (the addresses are copied out).
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match (*addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                        if !ip.is_link_local() {
                            out.push(IpAddr::V4(ip));
                        }
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        if (ip.segments()[0] & 0xffc0) != 0xfe80 {
                            out.push(IpAddr::V6(ip));
                        }
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
}

/// The name extension API servers allow on the aggregator's client
/// certificate (`requestheader-allowed-names`).
pub(crate) const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// A CA kept as `DIR/<file>.crt` and `DIR/<file>.key`, made (ten years,
/// common name `<cn>@<unix time>`) when missing; returns its certificate
/// and key.
fn ensure_ca(dir: &Path, file: &str, cn: &str) -> anyhow::Result<(String, String)> {
    let (crt, key_path) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    if let (Some(c), Some(k)) = (read(&crt), read(&key_path)) {
        return Ok((c, k));
    }
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(
        DnType::CommonName,
        format!("{cn}@{}", OffsetDateTime::now_utc().unix_timestamp()),
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    let cert = p.self_signed(&key)?;
    let (c, k) = (cert.pem(), key.serialize_pem());
    write_private(&key_path, &k)?;
    write_private(&crt, &c)?;
    tracing::info!(dir = %dir.display(), file, "created a CA");
    Ok((c, k))
}

/// A client certificate `DIR/<file>.crt` (key `<file>.key`) for `cn` in
/// `orgs`: the one on disk while it has more than [`RENEW_BEFORE_DAYS`]
/// left, else a new one.
fn client_cert(
    dir: &Path,
    file: &str,
    cn: &str,
    orgs: &[&str],
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<(String, String)> {
    let crt = dir.join(format!("{file}.crt"));
    let key_path = dir.join(format!("{file}.key"));
    if let (Some(c), Some(k)) = (read(&crt), read(&key_path)) {
        if days_left(&c).is_some_and(|d| d > RENEW_BEFORE_DAYS) {
            return Ok((c, k));
        }
    }
    let key = KeyPair::generate()?;
    let cert = leaf_params(cn, orgs, Vec::new(), false, Duration::days(LEAF_DAYS))?
        .signed_by(&key, issuer)?;
    let (c, k) = (cert.pem(), key.serialize_pem());
    write_private(&key_path, &k)?;
    write_private(&crt, &c)?;
    tracing::info!(user = cn, "issued a client certificate");
    Ok((c, k))
}

impl Pki {
    /// Loads the credentials under `data_dir/tls`, making what is missing or
    /// close to expiry.
    pub(crate) fn ensure(data_dir: &Path, serving_sans: Vec<String>) -> anyhow::Result<Pki> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        let path = |n: &str| -> PathBuf { dir.join(n) };

        // The CA.
        let (ca_cert_pem, ca_key_pem) = ensure_ca(&dir, "ca", "ferrokube-ca")?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("reading the CA key")?;
        let issuer =
            Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).context("reading the CA certificate")?;

        // The serving certificate: every start.
        let serving_key = KeyPair::generate()?;
        let serving = leaf_params(
            "kube-apiserver",
            &[],
            serving_sans,
            true,
            Duration::days(LEAF_DAYS),
        )?
        .signed_by(&serving_key, &issuer)?;
        let (serving_cert_pem, serving_key_pem) = (serving.pem(), serving_key.serialize_pem());
        write_private(&path("serving.key"), &serving_key_pem)?;
        write_private(&path("serving.crt"), &serving_cert_pem)?;

        // The admin's client certificate: reused while it has time left.
        let (admin_cert_pem, admin_key_pem) =
            client_cert(&dir, "admin", "system:admin", &["system:masters"], &issuer)?;
        // The API server's client certificate toward kubelets, likewise.
        let (kubelet_client_cert_pem, kubelet_client_key_pem) = client_cert(
            &dir,
            "kubelet-client",
            "kube-apiserver-kubelet-client",
            &["system:masters"],
            &issuer,
        )?;

        let (controller_manager_cert_pem, controller_manager_key_pem) = client_cert(
            &dir,
            "controller-manager",
            "system:kube-controller-manager",
            &[],
            &issuer,
        )?;

        // The request-header CA and the aggregator's client certificate.
        let (front_proxy_ca_pem, front_proxy_ca_key) =
            ensure_ca(&dir, "request-header-ca", "ferrokube-request-header-ca")?;
        let front_proxy_issuer = Issuer::from_ca_cert_pem(
            &front_proxy_ca_pem,
            KeyPair::from_pem(&front_proxy_ca_key).context("reading the request-header CA key")?,
        )
        .context("reading the request-header CA certificate")?;
        let (front_proxy_client_cert_pem, front_proxy_client_key_pem) = client_cert(
            &dir,
            "front-proxy-client",
            FRONT_PROXY_CLIENT,
            &[],
            &front_proxy_issuer,
        )?;

        let admin_token = match read(&path("admin.token")) {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write_private(&path("admin.token"), &t)?;
                t
            }
        };
        // The join token names the CA by its hash, so an agent holding it
        // can trust the CA it fetches from an address it does not yet
        // trust: `K10<sha256 of the CA PEM>::server:<secret>`.
        let ca_hash = jointoken::sha256_hex(ca_cert_pem.as_bytes());
        let join_token = match read(&data_dir.join("token")) {
            Some(t) if jointoken::parse(&t).is_some_and(|(h, _)| h == ca_hash) => {
                t.trim().to_string()
            }
            _ => {
                let t = jointoken::format(&ca_cert_pem, &random_token());
                write_private(&data_dir.join("token"), &t)?;
                t
            }
        };
        Ok(Pki {
            ca_cert_pem,
            serving_cert_pem,
            serving_key_pem,
            admin_cert_pem,
            admin_key_pem,
            kubelet_client_cert_pem,
            kubelet_client_key_pem,
            controller_manager_cert_pem,
            controller_manager_key_pem,
            front_proxy_ca_pem,
            front_proxy_client_cert_pem,
            front_proxy_client_key_pem,
            admin_token,
            join_token,
        })
    }

    /// Whether the serving or the admin certificate has
    /// [`RENEW_BEFORE_DAYS`] or fewer left (or cannot be read), so that
    /// [`Pki::ensure`] should run again.
    pub(crate) fn renewal_due(&self) -> bool {
        [
            &self.serving_cert_pem,
            &self.admin_cert_pem,
            &self.kubelet_client_cert_pem,
            &self.front_proxy_client_cert_pem,
        ]
        .iter()
        .any(|pem| days_left(pem).is_none_or(|d| d <= RENEW_BEFORE_DAYS))
    }

    /// The admin kubeconfig for a server at `server_url`.
    pub(crate) fn kubeconfig(&self, server_url: &str) -> String {
        self.kubeconfig_as(
            server_url,
            "admin",
            &self.admin_cert_pem,
            &self.admin_key_pem,
        )
    }

    /// A kubeconfig for a server at `server_url` with the client
    /// certificate `cert_pem` (key `key_pem`), its user called `user`.
    pub(crate) fn kubeconfig_as(
        &self,
        server_url: &str,
        user: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: ferrokube
  cluster:
    server: {server_url}
    certificate-authority-data: {}
contexts:
- name: ferrokube
  context:
    cluster: ferrokube
    user: {user}
current-context: ferrokube
preferences: {{}}
users:
- name: {user}
  user:
    client-certificate-data: {}
    client-key-data: {}
",
            b64(&self.ca_cert_pem),
            b64(cert_pem),
            b64(key_pem),
        )
    }

    /// Writes the controller manager's kubeconfig (0600) to `path`.
    pub(crate) fn write_controller_manager_kubeconfig(
        &self,
        path: &Path,
        server_url: &str,
    ) -> anyhow::Result<()> {
        write_private(
            path,
            &self.kubeconfig_as(
                server_url,
                "system:kube-controller-manager",
                &self.controller_manager_cert_pem,
                &self.controller_manager_key_pem,
            ),
        )
    }

    /// Writes the kubeconfig (0600) to `path`.
    pub(crate) fn write_kubeconfig(&self, path: &Path, server_url: &str) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_private(path, &self.kubeconfig(server_url))
    }
}

/// A new client certificate (PEM, key PEM) for the user `cn` in the
/// groups `orgs`, signed by the cluster CA under `data_dir/tls`: the
/// credentials of a user made by hand (and of tests' users).
pub fn issue_client_certificate(
    data_dir: &Path,
    cn: &str,
    orgs: &[&str],
) -> anyhow::Result<(String, String)> {
    issue_client_certificate_for(data_dir, cn, orgs, Duration::days(LEAF_DAYS))
}

/// As [`issue_client_certificate`], valid for `lifetime` (at most
/// a year).
pub(crate) fn issue_client_certificate_for(
    data_dir: &Path,
    cn: &str,
    orgs: &[&str],
    lifetime: Duration,
) -> anyhow::Result<(String, String)> {
    let dir = data_dir.join("tls");
    let ca_key = read(&dir.join("ca.key")).context("reading the CA key")?;
    let ca_pem = read(&dir.join("ca.crt")).context("reading the CA certificate")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key)?)?;
    let key = KeyPair::generate()?;
    let lifetime = lifetime.min(Duration::days(LEAF_DAYS));
    let cert = leaf_params(cn, orgs, Vec::new(), false, lifetime)?.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A leaf certificate (PEM, key PEM) from the CA under `data_dir/tls`
/// valid for `days`: for tests of renewal.
#[cfg(test)]
pub(crate) fn issue_for_test(data_dir: &Path, server: bool, days: i64) -> (String, String) {
    let dir = data_dir.join("tls");
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let (cn, orgs, sans): (&str, &[&str], Vec<String>) = if server {
        ("kube-apiserver", &[], vec!["127.0.0.1".into()])
    } else {
        ("system:admin", &["system:masters"], Vec::new())
    };
    let cert = leaf_params(cn, orgs, sans, server, Duration::days(days))
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_certificate_close_to_expiry_is_issued_again_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let sans = serving_names("node-a", None);
        let first = Pki::ensure(dir.path(), sans.clone()).unwrap();
        assert!(!first.renewal_due());
        let (cert, key) = issue_for_test(dir.path(), false, 30);
        write_private(&dir.path().join("tls/admin.crt"), &cert).unwrap();
        write_private(&dir.path().join("tls/admin.key"), &key).unwrap();
        let stale = Pki {
            admin_cert_pem: cert.clone(),
            ..first.clone()
        };
        assert!(stale.renewal_due(), "30 days left is inside the window");
        let again = Pki::ensure(dir.path(), sans).unwrap();
        assert_ne!(again.admin_cert_pem, cert, "a new admin certificate");
        assert!(days_left(&again.admin_cert_pem).unwrap() > 360);
        assert_eq!(again.ca_cert_pem, first.ca_cert_pem, "the CA is kept");
        assert_eq!(again.admin_token, first.admin_token);
        assert!(!again.renewal_due());
    }

    #[test]
    fn credentials_are_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sans = serving_names("node-a", Some("10.43.0.1".parse().unwrap()));
        assert!(sans.contains(&"kubernetes.default.svc".to_string()));
        assert!(sans.contains(&"10.43.0.1".to_string()));
        let a = Pki::ensure(dir.path(), sans.clone()).unwrap();
        let b = Pki::ensure(dir.path(), sans).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem, "the CA is kept");
        assert_eq!(a.admin_cert_pem, b.admin_cert_pem, "the admin cert is kept");
        assert_eq!(a.admin_token, b.admin_token);
        assert_eq!(a.join_token, b.join_token);
        let (hash, secret) = jointoken::parse(&a.join_token).unwrap();
        assert_eq!(hash, jointoken::sha256_hex(a.ca_cert_pem.as_bytes()));
        assert!(secret.len() >= 32);
        assert!(days_left(&a.admin_cert_pem).unwrap() > 360);
        let mode = std::fs::metadata(dir.path().join("tls/ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("tls"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700, "only the owner reads the keys");
        let kc = a.kubeconfig("https://127.0.0.1:6443");
        assert!(kc.contains("server: https://127.0.0.1:6443"));
        assert!(kc.contains("current-context: ferrokube"));
    }
}
