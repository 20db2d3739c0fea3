//! The generic REST storage over the embedded store, below HTTP: Events
//! expire after their TTL; a Terminating namespace goes only through its
//! `finalize` subresource; a binding assigns a pod once, leaving its field
//! owners as they were.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::registry::Registry;
use ferrokube_apiserver::allocator::{Allocator, ServiceCidr};
use ferrokube_apiserver::options::{DeleteOptions, WriteOptions};
use ferrokube_apiserver::rest::Rest;
use ferrokube_apiserver::server::fields_fn;
use ferrokube_apiserver::watchcache::WatchCache;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The REST storage over an embedded store in `dir`, Events living
/// `event_ttl_seconds`; cancel the token to stop its watch cache.
async fn rest_in(dir: &std::path::Path, event_ttl_seconds: i64) -> (Rest, CancellationToken) {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = store;
    let cancel = CancellationToken::new();
    // Pods are cached, as the server caches every resource.
    let registry = Registry::default();
    let pods = registry.get("", "v1", "pods").unwrap();
    let cached = vec![(pods.storage_prefix.to_string(), fields_fn(pods))];
    let cache = WatchCache::start(store.clone(), "/registry/", cached, 100, cancel.clone())
        .await
        .unwrap();
    let allocator = Allocator::new(store.clone(), ServiceCidr::parse("10.43.0.0/16").unwrap());
    let rest = Rest::new(registry, store, cache, allocator, event_ttl_seconds);
    (rest, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (rest, cancel) = rest_in(dir.path(), 2).await;
    let registry = rest.kinds.registry();
    rest.ensure_namespaces(&["default"]).await.unwrap();
    let events = registry.get("", "v1", "events").unwrap().clone();
    let cms = registry.get("", "v1", "configmaps").unwrap().clone();
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test", "message": "hello", "type": "Normal"});
    rest.create(&events, "default", ev, &WriteOptions::default())
        .await
        .unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "default"}});
    rest.create(&cms, "default", cm, &WriteOptions::default())
        .await
        .unwrap();
    assert!(rest.get(&events, "default", "e1").await.is_ok());
    // Gone within the TTL plus the reuse window and the expiry check, bounded.
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if rest
            .get(&events, "default", "e1")
            .await
            .is_err_and(|e| e.code == 404)
        {
            gone = true;
            break;
        }
    }
    assert!(gone, "the event outlived its TTL");
    assert!(
        rest.get(&cms, "default", "keep").await.is_ok(),
        "other objects do not expire"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_namespace_goes_when_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let (rest, cancel) = rest_in(dir.path(), 60).await;
    let registry = rest.kinds.registry();
    let nss = registry.get("", "v1", "namespaces").unwrap().clone();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    let created = rest
        .create(&nss, "", ns, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    let deleting = rest
        .delete(&nss, "", "team", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleting["status"]["phase"], "Terminating");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());

    // A status update (the namespace controller's conditions) keeps it.
    let mut with_status = rest.get(&nss, "", "team").await.unwrap();
    with_status["status"]["conditions"] = json!([{"type": "NamespaceContentRemaining",
        "status": "False", "reason": "ContentRemoved", "message": "All content successfully removed"}]);
    rest.update(
        &nss,
        "",
        "team",
        with_status,
        "status",
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let still = rest.get(&nss, "", "team").await.unwrap();
    assert_eq!(still["status"]["conditions"][0]["reason"], "ContentRemoved");

    // With no finalizer left, the namespace is gone.
    let mut fin = still.clone();
    fin["spec"]["finalizers"] = json!([]);
    rest.update(&nss, "", "team", fin, "finalize", &WriteOptions::default())
        .await
        .unwrap();
    assert!(rest
        .get(&nss, "", "team")
        .await
        .is_err_and(|e| e.code == 404));

    // A namespace not being deleted keeps living when finalized, and
    // finalize changes only spec.finalizers.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alive"}});
    let created = rest
        .create(&nss, "", ns, &WriteOptions::default())
        .await
        .unwrap();
    let mut fin = created.clone();
    fin["spec"]["finalizers"] = json!([]);
    fin["metadata"]["labels"] = json!({"ignored": "yes"});
    let after = rest
        .update(&nss, "", "alive", fin, "finalize", &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(after["spec"]["finalizers"], json!([]));
    assert_eq!(
        after["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "alive"}),
        "only the label every namespace has"
    );
    assert!(rest.get(&nss, "", "alive").await.is_ok());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_assigns_the_pod_once_and_keeps_its_field_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (rest, cancel) = rest_in(dir.path(), 60).await;
    rest.ensure_namespaces(&["default"]).await.unwrap();
    let pods = rest.kinds.get("", "v1", "pods").unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let mut opts = WriteOptions::default();
    opts.manager = "creator".into();
    let created = rest.create(&pods, "default", pod, &opts).await.unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let bind = |node: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "web", "uid": uid}, "target": {"kind": "Node", "name": node}})
    };
    let err = rest
        .bind_pod(&pods, "default", "web", &bind("n1", "other"), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.code, 409, "{err:?}");
    rest.bind_pod(&pods, "default", "web", &bind("n1", &uid), &opts)
        .await
        .unwrap();

    let bound = rest.get(&pods, "default", "web").await.unwrap();
    assert_eq!(bound["spec"]["nodeName"], "n1");
    let conds = bound["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds.len(), 1);
    assert_eq!(conds[0]["type"], "PodScheduled");
    assert_eq!(conds[0]["status"], "True");
    assert_eq!(
        bound["metadata"]["managedFields"], created["metadata"]["managedFields"],
        "binding changes nobody's fields"
    );
    assert_eq!(bound["metadata"]["labels"], created["metadata"]["labels"]);
    assert_ne!(
        bound["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // The watch cache serves what the store holds, once it has seen the
    // write (bounded wait).
    let pods_cache = rest.cache.resource("/registry/pods/").unwrap();
    let mut cached = serde_json::Value::Null;
    for _ in 0..100 {
        if let Some(o) = pods_cache.get("/registry/pods/default/web") {
            cached = serde_json::from_slice(&o.json).unwrap();
            if cached == bound {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cached, bound);

    let again = rest
        .bind_pod(&pods, "default", "web", &bind("n2", &uid), &opts)
        .await
        .unwrap_err();
    assert_eq!(again.code, 409);
    assert!(
        again.message.contains("already assigned to node \"n1\""),
        "{}",
        again.message
    );
    cancel.cancel();
}

/// Every write path (create, server-side apply of a new object, update,
/// patch) defaults, admits and prepares objects as Kubernetes does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: each write path in turn on the same store"
)]
async fn every_write_path_defaults_and_prepares() {
    let dir = tempfile::tempdir().unwrap();
    let (rest, cancel) = rest_in(dir.path(), 60).await;
    let registry = rest.kinds.registry();
    let opts = WriteOptions::default();
    rest.ensure_namespaces(&["default"]).await.unwrap();
    let pods = registry.get("", "v1", "pods").unwrap().clone();
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
        "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}}}]}});
    let created = rest.create(&pods, "default", pod, &opts).await.unwrap();
    assert_eq!(created["spec"]["priority"], 0);
    assert_eq!(created["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(created["spec"]["enableServiceLinks"], true);
    assert_eq!(created["status"]["qosClass"], "Guaranteed");
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["spec"]["tolerations"].as_array().unwrap().len(), 2);
    // A class that does not exist is refused; a system class is known.
    let missing = json!({"metadata": {"name": "q"}, "spec": {"priorityClassName": "nope",
        "containers": [{"name": "c", "image": "busybox"}]}});
    let err = rest
        .create(&pods, "default", missing, &opts)
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert!(err
        .message
        .contains("no PriorityClass with name nope was found"));
    let critical = json!({"metadata": {"name": "crit"}, "spec": {"priorityClassName": "system-node-critical",
        "containers": [{"name": "c", "image": "busybox"}]}});
    let crit = rest
        .create(&pods, "default", critical, &opts)
        .await
        .unwrap();
    assert_eq!(crit["spec"]["priority"], 2_000_001_000);

    // Server-side apply of a new Secret folds stringData like a create.
    let secrets = registry.get("", "v1", "secrets").unwrap().clone();
    let body = br#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "s3cret"}}"#;
    let mut apply = WriteOptions::default();
    apply.field_manager = Some("test".into());
    apply.manager = "test".into();
    let secret = rest
        .patch(
            &secrets,
            "default",
            "s",
            "application/apply-patch+yaml",
            body,
            "",
            &apply,
        )
        .await
        .unwrap();
    assert_eq!(secret["data"], json!({"pw": "czNjcmV0"}));
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    assert!(secret["metadata"].get("generation").is_none());

    // A merge patch of a Deployment's template: defaulted, generation bumped;
    // a patch of its labels: not bumped.
    let deployments = registry.get("apps", "v1", "deployments").unwrap().clone();
    let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let d = rest
        .create(&deployments, "default", d, &opts)
        .await
        .unwrap();
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["status"], json!({}));
    let patch = br#"{"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}}}}"#;
    let patched = rest
        .patch(
            &deployments,
            "default",
            "d",
            "application/merge-patch+json",
            patch,
            "",
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(patched["metadata"]["generation"], 2);
    let c = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["imagePullPolicy"], "Always");
    let labels = br#"{"metadata": {"labels": {"x": "y"}}}"#;
    let relabeled = rest
        .patch(
            &deployments,
            "default",
            "d",
            "application/merge-patch+json",
            labels,
            "",
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(relabeled["metadata"]["generation"], 2);
    // A new claim is protected while in use.
    let pvcs = registry
        .get("", "v1", "persistentvolumeclaims")
        .unwrap()
        .clone();
    let pvc = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}});
    let pvc = rest.create(&pvcs, "default", pvc, &opts).await.unwrap();
    assert_eq!(
        pvc["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));
    cancel.cancel();
}

/// A custom kind for the test: every field accepted, objects selectable
/// by name only.
#[derive(Debug)]
struct AnyFields;

impl ferrokube_apiserver::strategy::Strategy for AnyFields {
    fn check_fields(
        &self,
        _def: &ferrokube_api::registry::ResourceDef,
        obj: serde_json::Value,
    ) -> Result<ferrokube_apiserver::strategy::Checked, String> {
        Ok(ferrokube_apiserver::strategy::Checked {
            value: obj,
            unknown: Vec::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_added_while_serving_is_cached_then_removed() {
    use ferrokube_api::registry::intern;
    use ferrokube_apiserver::served::Kind;
    let dir = tempfile::tempdir().unwrap();
    let (rest, cancel) = rest_in(dir.path(), 60).await;
    rest.ensure_namespaces(&["default"]).await.unwrap();
    let mut def = rest.kinds.get("", "v1", "configmaps").unwrap();
    def.group = intern("example.com");
    def.kind = intern("Widget");
    def.plural = intern("widgets");
    def.singular = intern("widget");
    def.short_names = &[];
    def.categories = &[];
    def.storage_prefix = intern("/registry/example.com/widgets/");
    // An object stored before the kind is served (by another API server,
    // or before a restart) is in its cache once it is.
    let old = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "old", "namespace": "default"}});
    rest.create(&def, "default", old, &WriteOptions::default())
        .await
        .unwrap();
    assert!(rest.cache.resource(def.storage_prefix).is_none());
    assert!(rest.kinds.get("example.com", "v1", "widgets").is_none());
    let changes = rest.kinds.subscribe();
    rest.kinds
        .add(vec![Kind {
            def: def.clone(),
            strategy: Arc::new(AnyFields),
            schema: None,
        }])
        .await
        .unwrap();
    assert!(changes.has_changed().unwrap());
    assert_eq!(
        rest.kinds.get("example.com", "v1", "widgets").unwrap().kind,
        "Widget"
    );
    let cache = rest.cache.resource(def.storage_prefix).unwrap();
    assert_eq!(cache.list("/registry/example.com/widgets/").len(), 1);
    let mut watch = cache.watch_from(rest.cache.revision()).unwrap();
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}});
    let created = rest
        .create(&def, "default", w, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(created["spec"]["size"], 3);
    let ev = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.object.name, "w1");
    assert_eq!(
        cache.list("/registry/example.com/widgets/default/").len(),
        2
    );
    assert_eq!(
        rest.get(&def, "default", "w1").await.unwrap()["spec"]["size"],
        3
    );
    rest.kinds.remove("example.com", "widgets").await;
    assert!(rest.kinds.get("example.com", "v1", "widgets").is_none());
    assert!(rest.cache.resource(def.storage_prefix).is_none());
    // Its watchers end.
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(ended.is_err());
    cancel.cancel();
}
