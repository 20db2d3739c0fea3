//! The ControllerRevision history helpers against a real API server:
//! creation with name collisions, renumbering, claiming and truncation.

use std::time::Duration;

use ferrokube_api::labels::Selector;
use ferrokube_client::testing::TestApi;
use ferrokube_controllers::history::{self, History};
use ferrokube_controllers::watchqueue::Informer;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("test object")
}

async fn setup(ns: &str) -> (TestApi, kube::Client, DaemonSet) {
    let api = TestApi::start().await.expect("test API server");
    let client = api.client().await.expect("client");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": ns}})),
    )
    .await
    .expect("namespace");
    let ds: DaemonSet = Api::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "agent"},
                "spec": {
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": {
                        "metadata": {"labels": {"app": "agent"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
                    }
                }
            })),
        )
        .await
        .expect("daemon set");
    (api, client, ds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_renames_on_collision_and_truncate_keeps_the_live() {
    let (_api, client, ds) = setup("hist").await;
    let crs: Api<ControllerRevision> = Api::namespaced(client.clone(), "hist");
    let h = History::new(client.clone());
    let labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone());

    // A stranger squats the name revision 1 would get.
    let data = json!({"spec": {"template": {"$patch": "replace", "x": 1}}});
    let first = history::new_revision(&ds, labels.as_ref(), data.clone(), 1, Some(0));
    let squatter: ControllerRevision = obj(json!({
        "metadata": {"name": first.metadata.name, "labels": {"app": "other"}},
        "data": {"other": true},
        "revision": 7
    }));
    crs.create(&PostParams::default(), &squatter)
        .await
        .expect("squatter");
    let mut collisions = 0;
    let made = h
        .create(&ds, &first, &mut collisions)
        .await
        .expect("creating");
    assert_eq!(collisions, 1);
    assert_ne!(made.metadata.name, first.metadata.name);
    assert_eq!(
        made.metadata.name.as_deref(),
        Some(&*format!(
            "agent-{}",
            history::hash_revision(Some(&data), Some(1))
        ))
    );
    // The same data again: the existing revision comes back, no new name.
    let mut c2 = 1;
    let again = h.create(&ds, &first, &mut c2).await.expect("again");
    assert_eq!(again.metadata.uid, made.metadata.uid);
    assert_eq!(c2, 1);

    // Renumbering.
    let renumbered = h.update_revision(&made, 5).await.expect("renumber");
    assert_eq!(renumbered.revision, 5);

    // More revisions, then truncation to 1 keeping the live one.
    let mut revs = vec![renumbered];
    for n in 6..9 {
        let r = history::new_revision(
            &ds,
            labels.as_ref(),
            json!({"spec": {"template": {"n": n}}}),
            n,
            None,
        );
        let mut c = 0;
        revs.push(h.create(&ds, &r, &mut c).await.expect("more"));
    }
    let live = revs[3].metadata.name.clone();
    let deleted = history::truncate(&h, &revs, |r| r.metadata.name == live, 1)
        .await
        .expect("truncating");
    assert_eq!(deleted, 2);
    let left: Vec<i64> = {
        let mut l: Vec<ControllerRevision> = crs
            .list(&Default::default())
            .await
            .expect("listing")
            .items
            .into_iter()
            .filter(|r| {
                r.metadata.labels.as_ref().and_then(|l| l.get("app")) == Some(&"agent".into())
            })
            .collect();
        history::sort(&mut l);
        l.iter().map(|r| r.revision).collect()
    };
    assert_eq!(left, [7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_adopts_orphans_and_releases_strays() {
    let (_api, client, ds) = setup("claim").await;
    let crs: Api<ControllerRevision> = Api::namespaced(client.clone(), "claim");
    let h = History::new(client.clone());
    let orphan: ControllerRevision = obj(json!({
        "metadata": {"name": "orphan", "labels": {"app": "agent"}},
        "data": {"a": 1}, "revision": 1
    }));
    crs.create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let mut stray = history::new_revision(&ds, None, json!({"b": 1}), 2, None);
    stray.metadata.labels = Some([("app".to_string(), "elsewhere".to_string())].into());
    crs.create(&PostParams::default(), &stray)
        .await
        .expect("stray");
    let other: ControllerRevision = obj(json!({
        "metadata": {"name": "others", "labels": {"app": "agent"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x",
                "uid": "not-ours", "controller": true}]},
        "data": {"c": 1}, "revision": 3
    }));
    crs.create(&PostParams::default(), &other)
        .await
        .expect("other's");

    let cancel = CancellationToken::new();
    let informer = Informer::<ControllerRevision>::new(client.clone());
    let (store, ready) = (informer.store(), informer.ready());
    let task = informer.spawn(cancel.clone());
    tokio::time::timeout(Duration::from_secs(10), ready.wait())
        .await
        .expect("cache");
    let selector = Selector::from_label_selector(Some(
        &ds.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default(),
    ))
    .expect("selector");
    assert_eq!(history::list(&store, &ds, &selector).len(), 1);
    let claimed = h.claim(&store, &ds, &selector).await.expect("claiming");
    let names: Vec<_> = claimed
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    assert_eq!(names, ["orphan"]);
    let adopted = crs.get("orphan").await.expect("orphan");
    assert_eq!(
        adopted
            .metadata
            .owner_references
            .as_ref()
            .map(|r| r[0].uid.clone()),
        ds.metadata.uid
    );
    let released = crs
        .get(stray.metadata.name.as_deref().unwrap_or(""))
        .await
        .expect("stray");
    assert!(released
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());
    let untouched = crs.get("others").await.expect("other's");
    assert_eq!(
        untouched
            .metadata
            .owner_references
            .map(|r| r[0].uid.clone()),
        Some("not-ours".into())
    );
    cancel.cancel();
    let _ = task.await;
}
