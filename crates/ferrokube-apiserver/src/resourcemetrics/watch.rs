//! Watches of NodeMetrics and PodMetrics, as metrics-server's
//! (`pkg/api/watcher.go`): after every scrape round the watcher is sent
//! what changed among the objects it selects: ADDED for one that appeared,
//! MODIFIED for one with a new timestamp, DELETED for one gone. With
//! `sendInitialEvents=true` the objects there are now come first as ADDED,
//! then a BOOKMARK marking the end of the initial events; without it the
//! watch starts from now. The resourceVersion is the round's number. A
//! Table watch (`kubectl get -w`) gets one-row Tables, columns in the
//! first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_metrics::Collector;
use futures::StreamExt;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use super::{objects, objects as objects_of, Resource, Selection};
use crate::encoding;
use crate::options::ListOptions;
use crate::server::Body;
use crate::table::IncludeObject;
use crate::watchcache::{EventType, WatchCache};

/// What a watcher last sent of each object: its timestamp and the object.
type Seen = BTreeMap<String, (Value, Value)>;

/// The events between what was sent and `now`.
fn changes(seen: &Seen, now: &[(String, Value)]) -> Vec<(EventType, Value)> {
    let mut out = Vec::new();
    let current: BTreeMap<&str, &Value> = now.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (key, obj) in now {
        match seen.get(key) {
            None => out.push((EventType::Added, obj.clone())),
            Some((ts, _)) if *ts != obj["timestamp"] => {
                out.push((EventType::Modified, obj.clone()))
            }
            Some(_) => {}
        }
    }
    for (key, (_, obj)) in seen {
        if !current.contains_key(key.as_str()) {
            out.push((EventType::Deleted, obj.clone()));
        }
    }
    out
}

fn remember(now: Vec<(String, Value)>) -> Seen {
    now.into_iter()
        .map(|(k, v)| (k, (v["timestamp"].clone(), v)))
        .collect()
}

/// Starts a watch; the answer streams until the client goes, the
/// timeout, or the server stops.
pub(crate) fn start(
    cache: Arc<WatchCache>,
    collector: Arc<Collector>,
    resource: Resource,
    sel: Selection,
    opts: ListOptions,
    table: Option<IncludeObject>,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or(1800).min(3600));
    let send_initial = opts.send_initial_events.unwrap_or(false);
    tokio::spawn(async move {
        let mut first = true;
        let mut encode = |t: EventType, obj: &Value| -> Bytes {
            let body = match table {
                Some(include) => {
                    let t = objects::table(std::slice::from_ref(obj), include, first);
                    first = false;
                    t
                }
                None => obj.clone(),
            };
            encoding::watch_frame(t, &ferrokube_api::gojson::to_vec(&body))
        };
        let mut snapshots = collector.subscribe();
        let snapshot = snapshots.borrow_and_update().clone();
        let now = objects_of(&cache, &snapshot, resource, &sel);
        if send_initial {
            for (_, obj) in &now {
                if tx
                    .send(Ok(Frame::data(encode(EventType::Added, obj))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let api_version = objects::API_VERSION;
            let rv = snapshot.generation.to_string();
            let mark = encoding::bookmark_frame(resource.kind(), api_version, &rv, true);
            if tx.send(Ok(Frame::data(mark))).await.is_err() {
                return;
            }
        }
        let mut seen = remember(now);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    let now = objects_of(&cache, &snapshot, resource, &sel);
                    for (t, obj) in changes(&seen, &now) {
                        if tx.send(Ok(Frame::data(encode(t, &obj)))).await.is_err() {
                            return;
                        }
                    }
                    seen = remember(now);
                }
            }
        }
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx).map(|r| r));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(BodyExt::boxed(body))
        .unwrap_or_else(|_| {
            Response::new(BodyExt::boxed(
                http_body_util::Empty::new().map_err(|never| match never {}),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_round_gives_added_modified_and_deleted() {
        let obj = |name: &str, ts: &str| {
            (
                name.to_string(),
                json!({"metadata": {"name": name}, "timestamp": ts}),
            )
        };
        let seen = remember(vec![obj("a", "t1"), obj("b", "t1"), obj("c", "t1")]);
        let got = changes(&seen, &[obj("a", "t1"), obj("b", "t2"), obj("d", "t2")]);
        let kinds: Vec<(&str, &str)> = got
            .iter()
            .map(|(t, o)| (t.as_str(), o["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(kinds, [("MODIFIED", "b"), ("ADDED", "d"), ("DELETED", "c")]);
    }
}
