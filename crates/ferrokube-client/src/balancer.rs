//! A client-side load balancer of API servers, as k3s' agent runs one: a
//! TCP listener on loopback that the node's clients use as their server,
//! passing each connection to the first API server that accepts it, the
//! last one that worked first. When a server dies its connections close;
//! the clients reconnect (watches resume, requests are retried) through the
//! balancer, which now reaches another server. TLS stays end to end
//! between the clients and the servers (their serving certificates name
//! `127.0.0.1`), so the balancer sees no credential.
//!
//! The servers are those the agent was given (`--server`, comma-separated)
//! and those it learns later ([`Balancer::add_servers`], from the
//! `default/kubernetes` Endpoints); none is ever forgotten, as k3s keeps
//! its default server as a fallback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long one server may take to accept a connection before the next
/// is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct State {
    /// `host:port`, in the order given.
    list: Vec<String>,
    /// The one that accepted last.
    current: usize,
}

/// A running balancer; it stops when its cancellation token fires.
pub struct Balancer {
    /// Where it listens (loopback, a free port).
    pub addr: SocketAddr,
    servers: Arc<Mutex<State>>,
}

/// `host:port` of an `https://host[:port]` URL.
pub fn authority(url: &str) -> anyhow::Result<String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .with_context(|| format!("the server address {url:?}"))?;
    let host = uri
        .host()
        .with_context(|| format!("no host in the server address {url:?}"))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(443)))
}

impl Balancer {
    /// Listens on `127.0.0.1` (a free port) in front of `servers` (URLs).
    pub async fn start(servers: &[String], cancel: CancellationToken) -> anyhow::Result<Balancer> {
        let list = servers
            .iter()
            .map(|s| authority(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!list.is_empty(), "no server to balance");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("listening for the API server balancer")?;
        let addr = listener.local_addr()?;
        let servers = Arc::new(Mutex::new(State { list, current: 0 }));
        tokio::spawn(accept(listener, servers.clone(), cancel));
        Ok(Balancer { addr, servers })
    }

    /// The URL the node's clients use.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The servers it knows (`host:port`).
    pub fn servers(&self) -> Vec<String> {
        self.servers
            .lock()
            .map(|s| s.list.clone())
            .unwrap_or_default()
    }

    /// The server it passes connections to now.
    pub fn current(&self) -> Option<String> {
        let s = self.servers.lock().ok()?;
        s.list.get(s.current).cloned()
    }

    /// Adds servers (`host:port`) it does not know yet.
    pub fn add_servers(&self, more: impl IntoIterator<Item = String>) {
        self.servers_handle().add(more);
    }

    /// A handle that adds servers to it (for a task that learns them).
    pub fn servers_handle(&self) -> Servers {
        Servers(self.servers.clone())
    }
}

/// The servers of a [`Balancer`], to add to.
#[derive(Clone)]
pub struct Servers(Arc<Mutex<State>>);

impl Servers {
    /// Adds servers (`host:port`) it does not know yet.
    pub fn add(&self, more: impl IntoIterator<Item = String>) {
        if let Ok(mut s) = self.0.lock() {
            for m in more {
                if !s.list.contains(&m) {
                    tracing::info!(server = %m, "the API server balancer learned a server");
                    s.list.push(m);
                }
            }
        }
    }
}

async fn accept(listener: TcpListener, servers: Arc<Mutex<State>>, cancel: CancellationToken) {
    loop {
        let conn = tokio::select! {
            () = cancel.cancelled() => return,
            c = listener.accept() => c,
        };
        match conn {
            Ok((client, _)) => {
                let (servers, cancel) = (servers.clone(), cancel.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = pass(client, &servers) => {}
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "the API server balancer could not accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connects `client` to the first server that accepts, the current one
/// first, and copies both ways until either side closes.
async fn pass(mut client: TcpStream, servers: &Mutex<State>) {
    let (list, start) = match servers.lock() {
        Ok(s) => (s.list.clone(), s.current),
        Err(_) => return,
    };
    for i in 0..list.len() {
        let at = (start + i) % list.len();
        let server = &list[at];
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(server.as_str())).await {
            Ok(Ok(mut upstream)) => {
                if at != start {
                    tracing::info!(server = %server, was = %list[start], "the API server balancer switched servers");
                    if let Ok(mut s) = servers.lock() {
                        s.current = at;
                    }
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(server = %server, error = %e, "an API server refused"),
            Err(_) => tracing::debug!(server = %server, "an API server did not answer in time"),
        }
    }
    tracing::warn!(servers = ?list, "no API server accepted a connection");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers each connection with `name`.
    async fn named(name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let _ = c.write_all(name.as_bytes()).await;
            }
        });
        (format!("https://{addr}"), task)
    }

    async fn ask(b: &Balancer) -> String {
        let mut c = TcpStream::connect(b.addr).await.expect("connect");
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await;
        out
    }

    #[tokio::test]
    async fn connections_go_to_the_first_live_server_and_stay_there() {
        let (a, a_task) = named("a").await;
        let (b, _b_task) = named("b").await;
        let cancel = CancellationToken::new();
        let lb = Balancer::start(&[a.clone(), b.clone()], cancel.clone())
            .await
            .expect("start");
        assert_eq!(ask(&lb).await, "a");
        a_task.abort();
        let _ = a_task.await;
        assert_eq!(ask(&lb).await, "b", "the dead server is skipped");
        assert_eq!(lb.current(), Some(authority(&b).expect("b")));
        assert_eq!(ask(&lb).await, "b");
        lb.add_servers([authority(&a).expect("a")]);
        assert_eq!(lb.servers().len(), 2, "a known server is not added twice");
        cancel.cancel();
    }

    #[test]
    fn authorities_of_urls() {
        assert_eq!(
            authority("https://10.0.0.1:6443").expect("ok"),
            "10.0.0.1:6443"
        );
        assert_eq!(authority(" https://h ").expect("ok"), "h:443");
        assert!(authority("not a url").is_err());
    }
}
