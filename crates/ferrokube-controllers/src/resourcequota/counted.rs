//! Replenishment for the `count/<resource>.<group>` resources no shared
//! informer watches (custom resources, and kinds no controller follows):
//! while a quota counts one and the server's discovery lists it, a
//! metadata watch of it recounts the quotas of the namespace an object
//! leaves, as Kubernetes' quota monitors do. The set follows the quotas at
//! once and discovery every 30 seconds (Kubernetes' quota controller
//! resyncs its monitors as often): a resource that appears is watched, one
//! whose discovery vanished is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::Api;
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::discovery::{verbs, Discovery};
use kube::runtime::{watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

use ferrokube_api::quota as q;

use super::{hard_of, QuotaController};

/// How often discovery is read again while some resource is followed.
const REDISCOVER: Duration = Duration::from_secs(30);
/// How often the quotas are looked at for resources to follow.
const CHECK: Duration = Duration::from_secs(1);

/// `(group, resource)`.
pub(super) type GroupResource = (String, String);

/// The resources `quotas` count by `count/` name that `covered` (the
/// informers) does not.
pub(super) fn wanted(
    quotas: &[Arc<ResourceQuota>],
    covered: impl Fn(&str, &str) -> bool,
) -> BTreeSet<GroupResource> {
    quotas
        .iter()
        .flat_map(|quota| hard_of(quota).into_keys())
        .filter_map(|name| q::parse_object_count_name(&name))
        .filter(|(g, r)| !covered(g, r) && !q::ignored(g, r))
        .collect()
}

/// Which followed resources to stop (gone from `resolved`, or served in
/// another preferred version now) and which to start.
pub(super) fn plan(
    current: &BTreeMap<GroupResource, ApiResource>,
    resolved: &BTreeMap<GroupResource, ApiResource>,
) -> (Vec<GroupResource>, Vec<GroupResource>) {
    let same = |a: &ApiResource, b: &ApiResource| a.api_version == b.api_version;
    let stop = current
        .iter()
        .filter(|(gr, ar)| !resolved.get(*gr).is_some_and(|r| same(ar, r)))
        .map(|(gr, _)| gr.clone())
        .collect();
    let start = resolved
        .iter()
        .filter(|(gr, ar)| !current.get(*gr).is_some_and(|c| same(c, ar)))
        .map(|(gr, _)| gr.clone())
        .collect();
    (stop, start)
}

/// The preferred version of each of `wanted` that discovery lists as
/// listable and watchable; `None` when discovery does not answer.
async fn resolve(
    client: &kube::Client,
    wanted: &BTreeSet<GroupResource>,
) -> Option<BTreeMap<GroupResource, ApiResource>> {
    if wanted.is_empty() {
        return Some(BTreeMap::new());
    }
    let groups: BTreeSet<&str> = wanted.iter().map(|(g, _)| g.as_str()).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let discovery = match Discovery::new(client.clone()).filter(&groups).run().await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "resource quota: discovery failed");
            return None;
        }
    };
    let mut out = BTreeMap::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let gr = (ar.group.clone(), ar.plural.clone());
            if wanted.contains(&gr)
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::WATCH)
            {
                out.insert(gr, ar);
            }
        }
    }
    Some(out)
}

/// One followed resource.
struct Followed {
    ar: ApiResource,
    stop: CancellationToken,
}

/// Follows the quotas and discovery until the controller stops.
pub(super) async fn follow(ctrl: Arc<QuotaController>, client: kube::Client) {
    let cancel = ctrl.ctx.cancel().clone();
    let mut followed: BTreeMap<GroupResource, Followed> = BTreeMap::new();
    let mut last = BTreeSet::new();
    let mut due = Instant::now();
    loop {
        let now = wanted(&ctrl.quotas.state(), |g, r| {
            ctrl.kinds.contains_key(&(g, r))
        });
        if now != last || Instant::now() >= due {
            due = Instant::now() + REDISCOVER;
            if let Some(resolved) = resolve(&client, &now).await {
                last = now;
                let current = followed
                    .iter()
                    .map(|(gr, f)| (gr.clone(), f.ar.clone()))
                    .collect();
                let (stop, start) = plan(&current, &resolved);
                for gr in stop {
                    if let Some(f) = followed.remove(&gr) {
                        f.stop.cancel();
                    }
                }
                for gr in start {
                    let Some(ar) = resolved.get(&gr) else {
                        continue;
                    };
                    let stop = cancel.child_token();
                    watch(ctrl.clone(), client.clone(), gr.clone(), ar, stop.clone());
                    followed.insert(
                        gr,
                        Followed {
                            ar: ar.clone(),
                            stop,
                        },
                    );
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK) => {}
        }
    }
}

/// Watches the metadata of `ar` until `stop`: a deletion recounts the
/// quotas of its namespace, a (re)list every quota counting it (deletions
/// may have been missed).
fn watch(
    ctrl: Arc<QuotaController>,
    client: kube::Client,
    (group, resource): GroupResource,
    ar: &ApiResource,
    stop: CancellationToken,
) {
    // Metadata only: a deletion is all that matters.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, ar);
    tracing::debug!(%group, %resource, "resource quota: following deletions");
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = stream.next() => e,
            };
            match event {
                None => return,
                Some(Ok(watcher::Event::Delete(obj))) => {
                    ctrl.replenish(obj.metadata.namespace.as_deref(), &group, &resource);
                }
                Some(Ok(watcher::Event::InitDone)) => ctrl.replenish_everywhere(&group, &resource),
                Some(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;
    use serde_json::json;

    fn quota(hard: serde_json::Value) -> Arc<ResourceQuota> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "q", "namespace": "a"}, "spec": {"hard": hard}}),
            )
            .unwrap(),
        )
    }

    fn ar(version: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", version, "Widget"),
            "widgets",
        )
    }

    fn gr(g: &str, r: &str) -> GroupResource {
        (g.to_string(), r.to_string())
    }

    #[test]
    fn follows_count_names_no_informer_covers() {
        let quotas = [
            quota(json!({"count/widgets.example.com": "5", "pods": "3", "count/configmaps": "2"})),
            quota(json!({"count/events": "9", "count/gadgets.example.com": "1"})),
        ];
        let covered = |g: &str, r: &str| g.is_empty() && r == "configmaps";
        assert_eq!(
            wanted(&quotas, covered),
            BTreeSet::from([gr("example.com", "gadgets"), gr("example.com", "widgets")])
        );
    }

    #[test]
    fn resources_are_started_when_listed_and_stopped_when_gone() {
        let none = BTreeMap::new();
        let v1 = BTreeMap::from([(gr("example.com", "widgets"), ar("v1"))]);
        let v2 = BTreeMap::from([(gr("example.com", "widgets"), ar("v2"))]);
        assert_eq!(
            plan(&none, &v1),
            (vec![], vec![gr("example.com", "widgets")])
        );
        assert_eq!(plan(&v1, &v1), (vec![], vec![]));
        // Gone from discovery: stopped.
        assert_eq!(
            plan(&v1, &none),
            (vec![gr("example.com", "widgets")], vec![])
        );
        // Another preferred version: followed there instead.
        assert_eq!(
            plan(&v1, &v2),
            (
                vec![gr("example.com", "widgets")],
                vec![gr("example.com", "widgets")]
            )
        );
    }
}
