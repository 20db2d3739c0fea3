//! The webhooks of the Mutating- and ValidatingWebhookConfigurations in the
//! watch cache, parsed once per change of their cache and sorted as
//! Kubernetes calls them: by configuration name, then in the
//! configuration's order.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::labels::Selector;
use parking_lot::Mutex;
use serde_json::Value;

use super::cel::Condition;
use crate::rest::Rest;

/// One rule of a webhook (`RuleWithOperations`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Rule {
    pub(crate) operations: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) versions: Vec<String>,
    pub(crate) resources: Vec<String>,
    /// `*`, `Cluster` or `Namespaced`.
    pub(crate) scope: String,
}

impl Rule {
    pub(crate) fn from_value(v: &Value) -> Rule {
        Rule {
            operations: strings(v, "operations"),
            groups: strings(v, "apiGroups"),
            versions: strings(v, "apiVersions"),
            resources: strings(v, "resources"),
            scope: v
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
        }
    }
}

pub(crate) fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Where a webhook is reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    /// `clientConfig.url`.
    Url(String),
    /// `clientConfig.service`.
    Service {
        namespace: String,
        name: String,
        port: u16,
        path: String,
    },
}

/// One webhook of a configuration, parsed.
#[derive(Debug)]
pub(super) struct Hook {
    pub(super) name: String,
    pub(super) rules: Vec<Rule>,
    /// `matchPolicy: Exact`.
    pub(super) exact: bool,
    pub(super) namespace_selector: Option<Selector>,
    pub(super) object_selector: Option<Selector>,
    /// `failurePolicy: Ignore`.
    pub(super) ignore_failures: bool,
    pub(super) side_effects: String,
    pub(super) timeout: Duration,
    pub(super) review_versions: Vec<String>,
    pub(super) endpoint: Endpoint,
    /// `clientConfig.caBundle`, decoded (PEM).
    pub(super) ca_bundle: Arc<Vec<u8>>,
    /// `reinvocationPolicy: IfNeeded`.
    pub(super) reinvoke: bool,
    pub(super) conditions: Vec<Condition>,
}

pub(crate) fn selector(h: &Value, key: &str) -> Option<Selector> {
    // A selector validation let through is well formed; one that is not
    // matches nothing.
    h.get(key).filter(|s| !s.is_null()).map(|s| {
        Selector::from_value(s)
            .ok()
            .flatten()
            .unwrap_or_else(Selector::nothing)
    })
}

pub(super) fn endpoint(cc: &Value) -> Endpoint {
    match cc.get("service").filter(|s| s.is_object()) {
        Some(s) => {
            let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Endpoint::Service {
                namespace: text("namespace"),
                name: text("name"),
                port: s
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(443),
                path: text("path"),
            }
        }
        None => Endpoint::Url(
            cc.get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
    }
}

pub(super) fn ca_bundle(cc: &Value) -> Vec<u8> {
    use base64::Engine as _;
    cc.get("caBundle")
        .and_then(Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default()
}

impl Hook {
    fn from_value(h: &Value) -> Hook {
        let text = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("");
        let cc = h.get("clientConfig").unwrap_or(&Value::Null);
        Hook {
            name: text("name").to_string(),
            rules: h
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Rule::from_value)
                .collect(),
            exact: text("matchPolicy") == "Exact",
            namespace_selector: selector(h, "namespaceSelector"),
            object_selector: selector(h, "objectSelector"),
            ignore_failures: text("failurePolicy") == "Ignore",
            side_effects: text("sideEffects").to_string(),
            timeout: Duration::from_secs(
                h.get("timeoutSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(10)
                    .clamp(1, 30),
            ),
            review_versions: strings(h, "admissionReviewVersions"),
            endpoint: endpoint(cc),
            ca_bundle: Arc::new(ca_bundle(cc)),
            reinvoke: text("reinvocationPolicy") == "IfNeeded",
            conditions: Condition::parse_all(h.get("matchConditions")),
        }
    }
}

/// The parsed webhooks of one kind of configuration and the cache
/// generation they were read at.
#[derive(Default)]
struct Parsed {
    generation: Option<u64>,
    hooks: Arc<Vec<Hook>>,
}

/// Both kinds of configuration, parsed.
#[derive(Default)]
pub(super) struct Configs {
    mutating: Mutex<Parsed>,
    validating: Mutex<Parsed>,
}

impl Configs {
    /// The webhooks of the mutating (else validating) configurations, in
    /// the order Kubernetes calls them.
    pub(super) fn hooks(&self, rest: &Rest, mutating: bool) -> Arc<Vec<Hook>> {
        let (plural, slot) = if mutating {
            ("mutatingwebhookconfigurations", &self.mutating)
        } else {
            ("validatingwebhookconfigurations", &self.validating)
        };
        let Some(cache) = rest
            .kinds
            .get("admissionregistration.k8s.io", "v1", plural)
            .and_then(|def| rest.cache.resource(def.storage_prefix))
        else {
            return Arc::default();
        };
        let generation = cache.generation();
        let mut parsed = slot.lock();
        if parsed.generation != Some(generation) {
            // Keys are the configurations' names: the list is in name order.
            let hooks = cache
                .list(cache.prefix())
                .iter()
                .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
                .flat_map(|cfg| {
                    cfg.get("webhooks")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|h| Hook::from_value(&h))
                .collect();
            *parsed = Parsed {
                generation: Some(generation),
                hooks: Arc::new(hooks),
            };
        }
        parsed.hooks.clone()
    }
}
