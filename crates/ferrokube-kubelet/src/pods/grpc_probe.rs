//! gRPC probes (`grpc.port`, `grpc.service`): one `grpc.health.v1.Health/Check`
//! call to the pod's address over plain HTTP/2, with Kubernetes' outcomes and
//! messages. As Kubernetes' prober (which dials with `WithBlock`), a refused
//! connection is tried again until the timeout.

use std::time::{Duration, Instant};

use tonic::transport::Endpoint;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The serving status names of grpc.health.v1.
fn status_name(v: i32) -> String {
    match v {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => other.to_string(),
    }
}

/// A whole number of seconds as Go prints a `time.Duration` (`1s`, `1m30s`).
pub(crate) fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

/// gRPC's names of its status codes, as Go prints them.
fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// Why a gRPC probe failed: the probe's message, as Kubernetes' prober words it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GrpcProbeError {
    /// `host:port` makes no valid endpoint.
    #[error("error: failed to connect service at {addr:?}: {cause}")]
    BadAddress {
        /// `host:port`.
        addr: String,
        /// Why the endpoint was refused.
        cause: String,
    },
    /// No connection within the probe's timeout.
    #[error(
        "timeout: failed to connect service {addr:?} within {within}: context deadline exceeded"
    )]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The timeout, as Go prints a duration.
        within: String,
    },
    /// The Check call did not complete within the timeout (as Go prints it).
    #[error("timeout: health rpc did not complete within {0}")]
    RpcTimeout(String),
    /// The server does not implement grpc.health.v1 (its status message).
    #[error("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {0}")]
    Unimplemented(String),
    /// The Check call failed with another gRPC status.
    #[error("error: health rpc probe failed: rpc error: code = {code} desc = {message}")]
    Rpc {
        /// The status code's name.
        code: &'static str,
        /// The status message.
        message: String,
    },
    /// The server answered, with a status other than SERVING (its name).
    #[error("service unhealthy (responded with {0:?})")]
    Unhealthy(String),
}

/// Checks `service` at `host:port`; Ok is healthy.
pub(crate) async fn check(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Result<(), GrpcProbeError> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let deadline = Instant::now() + timeout;
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| bad_address(&addr, e))?
        .user_agent("kube-probe/1.33")
        .map_err(|e| bad_address(&addr, e))?
        .connect_timeout(timeout);
    let connect_failed = || GrpcProbeError::ConnectTimeout {
        addr: addr.clone(),
        within: go_duration(timeout),
    };
    let channel = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(connect_failed());
        }
        match tokio::time::timeout(left, endpoint.connect()).await {
            Ok(Ok(c)) => break c,
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(100).min(left)).await,
            Err(_) => return Err(connect_failed()),
        }
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let req = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        grpc.unary(req, path, codec).await
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let rpc_timeout = || GrpcProbeError::RpcTimeout(go_duration(timeout));
    let resp = match tokio::time::timeout(left, call).await {
        Err(_) => return Err(rpc_timeout()),
        Ok(Err(st)) => {
            return Err(match st.code() {
                tonic::Code::Unimplemented => {
                    GrpcProbeError::Unimplemented(st.message().to_string())
                }
                tonic::Code::DeadlineExceeded => rpc_timeout(),
                code => GrpcProbeError::Rpc {
                    code: code_name(code),
                    message: st.message().to_string(),
                },
            })
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    if resp.status != 1 {
        return Err(GrpcProbeError::Unhealthy(status_name(resp.status)));
    }
    Ok(())
}

fn bad_address(addr: &str, cause: impl std::fmt::Display) -> GrpcProbeError {
    GrpcProbeError::BadAddress {
        addr: addr.to_string(),
        cause: cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[tokio::test]
    async fn nothing_listening_times_out_as_kubernetes_says() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let err = check("127.0.0.1", port, "", Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded")
        );
    }
}
