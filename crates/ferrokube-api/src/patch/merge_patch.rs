//! RFC 7386 JSON merge patch (`application/merge-patch+json`), what
//! `kubectl patch --type merge` and `kubectl label`/`annotate` send: objects
//! merge recursively, `null` deletes a member, anything else (arrays
//! included) replaces the target value.

use serde_json::{Map, Value};

/// Applies `patch` to `target` as RFC 7386 says. Cannot fail: every JSON
/// value is a valid merge patch (a non-object patch replaces the target).
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386 appendix A, target / patch / result.
    #[test]
    fn rfc7386_appendix_a() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(merge_patch(&target, &patch), want, "{target} + {patch}");
        }
    }

    /// `kubectl label pod p a=1 b-` sends a merge patch of metadata.labels
    /// with null for the removed label.
    #[test]
    fn kubectl_label_adds_and_removes() {
        let pod = json!({"metadata": {"name": "p", "labels": {"b": "2", "c": "3"}}, "spec": {"containers": [{"name": "c"}]}});
        let patch = json!({"metadata": {"labels": {"a": "1", "b": null}}});
        let out = merge_patch(&pod, &patch);
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        assert_eq!(out["spec"], pod["spec"], "untouched fields stay");
        assert_eq!(out["metadata"]["name"], "p");
    }

    #[test]
    fn arrays_are_replaced_not_merged() {
        let d = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let out = merge_patch(&d, &json!({"spec": {"containers": [{"name": "x"}]}}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "x"}]));
    }

    #[test]
    fn inputs_are_not_modified() {
        let d = json!({"a": {"b": 1}});
        let p = json!({"a": {"b": null}});
        let _ = merge_patch(&d, &p);
        assert_eq!(d, json!({"a": {"b": 1}}));
        assert_eq!(p, json!({"a": {"b": null}}));
    }
}
