//! Label selectors, the one type for the API server, the controllers and the
//! scheduler: the string form of `?labelSelector=` and `kubectl -l` (`a=b`,
//! `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`,
//! joined by commas), the structured `metav1.LabelSelector` (`matchLabels`
//! and `matchExpressions`, typed or as JSON) and plain label maps, all as one
//! [`Selector`] (Kubernetes' `k8s.io/apimachinery/pkg/labels`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

/// Why a label selector is refused. The messages are what clients see in a
/// 400 BadRequest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The string form does not parse: an unexpected character or token, or
    /// a `>`/`<` bound that is not an integer.
    #[error("unable to parse requirement: {0}")]
    Syntax(String),
    /// A label key is not `[prefix/]name` (prefix a DNS-1123 subdomain, name
    /// at most 63 alphanumerics with `-_.` inside); `reason` says which part.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The refused key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label value is neither empty nor at most 63 alphanumerics with
    /// `-_.` inside.
    #[error("invalid label value: {0:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)")]
    InvalidValue(String),
    /// A JSON `matchLabels` value is not a string.
    #[error("matchLabels values must be strings")]
    NonStringLabel,
    /// A JSON `matchExpressions` item has no `key`.
    #[error("matchExpressions: key is required")]
    MissingKey,
    /// `In` or `NotIn` without values.
    #[error("{0}: values set can't be empty")]
    EmptyValues(String),
    /// `Exists` or `DoesNotExist` with values.
    #[error("{0}: values set must be empty")]
    UnexpectedValues(String),
    /// An operator other than `In`, `NotIn`, `Exists` and `DoesNotExist`.
    #[error("{0:?} is not a valid label selector operator")]
    InvalidOperator(String),
}

/// Something with labels to match a [`Selector`] against (Kubernetes'
/// `labels.Labels`): a label map, or an optional one (absent: no labels).
pub trait Labels {
    /// The value of label `key`, if the label is set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

impl<T: Labels> Labels for Option<T> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|l| l.label(key))
    }
}

/// One requirement on one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key`: the label is set, to any value.
    Exists(String),
    /// `!key`: the label is not set.
    DoesNotExist(String),
    /// `key in (a,b)` or `key=a`: the label is set to one of the values.
    In(String, Vec<String>),
    /// `key notin (a,b)` or `key!=a`: the label is unset or set to none of
    /// the values.
    NotIn(String, Vec<String>),
    /// `key>n`: the label is an integer greater than `n`.
    Gt(String, i64),
    /// `key<n`: the label is an integer less than `n`.
    Lt(String, i64),
}

impl Requirement {
    /// The label this requirement is about.
    pub fn key(&self) -> &str {
        match self {
            Requirement::Exists(k)
            | Requirement::DoesNotExist(k)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Gt(k, _)
            | Requirement::Lt(k, _) => k,
        }
    }

    /// Whether `labels` satisfy this requirement. A label that is not an
    /// integer never satisfies `Gt` or `Lt`.
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        let int = |k: &str| labels.label(k).and_then(|v| v.parse::<i64>().ok());
        match self {
            Requirement::Exists(k) => labels.label(k).is_some(),
            Requirement::DoesNotExist(k) => labels.label(k).is_none(),
            Requirement::In(k, vs) => labels.label(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => labels.label(k).is_none_or(|v| vs.iter().all(|x| x != v)),
            Requirement::Gt(k, n) => int(k).is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => int(k).is_some_and(|v| v < *n),
        }
    }

    /// A `matchExpressions` item (`In`, `NotIn`, `Exists`, `DoesNotExist`),
    /// checked as Kubernetes' `NewRequirement` does.
    fn from_expression(key: &str, op: &str, values: Vec<String>) -> Result<Self, SelectorError> {
        validate_key(key)?;
        let key = key.to_string();
        let r = match op {
            "In" | "NotIn" if values.is_empty() => {
                return Err(SelectorError::EmptyValues(op.to_string()))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(SelectorError::UnexpectedValues(op.to_string()))
            }
            "In" => Requirement::In(key, values),
            "NotIn" => Requirement::NotIn(key, values),
            "Exists" => Requirement::Exists(key),
            "DoesNotExist" => Requirement::DoesNotExist(key),
            other => return Err(SelectorError::InvalidOperator(other.to_string())),
        };
        if let Requirement::In(_, values) | Requirement::NotIn(_, values) = &r {
            for v in values {
                validate_value(v)?;
            }
        }
        Ok(r)
    }

    /// A `matchLabels` entry: `key=value`, both checked.
    fn from_match_label(key: &str, value: &str) -> Result<Self, SelectorError> {
        validate_key(key)?;
        validate_value(value)?;
        Ok(Requirement::In(key.to_string(), vec![value.to_string()]))
    }
}

/// A conjunction of requirements. The empty selector matches everything;
/// [`Selector::nothing`] (a nil `metav1.LabelSelector`) matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches everything (`labels.Everything()`).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// The selector that matches nothing (`labels.Nothing()`): what a nil
    /// `metav1.LabelSelector` means where Kubernetes reads it so (affinity
    /// terms, spread constraints).
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Whether the selector restricts nothing, i.e. matches everything
    /// (Kubernetes' `Selector.Empty()`; false for [`Selector::nothing`]).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// The requirements, all of which must hold.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement: a label map, or an
    /// optional one (`None` has no labels).
    pub fn matches(&self, labels: impl Labels) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(&labels))
    }

    /// Adds a requirement (no effect on [`Selector::nothing`], as in
    /// Kubernetes).
    pub fn add(&mut self, r: Requirement) {
        if !self.nothing {
            self.requirements.push(r);
        }
    }

    /// Adds `key in (value)` (`matchLabelKeys`) or, with `mismatch`,
    /// `key notin (value)` (`mismatchLabelKeys`) for each of `keys` that
    /// `labels` (the incoming pod's) has.
    pub fn add_label_keys(
        &mut self,
        keys: &[String],
        labels: &BTreeMap<String, String>,
        mismatch: bool,
    ) {
        for k in keys {
            if let Some(v) = labels.get(k) {
                let values = vec![v.clone()];
                self.add(if mismatch {
                    Requirement::NotIn(k.clone(), values)
                } else {
                    Requirement::In(k.clone(), values)
                });
            }
        }
    }

    /// The selector of a plain label map (a Service's or a
    /// ReplicationController's `selector`): every label equal, unchecked
    /// (Kubernetes' `SelectorFromSet`). An empty map matches everything.
    pub fn from_map(m: &BTreeMap<String, String>) -> Selector {
        Selector {
            requirements: m
                .iter()
                .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
                .collect(),
            nothing: false,
        }
    }

    /// From a typed `metav1.LabelSelector` (Kubernetes'
    /// `LabelSelectorAsSelector`): `None` (nil) matches nothing, an empty
    /// one everything; keys, values and operators are checked.
    pub fn from_label_selector(ls: Option<&LabelSelector>) -> Result<Selector, SelectorError> {
        let Some(ls) = ls else {
            return Ok(Selector::nothing());
        };
        let mut requirements = Vec::new();
        for (k, v) in ls.match_labels.iter().flatten() {
            requirements.push(Requirement::from_match_label(k, v)?);
        }
        for e in ls.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            requirements.push(Requirement::from_expression(&e.key, &e.operator, values)?);
        }
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// From a `metav1.LabelSelector` as JSON (`matchLabels`,
    /// `matchExpressions`). A null selector is `None`.
    pub fn from_value(v: &Value) -> Result<Option<Selector>, SelectorError> {
        if v.is_null() {
            return Ok(None);
        }
        let mut requirements = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                let val = val.as_str().ok_or(SelectorError::NonStringLabel)?;
                requirements.push(Requirement::from_match_label(k, val)?);
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or(SelectorError::MissingKey)?;
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                requirements.push(Requirement::from_expression(key, op, values)?);
            }
        }
        Ok(Some(Selector {
            requirements,
            nothing: false,
        }))
    }

    /// Parses the string form (`?labelSelector=`, `kubectl -l`).
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let tokens = lex(s)?;
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if p.peek().is_none() {
            return Ok(Selector::default());
        }
        loop {
            requirements.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Tok::Comma) => continue,
                Some(t) => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.text()
                    )))
                }
            }
        }
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }
}
impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
                Requirement::In(k, v) if v.len() == 1 => format!("{k}={}", v[0]),
                Requirement::In(k, v) => format!("{k} in ({})", v.join(",")),
                Requirement::NotIn(k, v) if v.len() == 1 => format!("{k}!={}", v[0]),
                Requirement::NotIn(k, v) => format!("{k} notin ({})", v.join(",")),
                Requirement::Gt(k, n) => format!("{k}>{n}"),
                Requirement::Lt(k, n) => format!("{k}<{n}"),
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Eq,
    DoubleEq,
    NotEq,
    Not,
    Gt,
    Lt,
    LParen,
    RParen,
    Comma,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Not => "!".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn lex(s: &str) -> Result<Vec<Tok>, SelectorError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '>' => {
                out.push(Tok::Gt);
                i += 1
            }
            '<' => {
                out.push(Tok::Lt);
                i += 1
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::DoubleEq);
                i += 2
            }
            '=' => {
                out.push(Tok::Eq);
                i += 1
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::NotEq);
                i += 2
            }
            '!' => {
                out.push(Tok::Not);
                i += 1
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(SelectorError::Syntax(format!(
                    "invalid character {other:?}"
                )))
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn ident(&mut self, what: &str) -> Result<String, SelectorError> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            Some(t) => Err(SelectorError::Syntax(format!(
                "found '{}', expected: {what}",
                t.text()
            ))),
            None => Err(SelectorError::Syntax(format!(
                "found 'end of string', expected: {what}"
            ))),
        }
    }

    /// The values of `in (...)` / `notin (...)` after the `(`, as
    /// Kubernetes reads them: an empty list and empty items between commas
    /// stand for the empty value (`()` is `("")`, `(a,,b)` is `(a,"",b)`);
    /// duplicates collapse.
    fn value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values: Vec<String> = Vec::new();
        let push = |values: &mut Vec<String>, v: String| -> Result<(), SelectorError> {
            validate_value(&v)?;
            if !values.contains(&v) {
                values.push(v);
            }
            Ok(())
        };
        // Whether the previous token could end an item (an identifier).
        let mut after_item = false;
        loop {
            match self.next() {
                Some(Tok::RParen) => {
                    if !after_item {
                        push(&mut values, String::new())?;
                    }
                    return Ok(values);
                }
                Some(Tok::Comma) => {
                    if !after_item {
                        push(&mut values, String::new())?;
                    }
                    after_item = false;
                }
                Some(Tok::Ident(v)) if !after_item => {
                    push(&mut values, v)?;
                    after_item = true;
                }
                Some(t) => {
                    let expected = if after_item {
                        "',' or ')'"
                    } else {
                        "',', ')' or identifier"
                    };
                    return Err(SelectorError::Syntax(format!(
                        "found '{}', expected: {expected}",
                        t.text()
                    )));
                }
                None => return Err(SelectorError::Syntax("found '', expected: ')'".to_string())),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Tok::Not) {
            self.next();
            let key = self.ident("identifier")?;
            validate_key(&key)?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.ident("identifier")?;
        validate_key(&key)?;
        match self.peek().cloned() {
            None | Some(Tok::Comma) => Ok(Requirement::Exists(key)),
            Some(Tok::Eq) | Some(Tok::DoubleEq) | Some(Tok::NotEq) => {
                let op = self.next();
                let value = match self.peek() {
                    Some(Tok::Ident(_)) => self.ident("value")?,
                    _ => String::new(),
                };
                validate_value(&value)?;
                Ok(if op == Some(Tok::NotEq) {
                    Requirement::NotIn(key, vec![value])
                } else {
                    Requirement::In(key, vec![value])
                })
            }
            Some(Tok::Gt) | Some(Tok::Lt) => {
                let op = self.next();
                let v = self.ident("integer")?;
                let n: i64 = v
                    .parse()
                    .map_err(|_| SelectorError::Syntax(format!("{v:?} is not an integer")))?;
                Ok(if op == Some(Tok::Gt) {
                    Requirement::Gt(key, n)
                } else {
                    Requirement::Lt(key, n)
                })
            }
            Some(Tok::Ident(word)) if word == "in" || word == "notin" => {
                self.next();
                match self.next() {
                    Some(Tok::LParen) => {}
                    other => {
                        return Err(SelectorError::Syntax(format!(
                            "found '{}' expected: '('",
                            other.map(|t| t.text()).unwrap_or_default()
                        )))
                    }
                }
                let values = self.value_list()?;
                Ok(if word == "in" {
                    Requirement::In(key, values)
                } else {
                    Requirement::NotIn(key, values)
                })
            }
            Some(t) => Err(SelectorError::Syntax(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.text()
            ))),
        }
    }
}

/// A label name part: at most 63 characters, alphanumerics with `-_.`
/// inside.
fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A DNS-1123 subdomain (a label key's prefix).
fn valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Checks a label key: `[prefix/]name`.
fn validate_key(k: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if !valid_dns_subdomain(p) {
            return Err(SelectorError::InvalidKey {
                key: k.to_string(),
                reason: "prefix part must be a lowercase RFC 1123 subdomain",
            });
        }
    }
    if !valid_name_part(name) {
        return Err(SelectorError::InvalidKey {
            key: k.to_string(),
            reason: "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
        });
    }
    Ok(())
}

/// Checks a label value: empty, or a name part.
fn validate_value(v: &str) -> Result<(), SelectorError> {
    if v.is_empty() || valid_name_part(v) {
        Ok(())
    } else {
        Err(SelectorError::InvalidValue(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("tier notin (back, middle)", true),
            ("app=web,tier=front", true),
            ("app=web, tier=back", false),
            ("n>4", true),
            ("n<5", false),
            ("missing notin (a)", true),
            ("app=web,missing", false),
            ("example.com/role", false),
        ] {
            let s = Selector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
        assert!(Selector::parse("").unwrap().is_empty());
        assert_eq!(
            Selector::parse("a=").unwrap().requirements().to_vec(),
            vec![Requirement::In("a".into(), vec!["".into()])]
        );
    }

    #[test]
    fn syntax_errors_are_clear() {
        for bad in [
            "a=b=c",
            "a in (x y)",
            "a in (x",
            "=b",
            "a b",
            "a in x",
            "a=b,",
            "a@b",
            "-a=b",
            "a=-b",
            "n>x",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} should not parse");
        }
        let e = Selector::parse("a=b=c").unwrap_err().to_string();
        assert!(e.contains("unable to parse requirement"), "{e}");
    }

    #[test]
    fn structured_selector() {
        let v = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]});
        let s = Selector::from_value(&v).unwrap().unwrap();
        assert!(s.matches(labels(&[("app", "web"), ("tier", "b")])));
        assert!(!s.matches(labels(&[("app", "web"), ("tier", "b"), ("canary", "1")])));
        assert!(!s.matches(labels(&[("app", "web")])));
        assert_eq!(s.to_string(), "app=web,tier in (a,b),!canary");
        assert!(Selector::from_value(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        )
        .is_err());
        assert!(Selector::from_value(
            &json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})
        )
        .is_err());
        assert_eq!(Selector::from_value(&Value::Null).unwrap(), None);
        // An empty selector object matches everything.
        assert!(Selector::from_value(&json!({}))
            .unwrap()
            .unwrap()
            .matches(labels(&[])));
    }

    #[test]
    fn empty_items_in_value_sets_are_the_empty_value() {
        let vals = |sel: &str| match Selector::parse(sel).unwrap().requirements() {
            [Requirement::In(_, v)] | [Requirement::NotIn(_, v)] => v.clone(),
            other => panic!("{sel}: {other:?}"),
        };
        assert_eq!(vals("a in ()"), vec![""]);
        assert_eq!(vals("a in (,x)"), vec!["", "x"]);
        assert_eq!(vals("a in (x,)"), vec!["x", ""]);
        assert_eq!(vals("a notin (x,,y)"), vec!["x", "", "y"]);
        assert_eq!(vals("a in (x, x ,y)"), vec!["x", "y"]);
        // `a in ()` selects objects whose label a is present and empty.
        let s = Selector::parse("a in ()").unwrap();
        assert!(s.matches(labels(&[("a", "")])));
        assert!(!s.matches(labels(&[("a", "x")])));
        assert!(!s.matches(labels(&[])));
        let s = Selector::parse("a notin ()").unwrap();
        assert!(s.matches(labels(&[])));
        assert!(s.matches(labels(&[("a", "x")])));
        assert!(!s.matches(labels(&[("a", "")])));
    }

    #[test]
    fn whitespace_keywords_and_prefixed_keys() {
        let l = labels(&[
            ("app.kubernetes.io/name", "web"),
            ("in", "notin"),
            ("env", "prod"),
        ]);
        for (sel, want) in [
            ("  app.kubernetes.io/name = web ", true),
            ("\tenv\r\n==prod", true),
            ("env in(prod)", true),
            ("env notin(prod ,dev)", false),
            ("in=notin", true),
            ("in", true),
            ("! in", false),
            ("!env,app.kubernetes.io/name", false),
            ("env!=", true),
            ("env=", false),
            ("app.kubernetes.io/name in (web), env", true),
        ] {
            let s = Selector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel:?}");
        }
    }

    #[test]
    fn numeric_comparisons_need_integers() {
        let s = Selector::parse("gen>2,gen<10").unwrap();
        assert!(s.matches(labels(&[("gen", "5")])));
        assert!(!s.matches(labels(&[("gen", "10")])));
        // A label that is not a number never satisfies Gt or Lt.
        assert!(!s.matches(labels(&[("gen", "five")])));
        assert!(!s.matches(labels(&[])));
        assert!(Selector::parse("gen>").is_err());
        assert!(Selector::parse("gen<1.5").is_err());
    }

    #[test]
    fn parse_errors_name_what_was_found() {
        let err = |sel: &str| Selector::parse(sel).unwrap_err().to_string();
        assert_eq!(
            err("a=b c"),
            "unable to parse requirement: found 'c', expected: ',' or 'end of string'"
        );
        assert_eq!(
            err("a in x"),
            "unable to parse requirement: found 'x' expected: '('"
        );
        assert_eq!(
            err("a in (x y)"),
            "unable to parse requirement: found 'y', expected: ',' or ')'"
        );
        assert!(err("a in (x").contains("expected: ')'"));
        assert!(err("a=b,").contains("expected: identifier"));
        assert!(err("a=b=c").contains("unable to parse requirement"));
    }

    #[test]
    fn key_and_value_rules() {
        let name63 = "a".repeat(63);
        let name64 = "a".repeat(64);
        assert!(validate_key(&name63).is_ok());
        assert!(validate_key(&name64).is_err());
        assert!(validate_key("example.com/Name_1.x-y").is_ok());
        assert!(validate_key(&format!("{}/a", "b".repeat(253))).is_ok());
        assert!(validate_key(&format!("{}/a", "b".repeat(254))).is_err());
        for bad in [
            "",
            "/a",
            "a/",
            "Example.com/a",
            "a/b/c",
            "-a",
            "a-",
            "_a",
            "a b",
            "exa_mple.com/a",
            "-example.com/a",
        ] {
            assert!(validate_key(bad).is_err(), "key {bad:?} should be refused");
        }
        assert!(validate_value("").is_ok());
        assert!(validate_value(&name63).is_ok());
        assert!(validate_value(&name64).is_err());
        assert!(validate_value("A.b_c-D").is_ok());
        for bad in ["-a", "a-", ".a", "a/b", "a b", "é"] {
            assert!(
                validate_value(bad).is_err(),
                "value {bad:?} should be refused"
            );
        }
        // Selectors check keys and values the same way.
        assert!(Selector::parse(&format!("{name64}=x")).is_err());
        assert!(Selector::parse(&format!("a={name64}")).is_err());
        assert!(Selector::parse(&format!("a in (x,{name64})")).is_err());
    }

    #[test]
    fn structured_selector_rules() {
        let bad = [
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            json!({"matchExpressions": [{"key": "-a", "operator": "Exists"}]}),
            json!({"matchLabels": {"a": "-x"}}),
            json!({"matchLabels": {"a": 1}}),
        ];
        for v in bad {
            assert!(Selector::from_value(&v).is_err(), "{v} should be refused");
        }
        let s = Selector::from_value(&json!({"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
            {"key": "app", "operator": "Exists"}
        ]}))
        .unwrap()
        .unwrap();
        assert!(s.matches(labels(&[("app", "x"), ("env", "prod")])));
        assert!(s.matches(labels(&[("app", "x")])));
        assert!(!s.matches(labels(&[("app", "x"), ("env", "dev")])));
        assert!(!s.matches(labels(&[("env", "prod")])));
    }

    fn typed(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn typed_selector_semantics() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        // nil matches nothing; empty matches everything (LabelSelectorAsSelector).
        let nothing = Selector::from_label_selector(None).unwrap();
        assert!(!nothing.matches(&l));
        assert!(!nothing.matches(labels(&[])));
        assert!(!nothing.is_empty());
        let everything = Selector::from_label_selector(Some(&LabelSelector::default())).unwrap();
        assert!(everything.is_empty());
        assert!(everything.matches(&l));
        assert!(everything.matches(None::<&BTreeMap<String, String>>));
        let sel = typed(json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["back"]}]}));
        let s = Selector::from_label_selector(Some(&sel)).unwrap();
        assert!(s.matches(&l));
        assert!(!s.matches(labels(&[("app", "web"), ("tier", "back")])));
        assert!(!s.matches(labels(&[("app", "db")])));
        let sel = typed(json!({"matchLabels": {"app": "a"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["x", "y"]},
            {"key": "skip", "operator": "DoesNotExist"}]}));
        let s = Selector::from_label_selector(Some(&sel)).unwrap();
        assert!(s.matches(Some(&labels(&[("app", "a"), ("tier", "x")]))));
        assert!(!s.matches(Some(&labels(&[("app", "a"), ("tier", "z")]))));
        assert!(!s.matches(Some(&labels(&[("app", "a"), ("tier", "x"), ("skip", "")]))));
        // An object without labels has none of them.
        assert!(!s.matches(None::<&BTreeMap<String, String>>));
        let hash: HashMap<String, String> =
            [("app".into(), "a".into()), ("tier".into(), "y".into())].into();
        assert!(s.matches(&hash));
    }

    #[test]
    fn typed_selector_errors_are_kubernetes_words() {
        let err = |v: Value| {
            Selector::from_label_selector(Some(&typed(v)))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})),
            "\"Maybe\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "In: values set can't be empty"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "Exists: values set must be empty"
        );
        assert!(err(json!({"matchLabels": {"-a": "x"}}))
            .starts_with("invalid label key \"-a\": name part"));
        assert!(err(json!({"matchLabels": {"a": "-x"}})).starts_with("invalid label value: \"-x\""));
        assert!(err(
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]})
        )
        .starts_with("invalid label value: \"-x\""));
    }

    #[test]
    fn maps_and_label_keys() {
        let m = labels(&[("app", "web")]);
        let s = Selector::from_map(&m);
        assert_eq!(s.to_string(), "app=web");
        assert!(s.matches(labels(&[("app", "web"), ("x", "y")])));
        assert!(!s.matches(labels(&[("app", "db")])));
        assert!(Selector::from_map(&BTreeMap::new()).is_empty());

        let pod = labels(&[("rev", "1"), ("team", "a")]);
        let keys = ["rev".to_string(), "absent".to_string()];
        let mut s = Selector::everything();
        s.add_label_keys(&keys, &pod, false);
        assert_eq!(s.to_string(), "rev=1");
        s.add_label_keys(&["team".to_string()], &pod, true);
        assert_eq!(s.to_string(), "rev=1,team!=a");
        assert!(s.matches(labels(&[("rev", "1"), ("team", "b")])));
        assert!(!s.matches(labels(&[("rev", "1"), ("team", "a")])));
        // Nothing stays nothing.
        let mut n = Selector::nothing();
        n.add_label_keys(&keys, &pod, false);
        assert!(n.requirements().is_empty());
        assert!(!n.matches(&pod));
    }

    #[test]
    fn requirement_keys() {
        let s = Selector::parse("a,!b,c=1,d!=2,e>3,f<4").unwrap();
        let keys: Vec<&str> = s.requirements().iter().map(Requirement::key).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f"]);
    }
}
