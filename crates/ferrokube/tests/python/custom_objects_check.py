"""The official Kubernetes Python client's CustomObjectsApi against ferrokube.

Usage: custom_objects_check.py KUBECONFIG
Creates a CRD and waits for it to be Established, then creates, gets, lists
with a label selector, merge- and JSON-patches, replaces, writes /status and
/scale of, watches and deletes custom objects, lists them over all
namespaces and in pages, deletes a collection, and uses them through the
dynamic client (discovery, /status, server-side apply); a schema violation
must come back as an ApiException with status 422 and Kubernetes' message. Exits
non-zero with a message on the first thing that is not as a Kubernetes user
would expect; removes the CRD on the way out.
"""
import json
import sys
import threading
import time

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL, KIND = "pytest.example.com", "v1", "gizmos", "Gizmo"
CRD_NAME = f"{PLURAL}.{GROUP}"
NS = "default"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "gizmo", "kind": KIND},
        "versions": [{
            "name": VERSION,
            "served": True,
            "storage": True,
            "subresources": {
                "status": {},
                "scale": {"specReplicasPath": ".spec.replicas",
                          "statusReplicasPath": ".status.replicas"},
            },
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string"},
                        "replicas": {"type": "integer"},
                    }},
                    "status": {"type": "object", "properties": {
                        "replicas": {"type": "integer"},
                    }},
                },
            }},
        }],
    },
}


def gizmo(name, labels, spec):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
            "metadata": {"name": name, "labels": labels}, "spec": spec}


def expect_status(call, status, what):
    """Runs `call`, which must fail with `status`; returns the Status body."""
    try:
        call()
    except ApiException as e:
        assert e.status == status, f"{what}: expected {status}, got {e.status}: {e.body}"
        return json.loads(e.body)
    raise AssertionError(f"{what}: succeeded, {status} expected")


def establish(ext):
    ext.create_custom_resource_definition(CRD)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        conditions = (crd.status and crd.status.conditions) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise AssertionError("the CRD was not Established within 30 s")


def crud(api):
    args = (GROUP, VERSION, NS, PLURAL)
    a = api.create_namespaced_custom_object(
        *args, gizmo("g-a", {"app": "py", "tier": "front"}, {"size": 1, "replicas": 1}))
    assert a["kind"] == KIND and a["apiVersion"] == f"{GROUP}/{VERSION}", a
    assert a["metadata"]["uid"] and a["metadata"]["resourceVersion"], a
    api.create_namespaced_custom_object(
        *args, gizmo("g-b", {"app": "py", "tier": "back"}, {"size": 2}))

    got = api.get_namespaced_custom_object(*args, "g-a")
    assert got["spec"] == {"size": 1, "replicas": 1}, got
    assert got["metadata"]["uid"] == a["metadata"]["uid"], got

    fronts = api.list_namespaced_custom_object(*args, label_selector="app=py,tier=front")
    assert fronts["kind"] == f"{KIND}List", fronts["kind"]
    names = [i["metadata"]["name"] for i in fronts["items"]]
    assert names == ["g-a"], f"label selector returned {names}"
    everything = api.list_namespaced_custom_object(*args, label_selector="app=py")
    assert sorted(i["metadata"]["name"] for i in everything["items"]) == ["g-a", "g-b"]

    # A merge patch (the client's default for a dict) and a JSON patch.
    merged = api.patch_namespaced_custom_object(*args, "g-a", {"spec": {"color": "blue"}})
    assert merged["spec"] == {"size": 1, "replicas": 1, "color": "blue"}, merged["spec"]
    patched = api.patch_namespaced_custom_object(
        *args, "g-a", [{"op": "replace", "path": "/spec/size", "value": 3}],
        _content_type="application/json-patch+json")
    assert patched["spec"]["size"] == 3, patched["spec"]
    assert patched["metadata"]["generation"] == 3, patched["metadata"]

    # A replace; a replace from a stale copy is a conflict.
    patched["spec"]["color"] = "red"
    replaced = api.replace_namespaced_custom_object(*args, "g-a", patched)
    assert replaced["spec"]["color"] == "red", replaced["spec"]
    stale = expect_status(
        lambda: api.replace_namespaced_custom_object(*args, "g-a", patched), 409, "stale replace")
    assert stale["message"] == (
        f'Operation cannot be fulfilled on {PLURAL}.{GROUP} "g-a": the object has been '
        "modified; please apply your changes to the latest version and try again"), stale

    # /status changes the status only.
    st = api.patch_namespaced_custom_object_status(
        *args, "g-a", {"status": {"replicas": 2}, "spec": {"size": 9}})
    assert st["status"] == {"replicas": 2}, st
    assert st["spec"]["size"] == 3, f"a status write changed the spec: {st['spec']}"

    # /scale reads and writes the replicas through the paths the CRD names.
    scale = api.get_namespaced_custom_object_scale(*args, "g-a")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1", scale
    assert scale["spec"] == {"replicas": 1}, scale
    assert scale["status"]["replicas"] == 2, scale
    api.patch_namespaced_custom_object_scale(*args, "g-a", {"spec": {"replicas": 4}})
    assert api.get_namespaced_custom_object(*args, "g-a")["spec"]["replicas"] == 4
    scale = api.get_namespaced_custom_object_scale(*args, "g-a")
    scale["spec"]["replicas"] = 5
    api.replace_namespaced_custom_object_scale(*args, "g-a", scale)
    assert api.get_namespaced_custom_object(*args, "g-a")["spec"]["replicas"] == 5

    # The schema refuses a wrong type and a value under the minimum.
    bad = expect_status(
        lambda: api.create_namespaced_custom_object(*args, gizmo("bad", {}, {"size": "big"})),
        422, "wrong type")
    assert bad["reason"] == "Invalid", bad
    assert bad["message"] == (
        f'{KIND}.{GROUP} "bad" is invalid: spec.size: Invalid value: "string": '
        'spec.size in body must be of type integer: "string"'), bad["message"]
    small = expect_status(
        lambda: api.patch_namespaced_custom_object(*args, "g-b", {"spec": {"size": 0}}),
        422, "under the minimum")
    assert small["message"] == (
        f'{KIND}.{GROUP} "g-b" is invalid: spec.size: Invalid value: 0: '
        "spec.size in body should be greater than or equal to 1"), small["message"]

    api.delete_namespaced_custom_object(*args, "g-a")
    api.delete_namespaced_custom_object(*args, "g-b")
    expect_status(lambda: api.get_namespaced_custom_object(*args, "g-a"), 404, "deleted get")


def watched(api):
    """A watch from a list's resourceVersion sees a gizmo come, change and go."""
    args = (GROUP, VERSION, NS, PLURAL)
    start = api.list_namespaced_custom_object(*args)["metadata"]["resourceVersion"]
    assert start, "the list has no resourceVersion"

    def later():
        api.create_namespaced_custom_object(*args, gizmo("g-w", {"app": "watched"}, {"size": 1}))
        api.patch_namespaced_custom_object(*args, "g-w", {"spec": {"size": 2}})
        api.delete_namespaced_custom_object(*args, "g-w")

    timer = threading.Timer(0.5, later)
    timer.start()
    seen = []
    w = watch.Watch()
    for event in w.stream(api.list_namespaced_custom_object, *args,
                          label_selector="app=watched", resource_version=start,
                          timeout_seconds=20):
        obj = event["object"]
        seen.append((event["type"], obj["metadata"]["name"], obj["spec"]["size"]))
        if event["type"] == "DELETED":
            w.stop()
    timer.join()
    want = [("ADDED", "g-w", 1), ("MODIFIED", "g-w", 2), ("DELETED", "g-w", 2)]
    assert seen == want, f"watch saw {seen}"
    assert w.resource_version, "the watch kept no resourceVersion"

    # A watch from a resourceVersion older than the kind's history ends in
    # the 410 the client turns into an ApiException, for the caller to
    # list again.
    try:
        for event in watch.Watch().stream(api.list_namespaced_custom_object, *args,
                                          resource_version="1", timeout_seconds=5):
            raise AssertionError(f"an event from a too old resourceVersion: {event['type']}")
        raise AssertionError("a watch from a too old resourceVersion ended quietly")
    except ApiException as e:
        assert e.status == 410, f"expected 410, got {e.status}: {e.reason}"
        assert e.reason.startswith("Expired: too old resource version: 1 ("), e.reason


def across_namespaces(api, core):
    """Lists over all namespaces, pages, and deletes a collection."""
    core.create_namespace({"metadata": {"name": "py-other"}})
    try:
        for ns, name in (("default", "g-1"), ("default", "g-2"), ("py-other", "g-1")):
            api.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, gizmo(name, {"set": "x"}, {"size": 1}))
        everywhere = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="set=x")
        found = sorted((i["metadata"]["namespace"], i["metadata"]["name"])
                       for i in everywhere["items"])
        assert found == [("default", "g-1"), ("default", "g-2"), ("py-other", "g-1")], found

        args = (GROUP, VERSION, "default", PLURAL)
        first = api.list_namespaced_custom_object(*args, limit=1)
        assert [i["metadata"]["name"] for i in first["items"]] == ["g-1"], first["items"]
        assert first["metadata"]["remainingItemCount"] == 1, first["metadata"]
        rest = api.list_namespaced_custom_object(*args, limit=1,
                                                 _continue=first["metadata"]["continue"])
        assert [i["metadata"]["name"] for i in rest["items"]] == ["g-2"], rest["items"]
        assert not rest["metadata"].get("continue"), rest["metadata"]

        api.delete_collection_namespaced_custom_object(*args, label_selector="set=x")
        left = api.list_namespaced_custom_object(*args)["items"]
        assert left == [], f"left after deletecollection: {left}"
        other = api.list_namespaced_custom_object(GROUP, VERSION, "py-other", PLURAL)["items"]
        assert [i["metadata"]["name"] for i in other] == ["g-1"], "another namespace was emptied"
    finally:
        core.delete_namespace("py-other")


def dynamic_client(api_client):
    """The dynamic client finds the kind through discovery and uses it."""
    dyn = dynamic.DynamicClient(api_client)
    res = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)
    assert res.namespaced and res.name == PLURAL, res
    created = res.create(body=gizmo("g-d", {}, {"size": 1, "replicas": 1}), namespace=NS)
    assert created.metadata.uid, created
    st = res.status.patch(name="g-d", namespace=NS, body={"status": {"replicas": 1}},
                          content_type="application/merge-patch+json")
    assert st.status.replicas == 1, st
    applied = res.server_side_apply(
        body={"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
              "metadata": {"name": "g-d", "namespace": NS}, "spec": {"color": "green"}},
        field_manager="py-apply")
    assert applied.spec.color == "green" and applied.spec.size == 1, applied.spec
    managers = {(m["manager"], m["operation"], m.get("subresource", ""))
                for m in applied.to_dict()["metadata"]["managedFields"]}
    assert ("py-apply", "Apply", "") in managers, managers
    names = [i.metadata.name for i in res.get(namespace=NS).items]
    assert names == ["g-d"], names
    res.delete(name="g-d", namespace=NS)


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    ext = client.ApiextensionsV1Api()
    api = client.CustomObjectsApi()
    establish(ext)
    try:
        crud(api)
        watched(api)
        across_namespaces(api, client.CoreV1Api())
        dynamic_client(client.ApiClient())
    finally:
        ext.delete_custom_resource_definition(CRD_NAME)
    print("python custom objects: ok")


if __name__ == "__main__":
    main(sys.argv[1])
