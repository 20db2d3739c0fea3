//! Field selectors (`?fieldSelector=`, `kubectl --field-selector`): `a=b`,
//! `a==b`, `a!=b`, joined by commas, over the fields each kind makes
//! selectable (`metadata.name` and `metadata.namespace` for all; e.g.
//! `spec.nodeName` and `status.phase` for pods), as Kubernetes defines them.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldRequirement {
    Equals(String, String),
    NotEquals(String, String),
}

/// A conjunction of field requirements; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
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
    // Events' "source" is source.component.
    let path = if path == "source" {
        "source.component"
    } else {
        path
    };
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                return match path {
                    "spec.hostNetwork" | "spec.unschedulable" => "false".into(),
                    _ => String::new(),
                }
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

/// Splits on commas that are not escaped with a backslash.
fn split_unescaped(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

impl FieldSelector {
    /// Parses the string form.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        for part in split_unescaped(s) {
            let part = part.trim();
            let (field, value, negate) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim().to_string();
            if field.is_empty() {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            }
            let value = value.trim().to_string();
            requirements.push(if negate {
                FieldRequirement::NotEquals(field, value)
            } else {
                FieldRequirement::Equals(field, value)
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Fails with Kubernetes' message if a field is not selectable for the
    /// resource.
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), String> {
        let extra = selectable_fields(group, resource);
        for r in &self.requirements {
            let f = match r {
                FieldRequirement::Equals(f, _) | FieldRequirement::NotEquals(f, _) => f,
            };
            if f != "metadata.name" && f != "metadata.namespace" && !extra.contains(&f.as_str()) {
                return Err(format!("field label not supported: {f}"));
            }
        }
        Ok(())
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
            s.check_supported("", "pods").unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert!(FieldSelector::parse("spec.nodeName").is_err());
        assert!(FieldSelector::parse("=x").is_err());
        assert!(FieldSelector::parse("").unwrap().is_empty());
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
}
