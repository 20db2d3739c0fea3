//! Defaults of `batch/v1` Job and CronJob (`pkg/apis/batch/v1/defaults.go`),
//! and the selector and pod labels the Job strategy generates on create.

use serde_json::{json, Value};

use super::{default_nil, default_str, each, is_empty_collection, is_nil, object_at, with};

/// `SetDefaults_Job`.
pub(crate) fn job(obj: &mut Value) {
    copy_template_labels(obj);
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if is_nil(spec.get("completions")) && is_nil(spec.get("parallelism")) {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    default_nil(spec, "parallelism", json!(1));
    let backoff = if is_nil(spec.get("backoffLimitPerIndex")) {
        6
    } else {
        i64::from(i32::MAX)
    };
    default_nil(spec, "backoffLimit", json!(backoff));
    default_nil(spec, "completionMode", json!("NonIndexed"));
    default_nil(spec, "suspend", json!(false));
    with(spec, "podFailurePolicy", |policy| {
        each(policy, "rules", |rule| {
            each(rule, "onPodConditions", |pattern| {
                default_str(pattern, "status", "True")
            })
        })
    });
    let replacement = if is_nil(spec.get("podFailurePolicy")) {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default_nil(spec, "podReplacementPolicy", json!(replacement));
    default_nil(spec, "manualSelector", json!(false));
    with(spec, "template", super::pod::template);
}

/// A Job without labels of its own takes its template's.
fn copy_template_labels(obj: &mut Value) {
    let Some(labels) = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
    else {
        return;
    };
    if is_empty_collection(obj.pointer("/metadata/labels")) {
        if let Some(meta) = object_at(obj, "metadata") {
            meta["labels"] = labels;
        }
    }
}

/// `SetDefaults_CronJob`, with the job template's pod template defaults.
pub(crate) fn cron_job(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_nil(spec, "suspend", json!(false));
    default_nil(spec, "successfulJobsHistoryLimit", json!(3));
    default_nil(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(t) = spec.pointer_mut("/jobTemplate/spec/template") {
        super::pod::template(t);
    }
}

/// The labels that tie a Job's pods to it, old and new names.
const JOB_NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];
const CONTROLLER_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// The Job strategy's `PrepareForCreate`: unless the Job asks to choose its
/// own selector, its pod template gets the job-name and controller-uid
/// labels (kept where the template sets them) and its selector matches the
/// controller uid. Then, as Kubernetes' defaulting does when it reads the
/// Job back, a Job without labels takes its template's.
pub(crate) fn generate_selector(obj: &mut Value) {
    if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if let Some(labels) = object_at(spec, "template")
        .and_then(|t| object_at(t, "metadata"))
        .and_then(|m| object_at(m, "labels"))
        .and_then(Value::as_object_mut)
    {
        for key in JOB_NAME_LABELS {
            labels.entry(key).or_insert_with(|| json!(name));
        }
        for key in CONTROLLER_UID_LABELS {
            labels.entry(key).or_insert_with(|| json!(uid));
        }
    }
    if let Some(match_labels) = object_at(spec, "selector")
        .and_then(|s| object_at(s, "matchLabels"))
        .and_then(Value::as_object_mut)
    {
        match_labels
            .entry(CONTROLLER_UID_LABELS[1])
            .or_insert_with(|| json!(uid));
    }
    copy_template_labels(obj);
}
