//! Strategic merge patch tests: the patches kubectl sends, and the
//! directives' edge cases, checked against Kubernetes' documented results.

use super::super::PatchErrorKind;
use super::*;
use serde_json::json;

fn smp(original: Value, patch: Value) -> Value {
    strategic_merge_patch(&original, &patch).unwrap()
}

fn smp_err(original: Value, patch: Value) -> PatchError {
    strategic_merge_patch(&original, &patch).unwrap_err()
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}}}
    })
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kubectl_set_image_changes_one_container() {
    let d = deployment(json!([
        {"name": "c", "image": "img:1", "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "busybox"}
    ]));
    let out = smp(
        d,
        json!({"spec":{"template":{"spec":{"containers":[{"image":"img:2","name":"c"}]}}}}),
    );
    let cs = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        cs,
        &json!([
            {"name": "c", "image": "img:2", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ])
    );
    assert_eq!(out["spec"]["replicas"], 1);
}

/// The Kubernetes docs' `kubectl patch deployment patch-demo --patch-file`
/// example: a container not in the list is added, and a strategic merge
/// patch without `$setElementOrder` puts new elements first.
#[test]
fn kubectl_patch_adds_a_container_first() {
    let d = deployment(json!([{"name": "patch-demo-ctr", "image": "nginx"}]));
    let out = smp(
        d,
        json!({"spec":{"template":{"spec":{"containers":[{"name":"patch-demo-ctr-2","image":"redis"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
    );
}

#[test]
fn kubectl_scale_sets_replicas() {
    let out = smp(
        deployment(json!([{"name": "c"}])),
        json!({"spec":{"replicas":3}}),
    );
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "c"}])
    );
}

#[test]
fn kubectl_rollout_restart_sets_template_annotation() {
    let patch = json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-25T08:00:00Z"}}}}});
    let out = smp(deployment(json!([{"name": "c"}])), patch);
    let meta = &out["spec"]["template"]["metadata"];
    assert_eq!(
        meta["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2026-11-25T08:00:00Z"
    );
    assert_eq!(meta["labels"], json!({"app": "x"}));
}

#[test]
fn kubectl_label_and_annotate_strategic() {
    let mut d = deployment(json!([{"name": "c"}]));
    d["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let out = smp(
        d,
        json!({"metadata":{"labels":{"b":null,"c":"3"},"annotations":{"note":"hi"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"a": "1", "c": "3"}));
    assert_eq!(out["metadata"]["annotations"], json!({"note": "hi"}));
}

/// What `kubectl apply` sends after a container was added to the manifest
/// and another's image changed: the changed and new containers, the full
/// order in `$setElementOrder/containers`.
#[test]
fn kubectl_apply_with_set_element_order() {
    let d = deployment(json!([
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:1"}
    ]));
    let patch = json!({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"a"},{"name":"new"},{"name":"b"}],
        "containers":[{"image":"new:1","name":"new"},{"image":"b:2","name":"b"}]
    }}}});
    let out = smp(d, patch);
    let cs = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        cs,
        &json!([
            {"name": "a", "image": "a:1"},
            {"name": "new", "image": "new:1"},
            {"name": "b", "image": "b:2"}
        ])
    );
    assert!(out["spec"]["template"]["spec"]
        .get("$setElementOrder/containers")
        .is_none());
}

/// `kubectl apply` removing a container from the manifest sends a delete
/// directive and the remaining order.
#[test]
fn kubectl_apply_removes_a_container() {
    let d = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let patch = json!({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"a"},{"name":"c"}],
        "containers":[{"$patch":"delete","name":"b"}]
    }}}});
    let out = smp(d, patch);
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["a", "c"]
    );
}

#[test]
fn set_element_order_alone_reorders() {
    let d = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let out = smp(
        d,
        json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"},{"name":"b"}]}}}}),
    );
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["c", "a", "b"]
    );
}

#[test]
fn set_element_order_naming_missing_items_is_fine() {
    let d = deployment(json!([{"name": "1"}, {"name": "3"}]));
    let out = smp(
        d,
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"3"},{"name":"2"},{"name":"1"}],
            "containers":[{"name":"3","image":"x"},{"name":"1","image":"y"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "3", "image": "x"}, {"name": "1", "image": "y"}])
    );
}

#[test]
fn set_element_order_must_match_patch_order() {
    let d = deployment(json!([{"name": "1"}, {"name": "3"}, {"name": "2"}]));
    let e = smp_err(
        d.clone(),
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"1"},{"name":"2"},{"name":"3"}],
            "containers":[{"name":"3","image":"x"},{"name":"1","image":"y"}]}}}}),
    );
    assert_eq!(e.kind(), PatchErrorKind::Invalid);
    assert!(e.message().contains("does not match"), "{e}");
    assert!(e.message().contains("spec.template.spec.containers"), "{e}");
}

#[test]
fn set_element_order_on_primitive_list() {
    let o = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": ["a", "b", "c"]}});
    let out = smp(
        o.clone(),
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp(
        o,
        json!({"metadata": {"$setElementOrder/finalizers": ["a", "d", "b", "c"], "finalizers": ["d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "d", "b", "c"]));
}

#[test]
fn set_element_order_on_a_missing_list_adds_it() {
    let p = pod(json!({"containers": [{"name": "c"}]}));
    let out = smp(
        p,
        json!({"spec": {"$setElementOrder/initContainers": [{"name": "i2"}, {"name": "i1"}],
            "initContainers": [{"name": "i2"}, {"name": "i1"}]}}),
    );
    assert_eq!(names(&out["spec"]["initContainers"]), ["i2", "i1"]);
}

/// Without `$setElementOrder`, patch order wins over live order, as in
/// Kubernetes' "preserve the order from the patch" cases.
#[test]
fn patch_order_then_live_order() {
    let live = deployment(json!([{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]));
    let out = smp(
        live.clone(),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"3","image":"c"},{"name":"1","image":"a"}]}}}}),
    );
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["2", "3", "1"]
    );
    let out = smp(
        live,
        json!({"spec":{"template":{"spec":{"containers":[{"name":"3","image":"c"},{"name":"1","image":"a"},{"name":"2","image":"x"}]}}}}),
    );
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["3", "1", "2"]
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][2],
        json!({"name": "2", "value": "b", "image": "x"})
    );
}

#[test]
fn nested_lists_merge_by_their_own_keys() {
    let p = pod(json!({"containers": [{
        "name": "c",
        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
        "volumeMounts": [{"mountPath": "/a", "name": "v"}],
        "volumeDevices": [{"devicePath": "/dev/x", "name": "d"}]
    }]}));
    let out = smp(
        p,
        json!({"spec": {"containers": [{"name": "c",
            "env": [{"name": "X", "$patch": "delete"}, {"name": "Z", "value": "3"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "volumeMounts": [{"mountPath": "/a", "readOnly": true}, {"mountPath": "/b", "name": "w"}],
            "volumeDevices": [{"devicePath": "/dev/x", "$patch": "delete"}]
        }]}}),
    );
    let c = &out["spec"]["containers"][0];
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env.len(), 2);
    assert!(env.contains(&"Y") && env.contains(&"Z"));
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 80, "name": "http", "protocol": "TCP"})
    );
    assert_eq!(c["ports"].as_array().unwrap().len(), 2);
    assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 2);
    assert_eq!(c["volumeMounts"][0]["readOnly"], true);
    assert_eq!(c["volumeDevices"], json!([]));
}

#[test]
fn service_ports_merge_by_port() {
    let s = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [
        {"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    let out = smp(
        s,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    let ports = out["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2);
    let p80 = ports.iter().find(|p| p["port"] == 80).unwrap();
    assert_eq!(
        p80,
        &json!({"port": 80, "name": "http", "targetPort": 8080})
    );
}

#[test]
fn pod_spec_keyed_lists() {
    let p = pod(json!({
        "containers": [{"name": "c"}],
        "volumes": [{"name": "a", "emptyDir": {}}],
        "imagePullSecrets": [{"name": "s1"}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1}],
        "tolerations": [{"key": "k1"}],
        "readinessGates": [{"conditionType": "A"}]
    }));
    let out = smp(
        p,
        json!({"spec": {
            "volumes": [{"name": "b", "configMap": {"name": "cm"}}],
            "imagePullSecrets": [{"name": "s2"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
            "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}],
            "tolerations": [{"key": "k2"}],
            "readinessGates": [{"conditionType": "B"}]
        }}),
    );
    let s = &out["spec"];
    assert_eq!(s["volumes"].as_array().unwrap().len(), 2);
    assert_eq!(s["imagePullSecrets"].as_array().unwrap().len(), 2);
    assert_eq!(
        s["hostAliases"],
        json!([{"ip": "10.0.0.1", "hostnames": ["b"]}])
    );
    assert_eq!(
        s["topologySpreadConstraints"],
        json!([{"topologyKey": "zone", "maxSkew": 2}])
    );
    // Untagged in k8s.io/api: replaced.
    assert_eq!(s["tolerations"], json!([{"key": "k2"}]));
    assert_eq!(s["readinessGates"], json!([{"conditionType": "B"}]));
}

/// kubectl apply sends `$retainKeys` for volumes when a volume's source
/// changes kind, so the old source is dropped.
#[test]
fn retain_keys_drops_other_fields() {
    let p = pod(json!({"containers": [{"name": "c"}], "volumes": [{"name": "v", "emptyDir": {}}]}));
    let out = smp(
        p,
        json!({"spec": {"$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "v"}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn retain_keys_on_deployment_strategy() {
    let mut d = deployment(json!([{"name": "c"}]));
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
    let out = smp(
        d.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let e = smp_err(
        d,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
    );
    assert!(e.message().contains("$retainKeys"), "{e}");
    // Without the directive, the strategy merges.
    let mut d = deployment(json!([{"name": "c"}]));
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
    let out = smp(
        d,
        json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": 0}}}}),
    );
    assert_eq!(
        out["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
}

#[test]
fn patch_replace_on_list_and_map() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}], "nodeSelector": {"x": "1", "y": "2"}}),
    );
    let out = smp(
        p.clone(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}],
            "nodeSelector": {"$patch": "replace", "z": "3"}}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "only", "image": "i"}])
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({"z": "3"}));
    let out = smp(p, json!({"spec": {"containers": [{"$patch": "replace"}]}}));
    assert_eq!(out["spec"]["containers"], json!([]));
}

#[test]
fn patch_delete_on_map_and_whole_object() {
    let p = pod(json!({"containers": [{"name": "a"}], "nodeSelector": {"x": "1"}}));
    let out = smp(
        p.clone(),
        json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({}));
    let out = smp(
        p,
        json!({"$patch": "replace", "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}}),
    );
    assert_eq!(
        out,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}})
    );
}

#[test]
fn deleting_the_last_element_leaves_an_empty_list() {
    let p = pod(json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}));
    let out = smp(
        p,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}]}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["env"], json!([]));
}

#[test]
fn delete_removes_every_duplicate_and_ignores_missing() {
    let p =
        pod(json!({"containers": [{"name": "a"}, {"name": "a", "image": "dup"}, {"name": "b"}]}));
    let out = smp(
        p,
        json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}, {"name": "zz", "$patch": "delete"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
}

#[test]
fn patching_a_missing_list_or_object_creates_it_without_directives() {
    let p = pod(json!({}));
    let out = smp(
        p,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "E", "value": "v"}], "resources": {"limits": {"cpu": "1", "memory": null}}}],
            "$setElementOrder/volumes": [{"name": "v"}], "volumes": [{"name": "v", "emptyDir": {}}]}}),
    );
    assert_eq!(
        out["spec"],
        json!({"containers": [{"name": "a", "env": [{"name": "E", "value": "v"}], "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]})
    );
}

#[test]
fn null_deletes_fields() {
    let p = pod(
        json!({"containers": [{"name": "a", "image": "i", "command": ["sh"]}], "tolerations": [{"key": "k"}]}),
    );
    let out = smp(
        p,
        json!({"spec": {"tolerations": null, "containers": [{"name": "a", "command": null}], "absent": null}}),
    );
    assert!(out["spec"].get("tolerations").is_none());
    assert!(out["spec"].get("absent").is_none());
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "i"}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "b"]}, "data": {"k": "v"}});
    let out = smp(o.clone(), json!({"metadata": {"finalizers": ["b", "c"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = smp(
        o.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    // New elements go before the live ones, as in Kubernetes.
    let out = smp(
        o.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["d", "b"]));
    // Deleting from a list that does not exist changes nothing.
    let out = smp(
        o.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/absent": ["a"]}}),
    );
    assert!(out["metadata"].get("absent").is_none());
    // ConfigMap data is a plain map: merged, null deletes.
    let out = smp(o, json!({"data": {"k": null, "n": "1"}}));
    assert_eq!(out["data"], json!({"n": "1"}));
}

#[test]
fn owner_references_merge_by_uid() {
    let o = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"ownerReferences": [
        {"uid": "1", "name": "a", "kind": "Deployment"}]}});
    let out = smp(
        o.clone(),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "kind": "Deployment"}]}}),
    );
    assert_eq!(
        out["metadata"]["ownerReferences"].as_array().unwrap().len(),
        2
    );
    let out = smp(
        o,
        json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}}),
    );
    assert_eq!(out["metadata"]["ownerReferences"], json!([]));
}

#[test]
fn status_conditions_merge_by_type() {
    let n = json!({"apiVersion": "v1", "kind": "Node", "status": {
        "conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.42.0.0/24"]}});
    let out = smp(
        n,
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "Hostname", "address": "n1"}]},
            "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
    );
    let conds = out["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds.len(), 2);
    assert_eq!(
        conds.iter().find(|c| c["type"] == "Ready").unwrap()["status"],
        "True"
    );
    assert_eq!(out["status"]["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["spec"]["taints"],
        json!([{"key": "b", "effect": "NoExecute"}])
    );
}

#[test]
fn every_pod_template_holder_merges_containers() {
    let cases = [
        ("apps/v1", "ReplicaSet", vec!["spec", "template", "spec"]),
        ("apps/v1", "StatefulSet", vec!["spec", "template", "spec"]),
        ("apps/v1", "DaemonSet", vec!["spec", "template", "spec"]),
        ("batch/v1", "Job", vec!["spec", "template", "spec"]),
        (
            "v1",
            "ReplicationController",
            vec!["spec", "template", "spec"],
        ),
        ("v1", "PodTemplate", vec!["template", "spec"]),
        (
            "batch/v1",
            "CronJob",
            vec!["spec", "jobTemplate", "spec", "template", "spec"],
        ),
    ];
    for (av, kind, path) in cases {
        let wrap = |inner: Value| path.iter().rev().fold(inner, |acc, k| json!({ *k: acc }));
        let mut obj =
            wrap(json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}));
        obj["apiVersion"] = json!(av);
        obj["kind"] = json!(kind);
        let out = smp(
            obj,
            wrap(json!({"containers": [{"name": "b", "image": "2"}]})),
        );
        let spec = path.iter().fold(&out, |v, k| &v[*k]);
        assert_eq!(
            spec["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]),
            "{kind}"
        );
    }
}

#[test]
fn unknown_kinds_replace_lists() {
    let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"containers": [{"name": "a"}, {"name": "b"}], "m": {"x": 1}}});
    let out = smp(
        cr,
        json!({"spec": {"containers": [{"name": "b", "image": "2"}], "m": {"y": 2}}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "b", "image": "2"}])
    );
    assert_eq!(out["spec"]["m"], json!({"x": 1, "y": 2}));
}

#[test]
fn kind_is_taken_from_the_patch_when_the_original_has_none() {
    let out = smp(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "b", "image": "2"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a"}, {"name": "b", "image": "2"}])
    );
}

#[test]
fn errors_are_typed_and_change_nothing() {
    let p = pod(json!({"containers": [{"name": "a"}]}));
    let before = p.clone();
    let cases = [
        (
            json!({"spec": {"containers": [{"image": "no-name"}]}}),
            "merge key",
        ),
        (json!({"spec": {"containers": ["x"]}}), "different types"),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
            "merge",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}),
            "directive",
        ),
        (json!({"spec": {"$patch": "bogus"}}), "directive"),
        (json!({"spec": {"$frobnicate": 1}}), "directive"),
        (json!({"spec": {"$retainKeys": "x"}}), "$retainKeys"),
        (
            json!({"spec": {"$setElementOrder/containers": {"name": "a"}}}),
            "must be a list",
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            "must be a list",
        ),
        (
            json!({"spec": {"containers": [[{"name": "a"}]]}}),
            "lists of lists",
        ),
    ];
    for (patch, needle) in cases {
        let e = smp_err(p.clone(), patch.clone());
        assert_eq!(e.kind(), PatchErrorKind::Invalid, "{patch}");
        assert!(e.message().contains(needle), "{patch}: {e}");
    }
    let e = smp_err(p.clone(), json!([{"op": "add"}]));
    assert_eq!(e.kind(), PatchErrorKind::BadRequest);
    assert_eq!(p, before);
}

#[test]
fn apply_with_an_explicit_schema_root() {
    let out = apply(
        &json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        &json!({"containers": [{"name": "b", "image": "x"}]}),
        &Builtin,
        Some("PodSpec"),
    )
    .unwrap();
    assert_eq!(
        out["containers"],
        json!([{"name": "a"}, {"name": "b", "image": "x"}])
    );
    let replaced = apply(
        &json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        &json!({"containers": [{"name": "b", "image": "x"}]}),
        &Builtin,
        None,
    )
    .unwrap();
    assert_eq!(replaced["containers"], json!([{"name": "b", "image": "x"}]));
}

#[test]
fn scalar_and_type_changes_take_the_patch_value() {
    let p =
        pod(json!({"containers": [{"name": "a"}], "nodeSelector": {"x": "1"}, "hostname": "h"}));
    let out = smp(
        p,
        json!({"spec": {"nodeSelector": "oops", "hostname": {"a": {"b": null}}}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], "oops");
    assert_eq!(out["spec"]["hostname"], json!({"a": {}}));
}
