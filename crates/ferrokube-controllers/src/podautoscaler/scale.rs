//! The target's `/scale`, whatever its kind: the kind is mapped to a
//! resource through discovery over every version of its group (as
//! Kubernetes' REST mapper maps a group and kind, the apiVersion's version
//! aside), so Deployments, ReplicaSets, StatefulSets, ReplicationControllers
//! and custom resources with a scale subresource all work. Mappings are
//! kept 30 s, as the controller manager resets its mapper.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;

use super::metrics::lock;
use super::sync::{ScaleError, ScaleInfo};

/// How long a mapping is trusted.
const MAPPING_TTL: Duration = Duration::from_secs(30);

/// A scale read, ready to be written back.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    resource: ApiResource,
    namespaced: bool,
    namespace: String,
    name: String,
    scale: Scale,
}

/// One resource a group and kind map to.
type Mapping = (ApiResource, bool);

/// Group and kind to their resources, and when they were looked up.
type MappingCache = HashMap<(String, String), (Vec<Mapping>, Instant)>;

/// Reads and writes targets' scales.
pub(crate) struct Scales {
    client: kube::Client,
    mappings: Mutex<MappingCache>,
}

/// `schema.ParseGroupVersion`: (group, version).
pub(crate) fn parse_group_version(s: &str) -> Result<(String, String), String> {
    if s.is_empty() || s == "/" {
        return Ok((String::new(), String::new()));
    }
    match s.split('/').collect::<Vec<_>>().as_slice() {
        [v] => Ok((String::new(), (*v).to_string())),
        [g, v] => Ok(((*g).to_string(), (*v).to_string())),
        _ => Err(format!("unexpected GroupVersion string: {s}")),
    }
}

impl Scales {
    /// Reads with `client` (the controller's).
    pub(crate) fn new(client: kube::Client) -> Self {
        Scales {
            client,
            mappings: Mutex::new(HashMap::new()),
        }
    }

    /// The resources `group` and `kind` map to, preferred version first.
    async fn mappings(&self, group: &str, kind: &str) -> Result<Vec<Mapping>, String> {
        let key = (group.to_string(), kind.to_string());
        if let Some((m, at)) = lock(&self.mappings).get(&key) {
            if at.elapsed() < MAPPING_TTL {
                return Ok(m.clone());
            }
        }
        let versions: Vec<String> = if group.is_empty() {
            vec!["v1".into()]
        } else {
            let groups = self
                .client
                .list_api_groups()
                .await
                .map_err(|e| crate::podutil::error_message(&e))?;
            match groups.groups.iter().find(|g| g.name == group) {
                None => Vec::new(),
                Some(g) => {
                    let preferred = g.preferred_version.as_ref().map(|p| p.version.clone());
                    let mut vs: Vec<String> = preferred.iter().cloned().collect();
                    vs.extend(
                        g.versions
                            .iter()
                            .map(|v| v.version.clone())
                            .filter(|v| Some(v) != preferred.as_ref()),
                    );
                    vs
                }
            }
        };
        let mut out = Vec::new();
        for v in versions {
            let api_version = if group.is_empty() {
                v.clone()
            } else {
                format!("{group}/{v}")
            };
            let list = if group.is_empty() {
                self.client.list_core_api_resources(&v).await
            } else {
                self.client.list_api_group_resources(&api_version).await
            };
            let Ok(list) = list else { continue };
            if let Some(r) = list
                .resources
                .iter()
                .find(|r| r.kind == kind && !r.name.contains('/'))
            {
                out.push((
                    ApiResource {
                        group: group.to_string(),
                        version: v.clone(),
                        api_version: api_version.clone(),
                        kind: kind.to_string(),
                        plural: r.name.clone(),
                    },
                    r.namespaced,
                ));
            }
        }
        if out.is_empty() {
            return Err(format!("no matches for kind {kind:?} in group {group:?}"));
        }
        lock(&self.mappings).insert(key, (out.clone(), Instant::now()));
        Ok(out)
    }

    fn api(&self, r: &ApiResource, namespaced: bool, ns: &str) -> Api<DynamicObject> {
        if namespaced {
            Api::namespaced_with(self.client.clone(), ns, r)
        } else {
            Api::all_with(self.client.clone(), r)
        }
    }

    /// `scaleForResourceMappings`: the scale through the first mapping
    /// that answers; the first mapping's error otherwise.
    pub(crate) async fn get(
        &self,
        ns: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<ScaleInfo, ScaleError> {
        let (group, _) = parse_group_version(target.api_version.as_deref().unwrap_or_default())
            .map_err(ScaleError::ApiVersion)?;
        let mappings = self
            .mappings(&group, &target.kind)
            .await
            .map_err(ScaleError::Mapping)?;
        let mut first = None;
        for (r, namespaced) in mappings {
            match self.api(&r, namespaced, ns).get_scale(&target.name).await {
                Ok(scale) => {
                    return Ok(ScaleInfo {
                        replicas: scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                        selector: scale
                            .status
                            .as_ref()
                            .and_then(|s| s.selector.clone())
                            .unwrap_or_default(),
                        handle: Handle {
                            resource: r,
                            namespaced,
                            namespace: ns.to_string(),
                            name: target.name.clone(),
                            scale,
                        },
                    })
                }
                Err(e) => {
                    if first.is_none() {
                        first = Some(crate::podutil::error_message(&e));
                    }
                }
            }
        }
        Err(ScaleError::Get(
            first.unwrap_or_else(|| "unrecognized resource".into()),
        ))
    }

    /// Writes `replicas` into the scale read (an update at its
    /// resourceVersion, as Kubernetes' scale client).
    pub(crate) async fn update(&self, info: &ScaleInfo, replicas: i32) -> Result<(), String> {
        let h = &info.handle;
        let mut scale = h.scale.clone();
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        self.api(&h.resource, h.namespaced, &h.namespace)
            .replace_scale(&h.name, &PostParams::default(), &scale)
            .await
            .map(|_| ())
            .map_err(|e| crate::podutil::error_message(&e))
    }
}

#[cfg(test)]
impl Handle {
    /// A handle for tests (no API behind it).
    pub(crate) fn fake(name: &str) -> Self {
        Handle {
            resource: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced: true,
            namespace: String::new(),
            name: name.to_string(),
            scale: Scale::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_versions_parse_as_go_parses_them() {
        assert_eq!(
            parse_group_version("apps/v1").unwrap(),
            ("apps".into(), "v1".into())
        );
        assert_eq!(
            parse_group_version("v1").unwrap(),
            (String::new(), "v1".into())
        );
        assert_eq!(
            parse_group_version("").unwrap(),
            (String::new(), String::new())
        );
        assert_eq!(
            parse_group_version("a/b/c").unwrap_err(),
            "unexpected GroupVersion string: a/b/c"
        );
    }
}
