//! Field selectors (`?fieldSelector=`, `kubectl --field-selector`): `a=b`,
//! `a==b`, `a!=b`, joined by commas, over the fields each kind makes
//! selectable (`metadata.name` and `metadata.namespace` for all; e.g.
//! `spec.nodeName` and `status.phase` for pods), as Kubernetes defines them.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
/// One requirement of a field selector.
pub enum FieldRequirement {
    /// `field=value` or `field==value`.
    Equals(String, String),
    /// `field!=value`.
    NotEquals(String, String),
}

/// A conjunction of field requirements; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

/// The extra selectable fields of a resource (besides `metadata.name` and
/// `metadata.namespace`), by group and plural.
pub fn selectable_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "replicationcontrollers") => &["status.replicas"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}

/// Reads a dotted path as the string a field selector compares against.
fn read_path(obj: &Value, path: &str) -> String {
    // Events' "source" is source.component, or the reporting controller
    // when the event names no source component.
    if path == "source" {
        let component = read_path(obj, "source.component");
        return if component.is_empty() {
            read_path(obj, "reportingComponent")
        } else {
            component
        };
    }
    // A Job's selectable `status.successful` is its `status.succeeded`.
    let path = if path == "status.successful" {
        "status.succeeded"
    } else {
        path
    };
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                // Kubernetes formats the Go zero value of booleans and counts.
                return match path {
                    "spec.hostNetwork" | "spec.unschedulable" => "false".into(),
                    "status.replicas" | "status.succeeded" => "0".into(),
                    _ => String::new(),
                };
            }
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The values of every selectable field of `obj`.
pub fn field_set(group: &str, resource: &str, obj: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let meta = obj.get("metadata");
    let get = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    out.insert("metadata.name".to_string(), get("name"));
    out.insert("metadata.namespace".to_string(), get("namespace"));
    for f in selectable_fields(group, resource) {
        out.insert(f.to_string(), read_path(obj, f));
    }
    out
}

/// Splits on commas that are not escaped with a backslash, keeping the
/// escapes for [`unescape_value`].
fn split_terms(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits a term at its first unescaped operator (`!=`, `==` or `=`, in
/// that order of preference at each position) into field, negation and
/// raw value.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let mut skip_next = false;
    for (i, c) in term.char_indices() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if c == '\\' {
            skip_next = true;
            continue;
        }
        let rest = &term[i..];
        for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
            if rest.starts_with(op) {
                return Some((&term[..i], negate, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Undoes `\\`, `\,` and `\=` in a value; any other escape, and a bare `,`
/// or `=`, is refused as Kubernetes refuses it.
fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ))
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// How a kind's selectable fields are checked, mirroring whether
/// Kubernetes registers a field-label conversion for the kind.
enum Conversion {
    /// Only `metadata.name` and `metadata.namespace`.
    Default,
    /// The kind's own list (including whichever metadata fields it takes),
    /// refused with the given wording.
    Own {
        metadata: &'static [&'static str],
        refuse: fn(&str) -> String,
    },
}

fn not_supported(label: &str) -> String {
    format!("field label not supported: {label}")
}

fn not_supported_for_job(label: &str) -> String {
    format!("field label {label:?} not supported for batchv1.Job")
}

const NAME_AND_NAMESPACE: &[&str] = &["metadata.name", "metadata.namespace"];

fn conversion(group: &str, resource: &str) -> Conversion {
    let own = |metadata, refuse| Conversion::Own { metadata, refuse };
    match (group, resource) {
        // Cluster-scoped kinds with their own conversion take no namespace.
        ("", "nodes") | ("", "namespaces") => own(&["metadata.name"], not_supported),
        ("batch", "jobs") => own(NAME_AND_NAMESPACE, not_supported_for_job),
        (g, r) if !selectable_fields(g, r).is_empty() => own(NAME_AND_NAMESPACE, not_supported),
        _ => Conversion::Default,
    }
}

/// `events.k8s.io` Events are stored as core Events, so their selectable
/// fields are the core ones under other names (Kubernetes'
/// `AddFieldLabelConversionsForEvent`).
fn stored_event_field<'a>(group: &str, resource: &str, field: &'a str) -> &'a str {
    if (group, resource) != ("events.k8s.io", "events") {
        return field;
    }
    match field {
        "reportingController" => "reportingComponent",
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        other => other,
    }
}

/// Why a field selector is refused (a 400 BadRequest); the messages are
/// Kubernetes'.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// The string form does not parse: a term without an operator, or a
    /// bad escape in a value.
    #[error("{0}")]
    Syntax(String),
    /// A field the resource does not make selectable.
    #[error("{0}")]
    NotSelectable(String),
}

impl FieldSelector {
    /// Parses the string form as Kubernetes does: terms split on unescaped
    /// commas (empty terms ignored), each at its first operator; field
    /// names are taken verbatim (no trimming), values unescaped.
    pub fn parse(s: &str) -> Result<FieldSelector, FieldSelectorError> {
        Self::parse_terms(s).map_err(FieldSelectorError::Syntax)
    }

    /// [`FieldSelector::parse`], the error as Kubernetes words it.
    fn parse_terms(s: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        if s.is_empty() {
            return Ok(FieldSelector::default());
        }
        for part in split_terms(s) {
            if part.is_empty() {
                continue;
            }
            let Some((field, negate, raw)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(raw)?;
            let field = field.to_string();
            requirements.push(if negate {
                FieldRequirement::NotEquals(field, value)
            } else {
                FieldRequirement::Equals(field, value)
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks every field against what the resource makes selectable and
    /// maps legacy names (`spec.host` on pods is `spec.nodeName`). Errors
    /// carry Kubernetes' wording for the kind (a 400 BadRequest).
    pub fn convert(
        &self,
        group: &str,
        resource: &str,
    ) -> Result<FieldSelector, FieldSelectorError> {
        self.convert_fields(group, resource)
            .map_err(FieldSelectorError::NotSelectable)
    }

    /// [`FieldSelector::convert`], the error as Kubernetes words it.
    fn convert_fields(&self, group: &str, resource: &str) -> Result<FieldSelector, String> {
        let extra = selectable_fields(group, resource);
        let conv = conversion(group, resource);
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (f, v, negate) = match r {
                FieldRequirement::Equals(f, v) => (f.as_str(), v, false),
                FieldRequirement::NotEquals(f, v) => (f.as_str(), v, true),
            };
            let f = if (group, resource, f) == ("", "pods", "spec.host") {
                "spec.nodeName"
            } else {
                f
            };
            match &conv {
                Conversion::Default => {
                    if !NAME_AND_NAMESPACE.contains(&f) {
                        return Err(format!(
                            "{f:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                        ));
                    }
                }
                Conversion::Own { metadata, refuse } => {
                    if !metadata.contains(&f) && !extra.contains(&f) {
                        return Err(refuse(f));
                    }
                }
            }
            let f = stored_event_field(group, resource, f);
            let (f, v) = (f.to_string(), v.clone());
            requirements.push(if negate {
                FieldRequirement::NotEquals(f, v)
            } else {
                FieldRequirement::Equals(f, v)
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Fails with Kubernetes' message if a field is not selectable for the
    /// resource (see [`FieldSelector::convert`]).
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), FieldSelectorError> {
        self.convert(group, resource).map(|_| ())
    }

    /// Whether the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these field values matches.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            FieldRequirement::Equals(f, v) => fields.get(f).map(String::as_str).unwrap_or("") == v,
            FieldRequirement::NotEquals(f, v) => {
                fields.get(f).map(String::as_str).unwrap_or("") != v
            }
        })
    }

    /// The value an `Equals` requirement demands of a field, if any (lets a
    /// list narrow by name or namespace before filtering).
    pub fn equals(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| match r {
            FieldRequirement::Equals(f, v) if f == field => Some(v.as_str()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running"}});
        let f = field_set("", "pods", &pod);
        assert_eq!(f["spec.nodeName"], "n1");
        assert_eq!(f["status.phase"], "Running");
        assert_eq!(f["spec.hostNetwork"], "false");
        assert_eq!(f["status.podIP"], "");
        for (sel, want) in [
            ("spec.nodeName=n1", true),
            ("spec.nodeName==n2", false),
            ("spec.nodeName!=n2,status.phase=Running", true),
            ("metadata.name=p,metadata.namespace=ns", true),
            ("status.podIP=", true),
            ("status.phase!=Running", false),
        ] {
            let s = FieldSelector::parse(sel).unwrap();
            s.check_supported("", "pods").unwrap();
            assert_eq!(s.matches(&f), want, "{sel}");
        }
    }

    #[test]
    fn unsupported_and_malformed() {
        let s = FieldSelector::parse("spec.foo=bar").unwrap();
        assert_eq!(
            s.check_supported("", "pods").unwrap_err().to_string(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            FieldSelector::parse("spec.nodeName")
                .unwrap_err()
                .to_string(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        // An empty field name parses, and no kind selects on it.
        let empty = FieldSelector::parse("=x").unwrap();
        assert_eq!(
            empty.check_supported("", "pods").unwrap_err().to_string(),
            "field label not supported: "
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
    }

    /// events.k8s.io Events are stored as core Events: their selectors
    /// read the core fields, as Kubernetes' field label conversion maps them.
    #[test]
    fn events_k8s_io_selectors_read_core_fields() {
        let core = json!({"metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reportingComponent": "test-controller",
            "source": {}, "type": "Normal"});
        let stored = field_set("", "events", &core);
        for (selector, matches) in [
            ("reportingController=test-controller", true),
            ("regarding.kind=Pod,regarding.name=p", true),
            ("regarding.name=q", false),
            ("type=Normal,metadata.name=e", true),
        ] {
            let f = FieldSelector::parse(selector)
                .unwrap()
                .convert("events.k8s.io", "events")
                .unwrap();
            assert_eq!(f.matches(&stored), matches, "{selector}");
        }
        assert!(FieldSelector::parse("note=x")
            .unwrap()
            .convert("events.k8s.io", "events")
            .is_err());
    }

    #[test]
    fn events_and_escapes() {
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "a,b"},
            "source": {"component": "kubelet"}, "type": "Normal"});
        let f = field_set("", "events", &ev);
        assert_eq!(f["source"], "kubelet");
        let s = FieldSelector::parse(r"involvedObject.name=a\,b,type=Normal").unwrap();
        assert!(s.matches(&f));
        assert_eq!(s.equals("type"), Some("Normal"));
    }

    #[test]
    fn terms_split_like_kubernetes() {
        let reqs = |sel: &str| FieldSelector::parse(sel).unwrap().requirements;
        use FieldRequirement::{Equals, NotEquals};
        let eq = |f: &str, v: &str| Equals(f.into(), v.into());
        let ne = |f: &str, v: &str| NotEquals(f.into(), v.into());
        assert_eq!(reqs("a==b"), vec![eq("a", "b")]);
        assert_eq!(reqs("a!=b"), vec![ne("a", "b")]);
        assert_eq!(reqs("a="), vec![eq("a", "")]);
        assert_eq!(reqs("a!="), vec![ne("a", "")]);
        // Empty terms are skipped.
        assert_eq!(reqs("a=b,,c!=d,"), vec![eq("a", "b"), ne("c", "d")]);
        // Names are not trimmed: a spaced-out selector names another field.
        assert_eq!(reqs("a = b"), vec![eq("a ", " b")]);
        // Escapes in values.
        assert_eq!(reqs(r"a=x\,y\=z\\w"), vec![eq("a", r"x,y=z\w")]);
        // An escaped operator does not split the term.
        assert_eq!(reqs(r"a\=b=c"), vec![eq(r"a\=b", "c")]);
        let err = |sel: &str| FieldSelector::parse(sel).unwrap_err().to_string();
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: ="
        );
        assert_eq!(
            err(r"a=b\n"),
            r"invalid field selector: invalid escape sequence: \n"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            err("a=b,c"),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
    }

    #[test]
    fn each_kind_refuses_fields_in_its_own_words() {
        let check =
            |g: &str, r: &str, sel: &str| FieldSelector::parse(sel).unwrap().check_supported(g, r);
        // Kinds with no field conversion of their own.
        assert_eq!(
            check("", "configmaps", "data.x=1").unwrap_err().to_string(),
            r#""data.x" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert_eq!(
            check("apps", "deployments", "spec.replicas=1")
                .unwrap_err()
                .to_string(),
            r#""spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert!(check("", "configmaps", "metadata.name=a,metadata.namespace!=b").is_ok());
        // Kinds with their own list.
        assert_eq!(
            check("", "pods", "spec.foo=x").unwrap_err().to_string(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            check("batch", "jobs", "status.succeeded=1")
                .unwrap_err()
                .to_string(),
            r#"field label "status.succeeded" not supported for batchv1.Job"#
        );
        assert!(check("batch", "jobs", "status.successful=1,metadata.namespace=a").is_ok());
        // Nodes and namespaces take no metadata.namespace.
        assert_eq!(
            check("", "nodes", "metadata.namespace=x")
                .unwrap_err()
                .to_string(),
            "field label not supported: metadata.namespace"
        );
        assert!(check("", "nodes", "metadata.name=n,spec.unschedulable=true").is_ok());
        assert!(check("", "namespaces", "status.phase=Active").is_ok());
        assert!(check("", "namespaces", "metadata.namespace=x").is_err());
        for (g, r, sel) in [
            ("", "secrets", "type=Opaque"),
            ("", "replicationcontrollers", "status.replicas=0"),
            ("apps", "replicasets", "status.replicas=0"),
            ("", "services", "spec.clusterIP=None,spec.type=ClusterIP"),
            ("", "events", "involvedObject.uid=u,reason=Started,reportingComponent=k,source=s,type=Normal"),
            ("", "pods", "spec.restartPolicy=Always,spec.schedulerName=default-scheduler,spec.serviceAccountName=default,spec.hostNetwork=false,status.podIP=1.2.3.4,status.nominatedNodeName=n"),
        ] {
            assert!(check(g, r, sel).is_ok(), "{r}: {sel}");
        }
        // Old clients' spec.host means spec.nodeName.
        let s = FieldSelector::parse("spec.host=n1")
            .unwrap()
            .convert("", "pods")
            .unwrap();
        assert_eq!(s.equals("spec.nodeName"), Some("n1"));
        assert!(check("", "services", "spec.host=n1").is_err());
    }

    #[test]
    fn field_values_read_from_objects() {
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        let f = field_set("", "nodes", &node);
        assert_eq!(f["spec.unschedulable"], "true");
        assert_eq!(
            field_set("", "nodes", &json!({"metadata": {"name": "m"}}))["spec.unschedulable"],
            "false"
        );
        let pod = json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true}, "status": {"podIP": "10.42.0.5"}});
        let f = field_set("", "pods", &pod);
        assert_eq!(f["spec.hostNetwork"], "true");
        assert_eq!(f["status.podIP"], "10.42.0.5");
        let rs = json!({"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": 3}});
        assert_eq!(
            field_set("apps", "replicasets", &rs)["status.replicas"],
            "3"
        );
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 1}});
        // A Job's status.successful is its count of succeeded pods.
        assert_eq!(field_set("batch", "jobs", &job)["status.successful"], "1");
        // Counts that are absent read as 0, as Kubernetes formats the integer.
        assert_eq!(
            field_set("batch", "jobs", &json!({}))["status.successful"],
            "0"
        );
        assert_eq!(
            field_set("", "replicationcontrollers", &json!({}))["status.replicas"],
            "0"
        );
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert_eq!(
            field_set("", "secrets", &secret)["type"],
            "kubernetes.io/tls"
        );
        // An event with no source component selects by its reporting controller.
        let ev = json!({"metadata": {"name": "e"}, "reportingComponent": "kubelet"});
        let f = field_set("", "events", &ev);
        assert_eq!(f["source"], "kubelet");
        assert_eq!(f["reportingComponent"], "kubelet");
        let s = FieldSelector::parse("source=kubelet,type!=Warning").unwrap();
        assert!(s.matches(&f));
    }
}
