//! API discovery documents, built once from the registry: the legacy ones
//! (`/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`)
//! and the aggregated ones (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`
//! for `/api` and `/apis`, which kubectl asks for first).

use ferrokube_api::registry::{Registry, ResourceDef};
use serde_json::{json, Value};

/// The media type of aggregated discovery.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (v2).
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"g=apidiscovery.k8s.io")
            && p.contains(&"v=v2")
            && p.contains(&"as=APIGroupDiscoveryList")
    })
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The discovery documents.
pub(crate) struct Discovery {
    pub api_versions: Value,
    pub api_group_list: Value,
    pub aggregated_core: Value,
    pub aggregated_groups: Value,
    groups: Vec<(String, Value)>,
    resource_lists: Vec<(String, Value)>,
}

fn resource_entry(r: &ResourceDef) -> Value {
    let mut e = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    e
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        e["subresources"] = Value::Array(
            r.subresources
                .iter()
                .map(|s| {
                    json!({
                        "subresource": s.name,
                        "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                        "verbs": s.verbs,
                    })
                })
                .collect(),
        );
    }
    e
}

impl Discovery {
    pub(crate) fn build(registry: &Registry) -> Discovery {
        let groups = registry.groups();
        let mut api_groups = Vec::new();
        let mut group_docs = Vec::new();
        let mut resource_lists = Vec::new();
        let mut aggregated_groups = Vec::new();
        let mut aggregated_core = Vec::new();
        for (group, versions) in &groups {
            let version_entries: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
                .collect();
            let mut aggregated_versions = Vec::new();
            for v in versions {
                let defs = registry.group_version(group, v);
                let mut resources = Vec::new();
                for r in &defs {
                    resources.push(resource_entry(r));
                    for s in &r.subresources {
                        let mut sub = json!({
                            "name": format!("{}/{}", r.plural, s.name),
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": s.kind,
                            "verbs": s.verbs,
                        });
                        if s.group != r.group || s.version != r.version {
                            sub["group"] = json!(s.group);
                            sub["version"] = json!(s.version);
                        }
                        resources.push(sub);
                    }
                }
                let gv = group_version(group, v);
                resource_lists.push((
                    gv.clone(),
                    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
                ));
                aggregated_versions.push(json!({
                    "version": v,
                    "resources": defs.iter().map(|r| aggregated_resource(r)).collect::<Vec<_>>(),
                    "freshness": "Current",
                }));
            }
            let item = json!({"metadata": {"name": group}, "versions": aggregated_versions});
            if group.is_empty() {
                aggregated_core.push(item);
                continue;
            }
            aggregated_groups.push(item);
            let preferred = version_entries[0].clone();
            let group_doc = json!({
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": group,
                "versions": version_entries,
                "preferredVersion": preferred,
            });
            api_groups.push(json!({"name": group, "versions": group_doc["versions"], "preferredVersion": group_doc["preferredVersion"]}));
            group_docs.push((group.to_string(), group_doc));
        }
        let list = |items: Vec<Value>| json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        Discovery {
            api_versions: json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
            }),
            api_group_list: json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": api_groups}),
            aggregated_core: list(aggregated_core),
            aggregated_groups: list(aggregated_groups),
            groups: group_docs,
            resource_lists,
        }
    }

    /// `/apis/<group>`.
    pub(crate) fn group(&self, name: &str) -> Option<&Value> {
        self.groups.iter().find(|(g, _)| g == name).map(|(_, v)| v)
    }

    /// `/api/v1` (`v1`) or `/apis/<group>/<version>`.
    pub(crate) fn resources(&self, group_version: &str) -> Option<&Value> {
        self.resource_lists
            .iter()
            .find(|(gv, _)| gv == group_version)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let d = Discovery::build(&Registry::default());
        assert_eq!(d.api_versions["versions"], json!(["v1"]));
        let groups: Vec<&str> = d.api_group_list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(groups.contains(&"apps") && !groups.contains(&""));
        let apps = d.resources("apps/v1").unwrap();
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/scale"));
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        let core = &d.aggregated_core["items"][0];
        assert_eq!(core["metadata"]["name"], "");
        let pods = core["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["scope"], "Namespaced");
        assert!(d.group("apps").is_some() && d.group("nope").is_none());
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
