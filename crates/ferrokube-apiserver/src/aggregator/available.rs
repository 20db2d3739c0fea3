//! Whether a remote APIService is available, as Kubernetes' availability
//! controller decides it: its Service and a ready endpoint exist, and its
//! server answers `GET /apis/<group>/<version>` with a resource list; that
//! list is what discovery shows for the group version.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use serde_json::{json, Value};

use super::backend;
use super::Remote;
use crate::rest::Rest;

/// How long a discovery check may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The outcome of one check.
pub(crate) struct Check {
    /// `True` or `False`.
    pub(crate) status: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    /// The server's resources (its `APIResourceList`'s `resources`), when
    /// it answered.
    pub(crate) resources: Option<Vec<Value>>,
}

impl Check {
    fn failed(reason: &'static str, message: String) -> Check {
        Check {
            status: "False",
            reason,
            message,
            resources: None,
        }
    }

    /// The `Available` condition, its transition time kept from `old`
    /// when the status did not change.
    pub(crate) fn condition(&self, old: Option<&Value>, now: &str) -> Value {
        let same = old.and_then(|c| c.get("status")).and_then(Value::as_str) == Some(self.status);
        let since = match old.and_then(|c| c.get("lastTransitionTime")) {
            Some(t) if same => t.clone(),
            _ => json!(now),
        };
        json!({
            "type": "Available",
            "status": self.status,
            "lastTransitionTime": since,
            "reason": self.reason,
            "message": self.message,
        })
    }
}

/// Checks `remote`.
pub(crate) async fn check(rest: &Rest, remote: &Remote) -> Check {
    let addr = match backend::resolve(rest, &remote.service).await {
        Ok(a) => a,
        Err(e) => return Check::failed(e.reason(), e.to_string()),
    };
    let path = format!("/apis/{}/{}", remote.group, remote.version);
    let url = format!("https://{addr}{path}");
    let failing = |why: String| {
        Check::failed(
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: {why}"),
        )
    };
    let tls = match &remote.tls {
        Ok(t) => t.clone(),
        Err(e) => return failing(e.clone()),
    };
    let answer = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut sender =
            backend::connect::<Empty<Bytes>>(addr, &remote.service.server_name(), tls).await?;
        let req = Request::get(path.as_str())
            .header(header::HOST, addr.to_string())
            .header(header::ACCEPT, "application/json")
            .header("X-Remote-User", "system:kube-aggregator")
            .header("X-Remote-Group", "system:masters")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    })
    .await;
    let (status, body) = match answer {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return failing(e),
        Err(_) => return failing("Get: context deadline exceeded".to_string()),
    };
    if status != StatusCode::OK {
        return failing(format!("bad status from {url}: {}", status.as_u16()));
    }
    let resources = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("resources").and_then(Value::as_array).cloned());
    match resources {
        Some(resources) => Check {
            status: "True",
            reason: "Passed",
            message: "all checks passed".to_string(),
            resources: Some(resources),
        },
        None => failing("the answer is not an APIResourceList".to_string()),
    }
}
