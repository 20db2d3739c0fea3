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

/// When the client certificate that authenticated a request ends (its
/// `notAfter`): a request extension set by the listener, for sessions that
/// must not outlive it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CertNotAfter(pub(crate) std::time::SystemTime);

/// A certificate's `notAfter`.
pub(crate) fn not_after(der: &[u8]) -> Option<std::time::SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
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

/// The prefix of the WebSocket subprotocol that carries a bearer token
/// (Kubernetes' WebSocket protocol authenticator): browsers cannot set an
/// `Authorization` header on a WebSocket, so a page offers
/// `base64url.bearer.authorization.k8s.io.<token in unpadded base64url>`
/// among its subprotocols.
pub(crate) const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Why a WebSocket bearer subprotocol does not authenticate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProtocolRefusal {
    /// Two tokens offered.
    Multiple,
    /// Not unpadded base64url of UTF-8 text.
    Encoding,
    /// The token is the only protocol offered: none would be left to choose.
    Alone,
    /// The token does not authenticate.
    Invalid,
}

/// Whether `headers` ask for a WebSocket upgrade.
fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// The bearer token of a WebSocket upgrade's subprotocols and the other
/// subprotocols offered, in order: `Ok(None)` for a request without one.
fn protocol_token(
    headers: &http::HeaderMap,
) -> Result<Option<(String, Vec<String>)>, ProtocolRefusal> {
    use base64::Engine;
    if !is_websocket(headers) {
        return Ok(None);
    }
    let mut token = None;
    let mut others = Vec::new();
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    for p in offered {
        let Some(encoded) = p.strip_prefix(BEARER_PROTOCOL_PREFIX) else {
            others.push(p.to_string());
            continue;
        };
        if token.is_some() {
            return Err(ProtocolRefusal::Multiple);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ProtocolRefusal::Encoding)?;
        token = Some(String::from_utf8(raw).map_err(|_| ProtocolRefusal::Encoding)?);
    }
    match token.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(_) if others.iter().all(|p| p.is_empty()) => Err(ProtocolRefusal::Alone),
        Some(t) => Ok(Some((t, others))),
    }
}

impl TokenAuthenticator {
    /// Kubernetes' WebSocket protocol authenticator: the user of a bearer
    /// token offered as a subprotocol of a WebSocket upgrade, whose entry
    /// is then removed from `Sec-WebSocket-Protocol` (so it is never chosen,
    /// echoed or passed on). `None` when the request offers no such token.
    pub(crate) fn authenticate_websocket(
        &self,
        headers: &mut http::HeaderMap,
    ) -> Option<Result<UserInfo, ProtocolRefusal>> {
        let (token, others) = match protocol_token(headers) {
            Ok(None) => return None,
            Ok(Some(found)) => found,
            Err(e) => return Some(Err(e)),
        };
        let Some(user) = self.authenticate(&format!("Bearer {token}")) else {
            return Some(Err(ProtocolRefusal::Invalid));
        };
        headers.remove(http::header::SEC_WEBSOCKET_PROTOCOL);
        if let Ok(v) = http::HeaderValue::from_str(&others.join(",")) {
            headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        Some(Ok(user))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// A self-signed CA named `name`: its PEM and an issuer to sign with.
    pub(crate) fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
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

    #[test]
    fn websocket_bearer_subprotocol() {
        use base64::Engine;
        let mut t = TokenAuthenticator::default();
        t.add(
            "s3cret",
            UserInfo::authenticated("ws-user", Vec::<String>::new()),
        );
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let headers = |protocols: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::UPGRADE, "websocket".parse().unwrap());
            h.insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                protocols.parse().unwrap(),
            );
            h
        };
        let mut h = headers(&format!(
            "v5.channel.k8s.io, {BEARER_PROTOCOL_PREFIX}{}, v4.channel.k8s.io",
            enc("s3cret")
        ));
        let user = t.authenticate_websocket(&mut h).unwrap().unwrap();
        assert_eq!(user.name, "ws-user");
        assert_eq!(
            h[http::header::SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io,v4.channel.k8s.io",
            "the token's entry is removed"
        );
        let mut h = headers(&format!(
            "v5.channel.k8s.io, {BEARER_PROTOCOL_PREFIX}{}",
            enc("wrong")
        ));
        assert_eq!(
            t.authenticate_websocket(&mut h),
            Some(Err(ProtocolRefusal::Invalid))
        );
        let mut h = headers(&format!("{BEARER_PROTOCOL_PREFIX}{}", enc("s3cret")));
        assert_eq!(
            t.authenticate_websocket(&mut h),
            Some(Err(ProtocolRefusal::Alone))
        );
        let mut h = headers(&format!("a, {BEARER_PROTOCOL_PREFIX}{}=", enc("s3cret")));
        assert_eq!(
            t.authenticate_websocket(&mut h),
            Some(Err(ProtocolRefusal::Encoding))
        );
        let two = format!(
            "a, {BEARER_PROTOCOL_PREFIX}{0}, {BEARER_PROTOCOL_PREFIX}{0}",
            enc("s3cret")
        );
        assert_eq!(
            t.authenticate_websocket(&mut headers(&two)),
            Some(Err(ProtocolRefusal::Multiple))
        );
        assert_eq!(
            t.authenticate_websocket(&mut headers("v5.channel.k8s.io")),
            None
        );
        // Not an upgrade: not looked at.
        let mut plain = http::HeaderMap::new();
        plain.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            format!("a, {BEARER_PROTOCOL_PREFIX}{}", enc("s3cret"))
                .parse()
                .unwrap(),
        );
        assert_eq!(t.authenticate_websocket(&mut plain), None);
    }
}
