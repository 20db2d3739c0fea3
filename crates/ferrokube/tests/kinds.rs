//! The kinds served beside the workloads, as a user meets them with the
//! real kubectl: networking.k8s.io, PodTemplate, RuntimeClass (and its pod
//! admission), priority and fairness, and CertificateSigningRequests signed
//! by the cluster CA once approved.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{Cluster, POLL};
use ferrokube_client::testing::wait::wait_until_blocking;

fn write_manifest(cluster: &Cluster, name: &str, yaml: &str) -> String {
    let path = cluster.data_dir().join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_string_lossy().into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// kubectl fails, saying `needle`.
fn refused(c: &Cluster, args: &[&str], needle: &str) {
    let out = c.kubectl(args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    assert!(
        stderr(&out).contains(needle),
        "kubectl {args:?}: {}",
        stderr(&out)
    );
}

/// The header words of `kubectl get` output.
fn header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// The row of `name` in `kubectl get` output, as words.
fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
}

const NETWORKING: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: k8s.io/ingress-nginx
  parameters:
    apiGroup: k8s.example.com
    kind: IngressParameters
    name: external-lb
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  tls:
  - hosts: [shop.example.com]
    secretName: shop-tls
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port: {number: 80}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
spec:
  podSelector:
    matchLabels: {role: db}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: api}
    ports:
    - {port: 5432, protocol: TCP}
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: worker
template:
  metadata:
    labels: {app: worker}
  spec:
    containers:
    - name: main
      image: busybox:1.36
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: sandboxed
handler: runsc
overhead:
  podFixed: {cpu: 250m, memory: 64Mi}
scheduling:
  nodeSelector: {sandbox: "true"}
  tolerations:
  - {key: sandbox, operator: Exists, effect: NoSchedule}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: batch
spec:
  type: Limited
  limited:
    limitResponse:
      type: Queue
      queuing: {}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: batch-jobs
spec:
  priorityLevelConfiguration: {name: batch}
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects:
    - kind: ServiceAccount
      serviceAccount: {name: runner, namespace: default}
    resourceRules:
    - verbs: [get, list]
      apiGroups: [batch]
      resources: [jobs]
      namespaces: ["*"]
"#;

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of kinds and the columns kubectl prints for them, on one server"
)]
fn every_kind_applies_and_prints_kubernetes_columns() {
    let c = Cluster::start();
    let f = write_manifest(&c, "kinds.yaml", NETWORKING);
    let out = c.kubectl_ok(&["apply", "-f", &f]);
    for made in [
        "ingressclass.networking.k8s.io/nginx created",
        "ingress.networking.k8s.io/web created",
        "networkpolicy.networking.k8s.io/db created",
        "podtemplate/worker created",
        "runtimeclass.node.k8s.io/sandboxed created",
        "prioritylevelconfiguration.flowcontrol.apiserver.k8s.io/batch created",
        "flowschema.flowcontrol.apiserver.k8s.io/batch-jobs created",
    ] {
        assert!(out.contains(made), "{made}:\n{out}");
    }
    // Applying again changes nothing.
    let again = c.kubectl_ok(&["apply", "-f", &f]);
    assert!(!again.contains("configured"), "{again}");

    let ing = c.kubectl_ok(&["get", "ingress"]);
    assert_eq!(
        header(&ing),
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    );
    // The DefaultIngressClass admission gave it the default class.
    assert_eq!(row(&ing, "web")[1..4], ["nginx", "shop.example.com", "80,"]);
    let class = c.kubectl_ok(&["get", "ingressclass"]);
    assert_eq!(header(&class), ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]);
    assert_eq!(
        row(&class, "nginx")[1..3],
        [
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb"
        ]
    );
    let np = c.kubectl_ok(&["get", "netpol"]);
    assert_eq!(header(&np), ["NAME", "POD-SELECTOR", "AGE"]);
    assert_eq!(row(&np, "db")[1], "role=db");
    let np_json = c.kubectl_ok(&["get", "netpol", "db", "-o", "jsonpath={.spec.policyTypes}"]);
    assert_eq!(np_json, r#"["Ingress"]"#);
    let pt = c.kubectl_ok(&["get", "podtemplates"]);
    assert_eq!(
        header(&pt),
        ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]
    );
    assert_eq!(
        row(&pt, "worker")[1..4],
        ["main", "busybox:1.36", "app=worker"]
    );
    let rc = c.kubectl_ok(&["get", "runtimeclass"]);
    assert_eq!(header(&rc), ["NAME", "HANDLER", "AGE"]);
    assert_eq!(row(&rc, "sandboxed")[1], "runsc");

    // Priority and fairness: the mandatory objects are there from the start.
    let pl = c.kubectl_ok(&["get", "prioritylevelconfigurations"]);
    assert_eq!(
        header(&pl),
        [
            "NAME",
            "TYPE",
            "NOMINALCONCURRENCYSHARES",
            "QUEUES",
            "HANDSIZE",
            "QUEUELENGTHLIMIT",
            "AGE"
        ]
    );
    assert_eq!(
        row(&pl, "exempt")[1..6],
        ["Exempt", "<none>", "<none>", "<none>", "<none>"]
    );
    assert_eq!(
        row(&pl, "catch-all")[1..6],
        ["Limited", "5", "<none>", "<none>", "<none>"]
    );
    assert_eq!(row(&pl, "batch")[1..6], ["Limited", "30", "64", "8", "50"]);
    let fs = c.kubectl_ok(&["get", "flowschemas"]);
    assert_eq!(
        header(&fs),
        [
            "NAME",
            "PRIORITYLEVEL",
            "MATCHINGPRECEDENCE",
            "DISTINGUISHERMETHOD",
            "AGE",
            "MISSINGPL"
        ]
    );
    let exempt = row(&fs, "exempt");
    assert_eq!(
        (exempt[1], exempt[2], exempt[3], exempt[5]),
        ("exempt", "1", "<none>", "False")
    );
    let catch_all = row(&fs, "catch-all");
    assert_eq!(
        (catch_all[1], catch_all[2], catch_all[3]),
        ("catch-all", "10000", "ByUser")
    );
    assert_eq!(row(&fs, "batch-jobs")[1..4], ["batch", "1000", "ByUser"]);
    // The controller manager marks whether a FlowSchema's priority level
    // exists (the MissingPL column).
    wait_until_blocking(
        "batch-jobs is not dangling",
        Duration::from_secs(60),
        POLL,
        || row(&c.kubectl_ok(&["get", "flowschemas"]), "batch-jobs")[5] == "False",
    );
    c.kubectl_ok(&["delete", "prioritylevelconfiguration", "batch"]);
    wait_until_blocking(
        "batch-jobs is dangling",
        Duration::from_secs(60),
        POLL,
        || row(&c.kubectl_ok(&["get", "flowschemas"]), "batch-jobs")[5] == "True",
    );

    // The Ingress status is written through /status, as controllers do.
    let patched = c.kubectl_ok(&[
        "patch",
        "ingress",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
    ]);
    assert!(patched.contains("patched"), "{patched}");
    assert_eq!(
        row(&c.kubectl_ok(&["get", "ingress"]), "web")[3],
        "192.0.2.10"
    );

    // Kinds show up in discovery as Kubernetes lists them.
    let res = c.kubectl_ok(&["api-resources"]);
    for (name, short, version) in [
        ("ingresses", "ing", "networking.k8s.io/v1"),
        ("networkpolicies", "netpol", "networking.k8s.io/v1"),
        (
            "certificatesigningrequests",
            "csr",
            "certificates.k8s.io/v1",
        ),
    ] {
        let words = row(&res, name);
        assert_eq!(words[1..3], [short, version], "{res}");
    }
    assert!(c
        .kubectl_ok(&["explain", "ingress.spec.ingressClassName"])
        .contains("string"));
}

#[test]
fn invalid_objects_are_refused_with_kubernetes_messages() {
    let c = Cluster::start();
    for (name, yaml, message) in [
        (
            "ingress.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec: {}\n",
            "The Ingress \"bad\" is invalid: spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
        ),
        (
            "path.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n",
            "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path",
        ),
        (
            "netpol.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{protocol: ICMP}]\n",
            "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
        ),
        (
            "class.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: bad}\nspec: {controller: nginx}\n",
            "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")",
        ),
        (
            "rc.yaml",
            "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: bad}\nhandler: Run_C\n",
            "handler: Invalid value: \"Run_C\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ),
        (
            "pl.yaml",
            "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: PriorityLevelConfiguration\nmetadata: {name: bad}\nspec: {type: Exempt}\n",
            "spec.type: Invalid value: \"Exempt\": type must be 'Exempt' if and only if name is 'exempt'",
        ),
    ] {
        let f = write_manifest(&c, name, yaml);
        refused(&c, &["apply", "-f", &f], message);
    }
}

#[test]
fn runtime_class_admission_shapes_and_refuses_pods() {
    let c = Cluster::start();
    let f = write_manifest(&c, "rc.yaml", NETWORKING);
    c.kubectl_ok(&["apply", "-f", &f]);
    let pod = |name: &str, class: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  runtimeClassName: {class}\n{extra}  containers:\n  - {{name: c, image: busybox:1.36}}\n"
        )
    };
    let missing = write_manifest(&c, "missing.yaml", &pod("p0", "missing", ""));
    refused(
        &c,
        &["apply", "-f", &missing],
        "pods \"p0\" is forbidden: pod rejected: RuntimeClass \"missing\" not found",
    );
    let ok = write_manifest(
        &c,
        "ok.yaml",
        &pod("p1", "sandboxed", "  nodeSelector: {zone: a}\n"),
    );
    c.kubectl_ok(&["apply", "-f", &ok]);
    let got = c.kubectl_ok(&[
        "get", "pod", "p1", "-o",
        "jsonpath={.spec.overhead.cpu} {.spec.overhead.memory} {.spec.nodeSelector.sandbox} {.spec.nodeSelector.zone} {.spec.tolerations[?(@.key==\"sandbox\")].effect}",
    ]);
    assert_eq!(got, "250m 64Mi true a NoSchedule");
    let conflict = write_manifest(
        &c,
        "conflict.yaml",
        &pod("p2", "sandboxed", "  nodeSelector: {sandbox: \"false\"}\n"),
    );
    refused(
        &c,
        &["apply", "-f", &conflict],
        "pods \"p2\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = true; pod.spec.nodeSelector[sandbox] = false",
    );
    let overhead = write_manifest(
        &c,
        "overhead.yaml",
        &pod("p3", "sandboxed", "  overhead: {cpu: \"1\"}\n"),
    );
    refused(
        &c,
        &["apply", "-f", &overhead],
        "pods \"p3\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
    );
    c.kubectl_ok(&["delete", "pod", "p1", "--wait=false"]);
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: a CSR followed from creation through approval or denial to its certificate"
)]
fn an_approved_csr_is_signed_by_the_cluster_ca() {
    let c = Cluster::start();
    let dir = c.data_dir();
    let key = dir.join("alice.key");
    let req = dir.join("alice.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=alice/O=devs",
        "-keyout",
        &key.to_string_lossy(),
        "-out",
        &req.to_string_lossy(),
    ]);
    let request = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let csr = |name: &str, seconds: u32| {
        format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: {seconds}\n  usages: [client auth]\n  username: mallory\n"
        )
    };
    let short = write_manifest(&c, "short.yaml", &csr("short", 60));
    refused(
        &c,
        &["apply", "-f", &short],
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
    );
    let f = write_manifest(&c, "alice.yaml", &csr("alice", 86400));
    c.kubectl_ok(&["create", "-f", &f]);
    let listed = c.kubectl_ok(&["get", "csr"]);
    assert_eq!(
        header(&listed),
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    // The requester is who sent it, whatever the body claimed.
    let alice = row(&listed, "alice");
    assert_eq!(
        (alice[2], alice[3], alice[4], alice[5]),
        (
            "kubernetes.io/kube-apiserver-client",
            "system:admin",
            "24h",
            "Pending"
        )
    );
    let approved = c.kubectl_ok(&["certificate", "approve", "alice"]);
    assert!(
        approved.contains("certificatesigningrequest.certificates.k8s.io/alice approved"),
        "{approved}"
    );
    let mut issued = String::new();
    wait_until_blocking(
        "the certificate is issued",
        Duration::from_secs(60),
        POLL,
        || {
            issued = c.kubectl_ok(&[
                "get",
                "csr",
                "alice",
                "-o",
                "jsonpath={.status.certificate}",
            ]);
            !issued.is_empty()
        },
    );
    assert_eq!(
        row(&c.kubectl_ok(&["get", "csr"]), "alice")[5],
        "Approved,Issued"
    );
    let reason = c.kubectl_ok(&[
        "get",
        "csr",
        "alice",
        "-o",
        "jsonpath={.status.conditions[0].reason}",
    ]);
    assert_eq!(reason, "KubectlApprove");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(issued.trim())
        .unwrap();
    let cert = dir.join("alice.crt");
    std::fs::write(&cert, &pem).unwrap();
    let ca = dir.join("tls/ca.crt");
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &ca.to_string_lossy(),
        &cert.to_string_lossy(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    let subject = openssl(&["x509", "-noout", "-subject", "-in", &cert.to_string_lossy()]);
    assert!(
        subject.contains("CN = alice") && subject.contains("O = devs"),
        "{subject}"
    );
    let purpose = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "extendedKeyUsage",
        "-in",
        &cert.to_string_lossy(),
    ]);
    assert!(
        purpose.contains("TLS Web Client Authentication"),
        "{purpose}"
    );
    // It lasts the day asked for: from five minutes ago to a day after that.
    let end = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        "86000",
        "-in",
        &cert.to_string_lossy(),
    ]);
    assert!(end.contains("will not expire"), "{end}");
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-checkend",
            "86400",
            "-in",
            &cert.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the certificate outlives a day");

    // The certificate works: alice is who the server sees.
    let kubeconfig = dir.join("alice.kubeconfig");
    let server = format!("https://127.0.0.1:{}", c.port);
    for args in [
        vec![
            "config",
            "set-cluster",
            "c",
            "--server",
            &server,
            "--certificate-authority",
            &ca.to_string_lossy(),
        ],
        vec![
            "config",
            "set-credentials",
            "alice",
            "--client-certificate",
            &cert.to_string_lossy(),
            "--client-key",
            &key.to_string_lossy(),
        ],
        vec![
            "config",
            "set-context",
            "alice",
            "--cluster",
            "c",
            "--user",
            "alice",
        ],
        vec!["config", "use-context", "alice"],
    ] {
        let out = common::kubectl_with(&kubeconfig, &args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let who = common::kubectl_with(
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        r#"alice ["devs","system:authenticated"]"#,
        "{}",
        stderr(&who)
    );

    // A request its signer does not accept fails, with the signer's reason.
    let server_auth = write_manifest(
        &c,
        "server.yaml",
        &csr("bob", 3600).replace("usages: [client auth]", "usages: [server auth]"),
    );
    c.kubectl_ok(&["create", "-f", &server_auth]);
    c.kubectl_ok(&["certificate", "approve", "bob"]);
    wait_until_blocking("the request fails", Duration::from_secs(60), POLL, || {
        row(&c.kubectl_ok(&["get", "csr"]), "bob")[5] == "Approved,Failed"
    });
    let message = c.kubectl_ok(&[
        "get",
        "csr",
        "bob",
        "-o",
        "jsonpath={.status.conditions[1].reason}: {.status.conditions[1].message}",
    ]);
    assert_eq!(
        message,
        "SignerValidationFailure: invalid usage for client certificate: server auth"
    );
}
