//! The parsed schema: one [`Node`] per schema object, read from the
//! `openAPIV3Schema` JSON as Kubernetes' `JSONSchemaProps` reads it.

use std::collections::BTreeMap;

use ferrokube_api::status::FieldError;
use serde_json::{Map, Number, Value as Json};

/// `additionalProperties`: a boolean or a schema.
#[derive(Debug)]
pub(crate) enum Additional {
    /// `additionalProperties: true|false`.
    Allows(bool),
    /// `additionalProperties: {schema}`.
    Schema(Box<Node>),
}

/// One `x-kubernetes-validations` entry.
#[derive(Debug, Default)]
pub(crate) struct Rule {
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) message_expression: String,
    pub(crate) reason: Option<String>,
    pub(crate) field_path: String,
    pub(crate) optional_old_self: Option<bool>,
    pub(crate) program: Option<crate::cel::Program>,
    pub(crate) message_program: Option<crate::cel::Program>,
}

impl Rule {
    /// Whether the rule names `oldSelf` (a transition rule).
    pub(crate) fn uses_old_self(&self) -> bool {
        self.program
            .as_ref()
            .is_some_and(|p| p.uses_variable("oldSelf"))
    }
}

/// A schema object.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) ty: String,
    pub(crate) format: String,
    pub(crate) nullable: bool,
    pub(crate) default: Option<Json>,
    pub(crate) title: bool,
    pub(crate) description: bool,
    pub(crate) external_docs: bool,
    pub(crate) properties: BTreeMap<String, Node>,
    pub(crate) additional: Option<Additional>,
    pub(crate) items: Option<Box<Node>>,
    /// `items` given as an array of schemas (refused).
    pub(crate) items_array: bool,
    pub(crate) enumeration: Option<Vec<Json>>,
    pub(crate) maximum: Option<Number>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) minimum: Option<Number>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) multiple_of: Option<Number>,
    pub(crate) max_length: Option<i64>,
    pub(crate) min_length: Option<i64>,
    pub(crate) pattern: Option<(String, Option<regex::Regex>)>,
    pub(crate) max_items: Option<i64>,
    pub(crate) min_items: Option<i64>,
    pub(crate) unique_items: bool,
    pub(crate) max_properties: Option<i64>,
    pub(crate) min_properties: Option<i64>,
    pub(crate) required: Vec<String>,
    pub(crate) all_of: Vec<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) not: Option<Box<Node>>,
    pub(crate) preserve_unknown: Option<bool>,
    pub(crate) embedded: bool,
    pub(crate) int_or_string: bool,
    pub(crate) list_type: Option<String>,
    pub(crate) list_map_keys: Vec<String>,
    pub(crate) map_type: Option<String>,
    pub(crate) rules: Vec<Rule>,
    /// Keywords Kubernetes refuses (`id`, `$ref`, `patternProperties`, ...),
    /// with the detail of the refusal.
    pub(crate) unsupported: Vec<(&'static str, &'static str)>,
}

impl Node {
    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub(crate) fn preserves_unknown(&self) -> bool {
        self.preserve_unknown == Some(true)
    }

    /// The schema of `additionalProperties` when it is one.
    pub(crate) fn additional_schema(&self) -> Option<&Node> {
        match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether this node or one below it (properties, items, additional
    /// properties) has `x-kubernetes-validations` rules.
    pub(crate) fn has_rules(&self) -> bool {
        !self.rules.is_empty()
            || self.properties.values().any(Node::has_rules)
            || self.items.as_deref().is_some_and(Node::has_rules)
            || self.additional_schema().is_some_and(Node::has_rules)
    }

    /// Whether the node has any value validation (the nested forms).
    pub(crate) fn has_junctors(&self) -> bool {
        !self.all_of.is_empty()
            || !self.any_of.is_empty()
            || !self.one_of.is_empty()
            || self.not.is_some()
    }
}

/// Reading errors: a keyword of the wrong JSON type.
pub(crate) struct Reader<'a> {
    pub(crate) errors: &'a mut Vec<FieldError>,
}

fn child(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

impl Reader<'_> {
    fn wrong(&mut self, path: &str, key: &str, v: &Json, want: &str) {
        self.errors.push(FieldError::invalid(
            child(path, key),
            v.clone(),
            format!("must be {want}"),
        ));
    }

    fn string(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Option<String> {
        match m.get(key)? {
            Json::String(s) => Some(s.clone()),
            Json::Null => None,
            other => {
                self.wrong(path, key, other, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Option<bool> {
        match m.get(key)? {
            Json::Bool(b) => Some(*b),
            Json::Null => None,
            other => {
                self.wrong(path, key, other, "a boolean");
                None
            }
        }
    }

    fn number(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Option<Number> {
        match m.get(key)? {
            Json::Number(n) => Some(n.clone()),
            Json::Null => None,
            other => {
                self.wrong(path, key, other, "a number");
                None
            }
        }
    }

    fn integer(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Option<i64> {
        match m.get(key)? {
            Json::Number(n) if n.as_i64().is_some() => n.as_i64(),
            Json::Null => None,
            other => {
                self.wrong(path, key, other, "an integer");
                None
            }
        }
    }

    fn strings(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Vec<String> {
        match m.get(key) {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(a)) if a.iter().all(Json::is_string) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            Some(other) => {
                self.wrong(path, key, other, "a list of strings");
                Vec::new()
            }
        }
    }

    fn schemas(&mut self, m: &Map<String, Json>, key: &str, path: &str) -> Vec<Node> {
        match m.get(key) {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, s)| self.node(s, &format!("{path}.{key}[{i}]")))
                .collect(),
            Some(other) => {
                self.wrong(path, key, other, "a list of schemas");
                Vec::new()
            }
        }
    }

    /// Reads one schema object at `path`.
    pub(crate) fn node(&mut self, v: &Json, path: &str) -> Node {
        let Some(m) = v.as_object() else {
            self.errors.push(FieldError::invalid(
                path.to_string(),
                v.clone(),
                "must be a schema object",
            ));
            return Node::default();
        };
        let mut n = Node::default();
        self.generic(m, path, &mut n);
        self.value_checks(m, path, &mut n);
        self.structure(m, path, &mut n);
        self.extensions(m, path, &mut n);
        unsupported(m, &mut n);
        n
    }

    fn generic(&mut self, m: &Map<String, Json>, path: &str, n: &mut Node) {
        n.ty = self.string(m, "type", path).unwrap_or_default();
        n.format = self.string(m, "format", path).unwrap_or_default();
        n.nullable = self.boolean(m, "nullable", path).unwrap_or(false);
        n.default = m.get("default").filter(|d| !d.is_null()).cloned();
        n.title = self.string(m, "title", path).is_some_and(|t| !t.is_empty());
        n.description = self
            .string(m, "description", path)
            .is_some_and(|t| !t.is_empty());
        n.external_docs = m.get("externalDocs").is_some_and(|d| !d.is_null());
    }

    fn value_checks(&mut self, m: &Map<String, Json>, path: &str, n: &mut Node) {
        n.enumeration = match m.get("enum") {
            None | Some(Json::Null) => None,
            Some(Json::Array(a)) => Some(a.clone()),
            Some(other) => {
                self.wrong(path, "enum", other, "a list");
                None
            }
        };
        n.maximum = self.number(m, "maximum", path);
        n.exclusive_maximum = self.boolean(m, "exclusiveMaximum", path).unwrap_or(false);
        n.minimum = self.number(m, "minimum", path);
        n.exclusive_minimum = self.boolean(m, "exclusiveMinimum", path).unwrap_or(false);
        n.multiple_of = self.number(m, "multipleOf", path);
        n.max_length = self.integer(m, "maxLength", path);
        n.min_length = self.integer(m, "minLength", path);
        n.pattern = self
            .string(m, "pattern", path)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let re = pattern_regex(&p).ok();
                (p, re)
            });
        n.max_items = self.integer(m, "maxItems", path);
        n.min_items = self.integer(m, "minItems", path);
        n.unique_items = self.boolean(m, "uniqueItems", path).unwrap_or(false);
        n.max_properties = self.integer(m, "maxProperties", path);
        n.min_properties = self.integer(m, "minProperties", path);
        n.required = self.strings(m, "required", path);
        n.all_of = self.schemas(m, "allOf", path);
        n.any_of = self.schemas(m, "anyOf", path);
        n.one_of = self.schemas(m, "oneOf", path);
        n.not = m
            .get("not")
            .filter(|v| !v.is_null())
            .map(|v| Box::new(self.node(v, &child(path, "not"))));
    }

    fn structure(&mut self, m: &Map<String, Json>, path: &str, n: &mut Node) {
        match m.get("properties") {
            None | Some(Json::Null) => {}
            Some(Json::Object(props)) => {
                for (k, v) in props {
                    let p = format!("{path}.properties[{k}]");
                    n.properties.insert(k.clone(), self.node(v, &p));
                }
            }
            Some(other) => self.wrong(path, "properties", other, "an object"),
        }
        n.additional = match m.get("additionalProperties") {
            None | Some(Json::Null) => None,
            Some(Json::Bool(b)) => Some(Additional::Allows(*b)),
            Some(v) => Some(Additional::Schema(Box::new(
                self.node(v, &child(path, "additionalProperties")),
            ))),
        };
        match m.get("items") {
            None | Some(Json::Null) => {}
            Some(Json::Array(a)) => {
                n.items_array = true;
                if let Some(first) = a.first() {
                    n.items = Some(Box::new(self.node(first, &format!("{path}.items[0]"))));
                }
            }
            Some(v) => n.items = Some(Box::new(self.node(v, &child(path, "items")))),
        }
    }

    fn extensions(&mut self, m: &Map<String, Json>, path: &str, n: &mut Node) {
        n.preserve_unknown = self.boolean(m, "x-kubernetes-preserve-unknown-fields", path);
        n.embedded = self
            .boolean(m, "x-kubernetes-embedded-resource", path)
            .unwrap_or(false);
        n.int_or_string = self
            .boolean(m, "x-kubernetes-int-or-string", path)
            .unwrap_or(false);
        n.list_type = self.string(m, "x-kubernetes-list-type", path);
        n.list_map_keys = self.strings(m, "x-kubernetes-list-map-keys", path);
        n.map_type = self.string(m, "x-kubernetes-map-type", path);
        match m.get("x-kubernetes-validations") {
            None | Some(Json::Null) => {}
            Some(Json::Array(rules)) => {
                for (i, r) in rules.iter().enumerate() {
                    let p = format!("{path}.x-kubernetes-validations[{i}]");
                    n.rules.push(self.rule(r, &p));
                }
            }
            Some(other) => self.wrong(path, "x-kubernetes-validations", other, "a list"),
        }
    }

    fn rule(&mut self, v: &Json, path: &str) -> Rule {
        let Some(m) = v.as_object() else {
            self.errors.push(FieldError::invalid(
                path.to_string(),
                v.clone(),
                "must be an object",
            ));
            return Rule::default();
        };
        Rule {
            rule: self.string(m, "rule", path).unwrap_or_default(),
            message: self.string(m, "message", path).unwrap_or_default(),
            message_expression: self
                .string(m, "messageExpression", path)
                .unwrap_or_default(),
            reason: self.string(m, "reason", path),
            field_path: self.string(m, "fieldPath", path).unwrap_or_default(),
            optional_old_self: self.boolean(m, "optionalOldSelf", path),
            program: None,
            message_program: None,
        }
    }
}

/// A schema's `pattern` compiled (RE2 syntax, as Go's `regexp`), with room
/// for the large bounded repetitions real schemas use.
pub(crate) fn pattern_regex(p: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(p).size_limit(1 << 26).build()
}

/// The keywords `JSONSchemaProps` reads that Kubernetes refuses in a CRD.
fn unsupported(m: &Map<String, Json>, n: &mut Node) {
    let present = |k: &str| match m.get(k) {
        None | Some(Json::Null) => false,
        Some(Json::String(s)) => !s.is_empty(),
        Some(Json::Object(o)) => !o.is_empty() || k == "additionalItems" || k == "dependencies",
        Some(_) => true,
    };
    for (key, detail) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        if present(key) {
            n.unsupported.push((key, detail));
        }
    }
}
