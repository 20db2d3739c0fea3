//! The datastore benchmark: puts/s and latency at 1, 16 and 256 concurrent
//! writers, a range read of 10,000 keys, and watch delivery latency, for the
//! embedded backend, the etcd backend and a raw etcd client on the same etcd,
//! all durable (fsync before acknowledging), measured in one run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use etcd_client::{GetOptions, WatchOptions};
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::etcd::{EtcdOptions, EtcdStore};
use ferrokube_store::testing::EtcdProcess;
use ferrokube_store::{RangeRequest, Store};
use futures::StreamExt;
use parking_lot::Mutex;

use crate::stats::{ms, timed_load, Samples};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Seconds each put measurement runs.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Concurrent writer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    writers: Vec<usize>,
    /// Keys in the range read.
    #[arg(long, default_value_t = 10_000)]
    range_keys: usize,
    /// Writes observed by the watch latency measurement.
    #[arg(long, default_value_t = 2_000)]
    watch_events: usize,
    /// Directory for the data of all three (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// One thing being measured.
#[derive(Clone)]
enum Target {
    Store(Arc<dyn Store>),
    RawEtcd(Box<etcd_client::KvClient>),
}

impl Target {
    async fn put(&self, key: &str, value: Bytes) -> anyhow::Result<()> {
        match self {
            Target::Store(s) => {
                s.create(key, value, None).await?;
            }
            Target::RawEtcd(c) => {
                c.clone().put(key, value.to_vec(), None).await?;
            }
        }
        Ok(())
    }

    async fn range_count(&self, prefix: &str) -> anyhow::Result<usize> {
        match self {
            Target::Store(s) => Ok(s
                .range(RangeRequest {
                    prefix: prefix.to_string(),
                    ..Default::default()
                })
                .await?
                .kvs
                .len()),
            Target::RawEtcd(c) => Ok(c
                .clone()
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await?
                .kvs()
                .len()),
        }
    }
}

struct Row {
    name: &'static str,
    puts: Vec<(usize, f64, Duration, Duration)>,
    range_ms: Duration,
    watch: (Duration, Duration),
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let tmp = match &opts.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("ferrokube-bench")
            .tempdir_in(d)?,
        None => tempfile::Builder::new()
            .prefix("ferrokube-bench")
            .tempdir()?,
    };
    let etcd = EtcdProcess::start_in(tmp.path()).context("starting etcd")?;
    let endpoint = etcd.endpoint();
    eprintln!(
        "etcd {} at {endpoint}; data under {}",
        etcd.version(),
        tmp.path().display()
    );

    let embedded = EmbeddedStore::open(&tmp.path().join("embedded"), EmbeddedOptions::default())
        .await
        .context("opening the embedded store")?;
    let etcd_store = EtcdStore::connect(std::slice::from_ref(&endpoint), EtcdOptions::default())
        .await
        .context("connecting the etcd backend")?;
    let raw = etcd_client::Client::connect([endpoint.as_str()], None)
        .await?
        .kv_client()
        .max_decoding_message_size(1 << 30);
    let raw = Box::new(raw);

    let targets: Vec<(&'static str, &'static str, Target)> = vec![
        (
            "embedded",
            "/bench-embedded",
            Target::Store(embedded.clone()),
        ),
        (
            "etcd backend",
            "/bench-backend",
            Target::Store(Arc::new(etcd_store)),
        ),
        ("etcd (raw client)", "/bench-raw", Target::RawEtcd(raw)),
    ];

    let mut rows = Vec::new();
    for (name, prefix, target) in &targets {
        eprintln!("measuring {name} ...");
        let mut puts = Vec::new();
        for &w in &opts.writers {
            let (rate, p50, p99) =
                measure_puts(target, &format!("{prefix}/puts/{w}"), w, opts.seconds).await?;
            puts.push((w, rate, p50, p99));
        }
        let range_ms = measure_range(target, &format!("{prefix}/range/"), opts.range_keys).await?;
        let watch = measure_watch(
            target,
            &format!("{prefix}/watch/"),
            opts.watch_events,
            endpoint.as_str(),
        )
        .await?;
        rows.push(Row {
            name,
            puts,
            range_ms,
            watch,
        });
    }
    embedded.close().await;
    print_table(&opts, &rows);
    Ok(())
}

async fn measure_puts(
    target: &Target,
    prefix: &str,
    writers: usize,
    seconds: f64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let value = Bytes::from(vec![b'v'; 1024]);
    let target = target.clone();
    let prefix = prefix.to_string();
    timed_load(writers, seconds, move |w, i| {
        let target = target.clone();
        let key = format!("{prefix}/{w}/{i}");
        let value = value.clone();
        async move { target.put(&key, value).await }
    })
    .await
}

/// Loads `keys` 1 KiB keys, then reads them all in one range, 10 times;
/// returns the median.
async fn measure_range(target: &Target, prefix: &str, keys: usize) -> anyhow::Result<Duration> {
    let value = Bytes::from(vec![b'r'; 1024]);
    let loaders = 64;
    let mut tasks = Vec::new();
    for l in 0..loaders {
        let target = target.clone();
        let value = value.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (l..keys).step_by(loaders) {
                target
                    .put(&format!("{prefix}{i:06}"), value.clone())
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut samples = Samples::default();
    for _ in 0..10 {
        let t = Instant::now();
        let n = target.range_count(prefix).await?;
        samples.push(t.elapsed());
        anyhow::ensure!(n == keys, "range returned {n} keys, expected {keys}");
    }
    Ok(samples.quantile(0.5))
}

/// Writes `events` keys from 16 writers while one watcher receives them;
/// latency is from the start of each write to its delivery to the watcher.
async fn measure_watch(
    target: &Target,
    prefix: &str,
    events: usize,
    endpoint: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watcher = match target {
        Target::Store(s) => {
            let mut w = s.watch(prefix, 0).await?;
            tokio::spawn(async move {
                while let Some(Ok(ev)) = w.next().await {
                    if tx.send((ev.kv.key, Instant::now())).is_err() {
                        break;
                    }
                }
            })
        }
        Target::RawEtcd(_) => {
            let mut c = etcd_client::Client::connect([endpoint], None).await?;
            let mut stream = c
                .watch(prefix, Some(WatchOptions::new().with_prefix()))
                .await?;
            tokio::spawn(async move {
                while let Ok(Some(resp)) = stream.message().await {
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        if tx.send((key, Instant::now())).is_err() {
                            return;
                        }
                    }
                }
            })
        }
    };
    let value = Bytes::from(vec![b'w'; 1024]);
    let writers = 16;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let target = target.clone();
        let value = value.clone();
        let prefix = prefix.to_string();
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..events).step_by(writers) {
                let key = format!("{prefix}{i:06}");
                started.lock().insert(key.clone(), Instant::now());
                target.put(&key, value.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut samples = Samples::with_capacity(events);
    let deadline = Instant::now() + Duration::from_secs(120);
    while samples.len() < events {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((key, at))) = tokio::time::timeout(left, rx.recv()).await else {
            anyhow::bail!(
                "watch delivered {} of {events} events in time",
                samples.len()
            );
        };
        let Some(t0) = started.lock().remove(&key) else {
            anyhow::bail!("watch delivered an unexpected key {key}");
        };
        samples.push(at.saturating_duration_since(t0));
    }
    for t in tasks {
        t.await??;
    }
    watcher.abort();
    Ok((samples.quantile(0.5), samples.quantile(0.99)))
}

fn print_table(opts: &Options, rows: &[Row]) {
    println!();
    println!(
        "Datastore benchmark: 1 KiB values, durable writes, {} s per put measurement",
        opts.seconds
    );
    println!("(cargo run --release -p ferrokube-bench -- store)");
    println!();
    print!("| store |");
    for w in &opts.writers {
        print!(" puts/s @{w} | p50 ms @{w} | p99 ms @{w} |");
    }
    println!(
        " range {} keys, median ms | watch p50 ms | watch p99 ms |",
        opts.range_keys
    );
    print!("|---|");
    for _ in &opts.writers {
        print!("---:|---:|---:|");
    }
    println!("---:|---:|---:|");
    for r in rows {
        print!("| {} |", r.name);
        for (_, rate, p50, p99) in &r.puts {
            print!(" {rate:.0} | {} | {} |", ms(*p50), ms(*p99));
        }
        println!(
            " {} | {} | {} |",
            ms(r.range_ms),
            ms(r.watch.0),
            ms(r.watch.1)
        );
    }
    if let (Some(emb), Some(raw)) = (rows.first(), rows.last()) {
        println!();
        for ((w, e, _, _), (_, r, _, _)) in emb.puts.iter().zip(&raw.puts) {
            println!("embedded / raw etcd puts/s at {w} writers: {:.2}x", e / r);
        }
    }
}
