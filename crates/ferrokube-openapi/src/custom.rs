//! Custom resources' definitions, as Kubernetes' CRD OpenAPI builder
//! (apiextensions-apiserver's `controller/openapi/builder`) publishes them:
//! the kind under `<reversed group>.<version>.<Kind>` and its list kind,
//! each tagged with `x-kubernetes-group-version-kind`; `apiVersion`, `kind`
//! and `metadata` (a reference to ObjectMeta) added to the CRD's schema;
//! `x-kubernetes-embedded-resource` objects given the same three fields.
//! OpenAPI v3 carries the schema as the CRD declares it (with
//! `x-kubernetes-int-or-string` unfolded into `anyOf` integer/string);
//! Swagger 2.0 gets the v2 conversion (`ToStructuralOpenAPIV2`), which is
//! what kubectl's validation and `explain` read from `/openapi/v2`.

use serde_json::{json, Map, Value};

const V3_PREFIX: &str = "#/components/schemas/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DOC: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DOC: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A custom resource's schema in one served version, as its
/// CustomResourceDefinition declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSchema {
    /// `spec.group`, e.g. `stable.example.com`.
    pub group: String,
    /// The version's name, e.g. `v1`.
    pub version: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.names.listKind` (`<Kind>List` by default).
    pub list_kind: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// The version's `schema.openAPIV3Schema`; `None` when it has none
    /// (then the kind is published as an untyped object).
    pub schema: Option<Value>,
    /// `spec.preserveUnknownFields`: v2 then publishes an untyped object.
    pub preserve_unknown_fields: bool,
    /// The version's `selectableFields[].jsonPath` (`.spec.color`),
    /// published as `x-kubernetes-selectable-fields`.
    pub selectable_fields: Vec<String>,
}

/// `stable.example.com/v1/CronTab` → `com.example.stable.v1.CronTab`
/// (kube-openapi's `ToRESTFriendlyName`).
pub(crate) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    let group = reversed.join(".");
    if group.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{group}.{version}.{kind}")
    }
}

/// The kind's definitions: (name, v3 schema, v2 schema) for the kind, then
/// (name, schema) for its list (the same in both, references in v3 form).
pub(crate) struct Published {
    pub(crate) name: String,
    pub(crate) v3: Value,
    pub(crate) v2: Value,
    pub(crate) list_name: String,
    pub(crate) list: Value,
}

fn gvk(c: &CustomSchema, kind: &str) -> Value {
    json!([{"group": c.group, "version": c.version, "kind": kind}])
}

fn reference(name: &str, description: &str) -> Value {
    json!({"$ref": format!("{V3_PREFIX}{name}"), "description": description})
}

/// Both documents' definitions for `c`.
pub(crate) fn publish(c: &CustomSchema) -> Published {
    let name = definition_name(&c.group, &c.version, &c.kind);
    let untyped = || json!({"type": "object", "x-kubernetes-group-version-kind": gvk(c, &c.kind)});
    let (v3, v2) = match &c.schema {
        None => (untyped(), untyped()),
        Some(schema) => {
            let mut v3 = schema.clone();
            unfold_int_or_string(&mut v3);
            kube_native(&mut v3, c, false);
            let preserve_root = c.preserve_unknown_fields
                || schema
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    == Some(true);
            let v2 = if preserve_root {
                untyped()
            } else {
                let mut v2 = schema.clone();
                to_structural_v2(&mut v2);
                prune_defaults(&mut v2);
                kube_native(&mut v2, c, true);
                v2
            };
            (v3, v2)
        }
    };
    let (mut v3, mut v2) = (v3, v2);
    if !c.selectable_fields.is_empty() {
        let fields: Vec<Value> = c
            .selectable_fields
            .iter()
            .map(|p| json!({"fieldPath": p.trim_start_matches('.')}))
            .collect();
        for def in [&mut v3, &mut v2] {
            if let Value::Object(def) = def {
                def.insert("x-kubernetes-selectable-fields".into(), json!(fields));
            }
        }
    }
    let list_name = definition_name(&c.group, &c.version, &c.list_kind);
    let list = json!({
        "description": format!("{} is a list of {}", c.list_kind, c.kind),
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "kind": {"type": "string", "description": KIND_DOC},
            "items": {
                "type": "array",
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", c.plural),
                "items": {"$ref": format!("{V3_PREFIX}{name}")},
            },
            "metadata": reference(&format!("{META}.ListMeta"), LIST_METADATA_DOC),
        },
        "x-kubernetes-group-version-kind": gvk(c, &c.list_kind),
    });
    Published {
        name,
        v3,
        v2,
        list_name,
        list,
    }
}

/// The top level as Kubernetes publishes it: the schema plus `apiVersion`,
/// `kind`, `metadata`, embedded resources' fields, and the kind's tag.
fn kube_native(schema: &mut Value, c: &CustomSchema, v2: bool) {
    let Value::Object(top) = schema else {
        return;
    };
    let props = top
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(props) = props {
        props.insert(
            "metadata".into(),
            reference(&format!("{META}.ObjectMeta"), METADATA_DOC),
        );
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": API_VERSION_DOC}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": KIND_DOC}),
        );
    }
    add_embedded(schema, v2);
    if let Value::Object(top) = schema {
        top.insert("x-kubernetes-group-version-kind".into(), gvk(c, &c.kind));
    }
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

/// The schemas directly under `s`: properties, items, additionalProperties
/// and the junctors' branches.
fn children(s: &mut Map<String, Value>) -> Vec<&mut Value> {
    let mut out = Vec::new();
    for (key, value) in s.iter_mut() {
        match (key.as_str(), value) {
            ("properties" | "patternProperties", Value::Object(props)) => {
                out.extend(props.values_mut());
            }
            ("items", Value::Array(items)) => out.extend(items.iter_mut()),
            ("allOf" | "anyOf" | "oneOf", Value::Array(items)) => out.extend(items.iter_mut()),
            ("items" | "additionalProperties" | "not", v @ Value::Object(_)) => out.push(v),
            _ => {}
        }
    }
    out
}

/// `x-kubernetes-embedded-resource` objects get `apiVersion`, `kind` and
/// `metadata`, and require the first two (not in v2 under
/// `x-kubernetes-preserve-unknown-fields`, which kubectl would then check).
fn add_embedded(schema: &mut Value, v2: bool) {
    let Value::Object(s) = schema else { return };
    for child in children(s) {
        add_embedded(child, v2);
    }
    if v2 && flag(s, "x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !flag(s, "x-kubernetes-embedded-resource") {
        return;
    }
    if let Some(props) = s
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": EMBEDDED_API_VERSION_DOC}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": EMBEDDED_KIND_DOC}),
        );
        props.insert(
            "metadata".into(),
            reference(&format!("{META}.ObjectMeta"), METADATA_DOC),
        );
    }
    if let Some(Value::Array(required)) = Some(s.entry("required").or_insert_with(|| json!([]))) {
        for field in ["kind", "apiVersion"] {
            if !required.iter().any(|r| r == field) {
                required.push(json!(field));
            }
        }
    }
}

/// `x-kubernetes-int-or-string` without an integer-or-string `anyOf` gets
/// one (Kubernetes' `Unfold`), in front of an `allOf` when it has another
/// `anyOf`.
fn unfold_int_or_string(schema: &mut Value) {
    let Value::Object(s) = schema else { return };
    for child in children(s) {
        unfold_int_or_string(child);
    }
    if !flag(s, "x-kubernetes-int-or-string") {
        return;
    }
    let int_or_string = json!([{"type": "integer"}, {"type": "string"}]);
    let is_pattern = |v: Option<&Value>| v == Some(&int_or_string);
    let first_all_of = s
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|f| f.get("anyOf"));
    if is_pattern(s.get("anyOf")) || is_pattern(first_all_of) {
        return;
    }
    if s.contains_key("anyOf") {
        let all_of = s.entry("allOf").or_insert_with(|| json!([]));
        if let Value::Array(items) = all_of {
            items.insert(0, json!({"anyOf": int_or_string}));
        }
    } else {
        s.insert("anyOf".into(), int_or_string);
    }
}

/// Kubernetes' `ToStructuralOpenAPIV2`: no junctors; a nullable schema
/// loses its type, items and properties (and leaves its parent's
/// `required`); one that preserves unknown fields loses its items and
/// properties (and its `object` type); an array left without items loses
/// its type.
fn to_structural_v2(schema: &mut Value) {
    let Value::Object(s) = schema else { return };
    for junctor in ["allOf", "oneOf", "anyOf", "not"] {
        s.remove(junctor);
    }
    if flag(s, "nullable") {
        for key in ["type", "items", "properties"] {
            s.remove(key);
        }
    }
    s.remove("nullable");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    if preserve {
        s.remove("items");
        s.remove("properties");
    }
    let ty = s.get("type").and_then(Value::as_str).map(str::to_string);
    if (ty.as_deref() == Some("array") && !s.contains_key("items"))
        || (preserve && ty.as_deref() == Some("object"))
    {
        s.remove("type");
    }
    let nullable_props: Vec<String> = s
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(_, p)| p.get("nullable").and_then(Value::as_bool) == Some(true))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    let nullable_values = s
        .get("additionalProperties")
        .and_then(|a| a.get("nullable"))
        .and_then(Value::as_bool)
        == Some(true);
    if let Some(Value::Array(required)) = s.get_mut("required") {
        required.retain(|r| !nullable_values && !nullable_props.iter().any(|p| r == p));
        if required.is_empty() {
            s.remove("required");
        }
    }
    for child in children(s) {
        to_structural_v2(child);
    }
}

/// Defaults are not published in v2 (Kubernetes prunes them so that CRDs'
/// definitions merge with the built-in ones, which have none).
fn prune_defaults(schema: &mut Value) {
    let Value::Object(s) = schema else { return };
    s.remove("default");
    for child in children(s) {
        prune_defaults(child);
    }
}

#[cfg(test)]
mod tests;
