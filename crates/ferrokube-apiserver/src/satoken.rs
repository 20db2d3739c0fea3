//! Service-account tokens: the signing key, the JWTs the `serviceaccounts/token`
//! subresource (TokenRequest) hands out, and their checking when they come
//! back as bearer tokens.
//!
//! The key is an ECDSA P-256 key made at first start under `DATA_DIR/tls/`
//! (`service-account.key`, PKCS#8, 0600) and reused after, like the CA.
//! Tokens are ES256 JWTs written here: `base64url(header)`, `.`,
//! `base64url(claims)`, `.`, `base64url(signature)`, with the claims
//! Kubernetes writes (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti` and the
//! private `kubernetes.io` claim naming the namespace, service account and
//! the object the token is bound to).
//!
//! A token is accepted when its signature is ours, its issuer is ours, it is
//! within `nbf`..`exp` (60 s leeway, as go-jose allows), one of its audiences
//! is the API's, and the service account and the bound pod or secret still
//! exist with the uids the token names (an object whose deletion started more
//! than 60 s ago no longer counts, as in Kubernetes).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde_json::{json, Value};

use ferrokube_api::status::{ApiError, FieldError};

use crate::authn::UserInfo;
use crate::rest::{ApiResult, Rest};

/// The issuer (`iss`) of our tokens, and the API's default audience.
pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How long a token lives when the request does not say.
pub(crate) const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The shortest lifetime a TokenRequest may ask for.
pub(crate) const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The longest (2^32 s, as Kubernetes).
pub(crate) const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 60;

/// An object whose deletion started longer ago than this no longer backs a
/// token bound to it.
const DELETION_GRACE_SECONDS: i64 = 60;

const KEY_FILE: &str = "service-account.key";

/// The signing key and what our tokens say about their issuer.
pub(crate) struct TokenKeys {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    key_id: String,
    pub issuer: String,
    /// The API's audiences; a token must name one of them to authenticate.
    pub api_audiences: Vec<String>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(label: &str, pem: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

impl TokenKeys {
    /// The key under `data_dir/tls`, made if missing.
    pub(crate) fn ensure(data_dir: &Path) -> anyhow::Result<TokenKeys> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read_to_string(&path) {
            Ok(pem) => pem_decode("PRIVATE KEY", &pem)
                .with_context(|| format!("{} holds no PKCS#8 private key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = SystemRandom::new();
                let doc =
                    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .map_err(|_| anyhow::anyhow!("generating the service-account key"))?;
                crate::pki::write_private(&path, &pem_encode("PRIVATE KEY", doc.as_ref()))?;
                tracing::info!(path = %path.display(), "created the service-account signing key");
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_pkcs8(&pkcs8)
            .with_context(|| format!("{} is not an ECDSA P-256 key", path.display()))
    }

    /// Keys from a PKCS#8 ECDSA P-256 private key.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<TokenKeys> {
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                .map_err(|e| anyhow::anyhow!("reading the service-account key: {e}"))?;
        // The key id: a hash of the public key, as Kubernetes names its keys.
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(TokenKeys {
            key,
            rng,
            key_id,
            issuer: ISSUER.to_string(),
            api_audiences: vec![ISSUER.to_string()],
        })
    }

    /// A signed token carrying `claims`.
    pub(crate) fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing a service-account token"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// The claims of a token signed with our key, issued by us, valid at
    /// `now` and meant for the API; `None` for anything else.
    #[cfg(test)]
    pub(crate) fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let claims = self.verify_signed(token, now).ok()?;
        claims
            .audiences
            .iter()
            .any(|a| self.api_audiences.contains(a))
            .then_some(claims)
    }

    /// The key id our tokens carry in their header (`kid`).
    #[cfg(test)]
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The claims of a token signed with our key, issued by us and valid at
    /// `now`, whatever its audiences; else why not (as Kubernetes' token
    /// authenticator words it where it says).
    pub(crate) fn verify_signed(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        const INVALID: TokenError = TokenError::Invalid;
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(INVALID);
        };
        let decode = |part: &str| -> Option<Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        let (Some(header), Some(claims)) = (decode(h), decode(c)) else {
            return Err(INVALID);
        };
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            // Not ours: another authenticator's token.
            return Err(INVALID);
        }
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(INVALID);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| INVALID)?;
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        public
            .verify(format!("{h}.{c}").as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        let claims = Claims::parse(&claims).ok_or(INVALID)?;
        if now > claims.expires + LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if now + LEEWAY_SECONDS < claims.not_before {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// The public signing key as a JSON Web Key, members in the order
    /// go-jose writes them (`use`, `kty`, `kid`, `crv`, `alg`, `x`, `y`).
    pub(crate) fn public_jwk(&self) -> String {
        // An uncompressed P-256 point: 0x04, X (32 bytes), Y (32 bytes).
        let point = self.key.public_key().as_ref();
        let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
        format!(
            r#"{{"use":"sig","kty":"EC","kid":{},"crv":"P-256","alg":"ES256","x":"{}","y":"{}"}}"#,
            Value::String(self.key_id.clone()),
            URL_SAFE_NO_PAD.encode(x),
            URL_SAFE_NO_PAD.encode(y)
        )
    }
}

/// A reference to an object by name and uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    pub name: String,
    pub uid: String,
}

impl ObjectRef {
    fn parse(v: Option<&Value>) -> Option<Option<ObjectRef>> {
        let Some(v) = v else {
            return Some(None);
        };
        Some(Some(ObjectRef {
            name: v.get("name")?.as_str()?.to_string(),
            uid: v
                .get("uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }))
    }

    fn to_json(&self) -> Value {
        json!({"name": self.name, "uid": self.uid})
    }
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claims {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub issued_at: i64,
    pub not_before: i64,
    pub expires: i64,
    pub id: String,
    pub namespace: String,
    pub service_account: ObjectRef,
    pub pod: Option<ObjectRef>,
    pub secret: Option<ObjectRef>,
    pub node: Option<ObjectRef>,
}

impl Claims {
    fn parse(v: &Value) -> Option<Claims> {
        let audiences = match v.get("aud")? {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        let k = v.get("kubernetes.io")?;
        let namespace = k.get("namespace")?.as_str()?.to_string();
        let service_account = ObjectRef::parse(k.get("serviceaccount"))??;
        let claims = Claims {
            issuer: v.get("iss")?.as_str()?.to_string(),
            audiences,
            issued_at: v.get("iat").and_then(Value::as_i64).unwrap_or(0),
            not_before: v.get("nbf").and_then(Value::as_i64).unwrap_or(0),
            expires: v.get("exp")?.as_i64()?,
            id: v
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            namespace,
            service_account,
            pod: ObjectRef::parse(k.get("pod"))?,
            secret: ObjectRef::parse(k.get("secret"))?,
            node: ObjectRef::parse(k.get("node"))?,
        };
        // The subject must say what the private claim says.
        if v.get("sub")?.as_str()? != claims.subject() {
            return None;
        }
        Some(claims)
    }

    /// `system:serviceaccount:NS:NAME`.
    pub(crate) fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account.name
        )
    }

    /// The JWT claims, as Kubernetes writes them.
    pub(crate) fn to_json(&self) -> Value {
        let mut k = json!({
            "namespace": self.namespace,
            "serviceaccount": self.service_account.to_json(),
        });
        if let Some(p) = &self.pod {
            k["pod"] = p.to_json();
        }
        if let Some(s) = &self.secret {
            k["secret"] = s.to_json();
        }
        if let Some(n) = &self.node {
            k["node"] = n.to_json();
        }
        json!({
            "aud": self.audiences,
            "exp": self.expires,
            "iat": self.issued_at,
            "iss": self.issuer,
            "jti": self.id,
            "kubernetes.io": k,
            "nbf": self.not_before,
            "sub": self.subject(),
        })
    }

    /// The user a valid token authenticates as, with the extra facts
    /// Kubernetes adds: the credential's id (`JTI=<jti>`) and the pod and
    /// node the token is bound to.
    pub(crate) fn user(&self) -> UserInfo {
        let mut extra = std::collections::BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            extra.insert(
                format!("authentication.kubernetes.io/{key}"),
                vec![value.to_string()],
            );
        };
        if let Some(pod) = self.pod.as_ref().filter(|p| !p.uid.is_empty()) {
            put("pod-name", &pod.name);
            put("pod-uid", &pod.uid);
        }
        if !self.id.is_empty() {
            put("credential-id", &format!("JTI={}", self.id));
        }
        if let Some(node) = &self.node {
            put("node-name", &node.name);
            if !node.uid.is_empty() {
                put("node-uid", &node.uid);
            }
        }
        UserInfo {
            name: self.subject(),
            uid: self.service_account.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", self.namespace),
                "system:authenticated".into(),
            ],
            extra,
        }
    }
}

/// Reads the objects a token names (from the API server's watch cache).
pub(crate) trait ObjectLookup: Send + Sync {
    /// The object `resource` (`serviceaccounts`, `pods`, `secrets`) named
    /// `name` in `namespace`, as JSON, if it exists.
    fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value>;
}

/// Whether `obj` exists as the token's reference says: same uid, and not
/// deleted more than a minute ago.
fn still_there(obj: Option<Value>, want: &ObjectRef, now: i64) -> bool {
    let Some(obj) = obj else {
        return false;
    };
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if uid != want.uid {
        return false;
    }
    if let Some(ts) = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
    {
        if let Ok(t) = ts.parse::<jiff::Timestamp>() {
            if t.as_second() < now - DELETION_GRACE_SECONDS {
                return false;
            }
        }
    }
    true
}

/// Authenticates bearer tokens that are our service-account JWTs.
#[derive(Clone)]
pub(crate) struct ServiceAccountAuthenticator {
    pub keys: Arc<TokenKeys>,
    pub lookup: Arc<dyn ObjectLookup>,
}

impl fmt::Debug for ServiceAccountAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountAuthenticator")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountAuthenticator {
    /// The user of `token`, if it is valid now.
    pub(crate) fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let auds = self.keys.api_audiences.clone();
        self.authenticate_for(token, &auds)
            .ok()
            .map(|(user, _)| user)
    }

    /// The user of `token` for a client that accepts `audiences`, with the
    /// audiences it is valid for (TokenReview's `status.audiences`); else
    /// why it does not authenticate.
    pub(crate) fn authenticate_for(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), TokenError> {
        let now = jiff::Timestamp::now().as_second();
        let claims = self.keys.verify_signed(token, now)?;
        let valid_for: Vec<String> = claims
            .audiences
            .iter()
            .filter(|a| audiences.contains(a))
            .cloned()
            .collect();
        if valid_for.is_empty() {
            return Err(TokenError::Audiences {
                token: claims.audiences.clone(),
                wanted: audiences.to_vec(),
            });
        }
        let ns = &claims.namespace;
        let sa = self
            .lookup
            .get("serviceaccounts", ns, &claims.service_account.name);
        if !still_there(sa, &claims.service_account, now) {
            tracing::debug!(sub = %claims.subject(), "token of a service account that is gone");
            return Err(TokenError::Deleted {
                kind: "service account",
                namespace: ns.clone(),
                name: claims.service_account.name.clone(),
            });
        }
        if let Some(pod) = &claims.pod {
            if !still_there(self.lookup.get("pods", ns, &pod.name), pod, now) {
                tracing::debug!(pod = %pod.name, "token bound to a pod that is gone");
                return Err(TokenError::Deleted {
                    kind: "pod",
                    namespace: ns.clone(),
                    name: pod.name.clone(),
                });
            }
        }
        if let Some(secret) = &claims.secret {
            if !still_there(self.lookup.get("secrets", ns, &secret.name), secret, now) {
                tracing::debug!(secret = %secret.name, "token bound to a secret that is gone");
                return Err(TokenError::Deleted {
                    kind: "secret",
                    namespace: ns.clone(),
                    name: secret.name.clone(),
                });
            }
        }
        Ok((claims.user(), valid_for))
    }
}

/// Why a bearer token does not authenticate, in the words of Kubernetes'
/// token authenticators (TokenReview's `status.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a token of ours: not a JWT, another issuer or algorithm, or
    /// claims that do not read.
    #[error("invalid bearer token")]
    Invalid,
    /// The signature does not verify with our key (go-jose's words).
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    Signature,
    /// Past its expiry (beyond the leeway).
    #[error("service account token has expired")]
    Expired,
    /// Before its not-before time (beyond the leeway).
    #[error("service account token is not valid yet")]
    NotYetValid,
    /// Valid for none of the audiences the client accepts.
    #[error(
        "token audiences {} is invalid for the target audiences {}",
        go_quoted_list(.token),
        go_quoted_list(.wanted)
    )]
    Audiences {
        /// The token's audiences.
        token: Vec<String>,
        /// The audiences the client accepts.
        wanted: Vec<String>,
    },
    /// The service account, or the pod or secret the token is bound to, is
    /// gone (or was replaced by another of the same name).
    #[error("{kind} {namespace}/{name} has been deleted")]
    Deleted {
        /// `service account`, `pod` or `secret`.
        kind: &'static str,
        /// Their namespace.
        namespace: String,
        /// Their name.
        name: String,
    },
}

/// A list as Go's `%q` prints a `[]string`: `["a" "b"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The TokenRequest's API group and kind.
const TOKEN_REQUEST_GROUP: &str = "authentication.k8s.io";
const TOKEN_REQUEST_KIND: &str = "TokenRequest";

/// The TokenRequest `body` checked and decoded: a JSON object of the right
/// apiVersion and kind, fields typed as the schema says, its name and
/// namespace (when given) those of the service account.
fn decode_token_request(
    body: &Value,
    namespace: &str,
    name: &str,
) -> ApiResult<k8s_openapi::api::authentication::v1::TokenRequest> {
    const GROUP: &str = TOKEN_REQUEST_GROUP;
    const KIND: &str = TOKEN_REQUEST_KIND;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    match body.get("apiVersion").and_then(Value::as_str) {
        None | Some("authentication.k8s.io/v1") => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version (authentication.k8s.io/v1)"
            )))
        }
    }
    match body.get("kind").and_then(Value::as_str) {
        None | Some(KIND) => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({KIND})"
            )))
        }
    }
    // The typed check: field types as the schema says (the status, which
    // clients send empty, is the server's to fill).
    let mut request = body.clone();
    if let Some(o) = request.as_object_mut() {
        o.remove("status");
    }
    let typed: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(request)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as a TokenRequest: {e}"
            ))
        })?;
    let mut errors = Vec::new();
    if let Some(n) = typed.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        if n != name {
            errors.push(FieldError::invalid(
                "metadata.name",
                n,
                "must match the service account name if specified",
            ));
        }
    }
    if let Some(n) = typed
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        if n != namespace {
            errors.push(FieldError::invalid(
                "metadata.namespace",
                n,
                "must match the service account namespace if specified",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(GROUP, KIND, name, &errors));
    }
    Ok(typed)
}

/// The lifetime asked for (`spec.expirationSeconds`, one hour by default),
/// refused outside 10 minutes .. 2^32 seconds.
fn token_expiration(typed: &k8s_openapi::api::authentication::v1::TokenRequest) -> ApiResult<i64> {
    let mut errors = Vec::new();
    let expiration = typed
        .spec
        .expiration_seconds
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            TOKEN_REQUEST_GROUP,
            TOKEN_REQUEST_KIND,
            "",
            &errors,
        ));
    }
    Ok(expiration)
}

/// The metadata `uid` of an object (empty if none).
fn uid_of(v: &Value) -> String {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The objects a token is bound to: the pod (and the node it runs on) or
/// the secret of `spec.boundObjectRef`.
struct BoundObjects {
    pod: Option<ObjectRef>,
    secret: Option<ObjectRef>,
    node: Option<ObjectRef>,
}

/// Reads the object `spec.boundObjectRef` names, checks it may be bound to
/// the service account `name`, and raises `revision` to the revision it was
/// read at.
async fn bound_objects(
    rest: &Rest,
    typed: &k8s_openapi::api::authentication::v1::TokenRequest,
    namespace: &str,
    name: &str,
    revision: &mut i64,
) -> ApiResult<BoundObjects> {
    let registry = &rest.kinds;
    let def = |plural: &str| {
        registry
            .get("", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("no {plural} in the registry")))
    };
    let mut pod = None;
    let mut secret = None;
    let mut node = None;
    if let Some(r) = &typed.spec.bound_object_ref {
        let kind = r.kind.as_deref().unwrap_or("");
        let api_version = r.api_version.as_deref().unwrap_or("");
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let ref_name = r.name.as_deref().unwrap_or("");
        let plural = match (group, kind) {
            ("", "Pod") => "pods",
            ("", "Secret") => "secrets",
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {name:?} to object of type {}",
                    gvk_string(api_version, kind)
                )))
            }
        };
        let (obj, kv) = rest.get_kv(&def(plural)?, namespace, ref_name).await?;
        *revision = (*revision).max(kv.mod_revision);
        if plural == "pods"
            && obj
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                != Some(name)
        {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
            )));
        }
        let uid = uid_of(&obj);
        if let Some(want) = r.uid.as_deref().filter(|u| !u.is_empty()) {
            if want != uid {
                return Err(ApiError::conflict(
                    "",
                    kind,
                    ref_name,
                    &format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"),
                ));
            }
        }
        let object = ObjectRef {
            name: ref_name.to_string(),
            uid,
        };
        if plural == "pods" {
            // The node the pod runs on, when it is known.
            if let Some(node_name) = obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                let node_uid = match rest.get(&def("nodes")?, "", node_name).await {
                    Ok(n) => uid_of(&n),
                    Err(_) => String::new(),
                };
                node = Some(ObjectRef {
                    name: node_name.to_string(),
                    uid: node_uid,
                });
            }
            pod = Some(object);
        } else {
            secret = Some(object);
        }
    }
    Ok(BoundObjects { pod, secret, node })
}

/// `POST .../serviceaccounts/NAME/token`: a token for the service account,
/// as the TokenRequest `body` asks (audiences, lifetime, bound object), in
/// the TokenRequest returned with its `status`.
pub(crate) async fn token_request(
    rest: &Rest,
    keys: &TokenKeys,
    namespace: &str,
    name: &str,
    body: &Value,
) -> ApiResult<Value> {
    const KIND: &str = TOKEN_REQUEST_KIND;
    let typed = decode_token_request(body, namespace, name)?;
    let expiration = token_expiration(&typed)?;
    let registry = &rest.kinds;
    let def = |plural: &str| {
        registry
            .get("", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("no {plural} in the registry")))
    };
    let (sa, sa_kv) = rest
        .get_kv(&def("serviceaccounts")?, namespace, name)
        .await?;
    let mut revision = sa_kv.mod_revision;
    let BoundObjects { pod, secret, node } =
        bound_objects(rest, &typed, namespace, name, &mut revision).await?;
    let audiences = if typed.spec.audiences.is_empty() {
        keys.api_audiences.clone()
    } else {
        typed.spec.audiences.clone()
    };
    let now = jiff::Timestamp::now().as_second();
    let claims = Claims {
        issuer: keys.issuer.clone(),
        audiences: audiences.clone(),
        issued_at: now,
        not_before: now,
        expires: now + expiration,
        id: uuid::Uuid::new_v4().to_string(),
        namespace: namespace.to_string(),
        service_account: ObjectRef {
            name: name.to_string(),
            uid: uid_of(&sa),
        },
        pod,
        secret,
        node,
    };
    let token = keys.sign(&claims.to_json()).map_err(ApiError::internal)?;
    // The token authenticates through the watch cache: let it hold what was
    // read here before the token is handed out.
    if let Err(e) = rest
        .cache
        .wait_for(revision, std::time::Duration::from_secs(3))
        .await
    {
        tracing::warn!(error = %e, "the watch cache is behind a new token's objects");
    }
    let stamp = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let mut spec = json!({
        "audiences": audiences,
        "expirationSeconds": expiration,
    });
    if let Some(r) = body.pointer("/spec/boundObjectRef") {
        spec["boundObjectRef"] = r.clone();
    }
    Ok(json!({
        "kind": KIND,
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": stamp(now),
        },
        "spec": spec,
        "status": {
            "token": token,
            "expirationTimestamp": stamp(claims.expires),
        },
    }))
}

/// `Kind.version.group` as Kubernetes prints a GroupVersionKind.
fn gvk_string(api_version: &str, kind: &str) -> String {
    match api_version.rsplit_once('/') {
        Some((g, v)) => format!("{g}/{v}, Kind={kind}"),
        None => format!("/{api_version}, Kind={kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Objects(Mutex<HashMap<(String, String, String), Value>>);

    impl Objects {
        fn put(&self, resource: &str, ns: &str, name: &str, uid: &str) {
            self.0.lock().unwrap().insert(
                (resource.into(), ns.into(), name.into()),
                json!({"metadata": {"name": name, "namespace": ns, "uid": uid}}),
            );
        }
        fn remove(&self, resource: &str, ns: &str, name: &str) {
            self.0
                .lock()
                .unwrap()
                .remove(&(resource.into(), ns.into(), name.into()));
        }
    }

    impl ObjectLookup for Objects {
        fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
            self.0
                .lock()
                .unwrap()
                .get(&(resource.into(), ns.into(), name.into()))
                .cloned()
        }
    }

    fn claims(now: i64) -> Claims {
        Claims {
            issuer: ISSUER.into(),
            audiences: vec![ISSUER.into()],
            issued_at: now,
            not_before: now,
            expires: now + 3600,
            id: "id-1".into(),
            namespace: "team".into(),
            service_account: ObjectRef {
                name: "robot".into(),
                uid: "sa-uid".into(),
            },
            pod: None,
            secret: None,
            node: None,
        }
    }

    fn keys() -> TokenKeys {
        let dir = tempfile::tempdir().unwrap();
        TokenKeys::ensure(dir.path()).unwrap()
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKeys::ensure(dir.path()).unwrap();
        let b = TokenKeys::ensure(dir.path()).unwrap();
        assert_eq!(a.key_id, b.key_id);
        let token = a.sign(&claims(now()).to_json()).unwrap();
        assert!(b.verify(&token, now()).is_some(), "the kept key verifies");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls").join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("tls").join(KEY_FILE), "junk").unwrap();
        assert!(
            TokenKeys::ensure(dir.path()).is_err(),
            "a broken key is not replaced"
        );
    }

    #[test]
    fn a_token_is_a_jwt_with_kubernetes_claims() {
        let k = keys();
        let t = now();
        let token = k.sign(&claims(t).to_json()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], k.key_id.as_str());
        let body: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body["sub"], "system:serviceaccount:team:robot");
        assert_eq!(body["iss"], ISSUER);
        assert_eq!(body["aud"], json!([ISSUER]));
        assert_eq!(body["exp"], t + 3600);
        assert_eq!(body["kubernetes.io"]["serviceaccount"]["uid"], "sa-uid");
        assert!(body["kubernetes.io"].get("pod").is_none());
        assert_eq!(k.verify(&token, t), Some(claims(t)));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let k = keys();
        let t = now();
        let token = k.sign(&claims(t).to_json()).unwrap();
        // A changed claim breaks the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(t).to_json();
        forged["kubernetes.io"]["namespace"] = json!("kube-system");
        forged["sub"] = json!("system:serviceaccount:kube-system:robot");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged.to_string()),
            parts[2]
        );
        assert_eq!(k.verify(&forged, t), None);
        // Another key's token.
        assert_eq!(
            k.verify(&keys().sign(&claims(t).to_json()).unwrap(), t),
            None
        );
        // Time.
        assert!(k.verify(&token, t + 3600 + LEEWAY_SECONDS).is_some());
        assert_eq!(k.verify(&token, t + 3600 + LEEWAY_SECONDS + 1), None);
        assert_eq!(k.verify(&token, t - LEEWAY_SECONDS - 1), None);
        // Issuer and audience.
        let mut c = claims(t);
        c.issuer = "https://elsewhere".into();
        assert_eq!(k.verify(&k.sign(&c.to_json()).unwrap(), t), None);
        let mut c = claims(t);
        c.audiences = vec!["vault".into()];
        assert_eq!(k.verify(&k.sign(&c.to_json()).unwrap(), t), None);
        // A subject that disagrees with the private claim.
        let mut v = claims(t).to_json();
        v["sub"] = json!("system:serviceaccount:team:other");
        assert_eq!(k.verify(&k.sign(&v).unwrap(), t), None);
        // Not a JWT at all.
        for junk in ["", "a.b", "a.b.c", "a.b.c.d", "..", "Zm9v.Zm9v.Zm9v"] {
            assert_eq!(k.verify(junk, t), None, "{junk:?}");
        }
    }

    #[test]
    fn the_service_account_and_the_bound_pod_must_still_exist() {
        let objects = Arc::new(Objects::default());
        let authn = ServiceAccountAuthenticator {
            keys: Arc::new(keys()),
            lookup: objects.clone(),
        };
        let mut c = claims(now());
        c.pod = Some(ObjectRef {
            name: "web".into(),
            uid: "pod-uid".into(),
        });
        let token = authn.keys.sign(&c.to_json()).unwrap();
        assert_eq!(authn.authenticate(&token), None, "no service account yet");
        objects.put("serviceaccounts", "team", "robot", "sa-uid");
        assert_eq!(authn.authenticate(&token), None, "no pod yet");
        objects.put("pods", "team", "web", "pod-uid");
        let user = authn.authenticate(&token).unwrap();
        assert_eq!(user.name, "system:serviceaccount:team:robot");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        // The pod deleted and made again: another uid.
        objects.put("pods", "team", "web", "pod-uid-2");
        assert_eq!(authn.authenticate(&token), None);
        objects.put("pods", "team", "web", "pod-uid");
        // A pod whose deletion started long ago no longer counts; one being
        // deleted just now still does.
        let mut pod = objects.get("pods", "team", "web").unwrap();
        pod["metadata"]["deletionTimestamp"] = json!(jiff::Timestamp::now().to_string());
        objects
            .0
            .lock()
            .unwrap()
            .insert(("pods".into(), "team".into(), "web".into()), pod.clone());
        assert!(authn.authenticate(&token).is_some());
        let old = jiff::Timestamp::from_second(now() - 120).unwrap();
        pod["metadata"]["deletionTimestamp"] = json!(old.to_string());
        objects
            .0
            .lock()
            .unwrap()
            .insert(("pods".into(), "team".into(), "web".into()), pod);
        assert_eq!(authn.authenticate(&token), None);
        objects.remove("pods", "team", "web");
        assert_eq!(authn.authenticate(&token), None);
        // The service account made again.
        objects.put("pods", "team", "web", "pod-uid");
        objects.put("serviceaccounts", "team", "robot", "sa-uid-2");
        assert_eq!(authn.authenticate(&token), None);
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = pem_encode("PRIVATE KEY", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_decode("PRIVATE KEY", &pem), Some(der));
        assert_eq!(pem_decode("PRIVATE KEY", "nothing"), None);
    }
}
