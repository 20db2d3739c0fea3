//! An object checked against the schema as kube-openapi's schema validator
//! checks it (`k8s.io/kube-openapi/pkg/validation/validate`), its results
//! turned into field errors as the apiextensions-apiserver turns them
//! (`kubeOpenAPIResultToFieldErrors`): a keyword's failure is reported at the
//! field's path, its message naming the field again `in body`.

use ferrokube_api::status::FieldError;
use serde_json::{Number, Value as Json};

use crate::node::{Additional, Node};

/// Where the errors go: `base` prefixes every path (none for an object, the
/// `default`'s path for a default).
pub(crate) struct Validator<'a> {
    pub(crate) base: Option<&'a str>,
    pub(crate) errors: Vec<FieldError>,
}

/// Go's `%v` of a float64: the shortest digits, in exponent form when the
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`).
pub(crate) fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// A JSON number as Go prints the decoded value (`int64` or `float64`).
fn number_text(n: &Number) -> String {
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => i.to_string(),
        (_, Some(u)) => u.to_string(),
        _ => go_float(n.as_f64().unwrap_or(0.0)),
    }
}

/// The JSON type of a decoded value, as kube-openapi names it.
fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn is_integral(v: &Json) -> bool {
    v.as_f64()
        .is_some_and(|f| f.is_finite() && f == f.trunc() && f.abs() < 9.007_199_254_740_992e15)
}

impl Validator<'_> {
    fn path(&self, name: &str) -> String {
        let name = name.strip_prefix('.').unwrap_or(name);
        match (self.base, name.is_empty()) {
            (Some(b), true) => b.to_string(),
            (None, true) => "<nil>".to_string(),
            (Some(b), false) => format!("{b}.{name}"),
            (None, false) => name.to_string(),
        }
    }

    fn invalid(&mut self, name: &str, value: Json, detail: String) {
        let path = self.path(name);
        self.errors.push(FieldError::invalid(path, value, detail));
    }

    /// A failure kube-openapi reports without a field (`anyOf`, `oneOf`, ...):
    /// at the base path, with an empty value.
    fn composite(&mut self, detail: String) {
        let path = self.path("");
        self.errors.push(FieldError::invalid(path, "", detail));
    }

    /// Validates `v` at `name` (kube-openapi's path of the value); `old` is
    /// the correlated old value on updates: a value equal to its old one is
    /// not checked (ratcheting).
    pub(crate) fn node(&mut self, s: &Node, v: &Json, old: Option<&Json>, name: &str) {
        if old.is_some_and(|o| json_equal(o, v)) {
            return;
        }
        if v.is_null() {
            self.type_check(s, v, name);
            self.enumeration(s, v, name);
            return;
        }
        self.type_check(s, v, name);
        self.junctors(s, v, name);
        if let Json::String(text) = v {
            self.string(s, text, name);
            self.format(s, text, name);
        }
        if let Json::Number(n) = v {
            self.number(s, n, name);
        }
        if let Json::Array(items) = v {
            self.array(s, items, old, name);
        }
        self.enumeration(s, v, name);
        if let Json::Object(fields) = v {
            self.object(s, fields, old, name);
        }
    }

    fn types_of(s: &Node) -> Vec<&str> {
        if s.int_or_string {
            vec!["integer", "string"]
        } else if s.ty.is_empty() {
            Vec::new()
        } else {
            vec![s.ty.as_str()]
        }
    }

    fn type_check(&mut self, s: &Node, v: &Json, name: &str) {
        let types = Self::types_of(s);
        if types.is_empty() && s.format.is_empty() {
            return;
        }
        let in_body =
            |what: &str, got: &str| format!("{name} in body must be of type {what}: {got:?}");
        let joined = types.join(",");
        if v.is_null() {
            if !types.is_empty() && !s.nullable {
                let path = self.path(name);
                self.errors.push(FieldError::type_invalid(
                    path,
                    "null",
                    in_body(&joined, "null"),
                ));
            }
            return;
        }
        let got = json_type(v);
        let has = |t: &str| types.contains(&t);
        let float_int = got == "number" && is_integral(v) && has("integer");
        let int_float = got == "integer" && has("number");
        if matches!(v, Json::String(_) | Json::Array(_))
            && !has("number")
            && !has("integer")
            && !s.format.is_empty()
        {
            return;
        }
        if !(has(got) || float_int || int_float) {
            let path = self.path(name);
            self.errors
                .push(FieldError::type_invalid(path, got, in_body(&joined, got)));
        }
    }

    fn junctors(&mut self, s: &Node, v: &Json, name: &str) {
        if !s.any_of.is_empty() {
            let mut first_failure: Option<Vec<FieldError>> = None;
            let mut ok = false;
            for sub in &s.any_of {
                let errs = self.sub(sub, v, name);
                if errs.is_empty() {
                    ok = true;
                    break;
                }
                first_failure.get_or_insert(errs);
            }
            if !ok {
                self.composite(format!(
                    "{name:?} must validate at least one schema (anyOf)"
                ));
                self.errors.extend(first_failure.unwrap_or_default());
            }
        }
        if !s.one_of.is_empty() {
            let results: Vec<Vec<FieldError>> =
                s.one_of.iter().map(|sub| self.sub(sub, v, name)).collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                let more = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.composite(format!(
                    "{name:?} must validate one and only one schema (oneOf). {more}"
                ));
                if valid == 0 {
                    self.errors
                        .extend(results.into_iter().next().unwrap_or_default());
                }
            }
        }
        if !s.all_of.is_empty() {
            let mut valid = 0;
            for sub in &s.all_of {
                let errs = self.sub(sub, v, name);
                if errs.is_empty() {
                    valid += 1;
                }
                self.errors.extend(errs);
            }
            if valid != s.all_of.len() {
                let more = if valid == 0 { ". None validated" } else { "" };
                self.composite(format!(
                    "{name:?} must validate all the schemas (allOf){more}"
                ));
            }
        }
        if let Some(not) = &s.not {
            if self.sub(not, v, name).is_empty() {
                self.composite(format!("{name:?} must not validate the schema (not)"));
            }
        }
    }

    /// The errors of `v` against a nested schema, without keeping them.
    fn sub(&self, s: &Node, v: &Json, name: &str) -> Vec<FieldError> {
        let mut inner = Validator {
            base: self.base,
            errors: Vec::new(),
        };
        inner.node(s, v, None, name);
        inner.errors
    }

    fn string(&mut self, s: &Node, text: &str, name: &str) {
        let len = text.chars().count() as i64;
        if let Some(max) = s.max_length {
            if len > max {
                let path = self.path(name);
                self.errors.push(FieldError::too_long(
                    path,
                    usize::try_from(max).unwrap_or(0),
                ));
                return;
            }
        }
        if let Some(min) = s.min_length {
            if len < min {
                self.invalid(
                    name,
                    text.into(),
                    format!("{name} in body should be at least {min} chars long"),
                );
                return;
            }
        }
        if let Some((p, Some(re))) = &s.pattern {
            if !re.is_match(text) {
                self.invalid(
                    name,
                    text.into(),
                    format!("{name} in body should match '{p}'"),
                );
            }
        }
    }

    fn format(&mut self, s: &Node, text: &str, name: &str) {
        if s.format.is_empty() || crate::format::valid(&s.format, text) {
            return;
        }
        let path = self.path(name);
        let detail = format!("{name} in body must be of type {}: {text:?}", s.format);
        self.errors
            .push(FieldError::type_invalid(path, text, detail));
    }

    fn number(&mut self, s: &Node, n: &Number, name: &str) {
        let value = Json::Number(n.clone());
        let is_int = n.as_i64().is_some() || n.as_u64().is_some();
        let f = n.as_f64().unwrap_or(0.0);
        // A bound as Go prints it: truncated to an integer for integer data.
        let bound = |b: &Number| -> String {
            if is_int {
                (b.as_f64().unwrap_or(0.0).trunc() as i64).to_string()
            } else {
                number_text(b)
            }
        };
        if let Some(m) = &s.multiple_of {
            let factor = m.as_f64().unwrap_or(0.0);
            if factor != 0.0 && !multiple_of(f, factor, is_int) {
                let shown = if is_int && factor == factor.trunc() {
                    bound(m)
                } else {
                    number_text(m)
                };
                self.invalid(
                    name,
                    value.clone(),
                    format!("{name} in body should be a multiple of {shown}"),
                );
            }
        }
        if let Some(min) = &s.minimum {
            let b = if is_int {
                min.as_f64().unwrap_or(0.0).trunc()
            } else {
                min.as_f64().unwrap_or(0.0)
            };
            let fails = if s.exclusive_minimum { f <= b } else { f < b };
            if fails {
                let how = if s.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.invalid(
                    name,
                    value.clone(),
                    format!("{name} in body should be {how} {}", bound(min)),
                );
            }
        }
        if let Some(max) = &s.maximum {
            let b = if is_int {
                max.as_f64().unwrap_or(0.0).trunc()
            } else {
                max.as_f64().unwrap_or(0.0)
            };
            let fails = if s.exclusive_maximum { f >= b } else { f > b };
            if fails {
                let how = if s.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.invalid(
                    name,
                    value,
                    format!("{name} in body should be {how} {}", bound(max)),
                );
            }
        }
    }

    fn array(&mut self, s: &Node, items: &[Json], old: Option<&Json>, name: &str) {
        if let Some(schema) = &s.items {
            for (i, item) in items.iter().enumerate() {
                let old_item = crate::rules::correlate(s, item, old);
                self.node(schema, item, old_item, &format!("{name}[{i}]"));
            }
        }
        let size = items.len() as i64;
        if let Some(min) = s.min_items {
            if size < min {
                self.invalid(
                    name,
                    size.into(),
                    format!("{name} in body should have at least {min} items"),
                );
            }
        }
        if let Some(max) = s.max_items {
            if size > max {
                let path = self.path(name);
                self.errors.push(FieldError::too_many(path, size, max));
            }
        }
    }

    fn enumeration(&mut self, s: &Node, v: &Json, name: &str) {
        let Some(values) = &s.enumeration else { return };
        if values.is_empty() || values.iter().any(|e| json_equal(e, v)) {
            return;
        }
        let shown: Vec<String> = values
            .iter()
            .map(|e| match e {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
        let path = self.path(name);
        self.errors
            .push(FieldError::not_supported(path, v.clone(), &refs));
    }

    fn object(
        &mut self,
        s: &Node,
        fields: &serde_json::Map<String, Json>,
        old: Option<&Json>,
        name: &str,
    ) {
        let count = fields.len() as i64;
        if let Some(min) = s.min_properties {
            if count < min {
                self.invalid(
                    name,
                    count.into(),
                    format!("{name} in body should have at least {min} properties"),
                );
                return;
            }
        }
        if let Some(max) = s.max_properties {
            if count > max {
                let path = self.path(name);
                self.errors.push(FieldError::too_many(path, count, max));
                return;
            }
        }
        match &s.additional {
            Some(Additional::Allows(false)) => {
                for k in fields.keys().filter(|k| !s.properties.contains_key(*k)) {
                    self.invalid(
                        name,
                        k.as_str().into(),
                        format!("{name}.{k} in body is a forbidden property"),
                    );
                }
            }
            Some(Additional::Schema(a)) => {
                for (k, v) in fields
                    .iter()
                    .filter(|(k, _)| !s.properties.contains_key(*k))
                {
                    self.node(a, v, old.and_then(|o| o.get(k)), &format!("{name}.{k}"));
                }
            }
            _ => {}
        }
        for (k, p) in &s.properties {
            if let Some(v) = fields.get(k) {
                let child = if name.is_empty() {
                    k.clone()
                } else {
                    format!("{name}.{k}")
                };
                self.node(p, v, old.and_then(|o| o.get(k)), &child);
            }
        }
        for k in &s.required {
            if !fields.contains_key(k) {
                let path = self.path(&format!("{name}.{k}"));
                self.errors.push(FieldError::required(path, ""));
            }
        }
    }
}

/// Whether `f` is a multiple of `factor`, as go-openapi decides it.
fn multiple_of(f: f64, factor: f64, is_int: bool) -> bool {
    if is_int && factor == factor.trunc() {
        let (a, b) = (f as i64, factor as i64);
        return b == 0 || a.checked_rem(b).is_none_or(|r| r == 0);
    }
    let mult = if factor < 1.0 {
        1.0 / factor * f
    } else {
        f / factor
    };
    mult.is_finite() && mult == mult.trunc()
}

/// JSON equality with numbers compared by value kind as Go's decoded values
/// compare (`int64` 1 differs from `float64` 1.5, equals `int64` 1).
pub(crate) fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64(),
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}
