//! Admission on create, after defaulting and before the strategy prepares
//! the object: Kubernetes' LimitRanger (see [`crate::limitranger`]), ServiceAccount,
//! DefaultTolerationSeconds, PodSecurity (see [`crate::podsecurity`]) and Priority
//! plugins for pods, and StorageObjectInUseProtection; on update, Pod Security again
//! and Priority's keeping of a pod's priority and single global default.
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
//!
//! A pod tolerates not-ready and unreachable nodes for five minutes unless
//! it says otherwise, and gets the priority (and preemption policy) of its
//! PriorityClass, of the cluster's global default class, or else 0.
//!
//! A new PersistentVolumeClaim or PersistentVolume gets its in-use
//! protection finalizer (the StorageObjectInUseProtection plugin).

use rand::Rng;
use serde_json::{json, Map, Value};

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;

use crate::options::WriteOptions;
use crate::rest::{ApiResult, Rest};

/// Admits `obj`, a new object of `def`'s kind in `namespace`, defaulted and
/// named: what Kubernetes' mutating admission plugins do to it.
pub(crate) async fn admit_create(
    rest: &Rest,
    def: &ResourceDef,
    namespace: &str,
    obj: &mut Value,
    opts: &WriteOptions,
) -> ApiResult<()> {
    crate::limitranger::admit_create(rest, def, namespace, obj)?;
    let pod = def.group.is_empty() && def.kind == "Pod";
    if pod {
        service_account(rest, namespace, obj).await?;
        if let Some(spec) = obj.get_mut("spec") {
            default_toleration_seconds(spec);
        }
    }
    crate::podsecurity::validate_create(rest, def, namespace, obj, opts).await?;
    if pod {
        priority(rest, obj).await?;
    }
    match (def.group, def.kind) {
        ("", "PersistentVolumeClaim") => add_finalizer(obj, PVC_PROTECTION),
        ("", "PersistentVolume") => add_finalizer(obj, PV_PROTECTION),
        ("scheduling.k8s.io", "PriorityClass") => only_one_global_default(rest, obj, false)?,
        _ => {}
    }
    Ok(())
}

/// Admits `new`, an update (of `subresource`, empty for the object itself)
/// of `old`: a pod keeps its default tolerations and the priority
/// admission gave it, Pod Security
/// checks what changed, and a PriorityClass may not become a second
/// global default.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn admit_update(
    rest: &Rest,
    def: &ResourceDef,
    ns: &str,
    old: &Value,
    new: &mut Value,
    subresource: &str,
    opts: &WriteOptions,
) -> ApiResult<()> {
    if subresource.is_empty() && def.group.is_empty() && def.kind == "Pod" {
        // DefaultTolerationSeconds admits updates too: a pod replaced
        // without its default tolerations gets them back.
        if let Some(spec) = new.get_mut("spec") {
            default_toleration_seconds(spec);
        }
        keep_priority(old, new);
    }
    crate::podsecurity::validate_update(rest, def, ns, old, new, subresource, opts).await?;
    if subresource.is_empty() && def.group == "scheduling.k8s.io" && def.kind == "PriorityClass" {
        only_one_global_default(rest, new, true)?;
    }
    Ok(())
}

/// A pod updated without `priority` or `preemptionPolicy` keeps the ones
/// admission set at its creation (validation refuses any other change).
fn keep_priority(old: &Value, new: &mut Value) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        let unset = spec.get(field).is_none_or(Value::is_null);
        if let Some(kept) = old
            .pointer(&format!("/spec/{field}"))
            .filter(|v| !v.is_null())
        {
            if unset {
                spec.insert(field.into(), kept.clone());
            }
        }
    }
}

/// Kubernetes' Priority admission of PriorityClasses: a class marked
/// `globalDefault` is refused while another class is the default.
fn only_one_global_default(rest: &Rest, pc: &Value, update: bool) -> ApiResult<()> {
    if pc.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = pc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(default) = default_priority_class(rest) else {
        return Ok(());
    };
    if !update || default.name != name {
        return Err(ApiError::forbidden_on(
            "scheduling.k8s.io",
            "priorityclasses",
            name,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                default.name
            ),
        ));
    }
    Ok(())
}

/// Kubernetes' refusal to delete a system priority class.
pub(crate) fn refuse_system_priority_class_delete(def: &ResourceDef, name: &str) -> ApiResult<()> {
    if def.group == "scheduling.k8s.io"
        && def.plural == "priorityclasses"
        && SYSTEM_PRIORITY_CLASSES.iter().any(|(n, _)| *n == name)
    {
        return Err(ApiError::forbidden_on(
            "scheduling.k8s.io",
            "priorityclasses",
            name,
            "this is a system priority class and cannot be deleted",
        ));
    }
    Ok(())
}

/// The finalizers of Kubernetes' StorageObjectInUseProtection plugin: a
/// claim or volume being deleted stays until nothing uses it (the
/// controllers' volume protection takes them off).
pub(crate) const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub(crate) const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// Adds `finalizer` to the object's finalizers unless it is there.
fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = crate::objectmeta::metadata_mut(obj) else {
        return;
    };
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    if let Some(list) = list.as_array_mut() {
        if !list.iter().any(|f| f == finalizer) {
            list.push(json!(finalizer));
        }
    }
}

/// Where containers find their service-account credentials.
pub(crate) const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The prefix of the projected volume's name.
pub(crate) const VOLUME_PREFIX: &str = "kube-api-access-";

/// The token's lifetime in the projected volume (Kubernetes' 3607 s).
pub(crate) const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

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
pub(crate) async fn service_account(
    rest: &Rest,
    namespace: &str,
    pod: &mut Value,
) -> ApiResult<()> {
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
    let Some(def) = rest.kinds.get("", "v1", "serviceaccounts") else {
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
        None => match rest.get(&def, namespace, &name).await {
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

/// How long a pod stays on a not-ready or unreachable node before eviction,
/// unless it says otherwise (the DefaultTolerationSeconds admission plugin).
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Gives a new pod NoExecute tolerations of the not-ready and unreachable
/// taints for `DEFAULT_TOLERATION_SECONDS`, each unless one of its own
/// tolerations already covers that taint (same or empty key, NoExecute or
/// empty effect), as Kubernetes' DefaultTolerationSeconds admission does.
pub(crate) fn default_toleration_seconds(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        });
        if !covered {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
}

/// The priority classes every Kubernetes cluster has, by name.
use crate::kinds::scheduling::SYSTEM_PRIORITY_CLASSES;

/// Creates the system priority classes every Kubernetes cluster has (its
/// scheduling storage makes them at start), unless they exist.
pub(crate) async fn ensure_system_priority_classes(rest: &Rest) -> anyhow::Result<()> {
    let Some(def) = rest.kinds.get("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Ok(());
    };
    for (name, value) in SYSTEM_PRIORITY_CLASSES {
        let description = if name == "system-node-critical" {
            "Used for system critical pods that must not be moved from their current node."
        } else {
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."
        };
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "description": description});
        match rest.create(&def, "", pc, &WriteOptions::default()).await {
            Ok(_) => tracing::info!(name, "created priority class"),
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("creating the priority class {name}: {e}"),
        }
    }
    Ok(())
}

/// The preemption policy of a class or pod that names none.
const DEFAULT_PREEMPTION_POLICY: &str = "PreemptLowerPriority";

/// A priority class as admission uses it: name, value, preemption policy.
struct PriorityClass {
    name: String,
    value: i64,
    preemption_policy: String,
}

impl PriorityClass {
    fn from_object(pc: &Value) -> Option<Self> {
        Some(PriorityClass {
            name: pc.pointer("/metadata/name")?.as_str()?.to_string(),
            value: pc.get("value").and_then(Value::as_i64).unwrap_or(0),
            preemption_policy: pc
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_PREEMPTION_POLICY)
                .to_string(),
        })
    }
}

/// The stored priority classes, from the watch cache.
fn priority_classes(rest: &Rest) -> Vec<Value> {
    let Some(def) = rest.kinds.get("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Vec::new();
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return Vec::new();
    };
    cache
        .list(def.storage_prefix)
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.json).ok())
        .collect()
}

/// The cluster's global default class: of several (a race), the one of
/// lowest value, as Kubernetes picks it.
fn default_priority_class(rest: &Rest) -> Option<PriorityClass> {
    priority_classes(rest)
        .iter()
        .filter(|pc| pc.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .filter_map(PriorityClass::from_object)
        .min_by_key(|pc| pc.value)
}

/// The class named `name`: stored (the cache first, then the store, as the
/// class may just have been created), else one of the system classes.
async fn priority_class(rest: &Rest, name: &str) -> ApiResult<Option<PriorityClass>> {
    if let Some(def) = rest.kinds.get("scheduling.k8s.io", "v1", "priorityclasses") {
        let cached = rest
            .cache
            .resource(def.storage_prefix)
            .and_then(|c| c.get(&def.key("", name)))
            .and_then(|o| serde_json::from_slice::<Value>(&o.json).ok());
        let found = match cached {
            Some(pc) => Some(pc),
            None => match rest.get(&def, "", name).await {
                Ok(pc) => Some(pc),
                Err(e) if e.code == 404 => None,
                Err(e) => return Err(e),
            },
        };
        if let Some(pc) = found.as_ref().and_then(PriorityClass::from_object) {
            return Ok(Some(pc));
        }
    }
    Ok(SYSTEM_PRIORITY_CLASSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, v)| PriorityClass {
            name: n.to_string(),
            value: *v,
            preemption_policy: DEFAULT_PREEMPTION_POLICY.into(),
        }))
}

/// Kubernetes' Priority admission: the pod's `priority` and
/// `preemptionPolicy` come from the PriorityClass it names (refused when
/// there is none of that name), else from the global default class (whose
/// name it then takes), else 0 and `PreemptLowerPriority`. A pod may not
/// give values of its own that differ.
pub(crate) async fn priority(rest: &Rest, pod: &mut Value) -> ApiResult<()> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let forbidden = |why: String| ApiError::forbidden_on("", "pods", &pod_name, &why);
    let named = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let class = match named {
        Some(name) => match priority_class(rest, &name).await? {
            Some(class) => Some(class),
            None => {
                return Err(forbidden(format!(
                    "no PriorityClass with name {name} was found"
                )))
            }
        },
        None => default_priority_class(rest),
    };
    let (value, policy) = match &class {
        Some(c) => (c.value, c.preemption_policy.clone()),
        None => (0, DEFAULT_PREEMPTION_POLICY.to_string()),
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != value {
            return Err(forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            )));
        }
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(forbidden(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
    }
    if let Some(c) = &class {
        spec.insert("priorityClassName".into(), json!(c.name));
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

/// Sets `serviceAccountName` (from the deprecated `serviceAccount`, else
/// `default`) and mirrors it into `serviceAccount`; returns it.
pub(crate) fn default_service_account_name(spec: &mut Map<String, Value>) -> String {
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
pub(crate) fn token_volume(name: &str) -> Value {
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
pub(crate) fn mount_token(spec: &mut Map<String, Value>, suffix: &str) {
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

    fn pc(name: &str, value: i64, default: bool) -> Value {
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "globalDefault": default})
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(
        clippy::too_many_lines,
        reason = "one scenario: creates, updates and their refusals in order"
    )]
    async fn only_one_priority_class_is_the_global_default() {
        let e = crate::podsecurity::tests::env().await;
        let pcs = e.def("scheduling.k8s.io", "v1", "priorityclasses");
        let opts = crate::podsecurity::tests::opts_as("admin");
        e.rest
            .create(&pcs, "", pc("low", 10, true), &opts)
            .await
            .unwrap();
        // Admission reads the classes from the watch cache.
        for _ in 0..100 {
            if default_priority_class(&e.rest).is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let err = e
            .rest
            .create(&pcs, "", pc("other", 20, true), &opts)
            .await
            .unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass low is already marked as default. Only one default can exist"#
        );
        e.rest
            .create(&pcs, "", pc("other", 20, false), &opts)
            .await
            .unwrap();
        let patch = br#"{"globalDefault": true}"#;
        let err = e
            .rest
            .patch(
                &pcs,
                "",
                "other",
                "application/merge-patch+json",
                patch,
                "",
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            r#"priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass low is already marked as default. Only one default can exist"#
        );
        // The default itself may be updated.
        let patch = br#"{"description": "the default"}"#;
        e.rest
            .patch(
                &pcs,
                "",
                "low",
                "application/merge-patch+json",
                patch,
                "",
                &opts,
            )
            .await
            .unwrap();
        let err = e
            .rest
            .patch(
                &pcs,
                "",
                "low",
                "application/merge-patch+json",
                br#"{"value": 11}"#,
                "",
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            r#"PriorityClass.scheduling.k8s.io "low" is invalid: value: Forbidden: may not be changed in an update."#
        );
        let err = e
            .rest
            .create(&pcs, "", pc("system-mine", 1, false), &opts)
            .await
            .unwrap_err();
        assert_eq!(err.code, 422);
        // A pod gets the default's priority and name.
        let pods = e.def("", "v1", "pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let created = e.rest.create(&pods, "default", pod, &opts).await.unwrap();
        assert_eq!(created["spec"]["priority"], 10);
        assert_eq!(created["spec"]["priorityClassName"], "low");
        // An update that leaves priority out keeps it.
        let mut replaced = created.clone();
        replaced["spec"].as_object_mut().unwrap().remove("priority");
        replaced["spec"]
            .as_object_mut()
            .unwrap()
            .remove("tolerations");
        replaced["metadata"]["labels"] = json!({"a": "b"});
        let updated = e
            .rest
            .update(&pods, "default", "p", replaced, "", &opts)
            .await
            .unwrap();
        assert_eq!(updated["spec"]["priority"], 10);
        assert_eq!(
            updated["spec"]["tolerations"],
            created["spec"]["tolerations"]
        );
        assert_eq!(updated["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn system_priority_classes_cannot_be_deleted() {
        let registry = ferrokube_api::registry::Registry::default();
        let pcs = registry
            .get("scheduling.k8s.io", "v1", "priorityclasses")
            .unwrap();
        let err = refuse_system_priority_class_delete(pcs, "system-node-critical").unwrap_err();
        assert_eq!(
            err.message,
            r#"priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority class and cannot be deleted"#
        );
        assert!(refuse_system_priority_class_delete(pcs, "mine").is_ok());
    }

    #[test]
    fn suffixes_are_five_of_kubernetes_characters() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)));
    }
}
