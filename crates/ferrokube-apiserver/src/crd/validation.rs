//! Validation of CustomResourceDefinitions, as Kubernetes'
//! `apiextensions/validation`: the name (`<plural>.<group>`), the group,
//! scope, versions (names, exactly one storage version), the schemas
//! (required, structural: `ferrokube-schema` says why not), subresources,
//! printer columns, selectable fields, conversion, names, the stored
//! versions, the approval annotation of protected groups, and on update
//! what may not change. Messages and field paths are Kubernetes' (paths of
//! its internal form: a part the same in every version is reported at the
//! top, see [`super::spec`]).

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1035_label, is_dns1123_subdomain};
use serde_json::Value;

use super::schema::Schema;
use super::spec::{self, Parts};
use crate::strategy::validate_metadata;

/// The printer column types (sorted, as Kubernetes lists them).
const COLUMN_TYPES: &str = "boolean,date,integer,number,string";
/// The printer column formats.
const COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
/// The annotation protected groups need.
const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";

/// What differs between create and update.
#[derive(Clone, Copy)]
struct Options {
    /// Every version must have a schema (false on update of a CRD that
    /// already lacked one: validation is not tightened on stored data).
    require_schema: bool,
}

/// The errors in a new CRD.
pub(crate) fn validate_create(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut errs = metadata(def, obj);
    errs.extend(validate_spec(
        obj,
        Options {
            require_schema: true,
        },
    ));
    errs.extend(status_names(obj));
    errs.extend(stored_versions(obj));
    errs.extend(api_approval(obj, None));
    errs.extend(preserve_unknown_fields(obj, None));
    errs
}

/// The errors in an update of `old` to `new` through the object itself.
pub(crate) fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_metadata(def, new);
    let opts = Options {
        require_schema: all_versions_have_schemas(old),
    };
    errs.extend(validate_spec(new, opts));
    errs.extend(immutable(old, new));
    errs.extend(status_names(new));
    errs.extend(stored_versions(new));
    errs.extend(api_approval(new, Some(old)));
    errs.extend(preserve_unknown_fields(new, Some(old)));
    errs
}

/// The errors in a write of `new` through `/status`.
pub(crate) fn validate_status_update(def: &ResourceDef, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_metadata(def, new);
    errs.extend(status_names(new));
    errs
}

/// Metadata, with the name `<plural>.<group>`.
fn metadata(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_metadata(def, obj);
    let (group, plural) = spec::group_plural(obj);
    let required = format!("{plural}.{group}");
    let s = |k: &str| obj.pointer(k).and_then(Value::as_str).unwrap_or_default();
    let (field, name) = match (s("/metadata/name"), s("/metadata/generateName")) {
        ("", "") => return errs,
        ("", generated) => ("metadata.generateName", generated),
        (name, _) => ("metadata.name", name),
    };
    if name != required {
        let at = errs
            .iter()
            .rposition(|e| e.field == field)
            .map_or(0, |i| i + 1);
        errs.insert(
            at,
            FieldError::invalid(field, name, r#"must be spec.names.plural+"."+spec.group"#),
        );
    }
    errs
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `ValidateCustomResourceDefinitionSpec`.
fn validate_spec(obj: &Value, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = str_at(obj, "/spec/group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if let m @ [_, ..] = is_dns1123_subdomain(group).as_slice() {
        errs.push(FieldError::invalid("spec.group", group, m.join(",")));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    match str_at(obj, "/spec/scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let parts = Parts::of(obj);
    errs.extend(required_schemas(obj, parts, opts));
    errs.extend(versions(obj, parts));
    for (field, key) in [
        ("plural", "plural"),
        ("singular", "singular"),
        ("kind", "kind"),
        ("listKind", "listKind"),
    ] {
        if str_at(obj, &format!("/spec/names/{key}")).is_empty() {
            errs.push(FieldError::required(format!("spec.names.{field}"), ""));
        }
    }
    errs.extend(names(obj.pointer("/spec/names"), "spec.names"));
    errs.extend(hoisted_parts(obj, parts));
    errs.extend(conversion(obj));
    errs
}

/// Every version without a schema, when schemas are required.
fn required_schemas(obj: &Value, parts: Parts, opts: Options) -> Vec<FieldError> {
    let vs = spec::versions(obj);
    let has = |v: &Value| {
        v.pointer("/schema/openAPIV3Schema")
            .is_some_and(|s| !s.is_null())
    };
    if parts.schema && vs.first().is_some_and(has) {
        return Vec::new();
    }
    let mut errs = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
        if opts.require_schema && !has(v) {
            errs.push(FieldError::required(path, "schemas are required"));
        } else if !opts.require_schema
            && v.get("served").and_then(Value::as_bool) == Some(true)
            && !has(v)
        {
            errs.push(FieldError::required(
                path,
                "because otherwise all fields are pruned",
            ));
        }
    }
    errs
}

fn all_versions_have_schemas(obj: &Value) -> bool {
    spec::versions(obj).iter().all(|v| {
        v.pointer("/schema/openAPIV3Schema")
            .is_some_and(|s| !s.is_null())
    })
}

/// The versions: names, their own parts, unique names, one storage version.
fn versions(obj: &Value, parts: Parts) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let vs = spec::versions(obj);
    let mut seen = std::collections::BTreeSet::new();
    let mut unique = true;
    let mut storage = 0;
    for (i, v) in vs.iter().enumerate() {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        unique &= seen.insert(name);
        if let m @ [_, ..] = is_dns1035_label(name).as_slice() {
            errs.push(FieldError::invalid(
                format!("spec.versions[{i}].name"),
                name,
                m.join(","),
            ));
        }
        errs.extend(version(obj, v, i, parts));
    }
    let shown = || versions_shown(vs);
    if !unique {
        errs.push(FieldError::invalid_shown(
            "spec.versions",
            shown(),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid_shown(
            "spec.versions",
            shown(),
            "must have exactly one version marked as storage version",
        ));
    }
    errs
}

/// The versions as Go prints Kubernetes' internal slice (`%#v`), pointers
/// by whether they are set.
fn versions_shown(vs: &[Value]) -> String {
    let ptr = |v: &Value, key: &str, ty: &str| match v.get(key) {
        Some(x) if !x.is_null() => format!("(*apiextensions.{ty})({{...}})"),
        _ => format!("(*apiextensions.{ty})(nil)"),
    };
    let items: Vec<String> = vs
        .iter()
        .map(|v| {
            let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{:?}, Served:{}, Storage:{}, Deprecated:{}, DeprecationWarning:{}, Schema:{}, Subresources:{}, AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition(nil), SelectableFields:[]apiextensions.SelectableField(nil)}}",
                v.get("name").and_then(Value::as_str).unwrap_or_default(),
                b("served"),
                b("storage"),
                b("deprecated"),
                match v.get("deprecationWarning").and_then(Value::as_str) {
                    Some(_) => "(*string)({...})".to_string(),
                    None => "(*string)(nil)".to_string(),
                },
                ptr(v, "schema", "CustomResourceValidation"),
                ptr(v, "subresources", "CustomResourceSubresources"),
            )
        })
        .collect();
    format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        items.join(", ")
    )
}

/// One version's own parts (those not held at the top).
fn version(obj: &Value, v: &Value, i: usize, parts: Parts) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let base = format!("spec.versions[{i}]");
    let deprecated = v.get("deprecated").and_then(Value::as_bool) == Some(true);
    if let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) {
        for m in deprecation_warning(deprecated, w) {
            errs.push(FieldError::invalid(
                format!("{base}.deprecationWarning"),
                w,
                m,
            ));
        }
    }
    if !parts.schema {
        let subs = if parts.subresources {
            spec::versions(obj)
                .first()
                .and_then(|f| f.get("subresources"))
        } else {
            v.get("subresources")
        };
        let status = subs.is_some_and(|s| s.get("status").is_some_and(|x| !x.is_null()));
        if let Some(schema) = v.pointer("/schema/openAPIV3Schema") {
            errs.extend(schema_errors(schema, &format!("{base}.schema"), status));
        }
    }
    if !parts.subresources {
        errs.extend(subresources(
            v.get("subresources"),
            &format!("{base}.subresources"),
        ));
    }
    if !parts.columns {
        errs.extend(columns(
            v.get("additionalPrinterColumns"),
            &format!("{base}.additionalPrinterColumns"),
        ));
    }
    errs.extend(selectable_fields(v, &base));
    errs
}

fn deprecation_warning(deprecated: bool, w: &str) -> Vec<String> {
    if !deprecated {
        return vec!["can only be set for deprecated versions".into()];
    }
    let mut out = Vec::new();
    if w.len() > 256 {
        out.push("must be <= 256 characters long".into());
    }
    if w.is_empty() {
        out.push("must not be an empty string".into());
    }
    if let Some((i, _)) = w.char_indices().find(|(_, c)| c.is_control()) {
        out.push(format!(
            "must only contain printable UTF-8 characters; control character found at index {i}"
        ));
    }
    out
}

/// The parts held once at the top: the schema (with the status subresource
/// of any version), the subresources and the printer columns.
fn hoisted_parts(obj: &Value, parts: Parts) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(first) = spec::versions(obj).first() else {
        return errs;
    };
    if parts.schema {
        let any_status = spec::versions(obj).iter().any(|v| {
            v.pointer("/subresources/status")
                .is_some_and(|x| !x.is_null())
        });
        if let Some(schema) = first.pointer("/schema/openAPIV3Schema") {
            errs.extend(schema_errors(schema, "spec.validation", any_status));
        }
    }
    if parts.subresources {
        errs.extend(subresources(first.get("subresources"), "spec.subresources"));
    }
    if parts.columns {
        errs.extend(columns(
            first.get("additionalPrinterColumns"),
            "spec.additionalPrinterColumns",
        ));
    }
    errs
}

/// `validateCustomResourceDefinitionValidation` at `base`
/// (`spec.validation` or `spec.versions[i].schema`).
fn schema_errors(schema: &Value, base: &str, status_enabled: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if status_enabled {
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            if t != "object" {
                errs.push(FieldError::invalid(
                    format!("{base}.openAPIV3Schema.type"),
                    t,
                    r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#,
                ));
            }
        }
    }
    if let Err(e) = Schema::parse(schema, &format!("{base}.openAPIV3Schema")) {
        errs.extend(e);
    }
    errs
}

/// `ValidateCustomResourceDefinitionSubresources`.
fn subresources(subs: Option<&Value>, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(scale) = subs.and_then(|s| s.get("scale")).filter(|s| !s.is_null()) else {
        return errs;
    };
    let path = |p: &str| scale.get(p).and_then(Value::as_str).unwrap_or_default();
    for (key, under) in [
        ("specReplicasPath", ".spec."),
        ("statusReplicasPath", ".status."),
    ] {
        let field = format!("{base}.scale.{key}");
        let p = path(key);
        if p.is_empty() {
            errs.push(FieldError::required(field, ""));
        } else if let Some(e) = simple_json_path(p, &field) {
            errs.push(e);
        } else if !p.starts_with(under) {
            let what = under.trim_end_matches('.');
            errs.push(FieldError::invalid(
                field,
                p,
                format!("should be a json path under {what}"),
            ));
        }
    }
    let selector = path("labelSelectorPath");
    if !selector.is_empty() {
        let field = format!("{base}.scale.labelSelectorPath");
        if let Some(e) = simple_json_path(selector, &field) {
            errs.push(e);
        } else if !selector.starts_with(".spec.") && !selector.starts_with(".status.") {
            errs.push(FieldError::invalid(
                field,
                selector,
                "should be a json path under either .spec or .status",
            ));
        }
    }
    errs
}

/// `validateSimpleJSONPath`.
fn simple_json_path(s: &str, field: &str) -> Option<FieldError> {
    if s.is_empty() {
        Some(FieldError::invalid(field, s, "must not be empty"))
    } else if !s.starts_with('.') {
        Some(FieldError::invalid(
            field,
            s,
            "must be a simple json path starting with .",
        ))
    } else {
        None
    }
}

/// `ValidateCustomResourceColumnDefinition` for each column.
fn columns(cols: Option<&Value>, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let cols = cols
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, col) in cols.iter().enumerate() {
        let at = |f: &str| format!("{base}[{i}].{f}");
        let s = |k: &str| col.get(k).and_then(Value::as_str).unwrap_or_default();
        if s("name").is_empty() {
            errs.push(FieldError::required(at("name"), ""));
        }
        let ty = s("type");
        if ty.is_empty() {
            errs.push(FieldError::required(
                at("type"),
                format!("must be one of {COLUMN_TYPES}"),
            ));
        } else if !COLUMN_TYPES.split(',').any(|t| t == ty) {
            errs.push(FieldError::invalid(
                at("type"),
                ty,
                format!("must be one of {COLUMN_TYPES}"),
            ));
        }
        let format = s("format");
        if !format.is_empty() && !COLUMN_FORMATS.split(',').any(|f| f == format) {
            errs.push(FieldError::invalid(
                at("format"),
                format,
                format!("must be one of {COLUMN_FORMATS}"),
            ));
        }
        let path = s("jsonPath");
        if path.is_empty() {
            errs.push(FieldError::required(at("JSONPath"), ""));
        } else if let Some(e) = simple_json_path(path, &at("JSONPath")) {
            errs.push(e);
        }
    }
    errs
}

/// A version's `selectableFields`: each a path into the schema, not into
/// metadata, unique.
fn selectable_fields(v: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(fields) = v
        .get("selectableFields")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return errs;
    };
    if v.pointer("/schema/openAPIV3Schema").is_none() {
        errs.push(FieldError::invalid(
            format!("{base}.selectableFields"),
            "",
            "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
        ));
        return errs;
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, f) in fields.iter().enumerate() {
        let field = format!("{base}.selectableFields[{i}].jsonPath");
        let path = f
            .get("jsonPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if path.is_empty() {
            errs.push(FieldError::required(field, ""));
            continue;
        }
        if path == ".metadata" || path.starts_with(".metadata.") {
            errs.push(FieldError::invalid(
                &field,
                path,
                "must not point to fields in metadata",
            ));
        }
        if !seen.insert(path) {
            errs.push(FieldError::duplicate(field, path));
        }
    }
    if seen.len() > MAX_SELECTABLE_FIELDS {
        errs.push(FieldError::too_many(
            format!("{base}.selectableFields"),
            seen.len() as i64,
            MAX_SELECTABLE_FIELDS as i64,
        ));
    }
    errs
}

/// Kubernetes' `MaxSelectableFields`.
const MAX_SELECTABLE_FIELDS: usize = 8;

/// `validateCustomResourceConversion` at `spec.conversion` (internal
/// paths: `webhookClientConfig`, `conversionReviewVersions`), after the
/// rule that a webhook needs `preserveUnknownFields` false.
fn conversion(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(c) = obj.pointer("/spec/conversion").filter(|c| !c.is_null()) else {
        return errs;
    };
    let strategy = c
        .get("strategy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let preserve = obj
        .pointer("/spec/preserveUnknownFields")
        .and_then(Value::as_bool);
    if strategy != "None" && preserve == Some(true) {
        errs.push(FieldError::invalid(
            "spec.conversion.strategy",
            strategy,
            "must be None if spec.preserveUnknownFields is true",
        ));
    }
    match strategy {
        "" => errs.push(FieldError::required("spec.conversion.strategy", "")),
        "None" | "Webhook" => {}
        other => errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
    let webhook = c.get("webhook").filter(|w| !w.is_null());
    let client_config = webhook
        .and_then(|w| w.get("clientConfig"))
        .filter(|x| !x.is_null());
    let review_versions: &[Value] = webhook
        .and_then(|w| w.get("conversionReviewVersions"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if strategy != "Webhook" {
        if client_config.is_some() {
            errs.push(FieldError::forbidden(
                "spec.conversion.webhookClientConfig",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !review_versions.is_empty() {
            errs.push(FieldError::forbidden(
                "spec.conversion.conversionReviewVersions",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        return errs;
    }
    const CC: &str = "spec.conversion.webhookClientConfig";
    match client_config {
        None => errs.push(FieldError::required(
            CC,
            "required when strategy is set to Webhook",
        )),
        Some(cc) => {
            let url = cc.get("url").and_then(Value::as_str);
            let svc = cc.get("service").filter(|s| s.is_object());
            match (url, svc) {
                (Some(u), None) => crate::kinds::admissionregistration::webhook_url(
                    u,
                    &format!("{CC}.url"),
                    &mut errs,
                ),
                (None, Some(s)) => crate::kinds::admissionregistration::webhook_service(
                    s,
                    &format!("{CC}.service"),
                    &mut errs,
                ),
                _ => errs.push(FieldError::required(
                    CC,
                    "exactly one of url or service is required",
                )),
            }
        }
    }
    errs.extend(review_versions_errors(review_versions));
    errs
}

/// `validateConversionReviewVersions` (a version this server speaks
/// required).
fn review_versions_errors(versions: &[Value]) -> Vec<FieldError> {
    const FIELD: &str = "spec.conversion.conversionReviewVersions";
    let mut errs = Vec::new();
    if versions.is_empty() {
        errs.push(FieldError::required(FIELD, ""));
        return errs;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        let v = v.as_str().unwrap_or_default();
        let field = format!("{FIELD}[{i}]");
        if !seen.insert(v) {
            errs.push(FieldError::invalid(field, v, "duplicate version"));
            continue;
        }
        for m in is_dns1035_label(v) {
            errs.push(FieldError::invalid(&field, v, m));
        }
        accepted |= matches!(v, "v1" | "v1beta1");
    }
    if !accepted {
        errs.push(FieldError::invalid_shown(
            FIELD,
            format!(
                "[]string{{{}}}",
                versions
                    .iter()
                    .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "must include at least one of v1, v1beta1",
        ));
    }
    errs
}

/// `ValidateCustomResourceDefinitionNames` of `names` at `base`.
pub(crate) fn names(names: Option<&Value>, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(n) = names else {
        return errs;
    };
    let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or_default();
    let list = |k: &str| -> Vec<&str> {
        n.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    for key in ["plural", "singular"] {
        let v = s(key);
        if let m @ [_, ..] = is_dns1035_label(v).as_slice() {
            if !v.is_empty() {
                errs.push(FieldError::invalid(format!("{base}.{key}"), v, m.join(",")));
            }
        }
    }
    for key in ["kind", "listKind"] {
        let v = s(key);
        if let m @ [_, ..] = is_dns1035_label(&v.to_lowercase()).as_slice() {
            if !v.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{base}.{key}"),
                    v,
                    format!(
                        "may have mixed case, but should otherwise match: {}",
                        m.join(",")
                    ),
                ));
            }
        }
    }
    for (i, short) in list("shortNames").into_iter().enumerate() {
        if let m @ [_, ..] = is_dns1035_label(short).as_slice() {
            errs.push(FieldError::invalid(
                format!("{base}.shortNames[{i}]"),
                short,
                m.join(","),
            ));
        }
    }
    if !s("kind").is_empty() && s("kind") == s("listKind") {
        errs.push(FieldError::invalid(
            format!("{base}.listKind"),
            s("listKind"),
            "kind and listKind may not be the same",
        ));
    }
    for (i, cat) in list("categories").into_iter().enumerate() {
        if let m @ [_, ..] = is_dns1035_label(cat).as_slice() {
            errs.push(FieldError::invalid(
                format!("{base}.categories[{i}]"),
                cat,
                m.join(","),
            ));
        }
    }
    errs
}

fn status_names(obj: &Value) -> Vec<FieldError> {
    names(obj.pointer("/status/acceptedNames"), "status.acceptedNames")
}

/// `ValidateCustomResourceDefinitionStoredVersions`.
fn stored_versions(obj: &Value) -> Vec<FieldError> {
    let stored = spec::stored_versions(obj);
    let shown = || {
        let items: Vec<String> = stored.iter().map(|s| format!("{s:?}")).collect();
        if items.is_empty() {
            "[]string(nil)".to_string()
        } else {
            format!("[]string{{{}}}", items.join(", "))
        }
    };
    let field = "status.storedVersions";
    if stored.is_empty() {
        return vec![FieldError::invalid_shown(
            field,
            shown(),
            "must have at least one stored version",
        )];
    }
    let mut errs = Vec::new();
    let vs = spec::versions(obj);
    let name = |v: &Value| {
        v.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for v in vs {
        if v.get("storage").and_then(Value::as_bool) == Some(true) && !stored.contains(&name(v)) {
            errs.push(FieldError::invalid_shown(
                field,
                shown(),
                format!("must have the storage version {}", name(v)),
            ));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if !vs.iter().any(|v| name(v) == *s) {
            errs.push(FieldError::invalid(
                format!("{field}[{i}]"),
                s.as_str(),
                format!("missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {s} and removes {s} from status.storedVersions"),
            ));
        }
    }
    errs
}

/// Fields that may not change: group and plural always; scope and kind
/// once the CRD is Established.
fn immutable(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let established = super::conditions::is_true(old, "Established");
    let mut check = |pointer: &str, field: &str| {
        let (o, n) = (str_at(old, pointer), str_at(new, pointer));
        if o != n {
            errs.push(FieldError::invalid(field, n, "field is immutable"));
        }
    };
    if established {
        check("/spec/scope", "spec.scope");
        check("/spec/names/kind", "spec.names.kind");
    }
    check("/spec/group", "spec.group");
    check("/spec/names/plural", "spec.names.plural");
    errs
}

/// Whether `group` is one only the Kubernetes project may define
/// (`*.k8s.io`, `*.kubernetes.io`).
fn protected_group(group: &str) -> bool {
    ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")))
}

/// Whether `v` is an absolute URL (scheme and host), as Go's `url.Parse`
/// with a host sees it.
fn is_url(v: &str) -> bool {
    v.split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
}

/// The approval state of `crd`: `Ok` approved or bypassed, else the error.
fn approval(crd: &Value) -> Result<(), FieldError> {
    let field = format!("metadata.annotations[{APPROVAL_ANNOTATION}]");
    match crd
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(APPROVAL_ANNOTATION))
        .and_then(Value::as_str)
    {
        None => Err(FieldError::required(
            field,
            format!("protected groups must have approval annotation {APPROVAL_ANNOTATION:?}, see https://github.com/kubernetes/enhancements/pull/1111"),
        )),
        Some(v) if v.starts_with("unapproved") || is_url(v) => Ok(()),
        Some(v) => Err(FieldError::invalid(
            field,
            v,
            format!("protected groups must have approval annotation {APPROVAL_ANNOTATION:?} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"),
        )),
    }
}

/// `validateAPIApproval`: unchanged approval states are never refused.
fn api_approval(new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    if !protected_group(str_at(new, "/spec/group")) {
        return Vec::new();
    }
    let annotation = |o: &Value| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(APPROVAL_ANNOTATION))
            .cloned()
    };
    if old.is_some_and(|o| annotation(o) == annotation(new)) {
        return Vec::new();
    }
    approval(new).err().into_iter().collect()
}

/// `validatePreserveUnknownFields`: `spec.preserveUnknownFields` may not
/// become true.
fn preserve_unknown_fields(new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let on = |o: &Value| {
        o.pointer("/spec/preserveUnknownFields")
            .and_then(Value::as_bool)
            == Some(true)
    };
    if old.is_some_and(on) || !on(new) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "spec.preserveUnknownFields",
        true,
        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    )]
}

#[cfg(test)]
mod tests;
