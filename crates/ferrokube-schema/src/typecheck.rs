//! The part of CEL's type checking that rules most often fail: a field
//! selected from `self` (or `oldSelf`) that the schema does not declare is
//! a compile error, `undefined field 'foo'`, as cel-go reports it against
//! the schema's declared type. Selections the schema leaves open (maps,
//! preserved unknown fields, int-or-string, values bound by macros) are
//! left to evaluation.

use ::cel::common::ast::{Expr, SourceInfo};
use ::cel::IdedExpr;

use crate::node::Node;
use crate::rules::escape;

/// Identifiers CEL declares itself: type names.
pub(crate) const TYPE_NAMES: [&str; 14] = [
    "bool",
    "bytes",
    "double",
    "duration",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "timestamp",
    "type",
    "uint",
    "optional_type",
];

/// Namespaces of the functions the environment declares (`sets.contains`).
pub(crate) const NAMESPACES: [&str; 6] = ["sets", "strings", "lists", "math", "base64", "optional"];

/// What an expression is known to be.
#[derive(Clone, Copy)]
enum Known<'a> {
    /// A value of this schema node (`resource`: a resource root, with its
    /// `apiVersion`, `kind` and `metadata`).
    Node(&'a Node, bool),
    /// A resource's `metadata`: only `name` and `generateName`.
    Meta,
}

struct Checker<'a> {
    root: &'a Node,
    resource: bool,
    old_self_optional: bool,
    info: &'a SourceInfo,
    source: &'a str,
    errors: Vec<String>,
    /// Variables bound by macros (`all(x, ...)`), innermost last; `None`
    /// where what they hold is not known.
    bound: Vec<(String, Option<Known<'a>>)>,
}

/// The `undefined field` errors of `program`, in cel-go's form, joined by
/// newlines; empty when there are none.
pub(crate) fn check(
    program: &crate::cel::Program,
    root: &Node,
    resource: bool,
    old_self_optional: bool,
) -> String {
    let mut c = Checker {
        root,
        resource,
        old_self_optional,
        info: program.source_info(),
        source: program.source(),
        errors: Vec::new(),
        bound: Vec::new(),
    };
    c.walk(program.expression());
    c.errors.join("\n")
}

impl<'a> Checker<'a> {
    fn walk(&mut self, e: &IdedExpr) -> Option<Known<'a>> {
        match &e.expr {
            Expr::Ident(name) if self.bound.iter().any(|(n, _)| n == name) => self
                .bound
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, k)| *k),
            Expr::Ident(name) if name == "self" => Some(Known::Node(self.root, self.resource)),
            Expr::Ident(name) if name == "oldSelf" && !self.old_self_optional => {
                Some(Known::Node(self.root, self.resource))
            }
            Expr::Ident(name) => {
                if name != "oldSelf" && !TYPE_NAMES.contains(&name.as_str()) {
                    let message = format!("undeclared reference to '{name}' (in container '')");
                    self.error_at(e.id, &message);
                }
                None
            }
            Expr::Select(s) => {
                let base = self.walk(&s.operand)?;
                self.select(base, &s.field, e.id)
            }
            Expr::Call(c) => {
                match c.target.as_deref() {
                    Some(IdedExpr {
                        expr: Expr::Ident(ns),
                        ..
                    }) if NAMESPACES.contains(&ns.as_str()) => {}
                    Some(t) => {
                        self.walk(t);
                    }
                    None => {}
                }
                let args: Vec<Option<Known<'a>>> = c.args.iter().map(|a| self.walk(a)).collect();
                match (c.func_name.as_str(), args.first()) {
                    ("_[_]", Some(Some(Known::Node(n, _)))) => element(n),
                    _ => None,
                }
            }
            Expr::Comprehension(c) => {
                let elem = match self.walk(&c.iter_range) {
                    Some(Known::Node(n, _)) if n.ty == "array" => element(n),
                    _ => None,
                };
                self.bound.push((c.accu_var.clone(), None));
                self.bound.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push((v2.clone(), None));
                }
                for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(part);
                }
                self.bound.truncate(self.bound.len() - 2);
                if c.iter_var2.is_some() {
                    self.bound.pop();
                }
                None
            }
            Expr::List(l) => {
                for item in &l.elements {
                    self.walk(item);
                }
                None
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let ::cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key);
                        self.walk(&me.value);
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn select(&mut self, base: Known<'a>, field: &str, id: u64) -> Option<Known<'a>> {
        let (node, resource) = match base {
            Known::Meta => {
                if field != "name" && field != "generateName" {
                    self.undefined(field, id);
                }
                return None;
            }
            Known::Node(n, r) => (n, r),
        };
        if resource && field == "metadata" {
            return Some(Known::Meta);
        }
        if resource && (field == "apiVersion" || field == "kind") {
            return None;
        }
        let closed = node.ty == "object"
            && !node.preserves_unknown()
            && node.additional.is_none()
            && !node.int_or_string;
        if !closed {
            return None;
        }
        match node
            .properties
            .iter()
            .find(|(k, _)| escape(k).as_deref() == Some(field))
        {
            Some((_, p)) => Some(Known::Node(p, p.embedded)),
            None => {
                self.undefined(field, id);
                None
            }
        }
    }

    fn undefined(&mut self, field: &str, id: u64) {
        self.error_at(id, &format!("undefined field '{field}'"));
    }

    fn error_at(&mut self, id: u64, message: &str) {
        let offset = self
            .info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize);
        self.errors.push(located(self.source, offset, message));
    }
}

/// What an element of a list (or a value of a map) of schema `n` is.
fn element(n: &Node) -> Option<Known<'_>> {
    let e = if n.ty == "array" {
        n.items.as_deref()?
    } else {
        n.additional_schema()?
    };
    Some(Known::Node(e, e.embedded))
}

/// An error at byte `offset` of `source`, as cel-go prints issues.
pub(crate) fn located(source: &str, offset: usize, message: &str) -> String {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count();
    let line = source[line_start..].lines().next().unwrap_or_default();
    format!(
        "ERROR: <input>:{line_no}:{}: {message}\n | {line}\n | {}^",
        column + 1,
        ".".repeat(column)
    )
}

/// Functions whose result is a `bool`.
const BOOL_FUNCTIONS: [&str; 31] = [
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "!_",
    "@in",
    "@not_strictly_false",
    "matches",
    "startsWith",
    "endsWith",
    "contains",
    "isSorted",
    "isURL",
    "isQuantity",
    "isIP",
    "isCIDR",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "isGreaterThan",
    "isLessThan",
    "isInteger",
    "containsIP",
    "containsCIDR",
    "hasValue",
    "isLoopback",
    "isUnspecified",
];

/// Functions whose result is never a `bool`.
const OTHER_FUNCTIONS: [&str; 17] = [
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "-_",
    "size",
    "string",
    "int",
    "uint",
    "double",
    "lowerAscii",
    "upperAscii",
    "split",
    "join",
    "replace",
    "substring",
];

/// Whether the expression's result is a `bool`, where that can be told
/// from its shape and the schema: `Some(false)` for an expression that
/// cannot be one (cel-go's "cel expression must evaluate to a bool").
pub(crate) fn is_bool(program: &crate::cel::Program, root: &Node) -> Option<bool> {
    result_is_bool(program.expression(), root)
}

fn result_is_bool(e: &IdedExpr, root: &Node) -> Option<bool> {
    use ::cel::common::ast::LiteralValue;
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => Some(true),
        Expr::Literal(_) | Expr::List(_) | Expr::Map(_) => Some(false),
        Expr::Select(s) if s.test => Some(true),
        Expr::Ident(name) if name == "self" => {
            Some(root.ty == "boolean").filter(|_| !root.ty.is_empty())
        }
        Expr::Call(c) if c.func_name == "_?_:_" && c.args.len() == 3 => {
            match (
                result_is_bool(&c.args[1], root),
                result_is_bool(&c.args[2], root),
            ) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }
        }
        Expr::Call(c) if BOOL_FUNCTIONS.contains(&c.func_name.as_str()) => Some(true),
        Expr::Call(c) if OTHER_FUNCTIONS.contains(&c.func_name.as_str()) => Some(false),
        Expr::Comprehension(c) => match &c.result.expr {
            Expr::Ident(name) if *name == c.accu_var => result_is_bool(&c.accu_init, root),
            _ => result_is_bool(&c.result, root),
        },
        _ => None,
    }
}
