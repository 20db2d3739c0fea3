//! The `certificates.k8s.io` kinds' strategies: CertificateSigningRequests
//! (Kubernetes' `pkg/registry/certificates/certificates`; the rules are
//! [`crate::kinds`]' `certificates`): the requester recorded on create,
//! `/approval` changing only the conditions and `/status` only the
//! certificate.

use std::sync::Arc;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::FieldError;
use serde_json::{json, Value};

use super::{metadata_and, prepare_create, prepare_update, Strategy};
use crate::authn::UserInfo;
use crate::kinds::certificates as rules;

/// The strategy of the `certificates.k8s.io` kind `kind`, if it has one of
/// its own.
pub(super) fn strategy(kind: &str) -> Option<Arc<dyn Strategy>> {
    match kind {
        "CertificateSigningRequest" => Some(Arc::new(CertificateSigningRequest)),
        _ => None,
    }
}

/// CertificateSigningRequests.
#[derive(Debug)]
struct CertificateSigningRequest;

impl Strategy for CertificateSigningRequest {
    typed_fields!();

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, user: Option<&UserInfo>) {
        rules::prepare_create(obj, user);
        prepare_create(obj, false, Some(json!({})));
    }

    fn prepare_for_update(&self, def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        prepare_update(def, old, new, sub, false);
        rules::prepare_update(old, new, sub);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        metadata_and(def, obj, |csr| rules::validate(csr, None, ""))
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        sub: &str,
    ) -> Vec<FieldError> {
        metadata_and(def, new, |csr| rules::validate(csr, Some(old), sub))
    }
}
