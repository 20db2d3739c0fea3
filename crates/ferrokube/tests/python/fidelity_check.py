"""What the official Kubernetes Python client sees of ferrokube, compared with
what a Kubernetes API server sends.

Usage: fidelity_check.py KUBECONFIG CHECK
CHECK is one of:
  status  error bodies byte for byte (Status member order, Go's escaping,
          the trailing newline), lists and objects ending with a newline
  apply   utils.create_from_yaml(..., apply=True) after a create of the same
          Deployment; conflicts and force as Kubernetes reports them
  events  one Event resource in the core and events.k8s.io groups
  services  cluster IPs and node ports through Service type changes
  delete  what deletes answer: a Status naming a removed ConfigMap, the
          object for a Pod and for a ConfigMap waiting on a finalizer
Exits non-zero with a message on the first difference; prints
"CHECK: ok" at the end.
"""
import json
import os
import sys
import tempfile

from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

NS = "default"


def text(body):
    return body.decode("utf-8") if isinstance(body, bytes) else body


def check_status(api):
    v1 = client.CoreV1Api(api)
    try:
        v1.read_namespaced_config_map("fidelity-missing", NS)
        raise AssertionError("reading a missing ConfigMap succeeded")
    except ApiException as e:
        expected = (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"configmaps \\"fidelity-missing\\" not found","reason":"NotFound",'
            '"details":{"name":"fidelity-missing","kind":"configmaps"},"code":404}\n'
        )
        assert e.status == 404, e.status
        assert text(e.body) == expected, f"404 body:\n{text(e.body)!r}\nKubernetes sends:\n{expected!r}"

    try:
        v1.create_namespaced_config_map(
            NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bad<name>&co"))
        )
        raise AssertionError("a ConfigMap named bad<name>&co was created")
    except ApiException as e:
        body = text(e.body)
        assert e.status == 422, e.status
        head = (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"ConfigMap \\"bad\\u003cname\\u003e\\u0026co\\" is invalid: '
        )
        assert body.startswith(head), f"422 body: {body!r}"
        assert "<" not in body and ">" not in body and "&" not in body, body
        tail = (
            '"reason":"Invalid","details":{"name":"bad\\u003cname\\u003e\\u0026co",'
            '"kind":"ConfigMap","causes":[{"reason":"FieldValueInvalid","message":'
        )
        assert tail in body, f"422 body: {body!r}"
        assert body.endswith('"field":"metadata.name"}]},"code":422}\n'), f"422 body: {body!r}"

    made = v1.create_namespaced_config_map(
        NS,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fidelity-cm"), data={"a": "b", "html": "<p>&"}),
        _preload_content=False,
    ).data
    # Objects are written with Go's escaping too, wherever they come from.
    assert b'"html":"\\u003cp\\u003e\\u0026"' in made and made.endswith(b"}\n"), made
    try:
        raw = v1.list_namespaced_config_map(NS, _preload_content=False).data
        assert raw.startswith(
            b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"'
        ), raw[:120]
        assert raw.endswith(b"]}\n"), raw[-40:]
        assert b"\\u003cp\\u003e\\u0026" in raw and b"<p>" not in raw, raw
        raw = v1.read_namespaced_config_map("fidelity-cm", NS, _preload_content=False).data
        assert raw.endswith(b"}\n") and not raw.endswith(b"}\n\n"), raw[-40:]
        assert b"\\u003cp\\u003e\\u0026" in raw, raw
        assert json.loads(raw)["data"] == {"a": "b", "html": "<p>&"}
    finally:
        raw = v1.delete_namespaced_config_map("fidelity-cm", NS, _preload_content=False).data
        assert raw.endswith(b"}\n"), raw[-40:]
    # /version as WriteRawJSON writes it: indented, no trailing newline.
    response = api.rest_client.request("GET", api.configuration.host + "/version")
    response.read()
    raw = response.data
    assert raw.startswith(b'{\n  "major": "1",\n  "minor": "') and raw.endswith(b'"\n}'), raw
    assert b'\n  "gitVersion": "v1.' in raw, raw
    print("status: ok")


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fidelity-nginx
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""


def managers(obj):
    return {
        (m["manager"], m["operation"]): m["fieldsV1"]
        for m in obj["metadata"].get("managedFields") or []
    }


def check_apply(api):
    apps = client.AppsV1Api(api)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "deployment.yaml")
        with open(path, "w") as f:
            f.write(DEPLOYMENT)
        utils.create_from_yaml(api, path, namespace=NS)
        try:
            # The case: the same manifest applied after the create.
            utils.create_from_yaml(api, path, namespace=NS, apply=True)
            got = json.loads(
                apps.read_namespaced_deployment("fidelity-nginx", NS, _preload_content=False).data
            )
            owners = managers(got)
            creator = ("OpenAPI-Generator", "Update")
            applier = ("python-client", "Apply")
            # (The deployment controller's own writes may add a manager.)
            assert {creator, applier} <= set(owners), f"managers: {sorted(owners)}"
            for who in (creator, applier):
                assert "f:replicas" in owners[who]["f:spec"], f"{who} does not own replicas"
            assert got["spec"]["replicas"] == 3

            # A value that differs from what another manager set conflicts.
            dyn = DynamicClient(api)
            deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
            import yaml

            changed = yaml.safe_load(DEPLOYMENT)
            changed["spec"]["replicas"] = 5
            try:
                deployments.server_side_apply(body=changed, namespace=NS, field_manager="python-client")
                raise AssertionError("an apply changing another manager's replicas succeeded")
            except ApiException as e:
                assert e.status == 409, e.status
                status = json.loads(text(e.body))
                expected = (
                    'Apply failed with 1 conflict: conflict with "OpenAPI-Generator" '
                    "using apps/v1: .spec.replicas"
                )
                assert status["message"] == expected, status["message"]
                assert status["reason"] == "Conflict", status
                assert status["details"] == {
                    "causes": [
                        {
                            "reason": "FieldManagerConflict",
                            "message": 'conflict with "OpenAPI-Generator" using apps/v1',
                            "field": ".spec.replicas",
                        }
                    ]
                }, status["details"]

            # Forced, the applier takes the field over.
            forced = deployments.server_side_apply(
                body=changed, namespace=NS, field_manager="python-client", force_conflicts=True
            )
            assert forced.spec.replicas == 5, forced.spec.replicas
            owners = managers(forced.to_dict())
            assert "f:replicas" in owners[applier]["f:spec"]
            assert "f:replicas" not in owners[creator]["f:spec"], owners[creator]

            # A label only the applier set goes when it stops applying it.
            labelled = yaml.safe_load(DEPLOYMENT)
            labelled["spec"]["replicas"] = 5
            labelled["metadata"]["labels"]["tier"] = "web"
            deployments.server_side_apply(body=labelled, namespace=NS, field_manager="python-client")
            after = deployments.server_side_apply(body=changed, namespace=NS, field_manager="python-client")
            labels = after.to_dict()["metadata"]["labels"]
            assert labels == {"app": "nginx"}, labels
        finally:
            apps.delete_namespaced_deployment("fidelity-nginx", NS)
    print("apply: ok")


def check_events(api):
    """Kubernetes' conformance test of events.k8s.io ("should ensure that an
    event can be fetched, patched, deleted, and listed"), plus a core Event
    read through events.k8s.io: one resource in two groups."""
    import datetime

    core = client.CoreV1Api(api)
    events = client.EventsV1Api(api)
    when = datetime.datetime(2017, 9, 19, 13, 49, 16, tzinfo=datetime.timezone.utc)
    label = "testevent-constant=true"
    events.create_namespaced_event(
        NS,
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(name="event-test", labels={"testevent-constant": "true"}),
            regarding=client.V1ObjectReference(namespace=NS),
            event_time=when,
            note="This is event-test",
            action="Do",
            reason="Test",
            type="Normal",
            reporting_controller="test-controller",
            reporting_instance="test-node",
        ),
    )
    try:
        everywhere = events.list_event_for_all_namespaces(label_selector=label).items
        assert [(e.metadata.namespace, e.metadata.name) for e in everywhere] == [(NS, "event-test")], everywhere
        here = events.list_namespaced_event(NS, label_selector=label).items
        assert [e.metadata.name for e in here] == ["event-test"], here

        # The same Event through the core group, selected by its source.
        by_source = core.list_namespaced_event(NS, field_selector="source=test-controller").items
        assert [e.metadata.name for e in by_source] == ["event-test"], f"expected single event, got {by_source}"
        seen = by_source[0]
        assert seen.message == "This is event-test", seen.message
        assert seen.reporting_component == "test-controller", seen.reporting_component
        assert seen.involved_object.namespace == NS, seen.involved_object
        by_controller = events.list_namespaced_event(
            NS, field_selector="reportingController=test-controller"
        ).items
        assert [e.metadata.name for e in by_controller] == ["event-test"], by_controller

        events.patch_namespaced_event(
            "event-test", NS, {"series": {"count": 2, "lastObservedTime": "2017-09-19T13:49:11.000000Z"}}
        )
        got = events.read_namespaced_event("event-test", NS)
        assert got.series.count == 2, got.series
        assert got.note == "This is event-test" and got.reporting_controller == "test-controller", got

        got.series = client.EventsV1EventSeries(count=100, last_observed_time=when)
        events.replace_namespaced_event("event-test", NS, got)
        again = events.read_namespaced_event("event-test", NS)
        assert again.series.count == 100, again.series
        assert core.read_namespaced_event("event-test", NS).series.count == 100

        # A core Event reads as events.k8s.io's, with the deprecated fields.
        core.create_namespaced_event(
            NS,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name="core-made"),
                involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace=NS),
                reason="Started",
                message="hello",
                source=client.V1EventSource(component="kubelet", host="n1"),
                count=3,
                first_timestamp=when,
                last_timestamp=when,
                type="Normal",
            ),
        )
        raw = json.loads(events.read_namespaced_event("core-made", NS, _preload_content=False).data)
        assert raw["apiVersion"] == "events.k8s.io/v1", raw
        assert raw["note"] == "hello" and raw["regarding"]["name"] == "p", raw
        assert raw["deprecatedSource"] == {"component": "kubelet", "host": "n1"}, raw
        assert raw["deprecatedCount"] == 3, raw
        assert raw["deprecatedFirstTimestamp"].startswith("2017-09-19T13:49:16"), raw
        assert "message" not in raw and "involvedObject" not in raw, raw

        events.delete_namespaced_event("event-test", NS)
        assert events.list_namespaced_event(NS, label_selector=label).items == []
        try:
            core.read_namespaced_event("event-test", NS)
            raise AssertionError("an Event deleted through events.k8s.io is still in the core group")
        except ApiException as e:
            assert e.status == 404, e.status
    finally:
        for name in ("event-test", "core-made"):
            try:
                core.delete_namespaced_event(name, NS)
            except ApiException:
                pass

    # events.k8s.io creates are held to its stricter rules.
    try:
        DynamicClient(api).resources.get(api_version="events.k8s.io/v1", kind="Event").create(
            namespace=NS,
            body={
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "bad-event"},
                "regarding": {"namespace": NS},
                "note": "no time",
                "action": "Do",
                "reason": "Test",
                "type": "Normal",
                "reportingController": "test-controller",
                "reportingInstance": "test-node",
            },
        )
        raise AssertionError("an events.k8s.io Event without eventTime was created")
    except ApiException as e:
        assert e.status == 422, e.status
        message = json.loads(text(e.body))["message"]
        assert message == 'Event "bad-event" is invalid: eventTime: Required value', message

    # "should delete a collection of events", through events.k8s.io.
    for name in ("test-event-1", "test-event-2", "test-event-3"):
        events.create_namespaced_event(
            NS,
            client.EventsV1Event(
                metadata=client.V1ObjectMeta(name=name, labels={"testevent-set": "true"}),
                regarding=client.V1ObjectReference(namespace=NS),
                event_time=when,
                note="This is " + name,
                action="Do",
                reason="Test",
                type="Normal",
                reporting_controller="test-controller",
                reporting_instance="test-node",
            ),
        )
    assert len(events.list_namespaced_event(NS, label_selector="testevent-set=true").items) == 3
    events.delete_collection_namespaced_event(NS, label_selector="testevent-set=true")
    assert events.list_namespaced_event(NS, label_selector="testevent-set=true").items == []
    assert core.list_namespaced_event(NS, label_selector="testevent-set=true").items == []
    print("events: ok")


def check_services(api):
    """Service type changes as Kubernetes' conformance tests make them (read,
    change the type, replace): addresses and node ports are released and
    allocated with the type."""
    v1 = client.CoreV1Api(api)

    def change(name, mutate):
        svc = v1.read_namespaced_service(name, NS)
        mutate(svc)
        return v1.replace_namespaced_service(name, NS, svc)

    def other(name, **spec):
        return v1.create_namespaced_service(
            NS,
            client.V1Service(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1ServiceSpec(**{"ports": [client.V1ServicePort(port=80)], **spec}),
            ),
        )

    created = []
    try:
        svc = other("type-change", type="ClusterIP")
        created.append("type-change")
        first_ip = svc.spec.cluster_ip
        assert first_ip and first_ip != "None", svc.spec

        def to_external_name(s):
            s.spec.type = "ExternalName"
            s.spec.external_name = "foo.example.com"

        ext = change("type-change", to_external_name)
        assert ext.spec.cluster_ip in (None, ""), f"unexpected Spec.ClusterIP ({ext.spec.cluster_ip}) for ExternalName service"
        assert not ext.spec.cluster_ips and not ext.spec.ip_families and ext.spec.ip_family_policy is None, ext.spec
        # The address is free again: another Service may ask for it.
        assert other("takes-ip", cluster_ip=first_ip).spec.cluster_ip == first_ip
        created.append("takes-ip")

        def to_cluster_ip(s):
            s.spec.type = "ClusterIP"
            s.spec.external_name = None
            s.spec.ports = [client.V1ServicePort(port=80, name="http", protocol="TCP")]

        back = change("type-change", to_cluster_ip)
        assert back.spec.cluster_ip and back.spec.cluster_ip != "None", "didn't get ClusterIP for non-ExternalName service"
        assert back.spec.cluster_ips == [back.spec.cluster_ip] and back.spec.ip_families == ["IPv4"], back.spec

        def to_node_port(s):
            s.spec.type = "NodePort"

        np = change("type-change", to_node_port)
        port = np.spec.ports[0].node_port
        assert port and 30000 <= port <= 32767, np.spec.ports
        assert np.spec.cluster_ip == back.spec.cluster_ip, "the cluster IP stays"
        assert np.spec.external_traffic_policy == "Cluster", np.spec

        # A replace that leaves the node port out keeps it.
        def forget_node_port(s):
            s.spec.ports[0].node_port = None

        assert change("type-change", forget_node_port).spec.ports[0].node_port == port

        def to_plain_cluster_ip(s):
            s.spec.type = "ClusterIP"

        plain = change("type-change", to_plain_cluster_ip)
        assert plain.spec.ports[0].node_port is None, plain.spec.ports
        assert plain.spec.external_traffic_policy is None, plain.spec
        # The node port is free again.
        taken = other("takes-port", type="NodePort", ports=[client.V1ServicePort(port=80, node_port=port)])
        created.append("takes-port")
        assert taken.spec.ports[0].node_port == port

        # From ExternalName straight to NodePort: an address and a port.
        change("type-change", to_external_name)
        again = change("type-change", lambda s: (to_cluster_ip(s), to_node_port(s)))
        assert again.spec.cluster_ip not in (None, "", "None"), again.spec
        assert again.spec.ports[0].node_port and again.spec.ports[0].node_port != port, again.spec.ports

        # An ExternalName Service may not keep an address it names itself.
        def external_with_ip(s):
            to_external_name(s)
            s.spec.cluster_ip = "10.43.200.200"
            s.spec.cluster_ips = ["10.43.200.200"]

        try:
            change("type-change", external_with_ip)
            raise AssertionError("an ExternalName Service kept a cluster IP")
        except ApiException as e:
            assert e.status == 422, e.status
            message = json.loads(text(e.body))["message"]
            assert "spec.clusterIPs: Forbidden: may not be set for ExternalName services" in message, message
    finally:
        for name in created:
            v1.delete_namespaced_service(name, NS)
    print("services: ok")


def check_delete(api):
    v1 = client.CoreV1Api(api)
    made = v1.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fidelity-del"))
    )
    # Kubernetes' generic registry answers a removed object with a Status.
    # (Clients before 32 type it V1Status; later ones hand over the dict.)
    gone = v1.delete_namespaced_config_map("fidelity-del", NS)
    if not isinstance(gone, dict):
        gone = api.sanitize_for_serialization(gone)
    assert gone["kind"] == "Status" and gone["status"] == "Success", gone
    assert gone["details"] == {
        "name": "fidelity-del",
        "kind": "configmaps",
        "uid": made.metadata.uid,
    }, gone
    # One waiting on a finalizer is answered as it is now, being deleted.
    v1.create_namespaced_config_map(
        NS,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="fidelity-held", finalizers=["example.com/hold"])
        ),
    )
    try:
        raw = v1.delete_namespaced_config_map("fidelity-held", NS, _preload_content=False).data
        held = json.loads(raw)
        assert held["kind"] == "ConfigMap", held
        assert held["metadata"]["deletionTimestamp"], held
    finally:
        v1.patch_namespaced_config_map("fidelity-held", NS, {"metadata": {"finalizers": None}})
    # A Pod's store returns the deleted object.
    v1.create_namespaced_pod(
        NS,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="fidelity-pod"),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="c", image="busybox")],
                node_name="fidelity-no-such-node",
            ),
        ),
    )
    raw = v1.delete_namespaced_pod(
        "fidelity-pod", NS, grace_period_seconds=0, _preload_content=False
    ).data
    pod = json.loads(raw)
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == "fidelity-pod", pod
    print("delete: ok")


CHECKS = {
    "status": check_status,
    "apply": check_apply,
    "events": check_events,
    "services": check_services,
    "delete": check_delete,
}


def main(kubeconfig, check):
    config.load_kube_config(config_file=kubeconfig)
    CHECKS[check](client.ApiClient())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
