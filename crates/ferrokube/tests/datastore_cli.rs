//! `ferrokube server` and its datastore, as a user sees them from the
//! command line: it opens the embedded store under --data-dir, stops cleanly
//! on SIGTERM, refuses a directory in use or damaged with a clear message,
//! and refuses an unreachable etcd.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server(data_dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--bind-address",
            "127.0.0.1",
            "--disable-agent",
            "--disable",
            "coredns",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrokube")
}

/// Waits (bounded) for the child to exit; returns its status and stderr.
fn wait_exit(mut child: Child, within: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferrokube did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn server_opens_the_embedded_store_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let first = server(dir.path(), &["--https-listen-port", &port.to_string()]);
    wait_for_file(&dir.path().join("db").join("FORMAT"));

    // A second server on the same data dir is refused, clearly.
    let second = server(dir.path(), &["--https-listen-port", &port.to_string()]);
    let (status, err) = wait_exit(second, Duration::from_secs(30));
    assert!(!status.success());
    assert!(err.contains("in use"), "stderr: {err}");

    sigterm(&first);
    let (status, err) = wait_exit(first, Duration::from_secs(30));
    assert!(status.success(), "exit {status}: {err}");
}

#[test]
fn a_damaged_data_dir_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("FORMAT"), "ferrokube-embedded-store v0\n").unwrap();
    std::fs::write(db.join("log"), b"whatever").unwrap();
    let child = server(dir.path(), &["--https-listen-port", "0"]);
    let (status, err) = wait_exit(child, Duration::from_secs(30));
    assert!(!status.success());
    assert!(err.contains("another version"), "stderr: {err}");
    assert_eq!(
        std::fs::read(db.join("log")).unwrap(),
        b"whatever",
        "the data was touched"
    );
}

#[test]
fn an_unreachable_etcd_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let child = server(dir.path(), &["--datastore-endpoint", &endpoint]);
    let (status, err) = wait_exit(child, Duration::from_secs(60));
    assert!(!status.success());
    assert!(err.contains("etcd"), "stderr: {err}");
}
