//! `ferrokube dashboard url` and `ferrokube server --disable dashboard` from
//! the command line: the link's one-time code logs in as the kubeconfig's
//! user (by default the server's admin kubeconfig in --data-dir), and a
//! server started without the dashboard serves none of it.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `ferrokube server` (no node), stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// curl `url` trusting the cluster CA of `data_dir`: status and body.
fn curl(data_dir: &Path, url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(data_dir.join("tls/ca.crt"))
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn server(data_dir: &Path, disable: &str) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--bind-address", "127.0.0.1", "--disable-agent"])
        .args(["--https-listen-port", &port.to_string()])
        .args(["--disable", disable])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Server {
        child,
        base: format!("https://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = data_dir.join("kubeconfig.yaml").exists()
            && curl(data_dir, &format!("{}/readyz", s.base), &[]).0 == 200;
        if ready {
            return s;
        }
        assert!(Instant::now() < deadline, "the server never got ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn dashboard_url(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args(["dashboard", "url"])
        .args(args)
        .env_remove("FERROKUBE_DATA_DIR")
        .output()
        .unwrap()
}

#[test]
fn the_printed_link_logs_in_once_as_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "coredns");
    let out = dashboard_url(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{}/dashboard/#code=", s.base);
    let code = line
        .trim()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} is not {prefix}<code>"));
    assert_eq!(code.len(), 43, "{code}");
    let body = format!("{{\"code\":\"{code}\"}}");
    let url = format!("{}/dashboard/session", s.base);
    let (status, answer) = curl(dir.path(), &url, &["-X", "POST", "--data-binary", &body]);
    assert_eq!(status, 201, "{answer}");
    let who: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(who["username"], "system:admin");
    let (again, _) = curl(dir.path(), &url, &["-X", "POST", "--data-binary", &body]);
    assert_eq!(again, 401, "a code is good once");

    // An explicit kubeconfig does the same.
    let kc = dir.path().join("kubeconfig.yaml");
    let out = dashboard_url(&["--kubeconfig", kc.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().starts_with(&prefix));
}

#[test]
fn a_server_started_with_disable_dashboard_serves_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "coredns,dashboard");
    assert_eq!(
        curl(dir.path(), &format!("{}/dashboard/", s.base), &[]).0,
        404
    );
    let (status, _) = curl(
        dir.path(),
        &format!("{}/dashboard/session", s.base),
        &["-X", "POST", "--data-binary", "{}"],
    );
    assert_eq!(status, 404);
    let out = dashboard_url(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not serve the dashboard"), "{err}");
}
