"""Creates one object of each kind with the official Kubernetes Python
client (JSON bodies), for the defaults test to read back with kubectl.

Usage: defaults_create.py KUBECONFIG NAMESPACE
Every object is named `py-<kind>`; prints "created: ok" at the end.
"""
import sys

from kubernetes import client, config, utils

CONTAINER = {
    "name": "c",
    "image": "busybox:1.36",
    "command": ["sleep", "3600"],
    "ports": [{"containerPort": 8080}],
    "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}},
    "livenessProbe": {"httpGet": {"port": 8080}},
    "readinessProbe": {"tcpSocket": {"port": 8080}},
}
LABELS = {"app": "py"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [CONTAINER]}}


def objects(ns):
    meta = lambda kind: {"name": f"py-{kind}", "namespace": ns}
    selector = {"matchLabels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("pod"),
         "spec": {"containers": [CONTAINER]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("service"),
         "spec": {"selector": LABELS, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("secret"),
         "stringData": {"password": "s3cret"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("configmap"),
         "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("pvc"),
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("used"),
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("user"),
         "spec": {"containers": [CONTAINER],
                  "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "py-used"}}]}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"py-pv-{ns}"},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "hostPath": {"path": "/tmp/py-pv"}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": meta("limitrange"),
         "spec": {"limits": [{"type": "Container", "default": {"memory": "64Mi"}}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("deployment"),
         "spec": {"selector": selector, "template": TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("statefulset"),
         "spec": {"selector": selector, "serviceName": "py", "template": TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("daemonset"),
         "spec": {"selector": selector, "template": TEMPLATE}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("job"),
         "spec": {"template": {"spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("cronjob"),
         "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
             "spec": {"containers": [CONTAINER], "restartPolicy": "OnFailure"}}}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("hpa"),
         "spec": {"maxReplicas": 3,
                  "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "py-deployment"}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("rolebinding"),
         "roleRef": {"kind": "Role", "name": "r"},
         "subjects": [{"kind": "User", "name": "u"},
                      {"kind": "ServiceAccount", "name": "sa", "namespace": ns}]},
    ]


def main(kubeconfig, ns):
    config.load_kube_config(config_file=kubeconfig)
    api = client.ApiClient()
    for obj in objects(ns):
        utils.create_from_dict(api, obj, namespace=ns)
    print("created: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
