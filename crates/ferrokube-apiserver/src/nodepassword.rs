//! Node passwords, as k3s keeps them: a joining agent sends, with its
//! request for its node's credentials, a random password it made once and
//! keeps in its data dir. The first request for a node name stores a hash
//! of it in the Secret `kube-system/<node>.node-password.ferrokube`; a later
//! request for that name with another password is refused (403), so a
//! machine holding the join token cannot take over another node's name and
//! credentials. The Secret is deleted when its Node is, so a node removed
//! with `kubectl delete node` can join again (from a new machine, or with
//! a new password).
//!
//! The Secret's name follows k3s' `<node>.node-password.<program>`, with
//! our program's name: recognisably the same mechanism, and no clash with a
//! k3s cluster's Secrets. The hash is PBKDF2-HMAC-SHA256 with a random salt
//! (ring has it; k3s uses scrypt): the agents' passwords are 128-bit random
//! strings, so the hash need not be slow, and a modest iteration count keeps
//! a join cheap.

use std::num::NonZeroU32;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::options::{DeleteOptions, WriteOptions};
use crate::rest::Rest;

/// The namespace of the node-password Secrets.
pub(crate) const NAMESPACE: &str = "kube-system";

/// The key of the hash in the Secret's data (k3s' name).
const HASH_KEY: &str = "hash";

const ITERATIONS: u32 = 10_000;
const SCHEME: &str = "pbkdf2-sha256";

/// How long the cleanup waits before watching again after an error.
const RETRY: Duration = Duration::from_secs(1);

/// The Secret holding `node`'s password hash.
pub(crate) fn secret_name(node: &str) -> String {
    format!("{}.node-password.ferrokube", node.to_lowercase())
}

/// `$pbkdf2-sha256$<iterations>$<salt>$<derived key>` (base64) of `password`.
pub(crate) fn hash(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "${SCHEME}${ITERATIONS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(out)
    )
}

/// Whether `password` matches `stored` (made by [`hash`]); a malformed
/// hash matches nothing.
pub(crate) fn verify(stored: &str, password: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, scheme, iterations, salt, key] = parts[..] else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(key)) = (
        iterations.parse::<u32>().ok().and_then(NonZeroU32::new),
        STANDARD.decode(salt),
        STANDARD.decode(key),
    ) else {
        return false;
    };
    scheme == SCHEME
        && ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &key,
        )
        .is_ok()
}

fn secrets(rest: &Rest) -> Result<ResourceDef, ApiError> {
    rest.kinds
        .get("", "v1", "secrets")
        .ok_or_else(|| ApiError::internal("no secrets resource"))
}

/// The hash stored for `node`, if any.
async fn stored_hash(
    rest: &Rest,
    def: &ResourceDef,
    node: &str,
) -> Result<Option<String>, ApiError> {
    match rest.get(def, NAMESPACE, &secret_name(node)).await {
        Ok(secret) => {
            let hash = secret
                .pointer(&format!("/data/{HASH_KEY}"))
                .and_then(Value::as_str)
                .and_then(|b64| STANDARD.decode(b64).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            Ok(Some(hash))
        }
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

fn refused(node: &str) -> ApiError {
    ApiError::forbidden(format!(
        "node password rejected: the node name {node:?} is taken by a node with another password \
         (kept hashed in the Secret {NAMESPACE}/{}); give this node another name (--node-name or \
         --with-node-id), or delete the Node to let a new machine take the name",
        secret_name(node)
    ))
}

/// Checks `password` against `node`'s stored hash, storing one when there
/// is none; a 403 when they differ.
pub(crate) async fn ensure(rest: &Rest, node: &str, password: &str) -> Result<(), ApiError> {
    let def = secrets(rest)?;
    let check = |stored: String| {
        if verify(&stored, password) {
            Ok(())
        } else {
            Err(refused(node))
        }
    };
    if let Some(stored) = stored_hash(rest, &def, node).await? {
        return check(stored);
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(node), "namespace": NAMESPACE},
        "immutable": true,
        "type": "Opaque",
        "data": {HASH_KEY: STANDARD.encode(hash(password))},
    });
    match rest
        .create(&def, NAMESPACE, secret, &WriteOptions::default())
        .await
    {
        Ok(_) => {
            tracing::info!(node, "stored a new node's password hash");
            Ok(())
        }
        // Another request for the name stored its hash first.
        Err(e) if e.code == 409 => match stored_hash(rest, &def, node).await? {
            Some(stored) => check(stored),
            None => Err(ApiError::conflict(
                "",
                "secrets",
                &secret_name(node),
                "retry",
            )),
        },
        Err(e) => Err(e),
    }
}

/// Deletes the password Secret of every Node that goes away, while `cancel`
/// has not fired (as k3s' node controller does on a Node's removal).
pub(crate) fn start_cleanup<A: Send + Sync + 'static>(
    owner: std::sync::Arc<A>,
    rest: fn(&A) -> &Rest,
    cancel: CancellationToken,
) {
    tokio::spawn(async move { cleanup(rest(&owner), cancel).await });
}

async fn cleanup(rest: &Rest, cancel: CancellationToken) {
    let (Some(nodes), Ok(secrets)) = (rest.kinds.get("", "v1", "nodes"), secrets(rest)) else {
        return;
    };
    let Some(cache) = rest.cache.resource(nodes.storage_prefix) else {
        return;
    };
    loop {
        // Every Node's deletion from now on; a watch that falls behind
        // the cache's history starts again from the present.
        let Ok(mut watch) = cache.watch_from(rest.cache.revision()) else {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RETRY) => continue,
            }
        };
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return,
                e = watch.next() => e,
            };
            let Ok(event) = event else { break };
            if event.kind == crate::watchcache::EventType::Deleted {
                forget(rest, &secrets, &event.object.name).await;
            }
        }
    }
}

/// Deletes the password Secret of the removed Node `node`.
async fn forget(rest: &Rest, secrets: &ResourceDef, node: &str) {
    match rest
        .delete(
            secrets,
            NAMESPACE,
            &secret_name(node),
            &DeleteOptions::default(),
        )
        .await
    {
        Ok(_) => tracing::info!(node, "deleted a removed node's password"),
        Err(e) if e.code == 404 => {}
        Err(e) => tracing::warn!(node, error = %e, "deleting a removed node's password"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("s3cret");
        assert!(h.starts_with("$pbkdf2-sha256$10000$"), "{h}");
        assert!(verify(&h, "s3cret"));
        assert!(!verify(&h, "s3cret "));
        assert!(!verify(&h, ""));
        assert_ne!(h, hash("s3cret"), "salted");
        for bad in [
            "",
            "$",
            "$pbkdf2-sha256$0$AA==$AA==",
            "$md5$1$AA==$AA==",
            "plain",
        ] {
            assert!(!verify(bad, "s3cret"), "{bad}");
        }
    }

    #[test]
    fn the_secret_is_named_as_k3s_names_it_with_our_program() {
        assert_eq!(secret_name("Node-A"), "node-a.node-password.ferrokube");
    }
}
