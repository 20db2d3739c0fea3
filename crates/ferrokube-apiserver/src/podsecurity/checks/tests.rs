//! Each check on pods that pass and pods that fail it, with the reasons
//! and details of Kubernetes' own tests of its checks.

use serde_json::{json, Value};

use super::*;

/// `check` allows `spec` (with no metadata).
fn allows(check: CheckFn, spec: Value) {
    assert_eq!(check(&json!({}), &spec), None, "{spec}");
}

/// `check` refuses `spec` with `reason` and `detail`.
fn refuses(check: CheckFn, spec: Value, reason: &str, detail: &str) {
    refuses_with_meta(check, json!({}), spec, reason, detail);
}

fn refuses_with_meta(check: CheckFn, meta: Value, spec: Value, reason: &str, detail: &str) {
    let got = check(&meta, &spec);
    assert_eq!(
        got,
        Some(Forbidden {
            reason: reason.into(),
            detail: detail.into()
        }),
        "{spec}"
    );
}

fn c(name: &str, sc: Value) -> Value {
    json!({"name": name, "image": "busybox", "securityContext": sc})
}

fn bare(name: &str) -> Value {
    json!({"name": name, "image": "busybox"})
}

#[test]
fn the_checks_are_in_kubernetes_order() {
    let ids = |level: Level| -> Vec<&str> {
        CHECKS
            .iter()
            .filter(|c| c.level == level)
            .map(|c| c.id)
            .collect()
    };
    for level in [Level::Baseline, Level::Restricted] {
        let mut sorted = ids(level);
        sorted.sort();
        assert_eq!(ids(level), sorted, "{level:?} ids sorted bytewise");
    }
    let first_restricted = CHECKS
        .iter()
        .position(|c| c.level == Level::Restricted)
        .unwrap();
    assert!(CHECKS[first_restricted..]
        .iter()
        .all(|c| c.level == Level::Restricted));
    for check in CHECKS {
        let mins: Vec<u32> = check.versions.iter().map(|v| v.min_minor).collect();
        assert!(mins.windows(2).all(|w| w[0] < w[1]), "{}", check.id);
    }
    assert_eq!(max_minor(), 32);
}

#[test]
fn app_armor() {
    let f = app_armor_profile;
    allows(
        f,
        json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}),
    );
    allows(
        f,
        json!({"containers": [c("a", json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}))]}),
    );
    assert_eq!(
        f(
            &json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/test": "localhost/sec-profile01", "env": "dev"}}),
            &json!({})
        ),
        None
    );
    refuses(
        f,
        json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        "forbidden AppArmor profile",
        r#"pod must not set AppArmor profile type to "Unconfined""#,
    );
    refuses(
        f,
        json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
            "initContainers": [c("bar", json!({"appArmorProfile": {"type": "Unconfined"}}))],
            "containers": [bare("foo")]}),
        "forbidden AppArmor profile",
        r#"container "bar" must not set AppArmor profile type to "Unconfined""#,
    );
    refuses_with_meta(
        f,
        json!({"annotations": {
            "container.apparmor.security.beta.kubernetes.io/": "bogus",
            "container.apparmor.security.beta.kubernetes.io/a": "",
            "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
            "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
            "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/f": "unknown",
        }}),
        json!({}),
        "forbidden AppArmor profiles",
        r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/="bogus"", "container.apparmor.security.beta.kubernetes.io/e="unconfined"", "container.apparmor.security.beta.kubernetes.io/f="unknown"""#,
    );
}

#[test]
fn baseline_capabilities() {
    let f = capabilities_baseline;
    allows(
        f,
        json!({"containers": [c("a", json!({"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"], "drop": ["ALL"]}}))]}),
    );
    refuses(
        f,
        json!({"containers": [
            c("a", json!({"capabilities": {"add": ["FOO", "BAR"]}})),
            c("b", json!({"capabilities": {"add": ["BAR", "BAZ"]}})),
            c("c", json!({"capabilities": {"add": ["CHOWN"]}})),
        ]}),
        "non-default capabilities",
        r#"containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add"#,
    );
}

#[test]
fn host_namespaces_are_refused() {
    allows(
        host_namespaces,
        json!({"hostNetwork": false, "hostPID": false}),
    );
    refuses(
        host_namespaces,
        json!({"hostNetwork": true, "hostIPC": true, "hostPID": true}),
        "host namespaces",
        "hostNetwork=true, hostPID=true, hostIPC=true",
    );
}

#[test]
fn host_path_volumes_are_refused() {
    allows(
        host_path_volumes,
        json!({"volumes": [{"name": "a", "emptyDir": {}}]}),
    );
    refuses(
        host_path_volumes,
        json!({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/"}}, {"name": "c", "hostPath": {"path": "/x"}}]}),
        "hostPath volumes",
        r#"volumes "b", "c""#,
    );
}

#[test]
fn host_ports_are_refused() {
    allows(
        host_ports,
        json!({"containers": [{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}]}]}),
    );
    refuses(
        host_ports,
        json!({"containers": [
            {"name": "a", "ports": [{"hostPort": 0}]},
            {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 20}]},
        ]}),
        "hostPort",
        r#"container "b" uses hostPort 20"#,
    );
    refuses(
        host_ports,
        json!({"containers": [
            {"name": "a", "ports": [{"hostPort": 0}]},
            {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
            {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]},
        ]}),
        "hostPort",
        r#"containers "b", "c" use hostPorts 10, 20, 30"#,
    );
}

#[test]
fn privileged_containers_are_refused() {
    allows(
        privileged,
        json!({"containers": [c("a", json!({"privileged": false})), bare("b")]}),
    );
    refuses(
        privileged,
        json!({"initContainers": [c("i", json!({"privileged": true}))],
            "containers": [c("a", json!({"privileged": true})), c("b", json!({"privileged": false}))],
            "ephemeralContainers": [c("e", json!({"privileged": true}))]}),
        "privileged",
        r#"containers "i", "a", "e" must not set securityContext.privileged=true"#,
    );
}

#[test]
fn proc_mount_must_be_default() {
    allows(
        proc_mount,
        json!({"containers": [c("a", json!({"procMount": "Default"})), bare("b")]}),
    );
    refuses(
        proc_mount,
        json!({"containers": [c("a", json!({"procMount": "Unmasked"})), c("b", json!({"procMount": "Default"})), c("c", json!({"procMount": "other"}))]}),
        "procMount",
        r#"containers "a", "c" must not set securityContext.procMount to "Unmasked", "other""#,
    );
}

#[test]
fn se_linux_options_are_limited() {
    let f = se_linux_options_1_31;
    allows(
        f,
        json!({"securityContext": {"seLinuxOptions": {"level": "s0:c1"}},
            "containers": [c("a", json!({"seLinuxOptions": {"type": "container_engine_t"}}))]}),
    );
    let many = json!({
    "securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
    "containers": [
        c("a", json!({"seLinuxOptions": {"type": "container_t"}})),
        c("b", json!({"seLinuxOptions": {"type": "container_init_t"}})),
        c("c", json!({"seLinuxOptions": {"type": "container_kvm_t"}})),
        c("d", json!({"seLinuxOptions": {"type": "container_engine_t"}})),
        c("e", json!({"seLinuxOptions": {"type": "bar"}})),
        c("f", json!({"seLinuxOptions": {"user": "bar"}})),
        c("g", json!({"seLinuxOptions": {"role": "baz"}})),
    ]});
    refuses(
        f,
        many,
        "seLinuxOptions",
        r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#,
    );
    refuses(
        f,
        json!({"securityContext": {"seLinuxOptions": {"user": "bad"}}}),
        "seLinuxOptions",
        "pod set forbidden securityContext.seLinuxOptions: user may not be set",
    );
    // Before v1.31 container_engine_t was not allowed.
    refuses(
        se_linux_options_1_0,
        json!({"containers": [c("d", json!({"seLinuxOptions": {"type": "container_engine_t"}}))]}),
        "seLinuxOptions",
        r#"container "d" set forbidden securityContext.seLinuxOptions: type "container_engine_t""#,
    );
}

#[test]
fn seccomp_baseline() {
    let f = seccomp_baseline_1_19;
    allows(f, json!({"containers": [bare("a")]}));
    allows(
        f,
        json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [c("a", json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}))]}),
    );
    refuses(
        f,
        json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "containers": [c("a", json!({"seccompProfile": {"type": "Unconfined"}})), c("b", json!({"seccompProfile": {"type": "Other"}})), bare("c")]}),
        "seccompProfile",
        r#"pod and containers "a", "b" must not set securityContext.seccompProfile.type to "Other", "Unconfined""#,
    );
    refuses_with_meta(
        seccomp_baseline_1_0,
        json!({"annotations": {
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/a": "runtime/default",
            "container.seccomp.security.alpha.kubernetes.io/b": "bad",
        }}),
        json!({"containers": [bare("a"), bare("b")]}),
        "seccompProfile",
        r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/b="bad", seccomp.security.alpha.kubernetes.io/pod="unconfined""#,
    );
}

#[test]
fn sysctls_by_version() {
    let spec = |names: &[&str]| json!({"securityContext": {"sysctls": names.iter().map(|n| json!({"name": n, "value": "1"})).collect::<Vec<_>>()}});
    refuses(sysctls_1_0, spec(&["a", "b"]), "forbidden sysctls", "a, b");
    refuses(
        sysctls_1_0,
        spec(&["net.ipv4.ip_local_reserved_ports"]),
        "forbidden sysctls",
        "net.ipv4.ip_local_reserved_ports",
    );
    allows(sysctls_1_27, spec(&["net.ipv4.ip_local_reserved_ports"]));
    refuses(
        sysctls_1_27,
        spec(&["net.ipv4.tcp_keepalive_time"]),
        "forbidden sysctls",
        "net.ipv4.tcp_keepalive_time",
    );
    allows(
        sysctls_1_29,
        spec(&["net.ipv4.tcp_keepalive_time", "kernel.shm_rmid_forced"]),
    );
    refuses(
        sysctls_1_29,
        spec(&["net.ipv4.tcp_rmem"]),
        "forbidden sysctls",
        "net.ipv4.tcp_rmem",
    );
    allows(
        sysctls_1_32,
        spec(&["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]),
    );
}

#[test]
fn windows_host_process_is_refused() {
    let hp = json!({"windowsOptions": {"hostProcess": true}});
    allows(
        windows_host_process,
        json!({"containers": [c("a", json!({"windowsOptions": {"hostProcess": false}}))]}),
    );
    refuses(
        windows_host_process,
        json!({"securityContext": hp.clone(), "containers": [c("a", hp.clone()), c("b", hp), bare("c")]}),
        "hostProcess",
        r#"pod and containers "a", "b" must not set securityContext.windowsOptions.hostProcess=true"#,
    );
}

#[test]
fn privilege_escalation_must_be_off() {
    let multi = json!({"containers": [
        bare("a"),
        c("b", json!({})),
        c("c", json!({"allowPrivilegeEscalation": true})),
        c("d", json!({"allowPrivilegeEscalation": false})),
    ]});
    let detail =
        r#"containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false"#;
    refuses(
        allow_privilege_escalation_1_25,
        multi.clone(),
        "allowPrivilegeEscalation != false",
        detail,
    );
    refuses(
        allow_privilege_escalation_1_8,
        multi,
        "allowPrivilegeEscalation != false",
        detail,
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [bare("a")]});
    allows(allow_privilege_escalation_1_25, windows.clone());
    assert!(allow_privilege_escalation_1_8(&json!({}), &windows).is_some());
}

#[test]
fn restricted_capabilities() {
    let f = capabilities_restricted_1_25;
    allows(
        f,
        json!({"containers": [c("a", json!({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))]}),
    );
    refuses(
        f,
        json!({"containers": [
            bare("a"),
            c("b", json!({"capabilities": {"drop": ["NET_RAW"]}})),
            c("c", json!({"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE", "CHOWN"]}})),
            c("d", json!({"capabilities": {"add": ["CHOWN"]}})),
        ]}),
        "unrestricted capabilities",
        r#"containers "a", "b", "d" must set securityContext.capabilities.drop=["ALL"]; containers "c", "d" must not include "CHOWN", "SYS_ADMIN" in securityContext.capabilities.add"#,
    );
    allows(
        f,
        json!({"os": {"name": "windows"}, "containers": [bare("a")]}),
    );
}

#[test]
fn restricted_volume_types() {
    allows(
        restricted_volumes,
        json!({"volumes": [
            {"name": "a1", "emptyDir": {}}, {"name": "a2", "secret": {}}, {"name": "a3", "persistentVolumeClaim": {}},
            {"name": "a4", "downwardAPI": {}}, {"name": "a5", "configMap": {}}, {"name": "a6", "projected": {}},
            {"name": "a7", "csi": {}}, {"name": "a8", "ephemeral": {}}, {"name": "a9", "image": {}},
        ]}),
    );
    let mut vols = Vec::new();
    for (i, t) in [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ]
    .iter()
    .enumerate()
    {
        vols.push(json!({"name": format!("b{}", i + 1), *t: {}}));
    }
    vols.push(json!({"name": "c1"}));
    refuses(
        restricted_volumes,
        json!({"volumes": vols}),
        "restricted volume types",
        concat!(
            r#"volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1""#,
            r#" use restricted volume types "#,
            r#""awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "#,
            r#""hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#
        ),
    );
    refuses(
        restricted_volumes,
        json!({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}),
        "restricted volume types",
        r#"volume "host" uses restricted volume type "hostPath""#,
    );
}

#[test]
fn run_as_non_root_is_required() {
    let f = run_as_non_root;
    allows(
        f,
        json!({"securityContext": {"runAsNonRoot": true}, "containers": [bare("a")]}),
    );
    allows(
        f,
        json!({"containers": [c("a", json!({"runAsNonRoot": true}))]}),
    );
    refuses(
        f,
        json!({"securityContext": {"runAsNonRoot": false}, "containers": [
            bare("a"), c("b", json!({})), c("c", json!({"runAsNonRoot": false})),
            c("d", json!({"runAsNonRoot": false})), c("e", json!({"runAsNonRoot": true})),
        ]}),
        "runAsNonRoot != true",
        r#"pod and containers "c", "d" must not set securityContext.runAsNonRoot=false"#,
    );
    refuses(
        f,
        json!({"containers": [bare("a"), c("b", json!({})), c("d", json!({"runAsNonRoot": true}))]}),
        "runAsNonRoot != true",
        r#"pod or containers "a", "b" must set securityContext.runAsNonRoot=true"#,
    );
}

#[test]
fn run_as_user_zero_is_refused() {
    allows(
        run_as_user,
        json!({"securityContext": {"runAsUser": 1000}, "containers": [c("a", json!({"runAsUser": 1}))]}),
    );
    refuses(
        run_as_user,
        json!({"securityContext": {"runAsUser": 0}, "containers": [
            c("a", json!({"runAsUser": 0})), c("b", json!({"runAsUser": 0})), c("c", json!({"runAsUser": 1})), bare("d"),
        ]}),
        "runAsUser=0",
        r#"pod and containers "a", "b" must not set runAsUser=0"#,
    );
}

#[test]
fn seccomp_restricted() {
    let f = seccomp_restricted_1_25;
    allows(
        f,
        json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [bare("a")]}),
    );
    refuses(
        f,
        json!({"containers": [bare("a"), c("b", json!({"seccompProfile": {"type": "Localhost"}})), bare("c")]}),
        "seccompProfile",
        r#"pod or containers "a", "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
    );
    refuses(
        f,
        json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [bare("a")]}),
        "seccompProfile",
        r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    allows(
        f,
        json!({"os": {"name": "windows"}, "containers": [bare("a")]}),
    );
}

/// The pod Kubernetes' documentation refuses: a plain container.
fn plain_pod() -> Value {
    json!({"containers": [{"name": "c", "image": "busybox"}]})
}

#[test]
fn a_plain_pod_against_each_level() {
    let lv = |level, version| LevelVersion { level, version };
    let meta = json!({});
    assert!(evaluate(lv(Level::Privileged, Version::Latest), &meta, &plain_pod()).is_empty());
    assert!(evaluate(lv(Level::Baseline, Version::Latest), &meta, &plain_pod()).is_empty());
    let restricted = evaluate(lv(Level::Restricted, Version::Latest), &meta, &plain_pod());
    assert_eq!(
        forbidden_detail(&restricted),
        r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        forbidden_reason(&restricted),
        "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    );
    // Before v1.22 capabilities were not restricted, before v1.19 seccomp
    // was read from annotations only.
    let old = evaluate(
        lv(Level::Restricted, Version::Minor(18)),
        &meta,
        &plain_pod(),
    );
    assert_eq!(
        forbidden_reason(&old),
        "allowPrivilegeEscalation != false, runAsNonRoot != true"
    );
}

#[test]
fn baseline_first_and_overridden_checks_skipped() {
    let spec = json!({
        "hostNetwork": true,
        "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}],
            "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}}],
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
    });
    let lv = |level| LevelVersion {
        level,
        version: Version::Latest,
    };
    let baseline = evaluate(lv(Level::Baseline), &json!({}), &spec);
    assert_eq!(
        forbidden_detail(&baseline),
        r#"non-default capabilities (container "c" must not include "NET_ADMIN" in securityContext.capabilities.add), host namespaces (hostNetwork=true), hostPath volumes (volume "host"), hostPort (container "c" uses hostPort 80), privileged (container "c" must not set securityContext.privileged=true)"#
    );
    let restricted = evaluate(lv(Level::Restricted), &json!({}), &spec);
    assert_eq!(
        forbidden_reason(&restricted),
        "host namespaces, hostPort, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, restricted volume types, runAsNonRoot != true, seccompProfile"
    );
    // At v1.21 the baseline capabilities check still stands.
    let v121 = evaluate(
        LevelVersion {
            level: Level::Restricted,
            version: Version::Minor(21),
        },
        &json!({}),
        &spec,
    );
    assert!(forbidden_reason(&v121).starts_with("non-default capabilities, host namespaces"));
}

#[test]
fn a_restricted_pod_passes_every_level() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}],
    });
    for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
        for version in [
            Version::Latest,
            Version::Minor(0),
            Version::Minor(25),
            Version::Minor(99),
        ] {
            assert!(evaluate(LevelVersion { level, version }, &json!({}), &spec).is_empty());
        }
    }
}

#[test]
fn go_quoting() {
    assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
}
