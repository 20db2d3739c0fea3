//! `metrics.k8s.io/v1beta1`, served by the API server itself from the
//! built-in collector (`ferrokube-metrics`), as metrics-server serves it
//! behind the aggregator (`pkg/api`): `nodes` (NodeMetrics) and `pods`
//! (PodMetrics, namespaced), verbs get, list and watch. Nodes and pods are
//! read from the watch cache for their labels and selectors; one that
//! exists but has no metrics yet is left out of lists and is NotFound on
//! get (`nodemetrics.metrics.k8s.io "x" not found`, `podmetrics.metrics.k8s.io
//! "ns/x" not found`); one that does not exist is the lister's NotFound
//! (`node "x" not found`, `pods "x" not found`). Field selectors see
//! `metadata.name` (and `metadata.namespace` for pods). Tables have
//! metrics-server's columns. Watches are pushed every resolution
//! (`watch`). Answers are JSON (metrics-server's are too, whatever the
//! Accept). Authorization is the request's, before this (RBAC on
//! `metrics.k8s.io` `nodes`/`pods`).

mod objects;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokube_api::fields::FieldSelector;
use ferrokube_api::labels::Selector;
use ferrokube_api::status::ApiError;
use ferrokube_metrics::{Collector, NodeSource, NodeTarget, PodKey, Snapshot};
use http::{Method, Response, StatusCode};
use serde_json::Value;

use crate::discovery::RemoteGroupVersion;
use crate::options::Query;
use crate::request_info::RequestInfo;
use crate::rest::Rest;
use crate::server::Body;
use crate::table::{self, IncludeObject};
use crate::watchcache::{CachedObject, WatchCache};

/// The group served.
pub(crate) const GROUP: &str = "metrics.k8s.io";
/// Its version.
pub(crate) const VERSION: &str = "v1beta1";

/// What discovery lists of the group: metrics-server's resources.
pub(crate) fn discovery() -> RemoteGroupVersion {
    let verbs = serde_json::json!(["get", "list", "watch"]);
    RemoteGroupVersion {
        group: GROUP.into(),
        version: VERSION.into(),
        resources: vec![
            serde_json::json!({"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": verbs}),
            serde_json::json!({"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": verbs}),
        ],
    }
}

/// The nodes the collector scrapes: every Node in the watch cache with an
/// address.
pub(crate) struct CacheNodes {
    pub(crate) cache: Arc<WatchCache>,
}

impl NodeSource for CacheNodes {
    fn targets(&self) -> Vec<NodeTarget> {
        let Some(nodes) = self.cache.resource(NODES_PREFIX) else {
            return Vec::new();
        };
        nodes
            .list(NODES_PREFIX)
            .iter()
            .filter_map(|o| {
                let v: Value = serde_json::from_slice(&o.json).ok()?;
                ferrokube_metrics::node_target(&v)
            })
            .collect()
    }
}

const NODES_PREFIX: &str = "/registry/minions/";
const PODS_PREFIX: &str = "/registry/pods/";

/// What a request selects: labels, fields, a namespace.
pub(crate) struct Selection {
    labels: Selector,
    fields: FieldSelector,
    namespace: String,
}

impl Selection {
    fn of(query: &Query, namespace: &str) -> Result<Selection, ApiError> {
        let labels = Selector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selection {
            labels,
            fields,
            namespace: namespace.to_string(),
        })
    }

    fn matches(&self, o: &CachedObject, namespaced: bool) -> bool {
        if namespaced && !self.namespace.is_empty() && o.namespace != self.namespace {
            return false;
        }
        if !self.labels.matches(&o.labels) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        let mut set = BTreeMap::from([("metadata.name".to_string(), o.name.clone())]);
        if namespaced {
            set.insert("metadata.namespace".into(), o.namespace.clone());
        }
        self.fields.matches(&set)
    }
}

/// The two resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    Nodes,
    Pods,
}

impl Resource {
    fn list_kind(self) -> &'static str {
        match self {
            Resource::Nodes => "NodeMetricsList",
            Resource::Pods => "PodMetricsList",
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Resource::Nodes => "NodeMetrics",
            Resource::Pods => "PodMetrics",
        }
    }
}

fn now() -> String {
    crate::objectmeta::now_rfc3339()
}

/// The metrics objects of `resource` that `sel` selects, from `snapshot`,
/// in metrics-server's order (namespace, then name), with their keys.
pub(crate) fn objects(
    cache: &WatchCache,
    snapshot: &Snapshot,
    resource: Resource,
    sel: &Selection,
) -> Vec<(String, Value)> {
    let now = now();
    match resource {
        Resource::Nodes => {
            let Some(cache) = cache.resource(NODES_PREFIX) else {
                return Vec::new();
            };
            cache
                .list(NODES_PREFIX)
                .iter()
                .filter(|o| sel.matches(o, false))
                .filter_map(|o| {
                    let (u, t) = snapshot.nodes.get(&o.name)?;
                    Some((
                        o.name.clone(),
                        objects::node_metrics(&o.name, &o.labels, u, t, &now),
                    ))
                })
                .collect()
        }
        Resource::Pods => {
            let Some(cache) = cache.resource(PODS_PREFIX) else {
                return Vec::new();
            };
            let prefix = if sel.namespace.is_empty() {
                PODS_PREFIX.to_string()
            } else {
                format!("{PODS_PREFIX}{}/", sel.namespace)
            };
            cache
                .list(&prefix)
                .iter()
                .filter(|o| sel.matches(o, true))
                .filter_map(|o| {
                    let key = PodKey {
                        namespace: o.namespace.clone(),
                        name: o.name.clone(),
                    };
                    let usage = snapshot.pods.get(&key)?;
                    Some((
                        format!("{}/{}", o.namespace, o.name),
                        objects::pod_metrics(&o.namespace, &o.name, &o.labels, usage, &now),
                    ))
                })
                .collect()
        }
    }
}

fn get(
    cache: &WatchCache,
    snapshot: &Snapshot,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let now = now();
    match resource {
        Resource::Nodes => {
            let node = cache
                .resource(NODES_PREFIX)
                .and_then(|c| c.get(&format!("{NODES_PREFIX}{name}")))
                .ok_or_else(|| ApiError::not_found("", "node", name))?;
            let (u, t) = snapshot
                .nodes
                .get(name)
                .ok_or_else(|| ApiError::not_found(GROUP, "nodemetrics", name))?;
            Ok(objects::node_metrics(name, &node.labels, u, t, &now))
        }
        Resource::Pods => {
            let pod = cache
                .resource(PODS_PREFIX)
                .and_then(|c| c.get(&format!("{PODS_PREFIX}{namespace}/{name}")))
                .ok_or_else(|| ApiError::not_found("", "pods", name))?;
            let key = PodKey {
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            let usage = snapshot.pods.get(&key).ok_or_else(|| {
                ApiError::not_found(GROUP, "podmetrics", &format!("{namespace}/{name}"))
            })?;
            Ok(objects::pod_metrics(
                namespace,
                name,
                &pod.labels,
                usage,
                &now,
            ))
        }
    }
}

fn answer(v: &Value) -> Response<Body> {
    crate::server::json_response(StatusCode::OK, v)
}

/// Serves a request under `/apis/metrics.k8s.io/`.
pub(crate) async fn serve(
    rest: &Rest,
    collector: &Arc<Collector>,
    method: &Method,
    accept: &str,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let resource = match (info.version.as_str(), info.resource.as_str()) {
        (VERSION, "nodes") if info.namespace.is_empty() => Resource::Nodes,
        (VERSION, "pods") => Resource::Pods,
        _ => return Err(ApiError::no_such_path()),
    };
    if !info.subresource.is_empty() {
        return Err(ApiError::no_such_path());
    }
    if method != Method::GET {
        return Err(ApiError::method_not_supported(
            GROUP,
            info.resource.as_str(),
            &info.verb,
        ));
    }
    let include = IncludeObject::parse(query.get("includeObject"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let as_table = table::wants_table(accept);
    let snapshot = collector.snapshot();
    match info.verb.as_str() {
        "get" => {
            let obj = get(
                &rest.cache,
                &snapshot,
                resource,
                &info.namespace,
                &info.name,
            )?;
            Ok(answer(&if as_table {
                objects::table(&[obj], include, true)
            } else {
                obj
            }))
        }
        "list" => {
            let sel = Selection::of(query, &info.namespace)?;
            let items: Vec<Value> = objects(&rest.cache, &snapshot, resource, &sel)
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            Ok(answer(&if as_table {
                objects::table(&items, include, true)
            } else {
                objects::list(resource.list_kind(), items)
            }))
        }
        "watch" => {
            let mut sel = Selection::of(query, &info.namespace)?;
            if !info.name.is_empty() {
                // A watch of one object (`.../nodes/n1?watch=1`).
                sel.fields
                    .requirements
                    .push(ferrokube_api::fields::FieldRequirement::Equals(
                        "metadata.name".into(),
                        info.name.clone(),
                    ));
            }
            let opts = query.list_options()?;
            Ok(watch::start(
                rest.cache.clone(),
                collector.clone(),
                resource,
                sel,
                opts,
                as_table.then_some(include),
            ))
        }
        _ => Err(ApiError::method_not_supported(
            GROUP,
            info.resource.as_str(),
            &info.verb,
        )),
    }
}
