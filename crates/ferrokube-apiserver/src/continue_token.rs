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

/// Decodes a token into (the full key to start at, the revision).
pub(crate) fn decode(prefix: &str, token: &str) -> Result<(String, Revision), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| "continue key is not valid: illegal base64 data".to_string())?;
    let t: Token =
        serde_json::from_slice(&bytes).map_err(|e| format!("continue key is not valid: {e}"))?;
    if t.v != VERSION {
        return Err(format!(
            "continue key is not valid: server does not recognize this encoded key version {:?}",
            t.v
        ));
    }
    if t.rv <= 0 {
        return Err("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into());
    }
    if t.start.is_empty() || t.start.starts_with('/') || t.start.split('/').any(|s| s == "..") {
        return Err(
            "continue key is not valid: the continue key does not name a position in this list"
                .into(),
        );
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
            .contains("continue key is not valid"));
        let not_json = base64::engine::general_purpose::STANDARD.encode("nope");
        assert!(decode("/registry/pods/", &not_json).is_err());
        let bad_version =
            base64::engine::general_purpose::STANDARD.encode(r#"{"v":"x","rv":3,"start":"a"}"#);
        assert!(decode("/registry/pods/", &bad_version)
            .unwrap_err()
            .contains("encoded key version"));
        let escape = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode("/registry/pods/", &escape).is_err());
        let zero = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#);
        assert!(decode("/registry/pods/", &zero).is_err());
    }
}
