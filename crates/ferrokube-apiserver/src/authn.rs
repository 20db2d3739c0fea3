//! Authentication: who a request comes from. A client certificate signed by
//! the cluster CA names the user (CN) and groups (O); a bearer token is
//! looked up among the tokens the server knows. The result travels with the
//! request as [`UserInfo`], for authorization to read later.
//!
//! As in Kubernetes, the TLS layer only asks for a client certificate: it
//! checks that the client holds the certificate's key, not who signed it. The
//! chain is checked against the cluster CA after the handshake
//! ([`ClientCertAuthenticator`]), so a certificate from another CA (or an
//! expired one) makes the request unauthenticated (a 401 `Status`, unless a
//! bearer token authenticates it) instead of failing the TLS handshake.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::satoken::ServiceAccountAuthenticator;

/// The authenticated user of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub(crate) name: String,
    /// The user's uid, when the authenticator knows one (a service
    /// account's).
    pub(crate) uid: String,
    pub(crate) groups: Vec<String>,
    /// Further facts about the user (`user.Info.Extra`): set by
    /// impersonation (`Impersonate-Extra-*`), by service-account tokens
    /// (the credential and the pod they are bound to) and asked about by
    /// SubjectAccessReviews. Empty for most users.
    pub(crate) extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user without a uid, in `groups` and `system:authenticated`.
    pub fn authenticated<G: Into<String>>(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = G>,
    ) -> UserInfo {
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        groups.push("system:authenticated".into());
        UserInfo {
            name: name.into(),
            groups,
            ..Default::default()
        }
    }

    /// The user of a client certificate's subject.
    pub(crate) fn from_cert_der(der: &[u8]) -> Option<UserInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string));
        Some(UserInfo::authenticated(name, groups))
    }
}

/// Checks client certificate chains against the cluster CA, after the
/// handshake, and names their users.
#[derive(Clone)]
pub(crate) struct ClientCertAuthenticator {
    ca: Arc<dyn ClientCertVerifier>,
}

impl ClientCertAuthenticator {
    /// An authenticator for certificates signed by the CAs in `roots`.
    pub(crate) fn new(
        roots: rustls::RootCertStore,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<ClientCertAuthenticator, rustls::server::VerifierBuilderError> {
        let ca =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
        Ok(ClientCertAuthenticator { ca })
    }

    /// The user of a presented chain (leaf first), if the cluster CA signed
    /// it, it is valid now and it names a user.
    pub(crate) fn authenticate(&self, chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
        let (leaf, intermediates) = chain.split_first()?;
        match self
            .ca
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            Ok(_) => UserInfo::from_cert_der(leaf),
            Err(e) => {
                tracing::debug!(error = %e, "client certificate not accepted");
                None
            }
        }
    }

    /// The TLS layer's verifier: asks for a certificate (naming the cluster
    /// CA as acceptable), accepts any chain and leaves judging it to
    /// [`ClientCertAuthenticator::authenticate`], but still checks the
    /// handshake signature that proves the client holds the key.
    pub(crate) fn tls_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(ferrokube_pki::tls::RequestClientCert::new(self.ca.clone()))
    }
}

/// Bearer tokens the server accepts, and whose they are: the tokens it
/// knows (admin, join token), then service-account JWTs.
#[derive(Clone, Debug, Default)]
pub(crate) struct TokenAuthenticator {
    tokens: HashMap<String, UserInfo>,
    service_accounts: Option<ServiceAccountAuthenticator>,
}

impl TokenAuthenticator {
    pub(crate) fn add(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// Accepts service-account tokens too.
    pub(crate) fn with_service_accounts(&mut self, sa: ServiceAccountAuthenticator) {
        self.service_accounts = Some(sa);
    }

    /// The user of an `Authorization` header value, if it is a known bearer
    /// token or a valid service-account token.
    pub(crate) fn authenticate(&self, authorization: &str) -> Option<UserInfo> {
        let (scheme, token) = authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if let Some(user) = self.tokens.get(token) {
            return Some(user.clone());
        }
        self.service_accounts.as_ref()?.authenticate(token)
    }

    /// The API's audiences: those of service-account tokens, else the
    /// default issuer.
    fn api_audiences(&self) -> Vec<String> {
        match &self.service_accounts {
            Some(sa) => sa.keys.api_audiences.clone(),
            None => vec![crate::satoken::ISSUER.to_string()],
        }
    }

    /// TokenReview's question: whose is `token`, for a client accepting
    /// `audiences` (none: the API's)? The user and the audiences it is
    /// valid for, or why it does not authenticate. The tokens the server
    /// knows are valid for the API's audiences only.
    pub(crate) fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), crate::satoken::TokenError> {
        let api = self.api_audiences();
        let wanted = if audiences.is_empty() {
            api.clone()
        } else {
            audiences.to_vec()
        };
        if let Some(user) = self.tokens.get(token) {
            let valid_for: Vec<String> = api.into_iter().filter(|a| wanted.contains(a)).collect();
            return if valid_for.is_empty() {
                Err(crate::satoken::TokenError::Invalid)
            } else {
                Ok((user.clone(), valid_for))
            };
        }
        match &self.service_accounts {
            Some(sa) => sa.authenticate_for(token, &wanted),
            None => Err(crate::satoken::TokenError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = p.self_signed(&key).unwrap().pem();
        let issuer = Issuer::from_ca_cert_pem(&pem, key).unwrap();
        (pem, issuer)
    }

    fn client(issuer: &Issuer<'_, KeyPair>, days: std::ops::Range<i64>) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "jane");
        p.distinguished_name.push(DnType::OrganizationName, "dev");
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.start);
        p.not_after = now + time::Duration::days(days.end);
        p.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[test]
    fn client_certificates_are_judged_against_the_cluster_ca() {
        use rustls::pki_types::pem::PemObject;
        let (ours_pem, ours) = ca("cluster");
        let (_, theirs) = ca("elsewhere");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ours_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let authn = ClientCertAuthenticator::new(roots, provider).unwrap();

        let user = authn.authenticate(&[client(&ours, -1..30)]).unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, vec!["dev", "system:authenticated"]);
        assert_eq!(authn.authenticate(&[client(&theirs, -1..30)]), None);
        assert_eq!(
            authn.authenticate(&[client(&ours, -30..-1)]),
            None,
            "expired"
        );
        assert_eq!(
            authn.authenticate(&[client(&ours, 1..30)]),
            None,
            "not yet valid"
        );
        assert_eq!(authn.authenticate(&[]), None);
        // The TLS layer asks for a certificate but does not demand one.
        let tls = authn.tls_verifier();
        assert!(tls.offer_client_auth());
        assert!(!tls.client_auth_mandatory());
    }

    #[test]
    fn bearer_tokens() {
        let mut t = TokenAuthenticator::default();
        let admin = UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        t.add("s3cret", admin.clone());
        assert_eq!(t.authenticate("Bearer s3cret"), Some(admin));
        assert_eq!(
            t.authenticate("bearer s3cret").map(|u| u.name),
            Some("system:admin".into())
        );
        assert_eq!(t.authenticate("Bearer wrong"), None);
        assert_eq!(t.authenticate("Basic s3cret"), None);
        assert_eq!(t.authenticate("s3cret"), None);
    }
}
