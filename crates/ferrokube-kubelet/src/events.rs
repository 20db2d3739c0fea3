//! Core v1 Events about pods, as the kubelet writes them (source component
//! `kubelet`, the container as `fieldPath`), with repeats of the same event folded
//! into one object whose `count` and `lastTimestamp` grow. Best effort: a failed
//! write is logged, never fatal.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;

/// (pod uid, fieldPath, reason, message): what makes two events the same.
type EventKey = (String, String, String, String);

/// Writes pod events for one node.
pub(crate) struct Recorder {
    client: kube::Client,
    node: String,
    /// (pod uid, fieldPath, reason, message) → (event name, count).
    seen: Mutex<HashMap<EventKey, (String, i32)>>,
}

impl Recorder {
    pub(crate) fn new(client: kube::Client, node: String) -> Self {
        Recorder {
            client,
            node,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `reason`/`message` for `pod` (and `container`, if given). Warning if
    /// `warning`.
    pub(crate) async fn pod_event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let field_path = container.map(|c| {
            let init = pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .is_some_and(|ics| ics.iter().any(|i| i.name == c));
            if init {
                format!("spec.initContainers{{{c}}}")
            } else {
                format!("spec.containers{{{c}}}")
            }
        });
        let key = (
            uid.clone(),
            field_path.clone().unwrap_or_default(),
            reason.to_string(),
            message.clone(),
        );
        let now = Time(jiff::Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let existing = self.seen.lock().get(&key).cloned();
        if let Some((ev_name, count)) = existing {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&ev_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.seen.lock().insert(key, (ev_name, count + 1));
                return;
            }
        }
        let ev_name = format!("{name}.{:x}", jiff::Timestamp::now().as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(ev_name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name),
                namespace: Some(ns),
                uid: Some(uid),
                field_path,
                resource_version: pod.metadata.resource_version.clone(),
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                let mut seen = self.seen.lock();
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, (ev_name, 1));
            }
            Err(e) => tracing::debug!("writing event {reason}: {e}"),
        }
    }

    /// Forgets a pod's folded events (after it is gone).
    pub(crate) fn forget(&self, uid: &str) {
        self.seen.lock().retain(|k, _| k.0 != uid);
    }
}
