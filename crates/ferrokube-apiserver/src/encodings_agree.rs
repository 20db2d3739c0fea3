//! One object of every served kind, created twice through the whole request
//! path of a running server: once with a JSON body, once with a protobuf
//! body encoded as client-go encodes it. Read back, the two must be the same
//! field for field (names, uids, times, allocated addresses and ports aside):
//! no body encoding may skip or change defaulting, preparation or admission.
//! A served kind without an object here fails the test, so a new kind comes
//! with its case.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::protobuf_roundtrip::encode;

/// Kinds no object of which is stored: their requests are checked elsewhere.
const NOT_STORED: &[&str] = &[
    "Binding",
    "TokenRequest",
    "SelfSubjectReview",
    "TokenReview",
    "LocalSubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SubjectAccessReview",
    "Eviction",
    "Scale",
];

fn pod_spec() -> Value {
    json!({
        "containers": [{
            "name": "app",
            "image": "busybox:1.35",
            "command": ["sh", "-c", "sleep 3600"],
            "ports": [{"containerPort": 80, "name": "http"}],
            "env": [
                {"name": "A", "value": "b"},
                {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}},
                {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}
            ],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
            "livenessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 3},
            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                             {"name": "conf", "mountPath": "/conf"}]
        }],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "conf", "configMap": {"name": "cm", "optional": true}}
        ]
    })
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "demo"}}, "spec": pod_spec()})
}

/// A certificate signing request (PEM, base64 as JSON carries bytes).
fn csr_pem() -> String {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jane");
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// A valid object of each kind worth creating, by kind.
#[expect(clippy::too_many_lines, reason = "a table: one object per kind")]
fn objects() -> BTreeMap<&'static str, Value> {
    let selector = json!({"matchLabels": {"app": "demo"}});
    let mut m = BTreeMap::new();
    // By kind, or by `group/kind` where one kind is served in two groups.
    let mut add = |kind: &'static str, v: Value| {
        m.insert(kind, v);
    };
    add("Namespace", json!({"metadata": {"labels": {"team": "a"}}}));
    add(
        "ConfigMap",
        json!({"data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
    );
    add(
        "Secret",
        json!({"stringData": {"user": "admin"}, "data": {"pw": "c2VjcmV0"}}),
    );
    add(
        "ServiceAccount",
        json!({"automountServiceAccountToken": false}),
    );
    add(
        "Pod",
        json!({"metadata": {"labels": {"app": "demo"}}, "spec": pod_spec()}),
    );
    add("PodTemplate", json!({"template": template()}));
    add(
        "Service",
        json!({"spec": {"selector": {"app": "demo"}, "type": "NodePort",
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    );
    add(
        "Endpoints",
        json!({"subsets": [{"addresses": [{"ip": "10.42.0.9"}],
        "ports": [{"name": "http", "port": 80}]}]}),
    );
    add(
        "Node",
        json!({"metadata": {"labels": {"zone": "a"}}, "spec": {"podCIDR": "10.42.9.0/24"}}),
    );
    add(
        "Event",
        json!({"involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
        "reason": "Tested", "message": "made by a test", "type": "Normal",
        "source": {"component": "test"}}),
    );
    add(
        "events.k8s.io/Event",
        json!({"regarding": {"kind": "Pod", "namespace": "default", "name": "p"},
        "reason": "Tested", "note": "made by a test", "type": "Normal", "action": "Testing",
        "reportingController": "example.com/test", "reportingInstance": "test-1",
        "eventTime": "2026-01-02T03:04:05.000000Z"}),
    );
    add(
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container",
        "default": {"cpu": "200m"}, "max": {"memory": "1Gi"}}]}}),
    );
    add(
        "ResourceQuota",
        json!({"spec": {"hard": {"pods": "10", "requests.cpu": "2"}}}),
    );
    add(
        "PersistentVolume",
        json!({"spec": {"capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv"}}}),
    );
    add(
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    add(
        "ReplicationController",
        json!({"spec": {"replicas": 0,
        "selector": {"app": "demo"}, "template": template()}}),
    );
    add(
        "Deployment",
        json!({"spec": {"replicas": 0, "selector": selector, "template": template()}}),
    );
    add(
        "ReplicaSet",
        json!({"spec": {"replicas": 0, "selector": selector, "template": template()}}),
    );
    add(
        "StatefulSet",
        json!({"spec": {"replicas": 0, "serviceName": "demo",
        "selector": selector, "template": template()}}),
    );
    add(
        "DaemonSet",
        json!({"spec": {"selector": {"matchLabels": {"app": "never"}},
        "template": {"metadata": {"labels": {"app": "never"}},
                     "spec": {"nodeSelector": {"no-such": "node"}, "containers": pod_spec()["containers"]}}}}),
    );
    add(
        "ControllerRevision",
        json!({"revision": 1, "data": {"spec": {"x": 1}}}),
    );
    let mut job_template = template();
    job_template["metadata"] = json!({});
    job_template["spec"]["restartPolicy"] = json!("Never");
    add(
        "Job",
        json!({"spec": {"suspend": true, "template": job_template}}),
    );
    add(
        "CronJob",
        json!({"spec": {"schedule": "*/5 * * * *", "suspend": true,
        "jobTemplate": {"spec": {"template": job_template}}}}),
    );
    add(
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 3,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}}}),
    );
    add(
        "PodDisruptionBudget",
        json!({"spec": {"minAvailable": 1, "selector": selector}}),
    );
    add(
        "PriorityClass",
        json!({"value": 1000, "description": "test"}),
    );
    add(
        "Lease",
        json!({"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
    );
    add(
        "EndpointSlice",
        json!({"addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
    );
    let rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]);
    add("Role", json!({"rules": rules}));
    add("ClusterRole", json!({"rules": rules}));
    let role_ref = |kind: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "viewer"});
    add(
        "RoleBinding",
        json!({"roleRef": role_ref("Role"),
        "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}),
    );
    add(
        "ClusterRoleBinding",
        json!({"roleRef": role_ref("ClusterRole"),
        "subjects": [{"kind": "Group", "name": "devs"}]}),
    );
    add(
        "StorageClass",
        json!({"provisioner": "example.com/none", "reclaimPolicy": "Delete",
        "parameters": {"type": "ssd"}, "allowVolumeExpansion": true,
        "allowedTopologies": [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a"]}]}]}),
    );
    add(
        "CSIDriver",
        json!({"spec": {"podInfoOnMount": true,
        "tokenRequests": [{"audience": "vault", "expirationSeconds": 3600}]}}),
    );
    add(
        "CSINode",
        json!({"spec": {"drivers": [{"name": "x.csi.k8s.io", "nodeID": "node-1",
        "topologyKeys": ["topology.kubernetes.io/zone"], "allocatable": {"count": 16}}]}}),
    );
    add(
        "VolumeAttachment",
        json!({"spec": {"attacher": "x.csi.k8s.io", "nodeName": "node-1",
        "source": {"persistentVolumeName": "pv-1"}}}),
    );
    add(
        "CSIStorageCapacity",
        json!({"storageClassName": "fast", "capacity": "10Gi", "maximumVolumeSize": "5Gi",
        "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "a"}}}),
    );
    add(
        "NetworkPolicy",
        json!({"spec": {"podSelector": selector,
        "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}}),
    );
    add(
        "IngressClass",
        json!({"spec": {"controller": "example.com/ingress"}}),
    );
    add(
        "Ingress",
        json!({"spec": {"rules": [{"host": "demo.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "demo", "port": {"number": 80}}}}]}}]}}),
    );
    add("RuntimeClass", json!({"handler": "runc"}));
    add(
        "FlowSchema",
        json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"},
        "matchingPrecedence": 5000,
        "rules": [{"subjects": [{"kind": "User", "user": {"name": "jane"}}],
                   "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "namespaces": ["*"]}]}]}}),
    );
    add(
        "PriorityLevelConfiguration",
        json!({"spec": {"type": "Limited",
        "limited": {"nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}),
    );
    // Named `<version>.<group>`: the test names it, and sets its group.
    add(
        "APIService",
        json!({"spec": {"version": "v1", "groupPriorityMinimum": 100, "versionPriority": 10}}),
    );
    add(
        "CertificateSigningRequest",
        json!({"spec": {"signerName": "example.com/signer",
        "usages": ["client auth"], "request": csr_pem()}}),
    );
    // Rules no other object of the test matches: no webhook is called.
    let rules = json!([{"operations": ["CREATE"], "apiGroups": ["example.com"],
        "apiVersions": ["v1"], "resources": ["widgets"]}]);
    let hook = json!({"name": "w.example.com", "rules": rules,
        "clientConfig": {"url": "https://127.0.0.1:1/w"}, "sideEffects": "None",
        "failurePolicy": "Ignore", "admissionReviewVersions": ["v1"]});
    add(
        "MutatingWebhookConfiguration",
        json!({"webhooks": [hook.clone()]}),
    );
    add(
        "ValidatingWebhookConfiguration",
        json!({"webhooks": [hook]}),
    );
    add(
        "ValidatingAdmissionPolicy",
        json!({"spec": {"matchConstraints": {"resourceRules": rules},
        "validations": [{"expression": "true", "message": "never"}]}}),
    );
    add(
        "ValidatingAdmissionPolicyBinding",
        json!({"spec": {"policyName": "p", "validationActions": ["Deny"]}}),
    );
    m
}

/// What two creations of the same object may differ in: names, uids,
/// times, versions, and what is allocated per object (cluster IPs, node
/// ports). Strings naming the object are replaced by `NAME`, its uid by
/// `UID`.
fn normalise(v: &Value, name: &str, uid: &str) -> Value {
    match v {
        Value::String(s) => {
            let s = s.replace(uid, "UID").replace(name, "NAME");
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| normalise(x, name, uid)).collect()),
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, x) in o {
                let dropped = matches!(
                    k.as_str(),
                    "uid"
                        | "resourceVersion"
                        | "creationTimestamp"
                        | "time"
                        | "clusterIP"
                        | "clusterIPs"
                        | "nodePort"
                        | "lastTimestamp"
                        | "firstTimestamp"
                        | "eventTime"
                        | "renewTime"
                        | "acquireTime"
                );
                if !dropped {
                    out.insert(k.clone(), normalise(x, name, uid));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (p, q) = (x.get(k), y.get(k));
                let here = format!("{path}.{k}");
                match (p, q) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, &here) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{here}: JSON {p:?}, protobuf {q:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: JSON {a}, protobuf {b}")),
    }
}

async fn call(
    local: &crate::Local,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "encodings-test")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    crate::answers_tests::status_and_body(local.call(req).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: every kind created both ways and compared"
)]
async fn json_and_protobuf_bodies_make_the_same_objects() {
    let dir = tempfile::tempdir().expect("dir");
    let (local, cancel) = crate::answers_tests::server(dir.path()).await;
    let objects = objects();
    let registry = ferrokube_api::registry::Registry::default();
    let mut failures = Vec::new();
    let mut compared = 0;
    for def in registry.all() {
        let (group, version) = (def.group, def.version);
        {
            {
                // A CRD's name is `<plural>.<group>` and its controllers write its
                // status right after the create: tested end to end (tests/crd.rs).
                if NOT_STORED.contains(&def.kind)
                    || !def.has_verb("create")
                    || def.kind == "CustomResourceDefinition"
                {
                    continue;
                }
                let keyed = format!("{group}/{}", def.kind);
                let Some(spec) = objects.get(keyed.as_str()).or(objects.get(def.kind)) else {
                    failures.push(format!("{}: no object to create in this test", def.kind));
                    continue;
                };
                let api_version = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                let prefix = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                let ns = if def.namespaced {
                    "/namespaces/default"
                } else {
                    ""
                };
                let uri = format!("{prefix}{ns}/{}", def.plural);
                let mut made = Vec::new();
                // Kinds served in two groups (or at two versions) share their
                // objects: one name per group and version.
                let group_label = group.split('.').next().unwrap_or("");
                let group_label = if registry
                    .all()
                    .iter()
                    .any(|d| d.group == group && d.plural == def.plural && d.version != version)
                {
                    format!("{group_label}-{version}")
                } else {
                    group_label.to_string()
                };
                for encoding in ["json", "protobuf"] {
                    let stem = format!(
                        "enc-{encoding}-{}",
                        if group_label.is_empty() {
                            "core"
                        } else {
                            group_label.as_str()
                        }
                    );
                    let mut obj = spec.clone();
                    // An APIService's name is `<version>.<group>`.
                    let name = if def.kind == "APIService" {
                        obj["spec"]["group"] = json!(stem);
                        format!("v1.{stem}")
                    } else {
                        stem.clone()
                    };
                    let name = name.as_str();
                    obj["apiVersion"] = json!(api_version);
                    obj["kind"] = json!(def.kind);
                    obj["metadata"]["name"] = json!(name);
                    let (ct, body) = if encoding == "json" {
                        ("application/json", serde_json::to_vec(&obj).expect("json"))
                    } else {
                        match encode(&obj) {
                            Ok(b) => (crate::protobuf::CONTENT_TYPE, b),
                            Err(e) => {
                                failures.push(format!(
                                    "{}: not encodable: {}",
                                    def.kind,
                                    e.join("; ")
                                ));
                                break;
                            }
                        }
                    };
                    let (status, created) = call(&local, Method::POST, &uri, ct, body).await;
                    if status != StatusCode::CREATED {
                        failures.push(format!("{} ({encoding}): {status} {created}", def.kind));
                        break;
                    }
                    let (_, got) = call(
                        &local,
                        Method::GET,
                        &format!("{uri}/{name}"),
                        "application/json",
                        Vec::new(),
                    )
                    .await;
                    if got != created {
                        failures.push(format!(
                            "{} ({encoding}): read back differs from the create's answer: {}",
                            def.kind,
                            first_difference(&created, &got, "").unwrap_or_default()
                        ));
                    }
                    let uid = got
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("no-uid")
                        .to_string();
                    made.push(normalise(&normalise(&got, name, &uid), &stem, &uid));
                }
                if let [from_json, from_pb] = made.as_slice() {
                    compared += 1;
                    if let Some(d) = first_difference(from_json, from_pb, "") {
                        failures.push(format!("{}: {d}", def.kind));
                    }
                }
            }
        }
    }
    cancel.cancel();
    assert!(
        failures.is_empty(),
        "{} of the kinds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 30, "only {compared} kinds compared");
}
