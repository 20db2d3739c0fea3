//! The names a CRD may have (Kubernetes' `NamingConditionController`): a
//! requested name is accepted if the CRD already holds it or no other CRD
//! of its group (nor a built-in resource of the group) does; the result is
//! `status.acceptedNames`, the `NamesAccepted` condition and the initial
//! `Established` condition (`Installing` once the names are accepted).

use std::collections::BTreeSet;

use ferrokube_api::registry::ResourceDef;
use serde_json::{json, Value};

use super::conditions::{self, Condition};

/// The names already held in one group.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// Plurals, singulars and short names.
    resources: BTreeSet<String>,
    /// Kinds and list kinds.
    kinds: BTreeSet<String>,
}

impl Taken {
    /// The names held in `group` by `crds` (every CRD, the one being named
    /// included, by its accepted names) and by the built-in `rows`.
    pub(crate) fn in_group<'a>(
        group: &str,
        crds: impl IntoIterator<Item = &'a Value>,
        rows: &[ResourceDef],
    ) -> Taken {
        let mut t = Taken::default();
        for crd in crds {
            if crd.pointer("/spec/group").and_then(Value::as_str) != Some(group) {
                continue;
            }
            let Some(n) = crd.pointer("/status/acceptedNames") else {
                continue;
            };
            let s = |k: &str| {
                n.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            t.resources.insert(s("plural"));
            t.resources.insert(s("singular"));
            t.resources.extend(strings(n.get("shortNames")));
            t.kinds.insert(s("kind"));
            t.kinds.insert(s("listKind"));
        }
        for r in rows.iter().filter(|r| r.group == group) {
            t.resources.insert(r.plural.to_string());
            t.resources.insert(r.singular.to_string());
            t.resources
                .extend(r.short_names.iter().map(|s| s.to_string()));
            t.kinds.insert(r.kind.to_string());
            t.kinds.insert(r.list_kind());
        }
        t.resources.remove("");
        t.kinds.remove("");
        t
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `equalToAcceptedOrFresh`.
fn fresh(requested: &str, accepted: &str, used: &BTreeSet<String>) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// What the naming controller writes.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The new `status.acceptedNames`.
    pub(crate) accepted: Value,
    /// `NamesAccepted`.
    pub(crate) names: Condition,
    /// `Established` (kept if already set, `Installing` once accepted).
    pub(crate) established: Condition,
}

/// Whether the names requested equal those accepted (nothing to do).
pub(crate) fn settled(crd: &Value) -> bool {
    let norm = |v: Option<&Value>| {
        let v = v.cloned().unwrap_or(json!({}));
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (
            s("plural"),
            s("singular"),
            s("kind"),
            s("listKind"),
            strings(v.get("shortNames")),
            strings(v.get("categories")),
        )
    };
    norm(crd.pointer("/spec/names")) == norm(crd.pointer("/status/acceptedNames"))
}

/// `calculateNamesAndConditions`.
pub(crate) fn calculate(crd: &Value, taken: &Taken) -> Outcome {
    let empty = json!({});
    let req = crd.pointer("/spec/names").unwrap_or(&empty);
    let acc = crd.pointer("/status/acceptedNames").unwrap_or(&empty);
    let s = |n: &Value, k: &str| {
        n.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut new = acc.as_object().cloned().unwrap_or_default();
    let mut conflict: Option<(&str, String)> = None;
    for (key, reason, used) in [
        ("plural", "PluralConflict", &taken.resources),
        ("singular", "SingularConflict", &taken.resources),
    ] {
        match fresh(&s(req, key), &s(acc, key), used) {
            Ok(()) => {
                new.insert(key.into(), json!(s(req, key)));
            }
            Err(e) => conflict = Some((reason, e)),
        }
    }
    let (want, have) = (
        strings(req.get("shortNames")),
        strings(acc.get("shortNames")),
    );
    if want != have {
        let errs: Vec<String> = want
            .iter()
            .filter(|n| !have.contains(n) && **n != s(acc, "plural") && **n != s(acc, "singular"))
            .filter_map(|n| fresh(n, "", &taken.resources).err())
            .collect();
        match errs.as_slice() {
            [] => {
                new.insert("shortNames".into(), json!(want));
            }
            [one] => conflict = Some(("ShortNamesConflict", one.clone())),
            many => conflict = Some(("ShortNamesConflict", format!("[{}]", many.join(", ")))),
        }
    }
    for (key, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match fresh(&s(req, key), &s(acc, key), &taken.kinds) {
            Ok(()) => {
                new.insert(key.into(), json!(s(req, key)));
            }
            Err(e) => conflict = Some((reason, e)),
        }
    }
    match req.get("categories") {
        Some(c) => new.insert("categories".into(), c.clone()),
        None => new.remove("categories"),
    };
    let names = match conflict {
        Some((reason, message)) => Condition::new("NamesAccepted", "False", reason, message),
        None => Condition::new("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
    };
    Outcome {
        accepted: Value::Object(new),
        established: established(crd, &names),
        names,
    }
}

/// The `Established` condition the naming controller writes.
fn established(crd: &Value, names: &Condition) -> Condition {
    let old = conditions::find(crd, "Established");
    let s = |k: &str| {
        old.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let old_status = match s("status").as_str() {
        "True" => "True",
        "Unknown" => "Unknown",
        _ => "False",
    };
    if old_status != "True" && names.status == "True" {
        return Condition::new(
            "Established",
            "False",
            "Installing",
            "the initial names have been accepted",
        );
    }
    match old {
        Some(_) => Condition::new("Established", old_status, s("reason"), s("message")),
        None => Condition::new(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> Value {
        json!({"metadata": {"name": name}, "spec": {"group": "example.com",
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind,
                      "listKind": format!("{kind}List"), "shortNames": short}}})
    }

    fn accept(c: &mut Value) {
        c["status"] = json!({"acceptedNames": c["spec"]["names"].clone()});
    }

    #[test]
    fn fresh_names_are_accepted_and_the_crd_is_installing() {
        let c = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        let out = calculate(&c, &Taken::in_group("example.com", [&c], &[]));
        assert_eq!(out.accepted, c["spec"]["names"]);
        assert_eq!(out.names.status, "True");
        assert_eq!(out.names.reason, "NoConflicts");
        assert_eq!(out.names.message, "no conflicts found");
        assert_eq!(
            (out.established.status, out.established.reason.as_str()),
            ("False", "Installing")
        );
    }

    #[test]
    fn a_name_held_by_another_crd_of_the_group_is_a_conflict() {
        let mut a = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        accept(&mut a);
        let b = crd("gadgets.example.com", "gadgets", "Widget", &["wd"]);
        let out = calculate(&b, &Taken::in_group("example.com", [&a, &b], &[]));
        assert_eq!(out.names.status, "False");
        assert_eq!(out.names.reason, "ListKindConflict");
        assert_eq!(out.names.message, "\"WidgetList\" is already in use");
        assert_eq!(out.accepted["plural"], "gadgets");
        assert!(out.accepted.get("kind").is_none());
        assert!(out.accepted.get("shortNames").is_none());
        assert_eq!(
            (
                out.established.reason.as_str(),
                out.established.message.as_str()
            ),
            ("NotAccepted", "not all names are accepted")
        );
    }

    #[test]
    fn built_in_names_of_the_group_are_taken() {
        let rows = ferrokube_api::registry::builtin();
        let c = json!({"spec": {"group": "apps", "names": {"plural": "deployments",
            "singular": "thing", "kind": "Thing", "listKind": "ThingList"}}});
        let out = calculate(&c, &Taken::in_group("apps", [&c], &rows));
        assert_eq!(out.names.reason, "PluralConflict");
        assert_eq!(out.names.message, "\"deployments\" is already in use");
    }

    #[test]
    fn names_already_accepted_are_settled() {
        let mut c = crd("widgets.example.com", "widgets", "Widget", &[]);
        assert!(!settled(&c));
        accept(&mut c);
        assert!(settled(&c));
    }
}
