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

/// A group version an extension API server serves behind the aggregator,
/// with the resources its own discovery lists.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RemoteGroupVersion {
    pub(crate) group: String,
    pub(crate) version: String,
    /// The `resources` of its `APIResourceList`.
    pub(crate) resources: Vec<Value>,
}

/// Legacy `APIResource` entries of one group version as aggregated
/// discovery lists them: one entry per resource, its subresources
/// (`pods/status` entries) folded into it.
fn aggregated_from_legacy(group: &str, version: &str, resources: &[Value]) -> Vec<Value> {
    let text = |r: &Value, f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out: Vec<Value> = Vec::new();
    for r in resources.iter().filter(|r| !text(r, "name").contains('/')) {
        let mut e = json!({
            "resource": text(r, "name"),
            "responseKind": {"group": group, "version": version, "kind": text(r, "kind")},
            "scope": if r.get("namespaced").and_then(Value::as_bool) == Some(true) { "Namespaced" } else { "Cluster" },
            "singularResource": text(r, "singularName"),
            "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
        });
        for f in ["shortNames", "categories"] {
            if let Some(v) = r
                .get(f)
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                e[f] = v.clone();
            }
        }
        out.push(e);
    }
    for r in resources {
        let name = text(r, "name");
        let Some((parent, sub)) = name.split_once('/') else {
            continue;
        };
        let Some(e) = out.iter_mut().find(|e| e["resource"] == parent) else {
            continue;
        };
        let or = |f: &str, default: &str| {
            let v = text(r, f);
            if v.is_empty() {
                default.to_string()
            } else {
                v
            }
        };
        let entry = json!({
            "subresource": sub,
            "responseKind": {"group": or("group", group), "version": or("version", version), "kind": text(r, "kind")},
            "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
        });
        match e.get_mut("subresources").and_then(Value::as_array_mut) {
            Some(subs) => subs.push(entry),
            None => e["subresources"] = json!([entry]),
        }
    }
    out
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

    /// These documents with the group versions that extension API servers
    /// serve behind the aggregator added to `/apis` (legacy and
    /// aggregated) and `/apis/<group>`; their resource lists are the
    /// servers' own (the aggregator sends `/apis/<group>/<version>` on).
    pub(crate) fn with_remote(mut self, remote: &[RemoteGroupVersion]) -> Discovery {
        let mut groups: Vec<(&str, Vec<&RemoteGroupVersion>)> = Vec::new();
        for gv in remote {
            match groups.iter_mut().find(|(g, _)| *g == gv.group) {
                Some((_, versions)) => versions.push(gv),
                None => groups.push((&gv.group, vec![gv])),
            }
        }
        let mut api_groups = self.api_group_list["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut aggregated = self.aggregated_groups["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (group, versions) in groups {
            if self.group(group).is_some() {
                // A group served here wins over an APIService naming it.
                continue;
            }
            let entries: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": group_version(group, &v.version), "version": v.version}))
                .collect();
            let group_doc = json!({
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": group,
                "versions": entries,
                "preferredVersion": entries[0],
            });
            api_groups
                .push(json!({"name": group, "versions": entries, "preferredVersion": entries[0]}));
            self.groups.push((group.to_string(), group_doc));
            aggregated.push(json!({
                "metadata": {"name": group},
                "versions": versions.iter().map(|v| json!({
                    "version": v.version,
                    "resources": aggregated_from_legacy(group, &v.version, &v.resources),
                    "freshness": "Current",
                })).collect::<Vec<_>>(),
            }));
        }
        self.api_group_list["groups"] = Value::Array(api_groups);
        self.aggregated_groups["items"] = Value::Array(aggregated);
        self
    }

    /// These documents with group versions this server serves outside the
    /// registry (their own handlers): in `/apis`, `/apis/<group>` and with
    /// their resource lists. A group of the registry wins.
    pub(crate) fn with_own(mut self, own: &[RemoteGroupVersion]) -> Discovery {
        for gv in own {
            if self.group(&gv.group).is_some() {
                continue;
            }
            let name = group_version(&gv.group, &gv.version);
            self.resource_lists.push((
                name.clone(),
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": name, "resources": gv.resources}),
            ));
        }
        let own: Vec<RemoteGroupVersion> = own
            .iter()
            .filter(|gv| self.group(&gv.group).is_none())
            .cloned()
            .collect();
        self.with_remote(&own)
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

    #[test]
    fn group_versions_served_behind_the_aggregator_are_listed() {
        let remote = RemoteGroupVersion {
            group: "wardle.example.com".into(),
            version: "v1".into(),
            resources: vec![
                json!({"name": "flunders", "singularName": "flunder", "namespaced": true, "kind": "Flunder", "verbs": ["get", "list"], "shortNames": ["fl"]}),
                json!({"name": "flunders/status", "singularName": "", "namespaced": true, "kind": "Flunder", "verbs": ["get"]}),
            ],
        };
        // A group served here is not taken over.
        let apps = RemoteGroupVersion {
            group: "apps".into(),
            version: "v9".into(),
            resources: vec![],
        };
        let d = Discovery::build(&Registry::default()).with_remote(&[remote, apps]);
        assert_eq!(
            d.group("wardle.example.com").unwrap()["preferredVersion"]["groupVersion"],
            "wardle.example.com/v1"
        );
        assert!(
            d.resources("wardle.example.com/v1").is_none(),
            "the server's own"
        );
        let listed: Vec<&Value> = d.api_group_list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["name"] == "wardle.example.com" || g["name"] == "apps")
            .collect();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            d.group("apps").unwrap()["versions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let item = d.aggregated_groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "wardle.example.com")
            .unwrap();
        let flunders = &item["versions"][0]["resources"][0];
        assert_eq!(flunders["resource"], "flunders");
        assert_eq!(flunders["scope"], "Namespaced");
        assert_eq!(flunders["shortNames"], json!(["fl"]));
        assert_eq!(flunders["subresources"][0]["subresource"], "status");
        assert_eq!(
            flunders["responseKind"],
            json!({"group": "wardle.example.com", "version": "v1", "kind": "Flunder"})
        );
    }
}
