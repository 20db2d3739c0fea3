//! Label selectors: the string form of `?labelSelector=` and `kubectl -l`
//! (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`,
//! `a<1`, joined by commas) and the structured `metav1.LabelSelector`
//! (`matchLabels` and `matchExpressions`), both as one [`Selector`].

use std::collections::BTreeMap;

use serde_json::Value;

/// One requirement on one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    DoesNotExist(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Gt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Selector::default()
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses the string form. Errors are messages for a 400 BadRequest.
    pub fn parse(s: &str) -> Result<Selector, String> {
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
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: ',' or 'end of string'",
                        t.text()
                    ))
                }
            }
        }
        Ok(Selector { requirements })
    }

    /// From a `metav1.LabelSelector` object (`matchLabels`,
    /// `matchExpressions`). A missing or null selector is `None`.
    pub fn from_label_selector(v: &Value) -> Result<Option<Selector>, String> {
        if v.is_null() {
            return Ok(None);
        }
        let mut requirements = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                let val = val.as_str().ok_or("matchLabels values must be strings")?;
                validate_key(k)?;
                validate_value(val)?;
                requirements.push(Requirement::In(k.clone(), vec![val.to_string()]));
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or("matchExpressions: key is required")?
                    .to_string();
                validate_key(&key)?;
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
                let r = match op {
                    "In" | "NotIn" if values.is_empty() => {
                        return Err(format!("{op}: values set can't be empty"))
                    }
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" | "DoesNotExist" if !values.is_empty() => {
                        return Err(format!("{op}: values set must be empty"))
                    }
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"))
                    }
                };
                requirements.push(r);
            }
        }
        Ok(Some(Selector { requirements }))
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

fn lex(s: &str) -> Result<Vec<Tok>, String> {
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
                return Err(format!(
                    "unable to parse requirement: invalid character {other:?}"
                ))
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

    fn ident(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            Some(t) => Err(format!(
                "unable to parse requirement: found '{}', expected: {what}",
                t.text()
            )),
            None => Err(format!(
                "unable to parse requirement: found 'end of string', expected: {what}"
            )),
        }
    }

    /// The values of `in (...)` / `notin (...)` after the `(`, as
    /// Kubernetes reads them: an empty list and empty items between commas
    /// stand for the empty value (`()` is `("")`, `(a,,b)` is `(a,"",b)`);
    /// duplicates collapse.
    fn value_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        let push = |values: &mut Vec<String>, v: String| -> Result<(), String> {
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
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: {expected}",
                        t.text()
                    ));
                }
                None => {
                    return Err("unable to parse requirement: found '', expected: ')'".to_string())
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
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
                    .map_err(|_| format!("unable to parse requirement: {v:?} is not an integer"))?;
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
                        return Err(format!(
                            "unable to parse requirement: found '{}' expected: '('",
                            other.map(|t| t.text()).unwrap_or_default()
                        ))
                    }
                }
                let values = self.value_list()?;
                Ok(if word == "in" {
                    Requirement::In(key, values)
                } else {
                    Requirement::NotIn(key, values)
                })
            }
            Some(t) => Err(format!(
                "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.text()
            )),
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
pub fn valid_dns_subdomain(s: &str) -> bool {
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
pub fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if !valid_dns_subdomain(p) {
            return Err(format!(
                "invalid label key {k:?}: prefix part must be a lowercase RFC 1123 subdomain"
            ));
        }
    }
    if !valid_name_part(name) {
        return Err(format!(
            "invalid label key {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or a name part.
pub fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() || valid_name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        ))
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
            Selector::parse("a=").unwrap().requirements,
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
        let e = Selector::parse("a=b=c").unwrap_err();
        assert!(e.contains("unable to parse requirement"), "{e}");
    }

    #[test]
    fn structured_selector() {
        let v = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]});
        let s = Selector::from_label_selector(&v).unwrap().unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "b")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "b"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert_eq!(s.to_string(), "app=web,tier in (a,b),!canary");
        assert!(Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        )
        .is_err());
        assert!(Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})
        )
        .is_err());
        assert_eq!(Selector::from_label_selector(&Value::Null).unwrap(), None);
        // An empty selector object matches everything.
        assert!(Selector::from_label_selector(&json!({}))
            .unwrap()
            .unwrap()
            .matches(&labels(&[])));
    }

    #[test]
    fn empty_items_in_value_sets_are_the_empty_value() {
        let vals = |sel: &str| match Selector::parse(sel).unwrap().requirements.as_slice() {
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
        assert!(s.matches(&labels(&[("a", "")])));
        assert!(!s.matches(&labels(&[("a", "x")])));
        assert!(!s.matches(&labels(&[])));
        let s = Selector::parse("a notin ()").unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "x")])));
        assert!(!s.matches(&labels(&[("a", "")])));
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
        assert!(s.matches(&labels(&[("gen", "5")])));
        assert!(!s.matches(&labels(&[("gen", "10")])));
        // A label that is not a number never satisfies Gt or Lt.
        assert!(!s.matches(&labels(&[("gen", "five")])));
        assert!(!s.matches(&labels(&[])));
        assert!(Selector::parse("gen>").is_err());
        assert!(Selector::parse("gen<1.5").is_err());
    }

    #[test]
    fn parse_errors_name_what_was_found() {
        let err = |sel: &str| Selector::parse(sel).unwrap_err();
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
            assert!(
                Selector::from_label_selector(&v).is_err(),
                "{v} should be refused"
            );
        }
        let s = Selector::from_label_selector(&json!({"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
            {"key": "app", "operator": "Exists"}
        ]}))
        .unwrap()
        .unwrap();
        assert!(s.matches(&labels(&[("app", "x"), ("env", "prod")])));
        assert!(s.matches(&labels(&[("app", "x")])));
        assert!(!s.matches(&labels(&[("app", "x"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
    }
}
