//! The engine choice behind the embedded store, on figures: durable puts of
//! 1 KiB values at 1, 16 and 256 concurrent writers through the embedded
//! store itself (its own log, group commit, in-memory index) and through
//! redb, an embedded B-tree engine, given the same group commit (one writer
//! thread committing every waiting put in one durable transaction).

use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::Store;
use tokio::sync::oneshot;

use crate::stats::{ms, timed_load};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Concurrent writer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    writers: Vec<usize>,
}

const TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("kv");

type Put = (String, Bytes, oneshot::Sender<anyhow::Result<()>>);

/// redb with group commit: one thread commits every waiting put at once.
fn redb_writer(db: redb::Database, rx: mpsc::Receiver<Put>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 4096 {
                break;
            }
        }
        let result = (|| -> anyhow::Result<()> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                for (k, v, _) in &batch {
                    table.insert(k.as_str(), v.as_ref())?;
                }
            }
            txn.commit()?;
            Ok(())
        })();
        let failed = result.as_ref().err().map(|e| e.to_string());
        for (_, _, tx) in batch {
            let _ = tx.send(match &failed {
                None => Ok(()),
                Some(e) => Err(anyhow::anyhow!("{e}")),
            });
        }
    }
}

#[derive(Clone)]
enum Engine {
    Embedded(Arc<EmbeddedStore>),
    Redb(mpsc::Sender<Put>),
}

impl Engine {
    async fn put(&self, key: String, value: Bytes) -> anyhow::Result<()> {
        match self {
            Engine::Embedded(s) => {
                s.create(&key, value, None).await?;
                Ok(())
            }
            Engine::Redb(tx) => {
                let (done, wait) = oneshot::channel();
                tx.send((key, value, done)).context("redb writer gone")?;
                wait.await.context("redb writer gone")?
            }
        }
    }
}

async fn measure(
    engine: &Engine,
    name: &str,
    writers: usize,
    seconds: f64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let value = Bytes::from(vec![b'v'; 1024]);
    let engine = engine.clone();
    let name = name.to_string();
    timed_load(writers, seconds, move |w, i| {
        let engine = engine.clone();
        let key = format!("/{name}/{writers}/{w}/{i}");
        let value = value.clone();
        async move { engine.put(key, value).await }
    })
    .await
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ferrokube-engines")
        .tempdir()?;
    let embedded =
        EmbeddedStore::open(&dir.path().join("embedded"), EmbeddedOptions::default()).await?;
    let db = redb::Database::create(dir.path().join("redb.db"))?;
    let (tx, rx) = mpsc::channel();
    let writer = std::thread::spawn(move || redb_writer(db, rx));
    let engines = [
        (
            "embedded store (own log)",
            Engine::Embedded(embedded.clone()),
        ),
        ("redb, group commit", Engine::Redb(tx)),
    ];
    println!();
    println!(
        "Engine comparison: durable 1 KiB puts, {} s each",
        opts.seconds
    );
    println!("(cargo run --release -p ferrokube-bench -- engines)");
    println!();
    println!("| engine | writers | puts/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, engine) in &engines {
        for &w in &opts.writers {
            let tag: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
            let (rate, p50, p99) = measure(engine, &tag, w, opts.seconds).await?;
            println!("| {name} | {w} | {rate:.0} | {} | {} |", ms(p50), ms(p99));
        }
    }
    drop(engines);
    let _ = writer.join();
    embedded.close().await;
    Ok(())
}
