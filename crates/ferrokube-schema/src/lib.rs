//! What a CustomResourceDefinition's OpenAPI v3 schema does to an object, as
//! Kubernetes' apiextensions-apiserver does it.
//!
//! - [`cel`]: CEL expressions, shared with admission webhooks'
//!   `matchConditions` and ValidatingAdmissionPolicies.

pub mod cel;
