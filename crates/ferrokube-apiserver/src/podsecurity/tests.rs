//! Pod Security through the REST storage, below HTTP: namespaces' labels,
//! pods refused or warned about, workloads warned about, updates, and the
//! configuration's defaults and exemptions.

use std::sync::Arc;

use ferrokube_api::registry::Registry;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::api::Version;
use super::*;
use crate::allocator::{Allocator, ServiceCidr};
use crate::authn::UserInfo;
use crate::watchcache::WatchCache;

pub(crate) struct Env {
    pub(crate) rest: Rest,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn env_with(config: Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let registry = Registry::default();
    let mut resources: Vec<(String, crate::watchcache::FieldsFn)> = Vec::new();
    for d in registry.all() {
        if !resources.iter().any(|(p, _)| p == d.storage_prefix) {
            resources.push((d.storage_prefix.to_string(), crate::server::fields_fn(d)));
        }
    }
    let cache = WatchCache::start(store.clone(), "/registry/", resources, 100, cancel.clone())
        .await
        .unwrap();
    let rest = Rest {
        kinds: crate::served::Kinds::new(registry, cache.clone()),
        allocator: Allocator::new(store.clone(), ServiceCidr::parse("10.43.0.0/16").unwrap()),
        store,
        cache,
        event_lease: Default::default(),
        event_ttl_seconds: 3600,
        escalation: None,
        pod_security: config,
        webhooks: Default::default(),
        policies: Default::default(),
    };
    rest.ensure_namespaces(&["default"]).await.unwrap();
    Env {
        rest,
        cancel,
        _dir: dir,
    }
}

pub(crate) async fn env() -> Env {
    env_with(Config::default()).await
}

pub(crate) fn opts_as(user: &str) -> WriteOptions {
    WriteOptions {
        user: Some(UserInfo::authenticated(user, ["system:authenticated"])),
        ..Default::default()
    }
}

fn warnings(opts: &WriteOptions) -> Vec<String> {
    opts.warnings.lock().clone()
}

impl Env {
    pub(crate) fn def(&self, group: &str, version: &str, plural: &str) -> ResourceDef {
        self.rest.kinds.get(group, version, plural).unwrap().clone()
    }

    async fn namespace(&self, name: &str, labels: Value) -> ApiResult<WriteOptions> {
        let opts = opts_as("jane");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}});
        self.rest
            .create(&self.def("", "v1", "namespaces"), "", ns, &opts)
            .await?;
        // Admission reads namespaces from the watch cache, as Kubernetes
        // reads its informer.
        for _ in 0..100 {
            let def = self.def("", "v1", "namespaces");
            if self
                .rest
                .cache
                .resource(def.storage_prefix)
                .and_then(|c| c.get(&def.key("", name)))
                .is_some()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(opts)
    }

    async fn label_namespace(&self, name: &str, labels: Value) -> ApiResult<WriteOptions> {
        let opts = opts_as("jane");
        let patch = json!({"metadata": {"labels": labels}});
        self.rest
            .patch(
                &self.def("", "v1", "namespaces"),
                "",
                name,
                "application/merge-patch+json",
                patch.to_string().as_bytes(),
                "",
                &opts,
            )
            .await?;
        Ok(opts)
    }

    async fn pod_as(&self, ns: &str, pod: Value, user: &str) -> (ApiResult<Value>, WriteOptions) {
        let opts = opts_as(user);
        let r = self
            .rest
            .create(&self.def("", "v1", "pods"), ns, pod, &opts)
            .await;
        (r, opts)
    }

    async fn pod(&self, ns: &str, pod: Value) -> (ApiResult<Value>, WriteOptions) {
        self.pod_as(ns, pod, "jane").await
    }
}

fn privileged_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "securityContext": {"privileged": true}}]}})
}

fn plain_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn restricted_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "busybox",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

const PRIVILEGED_RESTRICTED: &str = r#"pods "p" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_namespace_refuses_a_privileged_pod_and_admits_a_restricted_one() {
    let e = env().await;
    e.namespace(
        "r",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await
    .unwrap();
    let (r, opts) = e.pod("r", privileged_pod("p")).await;
    let err = r.unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert_eq!(err.message, PRIVILEGED_RESTRICTED);
    assert!(warnings(&opts).is_empty(), "no warning on a refused pod");
    let (r, opts) = e.pod("r", restricted_pod("ok")).await;
    r.unwrap();
    assert!(warnings(&opts).is_empty());
    // Unlabelled namespaces are privileged by default.
    let (r, _) = e.pod("default", privileged_pod("p")).await;
    r.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warn_label_warns_without_refusing() {
    let e = env().await;
    e.namespace("w", json!({"pod-security.kubernetes.io/warn": "baseline"}))
        .await
        .unwrap();
    let (r, opts) = e.pod("w", privileged_pod("p")).await;
    r.unwrap();
    assert_eq!(
        warnings(&opts),
        [
            r#"would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#
        ]
    );
    let (r, opts) = e.pod("w", plain_pod("plain")).await;
    r.unwrap();
    assert!(warnings(&opts).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_warned_about_never_refused() {
    let e = env().await;
    e.namespace(
        "r",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await
    .unwrap();
    let template = json!({"metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let expected = r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#;
    let workloads = [
        (
            e.def("apps", "v1", "deployments"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}}),
        ),
        (
            e.def("batch", "v1", "cronjobs"),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        ),
        (
            e.def("", "v1", "podtemplates"),
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pt"}, "template": template}),
        ),
    ];
    for (def, obj) in workloads {
        let opts = opts_as("jane");
        e.rest.create(&def, "r", obj, &opts).await.unwrap();
        assert_eq!(warnings(&opts), [expected], "{}", def.kind);
    }
    // An update of the workload is warned about again; its status is not.
    let opts = opts_as("jane");
    let patch = json!({"spec": {"replicas": 2}});
    e.rest
        .patch(
            &e.def("apps", "v1", "deployments"),
            "r",
            "d",
            "application/merge-patch+json",
            patch.to_string().as_bytes(),
            "",
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(warnings(&opts), [expected]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_labels_are_refused() {
    let e = env().await;
    let err = e
        .namespace(
            "bad",
            json!({"pod-security.kubernetes.io/enforce": "strict"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        r#"Namespace "bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
    );
    e.namespace("good", json!({})).await.unwrap();
    let err = e
        .label_namespace(
            "good",
            json!({"pod-security.kubernetes.io/warn-version": "1.25"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Namespace "good" is invalid: metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.25": must be "latest" or "v1.x""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcing_on_a_namespace_with_violating_pods_warns() {
    let e = env().await;
    e.namespace("n", json!({})).await.unwrap();
    for name in ["b", "a"] {
        e.pod("n", privileged_pod(name)).await.0.unwrap();
    }
    e.pod("n", restricted_pod("fine")).await.0.unwrap();
    let mut host = plain_pod("h");
    host["spec"]["hostNetwork"] = json!(true);
    e.pod("n", host).await.0.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let opts = e
        .label_namespace(
            "n",
            json!({"pod-security.kubernetes.io/enforce": "baseline"}),
        )
        .await
        .unwrap();
    assert_eq!(
        warnings(&opts),
        [
            r#"existing pods in namespace "n" violate the new PodSecurity enforce level "baseline:latest""#,
            "a (and 1 other pod): privileged",
            "h: host namespaces",
        ]
    );
    // Relaxing, or setting the same level again, checks nothing.
    let opts = e
        .label_namespace(
            "n",
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
        )
        .await
        .unwrap();
    assert!(warnings(&opts).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_updates_are_not_checked_but_new_images_are() {
    let e = env().await;
    e.namespace("n", json!({})).await.unwrap();
    e.pod("n", privileged_pod("p")).await.0.unwrap();
    e.label_namespace(
        "n",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    )
    .await
    .unwrap();
    let pods = e.def("", "v1", "pods");
    let merge = |patch: Value| {
        let rest = &e.rest;
        let pods = pods.clone();
        async move {
            rest.patch(
                &pods,
                "n",
                "p",
                "application/merge-patch+json",
                patch.to_string().as_bytes(),
                "",
                &opts_as("jane"),
            )
            .await
        }
    };
    merge(json!({"metadata": {"labels": {"tier": "web"}}}))
        .await
        .unwrap();
    let err = merge(
        json!({"spec": {"containers": [{"name": "c", "image": "busybox:2",
        "securityContext": {"privileged": true}}]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        r#"pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_are_checked() {
    let e = env().await;
    e.namespace(
        "n",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    )
    .await
    .unwrap();
    e.pod("n", plain_pod("p")).await.0.unwrap();
    let pods = e.def("", "v1", "pods");
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox",
        "securityContext": {"privileged": true}}]}});
    let err = e
        .rest
        .patch(
            &pods,
            "n",
            "p",
            "application/strategic-merge-patch+json",
            patch.to_string().as_bytes(),
            "ephemeralcontainers",
            &opts_as("jane"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "debug" must not set securityContext.privileged=true)"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_default_and_exemptions_apply() {
    let config = Config {
        defaults: Policy {
            enforce: LevelVersion {
                level: Level::Baseline,
                version: Version::Latest,
            },
            ..Policy::default()
        },
        exempt_usernames: vec!["ci-bot".into()],
        exempt_runtime_classes: vec!["kata".into()],
        exempt_namespaces: vec!["trusted".into()],
    };
    let e = env_with(config).await;
    // The default applies to unlabelled namespaces.
    let (r, _) = e.pod("default", privileged_pod("p")).await;
    assert_eq!(
        r.unwrap_err().message,
        r#"pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#
    );
    // A label overrides it.
    e.namespace(
        "open",
        json!({"pod-security.kubernetes.io/enforce": "privileged"}),
    )
    .await
    .unwrap();
    e.pod("open", privileged_pod("p")).await.0.unwrap();
    // Exempt users, runtime classes and namespaces are not checked.
    e.pod_as("default", privileged_pod("bot"), "ci-bot")
        .await
        .0
        .unwrap();
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "kata"}, "handler": "kata"});
    e.rest
        .create(
            &e.def("node.k8s.io", "v1", "runtimeclasses"),
            "",
            rc,
            &opts_as("admin"),
        )
        .await
        .unwrap();
    let mut kata = privileged_pod("kata");
    kata["spec"]["runtimeClassName"] = json!("kata");
    e.pod("default", kata).await.0.unwrap();
    let opts = e
        .namespace(
            "trusted",
            json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        )
        .await
        .unwrap();
    assert_eq!(
        warnings(&opts),
        [
            r#"namespace "trusted" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"#
        ]
    );
    e.pod("trusted", privileged_pod("p")).await.0.unwrap();
}

#[test]
fn significant_updates() {
    let pod = |image: &str, annotations: Value, ephemeral: Value| {
        json!({"metadata": {"annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": image}], "ephemeralContainers": ephemeral}})
    };
    let old = pod("a", json!({}), json!([]));
    assert!(!significant_pod_update(
        &pod("a", json!({"note": "x"}), json!([])),
        &old
    ));
    assert!(significant_pod_update(
        &pod("b", json!({}), json!([])),
        &old
    ));
    assert!(significant_pod_update(
        &pod(
            "a",
            json!({"container.seccomp.security.alpha.kubernetes.io/c": "unconfined"}),
            json!([])
        ),
        &old
    ));
    assert!(significant_pod_update(
        &pod("a", json!({}), json!([{"name": "d", "image": "busybox"}])),
        &old
    ));
}
