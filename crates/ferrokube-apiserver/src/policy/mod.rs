//! Kubernetes' ValidatingAdmissionPolicy admission plugin over the
//! `admissionregistration.k8s.io/v1` ValidatingAdmissionPolicies and
//! ValidatingAdmissionPolicyBindings in the watch cache.
//!
//! A request is checked against each policy whose `matchConstraints` take
//! it, once per binding of the policy whose `matchResources` take it and
//! per parameter object the binding's `paramRef` finds (`matching`,
//! `params`); the policy's CEL `matchConditions`, `variables`,
//! `validations` and `auditAnnotations` are evaluated (`evaluate`) and
//! the binding's `validationActions` decide what a failure does
//! (`dispatch`). The plugin runs where Kubernetes' plugin order puts it:
//! after the mutating webhooks and the object's own validation, before
//! the validating webhooks and ResourceQuota. Requests of the API server
//! itself and writes of admission configuration are exempt, as for
//! webhooks. A change of a policy or binding is seen by the next request
//! (the parsed configuration is rebuilt when either cache moved).
//!
//! Policies' `status.typeChecking` and `status.observedGeneration` are
//! written by a background task (`typecheck`).

mod config;
mod dispatch;
mod evaluate;
mod matching;
mod params;
pub(crate) mod typecheck;

pub(crate) use dispatch::validate;

/// The plugin's state: the parsed policies and bindings.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    configs: config::Configs,
}
