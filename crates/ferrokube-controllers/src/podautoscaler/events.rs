//! The HPA controller's Events, correlated as client-go's recorder does:
//! an Event like one recorded before (same object, type, reason, message)
//! bumps that Event's `count` and `lastTimestamp` instead of adding
//! another, so `kubectl describe hpa` shows `(x12 over 3m)`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as Hpa;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::metrics::lock;

/// The Events' source component (Kubernetes').
pub(crate) const COMPONENT: &str = "horizontal-pod-autoscaler";

/// How many distinct Events are remembered (client-go's LRU size).
const MAX_REMEMBERED: usize = 4096;

/// (namespace, object uid, type, reason, message)
type EventKey = (String, String, String, String, String);

/// Writes Events, correlating repeats.
#[derive(Clone)]
pub(crate) struct Recorder {
    client: kube::Client,
    seen: Arc<Mutex<HashMap<EventKey, (String, i32)>>>,
}

impl Recorder {
    /// Writes with `client` (the controller's).
    pub(crate) fn new(client: kube::Client) -> Self {
        Recorder {
            client,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records an Event about `hpa` in the background (a failure is only
    /// logged).
    pub(crate) fn record(&self, hpa: &Hpa, type_: &str, reason: &str, message: String) {
        let ns = hpa
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let key: EventKey = (
            ns.clone(),
            hpa.metadata.uid.clone().unwrap_or_else(|| name.clone()),
            type_.to_string(),
            reason.to_string(),
            message.clone(),
        );
        let now = Timestamp::now();
        let repeat = {
            let mut seen = lock(&self.seen);
            if seen.len() > MAX_REMEMBERED {
                seen.clear();
            }
            match seen.get_mut(&key) {
                Some((event, count)) => {
                    *count += 1;
                    Some((event.clone(), *count))
                }
                None => None,
            }
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let event = crate::podutil::new_event(COMPONENT, hpa, type_, reason, message, now);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            if let Some((existing, count)) = &repeat {
                let patch = serde_json::json!({"count": count, "lastTimestamp": Time(now)});
                match api
                    .patch(existing, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(error = %e, "updating an event; writing a new one"),
                }
            }
            let event_name = event.metadata.name.clone().unwrap_or_default();
            match api.create(&PostParams::default(), &event).await {
                Ok(_) => {
                    lock(&seen).insert(key, (event_name, 1));
                }
                Err(e) => tracing::debug!(error = %e, "writing an event"),
            }
        });
    }
}
