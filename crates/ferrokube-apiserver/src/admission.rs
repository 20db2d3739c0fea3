//! Admission on create, after defaulting: Kubernetes' ServiceAccount plugin.
//!
//! A pod runs as a service account: `spec.serviceAccountName` defaults to
//! `default` (the deprecated `spec.serviceAccount` says the same). Unless the
//! pod, or else its service account, sets `automountServiceAccountToken:
//! false`, the pod gets a projected volume `kube-api-access-XXXXX` (a token
//! for the service account, the cluster CA from the `kube-root-ca.crt`
//! ConfigMap, the namespace) mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container and
//! init container that does not mount something there already.
//!
//! Unlike Kubernetes, which refuses a pod whose service account does not
//! exist, a pod naming a missing service account is admitted without the
//! volume: a server run without the controller manager has no `default`
//! service accounts, and its pods should still be accepted.

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::rest::{ApiResult, Rest};

/// Where containers find their service-account credentials.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The prefix of the projected volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";

/// The token's lifetime in the projected volume (Kubernetes' 3607 s).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Mirror pods (static pods' API copies) are left alone.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The characters of generated suffixes, as Kubernetes' `utilrand.String`
/// (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect()
}

const AUTOMOUNT_KEY: &[u8] = b"\"automountServiceAccountToken\"";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Defaults the pod's service account and, when it should, mounts its
/// token. `pod` is a Pod being created in `namespace`.
pub async fn service_account(rest: &Rest, namespace: &str, pod: &mut Value) -> ApiResult<()> {
    if pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some()
    {
        return Ok(());
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let name = default_service_account_name(spec);
    let pod_automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool);
    if pod_automount == Some(false) {
        return Ok(());
    }
    let Some(def) = rest.registry.get("", "v1", "serviceaccounts") else {
        return Ok(());
    };
    // The watch cache first, as Kubernetes' plugin reads its informer; the store
    // when the cache has not seen the account (it may have just been created).
    let cached = rest
        .cache
        .resource(def.storage_prefix)
        .and_then(|c| c.get(&def.key(namespace, &name)));
    let sa_automount = match cached {
        // The cache's JSON is serde_json's, which writes this key as it is:
        // bytes without it are an account that does not set it, and there
        // is nothing to parse (the common case, once per pod created).
        Some(o) if !contains(&o.json, AUTOMOUNT_KEY) => None,
        Some(o) => serde_json::from_slice::<Value>(&o.json)
            .ok()
            .and_then(|sa| sa.get("automountServiceAccountToken")?.as_bool()),
        None => match rest.get(def, namespace, &name).await {
            Ok(sa) => sa
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool),
            // Admitted without the token (see the module docs).
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        },
    };
    if pod_automount.is_none() && sa_automount == Some(false) {
        return Ok(());
    }
    mount_token(spec, &random_suffix(5));
    Ok(())
}

/// Sets `serviceAccountName` (from the deprecated `serviceAccount`, else
/// `default`) and mirrors it into `serviceAccount`; returns it.
pub fn default_service_account_name(spec: &mut Map<String, Value>) -> String {
    let non_empty = |k: &str| {
        spec.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name = non_empty("serviceAccountName")
        .or_else(|| non_empty("serviceAccount"))
        .unwrap_or_else(|| "default".to_string());
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    name
}

/// The projected volume of a service-account token, the cluster CA and the
/// namespace.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Mounts the token volume (an existing `kube-api-access-*` volume, else a
/// new one named with `suffix`) in every container and init container that
/// has nothing at [`TOKEN_MOUNT_PATH`]; adds the volume if one of them
/// needed it.
pub fn mount_token(spec: &mut Map<String, Value>, suffix: &str) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(VOLUME_PREFIX))
                .map(str::to_string)
        });
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{suffix}"));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let Some(c) = c.as_object_mut() else {
                continue;
            };
            let mounts = c
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH))
            {
                continue;
            }
            mounts.push(mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        let volumes = spec
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(vs) = volumes.as_array_mut() {
            vs.push(token_volume(&volume_name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_service_account_name_defaults_and_is_mirrored() {
        let mut s = spec(json!({"containers": []}));
        assert_eq!(default_service_account_name(&mut s), "default");
        assert_eq!(s["serviceAccountName"], "default");
        assert_eq!(s["serviceAccount"], "default");
        let mut s = spec(json!({"serviceAccount": "old"}));
        assert_eq!(default_service_account_name(&mut s), "old");
        assert_eq!(s["serviceAccountName"], "old");
        let mut s = spec(json!({"serviceAccountName": "new", "serviceAccount": "old"}));
        assert_eq!(default_service_account_name(&mut s), "new");
        assert_eq!(s["serviceAccount"], "new");
    }

    #[test]
    fn every_container_mounts_the_token_volume() {
        let mut s = spec(json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "image": "busybox", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }));
        mount_token(&mut s, "x7k2q");
        let mount = json!({"name": "kube-api-access-x7k2q", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(s["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(s["containers"][0]["volumeMounts"][1], mount);
        assert_eq!(
            s["containers"][1]["volumeMounts"],
            json!([{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]),
            "a container with its own mount there is left alone"
        );
        let volumes = s["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1], token_volume("kube-api-access-x7k2q"));
        assert_eq!(volumes[1]["projected"]["defaultMode"], 420);
        assert_eq!(
            volumes[1]["projected"]["sources"][0]["serviceAccountToken"],
            json!({"expirationSeconds": 3607, "path": "token"})
        );
    }

    #[test]
    fn no_volume_when_no_container_needs_it_and_no_second_volume() {
        let mut s = spec(json!({
            "containers": [{"name": "b", "image": "busybox", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
        }));
        mount_token(&mut s, "aaaaa");
        assert!(s.get("volumes").is_none());
        // A pod that already has the volume (a recreated spec) keeps it.
        let mut s = spec(json!({
            "containers": [{"name": "a", "image": "busybox"}],
            "volumes": [token_volume("kube-api-access-zzzzz")],
        }));
        mount_token(&mut s, "bbbbb");
        assert_eq!(s["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            s["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-zzzzz"
        );
    }

    #[test]
    fn suffixes_are_five_of_kubernetes_characters() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)));
    }
}
