//! The ValidatingAdmissionPolicy plugin's dispatch (Kubernetes'
//! `validating/dispatcher.go`): for each policy that matches the request,
//! each of its bindings that matches, each parameter the binding finds,
//! the policy is evaluated; failures act as the binding's
//! `validationActions` say. `Deny`: the first refusal answers the request
//! (`ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ...`,
//! the code from the validation's reason); `Warn`: a `Warning` header;
//! `Audit`: the `validation.policy.admission.k8s.io/validation_failure`
//! audit annotation. A policy or binding that cannot be applied (its
//! `paramKind` not served, its parameter missing under `Deny`) refuses
//! the request unless the policy's failurePolicy is `Ignore`.

use std::collections::BTreeMap;

use ferrokube_api::status::ApiError;
use serde_json::{json, Map, Value};

use super::config::{Action, Binding, Hook};
use super::evaluate::{evaluate, Input};
use super::matching::{matches, Subject};
use super::params::{collect, resolve, Params};
use crate::rest::Rest;
use crate::webhook::matching::{namespace_labels, Target};
use crate::webhook::review::request_json;
use crate::webhook::{audit_annotation, Operation, Request};

/// A refusal decided while dispatching.
struct Denial {
    policy: String,
    /// None: the policy itself could not be applied.
    binding: Option<String>,
    message: String,
    reason: String,
}

/// Validates `req` (with `obj`, the object to be written; none for
/// deletes) against every policy bound in the cache.
pub(crate) async fn validate(
    rest: &Rest,
    req: &Request<'_>,
    obj: Option<&Value>,
) -> Result<(), ApiError> {
    if req.exempt() {
        return Ok(());
    }
    let hooks = rest.policies.configs.hooks(rest);
    if hooks.is_empty() {
        return Ok(());
    }
    let labels = namespace_labels(rest, req, obj);
    let subject = Subject {
        target: Target::of(req),
        name: name_of(req, obj),
        namespace_labels: labels.as_ref(),
        object: obj,
        old: req.old,
    };
    let mut denials = Vec::new();
    let mut context = None;
    for hook in hooks.iter() {
        dispatch_one(rest, req, obj, hook, &subject, &mut context, &mut denials);
    }
    match denials.into_iter().next() {
        None => Ok(()),
        Some(d) => Err(refusal(req, obj, d)),
    }
}

/// The request's name, or the new object's.
fn name_of<'a>(req: &'a Request<'_>, obj: Option<&'a Value>) -> &'a str {
    if !req.name.is_empty() {
        return req.name;
    }
    obj.and_then(|o| o.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What every evaluation of one request shares: `request` and
/// `namespaceObject`.
struct Context {
    request: Value,
    namespace: Value,
}

fn context(rest: &Rest, req: &Request<'_>, obj: Option<&Value>) -> Context {
    let mut request = request_json(req, "", obj);
    if let Some(m) = request.as_object_mut() {
        // CEL's `request` leaves the objects out: they are `object` and
        // `oldObject`.
        m.remove("object");
        m.remove("oldObject");
        m.remove("uid");
    }
    let is_namespace = req.def.group.is_empty() && req.def.plural == "namespaces";
    let namespace = if req.namespace.is_empty() || is_namespace {
        Value::Null
    } else {
        namespace_object(rest, req.namespace)
    };
    Context { request, namespace }
}

/// `namespaceObject`: the namespace from the watch cache, its metadata
/// without managed fields and owners.
fn namespace_object(rest: &Rest, name: &str) -> Value {
    let Some(def) = rest.kinds.get("", "v1", "namespaces") else {
        return Value::Null;
    };
    let Some(o) = rest
        .cache
        .resource(def.storage_prefix)
        .and_then(|c| c.get(&def.key("", name)))
    else {
        return Value::Null;
    };
    let mut ns: Value = serde_json::from_slice(&o.json).unwrap_or(Value::Null);
    if let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("ownerReferences");
    }
    ns
}

fn dispatch_one(
    rest: &Rest,
    req: &Request<'_>,
    obj: Option<&Value>,
    hook: &Hook,
    subject: &Subject<'_>,
    context_slot: &mut Option<Context>,
    denials: &mut Vec<Denial>,
) {
    let policy = &hook.policy;
    let Some(constraints) = &policy.constraints else {
        config_error(
            policy,
            None,
            "policy contained no match constraints, a required field".to_string(),
            denials,
        );
        return;
    };
    if !matches(constraints, subject) {
        return;
    }
    let param_def = match &policy.param_kind {
        None => None,
        Some((api_version, kind)) => match resolve(rest, api_version, kind) {
            Ok(def) => Some(def),
            Err(e) => {
                config_error(policy, None, e, denials);
                return;
            }
        },
    };
    let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for binding in &hook.bindings {
        if let Some(m) = &binding.matches {
            if !matches(m, subject) {
                continue;
            }
        }
        let params = match collect(
            rest,
            param_def.as_ref(),
            binding.param_ref.as_ref(),
            req.namespace,
        ) {
            Ok(Params::None) => vec![Value::Null],
            Ok(Params::Found(found)) => found,
            Err(e) => {
                config_error(policy, Some(binding), e, denials);
                continue;
            }
        };
        if params.is_empty() {
            continue;
        }
        let ctx = context_slot.get_or_insert_with(|| context(rest, req, obj));
        let null = Value::Null;
        let object = match req.operation {
            Operation::Delete => &null,
            _ => obj.unwrap_or(&null),
        };
        for param in &params {
            let input = Input {
                object,
                old_object: req.old.unwrap_or(&null),
                request: &ctx.request,
                params: param,
                namespace_object: &ctx.namespace,
            };
            let outcome = evaluate(policy, &input);
            for f in &outcome.failures {
                act(req, &policy.name, binding, f, denials);
            }
            for (k, v) in outcome.annotations {
                let values = annotations.entry(k).or_default();
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
    }
    for (k, values) in annotations {
        audit_annotation(&format!("{}/{k}", policy.name), &values.join(", "));
    }
}

/// A policy or binding that cannot be applied: a refusal unless the
/// policy ignores failures.
fn config_error(
    policy: &super::config::Policy,
    binding: Option<&Binding>,
    err: String,
    denials: &mut Vec<Denial>,
) {
    if policy.ignore_failures {
        return;
    }
    let what = if binding.is_some() {
        "binding"
    } else {
        "policy"
    };
    denials.push(Denial {
        policy: policy.name.clone(),
        binding: binding.map(|b| b.name.clone()),
        message: format!("failed to configure {what}: {err}"),
        reason: String::new(),
    });
}

/// What a binding's actions do with one failure.
fn act(
    req: &Request<'_>,
    policy: &str,
    binding: &Binding,
    f: &super::evaluate::Failure,
    denials: &mut Vec<Denial>,
) {
    for action in &binding.actions {
        match action {
            Action::Deny => denials.push(Denial {
                policy: policy.to_string(),
                binding: Some(binding.name.clone()),
                message: f.message.clone(),
                reason: f.reason.clone(),
            }),
            Action::Warn => req.warn(format!(
                "Validation failed for ValidatingAdmissionPolicy '{policy}' with binding '{}': {}",
                binding.name, f.message
            )),
            Action::Audit => audit_annotation(
                "validation.policy.admission.k8s.io/validation_failure",
                &validation_failure(policy, binding, f),
            ),
        }
    }
}

/// The value of the `validation_failure` audit annotation: a list of one
/// failure, members in Kubernetes' order.
fn validation_failure(policy: &str, binding: &Binding, f: &super::evaluate::Failure) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ValidationFailure<'a> {
        message: &'a str,
        policy: &'a str,
        binding: &'a str,
        expression_index: usize,
        validation_actions: Vec<&'static str>,
    }
    let value = [ValidationFailure {
        message: &f.message,
        policy,
        binding: &binding.name,
        expression_index: f.index,
        validation_actions: binding.actions.iter().map(|a| a.as_str()).collect(),
    }];
    serde_json::to_string(&value).unwrap_or_default()
}

/// The code of a validation's reason (`reasonToCode`).
fn code_of(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

fn static_reason(reason: &str) -> &'static str {
    match reason {
        "Forbidden" => "Forbidden",
        "Unauthorized" => "Unauthorized",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        _ => "Invalid",
    }
}

/// The Status of a refusal: Kubernetes' forbidden error on the request's
/// resource, with the denial's reason and code and the message as a cause.
fn refusal(req: &Request<'_>, obj: Option<&Value>, d: Denial) -> ApiError {
    let message = match &d.binding {
        Some(b) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{b}' denied request: {}",
            d.policy, d.message
        ),
        None => format!(
            "ValidatingAdmissionPolicy '{}' denied request: {}",
            d.policy, d.message
        ),
    };
    build_refusal(
        req.def.group,
        req.def.plural,
        name_of(req, obj),
        &d.reason,
        message,
    )
}

pub(crate) fn build_refusal(
    group: &str,
    resource: &str,
    name: &str,
    reason: &str,
    message: String,
) -> ApiError {
    let mut e = ApiError::forbidden_on(group, resource, name, &message);
    e.reason = static_reason(reason);
    e.code = code_of(reason);
    let details = e.details.get_or_insert_with(|| Value::Object(Map::new()));
    if let Some(d) = details.as_object_mut() {
        d.insert("causes".into(), json!([{"message": message}]));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_annotation_of_a_failure() {
        let b = Binding::from_value(&json!({"metadata": {"name": "b"},
            "spec": {"policyName": "p", "validationActions": ["Warn", "Audit"]}}));
        let f = super::super::evaluate::Failure {
            index: 1,
            message: "too many".into(),
            reason: "Invalid".into(),
        };
        assert_eq!(
            validation_failure("p", &b, &f),
            r#"[{"message":"too many","policy":"p","binding":"b","expressionIndex":1,"validationActions":["Warn","Audit"]}]"#
        );
    }

    #[test]
    fn refusals_in_kubernetes_words_and_codes() {
        let e = build_refusal(
            "apps",
            "deployments",
            "web",
            "",
            "ValidatingAdmissionPolicy 'max' with binding 'max-b' denied request: too many".into(),
        );
        assert_eq!(e.code, 422);
        assert_eq!(e.reason, "Invalid");
        assert_eq!(
            e.message,
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'max' with binding 'max-b' denied request: too many"
        );
        let d = e.details.unwrap();
        assert_eq!(d["name"], "web");
        assert_eq!(d["group"], "apps");
        assert_eq!(d["kind"], "deployments");
        assert_eq!(
            d["causes"][0]["message"],
            "ValidatingAdmissionPolicy 'max' with binding 'max-b' denied request: too many"
        );
        for (reason, code) in [
            ("Forbidden", 403),
            ("Unauthorized", 401),
            ("RequestEntityTooLarge", 413),
            ("Invalid", 422),
        ] {
            let e = build_refusal("", "configmaps", "c", reason, "m".into());
            assert_eq!((e.code, e.reason), (code, reason));
        }
    }
}
