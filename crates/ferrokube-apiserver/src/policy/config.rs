//! The ValidatingAdmissionPolicies and their bindings in the watch cache,
//! parsed (expressions compiled) once per change of either cache, each
//! policy with the bindings that name it: what Kubernetes' policy source
//! keeps from its informers. A change is seen by the next request.

use std::sync::Arc;

use ferrokube_api::labels::Selector;
use parking_lot::Mutex;
use serde_json::Value;

use crate::rest::Rest;
use crate::webhook::cel::Condition;
use crate::webhook::config::{selector, strings, Rule};

/// The API group of the policies and bindings.
pub(crate) const GROUP: &str = "admissionregistration.k8s.io";
/// The policies' resource.
pub(crate) const POLICIES: &str = "validatingadmissionpolicies";
/// The bindings' resource.
pub(crate) const BINDINGS: &str = "validatingadmissionpolicybindings";

/// A CEL expression and its program, or why it does not compile.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) source: String,
    pub(crate) program: Result<Arc<ferrokube_schema::cel::Program>, String>,
}

impl Expr {
    pub(crate) fn compile(source: &str) -> Expr {
        Expr {
            source: source.to_string(),
            program: ferrokube_schema::cel::compile(source).map(Arc::new),
        }
    }
}

/// A rule with the names it is limited to (`NamedRuleWithOperations`).
#[derive(Debug, Clone)]
pub(crate) struct NamedRule {
    pub(crate) rule: Rule,
    /// `resourceNames`: empty is every name.
    pub(crate) names: Vec<String>,
}

/// `MatchResources` of a policy (its `matchConstraints`) or a binding.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchResources {
    pub(crate) namespace_selector: Option<Selector>,
    pub(crate) object_selector: Option<Selector>,
    pub(crate) rules: Vec<NamedRule>,
    pub(crate) excludes: Vec<NamedRule>,
    /// `matchPolicy: Exact`.
    pub(crate) exact: bool,
}

fn named_rules(m: &Value, key: &str) -> Vec<NamedRule> {
    m.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| NamedRule {
            rule: Rule::from_value(r),
            names: strings(r, "resourceNames"),
        })
        .collect()
}

impl MatchResources {
    pub(crate) fn from_value(m: &Value) -> MatchResources {
        MatchResources {
            namespace_selector: selector(m, "namespaceSelector"),
            object_selector: selector(m, "objectSelector"),
            rules: named_rules(m, "resourceRules"),
            excludes: named_rules(m, "excludeResourceRules"),
            exact: m.get("matchPolicy").and_then(Value::as_str) == Some("Exact"),
        }
    }
}

/// One of a policy's `validations`.
#[derive(Debug)]
pub(crate) struct Validation {
    pub(crate) expr: Expr,
    pub(crate) message: String,
    pub(crate) message_expr: Option<Expr>,
    /// `reason`: `Invalid` when left out.
    pub(crate) reason: Option<String>,
}

/// One of a policy's `auditAnnotations`.
#[derive(Debug)]
pub(crate) struct AuditAnnotation {
    pub(crate) key: String,
    pub(crate) value: Expr,
}

/// A ValidatingAdmissionPolicy, parsed.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) name: String,
    /// `paramKind`: (apiVersion, kind).
    pub(crate) param_kind: Option<(String, String)>,
    /// `matchConstraints` (required; none matches nothing and is an error).
    pub(crate) constraints: Option<MatchResources>,
    /// `failurePolicy: Ignore`.
    pub(crate) ignore_failures: bool,
    pub(crate) conditions: Vec<Condition>,
    /// `variables`, in order.
    pub(crate) variables: Vec<(String, Expr)>,
    pub(crate) validations: Vec<Validation>,
    pub(crate) audit_annotations: Vec<AuditAnnotation>,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

impl Policy {
    pub(crate) fn from_value(p: &Value) -> Policy {
        let spec = p.get("spec").unwrap_or(&Value::Null);
        let list = |k: &str| {
            spec.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        Policy {
            name: p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            param_kind: spec.get("paramKind").filter(|k| k.is_object()).map(|k| {
                (
                    text(k, "apiVersion").to_string(),
                    text(k, "kind").to_string(),
                )
            }),
            constraints: spec
                .get("matchConstraints")
                .filter(|m| m.is_object())
                .map(MatchResources::from_value),
            ignore_failures: text(spec, "failurePolicy") == "Ignore",
            conditions: Condition::parse_all(spec.get("matchConditions")),
            variables: list("variables")
                .iter()
                .map(|v| {
                    (
                        text(v, "name").to_string(),
                        Expr::compile(text(v, "expression")),
                    )
                })
                .collect(),
            validations: list("validations")
                .iter()
                .map(|v| Validation {
                    expr: Expr::compile(text(v, "expression")),
                    message: text(v, "message").to_string(),
                    message_expr: Some(text(v, "messageExpression"))
                        .filter(|m| !m.is_empty())
                        .map(Expr::compile),
                    reason: Some(text(v, "reason"))
                        .filter(|r| !r.is_empty())
                        .map(str::to_string),
                })
                .collect(),
            audit_annotations: list("auditAnnotations")
                .iter()
                .map(|a| AuditAnnotation {
                    key: text(a, "key").to_string(),
                    value: Expr::compile(text(a, "valueExpression")),
                })
                .collect(),
        }
    }
}

/// A binding's `paramRef`.
#[derive(Debug, Clone)]
pub(crate) struct ParamRef {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) selector: Option<Selector>,
    /// `parameterNotFoundAction: Deny`.
    pub(crate) deny_if_missing: bool,
}

/// What a binding does with a failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Deny,
    Warn,
    Audit,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// A ValidatingAdmissionPolicyBinding, parsed.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) policy: String,
    pub(crate) param_ref: Option<ParamRef>,
    /// `matchResources` (none: everything the policy matches).
    pub(crate) matches: Option<MatchResources>,
    pub(crate) actions: Vec<Action>,
}

impl Binding {
    pub(crate) fn from_value(b: &Value) -> Binding {
        let spec = b.get("spec").unwrap_or(&Value::Null);
        Binding {
            name: b
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            policy: text(spec, "policyName").to_string(),
            param_ref: spec
                .get("paramRef")
                .filter(|r| r.is_object())
                .map(|r| ParamRef {
                    name: text(r, "name").to_string(),
                    namespace: text(r, "namespace").to_string(),
                    selector: selector(r, "selector"),
                    deny_if_missing: text(r, "parameterNotFoundAction") == "Deny",
                }),
            matches: spec
                .get("matchResources")
                .filter(|m| m.is_object())
                .map(MatchResources::from_value),
            actions: strings(spec, "validationActions")
                .iter()
                .filter_map(|a| match a.as_str() {
                    "Deny" => Some(Action::Deny),
                    "Warn" => Some(Action::Warn),
                    "Audit" => Some(Action::Audit),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// A policy and the bindings that name it.
#[derive(Debug)]
pub(crate) struct Hook {
    pub(crate) policy: Policy,
    pub(crate) bindings: Vec<Binding>,
}

/// The hooks and the generations of both caches they were read at.
#[derive(Default)]
struct Parsed {
    generations: Option<(u64, u64)>,
    hooks: Arc<Vec<Hook>>,
}

/// The parsed policies, rebuilt when either cache moved.
#[derive(Default)]
pub(crate) struct Configs {
    parsed: Mutex<Parsed>,
}

impl std::fmt::Debug for Configs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configs").finish_non_exhaustive()
    }
}

/// The JSON objects of a cached resource, in name order.
fn objects(cache: &crate::watchcache::ResourceCache) -> Vec<Value> {
    cache
        .list(cache.prefix())
        .iter()
        .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
        .collect()
}

impl Configs {
    /// The policies with bound ones, in policy name order, each with its
    /// bindings in name order. Policies without bindings are left out:
    /// they do nothing.
    pub(crate) fn hooks(&self, rest: &Rest) -> Arc<Vec<Hook>> {
        let cache = |plural| {
            rest.kinds
                .get(GROUP, "v1", plural)
                .and_then(|def| rest.cache.resource(def.storage_prefix))
        };
        let (Some(policies), Some(bindings)) = (cache(POLICIES), cache(BINDINGS)) else {
            return Arc::default();
        };
        let generations = (policies.generation(), bindings.generation());
        let mut parsed = self.parsed.lock();
        if parsed.generations != Some(generations) {
            let mut bound: Vec<Binding> =
                objects(&bindings).iter().map(Binding::from_value).collect();
            let hooks = objects(&policies)
                .iter()
                .filter_map(|p| {
                    let policy = Policy::from_value(p);
                    let mine: Vec<Binding>;
                    (mine, bound) = std::mem::take(&mut bound)
                        .into_iter()
                        .partition(|b| b.policy == policy.name);
                    (!mine.is_empty()).then_some(Hook {
                        policy,
                        bindings: mine,
                    })
                })
                .collect();
            *parsed = Parsed {
                generations: Some(generations),
                hooks: Arc::new(hooks),
            };
        }
        parsed.hooks.clone()
    }
}
