//! Watchers of the embedded store: woken in process by the writer the moment
//! a batch is durable.
//!
//! A watch first replays the history it asked for (taken under the state
//! lock together with its subscription, so nothing falls between), then
//! receives live events through a bounded channel. A watcher that lets its
//! channel fill up is cut off with an error item, never silently skipped:
//! it re-watches from its last revision + 1 and is served from history.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::types::{WatchEvent, WatchStream};
use crate::{Result, StoreError};

struct Entry {
    prefix: String,
    tx: mpsc::Sender<Arc<WatchEvent>>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Default)]
pub(super) struct Watchers {
    entries: Vec<Entry>,
}

impl Watchers {
    pub(super) fn subscribe(
        &mut self,
        prefix: String,
        replay: Vec<Arc<WatchEvent>>,
        buffer: usize,
    ) -> WatchStream {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let lagged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.entries.push(Entry {
            prefix,
            tx,
            lagged: lagged.clone(),
        });
        Box::pin(EmbeddedWatch {
            replay: replay.into(),
            rx,
            lagged,
            ended: false,
        })
    }

    /// Hands committed events to every watcher whose prefix they match.
    pub(super) fn publish(&mut self, events: &[Arc<WatchEvent>]) {
        self.entries.retain(|w| {
            for ev in events {
                if !ev.kv.key.starts_with(&w.prefix) {
                    continue;
                }
                match w.tx.try_send(ev.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        w.lagged.store(true, std::sync::atomic::Ordering::Release);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }

    /// Ends every watch (the store is closing).
    pub(super) fn close_all(&mut self) {
        self.entries.clear();
    }
}

struct EmbeddedWatch {
    replay: VecDeque<Arc<WatchEvent>>,
    rx: mpsc::Receiver<Arc<WatchEvent>>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
    ended: bool,
}

impl Stream for EmbeddedWatch {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(ev) = self.replay.pop_front() {
            return Poll::Ready(Some(Ok((*ev).clone())));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => Poll::Ready(Some(Ok((*ev).clone()))),
            Poll::Ready(None) => {
                self.ended = true;
                if self.lagged.load(std::sync::atomic::Ordering::Acquire) {
                    Poll::Ready(Some(Err(StoreError::Unavailable(
                        "watcher fell behind; watch again from the last revision received".into(),
                    ))))
                } else {
                    Poll::Ready(None)
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
