//! Container lifecycle hooks (postStart, preStop) as the kubelet runs them: `exec`
//! inside the container through the runtime (no timeout), `httpGet` against the pod
//! (only a failed connection fails it, not the status code), and `sleep`. A failure
//! comes back as the message Kubernetes puts in its FailedPostStartHook /
//! FailedPreStopHook event. Bounding a hook (by the grace period, or by the pod's
//! deletion) is the caller's business: dropping the future stops it.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use super::probes;
use crate::cri::Runtime;

/// Kubernetes' `format.Pod`: `name_namespace(uid)`.
pub(crate) fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// Go's `%v` of a string slice: `[a b c]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Why a lifecycle hook failed: its Display is the FailedPostStartHook /
/// FailedPreStopHook event's message, in Kubernetes' words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum HookError {
    /// The exec action could not run or exited non-zero.
    #[error("Exec lifecycle hook ({command}) {who} failed - error: {error}, message: {output:?}")]
    Exec {
        /// The command, as Go prints a string slice.
        command: String,
        /// `for Container "c" in Pod "name_ns(uid)"`.
        who: String,
        /// Why it failed.
        error: String,
        /// Its standard output and error.
        output: String,
    },
    /// The httpGet action could not be made or got no answer.
    #[error("HTTP lifecycle hook ({path}) {who} failed - error: {error}")]
    Http {
        /// The path asked for.
        path: String,
        /// `for Container "c" in Pod "name_ns(uid)"`.
        who: String,
        /// Why it failed.
        error: String,
    },
    /// The handler has no action.
    #[error("Cannot run handler: invalid handler: no exec, httpGet or sleep action")]
    NoAction,
}

/// Runs `handler` for container `id` of `pod`.
pub(crate) async fn run(
    handler: &LifecycleHandler,
    runtime: &dyn Runtime,
    id: &str,
    pod_ip: Option<&str>,
    pod: &Pod,
    container: &Container,
) -> Result<(), HookError> {
    let who = format!(
        "for Container {:?} in Pod {:?}",
        container.name,
        pod_ref(pod)
    );
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let failed = |error: String, output: String| {
            Err(HookError::Exec {
                command: go_list(&cmd),
                who: who.clone(),
                error,
                output,
            })
        };
        return match runtime.exec_sync(id, cmd.clone(), 0).await {
            Ok(r) if r.exit_code == 0 => Ok(()),
            Ok(r) => {
                let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
                let mut output = String::from_utf8_lossy(&r.stdout).into_owned();
                output.push_str(&stderr);
                failed(
                    format!(
                        "command '{}' exited with {}: {stderr}",
                        cmd.join(" "),
                        r.exit_code
                    ),
                    output,
                )
            }
            Err(e) => failed(e.message().to_string(), String::new()),
        };
    }
    if let Some(http) = &handler.http_get {
        let path = http.path.clone().unwrap_or_default();
        let failed = |error: String| {
            Err(HookError::Http {
                path: path.clone(),
                who: who.clone(),
                error,
            })
        };
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return failed("HTTPS lifecycle hooks are not supported by this node".into());
        }
        let host = match http.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_string(),
            None => match pod_ip.filter(|ip| !ip.is_empty()) {
                Some(ip) => ip.to_string(),
                None => return failed("failed to find networking container".into()),
            },
        };
        let port = match probes::port_of(&http.port, container) {
            Ok(p) => p,
            Err(e) => return failed(e.to_string()),
        };
        let headers = http.http_headers.clone().unwrap_or_default();
        return match probes::http_get(&host, port, &path, &headers, "kube-lifecycle/1.33", None)
            .await
        {
            // Kubernetes does not look at the status code of a hook's answer.
            Ok(_) => Ok(()),
            Err(e) => failed(e.to_string()),
        };
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err(HookError::NoAction)
}

/// The grace period left for SIGTERM → SIGKILL after a preStop hook that took
/// `spent`: what remains of `grace`, but never under Kubernetes' 2 s minimum.
pub(crate) fn grace_after_pre_stop(grace: i64, spent: Duration) -> i64 {
    (grace - spent.as_secs() as i64).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}]}
        }))
        .unwrap()
    }

    fn handler(v: serde_json::Value) -> LifecycleHandler {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn exec_failure_reads_like_kubernetes() {
        let rt = FakeRuntime::new();
        let p = pod();
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let h = handler(serde_json::json!({"exec": {"command": ["false", "x"]}}));
        let err = run(&h, &rt, "id1", None, &p, &c)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Exec lifecycle hook ([false x]) for Container \"c\" in Pod \"p_ns(u1)\" failed - error: command 'false x' exited with 1"
            ),
            "{err}"
        );
        let ok = handler(serde_json::json!({"exec": {"command": ["true"]}}));
        assert_eq!(run(&ok, &rt, "id1", None, &p, &c).await, Ok(()));
    }

    #[tokio::test]
    async fn http_hook_fails_only_without_an_answer() {
        let rt = FakeRuntime::new();
        let p = pod();
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        // A server answering 500: still a success for a hook.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let h = handler(serde_json::json!({"httpGet": {"path": "hook", "port": port}}));
        assert_eq!(run(&h, &rt, "id1", Some("127.0.0.1"), &p, &c).await, Ok(()));
        let req = server.await.unwrap();
        assert!(req.starts_with("GET /hook HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("User-Agent: kube-lifecycle/"), "{req}");
        // Nobody listening: the connection error, in Kubernetes' words.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = closed.local_addr().unwrap().port();
        drop(closed);
        let h = handler(serde_json::json!({"httpGet": {"path": "/x", "port": dead}}));
        let err = run(&h, &rt, "id1", Some("127.0.0.1"), &p, &c)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "HTTP lifecycle hook (/x) for Container \"c\" in Pod \"p_ns(u1)\" failed - error: Get \"http://127.0.0.1:{dead}/x\": dial tcp"
            )),
            "{err}"
        );
        // A named port that the container does not have.
        let h = handler(serde_json::json!({"httpGet": {"path": "/", "port": "nope"}}));
        assert!(run(&h, &rt, "id1", Some("127.0.0.1"), &p, &c)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn sleep_hook_sleeps() {
        let rt = FakeRuntime::new();
        let p = pod();
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let h = handler(serde_json::json!({"sleep": {"seconds": 1}}));
        let t0 = std::time::Instant::now();
        assert_eq!(run(&h, &rt, "id1", None, &p, &c).await, Ok(()));
        assert!(t0.elapsed() >= Duration::from_secs(1));
    }

    #[test]
    fn grace_after_pre_stop_keeps_a_minimum() {
        assert_eq!(grace_after_pre_stop(30, Duration::from_millis(10_900)), 20);
        assert_eq!(grace_after_pre_stop(3, Duration::from_secs(5)), 2);
    }
}
