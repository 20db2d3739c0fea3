//! A network namespace of the browser's own, with only loopback, whose
//! `127.0.0.1:<port>` for each forwarded port reaches the same port on the
//! host's loopback.
//!
//! Why: chromium drops every connection (`net::ERR_NETWORK_CHANGED`) when
//! an address appears on any interface, and a node starting pods adds
//! veths (with IPv6 link-local addresses) beside it all the time; a browser
//! that only sees its own loopback sees no such change. Needs root (`ip
//! netns`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// A named network namespace (`/run/netns/<name>`) and the forwarders into
/// it; dropping it stops them and deletes the namespace.
pub(crate) struct Isolated {
    pub(crate) name: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn ip(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Launch(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Isolated {
    /// Makes the namespace, brings its loopback up and forwards `ports`.
    pub(crate) async fn new(ports: &[u16]) -> Result<Isolated, Error> {
        let name = format!(
            "fk-browser-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let mut me = Isolated {
            name,
            tasks: Vec::new(),
        };
        ip(&["-n", &me.name, "link", "set", "lo", "up"])?;
        for &port in ports {
            let listener = listen_inside(PathBuf::from("/run/netns").join(&me.name), port)?;
            me.tasks.push(tokio::spawn(forward(listener, port)));
        }
        Ok(me)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

/// Runs `f` on a thread that joins the network namespace at `netns` and
/// then ends: the sockets `f` makes stay in that namespace.
fn inside<T: Send + 'static>(
    netns: PathBuf,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Error> {
    std::thread::spawn(move || -> Result<T, Error> {
        let ns = File::open(&netns)?;
        // SAFETY: setns(2) on a descriptor this thread holds open; it
        // changes this short-lived thread's network namespace only.
        #[expect(unsafe_code, reason = "setns(2) of this thread")]
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        Ok(f()?)
    })
    .join()
    .map_err(|_| Error::Launch("a thread in the browser's namespace panicked".into()))?
}

/// A listener on `127.0.0.1:port` inside the namespace at `netns`.
fn listen_inside(netns: PathBuf, port: u16) -> Result<tokio::net::TcpListener, Error> {
    let l = inside(netns, move || {
        let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })?;
    Ok(tokio::net::TcpListener::from_std(l)?)
}

impl Isolated {
    /// A connection to `127.0.0.1:port` inside the namespace (chromium's
    /// DevTools endpoint).
    pub(crate) fn connect(&self, port: u16) -> Result<tokio::net::TcpStream, Error> {
        let s = inside(PathBuf::from("/run/netns").join(&self.name), move || {
            let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })?;
        Ok(tokio::net::TcpStream::from_std(s)?)
    }
}

/// Accepts connections inside the namespace and joins each to the same
/// port on the host's loopback.
async fn forward(listener: tokio::net::TcpListener, port: u16) {
    loop {
        let Ok((mut inside, _)) = listener.accept().await else {
            // Out of descriptors, say: a moment before trying again.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut outside) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let _ = inside.set_nodelay(true);
            let _ = outside.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
        });
    }
}
