//! Kubernetes' validation of HorizontalPodAutoscalers
//! (`pkg/apis/autoscaling/validation/validation.go`), on the v2 form.

use ferrokube_api::status::FieldError;
use serde_json::Value;

/// `ValidateHorizontalPodAutoscaler`.
pub(super) fn validate_create(_hpa: &Value) -> Vec<FieldError> {
    Vec::new()
}

/// `ValidateHorizontalPodAutoscalerUpdate`.
pub(super) fn validate_update(_old: &Value, _new: &Value) -> Vec<FieldError> {
    Vec::new()
}

/// `ValidateHorizontalPodAutoscalerStatusUpdate`.
pub(super) fn validate_status_update(_new: &Value) -> Vec<FieldError> {
    Vec::new()
}
