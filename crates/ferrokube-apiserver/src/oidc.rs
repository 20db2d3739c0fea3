//! Service-account issuer discovery: the OpenID Connect provider
//! configuration (`/.well-known/openid-configuration`) and the key set
//! (`/openid/v1/jwks`) that let anyone outside the cluster (a cloud's
//! identity federation, Vault) check our service-account tokens, as
//! Kubernetes serves them: the issuer our tokens name, the key set's URL at
//! the API server's address, ID tokens only, public subjects, the signing
//! algorithms of the keys, and each key as a JWK with the `kid` our tokens
//! carry. Both are rendered once; clients may cache them for an hour.

use bytes::Bytes;
use serde_json::Value;

use crate::satoken::TokenKeys;

/// The provider configuration's path.
pub(crate) const CONFIG_PATH: &str = "/.well-known/openid-configuration";

/// The key set's path.
pub(crate) const JWKS_PATH: &str = "/openid/v1/jwks";

/// The key set's media type.
pub(crate) const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

/// `Cache-Control` of both documents (the keys are static: an hour).
pub(crate) const CACHE_CONTROL: &str = "public, max-age=3600";

/// The two documents, rendered.
#[derive(Clone, Debug)]
pub(crate) struct IssuerDiscovery {
    pub config: Bytes,
    pub jwks: Bytes,
}

impl IssuerDiscovery {
    /// The documents for `keys`, the key set served at `server_url`
    /// (`https://host:port`).
    pub(crate) fn new(keys: &TokenKeys, server_url: &str) -> IssuerDiscovery {
        let jwks_uri = format!("{}{JWKS_PATH}", server_url.trim_end_matches('/'));
        // In the member order of Kubernetes' document.
        let config = format!(
            r#"{{"issuer":{},"jwks_uri":{},"response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256"]}}"#,
            Value::String(keys.issuer.clone()),
            Value::String(jwks_uri),
        );
        let jwks = format!(r#"{{"keys":[{}]}}"#, keys.public_jwk());
        IssuerDiscovery {
            config: Bytes::from(config),
            jwks: Bytes::from(jwks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    #[test]
    fn the_served_key_verifies_our_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TokenKeys::ensure(dir.path()).unwrap();
        let d = IssuerDiscovery::new(&keys, "https://10.0.0.1:6443");
        let config: Value = serde_json::from_slice(&d.config).unwrap();
        assert_eq!(
            config,
            json!({
                "issuer": crate::satoken::ISSUER,
                "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            })
        );
        let jwks: Value = serde_json::from_slice(&d.jwks).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["kid"], keys.key_id());

        // A token checked with nothing but the served key.
        let token = keys
            .sign(&json!({"iss": crate::satoken::ISSUER, "sub": "x"}))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], key["kid"]);
        let coord = |c: &str| URL_SAFE_NO_PAD.decode(key[c].as_str().unwrap()).unwrap();
        let mut point = vec![4u8];
        point.extend(coord("x"));
        point.extend(coord("y"));
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            point,
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("the served key verifies the token");
    }
}
