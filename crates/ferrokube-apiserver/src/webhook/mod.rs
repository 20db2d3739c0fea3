//! Dynamic admission: Kubernetes' MutatingAdmissionWebhook and
//! ValidatingAdmissionWebhook plugins, over the configurations in the watch
//! cache.
//!
//! A write is offered to every webhook whose rules match it (operation,
//! group, version, resource and subresource, scope; `matchPolicy:
//! Equivalent` also takes a rule naming another version of the same
//! resource), whose `namespaceSelector` matches the labels of the request's
//! namespace (of the namespace itself for namespaces) and whose
//! `objectSelector` matches the old or the new object's labels, and whose
//! `matchConditions` (CEL) all hold. Each gets an `AdmissionReview` in the
//! first of its `admissionReviewVersions` this server speaks, over HTTPS to
//! its `url` or its Service (one ready endpoint of it, the certificate
//! checked against `caBundle` for `<service>.<namespace>.svc`), within its
//! `timeoutSeconds`.
//!
//! Mutating webhooks run one after another in the order of their
//! configurations' names, after the built-in mutating plugins; their JSON
//! patches are applied and the object defaulted again; those with
//! `reinvocationPolicy: IfNeeded` run once more when a later webhook changed
//! the object. Validating webhooks run together, after the object's own
//! validation and before ResourceQuota. A call that fails is a refusal
//! (`failurePolicy: Fail`, Kubernetes' `Internal error occurred: failed
//! calling webhook ...`) or is passed over (`Ignore`); a webhook that says no
//! refuses the request with its status, the message prefixed with
//! `admission webhook "<name>" denied the request`. Warnings become
//! `Warning` headers; audit annotations are logged at debug (there is no
//! audit log). Requests of the API server itself and writes of the
//! admission configuration are never sent to webhooks, so no webhook can
//! lock the cluster out of fixing it.

pub(crate) mod cel;
mod client;
pub(crate) mod config;
mod errors;
mod invoke;
pub(crate) mod matching;
mod mutating;
pub(crate) mod review;
mod validating;

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::options::{DeleteOptions, WriteOptions};
use crate::rest::{ApiResult, Rest};

pub(crate) use mutating::mutate;
pub(crate) use validating::validate;

/// What a request does, in Kubernetes' words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// A new object.
    Create,
    /// A replaced or patched object (or subresource).
    Update,
    /// An object deleted.
    Delete,
    /// A connection: `pods/exec`, `attach`, `portforward`, `proxy`.
    Connect,
}

impl Operation {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The facts of one request that admission is asked about.
pub(crate) struct Request<'a> {
    pub(crate) operation: Operation,
    pub(crate) def: &'a ResourceDef,
    /// Empty for the object itself.
    pub(crate) subresource: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    /// The stored object, for updates and deletes.
    pub(crate) old: Option<&'a Value>,
    pub(crate) user: Option<&'a UserInfo>,
    pub(crate) dry_run: bool,
    /// The request's options object (`CreateOptions`, `PodExecOptions`, ...).
    pub(crate) options: Value,
    /// Where warnings for the client go.
    pub(crate) warnings: Option<&'a Arc<parking_lot::Mutex<Vec<String>>>>,
}

impl Request<'_> {
    /// The group, version and kind the request speaks: the subresource's
    /// (a Scale, PodExecOptions, ...) or the object's.
    pub(crate) fn kind(&self) -> (&'static str, &'static str, &'static str) {
        let def = self.def;
        if !self.subresource.is_empty() {
            if let Some(s) = def.subresources.iter().find(|s| s.name == self.subresource) {
                return (s.group, s.version, s.kind);
            }
        }
        (def.group, def.version, def.kind)
    }

    /// Adds a `Warning` header for the client.
    pub(crate) fn warn(&self, message: String) {
        if let Some(w) = self.warnings {
            w.lock().push(message);
        }
    }

    /// Requests no webhook or policy sees: the API server's own (its
    /// setup, made without a user or as `system:apiserver`) and writes of
    /// dynamic admission's own configuration.
    pub(crate) fn exempt(&self) -> bool {
        let own = self.user.is_none_or(|u| u.name == "system:apiserver");
        own || self.def.group == "admissionregistration.k8s.io"
    }
}

/// Records an audit annotation of dynamic admission (a webhook's or a
/// policy's). There is no audit log yet: it is logged at debug.
pub(crate) fn audit_annotation(key: &str, value: &str) {
    tracing::debug!(annotation = %key, value = %value, "admission audit annotation");
}

/// A webhook called outside admission (a CRD's conversion webhook): its
/// `clientConfig`, parsed.
#[derive(Clone, Debug)]
pub(crate) struct ClientConfig {
    endpoint: config::Endpoint,
    ca_bundle: Arc<Vec<u8>>,
}

impl ClientConfig {
    /// The `clientConfig` `cc` (a `url`, or a `service`, and `caBundle`).
    pub(crate) fn from_value(cc: &Value) -> ClientConfig {
        ClientConfig {
            endpoint: config::endpoint(cc),
            ca_bundle: Arc::new(config::ca_bundle(cc)),
        }
    }
}

/// POSTs the JSON `body` to the webhook of `cc` within `timeout`, through
/// the admission webhooks' client (a Service through one of its ready
/// endpoints, only `caBundle` trusted); the answer's body, or Go's words
/// for what failed (`Post "https://...": ...`).
pub(crate) async fn post_json(
    rest: &Rest,
    cc: &ClientConfig,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, String> {
    let to = client::target(&cc.endpoint, timeout);
    rest.webhooks
        .client
        .post(&to, to.dial.address(rest), &cc.ca_bundle, body, timeout)
        .await
}

/// The state dynamic admission keeps: parsed configurations (rebuilt when
/// the cache of their kind moved) and connections to webhooks.
#[derive(Default)]
pub(crate) struct Webhooks {
    configs: config::Configs,
    client: client::Client,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// A create (`old` none) or update of `def`'s object or `subresource`
    /// by the writer of `opts`.
    pub(crate) fn write(
        def: &'a ResourceDef,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
        old: Option<&'a Value>,
        opts: &'a WriteOptions,
    ) -> Request<'a> {
        let (operation, kind) = match old {
            None => (Operation::Create, "CreateOptions"),
            Some(_) => (Operation::Update, "UpdateOptions"),
        };
        let mut options = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
        if opts.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        if let Some(m) = &opts.field_manager {
            options["fieldManager"] = json!(m);
        }
        Request {
            operation,
            def,
            subresource,
            namespace,
            name,
            old,
            user: opts.user.as_ref(),
            dry_run: opts.dry_run,
            options,
            warnings: Some(&opts.warnings),
        }
    }
}

/// Admission of the delete of `old` (mutating webhooks are asked too, as
/// Kubernetes asks them, and may not patch).
pub(crate) async fn admit_delete(
    rest: &Rest,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    old: &Value,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    let mut options = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"});
    if opts.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    if let Some(g) = opts.grace_period_seconds {
        options["gracePeriodSeconds"] = json!(g);
    }
    let req = Request {
        operation: Operation::Delete,
        def,
        subresource: "",
        namespace,
        name,
        old: Some(old),
        user: opts.user.as_ref(),
        dry_run: opts.dry_run,
        options,
        warnings: None,
    };
    mutate(rest, &req, None).await?;
    crate::policy::validate(rest, &req, None).await?;
    validate(rest, &req, None).await
}

/// Admission of a connection to a pod (`exec`, `attach`, `portforward`):
/// the request's options as the `Pod*Options` kind webhooks are sent.
pub(crate) async fn admit_connect(
    rest: &Rest,
    pods: &ResourceDef,
    subresource: &str,
    namespace: &str,
    name: &str,
    user: Option<&UserInfo>,
    query: &crate::options::Query,
) -> ApiResult<()> {
    let flag = |k: &str| matches!(query.get(k), Some("true" | "1"));
    let options = match subresource {
        "exec" | "attach" => {
            let kind = if subresource == "exec" {
                "PodExecOptions"
            } else {
                "PodAttachOptions"
            };
            let mut o = json!({"kind": kind, "apiVersion": "v1"});
            for k in ["stdin", "stdout", "stderr", "tty"] {
                if flag(k) {
                    o[k] = json!(true);
                }
            }
            if let Some(c) = query.get("container") {
                o["container"] = json!(c);
            }
            if subresource == "exec" {
                o["command"] = json!(query.all("command"));
            }
            o
        }
        _ => {
            let ports: Vec<i64> = query
                .all("ports")
                .iter()
                .flat_map(|p| p.split(','))
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            json!({"kind": "PodPortForwardOptions", "apiVersion": "v1", "ports": ports})
        }
    };
    let req = Request {
        operation: Operation::Connect,
        def: pods,
        subresource,
        namespace,
        name,
        old: None,
        user,
        dry_run: false,
        options,
        warnings: None,
    };
    mutate(rest, &req, None).await?;
    crate::policy::validate(rest, &req, None).await?;
    validate(rest, &req, None).await
}
