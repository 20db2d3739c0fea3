//! Name, label and object-metadata validation as Kubernetes' apimachinery
//! does it: each check returns Kubernetes' own messages (a name may earn two,
//! e.g. too long *and* badly formed), and [`validate_object_meta`] turns them
//! into [`FieldError`]s that [`crate::status::ApiError::invalid`] renders as a
//! 422 `Invalid` with one cause per error.

use serde_json::Value;

use crate::status::FieldError;

/// The longest DNS-1123 label.
pub(crate) const DNS1123_LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain.
pub(crate) const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The longest DNS-1035 label.
pub(crate) const DNS1035_LABEL_MAX: usize = 63;
/// The longest name part of a qualified name.
pub(crate) const QUALIFIED_NAME_MAX: usize = 63;
/// The longest label value.
pub(crate) const LABEL_VALUE_MAX: usize = 63;
/// The most bytes all of an object's annotations may take together.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// Kubernetes' wording for a value that does not match a pattern: the rule,
/// examples, and the pattern itself (with its famous double space after the
/// first of several examples).
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = msg.to_string();
    if examples.is_empty() {
        out.push_str(&format!(" (regex used for validation is '{fmt}')"));
        return out;
    }
    out.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_alnum(f)
                && is_alnum(l)
                && b.iter()
                    .all(|&c| is_alnum(c) || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Messages for a DNS-1123 label (namespaces' names); empty when valid.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// Messages for a DNS-1123 subdomain (most kinds' names); empty when valid.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Messages for a DNS-1035 label (services' names); empty when valid.
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1035_LABEL_MAX {
        errs.push(max_len_error(DNS1035_LABEL_MAX));
    }
    if !(matches_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Messages for a name used as one URL path segment (RBAC objects' names).
pub fn is_valid_path_segment_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s == "." || s == ".." {
        errs.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Messages for a qualified name (a label or annotation key):
/// `[prefix/]name`, the prefix a DNS subdomain, the name at most 63
/// characters.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"],
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            )
        ));
    }
    errs
}

/// Messages for a label value: empty, or a qualified name part.
pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !s.is_empty() && !matches_qualified_name_part(s) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// The rule a kind's object names follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Namespaces.
    Dns1123Label,
    /// Most kinds.
    Dns1123Subdomain,
    /// Services.
    Dns1035Label,
    /// RBAC roles and bindings: anything usable as a path segment.
    PathSegment,
    /// CronJobs: a subdomain of at most 52 characters (the Jobs it makes
    /// append an 11-character suffix).
    CronJob,
    /// CertificateSigningRequests: any name ("We don't care what you call
    /// your certificate requests").
    Any,
}

impl NameRule {
    /// The rule Kubernetes applies to names of `kind` in `group`.
    pub fn for_kind(group: &str, kind: &str) -> NameRule {
        match (group, kind) {
            ("", "Namespace") => NameRule::Dns1123Label,
            ("", "Service") => NameRule::Dns1035Label,
            // APIServices are named `version.group`: `v1.` for the core group.
            ("rbac.authorization.k8s.io", _) | ("apiregistration.k8s.io", "APIService") => {
                NameRule::PathSegment
            }
            ("batch", "CronJob") => NameRule::CronJob,
            ("certificates.k8s.io", "CertificateSigningRequest") => NameRule::Any,
            _ => NameRule::Dns1123Subdomain,
        }
    }

    /// Messages for `name`; with `prefix`, `name` is a `generateName`, whose
    /// trailing dash is allowed (a random suffix follows it).
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix
            && matches!(
                self,
                NameRule::Dns1123Label
                    | NameRule::Dns1123Subdomain
                    | NameRule::Dns1035Label
                    | NameRule::CronJob
            ) {
            masked = mask_trailing_dash(name);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment => is_valid_path_segment_name(name),
            NameRule::CronJob => is_dns1123_subdomain(name),
            NameRule::Any => Vec::new(),
        }
    }
}

fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => name.to_string(),
    }
}

/// Validates `metadata` the way `ValidateObjectMeta` does for an object of
/// a kind with name rule `rule`: name or generateName, namespace presence by
/// scope, labels and annotations. Field paths start at `metadata`.
pub fn validate_object_meta(meta: &Value, rule: NameRule, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let s = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
    let (name, generate_name, namespace) = (s("name"), s("generateName"), s("namespace"));
    if !generate_name.is_empty() {
        for m in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                m,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for m in rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, m));
        }
    }
    if rule == NameRule::CronJob && name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        "metadata.annotations",
    ));
    errs
}

/// Label keys and values; errors name the map's path, as Kubernetes does.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        match v.as_str() {
            Some(v) => {
                for m in is_valid_label_value(v) {
                    errs.push(FieldError::invalid(path, v, m));
                }
            }
            None => errs.push(FieldError::invalid(
                path,
                v.clone(),
                "label values must be strings",
            )),
        }
    }
    errs
}

/// Annotation keys (qualified names, checked lower-cased) and their total
/// size (keys plus values, at most 256 KiB).
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        for m in is_qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ApiError;
    use serde_json::json;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

    #[test]
    fn name_formats() {
        for ok in ["a", "0", "web-1", "a.b.c", "x".repeat(253).as_str()] {
            assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        assert_eq!(is_dns1123_subdomain("Web_1"), vec![SUBDOMAIN_MSG]);
        for bad in ["", "-a", "a-", "a..b", ".a", "a.", "a b"] {
            assert_eq!(is_dns1123_subdomain(bad), vec![SUBDOMAIN_MSG], "{bad:?}");
        }
        assert_eq!(
            is_dns1123_subdomain(&"x".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
        assert!(is_dns1123_label("kube-system").is_empty());
        assert_eq!(is_dns1123_label("a.b"), vec![LABEL_MSG]);
        assert_eq!(
            is_dns1123_label(&"-".repeat(64)),
            vec![
                "must be no more than 63 characters".to_string(),
                LABEL_MSG.to_string()
            ]
        );
        assert!(is_dns1035_label("my-svc").is_empty());
        assert_eq!(is_dns1035_label("1svc"), vec![DNS1035_MSG]);
        assert!(is_valid_path_segment_name("system:controller:job-controller").is_empty());
        assert_eq!(is_valid_path_segment_name(".."), vec!["may not be '..'"]);
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    #[test]
    fn label_keys_and_values() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("MyName").is_empty());
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            is_qualified_name("Example.com/a"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(is_qualified_name("a/").len(), 2, "empty name part");
        assert_eq!(is_qualified_name("a/")[0], "name part must be non-empty");
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist of"));
        assert!(is_qualified_name("-a")[0].starts_with(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ));
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_3-x").is_empty());
        assert_eq!(
            is_valid_label_value("-x"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
        assert_eq!(
            is_valid_label_value(&"v".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn rules_by_kind() {
        assert_eq!(NameRule::for_kind("", "Namespace"), NameRule::Dns1123Label);
        assert_eq!(NameRule::for_kind("", "Service"), NameRule::Dns1035Label);
        assert_eq!(NameRule::for_kind("", "Pod"), NameRule::Dns1123Subdomain);
        assert_eq!(
            NameRule::for_kind("apps", "Deployment"),
            NameRule::Dns1123Subdomain
        );
        assert_eq!(
            NameRule::for_kind("rbac.authorization.k8s.io", "ClusterRole"),
            NameRule::PathSegment
        );
        assert_eq!(NameRule::for_kind("batch", "CronJob"), NameRule::CronJob);
        // A service named like a pod is refused; a pod so named is fine.
        assert!(NameRule::Dns1035Label.check("1-web", false).len() == 1);
        assert!(NameRule::Dns1123Subdomain.check("1-web", false).is_empty());
        // generateName may end in a dash.
        assert!(NameRule::Dns1123Subdomain.check("web-", true).is_empty());
        assert!(!NameRule::Dns1123Subdomain.check("web-", false).is_empty());
    }

    #[test]
    fn object_meta_errors_become_a_422_like_kubernetes() {
        let errs = validate_object_meta(
            &json!({"name": "Web_1", "namespace": "default"}),
            NameRule::Dns1123Subdomain,
            true,
        );
        let e = ApiError::invalid("", "Pod", "Web_1", &errs);
        assert_eq!(
            e.message,
            format!(
                r#"Pod "Web_1" is invalid: metadata.name: Invalid value: "Web_1": {SUBDOMAIN_MSG}"#
            )
        );
        let st = e.to_status();
        assert_eq!(st["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");

        let errs = validate_object_meta(
            &json!({"namespace": "default"}),
            NameRule::Dns1123Subdomain,
            true,
        );
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert!(validate_object_meta(
            &json!({"generateName": "web-", "namespace": "default"}),
            NameRule::Dns1123Subdomain,
            true
        )
        .is_empty());

        let errs = validate_object_meta(
            &json!({"name": "n", "namespace": "x"}),
            NameRule::Dns1123Subdomain,
            false,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        let errs = validate_object_meta(&json!({"name": "c"}), NameRule::Dns1123Subdomain, true);
        assert_eq!(errs[0].to_string(), "metadata.namespace: Required value");

        let errs = validate_object_meta(
            &json!({"name": "c", "namespace": "d", "labels": {"-bad": "ok", "good": "-bad"}}),
            NameRule::Dns1123Subdomain,
            true,
        );
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.field == "metadata.labels"));
        assert!(errs[0]
            .to_string()
            .starts_with(r#"metadata.labels: Invalid value: "-bad": name part must consist"#));
        assert!(errs[1]
            .to_string()
            .starts_with(r#"metadata.labels: Invalid value: "-bad": a valid label must"#));

        let long = "x".repeat(53);
        let errs = validate_object_meta(
            &json!({"name": long, "namespace": "d"}),
            NameRule::CronJob,
            true,
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .ends_with(": must be no more than 52 characters"));
    }

    #[test]
    fn annotations_are_bounded() {
        let big = "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let errs = validate_annotations(Some(&json!({"a": big})), "metadata.annotations");
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        // Keys are checked lower-cased, so capitals in a prefix are fine.
        assert!(validate_annotations(
            Some(&json!({"Example.COM/Key": "v"})),
            "metadata.annotations"
        )
        .is_empty());
        assert_eq!(
            validate_annotations(Some(&json!({"a b": "v"})), "metadata.annotations").len(),
            1
        );
    }
}
