//! Table columns and cells of the kinds served beside the workloads:
//! `networking.k8s.io` (NetworkPolicy, Ingress, IngressClass), PodTemplate,
//! RuntimeClass, ResourceQuota, PodDisruptionBudget, `flowcontrol.apiserver.k8s.io` (FlowSchema,
//! PriorityLevelConfiguration) and CertificateSigningRequest, as upstream's
//! printers lay them out (the server's Tables are always the wide ones, so
//! an Ingress address is never clipped).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{age, array, c, containers_and_images, human_duration, name, selector_text, text};
use super::{Column, AGE, NAME};

/// The columns of `kind`, or `None` if it is not one of these kinds.
pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    Some(match (group, kind) {
        ("", "PodTemplate") => vec![
            NAME,
            c("Containers", "string", 0),
            c("Images", "string", 0),
            c("Pod Labels", "string", 0),
        ],
        ("networking.k8s.io", "NetworkPolicy") => vec![NAME, c("Pod-Selector", "string", 0), AGE],
        ("networking.k8s.io", "Ingress") => vec![
            NAME,
            c("Class", "string", 0),
            c("Hosts", "string", 0),
            c("Address", "string", 0),
            c("Ports", "string", 0),
            AGE,
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            NAME,
            c("Controller", "string", 0),
            c("Parameters", "string", 0),
            AGE,
        ],
        ("node.k8s.io", "RuntimeClass") => vec![NAME, c("Handler", "string", 0), AGE],
        ("", "ResourceQuota") => vec![
            NAME,
            AGE,
            c("Request", "string", 0),
            c("Limit", "string", 0),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            NAME,
            c("Min Available", "string", 0),
            c("Max Unavailable", "string", 0),
            c("Allowed Disruptions", "integer", 0),
            AGE,
        ],
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => vec![
            NAME,
            c("PriorityLevel", "string", 0),
            c("MatchingPrecedence", "string", 0),
            c("DistinguisherMethod", "string", 0),
            AGE,
            c("MissingPL", "string", 0),
        ],
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => vec![
            NAME,
            c("Type", "string", 0),
            c("NominalConcurrencyShares", "string", 0),
            c("Queues", "string", 0),
            c("HandSize", "string", 0),
            c("QueueLengthLimit", "string", 0),
            AGE,
        ],
        ("certificates.k8s.io", "CertificateSigningRequest") => vec![
            NAME,
            AGE,
            c("SignerName", "string", 0),
            c("Requestor", "string", 0),
            c("RequestedDuration", "string", 0),
            c("Condition", "string", 0),
        ],
        _ => return None,
    })
}

/// The cells of one object of `kind`, or `None` if it is not one of these
/// kinds.
#[expect(clippy::too_many_lines, reason = "a table: one row of cells per kind")]
pub(super) fn cells(group: &str, kind: &str, obj: &Value, now: i64) -> Option<Vec<Value>> {
    Some(match (group, kind) {
        ("", "PodTemplate") => {
            let (cs, is) = containers_and_images(obj.pointer("/template/spec"));
            vec![
                name(obj),
                json!(cs),
                json!(is),
                json!(labels_text(obj.pointer("/template/metadata/labels"))),
            ]
        }
        ("", "ResourceQuota") => {
            let (request, limit) = quota_columns(obj);
            vec![
                name(obj),
                json!(age(obj, now)),
                json!(request),
                json!(limit),
            ]
        }
        ("networking.k8s.io", "NetworkPolicy") => vec![
            name(obj),
            json!(selector_text(obj.pointer("/spec/podSelector"))),
            json!(age(obj, now)),
        ],
        ("networking.k8s.io", "Ingress") => {
            let class = match text(obj, "/spec/ingressClassName") {
                "" if obj.pointer("/spec/ingressClassName").is_none() => "<none>",
                s => s,
            };
            let ports = if array(obj, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name(obj),
                json!(class),
                json!(ingress_hosts(array(obj, "/spec/rules"))),
                json!(ingress_address(array(obj, "/status/loadBalancer/ingress"))),
                json!(ports),
                json!(age(obj, now)),
            ]
        }
        ("networking.k8s.io", "IngressClass") => {
            let parameters = match obj.pointer("/spec/parameters") {
                Some(p) if p.is_object() => {
                    let mut s = text(p, "/kind").to_string();
                    if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                        s = format!("{s}.{g}");
                    }
                    format!("{s}/{}", text(p, "/name"))
                }
                _ => "<none>".to_string(),
            };
            vec![
                name(obj),
                json!(text(obj, "/spec/controller")),
                json!(parameters),
                json!(age(obj, now)),
            ]
        }
        ("policy", "PodDisruptionBudget") => {
            // An int-or-string as Go's IntOrString.String(); N/A when unset.
            let bound = |ptr: &str| match obj.pointer(ptr) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => "N/A".to_string(),
            };
            vec![
                name(obj),
                json!(bound("/spec/minAvailable")),
                json!(bound("/spec/maxUnavailable")),
                json!(obj
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)),
                json!(age(obj, now)),
            ]
        }
        ("node.k8s.io", "RuntimeClass") => {
            vec![
                name(obj),
                json!(text(obj, "/handler")),
                json!(age(obj, now)),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            let method = match obj.pointer("/spec/distinguisherMethod") {
                Some(m) if m.is_object() => text(m, "/type").to_string(),
                _ => "<none>".to_string(),
            };
            let missing = array(obj, "/status/conditions")
                .iter()
                .find(|c| text(c, "/type") == "Dangling")
                .map(|c| text(c, "/status").to_string())
                .unwrap_or_else(|| "?".to_string());
            vec![
                name(obj),
                json!(text(obj, "/spec/priorityLevelConfiguration/name")),
                json!(obj
                    .pointer("/spec/matchingPrecedence")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)),
                json!(method),
                json!(age(obj, now)),
                json!(missing),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            let none = || json!("<none>");
            let (mut ncs, mut queues, mut hand, mut limit) = (none(), none(), none(), none());
            if let Some(l) = obj.pointer("/spec/limited").filter(|l| l.is_object()) {
                ncs = json!(l
                    .get("nominalConcurrencyShares")
                    .and_then(Value::as_i64)
                    .unwrap_or(0));
                if let Some(q) = l
                    .pointer("/limitResponse/queuing")
                    .filter(|q| q.is_object())
                {
                    let n = |k: &str| json!(q.get(k).and_then(Value::as_i64).unwrap_or(0));
                    (queues, hand, limit) = (n("queues"), n("handSize"), n("queueLengthLimit"));
                }
            }
            vec![
                name(obj),
                json!(text(obj, "/spec/type")),
                ncs,
                queues,
                hand,
                limit,
                json!(age(obj, now)),
            ]
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            let signer = match text(obj, "/spec/signerName") {
                "" => "<none>",
                s => s,
            };
            let duration = match obj
                .pointer("/spec/expirationSeconds")
                .and_then(Value::as_i64)
            {
                Some(s) => human_duration(s),
                None => "<none>".to_string(),
            };
            vec![
                name(obj),
                json!(age(obj, now)),
                json!(signer),
                json!(text(obj, "/spec/username")),
                json!(duration),
                json!(csr_condition(obj)),
            ]
        }
        _ => return None,
    })
}

/// `labels.FormatLabels`: `a=b,c=d` sorted by key, `<none>` when empty.
fn labels_text(labels: Option<&Value>) -> String {
    match labels.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        _ => "<none>".to_string(),
    }
}

/// An Ingress's hosts: the first three named, `* ` when none is, and
/// `+ N more...` past three rules.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut hosts = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = text(rule, "/host");
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        return "*".to_string();
    }
    let joined = hosts.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

/// The load balancer's addresses (IP, else hostname), sorted and unique.
fn ingress_address(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match text(i, "/ip") {
            "" => Some(text(i, "/hostname")).filter(|h| !h.is_empty()),
            ip => Some(ip),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// `Pending`, `Approved` or `Denied` (denial wins), then `,Failed` and
/// `,Issued` as they hold.
pub fn csr_condition(csr: &Value) -> String {
    let conditions = array(csr, "/status/conditions");
    let has = |t: &str| conditions.iter().any(|c| text(c, "/type") == t);
    let mut s = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        s.push_str(",Failed");
    }
    if !text(csr, "/status/certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

/// A quota's `name: used/hard` pairs by name, `limits.*` in the second
/// column, the rest in the first (upstream's `printResourceQuota`).
fn quota_columns(obj: &Value) -> (String, String) {
    let hard = crate::quota::resource_list(obj.pointer("/status/hard"));
    let used = crate::quota::resource_list(obj.pointer("/status/used"));
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for (r, h) in &hard {
        let u = used.get(r).copied().unwrap_or_default();
        let pair = format!("{r}: {u}/{h}");
        if r.split('.').next() == Some("limits") && r.contains('.') {
            limit.push(pair);
        } else {
            request.push(pair);
        }
    }
    (request.join(", "), limit.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(group: &str, kind: &str) -> Vec<&'static str> {
        columns(group, kind)
            .unwrap()
            .iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_quota_row_shows_used_over_hard_requests_then_limits() {
        let q = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "2", "limits.cpu": "2", "requests.memory": "1Gi"},
            "used": {"pods": "1", "limits.cpu": "500m"}}});
        let row = cells("", "ResourceQuota", &q, 0).unwrap();
        assert_eq!(row[2], "pods: 1/2, requests.memory: 0/1Gi");
        assert_eq!(row[3], "limits.cpu: 500m/2");
        assert_eq!(
            headers("", "ResourceQuota"),
            ["Name", "Age", "Request", "Limit"]
        );
    }

    #[test]
    fn headers_are_upstream_ones() {
        assert_eq!(
            headers("networking.k8s.io", "Ingress"),
            ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
        );
        assert_eq!(
            headers("networking.k8s.io", "IngressClass"),
            ["Name", "Controller", "Parameters", "Age"]
        );
        assert_eq!(
            headers("networking.k8s.io", "NetworkPolicy"),
            ["Name", "Pod-Selector", "Age"]
        );
        assert_eq!(
            headers("", "PodTemplate"),
            ["Name", "Containers", "Images", "Pod Labels"]
        );
        assert_eq!(
            headers("node.k8s.io", "RuntimeClass"),
            ["Name", "Handler", "Age"]
        );
        assert_eq!(
            headers("certificates.k8s.io", "CertificateSigningRequest"),
            [
                "Name",
                "Age",
                "SignerName",
                "Requestor",
                "RequestedDuration",
                "Condition"
            ]
        );
        assert_eq!(
            headers("flowcontrol.apiserver.k8s.io", "FlowSchema").len(),
            6
        );
        assert_eq!(
            headers("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration").len(),
            7
        );
        assert_eq!(
            headers("policy", "PodDisruptionBudget"),
            [
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age"
            ]
        );
        assert!(columns("", "Pod").is_none());
    }

    #[test]
    fn disruption_budget_rows() {
        let pdb = json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2},
            "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", &pdb, 0).unwrap()[..4],
            [json!("web"), json!("2"), json!("N/A"), json!(1)]
        );
        let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", &pdb, 0).unwrap()[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );
    }

    #[test]
    fn rows() {
        let now = 1_000_000;
        let ing = json!({"metadata": {"name": "web"}, "spec": {"rules": [
            {"host": "a.example"}, {"host": "b.example"}, {}, {"host": "c.example"}, {"host": "d.example"}],
            "tls": [{"hosts": ["a.example"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb.example"}, {"ip": "10.0.0.2"}]}}});
        let cells = cells("networking.k8s.io", "Ingress", &ing, now).unwrap();
        assert_eq!(cells[1], "<none>");
        assert_eq!(cells[2], "a.example,b.example,c.example + 2 more...");
        assert_eq!(cells[3], "10.0.0.2,lb.example");
        assert_eq!(cells[4], "80, 443");
        let plain = json!({"metadata": {"name": "x"}, "spec": {"ingressClassName": "nginx"}});
        let cells = super::cells("networking.k8s.io", "Ingress", &plain, now).unwrap();
        assert_eq!(
            (&cells[1], &cells[2], &cells[3], &cells[4]),
            (&json!("nginx"), &json!("*"), &json!(""), &json!("80"))
        );

        let class = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        let cells = super::cells("networking.k8s.io", "IngressClass", &class, now).unwrap();
        assert_eq!(cells[2], "IngressParameters.k8s.example.com/external-lb");

        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(
            super::cells("networking.k8s.io", "NetworkPolicy", &np, now).unwrap()[1],
            "<none>"
        );
        let np = json!({"metadata": {"name": "db"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(
            super::cells("networking.k8s.io", "NetworkPolicy", &np, now).unwrap()[1],
            "role=db"
        );

        let pt = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}}});
        assert_eq!(
            super::cells("", "PodTemplate", &pt, now).unwrap()[1..],
            [json!("c1,c2"), json!("i1,i2"), json!("a=1,b=2")]
        );

        let pl = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
        let cells = super::cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &pl,
            now,
        )
        .unwrap();
        assert_eq!(
            cells[1..6],
            [
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let pl = json!({"metadata": {"name": "catch-all"}, "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}});
        let cells = super::cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &pl,
            now,
        )
        .unwrap();
        assert_eq!(
            cells[2..6],
            [json!(5), json!("<none>"), json!("<none>"), json!("<none>")]
        );

        let fs = json!({"metadata": {"name": "catch-all"}, "spec": {"matchingPrecedence": 10000,
            "priorityLevelConfiguration": {"name": "catch-all"}, "distinguisherMethod": {"type": "ByUser"}},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        let cells = super::cells("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs, now).unwrap();
        assert_eq!(
            cells[1..4],
            [json!("catch-all"), json!(10000), json!("ByUser")]
        );
        assert_eq!(cells[5], "False");

        let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "username": "alice", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
        let cells = super::cells(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            &csr,
            now,
        )
        .unwrap();
        assert_eq!(
            cells[2..],
            [
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let denied = json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}});
        assert_eq!(csr_condition(&denied), "Denied,Failed");
        assert_eq!(csr_condition(&json!({})), "Pending");
    }
}
