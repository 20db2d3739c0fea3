//! Continue tokens of paginated lists.
//!
//! Like Kubernetes', a token is base64 of a small JSON document holding the
//! revision the first page was read at and the key (relative to the list's
//! prefix) to go on from, so every page of one list is read at the same
//! revision. A token that does not decode, or that points outside the
//! prefix, is a clear 400 at the API; one whose revision has been compacted
//! is 410 Expired.

use base64::Engine;
use ferrokube_store::Revision;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: Revision,
    start: String,
}

const VERSION: &str = "meta.k8s.io/v1";

/// Encodes the continue point: the next page starts at `next_key` (a full key
/// under `prefix`), read at `revision`.
pub(crate) fn encode(prefix: &str, next_key: &str, revision: Revision) -> String {
    let start = next_key.strip_prefix(prefix).unwrap_or(next_key);
    let token = Token {
        v: VERSION.into(),
        rv: revision,
        start: start.into(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Why a continue token is refused (a 400 with Kubernetes' message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvalidToken {
    /// The token is not base64.
    #[error("continue key is not valid: illegal base64 data")]
    Base64,
    /// The decoded token is not the JSON a token holds.
    #[error("continue key is not valid: {0}")]
    Json(serde_json::Error),
    /// A token version this server does not write.
    #[error("continue key is not valid: server does not recognize this encoded key version {0:?}")]
    Version(String),
    /// The token's revision is not positive.
    #[error("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")]
    ResourceVersion,
    /// The token's start key is empty or leaves the list's prefix.
    #[error("continue key is not valid: the continue key does not name a position in this list")]
    Position,
}

/// Decodes a token into (the full key to start at, the revision).
pub(crate) fn decode(prefix: &str, token: &str) -> Result<(String, Revision), InvalidToken> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| InvalidToken::Base64)?;
    let t: Token = serde_json::from_slice(&bytes).map_err(InvalidToken::Json)?;
    if t.v != VERSION {
        return Err(InvalidToken::Version(t.v));
    }
    if t.rv <= 0 {
        return Err(InvalidToken::ResourceVersion);
    }
    if t.start.is_empty() || t.start.starts_with('/') || t.start.split('/').any(|s| s == "..") {
        return Err(InvalidToken::Position);
    }
    Ok((format!("{prefix}{}", t.start), t.rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let tok = encode("/registry/pods/", "/registry/pods/default/web-2\0", 42);
        let (key, rev) = decode("/registry/pods/", &tok).unwrap();
        assert_eq!(key, "/registry/pods/default/web-2\0");
        assert_eq!(rev, 42);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode("/registry/pods/", "!!!")
            .unwrap_err()
            .to_string()
            .contains("continue key is not valid"));
        let not_json = base64::engine::general_purpose::STANDARD.encode("nope");
        assert!(decode("/registry/pods/", &not_json).is_err());
        let bad_version =
            base64::engine::general_purpose::STANDARD.encode(r#"{"v":"x","rv":3,"start":"a"}"#);
        assert!(decode("/registry/pods/", &bad_version)
            .unwrap_err()
            .to_string()
            .contains("encoded key version"));
        let escape = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode("/registry/pods/", &escape).is_err());
        let zero = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#);
        assert!(decode("/registry/pods/", &zero).is_err());
    }
}
