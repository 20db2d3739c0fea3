//! Kubernetes' type checking of ValidatingAdmissionPolicies, as one
//! background task of the API server over the watch cache: each policy
//! whose `status.observedGeneration` is behind its generation gets its
//! expressions (`spec.validations[*].expression` and `messageExpression`)
//! checked against the OpenAPI schema of each kind its `matchConstraints`
//! names (at most 10, wildcards and subresources skipped), `object` and
//! `oldObject` typed by it and `params` by the `paramKind`'s, and writes
//! `status.typeChecking.expressionWarnings` (in Kubernetes' form:
//! `apps/v1, Kind=Deployment: ERROR: <input>:1:22: ...`) and
//! `status.observedGeneration`.
//!
//! The checks are the subset of cel-go's type checker that
//! [`ferrokube_schema::exprtypes`] does: undefined fields, undeclared
//! references and operators on operands of the wrong kinds; the other
//! issues cel-go finds are not reported.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::config::{GROUP, POLICIES};
use crate::options::WriteOptions;
use crate::rest::Rest;

/// How often a pass runs without any change.
const RESYNC: Duration = Duration::from_secs(30);
/// Kubernetes' limit on the kinds checked per policy.
const MAX_KINDS: usize = 10;

/// Starts the task over the REST storage `rest` finds in `owner`; it stops
/// when `cancel` fires.
pub(crate) fn start<A: Send + Sync + 'static>(
    owner: Arc<A>,
    rest: fn(&A) -> &Rest,
    cancel: CancellationToken,
) {
    tokio::spawn(async move { run(rest(&owner), cancel).await });
}

async fn run(rest: &Rest, cancel: CancellationToken) {
    let Some(def) = rest.kinds.get(GROUP, "v1", POLICIES) else {
        return;
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return;
    };
    loop {
        let mut watch = cache.watch_from(rest.cache.revision()).ok();
        let behind: Vec<Value> = cache
            .list(def.storage_prefix)
            .iter()
            .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
            .filter(|p| {
                p.pointer("/status/observedGeneration") != p.pointer("/metadata/generation")
                    || p.pointer("/status/typeChecking").is_none()
            })
            .collect();
        if !behind.is_empty() {
            let mut docs = Docs::default();
            for p in behind {
                write_status(rest, &def, p, &mut docs).await;
            }
        }
        if !crate::watchcache::next_pass(watch.as_mut(), RESYNC, &cancel).await {
            return;
        }
    }
}

async fn write_status(rest: &Rest, def: &ResourceDef, mut policy: Value, docs: &mut Docs) {
    let warnings = check(rest, &policy, docs);
    let name = policy
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let generation = policy
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(0));
    let mut type_checking = json!({});
    if !warnings.is_empty() {
        type_checking["expressionWarnings"] = Value::Array(warnings);
    }
    let status = policy
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    if let Some(s) = status.and_then(Value::as_object_mut) {
        s.insert("observedGeneration".into(), generation);
        s.insert("typeChecking".into(), type_checking);
    }
    let opts = WriteOptions {
        manager: "kube-apiserver".into(),
        ..WriteOptions::default()
    };
    if let Err(e) = rest.update(def, "", &name, policy, "status", &opts).await {
        // A conflict: the policy changed, and the next pass sees it.
        tracing::debug!(policy = %name, error = %e, "writing a policy's type checking");
    }
}

/// The OpenAPI v3 documents read in one pass, by group-version path.
#[derive(Default)]
struct Docs {
    by_path: HashMap<String, Option<Value>>,
}

impl Docs {
    fn get(&mut self, rest: &Rest, group: &str, version: &str) -> Option<&Value> {
        let path = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        self.by_path
            .entry(path)
            .or_insert_with_key(|path| {
                let openapi = rest.kinds.openapi();
                let (bytes, _) = openapi.v3_group_version(path)?;
                serde_json::from_slice(bytes).ok()
            })
            .as_ref()
    }
}

/// A kind's schema: its document's components and the schema's name.
struct KindSchema {
    gvk: (String, String, String),
    schema: Value,
}

/// The components a `$ref` resolves in (one group version's document).
struct Components<'a>(Vec<&'a Value>);

impl ferrokube_schema::exprtypes::Schemas for Components<'_> {
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let name = reference.strip_prefix("#/components/schemas/")?;
        self.0
            .iter()
            .find_map(|d| d.pointer("/components/schemas")?.get(name))
    }
}

/// The schema of `group/version, Kind=kind` in its document.
fn find_schema(doc: &Value, group: &str, version: &str, kind: &str) -> Option<Value> {
    doc.pointer("/components/schemas")?
        .as_object()?
        .values()
        .find(|s| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|l| {
                    l.iter().any(|g| {
                        g.get("group").and_then(Value::as_str).unwrap_or("") == group
                            && g.get("version").and_then(Value::as_str) == Some(version)
                            && g.get("kind").and_then(Value::as_str) == Some(kind)
                    })
                })
        })
        .cloned()
}

/// The kinds a policy's rules name, sorted by group, version and kind.
fn kinds_of(rest: &Rest, policy: &Value) -> Vec<(String, String, String)> {
    let strings = |v: &Value, k: &str| -> Vec<String> {
        let mut l: Vec<String> = v
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let registry = rest.kinds.registry();
    let mut kinds = BTreeSet::new();
    let rules = policy
        .pointer("/spec/matchConstraints/resourceRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for rule in &rules {
        let groups = strings(rule, "apiGroups");
        let versions = strings(rule, "apiVersions");
        if groups.iter().chain(&versions).any(|g| g.contains('*')) {
            continue;
        }
        let resources: Vec<String> = strings(rule, "resources")
            .into_iter()
            .filter(|r| !r.contains(['*', '/']))
            .collect();
        for g in &groups {
            for v in &versions {
                for r in &resources {
                    if let Some(d) = registry.get(g, v, r) {
                        kinds.insert((
                            d.group.to_string(),
                            d.version.to_string(),
                            d.kind.to_string(),
                        ));
                        if kinds.len() == MAX_KINDS {
                            return kinds.into_iter().collect();
                        }
                    }
                }
            }
        }
    }
    kinds.into_iter().collect()
}

/// The expression warnings of `policy`.
fn check(rest: &Rest, policy: &Value, docs: &mut Docs) -> Vec<Value> {
    let mut schemas = Vec::new();
    for (g, v, k) in kinds_of(rest, policy) {
        if let Some(schema) = docs
            .get(rest, &g, &v)
            .and_then(|d| find_schema(d, &g, &v, &k))
        {
            schemas.push(KindSchema {
                gvk: (g, v, k),
                schema,
            });
        }
    }
    if schemas.is_empty() {
        return Vec::new();
    }
    let param = policy.pointer("/spec/paramKind").and_then(|pk| {
        let api_version = pk.get("apiVersion")?.as_str()?;
        let kind = pk.get("kind")?.as_str()?;
        let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
        Some((g.to_string(), v.to_string(), kind.to_string()))
    });
    let param_schema = param
        .as_ref()
        .and_then(|(g, v, k)| docs.get(rest, g, v).and_then(|d| find_schema(d, g, v, k)));
    // Every document read, for `$ref`s.
    let loaded: Vec<&Value> = docs.by_path.values().flatten().collect();
    let components = Components(loaded);
    let mut warnings = Vec::new();
    let validations = policy
        .pointer("/spec/validations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, v) in validations.iter().enumerate() {
        for field in ["expression", "messageExpression"] {
            let Some(expr) = v
                .get(field)
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
            else {
                continue;
            };
            let Ok(program) = ferrokube_schema::cel::compile(expr) else {
                continue;
            };
            let mut messages = Vec::new();
            for k in &schemas {
                let declared = [
                    ("object", Some(&k.schema)),
                    ("oldObject", Some(&k.schema)),
                    ("params", param_schema.as_ref()),
                    ("request", None),
                    ("namespaceObject", None),
                    ("authorizer", None),
                    ("variables", None),
                ];
                let issues = ferrokube_schema::exprtypes::check(&program, &declared, &components);
                if !issues.is_empty() {
                    let (g, ver, kind) = &k.gvk;
                    messages.push(format!("{g}/{ver}, Kind={kind}: {}\n", issues.join("\n")));
                }
            }
            if !messages.is_empty() {
                warnings.push(json!({
                    "fieldRef": format!("spec.validations[{i}].{field}"),
                    "warning": messages.join("\n"),
                }));
            }
        }
    }
    warnings
}
