//! Container probes (startup, liveness, readiness) with Kubernetes' timing fields
//! (initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold,
//! failureThreshold) and handlers (exec through the runtime, httpGet, tcpSocket,
//! grpc: [`super::grpc_probe`]).
//! One task per probe of each running container keeps its result in a shared table
//! and wakes the pod worker when a result changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cri::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// A probe's standing after its thresholds: `None` until it has decided.
#[derive(Debug, Clone, Default)]
pub(crate) struct Standing {
    pub ok: Option<bool>,
    pub message: String,
}

/// Results shared between the probe tasks of one pod and its worker.
#[derive(Default)]
pub(crate) struct Table {
    results: Mutex<HashMap<(String, Kind), Standing>>,
    pub changed: Notify,
}

impl Table {
    pub(crate) fn get(&self, id: &str, kind: Kind) -> Option<Standing> {
        self.results.lock().get(&(id.to_string(), kind)).cloned()
    }

    fn set(&self, id: &str, kind: Kind, s: Standing) {
        let mut m = self.results.lock();
        let key = (id.to_string(), kind);
        let changed = m.get(&key).map(|o| o.ok) != Some(s.ok);
        m.insert(key, s);
        drop(m);
        if changed {
            self.changed.notify_one();
        }
    }

    pub(crate) fn forget(&self, id: &str) {
        self.results.lock().retain(|(cid, _), _| cid != id);
    }
}

/// One probe attempt's outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure(String),
}

/// Why a probe's or hook's port names no port (the probe fails, the hook
/// fails, with this message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PortError {
    /// The number is not a port number.
    #[error("invalid port {0}")]
    Invalid(String),
    /// None of the container's ports has this name.
    #[error("no port named {name:?} in container {container}")]
    NoSuchName {
        /// The name asked for.
        name: String,
        /// The container's name.
        container: String,
    },
}

/// A plain-HTTP GET that got no answer, worded as Go's HTTP client words it
/// (`Get "http://host:port/path": ...`).
#[derive(Debug, thiserror::Error)]
#[error("Get \"{url}\": {cause}")]
pub(crate) struct HttpGetError {
    /// The URL asked for.
    url: String,
    /// What went wrong (dial, read, timeout, a malformed answer).
    cause: String,
}

/// A port by number, numeric string or the name of one of the container's ports.
pub(crate) fn port_of(port: &IntOrString, container: &Container) -> Result<u16, PortError> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| PortError::Invalid(p.to_string())),
        IntOrString::String(s) if s.parse::<u16>().is_ok() => {
            s.parse::<u16>().map_err(|_| PortError::Invalid(s.clone()))
        }
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| PortError::NoSuchName {
                name: name.clone(),
                container: container.name.clone(),
            }),
    }
}

/// Runs one attempt of `probe` against container `id` at `pod_ip`.
pub(crate) async fn attempt(
    probe: &Probe,
    runtime: &dyn Runtime,
    id: &str,
    pod_ip: &str,
    container: &Container,
) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match runtime.exec_sync(id, cmd, timeout.as_secs() as i64).await {
            Ok(r) if r.exit_code == 0 => Outcome::Success,
            Ok(r) => Outcome::Failure(format!(
                "command failed with exit code {}: {}",
                r.exit_code,
                String::from_utf8_lossy(&r.stdout).trim()
            )),
            Err(e) => Outcome::Failure(e.message().to_string()),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match port_of(&tcp.port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e.to_string()),
        };
        let host = tcp.host.clone().unwrap_or_else(|| pod_ip.to_string());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Outcome::Failure(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(g) = &probe.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return Outcome::Failure(format!("invalid port {}", g.port));
        };
        let service = g.service.clone().unwrap_or_default();
        return match super::grpc_probe::check(pod_ip, port, &service, timeout).await {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Failure(e.to_string()),
        };
    }
    if let Some(http) = &probe.http_get {
        let port = match port_of(&http.port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e.to_string()),
        };
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return Outcome::Failure("HTTPS probes are not supported yet".into());
        }
        let host = http.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        let headers = http.http_headers.clone().unwrap_or_default();
        return match http_get(
            &host,
            port,
            &path,
            &headers,
            "kube-probe/1.33",
            Some(timeout),
        )
        .await
        {
            Ok(code) if (200..400).contains(&code) => Outcome::Success,
            Ok(code) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
            Err(e) => Outcome::Failure(e.to_string()),
        };
    }
    Outcome::Failure("probe has no handler".into())
}

/// One plain-HTTP GET (probes and lifecycle hooks): the status code, or the error as
/// Go's HTTP client words it (`Get "http://host:port/path": ...`).
pub(crate) async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[k8s_openapi::api::core::v1::HTTPHeader],
    user_agent: &str,
    timeout: Option<Duration>,
) -> Result<u16, HttpGetError> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let url = format!("http://{authority}{path}");
    let mut req = format!("GET {path} HTTP/1.1\r\nAccept: */*\r\nConnection: close\r\n");
    let (mut has_host, mut has_agent) = (false, false);
    for h in headers {
        has_host |= h.name.eq_ignore_ascii_case("host");
        has_agent |= h.name.eq_ignore_ascii_case("user-agent");
        req.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    if !has_host {
        req.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has_agent {
        req.push_str(&format!("User-Agent: {user_agent}\r\n"));
    }
    req.push_str("\r\n");
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("dial tcp {authority}: connect: {e}"))?;
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1024];
        let mut n = 0;
        while n < 12 {
            let r = s.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
            if r == 0 {
                break;
            }
            n += r;
        }
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| "malformed HTTP response".to_string())
    };
    let result = match timeout {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err("context deadline exceeded".into()),
        },
        None => fut.await,
    };
    result.map_err(|cause| HttpGetError { url, cause })
}

/// Starts a task running `probe` of `kind` for container `id` until aborted.
/// Liveness and readiness wait for the startup probe (if any) to succeed; a startup
/// probe stops after its first success.
#[allow(
    clippy::too_many_arguments,
    reason = "a probe task owns everything it needs: the probe, the runtime, the results table and the container"
)]
pub(crate) fn spawn(
    kind: Kind,
    probe: Probe,
    has_startup: bool,
    runtime: Arc<dyn Runtime>,
    table: Arc<Table>,
    id: String,
    pod_ip: String,
    container: Container,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        tokio::time::sleep(Duration::from_secs(
            probe.initial_delay_seconds.unwrap_or(0).max(0) as u64,
        ))
        .await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            let gated = kind != Kind::Startup
                && has_startup
                && table.get(&id, Kind::Startup).and_then(|s| s.ok) != Some(true);
            if !gated {
                match attempt(&probe, runtime.as_ref(), &id, &pod_ip, &container).await {
                    Outcome::Success => {
                        successes += 1;
                        failures = 0;
                        if successes >= success_threshold {
                            table.set(
                                &id,
                                kind,
                                Standing {
                                    ok: Some(true),
                                    message: String::new(),
                                },
                            );
                            if kind == Kind::Startup {
                                return;
                            }
                        }
                    }
                    Outcome::Failure(msg) => {
                        failures += 1;
                        successes = 0;
                        tracing::debug!(container = %container.name, ?kind, %msg, "probe failed");
                        if failures >= failure_threshold {
                            table.set(
                                &id,
                                kind,
                                Standing {
                                    ok: Some(false),
                                    message: msg,
                                },
                            );
                        }
                    }
                }
            }
            tokio::time::sleep(period).await;
        }
    })
}
