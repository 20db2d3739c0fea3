//! A CRD's `status.conditions`, as Kubernetes' `apihelpers` keep them:
//! one per type, `lastTransitionTime` moved only when the status changes.

use serde_json::{json, Value};

/// One condition to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    /// `NamesAccepted`, `Established`, `Terminating`.
    pub(crate) type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub(crate) status: &'static str,
    /// A CamelCase reason.
    pub(crate) reason: String,
    /// A sentence for people.
    pub(crate) message: String,
}

impl Condition {
    /// A condition of `type_`.
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

    /// Whether `existing` says the same (type, status, reason, message):
    /// Kubernetes' `IsCRDConditionEquivalent`.
    pub(crate) fn same_as(&self, existing: Option<&Value>) -> bool {
        existing.is_some_and(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            s("type") == self.type_
                && s("status") == self.status
                && s("reason") == self.reason
                && s("message") == self.message
        })
    }
}

/// The condition of `type_` in `crd`'s status.
pub(crate) fn find<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// Whether `crd`'s condition `type_` is `True`.
pub(crate) fn is_true(crd: &Value, type_: &str) -> bool {
    find(crd, type_)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// Sets `cond` in `crd`'s status (`SetCRDCondition`): the transition time
/// is now if the status changed or the condition is new, else kept.
pub(crate) fn set(crd: &mut Value, cond: &Condition, now: &str) {
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let status = &mut crd["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(list) = status["conditions"].as_array_mut() else {
        return;
    };
    let pos = list
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(cond.type_));
    let since = match pos.map(|i| &list[i]) {
        Some(old) if old.get("status").and_then(Value::as_str) == Some(cond.status) => old
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(now)),
        _ => json!(now),
    };
    let new = json!({
        "type": cond.type_,
        "status": cond.status,
        "lastTransitionTime": since,
        "reason": cond.reason,
        "message": cond.message,
    });
    match pos {
        Some(i) => list[i] = new,
        None => list.push(new),
    }
}

/// Now, as conditions record it.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_with_the_status() {
        let mut crd = json!({});
        let c = Condition::new("Established", "False", "Installing", "x");
        set(&mut crd, &c, "t1");
        let c2 = Condition::new("Established", "False", "Other", "y");
        set(&mut crd, &c2, "t2");
        assert_eq!(
            find(&crd, "Established").unwrap()["lastTransitionTime"],
            "t1"
        );
        assert_eq!(find(&crd, "Established").unwrap()["reason"], "Other");
        assert!(!is_true(&crd, "Established"));
        set(
            &mut crd,
            &Condition::new("Established", "True", "R", "m"),
            "t3",
        );
        assert_eq!(
            find(&crd, "Established").unwrap()["lastTransitionTime"],
            "t3"
        );
        assert!(is_true(&crd, "Established"));
        assert!(!c2.same_as(None));
        assert_eq!(crd["status"]["conditions"].as_array().unwrap().len(), 1);
    }
}
