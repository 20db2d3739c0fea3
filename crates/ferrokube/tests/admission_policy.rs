//! ValidatingAdmissionPolicies end to end, with the real kubectl: a policy
//! whose parameter is a ConfigMap refuses Deployments with more replicas
//! than the ConfigMap allows, in Kubernetes' words, only in the namespaces
//! its binding selects; a missing parameter under `parameterNotFoundAction:
//! Deny`, a `paramKind` nobody serves, a `Warn` binding, a reason of
//! `Forbidden`, variables; deleting the binding stops it; and the policy's
//! `status.typeChecking` as Kubernetes' type-checking controller writes it
//! (the conformance tests' cases).

#![allow(clippy::unwrap_used, reason = "test fixtures: a failure is the test's")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

fn deployment(name: &str, ns: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `args` until `done` holds for its output (at most 10 s); returns
/// the last output.
fn until(
    c: &Cluster,
    args: &[&str],
    done: impl Fn(&std::process::Output) -> bool,
) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.kubectl(args);
        if done(&out) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn max_replicas_policy() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "max-replicas"},
        "spec": {
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
                "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"]}]},
            "validations": [{
                "expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                "messageExpression": "'replicas ' + string(object.spec.replicas) + ' is more than ' + params.data.maxReplicas",
            }, {
                "expression": "namespaceObject.metadata.name != 'vap-warn' || object.spec.replicas < 2",
                "message": "at most one replica in vap-warn",
            }],
        },
    })
}

fn binding(name: &str, actions: &[&str], param_ref: Value, selector: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": "max-replicas",
            "validationActions": actions,
            "paramRef": param_ref,
            "matchResources": {"namespaceSelector": {"matchLabels": selector}},
        },
    })
}

/// The test's namespaces (`vap-on` and `vap-noparam` selected by the Deny
/// binding, `vap-warn` by the Warn one, `vap-off` by none) and the
/// parameter ConfigMap in `vap-on`.
fn namespaces_and_limit(c: &Cluster) {
    for (ns, label) in [
        ("vap-on", Some("vap=on")),
        ("vap-off", None),
        ("vap-noparam", Some("vap=on")),
        ("vap-warn", Some("vap=warn")),
    ] {
        c.kubectl_ok(&["create", "namespace", ns]);
        if let Some(l) = label {
            c.kubectl_ok(&["label", "namespace", ns, l]);
        }
    }
    c.kubectl_ok(&[
        "create",
        "configmap",
        "replica-limit",
        "-n",
        "vap-on",
        "--from-literal=maxReplicas=3",
    ]);
}

#[test]
fn policies_refuse_warn_and_follow_their_bindings() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    namespaces_and_limit(&c);
    let policy = write(dir.path(), "policy.json", &max_replicas_policy());
    let deny = write(
        dir.path(),
        "deny.json",
        &binding(
            "max-replicas-binding",
            &["Deny"],
            json!({"name": "replica-limit", "parameterNotFoundAction": "Deny"}),
            json!({"vap": "on"}),
        ),
    );
    let warn = write(
        dir.path(),
        "warn.json",
        &binding(
            "max-replicas-warn",
            &["Warn"],
            json!({"name": "replica-limit", "namespace": "vap-on",
                "parameterNotFoundAction": "Allow"}),
            json!({"vap": "warn"}),
        ),
    );
    c.kubectl_ok(&["create", "-f", &policy, "-f", &deny, "-f", &warn]);

    // Too many replicas: refused with Kubernetes' message (the
    // messageExpression's), 422 Invalid, once the binding is seen. kubectl
    // shows an Invalid Status by its causes (one without a field here),
    // as it does against Kubernetes.
    let big = write(dir.path(), "big.json", &deployment("big", "vap-on", 5));
    until(&c, &["create", "--dry-run=server", "-f", &big], |o| {
        !o.status.success()
    });
    let out = c.kubectl(&["create", "-f", &big]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "The deployments \"big\" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas 5 is more than 3"
        ),
        "{}",
        stderr(&out)
    );
    // Within the limit: created; an update past it: refused.
    let small = write(dir.path(), "small.json", &deployment("small", "vap-on", 2));
    c.kubectl_ok(&["create", "-f", &small]);
    let out = c.kubectl(&[
        "patch",
        "deployment",
        "small",
        "-n",
        "vap-on",
        "-p",
        r#"{"spec":{"replicas":7}}"#,
    ]);
    assert!(
        stderr(&out).contains("The deployments \"small\" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas 7 is more than 3"),
        "{}",
        stderr(&out)
    );
    // A namespace the binding does not select: allowed.
    let other = write(dir.path(), "other.json", &deployment("big", "vap-off", 5));
    c.kubectl_ok(&["create", "-f", &other]);
    // Selected, but the parameter is missing: parameterNotFoundAction Deny.
    let lost = write(
        dir.path(),
        "lost.json",
        &deployment("lost", "vap-noparam", 1),
    );
    let out = c.kubectl(&["create", "-f", &lost]);
    assert!(
        stderr(&out).contains(
            "The deployments \"lost\" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{}",
        stderr(&out)
    );
    // Warn: created, with Kubernetes' warning.
    let warned = write(dir.path(), "warned.json", &deployment("big", "vap-warn", 5));
    let out = c.kubectl(&["create", "-f", &warned]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Warning: Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-warn': replicas 5 is more than 3"),
        "{}",
        stderr(&out)
    );
    // `namespaceObject` is the request's namespace.
    assert!(
        stderr(&out).contains("Warning: Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-warn': at most one replica in vap-warn"),
        "{}",
        stderr(&out)
    );

    // The binding deleted: no longer enforced.
    c.kubectl_ok(&["delete", "-f", &deny]);
    let out = until(&c, &["create", "-f", &big], |o| o.status.success());
    assert!(out.status.success(), "{}", stderr(&out));

    c.kubectl_ok(&["delete", "-f", &warn, "-f", &policy]);
    for ns in ["vap-on", "vap-off", "vap-noparam", "vap-warn"] {
        c.kubectl_ok(&["delete", "namespace", ns, "--wait=false"]);
    }
}

#[test]
fn reasons_variables_and_unserved_param_kinds() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let labels = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-forbidden-label"},
        "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": [""],
                "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["configmaps"]}]},
            "variables": [
                {"name": "labels", "expression": "has(object.metadata.labels) ? object.metadata.labels : {}"},
                {"name": "marked", "expression": "'forbidden' in variables.labels"},
            ],
            "validations": [{"expression": "!variables.marked",
                "message": "the forbidden label is not allowed", "reason": "Forbidden"}],
        },
    });
    let labels_binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "no-forbidden-label-binding"},
        "spec": {"policyName": "no-forbidden-label", "validationActions": ["Deny"]},
    });
    let widgets = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "widgets"},
        "spec": {
            "paramKind": {"apiVersion": "example.com/v1", "kind": "Widget"},
            "matchConstraints": {"resourceRules": [{"apiGroups": [""],
                "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["secrets"]}]},
            "validations": [{"expression": "true"}],
        },
    });
    let widgets_binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "widgets-binding"},
        "spec": {"policyName": "widgets", "validationActions": ["Deny"],
            "paramRef": {"name": "w", "parameterNotFoundAction": "Allow"}},
    });
    let files: Vec<String> = [
        ("labels.json", &labels),
        ("labels-binding.json", &labels_binding),
        ("widgets.json", &widgets),
        ("widgets-binding.json", &widgets_binding),
    ]
    .iter()
    .map(|(n, v)| write(dir.path(), n, v))
    .collect();
    let mut args = vec!["create"];
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    c.kubectl_ok(&args);

    // A reason of Forbidden: 403, the validation's message.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "marked", "namespace": "default", "labels": {"forbidden": "yes"}}});
    let f = write(dir.path(), "marked.json", &cm);
    until(&c, &["create", "--dry-run=server", "-f", &f], |o| {
        !o.status.success()
    });
    c.kubectl_ok(&["create", "configmap", "plain"]);
    let out = c.kubectl(&["create", "-f", &f]);
    assert!(
        stderr(&out).contains(&format!(
            "Error from server (Forbidden): error when creating \"{f}\": configmaps \"marked\" is forbidden: ValidatingAdmissionPolicy 'no-forbidden-label' with binding 'no-forbidden-label-binding' denied request: the forbidden label is not allowed"
        )),
        "{}",
        stderr(&out)
    );
    // A paramKind nobody serves: the policy cannot be applied (Fail).
    let secret = ["create", "secret", "generic", "s", "--from-literal=a=b"];
    let out = until(&c, &secret, |o| !o.status.success());
    assert!(
        stderr(&out).contains("secrets \"s\" is forbidden: ValidatingAdmissionPolicy 'widgets' denied request: failed to configure policy: failed to find resource referenced by paramKind: 'example.com/v1, Kind=Widget'"),
        "{}",
        stderr(&out)
    );
    // failurePolicy Ignore lets it through.
    c.kubectl_ok(&[
        "patch",
        "validatingadmissionpolicy",
        "widgets",
        "--type=merge",
        "-p",
        r#"{"spec":{"failurePolicy":"Ignore"}}"#,
    ]);
    let out = until(&c, &secret, |o| o.status.success());
    assert!(out.status.success(), "{}", stderr(&out));

    let mut args = vec!["delete"];
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    c.kubectl_ok(&args);
    c.kubectl_ok(&["delete", "configmap", "plain"]);
    c.kubectl_ok(&["delete", "secret", "s"]);
}

/// The policy `name` once its type checking is written.
fn checked(c: &Cluster, name: &str) -> Value {
    let out = until(
        c,
        &["get", "validatingadmissionpolicy", name, "-o", "json"],
        |o| {
            serde_json::from_slice::<Value>(&o.stdout)
                .is_ok_and(|p| p.pointer("/status/typeChecking").is_some())
        },
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A policy on Deployments with one validation.
fn policy(name: &str, validation: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
                "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"]}]},
            "validations": [validation],
        },
    })
}

#[test]
fn type_checking_is_reported_in_status() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let correct = write(
        dir.path(),
        "correct.json",
        &policy("correct", json!({"expression": "object.spec.replicas > 1"})),
    );
    let confused = write(
        dir.path(),
        "confused.json",
        &policy(
            "confused",
            json!({"expression": "object.spec.replicas > '1'",
                "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"}),
        ),
    );
    let undefined = write(
        dir.path(),
        "undefined.json",
        &policy(
            "undefined",
            json!({"expression": "object.spec.replicaz > 1"}),
        ),
    );
    c.kubectl_ok(&["create", "-f", &correct, "-f", &confused, "-f", &undefined]);

    let p = checked(&c, "correct");
    assert_eq!(p["status"]["typeChecking"], json!({}), "{p}");
    assert_eq!(p["status"]["observedGeneration"], 1, "{p}");

    let p = checked(&c, "confused");
    let warnings = p["status"]["typeChecking"]["expressionWarnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings: {p}"));
    assert_eq!(warnings.len(), 2, "{p}");
    assert_eq!(warnings[0]["fieldRef"], "spec.validations[0].expression");
    assert_eq!(
        warnings[0]["warning"],
        "apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n | object.spec.replicas > '1'\n | .....................^\n"
    );
    assert_eq!(
        warnings[1]["fieldRef"],
        "spec.validations[0].messageExpression"
    );
    assert!(warnings[1]["warning"]
        .as_str()
        .unwrap()
        .contains("found no matching overload for '_+_' applied to '(string, int)'"));

    let p = checked(&c, "undefined");
    let w = &p["status"]["typeChecking"]["expressionWarnings"][0];
    assert!(
        w["warning"]
            .as_str()
            .is_some_and(|s| s.contains("undefined field 'replicaz'")),
        "{p}"
    );

    // A new generation is checked again.
    c.kubectl_ok(&[
        "patch",
        "validatingadmissionpolicy",
        "undefined",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/validations/0/expression","value":"object.spec.replicas > 1"}]"#,
    ]);
    let out = until(
        &c,
        &[
            "get",
            "validatingadmissionpolicy",
            "undefined",
            "-o",
            "json",
        ],
        |o| {
            serde_json::from_slice::<Value>(&o.stdout)
                .is_ok_and(|p| p["status"]["observedGeneration"] == 2)
        },
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["status"]["observedGeneration"], 2, "{p}");
    assert_eq!(p["status"]["typeChecking"], json!({}), "{p}");

    // An expression that does not parse is refused when written.
    let broken = write(
        dir.path(),
        "broken.json",
        &policy("broken", json!({"expression": "object.spec.replicas >"})),
    );
    let out = c.kubectl(&["create", "-f", &broken]);
    assert!(
        stderr(&out).contains(
            "spec.validations[0].expression: Invalid value: \"object.spec.replicas >\": compilation failed: ERROR: <input>:1:23: Syntax error"
        ),
        "{}",
        stderr(&out)
    );

    c.kubectl_ok(&["delete", "-f", &correct, "-f", &confused, "-f", &undefined]);
}

#[test]
fn type_checking_follows_a_custom_resource_schema() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "cronSpec": {"type": "string"},
                        "replicas": {"type": "integer"}}}}}}}],
        },
    });
    let f = write(dir.path(), "crd.json", &crd);
    c.kubectl_ok(&["create", "-f", &f]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=20s",
    ]);
    let on_crontabs = |name: &str, expression: &str| {
        let mut p = policy(name, json!({"expression": expression}));
        p["spec"]["matchConstraints"]["resourceRules"][0]["apiGroups"] =
            json!(["stable.example.com"]);
        p["spec"]["matchConstraints"]["resourceRules"][0]["resources"] = json!(["crontabs"]);
        p
    };
    let good = write(
        dir.path(),
        "good.json",
        &on_crontabs("crontab-good", "object.spec.replicas > 1"),
    );
    let bad = write(
        dir.path(),
        "bad.json",
        &on_crontabs(
            "crontab-bad",
            "object.spec.replicas > '1' && object.spec.cronspec == ''",
        ),
    );
    c.kubectl_ok(&["create", "-f", &good, "-f", &bad]);
    let p = checked(&c, "crontab-good");
    assert_eq!(p["status"]["typeChecking"], json!({}), "{p}");
    let p = checked(&c, "crontab-bad");
    let w = &p["status"]["typeChecking"]["expressionWarnings"][0];
    assert_eq!(w["fieldRef"], "spec.validations[0].expression", "{p}");
    let text = w["warning"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("stable.example.com/v1, Kind=CronTab: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'"),
        "{p}"
    );
    assert!(text.contains("undefined field 'cronspec'"), "{p}");
    c.kubectl_ok(&["delete", "-f", &good, "-f", &bad, "-f", &f]);
}
