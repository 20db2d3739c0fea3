//! The embedded store under real crashes and damage: a writer process killed
//! with SIGKILL at random moments loses no acknowledged write; a damaged or
//! foreign data directory is refused with a clear message and left as it was.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use ferrokube_store::embedded::{EmbeddedOptions, EmbeddedStore};
use ferrokube_store::{RangeRequest, Store, StoreError};

fn value_for(key: &str) -> Bytes {
    Bytes::from(format!("value-of:{key}:{}", "x".repeat(200)))
}

async fn open(dir: &Path) -> Result<std::sync::Arc<EmbeddedStore>, StoreError> {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_total = 0;
    for round in 0..4u32 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
            .arg(dir.path())
            .arg(round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().unwrap();
        let (first_ack, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(key) = line.strip_prefix("ACK ") {
                    if acked.is_empty() {
                        let _ = first_ack.send(());
                    }
                    acked.push(key.to_string());
                }
            }
            acked
        });
        // Once it is writing (a loaded machine may take a while to start
        // it; bounded), let it write for a while, a different while each round.
        let _ = started.recv_timeout(Duration::from_secs(30));
        let ms = 150 + (rand::random::<u64>() % 500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(
            !acked.is_empty(),
            "round {round}: the writer acknowledged nothing"
        );
        acked_total += acked.len();

        let store = open(dir.path())
            .await
            .expect("the store opens after SIGKILL");
        for key in &acked {
            let got = store.get(key, None).await.unwrap().kv;
            assert_eq!(
                got.map(|kv| kv.value),
                Some(value_for(key)),
                "round {round}: acknowledged write {key} lost"
            );
        }
        // Every key present holds the value it was written with.
        let all = store
            .range(RangeRequest {
                prefix: format!("/crash/{round}/"),
                ..Default::default()
            })
            .await
            .unwrap();
        let present: HashSet<_> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert!(present.len() >= acked.len());
        for kv in &all.kvs {
            assert_eq!(kv.value, value_for(&kv.key));
        }
        store.close().await;
    }
    assert!(
        acked_total > 100,
        "too few writes to mean anything: {acked_total}"
    );
}

/// Writes `n` keys and closes the store.
async fn fill(dir: &Path, n: usize) {
    let s = open(dir).await.unwrap();
    for i in 0..n {
        let key = format!("/fill/{i:04}");
        s.create(&key, value_for(&key), None).await.unwrap();
    }
    s.close().await;
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn expect_corrupt(result: Result<std::sync::Arc<EmbeddedStore>, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Corrupt { reason, .. }) => {
            assert!(
                reason.contains(needle),
                "message {reason:?} lacks {needle:?}"
            )
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a damaged directory opened"),
    }
}

#[tokio::test]
async fn damage_in_the_middle_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 50).await;
    let log = dir.path().join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let before = snapshot(dir.path());
    expect_corrupt(open(dir.path()).await, "damaged");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused open changed the directory"
    );
}

#[tokio::test]
async fn torn_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 20).await;
    let log = dir.path().join("log");
    let len = std::fs::metadata(&log).unwrap().len();
    // Cut the last record in half, as a crash mid-append would.
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 50).unwrap();
    drop(f);
    let s = open(dir.path()).await.expect("opens after a torn tail");
    let (n, _) = s.count("/fill/").await.unwrap();
    assert_eq!(n, 19, "every record before the torn one is kept");
    // And the store goes on from there.
    let kv = s
        .create("/fill/new", value_for("/fill/new"), None)
        .await
        .unwrap();
    assert_eq!(kv.mod_revision, 20);
    s.close().await;
    let s = open(dir.path()).await.unwrap();
    assert_eq!(s.count("/fill/").await.unwrap().0, 20);
    s.close().await;
}

#[tokio::test]
async fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 5).await;
    let log = dir.path().join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(&log, &bytes).unwrap();
    let s = open(dir.path()).await.expect("opens");
    assert_eq!(s.count("/fill/").await.unwrap().0, 5);
    s.close().await;
}

#[tokio::test]
async fn foreign_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3).await;
    std::fs::write(dir.path().join("FORMAT"), "ferrokube-embedded-store v9\n").unwrap();
    let before = snapshot(dir.path());
    expect_corrupt(open(dir.path()).await, "another version");
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn a_directory_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "user data").unwrap();
    expect_corrupt(open(dir.path()).await, "not an embedded store");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
        "user data"
    );
}

#[tokio::test]
async fn a_missing_log_is_refused_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3).await;
    std::fs::remove_file(dir.path().join("log")).unwrap();
    expect_corrupt(open(dir.path()).await, "missing");
    assert!(!dir.path().join("log").exists(), "no empty log was made up");
}

#[tokio::test]
async fn two_openers_of_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await.unwrap();
    match open(dir.path()).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("in use"), "{msg}"),
        Err(other) => panic!("expected in-use error, got {other}"),
        Ok(_) => panic!("two stores opened one directory"),
    }
    first.close().await;
    let again = open(dir.path()).await.expect("opens once the first closed");
    again.close().await;
}

#[tokio::test]
async fn compaction_rewrites_the_log_and_keeps_history_after_the_point() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        rewrite_min_bytes: 0,
        ..Default::default()
    };
    let s = EmbeddedStore::open(dir.path(), opts.clone()).await.unwrap();
    let mut kv = s.create("/c/k", value_for("/c/k"), None).await.unwrap();
    for _ in 0..200 {
        kv = s
            .update("/c/k", value_for("/c/k"), kv.mod_revision, None)
            .await
            .unwrap();
    }
    let before = std::fs::metadata(dir.path().join("log")).unwrap().len();
    s.compact(kv.mod_revision - 5).await.unwrap();
    let after = std::fs::metadata(dir.path().join("log")).unwrap().len();
    assert!(
        after * 10 < before,
        "log not rewritten: {before} -> {after} bytes"
    );
    s.close().await;
    let s = EmbeddedStore::open(dir.path(), opts).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), kv.mod_revision - 5);
    assert_eq!(s.current_revision().await.unwrap(), kv.mod_revision);
    let old = s
        .get("/c/k", Some(kv.mod_revision - 3))
        .await
        .unwrap()
        .kv
        .unwrap();
    assert_eq!(old.version, kv.version - 3);
    assert!(matches!(
        s.get("/c/k", Some(kv.mod_revision - 6)).await,
        Err(StoreError::Compacted { .. })
    ));
    s.close().await;
}
