//! `networking.k8s.io/v1`: NetworkPolicy, Ingress and IngressClass, with
//! Kubernetes' defaults and validation messages, and the DefaultIngressClass
//! admission (an Ingress that names no class gets the class marked
//! `ingressclass.kubernetes.io/is-default-class: "true"`).

use std::net::IpAddr;

use ferrokube_api::status::{ApiError, FieldError};
use ferrokube_api::validation::{
    is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name,
};
use serde_json::{json, Value};

use super::meta::{array, label_selector, port_name_errors, port_number_errors, text};
use crate::rest::Rest;

/// The annotation that marks the default IngressClass.
pub(super) const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The legacy annotation that names an Ingress's class.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Ports default to TCP; `policyTypes` to `Ingress`, plus `Egress` when
/// egress rules are given.
pub(crate) fn default_network_policy(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for dir in ["ingress", "egress"] {
        if let Some(rules) = spec.get_mut(dir).and_then(Value::as_array_mut) {
            for rule in rules {
                if let Some(ports) = rule.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(p) = p.as_object_mut() {
                            p.entry("protocol").or_insert_with(|| json!("TCP"));
                        }
                    }
                }
            }
        }
    }
    let empty = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if empty {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

/// A parameters reference without a scope is cluster-scoped.
pub(crate) fn default_ingress_class(obj: &mut Value) {
    if let Some(p) = obj
        .pointer_mut("/spec/parameters")
        .and_then(Value::as_object_mut)
    {
        p.entry("scope").or_insert_with(|| json!("Cluster"));
    }
}

pub(crate) fn validate_network_policy(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    label_selector(
        obj.pointer("/spec/podSelector").unwrap_or(&Value::Null),
        "spec.podSelector",
        &mut errs,
    );
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in array(obj, &format!("/spec/{dir}")).iter().enumerate() {
            let at = format!("spec.{dir}[{i}]");
            for (j, port) in array(rule, "/ports").iter().enumerate() {
                network_policy_port(port, &format!("{at}.ports[{j}]"), &mut errs);
            }
            for (j, peer) in array(rule, &format!("/{peers}")).iter().enumerate() {
                network_policy_peer(peer, &format!("{at}.{peers}[{j}]"), &mut errs);
            }
        }
    }
    let types = array(obj, "/spec/policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid_shown(
            "spec.policyTypes",
            format!(
                "[]networking.PolicyType{{{}}}",
                types
                    .iter()
                    .map(|t| format!("{:?}", t.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                format!("spec.policyTypes[{i}]"),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

fn network_policy_port(port: &Value, at: &str, errs: &mut Vec<FieldError>) {
    if let Some(proto) = port.get("protocol").and_then(Value::as_str) {
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            errs.push(FieldError::not_supported(
                format!("{at}.protocol"),
                proto,
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    match port.get("port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in port_number_errors(n) {
                errs.push(FieldError::invalid(format!("{at}.port"), n, msg));
            }
            if let Some(end) = port.get("endPort").and_then(Value::as_i64) {
                if end < n {
                    errs.push(FieldError::invalid(
                        format!("{at}.endPort"),
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
                for msg in port_number_errors(end) {
                    errs.push(FieldError::invalid(format!("{at}.endPort"), end, msg));
                }
            }
        }
        Some(Value::String(name)) => {
            for msg in port_name_errors(name) {
                errs.push(FieldError::invalid(
                    format!("{at}.port"),
                    name.as_str(),
                    msg,
                ));
            }
            if port.get("endPort").is_some() {
                errs.push(FieldError::invalid(
                    format!("{at}.endPort"),
                    port["endPort"].clone(),
                    "may not be specified when `port` is non-numeric",
                ));
            }
        }
        _ => {
            if port.get("endPort").is_some() {
                errs.push(FieldError::invalid(
                    format!("{at}.endPort"),
                    port["endPort"].clone(),
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn network_policy_peer(peer: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let mut peers = 0;
    for sel in ["podSelector", "namespaceSelector"] {
        if let Some(s) = peer.get(sel).filter(|s| !s.is_null()) {
            peers += 1;
            label_selector(s, &format!("{at}.{sel}"), errs);
        }
    }
    let ip_block = peer.get("ipBlock").filter(|b| !b.is_null());
    if let Some(block) = ip_block {
        peers += 1;
        validate_ip_block(block, &format!("{at}.ipBlock"), errs);
    }
    if peers == 0 {
        errs.push(FieldError::required(at, "must specify a peer"));
    } else if peers > 1 && ip_block.is_some() {
        errs.push(FieldError::forbidden(
            at,
            "may not specify both ipBlock and another peer",
        ));
    }
}

/// An address and prefix length, as a CIDR parses.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Whether `ip` is in `net/len`.
fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    if net.is_ipv4() != ip.is_ipv4() {
        return false;
    }
    if len == 0 {
        return true;
    }
    let shift = if net.is_ipv4() {
        32 - len as u32 + 96
    } else {
        128 - len as u32
    };
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    bits(net) & mask == bits(ip) & mask
}

fn validate_ip_block(block: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let cidr = text(block, "/cidr");
    if cidr.is_empty() {
        errs.push(FieldError::required(format!("{at}.cidr"), ""));
        return;
    }
    let Some((net, len)) = parse_cidr(cidr) else {
        errs.push(FieldError::invalid(
            format!("{at}.cidr"),
            cidr,
            "not a valid CIDR",
        ));
        return;
    };
    for (i, except) in array(block, "/except").iter().enumerate() {
        let except = except.as_str().unwrap_or("");
        let here = format!("{at}.except[{i}]");
        let Some((ip, elen)) = parse_cidr(except) else {
            errs.push(FieldError::invalid(here, except, "not a valid CIDR"));
            return;
        };
        if !contains(net, len, ip) || len >= elen {
            errs.push(FieldError::invalid(
                here,
                except,
                "must be a strict subset of `cidr`",
            ));
        }
    }
}

pub(crate) fn validate_ingress(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let rules = array(spec, "/rules");
    let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid_shown(
            "spec",
            "[]networking.IngressRule(nil)",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        ingress_backend(b, "spec.defaultBackend", &mut errs);
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = text(rule, "/host");
        if !host.is_empty() {
            if host.parse::<IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    format!("{at}.host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                wildcard_subdomain_errors(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for msg in msgs {
                errs.push(FieldError::invalid(format!("{at}.host"), host, msg));
            }
        }
        if let Some(http) = rule.get("http").filter(|h| !h.is_null()) {
            let paths = array(http, "/paths");
            if paths.is_empty() {
                errs.push(FieldError::required(format!("{at}.http.paths"), ""));
            }
            for (j, path) in paths.iter().enumerate() {
                ingress_path(path, &format!("{at}.http.paths[{j}]"), &mut errs);
            }
        }
    }
    for (i, tls) in array(spec, "/tls").iter().enumerate() {
        for (j, host) in array(tls, "/hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let msgs = if host.contains('*') {
                wildcard_subdomain_errors(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for msg in msgs {
                errs.push(FieldError::invalid(
                    format!("spec.tls[{i}].hosts[{j}]"),
                    host,
                    msg,
                ));
            }
        }
        let secret = text(tls, "/secretName");
        if !secret.is_empty() {
            for msg in is_dns1123_subdomain(secret) {
                errs.push(FieldError::invalid(
                    format!("spec.tls[{i}].secretName"),
                    secret,
                    msg,
                ));
            }
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        for msg in is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid("spec.ingressClassName", class, msg));
        }
        if let Some(a) = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CLASS_ANNOTATION))
            .and_then(Value::as_str)
        {
            errs.push(FieldError::invalid(
                format!("annotations.{CLASS_ANNOTATION}"),
                a,
                "can not be set when the class field is also set",
            ));
        }
    }
    errs
}

const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

fn ingress_path(path: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let Some(kind) = path.get("pathType").and_then(Value::as_str) else {
        errs.push(FieldError::required(
            format!("{at}.pathType"),
            "pathType must be specified",
        ));
        return;
    };
    let p = text(path, "/path");
    match kind {
        "Exact" | "Prefix" => {
            if !p.starts_with('/') {
                errs.push(FieldError::invalid(
                    format!("{at}.path"),
                    p,
                    "must be an absolute path",
                ));
            }
            if !p.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if p.contains(seq) {
                        errs.push(FieldError::invalid(
                            format!("{at}.path"),
                            p,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if p.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            format!("{at}.path"),
                            p,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !p.is_empty() && !p.starts_with('/') {
                errs.push(FieldError::invalid(
                    format!("{at}.path"),
                    p,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{at}.pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    ingress_backend(
        path.get("backend").unwrap_or(&Value::Null),
        &format!("{at}.backend"),
        errs,
    );
}

fn ingress_backend(backend: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let resource = backend.get("resource").filter(|r| !r.is_null());
    let service = backend.get("service").filter(|s| !s.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            at,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => typed_reference(r, &format!("{at}.resource"), false, errs),
        (None, Some(s)) => {
            let name = text(s, "/name");
            if name.is_empty() {
                errs.push(FieldError::required(format!("{at}.service.name"), ""));
            } else {
                for msg in is_dns1035_label(name) {
                    errs.push(FieldError::invalid(format!("{at}.service.name"), name, msg));
                }
            }
            let port_name = text(s, "/port/name");
            let port_number = s
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match (port_name.is_empty(), port_number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    at,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => {
                    for msg in port_name_errors(port_name) {
                        errs.push(FieldError::invalid(
                            format!("{at}.service.port.name"),
                            port_name,
                            msg,
                        ));
                    }
                }
                (true, false) => {
                    for msg in port_number_errors(port_number) {
                        errs.push(FieldError::invalid(
                            format!("{at}.service.port.number"),
                            port_number,
                            msg,
                        ));
                    }
                }
                (true, true) => {
                    errs.push(FieldError::required(at, "port name or number is required"))
                }
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            at,
            "",
            "resource or service backend is required",
        )),
    }
}

/// A `TypedLocalObjectReference` (`with_scope`: an IngressClass's
/// parameters, which also have a scope and namespace).
fn typed_reference(r: &Value, at: &str, with_scope: bool, errs: &mut Vec<FieldError>) {
    if let Some(group) = r.get("apiGroup").and_then(Value::as_str) {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(format!("{at}.apiGroup"), group, msg));
        }
    }
    for (field, what) in [("kind", "kind is required"), ("name", "name is required")] {
        let v = text(r, &format!("/{field}"));
        if v.is_empty() {
            errs.push(FieldError::required(format!("{at}.{field}"), what));
        } else {
            for msg in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(format!("{at}.{field}"), v, msg));
            }
        }
    }
    if !with_scope {
        return;
    }
    let namespace = r.get("namespace").and_then(Value::as_str);
    match r.get("scope").and_then(Value::as_str) {
        Some("Namespace") => {
            if namespace.is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("{at}.namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                ));
            }
        }
        Some("Cluster") | None => {
            if namespace.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{at}.namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            format!("{at}.scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for msg in ferrokube_api::validation::is_dns1123_label(ns) {
            errs.push(FieldError::invalid(format!("{at}.namespace"), ns, msg));
        }
    }
}

const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

pub(crate) fn validate_ingress_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let controller = text(obj, "/spec/controller");
    if controller.len() > 250 {
        errs.push(FieldError::too_long("spec.controller", 250));
    }
    // `IsDomainPrefixedPath`.
    match controller.split_once('/') {
        _ if controller.is_empty() => errs.push(FieldError::required("spec.controller", "")),
        Some((host, path)) if !host.is_empty() && !path.is_empty() => {
            for msg in is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid("spec.controller", host, msg));
            }
            let ok = path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
            if !ok {
                errs.push(FieldError::invalid(
                    "spec.controller",
                    path,
                    format!("Invalid path (regex used for validation is '{HTTP_PATH_FMT}')"),
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.controller",
            controller,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
    }
    if let Some(p) = obj.pointer("/spec/parameters").filter(|p| !p.is_null()) {
        typed_reference(p, "spec.parameters", true, &mut errs);
    }
    errs
}

/// `IsWildcardDNS1123Subdomain`.
fn wildcard_subdomain_errors(host: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if host.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = host
        .strip_prefix("*.")
        .is_some_and(|rest| is_dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string(),
        );
    }
    errs
}

/// The DefaultIngressClass admission: an Ingress that names no class
/// (neither `spec.ingressClassName` nor the legacy annotation) gets the
/// default IngressClass, the newest when several are marked.
pub(super) async fn admit_ingress(rest: &Rest, _ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    if obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|c| !c.is_null())
    {
        return Ok(());
    }
    if obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .is_some()
    {
        return Ok(());
    }
    let Some(def) = rest.kinds.get("networking.k8s.io", "v1", "ingressclasses") else {
        return Ok(());
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return Ok(());
    };
    let mut defaults: Vec<Value> = cache
        .list(&def.list_prefix(""))
        .into_iter()
        .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
        .filter(|c| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .and_then(Value::as_str)
                == Some("true")
        })
        .collect();
    // The newest wins; among equally new ones, the first by name.
    defaults.sort_by(|a, b| {
        let created = |v: &Value| text(v, "/metadata/creationTimestamp").to_string();
        created(b)
            .cmp(&created(a))
            .then_with(|| text(a, "/metadata/name").cmp(text(b, "/metadata/name")))
    });
    if let Some(class) = defaults.first() {
        let name = text(class, "/metadata/name").to_string();
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("ingressClassName".into(), json!(name));
        } else if let Some(o) = obj.as_object_mut() {
            o.insert("spec".into(), json!({"ingressClassName": name}));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn network_policies_are_defaulted_and_checked() {
        let mut np = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        default_network_policy(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert!(validate_network_policy(&np).is_empty());
        let bad = json!({"spec": {"podSelector": {}, "ingress": [{
            "ports": [{"protocol": "ICMP", "port": 70000}],
            "from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}, "podSelector": {}}]}],
            "policyTypes": ["Sideways"]}});
        assert_eq!(
            messages(validate_network_policy(&bad)),
            [
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
                "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
            ]
        );
    }

    #[test]
    fn ingresses_are_checked_like_kubernetes() {
        assert_eq!(
            messages(validate_ingress(&json!({"spec": {}}))),
            ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
        );
        let ing = json!({"spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
            {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "/", "backend": {"service": {"name": "web"}}},
            {"path": "/", "pathType": "Regex", "backend": {"service": {"name": "Web", "port": {"name": "http"}}}}]}},
            {"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Exact", "backend": {}}]}}]}});
        assert_eq!(
            messages(validate_ingress(&ing)),
            [
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path",
                "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified",
                "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                "spec.rules[0].http.paths[2].backend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.rules[1].http.paths[0].backend: Invalid value: \"\": resource or service backend is required",
            ]
        );
    }

    #[test]
    fn ingress_classes_name_their_controller() {
        let mut c = json!({"spec": {"controller": "example.com/ingress",
            "parameters": {"kind": "Params", "name": "p"}}});
        default_ingress_class(&mut c);
        assert_eq!(c["spec"]["parameters"]["scope"], "Cluster");
        assert!(validate_ingress_class(&c).is_empty());
        assert_eq!(
            messages(validate_ingress_class(&json!({"spec": {"controller": "nginx"}}))),
            ["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"]
        );
        assert_eq!(
            messages(validate_ingress_class(&json!({"spec": {}}))),
            ["spec.controller: Required value"]
        );
    }
}
