//! The CSR signer: signs approved CertificateSigningRequests of the built-in
//! signers `kubernetes.io/kube-apiserver-client`,
//! `kubernetes.io/kube-apiserver-client-kubelet` and
//! `kubernetes.io/kubelet-serving` with the cluster CA, as Kubernetes'
//! `csrsigning` controller does: the certificate has the request's subject
//! and names, the usages of `spec.usages`, and lasts `expirationSeconds`
//! (at least 10 minutes, at most the signing duration, never past the CA);
//! a request its signer does not accept gets a `Failed` condition
//! (`SignerValidationFailure`) instead. Requests of other signers are left
//! to their own signers.
//!
//! Level-triggered: every pass looks at every CSR (a watch wakes it, and it
//! runs again now and then), and a CSR with a certificate or a `Failed`
//! condition is done.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, PostParams};
use kube::Api;
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension};

use crate::controller::{self, Action, Context, Reconciler};
use crate::util;
use crate::watchqueue::Key;

/// The signers this controller signs for.
pub(crate) const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub(crate) const KUBE_APISERVER_CLIENT_KUBELET: &str =
    "kubernetes.io/kube-apiserver-client-kubelet";
pub(crate) const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

/// Kubernetes' default `--cluster-signing-duration`: one year.
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far back a certificate's validity starts (clock skew).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Certificates shorter than this are not backdated at their end.
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest certificate issued.
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// How often a pass runs without a wake-up.
const RESYNC: Duration = Duration::from_secs(60);

/// The CA that signs: its certificate and key, as PEM.
#[derive(Clone)]
pub struct SigningCa {
    /// The CA certificate (PEM), the issuer of what is signed.
    pub cert_pem: String,
    /// The CA's private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningCa { .. }")
    }
}

/// What a request asks to be named.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Requested {
    pub(crate) common_name: String,
    pub(crate) organizations: Vec<String>,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<IpAddr>,
    pub(crate) emails: Vec<String>,
    pub(crate) uris: Vec<String>,
}

/// Why a certificate request is refused: the message goes into the CSR's
/// Failed condition, in Kubernetes' words.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The request is not one PEM block of type CERTIFICATE REQUEST.
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotCsrPem,
    /// The PEM block's DER is not a PKCS#10 request (the parser's reason).
    #[error("x509: malformed certificate request: {0}")]
    Malformed(String),
    /// A client certificate asks for a usage beyond digital signature, key
    /// encipherment and client auth (the usage).
    #[error("invalid usage for client certificate: {0}")]
    InvalidClientUsage(String),
    /// A client certificate does not ask for client auth.
    #[error("missing required usage for client certificate: client auth")]
    MissingClientAuth,
    /// A kubelet signer's request has an organization other than
    /// exactly system:nodes.
    #[error("subject organization is not system:nodes")]
    NotNodesOrganization,
    /// A kubelet signer's request has a common name not starting with
    /// system:node:.
    #[error("subject common name does not begin with system:node:")]
    NotNodeCommonName,
    /// The request has subjectAltNames of a kind (DNS, Email, IP, URI) the
    /// signer does not allow.
    #[error("{0} subjectAltNames are not allowed")]
    SanNotAllowed(&'static str),
    /// A kubelet serving request has neither DNS nor IP subjectAltNames.
    #[error("DNS or IP subjectAltName is required")]
    SanRequired,
    /// The usages are not the set the signer requires (that set, as
    /// Kubernetes lists it).
    #[error("usages did not match [{0}]")]
    UsagesMismatch(&'static str),
    /// The signer is not one of the built-in ones this controller serves.
    #[error("unrecognized signerName: {0:?}")]
    UnknownSigner(String),
}

/// Why an approved request could not be signed (logged; the CSR is left
/// for a later pass).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    /// The CA's private key does not parse.
    #[error("the CA key: {0}")]
    CaKey(String),
    /// The CA certificate does not parse.
    #[error("the CA certificate: {0}")]
    CaCert(String),
    /// The request does not parse for signing.
    #[error("unable to parse csr: {0}")]
    Csr(String),
    /// The CA certificate has expired (its NotAfter).
    #[error("refusing to sign a certificate that expired in the past: NotAfter={0}")]
    CaExpired(time::OffsetDateTime),
    /// A usage has no X.509 key usage or extended key usage.
    #[error("unrecognized usage: {0}")]
    UnknownUsage(String),
    /// Signing itself failed.
    #[error("error auto signing csr: {0}")]
    Signing(String),
}

/// Reads the subject and names of a PEM certificate request.
pub(crate) fn parse_request(pem: &[u8]) -> Result<Requested, RequestError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| RequestError::NotCsrPem)?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(RequestError::NotCsrPem);
    }
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| RequestError::Malformed(e.to_string()))?;
    let info = &req.certification_request_info;
    let mut out = Requested::default();
    for cn in info.subject.iter_common_name() {
        out.common_name = cn.as_str().unwrap_or_default().to_string();
    }
    for o in info.subject.iter_organization() {
        out.organizations
            .push(o.as_str().unwrap_or_default().to_string());
    }
    if let Some(exts) = req.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                        GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                        GeneralName::URI(u) => out.uris.push(u.to_string()),
                        GeneralName::IPAddress(b) => {
                            if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                out.ip_addresses.push(IpAddr::from(a));
                            } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                out.ip_addresses.push(IpAddr::from(a));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}

fn same_set(usages: &[String], want: &[&str]) -> bool {
    let mut have: Vec<&str> = usages.iter().map(String::as_str).collect();
    have.sort();
    have.dedup();
    let mut want = want.to_vec();
    want.sort();
    have == want
}

/// Whether `signer` accepts the request, with Kubernetes' reasons.
pub(crate) fn check_for_signer(
    signer: &str,
    req: &Requested,
    usages: &[String],
) -> Result<(), RequestError> {
    match signer {
        KUBE_APISERVER_CLIENT => {
            let mut client_auth = false;
            for u in usages {
                match u.as_str() {
                    "digital signature" | "key encipherment" => {}
                    "client auth" => client_auth = true,
                    other => return Err(RequestError::InvalidClientUsage(other.to_string())),
                }
            }
            if !client_auth {
                return Err(RequestError::MissingClientAuth);
            }
            Ok(())
        }
        KUBE_APISERVER_CLIENT_KUBELET => {
            if req.organizations != ["system:nodes"] {
                return Err(RequestError::NotNodesOrganization);
            }
            if !req.dns_names.is_empty() {
                return Err(RequestError::SanNotAllowed("DNS"));
            }
            if !req.emails.is_empty() {
                return Err(RequestError::SanNotAllowed("Email"));
            }
            if !req.ip_addresses.is_empty() {
                return Err(RequestError::SanNotAllowed("IP"));
            }
            if !req.uris.is_empty() {
                return Err(RequestError::SanNotAllowed("URI"));
            }
            if !req.common_name.starts_with("system:node:") {
                return Err(RequestError::NotNodeCommonName);
            }
            let with_rsa = ["digital signature", "key encipherment", "client auth"];
            if !same_set(usages, &with_rsa)
                && !same_set(usages, &["digital signature", "client auth"])
            {
                return Err(RequestError::UsagesMismatch(
                    "client auth digital signature key encipherment",
                ));
            }
            Ok(())
        }
        KUBELET_SERVING => {
            if req.organizations != ["system:nodes"] {
                return Err(RequestError::NotNodesOrganization);
            }
            if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
                return Err(RequestError::SanRequired);
            }
            if !req.emails.is_empty() {
                return Err(RequestError::SanNotAllowed("Email"));
            }
            if !req.uris.is_empty() {
                return Err(RequestError::SanNotAllowed("URI"));
            }
            let with_rsa = ["digital signature", "key encipherment", "server auth"];
            if !same_set(usages, &with_rsa)
                && !same_set(usages, &["digital signature", "server auth"])
            {
                return Err(RequestError::UsagesMismatch(
                    "digital signature key encipherment server auth",
                ));
            }
            if !req.common_name.starts_with("system:node:") {
                return Err(RequestError::NotNodeCommonName);
            }
            Ok(())
        }
        other => Err(RequestError::UnknownSigner(other.to_string())),
    }
}

/// How long a certificate lasts: the requested time, at least
/// [`MIN_DURATION`], at most `max`.
pub(crate) fn duration(expiration_seconds: Option<i32>, max: Duration) -> Duration {
    match expiration_seconds {
        None => max,
        Some(s) => Duration::from_secs(s.max(0) as u64).clamp(MIN_DURATION, max),
    }
}

/// Signs the PEM request `pem` for `usages`, valid from now (backdated) for
/// `ttl`: a PEM certificate.
pub(crate) fn sign(
    ca: &SigningCa,
    pem: &str,
    usages: &[String],
    ttl: Duration,
) -> Result<String, SignError> {
    use rcgen::{ExtendedKeyUsagePurpose as E, KeyUsagePurpose as K};
    let key = rcgen::KeyPair::from_pem(&ca.key_pem).map_err(|e| SignError::CaKey(e.to_string()))?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert_pem, key)
        .map_err(|e| SignError::CaCert(e.to_string()))?;
    let ca_not_after = ca_not_after(&ca.cert_pem)?;
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(pem)
        .map_err(|e| SignError::Csr(e.to_string()))?;
    let p = &mut csr.params;
    let now = time::OffsetDateTime::now_utc();
    if now >= ca_not_after {
        return Err(SignError::CaExpired(ca_not_after));
    }
    p.not_before = now - BACKDATE;
    let mut not_after = if ttl < SHORT {
        now + ttl
    } else {
        now + ttl - BACKDATE
    };
    if not_after > ca_not_after {
        not_after = ca_not_after;
    }
    p.not_after = not_after;
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    let serial: [u8; 16] = rand_bytes();
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    p.key_usages.clear();
    p.extended_key_usages.clear();
    p.custom_extensions.clear();
    for u in usages {
        match u.as_str() {
            "signing" | "digital signature" => p.key_usages.push(K::DigitalSignature),
            "content commitment" => p.key_usages.push(K::ContentCommitment),
            "key encipherment" => p.key_usages.push(K::KeyEncipherment),
            "key agreement" => p.key_usages.push(K::KeyAgreement),
            "data encipherment" => p.key_usages.push(K::DataEncipherment),
            "cert sign" => p.key_usages.push(K::KeyCertSign),
            "crl sign" => p.key_usages.push(K::CrlSign),
            "encipher only" => p.key_usages.push(K::EncipherOnly),
            "decipher only" => p.key_usages.push(K::DecipherOnly),
            "any" => p.extended_key_usages.push(E::Any),
            "server auth" => p.extended_key_usages.push(E::ServerAuth),
            "client auth" => p.extended_key_usages.push(E::ClientAuth),
            "code signing" => p.extended_key_usages.push(E::CodeSigning),
            "email protection" => p.extended_key_usages.push(E::EmailProtection),
            "timestamping" => p.extended_key_usages.push(E::TimeStamping),
            "ocsp signing" => p.extended_key_usages.push(E::OcspSigning),
            other => return Err(SignError::UnknownUsage(other.to_string())),
        }
    }
    p.key_usages.dedup();
    let cert = csr
        .signed_by(&issuer)
        .map_err(|e| SignError::Signing(e.to_string()))?;
    Ok(cert.pem())
}

fn rand_bytes() -> [u8; 16] {
    let mut b: [u8; 16] = rand::random();
    b[0] &= 0x7f; // a positive serial number
    b
}

fn ca_not_after(pem: &str) -> Result<time::OffsetDateTime, SignError> {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| SignError::CaCert(e.to_string()))?;
    let cert = der
        .parse_x509()
        .map_err(|e| SignError::CaCert(e.to_string()))?;
    Ok(cert.validity().not_after.to_datetime())
}

fn is_true(csr: &CertificateSigningRequest, t: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == t && c.status == "True"))
}

/// What one CSR needs: nothing, a certificate, or a `Failed` condition.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    Nothing,
    Issued(String),
    Failed(String),
}

/// Decides what to do with `csr`.
pub(crate) fn decide(ca: &SigningCa, max: Duration, csr: &CertificateSigningRequest) -> Outcome {
    if !is_true(csr, "Approved") || is_true(csr, "Failed") {
        return Outcome::Nothing;
    }
    let has_certificate = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    let signer = csr.spec.signer_name.as_str();
    if has_certificate
        || !matches!(
            signer,
            KUBE_APISERVER_CLIENT | KUBE_APISERVER_CLIENT_KUBELET | KUBELET_SERVING
        )
    {
        return Outcome::Nothing;
    }
    let pem = &csr.spec.request.0;
    let req = match parse_request(pem) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let usages = csr.spec.usages.clone().unwrap_or_default();
    if let Err(e) = check_for_signer(signer, &req, &usages) {
        return Outcome::Failed(e.to_string());
    }
    let ttl = duration(csr.spec.expiration_seconds, max);
    match sign(ca, &String::from_utf8_lossy(pem), &usages, ttl) {
        Ok(cert) => Outcome::Issued(cert),
        Err(e) => {
            tracing::warn!(csr = csr.metadata.name.as_deref().unwrap_or(""), error = %e, "could not sign");
            Outcome::Nothing
        }
    }
}

async fn pass(api: &Api<CertificateSigningRequest>, ca: &SigningCa, max: Duration) {
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "listing CSRs");
            return;
        }
    };
    for mut csr in list.items {
        let name = csr.metadata.name.clone().unwrap_or_default();
        match decide(ca, max, &csr) {
            Outcome::Nothing => continue,
            Outcome::Issued(cert) => {
                {
                    let s = csr.status.get_or_insert_with(Default::default);
                    s.certificate = Some(k8s_openapi::ByteString(cert.into_bytes()));
                }
                tracing::info!(csr = name, "signed a certificate");
            }
            Outcome::Failed(message) => {
                let now = Time(jiff::Timestamp::now());
                {
                    let s = csr.status.get_or_insert_with(Default::default);
                    s.conditions.get_or_insert_with(Vec::new).push(
                        CertificateSigningRequestCondition {
                            type_: "Failed".into(),
                            status: "True".into(),
                            reason: Some("SignerValidationFailure".into()),
                            message: Some(message),
                            last_update_time: Some(now),
                            last_transition_time: None,
                        },
                    );
                }
                tracing::info!(csr = name, "refused a certificate request");
            }
        }
        if let Err(e) = api
            .replace_status(&name, &PostParams::default(), &csr)
            .await
        {
            tracing::debug!(csr = name, error = %e, "writing a CSR's status");
        }
    }
}

/// Signs approved requests until `cancel`.
pub async fn run(client: kube::Client, ca: SigningCa, max: Duration, cancel: CancellationToken) {
    let c = Arc::new(Signer {
        ctx: Context::new(NAME, cancel.clone()),
        api: Api::all(client),
        ca,
        max,
    });
    let watch = util::on_watch(c.api.clone(), c.ctx.pass_trigger(), cancel);
    controller::run(c, 1).await;
    watch.abort();
}

/// The controller's name (its metrics).
const NAME: &str = "csrsigning";

/// The signer: a pass over every request on each change.
struct Signer {
    ctx: Context,
    api: Api<CertificateSigningRequest>,
    ca: SigningCa,
    /// The longest certificate it issues.
    max: Duration,
}

impl Reconciler for Signer {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        pass(&self.api, &self.ca, self.max).await;
        Ok(Action::requeue(RESYNC))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn ca() -> SigningCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        SigningCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn request(cn: &str, org: Option<&str>, sans: Vec<String>) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if let Some(o) = org {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, o);
        }
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr(
        pem: &str,
        signer: &str,
        usages: &[&str],
        secs: Option<i32>,
        approved: bool,
    ) -> CertificateSigningRequest {
        let mut v = serde_json::json!({
            "metadata": {"name": "c"},
            "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
                "signerName": signer, "usages": usages}});
        if let Some(s) = secs {
            v["spec"]["expirationSeconds"] = s.into();
        }
        if approved {
            v["status"] =
                serde_json::json!({"conditions": [{"type": "Approved", "status": "True"}]});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn approved_client_requests_are_signed_by_the_ca_for_their_subject() {
        let ca = ca();
        let pem = request("alice", Some("devs"), vec![]);
        let c = csr(
            &pem,
            KUBE_APISERVER_CLIENT,
            &["client auth", "digital signature"],
            Some(3600),
            true,
        );
        let Outcome::Issued(cert) = decide(&ca, DEFAULT_SIGNING_DURATION, &c) else {
            panic!("not issued");
        };
        let (_, der) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
        let x = der.parse_x509().unwrap();
        assert_eq!(
            x.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "alice"
        );
        assert_eq!(
            x.subject()
                .iter_organization()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "devs"
        );
        assert_eq!(
            x.issuer()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "test-ca"
        );
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(
            life,
            3600 + 300,
            "short certificates are backdated only at the start"
        );
        // The CA's signature holds.
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).unwrap();
        let ca_x = ca_der.parse_x509().unwrap();
        x.verify_signature(Some(ca_x.public_key())).unwrap();
        assert!(x.extended_key_usage().unwrap().unwrap().value.client_auth);
        // Not approved, or already issued: nothing to do.
        let pending = csr(&pem, KUBE_APISERVER_CLIENT, &["client auth"], None, false);
        assert_eq!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &pending),
            Outcome::Nothing
        );
        let other = csr(&pem, "example.com/mine", &["client auth"], None, true);
        assert_eq!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &other),
            Outcome::Nothing
        );
    }

    #[test]
    fn requests_a_signer_does_not_accept_fail_with_its_reason() {
        let ca = ca();
        let pem = request("alice", None, vec![]);
        let c = csr(&pem, KUBE_APISERVER_CLIENT, &["server auth"], None, true);
        assert_eq!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &c),
            Outcome::Failed("invalid usage for client certificate: server auth".into())
        );
        let c = csr(
            &pem,
            KUBE_APISERVER_CLIENT_KUBELET,
            &["client auth", "digital signature"],
            None,
            true,
        );
        assert_eq!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &c),
            Outcome::Failed("subject organization is not system:nodes".into())
        );
        let node = request("system:node:n1", Some("system:nodes"), vec![]);
        let c = csr(
            &node,
            KUBELET_SERVING,
            &["server auth", "digital signature"],
            None,
            true,
        );
        assert_eq!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &c),
            Outcome::Failed("DNS or IP subjectAltName is required".into())
        );
        let serving = request(
            "system:node:n1",
            Some("system:nodes"),
            vec!["n1.example".into()],
        );
        let c = csr(
            &serving,
            KUBELET_SERVING,
            &["server auth", "digital signature", "key encipherment"],
            None,
            true,
        );
        assert!(matches!(
            decide(&ca, DEFAULT_SIGNING_DURATION, &c),
            Outcome::Issued(_)
        ));
    }

    #[test]
    fn durations_are_clamped() {
        let max = DEFAULT_SIGNING_DURATION;
        assert_eq!(duration(None, max), max);
        assert_eq!(duration(Some(60), max), MIN_DURATION);
        assert_eq!(duration(Some(7200), max), Duration::from_secs(7200));
        assert_eq!(duration(Some(i32::MAX), max), max);
    }
}
