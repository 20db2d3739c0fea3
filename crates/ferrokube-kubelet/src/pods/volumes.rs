//! Pod volumes on the host, under DATA_DIR/agent/pods/<uid>/volumes/: emptyDir (on
//! disk, or tmpfs for `medium: Memory`), hostPath (with its `type` checks),
//! configMap, secret, downwardAPI and projected (those three sources and
//! serviceAccountToken), and persistentVolumeClaim (of bound claims whose
//! volumes are hostPath or local). Files are published atomically the way Kubernetes does it
//! (a `..data` link to a timestamped directory, one link per key), so updates
//! written later reach running containers. As in Kubernetes, secret, downwardAPI
//! and projected volumes live on tmpfs (never on the node's disk), sized like a
//! memory-backed emptyDir: the pod's memory limit when every container has one,
//! else the node's allocatable memory, or the emptyDir's own sizeLimit when
//! smaller. The pod's fsGroup is applied to every volume but hostPath
//! ([`super::ownership`]).
//!
//! A projected `serviceAccountToken` is a TokenRequest for the pod's service
//! account bound to the pod; the token is kept ([`TokenCache`]) and asked for again
//! once 80% of its lifetime has passed, or 24 h, as Kubernetes' kubelet does.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount,
    ServiceAccountTokenProjection, Volume,
};
use kube::api::{Api, PostParams};

use super::env::{field_value, resource_value};
use super::ownership::{self, FsGroup};
use super::subpath;
use crate::cri::api;
use crate::quantity::{self, Quantity};
use crate::KubeletConfig;

/// Volume name → (host path, read-only).
pub(crate) type PreparedVolumes = HashMap<String, (PathBuf, bool)>;

/// Where a pod's volumes live.
pub(crate) fn pod_volumes_dir(config: &KubeletConfig, uid: &str) -> PathBuf {
    config.agent_dir().join("pods").join(uid).join("volumes")
}

fn safe_name(name: &str) -> Result<&str, String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        Err(format!("invalid volume name {name:?}"))
    } else {
        Ok(name)
    }
}

/// One file to publish: relative path, content, mode.
type Files = Vec<(String, Vec<u8>, u32)>;

fn check_rel(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        || path.starts_with("..")
    {
        return Err(format!("invalid path {path:?} in volume"));
    }
    Ok(())
}

fn files_from_map(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    what: &str,
    optional: bool,
) -> Result<Files, String> {
    let mut out = Vec::new();
    match items {
        None => {
            for (k, v) in data {
                out.push((k.clone(), v.clone(), default_mode));
            }
        }
        Some(items) => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        check_rel(&it.path)?;
                        out.push((
                            it.path.clone(),
                            v.clone(),
                            it.mode.map(|m| m as u32).unwrap_or(default_mode),
                        ));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configuration key {:?} not found in {what}",
                            it.key
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn config_map_files(
    client: &kube::Client,
    ns: &str,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
) -> Result<Files, String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| format!("getting configmap {name:?}: {e}"))?;
    let Some(cm) = cm else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(format!("configmap \"{name}\" not found"))
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.unwrap_or_default() {
        data.insert(k, v.0);
    }
    files_from_map(
        &data,
        items,
        default_mode,
        &format!("ConfigMap {ns}/{name}"),
        optional,
    )
}

async fn secret_files(
    client: &kube::Client,
    ns: &str,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
) -> Result<Files, String> {
    let s = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| format!("getting secret {name:?}: {e}"))?;
    let Some(s) = s else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(format!("secret \"{name}\" not found"))
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in s.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    files_from_map(
        &data,
        items,
        default_mode,
        &format!("Secret {ns}/{name}"),
        optional,
    )
}

/// A token is asked for again after this much of its lifetime.
const TOKEN_REFRESH_PERCENT: i64 = 80;

/// ... or after this long, whatever its lifetime.
const TOKEN_MAX_AGE_SECONDS: i64 = 24 * 3600;

/// What a token was asked for: pod, service account, audience, lifetime.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct TokenKey {
    pod_uid: String,
    namespace: String,
    service_account: String,
    audience: String,
    expiration_seconds: i64,
}

#[derive(Clone, Debug)]
struct CachedToken {
    token: String,
    /// Unix seconds after which the token is asked for again.
    refresh_at: i64,
}

/// The service-account tokens the kubelet holds for its pods' volumes.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: parking_lot::Mutex<HashMap<TokenKey, CachedToken>>,
}

/// When a token issued at `now` and expiring at `expires` is refreshed.
fn refresh_at(now: i64, expires: i64) -> i64 {
    let ttl = (expires - now).max(0);
    now + (ttl * TOKEN_REFRESH_PERCENT / 100).min(TOKEN_MAX_AGE_SECONDS)
}

impl TokenCache {
    fn get(&self, key: &TokenKey, now: i64) -> Option<String> {
        let tokens = self.tokens.lock();
        let t = tokens.get(key)?;
        (now < t.refresh_at).then(|| t.token.clone())
    }

    fn put(&self, key: TokenKey, token: String, now: i64, expires: i64) {
        self.tokens.lock().insert(
            key,
            CachedToken {
                token,
                refresh_at: refresh_at(now, expires),
            },
        );
    }

    /// Drops the tokens of a pod that is gone.
    pub(crate) fn forget_pod(&self, pod_uid: &str) {
        self.tokens.lock().retain(|k, _| k.pod_uid != pod_uid);
    }
}

/// The file of a projected service-account token: a token for the pod's service
/// account bound to the pod, from the cache while it is fresh.
async fn token_file(
    client: &kube::Client,
    tokens: &TokenCache,
    pod: &Pod,
    src: &ServiceAccountTokenProjection,
    mode: u32,
) -> Result<Files, String> {
    check_rel(&src.path)?;
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let key = TokenKey {
        pod_uid: pod_uid.clone(),
        namespace: ns.clone(),
        service_account: sa.clone(),
        audience: src.audience.clone().unwrap_or_default(),
        expiration_seconds: src.expiration_seconds.unwrap_or(3600),
    };
    let now = jiff::Timestamp::now().as_second();
    if let Some(token) = tokens.get(&key, now) {
        return Ok(vec![(src.path.clone(), token.into_bytes(), mode)]);
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: src
                .audience
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
            expiration_seconds: Some(key.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name),
                uid: Some(pod_uid),
            }),
        },
        ..Default::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("failed to fetch token for service account {ns}/{sa}: {e}"))?;
    let status = issued
        .status
        .filter(|s| !s.token.is_empty())
        .ok_or_else(|| {
            format!("failed to fetch token for service account {ns}/{sa}: no token in the answer")
        })?;
    let expires = status.expiration_timestamp.0.as_second();
    tokens.put(key, status.token.clone(), now, expires);
    Ok(vec![(src.path.clone(), status.token.into_bytes(), mode)])
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    host_ip: &str,
    node_capacity: &BTreeMap<String, Quantity>,
) -> Result<Files, String> {
    let mut out = Vec::new();
    for it in items {
        check_rel(&it.path)?;
        let mode = it.mode.map(|m| m as u32).unwrap_or(default_mode);
        let value = if let Some(f) = &it.field_ref {
            match f.field_path.as_str() {
                // Whole maps are written one `key="value"` per line.
                "metadata.labels" | "metadata.annotations" => {
                    let m = if f.field_path == "metadata.labels" {
                        &pod.metadata.labels
                    } else {
                        &pod.metadata.annotations
                    };
                    m.iter()
                        .flatten()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                p => field_value(pod, p, host_ip).map_err(|e| e.0)?,
            }
        } else if let Some(r) = &it.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or_default();
            let spec = pod.spec.as_ref();
            let container = spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    format!(
                        "failed to find container {name:?} in pod for resourceFieldRef of {:?}",
                        it.path
                    )
                })?;
            resource_value(container, &r.resource, r.divisor.as_ref(), node_capacity)
                .map_err(|e| e.0)?
        } else {
            String::new()
        };
        out.push((it.path.clone(), value.into_bytes(), mode));
    }
    Ok(out)
}

/// Publishes `files` into `dir` atomically; a no-op when nothing changed.
pub(crate) fn publish(dir: &Path, files: &Files) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    // Unchanged?
    if let Ok(current) = std::fs::read_link(&data_link) {
        let cur = dir.join(current);
        let same = files
            .iter()
            .all(|(p, c, _)| std::fs::read(cur.join(p)).ok().as_deref() == Some(c.as_slice()))
            && count_files(&cur) == files.len();
        if same {
            return Ok(false);
        }
    }
    let stamp = format!("..{}", jiff::Timestamp::now().as_nanosecond());
    let target = dir.join(&stamp);
    std::fs::create_dir_all(&target)?;
    for (p, content, mode) in files {
        let f = target.join(p);
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&f, content)?;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(*mode & 0o777))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link)?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp_link, &data_link)?;
    // Top-level names point through ..data.
    let mut tops: Vec<String> = files
        .iter()
        .map(|(p, _, _)| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    tops.sort();
    tops.dedup();
    for t in &tops {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(t), &link)?;
        }
    }
    // Names that are gone, and the old data directory.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !tops.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = old {
        if old != Path::new(&stamp) {
            let _ = std::fs::remove_dir_all(dir.join(old));
        }
    }
    Ok(true)
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.display().to_string();
    info.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p.as_str()))
}

/// The size of a memory-backed volume as Kubernetes computes it: the node's
/// allocatable memory, or the pod's memory limit (when every container has one)
/// if smaller, or the volume's own sizeLimit if smaller still.
pub(crate) fn memory_volume_size(
    pod: &Pod,
    size_limit: Option<&Quantity>,
    node_capacity: &BTreeMap<String, Quantity>,
) -> Option<i128> {
    let mut size = node_capacity.get("memory").and_then(quantity::value);
    let limit_of = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .and_then(quantity::value)
    };
    let pod_limit = pod.spec.as_ref().and_then(|s| {
        let sum = s
            .containers
            .iter()
            .map(limit_of)
            .try_fold(0i128, |acc, l| Some(acc + l?))?;
        let init = s
            .init_containers
            .iter()
            .flatten()
            .map(limit_of)
            .try_fold(0i128, |acc, l| Some(acc.max(l?)))?;
        Some(sum.max(init))
    });
    for smaller in [pod_limit, size_limit.and_then(quantity::value)]
        .into_iter()
        .flatten()
    {
        if smaller > 0 && size.is_none_or(|s| smaller <= s) {
            size = Some(smaller);
        }
    }
    size
}

/// Creates `path` (mode 0777) and mounts a tmpfs on it, once.
fn memory_dir(path: &Path, size: Option<i128>) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    if !is_mounted(path) {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777));
    }
    mount_tmpfs(path, size)
}

#[expect(unsafe_code, reason = "mount(2) of a tmpfs: std has no mount")]
fn mount_tmpfs(path: &Path, size: Option<i128>) -> Result<(), String> {
    if is_mounted(path) {
        return Ok(());
    }
    let src = std::ffi::CString::new("tmpfs").map_err(|e| e.to_string())?;
    let target =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // As Kubernetes: only the size (the root keeps tmpfs' own mode, 1777).
    let opts = std::ffi::CString::new(match size {
        Some(s) if s > 0 => format!("size={s}"),
        _ => String::new(),
    })
    .map_err(|e| e.to_string())?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mounting tmpfs at {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Unmounts the pod's tmpfs volumes and sub-path binds, then removes its volume
/// directories (never through a mount: that would empty what it shows). False
/// when a mount could not be removed (the pod's directory must then stay).
pub(crate) fn cleanup(config: &KubeletConfig, uid: &str) -> bool {
    let pod_dir = config.agent_dir().join("pods").join(uid);
    for m in subpath::mounts_below(&pod_dir) {
        subpath::unmount(&m);
    }
    if !subpath::mounts_below(&pod_dir).is_empty() {
        tracing::warn!(%uid, "mounts left below {}; keeping its volumes", pod_dir.display());
        return false;
    }
    let _ = std::fs::remove_dir_all(pod_dir.join("volume-subpaths"));
    let _ = std::fs::remove_dir_all(pod_volumes_dir(config, uid));
    true
}

/// Sets up every volume of the pod; returns each volume's host path. Errors are
/// FailedMount messages.
pub(crate) async fn prepare(
    client: &kube::Client,
    tokens: &TokenCache,
    config: &KubeletConfig,
    pod: &Pod,
    host_ip: &str,
    node_capacity: &BTreeMap<String, Quantity>,
) -> Result<PreparedVolumes, VolumeError> {
    prepare_all(client, tokens, config, pod, host_ip, node_capacity)
        .await
        .map_err(VolumeError::of)
}

async fn prepare_all(
    client: &kube::Client,
    tokens: &TokenCache,
    config: &KubeletConfig,
    pod: &Pod,
    host_ip: &str,
    node_capacity: &BTreeMap<String, Quantity>,
) -> Result<PreparedVolumes, String> {
    let fs_group = FsGroup::of(pod);
    // Kubernetes passes no fsGroupChangePolicy for these volume types.
    let fs_group = fs_group.map(|g| FsGroup {
        on_root_mismatch: false,
        ..g
    });
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let cx = Prepare {
        client,
        tokens,
        pod,
        host_ip,
        node_capacity,
        fs_group,
        memory_size: memory_volume_size(pod, None, node_capacity),
        ns: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        base: pod_volumes_dir(config, &uid),
    };
    let mut out = HashMap::new();
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in volumes {
        let name = safe_name(&v.name)?.to_string();
        let (path, readonly) = cx.volume(&v, &name).await?;
        out.insert(name, (path, readonly));
    }
    Ok(out)
}

/// What preparing one pod's volumes needs.
struct Prepare<'a> {
    client: &'a kube::Client,
    tokens: &'a TokenCache,
    pod: &'a Pod,
    host_ip: &'a str,
    node_capacity: &'a BTreeMap<String, Quantity>,
    /// The pod's fsGroup, applied to the volumes' files.
    fs_group: Option<FsGroup>,
    /// The size of memory-backed volumes without a sizeLimit (bytes).
    memory_size: Option<i128>,
    /// The pod's namespace (of the objects its volumes read).
    ns: String,
    /// DATA_DIR/agent/pods/<uid>/volumes.
    base: PathBuf,
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

impl Prepare<'_> {
    /// Gives `p` the pod's fsGroup, if it has one.
    fn own(&self, p: &Path, readonly: bool) -> Result<(), String> {
        match self.fs_group {
            Some(g) => ownership::apply(p, g, readonly)
                .map_err(|e| format!("setting the volume's fsGroup on {}: {e}", p.display())),
            None => Ok(()),
        }
    }

    /// Writes `files` into the volume's directory `p` (a tmpfs when `memory`).
    fn publish_on(&self, p: &Path, files: &Files, memory: bool) -> Result<(), String> {
        let fresh = !p.exists() || (memory && !is_mounted(p));
        if memory {
            memory_dir(p, self.memory_size)?;
        }
        let changed = publish(p, files).map_err(|e| format!("writing {}: {e}", p.display()))?;
        if changed || fresh {
            self.own(p, true)?;
        }
        Ok(())
    }

    /// The volume's host path and whether it is read-only.
    async fn volume(&self, v: &Volume, name: &str) -> Result<(PathBuf, bool), String> {
        let (client, ns) = (self.client, self.ns.as_str());
        let mode_of = |m: Option<i32>| m.map(|m| m as u32).unwrap_or(0o644);
        if let Some(ed) = &v.empty_dir {
            return Ok((self.empty_dir(ed, name)?, false));
        }
        if let Some(hp) = &v.host_path {
            return Ok((host_path(hp)?, false));
        }
        let (kind, files, memory) = if let Some(cm) = &v.config_map {
            let optional = cm.optional.unwrap_or(false);
            let mode = mode_of(cm.default_mode);
            let files =
                config_map_files(client, ns, &cm.name, cm.items.as_ref(), mode, optional).await?;
            ("kubernetes.io~configmap", files, false)
        } else if let Some(s) = &v.secret {
            let sname = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let mode = mode_of(s.default_mode);
            let files = secret_files(client, ns, &sname, s.items.as_ref(), mode, optional).await?;
            ("kubernetes.io~secret", files, true)
        } else if let Some(d) = &v.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            let mode = mode_of(d.default_mode);
            let files = downward_files(self.pod, items, mode, self.host_ip, self.node_capacity)?;
            ("kubernetes.io~downward-api", files, true)
        } else if let Some(pr) = &v.projected {
            let files = self.projected(pr, mode_of(pr.default_mode)).await?;
            ("kubernetes.io~projected", files, true)
        } else if let Some(pvc) = &v.persistent_volume_claim {
            let (p, ro) = claim_volume(client, ns, &pvc.claim_name, name).await?;
            return Ok((p, ro || pvc.read_only.unwrap_or(false)));
        } else {
            return Err(format!(
                "volume {name:?}: this volume type is not supported"
            ));
        };
        let p = self.base.join(kind).join(name);
        self.publish_on(&p, &files, memory)?;
        Ok((p, true))
    }

    /// An emptyDir: set up once, as Kubernetes' (its fsGroup too), on a tmpfs for
    /// medium Memory.
    fn empty_dir(
        &self,
        ed: &k8s_openapi::api::core::v1::EmptyDirVolumeSource,
        name: &str,
    ) -> Result<PathBuf, String> {
        let p = self.base.join("kubernetes.io~empty-dir").join(name);
        let memory = ed.medium.as_deref() == Some("Memory");
        let fresh = !p.exists() || (memory && !is_mounted(&p));
        if fresh {
            mkdir(&p)?;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777));
            if memory {
                let size = memory_volume_size(self.pod, ed.size_limit.as_ref(), self.node_capacity);
                mount_tmpfs(&p, size)?;
            }
            self.own(&p, false)?;
        }
        Ok(p)
    }

    /// The files of a projected volume, source by source.
    async fn projected(
        &self,
        pr: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
        mode: u32,
    ) -> Result<Files, String> {
        let (client, ns) = (self.client, self.ns.as_str());
        let mut files = Vec::new();
        for src in pr.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let optional = cm.optional.unwrap_or(false);
                files.extend(
                    config_map_files(client, ns, &cm.name, cm.items.as_ref(), mode, optional)
                        .await?,
                );
            }
            if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                files.extend(
                    secret_files(client, ns, &s.name, s.items.as_ref(), mode, optional).await?,
                );
            }
            if let Some(t) = &src.service_account_token {
                files.extend(token_file(client, self.tokens, self.pod, t, mode).await?);
            }
            if let Some(d) = &src.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                files.extend(downward_files(
                    self.pod,
                    items,
                    mode,
                    self.host_ip,
                    self.node_capacity,
                )?);
            }
        }
        Ok(files)
    }
}

/// A hostPath volume: created when its type says so, else checked.
fn host_path(hp: &k8s_openapi::api::core::v1::HostPathVolumeSource) -> Result<PathBuf, String> {
    let p = PathBuf::from(&hp.path);
    let exists = p.exists();
    match hp.type_.as_deref().unwrap_or("") {
        "DirectoryOrCreate" if !exists => {
            mkdir(&p)?;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755));
        }
        "FileOrCreate" if !exists => {
            if let Some(parent) = p.parent() {
                mkdir(parent)?;
            }
            std::fs::write(&p, b"").map_err(|e| format!("creating {}: {e}", p.display()))?;
        }
        "Directory" if !p.is_dir() => {
            return Err(format!(
                "hostPath type check failed: {} is not a directory",
                hp.path
            ))
        }
        "File" if !p.is_file() => {
            return Err(format!(
                "hostPath type check failed: {} is not a file",
                hp.path
            ))
        }
        "Socket" | "CharDevice" | "BlockDevice" if !exists => {
            return Err(format!(
                "hostPath type check failed: {} does not exist",
                hp.path
            ))
        }
        _ => {}
    }
    Ok(p)
}

/// The host directory of a `persistentVolumeClaim` volume: its claim must
/// be bound, and its volume a `hostPath` or `local` one (the local-path
/// provisioner's are `hostPath`, created here when missing). Errors read as
/// Kubernetes' kubelet reports a claim it cannot use.
async fn claim_volume(
    client: &kube::Client,
    ns: &str,
    claim: &str,
    volume: &str,
) -> Result<(PathBuf, bool), String> {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let unusable = |why: String| {
        format!(
            "Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[{volume}]: error processing PVC {ns}/{claim}: {why}"
        )
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let c = claims.get(claim).await.map_err(|e| {
        unusable(format!(
            "failed to fetch PVC from API server: {}",
            api_message(&e)
        ))
    })?;
    let bound = c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = c
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if !bound || pv_name.is_empty() {
        return Err(unusable("PVC is not bound".into()));
    }
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .map_err(|e| {
            unusable(format!(
                "failed to fetch PV {pv_name} from API server: {}",
                api_message(&e)
            ))
        })?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(hp) = &spec.host_path {
        let p = PathBuf::from(&hp.path);
        if !p.exists() {
            if hp.type_.as_deref() == Some("DirectoryOrCreate") {
                std::fs::create_dir_all(&p)
                    .map_err(|e| format!("creating {}: {e}", p.display()))?;
                // Writable by any pod user, as local-path's volumes are.
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777));
            } else if matches!(hp.type_.as_deref(), Some("Directory")) {
                return Err(format!(
                    "hostPath type check failed: {} is not a directory",
                    hp.path
                ));
            }
        }
        return Ok((p, false));
    }
    if let Some(local) = &spec.local {
        let p = PathBuf::from(&local.path);
        if !p.exists() {
            return Err(format!(
                "MountVolume.NewMounter initialization failed for volume \"{pv_name}\" : path \"{}\" does not exist",
                local.path
            ));
        }
        return Ok((p, false));
    }
    Err(format!(
        "volume {volume:?}: PersistentVolume {pv_name:?} is of a type this node cannot mount (hostPath and local only)"
    ))
}

/// The message of an API error, as Kubernetes' errors print.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Why a container's volumeMounts cannot be mounted: its
/// CreateContainerConfigError message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MountError {
    /// A volumeMount names a volume the pod does not have.
    #[error("volumeMount {0:?} names no volume")]
    NoVolume(String),
    /// A volumeMount's sub path cannot be mounted.
    #[error(transparent)]
    SubPath(#[from] subpath::SubPathError),
}

/// Why the pod's volumes could not be prepared: the FailedMount event says so.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VolumeError {
    /// The message already is the whole event, in Kubernetes' words (`Unable to
    /// attach or mount volumes: ...`, `MountVolume...`).
    #[error("{0}")]
    Mount(String),
    /// Setting one volume up failed; the event says `MountVolume.SetUp failed:`
    /// and this.
    #[error("{0}")]
    SetUp(String),
}

impl VolumeError {
    fn of(msg: String) -> Self {
        if msg.starts_with("Unable to attach or mount volumes") || msg.starts_with("MountVolume.") {
            VolumeError::Mount(msg)
        } else {
            VolumeError::SetUp(msg)
        }
    }

    /// The FailedMount event's message.
    pub(crate) fn event_message(&self) -> String {
        match self {
            VolumeError::Mount(msg) => msg.clone(),
            VolumeError::SetUp(msg) => format!("MountVolume.SetUp failed: {msg}"),
        }
    }
}

/// Where a container's mounts are prepared.
pub(crate) struct MountContext<'a> {
    /// DATA_DIR/agent/pods/<uid>.
    pub pod_dir: &'a Path,
    /// The container's environment (for `subPathExpr`).
    pub env: &'a [(String, String)],
}

/// The container's CRI mounts for its volumeMounts; sub paths are bound safely
/// ([`subpath`]). Errors are the container's CreateContainerConfigError message.
pub(crate) fn mounts(
    c: &Container,
    volumes: &HashMap<String, (PathBuf, bool)>,
    ctx: &MountContext<'_>,
) -> Result<Vec<api::Mount>, MountError> {
    let mut out = Vec::new();
    for (index, vm) in c.volume_mounts.iter().flatten().enumerate() {
        let (path, ro) = volumes
            .get(&vm.name)
            .ok_or_else(|| MountError::NoVolume(vm.name.clone()))?;
        let sub = match vm.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
            Some(expr) => subpath::expand_expr(expr, ctx.env)?,
            None => vm.sub_path.clone().unwrap_or_default(),
        };
        let host = if sub.is_empty() {
            path.clone()
        } else {
            subpath::check(&sub)?;
            subpath::prepare(
                &subpath::Request {
                    volume: path,
                    sub: &sub,
                    pod_dir: ctx.pod_dir,
                    volume_name: &vm.name,
                    container: &c.name,
                    index,
                },
                &vm.name,
            )?
        };
        out.push(api::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: *ro || vm.read_only.unwrap_or(false),
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_is_atomic_and_tracks_changes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("vol");
        let files: Files = vec![
            ("a".into(), b"1".to_vec(), 0o644),
            ("sub/b".into(), b"2".to_vec(), 0o600),
        ];
        assert!(publish(&d, &files).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(d.join("sub/b")).unwrap(), "2");
        assert!(!publish(&d, &files).unwrap(), "unchanged content rewrote");
        let files2: Files = vec![("a".into(), b"3".to_vec(), 0o644)];
        assert!(publish(&d, &files2).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "3");
        assert!(!d.join("sub").exists(), "removed key still visible");
        // Only one data directory remains.
        let stamps = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("..") && n != "..data"
            })
            .count();
        assert_eq!(stamps, 1);
    }

    #[test]
    fn tokens_are_refreshed_at_80_percent_or_after_a_day() {
        assert_eq!(refresh_at(1000, 1000 + 3607), 1000 + 3607 * 80 / 100);
        assert_eq!(refresh_at(0, 10 * 24 * 3600), 24 * 3600);
        let cache = TokenCache::default();
        let key = TokenKey {
            pod_uid: "u1".into(),
            namespace: "ns".into(),
            service_account: "default".into(),
            audience: String::new(),
            expiration_seconds: 3600,
        };
        cache.put(key.clone(), "t1".into(), 0, 3600);
        assert_eq!(cache.get(&key, 2879).as_deref(), Some("t1"));
        assert_eq!(cache.get(&key, 2880), None, "due for a new token");
        let other = TokenKey {
            audience: "vault".into(),
            ..key.clone()
        };
        assert_eq!(cache.get(&other, 0), None, "another audience");
        cache.forget_pod("u1");
        assert_eq!(cache.get(&key, 0), None);
    }

    #[test]
    fn paths_cannot_escape() {
        assert!(check_rel("../x").is_err());
        assert!(check_rel("/etc/passwd").is_err());
        assert!(check_rel("a/../../b").is_err());
        assert!(check_rel("ok/file").is_ok());
    }
}
