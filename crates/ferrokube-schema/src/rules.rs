//! `x-kubernetes-validations` evaluated over an object, as
//! `apiserver/schema/cel/validation.go` does: each rule at every value its
//! schema node applies to (never at null values), `self` typed by the
//! schema, `oldSelf` the correlated old value for transition rules, and a
//! failure worded by `messageExpression`, `message` or `failed rule: <rule>`.

use std::sync::Arc;

use ::cel::Value;
use base64::Engine as _;
use ferrokube_api::status::FieldError;
use serde_json::Value as Json;

use crate::cel::{map_value, Binding};
use crate::node::{Node, Rule};

/// Words CEL reserves, escaped as `__word__` in property names.
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as CEL programs name it (`cel.Escape`), or `None` when
/// CEL cannot name it.
pub(crate) fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    let first_ok = out
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok.then_some(out)
}

/// `obj` as CEL sees it under schema `s`: numbers of `type: number` are
/// doubles, `byte`/`date-time`/`duration` strings are bytes, timestamps
/// and durations, object properties are named escaped, and a resource's
/// `metadata` shows only `name` and `generateName`.
pub(crate) fn to_cel(s: &Node, obj: &Json, resource: bool) -> Value {
    match obj {
        Json::Number(n) if s.ty == "number" => Value::Float(n.as_f64().unwrap_or(0.0)),
        Json::String(text) => typed_string(s, text),
        Json::Array(items) => {
            let list = items
                .iter()
                .map(|v| match &s.items {
                    Some(item) => to_cel(item, v, item.embedded),
                    None => crate::cel::from_json(v),
                })
                .collect();
            Value::List(Arc::new(list))
        }
        Json::Object(fields) => {
            let mut out = Vec::new();
            for (k, v) in fields {
                if resource && k == "metadata" {
                    out.push((k.clone(), resource_metadata(v)));
                } else if let Some(p) = s.properties.get(k) {
                    if let Some(name) = escape(k) {
                        out.push((name, to_cel(p, v, p.embedded)));
                    }
                } else if let Some(a) = s.additional_schema() {
                    out.push((k.clone(), to_cel(a, v, a.embedded)));
                } else if s.preserves_unknown() || resource {
                    out.push((k.clone(), crate::cel::from_json(v)));
                }
            }
            map_value(out)
        }
        other => crate::cel::from_json(other),
    }
}

fn resource_metadata(v: &Json) -> Value {
    let fields = ["name", "generateName"]
        .iter()
        .filter_map(|k| {
            v.get(*k)
                .and_then(Json::as_str)
                .map(|s| (k.to_string(), Value::String(Arc::new(s.to_string()))))
        })
        .collect();
    map_value(fields)
}

fn typed_string(s: &Node, text: &str) -> Value {
    let plain = || Value::String(Arc::new(text.to_string()));
    if s.ty != "string" {
        return plain();
    }
    match s.format.as_str() {
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|b| Value::Bytes(Arc::new(b)))
            .unwrap_or_else(|_| plain()),
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(text)
            .map(Value::Timestamp)
            .unwrap_or_else(|_| plain()),
        "duration" => go_duration(text).map(Value::Duration).unwrap_or_else(plain),
        _ => plain(),
    }
}

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-2m`).
fn go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += value * scale;
        rest = next;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}

/// A JSON path of a rule's `fieldPath` (`.spec.x`, `.labels['a.b']`) checked
/// against `s` and turned into a field path (`spec.x`, `labels[a.b]`);
/// `None` when it does not name a field of the schema.
pub(crate) fn field_path(s: &Node, json_path: &str) -> Option<String> {
    let mut out = String::new();
    let mut node = s;
    let mut rest = json_path;
    while !rest.is_empty() {
        let (name, after) = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (r[..end].to_string(), &r[end..])
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = quoted_end(r)?;
            let name = unescape(&r[..end])?;
            (name, r[end + 1..].strip_prefix(']')?)
        } else {
            return None;
        };
        if name.is_empty() {
            return None;
        }
        if !node.properties.is_empty() {
            node = node.properties.get(&name)?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&name);
        } else if let Some(a) = node.additional_schema() {
            node = a;
            out.push_str(&format!("[{name}]"));
        } else {
            return None;
        }
        rest = after;
    }
    Some(out)
}

fn quoted_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'\'' && (i == 0 || bytes[i - 1] != b'\\'))
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' => '\'',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

/// The rules' evaluation over one object.
pub(crate) struct Evaluator {
    pub(crate) errors: Vec<FieldError>,
    /// Whether the value being evaluated equals its old value (or, where
    /// values cannot be correlated, its nearest correlated ancestor does):
    /// its rules' failures are ratcheted, dropped, unless they are
    /// transition rules.
    pub(crate) unchanged: bool,
    /// Whether failures at unchanged values are ratcheted (not for
    /// defaults, which are checked against themselves).
    pub(crate) ratchet: bool,
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_string()
    } else {
        path.to_string()
    }
}

impl Evaluator {
    /// Evaluates the rules of `s` and below at `obj` (`old`: its correlated
    /// old value), `resource` for the root and embedded resources;
    /// `correlated` tells whether `obj` can have an old value of its own.
    pub(crate) fn node(
        &mut self,
        s: &Node,
        obj: &Json,
        old: Option<&Json>,
        path: &str,
        resource: bool,
        correlated: bool,
    ) {
        if obj.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        let parent_unchanged = self.unchanged;
        self.unchanged = match old {
            Some(o) => crate::validate::json_equal(o, obj),
            None => !correlated && parent_unchanged,
        };
        if !s.rules.is_empty() {
            self.expressions(s, obj, old, path, resource);
        }
        self.children(s, obj, old, path);
        self.unchanged = parent_unchanged;
    }

    fn children(&mut self, s: &Node, obj: &Json, old: Option<&Json>, path: &str) {
        match obj {
            Json::Object(fields) => {
                let correlatable = s.map_type.as_deref() != Some("atomic");
                for (k, v) in fields {
                    let old_v = old.filter(|_| correlatable).and_then(|o| o.get(k));
                    if let Some(p) = s.properties.get(k) {
                        self.node(p, v, old_v, &child(path, k), p.embedded, correlatable);
                    } else if let Some(a) = s.additional_schema() {
                        let at = format!("{path}[{k}]");
                        self.node(a, v, old_v, &at, a.embedded, correlatable);
                    }
                }
            }
            Json::Array(items) => {
                let Some(item) = &s.items else { return };
                let correlatable = s.list_type.as_deref() == Some("map");
                for (i, v) in items.iter().enumerate() {
                    let old_v = correlate(s, v, old);
                    let at = format!("{path}[{i}]");
                    self.node(item, v, old_v, &at, item.embedded, correlatable);
                }
            }
            _ => {}
        }
    }

    fn expressions(
        &mut self,
        s: &Node,
        obj: &Json,
        old: Option<&Json>,
        path: &str,
        resource: bool,
    ) {
        let this = to_cel(s, obj, resource);
        let old_val = old.map(|o| to_cel(s, &align(s, obj, o), resource));
        for rule in &s.rules {
            let Some(program) = &rule.program else {
                continue;
            };
            let optional = rule.optional_old_self == Some(true);
            let uses_old = rule.uses_old_self();
            if uses_old && old_val.is_none() && !optional {
                continue;
            }
            let mut vars = vec![("self", Binding::Value(this.clone()))];
            if uses_old {
                vars.push((
                    "oldSelf",
                    match (&old_val, optional) {
                        (Some(o), true) => Binding::OptionalOf(o.clone()),
                        (Some(o), false) => Binding::Value(o.clone()),
                        (None, _) => Binding::OptionalNone,
                    },
                ));
            }
            match program.eval_value(&vars) {
                Ok(Value::Bool(true)) => {}
                Ok(_) if !uses_old && self.ratchet && self.unchanged => {}
                Ok(_) => self.failure(s, rule, &vars, path),
                Err(e) => {
                    let detail = if e.starts_with("no such overload") {
                        format!("'{e}': call arguments did not match a supported operator, function or macro signature for rule: {}", rule_error_string(rule))
                    } else {
                        format!("{e} evaluating rule: {}", rule_error_string(rule))
                    };
                    self.errors
                        .push(FieldError::invalid(shown(path), s.ty.clone(), detail));
                }
            }
        }
    }

    fn failure(&mut self, s: &Node, rule: &Rule, vars: &[(&str, Binding)], path: &str) {
        let mut at = path.to_string();
        if !rule.field_path.is_empty() {
            if let Some(fp) = field_path(s, rule.field_path.trim()) {
                // Go's `Path.Child` with the whole normalized path as one
                // name: always after a dot (`spec.[a.b]`).
                at = if at.is_empty() {
                    fp
                } else {
                    format!("{at}.{fp}")
                };
            }
        }
        let at = shown(&at);
        let detail = rule
            .message_program
            .as_ref()
            .and_then(|p| message_expression(p, vars))
            .unwrap_or_else(|| message_or_default(rule));
        let ty = s.ty.clone();
        self.errors.push(match rule.reason.as_deref() {
            Some("FieldValueForbidden") => FieldError::forbidden(at, detail),
            Some("FieldValueRequired") => FieldError::required(at, detail),
            Some("FieldValueDuplicate") => FieldError::duplicate(at, ty),
            _ => FieldError::invalid(at, ty, detail),
        });
    }
}

/// `old` with its `set` and `map` lists in the order of `new`'s where they
/// hold the same elements (or keys): Kubernetes compares such lists without
/// regard to order, so `self == oldSelf` holds across a reordering.
fn align(s: &Node, new: &Json, old: &Json) -> Json {
    match (new, old) {
        (Json::Object(n), Json::Object(o)) => Json::Object(
            o.iter()
                .map(|(k, ov)| {
                    let child = s.properties.get(k).or_else(|| s.additional_schema());
                    let aligned = match (child, n.get(k)) {
                        (Some(c), Some(nv)) => align(c, nv, ov),
                        _ => ov.clone(),
                    };
                    (k.clone(), aligned)
                })
                .collect(),
        ),
        (Json::Array(n), Json::Array(o)) => Json::Array(align_list(s, n, o)),
        _ => old.clone(),
    }
}

fn align_list(s: &Node, new: &[Json], old: &[Json]) -> Vec<Json> {
    let Some(item) = s.items.as_deref() else {
        return old.to_vec();
    };
    match s.list_type.as_deref() {
        Some("set") => {
            let same = new.len() == old.len()
                && new.iter().all(|v| old.contains(v))
                && old.iter().all(|v| new.contains(v));
            if same {
                new.to_vec()
            } else {
                old.to_vec()
            }
        }
        Some("map") => {
            let mut used = vec![false; old.len()];
            let mut out = Vec::with_capacity(old.len());
            for nv in new {
                let found = old.iter().enumerate().find(|(i, ov)| {
                    !used[*i] && s.list_map_keys.iter().all(|k| ov.get(k) == nv.get(k))
                });
                if let Some((i, ov)) = found {
                    used[i] = true;
                    out.push(align(item, nv, ov));
                }
            }
            out.extend(
                old.iter()
                    .zip(&used)
                    .filter(|(_, u)| !**u)
                    .map(|(ov, _)| ov.clone()),
            );
            out
        }
        _ => old
            .iter()
            .enumerate()
            .map(|(i, ov)| {
                new.get(i)
                    .map_or_else(|| ov.clone(), |nv| align(item, nv, ov))
            })
            .collect(),
    }
}

/// The old element of a `map` list with the same keys as `v`; other lists'
/// elements have none.
pub(crate) fn correlate<'a>(s: &Node, v: &Json, old: Option<&'a Json>) -> Option<&'a Json> {
    if s.list_type.as_deref() != Some("map") || s.list_map_keys.is_empty() {
        return None;
    }
    let old = old?.as_array()?;
    old.iter()
        .find(|o| s.list_map_keys.iter().all(|k| o.get(k) == v.get(k)))
}

/// The message a `messageExpression` gives, when it gives a usable one.
fn message_expression(p: &crate::cel::Program, vars: &[(&str, Binding)]) -> Option<String> {
    let Ok(Value::String(s)) = p.eval_value(vars) else {
        return None;
    };
    let trimmed = s.trim();
    let usable = !trimmed.is_empty() && !trimmed.contains('\n') && trimmed.len() <= 5 * 1024;
    usable.then(|| trimmed.to_string())
}

fn rule_error_string(rule: &Rule) -> String {
    if rule.message.is_empty() {
        rule.rule.trim().to_string()
    } else {
        rule.message.trim().to_string()
    }
}

fn message_or_default(rule: &Rule) -> String {
    if rule.message.is_empty() {
        format!("failed rule: {}", rule_error_string(rule))
    } else {
        rule.message.trim().to_string()
    }
}
