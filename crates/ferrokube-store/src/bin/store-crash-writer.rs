//! Test helper for the embedded store's crash test: writes keys as fast as
//! it can from many tasks and prints `ACK <key>` for each write the store
//! acknowledged, until it is killed. Built only with the `testing` feature.
//!
//! Usage: store-crash-writer DIR ROUND

use std::io::Write;

use bytes::Bytes;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;

const WRITERS: usize = 32;

/// The value written to a key: derived from it, so the checker knows it.
pub fn value_for(key: &str) -> Bytes {
    Bytes::from(format!("value-of:{key}:{}", "x".repeat(200)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(round)) = (args.next(), args.next()) else {
        eprintln!("usage: store-crash-writer DIR ROUND");
        std::process::exit(2);
    };
    let store =
        match EmbeddedStore::open(std::path::Path::new(&dir), EmbeddedOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("open failed: {e}");
                std::process::exit(1);
            }
        };
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let out = out.clone();
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let key = format!("/crash/{round}/{w}/{i}");
                if store.create(&key, value_for(&key), None).await.is_err() {
                    return;
                }
                if let Ok(mut o) = out.lock() {
                    let _ = writeln!(o, "ACK {key}");
                    let _ = o.flush();
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
