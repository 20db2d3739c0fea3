//! The filter in the request path, as Kubernetes' priority-and-fairness
//! filter: after authentication and impersonation, every request but the
//! long-running non-watch ones (exec, attach, port-forward, proxy, logs)
//! is classified, waits for a seat of its priority level (a watch holds
//! it only while it starts), and carries the matched FlowSchema's and
//! level's UIDs in `X-Kubernetes-PF-FlowSchema-UID` and
//! `X-Kubernetes-PF-PriorityLevel-UID`; a refused one gets Kubernetes'
//! plain-text 429 with `Retry-After`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use parking_lot::Mutex;

use super::classify::Digest;
use super::config::Source;
use super::queueset::{Limit, Refusal, Seat};
use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

/// The header naming the matched FlowSchema's UID.
pub(crate) const FLOW_SCHEMA_UID: &str = "X-Kubernetes-PF-FlowSchema-UID";
/// The header naming the matched priority level's UID.
pub(crate) const PRIORITY_LEVEL_UID: &str = "X-Kubernetes-PF-PriorityLevel-UID";
/// Kubernetes' words for a refused request.
pub(crate) const TOO_MANY_REQUESTS: &str = "Too many requests, please try again later.";

/// How long a request may wait in a queue: a quarter of Kubernetes'
/// default request timeout (60s).
const WAIT_LIMIT: Duration = Duration::from_secs(15);

/// The largest `Retry-After` Kubernetes suggests.
const MAX_RETRY_AFTER: i64 = 32;

/// Kubernetes' long-running check (`watch` and `proxy` verbs; the
/// `attach`, `exec`, `proxy`, `log` and `portforward` subresources).
pub(crate) fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        )
}

/// API priority and fairness for one server.
pub(crate) struct Apf {
    pub(super) source: Source,
    /// Refusals by FlowSchema, level and reason (the metric).
    pub(super) rejected: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    dropped: Mutex<HashMap<String, Dropped>>,
}

/// What a request admitted by the filter holds until its response is
/// made: its seat, and the headers naming its classification.
#[derive(Default)]
pub(crate) struct Ticket {
    headers: Option<(HeaderValue, HeaderValue)>,
    seat: Option<Seat>,
    watch: bool,
}

impl Ticket {
    /// Sets the classification headers on `response`.
    fn stamp<B>(&self, response: &mut Response<B>) {
        if let Some((fs, pl)) = &self.headers {
            let h = response.headers_mut();
            h.insert(PRIORITY_LEVEL_UID, pl.clone());
            h.insert(FLOW_SCHEMA_UID, fs.clone());
        }
    }

    /// The response with the classification headers; the seat is held
    /// until its body is sent (as Kubernetes holds it while the handler
    /// writes), a watch's only until now (it has started).
    pub(crate) fn finish(self, mut response: Response<Body>) -> Response<Body> {
        self.stamp(&mut response);
        match self.seat {
            Some(seat) if !self.watch => response.map(|body| {
                body.map_frame(move |frame| {
                    let _held = &seat;
                    frame
                })
                .boxed()
            }),
            _ => response,
        }
    }
}

/// The response body type of the server.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

impl Apf {
    /// Follows the configuration in `cache`; the levels share
    /// `server_limit` seats.
    pub(crate) fn new(
        registry: &ferrokube_api::registry::Registry,
        cache: &crate::watchcache::WatchCache,
        server_limit: usize,
    ) -> Apf {
        Apf {
            source: Source::new(registry, cache, server_limit),
            rejected: Mutex::new(BTreeMap::new()),
            dropped: Mutex::new(HashMap::new()),
        }
    }

    /// Classifies the request and waits for its seat: the ticket to hold
    /// while serving it, or Kubernetes' 429.
    pub(crate) async fn admit(
        &self,
        user: &UserInfo,
        info: &RequestInfo,
        path: &str,
    ) -> Result<Ticket, Response<Body>> {
        if is_long_running(info) && info.verb != "watch" {
            return Ok(Ticket::default());
        }
        let config = self.source.config();
        let digest = Digest { user, info, path };
        let Some(fs) = config
            .schemas
            .iter()
            .find(|fs| fs.schema.matches(&digest))
            .or_else(|| config.schemas.last())
        else {
            return Ok(Ticket::default());
        };
        let Some(level) = config.levels.get(&fs.schema.level) else {
            return Ok(Ticket::default());
        };
        let headers = Some((fs.uid_header.clone(), level.uid_header.clone()));
        let settings = level.queues.settings();
        let hash = match settings.limit {
            Limit::Queue { queues, .. } if queues > 1 => {
                hash_flow(&fs.name, fs.schema.distinguish(&digest))
            }
            _ => 0,
        };
        match level.queues.start(hash, &fs.name, WAIT_LIMIT).await {
            Ok(seat) => Ok(Ticket {
                headers,
                seat: Some(seat),
                watch: info.verb == "watch",
            }),
            Err(refusal) => {
                let retry_after = self.refused(&fs.name, &fs.schema.level, refusal);
                let mut response = too_many_requests(retry_after);
                Ticket {
                    headers,
                    ..Default::default()
                }
                .stamp(&mut response);
                Err(response)
            }
        }
    }

    /// Counts a refusal; the `Retry-After` to answer it with.
    fn refused(&self, flow_schema: &str, level: &str, refusal: Refusal) -> i64 {
        *self
            .rejected
            .lock()
            .entry((flow_schema.to_string(), level.to_string(), refusal.as_str()))
            .or_default() += 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut dropped = self.dropped.lock();
        let stats = dropped
            .entry(level.to_string())
            .or_insert_with(Dropped::new);
        stats.record(now);
        stats.retry_after
    }
}

/// Kubernetes' flow hash: the first 8 bytes, little-endian, of the
/// SHA-256 of the schema's name, a zero byte and the distinguisher.
pub(crate) fn hash_flow(flow_schema: &str, distinguisher: &str) -> u64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(flow_schema.as_bytes());
    ctx.update(&[0]);
    ctx.update(distinguisher.as_bytes());
    let sum = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&sum.as_ref()[..8]);
    u64::from_le_bytes(first)
}

/// Kubernetes' answer to a refused request: `http.Error`'s plain text.
fn too_many_requests(retry_after: i64) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("{TOO_MANY_REQUESTS}\n")))
        .map_err(|never: Infallible| match never {})
        .boxed();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Kubernetes' dropped-requests tracker of one level: `Retry-After`
/// starts at 1s, doubles (up to 32s) when at least three times as many
/// requests as its value were refused in the last that-many seconds, and
/// shrinks by one when fewer than its value were.
struct Dropped {
    /// Refusals per second, oldest first.
    history: Vec<(i64, i64)>,
    current_second: i64,
    current_count: i64,
    retry_after: i64,
    last_raised: i64,
}

impl Dropped {
    fn new() -> Dropped {
        Dropped {
            history: Vec::new(),
            current_second: 0,
            current_count: 0,
            retry_after: 1,
            last_raised: 0,
        }
    }

    fn record(&mut self, now: i64) {
        if now == self.current_second {
            self.current_count += 1;
            return;
        }
        self.history.push((self.current_second, self.current_count));
        let horizon = self.current_second - MAX_RETRY_AFTER;
        self.history.retain(|(t, _)| *t >= horizon);
        self.current_second = now;
        self.current_count = 1;
        let window: i64 = self
            .history
            .iter()
            .rev()
            .take_while(|(t, _)| now - t <= self.retry_after)
            .filter(|(t, _)| *t < now)
            .map(|(_, n)| n)
            .sum();
        if now - self.last_raised >= self.retry_after && window >= 3 * self.retry_after {
            self.retry_after = (self.retry_after * 2).min(MAX_RETRY_AFTER);
            self.last_raised = now;
        } else if window < self.retry_after && self.retry_after > 1 {
            self.retry_after -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_is_kubernetes_sha256() {
        // The first 8 bytes of SHA-256("global-default\0jane"), read
        // little-endian (computed apart from this code).
        assert_eq!(hash_flow("global-default", "jane"), 6822407026147695384);
        assert_ne!(hash_flow("a", "b"), hash_flow("ab", ""));
    }

    #[test]
    fn retry_after_grows_with_refusals_and_shrinks_back() {
        let mut d = Dropped::new();
        for _ in 0..5 {
            d.record(100);
        }
        // The next second looks back at 5 refusals (>= 3 * 1): doubled.
        d.record(101);
        assert_eq!(d.retry_after, 2);
        // Quiet seconds bring it back down, one at a time.
        d.record(110);
        assert_eq!(d.retry_after, 1);
    }

    /// The filter's cost per request against the bootstrap configuration
    /// (classification, flow hash, seat taken and given back), beside the
    /// semaphore it replaced; printed.
    #[test]
    #[ignore = "a benchmark: cargo test -p ferrokube-apiserver --release --lib apf_request_path -- --ignored --nocapture"]
    fn apf_request_path_cost() {
        use futures::FutureExt;
        let (mut fs, mut pl) = (Vec::new(), Vec::new());
        let objects = crate::kinds::mandatory_objects()
            .into_iter()
            .chain(super::super::bootstrap::suggested_objects());
        for (plural, obj) in objects {
            if plural == "flowschemas" {
                fs.push(obj);
            } else {
                pl.push(obj);
            }
        }
        let config = super::super::config::digest(&fs, &pl, &Default::default(), 600);
        let user = |name: &str, groups: &[&str]| UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        let cases = [
            (
                "admin",
                user("admin", &["system:masters", "system:authenticated"]),
                "exempt",
            ),
            (
                "kube-system SA",
                user(
                    "system:serviceaccount:kube-system:x",
                    &["system:serviceaccounts", "system:authenticated"],
                ),
                "kube-system-service-accounts",
            ),
            (
                "plain user",
                user("jane", &["system:authenticated"]),
                "global-default",
            ),
        ];
        let path = "/api/v1/namespaces/default/configmaps";
        let info = crate::request_info::parse("GET", path, false);
        const N: u32 = 200_000;
        for (what, user, expected) in &cases {
            let digest = Digest {
                user,
                info: &info,
                path,
            };
            let start = std::time::Instant::now();
            for _ in 0..N {
                let fs = config
                    .schemas
                    .iter()
                    .find(|fs| fs.schema.matches(&digest))
                    .unwrap();
                assert_eq!(&*fs.name, *expected);
                let level = &config.levels[&fs.schema.level];
                let hash = hash_flow(&fs.name, fs.schema.distinguish(&digest));
                let seat = level
                    .queues
                    .start(hash, &fs.name, WAIT_LIMIT)
                    .now_or_never();
                assert!(matches!(seat, Some(Ok(_))));
            }
            let per = start.elapsed() / N;
            println!("apf: {what} ({expected}): {} ns/request", per.as_nanos());
        }
        let semaphore = tokio::sync::Semaphore::new(400);
        let start = std::time::Instant::now();
        for _ in 0..N {
            assert!(semaphore.try_acquire().is_ok());
        }
        println!(
            "before (semaphore): {} ns/request",
            (start.elapsed() / N).as_nanos()
        );
    }

    #[test]
    fn long_running_requests() {
        let parse = |m: &str, p: &str, w: bool| crate::request_info::parse(m, p, w);
        assert!(is_long_running(&parse("GET", "/api/v1/pods", true)));
        assert!(is_long_running(&parse(
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            false
        )));
        assert!(is_long_running(&parse(
            "POST",
            "/api/v1/namespaces/a/pods/p/exec",
            false
        )));
        assert!(!is_long_running(&parse("GET", "/api/v1/pods", false)));
    }
}
