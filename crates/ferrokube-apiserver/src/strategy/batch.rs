//! The `batch` kinds' strategies (Kubernetes' `pkg/registry/batch/*`): Jobs
//! and CronJobs keep a generation and start with an empty status; a Job
//! gets its `controller-uid` selector and labels on create, and its
//! selector and template never change.

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, prepare_create, validate_metadata, Strategy};
use crate::authn::UserInfo;
use crate::defaults::batch as defaults;
use crate::kinds::batch::{validate_cron_job, validate_job};
use crate::kinds::meta::immutable;

/// The strategy of the `batch` kind `kind`, if it has one of its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    Some(match kind {
        "Job" => Arc::new(Job),
        "CronJob" => Arc::new(CronJob),
        _ => return None,
    })
}

/// Jobs.
#[derive(Debug)]
struct Job;

impl Strategy for Job {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::job(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        defaults::generate_selector(obj);
        prepare_create(obj, true, Some(json!({})));
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, validate_job)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        if sub.is_empty() {
            errs.extend(immutable(old, new, "spec.selector"));
            errs.extend(immutable(old, new, "spec.template"));
        }
        errs.extend(validate_job(new));
        errs
    }
}

/// CronJobs.
#[derive(Debug)]
struct CronJob;

impl Strategy for CronJob {
    typed_fields!();

    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        defaults::cron_job(obj);
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn initial_status(&self, _def: &ResourceDef) -> Option<Value> {
        Some(json!({}))
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, validate_cron_job)
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        _old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        metadata_and(def, new, validate_cron_job)
    }
}
