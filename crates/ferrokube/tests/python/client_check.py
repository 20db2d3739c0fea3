"""The official Kubernetes Python client against a ferrokube server.

Usage: client_check.py KUBECONFIG
Creates, lists with a selector, watches, patches and deletes ConfigMaps;
exits non-zero with a message on the first thing that is not as a
Kubernetes user would expect.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    ns = "default"

    for name, tier in (("py-a", "front"), ("py-b", "back")):
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"app": "py", "tier": tier}),
            data={"who": name},
        )
        created = v1.create_namespaced_config_map(ns, body)
        assert created.metadata.uid, "created object has no uid"
        assert created.metadata.resource_version, "created object has no resourceVersion"

    fronts = v1.list_namespaced_config_map(ns, label_selector="app=py,tier=front")
    names = [cm.metadata.name for cm in fronts.items]
    assert names == ["py-a"], f"label selector returned {names}"
    assert fronts.metadata.resource_version, "list has no resourceVersion"

    # A watch from the list's resourceVersion sees a later change.
    seen = []
    w = watch.Watch()

    def later():
        v1.patch_namespaced_config_map("py-b", ns, {"data": {"who": "patched"}})

    timer = threading.Timer(0.5, later)
    timer.start()
    for event in w.stream(
        v1.list_namespaced_config_map,
        ns,
        label_selector="app=py",
        resource_version=fronts.metadata.resource_version,
        timeout_seconds=15,
    ):
        seen.append((event["type"], event["object"].metadata.name, event["object"].data))
        if event["type"] == "MODIFIED":
            w.stop()
    timer.join()
    modified = [s for s in seen if s[0] == "MODIFIED"]
    assert modified == [("MODIFIED", "py-b", {"who": "patched"})], f"watch saw {seen}"

    got = v1.read_namespaced_config_map("py-b", ns)
    assert got.data == {"who": "patched"}, f"patch not applied: {got.data}"

    v1.delete_namespaced_config_map("py-a", ns)
    try:
        v1.read_namespaced_config_map("py-a", ns)
        raise AssertionError("deleted object still readable")
    except ApiException as e:
        assert e.status == 404, f"expected 404, got {e.status}"

    try:
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-b")))
        raise AssertionError("a duplicate create succeeded")
    except ApiException as e:
        assert e.status == 409, f"expected 409, got {e.status}"

    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
