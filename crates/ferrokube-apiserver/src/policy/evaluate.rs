//! One policy evaluated for one binding and parameter (Kubernetes'
//! `validating/validator.go` and the CEL filter): match conditions, then
//! every validation with its message, then the audit annotations, each
//! with `object`, `oldObject`, `request`, `params`, `namespaceObject` and
//! `variables` bound. Variables are evaluated in order, each seeing the
//! ones before; an expression naming one that failed fails with its error.
//! An evaluation error is a refusal under `failurePolicy: Fail` and is
//! passed over under `Ignore`.
//!
//! Not there: the `authorizer` variable (an expression naming it fails to
//! evaluate), and cost budgets.

use serde_json::{Map, Value};

use super::config::{Expr, Policy};
use crate::webhook::cel::{evaluate as evaluate_conditions, Verdict};

/// The values an evaluation sees (all but `variables`).
pub(crate) struct Input<'a> {
    pub(crate) object: &'a Value,
    pub(crate) old_object: &'a Value,
    pub(crate) request: &'a Value,
    pub(crate) params: &'a Value,
    pub(crate) namespace_object: &'a Value,
}

/// A validation that did not pass, or an evaluation error that counts as
/// one (`failurePolicy: Fail`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The validation's index (for the audit annotation).
    pub(crate) index: usize,
    pub(crate) message: String,
    /// The Status reason (`Invalid` when none is given).
    pub(crate) reason: String,
}

/// What a policy said about one request, binding and parameter.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failures: Vec<Failure>,
    /// Audit annotations to publish: (key, value).
    pub(crate) annotations: Vec<(String, String)>,
}

/// Kubernetes' limit on a message from a messageExpression.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
/// Kubernetes' limit on an audit annotation's value.
const MAX_ANNOTATION_BYTES: usize = 10 * 1024;

struct Scope<'a> {
    input: &'a Input<'a>,
    variables: Value,
    /// Variables whose evaluation failed, with the error.
    broken: Vec<(String, String)>,
}

impl Scope<'_> {
    fn eval(&self, e: &Expr) -> Result<Value, String> {
        let program = e
            .program
            .as_ref()
            .map_err(|err| format!("compilation error: {err}"))?;
        if let Some((_, err)) = self
            .broken
            .iter()
            .find(|(name, _)| e.source.contains(&format!("variables.{name}")))
        {
            return Err(format!(
                "expression '{}' resulted in error: {err}",
                e.source
            ));
        }
        program
            .eval(&self.vars())
            .map_err(|err| format!("expression '{}' resulted in error: {err}", e.source))
    }

    fn vars(&self) -> [(&str, &Value); 6] {
        [
            ("object", self.input.object),
            ("oldObject", self.input.old_object),
            ("request", self.input.request),
            ("params", self.input.params),
            ("namespaceObject", self.input.namespace_object),
            ("variables", &self.variables),
        ]
    }
}

/// Evaluates `policy` over `input`.
pub(crate) fn evaluate(policy: &Policy, input: &Input<'_>) -> Outcome {
    let mut scope = Scope {
        input,
        variables: Value::Object(Map::new()),
        broken: Vec::new(),
    };
    for (name, e) in &policy.variables {
        match scope.eval(e) {
            Ok(v) => {
                if let Some(m) = scope.variables.as_object_mut() {
                    m.insert(name.clone(), v);
                }
            }
            Err(err) => scope.broken.push((name.clone(), err)),
        }
    }
    let on_error = |index: usize, message: String| Failure {
        index,
        message,
        reason: String::new(),
    };
    let mut out = Outcome::default();
    if !policy.conditions.is_empty() {
        match evaluate_conditions(&policy.conditions, &scope.vars()) {
            Verdict::Match => {}
            Verdict::NoMatch => return out,
            Verdict::Error(_) if policy.ignore_failures => return out,
            Verdict::Error(e) => {
                out.failures.push(on_error(0, e));
                return out;
            }
        }
    }
    for (index, v) in policy.validations.iter().enumerate() {
        match scope.eval(&v.expr) {
            Ok(Value::Bool(true)) => {}
            Ok(_) => out.failures.push(Failure {
                index,
                message: message(&scope, v),
                reason: v.reason.clone().unwrap_or_else(|| "Invalid".to_string()),
            }),
            Err(_) if policy.ignore_failures => {}
            Err(e) => out.failures.push(on_error(index, e)),
        }
    }
    for a in &policy.audit_annotations {
        match scope.eval(&a.value) {
            Ok(Value::String(s)) => {
                let mut s = s.trim().to_string();
                if s.is_empty() {
                    continue;
                }
                if s.len() > MAX_ANNOTATION_BYTES {
                    let mut end = MAX_ANNOTATION_BYTES;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.truncate(end);
                }
                out.annotations.push((a.key.clone(), s));
            }
            Ok(Value::Null) => {}
            Ok(other) if !policy.ignore_failures => out.failures.push(on_error(
                0,
                format!(
                    "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
                    a.value.source,
                    cel_type(&other)
                ),
            )),
            Ok(_) => {}
            Err(_) if policy.ignore_failures => {}
            Err(e) => out.failures.push(on_error(0, e)),
        }
    }
    out
}

/// The name of a value's CEL type, as cel-go prints it.
fn cel_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(n) if n.is_u64() => "uint",
        Value::Number(_) => "double",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// A failed validation's message: its messageExpression's result (a
/// string of one line, not too long), else its message, else the
/// expression.
fn message(scope: &Scope<'_>, v: &super::config::Validation) -> String {
    if let Some(Ok(Value::String(s))) = v.message_expr.as_ref().map(|m| scope.eval(m)) {
        let s = s.trim();
        if !s.is_empty() && s.len() <= MAX_MESSAGE_BYTES && !s.contains('\n') {
            return s.to_string();
        }
    }
    let m = v.message.trim();
    if !m.is_empty() {
        return m.to_string();
    }
    format!("failed expression: {}", v.expr.source.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: Value) -> Policy {
        Policy::from_value(&json!({"metadata": {"name": "p"}, "spec": spec}))
    }

    fn run(p: &Policy, object: &Value, params: &Value) -> Outcome {
        let null = Value::Null;
        let request = json!({"operation": "CREATE", "namespace": "default"});
        let ns = json!({"metadata": {"name": "default"}});
        evaluate(
            p,
            &Input {
                object,
                old_object: &null,
                request: &request,
                params,
                namespace_object: &ns,
            },
        )
    }

    fn deployment(replicas: i64) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn messages_from_expression_message_or_the_rule() {
        let p = policy(json!({"validations": [
            {"expression": "object.spec.replicas <= int(params.data.maxReplicas)",
             "messageExpression": "'replicas ' + string(object.spec.replicas) + ' > ' + params.data.maxReplicas"},
            {"expression": "object.spec.replicas < 100", "message": "  far too many  ", "reason": "Forbidden"},
            {"expression": "object.spec.replicas < 50"},
        ]}));
        let params = json!({"data": {"maxReplicas": "3"}});
        assert_eq!(run(&p, &deployment(2), &params), Outcome::default());
        let out = run(&p, &deployment(200), &params);
        assert_eq!(
            out.failures,
            vec![
                Failure {
                    index: 0,
                    message: "replicas 200 > 3".into(),
                    reason: "Invalid".into()
                },
                Failure {
                    index: 1,
                    message: "far too many".into(),
                    reason: "Forbidden".into()
                },
                Failure {
                    index: 2,
                    message: "failed expression: object.spec.replicas < 50".into(),
                    reason: "Invalid".into()
                },
            ]
        );
        // A messageExpression that fails or gives an empty string: the
        // message, else the expression.
        let p = policy(json!({"validations": [
            {"expression": "false", "messageExpression": "object.missing", "message": "fallback"},
            {"expression": "false", "messageExpression": "'  '"},
        ]}));
        let out = run(&p, &deployment(1), &Value::Null);
        assert_eq!(out.failures[0].message, "fallback");
        assert_eq!(out.failures[1].message, "failed expression: false");
    }

    #[test]
    fn variables_compose_and_errors_follow_the_failure_policy() {
        let p = policy(json!({
            "variables": [
                {"name": "replicas", "expression": "object.spec.replicas"},
                {"name": "odd", "expression": "variables.replicas % 2 == 1"},
                {"name": "broken", "expression": "object.nothing.here"},
            ],
            "validations": [
                {"expression": "variables.replicas > 1"},
                {"expression": "variables.odd"},
            ],
        }));
        assert!(run(&p, &deployment(3), &Value::Null).failures.is_empty());
        let out = run(&p, &deployment(2), &Value::Null);
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].message, "failed expression: variables.odd");

        let p = policy(json!({
            "variables": [{"name": "broken", "expression": "object.nothing.here"}],
            "validations": [{"expression": "variables.broken == 1"}],
        }));
        let out = run(&p, &deployment(2), &Value::Null);
        assert_eq!(out.failures.len(), 1);
        assert!(
            out.failures[0]
                .message
                .starts_with("expression 'variables.broken == 1' resulted in error: expression 'object.nothing.here' resulted in error: no such key"),
            "{}",
            out.failures[0].message
        );
        assert_eq!(out.failures[0].reason, "");
        let mut ignoring = p;
        ignoring.ignore_failures = true;
        assert!(run(&ignoring, &deployment(2), &Value::Null)
            .failures
            .is_empty());
    }

    #[test]
    fn match_conditions_and_audit_annotations() {
        let p = policy(json!({
            "matchConditions": [{"name": "big", "expression": "object.spec.replicas > 10"}],
            "validations": [{"expression": "false", "message": "no"}],
            "auditAnnotations": [
                {"key": "replicas", "valueExpression": "'seen ' + string(object.spec.replicas)"},
                {"key": "nothing", "valueExpression": "null"},
            ],
        }));
        assert_eq!(run(&p, &deployment(2), &Value::Null), Outcome::default());
        let out = run(&p, &deployment(20), &Value::Null);
        assert_eq!(out.failures.len(), 1);
        assert_eq!(
            out.annotations,
            vec![("replicas".to_string(), "seen 20".to_string())]
        );
        let p = policy(json!({
            "auditAnnotations": [{"key": "n", "valueExpression": "object.spec.replicas"}],
        }));
        let out = run(&p, &deployment(2), &Value::Null);
        assert_eq!(
            out.failures[0].message,
            "valueExpression 'object.spec.replicas' resulted in unsupported return type: int. Return type must be either string or null."
        );
    }
}
