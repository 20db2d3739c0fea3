//! The checks Kubernetes makes of a CRD's `openAPIV3Schema` beyond
//! structurality (`apis/apiextensions/validation/validation.go`,
//! `ValidateCustomResourceDefinitionOpenAPISchema`): refused keywords,
//! defaults where they cannot apply, list and map types, and
//! `x-kubernetes-validations` (rules compiled here).

use ferrokube_api::status::FieldError;

use crate::node::{Additional, Node, Rule};

/// What the walk knows about where it is.
#[derive(Clone, Default)]
struct Ctx {
    /// `Some(reason)` where defaults are refused.
    no_defaults: Option<String>,
    inside_meta: bool,
    /// The highest path below which `oldSelf` cannot be correlated.
    uncorrelatable: Option<String>,
}

impl Ctx {
    fn forbid_old_self(&self, path: &str) -> Ctx {
        let mut c = self.clone();
        if c.uncorrelatable.is_none() {
            c.uncorrelatable = Some(path.to_string());
        }
        c
    }
}

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["metadata", "kind", "apiVersion"];

/// Checks `root` at `base` and compiles its rules; the errors in
/// Kubernetes' order (schema errors, then rule compilation errors).
pub(crate) fn check(root: &mut Node, base: &str, compile_rules: bool) -> Vec<FieldError> {
    let mut schema = Vec::new();
    let mut cel = Vec::new();
    walk(
        root,
        base,
        &Ctx::default(),
        true,
        compile_rules,
        &mut schema,
        &mut cel,
    );
    schema.extend(cel);
    schema
}

fn walk(
    s: &mut Node,
    path: &str,
    ctx: &Ctx,
    is_root: bool,
    compile_rules: bool,
    schema: &mut Vec<FieldError>,
    cel: &mut Vec<FieldError>,
) {
    let before = schema.len();
    keywords(s, path, ctx, schema);
    let embedded = s.embedded;
    let correlatable_map = s.map_type.as_deref() != Some("atomic");
    let list_is_map = s.list_type.as_deref() == Some("map");
    if let Some(Additional::Schema(a)) = &mut s.additional {
        let mut sub = ctx.clone();
        if ctx.inside_meta {
            sub.no_defaults =
                Some("inside additionalProperties applying to object metadata".into());
        }
        walk(
            a,
            &format!("{path}.additionalProperties"),
            &sub,
            false,
            compile_rules,
            schema,
            cel,
        );
    }
    for (k, p) in s.properties.iter_mut() {
        let mut sub = if correlatable_map {
            ctx.clone()
        } else {
            ctx.forbid_old_self(path)
        };
        if (is_root || embedded) && META_FIELDS.contains(&k.as_str()) {
            sub.inside_meta = true;
            if is_root {
                sub.no_defaults = Some(format!("in top-level {k}"));
            }
        }
        walk(
            p,
            &format!("{path}.properties[{k}]"),
            &sub,
            false,
            compile_rules,
            schema,
            cel,
        );
    }
    if let Some(n) = &mut s.not {
        walk(n, &format!("{path}.not"), ctx, false, false, schema, cel);
    }
    for (key, list) in [
        ("allOf", &mut s.all_of),
        ("oneOf", &mut s.one_of),
        ("anyOf", &mut s.any_of),
    ] {
        for (i, n) in list.iter_mut().enumerate() {
            walk(
                n,
                &format!("{path}.{key}[{i}]"),
                ctx,
                false,
                false,
                schema,
                cel,
            );
        }
    }
    if let Some(items) = &mut s.items {
        let sub = if list_is_map {
            ctx.clone()
        } else {
            ctx.forbid_old_self(path)
        };
        walk(
            items,
            &format!("{path}.items"),
            &sub,
            false,
            compile_rules,
            schema,
            cel,
        );
    }
    extensions(s, path, schema);
    rules_text(s, path, schema);
    if schema.len() == before && compile_rules {
        compile(s, path, ctx, is_root, cel);
    }
}

fn keywords(s: &Node, path: &str, ctx: &Ctx, errs: &mut Vec<FieldError>) {
    if !s.ty.is_empty() && !TYPES.contains(&s.ty.as_str()) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            s.ty.clone(),
            &TYPES,
        ));
    }
    if s.default.is_some() {
        if let Some(reason) = &ctx.no_defaults {
            errs.push(FieldError::forbidden(
                format!("{path}.default"),
                format!("must not be set {reason}"),
            ));
        }
    }
    for (key, detail) in &s.unsupported {
        errs.push(FieldError::forbidden(format!("{path}.{key}"), *detail));
    }
    if s.ty == "null" {
        errs.push(FieldError::forbidden(
            format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.items_array {
        errs.push(FieldError::forbidden(
            format!("{path}.items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_meta && s.embedded {
        errs.push(FieldError::forbidden(
            format!("{path}.x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if s.unique_items {
        errs.push(FieldError::forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(a) = &s.additional {
        if !s.properties.is_empty() && !matches!(a, Additional::Allows(true)) {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
    }
}

fn type_must_be(s: &Node, path: &str, ty: &str, detail: &str, errs: &mut Vec<FieldError>) {
    if s.ty == ty {
        return;
    }
    errs.push(if s.ty.is_empty() {
        FieldError::required(format!("{path}.type"), detail)
    } else {
        FieldError::invalid(format!("{path}.type"), s.ty.clone(), detail)
    });
}

fn extensions(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    if s.preserve_unknown == Some(false) {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    if let Some(mt) = &s.map_type {
        type_must_be(
            s,
            path,
            "object",
            "must be object if x-kubernetes-map-type is specified",
            errs,
        );
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(
                format!("{path}.x-kubernetes-map-type"),
                mt.clone(),
                &["atomic", "granular"],
            ));
        }
    }
    if let Some(lt) = &s.list_type {
        if s.ty != "array" {
            type_must_be(
                s,
                path,
                "array",
                "must be array if x-kubernetes-list-type is specified",
                errs,
            );
        } else if lt == "set" {
            set_items(s, path, errs);
        }
        if lt != "atomic" && lt != "set" && lt != "map" {
            errs.push(FieldError::not_supported(
                format!("{path}.x-kubernetes-list-type"),
                lt.clone(),
                &["atomic", "set", "map"],
            ));
        }
    }
    list_map(s, path, errs);
    map_list_keys_map_set(s, path, errs);
}

/// The items of a `set` list are atomic.
fn set_items(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    let Some(is) = &s.items else { return };
    let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
    match is.ty.as_str() {
        "array" if is.list_type.as_deref().is_some_and(|t| t != "atomic") => {
            errs.push(FieldError::invalid(
                format!("{path}.items.x-kubernetes-list-type"),
                is.list_type.clone().unwrap_or_default(),
                detail,
            ));
        }
        "object" if is.map_type.as_deref() != Some("atomic") => {
            // Kubernetes shows the items' list type here (null for objects).
            errs.push(FieldError::invalid_shown(
                format!("{path}.items.x-kubernetes-map-type"),
                "null",
                detail,
            ));
        }
        _ => {}
    }
}

fn keys_shown(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn list_map(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    if !s.list_map_keys.is_empty() {
        let detail = "must be map if x-kubernetes-list-map-keys is non-empty";
        match &s.list_type {
            None => errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-type"),
                detail,
            )),
            Some(t) if t != "map" => errs.push(FieldError::invalid(
                format!("{path}.x-kubernetes-list-type"),
                t.clone(),
                detail,
            )),
            Some(_) => {}
        }
    }
    if s.list_type.as_deref() != Some("map") {
        return;
    }
    if s.list_map_keys.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    let Some(items) = &s.items else {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must have a schema if x-kubernetes-list-type is map",
        ));
        return;
    };
    if items.ty != "object" {
        errs.push(FieldError::invalid(
            format!("{path}.items.type"),
            items.ty.clone(),
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    for k in &s.list_map_keys {
        match items.properties.get(k) {
            Some(p) if p.ty == "array" || p.ty == "object" => errs.push(FieldError::invalid(
                format!("{path}.items.properties[{k}].type"),
                items.ty.clone(),
                "must be a scalar type if parent array's x-kubernetes-list-type is map",
            )),
            Some(_) => {}
            None => errs.push(FieldError::invalid_shown(
                format!("{path}.x-kubernetes-list-map-keys"),
                keys_shown(&s.list_map_keys),
                "entries must all be names of item properties",
            )),
        }
        if !seen.insert(k) {
            errs.push(FieldError::invalid_shown(
                format!("{path}.x-kubernetes-list-map-keys"),
                keys_shown(&s.list_map_keys),
                "must not contain duplicate entries",
            ));
        }
    }
}

/// Items of `set` and `map` lists, and map keys, are never null; map keys
/// are required or defaulted.
fn map_list_keys_map_set(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    let (Some(items), Some(lt)) = (&s.items, &s.list_type) else {
        return;
    };
    if lt != "set" && lt != "map" {
        return;
    }
    if items.nullable {
        errs.push(FieldError::forbidden(
            format!("{path}.items.nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt != "map" {
        return;
    }
    for k in &s.list_map_keys {
        let Some(p) = items.properties.get(k) else {
            continue;
        };
        if !items.required.contains(k) && p.default.is_none() {
            errs.push(FieldError::required(
                format!("{path}.items.properties[{k}].default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if p.nullable {
            errs.push(FieldError::forbidden(
                format!("{path}.items.properties[{k}].nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}

const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The texts of each rule, before compiling them.
fn rules_text(s: &Node, path: &str, errs: &mut Vec<FieldError>) {
    for (i, r) in s.rules.iter().enumerate() {
        let p = format!("{path}.x-kubernetes-validations[{i}]");
        let (rule, msg) = (r.rule.trim(), r.message.trim());
        if rule.is_empty() {
            errs.push(FieldError::required(
                format!("{p}.rule"),
                "rule is not specified",
            ));
        } else if !r.message.is_empty() && msg.is_empty() {
            errs.push(FieldError::invalid(
                format!("{p}.message"),
                r.message.clone(),
                "message must be non-empty if specified",
            ));
        } else if has_newlines(msg) {
            errs.push(FieldError::invalid(
                format!("{p}.message"),
                r.message.clone(),
                "message must not contain line breaks",
            ));
        } else if has_newlines(rule) && msg.is_empty() {
            errs.push(FieldError::required(
                format!("{p}.message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !r.message_expression.is_empty() && r.message_expression.trim().is_empty() {
            errs.push(FieldError::required(
                format!("{p}.messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &r.reason {
            if !REASONS.contains(&reason.as_str()) {
                errs.push(FieldError::not_supported(
                    format!("{p}.reason"),
                    reason.clone(),
                    &REASONS,
                ));
            }
        }
        field_path_text(s, r, &p, errs);
    }
}

fn field_path_text(s: &Node, r: &Rule, p: &str, errs: &mut Vec<FieldError>) {
    if r.field_path.is_empty() {
        return;
    }
    if r.field_path.trim().is_empty() {
        errs.push(FieldError::invalid(
            format!("{p}.fieldPath"),
            r.field_path.clone(),
            "fieldPath must be non-empty if specified",
        ));
    }
    if has_newlines(&r.field_path) {
        errs.push(FieldError::invalid(
            format!("{p}.fieldPath"),
            r.field_path.clone(),
            "fieldPath must not contain line breaks",
        ));
    }
    if crate::rules::field_path(s, &r.field_path).is_none() {
        errs.push(FieldError::invalid(
            format!("{p}.fieldPath"),
            r.field_path.clone(),
            "fieldPath must be a valid path",
        ));
    }
}

/// Compiles every rule that compiles, reporting nothing: the defaults are
/// checked against the rules before the rules themselves are.
pub(crate) fn compile_quietly(s: &mut Node) {
    for r in &mut s.rules {
        r.program = crate::cel::compile(&r.rule).ok();
        r.message_program = crate::cel::compile(&r.message_expression).ok();
    }
    if let Some(Additional::Schema(a)) = &mut s.additional {
        compile_quietly(a);
    }
    for p in s.properties.values_mut() {
        compile_quietly(p);
    }
    if let Some(items) = &mut s.items {
        compile_quietly(items);
    }
}

/// The rule as Go's `%#v` prints Kubernetes' internal `ValidationRule`.
pub(crate) fn rule_shown(r: &Rule) -> String {
    let reason = match &r.reason {
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)",
        None => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let optional = match r.optional_old_self {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{reason}, FieldPath:{:?}, OptionalOldSelf:{optional}}}",
        r.rule, r.message, r.message_expression, r.field_path
    )
}

/// Compiles the node's rules and message expressions.
fn compile(s: &mut Node, path: &str, ctx: &Ctx, is_root: bool, errs: &mut Vec<FieldError>) {
    let resource = is_root || s.embedded;
    let mut checked = Vec::new();
    let mut message_bool = Vec::new();
    for r in &s.rules {
        let found = r.rule.trim().is_empty().then(String::new).or_else(|| {
            let program = crate::cel::compile(&r.rule).ok()?;
            let optional = r.optional_old_self == Some(true);
            let undefined = crate::typecheck::check(&program, s, resource, optional);
            if !undefined.is_empty() {
                return Some(format!("compilation failed: {undefined}"));
            }
            if crate::typecheck::is_bool(&program, s) == Some(false) {
                return Some("cel expression must evaluate to a bool".to_string());
            }
            Some(String::new())
        });
        checked.push(found.unwrap_or_default());
        let message_is_bool = crate::cel::compile(&r.message_expression)
            .ok()
            .and_then(|m| crate::typecheck::is_bool(&m, s))
            .unwrap_or(false);
        message_bool.push(message_is_bool);
    }
    for (i, r) in s.rules.iter_mut().enumerate() {
        let p = format!("{path}.x-kubernetes-validations[{i}]");
        r.program = None;
        r.message_program = None;
        if r.rule.trim().is_empty() {
            continue;
        }
        match crate::cel::compile(&r.rule) {
            Ok(_) if !checked[i].is_empty() => errs.push(FieldError::invalid_shown(
                format!("{p}.rule"),
                rule_shown(r),
                checked[i].clone(),
            )),
            Ok(program) => r.program = Some(program),
            Err(e) => errs.push(FieldError::invalid_shown(
                format!("{p}.rule"),
                rule_shown(r),
                format!("compilation failed: {e}"),
            )),
        }
        if !r.message_expression.trim().is_empty() {
            match crate::cel::compile(&r.message_expression) {
                Ok(_) if message_bool[i] => {
                    errs.push(FieldError::invalid_shown(
                        format!("{p}.messageExpression"),
                        rule_shown(r),
                        "messageExpression must evaluate to a string",
                    ));
                }
                Ok(program) => r.message_program = Some(program),
                Err(e) => errs.push(FieldError::invalid_shown(
                    format!("{p}.messageExpression"),
                    rule_shown(r),
                    format!("messageExpression compilation failed: {e}"),
                )),
            }
        }
        if r.uses_old_self() {
            if let Some(at) = &ctx.uncorrelatable {
                errs.push(FieldError::invalid(
                    format!("{p}.rule"),
                    r.rule.clone(),
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {at}"),
                ));
            }
        } else if let Some(o) = r.optional_old_self {
            if r.program.is_some() {
                errs.push(FieldError::invalid(
                    format!("{p}.optionalOldSelf"),
                    o,
                    "may not be set if oldSelf is not used in rule",
                ));
            }
        }
    }
}
