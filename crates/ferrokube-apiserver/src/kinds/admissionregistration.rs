//! `admissionregistration.k8s.io/v1`: MutatingWebhookConfiguration,
//! ValidatingWebhookConfiguration, ValidatingAdmissionPolicy and its
//! binding, with Kubernetes' defaults (`SetDefaults_*` of the group's v1) and
//! validation messages (`ValidateMutatingWebhookConfiguration`, ...). What
//! the configurations do to requests is [`crate::webhook`]'s.

use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1035_label, is_dns1123_subdomain, is_qualified_name};
use serde_json::{json, Map, Value};

use super::meta::{array, label_selector, text};

/// Fills `obj` (a webhook, a policy's `matchConstraints` or a binding's
/// `matchResources`) with the selectors and match policy left out.
fn default_match(obj: &mut Map<String, Value>) {
    obj.entry("matchPolicy").or_insert(json!("Equivalent"));
    for sel in ["namespaceSelector", "objectSelector"] {
        let v = obj.entry(sel).or_insert(json!({}));
        if v.is_null() {
            *v = json!({});
        }
    }
}

/// Rules' scope defaults to `*`.
fn default_rules(obj: &mut Map<String, Value>, key: &str) {
    if let Some(rules) = obj.get_mut(key).and_then(Value::as_array_mut) {
        for r in rules.iter_mut().filter_map(Value::as_object_mut) {
            r.entry("scope").or_insert(json!("*"));
        }
    }
}

/// Kubernetes' defaults of a webhook configuration's webhooks.
pub(crate) fn default_webhooks(obj: &mut Value, mutating: bool) {
    let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for h in hooks.iter_mut().filter_map(Value::as_object_mut) {
        h.entry("failurePolicy").or_insert(json!("Fail"));
        h.entry("timeoutSeconds").or_insert(json!(10));
        if mutating {
            h.entry("reinvocationPolicy").or_insert(json!("Never"));
        }
        default_match(h);
        default_rules(h, "rules");
        if let Some(svc) = h
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            svc.entry("port").or_insert(json!(443));
        }
    }
}

/// Kubernetes' defaults of a ValidatingAdmissionPolicy.
pub(crate) fn default_policy(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("failurePolicy").or_insert(json!("Fail"));
    if let Some(m) = spec
        .get_mut("matchConstraints")
        .and_then(Value::as_object_mut)
    {
        default_match(m);
        default_rules(m, "resourceRules");
        default_rules(m, "excludeResourceRules");
    }
}

/// Kubernetes' defaults of a ValidatingAdmissionPolicyBinding.
pub(crate) fn default_binding(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(m) = spec
        .get_mut("matchResources")
        .and_then(Value::as_object_mut)
    {
        default_match(m);
        default_rules(m, "resourceRules");
        default_rules(m, "excludeResourceRules");
    }
}

/// The errors of a webhook configuration.
pub(crate) fn validate_configuration(obj: &Value, mutating: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, h) in array(obj, "/webhooks").iter().enumerate() {
        let path = format!("webhooks[{i}]");
        let name = text(h, "/name");
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
        validate_webhook(h, &path, mutating, &mut errs);
    }
    errs
}

/// `IsFullyQualifiedName`: a DNS subdomain of at least three segments.
fn fully_qualified_name(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.extend(msgs.into_iter().map(|m| FieldError::invalid(path, name, m)));
        return;
    }
    if name.split('.').count() < 3 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

fn one_of(h: &Value, field: &str, path: &str, allowed: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(v) = h.get(field).and_then(Value::as_str) {
        if !allowed.contains(&v) {
            errs.push(FieldError::not_supported(
                format!("{path}.{field}"),
                v,
                allowed,
            ));
        }
    }
}

fn validate_webhook(h: &Value, path: &str, mutating: bool, errs: &mut Vec<FieldError>) {
    fully_qualified_name(text(h, "/name"), &format!("{path}.name"), errs);
    for (i, r) in array(h, "/rules").iter().enumerate() {
        validate_rule(r, &format!("{path}.rules[{i}]"), true, errs);
    }
    one_of(h, "failurePolicy", path, &["Fail", "Ignore"], errs);
    one_of(h, "matchPolicy", path, &["Equivalent", "Exact"], errs);
    if mutating {
        one_of(h, "reinvocationPolicy", path, &["IfNeeded", "Never"], errs);
    }
    // The typed check writes a missing (required) field as "".
    match h
        .get("sideEffects")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        None => errs.push(FieldError::required(
            format!("{path}.sideEffects"),
            "must specify one of None, NoneOnDryRun",
        )),
        Some(s) if !matches!(s, "None" | "NoneOnDryRun") => errs.push(FieldError::not_supported(
            format!("{path}.sideEffects"),
            s,
            &["None", "NoneOnDryRun"],
        )),
        Some(_) => {}
    }
    if let Some(t) = h.get("timeoutSeconds").and_then(Value::as_i64) {
        if !(1..=30).contains(&t) {
            errs.push(FieldError::invalid(
                format!("{path}.timeoutSeconds"),
                t,
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
    }
    review_versions(h, path, errs);
    for sel in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = h.get(sel).filter(|s| !s.is_null()) {
            label_selector(s, &format!("{path}.{sel}"), errs);
        }
    }
    client_config(h.get("clientConfig"), &format!("{path}.clientConfig"), errs);
    match_conditions(h, path, errs);
}

fn review_versions(h: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let field = format!("{path}.admissionReviewVersions");
    let versions = array(h, "/admissionReviewVersions");
    if versions.is_empty() {
        errs.push(FieldError::required(
            field,
            "must specify one of v1, v1beta1",
        ));
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        for m in is_dns1035_label(v) {
            errs.push(FieldError::invalid(format!("{field}[{i}]"), v, m));
        }
        if !seen.insert(v) {
            errs.push(FieldError::duplicate(format!("{field}[{i}]"), v));
        }
        accepted |= matches!(v, "v1" | "v1beta1");
    }
    if !accepted {
        errs.push(FieldError::invalid(
            field,
            Value::Array(versions.to_vec()),
            "must include at least one of v1, v1beta1",
        ));
    }
}

fn client_config(cc: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let cc = cc.unwrap_or(&Value::Null);
    let url = cc.get("url").and_then(Value::as_str);
    let svc = cc.get("service").filter(|s| s.is_object());
    match (url, svc) {
        (Some(u), None) => webhook_url(u, &format!("{path}.url"), errs),
        (None, Some(s)) => webhook_service(s, &format!("{path}.service"), errs),
        _ => errs.push(FieldError::required(
            path,
            "exactly one of url or service is required",
        )),
    }
}

/// `ValidateWebhookURL` with https required.
pub(crate) fn webhook_url(u: &str, path: &str, errs: &mut Vec<FieldError>) {
    const FORM: &str = "; desired format: https://host[/path]";
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    if scheme != "https" {
        errs.push(FieldError::invalid(
            path,
            scheme,
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let (before_fragment, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (before_query, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    if host.is_empty() || !u.contains("://") {
        errs.push(FieldError::invalid(
            path,
            host,
            format!("host must be provided{FORM}"),
        ));
    }
    if let Some(user) = user {
        errs.push(FieldError::invalid(
            path,
            user,
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        errs.push(FieldError::invalid(
            path,
            fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        errs.push(FieldError::invalid(
            path,
            query,
            "query parameters are not permitted in the URL",
        ));
    }
}

/// `ValidateWebhookService`.
pub(crate) fn webhook_service(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if text(s, "/name").is_empty() {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "service name is required",
        ));
    }
    if text(s, "/namespace").is_empty() {
        errs.push(FieldError::required(
            format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    let port = s.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            format!("{path}.port"),
            port,
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(p) = s.get("path").and_then(Value::as_str) else {
        return;
    };
    if p.is_empty() || p == "/" {
        return;
    }
    let field = format!("{path}.path");
    if p == "//" {
        errs.push(FieldError::invalid(field, p, "segment[0] may not be empty"));
        return;
    }
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(&field, p, "must start with a '/'"));
    }
    let inner = p.strip_prefix('/').unwrap_or(p);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for (i, step) in inner.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &field,
                p,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for m in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(&field, p, format!("segment[{i}]: {m}")));
        }
    }
}

/// `*` must stand alone in a rule's list.
fn star_alone(list: &[Value], path: &str, what: &str, errs: &mut Vec<FieldError>) {
    if list.len() > 1 && list.iter().any(|v| v == "*") {
        errs.push(FieldError::invalid(
            path,
            Value::Array(list.to_vec()),
            format!("if '*' is present, must not specify other {what}"),
        ));
    }
}

/// A rule (with operations when `with_operations`).
fn validate_rule(r: &Value, path: &str, with_operations: bool, errs: &mut Vec<FieldError>) {
    if with_operations {
        let ops = array(r, "/operations");
        let field = format!("{path}.operations");
        if ops.is_empty() {
            errs.push(FieldError::required(&field, ""));
        }
        star_alone(ops, &field, "operations", errs);
        const OPS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        for (i, op) in ops.iter().enumerate() {
            let op = op.as_str().unwrap_or("");
            if !OPS.contains(&op) {
                errs.push(FieldError::not_supported(format!("{field}[{i}]"), op, OPS));
            }
        }
    }
    for (key, what) in [("apiGroups", "API groups"), ("apiVersions", "API versions")] {
        let list = array(r, &format!("/{key}"));
        let field = format!("{path}.{key}");
        if list.is_empty() {
            errs.push(FieldError::required(&field, ""));
        }
        star_alone(list, &field, what, errs);
        if key == "apiVersions" {
            for (i, v) in list.iter().enumerate() {
                if v.as_str().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("{field}[{i}]"), ""));
                }
            }
        }
    }
    validate_resources(array(r, "/resources"), &format!("{path}.resources"), errs);
    if let Some(scope) = r.get("scope").and_then(Value::as_str) {
        if !matches!(scope, "*" | "Cluster" | "Namespaced") {
            errs.push(FieldError::not_supported(
                format!("{path}.scope"),
                scope,
                &["*", "Cluster", "Namespaced"],
            ));
        }
    }
}

/// `validateResources`: `*`, `*/*`, `res/*`, `*/sub` and `res/sub` may not
/// overlap.
fn validate_resources(list: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    if list.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut with_subs = std::collections::HashSet::new();
    let mut subs_of = std::collections::HashMap::<&str, Vec<&str>>::new();
    let mut has_star = false;
    for (i, r) in list.iter().enumerate() {
        let r = r.as_str().unwrap_or("");
        if r.is_empty() {
            errs.push(FieldError::required(format!("{path}[{i}]"), ""));
            continue;
        }
        if r == "*/*" || r == "*" {
            has_star |= r == "*/*";
        }
        if r.matches('/').count() > 1 {
            errs.push(FieldError::invalid(
                format!("{path}[{i}]"),
                r,
                "must have at most one '/' character",
            ));
            continue;
        }
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        with_subs.insert(r);
        subs_of.entry(res).or_default().push(sub);
    }
    if has_star && list.len() > 1 {
        errs.push(FieldError::invalid(
            path,
            Value::Array(list.to_vec()),
            "if '*/*' is present, must not specify other resources",
        ));
        return;
    }
    if with_subs.contains("*") && subs_of.keys().any(|r| *r != "*") {
        let others = subs_of
            .iter()
            .any(|(r, subs)| *r != "*" && subs.contains(&""));
        if others {
            errs.push(FieldError::invalid(
                path,
                Value::Array(list.to_vec()),
                "if '*' is present, must not specify other resources without subresources",
            ));
        }
    }
}

/// A webhook's `matchConditions`: names unique qualified names, at most
/// 64 conditions, each expression present and compiling.
fn match_conditions(h: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let conds = array(h, "/matchConditions");
    let field = format!("{path}.matchConditions");
    let mut names = std::collections::HashSet::new();
    for (i, c) in conds.iter().enumerate() {
        let p = format!("{field}[{i}]");
        let name = text(c, "/name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for m in is_qualified_name(name) {
                errs.push(FieldError::invalid(format!("{p}.name"), name, m));
            }
            if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{p}.name"), name));
            }
        }
        let expr = text(c, "/expression");
        if expr.trim().is_empty() {
            errs.push(FieldError::required(format!("{p}.expression"), ""));
        } else if let Err(e) = crate::webhook::cel::check(expr) {
            errs.push(FieldError::invalid(
                format!("{p}.expression"),
                expr,
                format!("compilation failed: {e}"),
            ));
        }
    }
}

/// The errors of a ValidatingAdmissionPolicy.
pub(crate) fn validate_policy(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(pk) = spec.get("paramKind").filter(|p| p.is_object()) {
        if text(pk, "/kind").is_empty() {
            errs.push(FieldError::required("spec.paramKind.kind", ""));
        }
        if text(pk, "/apiVersion").is_empty() {
            errs.push(FieldError::required("spec.paramKind.apiVersion", ""));
        }
    }
    match spec.get("matchConstraints").filter(|m| m.is_object()) {
        None => errs.push(FieldError::required("spec.matchConstraints", "")),
        Some(m) => {
            let rules = array(m, "/resourceRules");
            if rules.is_empty() {
                errs.push(FieldError::required(
                    "spec.matchConstraints.resourceRules",
                    "",
                ));
            }
            for (i, r) in rules.iter().enumerate() {
                validate_rule(
                    r,
                    &format!("spec.matchConstraints.resourceRules[{i}]"),
                    true,
                    &mut errs,
                );
            }
        }
    }
    one_of(
        spec,
        "failurePolicy",
        "spec",
        &["Fail", "Ignore"],
        &mut errs,
    );
    let validations = array(spec, "/validations");
    let audits = array(spec, "/auditAnnotations");
    if validations.is_empty() && audits.is_empty() {
        errs.push(FieldError::required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    for (i, v) in validations.iter().enumerate() {
        validate_validation(v, &format!("spec.validations[{i}]"), &mut errs);
    }
    for (i, a) in audits.iter().enumerate() {
        let p = format!("spec.auditAnnotations[{i}]");
        if text(a, "/key").is_empty() {
            errs.push(FieldError::required(format!("{p}.key"), ""));
        }
        expression(
            text(a, "/valueExpression"),
            &format!("{p}.valueExpression"),
            "valueExpression is not specified",
            &mut errs,
        );
    }
    for (i, v) in array(spec, "/variables").iter().enumerate() {
        let p = format!("spec.variables[{i}]");
        let name = text(v, "/name");
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else if !identifier {
            errs.push(FieldError::invalid(
                format!("{p}.name"),
                name,
                "must be a valid CEL identifier",
            ));
        }
        expression(
            text(v, "/expression"),
            &format!("{p}.expression"),
            "",
            &mut errs,
        );
    }
    match_conditions(spec, "spec", &mut errs);
    errs
}

/// One of a policy's `validations` (at `p`).
fn validate_validation(v: &Value, p: &str, errs: &mut Vec<FieldError>) {
    expression(
        text(v, "/expression"),
        &format!("{p}.expression"),
        "expression is not specified",
        errs,
    );
    let message_expr = text(v, "/messageExpression");
    if !message_expr.is_empty() {
        if message_expr.trim().is_empty() {
            errs.push(FieldError::invalid(
                format!("{p}.messageExpression"),
                message_expr,
                "must be non-empty if specified",
            ));
        } else {
            expression(message_expr, &format!("{p}.messageExpression"), "", errs);
        }
    }
    let message = text(v, "/message");
    if !message.is_empty() && message.trim().is_empty() {
        errs.push(FieldError::invalid(
            format!("{p}.message"),
            message,
            "message must be non-empty if specified",
        ));
    } else if message.trim().contains(['\n', '\r']) {
        errs.push(FieldError::invalid(
            format!("{p}.message"),
            message,
            "message must not contain line breaks",
        ));
    }
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        const REASONS: &[&str] = &[
            "Forbidden",
            "Invalid",
            "RequestEntityTooLarge",
            "Unauthorized",
        ];
        if !REASONS.contains(&reason) {
            errs.push(FieldError::not_supported(
                format!("{p}.reason"),
                reason,
                REASONS,
            ));
        }
    }
}

/// A policy's CEL expression: present (`missing` is the Required detail)
/// and compiling.
fn expression(expr: &str, path: &str, missing: &str, errs: &mut Vec<FieldError>) {
    if expr.trim().is_empty() {
        errs.push(FieldError::required(path, missing));
    } else if let Err(e) = crate::webhook::cel::check(expr) {
        errs.push(FieldError::invalid(
            path,
            expr,
            format!("compilation failed: {e}"),
        ));
    }
}

/// The errors of a ValidatingAdmissionPolicyBinding.
pub(crate) fn validate_binding(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if text(spec, "/policyName").is_empty() {
        errs.push(FieldError::required("spec.policyName", ""));
    }
    let actions = array(spec, "/validationActions");
    if actions.is_empty() {
        errs.push(FieldError::required("spec.validationActions", ""));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        let a = a.as_str().unwrap_or("");
        let p = format!("spec.validationActions[{i}]");
        if !seen.insert(a) {
            errs.push(FieldError::duplicate(&p, a));
        }
        if !matches!(a, "Deny" | "Warn" | "Audit") {
            errs.push(FieldError::not_supported(p, a, &["Audit", "Deny", "Warn"]));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid(
            "spec.validationActions",
            Value::Array(actions.to_vec()),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if let Some(r) = spec.get("paramRef").filter(|r| r.is_object()) {
        let named = !text(r, "/name").is_empty();
        let selected = r.get("selector").is_some_and(|s| !s.is_null());
        if named && selected {
            errs.push(FieldError::forbidden(
                "spec.paramRef.name",
                "name and selector are mutually exclusive",
            ));
        }
        if !named && !selected {
            errs.push(FieldError::required(
                "spec.paramRef",
                "one of name or selector must be specified",
            ));
        }
        match r.get("parameterNotFoundAction").and_then(Value::as_str) {
            None => errs.push(FieldError::required(
                "spec.paramRef.parameterNotFoundAction",
                "",
            )),
            Some(a) if !matches!(a, "Allow" | "Deny") => errs.push(FieldError::not_supported(
                "spec.paramRef.parameterNotFoundAction",
                a,
                &["Allow", "Deny"],
            )),
            Some(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_errors(spec: Value) -> Vec<String> {
        validate_policy(&json!({"spec": spec}))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn policy_expressions_must_compile() {
        let rules = json!({"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
            "apiVersions": ["v1"], "resources": ["deployments"]}]});
        let errs = policy_errors(json!({
            "matchConstraints": rules,
            "validations": [
                {"expression": "object.spec.replicas >", "message": "a\nb"},
                {"expression": " ", "messageExpression": "'x' +"},
            ],
            "variables": [{"name": "1st", "expression": "true"}],
            "auditAnnotations": [{"key": "k", "valueExpression": ""}],
        }));
        let has = |prefix: &str| errs.iter().any(|e| e.starts_with(prefix));
        assert!(has("spec.validations[0].expression: Invalid value: \"object.spec.replicas >\": compilation failed: ERROR: <input>:1:23:"), "{errs:#?}");
        assert!(has("spec.validations[0].message: Invalid value: \"a\\nb\": message must not contain line breaks"), "{errs:#?}");
        assert!(
            has("spec.validations[1].expression: Required value: expression is not specified"),
            "{errs:#?}"
        );
        assert!(has("spec.validations[1].messageExpression: Invalid value: \"'x' +\": compilation failed:"), "{errs:#?}");
        assert!(
            has("spec.variables[0].name: Invalid value: \"1st\": must be a valid CEL identifier"),
            "{errs:#?}"
        );
        assert!(has("spec.auditAnnotations[0].valueExpression: Required value: valueExpression is not specified"), "{errs:#?}");
        let ok = policy_errors(json!({
            "matchConstraints": rules,
            "variables": [{"name": "replicas", "expression": "object.spec.replicas"}],
            "validations": [{"expression": "variables.replicas < 5", "messageExpression": "'too many'"}],
        }));
        assert!(ok.is_empty(), "{ok:#?}");
    }
}
