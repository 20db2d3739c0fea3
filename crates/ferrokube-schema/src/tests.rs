//! Each keyword and feature against Kubernetes' messages and paths.

use super::*;
use serde_json::json;

const B: &str = "spec.versions[0].schema.openAPIV3Schema";

fn texts(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn parse_errors(schema: Json) -> Vec<String> {
    match Structural::parse(&schema, B) {
        Ok(_) => Vec::new(),
        Err(e) => texts(&e),
    }
}

fn schema(s: Json) -> Structural {
    match Structural::parse(&s, B) {
        Ok(s) => s,
        Err(e) => panic!("schema refused: {:?}", texts(&e)),
    }
}

/// A schema whose `spec` is `spec`.
fn with_spec(spec: Json) -> Structural {
    schema(json!({"type": "object", "properties": {"spec": spec}}))
}

fn errors_of(s: &Structural, obj: Json) -> Vec<String> {
    texts(&s.validate(&obj))
}

#[test]
fn structural_schemas_need_types_everywhere() {
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}})),
        [format!("{B}.properties[spec].type: Required value: must not be empty for specified object fields")]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"l": {"type": "array"}}})),
        [format!(
            "{B}.properties[l].items: Required value: must be specified"
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"l": {"type": "array", "items": {}}}})),
        [format!("{B}.properties[l].items.type: Required value: must not be empty for specified array items")]
    );
    assert_eq!(
        parse_errors(json!({})),
        [format!(
            "{B}.type: Required value: must not be empty at the root"
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "nullable": true})),
        [format!(
            "{B}.nullable: Forbidden: nullable cannot be true at the root"
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "string"})),
        [format!(
            r#"{B}.type: Invalid value: "string": must be object at the root"#
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "additionalProperties": {"type": "string"}})),
        [format!(
            "{B}.additionalProperties: Forbidden: must not be used at the root"
        )]
    );
    // Unknown fields preserved and int-or-string fields need no type.
    assert!(parse_errors(json!({"type": "object", "properties": {
        "any": {"x-kubernetes-preserve-unknown-fields": true},
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
    }}))
    .is_empty());
}

#[test]
fn value_validations_only_restrict_specified_fields() {
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"a": {"type": "object",
            "anyOf": [{"type": "string", "description": "d", "nullable": true, "default": 1}]}}})
        ),
        [
            format!(
                "{B}.properties[a].anyOf[0].default: Forbidden: must be undefined to be structural"
            ),
            format!(
                "{B}.properties[a].anyOf[0].description: Forbidden: must be empty to be structural"
            ),
            format!(
                "{B}.properties[a].anyOf[0].nullable: Forbidden: must be false to be structural"
            ),
            format!("{B}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"),
        ]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"a": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"properties": {"b": {"minLength": 1}}}]})),
        [format!("{B}.properties[b]: Required value: because it is defined in {B}.oneOf[1].properties[b]")]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"a": {"type": "object",
            "allOf": [{"x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-list-type": "set",
                       "x-kubernetes-validations": [{"rule": "true"}], "properties": {"metadata": {}}}]}}})),
        [
            format!("{B}.properties[a].allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"),
            format!("{B}.properties[a].allOf[0].x-kubernetes-list-type: Forbidden: must be undefined to be structural"),
            format!("{B}.properties[a].allOf[0].x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural"),
            format!("{B}.properties[a].allOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"),
            // The CRD's own checks follow the structural ones, and look into allOf too.
            format!("{B}.properties[a].allOf[0].type: Required value: must be array if x-kubernetes-list-type is specified"),
        ]
    );
}

#[test]
fn metadata_and_embedded_resources() {
    assert!(parse_errors(
        json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 10}}}}})
    )
    .is_empty());
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"labels": {"type": "object"}}}}})),
        [format!("{B}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"kind": {"type": "integer"}}})),
        [format!(
            r#"{B}.properties[kind].type: Invalid value: "integer": must be string"#
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"t": {"type": "object", "x-kubernetes-embedded-resource": true}}})),
        [format!("{B}.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields")]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"t": {"x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true}}})),
        [format!("{B}.properties[t].type: Required value: must be object if x-kubernetes-embedded-resource is true")]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true,
            "x-kubernetes-preserve-unknown-fields": true}}})),
        [format!("{B}.properties[p].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true")]
    );
}

#[test]
fn keywords_kubernetes_refuses() {
    let s = |props: Json| parse_errors(json!({"type": "object", "properties": {"a": props}}));
    let a = format!("{B}.properties[a]");
    assert_eq!(
        s(json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true})),
        [format!("{a}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic")]
    );
    assert_eq!(
        s(json!({"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}})),
        [format!("{a}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")]
    );
    assert_eq!(
        s(json!({"type": "string", "$ref": "#/x"})),
        [format!("{a}.$ref: Forbidden: $ref is not supported")]
    );
    assert_eq!(
        s(json!({"type": "object", "patternProperties": {"^a": {"type": "string"}}})),
        [format!(
            "{a}.patternProperties: Forbidden: patternProperties is not supported"
        )]
    );
    assert_eq!(
        s(json!({"type": "foo"})),
        [format!(
            r#"{a}.type: Unsupported value: "foo": supported values: "array", "boolean", "integer", "number", "object", "string""#
        )]
    );
    assert_eq!(
        s(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false})),
        [format!("{a}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined")]
    );
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})
        ),
        [format!(
            "{B}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
        )]
    );
    assert_eq!(
        s(json!({"type": "string", "pattern": "(a"})).len(),
        1,
        "an invalid pattern is refused"
    );
}

#[test]
fn list_and_map_types() {
    let s = |props: Json| parse_errors(json!({"type": "object", "properties": {"l": props}}));
    let l = format!("{B}.properties[l]");
    assert_eq!(
        s(json!({"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"name": {"type": "string"}}}})),
        [format!("{l}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map")]
    );
    assert_eq!(
        s(
            json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"port": {"type": "integer"}}}})
        ),
        [format!(
            r#"{l}.x-kubernetes-list-map-keys: Invalid value: []string{{"name"}}: entries must all be names of item properties"#
        )]
    );
    assert_eq!(
        s(json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}}})),
        [format!("{l}.items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property")]
    );
    assert_eq!(
        s(json!({"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}})),
        [format!(
            r#"{l}.x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#
        )]
    );
    assert_eq!(
        s(json!({"type": "string", "x-kubernetes-list-type": "set"})),
        [format!(
            r#"{l}.type: Invalid value: "string": must be array if x-kubernetes-list-type is specified"#
        )]
    );
    assert_eq!(
        s(json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-map-type": "atomic"})),
        [format!(
            r#"{l}.type: Invalid value: "array": must be object if x-kubernetes-map-type is specified"#
        )]
    );
    assert_eq!(
        s(json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-map-keys": ["a"]})),
        [format!("{l}.x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty")]
    );
}

#[test]
fn rules_are_checked_and_compiled() {
    let s = |rule: Json| {
        parse_errors(
            json!({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-validations": [rule]}}}),
        )
    };
    let v = format!("{B}.properties[a].x-kubernetes-validations[0]");
    assert_eq!(
        s(json!({"rule": " "})),
        [format!("{v}.rule: Required value: rule is not specified")]
    );
    assert_eq!(
        s(json!({"rule": "self != ''", "reason": "Bad"})),
        [format!(
            r#"{v}.reason: Unsupported value: "Bad": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#
        )]
    );
    assert_eq!(
        s(json!({"rule": "self != ''", "message": "a\nb"})),
        [format!(
            "{v}.message: Invalid value: \"a\\nb\": message must not contain line breaks"
        )]
    );
    assert_eq!(
        s(json!({"rule": "self != ''", "fieldPath": ".x"})),
        [format!(
            r#"{v}.fieldPath: Invalid value: ".x": fieldPath must be a valid path"#
        )]
    );
    assert_eq!(
        s(json!({"rule": "self != ''", "optionalOldSelf": true})),
        [format!("{v}.optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule")]
    );
    let bad = s(json!({"rule": "self.a =="}));
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].starts_with(&format!(
            r#"{v}.rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.a ==", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:"#
        )),
        "{bad:?}"
    );
    assert_eq!(
        s(json!({"rule": "self.size()"})),
        [format!(
            r#"{v}.rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.size()", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: cel expression must evaluate to a bool"#
        )]
    );
    assert_eq!(
        s(json!({"rule": "self != ''", "messageExpression": "self == 'x'"})),
        [format!(
            r#"{v}.messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:"self != ''", Message:"", MessageExpression:"self == 'x'", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: messageExpression must evaluate to a string"#
        )]
    );
    assert!(s(json!({"rule": "self.size() > 1 ? self.startsWith('a') : true", "messageExpression": "'bad: ' + self"})).is_empty());
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"l": {"type": "array",
            "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}})
        ),
        [format!(
            r#"{B}.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema within {B}.properties[l]"#
        )]
    );
}

#[test]
fn defaults_must_validate() {
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}})
        ),
        [format!(
            r#"{B}.properties[n].default: Invalid value: "string":  in body must be of type integer: "string""#
        )]
    );
    assert_eq!(
        parse_errors(json!({"type": "object", "properties": {"o": {"type": "object",
            "properties": {"a": {"type": "integer", "maximum": 3}}, "default": {"a": 5}}}})),
        [format!("{B}.properties[o].default.a: Invalid value: 5: a in body should be less than or equal to 3")]
    );
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"o": {"type": "object",
            "properties": {"a": {"type": "integer"}}, "default": {"b": 1}}}})
        ),
        [format!(
            r#"{B}.properties[o].default: Invalid value: {{"b":1}}: must not have unknown fields"#
        )]
    );
    assert_eq!(
        parse_errors(
            json!({"type": "object", "properties": {"o": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 1", "message": "a must exceed 1"}, {"rule": "self == oldSelf"}],
            "properties": {"a": {"type": "integer", "default": 0, "x-kubernetes-validations": [{"rule": "self % 2 == 1"}]}},
            "default": {"a": 1}}}})
        ),
        [
            format!(r#"{B}.properties[o].default: Invalid value: "object": a must exceed 1"#),
            format!(
                r#"{B}.properties[o].properties[a].default: Invalid value: "integer": failed rule: self % 2 == 1"#
            ),
        ]
    );
}

#[test]
fn types_and_nullable() {
    let s = with_spec(json!({"type": "object", "properties": {
        "replicas": {"type": "integer"}, "ratio": {"type": "number"}, "name": {"type": "string"},
        "opt": {"type": "string", "nullable": true}, "flag": {"type": "boolean"},
        "list": {"type": "array", "items": {"type": "string"}}}}));
    let errs = s.validate(&json!({"spec": {"replicas": "3"}}));
    assert_eq!(
        texts(&errs),
        [
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        ]
    );
    assert_eq!(errs[0].reason(), "FieldValueTypeInvalid");
    assert!(errors_of(
        &s,
        json!({"spec": {"replicas": 3.0, "ratio": 1, "opt": null, "flag": false}})
    )
    .is_empty());
    assert_eq!(
        errors_of(
            &s,
            json!({"spec": {"replicas": 3.5, "name": null, "flag": "yes", "list": [1]}})
        ),
        [
            r#"spec.flag: Invalid value: "string": spec.flag in body must be of type boolean: "string""#,
            r#"spec.list[0]: Invalid value: "integer": spec.list[0] in body must be of type string: "integer""#,
            r#"spec.name: Invalid value: "null": spec.name in body must be of type string: "null""#,
            r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#,
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": []})),
        [r#"spec: Invalid value: "array": spec in body must be of type object: "array""#]
    );
}

#[test]
fn numbers() {
    let s = with_spec(json!({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "x": {"type": "integer", "exclusiveMinimum": true, "minimum": 0, "exclusiveMaximum": true, "maximum": 5},
        "m": {"type": "integer", "multipleOf": 3},
        "f": {"type": "number", "maximum": 1.5, "multipleOf": 0.5}}}));
    assert!(errors_of(&s, json!({"spec": {"n": 10, "x": 4, "m": 9, "f": 1.5}})).is_empty());
    assert_eq!(
        errors_of(&s, json!({"spec": {"n": 11, "x": 0, "m": 4, "f": 1.75}})),
        [
            "spec.f: Invalid value: 1.75: spec.f in body should be a multiple of 0.5",
            "spec.f: Invalid value: 1.75: spec.f in body should be less than or equal to 1.5",
            "spec.m: Invalid value: 4: spec.m in body should be a multiple of 3",
            "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
            "spec.x: Invalid value: 0: spec.x in body should be greater than 0",
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"n": 0, "x": 5}})),
        [
            "spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1",
            "spec.x: Invalid value: 5: spec.x in body should be less than 5",
        ]
    );
}

#[test]
fn strings_and_formats() {
    let s = with_spec(json!({"type": "object", "properties": {
        "s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"},
        "t": {"type": "string", "format": "date-time"},
        "d": {"type": "string", "format": "date"},
        "u": {"type": "string", "format": "uuid"},
        "ip": {"type": "string", "format": "ipv4"},
        "b": {"type": "string", "format": "byte"},
        "other": {"type": "string", "format": "k8s-whatever"}}}));
    assert!(errors_of(
        &s,
        json!({"spec": {"s": "abc", "t": "2024-01-02T03:04:05Z", "d": "2024-02-29",
        "u": "123e4567-e89b-12d3-a456-426614174000", "ip": "10.0.0.1", "b": "aGk=", "other": "?"}})
    )
    .is_empty());
    assert_eq!(
        errors_of(&s, json!({"spec": {"s": "abcd"}})),
        ["spec.s: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"s": "a"}})),
        [r#"spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long"#]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"s": "AB"}})),
        [r#"spec.s: Invalid value: "AB": spec.s in body should match '^[a-z]+$'"#]
    );
    assert_eq!(
        errors_of(
            &s,
            json!({"spec": {"t": "2024-01-02T03:04:05", "d": "2023-02-29", "u": "x", "ip": "::1", "b": "%%"}})
        ),
        [
            r#"spec.b: Invalid value: "%%": spec.b in body must be of type byte: "%%""#,
            r#"spec.d: Invalid value: "2023-02-29": spec.d in body must be of type date: "2023-02-29""#,
            r#"spec.ip: Invalid value: "::1": spec.ip in body must be of type ipv4: "::1""#,
            r#"spec.t: Invalid value: "2024-01-02T03:04:05": spec.t in body must be of type date-time: "2024-01-02T03:04:05""#,
            r#"spec.u: Invalid value: "x": spec.u in body must be of type uuid: "x""#,
        ]
    );
}

#[test]
fn enums_arrays_objects_and_required() {
    let s = with_spec(
        json!({"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "mode": {"type": "string", "enum": ["a", "b"]},
        "level": {"type": "integer", "enum": [1, 2]},
        "l": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
        "m": {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "integer"}},
        "closed": {"type": "object", "additionalProperties": false}}}),
    );
    assert!(errors_of(&s, json!({"spec": {"name": "x", "mode": "a", "level": 2, "l": ["a"], "m": {"a": 1}, "closed": {}}})).is_empty());
    let errs = s.validate(&json!({"spec": {"mode": "c", "level": 3, "l": ["a", "b", "c"], "m": {"a": 1, "b": 2, "c": 3}, "closed": {"x": 1}}}));
    assert_eq!(
        texts(&errs),
        [
            r#"spec.closed: Invalid value: "x": spec.closed.x in body is a forbidden property"#,
            "spec.l: Too many: 3: must have at most 2 items",
            r#"spec.level: Unsupported value: 3: supported values: "1", "2""#,
            "spec.m: Too many: 3: must have at most 2 items",
            r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#,
            "spec.name: Required value",
        ]
    );
    assert_eq!(errs[1].reason(), "FieldValueTooMany");
    assert_eq!(
        errors_of(&s, json!({"spec": {"name": "x", "l": [], "m": {}}})),
        [
            "spec.l: Invalid value: 0: spec.l in body should have at least 1 items",
            "spec.m: Invalid value: 0: spec.m in body should have at least 1 properties",
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"name": "x", "m": {"a": "one"}}})),
        [
            r#"spec.m.a: Invalid value: "string": spec.m.a in body must be of type integer: "string""#
        ]
    );
    assert_eq!(
        errors_of(&s, json!({})),
        Vec::<String>::new(),
        "spec itself is not required"
    );
}

#[test]
fn junctors_and_int_or_string() {
    let s = with_spec(json!({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "a": {"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^x"}]},
        "o": {"type": "integer", "oneOf": [{"minimum": 5}, {"maximum": 10}]},
        "n": {"type": "string", "not": {"enum": ["no"]}},
        "all": {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 3}]}}}));
    assert!(errors_of(&s, json!({"spec": {"port": 80}})).is_empty());
    assert!(errors_of(
        &s,
        json!({"spec": {"port": "http", "a": "xyz", "o": 12, "n": "yes", "all": "ab"}})
    )
    .is_empty());
    assert_eq!(
        errors_of(&s, json!({"spec": {"port": true}})),
        [
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            r#"<nil>: Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#,
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer: "boolean""#,
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"a": "ab"}})),
        [
            r#"<nil>: Invalid value: "": "spec.a" must validate at least one schema (anyOf)"#,
            "spec.a: Too long: may not be more than 1 byte",
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"o": 7}})),
        [
            r#"<nil>: Invalid value: "": "spec.o" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"n": "no"}})),
        [r#"<nil>: Invalid value: "": "spec.n" must not validate the schema (not)"#]
    );
    assert_eq!(
        errors_of(&s, json!({"spec": {"all": "abcd"}})),
        [
            "spec.all: Too long: may not be more than 3 bytes",
            r#"<nil>: Invalid value: "": "spec.all" must validate all the schemas (allOf)"#,
        ]
    );
}

#[test]
fn embedded_resources_are_checked() {
    let s = with_spec(json!({"type": "object", "properties": {
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}));
    let ok = json!({"spec": {"template": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}}});
    assert!(s.validate(&ok).is_empty());
    assert_eq!(
        errors_of(
            &s,
            json!({"spec": {"template": {"metadata": {"name": "a/b"}}}})
        ),
        [
            "spec.template.apiVersion: Required value",
            "spec.template.kind: Required value",
            r#"spec.template.metadata.name: Invalid value: "a/b": may not contain '/'"#,
        ]
    );
    assert_eq!(
        errors_of(
            &s,
            json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": "Foo_Bar"}}})
        ),
        [
            r#"spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#,
            r#"spec.template.kind: Invalid value: "Foo_Bar": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
        ]
    );
}

#[test]
fn sets_and_maps_hold_each_element_once() {
    let s = with_spec(json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "protocol"],
            "items": {"type": "object", "required": ["name", "protocol"], "properties": {
                "name": {"type": "string"}, "protocol": {"type": "string"}, "port": {"type": "integer"}}}}}}));
    assert!(errors_of(
        &s,
        json!({"spec": {"tags": ["a", "b"], "ports": [
        {"name": "http", "protocol": "TCP"}, {"name": "http", "protocol": "UDP"}]}})
    )
    .is_empty());
    assert_eq!(
        errors_of(
            &s,
            json!({"spec": {"tags": ["a", "b", "a", "a"], "ports": [
            {"name": "http", "protocol": "TCP", "port": 80}, {"name": "http", "protocol": "TCP", "port": 81}]}})
        ),
        [
            r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"http", "protocol":"TCP"}"#,
            r#"spec.tags[2]: Duplicate value: "a""#,
        ]
    );
    assert_eq!(s.list_type_at(&["spec", "tags"]), Some(ListType::Set));
    assert_eq!(
        s.list_type_at(&["spec", "ports"]),
        Some(ListType::Map(vec!["name".into(), "protocol".into()]))
    );
    assert_eq!(s.list_type_at(&["spec"]), None);
    assert_eq!(s.list_type_at(&["spec", "nope"]), None);
}

#[test]
fn pruning_drops_unknown_fields_and_names_them() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"known": {"type": "object", "properties": {"k": {"type": "string"}}}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}}}}}}));
    let mut obj = json!({
        "apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "labels": {"a": "b"}},
        "status": {"x": 1},
        "spec": {
            "foo": 1,
            "list": [{"a": "x", "bar": 2}],
            "labels": {"any": "thing"},
            "free": {"anything": {"goes": true}, "known": {"k": "v", "drop": 1}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "x": 1}, "spec": {"x": "y", "z": 1}, "other": 1}}});
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        [
            "spec.foo",
            "spec.free.known.drop",
            "spec.list[0].bar",
            "spec.template.metadata.x",
            "spec.template.other",
            "spec.template.spec.z",
            "status"
        ]
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "labels": {"a": "b"}},
            "spec": {
                "list": [{"a": "x"}],
                "labels": {"any": "thing"},
                "free": {"anything": {"goes": true}, "known": {"k": "v"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": null}, "spec": {"x": "y"}}}})
    );
}

#[test]
fn defaults_apply_at_every_depth() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "default": {}, "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "auto"},
            "maybe": {"type": "string", "nullable": true, "default": "d"},
            "gone": {"type": "string"},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}}},
            "limits": {"type": "object", "additionalProperties": {"type": "object", "default": {}, "properties": {
                "max": {"type": "integer", "default": 10}}}},
            "notes": {"type": "object", "additionalProperties": {"type": "string"}}}}}}));
    let mut empty = json!({});
    s.apply_defaults(&mut empty);
    assert_eq!(
        empty,
        json!({"spec": {"replicas": 1, "mode": "auto", "maybe": "d"}})
    );
    let mut obj = json!({"spec": {"replicas": null, "maybe": null, "gone": null, "mode": "manual",
        "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}], "limits": {"cpu": {}, "mem": null},
        "notes": {"a": null, "b": "x"}}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 1, "maybe": null, "mode": "manual",
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "limits": {"cpu": {"max": 10}, "mem": {"max": 10}}, "notes": {"b": "x"}}})
    );
}

fn rule_schema(spec_rules: Json) -> Structural {
    with_spec(
        json!({"type": "object", "x-kubernetes-validations": spec_rules, "properties": {
        "min": {"type": "integer"}, "max": {"type": "integer"}, "name": {"type": "string"}}}),
    )
}

#[test]
fn rule_failures_use_message_expression_message_or_the_rule() {
    let obj = json!({"spec": {"min": 5, "max": 1, "name": "x"}});
    let cases = [
        (
            json!({"rule": "self.min <= self.max"}),
            r#"spec: Invalid value: "object": failed rule: self.min <= self.max"#,
        ),
        (
            json!({"rule": "self.min <= self.max", "message": "min must not exceed max"}),
            r#"spec: Invalid value: "object": min must not exceed max"#,
        ),
        (
            json!({"rule": "self.min <= self.max", "message": "m", "messageExpression": "'min ' + string(self.min) + ' exceeds max ' + string(self.max)"}),
            r#"spec: Invalid value: "object": min 5 exceeds max 1"#,
        ),
        (
            json!({"rule": "self.min <= self.max", "messageExpression": "''"}),
            r#"spec: Invalid value: "object": failed rule: self.min <= self.max"#,
        ),
        (
            json!({"rule": "self.min <= self.max", "reason": "FieldValueForbidden", "message": "no"}),
            "spec: Forbidden: no",
        ),
        (
            json!({"rule": "self.min <= self.max", "reason": "FieldValueRequired", "message": "no"}),
            "spec: Required value: no",
        ),
        (
            json!({"rule": "self.min <= self.max", "reason": "FieldValueDuplicate"}),
            r#"spec: Duplicate value: "object""#,
        ),
        (
            json!({"rule": "self.min <= self.max", "fieldPath": ".max", "message": "too small"}),
            r#"spec.max: Invalid value: "object": too small"#,
        ),
        (
            json!({"rule": "self.min <= self.max"}),
            r#"spec: Invalid value: "object": failed rule: self.min <= self.max"#,
        ),
    ];
    for (rule, want) in cases {
        let s = rule_schema(json!([rule]));
        assert_eq!(texts(&s.validate_cel(&obj, None)), [want], "{rule}");
        assert!(s
            .validate_cel(&json!({"spec": {"min": 1, "max": 5, "name": "x"}}), None)
            .is_empty());
    }
    let errs =
        rule_schema(json!([{"rule": "self.min <= self.max", "reason": "FieldValueForbidden"}]))
            .validate_cel(&obj, None);
    assert_eq!(errs[0].reason(), "FieldValueForbidden");
}

#[test]
fn field_paths_name_where_a_rule_failed() {
    let s = with_spec(json!({"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "!('a.b' in self)", "fieldPath": "['a.b']"}]},
        "nested": {"type": "object", "properties": {"inner": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "x-kubernetes-validations": [{"rule": "self.inner.x > 0", "fieldPath": ".inner.x", "message": "x must be positive"}]}}}));
    assert_eq!(
        texts(&s.validate_cel(
            &json!({"spec": {"labels": {"a.b": "c"}, "nested": {"inner": {"x": 0}}}}),
            None
        )),
        [
            r#"spec.labels.[a.b]: Invalid value: "object": failed rule: !('a.b' in self)"#,
            r#"spec.nested.inner.x: Invalid value: "object": x must be positive"#,
        ]
    );
}

#[test]
fn rules_at_the_root_and_evaluation_errors() {
    let s = schema(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('a')", "message": "name must start with a"},
        {"rule": "self.spec.missing == 1"}],
        "properties": {"spec": {"type": "object", "properties": {"missing": {"type": "integer"}}}}}));
    let errs = texts(&s.validate_cel(
        &json!({"apiVersion": "x/v1", "kind": "T", "metadata": {"name": "b"}, "spec": {}}),
        None,
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        r#"<nil>: Invalid value: "object": name must start with a"#
    );
    assert!(
        errs[1].starts_with(r#"<nil>: Invalid value: "object": "#),
        "{errs:?}"
    );
    assert!(
        errs[1].ends_with(" evaluating rule: self.spec.missing == 1"),
        "{errs:?}"
    );
}

#[test]
fn transition_rules_compare_with_the_old_object() {
    let s = with_spec(json!({"type": "object", "properties": {
        "immutable": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]},
        "count": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true, "message": "may only grow"},
            {"rule": "self <= 100"}]},
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not shrink"}]}}}}}}));
    let new = json!({"spec": {"immutable": "b", "count": 1, "items": [{"name": "x", "size": 1}, {"name": "y", "size": 1}]}});
    assert!(
        s.validate_cel(&new, None).is_empty(),
        "no transition rule runs on create"
    );
    let old = json!({"spec": {"immutable": "a", "count": 2, "items": [{"name": "y", "size": 2}]}});
    assert_eq!(
        texts(&s.validate_cel(&new, Some(&old))),
        [
            r#"spec.count: Invalid value: "integer": may only grow"#,
            r#"spec.immutable: Invalid value: "string": Value is immutable"#,
            r#"spec.items[1].size: Invalid value: "integer": may not shrink"#,
        ]
    );
    assert_eq!(
        texts(&s.validate_cel(&json!({"spec": {"count": 101}}), None)),
        [r#"spec.count: Invalid value: "integer": failed rule: self <= 100"#]
    );
}

#[test]
fn rules_see_typed_and_escaped_values() {
    let s = with_spec(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.ratio == 3.0"},
        {"rule": "self.x__dash__y == 'v' && self.__namespace__ == 'n'"},
        {"rule": "self.when < timestamp('2030-01-01T00:00:00Z')"},
        {"rule": "!has(self.opt)"},
        {"rule": "self.tags.all(t, t.size() < 5) && self.tags.isSorted()"}],
        "properties": {
            "ratio": {"type": "number"}, "x-y": {"type": "string"}, "namespace": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "opt": {"type": "string", "nullable": true, "x-kubernetes-validations": [{"rule": "self.size() > 100"}]},
            "tags": {"type": "array", "items": {"type": "string"}}}}));
    let obj = json!({"spec": {"ratio": 3, "x-y": "v", "namespace": "n", "when": "2024-05-01T00:00:00Z", "tags": ["a", "b"]}});
    assert!(
        s.validate_cel(&obj, None).is_empty(),
        "{:?}",
        texts(&s.validate_cel(&obj, None))
    );
    let null_opt = json!({"spec": {"ratio": 3, "x-y": "v", "namespace": "n", "when": "2024-05-01T00:00:00Z", "tags": [], "opt": null}});
    assert_eq!(
        texts(&s.validate_cel(&null_opt, None)),
        [r#"spec: Invalid value: "object": failed rule: !has(self.opt)"#],
        "rules of a null value do not run"
    );
}

#[test]
fn schemas_are_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Structural>();
    shared::<cel::Program>();
}

#[test]
fn everything_together() {
    let s = schema(json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.size() <= 20", "message": "name too long"}],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30}}},
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "x-kubernetes-validations": [{
                    "rule": "self.replicas <= self.maxReplicas",
                    "messageExpression": "'replicas (' + string(self.replicas) + ') above maxReplicas (' + string(self.maxReplicas) + ')'",
                    "fieldPath": ".replicas"}],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "default": 10},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 10}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "containers": {
                        "type": "array", "maxItems": 3,
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"],
                            "x-kubernetes-validations": [{"rule": "!has(self.image) || self.image.contains(':')", "message": "image needs a tag"}],
                            "properties": {
                                "name": {"type": "string", "pattern": "^[a-z]+$"},
                                "image": {"type": "string"},
                                "resources": {"type": "object", "default": {}, "properties": {
                                    "cpu": {"type": "string", "default": "100m"}}}}}}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}));
    let mut good = json!({
        "apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "app", "uid": "u"},
        "spec": {"replicas": 2, "port": "http", "extra": {"any": [1, 2]}, "labels": {"tier": "web"},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
            "containers": [{"name": "web", "image": "nginx:1", "junk": true}]},
        "status": {"ready": true}});
    assert_eq!(s.prune(&mut good), ["spec.containers[0].junk"]);
    s.apply_defaults(&mut good);
    assert_eq!(good["spec"]["maxReplicas"], json!(10));
    assert_eq!(good["spec"]["mode"], json!("safe"));
    assert_eq!(
        good["spec"]["containers"][0]["resources"],
        json!({"cpu": "100m"})
    );
    assert!(
        s.validate(&good).is_empty(),
        "{:?}",
        texts(&s.validate(&good))
    );
    assert!(
        s.validate_cel(&good, None).is_empty(),
        "{:?}",
        texts(&s.validate_cel(&good, None))
    );

    let mut bad = json!({
        "apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "a-very-long-name-indeed-yes"},
        "spec": {"replicas": 12, "maxReplicas": 5, "port": 1.5, "mode": "slow", "labels": {"tier": "much-too-long-value"},
            "template": {"kind": "Pod"},
            "containers": [{"name": "Web", "image": "nginx"}, {"name": "Web"}, {"name": "b"}, {"name": "c"}]}});
    assert!(s.prune(&mut bad).is_empty());
    s.apply_defaults(&mut bad);
    assert_eq!(
        texts(&s.validate(&bad)),
        [
            r#"spec.containers[0].name: Invalid value: "Web": spec.containers[0].name in body should match '^[a-z]+$'"#,
            r#"spec.containers[1].name: Invalid value: "Web": spec.containers[1].name in body should match '^[a-z]+$'"#,
            "spec.containers: Too many: 4: must have at most 3 items",
            "spec.labels.tier: Too long: may not be more than 10 bytes",
            r#"spec.mode: Unsupported value: "slow": supported values: "fast", "safe""#,
            r#"spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number""#,
            r#"<nil>: Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#,
            r#"spec.port: Invalid value: "number": spec.port in body must be of type integer: "number""#,
            "spec.template.apiVersion: Required value",
            r#"spec.containers[1]: Duplicate value: map[string]interface {}{"name":"Web"}"#,
        ]
    );
    assert_eq!(
        texts(&s.validate_cel(&bad, None)),
        [
            r#"<nil>: Invalid value: "object": name too long"#,
            r#"spec.replicas: Invalid value: "object": replicas (12) above maxReplicas (5)"#,
            r#"spec.containers[0]: Invalid value: "object": image needs a tag"#,
        ]
    );
}

#[test]
fn rules_naming_undeclared_fields_do_not_compile() {
    let errs = parse_errors(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name != '' && self.metadata.labels.size() > 0"}],
        "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.b == 'x'"},
                {"rule": "self.labels.anything == 'ok' && self.x__dash__y == '' && self.free.whatever == 1 && self.a.all(i, i.c)"},
                {"rule": "self.a.exists(i, i.nope) || self.a[0].gone"},
                {"rule": "sets.contains(['a'], ['a']) && type(self) == map && self.a.map(x, x.c).all(y, y) && self.a.filter(x, x.c).size() >= 0 && self.a.exists_one(x, x.c) && optional.none() == optional.none() && quantity('1').isInteger()"},
                {"rule": "size(other) == 0"}],
            "properties": {
                "a": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "boolean"}}}},
                "x-y": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}));
    assert_eq!(
        errs,
        [
            format!(
                r#"{B}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.b == 'x'", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:5: undefined field 'b'
 | self.b == 'x'
 | ....^"#
            ),
            format!(
                r#"{B}.properties[spec].x-kubernetes-validations[2].rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.a.exists(i, i.nope) || self.a[0].gone", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:19: undefined field 'nope'
 | self.a.exists(i, i.nope) || self.a[0].gone
 | ..................^
ERROR: <input>:1:38: undefined field 'gone'
 | self.a.exists(i, i.nope) || self.a[0].gone
 | .....................................^"#
            ),
            format!(
                r#"{B}.properties[spec].x-kubernetes-validations[4].rule: Invalid value: apiextensions.ValidationRule{{Rule:"size(other) == 0", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:6: undeclared reference to 'other' (in container '')
 | size(other) == 0
 | .....^"#
            ),
            format!(
                r#"{B}.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.metadata.name != '' && self.metadata.labels.size() > 0", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:42: undefined field 'labels'
 | self.metadata.name != '' && self.metadata.labels.size() > 0
 | .........................................^"#
            ),
        ]
    );
}

#[test]
fn rules_failing_to_evaluate_say_why() {
    let s = with_spec(json!({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-validations": [{"rule": "self > 0"}]},
        "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "10 / self > 1", "message": "n is too big"}]}}}));
    assert_eq!(
        texts(&s.validate_cel(&json!({"spec": {"port": "http", "n": 0}}), None)),
        [
            r#"spec.n: Invalid value: "integer": division by zero evaluating rule: n is too big"#,
            r#"spec.port: Invalid value: "": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: self > 0"#,
        ]
    );
}

#[test]
fn updates_ratchet_unchanged_values() {
    let s = with_spec(json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 3, "x-kubernetes-validations": [{"rule": "self != 'bad'"}]},
        "other": {"type": "string", "maxLength": 3},
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
            "items": {"type": "object", "required": ["k"], "properties": {
                "k": {"type": "string"}, "v": {"type": "integer", "maximum": 5}}}}}}));
    let old = json!({"spec": {"name": "toolong", "other": "ok", "items": [{"k": "a", "v": 9}]}});
    let new = json!({"spec": {"name": "toolong", "other": "longer", "items": [{"k": "b", "v": 7}, {"k": "a", "v": 9}]}});
    assert_eq!(
        texts(&s.validate_update(&new, &old)),
        [
            "spec.items[0].v: Invalid value: 7: spec.items[0].v in body should be less than or equal to 5",
            "spec.other: Too long: may not be more than 3 bytes",
        ]
    );
    assert_eq!(
        texts(&s.validate(&new)).len(),
        4,
        "without the old object every error counts"
    );
    let bad_old = json!({"spec": {"name": "bad"}});
    assert!(
        s.validate_cel(&bad_old, Some(&bad_old)).is_empty(),
        "an unchanged value's failing rule is ratcheted"
    );
    assert_eq!(
        texts(&s.validate_cel(&bad_old, Some(&json!({"spec": {"name": "ok"}})))),
        [r#"spec.name: Invalid value: "string": failed rule: self != 'bad'"#]
    );
}

/// A schema shaped as controller-gen writes them: descriptions everywhere,
/// `metav1.Condition`s as a map list, quantities as int-or-string with a
/// pattern, atomic object references, an embedded pod template.
#[test]
fn a_controller_gen_style_schema_is_accepted() {
    let quantity = json!({"anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
        "x-kubernetes-int-or-string": true});
    let s = schema(json!({
        "description": "Widget is the Schema for the widgets API", "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema", "type": "string"},
            "kind": {"description": "Kind is a string value", "type": "string"},
            "metadata": {"type": "object"},
            "spec": {"description": "desired state", "type": "object", "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 0, "default": 1},
                "secretRef": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {"name": {"type": "string", "default": ""}}},
                "resources": {"type": "object", "properties": {
                    "limits": {"type": "object", "additionalProperties": quantity.clone()},
                    "requests": {"type": "object", "additionalProperties": quantity}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"}},
                "x-kubernetes-validations": [{"rule": "!has(self.secretRef) || self.secretRef.name != ''", "message": "secretRef needs a name"}]},
            "status": {"type": "object", "properties": {
                "observedGeneration": {"type": "integer", "format": "int64"},
                "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                    "items": {"type": "object", "description": "Condition contains details",
                        "required": ["lastTransitionTime", "message", "reason", "status", "type"],
                        "properties": {
                            "lastTransitionTime": {"type": "string", "format": "date-time"},
                            "message": {"type": "string", "maxLength": 32768},
                            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                            "reason": {"type": "string", "maxLength": 1024, "minLength": 1, "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                            "type": {"type": "string", "maxLength": 316,
                                "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"}}}}}}}}));
    let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"resources": {"limits": {"cpu": 1, "memory": "512Mi"}, "requests": {"cpu": "250m"}},
            "template": {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}, "args": ["a", "a"]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    assert!(s.prune(&mut obj).is_empty());
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"]["replicas"], json!(1));
    assert!(
        s.validate(&obj).is_empty(),
        "{:?}",
        texts(&s.validate(&obj))
    );
    assert!(s.validate_cel(&obj, None).is_empty());
    obj["spec"]["resources"]["limits"]["cpu"] = json!("lots");
    obj["spec"]["secretRef"] = json!({});
    s.apply_defaults(&mut obj);
    assert_eq!(
        texts(&s.validate(&obj)),
        [
            r#"spec.resources.limits.cpu: Invalid value: "lots": spec.resources.limits.cpu in body should match '^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'"#
        ]
    );
    assert_eq!(
        texts(&s.validate_cel(&obj, None)),
        [r#"spec: Invalid value: "object": secretRef needs a name"#]
    );
    assert_eq!(
        s.list_type_at(&["status", "conditions"]),
        Some(ListType::Map(vec!["type".into()]))
    );
    assert_eq!(s.list_type_at(&["spec", "args"]), Some(ListType::Atomic));
    assert_eq!(s.map_type_at(&["spec", "secretRef"]), Some(MapType::Atomic));
    assert_eq!(
        s.map_type_at(&["spec", "resources"]),
        Some(MapType::Granular)
    );
    assert_eq!(
        s.map_type_at(&["status", "conditions", "0"]),
        Some(MapType::Granular)
    );
    assert_eq!(s.map_type_at(&["spec", "args"]), None);
}

#[test]
fn validate_all_runs_rules_unless_errors_block_them() {
    let s = with_spec(json!({"type": "object", "properties": {
        "n": {"type": "integer", "maximum": 10, "x-kubernetes-validations": [{"rule": "self % 2 == 0", "message": "n must be even"}]},
        "mode": {"type": "string", "enum": ["a"]}}}));
    assert_eq!(
        texts(&s.validate_all(&json!({"spec": {"n": 11}}), None)),
        [
            "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
            r#"spec.n: Invalid value: "integer": n must be even"#,
        ]
    );
    assert_eq!(
        texts(&s.validate_all(&json!({"spec": {"n": 11, "mode": "b"}}), None)),
        [
            r#"spec.mode: Unsupported value: "b": supported values: "a""#,
            "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
        ]
    );
    let old = json!({"spec": {"n": 11}});
    assert!(
        s.validate_all(&old, Some(&old)).is_empty(),
        "an unchanged object is ratcheted"
    );
    // Without rules anywhere there is nothing left unchecked to report.
    let plain = with_spec(json!({"type": "object", "properties": {
        "n": {"type": "integer"}, "m": {"type": "array", "items": {"type": "integer"}}}}));
    assert_eq!(
        texts(&plain.validate_all(&json!({"spec": {"n": "x"}}), None)),
        [r#"spec.n: Invalid value: "string": spec.n in body must be of type integer: "string""#]
    );
    let deep = with_spec(json!({"type": "object", "properties": {
        "m": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.x > 0"}]}}}}));
    assert_eq!(
        texts(&deep.validate_all(&json!({"spec": {"m": ["no"]}}), None)).len(),
        2,
        "rules under items count"
    );
}

/// Rules shaped as Gateway API's parentRefs rules: nested comprehensions
/// over a list of objects, `has()` on optional fields, an escaped
/// `namespace` property.
#[test]
fn nested_comprehensions_over_escaped_properties() {
    let unique_sections = "self.all(p1, self.exists_one(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name \
        && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) \
        || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__)) \
        && (((!has(p1.sectionName) || p1.sectionName == '') && (!has(p2.sectionName) || p2.sectionName == '')) \
        || (has(p1.sectionName) && has(p2.sectionName) && p1.sectionName == p2.sectionName))))";
    let s = with_spec(json!({"type": "object", "properties": {"parentRefs": {
        "type": "array", "maxItems": 32,
        "x-kubernetes-validations": [{"message": "sectionName must be unique when parentRefs includes 2 or more references to the same parent", "rule": unique_sections}],
        "items": {"type": "object", "required": ["name"], "properties": {
            "group": {"type": "string", "default": "gateway.networking.k8s.io", "maxLength": 253,
                "pattern": "^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
            "kind": {"type": "string", "default": "Gateway", "pattern": "^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"},
            "name": {"type": "string", "minLength": 1},
            "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "sectionName": {"type": "string"},
            "header": {"type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$"}}}}}}));
    let mut ok = json!({"spec": {"parentRefs": [{"name": "gw", "sectionName": "http"}, {"name": "gw", "sectionName": "https", "header": "X-Y"}]}});
    s.apply_defaults(&mut ok);
    assert_eq!(ok["spec"]["parentRefs"][0]["kind"], json!("Gateway"));
    assert!(
        s.validate_all(&ok, None).is_empty(),
        "{:?}",
        texts(&s.validate_all(&ok, None))
    );
    let mut dup = json!({"spec": {"parentRefs": [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "a"}]}});
    s.apply_defaults(&mut dup);
    assert_eq!(
        texts(&s.validate_all(&dup, None)),
        [
            r#"spec.parentRefs: Invalid value: "array": sectionName must be unique when parentRefs includes 2 or more references to the same parent"#
        ]
    );
}

/// Shaped as Gateway API's GatewayClass: escaped slashes in a pattern, an
/// immutable field, a status defaulted to a pending condition.
#[test]
fn gateway_class_shaped_schema() {
    let condition = json!({"type": "object",
        "required": ["lastTransitionTime", "message", "reason", "status", "type"],
        "properties": {
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "message": {"type": "string", "maxLength": 32768},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "reason": {"type": "string", "maxLength": 1024, "minLength": 1, "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "type": {"type": "string", "maxLength": 316}}});
    let pending = json!([{"lastTransitionTime": "1970-01-01T00:00:00Z", "message": "Waiting for controller",
        "reason": "Pending", "status": "Unknown", "type": "Accepted"}]);
    let s = schema(
        json!({"type": "object", "required": ["spec"], "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["controllerName"], "properties": {
            "controllerName": {"type": "string", "maxLength": 253, "minLength": 1,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\/[A-Za-z0-9\\/\\-._~%!$&'()*+,;=:]+$",
                "x-kubernetes-validations": [{"message": "Value is immutable", "rule": "self == oldSelf"}]},
            "description": {"type": "string", "maxLength": 64}}},
        "status": {"type": "object", "default": {"conditions": pending.clone()}, "properties": {
            "conditions": {"type": "array", "default": pending, "maxItems": 8, "items": condition,
                "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map"}}}}}),
    );
    let mut obj = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "gc"}, "spec": {"controllerName": "example.net/gateway-controller"}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj["status"]["conditions"][0]["reason"], json!("Pending"));
    assert!(
        s.validate_all(&obj, None).is_empty(),
        "{:?}",
        texts(&s.validate_all(&obj, None))
    );
    let mut changed = obj.clone();
    changed["spec"]["controllerName"] = json!("example.net/other");
    assert_eq!(
        texts(&s.validate_all(&changed, Some(&obj))),
        [r#"spec.controllerName: Invalid value: "string": Value is immutable"#]
    );
    changed["spec"]["controllerName"] = json!("no-slash");
    assert_eq!(
        texts(&s.validate(&changed)),
        [
            r#"spec.controllerName: Invalid value: "no-slash": spec.controllerName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$'"#
        ]
    );
}

#[test]
fn sets_and_map_lists_compare_without_order_in_rules() {
    let s = with_spec(
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec is immutable"}],
        "properties": {
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "order": {"type": "array", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}}}),
    );
    let old = json!({"spec": {"tags": ["a", "b"], "order": ["x", "y"], "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}});
    let reordered = json!({"spec": {"tags": ["b", "a"], "order": ["x", "y"], "ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1}]}});
    assert!(s.validate_cel(&reordered, Some(&old)).is_empty());
    let atomic_reordered = json!({"spec": {"tags": ["a", "b"], "order": ["y", "x"], "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}});
    assert_eq!(
        texts(&s.validate_cel(&atomic_reordered, Some(&old))),
        [r#"spec: Invalid value: "object": spec is immutable"#]
    );
}
