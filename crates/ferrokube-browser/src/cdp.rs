//! The protocol's transport: one WebSocket to the browser, commands sent
//! with ids and their results matched back, events handed to subscribers.
//! Page commands go over the same socket with a `sessionId` (flat mode of
//! `Target.attachToTarget`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::Error;

/// An event the browser sent: its method (`Network.requestWillBeSent`), its
/// parameters, and the session (page) it belongs to, if any.
#[derive(Clone, Debug)]
pub struct Event {
    /// The event's name, `Domain.event`.
    pub method: String,
    /// Its parameters.
    pub params: Value,
    /// The page session it came from (none for the browser's own events).
    pub session_id: Option<String>,
}

/// A function that sees every event as it is read, before any command's
/// result that the browser sent after it (the network log and the console
/// are kept this way, so that they are complete up to any answer).
pub(crate) type Sink = Box<dyn Fn(&Event) + Send + Sync>;

struct Subscriber {
    session: Option<String>,
    /// An exact method, or a domain prefix ending in `.`.
    method: String,
    tx: mpsc::UnboundedSender<Event>,
}

impl Subscriber {
    fn wants(&self, e: &Event) -> bool {
        let method = if self.method.ends_with('.') {
            e.method.starts_with(&self.method)
        } else {
            e.method == self.method
        };
        method && (self.session.is_none() || self.session == e.session_id)
    }
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, Error>>>;

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    subscribers: Mutex<Vec<Subscriber>>,
    sinks: Mutex<Vec<Sink>>,
    closed: AtomicBool,
}

/// A connection to the browser's DevTools WebSocket.
pub(crate) struct Connection {
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// The biggest message accepted: a full-page screenshot in base64 is a few
/// MiB; big evaluate results more.
const MAX_MESSAGE: usize = 256 << 20;

impl Connection {
    /// Speaks to `ws://127.0.0.1:<port><path>` over `tcp` (connected there).
    pub(crate) async fn connect(
        tcp: TcpStream,
        port: u16,
        path: &str,
    ) -> Result<Connection, Error> {
        tcp.set_nodelay(true)?;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE);
        config.max_frame_size = Some(MAX_MESSAGE);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config))
            .await
            .map_err(|e| Error::Launch(format!("DevTools WebSocket handshake at {url}: {e}")))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let shared = Arc::new(Shared::default());
        let reader_shared = shared.clone();
        let reader = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(text)) => reader_shared.dispatch(text.as_str()),
                    Ok(Message::Binary(b)) => {
                        reader_shared.dispatch(&String::from_utf8_lossy(&b));
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            reader_shared.close();
        });
        Ok(Connection {
            out,
            shared,
            next_id: AtomicU64::new(1),
            reader,
            writer,
        })
    }

    /// Sends `method` with `params` (to a page when `session` is given) and
    /// waits up to `timeout` for its result.
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s.to_string());
        }
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().insert(id, tx);
        if self.out.send(Message::text(msg.to_string())).is_err() {
            self.shared.pending.lock().remove(&id);
            return Err(Error::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result.map_err(|e| match e {
                Error::Protocol { message, .. } => Error::Protocol {
                    method: method.to_string(),
                    message,
                },
                other => other,
            }),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                self.shared.pending.lock().remove(&id);
                Err(Error::Timeout(format!(
                    "{method}: no answer within {timeout:?}"
                )))
            }
        }
    }

    /// Events named `method` (or, ending in `.`, of that domain) from
    /// `session` (any, if none), from now on.
    pub(crate) fn subscribe(
        &self,
        session: Option<&str>,
        method: &str,
    ) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.subscribers.lock().push(Subscriber {
            session: session.map(str::to_string),
            method: method.to_string(),
            tx,
        });
        rx
    }

    /// Adds a function that sees every event as it is read.
    pub(crate) fn add_sink(&self, sink: Sink) {
        self.shared.sinks.lock().push(sink);
    }

    /// Whether the browser closed the connection.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl Shared {
    fn dispatch(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            tracing::debug!("DevTools sent something that is not JSON");
            return;
        };
        if let Some(id) = v.get("id").and_then(Value::as_u64) {
            let Some(tx) = self.pending.lock().remove(&id) else {
                return;
            };
            let result = match v.get("error") {
                Some(e) => Err(Error::Protocol {
                    method: String::new(),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("an error without a message")
                        .to_string()
                        + &e.get("data")
                            .and_then(Value::as_str)
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default(),
                }),
                None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(result);
            return;
        }
        let Some(method) = v.get("method").and_then(Value::as_str) else {
            return;
        };
        let event = Event {
            method: method.to_string(),
            params: v.get("params").cloned().unwrap_or(Value::Null),
            session_id: v
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        for sink in self.sinks.lock().iter() {
            sink(&event);
        }
        self.subscribers.lock().retain(|s| {
            if s.tx.is_closed() {
                return false;
            }
            if s.wants(&event) {
                let _ = s.tx.send(event.clone());
            }
            true
        });
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for (_, tx) in self.pending.lock().drain() {
            let _ = tx.send(Err(Error::Closed));
        }
        self.subscribers.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(method: &str, session: Option<&str>) -> Event {
        Event {
            method: method.into(),
            params: Value::Null,
            session_id: session.map(str::to_string),
        }
    }

    #[test]
    fn subscribers_match_method_domain_and_session() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let s = Subscriber {
            session: Some("A".into()),
            method: "Network.".into(),
            tx,
        };
        assert!(s.wants(&event("Network.requestWillBeSent", Some("A"))));
        assert!(!s.wants(&event("Network.requestWillBeSent", Some("B"))));
        assert!(!s.wants(&event("Page.loadEventFired", Some("A"))));
        let (tx, _rx) = mpsc::unbounded_channel();
        let exact = Subscriber {
            session: None,
            method: "Page.loadEventFired".into(),
            tx,
        };
        assert!(exact.wants(&event("Page.loadEventFired", Some("X"))));
        assert!(!exact.wants(&event("Page.loadEventFiredLater", None)));
    }

    #[tokio::test]
    async fn results_errors_and_events_are_dispatched() {
        let shared = Shared::default();
        let (tx, rx) = oneshot::channel();
        shared.pending.lock().insert(7, tx);
        let (etx, mut erx) = oneshot_events();
        shared.subscribers.lock().push(Subscriber {
            session: None,
            method: "Runtime.".into(),
            tx: etx,
        });
        let seen = Arc::new(Mutex::new(0));
        let counter = seen.clone();
        shared
            .sinks
            .lock()
            .push(Box::new(move |_e: &Event| *counter.lock() += 1));
        shared.dispatch("not json");
        shared.dispatch(
            r#"{"method":"Runtime.consoleAPICalled","params":{"type":"log"},"sessionId":"S"}"#,
        );
        shared.dispatch(r#"{"id":7,"error":{"code":-32000,"message":"No node","data":"x"}}"#);
        // An answer nobody waits for (timed out) is dropped.
        shared.dispatch(r#"{"id":8,"result":{}}"#);
        match rx.await.expect("an answer") {
            Err(Error::Protocol { message, .. }) => assert_eq!(message, "No node (x)"),
            other => panic!("{other:?}"),
        }
        let e = erx.recv().await.expect("an event");
        assert_eq!(e.method, "Runtime.consoleAPICalled");
        assert_eq!(e.session_id.as_deref(), Some("S"));
        assert_eq!(*seen.lock(), 1);
        let (tx, rx) = oneshot::channel();
        shared.pending.lock().insert(9, tx);
        shared.close();
        assert!(matches!(rx.await, Ok(Err(Error::Closed))));
    }

    fn oneshot_events() -> (mpsc::UnboundedSender<Event>, mpsc::UnboundedReceiver<Event>) {
        mpsc::unbounded_channel()
    }
}
