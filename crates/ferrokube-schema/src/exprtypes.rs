//! The part of cel-go's type checker that ValidatingAdmissionPolicies'
//! type checking reports, over the OpenAPI v3 schemas of the kinds a
//! policy matches: a field the schema does not declare (`undefined field
//! 'foo'`), an identifier nothing declares (`undeclared reference`), and
//! an operator applied to operands of kinds no overload takes (`found no
//! matching overload for '_>_' applied to '(int, string)'`), for operands
//! whose types are known (literals, schema fields, results of such). What
//! is not known (maps of any value, int-or-string, macros' variables over
//! unknown lists, function results not listed here) is `dyn`, which
//! cel-go accepts everywhere; so this reports a subset of cel-go's issues,
//! never one cel-go would not.

use ::cel::common::ast::{EntryExpr, Expr, LiteralValue};
use ::cel::IdedExpr;
use serde_json::Value as Json;

use crate::typecheck::{located, NAMESPACES, TYPE_NAMES};

/// A type as far as it is known.
#[derive(Clone, Debug)]
enum Ty<'a> {
    Dyn,
    Int,
    Uint,
    Double,
    String,
    Bool,
    Bytes,
    Null,
    List(Box<Ty<'a>>),
    Map(Box<Ty<'a>>),
    /// An object of this OpenAPI schema.
    Object(&'a Json),
}

impl Ty<'_> {
    fn name(&self) -> Option<&'static str> {
        Some(match self {
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Double => "double",
            Ty::String => "string",
            Ty::Bool => "bool",
            Ty::Bytes => "bytes",
            Ty::Null => "null_type",
            _ => return None,
        })
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

/// How schemas are found: `$ref`s (`#/components/schemas/<name>`).
pub trait Schemas {
    /// The schema a `$ref` names.
    fn resolve(&self, reference: &str) -> Option<&Json>;
}

struct Checker<'a> {
    schemas: &'a dyn Schemas,
    /// Declared variables: a schema (typed) or none (`dyn`).
    declared: &'a [(&'a str, Option<&'a Json>)],
    bound: Vec<(String, Ty<'a>)>,
    info: &'a ::cel::common::ast::SourceInfo,
    source: &'a str,
    errors: Vec<String>,
}

/// The issues cel-go would report for `program` with `declared` variables
/// (those with a schema typed by it, the others `dyn`), in cel-go's form,
/// each on its own lines; empty when none is found.
pub fn check(
    program: &crate::cel::Program,
    declared: &[(&str, Option<&Json>)],
    schemas: &dyn Schemas,
) -> Vec<String> {
    let mut c = Checker {
        schemas,
        declared,
        bound: Vec::new(),
        info: program.source_info(),
        source: program.source(),
        errors: Vec::new(),
    };
    c.walk(program.expression());
    c.errors
}

impl<'a> Checker<'a> {
    /// The schema with `$ref`s and single `allOf`s followed.
    fn deref(&self, mut s: &'a Json) -> &'a Json {
        for _ in 0..16 {
            if let Some(r) = s.get("$ref").and_then(Json::as_str) {
                match self.schemas.resolve(r) {
                    Some(t) => s = t,
                    None => return s,
                }
            } else if let Some([one]) = s.get("allOf").and_then(Json::as_array).map(Vec::as_slice) {
                s = one;
            } else {
                return s;
            }
        }
        s
    }

    fn ty_of(&self, s: &'a Json) -> Ty<'a> {
        let s = self.deref(s);
        if s.get("x-kubernetes-int-or-string").and_then(Json::as_bool) == Some(true)
            || s.get("x-kubernetes-preserve-unknown-fields")
                .and_then(Json::as_bool)
                == Some(true)
        {
            return Ty::Dyn;
        }
        match s.get("type").and_then(Json::as_str) {
            Some("integer") => Ty::Int,
            Some("number") => Ty::Double,
            Some("boolean") => Ty::Bool,
            Some("string") => match s.get("format").and_then(Json::as_str) {
                Some("byte") => Ty::Bytes,
                Some("date-time" | "duration" | "int-or-string") => Ty::Dyn,
                _ => Ty::String,
            },
            Some("array") => Ty::List(Box::new(s.get("items").map_or(Ty::Dyn, |i| self.ty_of(i)))),
            Some("object") => {
                if s.get("properties").is_some_and(Json::is_object) {
                    Ty::Object(s)
                } else {
                    match s.get("additionalProperties") {
                        Some(a) if a.is_object() => Ty::Map(Box::new(self.ty_of(a))),
                        _ => Ty::Map(Box::new(Ty::Dyn)),
                    }
                }
            }
            _ => Ty::Dyn,
        }
    }

    fn walk(&mut self, e: &'a IdedExpr) -> Ty<'a> {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => {
                if let Some((_, t)) = self.bound.iter().rev().find(|(n, _)| n == name) {
                    return t.clone();
                }
                if let Some((_, s)) = self.declared.iter().find(|(n, _)| n == name) {
                    return s.map_or(Ty::Dyn, |s| self.ty_of(s));
                }
                if !TYPE_NAMES.contains(&name.as_str()) {
                    self.error(
                        e.id,
                        &format!("undeclared reference to '{name}' (in container '')"),
                    );
                }
                Ty::Dyn
            }
            Expr::Select(s) => {
                let base = self.walk(&s.operand);
                let field = match base {
                    Ty::Object(schema) => {
                        let schema = self.deref(schema);
                        match schema.get("properties").and_then(|p| p.get(&s.field)) {
                            Some(p) => self.ty_of(p),
                            None => {
                                self.error(e.id, &format!("undefined field '{}'", s.field));
                                Ty::Dyn
                            }
                        }
                    }
                    Ty::Map(v) => *v,
                    _ => Ty::Dyn,
                };
                if s.test {
                    Ty::Bool
                } else {
                    field
                }
            }
            Expr::Call(c) => self.call(e.id, c),
            Expr::Comprehension(c) => {
                let elem = match self.walk(&c.iter_range) {
                    Ty::List(t) => *t,
                    Ty::Map(_) | Ty::Object(_) => Ty::String,
                    _ => Ty::Dyn,
                };
                let accu = self.walk(&c.accu_init);
                let depth = self.bound.len();
                self.bound.push((c.accu_var.clone(), accu.clone()));
                self.bound.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push((v2.clone(), Ty::Dyn));
                }
                for part in [&c.loop_cond, &c.loop_step] {
                    self.walk(part);
                }
                let result = self.walk(&c.result);
                self.bound.truncate(depth);
                match &c.result.expr {
                    Expr::Ident(n) if *n == c.accu_var => accu,
                    _ => result,
                }
            }
            Expr::List(l) => {
                let items: Vec<Ty<'a>> = l.elements.iter().map(|i| self.walk(i)).collect();
                Ty::List(Box::new(Ty::Dyn)).with_items(items)
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key);
                        self.walk(&me.value);
                    }
                }
                Ty::Map(Box::new(Ty::Dyn))
            }
            _ => Ty::Dyn,
        }
    }

    fn call(&mut self, id: u64, c: &'a ::cel::common::ast::CallExpr) -> Ty<'a> {
        let target = match c.target.as_deref() {
            Some(IdedExpr {
                expr: Expr::Ident(ns),
                ..
            }) if NAMESPACES.contains(&ns.as_str()) => None,
            Some(t) => Some(self.walk(t)),
            None => None,
        };
        let args: Vec<Ty<'a>> = c.args.iter().map(|a| self.walk(a)).collect();
        let f = c.func_name.as_str();
        match (f, args.as_slice()) {
            ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
                let ok = match (a.name(), b.name()) {
                    (Some(x), Some(y)) => x == y || (a.numeric() && b.numeric()),
                    _ => true,
                };
                if !ok || matches!(a, Ty::Null) || matches!(b, Ty::Null) {
                    self.no_overload(id, f, a, b);
                }
                Ty::Bool
            }
            ("_==_" | "_!=_", [a, b]) => {
                // Only the pairs cel-go surely refuses: a string against a
                // number or a bool, a bool against a number.
                let refused = matches!(
                    (a, b),
                    (Ty::String, Ty::Int | Ty::Uint | Ty::Double | Ty::Bool)
                        | (Ty::Int | Ty::Uint | Ty::Double | Ty::Bool, Ty::String)
                        | (Ty::Bool, Ty::Int | Ty::Uint | Ty::Double)
                        | (Ty::Int | Ty::Uint | Ty::Double, Ty::Bool)
                );
                if refused {
                    self.no_overload(id, f, a, b);
                }
                Ty::Bool
            }
            ("_+_", [a, b]) => {
                self.arith(id, f, a, b, &["int", "uint", "double", "string", "bytes"])
            }
            ("_-_" | "_*_" | "_/_", [a, b]) => self.arith(id, f, a, b, &["int", "uint", "double"]),
            ("_%_", [a, b]) => self.arith(id, f, a, b, &["int", "uint"]),
            ("_&&_" | "_||_" | "!_" | "@not_strictly_false", _) => Ty::Bool,
            ("-_", [a]) => a.clone(),
            ("_[_]", [Ty::List(t) | Ty::Map(t), _]) => (**t).clone(),
            ("size", _) => Ty::Int,
            ("string", _) => Ty::String,
            ("int", _) => Ty::Int,
            ("uint", _) => Ty::Uint,
            ("double", _) => Ty::Double,
            ("startsWith" | "endsWith" | "contains" | "matches" | "@in", _) => Ty::Bool,
            ("lowerAscii" | "upperAscii" | "trim" | "replace" | "substring", _)
                if matches!(target, Some(Ty::String)) =>
            {
                Ty::String
            }
            _ => Ty::Dyn,
        }
    }

    fn arith(&mut self, id: u64, f: &str, a: &Ty<'a>, b: &Ty<'a>, takes: &[&str]) -> Ty<'a> {
        match (a.name(), b.name()) {
            (Some(x), Some(y)) if x == y && takes.contains(&x) => a.clone(),
            (Some(_), Some(_)) => {
                self.no_overload(id, f, a, b);
                Ty::Dyn
            }
            _ => match (a, b) {
                (Ty::List(_), Ty::List(_)) if f == "_+_" => a.clone(),
                _ => Ty::Dyn,
            },
        }
    }

    fn no_overload(&mut self, id: u64, f: &str, a: &Ty<'a>, b: &Ty<'a>) {
        let (Some(x), Some(y)) = (a.name(), b.name()) else {
            return;
        };
        self.error(
            id,
            &format!("found no matching overload for '{f}' applied to '({x}, {y})'"),
        );
    }

    fn error(&mut self, id: u64, message: &str) {
        let offset = self
            .info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize);
        self.errors.push(located(self.source, offset, message));
    }
}

impl<'a> Ty<'a> {
    /// A list literal's type: its items' when they all agree.
    fn with_items(self, items: Vec<Ty<'a>>) -> Ty<'a> {
        let mut names = items.iter().map(Ty::name);
        match names.next() {
            Some(Some(first)) if names.all(|n| n == Some(first)) => {
                Ty::List(Box::new(items.into_iter().next().unwrap_or(Ty::Dyn)))
            }
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Components(Json);

    impl Schemas for Components {
        fn resolve(&self, reference: &str) -> Option<&Json> {
            let name = reference.strip_prefix("#/components/schemas/")?;
            self.0.get(name)
        }
    }

    fn components() -> Components {
        Components(json!({
            "Deployment": {"type": "object", "properties": {
                "metadata": {"allOf": [{"$ref": "#/components/schemas/ObjectMeta"}]},
                "spec": {"allOf": [{"$ref": "#/components/schemas/DeploymentSpec"}]},
            }},
            "DeploymentSpec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "paused": {"type": "boolean"},
                "strategy": {"type": "object", "properties": {
                    "rollingUpdate": {"type": "object", "properties": {
                        "maxSurge": {"x-kubernetes-int-or-string": true}}}}},
            }},
            "ObjectMeta": {"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }},
        }))
    }

    fn issues(expr: &str) -> Vec<String> {
        let c = components();
        let dep = json!({"$ref": "#/components/schemas/Deployment"});
        let p = crate::cel::compile(expr).unwrap();
        check(
            &p,
            &[
                ("object", Some(&dep)),
                ("oldObject", Some(&dep)),
                ("params", None),
            ],
            &c,
        )
    }

    #[test]
    fn overloads_of_known_operands() {
        assert!(issues("object.spec.replicas > 1").is_empty());
        assert_eq!(
            issues("object.spec.replicas > '1'"),
            ["ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n | object.spec.replicas > '1'\n | .....................^"]
        );
        assert_eq!(
            issues("'wants replicas > 1, got ' + object.spec.replicas"),
            ["ERROR: <input>:1:28: found no matching overload for '_+_' applied to '(string, int)'\n | 'wants replicas > 1, got ' + object.spec.replicas\n | ...........................^"]
        );
        assert!(
            issues("object.spec.replicas > 1.5").is_empty(),
            "numbers compare"
        );
        assert!(issues("params.x > 'a' && object.metadata.labels['a'] == 'b'").is_empty());
        assert!(issues("object.spec.strategy.rollingUpdate.maxSurge > 1").is_empty());
    }

    #[test]
    fn undefined_fields_and_references() {
        let got = issues("object.spec.replicaz > 1");
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("undefined field 'replicaz'"), "{got:?}");
        let got = issues("objects.spec > 1");
        assert!(got[0].contains("undeclared reference to 'objects' (in container '')"));
        assert!(issues("object.metadata.labels.all(k, k.startsWith('a'))").is_empty());
        assert!(issues("has(object.spec.paused) && object.spec.paused").is_empty());
    }
}
