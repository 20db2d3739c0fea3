//! Claiming pods for an owner, as Kubernetes' `PodControllerRefManager`
//! does: the owner keeps the pods it controls that still match its
//! selector (and a controller-specific filter), adopts matching orphans
//! (after a fresh read shows the owner is still the same object and not
//! being deleted), and releases the pods it controls that stopped matching.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::podutil::{self, Selector};

/// The pods `owner` controls after claiming among `pods` (active pods of its
/// namespace): those that match `selector` and `filter`.
pub(crate) async fn claim_pods<K>(
    client: &kube::Client,
    owner: &K,
    selector: &Selector,
    pods: Vec<Arc<Pod>>,
    filter: impl Fn(&Pod) -> bool,
) -> Vec<Arc<Pod>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut claimed = Vec::new();
    let mut can_adopt: Option<bool> = None;
    for p in pods {
        let matches = selector.matches(p.metadata.labels.as_ref()) && filter(&p);
        match podutil::controller_ref(&p.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    claimed.push(p);
                } else if !deleting {
                    release(&api, &p, &uid).await;
                }
            }
            Some(_) => {}
            None => {
                if !matches || deleting || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                if can_adopt.is_none() {
                    can_adopt = Some(recheck_owner(client, owner).await);
                }
                if can_adopt != Some(true) {
                    continue;
                }
                if let Some(adopted) = adopt(&api, &p, owner).await {
                    claimed.push(Arc::new(adopted));
                }
            }
        }
    }
    claimed
}

/// Before adopting, a fresh read: the owner must still be the same object
/// and not being deleted.
async fn recheck_owner<K>(client: &kube::Client, owner: &K) -> bool
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(
        client.clone(),
        owner.meta().namespace.as_deref().unwrap_or(""),
    );
    match api.get(owner.meta().name.as_deref().unwrap_or("")).await {
        Ok(fresh) => {
            fresh.meta().uid == owner.meta().uid && fresh.meta().deletion_timestamp.is_none()
        }
        Err(_) => false,
    }
}

async fn adopt<K: Resource<DynamicType = ()>>(api: &Api<Pod>, p: &Pod, owner: &K) -> Option<Pod> {
    let mut refs = p.metadata.owner_references.clone().unwrap_or_default();
    refs.push(podutil::owner_ref_to(owner));
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": p.metadata.resource_version,
    }});
    let name = p.metadata.name.as_deref().unwrap_or("");
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(pod) => Some(pod),
        Err(e) => {
            tracing::debug!(pod = %name, error = %e, "adopting");
            None
        }
    }
}

async fn release(api: &Api<Pod>, p: &Pod, uid: &str) {
    let refs: Vec<_> = p
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != uid)
        .cloned()
        .collect();
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        json!(refs)
    };
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": p.metadata.resource_version,
    }});
    let name = p.metadata.name.as_deref().unwrap_or("");
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(pod = %name, error = %e, "releasing");
    }
}
