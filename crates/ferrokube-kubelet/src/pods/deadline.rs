//! `activeDeadlineSeconds`: how long a pod may be active on the node, counted from
//! its `startTime`. Past it, Kubernetes' kubelet stops the pod's containers and
//! fails the pod with these reason and message (and an event saying so).

use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub(crate) const REASON: &str = "DeadlineExceeded";
pub(crate) const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// The time the pod has left (zero once past its deadline), or `None` without a
/// deadline or a start time.
pub(crate) fn left(spec: &PodSpec, start: Option<&Time>) -> Option<Duration> {
    left_at(spec, start, jiff::Timestamp::now())
}

fn left_at(spec: &PodSpec, start: Option<&Time>, now: jiff::Timestamp) -> Option<Duration> {
    let secs = spec.active_deadline_seconds?;
    let start = start?.0;
    let end = start
        .checked_add(jiff::SignedDuration::from_secs(secs.max(0)))
        .ok()?;
    let rest = end.duration_since(now);
    Some(if rest.is_positive() {
        Duration::try_from(rest).unwrap_or(Duration::ZERO)
    } else {
        Duration::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_from_the_start() {
        let start = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let spec = PodSpec {
            active_deadline_seconds: Some(10),
            ..Default::default()
        };
        let at = |s: &str| left_at(&spec, Some(&start), s.parse().unwrap());
        assert_eq!(at("2026-01-01T00:00:04Z"), Some(Duration::from_secs(6)));
        assert_eq!(at("2026-01-01T00:00:10Z"), Some(Duration::ZERO));
        assert_eq!(at("2026-01-01T00:01:00Z"), Some(Duration::ZERO));
        assert_eq!(
            left_at(&PodSpec::default(), Some(&start), jiff::Timestamp::now()),
            None
        );
        assert_eq!(left_at(&spec, None, jiff::Timestamp::now()), None);
    }
}
