//! The kinds whose schemas come from `k8s-openapi`: registers a kind's
//! schema (and everything it refers to) with a schemars generator.

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator};

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    let _ = generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Registers the schema of `group/version kind` with `generator` and returns
/// its definition name (`io.k8s.api.apps.v1.Deployment`), or `None` for a
/// kind this crate has no type for.
#[expect(
    clippy::too_many_lines,
    reason = "a table: one row per kind and its k8s-openapi type"
)]
pub(crate) fn register(
    generator: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<String> {
    let name = match (group, version, kind) {
        ("", "v1", "Namespace") => add::<api::core::v1::Namespace>(generator),
        ("", "v1", "Pod") => add::<api::core::v1::Pod>(generator),
        ("", "v1", "Service") => add::<api::core::v1::Service>(generator),
        ("", "v1", "Endpoints") => add::<api::core::v1::Endpoints>(generator),
        ("", "v1", "ConfigMap") => add::<api::core::v1::ConfigMap>(generator),
        ("", "v1", "Secret") => add::<api::core::v1::Secret>(generator),
        ("", "v1", "ServiceAccount") => add::<api::core::v1::ServiceAccount>(generator),
        ("", "v1", "Node") => add::<api::core::v1::Node>(generator),
        ("", "v1", "Event") => add::<api::core::v1::Event>(generator),
        ("", "v1", "ReplicationController") => {
            add::<api::core::v1::ReplicationController>(generator)
        }
        ("", "v1", "LimitRange") => add::<api::core::v1::LimitRange>(generator),
        ("", "v1", "ResourceQuota") => add::<api::core::v1::ResourceQuota>(generator),
        ("", "v1", "PersistentVolume") => add::<api::core::v1::PersistentVolume>(generator),
        ("", "v1", "PersistentVolumeClaim") => {
            add::<api::core::v1::PersistentVolumeClaim>(generator)
        }
        ("", "v1", "Binding") => add::<api::core::v1::Binding>(generator),
        ("apps", "v1", "Deployment") => add::<api::apps::v1::Deployment>(generator),
        ("apps", "v1", "ReplicaSet") => add::<api::apps::v1::ReplicaSet>(generator),
        ("apps", "v1", "StatefulSet") => add::<api::apps::v1::StatefulSet>(generator),
        ("apps", "v1", "DaemonSet") => add::<api::apps::v1::DaemonSet>(generator),
        ("apps", "v1", "ControllerRevision") => add::<api::apps::v1::ControllerRevision>(generator),
        ("batch", "v1", "Job") => add::<api::batch::v1::Job>(generator),
        ("batch", "v1", "CronJob") => add::<api::batch::v1::CronJob>(generator),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            add::<api::autoscaling::v2::HorizontalPodAutoscaler>(generator)
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            add::<api::autoscaling::v1::HorizontalPodAutoscaler>(generator)
        }
        ("autoscaling", "v1", "Scale") => add::<api::autoscaling::v1::Scale>(generator),
        ("coordination.k8s.io", "v1", "Lease") => add::<api::coordination::v1::Lease>(generator),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            add::<api::discovery::v1::EndpointSlice>(generator)
        }
        ("events.k8s.io", "v1", "Event") => add::<api::events::v1::Event>(generator),
        ("rbac.authorization.k8s.io", "v1", "Role") => add::<api::rbac::v1::Role>(generator),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            add::<api::rbac::v1::RoleBinding>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => {
            add::<api::rbac::v1::ClusterRole>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            add::<api::rbac::v1::ClusterRoleBinding>(generator)
        }
        ("policy", "v1", "PodDisruptionBudget") => {
            add::<api::policy::v1::PodDisruptionBudget>(generator)
        }
        ("policy", "v1", "Eviction") => add::<api::policy::v1::Eviction>(generator),
        ("authentication.k8s.io", "v1", "SelfSubjectReview") => {
            add::<api::authentication::v1::SelfSubjectReview>(generator)
        }
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            add::<api::authentication::v1::TokenRequest>(generator)
        }
        ("authentication.k8s.io", "v1", "TokenReview") => {
            add::<api::authentication::v1::TokenReview>(generator)
        }
        ("authorization.k8s.io", "v1", "LocalSubjectAccessReview") => {
            add::<api::authorization::v1::LocalSubjectAccessReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => {
            add::<api::authorization::v1::SelfSubjectAccessReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SelfSubjectRulesReview") => {
            add::<api::authorization::v1::SelfSubjectRulesReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SubjectAccessReview") => {
            add::<api::authorization::v1::SubjectAccessReview>(generator)
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            add::<api::scheduling::v1::PriorityClass>(generator)
        }
        ("", "v1", "PodTemplate") => add::<api::core::v1::PodTemplate>(generator),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            add::<api::networking::v1::NetworkPolicy>(generator)
        }
        ("networking.k8s.io", "v1", "Ingress") => add::<api::networking::v1::Ingress>(generator),
        ("networking.k8s.io", "v1", "IngressClass") => {
            add::<api::networking::v1::IngressClass>(generator)
        }
        ("node.k8s.io", "v1", "RuntimeClass") => add::<api::node::v1::RuntimeClass>(generator),
        ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema") => {
            add::<api::flowcontrol::v1::FlowSchema>(generator)
        }
        ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration") => {
            add::<api::flowcontrol::v1::PriorityLevelConfiguration>(generator)
        }
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => {
            add::<api::certificates::v1::CertificateSigningRequest>(generator)
        }
        ("storage.k8s.io", "v1", "StorageClass") => {
            add::<api::storage::v1::StorageClass>(generator)
        }
        ("storage.k8s.io", "v1", "CSIDriver") => add::<api::storage::v1::CSIDriver>(generator),
        ("storage.k8s.io", "v1", "CSINode") => add::<api::storage::v1::CSINode>(generator),
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => {
            add::<api::admissionregistration::v1::MutatingWebhookConfiguration>(generator)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => {
            add::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(generator)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy") => {
            add::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(generator)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding") => {
            add::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(generator)
        }
        ("storage.k8s.io", "v1", "VolumeAttachment") => {
            add::<api::storage::v1::VolumeAttachment>(generator)
        }
        ("storage.k8s.io", "v1", "CSIStorageCapacity") => {
            add::<api::storage::v1::CSIStorageCapacity>(generator)
        }
        ("apiregistration.k8s.io", "v1", "APIService") => add::<
            k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        >(generator),
        _ => return None,
    };
    Some(name)
}

/// Registers the shared meta/v1 types every document's operations refer to.
pub(crate) fn register_common(generator: &mut SchemaGenerator) {
    let _ = add::<meta::Status>(generator);
    let _ = add::<meta::DeleteOptions>(generator);
    let _ = add::<meta::ListMeta>(generator);
}

/// Registers ObjectMeta, which custom kinds' definitions refer to.
pub(crate) fn register_object_meta(generator: &mut SchemaGenerator) {
    let _ = add::<meta::ObjectMeta>(generator);
}
