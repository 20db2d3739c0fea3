//! Defaults of `discovery.k8s.io/v1` EndpointSlice: each port is named
//! (empty) and speaks TCP unless it says otherwise.

use serde_json::{json, Value};

use super::{default_nil, each};

/// `SetDefaults_EndpointPort`, for every port of the slice.
pub(crate) fn endpoint_slice(obj: &mut Value) {
    each(obj, "ports", |p| {
        default_nil(p, "name", json!(""));
        default_nil(p, "protocol", json!("TCP"));
    });
}
