//! The configuration objects made at start, as Kubernetes' APF bootstrap
//! makes them: the mandatory `exempt` and `catch-all` objects (their spec
//! kept as Kubernetes has it, the exempt level's shares and lendable
//! percent aside) and the suggested ones (levels `system`, `node-high`,
//! `leader-election`, `workload-high`, `workload-low`, `global-default`;
//! schemas `system-nodes`, `system-node-high`, `probes`,
//! `system-leader-election`, `workload-leader-election`,
//! `endpoint-controller`, `kube-controller-manager`, `kube-scheduler`,
//! `kube-system-service-accounts`, `service-accounts`, `global-default`).
//! A suggested object is created when missing and kept up to date unless
//! its `apf.kubernetes.io/autoupdate-spec` annotation says `false` (or,
//! without the annotation, once a user changed it: generation above 1).

use serde_json::{json, Value};

use crate::options::WriteOptions;
use crate::rest::Rest;

/// The manager of the bootstrap objects' spec, as in Kubernetes.
const PRODUCER: &str = "api-priority-and-fairness-config-producer-v1";
/// The manager of their status.
const CONSUMER: &str = "api-priority-and-fairness-config-consumer-v1";
/// The annotation that says whether the server keeps an object's spec.
const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";
const API_VERSION: &str = "flowcontrol.apiserver.k8s.io/v1";

fn level(name: &str, shares: u32, lendable: u32, queues: u32, hand: u32) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}},
        "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": shares,
            "lendablePercent": lendable, "limitResponse": {"type": "Queue",
                "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": 50}}}}})
}

fn schema(name: &str, level: &str, precedence: u32, by: &str, rules: Value) -> Value {
    let mut spec = json!({"matchingPrecedence": precedence,
        "priorityLevelConfiguration": {"name": level}, "rules": rules});
    if !by.is_empty() {
        spec["distinguisherMethod"] = json!({"type": by});
    }
    json!({"apiVersion": API_VERSION, "kind": "FlowSchema",
        "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}}, "spec": spec})
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn kube_system_sa(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": name}})
}

fn resources(verbs: &[&str], groups: &[&str], resources: &[&str], cluster: bool) -> Value {
    let mut r = json!({"verbs": verbs, "apiGroups": groups, "resources": resources,
        "namespaces": ["*"]});
    if cluster {
        r["clusterScope"] = json!(true);
    }
    r
}

/// Every request of `subjects`.
fn everything(subjects: Value) -> Value {
    json!([{"subjects": subjects,
        "resourceRules": [resources(&["*"], &["*"], &["*"], true)],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}])
}

fn leases(subjects: Value) -> Value {
    json!([{"subjects": subjects,
        "resourceRules": [resources(&["get", "create", "update"], &["coordination.k8s.io"], &["leases"], false)]}])
}

/// The suggested objects, levels first, as Kubernetes' bootstrap has them.
pub(crate) fn suggested_objects() -> Vec<(&'static str, Value)> {
    let pl = "prioritylevelconfigurations";
    let mut objects = vec![
        (pl, level("system", 30, 33, 64, 6)),
        (pl, level("node-high", 40, 25, 64, 6)),
        (pl, level("leader-election", 10, 0, 16, 4)),
        (pl, level("workload-high", 40, 50, 128, 6)),
        (pl, level("workload-low", 100, 90, 128, 6)),
        (pl, level("global-default", 20, 50, 128, 6)),
    ];
    objects.extend(suggested_schemas().into_iter().map(|o| ("flowschemas", o)));
    objects
}

/// The suggested FlowSchemas (a table of Kubernetes' objects).
fn suggested_schemas() -> Vec<Value> {
    let authenticated = json!([
        group("system:unauthenticated"),
        group("system:authenticated")
    ]);
    let node_high = json!([{"subjects": [group("system:nodes")], "resourceRules": [
        resources(&["*"], &[""], &["nodes", "nodes/status"], true),
        resources(&["*"], &["coordination.k8s.io"], &["leases"], false)]}]);
    let probes = json!([{"subjects": authenticated.clone(), "nonResourceRules": [
        {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]}]);
    let leader_election = leases(json!([
        user("system:kube-controller-manager"),
        user("system:kube-scheduler"),
        kube_system_sa("*")
    ]));
    let endpoints = json!([{
        "subjects": [user("system:kube-controller-manager"), kube_system_sa("endpoint-controller")],
        "resourceRules": [resources(&["get", "create", "update"], &[""], &["endpoints"], false)]}]);
    let all = |subject: Value| everything(json!([subject]));
    vec![
        schema(
            "system-nodes",
            "system",
            500,
            "ByUser",
            all(group("system:nodes")),
        ),
        schema("system-node-high", "node-high", 400, "ByUser", node_high),
        schema("probes", "exempt", 2, "", probes),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            "ByUser",
            leader_election,
        ),
        schema(
            "workload-leader-election",
            "leader-election",
            200,
            "ByUser",
            leases(json!([kube_system_sa("*")])),
        ),
        schema(
            "endpoint-controller",
            "workload-high",
            150,
            "ByUser",
            endpoints,
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            "ByNamespace",
            all(user("system:kube-controller-manager")),
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            "ByNamespace",
            all(user("system:kube-scheduler")),
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            "ByNamespace",
            all(kube_system_sa("*")),
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            "ByUser",
            all(group("system:serviceaccounts")),
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            "ByUser",
            everything(authenticated),
        ),
    ]
}

/// Whether the server keeps this existing suggested object's spec:
/// Kubernetes' rule (the annotation if it is a boolean, else only while
/// nobody changed the object).
fn keeps_spec(existing: &Value) -> bool {
    match existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE))
        .and_then(Value::as_str)
    {
        // Go's strconv.ParseBool.
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        _ => {
            existing
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                == Some(1)
        }
    }
}

/// Creates the mandatory and suggested objects that are missing, and
/// brings back the spec of those the server keeps.
pub(crate) async fn ensure_configuration_objects(rest: &Rest) -> anyhow::Result<()> {
    let objects = crate::kinds::mandatory_objects()
        .into_iter()
        .map(|(plural, obj)| (plural, obj, true))
        .chain(
            suggested_objects()
                .into_iter()
                .map(|(plural, obj)| (plural, obj, false)),
        );
    for (plural, obj, mandatory) in objects {
        ensure_one(rest, plural, obj, mandatory).await?;
    }
    Ok(())
}

async fn ensure_one(
    rest: &Rest,
    plural: &str,
    mut wanted: Value,
    mandatory: bool,
) -> anyhow::Result<()> {
    let Some(def) = rest.kinds.get("flowcontrol.apiserver.k8s.io", "v1", plural) else {
        return Ok(());
    };
    let opts = WriteOptions {
        manager: PRODUCER.into(),
        ..Default::default()
    };
    let name = wanted["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    crate::strategy::builtin(&def).default(&def, &mut wanted);
    let existing = match rest.get(&def, "", &name).await {
        Ok(existing) => existing,
        Err(e) if e.code == 404 => {
            let created = match rest.create(&def, "", wanted, &opts).await {
                Ok(o) => o,
                Err(e) if e.code == 409 => return Ok(()),
                Err(e) => anyhow::bail!("creating the {plural} {name}: {e}"),
            };
            tracing::info!(kind = def.kind, name, "created an APF configuration object");
            if plural == "flowschemas" {
                set_found_condition(rest, &def, created).await;
            }
            return Ok(());
        }
        Err(e) => anyhow::bail!("reading the {plural} {name}: {e}"),
    };
    if !mandatory && !keeps_spec(&existing) {
        return Ok(());
    }
    if mandatory && name == "exempt" && plural == "prioritylevelconfigurations" {
        // Users may set the exempt level's shares and lendable percent.
        if let Some(e) = existing.pointer("/spec/exempt") {
            wanted["spec"]["exempt"] = e.clone();
        }
    }
    let annotated = existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE))
        .is_some();
    if existing.get("spec") == wanted.get("spec") && annotated {
        return Ok(());
    }
    let mut revised = existing.clone();
    revised["spec"] = wanted["spec"].clone();
    if !annotated {
        revised["metadata"]["annotations"][AUTOUPDATE] = json!("true");
    }
    match rest.update(&def, "", &name, revised, "", &opts).await {
        Ok(_) => tracing::info!(
            kind = def.kind,
            name,
            "brought an APF configuration object back to its bootstrap spec"
        ),
        Err(e) => {
            tracing::warn!(kind = def.kind, name, error = %e, "could not update an APF configuration object")
        }
    }
    Ok(())
}

/// Gives a new FlowSchema its `Dangling` condition (its level exists:
/// the levels are made first).
async fn set_found_condition(
    rest: &Rest,
    def: &ferrokube_api::registry::ResourceDef,
    created: Value,
) {
    let name = created["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let level = created["spec"]["priorityLevelConfiguration"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut with_status = created;
    with_status["status"] = json!({"conditions": [{
        "type": "Dangling",
        "status": "False",
        "lastTransitionTime": crate::objectmeta::now_rfc3339(),
        "reason": "Found",
        "message": format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"),
    }]});
    let status_opts = WriteOptions {
        manager: CONSUMER.into(),
        ..Default::default()
    };
    if let Err(e) = rest
        .update(def, "", &name, with_status, "status", &status_opts)
        .await
    {
        tracing::warn!(name, error = %e, "could not set a FlowSchema's status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_objects_are_valid_and_reference_levels_that_exist() {
        let objects = suggested_objects();
        let levels: Vec<String> = objects
            .iter()
            .filter(|(p, _)| *p == "prioritylevelconfigurations")
            .map(|(_, o)| o["metadata"]["name"].as_str().unwrap().to_string())
            .chain(["exempt".to_string()])
            .collect();
        let registry = ferrokube_api::registry::Registry::default();
        for (plural, mut obj) in objects {
            let def = registry
                .get("flowcontrol.apiserver.k8s.io", "v1", plural)
                .unwrap();
            let strategy = crate::strategy::builtin(def);
            strategy.default(def, &mut obj);
            let errors = strategy.validate_create(def, &obj);
            assert!(errors.is_empty(), "{obj}: {errors:?}");
            if plural == "flowschemas" {
                let level = obj["spec"]["priorityLevelConfiguration"]["name"]
                    .as_str()
                    .unwrap();
                assert!(levels.iter().any(|l| l == level), "{level}");
            }
        }
    }

    #[test]
    fn which_specs_the_server_keeps() {
        let obj = |annotation: Option<&str>, generation: i64| {
            let mut o = json!({"metadata": {"generation": generation}});
            if let Some(a) = annotation {
                o["metadata"]["annotations"] = json!({AUTOUPDATE: a});
            }
            o
        };
        assert!(keeps_spec(&obj(Some("true"), 5)));
        assert!(!keeps_spec(&obj(Some("false"), 1)));
        assert!(keeps_spec(&obj(None, 1)));
        assert!(!keeps_spec(&obj(None, 2)));
        assert!(!keeps_spec(&obj(Some("maybe"), 3)));
    }
}
