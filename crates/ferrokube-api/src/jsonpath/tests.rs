use super::*;
use serde_json::json;

fn obj() -> Value {
    json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {
            "name": "nightly",
            "labels": {"app": "web", "kubernetes.io/os": "linux"},
            "creationTimestamp": "2026-12-07T12:00:00Z",
        },
        "spec": {
            "replicas": 3,
            "ratio": 1.5,
            "paused": false,
            "nothing": null,
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}, {"name": "admin", "port": 9000}],
            "selector": {"b": "2", "a": "1"},
        },
        "status": {
            "conditions": [
                {"type": "Progressing", "status": "True", "priority": 1},
                {"type": "Ready", "status": "False", "priority": 2},
            ],
        },
    })
}

fn eval(path: &str) -> Vec<Value> {
    parse(path).unwrap().eval(&obj())
}

#[test]
fn parse_errors_are_client_gos() {
    let cases = [
        (".spec.ports[0", "unterminated array"),
        (".spec #", "unrecognized character in action: U+0023 '#'"),
        ("....name", "invalid multiple recursive descent"),
        ("1.2.3", "cannot parse number 1.2.3"),
        (".spec.ports[a]", "invalid array index a"),
        (".spec.ports[-]", "array index - is not a number"),
        (".spec.ports[?(@.name==\"http\"", "unterminated filter"),
        (".spec.ports[?(@.name==\"http\")", "unclosed array expect ]"),
        ("'abc", "unterminated quoted string"),
        (r#""a\qb""#, r#"unquote string "a\qb" error invalid syntax"#),
    ];
    for (path, message) in cases {
        let err = parse(path).unwrap_err();
        assert_eq!(err.to_string(), message, "{path}");
    }
    assert_eq!(
        parse_template("{.spec").unwrap_err().to_string(),
        "unclosed action"
    );
}

#[test]
fn fields_indexes_and_slices() {
    assert_eq!(eval(".spec.replicas"), vec![json!(3)]);
    assert_eq!(eval(".metadata.labels.app"), vec![json!("web")]);
    assert_eq!(
        eval(".metadata.labels.kubernetes\\.io/os"),
        vec![json!("linux")]
    );
    assert_eq!(eval(".spec.ports[0].name"), vec![json!("http")]);
    assert_eq!(eval(".spec.ports[-1].port"), vec![json!(9000)]);
    assert_eq!(
        eval(".spec.ports[*].port"),
        vec![json!(80), json!(443), json!(9000)]
    );
    assert_eq!(eval(".spec.ports[1:3].port"), vec![json!(443), json!(9000)]);
    assert_eq!(eval(".spec.ports[::2].port"), vec![json!(80), json!(9000)]);
    assert_eq!(
        eval(".spec.ports[0,2].name"),
        vec![json!("http"), json!("admin")]
    );
    // A map's values come in key order.
    assert_eq!(eval(".spec.selector.*"), vec![json!("1"), json!("2")]);
    assert_eq!(eval("['spec']['replicas']"), vec![json!(3)]);
    // client-go splits a quoted key on dots like any field.
    assert_eq!(eval("['metadata.name']"), vec![json!("nightly")]);
    assert_eq!(eval("$.metadata.name"), vec![json!("nightly")]);
}

#[test]
fn missing_keys_and_bad_indexes_give_nothing() {
    assert!(eval(".spec.missing").is_empty());
    assert!(eval(".spec.replicas.deeper").is_empty());
    assert!(eval(".spec.ports[7]").is_empty());
    // A null value is found (and prints as `<no value>` in a string column).
    assert_eq!(eval(".spec.nothing"), vec![Value::Null]);
}

#[test]
fn filters_compare_as_client_go_does() {
    assert_eq!(
        eval(r#".status.conditions[?(@.type=="Ready")].status"#),
        vec![json!("False")]
    );
    assert_eq!(
        eval(".status.conditions[?(@.type!='Ready')].type"),
        vec![json!("Progressing")]
    );
    assert_eq!(
        eval(".spec.ports[?(@.name)].port").len(),
        3,
        "an existence filter"
    );
    assert_eq!(
        eval(".spec.ports[?(@.port>=443)].name"),
        Vec::<Value>::new()
    );
    // An integer field against a number in the path: client-go compares an
    // int64 with a float64, which never matches (but `!=` always does).
    assert!(eval(".status.conditions[?(@.priority==2)].type").is_empty());
    assert_eq!(eval(".status.conditions[?(@.priority!=2)].type").len(), 2);
    // Two fields of one kind compare.
    assert_eq!(
        eval(".status.conditions[?(@.priority<@.priority)].type"),
        Vec::<Value>::new()
    );
    assert_eq!(
        eval(r#".status.conditions[?(@.type>"Q")].type"#),
        vec![json!("Ready")]
    );
    // A filter over a map looks at its values.
    assert_eq!(eval(".spec.selector[?(@==\"2\")]"), vec![json!("2")]);
}

#[test]
fn recursive_descent_finds_every_name() {
    assert_eq!(
        eval("..name"),
        vec![
            json!("nightly"),
            json!("http"),
            json!("https"),
            json!("admin")
        ]
    );
}

#[test]
fn range_repeats_the_rest_for_each_value() {
    let path = parse_template("{range .spec.ports[*]}{.name}={.port} {end}").unwrap();
    let texts: Vec<String> = path
        .results(&obj())
        .unwrap()
        .iter()
        .flatten()
        .map(print)
        .collect();
    assert_eq!(texts.concat(), "http=80 https=443 admin=9000 ", "{texts:?}");
}

#[test]
fn cells_follow_the_crd_table_convertor() {
    let now = "2026-12-07T12:05:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let cell = |ty: &str, path: &str| {
        CustomColumn::new("C", ty, "", 0, "", path)
            .unwrap()
            .cell(&obj(), now)
    };
    assert_eq!(cell("integer", ".spec.replicas"), json!(3));
    assert_eq!(cell("integer", ".spec.ratio"), json!(1));
    assert_eq!(cell("number", ".spec.replicas"), json!(3.0));
    assert_eq!(cell("boolean", ".spec.paused"), json!(false));
    assert_eq!(cell("boolean", ".metadata.name"), Value::Null);
    assert_eq!(cell("string", ".spec.replicas"), json!("3"));
    assert_eq!(cell("string", ".spec.ratio"), json!("1.5"));
    assert_eq!(
        cell("string", ".spec.selector"),
        json!(r#"{"a":"1","b":"2"}"#)
    );
    assert_eq!(cell("string", ".spec.nothing"), json!("<no value>"));
    assert_eq!(cell("string", ".spec.missing"), Value::Null);
    assert_eq!(cell("date", ".metadata.creationTimestamp"), json!("5m"));
    assert_eq!(cell("date", ".metadata.name"), json!("<invalid>"));
    assert_eq!(
        cell("string", r#".status.conditions[?(@.type=="Ready")].status"#),
        json!("False")
    );
}

#[test]
fn column_definitions_default_their_description() {
    let col = CustomColumn::from_definition(&json!({
        "name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1,
    }))
    .unwrap();
    assert_eq!(
        col.definition(),
        json!({
            "name": "Replicas", "type": "integer", "format": "", "priority": 1,
            "description": "Custom resource definition column (in JSONPath format): .spec.replicas",
        })
    );
    let err =
        CustomColumn::from_definition(&json!({"name": "X", "type": "string", "jsonPath": ".a["}));
    assert_eq!(err.unwrap_err(), ParseError::UnterminatedArray);
}

#[test]
fn floats_print_as_go_prints_them() {
    for (f, text) in [
        (1.5, "1.5"),
        (3.0, "3"),
        (123_456.0, "123456"),
        (1e6, "1e+06"),
        (1_234_567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.000_012, "1.2e-05"),
        (-2.5e-300, "-2.5e-300"),
    ] {
        assert_eq!(go_float(f), text);
    }
}
