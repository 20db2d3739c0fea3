//! Validation of `batch/v1` Job and CronJob where Kubernetes' rules
//! (`pkg/apis/batch/validation`) matter to the controllers: the pod
//! template and its restart policy, Indexed completions, the pod failure
//! policy, the CronJob schedule (robfig/cron's standard parser, with its
//! messages), `timeZone`, the concurrency policy and the name length.

use ferrokube_api::cron;
use ferrokube_api::status::FieldError;
use serde_json::Value;

/// A CronJob's Jobs are named `<name>-<minutes>` (11 more characters).
const CRONJOB_NAME_MAX: usize = 52;

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn non_negative(spec: &Value, field: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = int(spec.get(field)) {
        if n < 0 {
            errs.push(FieldError::invalid(
                format!("{path}.{field}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// The rules of a Job spec at `path` ("spec", or a CronJob's
/// "spec.jobTemplate.spec").
pub(crate) fn validate_job_spec(spec: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(spec) = spec else {
        errs.push(FieldError::required(path, ""));
        return;
    };
    crate::validation::validate_pod_spec(
        spec.pointer("/template/spec"),
        &format!("{path}.template.spec"),
        errs,
    );
    for f in [
        "parallelism",
        "completions",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        non_negative(spec, f, path, errs);
    }
    if let Some(n) = int(spec.get("activeDeadlineSeconds")) {
        if n <= 0 {
            errs.push(FieldError::invalid(
                format!("{path}.activeDeadlineSeconds"),
                n,
                "must be greater than 0",
            ));
        }
    }
    let restart = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "OnFailure" && restart != "Never" {
        errs.push(FieldError::not_supported(
            format!("{path}.template.spec.restartPolicy"),
            restart,
            &["OnFailure", "Never"],
        ));
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    let indexed = mode == Some("Indexed");
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            errs.push(FieldError::not_supported(
                format!("{path}.completionMode"),
                m,
                &["NonIndexed", "Indexed"],
            ));
        }
    }
    if indexed && int(spec.get("completions")).is_none() {
        errs.push(FieldError::required(
            format!("{path}.completions"),
            "when completion mode is Indexed",
        ));
    }
    let per_index = int(spec.get("backoffLimitPerIndex")).is_some();
    if per_index && !indexed {
        errs.push(FieldError::invalid(
            format!("{path}.backoffLimitPerIndex"),
            spec["backoffLimitPerIndex"].clone(),
            "requires indexed completion mode",
        ));
    }
    if let Some(rules) = spec
        .pointer("/podFailurePolicy/rules")
        .and_then(Value::as_array)
    {
        if restart == "OnFailure" {
            errs.push(FieldError::invalid(
                format!("{path}.template.spec.restartPolicy"),
                restart,
                "only \"Never\" is supported when podFailurePolicy is specified",
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            let rp = format!("{path}.podFailurePolicy.rules[{i}]");
            validate_pod_failure_rule(rule, &rp, per_index, errs);
        }
    }
}

/// The rules of one rule of a Job's `podFailurePolicy`, at `rp`;
/// `per_index` when the Job sets `backoffLimitPerIndex` (FailIndex needs it).
fn validate_pod_failure_rule(rule: &Value, rp: &str, per_index: bool, errs: &mut Vec<FieldError>) {
    let action = rule.get("action").and_then(Value::as_str).unwrap_or("");
    match action {
        "Count" | "FailJob" | "Ignore" => {}
        "FailIndex" if !per_index => errs.push(FieldError::invalid(
            format!("{rp}.action"),
            action,
            "requires the backoffLimitPerIndex to be set",
        )),
        "FailIndex" => {}
        _ => errs.push(FieldError::not_supported(
            format!("{rp}.action"),
            action,
            &["Count", "FailIndex", "FailJob", "Ignore"],
        )),
    }
    let codes = rule.get("onExitCodes").filter(|v| !v.is_null());
    let conds = rule.get("onPodConditions").filter(|v| !v.is_null());
    match (codes, conds) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            rp,
            Value::String(String::new()),
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (None, None) => errs.push(FieldError::invalid(
            rp,
            Value::String(String::new()),
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
    if let Some(codes) = codes {
        let op = codes.get("operator").and_then(Value::as_str).unwrap_or("");
        if op != "In" && op != "NotIn" {
            errs.push(FieldError::not_supported(
                format!("{rp}.onExitCodes.operator"),
                op,
                &["In", "NotIn"],
            ));
        }
        let values: Vec<i64> = codes
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if values.is_empty() {
            errs.push(FieldError::required(
                format!("{rp}.onExitCodes.values"),
                "at least one value is required",
            ));
        }
        for (j, v) in values.iter().enumerate() {
            if op == "In" && *v == 0 {
                errs.push(FieldError::invalid(
                    format!("{rp}.onExitCodes.values[{j}]"),
                    0,
                    "must not be 0 for the In operator",
                ));
            }
        }
    }
}

/// A Job.
pub(crate) fn validate_job(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_job_spec(obj.get("spec"), "spec", &mut errs);
    if obj.pointer("/spec/selector").is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs
}

/// A CronJob.
pub(crate) fn validate_cron_job(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > CRONJOB_NAME_MAX {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be no more than {CRONJOB_NAME_MAX} characters"),
        ));
    }
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
    let tz = spec.get("timeZone").and_then(Value::as_str);
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                e.to_string(),
            ));
        }
        if schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(tz) = tz {
        if tz.is_empty() {
            errs.push(FieldError::invalid(
                "spec.timeZone",
                tz,
                "timeZone must be nil or non-empty string",
            ));
        } else if tz.eq_ignore_ascii_case("local") {
            errs.push(FieldError::invalid(
                "spec.timeZone",
                tz,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            ));
        } else if let Err(e) = cron::load_zone(tz) {
            errs.push(FieldError::invalid("spec.timeZone", tz, e.to_string()));
        }
    }
    if let Some(p) = spec.get("concurrencyPolicy").and_then(Value::as_str) {
        if !["Allow", "Forbid", "Replace"].contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.concurrencyPolicy",
                p,
                &["Allow", "Forbid", "Replace"],
            ));
        }
    }
    if let Some(n) = int(spec.get("startingDeadlineSeconds")) {
        if n < 0 {
            errs.push(FieldError::invalid(
                "spec.startingDeadlineSeconds",
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        non_negative(&spec, f, "spec", &mut errs);
    }
    validate_job_spec(
        spec.pointer("/jobTemplate/spec"),
        "spec.jobTemplate.spec",
        &mut errs,
    );
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cron(schedule: &str, tz: Option<&str>) -> Vec<String> {
        validate_cron_job(
            &json!({"metadata": {"name": "c"}, "spec": {"schedule": schedule, "timeZone": tz,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "i"}]}}}}}}),
        )
        .iter()
        .map(|e| format!("{}: {}", e.field, e.detail_message()))
        .collect()
    }

    #[test]
    fn cron_schedules_and_zones() {
        assert!(cron("*/1 * * * *", None).is_empty());
        assert!(cron("@hourly", Some("Europe/Paris")).is_empty());
        let e = cron("* * * *", None);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("expected exactly 5 fields, found 4: [* * * *]"),
            "{e:?}"
        );
        let e = cron("TZ=UTC * * * * *", None);
        assert!(
            e.iter()
                .any(|m| m.contains("cannot use TZ or CRON_TZ in schedule")),
            "{e:?}"
        );
        let e = cron("* * * * *", Some("Mars/Base"));
        assert!(
            e.iter().any(|m| m.contains("unknown time zone Mars/Base")),
            "{e:?}"
        );
    }

    #[test]
    fn jobs_need_never_or_on_failure_and_valid_policies() {
        let job = |spec: Value| -> Vec<String> {
            validate_job(&json!({"metadata": {"name": "j"}, "spec": spec}))
                .iter()
                .map(|e| format!("{}: {}", e.field, e.detail_message()))
                .collect()
        };
        let t = |restart: &str| json!({"spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "i"}]}});
        assert!(job(json!({"selector": {}, "template": t("Never")})).is_empty());
        let e = job(json!({"selector": {}, "template": t("Always")}));
        assert!(
            e[0].starts_with("spec.template.spec.restartPolicy"),
            "{e:?}"
        );
        let e = job(json!({"selector": {}, "template": t("Never"), "completionMode": "Indexed"}));
        assert!(e[0].starts_with("spec.completions"), "{e:?}");
        let e = job(
            json!({"selector": {}, "template": t("Never"), "podFailurePolicy": {"rules": [
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [0]}}]}}),
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
