//! RFC 6902 JSON patch (`application/json-patch+json`): a list of `add`,
//! `remove`, `replace`, `move`, `copy` and `test` operations addressed by
//! RFC 6901 JSON pointers (`~1` is `/`, `~0` is `~`, `-` is the end of an
//! array). All or nothing: when one operation fails (a `test` included) the
//! whole patch fails and the object is unchanged.

use serde_json::Value;

use super::PatchError;

/// The most operations one patch may hold, as in Kubernetes.
pub const MAX_OPERATIONS: usize = 10_000;

/// One decoded operation.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Add(Vec<String>, Value),
    Remove(Vec<String>),
    Replace(Vec<String>, Value),
    Move {
        from: Vec<String>,
        path: Vec<String>,
    },
    Copy {
        from: Vec<String>,
        path: Vec<String>,
    },
    Test(Vec<String>, Value),
}

/// Applies an RFC 6902 patch to `target`. A patch that is not an array of
/// well-formed operations is a BadRequest; an operation that does not
/// apply is Invalid.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = decode(patch)?;
    let mut doc = target.clone();
    for (i, op) in ops.into_iter().enumerate() {
        apply_op(&mut doc, op).map_err(|e| PatchError::invalid(format!("operation {i}: {e}")))?;
    }
    Ok(doc)
}

fn decode(patch: &Value) -> Result<Vec<Op>, PatchError> {
    let list = patch
        .as_array()
        .ok_or_else(|| PatchError::bad_request("a JSON patch must be an array of operations"))?;
    if list.len() > MAX_OPERATIONS {
        return Err(PatchError::bad_request(format!(
            "the JSON patch has {} operations, more than the {MAX_OPERATIONS} allowed",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| {
            decode_op(op).map_err(|e| PatchError::bad_request(format!("operation {i}: {e}")))
        })
        .collect()
}

fn decode_op(op: &Value) -> Result<Op, String> {
    let obj = op.as_object().ok_or("an operation must be a JSON object")?;
    let name = obj
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing string member \"op\"")?;
    let pointer = |member: &str| -> Result<Vec<String>, String> {
        let p = obj
            .get(member)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: missing string member {member:?}"))?;
        parse_pointer(p)
    };
    let value = || -> Result<Value, String> {
        obj.get("value")
            .cloned()
            .ok_or_else(|| format!("{name}: missing member \"value\""))
    };
    Ok(match name {
        "add" => Op::Add(pointer("path")?, value()?),
        "remove" => Op::Remove(pointer("path")?),
        "replace" => Op::Replace(pointer("path")?, value()?),
        "move" => Op::Move {
            from: pointer("from")?,
            path: pointer("path")?,
        },
        "copy" => Op::Copy {
            from: pointer("from")?,
            path: pointer("path")?,
        },
        "test" => Op::Test(pointer("path")?, value()?),
        other => return Err(format!("unknown operation {other:?}")),
    })
}

/// Splits an RFC 6901 pointer into unescaped reference tokens.
fn parse_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "invalid JSON pointer {path:?}: it must start with '/'"
        ));
    };
    rest.split('/').map(|t| unescape(t, path)).collect()
}

fn unescape(token: &str, path: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => {
                    return Err(format!(
                        "invalid escape in JSON pointer {path:?}: '~' must be followed by 0 or 1"
                    ))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn show(path: &[String]) -> String {
    path.iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// An existing array index (no leading zeros, no sign, in bounds), or the
/// end of the array (`-` or `len`) when inserting.
fn array_index(arr: &[Value], tok: &str, insert: bool) -> Result<usize, String> {
    if insert && tok == "-" {
        return Ok(arr.len());
    }
    let digits_ok = !tok.is_empty()
        && tok.bytes().all(|b| b.is_ascii_digit())
        && (tok == "0" || !tok.starts_with('0'));
    if !digits_ok {
        return Err(format!("{tok:?} is not an array index"));
    }
    let i: usize = tok
        .parse()
        .map_err(|_| format!("array index {tok} is too large"))?;
    let len = arr.len();
    if (insert && i > len) || (!insert && i >= len) {
        return Err(format!("array index {i} is out of bounds (length {len})"));
    }
    Ok(i)
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut cur = doc;
    for (n, tok) in path.iter().enumerate() {
        cur = match cur {
            Value::Object(m) => m.get(tok),
            Value::Array(a) => Some(&a[array_index(a, tok, false)?]),
            _ => None,
        }
        .ok_or_else(|| format!("path {} does not exist", show(&path[..=n])))?;
    }
    Ok(cur)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for (n, tok) in path.iter().enumerate() {
        let shown = || format!("path {} does not exist", show(&path[..=n]));
        cur = match cur {
            Value::Object(m) => m.get_mut(tok).ok_or_else(shown)?,
            Value::Array(a) => {
                let i = array_index(a, tok, false)?;
                &mut a[i]
            }
            _ => return Err(shown()),
        };
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(a, last, true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "cannot add {}: its parent is not an object or array",
            show(path)
        )),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("cannot remove {}: it does not exist", show(path))),
        Value::Array(a) => {
            let i = array_index(a, last, false)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove {}: it does not exist", show(path))),
    }
}

/// JSON equality, with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn apply_op(doc: &mut Value, op: Op) -> Result<(), String> {
    match op {
        Op::Add(path, value) => add(doc, &path, value),
        Op::Remove(path) => remove(doc, &path).map(drop),
        Op::Replace(path, value) => {
            *get_mut(doc, &path)? = value;
            Ok(())
        }
        Op::Move { from, path } => {
            if from == path {
                return get(doc, &from).map(drop);
            }
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err(format!(
                    "cannot move {} into its own child {}",
                    show(&from),
                    show(&path)
                ));
            }
            let v = remove(doc, &from)?;
            add(doc, &path, v)
        }
        Op::Copy { from, path } => {
            let v = get(doc, &from)?.clone();
            add(doc, &path, v)
        }
        Op::Test(path, want) => {
            let got = get(doc, &path)?;
            if json_eq(got, &want) {
                Ok(())
            } else {
                Err(format!("test failed: {} is {got}, not {want}", show(&path)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::PatchErrorKind;
    use super::*;
    use serde_json::json;

    fn ok(doc: Value, patch: Value) -> Value {
        json_patch(&doc, &patch).unwrap()
    }

    fn fails(doc: Value, patch: Value) -> PatchError {
        json_patch(&doc, &patch).unwrap_err()
    }

    #[test]
    fn rfc6902_appendix_a_examples() {
        assert_eq!(
            ok(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}])
            ),
            json!({"baz": "qux", "foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
            ),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}])
            ),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}])
            ),
            json!({"foo": ["bar", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}])
            ),
            json!({"baz": "boo", "foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            ok(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            ok(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])
            ),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
            ),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
        assert_eq!(
            ok(
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}])
            ),
            json!({"/": 9, "~1": 10})
        );
        assert_eq!(
            ok(
                json!({"foo": null}),
                json!([{"op": "add", "path": "/foo", "value": 1}])
            ),
            json!({"foo": 1})
        );
    }

    #[test]
    fn pointer_escapes() {
        assert_eq!(
            parse_pointer("/a~1b/c~0d/~01").unwrap(),
            vec!["a/b", "c~d", "~1"]
        );
        assert_eq!(parse_pointer("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_pointer("/").unwrap(), vec![""]);
        assert!(parse_pointer("a/b").is_err());
        assert!(parse_pointer("/a~2").is_err());
        assert!(parse_pointer("/a~").is_err());
        // Annotation keys with slashes, as kubectl writes them.
        assert_eq!(
            ok(
                json!({"metadata": {"annotations": {}}}),
                json!([{"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "me"}])
            ),
            json!({"metadata": {"annotations": {"example.com/owner": "me"}}})
        );
    }

    #[test]
    fn failing_test_changes_nothing() {
        let doc = json!({"spec": {"replicas": 1}});
        let e = fails(
            doc.clone(),
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "test", "path": "/spec/replicas", "value": 1}
            ]),
        );
        assert_eq!(e.kind(), PatchErrorKind::Invalid);
        assert_eq!(e.code(), 422);
        assert!(e.message().contains("test failed"), "{e}");
        assert_eq!(doc, json!({"spec": {"replicas": 1}}));
    }

    #[test]
    fn test_compares_numbers_by_value_and_objects_deeply() {
        ok(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a", "value": 1.0}]),
        );
        ok(
            json!({"a": {"x": [1, {"y": 2}]}}),
            json!([{"op": "test", "path": "/a", "value": {"x": [1, {"y": 2}]}}]),
        );
        fails(
            json!({"a": {"x": 1}}),
            json!([{"op": "test", "path": "/a", "value": {"x": 1, "z": 2}}]),
        );
        fails(
            json!({"a": "1"}),
            json!([{"op": "test", "path": "/a", "value": 1}]),
        );
    }

    #[test]
    fn array_indices() {
        let d = json!({"l": ["a", "b"]});
        assert_eq!(
            ok(
                d.clone(),
                json!([{"op": "add", "path": "/l/2", "value": "c"}])
            )["l"],
            json!(["a", "b", "c"])
        );
        assert_eq!(
            ok(
                d.clone(),
                json!([{"op": "add", "path": "/l/-", "value": "c"}])
            )["l"],
            json!(["a", "b", "c"])
        );
        assert_eq!(
            ok(
                d.clone(),
                json!([{"op": "replace", "path": "/l/1", "value": "z"}])
            )["l"],
            json!(["a", "z"])
        );
        fails(
            d.clone(),
            json!([{"op": "add", "path": "/l/3", "value": "c"}]),
        );
        fails(
            d.clone(),
            json!([{"op": "replace", "path": "/l/2", "value": "c"}]),
        );
        fails(d.clone(), json!([{"op": "remove", "path": "/l/-"}]));
        fails(d.clone(), json!([{"op": "remove", "path": "/l/01"}]));
        fails(d.clone(), json!([{"op": "remove", "path": "/l/-1"}]));
        fails(d, json!([{"op": "remove", "path": "/l/x"}]));
    }

    #[test]
    fn missing_targets_are_invalid() {
        let d = json!({"a": {"b": 1}});
        for p in [
            json!([{"op": "remove", "path": "/nope"}]),
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "add", "path": "/nope/deeper", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/c", "value": 1}]),
            json!([{"op": "move", "from": "/nope", "path": "/x"}]),
            json!([{"op": "copy", "from": "/nope", "path": "/x"}]),
            json!([{"op": "test", "path": "/nope", "value": 1}]),
            json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
            json!([{"op": "remove", "path": ""}]),
        ] {
            let e = fails(d.clone(), p.clone());
            assert_eq!(e.kind(), PatchErrorKind::Invalid, "{p}: {e}");
        }
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        let d = json!({"a": 1});
        for p in [
            json!({"op": "add", "path": "/a", "value": 1}),
            json!([{"path": "/a"}]),
            json!([{"op": "add", "value": 1}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "move", "path": "/a"}]),
            json!(["add"]),
            json!([{"op": "add", "path": "a", "value": 1}]),
        ] {
            let e = fails(d.clone(), p.clone());
            assert_eq!(e.kind(), PatchErrorKind::BadRequest, "{p}: {e}");
            assert_eq!(e.code(), 400);
        }
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        assert_eq!(
            fails(d, Value::Array(many)).kind(),
            PatchErrorKind::BadRequest
        );
    }

    #[test]
    fn replace_move_copy_whole_document_and_nested() {
        assert_eq!(
            ok(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": {"b": 2}}])
            ),
            json!({"b": 2})
        );
        assert_eq!(
            ok(
                json!({"a": 1}),
                json!([{"op": "move", "from": "/a", "path": "/a"}])
            ),
            json!({"a": 1})
        );
        assert_eq!(
            ok(
                json!({"a": {"x": [1]}}),
                json!([{"op": "copy", "from": "/a", "path": "/b"}, {"op": "add", "path": "/b/x/-", "value": 2}])
            ),
            json!({"a": {"x": [1]}, "b": {"x": [1, 2]}})
        );
        assert_eq!(ok(json!({}), json!([])), json!({}));
    }

    /// `kubectl patch deploy x --type json -p '[{"op":"replace","path":"/spec/replicas","value":3}]'`
    #[test]
    fn kubectl_json_patch_of_a_deployment() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
        let out = ok(
            d,
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "b"}
            ]),
        );
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
    }
}
