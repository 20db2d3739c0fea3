//! Whether a schema is structural, with Kubernetes' messages
//! (`apiserver/schema/validation.go` and `complete.go`): every field is typed,
//! value validations (`allOf`, `anyOf`, `oneOf`, `not`) only restrict fields
//! the schema itself specifies, metadata is restricted to `name` and
//! `generateName`, and the extensions are used where they mean something.

use crate::node::{Additional, Node};
use ferrokube_api::status::FieldError;

/// Where a node sits: the root, an array's items or an object's field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// The structural errors of `root` at `base`, sorted by their text as
/// Kubernetes sorts them.
pub(crate) fn check(root: &Node, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    invariants(root, Level::Root, base, &mut errs);
    completeness(root, root, base, base, &mut errs);
    errs.sort_by_key(|e| e.to_string());
    errs
}

fn is_type_only(n: &Node, ty: &str) -> bool {
    n.ty == ty
        && n.properties.is_empty()
        && n.items.is_none()
        && n.additional.is_none()
        && !n.has_junctors()
        && n.rules.is_empty()
        && n.default.is_none()
        && !n.nullable
        && !n.title
        && !n.description
        && n.enumeration.is_none()
        && n.format.is_empty()
}

/// `anyOf: [{type: integer}, {type: string}]`, the int-or-string pattern.
fn is_int_or_string_any_of(any_of: &[Node]) -> bool {
    any_of.len() == 2 && is_type_only(&any_of[0], "integer") && is_type_only(&any_of[1], "string")
}

fn invariants(s: &Node, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    if s.ty == "array" && s.items.is_none() {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &format!("{path}.items"), errs);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &format!("{path}.properties[{k}]"), errs);
    }
    if let Some(a) = &s.additional {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Additional::Schema(a) = a {
            invariants(
                a,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errs,
            );
        }
    }
    extensions(s, path, errs);
    let skip_any_of = is_int_or_string_any_of(&s.any_of);
    let skip_first_all_of = s
        .all_of
        .first()
        .is_some_and(|a| is_int_or_string_any_of(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of, path, errs);
    types(s, lvl, path, errs);
    metadata_invariants(s, lvl, path, errs);
    if s.embedded && !s.preserves_unknown() && s.properties.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn extensions(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    if s.int_or_string && s.preserves_unknown() {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
}

fn types(s: &Node, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let type_path = format!("{path}.type");
    if s.embedded && s.ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(if s.ty.is_empty() {
            FieldError::required(type_path.clone(), detail)
        } else {
            FieldError::invalid(type_path.clone(), s.ty.clone(), detail)
        });
    } else if s.ty.is_empty() && !s.int_or_string && !s.preserves_unknown() {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(type_path.clone(), detail));
    }
    if s.embedded && s.additional.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.ty.is_empty() && s.ty != "object" {
        errs.push(FieldError::invalid(
            type_path,
            s.ty.clone(),
            "must be object at the root",
        ));
    }
}

fn metadata_invariants(s: &Node, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let check_metadata = lvl == Level::Root || s.embedded;
    for key in ["kind", "apiVersion"] {
        if let Some(p) = s.properties.get(key) {
            if check_metadata && p.ty != "string" {
                errs.push(FieldError::invalid(
                    format!("{path}.properties[{key}].type"),
                    p.ty.clone(),
                    "must be string",
                ));
            }
        }
    }
    let Some(meta) = s.properties.get("metadata") else {
        return;
    };
    let meta_path = format!("{path}.properties[metadata]");
    if check_metadata && meta.ty != "object" {
        errs.push(FieldError::invalid(
            format!("{meta_path}.type"),
            meta.ty.clone(),
            "must be object",
        ));
    }
    if lvl == Level::Root && !metadata_only_names(meta) {
        errs.push(FieldError::forbidden(
            meta_path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

/// The root's `metadata` schema says nothing but its type and the schemas of
/// `name` and `generateName`.
fn metadata_only_names(m: &Node) -> bool {
    let names_only = m
        .properties
        .keys()
        .all(|k| k == "name" || k == "generateName");
    names_only
        && m.format.is_empty()
        && !m.nullable
        && !m.title
        && !m.description
        && !m.external_docs
        && m.additional.is_none()
        && m.items.is_none()
        && !m.has_junctors()
        && m.enumeration.is_none()
        && m.maximum.is_none()
        && m.minimum.is_none()
        && m.multiple_of.is_none()
        && m.max_length.is_none()
        && m.min_length.is_none()
        && m.pattern.is_none()
        && m.max_items.is_none()
        && m.min_items.is_none()
        && !m.unique_items
        && m.max_properties.is_none()
        && m.min_properties.is_none()
        && m.required.is_empty()
        && m.preserve_unknown.is_none()
        && !m.embedded
        && !m.int_or_string
        && m.list_type.is_none()
        && m.list_map_keys.is_empty()
        && m.map_type.is_none()
        && m.rules.is_empty()
}

fn value_validation(
    v: &Node,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            nested(n, false, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        nested(
            n,
            skip_first_all_of_any_of && i == 0,
            &format!("{path}.allOf[{i}]"),
            errs,
        );
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(n, false, &format!("{path}.oneOf[{i}]"), errs);
    }
    if let Some(n) = &v.not {
        nested(n, false, &format!("{path}.not"), errs);
    }
    if let Some((p, None)) = &v.pattern {
        let why = crate::node::pattern_regex(p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        errs.push(FieldError::invalid(
            format!("{path}.pattern"),
            p.clone(),
            format!("must be a valid regular expression, but isn't: error parsing regexp: {why}"),
        ));
    }
}

/// A schema under `allOf`, `anyOf`, `oneOf` or `not`: value validation only.
fn nested(v: &Node, skip_any_of: bool, path: &str, errs: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, path, errs);
    if let Some(items) = &v.items {
        nested(items, false, &format!("{path}.items"), errs);
    }
    for (k, p) in &v.properties {
        nested(p, false, &format!("{path}.properties[{k}]"), errs);
    }
    let mut forbid = |key: &str, detail: &str| {
        errs.push(FieldError::forbidden(format!("{path}.{key}"), detail));
    };
    if !v.ty.is_empty() {
        forbid("type", "must be empty to be structural");
    }
    if v.additional.is_some() {
        forbid("additionalProperties", "must be undefined to be structural");
    }
    if v.default.is_some() {
        forbid("default", "must be undefined to be structural");
    }
    if v.title {
        forbid("title", "must be empty to be structural");
    }
    if v.description {
        forbid("description", "must be empty to be structural");
    }
    if v.nullable {
        forbid("nullable", "must be false to be structural");
    }
    if v.external_docs {
        forbid("externalDocs", "must be undefined to be structural");
    }
    nested_extensions(v, &mut forbid);
    if v.properties.contains_key("metadata") {
        forbid(
            "properties[metadata]",
            "must not be specified in a nested context",
        );
    }
}

fn nested_extensions(v: &Node, forbid: &mut impl FnMut(&str, &str)) {
    if v.preserves_unknown() {
        forbid(
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if v.embedded {
        forbid(
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if v.int_or_string {
        forbid(
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if !v.list_map_keys.is_empty() {
        forbid(
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.list_type.is_some() {
        forbid(
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.map_type.is_some() {
        forbid(
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if !v.rules.is_empty() {
        forbid("x-kubernetes-validations", "must be empty to be structural");
    }
}

/// Every field a value validation of `v` names is specified in `s` itself.
fn completeness(v: &Node, s: &Node, s_path: &str, v_path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = &v.not {
        nested_completeness(n, Some(s), s_path, &format!("{v_path}.not"), errs);
    }
    for (key, list) in [
        ("allOf", &v.all_of),
        ("anyOf", &v.any_of),
        ("oneOf", &v.one_of),
    ] {
        for (i, n) in list.iter().enumerate() {
            nested_completeness(n, Some(s), s_path, &format!("{v_path}.{key}[{i}]"), errs);
        }
    }
}

fn nested_completeness(
    v: &Node,
    s: Option<&Node>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        errs.push(FieldError::required(
            s_path.to_string(),
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    completeness(v, s, s_path, v_path, errs);
    if let Some(items) = &v.items {
        nested_completeness(
            items,
            s.items.as_deref(),
            &format!("{s_path}.items"),
            &format!("{v_path}.items"),
            errs,
        );
    }
    for (k, p) in &v.properties {
        let sp = format!("{s_path}.properties[{k}]");
        let vp = format!("{v_path}.properties[{k}]");
        match s.properties.get(k) {
            Some(sf) => nested_completeness(p, Some(sf), &sp, &vp, errs),
            None => errs.push(FieldError::required(
                sp,
                format!("because it is defined in {vp}"),
            )),
        }
    }
}
