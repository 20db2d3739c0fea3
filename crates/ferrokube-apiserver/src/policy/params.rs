//! A policy's `paramKind` and a binding's `paramRef`: the parameter objects
//! a binding evaluates its policy with, read from the watch cache, with
//! Kubernetes' errors (`generic.CollectParams`, the policy source's
//! `paramKind` resolution).

use ferrokube_api::registry::ResourceDef;
use serde_json::Value;

use super::config::ParamRef;
use crate::rest::Rest;

/// `<group>/<version>, Kind=<kind>`, as Go prints a GroupVersionKind.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// The resource `paramKind` names, or the policy's configuration error.
pub(crate) fn resolve(rest: &Rest, api_version: &str, kind: &str) -> Result<ResourceDef, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let registry = rest.kinds.registry();
    registry
        .all()
        .iter()
        .find(|d| d.group == group && d.version == version && d.kind == kind && d.has_verb("list"))
        .cloned()
        .ok_or_else(|| {
            format!(
                "failed to find resource referenced by paramKind: '{}'",
                gvk_string(api_version, kind)
            )
        })
}

/// What a binding's parameters are.
#[derive(Debug, PartialEq)]
pub(crate) enum Params {
    /// The policy takes none, or the binding names none: evaluated once
    /// with `params` null.
    None,
    /// The objects found (possibly none: nothing is evaluated).
    Found(Vec<Value>),
}

/// The parameters of `param_ref` (of a policy whose `paramKind` is `def`)
/// for a request in `namespace`; the error is the binding's configuration
/// error.
pub(crate) fn collect(
    rest: &Rest,
    def: Option<&ResourceDef>,
    param_ref: Option<&ParamRef>,
    namespace: &str,
) -> Result<Params, String> {
    let (Some(def), Some(r)) = (def, param_ref) else {
        return Ok(Params::None);
    };
    let lookup = Lookup::of(rest, def);
    collect_with(&lookup, def.namespaced, r, namespace)
}

/// Where parameter objects are read from.
pub(crate) trait Source {
    /// The object `name` in `namespace` (empty: cluster-scoped).
    fn get(&self, namespace: &str, name: &str) -> Option<Value>;
    /// The objects in `namespace` (empty: all, or cluster-scoped) with
    /// their labels.
    fn list(&self, namespace: &str) -> Vec<(std::collections::BTreeMap<String, String>, Value)>;
}

struct Lookup<'a> {
    def: &'a ResourceDef,
    cache: Option<std::sync::Arc<crate::watchcache::ResourceCache>>,
}

impl<'a> Lookup<'a> {
    fn of(rest: &Rest, def: &'a ResourceDef) -> Lookup<'a> {
        Lookup {
            def,
            cache: rest.cache.resource(def.storage_prefix),
        }
    }
}

impl Source for Lookup<'_> {
    fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        let cache = self.cache.as_ref()?;
        let o = cache.get(&self.def.key(namespace, name))?;
        serde_json::from_slice(&o.json).ok()
    }

    fn list(&self, namespace: &str) -> Vec<(std::collections::BTreeMap<String, String>, Value)> {
        let Some(cache) = self.cache.as_ref() else {
            return Vec::new();
        };
        cache
            .list(&self.def.list_prefix(namespace))
            .iter()
            .filter_map(|o| Some((o.labels.clone(), serde_json::from_slice(&o.json).ok()?)))
            .collect()
    }
}

/// [`collect`] over any source.
pub(crate) fn collect_with(
    source: &dyn Source,
    namespaced: bool,
    r: &ParamRef,
    namespace: &str,
) -> Result<Params, String> {
    let ns = if namespaced {
        if !r.namespace.is_empty() {
            r.namespace.as_str()
        } else if !namespace.is_empty() {
            namespace
        } else {
            return Err(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                    .to_string(),
            );
        }
    } else {
        if !r.namespace.is_empty() {
            return Err(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`"
                    .to_string(),
            );
        }
        ""
    };
    let found: Vec<Value> = if !r.name.is_empty() {
        source.get(ns, &r.name).into_iter().collect()
    } else if let Some(sel) = &r.selector {
        source
            .list(ns)
            .into_iter()
            .filter(|(labels, _)| sel.matches(labels))
            .map(|(_, v)| v)
            .collect()
    } else {
        return Err("one of name or selector must be provided".to_string());
    };
    if found.is_empty() && r.deny_if_missing {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".to_string(),
        );
    }
    Ok(Params::Found(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_api::labels::Selector;
    use serde_json::json;
    use std::collections::BTreeMap;

    struct Fixed(Vec<(String, String, BTreeMap<String, String>)>);

    impl Source for Fixed {
        fn get(&self, namespace: &str, name: &str) -> Option<Value> {
            self.0
                .iter()
                .find(|(ns, n, _)| ns == namespace && n == name)
                .map(|(ns, n, _)| json!({"metadata": {"name": n, "namespace": ns}}))
        }
        fn list(&self, namespace: &str) -> Vec<(BTreeMap<String, String>, Value)> {
            self.0
                .iter()
                .filter(|(ns, _, _)| namespace.is_empty() || ns == namespace)
                .map(|(ns, n, l)| (l.clone(), json!({"metadata": {"name": n, "namespace": ns}})))
                .collect()
        }
    }

    fn by_name(name: &str, namespace: &str, deny: bool) -> ParamRef {
        ParamRef {
            name: name.into(),
            namespace: namespace.into(),
            selector: None,
            deny_if_missing: deny,
        }
    }

    #[test]
    fn named_params_in_the_request_namespace_or_the_given_one() {
        let src = Fixed(vec![
            ("team-a".into(), "limits".into(), BTreeMap::new()),
            ("shared".into(), "limits".into(), BTreeMap::new()),
        ]);
        let got = collect_with(&src, true, &by_name("limits", "", false), "team-a").unwrap();
        assert_eq!(
            got,
            Params::Found(vec![
                json!({"metadata": {"name": "limits", "namespace": "team-a"}})
            ])
        );
        let got = collect_with(&src, true, &by_name("limits", "shared", false), "team-b").unwrap();
        assert!(matches!(got, Params::Found(v) if v.len() == 1));
        // Missing: Allow evaluates nothing, Deny refuses.
        let got = collect_with(&src, true, &by_name("limits", "", false), "team-b").unwrap();
        assert_eq!(got, Params::Found(vec![]));
        assert_eq!(
            collect_with(&src, true, &by_name("limits", "", true), "team-b").unwrap_err(),
            "no params found for policy binding with `Deny` parameterNotFoundAction"
        );
        assert_eq!(
            collect_with(&src, true, &by_name("limits", "", true), "").unwrap_err(),
            "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
        );
        assert_eq!(
            collect_with(&src, false, &by_name("limits", "x", true), "a").unwrap_err(),
            "paramRef.namespace must not be provided for a cluster-scoped `paramKind`"
        );
    }

    #[test]
    fn selected_params() {
        let src = Fixed(vec![
            (
                "a".into(),
                "one".into(),
                [("use".into(), "yes".into())].into(),
            ),
            (
                "a".into(),
                "two".into(),
                [("use".into(), "no".into())].into(),
            ),
            (
                "a".into(),
                "three".into(),
                [("use".into(), "yes".into())].into(),
            ),
        ]);
        let r = ParamRef {
            name: String::new(),
            namespace: String::new(),
            selector: Selector::from_value(&json!({"matchLabels": {"use": "yes"}})).unwrap(),
            deny_if_missing: true,
        };
        let Params::Found(got) = collect_with(&src, true, &r, "a").unwrap() else {
            panic!("params expected");
        };
        let names: Vec<&str> = got
            .iter()
            .filter_map(|v| v.pointer("/metadata/name")?.as_str())
            .collect();
        assert_eq!(names, ["one", "three"]);
    }

    #[test]
    fn param_kind_errors_name_the_kind_as_go_prints_it() {
        assert_eq!(gvk_string("v1", "ConfigMap"), "/v1, Kind=ConfigMap");
        assert_eq!(
            gvk_string("example.com/v1", "BadParamKind"),
            "example.com/v1, Kind=BadParamKind"
        );
    }
}
