//! The checks of the Pod Security Standards, each at the policy versions
//! it has had, with the reasons and details Kubernetes' pod-security
//! admission gives (`hostPort (container "web" uses hostPort 80)`).
//!
//! A check reads the pod's metadata and spec as JSON. The `baseline`
//! checks apply to baseline and restricted pods; the `restricted` ones to
//! restricted pods only, some of them standing in for a baseline check
//! they make stricter (`capabilities_restricted` for
//! `capabilities_baseline`, ...). Results come baseline checks first, then
//! restricted ones, each group in the order of the checks' ids, as
//! Kubernetes orders them.

use std::collections::BTreeSet;

use serde_json::Value;

use super::api::{Level, LevelVersion, Version};

/// Why a check refuses a pod: a short reason, and details naming what
/// (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Forbidden {
    pub reason: String,
    pub detail: String,
}

/// A check's verdict: `None` allows the pod.
pub(crate) type Verdict = Option<Forbidden>;

type CheckFn = fn(&Value, &Value) -> Verdict;

/// One version of a check: from which policy version on it applies, and
/// which baseline checks it replaces at the restricted level.
struct Versioned {
    min_minor: u32,
    check: CheckFn,
    overrides: &'static [&'static str],
}

struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn v(min_minor: u32, check: CheckFn) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides: &[],
    }
}

const fn v_over(min_minor: u32, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides,
    }
}

/// Every check, baseline ones first, each group sorted by id.
static CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, app_armor_profile)],
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, capabilities_baseline)],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host_namespaces)],
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, host_path_volumes)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host_ports)],
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, privileged)],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, proc_mount)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[v(0, se_linux_options_1_0), v(31, se_linux_options_1_31)],
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[v(0, seccomp_baseline_1_0), v(19, seccomp_baseline_1_19)],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, sysctls_1_0),
            v(27, sysctls_1_27),
            v(29, sysctls_1_29),
            v(32, sysctls_1_32),
        ],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, windows_host_process)],
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, allow_privilege_escalation_1_8),
            v(25, allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(22, capabilities_restricted_1_22, &["capabilities_baseline"]),
            v_over(25, capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[v_over(0, restricted_volumes, &["hostPathVolumes"])],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, run_as_non_root)],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, run_as_user)],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(19, seccomp_restricted_1_19, &["seccompProfile_baseline"]),
            v_over(25, seccomp_restricted_1_25, &["seccompProfile_baseline"]),
        ],
    },
];

/// The newest policy version any check changed at: later versions (and
/// `latest`) evaluate as this one.
fn max_minor() -> u32 {
    CHECKS
        .iter()
        .flat_map(|c| c.versions.iter().map(|v| v.min_minor))
        .max()
        .unwrap_or(0)
}

/// The version of `check` in force at policy version `minor`.
fn at(check: &Check, minor: u32) -> Option<&Versioned> {
    check.versions.iter().rev().find(|v| v.min_minor <= minor)
}

/// The verdicts of the checks of `lv` on a pod (its metadata and spec),
/// the refusals only, in Kubernetes' order.
pub(crate) fn evaluate(lv: LevelVersion, meta: &Value, spec: &Value) -> Vec<Forbidden> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let minor = match lv.version {
        Version::Latest => max_minor(),
        Version::Minor(m) => m.min(max_minor()),
    };
    let overridden: BTreeSet<&str> = if lv.level == Level::Restricted {
        CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .filter_map(|c| at(c, minor))
            .flat_map(|v| v.overrides.iter().copied())
            .collect()
    } else {
        BTreeSet::new()
    };
    CHECKS
        .iter()
        .filter(|c| c.level == Level::Baseline || lv.level == Level::Restricted)
        .filter(|c| !overridden.contains(c.id))
        .filter_map(|c| at(c, minor))
        .filter_map(|v| (v.check)(meta, spec))
        .collect()
}

/// The refusals as Kubernetes writes them for one pod: `reason (detail),
/// reason, ...`.
pub(crate) fn forbidden_detail(results: &[Forbidden]) -> String {
    results
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reasons alone (for a namespace's pods, counted together).
pub(crate) fn forbidden_reason(results: &[Forbidden]) -> String {
    results
        .iter()
        .map(|f| f.reason.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// Helpers.

fn forbid(reason: impl Into<String>, detail: impl Into<String>) -> Verdict {
    Some(Forbidden {
        reason: reason.into(),
        detail: detail.into(),
    })
}

/// `"a", "b"`.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_named(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A string quoted as Go's `%q` writes it.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The containers of a pod spec: init containers, containers, then
/// ephemeral containers.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
}

fn name(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A container's (or the pod's) security context field, if set.
fn sc_field<'a>(holder: &'a Value, field: &str) -> Option<&'a Value> {
    holder
        .get("securityContext")
        .and_then(|sc| sc.get(field))
        .filter(|v| !v.is_null())
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn annotations(meta: &Value) -> impl Iterator<Item = (&String, &str)> {
    meta.get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
}

fn annotation<'a>(meta: &'a Value, key: &str) -> Option<&'a str> {
    meta.get("annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn is_windows(spec: &Value) -> bool {
    spec.pointer("/os/name").and_then(Value::as_str) == Some("windows")
}

/// `pod`, `containers "a", "b"`, joined with ` and `.
fn setters(pod: bool, bad_containers: &[String]) -> Vec<String> {
    let mut s = Vec::new();
    if pod {
        s.push("pod".to_string());
    }
    if !bad_containers.is_empty() {
        s.push(containers_named(bad_containers));
    }
    s
}

// Baseline checks.

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// The AppArmor profile may not be unconfined (fields or the old
/// annotations).
fn app_armor_profile(meta: &Value, spec: &Value) -> Verdict {
    let bad_type = |holder: &Value| -> Option<String> {
        let t = str_of(sc_field(holder, "appArmorProfile")?, "type");
        (t != "RuntimeDefault" && t != "Localhost").then(|| t.to_string())
    };
    let mut bad_values = BTreeSet::new();
    let pod_bad = match bad_type(spec) {
        Some(t) => {
            bad_values.insert(t);
            true
        }
        None => false,
    };
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(t) = bad_type(c) {
            bad_values.insert(t);
            bad_containers.push(name(c));
        }
    }
    let mut who = setters(pod_bad, &bad_containers);
    let mut values: Vec<String> = bad_values.into_iter().collect();
    let mut bad_annotations: Vec<String> = annotations(meta)
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    if !bad_annotations.is_empty() {
        bad_annotations.sort();
        who.push(pluralize("annotation", "annotations", bad_annotations.len()).to_string());
        values.extend(bad_annotations);
    }
    if who.is_empty() {
        return None;
    }
    forbid(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    )
}

const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(c: &Value) -> impl Iterator<Item = &str> {
    sc_field(c, "capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Only the container runtime's default capabilities may be added.
fn capabilities_baseline(_: &Value, spec: &Value) -> Verdict {
    let mut bad_containers = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let mut bad = false;
        for cap in added_capabilities(c) {
            if !DEFAULT_CAPABILITIES.contains(&cap) {
                bad = true;
                caps.insert(cap.to_string());
            }
        }
        if bad {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    forbid(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad_containers),
            join_quote(&caps)
        ),
    )
}

/// No host network, PID or IPC namespace.
fn host_namespaces(_: &Value, spec: &Value) -> Verdict {
    let set: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(f, _)| spec.get(*f).and_then(Value::as_bool) == Some(true))
    .map(|(_, shown)| shown)
    .collect();
    if set.is_empty() {
        return None;
    }
    forbid("host namespaces", set.join(", "))
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// No hostPath volume.
fn host_path_volumes(_: &Value, spec: &Value) -> Verdict {
    let names: Vec<String> = volumes(spec)
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    if names.is_empty() {
        return None;
    }
    forbid(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

/// No container port bound on the host.
fn host_ports(_: &Value, spec: &Value) -> Verdict {
    let mut bad_containers = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let mut bad = false;
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp != 0 {
                bad = true;
                ports.insert(hp.to_string());
            }
        }
        if bad {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    forbid(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_named(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// No privileged container.
fn privileged(_: &Value, spec: &Value) -> Verdict {
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc_field(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_named(&bad)
        ),
    )
}

/// The default /proc masks.
fn proc_mount(_: &Value, spec: &Value) -> Verdict {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(t) = sc_field(c, "procMount").and_then(Value::as_str) {
            if t != "Default" {
                bad.push(name(c));
                types.insert(t.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    forbid(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_named(&bad),
            join_quote(&types)
        ),
    )
}

fn se_linux_options(spec: &Value, allowed: &[&str], user_role_with_types_only: bool) -> Verdict {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let t = str_of(opts, "type");
        if !allowed.contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !str_of(opts, "user").is_empty() {
            ok = false;
            set_user = true;
        }
        if !str_of(opts, "role").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let pod_bad = sc_field(spec, "seLinuxOptions").is_some_and(|o| !valid(o));
    let bad_containers: Vec<String> = containers(spec)
        .filter(|c| sc_field(c, "seLinuxOptions").is_some_and(|o| !valid(o)))
        .map(name)
        .collect();
    let who = setters(pod_bad, &bad_containers);
    if who.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.iter().cloned().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    // Up to v1.30 Kubernetes named user and role only beside a bad type.
    if !user_role_with_types_only || !bad_types.is_empty() {
        if set_user {
            data.push("user may not be set".to_string());
        }
        if set_role {
            data.push("role may not be set".to_string());
        }
    }
    forbid(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            who.join(" and "),
            data.join("; ")
        ),
    )
}

/// SELinux: only the container types; no user or role.
fn se_linux_options_1_0(_: &Value, spec: &Value) -> Verdict {
    se_linux_options(
        spec,
        &["", "container_t", "container_init_t", "container_kvm_t"],
        true,
    )
}

/// As v1.0, `container_engine_t` allowed too.
fn se_linux_options_1_31(_: &Value, spec: &Value) -> Verdict {
    se_linux_options(
        spec,
        &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ],
        false,
    )
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn valid_seccomp_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

/// Before v1.19: the seccomp annotations name only allowed profiles.
fn seccomp_baseline_1_0(meta: &Value, spec: &Value) -> Verdict {
    let mut bad = BTreeSet::new();
    if let Some(v) = annotation(meta, SECCOMP_POD_ANNOTATION) {
        if !valid_seccomp_annotation(v) {
            bad.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
        }
    }
    for c in containers(spec) {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", name(c));
        if let Some(v) = annotation(meta, &key) {
            if !valid_seccomp_annotation(v) {
                bad.insert(format!("{key}={}", go_quote(v)));
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let bad: Vec<String> = bad.into_iter().collect();
    forbid(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", bad.len()),
            bad.join(", ")
        ),
    )
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// The seccomp profile type of a pod or container, if it sets one.
fn seccomp_type(holder: &Value) -> Option<&str> {
    sc_field(holder, "seccompProfile").map(|p| str_of(p, "type"))
}

/// Who sets a seccomp profile other than RuntimeDefault or Localhost, and
/// the containers that set none with no valid pod-level profile.
struct SeccompUse {
    pod_bad: bool,
    pod_valid: bool,
    explicitly_bad: Vec<String>,
    implicitly_bad: Vec<String>,
    bad_values: BTreeSet<String>,
}

fn seccomp_use(spec: &Value) -> SeccompUse {
    let mut u = SeccompUse {
        pod_bad: false,
        pod_valid: false,
        explicitly_bad: Vec::new(),
        implicitly_bad: Vec::new(),
        bad_values: BTreeSet::new(),
    };
    if let Some(t) = seccomp_type(spec) {
        if valid_seccomp(t) {
            u.pod_valid = true;
        } else {
            u.pod_bad = true;
            u.bad_values.insert(t.to_string());
        }
    }
    for c in containers(spec) {
        match seccomp_type(c) {
            Some(t) if !valid_seccomp(t) => {
                u.explicitly_bad.push(name(c));
                u.bad_values.insert(t.to_string());
            }
            Some(_) => {}
            None if !u.pod_valid => u.implicitly_bad.push(name(c)),
            None => {}
        }
    }
    u
}

fn seccomp_explicit(u: &SeccompUse) -> Verdict {
    let who = setters(u.pod_bad, &u.explicitly_bad);
    if who.is_empty() {
        return None;
    }
    let values: Vec<String> = u.bad_values.iter().cloned().collect();
    forbid(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    )
}

/// From v1.19: a seccomp profile, if set, is RuntimeDefault or Localhost.
fn seccomp_baseline_1_19(_: &Value, spec: &Value) -> Verdict {
    seccomp_explicit(&seccomp_use(spec))
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctls(spec: &Value, allowed: &[&[&str]]) -> Verdict {
    let bad: Vec<&str> = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| str_of(s, "name"))
        .filter(|n| !allowed.iter().any(|set| set.contains(n)))
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid("forbidden sysctls", bad.join(", "))
}

/// Only the safe, namespaced sysctls.
fn sysctls_1_0(_: &Value, spec: &Value) -> Verdict {
    sysctls(spec, &[SYSCTLS_1_0])
}
fn sysctls_1_27(_: &Value, spec: &Value) -> Verdict {
    sysctls(spec, &[SYSCTLS_1_0, SYSCTLS_1_27])
}
fn sysctls_1_29(_: &Value, spec: &Value) -> Verdict {
    sysctls(spec, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29])
}
fn sysctls_1_32(_: &Value, spec: &Value) -> Verdict {
    sysctls(
        spec,
        &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29, SYSCTLS_1_32],
    )
}

/// No Windows host-process pod or container.
fn windows_host_process(_: &Value, spec: &Value) -> Verdict {
    let host_process = |h: &Value| {
        sc_field(h, "windowsOptions").and_then(|w| w.get("hostProcess")) == Some(&Value::Bool(true))
    };
    let bad: Vec<String> = containers(spec)
        .filter(|c| host_process(c))
        .map(name)
        .collect();
    let who = setters(host_process(spec), &bad);
    if who.is_empty() {
        return None;
    }
    forbid(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            who.join(" and ")
        ),
    )
}

// Restricted checks.

/// Every container sets `allowPrivilegeEscalation: false`.
fn allow_privilege_escalation_1_8(_: &Value, spec: &Value) -> Verdict {
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc_field(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_named(&bad)
        ),
    )
}

/// As v1.8, Windows pods aside (the field means nothing there).
fn allow_privilege_escalation_1_25(meta: &Value, spec: &Value) -> Verdict {
    if is_windows(spec) {
        return None;
    }
    allow_privilege_escalation_1_8(meta, spec)
}

/// Every container drops ALL and adds nothing but NET_BIND_SERVICE.
fn capabilities_restricted_1_22(_: &Value, spec: &Value) -> Verdict {
    let mut missing_drop_all = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let Some(capabilities) = sc_field(c, "capabilities") else {
            missing_drop_all.push(name(c));
            continue;
        };
        let drops_all = capabilities
            .get("drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            missing_drop_all.push(name(c));
        }
        let mut bad = false;
        for cap in added_capabilities(c) {
            if cap != "NET_BIND_SERVICE" {
                bad = true;
                caps.insert(cap.to_string());
            }
        }
        if bad {
            adding.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    forbid("unrestricted capabilities", details.join("; "))
}

/// As v1.22, Windows pods aside.
fn capabilities_restricted_1_25(meta: &Value, spec: &Value) -> Verdict {
    if is_windows(spec) {
        return None;
    }
    capabilities_restricted_1_22(meta, spec)
}

/// The volume types a restricted pod may use.
const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The other volume types, by their field names.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
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
];

/// Only volumes of the kinds that need no access to the node.
fn restricted_volumes(_: &Value, spec: &Value) -> Verdict {
    let has = |v: &Value, k: &str| v.get(k).is_some_and(|x| !x.is_null());
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for vol in volumes(spec) {
        if ALLOWED_VOLUME_TYPES.iter().any(|t| has(vol, t)) {
            continue;
        }
        bad.push(name(vol));
        let ty = RESTRICTED_VOLUME_TYPES
            .iter()
            .find(|t| has(vol, t))
            .copied()
            .unwrap_or("unknown");
        types.insert(ty.to_string());
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    forbid(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

/// The pod, or every container, sets `runAsNonRoot: true`, and none sets
/// it false.
fn run_as_non_root(_: &Value, spec: &Value) -> Verdict {
    let pod = sc_field(spec, "runAsNonRoot").and_then(Value::as_bool);
    let pod_true = pod == Some(true);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match sc_field(c, "runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if !pod_true => implicit.push(name(c)),
            None => {}
        }
    }
    let who = setters(pod == Some(false), &explicit);
    if !who.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                who.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_named(&implicit)
            ),
        );
    }
    None
}

/// No pod or container runs as uid 0.
fn run_as_user(_: &Value, spec: &Value) -> Verdict {
    let root = |h: &Value| sc_field(h, "runAsUser").and_then(Value::as_i64) == Some(0);
    let bad: Vec<String> = containers(spec).filter(|c| root(c)).map(name).collect();
    let who = setters(root(spec), &bad);
    if who.is_empty() {
        return None;
    }
    forbid(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", who.join(" and ")),
    )
}

/// A seccomp profile is set (on the pod, or on every container), and is
/// RuntimeDefault or Localhost.
fn seccomp_restricted_1_19(_: &Value, spec: &Value) -> Verdict {
    let u = seccomp_use(spec);
    if let Some(f) = seccomp_explicit(&u) {
        return Some(f);
    }
    if u.implicitly_bad.is_empty() {
        return None;
    }
    forbid(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&u.implicitly_bad)
        ),
    )
}

/// As v1.19, Windows pods aside.
fn seccomp_restricted_1_25(meta: &Value, spec: &Value) -> Verdict {
    if is_windows(spec) {
        return None;
    }
    seccomp_restricted_1_19(meta, spec)
}

#[cfg(test)]
mod tests;
