//! What a CustomResourceDefinition's OpenAPI v3 schema does to an object, as
//! Kubernetes' apiextensions-apiserver does it: a pure library, no I/O.
//!
//! - [`Structural::parse`]: the schema checked as a CRD's is checked (every
//!   field typed, value validations restricting only specified fields,
//!   refused keywords, list and map types, defaults that validate, rules
//!   that compile), with Kubernetes' messages and field paths.
//! - [`Structural::validate`] (and [`Structural::validate_update`], with
//!   ratcheting): an object checked against the schema as kube-openapi
//!   checks it, embedded resources' `apiVersion`, `kind` and `metadata`,
//!   and the uniqueness of `set` and `map` lists' elements.
//! - [`Structural::validate_cel`]: the `x-kubernetes-validations` rules.
//! - [`Structural::validate_all`]: all of the above, in the order of
//!   Kubernetes' custom resource strategy (rules skipped after blocking
//!   errors).
//! - [`Structural::prune`] and [`Structural::apply_defaults`]: unknown fields
//!   dropped, defaults applied at every depth.
//! - [`Structural::list_type_at`], [`Structural::map_type_at`]: list types
//!   and keys, map types, for server-side apply.
//! - [`cel`]: CEL expressions, shared with admission webhooks'
//!   `matchConditions` and ValidatingAdmissionPolicies.
//!
//! Not there yet: the warnings of ratcheted rules (dropped here), CEL cost
//! estimates and budgets, CEL's type checker beyond undeclared variables and
//! undefined fields (a rule comparing a string with an int fails when
//! evaluated, not when the CRD is created), the root schema's restrictions
//! when the status subresource is enabled, and dropping malformed values of
//! embedded resources' metadata (e.g. labels that are not a map).

pub mod cel;
mod crd;
mod defaults;
mod embedded;
pub mod exprtypes;
mod format;
mod gofmt;
mod listtype;
mod net;
mod node;
mod prune;
mod quantity;
mod rules;
mod structural;
mod typecheck;
mod url;
mod validate;

use ferrokube_api::status::FieldError;
use serde_json::Value as Json;

use node::{Node, Reader};

/// A list's `x-kubernetes-list-type`, with a `map` list's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (the default).
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by the values of these keys.
    Map(Vec<String>),
}

/// An object's `x-kubernetes-map-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    /// Merged field by field (the default).
    Granular,
    /// Replaced as a whole.
    Atomic,
}

/// A parsed structural schema: a CRD version's `openAPIV3Schema`, checked,
/// its rules compiled.
#[derive(Debug)]
pub struct Structural {
    root: Node,
}

impl Structural {
    /// Parses an `openAPIV3Schema` (JSON). The errors are those Kubernetes
    /// gives for a CRD with this schema, with field paths under `base` (e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`): a non-structural schema
    /// (`type: Required value: must not be empty for specified object
    /// fields`), refused keywords, misused `x-kubernetes-*` extensions,
    /// defaults that do not validate, rules that do not compile.
    pub fn parse(schema: &Json, base: &str) -> Result<Structural, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut root = Reader {
            errors: &mut errors,
        }
        .node(schema, base);
        if !errors.is_empty() {
            return Err(errors);
        }
        // Kubernetes' order: the root's own checks, structurality, then (for
        // a structural schema) its defaults, then the schema's keywords and
        // (for valid defaults) its rules.
        let mut errors = Vec::new();
        if root.nullable {
            errors.push(FieldError::forbidden(
                format!("{base}.nullable"),
                "nullable cannot be true at the root",
            ));
        }
        let structural = structural::check(&root, base);
        let mut rules_checked = false;
        if structural.is_empty() {
            crd::compile_quietly(&mut root);
            defaults_valid(&root, base, true, &mut errors);
            rules_checked = errors.is_empty();
        }
        errors.extend(structural);
        errors.extend(crd::check(&mut root, base, rules_checked));
        if errors.is_empty() {
            Ok(Structural { root })
        } else {
            Err(errors)
        }
    }

    /// Validates an object (the whole custom resource) against the schema:
    /// kube-openapi's keywords (type, format, enum, bounds, lengths,
    /// patterns, item and property counts, required, nullable,
    /// additionalProperties, allOf/anyOf/oneOf/not, int-or-string), then
    /// embedded resources' `apiVersion`, `kind` and `metadata`, then
    /// duplicates in `set` and `map` lists. Errors carry Kubernetes'
    /// messages and paths. (The rules are [`validate_cel`](Self::validate_cel);
    /// [`validate_all`](Self::validate_all) runs both as Kubernetes does.)
    pub fn validate(&self, obj: &Json) -> Vec<FieldError> {
        self.schema_errors(obj, None)
    }

    /// [`validate`](Self::validate) for an update from `old`, with
    /// Kubernetes' ratcheting (`CRDValidationRatcheting`): a value equal to
    /// its correlated old value (same field, same `map` list keys) is not
    /// checked against the schema's keywords, so objects stored under an
    /// older schema stay updatable.
    pub fn validate_update(&self, obj: &Json, old: &Json) -> Vec<FieldError> {
        self.schema_errors(obj, Some(old))
    }

    /// Everything Kubernetes checks of a custom resource's content on create
    /// (`old` `None`) or update, in its order: the schema (ratcheted on
    /// updates), embedded resources, list uniqueness, then the rules, unless
    /// an error so far blocks them (a missing, unsupported, too long, too
    /// many or mistyped value), which Kubernetes reports with one more error
    /// when the schema has rules.
    pub fn validate_all(&self, obj: &Json, old: Option<&Json>) -> Vec<FieldError> {
        let mut errors = self.schema_errors(obj, old);
        if !self.root.has_rules() {
            return errors;
        }
        let blocking = errors.iter().any(|e| {
            matches!(
                e.reason(),
                "FieldValueNotSupported"
                    | "FieldValueRequired"
                    | "FieldValueTooLong"
                    | "FieldValueTooMany"
                    | "FieldValueTypeInvalid"
            )
        });
        if blocking {
            errors.push(FieldError::invalid(
                "<nil>",
                "null",
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            errors.extend(self.validate_cel(obj, old));
        }
        errors
    }

    fn schema_errors(&self, obj: &Json, old: Option<&Json>) -> Vec<FieldError> {
        let mut v = validate::Validator {
            base: None,
            errors: Vec::new(),
        };
        v.node(&self.root, obj, old, "");
        let mut errors = v.errors;
        embedded::validate(&self.root, obj, "", &mut errors);
        listtype::validate(&self.root, obj, "", &mut errors);
        errors
    }

    /// Evaluates the `x-kubernetes-validations` rules over `obj`; `old` is
    /// the stored object on updates (transition rules, those naming
    /// `oldSelf`, run only where an old value correlates, unless
    /// `optionalOldSelf` is set). As Kubernetes ratchets them, the failures
    /// of other rules at values equal to their old ones are dropped (it
    /// warns of them). Rules run without a cost budget.
    pub fn validate_cel(&self, obj: &Json, old: Option<&Json>) -> Vec<FieldError> {
        let mut e = rules::Evaluator {
            errors: Vec::new(),
            unchanged: false,
            ratchet: true,
        };
        e.node(&self.root, obj, old, "", true, true);
        e.errors
    }

    /// Drops the fields the schema does not specify (keeping those under
    /// `x-kubernetes-preserve-unknown-fields`, and the `apiVersion`, `kind`
    /// and `metadata` of the object and of embedded resources; an embedded
    /// resource's `metadata` keeps only `ObjectMeta`'s fields and gets a
    /// `creationTimestamp`, null when unset, as Kubernetes writes it back);
    /// returns the dropped fields' paths, sorted, as strict field validation
    /// names them (`unknown field "spec.foo"`, `spec.list[0].bar`).
    pub fn prune(&self, obj: &mut Json) -> Vec<String> {
        let mut p = prune::Pruner { pruned: Vec::new() };
        p.prune(obj, Some(&self.root), true, "");
        p.pruned.sort();
        p.pruned
    }

    /// Drops the nulls that may not be null and have no default, then
    /// applies the schema's `default`s at every depth (a missing field, or a
    /// null one that may not be null), as Kubernetes does to objects read and
    /// written (after pruning).
    pub fn apply_defaults(&self, obj: &mut Json) {
        defaults::prune_nulls(obj, Some(&self.root));
        defaults::apply(obj, &self.root);
    }

    /// The list type of the array at `path` (field names from the root; an
    /// array's elements are stepped into by any segment, e.g. an index),
    /// `None` when `path` does not name an array of the schema.
    pub fn list_type_at(&self, path: &[&str]) -> Option<ListType> {
        let node = self.node_at(path)?;
        if node.ty != "array" {
            return None;
        }
        Some(match node.list_type.as_deref() {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(node.list_map_keys.clone()),
            _ => ListType::Atomic,
        })
    }
}

impl Structural {
    /// The map type of the object at `path` (as for
    /// [`list_type_at`](Self::list_type_at)), `None` when `path` does not
    /// name an object of the schema.
    pub fn map_type_at(&self, path: &[&str]) -> Option<MapType> {
        let node = self.node_at(path)?;
        if node.ty != "object" {
            return None;
        }
        Some(match node.map_type.as_deref() {
            Some("atomic") => MapType::Atomic,
            _ => MapType::Granular,
        })
    }

    /// Whether the object at `path` (as for
    /// [`list_type_at`](Self::list_type_at)) is an embedded resource
    /// (`x-kubernetes-embedded-resource`), whose `metadata` is an ObjectMeta.
    pub fn embedded_at(&self, path: &[&str]) -> bool {
        self.node_at(path).is_some_and(|n| n.embedded)
    }

    fn node_at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = &self.root;
        for seg in path {
            node = if node.ty == "array" {
                node.items.as_deref()?
            } else if let Some(p) = node.properties.get(*seg) {
                p
            } else {
                node.additional_schema()?
            };
        }
        Some(node)
    }
}

/// Defaults must be pruned, valid for their schema and pass its rules
/// (`defaulting/validation.go`); defaults under `additionalProperties` are
/// not followed.
fn defaults_valid(s: &Node, path: &str, root: bool, errors: &mut Vec<FieldError>) {
    if let Some(d) = &s.default {
        let default_path = format!("{path}.default");
        let mut pruned = d.clone();
        prune::Pruner { pruned: Vec::new() }.prune(&mut pruned, Some(s), s.embedded, "");
        if pruned != *d {
            errors.push(FieldError::invalid(
                default_path.clone(),
                d.clone(),
                "must not have unknown fields",
            ));
        } else {
            let mut embedded_errs = Vec::new();
            embedded::validate(s, d, &default_path, &mut embedded_errs);
            if embedded_errs.is_empty() {
                let mut v = validate::Validator {
                    base: Some(&default_path),
                    errors: Vec::new(),
                };
                v.node(s, d, None, "");
                if v.errors.is_empty() {
                    // Defaults pass the rules too, as their own old value.
                    let mut e = rules::Evaluator {
                        errors: Vec::new(),
                        unchanged: false,
                        ratchet: false,
                    };
                    e.node(s, d, Some(d), &default_path, s.embedded, true);
                    errors.extend(e.errors);
                }
                errors.extend(v.errors);
            } else {
                errors.extend(embedded_errs);
            }
        }
    }
    if let Some(items) = &s.items {
        defaults_valid(items, &format!("{path}.items"), false, errors);
    }
    for (k, p) in &s.properties {
        if root && matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
            continue;
        }
        defaults_valid(p, &format!("{path}.properties[{k}]"), false, errors);
    }
}

#[cfg(test)]
mod tests;
