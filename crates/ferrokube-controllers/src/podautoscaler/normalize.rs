//! From the replicas the metrics ask for to the replicas the target gets:
//! Kubernetes' `normalizeDesiredReplicas` (no `behavior`: scale-down
//! stabilization over `--horizontal-pod-autoscaler-downscale-stabilization`,
//! scale-up at most to twice the current count or 4, min/max clamping) and
//! `normalizeDesiredReplicasWithBehaviors` (stabilization windows both
//! ways, rate policies over their periods picked by `selectPolicy`), with
//! the history each needs per HPA: the recent recommendations and scale
//! events. Every function takes the time it runs at.

use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use k8s_openapi::jiff::Timestamp;

use super::clock::shift;

/// A condition to set: type, status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) type_: &'static str,
    pub(crate) status: &'static str,
    pub(crate) reason: String,
    pub(crate) message: String,
}

impl Condition {
    pub(crate) fn new(
        type_: &'static str,
        status: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Condition {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// One unstabilized recommendation and when it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recommendation {
    pub(crate) replicas: i32,
    pub(crate) at: Timestamp,
}

/// One scale change (its size, never negative) and when it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScaleEvent {
    pub(crate) change: i32,
    pub(crate) at: Timestamp,
    pub(crate) outdated: bool,
}

/// What the controller remembers of one HPA between syncs.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub(crate) recommendations: Vec<Recommendation>,
    pub(crate) scale_up: Vec<ScaleEvent>,
    pub(crate) scale_down: Vec<ScaleEvent>,
}

impl History {
    /// Records the current count as the first recommendation, once.
    pub(crate) fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current,
                at: now,
            });
        }
    }

    /// Replaces the (last found) outdated recommendation with `replicas`,
    /// or adds it.
    fn record(&mut self, old: Option<usize>, replicas: i32, now: Timestamp) {
        let rec = Recommendation { replicas, at: now };
        match old.and_then(|i| self.recommendations.get_mut(i)) {
            Some(slot) => *slot = rec,
            None => self.recommendations.push(rec),
        }
    }
}

/// `normalizeDesiredReplicas`: an HPA without `behavior`.
pub(crate) fn normalize(
    h: &mut History,
    downscale_window: Duration,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    now: Timestamp,
) -> (i32, Vec<Condition>) {
    let stabilized = stabilize(h, downscale_window, desired, now);
    let able = if stabilized != desired {
        Condition::new(
            "AbleToScale",
            "True",
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    } else {
        ready_for_new_scale()
    };
    let (out, reason, message) = convert_with_rules(current, stabilized, min, max);
    let limited = Condition::new(
        "ScalingLimited",
        if out == stabilized { "False" } else { "True" },
        reason,
        message,
    );
    (out, vec![able, limited])
}

fn ready_for_new_scale() -> Condition {
    Condition::new(
        "AbleToScale",
        "True",
        "ReadyForNewScale",
        "recommended size matches current size",
    )
}

/// `stabilizeRecommendation`: the highest recommendation of the window
/// (the new one included), the new one recorded in place of an old one.
fn stabilize(h: &mut History, window: Duration, desired: i32, now: Timestamp) -> i32 {
    let cutoff = shift(now, -secs(window));
    let mut highest = desired;
    let mut old = None;
    for (i, r) in h.recommendations.iter().enumerate() {
        if r.at < cutoff {
            old = Some(i);
        } else if r.replicas > highest {
            highest = r.replicas;
        }
    }
    h.record(old, desired, now);
    highest
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `convertDesiredReplicasWithRules`: min/max clamping, and at most
/// twice the current count (or 4) on a scale-up.
pub(crate) fn convert_with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, &'static str, &'static str) {
    let up_limit = scale_up_limit(current);
    let (maximum, reason, message) = if max > up_limit {
        (
            up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    if desired < min {
        return (
            min,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        );
    }
    if desired > maximum {
        return (maximum, reason, message);
    }
    (
        desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

/// `calculateScaleUpLimit`: `max(2 * current, 4)` in float64.
fn scale_up_limit(current: i32) -> i32 {
    (2.0 * f64::from(current)).max(4.0) as i32
}

/// One direction's rules with Kubernetes' defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rules {
    pub(crate) stabilization_window_seconds: i32,
    pub(crate) select_policy: String,
    /// (type, value, periodSeconds)
    pub(crate) policies: Vec<(String, i32, i32)>,
}

/// The scale-up and scale-down rules of `behavior`, unset fields
/// defaulted as `pkg/apis/autoscaling/v2/defaults.go` does
/// (`GenerateHPAScaleUpRules`, `GenerateHPAScaleDownRules`) and the
/// scale-down window from the flag when unset.
pub(crate) fn rules_of(
    behavior: &HorizontalPodAutoscalerBehavior,
    downscale_window: Duration,
) -> (Rules, Rules) {
    let up = fill(
        behavior.scale_up.as_ref(),
        Rules {
            stabilization_window_seconds: 0,
            select_policy: "Max".into(),
            policies: vec![("Pods".into(), 4, 15), ("Percent".into(), 100, 15)],
        },
    );
    let down = fill(
        behavior.scale_down.as_ref(),
        Rules {
            stabilization_window_seconds: i32::try_from(downscale_window.as_secs())
                .unwrap_or(i32::MAX),
            select_policy: "Max".into(),
            policies: vec![("Percent".into(), 100, 15)],
        },
    );
    (up, down)
}

fn fill(from: Option<&HPAScalingRules>, mut to: Rules) -> Rules {
    let Some(from) = from else { return to };
    if let Some(s) = &from.select_policy {
        to.select_policy = s.clone();
    }
    if let Some(w) = from.stabilization_window_seconds {
        to.stabilization_window_seconds = w;
    }
    if let Some(p) = &from.policies {
        to.policies = p
            .iter()
            .map(|p| (p.type_.clone(), p.value, p.period_seconds))
            .collect();
    }
    to
}

/// What `normalizeDesiredReplicasWithBehaviors` works from.
#[derive(Clone, Debug)]
pub(crate) struct Args<'a> {
    pub(crate) up: &'a Rules,
    pub(crate) down: &'a Rules,
    pub(crate) min: i32,
    pub(crate) max: i32,
    pub(crate) current: i32,
    pub(crate) desired: i32,
}

/// `normalizeDesiredReplicasWithBehaviors`: stabilization, then the rate
/// policies and min/max.
pub(crate) fn normalize_with_behaviors(
    h: &mut History,
    a: &Args<'_>,
    now: Timestamp,
) -> (i32, Vec<Condition>) {
    let (stabilized, reason, message) = stabilize_with_behaviors(h, a, now);
    let able = if stabilized != a.desired {
        Condition::new("AbleToScale", "True", reason, message)
    } else {
        ready_for_new_scale()
    };
    let args = Args {
        desired: stabilized,
        ..a.clone()
    };
    let (out, reason, message) = convert_with_behavior_rate(h, &args, now);
    let limited = Condition::new(
        "ScalingLimited",
        if out == stabilized { "False" } else { "True" },
        reason,
        message,
    );
    (out, vec![able, limited])
}

/// `stabilizeRecommendationWithBehaviors`: the current count brought
/// within the lowest recommendation of the scale-up window and the highest
/// of the scale-down window; the new one recorded in place of one older
/// than both windows.
fn stabilize_with_behaviors(
    h: &mut History,
    a: &Args<'_>,
    now: Timestamp,
) -> (i32, &'static str, &'static str) {
    let up_cutoff = shift(now, -i64::from(a.up.stabilization_window_seconds));
    let down_cutoff = shift(now, -i64::from(a.down.stabilization_window_seconds));
    let mut up = a.desired;
    let mut down = a.desired;
    let mut old = None;
    for (i, r) in h.recommendations.iter().enumerate() {
        if r.at > up_cutoff {
            up = up.min(r.replicas);
        }
        if r.at > down_cutoff {
            down = down.max(r.replicas);
        }
        if r.at < up_cutoff && r.at < down_cutoff {
            old = Some(i);
        }
    }
    let mut out = a.current;
    if out < up {
        out = up;
    }
    if out > down {
        out = down;
    }
    h.record(old, a.desired, now);
    if a.desired >= a.current {
        (
            out,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    } else {
        (
            out,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    }
}

/// `convertDesiredReplicasWithBehaviorRate`: the rate policies' limit in
/// the scaling direction, then min/max.
fn convert_with_behavior_rate(
    h: &History,
    a: &Args<'_>,
    now: Timestamp,
) -> (i32, &'static str, &'static str) {
    if a.desired > a.current {
        let limit = scale_up_limit_with_rules(a.current, &h.scale_up, &h.scale_down, a.up, now)
            .max(a.current);
        let (maximum, reason, message) = if a.max > limit {
            (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                a.max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        };
        if a.desired > maximum {
            return (maximum, reason, message);
        }
    } else if a.desired < a.current {
        let limit = scale_down_limit_with_rules(a.current, &h.scale_up, &h.scale_down, a.down, now)
            .min(a.current);
        let (minimum, reason, message) = if a.min < limit {
            (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        } else {
            (
                a.min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        };
        if a.desired < minimum {
            return (minimum, reason, message);
        }
    }
    (
        a.desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

/// `getReplicasChangePerPeriod`: the changes of the last `period` seconds.
fn change_in_period(period: i32, events: &[ScaleEvent], now: Timestamp) -> i32 {
    let cutoff = shift(now, -i64::from(period));
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .fold(0i32, |a, e| a.wrapping_add(e.change))
}

/// `calculateScaleUpLimitWithScalingRules`: the most replicas the
/// policies allow now, each from the count at its period's start.
pub(crate) fn scale_up_limit_with_rules(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &Rules,
    now: Timestamp,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => (i32::MAX, std::cmp::min),
        _ => (i32::MIN, std::cmp::max),
    };
    for (type_, value, period) in &rules.policies {
        let start = current - change_in_period(*period, up_events, now)
            + change_in_period(*period, down_events, now);
        let proposed = match type_.as_str() {
            "Pods" => start + value,
            "Percent" => (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32,
            _ => 0,
        };
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: the fewest replicas the
/// policies allow now.
pub(crate) fn scale_down_limit_with_rules(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &Rules,
    now: Timestamp,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => (i32::MIN, std::cmp::max),
        _ => (i32::MAX, std::cmp::min),
    };
    for (type_, value, period) in &rules.policies {
        let start = current - change_in_period(*period, up_events, now)
            + change_in_period(*period, down_events, now);
        let proposed = match type_.as_str() {
            "Pods" => start - value,
            "Percent" => (f64::from(start) * (1.0 - f64::from(*value) / 100.0)) as i32,
            _ => 0,
        };
        result = pick(result, proposed);
    }
    result
}

/// `storeScaleEvent`: remembers a scale change of an HPA with `behavior`,
/// in place of one older than the direction's longest policy period.
pub(crate) fn store_scale_event(
    h: &mut History,
    up: &Rules,
    down: &Rules,
    prev: i32,
    new: i32,
    now: Timestamp,
) {
    let (events, rules, change) = if new > prev {
        (&mut h.scale_up, up, new - prev)
    } else {
        (&mut h.scale_down, down, prev - new)
    };
    let longest = rules.policies.iter().map(|p| p.2).max().unwrap_or(0).max(0);
    let cutoff = shift(now, -i64::from(longest));
    let mut old = None;
    for (i, e) in events.iter_mut().enumerate() {
        if e.at < cutoff {
            e.outdated = true;
        }
        if e.outdated {
            old = Some(i);
        }
    }
    let event = ScaleEvent {
        change,
        at: now,
        outdated: false,
    };
    match old.and_then(|i| events.get_mut(i)) {
        Some(slot) => *slot = event,
        None => events.push(event),
    }
}
