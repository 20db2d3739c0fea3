//! What users see of scheduling decisions: core/v1 Events (`Scheduled`,
//! `FailedScheduling`) written by a small pool of background writers from a
//! bounded channel (dropped when full, like client-go's broadcaster, so the
//! scheduler never waits on them), and the pod's PodScheduled=False
//! condition.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One event to write about a pod.
#[derive(Debug)]
pub(crate) struct PodEvent {
    pub pod: Arc<Pod>,
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

/// Hands events to the writers.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    tx: mpsc::Sender<PodEvent>,
}

const QUEUE: usize = 10_000;
const WRITERS: usize = 16;

impl Recorder {
    /// Starts the writers; they stop at `cancel` (or when every Recorder is dropped).
    pub(crate) fn start(
        client: kube::Client,
        component: String,
        instance: String,
        cancel: CancellationToken,
    ) -> Recorder {
        let (tx, rx) = mpsc::channel::<PodEvent>(QUEUE);
        tokio::spawn(async move {
            let stream = tokio_stream_from(rx);
            let work = stream.for_each_concurrent(WRITERS, |ev| {
                let client = client.clone();
                let component = component.clone();
                let instance = instance.clone();
                async move {
                    let ns = ev
                        .pod
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into());
                    let api: Api<Event> = Api::namespaced(client, &ns);
                    let e = build_event(&ev, &component, &instance);
                    if let Err(err) = api.create(&PostParams::default(), &e).await {
                        tracing::debug!(error = %err, "writing an event failed");
                    }
                }
            });
            tokio::select! {
                _ = work => {}
                _ = cancel.cancelled() => {}
            }
        });
        Recorder { tx }
    }

    pub(crate) fn record(&self, ev: PodEvent) {
        if self.tx.try_send(ev).is_err() {
            tracing::debug!("event queue full: event dropped");
        }
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<PodEvent>) -> impl futures::Stream<Item = PodEvent> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A core/v1 Event about a pod, as kubectl describe shows it.
pub(crate) fn build_event(ev: &PodEvent, component: &str, instance: &str) -> Event {
    let now = jiff::Timestamp::now();
    let meta = &ev.pod.metadata;
    let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let unique = format!("{:x}", now.as_nanosecond());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{unique}")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(ns),
            name: Some(name),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(ev.reason.into()),
        message: Some(ev.message.clone()),
        type_: Some(if ev.warning { "Warning" } else { "Normal" }.into()),
        action: Some(ev.action.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.into()),
        reporting_instance: Some(instance.into()),
        ..Default::default()
    }
}

/// Sets PodScheduled=False, reason Unschedulable, with `message`, unless the
/// pod already says exactly that.
pub(crate) async fn set_unschedulable(
    client: kube::Client,
    pod: &Pod,
    message: &str,
) -> kube::Result<()> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    if current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(message)
    }) {
        return Ok(());
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let transition = match current {
        Some(c) if c.status == "False" => c
            .last_transition_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_else(|| jiff::Timestamp::now().to_string()),
        _ => jiff::Timestamp::now().to_string(),
    };
    let patch = serde_json::json!({
        "status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }]}
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(|_| ())
}
