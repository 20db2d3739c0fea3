//! Pod Security Admission: the Pod Security Standards (privileged,
//! baseline, restricted) as Kubernetes' PodSecurity admission plugin
//! applies them.
//!
//! A namespace says what it wants with the labels
//! `pod-security.kubernetes.io/{enforce,audit,warn}` (a level) and
//! `...-version` (`latest` or `v1.X`); the cluster's defaults and
//! exemptions come from the admission configuration file ([`Config`]).
//!
//! - A pod that violates its namespace's `enforce` level is refused
//!   (`pods "x" is forbidden: violates PodSecurity "restricted:latest":
//!   ...`); one that violates the `warn` level gets a warning (`would
//!   violate PodSecurity ...`, sent as an HTTP `Warning` header, which
//!   kubectl prints); an `audit` violation is logged.
//! - Workloads (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//!   CronJobs, ReplicationControllers, PodTemplates) are warned about and
//!   audited through their pod template, never refused: their pods are.
//! - Pod updates are checked only when they could change what the checks
//!   see (containers added or removed, images, seccomp annotations,
//!   ephemeral containers); a metadata-only update is not.
//! - A namespace's labels must parse (else 422); setting a stricter
//!   `enforce` level warns about the existing pods that violate it.
//! - Exempt users, namespaces and runtime classes are not checked.

pub(crate) mod api;
pub(crate) mod checks;
pub(crate) mod config;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;

use crate::options::WriteOptions;
use crate::rest::{ApiResult, Rest};

pub(crate) use api::{Level, LevelVersion, Policy};
pub(crate) use config::Config;

use checks::{evaluate, forbidden_detail, forbidden_reason, Forbidden};

/// Pods checked at most when a namespace's enforce level changes.
const NAMESPACE_MAX_PODS_TO_CHECK: usize = 3000;

/// Pod subresources whose writes cannot change what the checks see.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The kinds that hold a pod template, and where.
fn pod_template<'a>(def: &ResourceDef, obj: &'a Value) -> Option<Option<&'a Value>> {
    let at = match (def.group, def.kind) {
        ("", "ReplicationController")
        | ("apps", "ReplicaSet")
        | ("apps", "Deployment")
        | ("apps", "DaemonSet")
        | ("apps", "StatefulSet")
        | ("batch", "Job") => "/spec/template",
        ("", "PodTemplate") => "/template",
        ("batch", "CronJob") => "/spec/jobTemplate/spec/template",
        _ => return None,
    };
    Some(obj.pointer(at).filter(|t| !t.is_null()))
}

fn is_pods(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.plural == "pods"
}

fn is_namespaces(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.plural == "namespaces"
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Adds a warning for the client once (a write retried after a conflict
/// comes through admission again).
fn warn(opts: &WriteOptions, message: String) {
    let mut warnings = opts.warnings.lock();
    if !warnings.contains(&message) {
        warnings.push(message);
    }
}

impl Config {
    fn exempt_namespace(&self, ns: &str) -> bool {
        !ns.is_empty() && self.exempt_namespaces.iter().any(|n| n == ns)
    }

    fn exempt_user(&self, opts: &WriteOptions) -> bool {
        opts.user
            .as_ref()
            .is_some_and(|u| !u.name.is_empty() && self.exempt_usernames.contains(&u.name))
    }

    fn exempt_runtime_class(&self, spec: &Value) -> bool {
        spec.get("runtimeClassName")
            .and_then(Value::as_str)
            .is_some_and(|rc| !rc.is_empty() && self.exempt_runtime_classes.iter().any(|e| e == rc))
    }
}

/// Validates a new object: a namespace's labels, a pod, or a workload's pod
/// template, against the policy of the namespace it is created in.
pub(crate) async fn validate_create(
    rest: &Rest,
    def: &ResourceDef,
    ns: &str,
    obj: &Value,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let config = &rest.pod_security;
    if is_namespaces(def) {
        let name = meta_str(obj, "name");
        let labels = labels_of(obj);
        let (policy, errs) = api::policy_to_evaluate(&labels, &config.defaults);
        if !errs.is_empty() {
            return Err(ApiError::invalid("", "Namespace", name, &errs));
        }
        if config.exempt_namespace(name) {
            if let Some(w) = exempt_namespace_warning(name, &policy, &labels, config) {
                warn(opts, w);
            }
        }
        return Ok(());
    }
    if is_pods(def) {
        return validate_pod(rest, ns, obj, None, opts).await;
    }
    if let Some(template) = pod_template(def, obj) {
        return validate_workload(rest, ns, template, opts).await;
    }
    Ok(())
}

/// Validates an update (of `subresource`, empty for the object itself).
pub(crate) async fn validate_update(
    rest: &Rest,
    def: &ResourceDef,
    ns: &str,
    old: &Value,
    new: &Value,
    subresource: &str,
    opts: &WriteOptions,
) -> ApiResult<()> {
    if is_namespaces(def) {
        return if subresource.is_empty() {
            validate_namespace_update(rest, old, new, opts)
        } else {
            Ok(())
        };
    }
    if is_pods(def) {
        if IGNORED_POD_SUBRESOURCES.contains(&subresource) {
            return Ok(());
        }
        return validate_pod(rest, ns, new, Some(old), opts).await;
    }
    if !subresource.is_empty() {
        return Ok(());
    }
    if let Some(template) = pod_template(def, new) {
        return validate_workload(rest, ns, template, opts).await;
    }
    Ok(())
}

/// The labels of namespace `ns` (the watch cache first, then the store),
/// `None` when there is no such namespace.
async fn namespace_labels(rest: &Rest, ns: &str) -> ApiResult<Option<BTreeMap<String, String>>> {
    let Some(def) = rest.kinds.get("", "v1", "namespaces") else {
        return Ok(None);
    };
    if let Some(o) = rest
        .cache
        .resource(def.storage_prefix)
        .and_then(|c| c.get(&def.key("", ns)))
    {
        return Ok(Some(o.labels.clone()));
    }
    match rest.get(&def, "", ns).await {
        Ok(v) => Ok(Some(labels_of(&v))),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Caches evaluations of one pod by level and version (enforce, audit and
/// warn often ask for the same).
struct Evaluations<'a> {
    meta: &'a Value,
    spec: &'a Value,
    done: HashMap<LevelVersion, Vec<Forbidden>>,
}

impl<'a> Evaluations<'a> {
    fn new(meta: &'a Value, spec: &'a Value) -> Self {
        Evaluations {
            meta,
            spec,
            done: HashMap::new(),
        }
    }

    fn of(&mut self, lv: LevelVersion) -> &[Forbidden] {
        let (meta, spec) = (self.meta, self.spec);
        self.done
            .entry(lv)
            .or_insert_with(|| evaluate(lv, meta, spec))
    }
}

/// Logs an audit violation (Kubernetes records it as the audit annotation
/// `pod-security.kubernetes.io/audit-violations`).
fn audit(policy: &Policy, evals: &mut Evaluations, what: &str) {
    let results = evals.of(policy.audit);
    if !results.is_empty() {
        tracing::info!(
            target: "podsecurity",
            object = what,
            "pod-security.kubernetes.io/audit-violations: would violate PodSecurity \"{}\": {}",
            policy.audit,
            forbidden_detail(results)
        );
    }
}

async fn validate_pod(
    rest: &Rest,
    ns: &str,
    pod: &Value,
    old: Option<&Value>,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let config = &rest.pod_security;
    if config.exempt_namespace(ns) || config.exempt_user(opts) {
        return Ok(());
    }
    // A pod in a namespace that does not exist is refused by the namespace
    // check.
    let Some(labels) = namespace_labels(rest, ns).await? else {
        return Ok(());
    };
    let (policy, errs) = api::policy_to_evaluate(&labels, &config.defaults);
    if errs.is_empty() && policy.fully_privileged() {
        return Ok(());
    }
    if let Some(old) = old {
        if !significant_pod_update(pod, old) {
            return Ok(());
        }
    }
    let empty = Value::Null;
    let meta = pod.get("metadata").unwrap_or(&empty);
    let spec = pod.get("spec").unwrap_or(&empty);
    if config.exempt_runtime_class(spec) {
        return Ok(());
    }
    let name = meta_str(pod, "name");
    let mut evals = Evaluations::new(meta, spec);
    let enforced = evals.of(policy.enforce);
    if !enforced.is_empty() {
        let why = format!(
            "violates PodSecurity \"{}\": {}",
            policy.enforce,
            forbidden_detail(enforced)
        );
        audit(&policy, &mut evals, &format!("pods/{ns}/{name}"));
        return Err(ApiError::forbidden_on("", "pods", name, &why));
    }
    audit(&policy, &mut evals, &format!("pods/{ns}/{name}"));
    warn_violations(&policy, &mut evals, opts);
    Ok(())
}

/// Warns of what the warn level's checks find (`would violate PodSecurity
/// "<level>:<version>": ...`).
fn warn_violations(policy: &Policy, evals: &mut Evaluations<'_>, opts: &WriteOptions) {
    let warned = evals.of(policy.warn);
    if !warned.is_empty() {
        warn(
            opts,
            format!(
                "would violate PodSecurity \"{}\": {}",
                policy.warn,
                forbidden_detail(warned)
            ),
        );
    }
}

/// A workload's pod template: warned about and audited, never refused.
async fn validate_workload(
    rest: &Rest,
    ns: &str,
    template: Option<&Value>,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let config = &rest.pod_security;
    if config.exempt_namespace(ns) || config.exempt_user(opts) {
        return Ok(());
    }
    // A lookup that fails leaves the workload alone, as Kubernetes does.
    let Ok(Some(labels)) = namespace_labels(rest, ns).await else {
        return Ok(());
    };
    let (policy, errs) = api::policy_to_evaluate(&labels, &config.defaults);
    if errs.is_empty()
        && policy.warn.level == Level::Privileged
        && policy.audit.level == Level::Privileged
    {
        return Ok(());
    }
    let Some(template) = template else {
        return Ok(());
    };
    let empty = Value::Null;
    let meta = template.get("metadata").unwrap_or(&empty);
    let spec = template.get("spec").unwrap_or(&empty);
    if config.exempt_runtime_class(spec) {
        return Ok(());
    }
    let mut evals = Evaluations::new(meta, spec);
    audit(&policy, &mut evals, ns);
    warn_violations(&policy, &mut evals, opts);
    Ok(())
}

fn containers_of<'a>(pod: &'a Value, list: &str) -> &'a [Value] {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Whether an update of a pod could change what the checks see: the only
/// fields of a running pod that may change and that the checks read are
/// containers' images, seccomp annotations and ephemeral containers.
pub(crate) fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    let significant_container = |c: &Value, o: &Value| {
        if c.get("image") != o.get("image") {
            return true;
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{name}");
        annotation(pod, &key) != annotation(old, &key)
    };
    for list in ["containers", "initContainers"] {
        let (new_cs, old_cs) = (containers_of(pod, list), containers_of(old, list));
        if new_cs.len() != old_cs.len() {
            return true;
        }
        if new_cs
            .iter()
            .zip(old_cs)
            .any(|(c, o)| significant_container(c, o))
        {
            return true;
        }
    }
    let old_ephemeral = containers_of(old, "ephemeralContainers");
    containers_of(pod, "ephemeralContainers").iter().any(|c| {
        let name = c.get("name");
        match old_ephemeral.iter().find(|o| o.get("name") == name) {
            None => true,
            Some(o) => significant_container(c, o),
        }
    })
}

/// A namespace's labels changed: they must parse (unless they were already
/// bad the same way), and a stricter enforce level warns about the pods
/// already there that violate it.
fn validate_namespace_update(
    rest: &Rest,
    old: &Value,
    new: &Value,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let config = &rest.pod_security;
    let name = meta_str(new, "name");
    let labels = labels_of(new);
    let (new_policy, new_errs) = api::policy_to_evaluate(&labels, &config.defaults);
    let (old_policy, old_errs) = api::policy_to_evaluate(&labels_of(old), &config.defaults);
    if !new_errs.is_empty() && (old_errs.is_empty() || new_errs != old_errs) {
        return Err(ApiError::invalid("", "Namespace", name, &new_errs));
    }
    if new_policy.enforce == old_policy.enforce
        || new_policy.enforce.level == Level::Privileged
        || (new_policy.enforce.version == old_policy.enforce.version
            && new_policy.enforce.level <= old_policy.enforce.level)
    {
        return Ok(());
    }
    if config.exempt_namespace(name) {
        if let Some(w) = exempt_namespace_warning(name, &new_policy, &labels, config) {
            warn(opts, w);
        }
        return Ok(());
    }
    for w in evaluate_pods_in_namespace(rest, name, new_policy.enforce) {
        warn(opts, w);
    }
    Ok(())
}

/// The warnings for the pods of `ns` that violate `enforce`: a summary,
/// then one line per distinct set of reasons, naming the first pod (by
/// name) and how many others share it.
pub(crate) fn evaluate_pods_in_namespace(
    rest: &Rest,
    ns: &str,
    enforce: LevelVersion,
) -> Vec<String> {
    let pods: Vec<Value> = match rest.kinds.get("", "v1", "pods") {
        Some(def) => rest
            .cache
            .resource(def.storage_prefix)
            .map(|c| c.list(&def.list_prefix(ns)))
            .unwrap_or_default()
            .iter()
            .filter_map(|o| serde_json::from_slice(&o.json).ok())
            .collect(),
        None => Vec::new(),
    };
    let pods = prioritize_pods(&rest.pod_security, pods);
    let total = pods.len();
    let mut reasons_in_order: Vec<String> = Vec::new();
    let mut counts: HashMap<String, (String, usize)> = HashMap::new();
    let empty = Value::Null;
    for pod in pods.iter().take(NAMESPACE_MAX_PODS_TO_CHECK) {
        let meta = pod.get("metadata").unwrap_or(&empty);
        let spec = pod.get("spec").unwrap_or(&empty);
        let results = evaluate(enforce, meta, spec);
        if results.is_empty() {
            continue;
        }
        let reason = forbidden_reason(&results);
        let pod_name = meta_str(pod, "name").to_string();
        match counts.get_mut(&reason) {
            None => {
                reasons_in_order.push(reason.clone());
                counts.insert(reason, (pod_name, 1));
            }
            Some((first, n)) => {
                if pod_name < *first {
                    *first = pod_name;
                }
                *n += 1;
            }
        }
    }
    let mut warnings = Vec::new();
    let checked = total.min(NAMESPACE_MAX_PODS_TO_CHECK);
    if checked < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !reasons_in_order.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {ns:?} violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut per_pod: Vec<String> = reasons_in_order
        .into_iter()
        .map(|reason| {
            let (first, n) = &counts[&reason];
            match n {
                1 => format!("{first}: {reason}"),
                2 => format!("{first} (and 1 other pod): {reason}"),
                n => format!("{first} (and {} other pods): {reason}", n - 1),
            }
        })
        .collect();
    per_pod.sort();
    warnings.extend(per_pod);
    warnings
}

/// The pods to check, exempt runtime classes left out, one pod per
/// controller first and the other replicas after.
fn prioritize_pods(config: &Config, pods: Vec<Value>) -> Vec<Value> {
    let mut first = Vec::new();
    let mut replicas = Vec::new();
    let mut controllers = HashSet::new();
    for pod in pods {
        if pod
            .get("spec")
            .is_some_and(|s| config.exempt_runtime_class(s))
        {
            continue;
        }
        let controller_uid = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            })
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match controller_uid {
            None => first.push(pod),
            Some(uid) if controllers.contains(&uid) => replicas.push(pod),
            Some(uid) => {
                controllers.insert(uid);
                first.push(pod);
            }
        }
    }
    first.extend(replicas);
    first
}

/// The warning for an exempt namespace that labels itself with a policy
/// that will not apply.
fn exempt_namespace_warning(
    ns: &str,
    policy: &Policy,
    labels: &BTreeMap<String, String>,
    config: &Config,
) -> Option<String> {
    if policy.fully_privileged() || policy.equivalent(&config.defaults) {
        return None;
    }
    let labelled =
        |level: &str, version: &str| labels.contains_key(level) || labels.contains_key(version);
    let mut parts = Vec::new();
    for (mode, lv, level_label, version_label) in [
        (
            "enforce",
            policy.enforce,
            api::ENFORCE_LEVEL_LABEL,
            api::ENFORCE_VERSION_LABEL,
        ),
        (
            "audit",
            policy.audit,
            api::AUDIT_LEVEL_LABEL,
            api::AUDIT_VERSION_LABEL,
        ),
        (
            "warn",
            policy.warn,
            api::WARN_LEVEL_LABEL,
            api::WARN_VERSION_LABEL,
        ),
    ] {
        if lv.level != Level::Privileged && labelled(level_label, version_label) {
            parts.push(format!("{mode}={lv}"));
        }
    }
    Some(format!(
        "namespace {ns:?} is exempt from Pod Security, and the policy ({}) will be ignored",
        parts.join(", ")
    ))
}

#[cfg(test)]
pub(crate) mod tests;
