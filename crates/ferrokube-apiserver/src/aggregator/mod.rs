//! The aggregation layer, as Kubernetes' kube-aggregator: APIServices
//! (`apiregistration.k8s.io/v1`) say which server serves a group version.
//! Local ones are this server's own (`local`); for a remote one, requests
//! under `/apis/<group>/<version>` are sent on to the extension server
//! behind its Service (`proxy`, `backend`), whose availability is checked
//! and written to the APIService's status, and whose resources discovery
//! lists (`available`). Extension servers learn how to trust our requests
//! from `kube-system/extension-apiserver-authentication`.
//!
//! One task keeps all of it current: it looks again when APIServices,
//! Services, Endpoints or the kinds served change, and at least every 30
//! seconds.

mod apiservice;
mod available;
mod backend;
mod local;
mod proxy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub(crate) use apiservice::ApiServiceStrategy;
pub(crate) use proxy::serve;

use crate::discovery::RemoteGroupVersion;
use crate::options::WriteOptions;
use crate::rest::Rest;

/// The longest a change waits to be looked at.
const RESYNC: Duration = Duration::from_secs(30);

/// How often the task looks for changes.
const POLL: Duration = Duration::from_millis(500);

/// The group and plural of APIServices.
const GROUP: &str = "apiregistration.k8s.io";
const PLURAL: &str = "apiservices";

/// A group version served by an extension server.
#[derive(Debug)]
pub(crate) struct Remote {
    /// The APIService's name.
    pub(crate) name: String,
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) service: backend::ServiceRef,
    /// How to reach it over TLS, or why it cannot be (a bad CA bundle).
    pub(crate) tls: Result<Arc<rustls::ClientConfig>, String>,
}

/// The aggregator's state: the remote group versions, and its credentials.
pub(crate) struct Aggregator {
    remotes: RwLock<BTreeMap<(String, String), Arc<Remote>>>,
    /// The request-header client certificate and key (PEM).
    client: (String, String),
    /// The cluster CA and the request-header CA (PEM), published for
    /// extension servers.
    cas: (String, String),
}

impl Aggregator {
    /// An aggregator presenting the request-header client certificate of
    /// `pki` to extension servers.
    pub(crate) fn new(pki: &crate::pki::Pki) -> Aggregator {
        Aggregator {
            remotes: RwLock::new(BTreeMap::new()),
            client: (
                pki.front_proxy_client_cert_pem.clone(),
                pki.front_proxy_client_key_pem.clone(),
            ),
            cas: (pki.ca_cert_pem.clone(), pki.front_proxy_ca_pem.clone()),
        }
    }

    /// The remote group version a request path falls under, if any
    /// (`/apis/<group>/<version>` and below).
    pub(crate) fn remote_for_path(&self, path: &str) -> Option<Arc<Remote>> {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.split('/');
        let (group, version) = (parts.next()?, parts.next()?);
        if group.is_empty() || version.is_empty() {
            return None;
        }
        let remotes = self.remotes.read();
        if remotes.is_empty() {
            return None;
        }
        remotes
            .get(&(group.to_string(), version.to_string()))
            .cloned()
    }

    /// The remote APIServices among `apiservices`.
    fn remotes_of(&self, apiservices: &[Value]) -> BTreeMap<(String, String), Arc<Remote>> {
        let mut out = BTreeMap::new();
        for a in apiservices {
            let Some(svc) = a.pointer("/spec/service").filter(|s| !s.is_null()) else {
                continue;
            };
            let text = |v: &Value, p: &str| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let port = svc
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443);
            let ca = {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(text(a, "/spec/caBundle"))
                    .unwrap_or_default()
            };
            let insecure = a
                .pointer("/spec/insecureSkipTLSVerify")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let remote = Remote {
                name: text(a, "/metadata/name"),
                group: text(a, "/spec/group"),
                version: text(a, "/spec/version"),
                service: backend::ServiceRef {
                    namespace: text(svc, "/namespace"),
                    name: text(svc, "/name"),
                    port,
                },
                tls: backend::tls_config(&ca, insecure, (&self.client.0, &self.client.1)),
            };
            out.insert(
                (remote.group.clone(), remote.version.clone()),
                Arc::new(remote),
            );
        }
        out
    }
}

/// The APIService row.
fn apiservices_def(rest: &Rest) -> Option<ResourceDef> {
    rest.kinds.get(GROUP, "v1", PLURAL)
}

/// Every APIService, from the watch cache.
fn read_all(rest: &Rest, def: &ResourceDef) -> Vec<Value> {
    rest.cache
        .resource(def.storage_prefix)
        .map(|c| c.list(def.storage_prefix))
        .unwrap_or_default()
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.json).ok())
        .collect()
}

fn options() -> WriteOptions {
    WriteOptions {
        manager: "kube-apiserver".into(),
        ..Default::default()
    }
}

/// An APIService's `Available` condition.
fn available_condition(obj: &Value) -> Option<&Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))
}

/// Writes `status` to the APIService `obj` unless it has it already.
async fn write_status(rest: &Rest, def: &ResourceDef, obj: &Value, status: Value) {
    if obj.get("status") == Some(&status) {
        return;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut new = obj.clone();
    new["status"] = status;
    if let Err(e) = rest.update(def, "", name, new, "status", &options()).await {
        tracing::debug!(apiservice = name, error = %e.message, "writing an APIService's status");
    }
}

/// Makes the local APIServices of what is served now, and deletes those of
/// custom resources' group versions no longer served.
async fn sync_local(rest: &Rest, def: &ResourceDef, existing: &[Value]) {
    let now = crate::objectmeta::now_rfc3339();
    let desired = local::desired(&rest.kinds.registry(), &rest.kinds.own());
    for (name, obj, _) in &desired {
        let found = existing
            .iter()
            .find(|e| e.pointer("/metadata/name").and_then(Value::as_str) == Some(name));
        let stored = match found {
            Some(f) => f.clone(),
            None => match rest.create(def, "", obj.clone(), &options()).await {
                Ok(created) => created,
                Err(e) if e.code == 409 => continue,
                Err(e) => {
                    tracing::warn!(apiservice = %name, error = %e.message, "making a local APIService");
                    continue;
                }
            },
        };
        let local = stored.pointer("/spec/service").is_none_or(Value::is_null);
        if local {
            let check = available::Check {
                status: "True",
                reason: "Local",
                message: "Local APIServices are always available".into(),
                resources: None,
            };
            let status =
                json!({"conditions": [check.condition(available_condition(&stored), &now)]});
            write_status(rest, def, &stored, status).await;
        }
    }
    for e in existing {
        let managed = e
            .pointer(&format!(
                "/metadata/labels/{}",
                local::AUTOMANAGED.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            == Some("true");
        let name = e
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if managed && !desired.iter().any(|(n, _, _)| n == name) {
            let _ = rest
                .delete(def, "", name, &crate::options::DeleteOptions::default())
                .await;
        }
    }
}

/// Publishes how extension servers authenticate our requests:
/// `kube-system/extension-apiserver-authentication`, as Kubernetes keeps it.
async fn publish_authentication(rest: &Rest, agg: &Aggregator) -> Result<(), ApiError> {
    let def = rest
        .kinds
        .get("", "v1", "configmaps")
        .ok_or_else(ApiError::no_such_path)?;
    let data = json!({
        "client-ca-file": agg.cas.0,
        "requestheader-allowed-names": format!("[\"{}\"]", crate::pki::FRONT_PROXY_CLIENT),
        "requestheader-client-ca-file": agg.cas.1,
        "requestheader-extra-headers-prefix": format!("[\"{}\"]", proxy::EXTRA_PREFIX),
        "requestheader-group-headers": format!("[\"{}\"]", proxy::GROUP_HEADER),
        "requestheader-username-headers": format!("[\"{}\"]", proxy::USER_HEADER),
    });
    let name = "extension-apiserver-authentication";
    match rest.get(&def, "kube-system", name).await {
        Ok(existing) if existing.get("data") == Some(&data) => Ok(()),
        Ok(mut existing) => {
            existing["data"] = data;
            rest.update(&def, "kube-system", name, existing, "", &options())
                .await
                .map(|_| ())
        }
        Err(e) if e.code == 404 => {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "kube-system"}, "data": data});
            rest.create(&def, "kube-system", cm, &options())
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// One look at everything: local APIServices, the remote ones' availability
/// and discovery.
async fn pass(rest: &Rest, agg: &Aggregator, def: &ResourceDef) {
    let existing = read_all(rest, def);
    sync_local(rest, def, &existing).await;
    let remotes = agg.remotes_of(&existing);
    let now = crate::objectmeta::now_rfc3339();
    let mut discovered = Vec::new();
    for (key, remote) in &remotes {
        let check = available::check(rest, remote).await;
        let Some(obj) = existing.iter().find(|e| {
            e.pointer("/metadata/name").and_then(Value::as_str) == Some(remote.name.as_str())
        }) else {
            continue;
        };
        let status = json!({"conditions": [check.condition(available_condition(obj), &now)]});
        write_status(rest, def, obj, status).await;
        if let Some(resources) = check.resources {
            discovered.push(RemoteGroupVersion {
                group: key.0.clone(),
                version: key.1.clone(),
                resources,
            });
        }
    }
    // The preferred version first: the higher version priority.
    discovered.sort_by_key(|gv| {
        let priority = existing
            .iter()
            .find(|e| {
                e.pointer("/spec/group").and_then(Value::as_str) == Some(gv.group.as_str())
                    && e.pointer("/spec/version").and_then(Value::as_str)
                        == Some(gv.version.as_str())
            })
            .and_then(|e| e.pointer("/spec/versionPriority").and_then(Value::as_i64))
            .unwrap_or(0);
        (gv.group.clone(), std::cmp::Reverse(priority))
    });
    *agg.remotes.write() = remotes;
    rest.kinds.set_remote(discovered).await;
}

/// What the task watches for changes: the generations of the APIService,
/// Service and Endpoints caches and of the kinds served.
fn generations(
    rest: &Rest,
    def: &ResourceDef,
    kinds: &tokio::sync::watch::Receiver<u64>,
) -> [u64; 4] {
    let of = |prefix: &str| rest.cache.resource(prefix).map_or(0, |c| c.generation());
    let prefix = |plural: &str| {
        rest.kinds
            .get("", "v1", plural)
            .map(|d| d.storage_prefix)
            .unwrap_or("")
    };
    [
        of(def.storage_prefix),
        of(prefix("services")),
        of(prefix("endpoints")),
        *kinds.borrow(),
    ]
}

/// Keeps APIServices, the proxy's routes and discovery current until
/// `cancel` fires.
pub(crate) async fn run(app: Arc<crate::server::App>, cancel: CancellationToken) {
    let rest = &app.rest;
    let agg = &app.aggregator;
    let Some(def) = apiservices_def(rest) else {
        return;
    };
    rest.kinds
        .set_strategy(GROUP, PLURAL, Arc::new(ApiServiceStrategy))
        .await;
    if let Err(e) = publish_authentication(rest, agg).await {
        tracing::warn!(error = %e.message, "publishing extension-apiserver-authentication");
    }
    let kinds = rest.kinds.subscribe();
    let mut seen = None;
    let mut last = Instant::now();
    loop {
        let now = generations(rest, &def, &kinds);
        if seen != Some(now) || last.elapsed() >= RESYNC {
            pass(rest, agg, &def).await;
            // What the pass itself wrote counts as seen.
            seen = Some(generations(rest, &def, &kinds));
            last = Instant::now();
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
