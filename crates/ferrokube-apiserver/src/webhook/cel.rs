//! CEL for dynamic admission: webhooks' and ValidatingAdmissionPolicies'
//! `matchConditions` (see [`crate::policy`]), compiled with
//! `ferrokube_schema::cel`.

use std::sync::Arc;

use ferrokube_schema::cel::{compile, Program};
use serde_json::Value;

/// Whether `expr` compiles; the error is the compiler's.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    compile(expr).map(|_| ())
}

/// One match condition: its name and its program (or why it does not
/// compile, which fails the request as an evaluation error would).
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) name: String,
    pub(crate) program: Result<Arc<Program>, String>,
}

impl Condition {
    /// The conditions of a webhook's or policy's `matchConditions`.
    pub(crate) fn parse_all(list: Option<&Value>) -> Vec<Condition> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| Condition {
                name: c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                program: compile(c.get("expression").and_then(Value::as_str).unwrap_or(""))
                    .map(Arc::new),
            })
            .collect()
    }
}

/// What the conditions say about a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// All hold.
    Match,
    /// One is false.
    NoMatch,
    /// None is false but one could not be evaluated (Kubernetes' words).
    Error(String),
}

/// Evaluates `conditions` with `vars` bound: any false one means no match,
/// else the first error, else a match.
pub(crate) fn evaluate(conditions: &[Condition], vars: &[(&str, &Value)]) -> Verdict {
    let mut error = None;
    for c in conditions {
        let result = c
            .program
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|p| p.eval(vars));
        match result {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => return Verdict::NoMatch,
            Ok(other) => {
                error.get_or_insert_with(|| {
                    format!(
                        "matchCondition '{}' evaluation failed: expected boolean, got {other}",
                        c.name
                    )
                });
            }
            Err(e) => {
                error.get_or_insert_with(|| {
                    format!("matchCondition '{}' evaluation failed: {e}", c.name)
                });
            }
        }
    }
    match error {
        Some(e) => Verdict::Error(e),
        None => Verdict::Match,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn false_wins_over_errors_and_all_must_hold() {
        let conds = Condition::parse_all(Some(&json!([
            {"name": "a", "expression": "object.metadata.name == 'web'"},
            {"name": "b", "expression": "request.operation == 'CREATE'"},
        ])));
        let obj = json!({"metadata": {"name": "web"}});
        let create = json!({"operation": "CREATE"});
        let update = json!({"operation": "UPDATE"});
        let vars = |r| [("object", &obj), ("request", r)];
        assert_eq!(evaluate(&conds, &vars(&create)), Verdict::Match);
        assert_eq!(evaluate(&conds, &vars(&update)), Verdict::NoMatch);
        let broken = Condition::parse_all(Some(&json!([
            {"name": "missing", "expression": "object.spec.replicas > 1"},
        ])));
        assert!(matches!(
            evaluate(&broken, &[("object", &obj)]),
            Verdict::Error(e) if e.starts_with("matchCondition 'missing' evaluation failed")
        ));
    }
}
