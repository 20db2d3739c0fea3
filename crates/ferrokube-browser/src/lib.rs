//! A small Chrome DevTools Protocol client for the dashboard's browser tests
//! and benchmark: it launches Debian's `chromium` headless with a profile of
//! its own, connects to its DevTools WebSocket and drives a page (navigate,
//! evaluate, wait, click, type, keys, files, screenshots), keeping a log of
//! the page's network requests and console, and reading its memory.
//!
//! ```no_run
//! # async fn f() -> Result<(), ferrokube_browser::Error> {
//! use std::time::Duration;
//! let browser = ferrokube_browser::Browser::launch(Default::default()).await?;
//! let page = browser.page().await?;
//! page.navigate("data:text/html,<p id=x>hi</p>").await?;
//! page.wait_until("the paragraph", "document.querySelector('#x') !== null", Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! Dropping the [`Browser`] kills chromium (its process group and every
//! process under it, by pid) and removes its profile.

mod cdp;
mod netns;
mod page;
pub mod proc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use cdp::Event;
pub use page::{js_string, ConsoleEntry, Cookie, NetEntry, NetKind, Page};

/// What can go wrong driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Chromium did not start, or its DevTools endpoint was not reachable.
    #[error("launching chromium: {0}")]
    Launch(String),
    /// A local I/O error (files, sockets).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The browser answered a command with an error.
    #[error("{method}: {message}")]
    Protocol {
        /// The command.
        method: String,
        /// The browser's message.
        message: String,
    },
    /// Script run in the page threw.
    #[error("script threw: {0}")]
    Script(String),
    /// Something waited for did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The browser answered something this client does not understand.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The connection to the browser is gone.
    #[error("the browser closed the connection")]
    Closed,
}

/// How to start chromium.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// The program: `$FERROKUBE_CHROMIUM`, else `chromium` on the PATH.
    pub program: PathBuf,
    /// The window (and so the viewport) size in CSS pixels.
    pub window: (u32, u32),
    /// Accept any server certificate (`--ignore-certificate-errors`): the
    /// test clusters' CAs are made per run.
    pub ignore_certificate_errors: bool,
    /// More command-line flags.
    pub extra_args: Vec<String>,
    /// How long chromium may take to open its DevTools endpoint.
    pub startup_timeout: Duration,
    /// How long any one command may take.
    pub command_timeout: Duration,
    /// `Some(ports)`: run chromium in a network namespace of its own with
    /// only loopback, where `127.0.0.1:<port>` for each of `ports` reaches
    /// the same port on the host's loopback (root only). Chromium drops
    /// every connection when an address appears on any interface it sees
    /// (`net::ERR_NETWORK_CHANGED`), as a node's new pods make them.
    pub isolated_network: Option<Vec<u16>>,
}

impl Default for LaunchOptions {
    fn default() -> LaunchOptions {
        LaunchOptions {
            program: std::env::var_os("FERROKUBE_CHROMIUM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("chromium")),
            window: (1400, 900),
            ignore_certificate_errors: true,
            extra_args: Vec::new(),
            startup_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(30),
            isolated_network: None,
        }
    }
}

/// A headless chromium this process started.
pub struct Browser {
    child: Child,
    /// Holds the profile (`profile/`) and chromium's stderr (`stderr.log`).
    dir: tempfile::TempDir,
    conn: Arc<cdp::Connection>,
    options: LaunchOptions,
    /// Dropped after chromium is killed.
    _net: Option<netns::Isolated>,
}

/// The flags chromium runs with (besides the profile and port).
fn flags(o: &LaunchOptions, root: bool) -> Vec<String> {
    let mut f: Vec<String> = [
        "--headless",
        "--remote-debugging-port=0",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--disable-extensions",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--password-store=basic",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    f.push(format!("--window-size={},{}", o.window.0, o.window.1));
    if o.ignore_certificate_errors {
        f.push("--ignore-certificate-errors".into());
    }
    if root {
        // Chromium's sandbox refuses to run as root.
        f.push("--no-sandbox".into());
    }
    f.extend(o.extra_args.iter().cloned());
    f
}

/// Whether this process runs as root.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Reads `DevToolsActivePort` (the port, then the browser's WebSocket path).
fn parse_active_port(text: &str) -> Option<(u16, String)> {
    let mut lines = text.lines();
    let port = lines
        .next()?
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)?;
    let path = lines.next()?.trim();
    path.starts_with('/').then(|| (port, path.to_string()))
}

impl Browser {
    /// Starts chromium and connects to it.
    pub async fn launch(options: LaunchOptions) -> Result<Browser, Error> {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::Builder::new()
            .prefix("ferrokube-browser")
            .tempdir()?;
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile)?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let net = match &options.isolated_network {
            Some(ports) => Some(netns::Isolated::new(ports).await?),
            None => None,
        };
        let mut cmd = match &net {
            // `ip netns exec` execs the program: chromium keeps its pid.
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &n.name]).arg(&options.program);
                c
            }
            None => Command::new(&options.program),
        };
        let child = cmd
            .args(flags(&options, running_as_root()))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Chromium makes its singleton socket's directory (and other
            // temporary files) under TMPDIR and leaves them: inside `dir`,
            // they go with the profile.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // A group of its own, so that Drop ends all of it.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Launch(format!("{}: {e}", options.program.display())))?;
        let mut browser = BrowserStart { child: Some(child) };
        let (port, path) = browser
            .wait_for_port(&profile, dir.path(), options.startup_timeout)
            .await?;
        let tcp = match &net {
            Some(n) => n.connect(port)?,
            None => tokio::net::TcpStream::connect(("127.0.0.1", port)).await?,
        };
        let conn = Arc::new(cdp::Connection::connect(tcp, port, &path).await?);
        let child = browser.child.take().ok_or(Error::Closed)?;
        Ok(Browser {
            child,
            dir,
            conn,
            options,
            _net: net,
        })
    }

    /// The page chromium opened at start (a new one if there is none),
    /// attached, with its network log and console recorded.
    pub async fn page(&self) -> Result<Page, Error> {
        let targets = self.call("Target.getTargets", json!({})).await?;
        let existing = targets
            .get("targetInfos")
            .and_then(Value::as_array)
            .and_then(|ts| {
                ts.iter().find(|t| {
                    t.get("type").and_then(Value::as_str) == Some("page")
                        && t.get("attached").and_then(Value::as_bool) != Some(true)
                })
            })
            .and_then(|t| t.get("targetId").and_then(Value::as_str))
            .map(str::to_string);
        match existing {
            Some(id) => self.attach(&id).await,
            None => self.new_page().await,
        }
    }

    /// A new page (tab) at `about:blank`.
    pub async fn new_page(&self) -> Result<Page, Error> {
        let created = self
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let id = created
            .get("targetId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unexpected(format!("Target.createTarget: {created}")))?
            .to_string();
        self.attach(&id).await
    }

    async fn attach(&self, target_id: &str) -> Result<Page, Error> {
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        let session = attached
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unexpected(format!("Target.attachToTarget: {attached}")))?
            .to_string();
        Page::open(
            self.conn.clone(),
            session,
            target_id.to_string(),
            self.options.command_timeout,
        )
        .await
    }

    /// A browser-level command.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.conn
            .call(None, method, params, self.options.command_timeout)
            .await
    }

    /// Chromium's process id (the browser process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident memory of chromium's processes (the browser and all
    /// under it).
    pub fn memory(&self) -> proc::TreeMemory {
        proc::tree_memory(self.child.id())
    }

    /// The end of what chromium wrote to stderr (for failure messages).
    pub fn stderr_tail(&self, lines: usize) -> String {
        stderr_tail(self.dir.path(), lines)
    }

    /// Whether the connection to the browser is gone.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

fn stderr_tail(dir: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    // Without a desktop session, chromium complains of D-Bus on every start.
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(":ERROR:dbus/"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Kills a chromium group: every process under `pid` (by pid), then the
/// group, then reaps the browser.
fn kill_tree(child: &mut Child) {
    let pid = child.id();
    let under = proc::descendants(pid);
    if let Ok(pgid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group
        // chromium leads (made with process_group(0) at spawn); no memory is
        // touched.
        #[expect(unsafe_code, reason = "kill(2) on the group this process made")]
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    for p in under {
        if let Ok(p) = i32::try_from(p) {
            // SAFETY: kill(2) on a pid that was chromium's descendant a moment
            // ago; no memory is touched.
            #[expect(unsafe_code, reason = "kill(2) on chromium's own processes")]
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
    let _ = child.wait();
}

/// Chromium while it starts: killed if the start fails.
struct BrowserStart {
    child: Option<Child>,
}

impl BrowserStart {
    async fn wait_for_port(
        &mut self,
        profile: &Path,
        dir: &Path,
        timeout: Duration,
    ) -> Result<(u16, String), Error> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| parse_active_port(&t))
            {
                return Ok(found);
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(Error::Launch(format!(
                        "chromium exited ({status}):\n{}",
                        stderr_tail(dir, 20)
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Launch(format!(
                    "no DevToolsActivePort within {timeout:?}:\n{}",
                    stderr_tail(dir, 20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for BrowserStart {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_tree(&mut c);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
        // The profile goes with `dir`.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_port_file() {
        assert_eq!(
            parse_active_port("40123\n/devtools/browser/abc-def\n"),
            Some((40123, "/devtools/browser/abc-def".into()))
        );
        assert_eq!(parse_active_port("40123\n"), None);
        assert_eq!(parse_active_port("0\n/devtools/browser/x"), None);
        assert_eq!(parse_active_port("port\n/devtools/browser/x"), None);
        assert_eq!(parse_active_port(""), None);
    }

    #[test]
    fn flags_follow_the_options() {
        let o = LaunchOptions {
            window: (800, 600),
            ignore_certificate_errors: false,
            extra_args: vec!["--lang=en".into()],
            ..Default::default()
        };
        let f = flags(&o, false);
        assert!(f.contains(&"--headless".to_string()));
        assert!(f.contains(&"--remote-debugging-port=0".to_string()));
        assert!(f.contains(&"--window-size=800,600".to_string()));
        assert!(!f.iter().any(|a| a == "--no-sandbox"));
        assert!(!f.iter().any(|a| a == "--ignore-certificate-errors"));
        assert_eq!(f.last().map(String::as_str), Some("--lang=en"));
        let f = flags(&LaunchOptions::default(), true);
        assert!(f.iter().any(|a| a == "--no-sandbox"));
        assert!(f.iter().any(|a| a == "--ignore-certificate-errors"));
    }
}
