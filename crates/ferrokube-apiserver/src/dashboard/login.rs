//! Logging in to the dashboard: the body of `POST /dashboard/session`
//! (a bearer token, a kubeconfig's text, or a one-time code) checked as
//! the API server checks the same credentials on a request.
//!
//! A kubeconfig's user may carry a token or a client certificate and its
//! key (embedded: `client-certificate-data` and `client-key-data`; a
//! browser cannot send the files a path names). The certificate must be
//! one the API server accepts (signed by the cluster CA, valid now) and
//! the key must be its key: the key's public half is compared with the
//! certificate's, then the key is dropped. It is never kept, logged or
//! sent back.

use base64::Engine;
use ferrokube_api::status::ApiError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use super::session::{Credential, Login, Sessions};
use crate::authn::{ClientCertAuthenticator, TokenAuthenticator};

/// The credentials a login is checked against.
pub(crate) struct Authenticators<'a> {
    pub(crate) tokens: &'a TokenAuthenticator,
    pub(crate) certs: &'a ClientCertAuthenticator,
}

/// A 401 `Status` saying why a login failed (never which part of a secret
/// was wrong).
pub(crate) fn refused(message: impl Into<String>) -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: message.into(),
        details: None,
    }
}

/// The identity the body of `POST /dashboard/session` proves.
pub(crate) fn login(
    body: &[u8],
    auth: &Authenticators<'_>,
    sessions: &Sessions,
) -> Result<Login, ApiError> {
    let asked: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Some(obj) = asked.as_object() else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object with \"token\", \"kubeconfig\" or \"code\"",
        ));
    };
    let string = |k: &str| -> Result<Option<&str>, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::bad_request(format!("{k:?} must be a string"))),
        }
    };
    let (token, kubeconfig, code) = (string("token")?, string("kubeconfig")?, string("code")?);
    match (token, kubeconfig, code) {
        (Some(t), None, None) => by_token(t.trim(), auth.tokens),
        (None, Some(k), None) => by_kubeconfig(k, string("context")?, auth),
        (None, None, Some(c)) => sessions.take_code(c.trim()).ok_or_else(|| {
            refused("the one-time code is not valid: it is unknown, used or expired")
        }),
        _ => Err(ApiError::bad_request(
            "give exactly one of \"token\", \"kubeconfig\" or \"code\"",
        )),
    }
}

/// A bearer token the server accepts.
fn by_token(token: &str, tokens: &TokenAuthenticator) -> Result<Login, ApiError> {
    if token.is_empty() {
        return Err(ApiError::bad_request("the token is empty"));
    }
    let user = tokens
        .authenticate(&format!("Bearer {token}"))
        .ok_or_else(|| refused("the token is not valid for this cluster"))?;
    Ok(Login {
        user,
        credential: Credential::Token(token.to_string()),
        not_after: None,
    })
}

/// The user entry of a kubeconfig's context (`context`, else the current
/// one).
fn kubeconfig_user(text: &str, context: Option<&str>) -> Result<Value, ApiError> {
    let config: Value = serde_saphyr::from_str(text)
        .map_err(|_| ApiError::bad_request("the kubeconfig is not YAML (or JSON)"))?;
    let named = |list: &str, name: &str| -> Option<Value> {
        config
            .get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .cloned()
    };
    let context_name = match context.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => config
            .get("current-context")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("the kubeconfig has no current-context: name a context")
            })?
            .to_string(),
    };
    let ctx = named("contexts", &context_name).ok_or_else(|| {
        ApiError::bad_request(format!("the kubeconfig has no context {context_name:?}"))
    })?;
    let user_name = ctx
        .pointer("/context/user")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let user = named("users", user_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "the kubeconfig's context {context_name:?} names no user of the kubeconfig"
        ))
    })?;
    Ok(user.get("user").cloned().unwrap_or(Value::Null))
}

/// The user of a kubeconfig: its token, or its client certificate proven
/// by its key.
fn by_kubeconfig(
    text: &str,
    context: Option<&str>,
    auth: &Authenticators<'_>,
) -> Result<Login, ApiError> {
    let user = kubeconfig_user(text, context)?;
    let field = |k: &str| {
        user.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let files: Vec<&str> = ["client-certificate", "client-key", "tokenFile"]
        .into_iter()
        .filter(|k| field(k).is_some())
        .collect();
    if let Some(token) = field("token") {
        return by_token(token.trim(), auth.tokens);
    }
    if !files.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the kubeconfig's user names files ({}), which a browser cannot send: \
             embed them with `kubectl config view --minify --flatten --raw` and upload that",
            files.join(", ")
        )));
    }
    if user.get("exec").is_some() || user.get("auth-provider").is_some() {
        return Err(ApiError::bad_request(
            "the kubeconfig's user runs a credential plugin (exec or auth-provider), \
             which the server cannot run: use a token or a client certificate and key",
        ));
    }
    match (field("client-certificate-data"), field("client-key-data")) {
        (Some(cert), Some(key)) => by_certificate(cert, key, auth.certs),
        (Some(_), None) => Err(ApiError::bad_request(
            "the kubeconfig's user has client-certificate-data but no client-key-data",
        )),
        _ => Err(ApiError::bad_request(
            "the kubeconfig's user has neither a token nor client-certificate-data and client-key-data",
        )),
    }
}

fn decode_base64(what: &str, data: &str) -> Result<Vec<u8>, ApiError> {
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|_| ApiError::bad_request(format!("{what} is not base64")))
}

/// A client certificate (base64 of PEM, as a kubeconfig embeds it) and its
/// key: the user, if the cluster accepts the certificate and the key is
/// its key.
fn by_certificate(
    cert_b64: &str,
    key_b64: &str,
    certs: &ClientCertAuthenticator,
) -> Result<Login, ApiError> {
    let cert_pem = decode_base64("client-certificate-data", cert_b64)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::bad_request("client-certificate-data holds no PEM certificate"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| ApiError::bad_request("client-certificate-data holds no PEM certificate"))?;
    // The key is checked, then dropped with this scope.
    {
        let key_pem = Zeroizing(decode_base64("client-key-data", key_b64)?);
        let key = PrivateKeyDer::from_pem_slice(&key_pem.0).map_err(|_| {
            ApiError::bad_request("client-key-data holds no PEM private key (PKCS#8, EC or RSA)")
        })?;
        if !key_matches(&key, leaf)? {
            return Err(refused(
                "the client key does not belong to the client certificate",
            ));
        }
    }
    let user = certs.authenticate(&chain).ok_or_else(|| {
        refused(
            "the client certificate is not accepted: not signed by the cluster CA, \
             expired or not yet valid, or naming no user",
        )
    })?;
    let not_after = crate::authn::not_after(leaf);
    Ok(Login {
        user,
        credential: Credential::Proven,
        not_after,
    })
}

/// Bytes overwritten with zeros when dropped.
struct Zeroizing(Vec<u8>);

impl Drop for Zeroizing {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // A volatile write is not needed for correctness here; zeroing
            // limits how long the key's bytes stay in freed memory.
            *b = 0;
        }
    }
}

/// Whether `key`'s public key is the one `cert` certifies (the
/// SubjectPublicKeyInfo's key bits compared).
fn key_matches(key: &PrivateKeyDer<'_>, cert: &CertificateDer<'_>) -> Result<bool, ApiError> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key).map_err(|_| {
        ApiError::bad_request(
            "client-key-data is not a supported private key (RSA, ECDSA P-256/P-384, Ed25519)",
        )
    })?;
    let Some(spki) = signing.public_key() else {
        return Err(ApiError::bad_request(
            "the public half of client-key-data could not be derived",
        ));
    };
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| {
        ApiError::bad_request("client-certificate-data is not an X.509 certificate")
    })?;
    use x509_parser::prelude::FromDer;
    let (_, from_key) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki.as_ref())
        .map_err(|_| ApiError::internal("parsing the key's public half"))?;
    let in_cert = &cert.tbs_certificate.subject_pki;
    Ok(in_cert.algorithm.algorithm == from_key.algorithm.algorithm
        && in_cert.subject_public_key.data == from_key.subject_public_key.data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::authn::UserInfo;
    use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
    use std::sync::Arc;

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let (pem, issuer) = crate::authn::tests::ca(name);
        Ca { pem, issuer }
    }

    fn client(ca: &Ca, key: &KeyPair) -> String {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "jane");
        p.distinguished_name.push(DnType::OrganizationName, "dev");
        p.signed_by(key, &ca.issuer).unwrap().pem()
    }

    fn authenticator(ca: &Ca) -> ClientCertAuthenticator {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        ClientCertAuthenticator::new(roots, Arc::new(rustls::crypto::ring::default_provider()))
            .unwrap()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn kubeconfig(user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n\
             contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n\
             - name: other\n  context:\n    cluster: c\n    user: nobody\n\
             current-context: ctx\nusers:\n- name: u\n  user:\n{user}"
        )
    }

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn try_login(v: Value, certs: &ClientCertAuthenticator) -> Result<Login, ApiError> {
        let mut tokens = TokenAuthenticator::default();
        tokens.add("s3cret", UserInfo::authenticated("tok-user", ["g"]));
        let auth = Authenticators {
            tokens: &tokens,
            certs,
        };
        login(&body(v), &auth, &Sessions::default())
    }

    #[test]
    fn tokens_and_kubeconfig_tokens() {
        let ours = ca("cluster");
        let certs = authenticator(&ours);
        let l = try_login(serde_json::json!({"token": "s3cret"}), &certs).unwrap();
        assert_eq!(l.user.name, "tok-user");
        let e = try_login(serde_json::json!({"token": "nope"}), &certs).unwrap_err();
        assert_eq!(e.code, 401);
        assert!(!e.message.contains("nope"));
        let kc = kubeconfig("    token: s3cret\n");
        let l = try_login(serde_json::json!({ "kubeconfig": kc }), &certs).unwrap();
        assert_eq!(l.user.name, "tok-user");
        let e = try_login(
            serde_json::json!({ "kubeconfig": kc, "context": "other" }),
            &certs,
        )
        .unwrap_err();
        assert_eq!(e.code, 400, "{e:?}");
        let e = try_login(
            serde_json::json!({ "kubeconfig": kc, "context": "missing" }),
            &certs,
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn malformed_bodies_are_400() {
        let certs = authenticator(&ca("cluster"));
        for b in [
            serde_json::json!([1]),
            serde_json::json!({}),
            serde_json::json!({"token": 1}),
            serde_json::json!({"token": "a", "code": "b"}),
            serde_json::json!({"kubeconfig": ": : :\n\t- ["}),
        ] {
            assert_eq!(try_login(b.clone(), &certs).unwrap_err().code, 400, "{b}");
        }
        let tokens = TokenAuthenticator::default();
        let auth = Authenticators {
            tokens: &tokens,
            certs: &certs,
        };
        assert_eq!(
            login(b"not json", &auth, &Sessions::default())
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn certificates_need_their_key_and_the_cluster_ca() {
        let ours = ca("cluster");
        let certs = authenticator(&ours);
        let key = KeyPair::generate().unwrap();
        let cert = client(&ours, &key);
        let with = |cert: &str, key: &str| {
            let kc = kubeconfig(&format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(cert),
                b64(key)
            ));
            try_login(serde_json::json!({ "kubeconfig": kc }), &certs)
        };
        let l = with(&cert, &key.serialize_pem()).unwrap();
        assert_eq!(l.user.name, "jane");
        assert!(l.user.groups.contains(&"dev".to_string()));
        assert!(l.not_after.is_some());
        // Another key.
        let e = with(&cert, &KeyPair::generate().unwrap().serialize_pem()).unwrap_err();
        assert_eq!(e.code, 401);
        assert!(e.message.contains("does not belong"), "{}", e.message);
        // Another CA.
        let theirs = ca("elsewhere");
        let e = with(&client(&theirs, &key), &key.serialize_pem()).unwrap_err();
        assert_eq!(e.code, 401);
        assert!(e.message.contains("cluster CA"), "{}", e.message);
        // Not a key.
        assert_eq!(with(&cert, "garbage").unwrap_err().code, 400);
    }

    #[test]
    fn sec1_keys_are_read() {
        let ours = ca("cluster");
        let certs = authenticator(&ours);
        // An EC key in SEC1 form ("EC PRIVATE KEY"), made by ring.
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let key = KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let cert = client(&ours, &key);
        let sec1 = sec1_of_p256_pkcs8(pkcs8.as_ref());
        let sec1_pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&sec1)
        );
        let kc = kubeconfig(&format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&cert),
            b64(&sec1_pem)
        ));
        let l = try_login(serde_json::json!({ "kubeconfig": kc }), &certs).unwrap();
        assert_eq!(l.user.name, "jane");
    }

    /// The SEC1 `ECPrivateKey` inside a PKCS#8 document of a P-256 key (the
    /// OCTET STRING `privateKey`), as `openssl ec` writes it.
    fn sec1_of_p256_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
        // PKCS#8: SEQUENCE { INTEGER 0, SEQUENCE { oids }, OCTET STRING { ECPrivateKey } }
        let (_, any) = x509_parser::der_parser::der::parse_der(pkcs8).unwrap();
        let seq = any.as_sequence().unwrap();
        seq[2].as_slice().unwrap().to_vec()
    }

    #[test]
    fn files_and_plugins_are_refused_with_a_reason() {
        let certs = authenticator(&ca("cluster"));
        let kc = kubeconfig("    client-certificate: /etc/x.crt\n    client-key: /etc/x.key\n");
        let e = try_login(serde_json::json!({ "kubeconfig": kc }), &certs).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("--flatten"), "{}", e.message);
        let kc = kubeconfig("    exec:\n      command: aws\n");
        let e = try_login(serde_json::json!({ "kubeconfig": kc }), &certs).unwrap_err();
        assert!(e.message.contains("plugin"), "{}", e.message);
    }

    #[test]
    fn codes_log_in_once() {
        let certs = authenticator(&ca("cluster"));
        let tokens = TokenAuthenticator::default();
        let sessions = Sessions::default();
        let (code, _) = sessions
            .create_code(Login {
                user: UserInfo::authenticated("coder", Vec::<String>::new()),
                credential: Credential::Proven,
                not_after: None,
            })
            .unwrap();
        let auth = Authenticators {
            tokens: &tokens,
            certs: &certs,
        };
        let b = body(serde_json::json!({ "code": code }));
        assert_eq!(login(&b, &auth, &sessions).unwrap().user.name, "coder");
        assert_eq!(login(&b, &auth, &sessions).unwrap_err().code, 401);
    }
}
